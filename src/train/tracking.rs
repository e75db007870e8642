//! Experiment tracking of a run, on by default: `metrics.jsonl` (one JSON object per line: `kind`
//! `step` every `log_interval` optimizer steps, `epoch` after each validation, `test` at the end) and
//! the same scalars in TensorBoard's event file ([`super::tfevents`]). Every record is one `write` on a
//! file opened for appending, so a killed process leaves whole records; a torn last line (power loss)
//! is ignored on read. On resume both files are cut back to what the checkpoint covers (records of later
//! steps and the previous test results go), so a resumed run's records equal an uninterrupted run's.
use super::log::EpochRow;
use super::memory::rss_bytes;
use super::run_dir::RunDir;
use super::tfevents::{Event, EventWriter};
use crate::checkpoint::write_atomic;
use crate::error::{to_json, to_json_value, IoContext, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the run stands when it resumes: records past it are dropped.
#[derive(Debug, Clone, Copy)]
pub struct Covered {
    /// Optimizer steps the checkpoint holds.
    pub steps: u64,
    /// Finished epochs.
    pub epochs: usize,
    /// The test results stand: the run has finished and its `test.json` was written (after the
    /// records, so a run killed in between scores again and records once).
    pub tested: bool,
}

/// Whether a record belongs to the part of the run `covered` describes.
fn is_covered(kind: &str, step: u64, epoch: u64, covered: Covered) -> bool {
    match kind {
        "step" => step <= covered.steps,
        "epoch" => epoch as usize <= covered.epochs,
        "test" => covered.tested,
        _ => false,
    }
}

/// The whole records of `metrics.jsonl`; a torn (unterminated or unparsable) last line is ignored.
pub fn read_metrics(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).at(path)?;
    Ok(text.split_inclusive('\n').filter(|l| l.ends_with('\n')).filter_map(|l| serde_json::from_str(l).ok()).collect())
}

/// The writer of a run's tracking files.
#[derive(Debug)]
pub struct Tracker {
    metrics: PathBuf,
    events: EventWriter,
}

impl Tracker {
    /// Opens (or creates) the run's `metrics.jsonl` and event file, keeping what `covered` covers.
    pub fn open(run: &RunDir, covered: Covered) -> Result<Tracker> {
        let metrics = run.metrics();
        let current = if metrics.exists() { std::fs::read_to_string(&metrics).at(&metrics)? } else { String::new() };
        let kept: String = current
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .filter(|l| {
                serde_json::from_str::<Value>(l).is_ok_and(|v| {
                    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
                    is_covered(v.get("kind").and_then(Value::as_str).unwrap_or(""), n("step"), n("epoch"), covered)
                })
            })
            .collect();
        if kept != current || !metrics.exists() {
            write_atomic(&metrics, kept.as_bytes())?;
        }
        // An event's kind by its first tag: `train/…` a step, `epoch/…` an epoch (its epoch number first).
        let events = EventWriter::open(&run.events(), |e: &Event| match e.scalars.first() {
            Some((tag, _)) if tag.starts_with("train/") => is_covered("step", e.step as u64, 0, covered),
            Some((tag, epoch)) if tag == "epoch/epoch" => is_covered("epoch", 0, *epoch as u64, covered),
            Some((tag, _)) if tag.starts_with("test/") => is_covered("test", 0, 0, covered),
            _ => false,
        })?;
        Ok(Tracker { metrics, events })
    }

