//! `log.csv`: one row per finished epoch under a header, written with the `csv` crate and read by
//! column name, so a log with more (or reordered) columns reads, and so do the logs of earlier versions
//! (the ten columns of [`HEADER`], which every log has). Rows are appended and fsynced as written. On
//! resume the file is cut back (atomically) to the epochs the checkpoint covers, and a torn last line (a
//! write cut short) is dropped, so the log only ever holds whole rows that match the weights. Anything
//! else that does not read as the header and rows 1, 2, 3, … — a damaged or edited line, a missing row —
//! is an error naming the line: a log convtrain cannot read is never rewritten.
use crate::checkpoint::write_atomic;
use crate::error::{IoContext, Result};
use crate::{input_err, internal_err};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The columns convtrain writes, in order (every log since the first version has them).
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
    /// The row as a CSV line under [`HEADER`].
    fn to_line(&self) -> Result<String> {
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        w.serialize(self).map_err(|e| internal_err!("cannot write a log row: {e}"))?;
        let bytes = w.into_inner().map_err(|e| internal_err!("cannot write a log row: {e}"))?;
        String::from_utf8(bytes).map_err(|e| internal_err!("a log row is not UTF-8: {e}"))
    }
}

/// Reads all whole rows of a log file by column name; a line that is not the header or the next
/// epoch's row is an error naming it.
pub fn read_rows(path: &Path) -> Result<Vec<EpochRow>> {
    let text = std::fs::read_to_string(path).at(path)?;
    let bad = |n: u64, what: &str| {
        let line = text.lines().nth(n.saturating_sub(1) as usize).unwrap_or("");
        input_err!(
            "{}: line {n} ({line:?}) {what}. convtrain does not rewrite a log it cannot read: restore the line (or the \
             file) from a copy, or start the run over with --overwrite.",
            path.display()
        )
    };
    // Whole lines only: a last line without its newline is a write cut short.
    let whole = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => return Ok(Vec::new()), // nothing, or a torn header
    };
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(whole.as_bytes());
    let headers = reader.headers().map_err(|e| bad(1, &format!("is not a CSV header ({e})")))?.clone();
    if let Some(missing) = HEADER.split(',').find(|c| !headers.iter().any(|h| h == *c)) {
        return Err(bad(
            1,
            &format!("is not the header of a convtrain log (no column '{missing}'; expected '{HEADER}')"),
        ));
    }
    let mut rows: Vec<EpochRow> = Vec::new();
    for record in reader.records() {
        let (record, line) = match record {
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line());
                (r, line)
            }
            Err(e) => {
                let line = e.position().map_or(rows.len() as u64 + 2, |p| p.line());
                return Err(bad(line, &format!("is not a row of the header's columns ({e})")));
            }
        };
        let row: EpochRow =
            record.deserialize(Some(&headers)).map_err(|e| bad(line, &format!("is not a row of numbers ({e})")))?;
        let want = rows.len() + 1;
        if row.epoch != want {
            return Err(bad(line, &format!("is the row of epoch {} where epoch {want}'s belongs", row.epoch)));
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
        let mut want = format!("{HEADER}\n");
        for r in rows.iter().filter(|r| r.epoch <= keep_epochs) {
            want += &r.to_line()?;
        }
        let current = std::fs::read_to_string(path).unwrap_or_default();
        if current != want {
            write_atomic(path, want.as_bytes())?;
        }
        Ok(CsvLog { path: path.to_path_buf() })
    }

    pub fn append(&self, row: &EpochRow) -> Result<()> {
        let line = row.to_line()?;
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.path).at(&self.path)?;
        f.write_all(line.as_bytes()).at(&self.path)?;
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
        assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("{HEADER}\n"));
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
        let line = |e| row(e).to_line().unwrap();
        let good = format!("{HEADER}\n{}{}", line(1), line(2));
        for (text, needle) in [
            (format!("{good}garbage\n"), "line 4"),
            (format!("{HEADER}\n# a comment\n{}", line(1)), "line 2"),
            (format!("{HEADER}\n{}{}", line(1), line(3)), "epoch 2"),
            (format!("epoch,lr\n{}", line(1)), "header"),
            (format!("{HEADER}\n1,0.1,x,4,5,6,7,8,9,10\n"), "line 2"),
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

    #[test]
    fn logs_of_earlier_versions_and_logs_with_more_columns_read_by_name() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log.csv");
        // As convtrain 0.1 wrote it (format! with fixed decimals for the last two columns).
        let old = format!(
            "{HEADER}\n1,0.1,2.0412,24.5,1.9876,30.25,81,30.25,12.345,123.4\n2,0.1,1.5,40,1.2,50,90,50,24.000,120.0\n"
        );
        std::fs::write(&p, &old).unwrap();
        let rows = read_rows(&p).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].train_loss, rows[0].epoch_seconds, rows[1].val_top1), (2.0412, 12.345, 50.0));
        // A later version's extra column, in another order: read by name.
        let wide = "val_top1,epoch,lr,train_loss,train_top1,val_loss,val_top5,best_val_top1,epoch_seconds,images_per_second,test_top1\n\
                    30.25,1,0.1,2.0,24.5,1.9,81,30.25,12.3,123.4,29.9\n";
        std::fs::write(&p, wide).unwrap();
        let rows = read_rows(&p).unwrap();
        assert_eq!((rows[0].epoch, rows[0].val_top1, rows[0].train_loss), (1, 30.25, 2.0));
        // Resuming an old log keeps its rows (rewritten under the current header).
        std::fs::write(&p, &old).unwrap();
        let before = read_rows(&p).unwrap();
        CsvLog::open(&p, 2).unwrap();
        assert_eq!(read_rows(&p).unwrap(), before);
        assert!(std::fs::read_to_string(&p).unwrap().starts_with(&format!("{HEADER}\n1,0.1,2.0412,")));
    }
}
