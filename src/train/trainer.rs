//! The training loop: data, model, SGD with parameter groups, schedule, validation, checkpoints and
//! exact resume, as a [`Trainer`] whose caller chooses the [`Hooks`] (observer, stop rules, interrupt,
//! frozen parameters). Run-directory policy is in [`super::run_dir`].
//!
//! Exactness: shuffling and augmentation draw from RNGs derived from (seed, epoch, batch) in the data
//! loader, and dropout from torch's RNG re-seeded from (seed, epoch, batch) before every mini-batch, so
//! batch b of epoch e is the same computation whether or not the process was restarted before it.
//! Checkpoints hold the weights, BN statistics, momentum buffers and the loop position.
use super::evaluate::{evaluate, CheckpointScore, EvalResult, TestReport};
use super::hooks::Hooks;
use super::lock::RunLock;
use super::log::{read_rows, CsvLog, EpochRow};
use super::loss_scale::{self, LossScale};
use super::memory::{self, available_bytes};
use super::micro_batch::{self, BatchStats, StepError, StepSnapshot};
use super::optimizer::{param_groups, DecayExclusion, Sgd};
use super::run_dir::{create_run_dir, plan_run, RunDir, RunPlan, StartOptions};
use super::running::{Divergence, PendingBatches};
use super::schedule::{Position, Schedule};
use super::setup::{input_geometry, save_split, setup_data, DataSetup};
use super::tracking::{Covered, Tracker};
use super::{derive_seed, parse_device, set_threads};
use crate::checkpoint::{self, MOMENTUM_PREFIX};
use crate::config::TrainConfig;
use crate::data::{Batch, BatchLoader};
use crate::error::{
    catch_torch, human_bytes, to_json, to_json_pretty, Error, Interruption, IoContext, Result, StopSignal,
};
use crate::input_err;
use crate::models::summary::summarize;
use crate::models::Model;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tch::Device;

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
    /// The micro-batch size an out-of-memory fallback settled on (kept for the rest of the run, so a
    /// resumed run slices as the original did); `None`: the configuration's `micro_batch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_batch: Option<usize>,
    /// The loss scale of a float16 run (`--precision fp16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<LossScale>,
}

