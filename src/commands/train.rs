//! `convtrain train`: resolve the configuration, install the stop signals and (on the CPU) the memory
//! ceiling, train with console output.
use crate::cli::{self, TrainArgs};
use crate::error::Result;
use crate::input_err;
use crate::train::hooks::{Hooks, Interrupt};
use crate::train::memory::MemoryCeiling;
use crate::train::run_dir::StartOptions;
use crate::train::{parse_device, trainer};
use std::path::Path;

pub fn run(a: &TrainArgs) -> Result<()> {
    let interrupt = Interrupt::new();
    let _signals = interrupt.install_signal_handlers()?;
    if let (Some(config), Some(resume)) = (&a.training.config, &a.resume) {
        if resume != Path::new("auto") {
            return Err(input_err!(
                "--config {} has no effect with --resume {}: a resumed run keeps the configuration its checkpoint \
                 holds (only --epochs, --device, --threads, --data-dir and the logging and checkpoint intervals may \
                 change). Drop --config, or start a new run with it.",
                config.display(),
                resume.display()
            ));
        }
    }
    let (cfg, flags) = cli::train_config(a)?;
    let _ceiling = if parse_device(&cfg.device)?.is_cuda() { None } else { MemoryCeiling::install() };
    let opts = StartOptions { resume: a.resume.clone(), overwrite: a.overwrite, init_from: a.init_from.clone(), flags };
    let hooks = Hooks::console(cfg.log_interval, interrupt);
    trainer::train(cfg, &opts, hooks).map(|_| ())
}
