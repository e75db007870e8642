//! Runs one shard of a sweep: every point of the shard that is not done, in id order, each in its own
//! run directory with a quiet trainer, recording each result before the next point starts (see the
//! crash-safety notes in [`super`]).
use super::progress::{PointObserver, SweepProgress};
use super::results::{best_index, record, write_csv, PointResult, Status, RESULT_FILE};
use super::shard::{assign, Shard};
use super::spec::{Point, SweepSpec};
use crate::config::TrainConfig;
use crate::error::{
    is_out_of_memory, panic_message, torch_message, Error, Interruption, IoContext, Result, StopSignal,
};
use crate::train::hooks::{Hooks, Interrupt, StopRule};
use crate::train::log::read_rows;
use crate::train::run_dir::{RunDir, StartOptions};
use crate::train::trainer;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

/// Which checkpoints a done point keeps (a VGG variant's last checkpoint, with momentum, is about
/// 240 MB; 193 of them add up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeepCheckpoints {
    /// best.safetensors and last.safetensors.
    All,
    /// best.safetensors (for `convtrain evaluate`).
    #[default]
    Best,
    /// Neither (as the original, which saves no weights).
    None,
}

/// How a shard runs.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// The sweep directory.
    pub dir: PathBuf,
    pub shard: Shard,
    /// Settings that change where and how points run, not what they compute (device, threads, …).
    pub runtime: Map<String, Value>,
    /// Train failed points again, from their last checkpoint.
    pub retry_failed: bool,
    pub keep: KeepCheckpoints,
    /// Mini-batches between progress lines when stdout is not a terminal.
    pub log_interval: usize,
}

/// The stop rules of a point, from its configuration (the VGG sweep's abort rule, or none).
pub type StopRulesFn<'a> = &'a dyn Fn(&TrainConfig) -> Result<Vec<Box<dyn StopRule>>>;

/// What a shard did.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardSummary {
    pub points: usize,
    pub finished: usize,
    pub aborted: usize,
    pub failed: usize,
    pub results: PathBuf,
}

/// The points of `shard`, in id order.
pub fn shard_points(spec: &SweepSpec, shard: Shard) -> Vec<&Point> {
    let costs: Vec<f64> = spec.points.iter().map(|p| p.cost).collect();
    let owner = assign(&costs, shard.count);
    let mut points: Vec<&Point> =
        spec.points.iter().zip(owner).filter(|(_, s)| *s == shard.index).map(|(p, _)| p).collect();
    points.sort_by_key(|p| p.id);
    points
}

/// Runs the points of `opts.shard` that are not done; stops with [`Error::Interrupted`] (exit 130,
/// the current point checkpointed) when `interrupt` is requested, and with any error that is not the
/// point's own (bad input, I/O). A point that diverges or runs out of memory is recorded as failed
/// and the shard goes on.
pub fn run_shard(
    spec: &SweepSpec,
    opts: &RunnerOptions,
    stop_rules: StopRulesFn,
    interrupt: &Interrupt,
) -> Result<ShardSummary> {
    let runs_dir = opts.dir.join("runs");
    let points = shard_points(spec, opts.shard);
    let results = opts.dir.join(opts.shard.results_file());
    let mut rows = BTreeMap::new();
    let mut statuses = BTreeMap::new();
    for p in &points {
        let run_dir = runs_dir.join(&p.name);
        match PointResult::read(&run_dir)? {
            Some(r) if r.status == Status::Failed && opts.retry_failed => {
                let path = run_dir.join(RESULT_FILE);
                std::fs::remove_file(&path).at(&path)?;
            }
            Some(r) => {
                rows.insert(p.id, record(p, &r));
                statuses.insert(p.id, r.status);
            }
            None => {}
        }
    }
    // The view matches the records before anything runs (a previous process may have been killed
    // between a record and its row).
    write_csv(&results, spec, &rows)?;
    let remaining: f64 = points.iter().filter(|p| !rows.contains_key(&p.id)).map(|p| p.cost).sum();
    let progress = SweepProgress::new(points.len(), rows.len(), remaining, opts.log_interval);
    progress.borrow().line(&format!(
        "sweep {}: {}{} points ({} done), results in {}",
        opts.dir.display(),
        if opts.shard.count > 1 { format!("shard {}/{}: ", opts.shard.index, opts.shard.count) } else { String::new() },
        points.len(),
        rows.len(),
        results.display()
    ));
    let ran = (|| -> Result<()> {
        for (k, point) in points.iter().enumerate() {
            if rows.contains_key(&point.id) {
                continue;
            }
            if interrupt.is_requested() {
                return Err(Error::Interrupted(Interruption {
                    signal: interrupt.signal().unwrap_or(StopSignal::Interrupt),
                    message: format!(
                        "sweep {}: stopped before point {}; re-run the same command to continue ({} of {} points of this shard done).",
                        opts.dir.display(),
                        point.name,
                        rows.len(),
                        points.len()
                    ),
                }));
            }
            let label = format!("[{}/{} {}]", k + 1, points.len(), point.name);
            let result = run_point(spec, point, opts, &label, stop_rules, interrupt, &progress).map_err(|e| match e {
                Error::Interrupted(i) => Error::Interrupted(Interruption {
                    signal: i.signal,
                    message: format!(
                        "sweep {}: point {} checkpointed; re-run the same command to continue ({} of {} points of this shard done).",
                        opts.dir.display(),
                        point.name,
                        rows.len(),
                        points.len()
                    ),
                }),
                other => other,
            })?;
            let run_dir = runs_dir.join(&point.name);
            result.write(&run_dir)?;
            progress.borrow_mut().point_done(
                point.cost,
                result.status == Status::Failed,
                &summary_line(&label, &result),
            );
            rows.insert(point.id, record(point, &result));
            statuses.insert(point.id, result.status);
            write_csv(&results, spec, &rows)?;
            prune_checkpoints(&RunDir { dir: run_dir }, opts.keep);
        }
        Ok(())
    })();
    progress.borrow().finish();
    ran?;
    let count = |s: Status| statuses.values().filter(|&&x| x == s).count();
    Ok(ShardSummary {
        points: points.len(),
        finished: count(Status::Finished),
        aborted: count(Status::Aborted),
        failed: count(Status::Failed),
        results,
    })
}

