//! `sweep.json`: what a sweep is — its kind, the settings all points share, and every point with the
//! settings it changes, its descriptive columns and its estimated cost. The first process to start a
//! sweep writes it; every later one (a re-run, another shard) must describe the same sweep.
use crate::config::TrainConfig;
use crate::error::{read_json_if_present, to_json_pretty, IoContext, Result};
use crate::input_err;
use crate::models::summary::summarize;
use crate::train::setup::setup_data;
use crate::train::trainer::build_model;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const SPEC_FILE: &str = "sweep.json";

/// Settings that do not change what a run computes (where and how it runs); they may differ between
/// the invocations of one sweep and are not part of `sweep.json`.
pub const RUNTIME_KEYS: &[&str] =
    &["device", "threads", "log_interval", "eval_batch_size", "download", "checkpoint_interval"];

/// Settings a sweep decides for each point itself.
pub const RESERVED_KEYS: &[&str] = &["job_id", "runs_dir"];

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// 1-based and stable: the VGG variant's id, or the position in the grid's product.
    pub id: usize,
    /// The name of its run directory under `<sweep>/runs/`.
    pub name: String,
    /// The configuration keys it sets over the sweep's settings.
    pub overrides: Map<String, Value>,
    /// Its values of the sweep's [`SweepSpec::label_columns`].
    pub labels: Vec<Value>,
    /// Estimated training work in multiply-accumulates: forward MACs per image × training images per
    /// epoch × epochs. Balances shards and scales the ETA; 0 until estimated.
    #[serde(default)]
    pub cost: f64,
}

/// A whole sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    /// `vgg-features` or `grid`.
    pub kind: String,
    /// The recipe file's settings and the flags, without [`RUNTIME_KEYS`]; data directories absolute.
    pub settings: Map<String, Value>,
    /// The descriptive columns that precede the metrics in the results (VGG: the original's
    /// Filters, Parameters, Mean, Variance, Skew; grid: the swept keys).
    pub label_columns: Vec<String>,
    pub points: Vec<Point>,
}

/// Splits the settings given on the command line and in the recipe into the sweep's identity and
/// the runtime settings ([`RUNTIME_KEYS`]); a given data directory is made absolute.
pub fn split_settings(mut settings: Map<String, Value>) -> Result<(Map<String, Value>, Map<String, Value>)> {
    if let Some(k) = RESERVED_KEYS.iter().find(|k| settings.contains_key(**k)) {
        return Err(input_err!("'{k}': a sweep names its runs itself (runs/<point> under the sweep directory)."));
    }
    if let Some(d) = settings.get("data_dir").and_then(Value::as_str).map(PathBuf::from) {
        settings.insert("data_dir".into(), std::path::absolute(&d).at(&d)?.display().to_string().into());
    }
    let runtime = RUNTIME_KEYS.iter().filter_map(|k| settings.remove(*k).map(|v| (k.to_string(), v))).collect();
    Ok((settings, runtime))
}

impl SweepSpec {
    /// The settings `point` trains with, as flags over its run's saved configuration on resume: the
    /// sweep's settings, then `runtime`, then the point's own.
    pub fn point_flags(&self, point: &Point, runtime: &Map<String, Value>) -> Map<String, Value> {
        let mut flags = self.settings.clone();
        flags.extend(runtime.clone());
        flags.extend(point.overrides.clone());
        flags
    }

    /// The training configuration of `point` ([`SweepSpec::point_flags`]), running in
    /// `<runs_dir>/<point name>`.
    pub fn point_config(&self, point: &Point, runtime: &Map<String, Value>, runs_dir: &Path) -> Result<TrainConfig> {
        let mut flags = self.point_flags(point, runtime);
        flags.insert("job_id".into(), point.name.clone().into());
        flags.insert("runs_dir".into(), runs_dir.display().to_string().into());
        TrainConfig::resolve(Value::Object(flags), Value::Null, &format!("sweep point {} ({})", point.id, point.name))
    }

