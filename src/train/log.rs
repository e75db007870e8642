//! `log.csv`: one row per finished epoch, appended and fsynced as written. On resume the file is cut
//! back (atomically) to the epochs the checkpoint covers, and a torn last line is dropped, so the log
//! only ever holds whole rows that match the weights.
use crate::checkpoint::write_atomic;
use crate::error::{IoContext, Result};
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

/// Reads all whole rows of a log file.
pub fn read_rows(path: &Path) -> Result<Vec<EpochRow>> {
    let text = std::fs::read_to_string(path).at(path)?;
    let mut rows = Vec::new();
    for line in text.split_inclusive('\n').skip(1) {
        if !line.ends_with('\n') {
            break; // torn last line from a crash mid-write
        }
        if let Some(r) = EpochRow::parse(line) {
            rows.push(r);
        }
    }
    Ok(rows)
}

#[derive(Debug)]
pub struct CsvLog {
    path: PathBuf,
}

impl CsvLog {
    /// Opens (or creates) the log, keeping only rows of epochs ≤ `keep_epochs`.
    pub fn open(path: &Path, keep_epochs: usize) -> Result<CsvLog> {
        let rows = if path.exists() { read_rows(path)? } else { Vec::new() };
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
}
