//! What a running sweep shows: on a terminal, a sweep bar (points done of the shard's, failures,
//! speed, ETA) above the running point's epoch bar, with one compact line per epoch printed above
//! both; elsewhere (Slurm logs) the same as plain lines. The trainer itself stays quiet: each point
//! gets a [`PointObserver`], which feeds the shared [`SweepProgress`].
//!
//! The ETA is the remaining estimated work (MACs per image × images, [`super::spec::Point::cost`])
//! divided by the work per second measured in this process, so a point 160× costlier than the
//! current one counts 160× longer — for equal models it is images/s × remaining images.
use crate::train::hooks::Observer;
use crate::train::log::EpochRow;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::cell::RefCell;
use std::io::IsTerminal;
use std::rc::Rc;
use std::time::Instant;

/// `1h02m`, `3m05s`, `42s`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// The shard's progress, shared by the runner and the running point's observer.
pub struct SweepProgress {
    points: usize,
    done: usize,
    failed: usize,
    /// Estimated work of the points not done, the running one included in full.
    remaining_work: f64,
    /// Work trained in this process, and since when.
    session_work: f64,
    session_start: Instant,
    images_per_second: f64,
    log_interval: usize,
    bars: Option<(MultiProgress, ProgressBar)>,
}

impl SweepProgress {
    /// `points` in the shard, `done` of them already done; `remaining_work` is the others' cost.
    pub fn new(points: usize, done: usize, remaining_work: f64, log_interval: usize) -> Rc<RefCell<SweepProgress>> {
        let bars = std::io::stdout().is_terminal().then(|| {
            let multi = MultiProgress::new();
            let bar = multi.add(ProgressBar::new(points as u64));
            let style = ProgressStyle::with_template("sweep [{bar:30}] {pos}/{len} points {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_position(done as u64);
            (multi, bar)
        });
        Rc::new(RefCell::new(SweepProgress {
            points,
            done,
            failed: 0,
            remaining_work,
            session_work: 0.0,
            session_start: Instant::now(),
            images_per_second: 0.0,
            log_interval: log_interval.max(1),
            bars,
        }))
    }

    /// Prints a line (above the bars on a terminal).
    pub fn line(&self, text: &str) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => println!("{text}"),
        }
    }

    /// Seconds left: the work left (the running point's `running_done` deducted) at the rate measured
    /// over `elapsed` seconds; `None` before any work.
    fn eta(&self, running_done: f64, elapsed: f64) -> Option<f64> {
        let rate = self.session_work / elapsed.max(1e-9);
        (rate > 0.0).then(|| (self.remaining_work - running_done).max(0.0) / rate)
    }

    /// Done points, failures, speed and the ETA, given the work `running_done` of the running point.
    fn status(&self, running_done: f64) -> String {
        let eta =
            self.eta(running_done, self.session_start.elapsed().as_secs_f64()).map_or("--".into(), format_duration);
        let failed = if self.failed > 0 { format!(", {} failed", self.failed) } else { String::new() };
        format!("({} of {} done{failed}) | {:.0} img/s | ETA {eta}", self.done, self.points, self.images_per_second)
    }

    /// A point ended: `cost` leaves the remaining work.
    pub fn point_done(&mut self, cost: f64, failed: bool, summary: &str) {
        self.done += 1;
        self.failed += usize::from(failed);
        self.remaining_work = (self.remaining_work - cost).max(0.0);
        self.line(summary);
        if let Some((_, bar)) = &self.bars {
            bar.set_position(self.done as u64);
            bar.set_message(self.status(0.0));
        }
    }

    /// Removes the bars (at the end, or before an error message).
    pub fn finish(&self) {
        if let Some((_, bar)) = &self.bars {
            bar.finish_and_clear();
        }
    }
}

/// The observer of one point's run: quiet, but it moves the sweep's bars and prints a compact line per
/// epoch (and the trainer's warnings).
pub struct PointObserver {
    sweep: Rc<RefCell<SweepProgress>>,
    /// `[3/20 variant-003]`.
    label: String,
    cost: f64,
    epoch: usize,
    epochs: usize,
    batches: usize,
    /// Fraction of the point trained, when last reported.
    fraction: Option<f64>,
    bar: Option<ProgressBar>,
    epoch_start: Instant,
}