impl TrainState {
    /// The training state a checkpoint's metadata holds (`path` names the checkpoint in the error).
    pub fn from_metadata(metadata: &HashMap<String, String>, path: &std::path::Path) -> Result<TrainState> {
        metadata
            .get("train_state")
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| input_err!("{}: checkpoint has no training state; it cannot be resumed.", path.display()))
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub run_dir: PathBuf,
    pub best_val_top1: f64,
    pub best_epoch: usize,
    pub last_val: Option<EvalResult>,
    /// Every finished epoch of the run, resumed parts included.
    pub history: Vec<EpochRow>,
    /// Why a stop rule ended the run early, if one did.
    pub stopped_early: Option<String>,
    /// The best and last checkpoints scored on the test split (`test.json`), when the run did so.
    pub test: Option<TestReport>,
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

/// Advice of a run that ran out of memory.
const LOWER_SIZES: &str = "Lower --batch-size (or split it with --micro-batch N), --resize or the model's size \
                           (--width, --depth, the family's options), or use a device with more memory.";

/// Builds the model `cfg` describes for the dataset it names, initialised from its seed. Only the
/// dataset's description is read, so a bad model is reported before any data is loaded; what
/// libtorch throws while allocating it is one paragraph (see [`catch_torch`]).
pub fn build_model(cfg: &TrainConfig, device: Device) -> Result<Model> {
    let info = crate::data::dataset_info(&cfg.dataset, &cfg.data_dir())?;
    let (channels, image_size) = input_geometry(cfg, &info);
    let mc = cfg.model_config(info.num_classes, channels, image_size);
    let what = format!(
        "building {} (depth {}, width {}) for {channels}×{image_size}×{image_size} inputs",
        mc.arch,
        mc.depth.map_or("default".into(), |d| d.to_string()),
        mc.width.map_or("default".into(), |w| w.to_string())
    );
    let mut model = catch_torch(&what, "Lower --width, --depth, --resize or the family's size options.", || {
        tch::manual_seed(derive_seed(cfg.seed, &[0x1A17]) as i64);
        Model::build(&mc, device)
    })?;
    if cfg.channels_last {
        model.use_channels_last();
    }
    Ok(model)
}

/// Refuses a CPU model whose training state (gradients, momentum buffers and the copies a checkpoint
/// write makes, about four times the weights) would not fit in the memory that is left.
fn check_training_memory(model: &Model, device: Device) -> Result<()> {
    let weights: u64 =
        model.named_variables().iter().map(|(_, t)| (t.numel() * t.kind().elt_size_in_bytes()) as u64).sum();
    match available_bytes() {
        Some(free) if !device.is_cuda() && 4 * weights > free => Err(input_err!(
            "out of memory: {} has {} parameters ({} of weights); training it needs about {} more (gradients, \
             momentum buffers and checkpoint copies), but only {} is free. Lower --width, --depth or the family's \
             size options, or use a machine with more memory.",
            model.arch.name,
            model.num_parameters(),
            human_bytes(weights),
            human_bytes(4 * weights),
            human_bytes(free)
        )),
        _ => Ok(()),
    }
}

/// Checks a resumed training state against the run: the position inside the run and inside an
/// epoch, the step count and running sums that position implies.
fn check_state(s: &TrainState, epochs: usize, batches: usize, cfg: &TrainConfig, n_train: usize) -> Result<()> {
    let steps_per_epoch = batches.div_ceil(cfg.accum_steps) as u64;
    let expected_steps = s.epoch as u64 * steps_per_epoch + s.batch.div_ceil(cfg.accum_steps) as u64;
    let problem = if s.epoch > epochs {
        format!("epoch {} of a run of {epochs} epochs", s.epoch)
    } else if s.batch >= batches || (s.epoch == epochs && s.batch > 0) {
        format!("batch {} of an epoch of {batches} mini-batches", s.batch)
    } else if !s.batch.is_multiple_of(cfg.accum_steps) {
        format!("batch {} inside a group of {} accumulated mini-batches", s.batch, cfg.accum_steps)
    } else if s.optimizer_steps != expected_steps {
        format!("{} optimizer steps where its position implies {expected_steps}", s.optimizer_steps)
    } else if s.seen != (s.batch * cfg.batch_size).min(n_train) as u64 {
        format!("{} images seen in {} mini-batches of {}", s.seen, s.batch, cfg.batch_size)
    } else if !(s.loss_sum.is_finite() && s.loss_sum >= 0.0 && (0.0..=s.seen as f64).contains(&s.correct)) {
        format!("running loss {} and {} correct of {} images", s.loss_sum, s.correct, s.seen)
    } else if s.best_epoch > s.epoch || !(0.0..=100.0).contains(&s.best_val_top1) {
        format!("best top-1 {}% at epoch {}", s.best_val_top1, s.best_epoch)
    } else if !(s.train_seconds.is_finite() && s.train_seconds >= 0.0) {
        format!("{} seconds of training", s.train_seconds)
    } else {
        return Ok(());
    };
    Err(input_err!(
        "its training state does not fit this run ({problem}); the checkpoint was edited or damaged. Restore a \
         copy of it, or start the run over with --overwrite."
    ))
}

/// Marks the parameters whose names start with one of `prefixes` as frozen (no gradient).
pub fn freeze(model: &Model, prefixes: &[String]) {
    for (name, mut t) in model.named_parameters() {
        if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            let _ = t.requires_grad_(false);
        }
    }
}

/// The optimizer of `model`'s trainable parameters, grouped by weight decay as `cfg` says.
pub fn optimizer(cfg: &TrainConfig, model: &Model) -> Sgd {
    let groups = param_groups(model.named_parameters(), cfg.weight_decay, &decay_exclusion(cfg, model));
    Sgd::new(groups, cfg.momentum, cfg.dampening, cfg.nesterov)
}

