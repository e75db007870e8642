//! The subcommands: the only place that joins the layers (configuration, data, models, training,
//! visualisation) into what a user runs. Each file is one command, thin over the library.
pub mod bench;
pub mod evaluate;
pub mod export;
pub mod info;
pub mod recipes;
pub mod summary;
pub mod sweep;
pub mod table;
pub mod train;
pub mod visualize;

use crate::cli::Command;
use crate::error::{catch_torch, Result};
use crate::train::memory::MemoryCeiling;

/// Executes one subcommand. Whatever libtorch throws on the way, where no narrower boundary caught it,
/// still ends as one paragraph (see [`catch_torch`]); without CUDA, memory is capped at what is free
/// (see [`MemoryCeiling`]), so that running out of it is such an error too.
pub fn run(command: Command) -> Result<()> {
    let _ceiling = if tch::Cuda::is_available() { None } else { MemoryCeiling::install() };
    catch_torch("running the command", "", || dispatch(command))
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Train(a) => train::run(&a),
        Command::Evaluate(a) => evaluate::run(&a),
        Command::Summary(a) => summary::run(&a),
        Command::Info => {
            print!("{}", info::text());
            Ok(())
        }
        Command::Export(a) => export::run(&a),
        Command::Recipes { format } => recipes::run(format),
        Command::Table(a) => table::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Visualize { target } => visualize::run(target),
        Command::Sweep { target } => sweep::run(target),
        Command::Completions { shell } => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "convtrain", &mut std::io::stdout());
            Ok(())
        }
    }
}
