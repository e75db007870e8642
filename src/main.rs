//! The `convtrain` binary: parses the command line and maps errors to one paragraph and an exit code.
use clap::Parser;
use convtrain::cli::Cli;
use convtrain::Error;
use std::io::Write;

fn main() {
    // Rust ignores SIGPIPE, which turns a closed stdout (`convtrain info | head -1`) into a panic in
    // println!; the default action ends the process quietly, as for any Unix filter.
    // SAFETY: called once at start-up, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before libtorch allocates anything of the run's: a step's freed memory is kept for the next.
    convtrain::train::memory::keep_freed_memory();
    // A libtorch error met by a non-fallible tch call panics; the command's error boundary
    // (`convtrain::error::catch_torch`) turns it into one paragraph, so the panic itself goes unreported.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !convtrain::error::is_torch_panic(&convtrain::error::panic_message(info.payload())) {
            report(info);
        }
    }));
    let cli = Cli::parse();
    if let Err(e) = convtrain::commands::run(cli.command) {
        // stderr may be gone (a hung-up terminal): the exit status still tells.
        let _ = match &e {
            Error::Interrupted(_) => writeln!(std::io::stderr(), "convtrain: {e}"),
            _ => writeln!(std::io::stderr(), "convtrain: error: {e}"),
        };
        std::process::exit(e.exit_code());
    }
}