/// Trains one point (new, or resumed from its checkpoint) and turns the outcome into its result.
fn run_point(
    spec: &SweepSpec,
    point: &Point,
    opts: &RunnerOptions,
    label: &str,
    stop_rules: StopRulesFn,
    interrupt: &Interrupt,
    progress: &Rc<RefCell<SweepProgress>>,
) -> Result<PointResult> {
    let runs_dir = opts.dir.join("runs");
    let run = RunDir { dir: runs_dir.join(&point.name) };
    let cfg = spec.point_config(point, &opts.runtime, &runs_dir)?;
    // A run directory is resumed (the trainer restarts one killed before its first checkpoint from
    // epoch 0); anything else in its place is replaced.
    let resume = run.config().is_file();
    let start = StartOptions {
        resume: resume.then(|| run.dir.clone()),
        overwrite: !resume,
        init_from: None,
        flags: Value::Object(spec.point_flags(point, &opts.runtime)),
        allow_schedule_change: false,
    };
    let how = match (resume, run.last().is_file()) {
        (true, true) => "resuming from its checkpoint",
        (true, false) => "starting again (killed before its first checkpoint)",
        (false, _) => "starting",
    };
    progress.borrow().line(&format!("{label} {how}"));
    let hooks = Hooks {
        observer: Box::new(PointObserver::new(progress.clone(), label.to_string(), point.cost)),
        stop_rules: stop_rules(&cfg)?,
        interrupt: interrupt.clone(),
        frozen: Vec::new(),
    };
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| trainer::train(cfg, &start, hooks))).unwrap_or_else(|payload| {
        // An out-of-memory error outside the step (validation) is the point's failure too.
        let message = panic_message(payload.as_ref());
        if !is_out_of_memory(&message) {
            resume_unwind(payload);
        }
        Err(Error::OutOfMemory(torch_message(&message)))
    });
    let (status, reason, history) = match outcome {
        Ok(o) => match o.stopped_early {
            Some(reason) => (Status::Aborted, reason, o.history),
            None => (Status::Finished, String::new(), o.history),
        },
        Err(e @ (Error::Diverged(_) | Error::OutOfMemory(_) | Error::Torch(_))) => {
            let history = if run.log().is_file() { read_rows(&run.log())? } else { Vec::new() };
            (Status::Failed, e.to_string(), history)
        }
        Err(e) => return Err(e),
    };
    Ok(PointResult {
        id: point.id,
        status,
        reason,
        history,
        trainable_parameters: PointResult::run_parameters(&run.dir),
        // Scored now, or before a kill between the scoring and this record (the trainer then returns at once).
        test: if status == Status::Failed { None } else { run.read_test()? },
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// `[3/20 variant-003] finished: best val 98.12% at epoch 3 (train 97.50%) | 3 epochs, 12.3s`
/// (epochs 1-based here, as in the trainer's lines).
fn summary_line(label: &str, result: &PointResult) -> String {
    let why = if result.reason.is_empty() { String::new() } else { format!(" ({})", result.reason) };
    let best = match best_index(&result.history).map(|b| &result.history[b]) {
        Some(r) => format!("best val {:.2}% at epoch {} (train {:.2}%)", r.val_top1, r.epoch, r.train_top1),
        None => "no epoch done".into(),
    };
    let test = result
        .test
        .as_ref()
        .map_or(String::new(), |t| format!(", test top-1 {:.2}% (best, epoch {})", t.best.test.top1, t.best.epoch));
    format!(
        "{label} {}{why}: {best}{test} | {} epochs, {:.1}s",
        result.status.name(),
        result.history.len(),
        result.wall_seconds
    )
}

/// Removes the checkpoints a done point does not keep.
fn prune_checkpoints(run: &RunDir, keep: KeepCheckpoints) {
    let remove: &[PathBuf] = &match keep {
        KeepCheckpoints::All => vec![],
        KeepCheckpoints::Best => vec![run.last()],
        KeepCheckpoints::None => vec![run.last(), run.best()],
    };
    for f in remove {
        let _ = std::fs::remove_file(f);
    }
}
