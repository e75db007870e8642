//! The training configuration: one flat, serde-serialisable struct. A recipe file (`--config FILE.json`)
//! sets any subset of its keys; command-line flags override the file; everything else takes the
//! architecture's recipe ([`Arch::defaults`](crate::models::Arch)) and then the defaults below (the
//! SWRN repository's `main.py` defaults where a paper default is needed). The model families' own
//! knobs are carried, unnamed, in `model_options` (see `models::options`).
use crate::error::{did_you_mean, to_json_value, Error, IoContext, Result};
use crate::input_err;
use crate::models::{self, ModelConfig};
use crate::precision::Precision;
use crate::recipes::{self, RecipeSource, RECIPE_KEY};
use crate::train::schedule::Schedule;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TrainConfig {
    // --- model ---
    pub arch: String,
    pub depth: Option<i64>,
    pub width: Option<i64>,
    pub checkered: bool,
    /// The model families' options (`bank_size`, `sampler`, ...), flat among the other keys.
    #[serde(flatten)]
    pub model_options: serde_json::Map<String, serde_json::Value>,
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
    /// Normalise with `mean`/`std`; `false` feeds the raw [0,1] pixels (mean 0, std 1), the VGG sweep's
    /// default, whose `--normalize-data` turns its per-channel statistics on (vgg_features.md §3.5).
    pub normalize_data: bool,
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
    /// Mini-batches per optimizer step.
    pub accum_steps: usize,
    /// Split every mini-batch into micro-batches of at most this many images whose gradients add up to
    /// the mini-batch's (one optimizer step and one lr value per mini-batch, as without it). The sum
    /// equals the whole-batch gradient up to float rounding, except that BatchNorm's batch statistics
    /// (and dropout masks) are drawn per micro-batch. On CUDA a step that runs out of memory halves
    /// the micro-batch and retries by itself.
    pub micro_batch: Option<usize>,
    /// Train on at most this many mini-batches per epoch (Lightning's `limit_train_batches`): the
    /// first N of the epoch's shuffled order; the schedule counts an epoch as those N.
    pub limit_train_batches: Option<usize>,
    /// Validate on at most this many batches of the validation split per epoch.
    pub limit_val_batches: Option<usize>,
    /// Score the best and the last checkpoints on the test split when training finishes (`test.json`);
    /// `None`: when validation is held out of the training set (`val_split` > 0). With `val_split` 0 the
    /// validation scores already are the test set's, as in the originals that select on it.
    pub test_at_end: Option<bool>,
    // --- run ---
    pub seed: u64,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    pub threads: Option<usize>,
    /// Arithmetic of the forward passes (`fp32`, `bf16`, `fp16`; src/precision.rs).
    pub precision: Precision,
    /// Images and 4-D parameters in channels-last memory order (`Model::use_channels_last`).
    pub channels_last: bool,
    pub job_id: Option<String>,
    pub runs_dir: PathBuf,
    /// Optimizer steps between progress lines when stdout is not a terminal.
    pub log_interval: usize,
    /// Also write `last.safetensors` every this many mini-batches inside an epoch (0: only at epoch
    /// ends), so a killed run loses at most that much work on long epochs.
    pub checkpoint_interval: usize,
    /// Also write `last.safetensors` inside an epoch, at the next optimizer step, once this many
    /// minutes have passed since the run's last checkpoint (0: never), so that a run preempted without
    /// warning in a long (first) epoch loses at most that much. Changes no result.
    pub checkpoint_minutes: f64,
    /// Fetch a missing dataset that has a public URL (never implicit).
    pub download: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            arch: "wrn".into(),
            depth: None,
            width: None,
            checkered: false,
            model_options: serde_json::Map::new(),
            dataset: "cifar10".into(),
            data_dir: None,
            augment: vec!["flip".into(), "crop:4".into()],
            cutout: 0,
            resize: None,
            gray_to_rgb: false,
            mean: None,
            std: None,
            normalize_data: true,
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
            micro_batch: None,
            limit_train_batches: None,
            limit_val_batches: None,
            test_at_end: None,
            seed: 0,
            device: "auto".into(),
            threads: None,
            precision: Precision::Fp32,
            channels_last: false,
            job_id: None,
            runs_dir: "runs".into(),
            log_interval: 50,
            checkpoint_interval: 0,
            checkpoint_minutes: 15.0,
            download: false,
        }
    }
}

