//! The training configuration: one flat, serde-serialisable struct. A recipe file (`--config FILE.json`)
//! sets any subset of its keys; command-line flags override the file; everything else takes the
//! defaults below (the SWRN repository's `main.py` defaults where a paper default is needed).
use crate::error::{IoContext, Result};
use crate::input_err;
use crate::models::ModelConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    // --- model ---
    pub arch: String,
    pub depth: Option<i64>,
    pub width: Option<i64>,
    pub bank_size: Option<i64>,
    pub checkered: bool,
    /// Checkered sampler: naive (default), lattice or random (drawn from torch's RNG, which is seeded
    /// from `seed` before every mini-batch).
    pub sampler: String,
    // --- data ---
    pub dataset: String,
    /// Dataset directory; default `data/<dataset>`.
    pub data_dir: Option<PathBuf>,
    /// Training augmentations in order, before normalisation: `flip`, `crop:P[:reflect]`, `rotate:D`, `rrc`.
    pub augment: Vec<String>,
    /// Cutout hole length after normalisation (0 = off).
    pub cutout: i64,
    /// Resize every image to this side (train and eval), e.g. 32 for MNIST in the VGG sweep.
    pub resize: Option<i64>,
    /// Replicate a grey channel three times (train and eval).
    pub gray_to_rgb: bool,
    /// Per-channel normalisation; the dataset's statistics when absent.
    pub mean: Option<Vec<f64>>,
    pub std: Option<Vec<f64>>,
    /// Fraction of the training set held out for validation (0 = validate on the test set).
    pub val_split: f64,
    // --- optimisation ---
    pub epochs: usize,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub dampening: f64,
    pub weight_decay: f64,
    /// Parameters whose name contains one of these substrings get no weight decay; `None` = the
    /// architecture's default (SWRN: `coefficients`).
    pub no_decay: Option<Vec<String>>,
    /// Every 1-D parameter (biases, BN γ/β, DiracNet α/β) gets no weight decay.
    pub no_decay_1d: bool,
    /// `multistep`, `sgdr`, `cosine` or `constant`.
    pub schedule: String,
    /// Multi-step: 0-based epochs at whose start the lr is multiplied by the matching gamma.
    pub milestones: Vec<usize>,
    pub gammas: Vec<f64>,
    /// Zero the momentum buffers at each milestone (DiracNet re-creates its optimizer there).
    pub reset_momentum: bool,
    /// SGDR first cycle length (epochs), cycle multiplier, and the floor of cosine schedules.
    pub sgdr_t0: usize,
    pub sgdr_t_mult: usize,
    pub lr_min: f64,
    /// Micro-batches per optimizer step.
    pub accum_steps: usize,
    // --- run ---
    pub seed: u64,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    pub threads: Option<usize>,
    pub job_id: Option<String>,
    pub runs_dir: PathBuf,
    /// Optimizer steps between progress lines when stdout is not a terminal.
    pub log_interval: usize,
    /// Also write `last.safetensors` every this many mini-batches inside an epoch (0: only at epoch
    /// ends), so a killed run loses at most that much work on long epochs.
    pub checkpoint_interval: usize,
    /// Fetch a missing dataset that has a public URL (never implicit).
    pub download: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            arch: "wrn".into(),
            depth: None,
            width: None,
            bank_size: None,
            checkered: false,
            sampler: "naive".into(),
            dataset: "cifar10".into(),
            data_dir: None,
            augment: vec!["flip".into(), "crop:4".into()],
            cutout: 0,
            resize: None,
            gray_to_rgb: false,
            mean: None,
            std: None,
            val_split: 0.1,
            epochs: 200,
            batch_size: 128,
            eval_batch_size: 256,
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            dampening: 0.0,
            weight_decay: 5e-4,
            no_decay: None,
            no_decay_1d: false,
            schedule: "multistep".into(),
            milestones: vec![60, 120, 160],
            gammas: vec![0.2, 0.2, 0.2],
            reset_momentum: false,
            sgdr_t0: 10,
            sgdr_t_mult: 2,
            lr_min: 0.0,
            accum_steps: 1,
            seed: 0,
            device: "auto".into(),
            threads: None,
            job_id: None,
            runs_dir: "runs".into(),
            log_interval: 50,
            checkpoint_interval: 0,
            download: false,
        }
    }
}

/// Keys that may differ between a run's saved configuration and a `--resume` invocation.
pub const RESUMABLE_OVERRIDES: &[&str] =
    &["epochs", "device", "threads", "log_interval", "eval_batch_size", "download"];

