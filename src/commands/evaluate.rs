//! `convtrain evaluate`: rebuild the model a checkpoint holds, score a split, print and write JSON.
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::error::{catch_torch, to_json_pretty, to_json_value, Result};
use crate::input_err;
use crate::models::ModelConfig;
use crate::train::evaluate::{evaluate, EvalResult};
use crate::train::memory::MemoryCeiling;
use crate::train::run_dir::{refuse_run_file, RunDir};
use crate::train::setup::setup_data;
use crate::train::trainer::build_model;
use crate::train::{parse_device, set_threads};
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
    /// The 1-based epoch whose weights the checkpoint holds (absent for weights from elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<usize>,
    #[serde(flatten)]
    pub result: EvalResult,
}

/// `convtrain evaluate --resume …`: rebuilds the model from the checkpoint (or the overrides), loads it,
/// scores the split, prints and writes JSON.
pub fn evaluate_checkpoint(req: &EvaluateRequest) -> Result<EvaluateReport> {
    if let Some(out) = &req.out {
        refuse_run_file(out, "--out")?;
        let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(input_err!("--out {}: the directory {} does not exist.", out.display(), dir.display()));
        }
    }
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
    // Base configuration: the one stored in the checkpoint, else the run's config.json; the model itself
    // is always the checkpoint's (an exported or materialised file may sit in a run of another
    // architecture).
    let mut base = match (ck.metadata.get("train_config"), &run) {
        (Some(s), _) => crate::config::parse_json(s)
            .map_err(|e| input_err!("{}: corrupt train_config metadata ({e}).", ck_path.display()))?,
        (None, Some(r)) => to_json_value(&r.read_config()?, "the run configuration")?,
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
    if let Some(w) = cfg.precision.slow_on(device) {
        eprintln!("convtrain: warning: {w}");
    }
    if let Some(w) = cfg.threads.and_then(set_threads) {
        eprintln!("convtrain: warning: {w}");
    }
    let _ceiling = if device.is_cuda() { None } else { MemoryCeiling::install() };
    let mut setup = setup_data(&cfg, split_file.as_deref(), true, req.split == "test")?;
    if let Some(w) = setup.keep_on(device)? {
        eprintln!("convtrain: warning: {w}");
    }
    let model = build_model(&cfg, device)?;
    let mc = &model.config;
    model.load_checkpoint(&ck)?;
    // The whole split: a run's limit_val_batches only shortens its per-epoch validation.
    let what = format!("evaluating with batches of {} images", cfg.eval_batch_size);
    let result = catch_torch(&what, "Lower --batch-size.", || {
        evaluate(&model, &setup, cfg.eval_batch_size, None, device, cfg.precision)
    })?;
    let report = EvaluateReport {
        checkpoint: ck_path.display().to_string(),
        arch: mc.arch.clone(),
        checkered: mc.checkered,
        dataset: cfg.dataset.clone(),
        split: req.split.clone(),
        epoch: ck.metadata.get("epoch").and_then(|e| e.parse().ok()),
        result,
    };
    let json = to_json_pretty(&report, "the evaluation report")?;
    println!("{json}");
    let stem = ck_path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    match &req.out {
        // An output asked for that cannot be written is an error; the default one beside the checkpoint
        // (which may be read-only) only a warning.
        Some(out) => checkpoint::write_atomic(out, json.as_bytes())
            .map_err(|e| input_err!("--out {}: cannot write the result ({e}).", out.display()))?,
        None => {
            let suffix = if mc.checkered { "-checkered" } else { "" };
            let out = ck_path.with_file_name(format!("eval-{stem}{suffix}-{}.json", req.split));
            if let Err(e) = checkpoint::write_atomic(&out, json.as_bytes()) {
                eprintln!("convtrain: warning: could not write {}: {e}", out.display());
            }
        }
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