impl PointObserver {
    pub fn new(sweep: Rc<RefCell<SweepProgress>>, label: String, cost: f64) -> PointObserver {
        PointObserver {
            sweep,
            label,
            cost,
            epoch: 0,
            epochs: 1,
            batches: 1,
            fraction: None,
            bar: None,
            epoch_start: Instant::now(),
        }
    }

    /// Records that the point has trained up to `fraction`; the first report only sets the start
    /// (a resumed point's earlier work was not done in this process).
    fn advance(&mut self, fraction: f64) {
        let mut sweep = self.sweep.borrow_mut();
        if let Some(before) = self.fraction {
            sweep.session_work += (fraction - before).max(0.0) * self.cost;
        }
        self.fraction = Some(fraction);
    }
}

impl Observer for PointObserver {
    fn message(&mut self, _: &str) {}

    fn warning(&mut self, line: &str) {
        self.sweep.borrow().line(&format!("{} {line}", self.label));
    }

    fn epoch_started(&mut self, epoch: usize, epochs: usize, batches: usize) {
        (self.epoch, self.epochs, self.batches) = (epoch, epochs.max(1), batches.max(1));
        self.epoch_start = Instant::now();
        let sweep = self.sweep.borrow();
        self.bar = sweep.bars.as_ref().map(|(multi, _)| {
            let bar = multi.add(ProgressBar::new(batches as u64));
            let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(format!("{} epoch {}/{}", self.label, epoch + 1, epochs));
            bar
        });
    }

    fn batch_done(&mut self, done: usize, loss: f64, top1: f64, _lr: f64, images_per_second: f64) {
        if self.fraction.is_none() {
            // Work in this process starts before this batch.
            self.advance((self.epoch as f64 + (done - 1) as f64 / self.batches as f64) / self.epochs as f64);
        }
        let fraction = (self.epoch as f64 + done as f64 / self.batches as f64) / self.epochs as f64;
        self.advance(fraction);
        let mut sweep = self.sweep.borrow_mut();
        sweep.images_per_second = images_per_second;
        let status = sweep.status(self.cost * fraction);
        let msg = format!("loss {loss:.4} top1 {top1:.2}%");
        match (&self.bar, &sweep.bars) {
            (Some(bar), Some((_, sweep_bar))) => {
                bar.set_position(done as u64);
                bar.set_message(msg);
                sweep_bar.set_message(status);
            }
            _ if done.is_multiple_of(sweep.log_interval) => {
                println!(
                    "{} epoch {}/{} [{done}/{}] {msg} {status}",
                    self.label,
                    self.epoch + 1,
                    self.epochs,
                    self.batches
                )
            }
            _ => {}
        }
    }

    fn epoch_finished(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn epoch_logged(&mut self, row: &EpochRow) {
        let sweep = self.sweep.borrow();
        let fraction = self.fraction.unwrap_or(row.epoch as f64 / self.epochs as f64);
        sweep.line(&format!(
            "{} epoch {}/{}: train {:.2}% val {:.2}% (best {:.2}%) | {:.1}s | sweep {}",
            self.label,
            row.epoch,
            self.epochs,
            row.train_top1,
            row.val_top1,
            row.best_val_top1,
            self.epoch_start.elapsed().as_secs_f64(),
            sweep.status(self.cost * fraction)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(format_duration(42.4), "42s");
        assert_eq!(format_duration(185.0), "3m05s");
        assert_eq!(format_duration(3720.0), "1h02m");
    }

    #[test]
    fn the_eta_scales_the_measured_speed_by_the_work_left() {
        let sweep = SweepProgress::new(3, 0, 300.0, 10);
        let mut obs = PointObserver::new(sweep.clone(), "[1/3 a]".into(), 100.0);
        obs.epoch_started(0, 1, 10);
        obs.batch_done(1, 1.0, 10.0, 0.1, 5.0);
        obs.batch_done(5, 1.0, 10.0, 0.1, 5.0);
        // Half of point a (cost 100) is trained in this process.
        assert!((sweep.borrow().session_work - 50.0).abs() < 1e-9);
        // Left: 50 of a and 200 of the others, five times the work done so far.
        let s = sweep.borrow();
        assert_eq!(s.eta(50.0, 2.0), Some(10.0));
        assert!(s.status(50.0).contains("(0 of 3 done)") && s.status(50.0).contains("5 img/s"));
    }
}
