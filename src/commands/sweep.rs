//! `convtrain sweep vgg-features|grid|collect`: build the sweep's points from the flags, make the
//! directory's `sweep.json` (or check that it is this sweep), run this process's shard, merge shards.
//! `vgg-features --list` prints the variants of the layer-wise feature-amount sweep
//! (vgg_features.md §2.6) with both parameter counts: the original CSV's "Parameters" (§2.5) and the
//! trainable count of the network for the dataset.
use crate::cli::{self, GridSweepArgs, ListFormat, SweepRunArgs, SweepTarget, VggFeaturesSweepArgs};
use crate::config::TrainConfig;
use crate::error::{to_json, Result};
use crate::input_err;
use crate::models::vgg_features::{self, Variant, VggFeaturesOptions};
use crate::sweep::grid::{grid_points, parse_axis, parse_ids};
use crate::sweep::results::collect;
use crate::sweep::runner::{run_shard, RunnerOptions, StopRulesFn};
use crate::sweep::shard::Shard;
use crate::sweep::spec::{split_settings, traced_macs, SweepSpec};
use crate::sweep::vgg_features as vgg_sweep;
use crate::train::hooks::Interrupt;
use crate::train::memory::MemoryCeiling;
use crate::train::parse_device;
use crate::train::setup::input_geometry;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

pub fn run(target: SweepTarget) -> Result<()> {
    match target {
        SweepTarget::VggFeatures(a) => vgg_features_sweep(&a),
        SweepTarget::Grid(a) => grid(&a),
        SweepTarget::Collect { sweep_dir } => {
            let report = collect(&sweep_dir)?;
            report.lines().iter().for_each(|l| println!("{l}"));
            Ok(())
        }
    }
}

/// One listed variant: the generator's fields and the network's trainable parameter count.
#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    variant: &'a Variant,
    trainable: i64,
}

fn vgg_features_sweep(a: &VggFeaturesSweepArgs) -> Result<()> {
    let (mut settings, flags) = cli::sweep_settings(&a.sweep)?;
    settings.extend(flags);
    match settings.get("arch").and_then(Value::as_str) {
        None | Some("vgg-features") => {}
        Some(other) => {
            return Err(input_err!(
                "--arch {other}: the vgg-features sweep trains vgg-features variants; leave --arch out."
            ))
        }
    }
    if let Some(key) = ["variant", "widths"].into_iter().find(|k| settings.contains_key(*k)) {
        return Err(input_err!(
            "--{key}: a sweep trains the variants --variants names (default: all of --vgg-depth's); give those instead."
        ));
    }
    settings.insert("arch".into(), "vgg-features".into());
    let cfg = TrainConfig::resolve(Value::Object(settings.clone()), Value::Null, "command line")?;
    let info = crate::data::dataset_info(&cfg.dataset, &cfg.data_dir())?;
    let (channels, side) = input_geometry(&cfg, &info);
    let model = cfg.model_config(info.num_classes, channels, side);
    let options: VggFeaturesOptions = model.options()?;
    let depth = options.vgg_depth.unwrap_or(vgg_features::DEFAULT_VGG_DEPTH);
    let variants = vgg_features::variants(depth, info.num_classes, side)?;
    if a.list {
        let (_, settings) = vgg_features::resolve(&model, &options)?;
        let listed: Vec<Listed> = variants
            .iter()
            .map(|v| Listed { variant: v, trainable: vgg_features::trainable_parameters(&v.widths, &settings) })
            .collect();
        let text = match a.format {
            ListFormat::Json => json(&listed)?,
            ListFormat::Csv => csv(&listed),
            ListFormat::Table => {
                let title = format!(
                    "vgg-features sweep, --vgg-depth {depth}, {} ({} classes, {channels}x{side}x{side} input): {} variants",
                    cfg.dataset,
                    info.num_classes,
                    listed.len()
                );
                table(&title, &listed)
            }
        };
        print!("{text}");
        return Ok(());
    }
    let ids = match &a.variants {
        Some(list) => parse_ids(list, variants.len())?,
        None => (1..=variants.len()).collect(),
    };
    let (settings, runtime) = split_settings(settings)?;
    let spec = SweepSpec {
        kind: "vgg-features".into(),
        settings,
        label_columns: vgg_sweep::LABEL_COLUMNS.map(String::from).to_vec(),
        points: vgg_sweep::points(&variants, &ids, depth),
    };
    let name = format!("vgg-features-{}-d{depth}", cfg.dataset);
    execute(spec, runtime, &a.sweep, &name, &vgg_sweep::config_macs, &vgg_sweep::stop_rules)
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
    let _signals = interrupt.install_signal_handlers()?;
    // Without CUDA, a point too large for the free memory fails (and is recorded) instead of the
    // kernel killing the sweep.
    let device =
        runtime.get("device").and_then(Value::as_str).map_or_else(|| TrainConfig::default().device, str::to_string);
    let _ceiling = if parse_device(&device)?.is_cuda() { None } else { MemoryCeiling::install() };
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

impl Listed<'_> {
    /// id, ξ, ω, α, parameters, trainable and the widths joined by `separator`.
    fn cells(&self, separator: &str) -> [String; 7] {
        let v = self.variant;
        let widths = v.widths.iter().map(i64::to_string).collect::<Vec<_>>().join(separator);
        let shape = [v.xi, v.omega, v.alpha].map(|x| format!("{x:.1}"));
        let [xi, omega, alpha] = shape;
        [v.id.to_string(), xi, omega, alpha, v.parameters.to_string(), self.trainable.to_string(), widths]
    }
}

/// `id,xi,omega,alpha,parameters,trainable,widths`, the widths space separated.
fn csv(listed: &[Listed]) -> String {
    let mut s = String::from("id,xi,omega,alpha,parameters,trainable,widths\n");
    for l in listed {
        s += &l.cells(" ").join(",");
        s.push('\n');
    }
    s
}

/// A JSON array, one variant object per line.
fn json(listed: &[Listed]) -> Result<String> {
    let lines: Vec<String> = listed.iter().map(|l| to_json(l, "a variant")).collect::<Result<_>>()?;
    Ok(format!("[\n  {}\n]\n", lines.join(",\n  ")))
}

/// Right-aligned columns, the widths last.
fn table(title: &str, listed: &[Listed]) -> String {
    const COLUMNS: [usize; 6] = [4, 5, 5, 6, 11, 11];
    let line = |cells: &[String]| {
        let numbers: Vec<String> = COLUMNS.iter().zip(cells).map(|(w, c)| format!("{c:>w$}")).collect();
        format!("{}  {}\n", numbers.join(" "), cells[6])
    };
    let mut s = format!("{title}\n");
    s += "parameters: the original CSV's count (weights only, §2.5); trainable: this network's (BN and bias too)\n\n";
    let header = ["id", "ξ", "ω", "α", "parameters", "trainable", "widths (convs, fc1, fc2)"];
    s += &line(&header.map(String::from));
    for l in listed {
        s += &line(&l.cells(","));
    }
    s
}
