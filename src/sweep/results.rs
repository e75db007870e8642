//! A point's result (`result.json` in its run directory, the record that it is done) and the results
//! CSV built from those records: one row per point, the original's columns (vgg_features.md §5.1) after
//! the point's own, then convtrain's.
use super::spec::{Point, SweepSpec};
use crate::checkpoint::write_atomic;
use crate::error::{read_json_if_present, to_json_pretty, IoContext, Result};
use crate::input_err;
use crate::train::evaluate::TestReport;
use crate::train::log::EpochRow;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const RESULT_FILE: &str = "result.json";

/// How a point ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Trained every epoch.
    Finished,
    /// A stop rule ended it early (the VGG sweep's abort, vgg_features.md §3.6); its row is written.
    Aborted,
    /// Diverged or ran out of memory.
    Failed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Finished => "finished",
            Status::Aborted => "aborted",
            Status::Failed => "failed",
        }
    }
}

/// What a done point reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointResult {
    pub id: usize,
    pub status: Status,
    /// Why it was aborted or failed (empty when finished).
    pub reason: String,
    /// Every epoch it trained (for a failed point, those before the failure), from the run's log.
    pub history: Vec<EpochRow>,
    /// Trainable parameters of its model (from the run's `config.json`).
    pub trainable_parameters: Option<i64>,
    /// The best (by validation) and last checkpoints scored on the test split at the end, as the run's
    /// `test.json` has them (absent when the run did not score them: validation on the test set, or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestReport>,
    /// Wall-clock seconds of the attempt that completed it (start-up, training, validation,
    /// checkpoints; the epochs of earlier, interrupted attempts are in `train_seconds` only).
    pub wall_seconds: f64,
}

impl PointResult {
    /// The result in `run_dir`, if the point is done.
    pub fn read(run_dir: &Path) -> Result<Option<PointResult>> {
        let path = run_dir.join(RESULT_FILE);
        read_json_if_present(&path, |e| {
            input_err!("{}: corrupt point result ({e}); delete it to train the point again.", path.display())
        })
    }

    /// Writes `run_dir/result.json` atomically.
    pub fn write(&self, run_dir: &Path) -> Result<()> {
        write_atomic(&run_dir.join(RESULT_FILE), to_json_pretty(self, "the point result")?.as_bytes())
    }

    /// The trainable-parameter count a run's `config.json` records.
    pub fn run_parameters(run_dir: &Path) -> Option<i64> {
        let text = std::fs::read_to_string(run_dir.join("config.json")).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?.get("parameters")?.as_i64()
    }
}

/// The metric columns: the original's (BestEpoch 0-based as there; accuracies in %; the lists are
/// Python-style `[a, b, …]`), then status, reason, epochs trained, trainable parameters, training
/// seconds (all epochs, resumed parts included), wall seconds, training images per second, and the
/// test top-1 of the best and last checkpoints with their (1-based) epochs where the run scored them.
pub const METRIC_COLUMNS: &[&str] = &[
    "BestVal",
    "BestValsTrain",
    "BestEpoch",
    "LastValPrec",
    "LastTrainPrec",
    "AllTrain",
    "AllVal",
    "status",
    "reason",
    "epochs",
    "trainable_parameters",
    "train_seconds",
    "wall_seconds",
    "images_per_second",
    "test_top1_best",
    "test_epoch_best",
    "test_top1_last",
    "test_epoch_last",
];

/// The CSV header of `spec`'s results.
pub fn header(spec: &SweepSpec) -> Vec<String> {
    std::iter::once("id".to_string())
        .chain(spec.label_columns.iter().cloned())
        .chain(METRIC_COLUMNS.iter().map(|c| c.to_string()))
        .collect()
}

/// `[a, b, …]` as Python prints a list of floats.
fn python_list(values: impl Iterator<Item = f64>) -> String {
    format!("[{}]", values.map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", "))
}

/// The position in `history` of the best epoch: the highest validation top-1, the earliest on ties
/// (the original's strict `>`, vgg_features.md §3.6).
pub fn best_index(history: &[EpochRow]) -> Option<usize> {
    history.iter().enumerate().fold(None, |best: Option<usize>, (i, r)| match best {
        Some(b) if history[b].val_top1 >= r.val_top1 => Some(b),
        _ => Some(i),
    })
}

