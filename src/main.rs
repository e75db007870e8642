//! The `convtrain` binary: parses the command line and maps errors to one paragraph and an exit code.
use clap::Parser;
use convtrain::cli::Cli;
use convtrain::error::{is_out_of_memory, panic_message};
use convtrain::Error;

fn main() {
    // Rust ignores SIGPIPE, which turns a closed stdout (`convtrain info | head -1`) into a panic in
    // println!; the default action ends the process quietly, as for any Unix filter.
    // SAFETY: called once at start-up, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // tch reports a failed libtorch call inside a model's forward pass as a panic; the trainer catches
    // out-of-memory ones at the step boundary (and retries with smaller micro-batches), so the default
    // hook's report is kept for the other panics, and an out-of-memory panic that reaches this point
    // becomes an ordinary error below.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_out_of_memory(&panic_message(info.payload())) {
            report(info);
        }
    }));
    let cli = Cli::parse();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| convtrain::commands::run(cli.command)));
    let result = outcome.unwrap_or_else(|payload| {
        let message = panic_message(payload.as_ref());
        if !is_out_of_memory(&message) {
            std::panic::resume_unwind(payload);
        }
        Err(Error::OutOfMemory(format!("{message}. Use a smaller --batch-size, --eval-batch-size or --micro-batch.")))
    });
    if let Err(e) = result {
        match &e {
            Error::Interrupted(_) => eprintln!("convtrain: {e}"),
            _ => eprintln!("convtrain: error: {e}"),
        }
        std::process::exit(e.exit_code());
    }
}
