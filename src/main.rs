//! The `convtrain` binary: parses the command line and maps errors to one paragraph and an exit code.
use clap::Parser;
use convtrain::cli::Cli;
use convtrain::Error;

fn main() {
    let cli = Cli::parse();
    if let Err(e) = convtrain::run(cli.command) {
        match &e {
            Error::Interrupted(_) => eprintln!("convtrain: {e}"),
            _ => eprintln!("convtrain: error: {e}"),
        }
        std::process::exit(e.exit_code());
    }
}
