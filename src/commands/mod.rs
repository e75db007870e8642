//! The subcommands: the only place that joins the layers (configuration, data, models, training,
//! visualisation) into what a user runs. Each file is one command, thin over the library.
pub mod evaluate;
pub mod export;
pub mod info;
pub mod summary;
pub mod sweep;
pub mod train;
pub mod visualize;

use crate::cli::Command;
use crate::error::Result;

/// Executes one subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(a) => train::run(&a),
        Command::Evaluate(a) => evaluate::run(&a),
        Command::Summary(a) => summary::run(&a),
        Command::Info => {
            print!("{}", info::text());
            Ok(())
        }
        Command::Export(a) => export::run(&a),
        Command::Visualize { target } => visualize::run(target),
        Command::Completions { shell } => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "convtrain", &mut std::io::stdout());
            Ok(())
        }
        Command::Sweep { sweep } => sweep::run(sweep),
    }
}
