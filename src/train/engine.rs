//! The training loop: run directory, data, model, SGD with parameter groups, schedule, validation,
//! checkpoints and exact resume.
//!
//! Exactness: shuffling and augmentation draw from RNGs derived from (seed, epoch, batch) in the data
//! loader, and dropout from torch's RNG re-seeded from (seed, epoch, batch) before every mini-batch, so
//! batch b of epoch e is the same computation whether or not the process was restarted before it.
//! Checkpoints hold the weights, BN statistics, momentum buffers and the loop position.
use super::checkpoint::{self, MOMENTUM_PREFIX};
use super::evaluate::{evaluate, EvalResult};
use super::log::{CsvLog, EpochRow};
use super::optimizer::{param_groups, DecayExclusion, Sgd};
use super::progress::Progress;
use super::schedule::{Position, Schedule};
use super::setup::{input_geometry, save_split, setup_data, DataSetup};
use super::{derive_seed, parse_device};
use crate::config::{TrainConfig, RESUMABLE_OVERRIDES};
use crate::data::BatchLoader;
use crate::error::{Error, IoContext, Result};
use crate::input_err;
use crate::models::Model;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler: the loop finishes its step, checkpoints, and exits 130.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nconvtrain: interrupt received; finishing the current step and writing a checkpoint (Ctrl-C again to abort)");
    });
}

/// Files of a run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub dir: PathBuf,
}

impl RunDir {
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("log.csv")
    }
    pub fn last(&self) -> PathBuf {
        self.dir.join("last.safetensors")
    }
    pub fn best(&self) -> PathBuf {
        self.dir.join("best.safetensors")
    }
    pub fn split(&self) -> PathBuf {
        self.dir.join("split.json")
    }
    /// Files convtrain writes (what `--overwrite` removes; anything else is left alone).
    fn own_files(&self) -> Vec<PathBuf> {
        vec![self.config(), self.log(), self.last(), self.best(), self.split(), self.dir.join("eval-best-test.json")]
    }
}

/// The loop position and running sums, saved in `last.safetensors` for exact resume.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// 0-based epoch in progress (equal to the number of finished epochs when `batch` is 0).
    pub epoch: usize,
    /// Mini-batches of `epoch` already done.
    pub batch: usize,
    pub optimizer_steps: u64,
    pub best_val_top1: f64,
    pub best_epoch: usize,
    pub loss_sum: f64,
    pub correct: f64,
    pub seen: u64,
    pub train_seconds: f64,
}

/// How `train` was asked to start.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// A run directory to continue, or `auto` (continue `<runs_dir>/<job_id>` if it holds a run).
    pub resume: Option<PathBuf>,
    pub overwrite: bool,
    /// Weights (safetensors) to initialise the model from.
    pub init_from: Option<PathBuf>,
    /// The settings given as flags (a JSON object); on resume they override the run's configuration.
    pub flags: serde_json::Value,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub run_dir: PathBuf,
    pub best_val_top1: f64,
    pub best_epoch: usize,
    pub last_val: Option<EvalResult>,
}

fn utc_timestamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Reads the training configuration saved in a run directory.
pub fn read_run_config(run: &RunDir) -> Result<TrainConfig> {
    let path = run.config();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        input_err!(
            "{}: cannot read the run's configuration ({e}); is {} a convtrain run directory?",
            path.display(),
            run.dir.display()
        )
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| input_err!("{}: corrupt run configuration ({e}).", path.display()))?;
    TrainConfig::resolve(
        v.get("config").cloned().unwrap_or_default(),
        serde_json::Value::Null,
        &path.display().to_string(),
    )
}

/// Removes `.<name>.<pid>.tmp` files a killed process left behind (see `checkpoint::write_atomic`).
fn sweep_temp_files(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true)
}

