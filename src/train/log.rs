//! `log.csv`: one row per finished epoch, appended and fsynced as written. On resume the file is cut
//! back (atomically) to the epochs the checkpoint covers, and a torn last line (a write cut short) is
//! dropped, so the log only ever holds whole rows that match the weights. Anything else that does not
//! read as the header and rows 1, 2, 3, … — a damaged or edited line, a missing row — is an error
//! naming the line: a log convtrain cannot read is never rewritten.
use crate::checkpoint::write_atomic;
use crate::error::{IoContext, Result};
use crate::input_err;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const HEADER: &str =
    "epoch,lr,train_loss,train_top1,val_loss,val_top1,val_top5,best_val_top1,epoch_seconds,images_per_second";

/// One epoch's numbers (accuracies in percent).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct EpochRow {
    /// 1-based number of the finished epoch.
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_top1: f64,
    pub val_loss: f64,
    pub val_top1: f64,
    pub val_top5: f64,
    pub best_val_top1: f64,
    pub epoch_seconds: f64,
    pub images_per_second: f64,
}

impl EpochRow {
    fn to_line(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{:.3},{:.1}\n",
            self.epoch,
            self.lr,
            self.train_loss,
            self.train_top1,
            self.val_loss,
            self.val_top1,
            self.val_top5,
            self.best_val_top1,
            self.epoch_seconds,
            self.images_per_second
        )
    }

    pub fn parse(line: &str) -> Option<EpochRow> {
        let f: Vec<&str> = line.trim_end().split(',').collect();
        if f.len() != 10 {
            return None;
        }
        let n = |i: usize| f[i].parse::<f64>().ok();
        Some(EpochRow {
            epoch: f[0].parse().ok()?,
            lr: n(1)?,
            train_loss: n(2)?,
            train_top1: n(3)?,
            val_loss: n(4)?,
            val_top1: n(5)?,
            val_top5: n(6)?,
            best_val_top1: n(7)?,
            epoch_seconds: n(8)?,
            images_per_second: n(9)?,
        })
    }
}

/// Reads all whole rows of a log file; a line that is not the header or the next epoch's row is an
/// error naming it.
pub fn read_rows(path: &Path) -> Result<Vec<EpochRow>> {
    let text = std::fs::read_to_string(path).at(path)?;
    let bad = |n: usize, line: &str, what: &str| {
        input_err!(
            "{}: line {n} ({:?}) {what}. convtrain does not rewrite a log it cannot read: restore the line (or the \
             file) from a copy, or start the run over with --overwrite.",
            path.display(),
            line.trim_end()
        )
    };
    let mut lines = text.split_inclusive('\n').enumerate();
    match lines.next() {
        Some((_, h)) if h.trim_end() == HEADER => {}
        Some((_, h)) if !h.ends_with('\n') && HEADER.starts_with(h) => return Ok(Vec::new()), // torn header
        Some((_, h)) => return Err(bad(1, h, &format!("is not the header '{HEADER}'"))),
        None => return Ok(Vec::new()),
    }
    let mut rows: Vec<EpochRow> = Vec::new();
    for (i, line) in lines {
        if !line.ends_with('\n') {
            break; // torn last line from a crash mid-write
        }
        let row = EpochRow::parse(line).ok_or_else(|| bad(i + 1, line, "is not a row of 10 numbers"))?;
        let want = rows.len() + 1;
        if row.epoch != want {
            return Err(bad(i + 1, line, &format!("is the row of epoch {} where epoch {want}'s belongs", row.epoch)));
        }
        rows.push(row);
    }
    Ok(rows)
}

#[derive(Debug)]
pub struct CsvLog {
    path: PathBuf,
}

impl CsvLog {
    /// Opens (or creates) the log, keeping only rows of epochs ≤ `keep_epochs`; a log that lacks one of
    /// those rows is an error.
    pub fn open(path: &Path, keep_epochs: usize) -> Result<CsvLog> {
        let rows = if path.exists() { read_rows(path)? } else { Vec::new() };
        if rows.len() < keep_epochs {
            return Err(input_err!(
                "{}: the log has rows for {} epochs, but the checkpoint has finished {keep_epochs}: the rows from epoch \
                 {} on are missing. Restore the log from a copy, or start the run over with --overwrite.",
                path.display(),
                rows.len(),
                rows.len() + 1
            ));
        }
        let kept: String = rows.iter().filter(|r| r.epoch <= keep_epochs).map(EpochRow::to_line).collect();
        let want = format!("{HEADER}\n{kept}");
        let current = std::fs::read_to_string(path).unwrap_or_default();
        if current != want {
            write_atomic(path, want.as_bytes())?;
        }
        Ok(CsvLog { path: path.to_path_buf() })
    }

    pub fn append(&self, row: &EpochRow) -> Result<()> {
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.path).at(&self.path)?;
        f.write_all(row.to_line().as_bytes()).at(&self.path)?;
        f.sync_data().at(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(e: usize) -> EpochRow {
        EpochRow {
            epoch: e,
            lr: 0.1,
            train_loss: 1.5,
            train_top1: 40.0,
            val_loss: 1.2,
            val_top1: 50.0,
            val_top5: 90.0,
            best_val_top1: 50.0,
            epoch_seconds: 1.0,
            images_per_second: 100.0,
        }
    }

    #[test]
    fn resume_truncates_to_checkpoint_and_drops_torn_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log.csv");
        let log = CsvLog::open(&p, 0).unwrap();
        for e in 1..=3 {
            log.append(&row(e)).unwrap();
        }
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str("4,0.1,1.");
        std::fs::write(&p, text).unwrap();
        assert_eq!(read_rows(&p).unwrap().len(), 3);
        CsvLog::open(&p, 2).unwrap();
        let rows = read_rows(&p).unwrap();
        assert_eq!(rows, vec![row(1), row(2)]);
        assert!(std::fs::read_to_string(&p).unwrap().ends_with('\n'));
    }

    #[test]
    fn damaged_rows_and_gaps_are_errors_naming_the_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log.csv");
        let good = format!("{HEADER}\n{}{}", row(1).to_line(), row(2).to_line());
        for (text, needle) in [
            (format!("{good}garbage\n"), "line 4"),
            (format!("{HEADER}\n# a comment\n{}", row(1).to_line()), "line 2"),
            (format!("{HEADER}\n{}{}", row(1).to_line(), row(3).to_line()), "epoch 2"),
            (format!("epoch,lr\n{}", row(1).to_line()), "header"),
        ] {
            std::fs::write(&p, &text).unwrap();
            let e = CsvLog::open(&p, 1).unwrap_err().to_string();
            assert!(e.contains("log.csv") && e.contains(needle), "{text:?}: {e}");
            assert_eq!(std::fs::read_to_string(&p).unwrap(), text, "an unreadable log is left as it is");
        }
        std::fs::write(&p, &good).unwrap();
        let e = CsvLog::open(&p, 3).unwrap_err().to_string();
        assert!(e.contains("missing") && e.contains("epoch 3"), "{e}");
    }
}