/// The CSV row of `point` with `result`.
pub fn record(point: &Point, result: &PointResult) -> Vec<String> {
    let h = &result.history;
    let best = best_index(h);
    let last = h.last();
    let float = |v: Option<f64>| v.map(|v| format!("{v:?}")).unwrap_or_default();
    let train_seconds = h.iter().fold(0.0, |s, r| s + r.epoch_seconds);
    let images = h.iter().fold(0.0, |s, r| s + r.images_per_second * r.epoch_seconds);
    let mut row = vec![point.id.to_string()];
    row.extend(point.labels.iter().map(super::grid::label_text));
    row.extend([
        float(best.map(|b| h[b].val_top1)),
        float(best.map(|b| h[b].train_top1)),
        best.map(|b| (h[b].epoch - 1).to_string()).unwrap_or_default(),
        float(last.map(|r| r.val_top1)),
        float(last.map(|r| r.train_top1)),
        python_list(h.iter().map(|r| r.train_top1)),
        python_list(h.iter().map(|r| r.val_top1)),
        result.status.name().to_string(),
        result.reason.clone(),
        h.len().to_string(),
        result.trainable_parameters.map(|p| p.to_string()).unwrap_or_default(),
        format!("{train_seconds:.3}"),
        format!("{:.3}", result.wall_seconds),
        if train_seconds > 0.0 { format!("{:.1}", images / train_seconds) } else { String::new() },
    ]);
    let test = |f: fn(&TestReport) -> (f64, usize)| result.test.as_ref().map(f);
    for score in [test(|t| (t.best.test.top1, t.best.epoch)), test(|t| (t.last.test.top1, t.last.epoch))] {
        row.extend([float(score.map(|s| s.0)), score.map(|s| s.1.to_string()).unwrap_or_default()]);
    }
    row
}

/// Writes the rows (by id) under `spec`'s header to `path`, whole: a temporary file renamed over it.
pub fn write_csv(path: &Path, spec: &SweepSpec, rows: &BTreeMap<usize, Vec<String>>) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| input_err!("{}: cannot format the results ({e}).", path.display());
    w.write_record(header(spec)).map_err(csv_err)?;
    for r in rows.values() {
        w.write_record(r).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| input_err!("{}: cannot format the results ({e}).", path.display()))?;
    write_atomic(path, &bytes)
}

/// A results CSV as (header, rows).
pub fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut r =
        csv::Reader::from_path(path).map_err(|e| input_err!("{}: cannot read the results ({e}).", path.display()))?;
    let bad = |e: csv::Error| input_err!("{}: not a results CSV ({e}).", path.display());
    let header = r.headers().map_err(bad)?.iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.map(|rec| rec.iter().map(str::to_string).collect()))
        .collect::<std::result::Result<_, _>>()
        .map_err(bad)?;
    Ok((header, rows))
}

/// What `sweep collect` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectReport {
    pub points: usize,
    /// Ids with a row in the merged results, by status.
    pub finished: Vec<usize>,
    pub aborted: Vec<usize>,
    pub failed: Vec<(usize, String)>,
    /// Ids without a result yet (not run, or running).
    pub missing: Vec<usize>,
    /// Ids that appear more than once among the shards' CSV files, with the files.
    pub duplicates: Vec<(usize, Vec<String>)>,
    pub out: PathBuf,
}

impl CollectReport {
    /// A few lines for the terminal.
    pub fn lines(&self) -> Vec<String> {
        let ids = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        let rows = self.finished.len() + self.aborted.len() + self.failed.len();
        let mut lines = vec![format!(
            "wrote {}: {rows} of {} points ({} finished, {} aborted, {} failed)",
            self.out.display(),
            self.points,
            self.finished.len(),
            self.aborted.len(),
            self.failed.len()
        )];
        if !self.aborted.is_empty() {
            lines.push(format!("  aborted: {}", ids(&self.aborted)));
        }
        for (id, reason) in &self.failed {
            lines.push(format!("  failed: {id}: {reason}"));
        }
        if !self.missing.is_empty() {
            lines.push(format!("  missing (no result yet): {}", ids(&self.missing)));
        }
        for (id, files) in &self.duplicates {
            lines
                .push(format!("  duplicate: {id} in {} (one row kept, from the point's own result)", files.join(", ")));
        }
        lines
    }
}