/// Keys that may differ between a run's saved configuration and a `--resume` invocation.
pub const RESUMABLE_OVERRIDES: &[&str] = &[
    "epochs",
    "device",
    "threads",
    "data_dir",
    "log_interval",
    "checkpoint_interval",
    "checkpoint_minutes",
    "eval_batch_size",
    "download",
    "test_at_end",
];

/// Upper bounds of the size-like settings: far above any paper recipe, low enough that a typo
/// (`--width 100000`) is an error naming the flag rather than an allocation of terabytes. What fits
/// in memory below them is checked when the model is built and when a batch is trained.
pub const MAX_DEPTH: i64 = 2000;
pub const MAX_WIDTH: i64 = 100;
pub const MAX_BATCH: usize = 1 << 16;
pub const MAX_EPOCHS: usize = 1_000_000;
pub const MAX_IMAGE_SIDE: i64 = 1024;

/// Where datasets live when no `data_dir` is given: `$CONVTRAIN_DATA` if set, else `data/` in the
/// current directory when it holds `dataset`, else the `data/` of the source tree convtrain was built
/// from (which ships MNIST), so a recipe runs from any directory.
pub fn data_root(dataset: &str) -> PathBuf {
    match std::env::var_os("CONVTRAIN_DATA").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None if Path::new("data").join(dataset).is_dir() => PathBuf::from("data"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("data"),
    }
}

/// A setting's value as written on the command line (`--set key=value`, sweep axes): JSON where it
/// parses as JSON (`0.1`, `true`, `[60,120]`, `null`), the text itself otherwise.
pub fn setting_value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

