//! Paper tables over runs: `convtrain table` groups run directories by their configuration minus the
//! seed (and the settings that do not change what a run computes) and reports, per group, the
//! architecture and the settings that tell the groups apart, parameters, MACs, epochs, the test error
//! (or top-1) as mean ± sample standard deviation over the seeds, n, and the best epochs.
//!
//! A run's test score is its `test.json` (the best checkpoint, chosen on the held-out validation split,
//! scored on the test split), or the copy a sweep point's `result.json` keeps; a run that validated on the test set (`val_split` 0, as the checkered,
//! VGG and DiracNet originals did) is scored by its best validation top-1, which is the best test top-1
//! over epochs. The `scored_by` column says which.
use super::results::PointResult;
use super::spec::{model_key, traced_macs};
use crate::config::{show_value, TrainConfig, RESUMABLE_OVERRIDES};
use crate::error::{read_json_if_present, to_json_value, Result};
use crate::input_err;
use crate::train::log::read_rows;
use crate::train::run_dir::RunDir;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Settings that do not define a table row: the seed and what may change on resume without changing
/// the computation (the epochs excepted: a longer run is another row).
fn is_ignored(key: &str) -> bool {
    matches!(key, "seed" | "job_id" | "runs_dir" | "data_dir")
        || (key != "epochs" && RESUMABLE_OVERRIDES.contains(&key))
}

/// One run as the table sees it.
#[derive(Debug, Clone)]
struct RunScore {
    dir: PathBuf,
    cfg: TrainConfig,
    key: Map<String, Value>,
    parameters: Option<i64>,
    /// MACs per image, as the run recorded them at its start.
    macs: Option<i64>,
    epochs_done: usize,
    /// Test top-1 (percent) and the epoch it came from.
    top1: Option<f64>,
    best_epoch: Option<usize>,
    scored_by: &'static str,
}

/// One row: a configuration and its runs' statistics.
#[derive(Debug, Clone, Serialize)]
pub struct TableRow {
    pub arch: String,
    /// The settings that tell this row from the others (`key=value`), or the model's options.
    pub options: String,
    pub parameters: Option<i64>,
    pub macs: Option<i64>,
    pub epochs: usize,
    /// Mean and sample standard deviation (n − 1) over the runs, in percent.
    pub test_error_mean: Option<f64>,
    pub test_error_std: Option<f64>,
    pub test_top1_mean: Option<f64>,
    pub test_top1_std: Option<f64>,
    pub n: usize,
    pub best_epochs: Vec<usize>,
    pub seeds: Vec<u64>,
    pub scored_by: String,
    pub runs: Vec<PathBuf>,
}

