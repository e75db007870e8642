//! `convtrain evaluate`: rebuild the model a checkpoint holds, score a split, print and write JSON.
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::error::{to_json_pretty, to_json_value, Result};
use crate::input_err;
use crate::models::{Model, ModelConfig};
use crate::train::evaluate::{evaluate, EvalResult};
use crate::train::parse_device;
use crate::train::run_dir::RunDir;
use crate::train::setup::setup_data;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Arguments of `convtrain evaluate`.
#[derive(Debug, Clone, Default)]
pub struct EvaluateRequest {
    /// A run directory (its best checkpoint, else last) or a checkpoint file.
    pub checkpoint: PathBuf,
    /// `test` or `val`.
    pub split: String,
    /// Overrides of the run's configuration (dataset, data_dir, arch, checkered, device, batch size...).
    pub overrides: serde_json::Value,
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvaluateReport {
    pub checkpoint: String,
    pub arch: String,
    pub checkered: bool,
    pub dataset: String,
    pub split: String,
    #[serde(flatten)]
    pub result: EvalResult,
}

/// `convtrain evaluate --resume …`: rebuilds the model from the checkpoint (or the overrides), loads it,
/// scores the split, prints and writes JSON.
pub fn evaluate_checkpoint(req: &EvaluateRequest) -> Result<EvaluateReport> {
    let (run, ck_path) = if req.checkpoint.is_dir() {
        let run = RunDir { dir: req.checkpoint.clone() };
        let p = if run.best().is_file() { run.best() } else { checkpoint::resolve(&run.dir, "last")? };
        (Some(run), p)
    } else {
        let p = checkpoint::resolve(&req.checkpoint, "best")?;
        let parent = p.parent().map(Path::to_path_buf).unwrap_or_default();
        let run = RunDir { dir: parent };
        (run.config().is_file().then_some(run), p)
    };
    let ck = checkpoint::load(&ck_path)?;
    // Base configuration: the run's, else the one stored in the checkpoint; the model itself is always
    // the checkpoint's (an exported or materialised file may sit in a run of another architecture).
    let mut base = match (&run, ck.metadata.get("train_config")) {
        (Some(r), _) => to_json_value(&r.read_config()?, "the run configuration")?,
        (None, Some(s)) => serde_json::from_str(s)
            .map_err(|e| input_err!("{}: corrupt train_config metadata ({e}).", ck_path.display()))?,
        (None, None) => serde_json::json!({}),
    };
    if let (Some(mc), serde_json::Value::Object(m)) = (ModelConfig::from_checkpoint(&ck)?, &mut base) {
        // The model settings (arch, depth, width, checkered, family options), not the dataset geometry.
        // The checkpoint's family options replace the run's, which may hold more (a materialized
        // model drops its family's knobs).
        for k in crate::models::option_keys() {
            m.remove(&k);
        }
        let model = to_json_value(&mc, "the model configuration")?;
        for (k, v) in model.as_object().into_iter().flatten() {
            if !["num_classes", "in_channels", "image_size"].contains(&k.as_str()) {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    let cfg = TrainConfig::resolve(base, req.overrides.clone(), &ck_path.display().to_string())?;
    if req.split != "test" && req.split != "val" {
        return Err(input_err!("--split: '{}' is not a split; use test or val.", req.split));
    }
    let split_file = run.as_ref().map(|r| r.split());
    if req.split == "val" && cfg.val_split <= 0.0 {
        return Err(input_err!(
            "--split val: this run validated on the test set (val_split 0); there is no held-out split."
        ));
    }
    let device = parse_device(&cfg.device)?;
    let setup = setup_data(&cfg, split_file.as_deref(), true, req.split == "test")?;
    let mc = cfg.model_config(setup.info.num_classes, setup.channels, setup.image_size);
    let model = Model::build(&mc, device)?;
    model.load_checkpoint(&ck)?;
    // The whole split: a run's limit_val_batches only shortens its per-epoch validation.
    let result = evaluate(&model, &setup, cfg.eval_batch_size, None, device)?;
    let report = EvaluateReport {
        checkpoint: ck_path.display().to_string(),
        arch: mc.arch.clone(),
        checkered: mc.checkered,
        dataset: cfg.dataset.clone(),
        split: req.split.clone(),
        result,
    };
    let json = to_json_pretty(&report, "the evaluation report")?;
    println!("{json}");
    let stem = ck_path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let out = req.out.clone().unwrap_or_else(|| {
        let suffix = if mc.checkered { "-checkered" } else { "" };
        ck_path.with_file_name(format!("eval-{stem}{suffix}-{}.json", req.split))
    });
    if let Err(e) = checkpoint::write_atomic(&out, json.as_bytes()) {
        eprintln!("convtrain: warning: could not write {}: {e}", out.display());
    }
    Ok(report)
}

/// `convtrain evaluate` from its flags.
pub fn run(a: &crate::cli::EvaluateArgs) -> Result<()> {
    let req = EvaluateRequest {
        checkpoint: a.resume.clone(),
        split: a.split.clone(),
        overrides: crate::cli::evaluate_overrides(a)?,
        out: a.out.clone(),
    };
    evaluate_checkpoint(&req).map(|_| ())
}
