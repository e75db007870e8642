//! `convtrain train`: resolve the configuration, install the stop signals and (on the CPU) the memory
//! ceiling, train with console output; `--print-config` and `--dry-run` stop before anything is written.
use crate::checkpoint;
use crate::cli::{self, TrainArgs};
use crate::config::{show_value, TrainConfig, RESUMABLE_OVERRIDES};
use crate::error::{to_json_pretty, Result};
use crate::input_err;
use crate::models::summary::{summarize, thousands};
use crate::train::hooks::{ConsoleObserver, Hooks, Interrupt, Observer};
use crate::train::memory::MemoryCeiling;
use crate::train::run_dir::{new_run_config, preview_run, RunPlan, StartOptions};
use crate::train::setup::setup_data;
use crate::train::trainer::TrainState;
use crate::train::{parse_device, trainer};
use std::path::Path;

pub fn run(a: &TrainArgs) -> Result<()> {
    if let (Some(config), Some(resume)) = (&a.training.config, &a.resume) {
        if resume != Path::new("auto") {
            return Err(input_err!(
                "--config {} has no effect with --resume {}: a resumed run keeps the configuration its checkpoint \
                 holds (only {} may change). Drop --config, or start a new run with it.",
                config.display(),
                resume.display(),
                RESUMABLE_OVERRIDES.join(", ")
            ));
        }
    }
    let (cfg, flags) = cli::train_config(a)?;
    let opts = StartOptions {
        resume: a.resume.clone(),
        overwrite: a.overwrite,
        init_from: a.init_from.clone(),
        flags,
        allow_schedule_change: a.allow_schedule_change,
    };
    if a.print_config || a.dry_run {
        // A resume is previewed with the checks of a real one (refusals included), without its lock.
        let resumed = match &a.resume {
            Some(_) => Some(preview_run(cfg.clone(), &opts)?),
            None => None,
        };
        let cfg = match &resumed {
            Some(plan) => {
                let mut console = ConsoleObserver::new(cfg.log_interval);
                plan.warnings.iter().for_each(|w| console.warning(w));
                plan.cfg.clone()
            }
            None => new_run_config(cfg)?,
        };
        return if a.print_config { print_config(&cfg) } else { dry_run(&cfg, resumed.as_ref()) };
    }
    let interrupt = Interrupt::new();
    let _signals = interrupt.install_signal_handlers()?;
    let _ceiling = if parse_device(&cfg.device)?.is_cuda() { None } else { MemoryCeiling::install() };
    let hooks = Hooks::console(cfg.log_interval, interrupt);
    trainer::train(cfg, &opts, hooks).map(|_| ())
}

/// The resolved configuration as a recipe file (`--config` takes it back as it is).
fn print_config(cfg: &TrainConfig) -> Result<()> {
    println!("{}", to_json_pretty(cfg, "the resolved configuration")?);
    Ok(())
}

/// What a run of `cfg` would train on and with, from the model and the data themselves; `resumed`:
/// the plan of the run a `--resume` would continue (its saved split is used).
fn dry_run(cfg: &TrainConfig, resumed: Option<&RunPlan>) -> Result<()> {
    let device = parse_device(&cfg.device)?;
    if let Some(w) = cfg.precision.slow_on(device) {
        ConsoleObserver::new(cfg.log_interval).warning(&w);
    }
    let model = trainer::build_model(cfg, device)?;
    let setup = match resumed {
        Some(plan) => setup_data(cfg, Some(&plan.run.split()), plan.resuming, false)?,
        None => setup_data(cfg, None, false, false)?,
    };
    let sgd = trainer::optimizer(cfg, &model);
    let summary = summarize(&trainer::build_model(cfg, tch::Device::Cpu)?, Vec::new());
    let mc = &model.config;
    let batches = setup.train_indices.len().div_ceil(cfg.batch_size).min(cfg.limit_train_batches.unwrap_or(usize::MAX));
    println!("dry run (nothing is written): {}", cfg.defaults_source());
    println!(
        "model: {} ({} parameters, {} MACs per image) for {}×{}×{} inputs, {} classes, device {device:?}",
        mc.arch,
        thousands(model.num_parameters()),
        thousands(summary.total_macs),
        mc.in_channels,
        mc.image_size,
        mc.image_size,
        mc.num_classes
    );
    println!(
        "data: {} in {} — {} train / {} validation examples (validation from the {} set); {} mini-batches of {} per epoch",
        setup.info.name,
        cfg.data_dir().display(),
        setup.train_indices.len(),
        setup.eval_indices.len(),
        if cfg.val_split > 0.0 { "training" } else { "test" },
        batches,
        cfg.batch_size
    );
    for g in &sgd.groups {
        println!(
            "parameter group {:<8} weight decay {:<8} {} tensors, {} parameters",
            g.name,
            g.weight_decay,
            g.params.len(),
            thousands(g.num_elements())
        );
    }
    let lr = cfg.schedule()?;
    println!(
        "optimisation: {} epochs, SGD lr {} (momentum {}, nesterov {}), schedule {} ({}), seed {}",
        cfg.epochs,
        cfg.lr,
        cfg.momentum,
        cfg.nesterov,
        cfg.schedule,
        lr.describe(cfg.lr, cfg.epochs),
        cfg.seed
    );
    match resumed {
        Some(plan) => println!("run directory: {} ({})", plan.run.dir.display(), continuation(plan, cfg)?),
        None => {
            let job = cfg.job_id.clone().unwrap_or_else(|| format!("{}-{}-<time>", cfg.arch, cfg.dataset));
            println!("run directory: {}", cfg.runs_dir.join(job).display());
        }
    }
    Ok(())
}

/// How a previewed `--resume` continues: where, to which epoch, changing what.
fn continuation(plan: &RunPlan, cfg: &TrainConfig) -> Result<String> {
    let position = if !plan.resuming && plan.run.config().is_file() {
        "restarts from epoch 1: it stopped before its first checkpoint".to_string()
    } else if !plan.resuming {
        "a new run".to_string()
    } else {
        let last = plan.run.last();
        let state = TrainState::from_metadata(&checkpoint::read_metadata(&last)?, &last)?;
        if state.epoch >= cfg.epochs {
            format!("nothing to do: {} of {} epochs done", state.epoch, cfg.epochs)
        } else {
            format!("resumes at epoch {} batch {} of {} epochs", state.epoch + 1, state.batch, cfg.epochs)
        }
    };
    let changes: Vec<String> = plan
        .changes
        .iter()
        .map(|(k, c)| format!("{k} {} → {}", show_value(&c["from"]), show_value(&c["to"])))
        .collect();
    Ok(if changes.is_empty() { position } else { format!("{position}; changes {}", changes.join(", ")) })
}
