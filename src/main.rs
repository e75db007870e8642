//! The `convtrain` binary: parses the command line and maps errors to one paragraph and an exit code.
use clap::Parser;
use convtrain::cli::Cli;
use convtrain::Error;

fn main() {
    // Rust ignores SIGPIPE, which turns a closed stdout (`convtrain info | head -1`) into a panic in
    // println!; the default action ends the process quietly, as for any Unix filter.
    // SAFETY: called once at start-up, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    if let Err(e) = convtrain::commands::run(cli.command) {
        match &e {
            Error::Interrupted(_) => eprintln!("convtrain: {e}"),
            _ => eprintln!("convtrain: error: {e}"),
        }
        std::process::exit(e.exit_code());
    }
}