/// Decides the run directory and whether this is a resume, and returns the effective configuration;
/// refuses a directory that already holds a run. Writes nothing.
fn plan_run(cfg: TrainConfig, opts: &StartOptions) -> Result<(RunDir, TrainConfig, bool)> {
    let auto = opts.resume.as_deref() == Some(Path::new("auto"));
    let resume_dir = match &opts.resume {
        Some(_) if auto => {
            let job = cfg
                .job_id
                .clone()
                .ok_or_else(|| input_err!("--resume auto: needs --job-id to know which run to continue."))?;
            let d = cfg.runs_dir.join(job);
            d.join("last.safetensors").is_file().then_some(d)
        }
        Some(d) => Some(d.clone()),
        None => None,
    };
    if let Some(dir) = resume_dir {
        let run = RunDir { dir };
        if !run.last().is_file() {
            return Err(input_err!(
                "--resume: {} holds no last.safetensors checkpoint; it is not a convtrain run directory (or the run never finished an epoch).",
                run.dir.display()
            ));
        }
        sweep_temp_files(&run.dir);
        let saved = read_run_config(&run)?;
        // The run's own configuration, with the flags given now on top (a recipe file is not re-read).
        let mut flags = opts.flags.clone();
        if let Some(d) = flags.get("data_dir").and_then(|d| d.as_str()).map(PathBuf::from) {
            flags["data_dir"] = std::path::absolute(&d).at(&d)?.display().to_string().into();
        }
        for k in ["job_id", "runs_dir"] {
            if let Some(m) = flags.as_object_mut() {
                m.remove(k);
            }
        }
        let source = run.config().display().to_string();
        let effective = TrainConfig::resolve(serde_json::to_value(&saved).unwrap_or_default(), flags, &source)?;
        // Flags may change only what does not change the computation.
        let changed: Vec<String> = saved
            .differing_keys(&effective)
            .into_iter()
            .filter(|k| !RESUMABLE_OVERRIDES.contains(&k.as_str()))
            .collect();
        if !changed.is_empty() {
            return Err(input_err!(
                "--resume {}: cannot change {} of an existing run (only {} may change on resume); start a new run instead.",
                run.dir.display(),
                changed.join(", "),
                RESUMABLE_OVERRIDES.join(", ")
            ));
        }
        return Ok((run, effective, true));
    }
    let job = cfg.job_id.clone().unwrap_or_else(|| format!("{}-{}-{}", cfg.arch, cfg.dataset, utc_timestamp()));
    let run = RunDir { dir: cfg.runs_dir.join(&job) };
    if run.dir.exists() && !dir_is_empty(&run.dir) && !opts.overwrite {
        return Err(input_err!(
            "{}: the run directory already holds files. Continue that run with --resume {} (or --resume auto --job-id {job}), \
             replace it with --overwrite, or choose another --job-id.",
            run.dir.display(),
            run.dir.display()
        ));
    }
    // The resolved configuration names the data by absolute path, so the run resumes from anywhere.
    let mut cfg = cfg;
    cfg.data_dir = Some(std::path::absolute(cfg.data_dir()).at(&cfg.data_dir())?);
    Ok((run, cfg, false))
}

