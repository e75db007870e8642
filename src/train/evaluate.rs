//! Evaluation: loss, top-1 and top-5 over a split, for the training loop and `convtrain evaluate`.
use super::checkpoint;
use super::engine::{read_run_config, RunDir};
use super::parse_device;
use super::setup::{setup_data, DataSetup};
use crate::config::TrainConfig;
use crate::data::BatchLoader;
use crate::error::Result;
use crate::input_err;
use crate::models::Model;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::{Device, Kind};

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct EvalResult {
    pub loss: f64,
    /// Percent.
    pub top1: f64,
    /// Percent (top-k with k = min(5, classes)).
    pub top5: f64,
    pub count: usize,
}

/// Evaluates `model` (BN in eval mode, no gradients) on the evaluation split of `setup`.
pub fn evaluate(model: &Model, setup: &DataSetup, batch_size: usize, device: Device) -> Result<EvalResult> {
    let indices = std::sync::Arc::new(setup.eval_indices.clone());
    let loader = BatchLoader::new(
        setup.eval_source.clone(),
        indices,
        batch_size,
        false,
        setup.eval_pipeline.clone(),
        0,
        0,
        0,
        device,
    );
    let k = model.config.num_classes.min(5);
    let (mut loss_sum, mut top1, mut top5, mut n) = (0.0, 0.0, 0.0, 0usize);
    tch::no_grad(|| -> Result<()> {
        for batch in loader {
            let batch = batch?;
            let logits = model.forward_t(&batch.images, false);
            let bs = batch.labels.size()[0] as usize;
            loss_sum += f64::try_from(logits.cross_entropy_for_logits(&batch.labels)).unwrap_or(f64::NAN) * bs as f64;
            let (_, idx) = logits.topk(k, -1, true, true);
            let hits = idx.eq_tensor(&batch.labels.unsqueeze(-1));
            top1 += f64::try_from(hits.narrow(1, 0, 1).sum(Kind::Float)).unwrap_or(0.0);
            top5 += f64::try_from(hits.sum(Kind::Float)).unwrap_or(0.0);
            n += bs;
        }
        Ok(())
    })?;
    let d = n.max(1) as f64;
    Ok(EvalResult { loss: loss_sum / d, top1: 100.0 * top1 / d, top5: 100.0 * top5 / d, count: n })
}

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
        (Some(r), _) => serde_json::to_value(read_run_config(r)?).unwrap_or_default(),
        (None, Some(s)) => serde_json::from_str(s).unwrap_or_else(|_| serde_json::json!({})),
        (None, None) => serde_json::json!({}),
    };
    if let (Some(mc), serde_json::Value::Object(m)) = (ck.model_config()?, &mut base) {
        m.insert("arch".into(), mc.arch.clone().into());
        m.insert("depth".into(), serde_json::to_value(mc.depth).unwrap_or_default());
        m.insert("width".into(), serde_json::to_value(mc.width).unwrap_or_default());
        m.insert("bank_size".into(), serde_json::to_value(mc.bank_size).unwrap_or_default());
        m.insert("checkered".into(), mc.checkered.into());
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
    ck.load_model_into(&model)?;
    let result = evaluate(&model, &setup, cfg.eval_batch_size, device)?;
    let report = EvaluateReport {
        checkpoint: ck_path.display().to_string(),
        arch: mc.arch.clone(),
        checkered: mc.checkered,
        dataset: cfg.dataset.clone(),
        split: req.split.clone(),
        result,
    };
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
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
