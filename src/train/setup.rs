//! Data for a run: sources, the train/validation split (saved in the run directory so a resumed run
//! reuses it — the SWRN original re-draws it on resume, swrn.md §7 pitfall 4), and the train and eval
//! pipelines.
use crate::checkpoint::write_atomic;
use crate::config::TrainConfig;
use crate::data::{self, AugmentConfig, DatasetInfo, FolderTransform, Pipeline, Source};
use crate::error::{is_out_of_memory, to_json, Error, Result};
use crate::input_err;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tch::Device;

/// Everything the engine needs from the data side.
pub struct DataSetup {
    pub info: DatasetInfo,
    /// Model input geometry after `resize` / `gray_to_rgb`.
    pub channels: i64,
    pub image_size: i64,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub train_source: Arc<dyn Source>,
    pub train_indices: Vec<i64>,
    /// Validation: held-out training images, or the test set when `val_split` is 0 (or asked for).
    pub eval_source: Arc<dyn Source>,
    pub eval_indices: Vec<i64>,
    pub train_pipeline: Arc<Pipeline>,
    pub eval_pipeline: Arc<Pipeline>,
    /// The validation split (when `val_split` > 0), for [`save_split`].
    pub split: Option<SplitFile>,
}

impl DataSetup {
    /// Moves the in-memory datasets (train and evaluation, once when they are the same) onto `device`
    /// for the whole run, so that batches are gathered and augmented there and nothing is copied from
    /// the host per batch (on the CPU the copies share the host's tensors). A dataset that does not fit in the
    /// device's memory stays on the host: the returned warning says so.
    pub fn keep_on(&mut self, device: Device) -> Result<Option<String>> {
        let shared = Arc::ptr_eq(&self.train_source, &self.eval_source);
        let mut stayed = Vec::new();
        // `None` from `resident_on`: a source that decodes on the host (nothing to move, no warning).
        let mut move_one = |source: &mut Arc<dyn Source>, what: &'static str| -> Result<()> {
            match source.resident_on(device) {
                Ok(Some(moved)) => *source = moved,
                Ok(None) => {}
                Err(Error::Torch(e)) if is_out_of_memory(&e.to_string()) => stayed.push(what),
                Err(e) => return Err(e),
            }
            Ok(())
        };
        move_one(&mut self.train_source, "training")?;
        if shared {
            self.eval_source = self.train_source.clone();
        } else {
            move_one(&mut self.eval_source, "evaluation")?;
        }
        Ok((!stayed.is_empty()).then(|| {
            format!(
                "the {} images do not fit in the memory of {device:?}; they stay on the host and each batch is copied \
                 over as it is needed",
                stayed.join(" and ")
            )
        }))
    }
}

/// The saved validation split.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SplitFile {
    seed: u64,
    val_fraction: f64,
    train_size: usize,
    val_indices: Vec<i64>,
}

/// Channels and image side the model sees.
pub fn input_geometry(cfg: &TrainConfig, info: &DatasetInfo) -> (i64, i64) {
    let channels = if cfg.gray_to_rgb { 3 } else { info.channels };
    (channels, cfg.resize.unwrap_or(info.image_size))
}

/// Writes the split of a new run.
pub fn save_split(path: &Path, split: &SplitFile) -> Result<()> {
    write_atomic(path, to_json(split, "the validation split")?.as_bytes())
}

