//! `convtrain sweep grid|collect`: build the sweep's points from the flags, make the directory's
//! `sweep.json` (or check that it is this sweep), run this process's shard, merge shards.
use crate::cli::{self, GridSweepArgs, SweepRunArgs, SweepTarget};
use crate::config::TrainConfig;
use crate::error::Result;
use crate::input_err;
use crate::sweep::grid::{grid_points, parse_axis};
use crate::sweep::results::collect;
use crate::sweep::runner::{run_shard, RunnerOptions, StopRulesFn};
use crate::sweep::shard::Shard;
use crate::sweep::spec::{split_settings, traced_macs, SweepSpec};
use crate::train::hooks::Interrupt;
use std::path::Path;

pub fn run(target: SweepTarget) -> Result<()> {
    match target {
        SweepTarget::Grid(a) => grid(&a),
        SweepTarget::Collect { sweep_dir } => {
            let report = collect(&sweep_dir)?;
            report.lines().iter().for_each(|l| println!("{l}"));
            Ok(())
        }
    }
}

fn grid(a: &GridSweepArgs) -> Result<()> {
    let (mut settings, flags) = cli::sweep_settings(&a.sweep)?;
    let axes = a.sets.iter().map(|s| parse_axis(s)).collect::<Result<Vec<_>>>()?;
    if let Some(axis) = axes.iter().find(|x| flags.contains_key(&x.key)) {
        return Err(input_err!(
            "--set {}: the setting is also given as a flag; sweep it with --set or fix it with the flag, not both.",
            axis.key
        ));
    }
    // The swept values replace the recipe's.
    settings.retain(|k, _| !axes.iter().any(|x| &x.key == k));
    settings.extend(flags);
    let points = grid_points(&axes)?;
    let (settings, runtime) = split_settings(settings)?;
    let spec = SweepSpec {
        kind: "grid".into(),
        settings,
        label_columns: axes.iter().map(|x| x.key.clone()).collect(),
        points,
    };
    let name = match &a.sweep.training.config {
        Some(c) => format!("grid-{}", c.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default()),
        None => "grid".into(),
    };
    execute(spec, runtime, &a.sweep, &name, &traced_macs, &|_| Ok(Vec::new()))
}

/// Establishes the sweep in its directory (estimating costs once, when it is new), then runs this
/// process's shard with Ctrl-C (and the trainer's other stop signals) checkpointing the running point.
fn execute(
    mut spec: SweepSpec,
    runtime: serde_json::Map<String, serde_json::Value>,
    a: &SweepRunArgs,
    default_name: &str,
    macs_per_image: &dyn Fn(&TrainConfig) -> Result<i64>,
    stop_rules: StopRulesFn,
) -> Result<()> {
    let interrupt = Interrupt::new();
    interrupt.install_ctrl_c();
    let dir = a.sweep_dir.clone().unwrap_or_else(|| Path::new("sweeps").join(default_name));
    let shard = Shard::resolve(a.shard.as_deref(), |k| std::env::var(k).ok())?;
    let spec = match SweepSpec::read(&dir)? {
        Some(existing) => {
            spec.check_same(&existing, &dir)?;
            existing
        }
        None => {
            spec.estimate_costs(&runtime, &dir.join("runs"), macs_per_image)?;
            spec.establish(&dir)?
        }
    };
    let opts = RunnerOptions {
        dir: dir.clone(),
        shard,
        runtime,
        retry_failed: a.retry_failed,
        keep: a.keep_checkpoints,
        log_interval: a.training.log_interval.unwrap_or(TrainConfig::default().log_interval),
    };
    let s = run_shard(&spec, &opts, stop_rules, &interrupt)?;
    println!(
        "sweep {}: {} points: {} finished, {} aborted, {} failed; results in {}",
        dir.display(),
        s.points,
        s.finished,
        s.aborted,
        s.failed,
        s.results.display()
    );
    if shard.count > 1 {
        println!("when every shard is done: convtrain sweep collect {}", dir.display());
    }
    Ok(())
}
