//! The run directory: which files a run keeps, how a new run or a resume is planned (and refused),
//! and the resolved configuration written at the start. Nothing here trains.
use crate::checkpoint::write_atomic;
use crate::config::{TrainConfig, RESUMABLE_OVERRIDES};
use crate::error::{to_json_pretty, to_json_value, IoContext, Result};
use crate::input_err;
use std::path::{Path, PathBuf};

/// Files of a run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub dir: PathBuf,
}

impl RunDir {
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("log.csv")
    }
    pub fn last(&self) -> PathBuf {
        self.dir.join("last.safetensors")
    }
    pub fn best(&self) -> PathBuf {
        self.dir.join("best.safetensors")
    }
    pub fn split(&self) -> PathBuf {
        self.dir.join("split.json")
    }
    /// Files convtrain writes (what `--overwrite` removes; anything else is left alone).
    fn own_files(&self) -> Vec<PathBuf> {
        vec![self.config(), self.log(), self.last(), self.best(), self.split(), self.dir.join("eval-best-test.json")]
    }

    /// Reads the training configuration saved in the run directory.
    pub fn read_config(&self) -> Result<TrainConfig> {
        let path = self.config();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            input_err!(
                "{}: cannot read the run's configuration ({e}); is {} a convtrain run directory?",
                path.display(),
                self.dir.display()
            )
        })?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| input_err!("{}: corrupt run configuration ({e}).", path.display()))?;
        TrainConfig::resolve(
            v.get("config").cloned().unwrap_or_default(),
            serde_json::Value::Null,
            &path.display().to_string(),
        )
    }

    /// Writes `config.json`: the resolved configuration plus `extra` facts about the run.
    pub fn write_config(&self, cfg: &TrainConfig, extra: serde_json::Value) -> Result<()> {
        let mut doc = serde_json::json!({ "config": cfg });
        if let (serde_json::Value::Object(d), serde_json::Value::Object(e)) = (&mut doc, extra) {
            d.extend(e);
        }
        write_atomic(&self.config(), to_json_pretty(&doc, "the run configuration")?.as_bytes())
    }
}

/// How `train` was asked to start.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// A run directory to continue, or `auto` (continue `<runs_dir>/<job_id>` if it holds a run).
    pub resume: Option<PathBuf>,
    pub overwrite: bool,
    /// Weights (safetensors) to initialise the model from.
    pub init_from: Option<PathBuf>,
    /// The settings given as flags (a JSON object); on resume they override the run's configuration.
    pub flags: serde_json::Value,
}

/// A decided start: where the run lives, its effective configuration, and whether it resumes.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub run: RunDir,
    pub cfg: TrainConfig,
    pub resuming: bool,
}

/// `YYYYMMDD-hhmmss` in UTC, for default job ids.
fn utc_timestamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Removes `.<name>.<pid>.tmp` files a killed process left behind (see `checkpoint::write_atomic`).
fn sweep_temp_files(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true)
}

/// Decides the run directory and whether this is a resume, and returns the effective configuration;
/// refuses a directory that already holds a run. Writes nothing.
pub fn plan_run(cfg: TrainConfig, opts: &StartOptions) -> Result<RunPlan> {
    let auto = opts.resume.as_deref() == Some(Path::new("auto"));
    let resume_dir = match &opts.resume {
        Some(_) if auto => {
            let job = cfg
                .job_id
                .clone()
                .ok_or_else(|| input_err!("--resume auto: needs --job-id to know which run to continue."))?;
            let d = cfg.runs_dir.join(job);
            d.join("last.safetensors").is_file().then_some(d)
        }
        Some(d) => Some(d.clone()),
        None => None,
    };
    if let Some(dir) = resume_dir {
        let run = RunDir { dir };
        if !run.last().is_file() {
            return Err(input_err!(
                "--resume: {} holds no last.safetensors checkpoint; it is not a convtrain run directory (or the run never finished an epoch).",
                run.dir.display()
            ));
        }
        sweep_temp_files(&run.dir);
        let saved = run.read_config()?;
        // The run's own configuration, with the flags given now on top (a recipe file is not re-read).
        let mut flags = opts.flags.clone();
        if let Some(d) = flags.get("data_dir").and_then(|d| d.as_str()).map(PathBuf::from) {
            flags["data_dir"] = std::path::absolute(&d).at(&d)?.display().to_string().into();
        }
        for k in ["job_id", "runs_dir"] {
            if let Some(m) = flags.as_object_mut() {
                m.remove(k);
            }
        }
        let source = run.config().display().to_string();
        let effective = TrainConfig::resolve(to_json_value(&saved, "the run configuration")?, flags, &source)?;
        // Flags may change only what does not change the computation.
        let changed: Vec<String> = saved
            .differing_keys(&effective)?
            .into_iter()
            .filter(|k| !RESUMABLE_OVERRIDES.contains(&k.as_str()))
            .collect();
        if !changed.is_empty() {
            return Err(input_err!(
                "--resume {}: cannot change {} of an existing run (only {} may change on resume); start a new run instead.",
                run.dir.display(),
                changed.join(", "),
                RESUMABLE_OVERRIDES.join(", ")
            ));
        }
        return Ok(RunPlan { run, cfg: effective, resuming: true });
    }
    let job = cfg.job_id.clone().unwrap_or_else(|| format!("{}-{}-{}", cfg.arch, cfg.dataset, utc_timestamp()));
    let run = RunDir { dir: cfg.runs_dir.join(&job) };
    if run.dir.exists() && !dir_is_empty(&run.dir) && !opts.overwrite {
        return Err(input_err!(
            "{}: the run directory already holds files. Continue that run with --resume {} (or --resume auto --job-id {job}), \
             replace it with --overwrite, or choose another --job-id.",
            run.dir.display(),
            run.dir.display()
        ));
    }
    // The resolved configuration names the data by absolute path, so the run resumes from anywhere.
    let mut cfg = cfg;
    cfg.data_dir = Some(std::path::absolute(cfg.data_dir()).at(&cfg.data_dir())?);
    Ok(RunPlan { run, cfg, resuming: false })
}

/// Creates a new run's directory (clearing convtrain's files from it with `--overwrite`) and checks
/// that it is writable. Called once the model and data are known to be good, so a failed start leaves
/// nothing behind.
pub fn create_run_dir(run: &RunDir) -> Result<()> {
    for f in run.own_files() {
        if f.exists() {
            std::fs::remove_file(&f).at(&f)?;
        }
    }
    std::fs::create_dir_all(&run.dir).map_err(|e| {
        input_err!("{}: cannot create the run directory ({e}); choose a writable --runs-dir.", run.dir.display())
    })?;
    let probe = run.dir.join(".convtrain-write-test");
    std::fs::write(&probe, b"").map_err(|e| {
        input_err!("{}: the run directory is not writable ({e}); choose a writable --runs-dir.", run.dir.display())
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
