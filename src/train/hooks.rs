//! The trainer's seams: who watches a run ([`Observer`]), when a run may stop early ([`StopRule`]),
//! and how it is asked to stop ([`Interrupt`]). Each is a small typed value the caller chooses — a
//! console run, a quiet sweep of many runs — and none holds a policy of one paper.
use super::log::EpochRow;
use super::progress::Progress;
use super::signals::{self, SignalHandlers};
use crate::error::{Result, StopSignal};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Receives what a training run reports.
pub trait Observer {
    /// A line about the run (start-up facts, epoch summaries, the final result).
    fn message(&mut self, line: &str);
    /// Something the user should know and may want to act on (a capped setting, an edited
    /// `config.json` that is not obeyed, a restart from epoch 0); a [`Observer::message`] by default.
    fn warning(&mut self, line: &str) {
        self.message(&format!("warning: {line}"));
    }
    /// An epoch of `batches` mini-batches begins (`epoch` 0-based of `epochs`).
    fn epoch_started(&mut self, epoch: usize, epochs: usize, batches: usize);
    /// After mini-batch `done` (1-based) of the epoch, with the epoch's running numbers.
    fn batch_done(&mut self, done: usize, loss: f64, top1: f64, lr: f64, images_per_second: f64);
    /// The epoch's mini-batches are done (validation follows).
    fn epoch_finished(&mut self);
    /// The epoch's numbers, once validated (after its summary line went to [`Observer::message`]).
    fn epoch_logged(&mut self, _row: &EpochRow) {}
}

/// Today's console output: a progress bar on a terminal, periodic plain lines otherwise, and every
/// message on stdout.
#[derive(Default)]
pub struct ConsoleObserver {
    /// Mini-batches between plain progress lines.
    pub log_interval: usize,
    progress: Option<Progress>,
}

impl ConsoleObserver {
    pub fn new(log_interval: usize) -> ConsoleObserver {
        ConsoleObserver { log_interval, progress: None }
    }
}

impl Observer for ConsoleObserver {
    fn message(&mut self, line: &str) {
        // A closed stdout (a hung-up terminal) must not turn into a panic mid-run.
        let _ = writeln!(std::io::stdout(), "{line}");
    }
    fn warning(&mut self, line: &str) {
        let _ = writeln!(std::io::stderr(), "convtrain: warning: {line}");
    }
    fn epoch_started(&mut self, epoch: usize, epochs: usize, batches: usize) {
        self.progress = Some(Progress::new(epoch, epochs, batches, self.log_interval));
    }
    fn batch_done(&mut self, done: usize, loss: f64, top1: f64, lr: f64, images_per_second: f64) {
        if let Some(p) = &self.progress {
            p.update(done, loss, top1, lr, images_per_second);
        }
    }
    fn epoch_finished(&mut self) {
        if let Some(p) = self.progress.take() {
            p.finish();
        }
    }
}

/// Reports nothing (a sweep shows its own progress).
#[derive(Debug, Default, Clone, Copy)]
pub struct SilentObserver;

impl Observer for SilentObserver {
    fn message(&mut self, _: &str) {}
    fn epoch_started(&mut self, _: usize, _: usize, _: usize) {}
    fn batch_done(&mut self, _: usize, _: f64, _: f64, _: f64, _: f64) {}
    fn epoch_finished(&mut self) {}
}

/// Decides after each epoch whether the run ends early.
pub trait StopRule {
    /// `Some(reason)` to stop after the epoch `row` describes.
    fn check(&self, row: &EpochRow) -> Option<String>;
}

/// Stops a run whose training top-1 is still below `min_train_top1` percent once `epoch` (1-based)
/// epochs are done — e.g. the VGG sweep's "no learning by epoch 10" abort.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinTrainAccuracy {
    pub epoch: usize,
    pub min_train_top1: f64,
}

impl StopRule for MinTrainAccuracy {
    fn check(&self, row: &EpochRow) -> Option<String> {
        (row.epoch == self.epoch && row.train_top1 < self.min_train_top1).then(|| {
            format!(
                "training top-1 {:.2}% after epoch {} is below {:.2}%",
                row.train_top1, row.epoch, self.min_train_top1
            )
        })
    }
}

/// A request to stop: set by a signal ([`super::signals`]) or a caller, read by the trainer between
/// steps, which then writes a checkpoint and returns [`Error::Interrupted`](crate::Error::Interrupted)
/// naming the signal, so that the exit status follows it. The first request's signal is kept.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicU8>);

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Asks the run to stop at the next safe point, as SIGINT does; returns whether it had been asked
    /// already.
    pub fn request(&self) -> bool {
        self.request_by(StopSignal::Interrupt)
    }

    /// Asks the run to stop because of `signal`; returns whether it had been asked already (the
    /// earlier signal is kept).
    pub fn request_by(&self, signal: StopSignal) -> bool {
        let code = StopSignal::ALL.iter().position(|&s| s == signal).unwrap_or(0) as u8 + 1;
        self.0.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst).is_err()
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst) != 0
    }

    /// The signal of the stop request, if there is one.
    pub fn signal(&self) -> Option<StopSignal> {
        (self.0.load(Ordering::SeqCst) as usize).checked_sub(1).map(|i| StopSignal::ALL[i])
    }

    /// Makes SIGINT, SIGTERM, SIGHUP and SIGUSR1 request a stop while the returned value lives; a
    /// second signal ends the process at once (see [`super::signals`]).
    pub fn install_signal_handlers(&self) -> Result<SignalHandlers> {
        let flag = self.clone();
        signals::install(move |signal| flag.request_by(signal))
    }
}

/// What a caller plugs into a run.
pub struct Hooks {
    pub observer: Box<dyn Observer>,
    pub stop_rules: Vec<Box<dyn StopRule>>,
    pub interrupt: Interrupt,
    /// Parameters (by name prefix) kept out of the optimizer, weight decay and the trainable count.
    pub frozen: Vec<String>,
}

impl Hooks {
    /// Console output, no stop rule, nothing frozen.
    pub fn console(log_interval: usize, interrupt: Interrupt) -> Hooks {
        Hooks {
            observer: Box::new(ConsoleObserver::new(log_interval)),
            stop_rules: Vec::new(),
            interrupt,
            frozen: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_train_accuracy_fires_only_at_its_epoch_and_below_its_threshold() {
        let rule = MinTrainAccuracy { epoch: 10, min_train_top1: 20.0 };
        let row = |epoch, train_top1| EpochRow { epoch, train_top1, ..EpochRow::default() };
        assert!(rule.check(&row(9, 5.0)).is_none());
        assert!(rule.check(&row(10, 25.0)).is_none());
        assert!(rule.check(&row(10, 19.9)).unwrap().contains("below 20.00%"));
    }

    #[test]
    fn an_interrupt_is_shared_by_its_clones() {
        let a = Interrupt::new();
        let b = a.clone();
        assert!(!b.is_requested());
        assert!(!a.request());
        assert!(b.is_requested() && b.request());
        assert_eq!(a.signal(), Some(StopSignal::Interrupt));
    }

    #[test]
    fn the_first_signal_is_kept() {
        let a = Interrupt::new();
        assert_eq!(a.signal(), None);
        assert!(!a.request_by(StopSignal::User1));
        assert!(a.request_by(StopSignal::Terminate));
        assert_eq!(a.signal(), Some(StopSignal::User1));
    }
}