impl TrainConfig {
    /// Merges `overrides` (a JSON object of flags that were given) over `base` (a JSON object from a
    /// config file, or empty) over the defaults. Unknown keys and wrong types are errors naming the key.
    pub fn resolve(base: serde_json::Value, overrides: serde_json::Value, source: &str) -> Result<TrainConfig> {
        let mut merged = match base {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => serde_json::Map::new(),
            _ => return Err(input_err!("{source}: a config file must hold one JSON object of settings.")),
        };
        if let serde_json::Value::Object(o) = overrides {
            merged.extend(o);
        }
        let cfg: TrainConfig = serde_path_to_error::deserialize(serde_json::Value::Object(merged))
            .map_err(|e| input_err!("{source}: setting '{}': {}.", e.path(), e.inner()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads a config file (JSON object).
    pub fn read_file(path: &Path) -> Result<serde_json::Value> {
        let text = std::fs::read_to_string(path).at(path)?;
        serde_json::from_str(&text).map_err(|e| {
            input_err!("{}: not valid JSON ({e}); a config file holds one JSON object of settings.", path.display())
        })
    }

    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("epochs", self.epochs),
            ("batch-size", self.batch_size),
            ("eval-batch-size", self.eval_batch_size),
            ("accum-steps", self.accum_steps),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(input_err!("--{name}: must be at least 1, got 0."));
            }
        }
        if !(0.0..1.0).contains(&self.momentum) || !(0.0..=1.0).contains(&self.dampening) {
            return Err(input_err!(
                "--momentum must be in [0, 1) and --dampening in [0, 1], got {} and {}.",
                self.momentum,
                self.dampening
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(input_err!("--weight-decay: must be a finite non-negative number, got {}.", self.weight_decay));
        }
        if self.cutout < 0 {
            return Err(input_err!("--cutout: the hole length must be 0 (off) or positive, got {}.", self.cutout));
        }
        if let Some(r) = self.resize.filter(|&r| r < 1) {
            return Err(input_err!("--resize: the image side must be at least 1, got {r}."));
        }
        if self.threads == Some(0) {
            return Err(input_err!("--threads: must be at least 1, got 0."));
        }
        if !(0.0..1.0).contains(&self.val_split) {
            return Err(input_err!("--val-split: must be in [0, 1), got {}.", self.val_split));
        }
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(input_err!("--lr: must be a finite non-negative number, got {}.", self.lr));
        }
        if let Some(j) = &self.job_id {
            if j.is_empty() || j.contains('/') || j.starts_with('.') {
                return Err(input_err!(
                    "--job-id: '{j}' must be a non-empty name without '/' that does not start with '.'."
                ));
            }
        }
        crate::train::schedule::Schedule::from_config(self)?;
        crate::models::checkered::Sampler::parse(&self.sampler)?;
        Ok(())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| Path::new("data").join(&self.dataset))
    }

    /// The model part, completed with what the dataset says.
    pub fn model_config(&self, num_classes: i64, in_channels: i64, image_size: i64) -> ModelConfig {
        ModelConfig {
            arch: self.arch.clone(),
            depth: self.depth,
            width: self.width,
            bank_size: self.bank_size,
            checkered: self.checkered,
            num_classes,
            in_channels,
            image_size,
            sampler: Some(self.sampler.clone()),
        }
    }

    /// Keys whose values differ from `other` (used to refuse changing a run on resume).
    pub fn differing_keys(&self, other: &TrainConfig) -> Vec<String> {
        let a = serde_json::to_value(self).unwrap_or_default();
        let b = serde_json::to_value(other).unwrap_or_default();
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                a.iter().filter(|(k, v)| b.get(*k) != Some(v)).map(|(k, _)| k.clone()).collect()
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_override_file_and_file_overrides_defaults() {
        let c = TrainConfig::resolve(json!({"lr": 0.05, "epochs": 3}), json!({"epochs": 7}), "f.json").unwrap();
        assert_eq!(c.lr, 0.05);
        assert_eq!(c.epochs, 7);
        assert_eq!(c.batch_size, 128);
    }

    #[test]
    fn unknown_key_and_wrong_type_name_the_key() {
        let e = TrainConfig::resolve(json!({"learning_rate": 0.1}), json!({}), "r.json").unwrap_err().to_string();
        assert!(e.contains("r.json") && e.contains("learning_rate"), "{e}");
        let e = TrainConfig::resolve(json!({"epochs": "ten"}), json!({}), "r.json").unwrap_err().to_string();
        assert!(e.contains("'epochs'"), "{e}");
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(TrainConfig::resolve(json!({"val_split": 1.5}), json!({}), "x").is_err());
        assert!(TrainConfig::resolve(json!({"milestones": [1, 2], "gammas": [0.1, 0.2, 0.3]}), json!({}), "x").is_err());
        assert!(TrainConfig::resolve(json!({"job_id": "../x"}), json!({}), "x").is_err());
    }
}
