//! Per-epoch progress: an indicatif bar on a terminal, plain periodic lines otherwise (CI, Slurm logs).
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    bar: Option<ProgressBar>,
    epoch: usize,
    epochs: usize,
    total: usize,
    interval: usize,
    start: Instant,
}

impl Progress {
    pub fn new(epoch: usize, epochs: usize, total: usize, interval: usize) -> Progress {
        let bar = std::io::stdout().is_terminal().then(|| {
            let b = ProgressBar::new(total as u64);
            let style = ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            b.set_style(style);
            b.set_prefix(format!("{}/{}", epoch + 1, epochs));
            b
        });
        Progress { bar, epoch, epochs, total, interval: interval.max(1), start: Instant::now() }
    }

    /// After mini-batch `done` (1-based) of the epoch.
    pub fn update(&self, done: usize, loss: f64, top1: f64, lr: f64, images_per_second: f64) {
        let msg = format!("loss {loss:.4} top1 {top1:.2}% lr {lr:.4e} {images_per_second:.0} img/s");
        match &self.bar {
            Some(b) => {
                b.set_position(done as u64);
                b.set_message(msg);
            }
            None if done.is_multiple_of(self.interval) || done == self.total => {
                // A closed stdout (a hung-up terminal) must not turn into a panic mid-run.
                let _ = writeln!(
                    std::io::stdout(),
                    "epoch {}/{} [{done}/{}] {msg} ({:.1}s)",
                    self.epoch + 1,
                    self.epochs,
                    self.total,
                    self.start.elapsed().as_secs_f64()
                );
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
