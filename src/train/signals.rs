//! Stop signals. SIGINT (Ctrl-C), SIGTERM (Slurm's time limit and preemption, `scancel`, `timeout`,
//! `docker stop`, Kubernetes), SIGHUP (a closed terminal) and SIGUSR1 (Slurm's `--signal=USR1@<s>`
//! warning) each ask the run to stop at its next safe point: the trainer finishes the current step,
//! writes `last.safetensors` and exits with 128 + the signal number (130, 143, 129, 138).
//!
//! signal-hook's handler only writes to a pipe; a thread of ours reads it and calls back. A second
//! signal, once a stop was already requested, ends the process at once: the thread restores the
//! signal's default action and raises it, so the process dies by that signal without running any
//! destructor or `atexit` handler while libtorch works on another thread (`std::process::exit` from
//! a handler thread did, and segfaulted). Nothing is lost by dying at any instant: every file a run
//! writes is replaced atomically (`checkpoint::write_atomic`), so the previous checkpoint is intact.
use crate::error::{Result, StopSignal};
use crate::internal_err;
use signal_hook::iterator::{Handle, Signals};
use std::io::Write;

/// While alive, the four stop signals are handled as the module says; dropping it ends the thread
/// (the signals then stay caught and are ignored, as signal-hook leaves them).
#[derive(Debug)]
pub struct SignalHandlers {
    handle: Handle,
    /// The reading thread hands its `Signals` (the self-pipe's read end) back when it ends, so the
    /// read end is closed here, after `close()` has written its wake-up byte: were the thread to drop
    /// it first (it can see the closed flag before the byte is sent), that write would raise SIGPIPE.
    thread: Option<std::thread::JoinHandle<Signals>>,
}

impl Drop for SignalHandlers {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Installs the handlers: `request(signal)` is called on every stop signal and returns whether a stop
/// had been requested already, in which case the process ends at once by that signal.
pub fn install(request: impl Fn(StopSignal) -> bool + Send + 'static) -> Result<SignalHandlers> {
    let raw: Vec<i32> = StopSignal::ALL.iter().map(|s| s.raw()).collect();
    let mut signals = Signals::new(&raw).map_err(|e| internal_err!("cannot install the signal handlers: {e}"))?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("convtrain-signals".into())
        .spawn(move || {
            for raw in signals.forever() {
                let Some(signal) = StopSignal::from_raw(raw) else { continue };
                if request(signal) {
                    let _ = signal_hook::low_level::emulate_default_handler(raw);
                }
                // stderr may be gone (SIGHUP of a closed terminal): never panic on it.
                let _ = writeln!(
                    std::io::stderr(),
                    "\nconvtrain: {} received: finishing the current step, then writing a checkpoint \
                     (a second signal stops at once; the last checkpoint stays intact)",
                    signal.name()
                );
            }
            signals
        })
        .map_err(|e| internal_err!("cannot start the signal thread: {e}"))?;
    Ok(SignalHandlers { handle, thread: Some(thread) })
}