/// Opens the dataset and decides the split: read from `split_file` when `reuse_split` (resume,
/// evaluate), drawn from the seed otherwise (the caller saves it with [`save_split`]). `eval_on_test`
/// evaluates on the test set.
pub fn setup_data(
    cfg: &TrainConfig,
    split_file: Option<&Path>,
    reuse_split: bool,
    eval_on_test: bool,
) -> Result<DataSetup> {
    let dir = cfg.data_dir();
    if cfg.download {
        data::download(&cfg.dataset, &dir)?;
    }
    let info = data::dataset_info(&cfg.dataset, &dir)?;
    let mean = cfg.mean.clone().unwrap_or_else(|| info.mean.clone());
    let std = cfg.std.clone().unwrap_or_else(|| info.std.clone());
    let (channels, image_size) = input_geometry(cfg, &info);
    for (flag, v) in [("--mean", &mean), ("--std", &std)] {
        if v.len() as i64 != channels && v.len() != 1 {
            return Err(input_err!(
                "{flag}: {} has {} channels, but {} values were given.",
                info.name,
                channels,
                v.len()
            ));
        }
    }
    // Without normalisation the pipeline sees the raw [0,1] pixels (vgg_features.md §3.5).
    let (mean, std) = if cfg.normalize_data { (mean, std) } else { (vec![0.0], vec![1.0]) };
    let aug = AugmentConfig {
        train_ops: cfg.augment.clone(),
        cutout: cfg.cutout,
        resize: cfg.resize,
        gray_to_rgb: cfg.gray_to_rgb,
        mean: mean.clone(),
        std: std.clone(),
    };
    for op in data::augment::parse_ops(&cfg.augment)? {
        if let data::Op::Crop { pad, .. } = op {
            if pad > image_size {
                return Err(input_err!(
                    "--augment crop:{pad}: the padding must be at most the image side ({image_size}); the papers pad 4 \
                     pixels of 32."
                ));
            }
        }
    }
    let train_pipeline = Arc::new(Pipeline::new(&aug, info.channels, true)?);
    let eval_pipeline = Arc::new(Pipeline::new(&aug, info.channels, false)?);
    let folder = |train| FolderTransform::from_augment(&aug, info.image_size, train);
    let train_source = data::open(&cfg.dataset, &dir, true, &folder(true)?)?;
    let n = train_source.len();

    let split = if cfg.val_split <= 0.0 {
        None
    } else if let Some(p) = split_file.filter(|p| reuse_split && p.is_file()) {
        let text = std::fs::read_to_string(p)
            .map_err(|e| input_err!("{}: cannot read the saved split ({e}).", p.display()))?;
        let s: SplitFile =
            serde_json::from_str(&text).map_err(|e| input_err!("{}: corrupt split file ({e}).", p.display()))?;
        if s.train_size != n || s.val_indices.iter().any(|&i| i < 0 || i as usize >= n) {
            return Err(input_err!(
                "{}: the saved split is for a training set of {} images, but {} has {n}; the dataset changed since the run started.",
                p.display(),
                s.train_size,
                dir.display()
            ));
        }
        Some(s)
    } else {
        let (_, v) = data::split_indices(n, cfg.val_split, cfg.seed);
        Some(SplitFile { seed: cfg.seed, val_fraction: cfg.val_split, train_size: n, val_indices: v })
    };
    let (train_indices, val_indices) = match &split {
        None => ((0..n as i64).collect::<Vec<i64>>(), Vec::new()),
        Some(s) => {
            let mut held = vec![false; n];
            s.val_indices.iter().for_each(|&i| held[i as usize] = true);
            ((0..n as i64).filter(|&i| !held[i as usize]).collect(), s.val_indices.clone())
        }
    };
    if train_indices.is_empty() || (cfg.val_split > 0.0 && val_indices.is_empty()) {
        return Err(input_err!(
            "--val-split {}: splitting the {n} training images of {} leaves {} for training and {} for validation; both need at least one.",
            cfg.val_split,
            dir.display(),
            train_indices.len(),
            val_indices.len()
        ));
    }
    let (eval_source, eval_indices) = if eval_on_test || cfg.val_split <= 0.0 {
        let test = data::open(&cfg.dataset, &dir, false, &folder(false)?)?;
        let idx = (0..test.len() as i64).collect();
        (test, idx)
    } else if info.name == "imagefolder" {
        // Held-out folder images are decoded with the eval transform, not the training crop.
        (data::open(&cfg.dataset, &dir, true, &folder(false)?)?, val_indices)
    } else {
        (train_source.clone(), val_indices)
    };
    if !eval_on_test && cfg.val_split > 0.0 {
        // Validation does not read the test split, but it is opened and checked all the same: a damaged
        // test file must stop the run before it starts, not `evaluate` after 200 epochs.
        data::open(&cfg.dataset, &dir, false, &folder(false)?)?;
    }
    Ok(DataSetup {
        info,
        channels,
        image_size,
        mean,
        std,
        train_source,
        train_indices,
        eval_source,
        eval_indices,
        train_pipeline,
        eval_pipeline,
        split,
    })
}