/// The results files of a sharded run in `dir` (`results-<i>.csv`), in shard order.
fn shard_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .at(dir)?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let i = name.strip_prefix("results-")?.strip_suffix(".csv")?.parse().ok()?;
            Some((i, e.path()))
        })
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// Merges a sweep's results into `<dir>/results.csv`, ordered by id: each point's row from its own
/// `result.json` (the record that it is done), or — where its run directory is gone — from a shard's
/// CSV; reports missing, failed and duplicated ids.
pub fn collect(dir: &Path) -> Result<CollectReport> {
    let spec = SweepSpec::read(dir)?.ok_or_else(|| {
        input_err!("{}: no sweep.json here; give the --sweep-dir of a convtrain sweep.", dir.display())
    })?;
    let mut seen: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut csv_rows: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let want = header(&spec);
    for file in shard_files(dir)? {
        let (head, rows) = read_csv(&file)?;
        if head != want {
            return Err(input_err!("{}: its columns are not this sweep's ({}).", file.display(), want.join(",")));
        }
        let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        for row in rows {
            if let Some(id) = row.first().and_then(|c| c.parse::<usize>().ok()) {
                seen.entry(id).or_default().push(name.clone());
                csv_rows.entry(id).or_insert(row);
            }
        }
    }
    let status_col = want.iter().position(|c| c == "status").unwrap_or(0);
    let reason_col = want.iter().position(|c| c == "reason").unwrap_or(0);
    let mut report = CollectReport { points: spec.points.len(), out: dir.join("results.csv"), ..Default::default() };
    let mut rows = BTreeMap::new();
    for point in &spec.points {
        let row = match PointResult::read(&dir.join("runs").join(&point.name))? {
            Some(r) => record(point, &r),
            None => match csv_rows.remove(&point.id) {
                Some(row) => row,
                None => {
                    report.missing.push(point.id);
                    continue;
                }
            },
        };
        match row[status_col].as_str() {
            "aborted" => report.aborted.push(point.id),
            "failed" => report.failed.push((point.id, row[reason_col].clone())),
            _ => report.finished.push(point.id),
        }
        rows.insert(point.id, row);
    }
    report.duplicates = seen.into_iter().filter(|(_, files)| files.len() > 1).collect();
    write_csv(&report.out, &spec, &rows)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::evaluate::{CheckpointScore, EvalResult};
    use serde_json::json;

    fn epoch(e: usize, train: f64, val: f64) -> EpochRow {
        EpochRow {
            epoch: e,
            train_top1: train,
            val_top1: val,
            epoch_seconds: 2.0,
            images_per_second: 50.0,
            ..Default::default()
        }
    }

    #[test]
    fn a_row_has_the_originals_metrics_with_the_earliest_best_epoch() {
        let point = Point {
            id: 7,
            name: "variant-007".into(),
            overrides: Default::default(),
            labels: vec![json!("[2.0, 4.0]"), json!(12)],
            cost: 0.0,
        };
        let result = PointResult {
            id: 7,
            status: Status::Aborted,
            reason: "training top-1 10.00% after epoch 3 is below 20.00%".into(),
            history: vec![epoch(1, 10.0, 30.0), epoch(2, 12.5, 40.0), epoch(3, 11.0, 40.0)],
            trainable_parameters: Some(1234),
            wall_seconds: 7.25,
            test: None,
        };
        let row = record(&point, &result);
        assert_eq!(
            row,
            [
                "7",
                "[2.0, 4.0]",
                "12",
                "40.0",
                "12.5",
                "1",
                "40.0",
                "11.0",
                "[10.0, 12.5, 11.0]",
                "[30.0, 40.0, 40.0]",
                "aborted",
                "training top-1 10.00% after epoch 3 is below 20.00%",
                "3",
                "1234",
                "6.000",
                "7.250",
                "50.0",
                "",
                "",
                "",
                ""
            ]
        );
        let score = |epoch, top1| CheckpointScore {
            epoch,
            val_top1: 40.0,
            test: EvalResult { loss: 1.0, top1, top5: 90.0, count: 100 },
        };
        let tested = PointResult {
            test: Some(TestReport { split: "test".into(), best: score(2, 38.5), last: score(3, 37.0) }),
            ..result.clone()
        };
        assert_eq!(record(&point, &tested)[17..], ["38.5", "2", "37.0", "3"]);
        // The copy of test.json keeps every digit (serde_json's exact float parsing).
        let text = r#"{"split":"test","best":{"epoch":1,"val_top1":97.98333333333333,"loss":0.05992620373596437,"top1":98.15,"top5":99.92,"count":10000},"last":{"epoch":1,"val_top1":97.98333333333333,"loss":0.05992620373596437,"top1":98.15,"top5":99.92,"count":10000}}"#;
        let report: TestReport = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&report).unwrap(), text);
        let empty = PointResult { history: vec![], status: Status::Failed, ..result };
        assert_eq!(record(&point, &empty)[3..8], ["", "", "", "", ""]);
    }
}