/// [`build_model`] and its optimizer.
pub fn build_model_and_optimizer(cfg: &TrainConfig, device: Device) -> Result<(Model, Sgd)> {
    let model = build_model(cfg, device)?;
    let sgd = optimizer(cfg, &model);
    Ok((model, sgd))
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

/// One training run, started or resumed; [`Trainer::run`] trains it to the end.
pub struct Trainer {
    run: RunDir,
    /// Held for the whole run: no other `train` touches the directory meanwhile.
    lock: RunLock,
    /// When the run's last checkpoint was written (or the run started), for `checkpoint_minutes`.
    last_checkpoint: Instant,
    cfg: TrainConfig,
    device: Device,
    model: Model,
    sgd: Sgd,
    setup: DataSetup,
    schedule: Schedule,
    state: TrainState,
    log: CsvLog,
    tracker: Tracker,
    history: Vec<EpochRow>,
    hooks: Hooks,
    train_indices: Arc<Vec<i64>>,
    /// Mini-batches trained since the running loss and top-1 were last read from the device.
    pending: PendingBatches,
    /// Mini-batches of an epoch (at most `limit_train_batches`), full ones among them, and the
    /// training images they hold.
    batches_per_epoch: usize,
    full_batches: usize,
    epoch_examples: usize,
}

impl Trainer {
    /// Plans the run (new or resumed), builds model, optimizer and data, restores a resumed run's
    /// state, and — for a new run, once everything is known to be good — creates its directory.
    pub fn start(cfg: TrainConfig, opts: &StartOptions, mut hooks: Hooks) -> Result<Trainer> {
        let (RunPlan { run, cfg, resuming, warnings, changes }, mut lock) = plan_run(cfg, opts)?;
        warnings.iter().for_each(|w| hooks.observer.warning(w));
        if let Some(w) = cfg.threads.and_then(set_threads) {
            hooks.observer.warning(&w);
        }
        let device = parse_device(&cfg.device)?;
        if device.is_cuda() {
            tch::Cuda::cudnn_set_benchmark(true);
        }
        if let Some(w) = cfg.precision.slow_on(device) {
            hooks.observer.warning(&w);
        }
        let model = build_model(&cfg, device)?;
        check_training_memory(&model, device)?;
        freeze(&model, &hooks.frozen);
        let mut sgd = optimizer(&cfg, &model);
        let mut setup = setup_data(&cfg, Some(&run.split()), resuming, false)?;
        if let Some(w) = setup.keep_on(device)? {
            hooks.observer.warning(&w);
        }
        let schedule = cfg.schedule()?;
        let n_train = setup.train_indices.len();
        let limit = cfg.limit_train_batches.unwrap_or(usize::MAX);
        let batches_per_epoch = n_train.div_ceil(cfg.batch_size).min(limit);

        let mut state =
            TrainState { loss_scale: cfg.precision.scales_loss().then(LossScale::default), ..TrainState::default() };
        if resuming {
            let last = run.last();
            let ck = checkpoint::load(&last)?;
            model.load_checkpoint(&ck)?;
            sgd.load_state(ck.momentum())?;
            state = TrainState::from_metadata(&ck.metadata, &last)?;
            // The run length the checkpoint was written under (the flags may extend it now).
            let epochs = ck
                .metadata
                .get("train_config")
                .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
                .and_then(|c| c.get("epochs").and_then(|e| e.as_u64()))
                .map_or(cfg.epochs, |e| e as usize);
            check_state(&state, epochs, batches_per_epoch, &cfg, n_train)
                .map_err(|e| input_err!("{}: {e}", last.display()))?;
            run.record_invocation(&cfg, &changes, || run_facts(&cfg, &model, device, &setup, None))?;
        } else {
            if let Some(src) = &opts.init_from {
                model.load_checkpoint(&checkpoint::load(src)?)?;
            }
            if let Some(prepare) = model.arch.prepare {
                prepare(&model)?;
            }
            create_run_dir(&run)?;
            lock.keep();
            if let Some(split) = &setup.split {
                save_split(&run.split(), split)?;
            }
            let data = crate::data::fingerprint::fingerprint(&cfg.data_dir())?;
            run.record_invocation(&cfg, &changes, || run_facts(&cfg, &model, device, &setup, Some(data)))?;
        }
        let log = CsvLog::open(&run.log(), state.epoch)?;
        // Test results stand only for a run that has finished: an extended one scores again at its end.
        let tested = state.epoch >= cfg.epochs && run.test().is_file();
        if !tested && run.test().is_file() {
            std::fs::remove_file(run.test()).at(&run.test())?;
        }
        let tracker = Tracker::open(&run, Covered { steps: state.optimizer_steps, epochs: state.epoch, tested })?;
        let history = read_rows(&run.log())?;
        let train_indices = Arc::new(setup.train_indices.clone());
        let mut trainer = Trainer {
            batches_per_epoch,
            full_batches: (n_train / cfg.batch_size).min(limit).max(1),
            epoch_examples: n_train.min(batches_per_epoch * cfg.batch_size),
            run,
            lock,
            last_checkpoint: Instant::now(),
            cfg,
            device,
            model,
            sgd,
            setup,
            schedule,
            state,
            log,
            tracker,
            history,
            hooks,
            train_indices,
            pending: PendingBatches::default(),
        };
        trainer.announce(resuming);
        Ok(trainer)
    }

    /// The run's model (for callers that inspect it between epochs or after the run).
    pub fn model(&self) -> &Model {
        &self.model
    }

    fn announce(&mut self, resuming: bool) {
        let mut lines = vec![format!(
            "run {}: {} ({} parameters) on {} ({} train / {} val examples), device {:?}, {} threads",
            self.run.dir.display(),
            self.model.arch.name,
            self.model.num_parameters(),
            self.setup.info.name,
            self.setup.train_indices.len(),
            self.setup.eval_indices.len(),
            self.device,
            tch::get_num_threads()
        )];
        lines.push(format!("  {}", self.cfg.defaults_source()));
        for g in &self.sgd.groups {
            lines.push(format!(
                "  parameter group {:<8} weight decay {:<8} {} tensors, {} parameters",
                g.name,
                g.weight_decay,
                g.params.len(),
                g.num_elements()
            ));
        }
        if resuming && self.state.epoch >= self.cfg.epochs {
            lines.push(format!(
                "  resuming at epoch {}: nothing to do, the run has finished {} epochs (--epochs {}); extend it with \
                 --resume {} --epochs N",
                self.state.epoch + 1,
                self.state.epoch,
                self.cfg.epochs,
                self.run.dir.display()
            ));
        } else if resuming {
            lines.push(format!("  resuming at epoch {} batch {}", self.state.epoch + 1, self.state.batch));
        }
        for l in lines {
            self.hooks.observer.message(&l);
        }
    }

    fn position(&self, epoch: usize, batch: usize) -> Position {
        Position {
            epoch,
            batch,
            batches_per_epoch: self.batches_per_epoch,
            full_batches_per_epoch: self.full_batches,
            total_epochs: self.cfg.epochs,
        }
    }

    /// Trains the remaining epochs; returns the outcome, or the error that stopped it (interrupt,
    /// divergence, I/O). A run resumed at the end of an epoch after which a stop rule fires (killed
    /// before its caller learnt of the stop) ends at once, stopped early again. A run that fails on
    /// bad input before its first checkpoint (a batch that does not fit in memory) leaves nothing
    /// behind, as a failed start does.
    pub fn run(mut self) -> Result<TrainOutcome> {
        let epochs_before = self.state.epoch;
        let mut last_val = None;
        let mut stopped_early = match self.history.last() {
            Some(row) if self.state.batch == 0 => self.hooks.stop_rules.iter().find_map(|r| r.check(row)),
            _ => None,
        };
        while stopped_early.is_none() && self.state.epoch < self.cfg.epochs {
            let row = match self.train_epoch().and_then(|_| self.finish_epoch()) {
                Ok((row, val)) => {
                    last_val = Some(val);
                    row
                }
                Err(e) => {
                    if matches!(e, Error::Input(_) | Error::OutOfMemory(_))
                        && !self.run.last().exists()
                        && self.run.remove_own_files().is_ok()
                    {
                        self.lock.unkeep();
                    }
                    return Err(e);
                }
            };
            stopped_early = self.hooks.stop_rules.iter().find_map(|r| r.check(&row));
            if let Some(reason) = &stopped_early {
                self.hooks.observer.message(&format!("stopping early: {reason}"));
                break;
            }
            if self.hooks.interrupt.is_requested() && self.state.epoch < self.cfg.epochs {
                return Err(self.interrupted(format!("checkpoint written after epoch {}", self.state.epoch)));
            }
        }
        let finished = stopped_early.is_some() || self.state.epoch >= self.cfg.epochs;
        let test =
            if finished && self.cfg.tests_at_end() && (self.state.epoch > epochs_before || !self.run.test().exists()) {
                Some(self.test_at_end()?)
            } else {
                None
            };
        let s = &self.state;
        if s.epoch > epochs_before || test.is_some() {
            let scored = test.as_ref().map_or(String::new(), |t| {
                format!(
                    "; test top-1 {:.2}% (best, epoch {}), {:.2}% (last, epoch {})",
                    t.best.test.top1, t.best.epoch, t.last.test.top1, t.last.epoch
                )
            });
            self.hooks.observer.message(&format!(
                "done: best validation top-1 {:.2}% at epoch {}{scored}; checkpoints in {}",
                s.best_val_top1,
                s.best_epoch,
                self.run.dir.display()
            ));
        }
        Ok(TrainOutcome {
            run_dir: self.run.dir,
            best_val_top1: s.best_val_top1,
            best_epoch: s.best_epoch,
            last_val,
            history: self.history,
            stopped_early,
            test,
        })
    }

    /// Scores the last weights (the model as trained) and the best checkpoint on the test split, and
    /// writes `test.json` and the tracking records.
    fn test_at_end(&mut self) -> Result<TestReport> {
        let mut setup = setup_data(&self.cfg, Some(&self.run.split()), true, true)?;
        if let Some(w) = setup.keep_on(self.device)? {
            self.hooks.observer.warning(&w);
        }
        let what = format!("scoring on the test split with batches of {} images", self.cfg.eval_batch_size);
        let score = |model: &Model| {
            catch_torch(&what, "Lower --eval-batch-size (it may change on resume).", || {
                evaluate(model, &setup, self.cfg.eval_batch_size, None, self.device, self.cfg.precision)
            })
        };
        let (last_epoch, best_epoch) = (self.state.epoch, self.state.best_epoch);
        let last_val = self.history.last().map_or(0.0, |r| r.val_top1);
        let last = CheckpointScore { epoch: last_epoch, val_top1: last_val, test: score(&self.model)? };
        let best = if best_epoch == last_epoch {
            CheckpointScore { val_top1: self.state.best_val_top1, ..last }
        } else {
            self.model.load_checkpoint(&checkpoint::load(&self.run.best())?)?;
            CheckpointScore { epoch: best_epoch, val_top1: self.state.best_val_top1, test: score(&self.model)? }
        };
        let report = TestReport { split: "test".into(), best, last };
        let step = self.state.optimizer_steps;
        for (which, s) in [("best", &report.best), ("last", &report.last)] {
            self.tracker.test(step, which, s.epoch, s.test.loss, s.test.top1, s.test.top5)?;
        }
        checkpoint::write_atomic(&self.run.test(), to_json_pretty(&report, "the test results")?.as_bytes())?;
        Ok(report)
    }

    /// The error that ends an interrupted run: where it stopped and how to continue.
    fn interrupted(&self, position: String) -> Error {
        Error::Interrupted(Interruption {
            signal: self.hooks.interrupt.signal().unwrap_or(StopSignal::Interrupt),
            message: format!("{position}; continue with: convtrain train --resume {}", self.run.dir.display()),
        })
    }

    /// The mini-batches of the current epoch (from where a resumed run stopped); what libtorch throws
    /// (an allocation that does not fit) becomes one paragraph.
    fn train_epoch(&mut self) -> Result<()> {
        let mc = &self.model.config;
        let micro = self.state.micro_batch.or(self.cfg.micro_batch).filter(|&m| m < self.cfg.batch_size);
        let what = format!(
            "training mini-batches of {} images of {}×{}×{}{}",
            self.cfg.batch_size,
            mc.in_channels,
            mc.image_size,
            mc.image_size,
            micro.map_or(String::new(), |m| format!(" in micro-batches of {m}"))
        );
        catch_torch(&what, LOWER_SIZES, || self.train_epoch_batches())
    }

    fn train_epoch_batches(&mut self) -> Result<()> {
        let epoch = self.state.epoch;
        if self.state.batch == 0 && self.schedule.is_milestone(epoch) && self.cfg.reset_momentum {
            self.sgd.reset_momentum();
        }
        let loader = BatchLoader::new(
            self.setup.train_source.clone(),
            self.train_indices.clone(),
            self.cfg.batch_size,
            true,
            self.setup.train_pipeline.clone(),
            self.cfg.seed,
            epoch as u64,
            self.state.batch,
            self.device,
        );
        self.hooks.observer.epoch_started(epoch, self.cfg.epochs, self.batches_per_epoch);
        let mut lr = self.schedule.lr(self.cfg.lr, self.position(epoch, self.state.batch + 1));
        let epoch_start = Instant::now();
        let seconds_before = self.state.train_seconds;
        for batch in loader.take(self.batches_per_epoch.saturating_sub(self.state.batch)) {
            let result = self.step(&batch?, &mut lr, epoch_start, seconds_before);
            if result.is_err() {
                self.hooks.observer.epoch_finished();
            }
            result?;
        }
        self.hooks.observer.epoch_finished();
        Ok(())
    }

    /// One mini-batch: forward, loss, backward (in micro-batches if asked or needed), and the optimizer
    /// step at the end of an accumulation group; then, at the log interval, before a checkpoint and at
    /// the end of the epoch, the read of the running loss and top-1 from the device ([`super::running`]);
    /// then a mid-epoch checkpoint when one is due or an interrupt was requested.
    fn step(&mut self, batch: &Batch, lr: &mut f64, epoch_start: Instant, seconds_before: f64) -> Result<()> {
        let (epoch, b_idx) = (self.state.epoch, self.state.batch);
        let bs = batch.labels.size()[0] as u64;
        let (share, group_end) =
            accumulation_share(b_idx, self.cfg.accum_steps, self.cfg.batch_size, self.epoch_examples);
        let stats = self.forward_backward(batch, share)?;
        self.pending.push(b_idx, bs, *lr, stats);
        let cfg = &self.cfg;
        let state = &mut self.state;
        state.seen += bs;
        state.batch += 1;
        let group_done = state.batch == group_end;
        if group_done {
            *lr = self.schedule.lr(cfg.lr, self.position(epoch, self.state.batch));
            loss_scale::optimizer_step(&mut self.sgd, *lr, self.state.loss_scale.as_mut());
            self.sgd.zero_grad();
            self.state.optimizer_steps += 1;
        }
        let log_interval = self.cfg.log_interval.max(1);
        let tracked = group_done && self.state.optimizer_steps.is_multiple_of(log_interval as u64);
        // Mid-epoch checkpoints happen only between optimizer steps (no half-accumulated gradients).
        let interrupted = group_done && self.hooks.interrupt.is_requested();
        let checkpoint =
            group_done && self.state.batch < self.batches_per_epoch && (interrupted || self.checkpoint_due());
        let epoch_done = self.state.batch >= self.batches_per_epoch;
        if tracked || checkpoint || epoch_done || self.state.batch.is_multiple_of(log_interval) {
            self.read_pending()?;
        }
        let state = &mut self.state;
        state.train_seconds = seconds_before + epoch_start.elapsed().as_secs_f64();
        let read = (state.seen - self.pending.images()).max(1) as f64;
        let (loss, top1) = (state.loss_sum / read, 100.0 * state.correct / read);
        let images_per_second = state.seen as f64 / state.train_seconds.max(1e-9);
        self.hooks.observer.batch_done(state.batch, loss, top1, *lr, images_per_second);
        if tracked {
            self.tracker.step(state.optimizer_steps, epoch, state.batch, *lr, loss, top1, images_per_second)?;
        }
        if checkpoint {
            let state = self.state.clone();
            self.save_last(&state)?;
        }
        if interrupted && !epoch_done {
            return Err(self.interrupted(format!(
                "checkpoint written at epoch {} batch {}",
                epoch + 1,
                self.state.batch
            )));
        }
        Ok(())
    }

    /// Whether a mid-epoch checkpoint is due by `checkpoint_interval` mini-batches or by
    /// `checkpoint_minutes` since the last one.
    fn checkpoint_due(&self) -> bool {
        let (interval, minutes) = (self.cfg.checkpoint_interval, self.cfg.checkpoint_minutes);
        let due_by_time = minutes > 0.0 && self.last_checkpoint.elapsed().as_secs_f64() >= 60.0 * minutes;
        due_by_time || (interval > 0 && self.state.batch.is_multiple_of(interval))
    }

    /// Reads the pending mini-batches into the running sums; a non-finite loss among them ends the run.
    fn read_pending(&mut self) -> Result<()> {
        let s = &mut self.state;
        match self.pending.read_into(&mut s.loss_sum, &mut s.correct)? {
            None => Ok(()),
            Some(d) => Err(self.diverged(d)),
        }
    }

    /// The error of a run whose loss diverged: what is intact and what changes the outcome.
    fn diverged(&self, d: Divergence) -> Error {
        let last = self.run.last();
        let (kept, keep_weights) = if last.exists() {
            (
                format!("its last good checkpoint {} is intact", last.display()),
                format!(
                    "; to keep the epochs already trained, start it from their weights with --init-from {}",
                    last.display()
                ),
            )
        } else {
            ("it has no checkpoint yet".to_string(), String::new())
        };
        Error::Diverged(format!(
            "epoch {} batch {}: the training loss is {} (lr {:.4e}). The run stopped without writing anything; {kept}. \
             Resuming would diverge again at this same batch: the run is deterministic and a resume cannot change its \
             settings. What changes the outcome is a new run (--overwrite, or another --job-id) with a lower --lr or \
             gentler --gammas, a larger --batch-size, or another --seed{keep_weights}.",
            self.state.epoch + 1,
            d.batch + 1,
            d.loss,
            d.lr,
        ))
    }

    /// The forward and backward passes of one mini-batch, sliced into `micro_batch` images (the found
    /// size, else the configured one, else the whole batch), with its dropout RNG seeded from (seed,
    /// epoch, batch). On CUDA a pass that runs out of memory is undone (BN running statistics and
    /// gradients restored), the slice size halved, kept for the rest of the run, and the batch redone.
    fn forward_backward(&mut self, batch: &Batch, share: f64) -> Result<BatchStats> {
        let (epoch, b_idx) = (self.state.epoch, self.state.batch);
        let bs = batch.labels.size()[0] as usize;
        let mut snapshot = self.device.is_cuda().then(|| {
            let buffers = self.model.named_variables().into_iter().filter(|(_, t)| !t.requires_grad()).map(|(_, t)| t);
            let params = self.sgd.parameters().map(|p| p.shallow_clone());
            StepSnapshot::take(buffers.collect(), params.collect(), b_idx % self.cfg.accum_steps != 0)
        });
        loop {
            let micro = self.state.micro_batch.or(self.cfg.micro_batch).unwrap_or(bs).min(bs);
            tch::manual_seed(derive_seed(self.cfg.seed, &[0xD0, epoch as u64, b_idx as u64]) as i64);
            let (model, precision, device) = (&self.model, self.cfg.precision, self.device);
            let scale = loss_scale::loss_factor(self.state.loss_scale.as_ref());
            let failure = match micro_batch::forward_backward(
                &|x| precision.forward(device, || model.forward_t(x, true)),
                &batch.images,
                &batch.labels,
                micro,
                share * scale,
            ) {
                Ok(done) => return Ok(done),
                Err(e) => e,
            };
            match (failure, snapshot.as_mut(), micro_batch::halve(micro)) {
                (StepError::OutOfMemory(_), Some(s), Some(smaller)) => {
                    s.restore();
                    self.state.micro_batch = Some(smaller);
                    self.hooks.observer.warning(&format!(
                        "epoch {} batch {}: out of memory with micro-batches of {micro}; retrying with {smaller}",
                        epoch + 1,
                        b_idx + 1
                    ));
                }
                // Reported by `train_epoch`'s error boundary, which names the sizes.
                (StepError::OutOfMemory(message), ..) => return Err(Error::Torch(tch::TchError::Torch(message))),
                (StepError::Failed(e), ..) => return Err(e),
            }
        }
    }

    /// Validation, the log row, the best and last checkpoints of the epoch just trained.
    fn finish_epoch(&mut self) -> Result<(EpochRow, EvalResult)> {
        self.read_pending()?;
        let epoch = self.state.epoch;
        let lr_epoch = self.schedule.lr(self.cfg.lr, self.position(epoch, 1));
        let what = format!("validating with batches of {} images", self.cfg.eval_batch_size);
        let val = catch_torch(&what, "Lower --eval-batch-size (it may change on resume).", || {
            let (limit, precision) = (self.cfg.limit_val_batches, self.cfg.precision);
            evaluate(&self.model, &self.setup, self.cfg.eval_batch_size, limit, self.device, precision)
        })?;
        // The memory kept for the next step goes back before the epoch's RSS is recorded.
        memory::release_freed_memory();
        let state = &mut self.state;
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
        let line = format!(
            "epoch {}/{}: lr {:.4e} train loss {:.4} top1 {:.2}% | val loss {:.4} top1 {:.2}% top5 {:.2}% | best {:.2}% (epoch {}) | {:.1}s, {:.0} img/s",
            row.epoch, self.cfg.epochs, row.lr, row.train_loss, row.train_top1, row.val_loss, row.val_top1, row.val_top5,
            row.best_val_top1, state.best_epoch, row.epoch_seconds, row.images_per_second
        );
        self.hooks.observer.message(&line);
        self.hooks.observer.epoch_logged(&row);
        // Row first, then checkpoint: a crash in between leaves a row the resume cuts off again.
        self.log.append(&row)?;
        self.tracker.epoch(state.optimizer_steps, &row)?;
        let finished = TrainState {
            epoch: epoch + 1,
            batch: 0,
            optimizer_steps: state.optimizer_steps,
            best_val_top1: state.best_val_top1,
            best_epoch: state.best_epoch,
            micro_batch: state.micro_batch,
            loss_scale: state.loss_scale.clone(),
            ..Default::default()
        };
        if improved {
            let mut meta = self.metadata()?;
            meta.insert("epoch".into(), (epoch + 1).to_string());
            meta.insert("val_top1".into(), val.top1.to_string());
            checkpoint::save(&self.run.best(), &self.model.named_variables(), meta)?;
        }
        self.save_last(&finished)?;
        self.state = finished;
        self.history.push(row.clone());
        Ok((row, val))
    }

    /// Checkpoint metadata of the run: the model's, plus the training configuration (which `evaluate`
    /// reads when the checkpoint travels without its run directory).
    fn metadata(&self) -> Result<HashMap<String, String>> {
        let mut meta = self.model.metadata()?;
        meta.insert("train_config".into(), to_json(&self.cfg, "the training configuration")?);
        Ok(meta)
    }

    fn save_last(&mut self, state: &TrainState) -> Result<()> {
        let mut tensors = self.model.named_variables();
        tensors.extend(self.sgd.state().into_iter().map(|(n, t)| (format!("{MOMENTUM_PREFIX}{n}"), t)));
        let mut meta = self.metadata()?;
        meta.insert("train_state".into(), to_json(state, "the training state")?);
        meta.insert("epoch".into(), state.epoch.to_string());
        checkpoint::save(&self.run.last(), &tensors, meta)?;
        self.last_checkpoint = Instant::now();
        Ok(())
    }
}

/// Facts about a new run written beside its configuration in `config.json`: the model (with its
/// parameters and MACs per image), the data (and the fingerprint a resume from another data
/// directory is checked against) and the provenance.
fn run_facts(
    cfg: &TrainConfig,
    model: &Model,
    device: Device,
    setup: &DataSetup,
    data: Option<crate::data::fingerprint::Fingerprint>,
) -> serde_json::Value {
    serde_json::json!({
        "model": model.config,
        "convtrain_version": env!("CARGO_PKG_VERSION"),
        "git_commit": env!("CONVTRAIN_GIT_COMMIT"),
        "libtorch_version": crate::LIBTORCH_VERSION,
        "libtorch_cuda": env!("CONVTRAIN_CUDA_BUILD"),
        "libtorch_cudnn": env!("CONVTRAIN_CUDNN_BUILD"),
        "cuda_available": tch::Cuda::is_available(),
        "cudnn_available": tch::Cuda::cudnn_is_available(),
        "host": super::lock::hostname(),
        "started": super::lock::utc_now_iso(),
        "device": format!("{device:?}"),
        "threads": tch::get_num_threads(),
        "seed": cfg.seed,
        "dataset": {
            "name": setup.info.name, "num_classes": setup.info.num_classes, "train_examples": setup.train_indices.len(),
            "val_examples": setup.eval_indices.len(), "val_from": if cfg.val_split > 0.0 { "train" } else { "test" },
            "mean": setup.mean, "std": setup.std, "fingerprint": data,
        },
        "parameters": model.num_parameters(),
        "macs": summarize(model, Vec::new()).total_macs,
    })
}

/// Trains according to `cfg` with `hooks`; see the module documentation.
pub fn train(cfg: TrainConfig, opts: &StartOptions, hooks: Hooks) -> Result<TrainOutcome> {
    Trainer::start(cfg, opts, hooks)?.run()
}
#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

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
