//! `convtrain train`: resolve the configuration, install the stop signals and (on the CPU) the memory
//! ceiling, train with console output; `--print-config` and `--dry-run` stop before anything is written.
use crate::cli::{self, TrainArgs};
use crate::config::{TrainConfig, RESUMABLE_OVERRIDES};
use crate::error::{to_json_pretty, Result};
use crate::input_err;
use crate::models::summary::{summarize, thousands};
use crate::train::hooks::{Hooks, Interrupt};
use crate::train::memory::MemoryCeiling;
use crate::train::run_dir::{new_run_config, StartOptions};
use crate::train::setup::setup_data;
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
    if a.print_config || a.dry_run {
        if let Some(r) = &a.resume {
            return Err(input_err!(
                "--{} describes a new run; the configuration of the run --resume {} continues is in its config.json.",
                if a.print_config { "print-config" } else { "dry-run" },
                r.display()
            ));
        }
        let cfg = new_run_config(cfg)?;
        return if a.print_config { print_config(&cfg) } else { dry_run(&cfg) };
    }
    let interrupt = Interrupt::new();
    let _signals = interrupt.install_signal_handlers()?;
    let _ceiling = if parse_device(&cfg.device)?.is_cuda() { None } else { MemoryCeiling::install() };
    let opts = StartOptions {
        resume: a.resume.clone(),
        overwrite: a.overwrite,
        init_from: a.init_from.clone(),
        flags,
        allow_schedule_change: a.allow_schedule_change,
    };
    let hooks = Hooks::console(cfg.log_interval, interrupt);
    trainer::train(cfg, &opts, hooks).map(|_| ())
}

/// The resolved configuration as a recipe file (`--config` takes it back as it is).
fn print_config(cfg: &TrainConfig) -> Result<()> {
    println!("{}", to_json_pretty(cfg, "the resolved configuration")?);
    Ok(())
}

/// What a run of `cfg` would train on and with, from the model and the data themselves.
fn dry_run(cfg: &TrainConfig) -> Result<()> {
    let device = parse_device(&cfg.device)?;
    let model = trainer::build_model(cfg, device)?;
    let setup = setup_data(cfg, None, false, false)?;
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
    let job = cfg.job_id.clone().unwrap_or_else(|| format!("{}-{}-<time>", cfg.arch, cfg.dataset));
    println!("run directory: {}", cfg.runs_dir.join(job).display());
    Ok(())
}