    /// Estimates every point's cost from its model (MACs per image from `macs_per_image`) and data
    /// (training images per epoch after `limit_train_batches`); equal inputs are computed once.
    pub fn estimate_costs(
        &mut self,
        runtime: &Map<String, Value>,
        runs_dir: &Path,
        macs_per_image: &dyn Fn(&TrainConfig) -> Result<i64>,
    ) -> Result<()> {
        let mut macs: HashMap<String, i64> = HashMap::new();
        let mut train_sizes: HashMap<String, usize> = HashMap::new();
        let configs: Vec<TrainConfig> =
            self.points.iter().map(|p| self.point_config(p, runtime, runs_dir)).collect::<Result<_>>()?;
        for (point, cfg) in self.points.iter_mut().zip(configs) {
            let model_key = model_key(&cfg);
            let m = match macs.get(&model_key) {
                Some(&m) => m,
                None => *macs.entry(model_key).or_insert(macs_per_image(&cfg)?),
            };
            let data_key = serde_json::json!([cfg.dataset, cfg.data_dir(), cfg.val_split]).to_string();
            let n = match train_sizes.get(&data_key) {
                Some(&n) => n,
                None => {
                    *train_sizes.entry(data_key).or_insert(setup_data(&cfg, None, false, false)?.train_indices.len())
                }
            };
            let images = n.min(cfg.limit_train_batches.map_or(usize::MAX, |l| l.saturating_mul(cfg.batch_size)));
            point.cost = m as f64 * images as f64 * cfg.epochs as f64;
        }
        Ok(())
    }

    /// Reads `<dir>/sweep.json`, if there is one.
    pub fn read(dir: &Path) -> Result<Option<SweepSpec>> {
        let path = dir.join(SPEC_FILE);
        read_json_if_present(&path, |e| {
            input_err!(
                "{}: not a convtrain sweep description ({e}); is {} a sweep directory?",
                path.display(),
                dir.display()
            )
        })
    }

    /// Refuses `existing` (the directory's `sweep.json`) unless it describes this sweep; costs are
    /// not compared (they are the first writer's estimate).
    pub fn check_same(&self, existing: &SweepSpec, dir: &Path) -> Result<()> {
        let refuse = |what: String| {
            Err(input_err!(
                "{}: this directory holds another sweep ({what}). Re-run it with the arguments it was started with, \
                 or give another --sweep-dir.",
                dir.display()
            ))
        };
        if self.kind != existing.kind {
            return refuse(format!("kind {} there, {} here", existing.kind, self.kind));
        }
        let mut keys: Vec<&String> = self.settings.keys().chain(existing.settings.keys()).collect();
        keys.sort();
        keys.dedup();
        let differing: Vec<String> = keys
            .into_iter()
            .filter(|k| self.settings.get(*k) != existing.settings.get(*k))
            .map(|k| {
                let show = |v: Option<&Value>| v.map_or("(not set)".to_string(), Value::to_string);
                format!("{k}: {} there, {} here", show(existing.settings.get(k)), show(self.settings.get(k)))
            })
            .collect();
        if !differing.is_empty() {
            return refuse(format!("settings differ — {}", differing.join("; ")));
        }
        if self.label_columns != existing.label_columns || self.points.len() != existing.points.len() {
            return refuse(format!("{} points there, {} here", existing.points.len(), self.points.len()));
        }
        let same = |a: &Point, b: &Point| {
            a.id == b.id && a.name == b.name && a.overrides == b.overrides && a.labels == b.labels
        };
        if let Some((a, b)) = self.points.iter().zip(&existing.points).find(|(a, b)| !same(a, b)) {
            let show = |p: &Point| format!("{} {}", p.name, Value::Object(p.overrides.clone()));
            return refuse(format!("point {}: {} there, {} here", a.id, show(b), show(a)));
        }
        Ok(())
    }