/// Creates a new run's directory (clearing convtrain's files from it with `--overwrite`) and checks
/// that it is writable. Called once the model and data are known to be good, so a failed start leaves
/// nothing behind.
fn create_run_dir(run: &RunDir) -> Result<()> {
    for f in run.own_files() {
        if f.exists() {
            std::fs::remove_file(&f).at(&f)?;
        }
    }
    std::fs::create_dir_all(&run.dir).map_err(|e| {
        input_err!("{}: cannot create the run directory ({e}); choose a writable --runs-dir.", run.dir.display())
    })?;
    let probe = run.dir.join(".convtrain-write-test");
    std::fs::write(&probe, b"").map_err(|e| {
        input_err!("{}: the run directory is not writable ({e}); choose a writable --runs-dir.", run.dir.display())
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn write_config(run: &RunDir, cfg: &TrainConfig, model: &Model, device: Device, setup: &DataSetup) -> Result<()> {
    let doc = serde_json::json!({
        "config": cfg,
        "model": model.config,
        "convtrain_version": env!("CARGO_PKG_VERSION"),
        "libtorch_version": crate::LIBTORCH_VERSION,
        "device": format!("{device:?}"),
        "threads": tch::get_num_threads(),
        "seed": cfg.seed,
        "dataset": {
            "name": setup.info.name, "num_classes": setup.info.num_classes, "train_examples": setup.train_indices.len(),
            "val_examples": setup.eval_indices.len(), "val_from": if cfg.val_split > 0.0 { "train" } else { "test" },
            "mean": setup.mean, "std": setup.std,
        },
        "parameters": model.num_parameters(),
    });
    checkpoint::write_atomic(&run.config(), serde_json::to_string_pretty(&doc).unwrap_or_default().as_bytes())
}

/// The parameters `cfg` excludes from weight decay: its `no_decay` names (else the architecture's) and,
/// with `no_decay_1d`, every 1-D tensor.
pub fn decay_exclusion(cfg: &TrainConfig, model: &Model) -> DecayExclusion {
    DecayExclusion {
        name_contains: cfg
            .no_decay
            .clone()
            .unwrap_or_else(|| model.arch.no_decay.iter().map(|s| s.to_string()).collect()),
        one_dim: cfg.no_decay_1d,
    }
}

/// Builds the model `cfg` describes for the dataset it names, initialised from its seed. Only the
/// dataset's description is read, so a bad model is reported before any data is loaded.
pub fn build_model(cfg: &TrainConfig, device: Device) -> Result<Model> {
    let info = crate::data::dataset_info(&cfg.dataset, &cfg.data_dir())?;
    let (channels, image_size) = input_geometry(cfg, &info);
    tch::manual_seed(derive_seed(cfg.seed, &[0x1A17]) as i64);
    Model::build(&cfg.model_config(info.num_classes, channels, image_size), device)
}

/// [`build_model`] and its optimizer.
pub fn build_model_and_optimizer(cfg: &TrainConfig, device: Device) -> Result<(Model, Sgd)> {
    let model = build_model(cfg, device)?;
    let groups = param_groups(model.named_parameters(), cfg.weight_decay, &decay_exclusion(cfg, &model));
    Ok((model, Sgd::new(groups, cfg.momentum, cfg.dampening, cfg.nesterov)))
}

/// Trains according to `cfg`; see the module documentation.
pub fn train(cfg: TrainConfig, opts: &StartOptions) -> Result<TrainOutcome> {
    let (run, cfg, resuming) = plan_run(cfg, opts)?;
    if let Some(t) = cfg.threads {
        tch::set_num_threads(t as i32);
    }
    let device = parse_device(&cfg.device)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let (model, mut sgd) = build_model_and_optimizer(&cfg, device)?;
    let setup = setup_data(&cfg, Some(&run.split()), resuming, false)?;
    let schedule = Schedule::from_config(&cfg)?;

    let mut state = TrainState::default();
    if resuming {
        let ck = checkpoint::load(&run.last())?;
        ck.load_model_into(&model)?;
        sgd.load_state(ck.momentum().into_iter().map(|(n, t)| (n, t.to_device(device))).collect())?;
        state = ck.metadata.get("train_state").and_then(|s| serde_json::from_str(s).ok()).ok_or_else(|| {
            input_err!("{}: checkpoint has no training state; it cannot be resumed.", run.last().display())
        })?;
    } else {
        if let Some(src) = &opts.init_from {
            checkpoint::load(src)?.load_model_into(&model)?;
        }
        create_run_dir(&run)?;
        if let Some(split) = &setup.split {
            save_split(&run.split(), split)?;
        }
        write_config(&run, &cfg, &model, device, &setup)?;
    }
    let log = CsvLog::open(&run.log(), state.epoch)?;

    println!(
        "run {}: {} ({} parameters) on {} ({} train / {} val examples), device {:?}, {} threads",
        run.dir.display(),
        model.arch.name,
        model.num_parameters(),
        setup.info.name,
        setup.train_indices.len(),
        setup.eval_indices.len(),
        device,
        tch::get_num_threads()
    );
    for g in &sgd.groups {
        println!(
            "  parameter group {:<8} weight decay {:<8} {} tensors, {} parameters",
            g.name,
            g.weight_decay,
            g.params.len(),
            g.num_elements()
        );
    }
    if resuming {
        println!("  resuming at epoch {} batch {}", state.epoch + 1, state.batch);
    }

    let train_indices = Arc::new(setup.train_indices.clone());
    let n_train = train_indices.len();
    let batches_per_epoch = n_train.div_ceil(cfg.batch_size);
    let full_batches = (n_train / cfg.batch_size).max(1);
    let mut last_val = None;

    while state.epoch < cfg.epochs {
        let epoch = state.epoch;
        if state.batch == 0 && schedule.is_milestone(epoch) && cfg.reset_momentum {
            sgd.reset_momentum();
        }
        let loader = BatchLoader::new(
            setup.train_source.clone(),
            train_indices.clone(),
            cfg.batch_size,
            true,
            setup.train_pipeline.clone(),
            cfg.seed,
            epoch as u64,
            state.batch,
            device,
        );
        let progress = Progress::new(epoch, cfg.epochs, batches_per_epoch, cfg.log_interval);
        let position = |batch| Position {
            epoch,
            batch,
            batches_per_epoch,
            full_batches_per_epoch: full_batches,
            total_epochs: cfg.epochs,
        };
        let mut lr = schedule.lr(cfg.lr, position(state.batch + 1));
        let epoch_start = Instant::now();
        let seconds_before = state.train_seconds;
        for batch in loader {
            let batch = batch?;
            let b_idx = state.batch; // 0-based index of this mini-batch
            let bs = batch.labels.size()[0];
            tch::manual_seed(derive_seed(cfg.seed, &[0xD0, epoch as u64, b_idx as u64]) as i64);
            let logits = model.forward_t(&batch.images, true);
            let loss = logits.cross_entropy_for_logits(&batch.labels);
            let loss_value = f64::try_from(&loss).unwrap_or(f64::NAN);
            if !loss_value.is_finite() {
                progress.finish();
                return Err(Error::Diverged(format!(
                    "epoch {} batch {}: the training loss is {loss_value} (lr {lr:.4e}). The run stopped without writing anything; \
                     its last good checkpoint {} is intact. Lower --lr, or resume from that checkpoint.",
                    epoch + 1,
                    b_idx + 1,
                    if run.last().exists() { run.last().display().to_string() } else { "(none yet)".into() }
                )));
            }
            let (share, group_end) = accumulation_share(b_idx, cfg.accum_steps, cfg.batch_size, n_train);
            (&loss * share).backward();
            let correct =
                f64::try_from(logits.argmax(-1, false).eq_tensor(&batch.labels).sum(Kind::Float)).unwrap_or(0.0);
            state.loss_sum += loss_value * bs as f64;
            state.correct += correct;
            state.seen += bs as u64;
            state.batch += 1;
            if state.batch == group_end {
                lr = schedule.lr(cfg.lr, position(state.batch));
                sgd.step(lr);
                sgd.zero_grad();
                state.optimizer_steps += 1;
            }
            state.train_seconds = seconds_before + epoch_start.elapsed().as_secs_f64();
            progress.update(
                state.batch,
                state.loss_sum / state.seen.max(1) as f64,
                100.0 * state.correct / state.seen.max(1) as f64,
                lr,
                state.seen as f64 / state.train_seconds.max(1e-9),
            );
            // Mid-epoch checkpoints happen only between optimizer steps (no half-accumulated gradients).
            if state.batch == group_end && state.batch < batches_per_epoch {
                let interrupted = INTERRUPTED.load(Ordering::SeqCst);
                if interrupted || (cfg.checkpoint_interval > 0 && state.batch % cfg.checkpoint_interval == 0) {
                    save_last(&run, &model, &sgd, &state, &cfg)?;
                }
                if interrupted {
                    progress.finish();
                    return Err(Error::Interrupted(format!(
                        "checkpoint written at epoch {} batch {}; continue with: convtrain train --resume {}",
                        epoch + 1,
                        state.batch,
                        run.dir.display()
                    )));
                }
            }
        }
        progress.finish();
        let lr_epoch = schedule.lr(cfg.lr, position(1));
        let val = evaluate(&model, &setup, cfg.eval_batch_size, device)?;
        let train_loss = state.loss_sum / state.seen.max(1) as f64;
        let train_top1 = 100.0 * state.correct / state.seen.max(1) as f64;
        let improved = val.top1 > state.best_val_top1 || state.best_epoch == 0;
        if improved {
            state.best_val_top1 = val.top1;
            state.best_epoch = epoch + 1;
        }
        let row = EpochRow {
            epoch: epoch + 1,
            lr: lr_epoch,
            train_loss,
            train_top1,
            val_loss: val.loss,
            val_top1: val.top1,
            val_top5: val.top5,
            best_val_top1: state.best_val_top1,
            epoch_seconds: state.train_seconds,
            images_per_second: state.seen as f64 / state.train_seconds.max(1e-9),
        };
        println!(
            "epoch {}/{}: lr {:.4e} train loss {:.4} top1 {:.2}% | val loss {:.4} top1 {:.2}% top5 {:.2}% | best {:.2}% (epoch {}) | {:.1}s, {:.0} img/s",
            row.epoch, cfg.epochs, row.lr, row.train_loss, row.train_top1, row.val_loss, row.val_top1, row.val_top5,
            row.best_val_top1, state.best_epoch, row.epoch_seconds, row.images_per_second
        );
        // Row first, then checkpoint: a crash in between leaves a row the resume cuts off again.
        log.append(&row)?;
        let finished = TrainState {
            epoch: epoch + 1,
            batch: 0,
            optimizer_steps: state.optimizer_steps,
            best_val_top1: state.best_val_top1,
            best_epoch: state.best_epoch,
            ..Default::default()
        };
        if improved {
            let mut meta = run_metadata(&model, &cfg);
            meta.insert("epoch".into(), (epoch + 1).to_string());
            meta.insert("val_top1".into(), val.top1.to_string());
            checkpoint::save(&run.best(), &model.named_variables(), meta)?;
        }
        save_last(&run, &model, &sgd, &finished, &cfg)?;
        state = finished;
        last_val = Some(val);
        if INTERRUPTED.load(Ordering::SeqCst) && state.epoch < cfg.epochs {
            return Err(Error::Interrupted(format!(
                "checkpoint written after epoch {}; continue with: convtrain train --resume {}",
                state.epoch,
                run.dir.display()
            )));
        }
    }
    println!(
        "done: best validation top-1 {:.2}% at epoch {}; checkpoints in {}",
        state.best_val_top1,
        state.best_epoch,
        run.dir.display()
    );
    Ok(TrainOutcome { run_dir: run.dir, best_val_top1: state.best_val_top1, best_epoch: state.best_epoch, last_val })
}

/// Gradient accumulation: the weight of mini-batch `batch` (0-based) in its group of `accum` mini-batches
/// — its share of the group's examples, so that the summed gradients of mean losses equal the gradient
/// of one large batch (a short last group included) — and the index one past the group's last batch.
pub fn accumulation_share(batch: usize, accum: usize, batch_size: usize, examples: usize) -> (f64, usize) {
    let batches = examples.div_ceil(batch_size);
    let start = batch - batch % accum;
    let end = (start + accum).min(batches);
    let group = (end * batch_size).min(examples) - start * batch_size;
    let this = ((batch + 1) * batch_size).min(examples) - batch * batch_size;
    (this as f64 / group as f64, end)
}

/// Checkpoint metadata of a run: the model's, plus the training configuration (which `evaluate` reads
/// when the checkpoint travels without its run directory).
fn run_metadata(model: &Model, cfg: &TrainConfig) -> std::collections::HashMap<String, String> {
    let mut meta = checkpoint::model_metadata(model);
    meta.insert("train_config".into(), serde_json::to_string(cfg).unwrap_or_default());
    meta
}

fn save_last(run: &RunDir, model: &Model, sgd: &Sgd, state: &TrainState, cfg: &TrainConfig) -> Result<()> {
    let mut tensors = model.named_variables();
    tensors.extend(sgd.state().into_iter().map(|(n, t)| (format!("{MOMENTUM_PREFIX}{n}"), t)));
    let mut meta = run_metadata(model, cfg);
    meta.insert("train_state".into(), serde_json::to_string(state).unwrap_or_default());
    meta.insert("epoch".into(), state.epoch.to_string());
    checkpoint::save(&run.last(), &tensors, meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    #[test]
    fn accumulation_shares_follow_example_counts() {
        // 10 examples, batches of 3 → sizes 3,3,3,1; groups of 2 → {3,3} and {3,1}.
        let shares: Vec<(f64, usize)> = (0..4).map(|b| accumulation_share(b, 2, 3, 10)).collect();
        assert_eq!(shares, vec![(0.5, 2), (0.5, 2), (0.75, 4), (0.25, 4)]);
        assert_eq!(accumulation_share(0, 1, 4, 10), (1.0, 1));
    }

    #[test]
    fn accumulated_gradient_equals_the_large_batch_gradient() {
        tch::manual_seed(1);
        let w = Tensor::randn([5, 3], (Kind::Double, Device::Cpu)).set_requires_grad(true);
        let x = Tensor::randn([7, 5], (Kind::Double, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2, 0]);
        x.mm(&w).cross_entropy_for_logits(&y).backward();
        let big = w.grad().copy();
        let _ = w.grad().zero_();
        // Micro-batches of 3 (3, 3, 1), all in one group of 3.
        for b in 0..3usize {
            let (share, _) = accumulation_share(b, 3, 3, 7);
            let (lo, len) = (3 * b as i64, (7 - 3 * b as i64).min(3));
            (x.narrow(0, lo, len).mm(&w).cross_entropy_for_logits(&y.narrow(0, lo, len)) * share).backward();
        }
        assert!(w.grad().allclose(&big, 1e-12, 1e-12, false));
    }
}