    fn append(&self, record: &Value) -> Result<()> {
        let line = to_json(record, "a metrics record")? + "\n";
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.metrics).at(&self.metrics)?;
        f.write_all(line.as_bytes()).at(&self.metrics)
    }

    /// The running numbers of the epoch after optimizer step `step` (mini-batch `batch`, 1-based).
    #[allow(clippy::too_many_arguments)]
    pub fn step(&self, step: u64, epoch: usize, batch: usize, lr: f64, loss: f64, top1: f64, ips: f64) -> Result<()> {
        self.append(&json!({
            "kind": "step", "step": step, "epoch": epoch + 1, "batch": batch, "lr": lr,
            "loss": loss, "top1": top1, "images_per_second": ips,
        }))?;
        self.events.scalars(
            step as i64,
            &[("train/loss", loss), ("train/top1", top1), ("train/lr", lr), ("train/images_per_second", ips)],
        )
    }

    /// An epoch's row, at optimizer step `step`.
    pub fn epoch(&self, step: u64, row: &EpochRow) -> Result<()> {
        let mut record = to_json_value(row, "an epoch's metrics")?;
        // Resident memory at the epoch's end: a run whose memory grows shows it here.
        let rss = rss_bytes();
        if let Value::Object(m) = &mut record {
            m.insert("kind".into(), "epoch".into());
            m.insert("step".into(), step.into());
            m.insert("rss_bytes".into(), rss.into());
        }
        self.append(&record)?;
        // The epoch number stays the first tag: it is how a resume recognises an epoch's event.
        let rss_mib = rss.map(|b| ("system/rss_mib", b as f64 / (1u64 << 20) as f64));
        let scalars: Vec<(&str, f64)> = [
            ("epoch/epoch", row.epoch as f64),
            ("epoch/lr", row.lr),
            ("epoch/train_loss", row.train_loss),
            ("epoch/train_top1", row.train_top1),
            ("val/loss", row.val_loss),
            ("val/top1", row.val_top1),
            ("val/top5", row.val_top5),
            ("val/best_top1", row.best_val_top1),
            ("epoch/images_per_second", row.images_per_second),
        ]
        .into_iter()
        .chain(rss_mib)
        .collect();
        self.events.scalars(step as i64, &scalars)
    }

    /// A checkpoint's (`which`: best or last) test scores, at optimizer step `step`.
    pub fn test(&self, step: u64, which: &str, epoch: usize, loss: f64, top1: f64, top5: f64) -> Result<()> {
        self.append(&json!({
            "kind": "test", "step": step, "checkpoint": which, "epoch": epoch, "loss": loss, "top1": top1, "top5": top5,
        }))?;
        let tags = [format!("test/{which}_loss"), format!("test/{which}_top1"), format!("test/{which}_top5")];
        self.events.scalars(step as i64, &[(&tags[0], loss), (&tags[1], top1), (&tags[2], top5)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::tfevents::read;

    #[test]
    fn resume_keeps_what_the_checkpoint_covers_and_a_torn_line_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        let run = RunDir { dir: d.path().to_path_buf() };
        let t = Tracker::open(&run, Covered { steps: 0, epochs: 0, tested: false }).unwrap();
        for s in 1..=4 {
            t.step(s, (s as usize - 1) / 2, 1, 0.1, 1.0, 50.0, 10.0).unwrap();
            if s % 2 == 0 {
                t.epoch(s, &EpochRow { epoch: s as usize / 2, ..Default::default() }).unwrap();
            }
        }
        t.test(4, "best", 2, 0.5, 80.0, 99.0).unwrap();
        let mut text = std::fs::read_to_string(run.metrics()).unwrap();
        assert_eq!(read_metrics(&run.metrics()).unwrap().len(), 7);
        text.push_str("{\"kind\": \"st");
        std::fs::write(run.metrics(), &text).unwrap();
        assert_eq!(read_metrics(&run.metrics()).unwrap().len(), 7);
        // A finished, tested run resumed with nothing to do keeps everything.
        Tracker::open(&run, Covered { steps: 4, epochs: 2, tested: true }).unwrap();
        assert_eq!(read_metrics(&run.metrics()).unwrap().len(), 7);
        assert_eq!(read(&run.events()).unwrap().len(), 1 + 4 + 2 + 1);
        // Resumed after epoch 1 (2 steps): steps 3-4, epoch 2 and the test results go, in both files.
        Tracker::open(&run, Covered { steps: 2, epochs: 1, tested: false }).unwrap();
        let kinds: Vec<(String, u64)> = read_metrics(&run.metrics())
            .unwrap()
            .iter()
            .map(|v| (v["kind"].as_str().unwrap().to_string(), v["step"].as_u64().unwrap()))
            .collect();
        assert_eq!(kinds, vec![("step".into(), 1), ("step".into(), 2), ("epoch".into(), 2)]);
        let steps: Vec<i64> = read(&run.events()).unwrap().iter().map(|e| e.step).collect();
        assert_eq!(steps, vec![0, 1, 2, 2]);
    }
}