    /// Makes this the directory's sweep: writes `sweep.json` if there is none (atomically and without
    /// replacing one another process wrote meanwhile: temporary file, then a hard link), else checks
    /// that the one there is the same sweep. Returns the directory's description.
    pub fn establish(&self, dir: &Path) -> Result<SweepSpec> {
        if let Some(existing) = SweepSpec::read(dir)? {
            self.check_same(&existing, dir)?;
            return Ok(existing);
        }
        std::fs::create_dir_all(dir).map_err(|e| {
            input_err!("{}: cannot create the sweep directory ({e}); choose a writable --sweep-dir.", dir.display())
        })?;
        let path = dir.join(SPEC_FILE);
        let tmp = dir.join(format!(".{SPEC_FILE}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp).at(&tmp)?;
            f.write_all(to_json_pretty(self, "the sweep description")?.as_bytes()).at(&tmp)?;
            f.sync_all().at(&tmp)
        })();
        let linked = written.and_then(|()| match std::fs::hard_link(&tmp, &path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e).at(&path),
        });
        let _ = std::fs::remove_file(&tmp);
        if linked? {
            Ok(self.clone())
        } else {
            // Another shard wrote it first.
            let existing = SweepSpec::read(dir)?
                .ok_or_else(|| input_err!("{}: vanished while starting the sweep.", path.display()))?;
            self.check_same(&existing, dir)?;
            Ok(existing)
        }
    }
}

/// The settings that decide the model `cfg` builds and the input it sees (what its MACs depend on),
/// as a key: configurations with the same key have the same cost per image.
pub fn model_key(cfg: &TrainConfig) -> String {
    serde_json::json!([
        cfg.arch,
        cfg.depth,
        cfg.width,
        cfg.checkered,
        cfg.model_options,
        cfg.dataset,
        cfg.resize,
        cfg.gray_to_rgb
    ])
    .to_string()
}

/// Forward multiply-accumulates of one image through the model `cfg` describes, from the layer trace
/// `convtrain summary` reads (the model is built on the CPU).
pub fn traced_macs(cfg: &TrainConfig) -> Result<i64> {
    let model = build_model(cfg, tch::Device::Cpu)?;
    Ok(summarize(&model, Vec::new()).total_macs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(lr: f64, seeds: &[u64]) -> SweepSpec {
        SweepSpec {
            kind: "grid".into(),
            settings: json!({"arch": "tiny-cnn", "lr": lr}).as_object().cloned().unwrap(),
            label_columns: vec!["seed".into()],
            points: seeds
                .iter()
                .enumerate()
                .map(|(i, s)| Point {
                    id: i + 1,
                    name: format!("{:03}_seed={s}", i + 1),
                    overrides: json!({ "seed": s }).as_object().cloned().unwrap(),
                    labels: vec![json!(s)],
                    cost: 0.0,
                })
                .collect(),
        }
    }

    #[test]
    fn the_first_writer_wins_and_a_different_sweep_is_refused_with_the_difference() {
        let d = tempfile::tempdir().unwrap();
        let mut first = spec(0.1, &[0, 1]);
        first.points[0].cost = 5.0;
        assert_eq!(first.establish(d.path()).unwrap(), first);
        // The same sweep (its own cost estimate aside) gets the stored description back.
        let again = spec(0.1, &[0, 1]).establish(d.path()).unwrap();
        assert_eq!(again.points[0].cost, 5.0);
        let e = spec(0.2, &[0, 1]).establish(d.path()).unwrap_err().to_string();
        assert!(e.contains("lr: 0.1 there, 0.2 here") && e.contains("--sweep-dir"), "{e}");
        let e = spec(0.1, &[0, 2]).establish(d.path()).unwrap_err().to_string();
        assert!(e.contains(r#"point 2: 002_seed=1 {"seed":1} there, 002_seed=2 {"seed":2} here"#), "{e}");
        let e = spec(0.1, &[0]).establish(d.path()).unwrap_err().to_string();
        assert!(e.contains("2 points there, 1 here"), "{e}");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1, "no temporary file is left");
    }

    #[test]
    fn runtime_settings_are_not_the_sweeps_identity() {
        let flags = json!({"lr": 0.1, "device": "cpu", "threads": 2, "data_dir": "data/x"});
        let (identity, runtime) = split_settings(flags.as_object().cloned().unwrap()).unwrap();
        assert_eq!(runtime, json!({"device": "cpu", "threads": 2}).as_object().cloned().unwrap());
        assert!(Path::new(identity["data_dir"].as_str().unwrap()).is_absolute());
        let e = split_settings(json!({"job_id": "x"}).as_object().cloned().unwrap()).unwrap_err().to_string();
        assert!(e.contains("job_id"), "{e}");
    }
}