/// A setting's value as tables and messages show it: a string without its quotes, anything else as JSON.
pub fn show_value(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// Parses `--set key=value` into a known key (dashes read as underscores) and its value; an unknown
/// key names the nearest known one.
pub fn parse_setting(arg: &str) -> Result<(String, serde_json::Value)> {
    let (key, value) = arg.split_once('=').ok_or_else(|| {
        input_err!("--set {arg}: expected key=value (e.g. --set lr=0.05 or --set milestones=[30,60]).")
    })?;
    let key = key.trim().replace('-', "_");
    let known = TrainConfig::known_keys()?;
    if !known.contains(&key) {
        return Err(input_err!(
            "--set {arg}: '{key}' is not a setting{}. Known settings: {}.",
            did_you_mean(&key, known.iter().map(String::as_str)),
            known.join(", ")
        ));
    }
    Ok((key, setting_value(value.trim())))
}

/// Parses JSON text as convtrain reads every JSON file: a leading UTF-8 byte-order mark is skipped,
/// and a key given twice in one object is an error naming it (instead of the last one winning).
pub fn parse_json(text: &str) -> std::result::Result<serde_json::Value, serde_json::Error> {
    use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
    /// A JSON value whose objects are checked for repeated keys.
    struct Unique;
    impl<'de> DeserializeSeed<'de> for Unique {
        type Value = serde_json::Value;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Unique {
        type Value = serde_json::Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> std::result::Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_i64<E>(self, v: i64) -> std::result::Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_u64<E>(self, v: u64) -> std::result::Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_f64<E>(self, v: f64) -> std::result::Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
            Ok(serde_json::Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
            let mut v = Vec::new();
            while let Some(x) = seq.next_element_seed(Unique)? {
                v.push(x);
            }
            Ok(serde_json::Value::Array(v))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
            let mut m = serde_json::Map::new();
            while let Some(k) = map.next_key::<String>()? {
                let v = map.next_value_seed(Unique)?;
                if m.insert(k.clone(), v).is_some() {
                    return Err(A::Error::custom(format!("the key '{k}' is given twice")));
                }
            }
            Ok(serde_json::Value::Object(m))
        }
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Unique.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

impl TrainConfig {
    /// Merges `overrides` (a JSON object of flags that were given) over `base` (a JSON object from a
    /// config file, or empty) over the chosen architecture's recipe over the defaults. Unknown keys and
    /// wrong types are errors naming the key.
    pub fn resolve(base: serde_json::Value, overrides: serde_json::Value, source: &str) -> Result<TrainConfig> {
        let mut merged = match base {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => serde_json::Map::new(),
            _ => return Err(input_err!("{source}: a config file must hold one JSON object of settings.")),
        };
        let no_flags = overrides.as_object().is_none_or(|o| o.is_empty());
        if let serde_json::Value::Object(o) = overrides {
            merged.extend(o);
        }
        merged.remove(RECIPE_KEY);
        let known = Self::known_keys()?;
        if let Some(k) = merged.keys().find(|k| !known.contains(k)) {
            return Err(input_err!(
                "{source}: setting '{k}': unknown setting{}. Known settings: {}.",
                did_you_mean(k, known.iter().map(String::as_str)),
                known.join(", ")
            ));
        }
        let arch = merged.get("arch").and_then(|a| a.as_str()).map(str::to_string);
        let dataset = merged.get("dataset").and_then(|d| d.as_str()).map(str::to_string);
        let defaults = Self::default();
        if let Ok(arch) = models::find(arch.as_deref().unwrap_or(&defaults.arch)) {
            if let serde_json::Value::Object(recipe) = (arch.defaults)(dataset.as_deref().unwrap_or(&defaults.dataset))
            {
                for (k, v) in recipe {
                    merged.entry(k).or_insert(v);
                }
            }
        }
        let cfg: TrainConfig = serde_path_to_error::deserialize(serde_json::Value::Object(merged))
            .map_err(|e| input_err!("{source}: setting '{}': {}.", e.path(), e.inner()))?;
        // A value out of range in a file alone (no flags on top) names the file too.
        let from_file = |e: Error| match e {
            Error::Input(m) if no_flags => input_err!("{source}: {m}"),
            e => e,
        };
        models::validate_options(&cfg.model_options, source).map_err(from_file)?;
        cfg.validate().map_err(from_file)?;
        Ok(cfg)
    }

    /// Every key a configuration may hold: the engine's settings and the families' options.
    pub fn known_keys() -> Result<Vec<String>> {
        let mut keys = match to_json_value(&Self::default(), "the default configuration")? {
            serde_json::Value::Object(m) => m.keys().cloned().collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        keys.extend(models::option_keys());
        Ok(keys)
    }

    /// The settings `--config arg` names and a label for messages: a bundled recipe by name, a file, or a
    /// run's `config.json` (whose `config` object is the run's resolved configuration, taken as it is).
    pub fn load_recipe(arg: &Path) -> Result<(serde_json::Value, String)> {
        let (mut v, source) = match recipes::locate(arg)? {
            RecipeSource::Bundled(name) => {
                (recipes::bundled(name).unwrap_or(Ok(serde_json::Value::Null))?, format!("recipe {name}"))
            }
            RecipeSource::File(path) => (Self::read_file(path)?, path.display().to_string()),
        };
        if let Some(cfg) = v.get_mut("config").filter(|c| c.is_object()).map(serde_json::Value::take) {
            v = cfg;
        }
        Ok((v, source))
    }

    /// Reads a config file (JSON object).
    pub fn read_file(path: &Path) -> Result<serde_json::Value> {
        let bytes = std::fs::read(path).at(path)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            input_err!("{}: not UTF-8 text ({e}); a config file holds one JSON object.", path.display())
        })?;
        parse_json(&text).map_err(|e| {
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
        let bounded = [
            ("epochs", self.epochs, MAX_EPOCHS),
            ("batch-size", self.batch_size, MAX_BATCH),
            ("eval-batch-size", self.eval_batch_size, MAX_BATCH),
            ("accum-steps", self.accum_steps, MAX_BATCH),
        ];
        for (name, v, max) in bounded {
            if v > max {
                return Err(input_err!("--{name}: at most {max}, got {v}."));
            }
        }
        for (name, v, max) in [("depth", self.depth, MAX_DEPTH), ("width", self.width, MAX_WIDTH)] {
            if let Some(v) = v.filter(|&v| v > max) {
                return Err(input_err!(
                    "--{name}: at most {max}, got {v} (far beyond the papers' networks: WRN-28-10, DenseNet-BC-190 \
                     with growth rate 40, ResNet-152)."
                ));
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
        if !(0..=MAX_IMAGE_SIDE).contains(&self.cutout) {
            return Err(input_err!(
                "--cutout: the hole length must be 0 (off) or positive, at most {MAX_IMAGE_SIDE}, got {}.",
                self.cutout
            ));
        }
        if let Some(r) = self.resize.filter(|&r| !(1..=MAX_IMAGE_SIDE).contains(&r)) {
            return Err(input_err!("--resize: the image side must be between 1 and {MAX_IMAGE_SIDE}, got {r}."));
        }
        if !(self.checkpoint_minutes.is_finite() && self.checkpoint_minutes >= 0.0) {
            return Err(input_err!(
                "checkpoint_minutes: must be a finite number of minutes >= 0 (0: off), got {}.",
                self.checkpoint_minutes
            ));
        }
        let optional_positive = [
            ("threads", self.threads),
            ("micro-batch", self.micro_batch),
            ("limit-train-batches", self.limit_train_batches),
            ("limit-val-batches", self.limit_val_batches),
        ];
        for (name, v) in optional_positive {
            if v == Some(0) {
                return Err(input_err!("--{name}: must be at least 1 (or left out), got 0."));
            }
        }
        if !(0.0..1.0).contains(&self.val_split) {
            return Err(input_err!("--val-split: must be in [0, 1), got {}.", self.val_split));
        }
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(input_err!("--lr: must be a finite non-negative number, got {}.", self.lr));
        }
        if !(self.lr_min.is_finite() && (0.0..=self.lr).contains(&self.lr_min)) {
            return Err(input_err!(
                "--lr-min: the floor of the schedule must be between 0 and --lr ({}), got {}.",
                self.lr,
                self.lr_min
            ));
        }
        if let Some(j) = &self.job_id {
            if j.is_empty() || j.contains('/') || j.starts_with('.') {
                return Err(input_err!(
                    "--job-id: '{j}' must be a non-empty name without '/' that does not start with '.'."
                ));
            }
        }
        self.schedule()?;
        Ok(())
    }

    /// The dataset directory: `data_dir`, else `<data root>/<dataset>` (see [`data_root`]).
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| data_root(&self.dataset).join(&self.dataset))
    }

    /// Where the settings neither the recipe file nor a flag gave come from, for the start-up log.
    pub fn defaults_source(&self) -> String {
        match models::find(&self.arch) {
            Ok(a) => format!("defaults for {} from {}", a.name, a.recipe),
            Err(_) => format!("defaults from {}", models::ENGINE_RECIPE),
        }
    }

    /// Whether the run scores its checkpoints on the test split at the end (see `test_at_end`).
    pub fn tests_at_end(&self) -> bool {
        self.test_at_end.unwrap_or(self.val_split > 0.0)
    }

    /// The learning-rate schedule these settings describe.
    pub fn schedule(&self) -> Result<Schedule> {
        Schedule::new(&self.schedule, &self.milestones, &self.gammas, self.sgdr_t0, self.sgdr_t_mult, self.lr_min)
    }

    /// The model part, completed with what the dataset says.
    pub fn model_config(&self, num_classes: i64, in_channels: i64, image_size: i64) -> ModelConfig {
        ModelConfig {
            arch: self.arch.clone(),
            depth: self.depth,
            width: self.width,
            checkered: self.checkered,
            num_classes,
            in_channels,
            image_size,
            options: self.model_options.clone(),
        }
    }

    /// Keys whose values differ from `other` (used to refuse changing a run on resume); an option
    /// absent on one side and `null` on the other is no difference.
    pub fn differing_keys(&self, other: &TrainConfig) -> Result<Vec<String>> {
        let a = to_json_value(self, "the configuration")?;
        let b = to_json_value(other, "the configuration")?;
        let null = serde_json::Value::Null;
        Ok(match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                let mut keys: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
                keys.sort();
                keys.dedup();
                keys.into_iter().filter(|k| a.get(k).unwrap_or(&null) != b.get(k).unwrap_or(&null)).collect()
            }
            _ => Vec::new(),
        })
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
    fn configs_written_before_family_options_still_resolve() {
        // A run's `config` object as convtrain wrote it before the options map: `bank_size` and
        // `sampler` were engine fields, always present.
        let old = json!({"arch": "swrn", "depth": 16, "width": 1, "bank_size": 3, "checkered": false,
                         "sampler": "naive", "dataset": "cifar10", "epochs": 4});
        let c = TrainConfig::resolve(old, json!({}), "old run").unwrap();
        assert_eq!(c.model_options["bank_size"], json!(3));
        let mc = c.model_config(10, 3, 32);
        let back: ModelConfig = serde_json::from_str(&serde_json::to_string(&mc).unwrap()).unwrap();
        assert_eq!(back, mc);
        let old_model = r#"{"arch":"swrn","depth":16,"width":1,"bank_size":3,"checkered":false,
                            "num_classes":10,"in_channels":3,"image_size":32,"sampler":null}"#;
        let m: ModelConfig = serde_json::from_str(old_model).unwrap();
        assert_eq!(m.options["bank_size"], json!(3));
        let e = TrainConfig::resolve(json!({"sampler": "diagonal", "arch": "resnet18"}), json!({}), "x").unwrap_err();
        assert!(e.to_string().contains("--sampler"), "{e}");
        let e = TrainConfig::resolve(json!({"bank_size": "six"}), json!({}), "r.json").unwrap_err().to_string();
        assert!(e.contains("r.json") && e.contains("'bank_size'"), "{e}");
    }

    #[test]
    fn repeated_keys_are_errors_and_a_byte_order_mark_is_skipped() {
        let e = parse_json(r#"{"lr": 0.1, "epochs": 3, "lr": 0.5}"#).unwrap_err().to_string();
        assert!(e.contains("'lr'") && e.contains("twice") && e.contains("line 1"), "{e}");
        assert!(parse_json(r#"{"a": {"b": 1, "b": 2}}"#).is_err());
        assert_eq!(parse_json("\u{feff}{\"lr\": 0.1}").unwrap(), json!({"lr": 0.1}));
        assert_eq!(parse_json(r#"[1, {"x": null}, "s", true]"#).unwrap(), json!([1, {"x": null}, "s", true]));
        assert!(parse_json("{} x").is_err());
    }

    #[test]
    fn sizes_beyond_their_bounds_name_the_flag() {
        for (cfg, flag) in [
            (json!({"width": 100000}), "--width"),
            (json!({"depth": 6000004}), "--depth"),
            (json!({"batch_size": 10000000}), "--batch-size"),
            (json!({"resize": 100000}), "--resize"),
            (json!({"lr": 0.1, "lr_min": 0.2}), "--lr-min"),
        ] {
            let e = TrainConfig::resolve(cfg.clone(), json!({}), "x").unwrap_err().to_string();
            assert!(e.contains(flag), "{cfg}: {e}");
        }
    }

    #[test]
    fn unknown_keys_suggest_the_nearest_and_descriptions_are_ignored() {
        let e = TrainConfig::resolve(json!({"batchsize": 8}), json!({}), "r.json").unwrap_err().to_string();
        assert!(e.contains("did you mean `batch_size`?"), "{e}");
        let c = TrainConfig::resolve(json!({"recipe": {"paper": "x"}, "lr": 0.2}), json!({}), "r.json").unwrap();
        assert_eq!(c.lr, 0.2);
        assert_eq!(parse_setting("lr=0.05").unwrap(), ("lr".to_string(), json!(0.05)));
        assert_eq!(parse_setting("milestones=[3,6]").unwrap().1, json!([3, 6]));
        assert_eq!(parse_setting("schedule=cosine").unwrap().1, json!("cosine"));
        let e = parse_setting("wieght_decay=0").unwrap_err().to_string();
        assert!(e.contains("did you mean `weight_decay`?"), "{e}");
        assert!(parse_setting("lr").is_err());
    }

    #[test]
    fn a_runs_config_document_is_read_as_its_configuration() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(&p, r#"{"config": {"lr": 0.3, "epochs": 2}, "convtrain_version": "0.1.0"}"#).unwrap();
        let (v, _) = TrainConfig::load_recipe(&p).unwrap();
        assert_eq!(v, json!({"lr": 0.3, "epochs": 2}));
    }

    #[test]
    fn each_family_starts_from_its_papers_recipe() {
        let tiny = TrainConfig::resolve(json!({"arch": "tiny-cnn", "dataset": "mnist"}), json!({}), "x").unwrap();
        assert_eq!((tiny.epochs, tiny.batch_size, tiny.weight_decay), (100, 16, 0.0));
        assert_eq!((tiny.milestones.clone(), tiny.gammas.clone()), (vec![50, 75], vec![0.1, 0.1]));
        assert!(tiny.defaults_source().contains("demo_mnist.py"), "{}", tiny.defaults_source());
        let swrn = TrainConfig::resolve(json!({"arch": "swrn"}), json!({}), "x").unwrap();
        assert_eq!((swrn.epochs, swrn.milestones.clone(), swrn.weight_decay), (200, vec![60, 120, 160], 5e-4));
        assert!(swrn.defaults_source().contains("swrn.md"));
        // The checkered recipes in configs/ are what choosing the architecture alone gives.
        for name in [
            "checkered_tiny-cnn_mnist",
            "checkered_ccnn-toy_mnist",
            "checkered_resnet18_cifar100",
            "checkered_vgg11-bn_cifar100",
        ] {
            let file = crate::recipes::bundled(name).unwrap().unwrap();
            let from_file = TrainConfig::resolve(file.clone(), json!({}), name).unwrap();
            let keys = json!({"arch": file["arch"], "dataset": file["dataset"], "checkered": file["checkered"]});
            let from_arch = TrainConfig::resolve(keys, json!({}), name).unwrap();
            // `no_decay` is unset in the files (the architecture's: none) and `[]` in the recipe: the same.
            let differ: Vec<String> =
                from_arch.differing_keys(&from_file).unwrap().into_iter().filter(|k| k != "no_decay").collect();
            assert!(differ.is_empty(), "{name}: {differ:?}");
        }
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(TrainConfig::resolve(json!({"val_split": 1.5}), json!({}), "x").is_err());
        assert!(TrainConfig::resolve(json!({"milestones": [1, 2], "gammas": [0.1, 0.2, 0.3]}), json!({}), "x").is_err());
        assert!(TrainConfig::resolve(json!({"job_id": "../x"}), json!({}), "x").is_err());
    }
}