/// The run directories `paths` name: a run directory itself, a sweep directory (its `runs/*`), or a
/// directory of run directories (`runs/`).
pub fn find_runs(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let is_run = |p: &Path| p.join("config.json").is_file();
    let mut out = Vec::new();
    for p in paths {
        if is_run(p) {
            out.push(p.clone());
            continue;
        }
        let parent = if p.join("sweep.json").is_file() { p.join("runs") } else { p.clone() };
        let mut children: Vec<PathBuf> = std::fs::read_dir(&parent)
            .map_err(|e| input_err!("{}: not a run or sweep directory ({e}).", p.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|c| is_run(c))
            .collect();
        if children.is_empty() {
            return Err(input_err!(
                "{}: holds no runs (a run directory has a config.json; a sweep directory a sweep.json and runs/).",
                p.display()
            ));
        }
        children.sort();
        out.extend(children);
    }
    Ok(out)
}

fn score(dir: &Path) -> Result<RunScore> {
    let run = RunDir { dir: dir.to_path_buf() };
    let cfg = run.read_config()?;
    let doc: Value =
        read_json_if_present(&run.config(), |e| input_err!("{}: {e}", run.config().display()))?.unwrap_or(Value::Null);
    let rows = if run.log().is_file() { read_rows(&run.log())? } else { Vec::new() };
    let test = match run.read_test()? {
        Some(t) => Some((t, "test.json")),
        None => PointResult::read(dir)?.and_then(|p| p.test).map(|t| (t, "result.json")),
    };
    let best_row = rows.iter().max_by(|a, b| a.val_top1.total_cmp(&b.val_top1).then(b.epoch.cmp(&a.epoch)));
    let (top1, best_epoch, scored_by) = match (&test, best_row) {
        (Some((t, source)), _) => (Some(t.best.test.top1), Some(t.best.epoch), *source),
        (None, Some(r)) if cfg.val_split == 0.0 => (Some(r.val_top1), Some(r.epoch), "best val (= test)"),
        (None, r) => (None, r.map(|r| r.epoch), "no test score"),
    };
    let key = match to_json_value(&cfg, "a run configuration")? {
        Value::Object(m) => m.into_iter().filter(|(k, _)| !is_ignored(k)).collect(),
        _ => Map::new(),
    };
    Ok(RunScore {
        dir: dir.to_path_buf(),
        key,
        parameters: doc.get("parameters").and_then(Value::as_i64),
        macs: doc.get("macs").and_then(Value::as_i64),
        epochs_done: rows.len(),
        top1,
        best_epoch,
        scored_by,
        cfg,
    })
}

fn mean_std(v: &[f64]) -> (Option<f64>, Option<f64>) {
    if v.is_empty() {
        return (None, None);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let s = (v.len() > 1).then(|| (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt());
    (Some(m), s)
}

/// The table of the runs in `dirs`, one row per configuration, in the order first met. MACs are the
/// ones a run recorded at its start; for runs of earlier versions the model is built (on the CPU) and
/// traced, once per distinct model.
pub fn table(dirs: &[PathBuf]) -> Result<Vec<TableRow>> {
    let mut traced: HashMap<String, Option<i64>> = HashMap::new();
    let runs = dirs.iter().map(|d| score(d)).collect::<Result<Vec<_>>>()?;
    let mut groups: Vec<Vec<RunScore>> = Vec::new();
    for r in runs {
        match groups.iter_mut().find(|g| g[0].key == r.key) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    // The settings whose values differ between groups label the rows.
    let mut values: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for g in &groups {
        for (k, v) in &g[0].key {
            values.entry(k).or_default().push(v);
        }
    }
    let varying: Vec<&str> = values
        .iter()
        .filter(|(k, vs)| *k != &"arch" && (vs.len() < groups.len() || vs.iter().any(|v| *v != vs[0])))
        .map(|(k, _)| *k)
        .collect();
    groups
        .iter()
        .map(|g| {
            let first = &g[0];
            let cfg = &first.cfg;
            let mut labels: Vec<String> = Vec::new();
            for (k, v) in [("depth", cfg.depth), ("width", cfg.width)] {
                if let (Some(v), false) = (v, varying.contains(&k)) {
                    labels.push(format!("{k}={v}"));
                }
            }
            let shown: Vec<&str> = if groups.len() > 1 {
                varying.clone()
            } else {
                cfg.model_options.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.as_str()).collect()
            };
            labels.extend(shown.iter().map(|k| format!("{k}={}", first.key.get(*k).map_or("null".into(), show_value))));
            let top1: Vec<f64> = g.iter().filter_map(|r| r.top1).collect();
            let errors: Vec<f64> = top1.iter().map(|t| 100.0 - t).collect();
            let (top1_mean, top1_std) = mean_std(&top1);
            let (error_mean, error_std) = mean_std(&errors);
            let mut scored: Vec<&str> = g.iter().map(|r| r.scored_by).collect();
            scored.dedup();
            Ok(TableRow {
                arch: cfg.arch.clone(),
                options: labels.join(", "),
                parameters: first.parameters,
                macs: first.macs.or_else(|| *traced.entry(model_key(cfg)).or_insert_with(|| traced_macs(cfg).ok())),
                epochs: g.iter().map(|r| r.epochs_done).min().unwrap_or(0),
                test_error_mean: error_mean,
                test_error_std: error_std,
                test_top1_mean: top1_mean,
                test_top1_std: top1_std,
                n: top1.len(),
                best_epochs: g.iter().filter_map(|r| r.best_epoch).collect(),
                seeds: g.iter().map(|r| r.cfg.seed).collect(),
                scored_by: scored.join(", "),
                runs: g.iter().map(|r| r.dir.clone()).collect(),
            })
        })
        .collect()
}

/// What the metric columns show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TableMetric {
    /// Test error, 100 − top-1 (the papers' tables).
    #[default]
    Error,
    Top1,
}

fn pm(mean: Option<f64>, std: Option<f64>) -> String {
    match (mean, std) {
        (Some(m), Some(s)) => format!("{m:.2} ± {s:.2}"),
        (Some(m), None) => format!("{m:.2}"),
        _ => "—".into(),
    }
}

fn cells(r: &TableRow, metric: TableMetric) -> Vec<String> {
    let (m, s) = match metric {
        TableMetric::Error => (r.test_error_mean, r.test_error_std),
        TableMetric::Top1 => (r.test_top1_mean, r.test_top1_std),
    };
    let number = |v: Option<i64>| v.map_or("—".into(), crate::models::summary::thousands);
    let epochs: Vec<String> = r.best_epochs.iter().map(|e| e.to_string()).collect();
    vec![
        r.arch.clone(),
        r.options.clone(),
        number(r.parameters),
        number(r.macs),
        r.epochs.to_string(),
        pm(m, s),
        r.n.to_string(),
        epochs.join("/"),
        r.scored_by.clone(),
    ]
}

fn header(metric: TableMetric) -> Vec<String> {
    let metric = match metric {
        TableMetric::Error => "test error %",
        TableMetric::Top1 => "test top-1 %",
    };
    ["arch", "options", "parameters", "MACs", "epochs", metric, "n", "best epoch", "scored by"]
        .map(String::from)
        .to_vec()
}

/// The table as GitHub markdown.
pub fn markdown(rows: &[TableRow], metric: TableMetric) -> String {
    let line =
        |c: &[String]| format!("| {} |\n", c.iter().map(|x| x.replace('|', "\\|")).collect::<Vec<_>>().join(" | "));
    let mut s = line(&header(metric));
    s += &format!("|{}\n", "---|".repeat(header(metric).len()));
    for r in rows {
        s += &line(&cells(r, metric));
    }
    s
}

/// The table as CSV (numbers unformatted: mean and std in their own columns).
pub fn csv_text(rows: &[TableRow], metric: TableMetric) -> Result<String> {
    let bad = |e: String| crate::internal_err!("cannot write the table as CSV: {e}");
    let mut w = csv::Writer::from_writer(Vec::new());
    let name = match metric {
        TableMetric::Error => "test_error",
        TableMetric::Top1 => "test_top1",
    };
    let head = [
        "arch",
        "options",
        "parameters",
        "macs",
        "epochs",
        &format!("{name}_mean"),
        &format!("{name}_std"),
        "n",
        "best_epochs",
        "seeds",
        "scored_by",
    ];
    w.write_record(head).map_err(|e| bad(e.to_string()))?;
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for r in rows {
        let (m, s) = match metric {
            TableMetric::Error => (r.test_error_mean, r.test_error_std),
            TableMetric::Top1 => (r.test_top1_mean, r.test_top1_std),
        };
        let list = |v: Vec<String>| v.join(" ");
        w.write_record([
            r.arch.clone(),
            r.options.clone(),
            r.parameters.map_or(String::new(), |p| p.to_string()),
            r.macs.map_or(String::new(), |p| p.to_string()),
            r.epochs.to_string(),
            opt(m),
            opt(s),
            r.n.to_string(),
            list(r.best_epochs.iter().map(|e| e.to_string()).collect()),
            list(r.seeds.iter().map(|e| e.to_string()).collect()),
            r.scored_by.clone(),
        ])
        .map_err(|e| bad(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| bad(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        assert_eq!(mean_std(&[]), (None, None));
        assert_eq!(mean_std(&[2.0]), (Some(2.0), None));
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert_eq!((m, s), (Some(2.0), Some(1.0)));
        assert_eq!(pm(Some(5.0), Some(0.25)), "5.00 ± 0.25");
    }

    #[test]
    fn the_seed_and_runtime_settings_do_not_split_rows() {
        for k in ["seed", "device", "threads", "job_id", "data_dir", "log_interval"] {
            assert!(is_ignored(k), "{k}");
        }
        for k in ["epochs", "lr", "bank_size", "val_split"] {
            assert!(!is_ignored(k), "{k}");
        }
    }
}
