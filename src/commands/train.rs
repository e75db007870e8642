//! `convtrain train`: resolve the configuration, install Ctrl-C, train with console output.
use crate::cli::{self, TrainArgs};
use crate::error::Result;
use crate::train::hooks::{Hooks, Interrupt};
use crate::train::run_dir::StartOptions;
use crate::train::trainer;

pub fn run(a: &TrainArgs) -> Result<()> {
    let (cfg, flags) = cli::train_config(a)?;
    let interrupt = Interrupt::new();
    interrupt.install_ctrl_c();
    let opts = StartOptions { resume: a.resume.clone(), overwrite: a.overwrite, init_from: a.init_from.clone(), flags };
    let hooks = Hooks::console(cfg.log_interval, interrupt);
    trainer::train(cfg, &opts, hooks).map(|_| ())
}
