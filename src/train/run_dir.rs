//! The run directory: which files a run keeps, how a new run, a restart or a resume is planned (and
//! refused) under the directory's lock, the resolved configuration written at the start, and the
//! guard that keeps other commands' outputs off a run's files. Nothing here trains.
//!
//! A resume trusts the checkpoint: the configuration is the one `last.safetensors` carries
//! (`train_config`), with the few settings that may change on resume given as flags on top;
//! `config.json` is a copy for people, and a copy that disagrees is reported and rewritten, never
//! obeyed. A run directory that holds a configuration but no checkpoint yet (a run stopped during
//! its first steps) restarts from epoch 0 under `--resume`.
use super::evaluate::TestReport;
use super::lock::{hostname, utc_now_iso, RunLock, LOCK_FILE};
use super::log::read_rows;
use crate::checkpoint::{self, write_atomic};
use crate::config::{TrainConfig, RESUMABLE_OVERRIDES};
use crate::data::fingerprint::{fingerprint, Fingerprint};
use crate::error::{read_json_if_present, to_json_pretty, to_json_value, IoContext, Result};
use crate::input_err;
use std::path::{Path, PathBuf};

/// The names of the files a run directory holds; no command writes an output over one of them.
pub const RUN_FILES: &[&str] = &[
    "config.json",
    "log.csv",
    "last.safetensors",
    "best.safetensors",
    "split.json",
    METRICS_FILE,
    EVENTS_FILE,
    TEST_FILE,
    LOCK_FILE,
];

/// One JSON object per log interval and per epoch (see `train::tracking`).
pub const METRICS_FILE: &str = "metrics.jsonl";
/// TensorBoard's event file of the run's scalars (the name TensorBoard looks for holds `tfevents`).
pub const EVENTS_FILE: &str = "events.out.tfevents.convtrain";
/// The best and last checkpoints scored on the test split when training finishes.
pub const TEST_FILE: &str = "test.json";

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
    pub fn metrics(&self) -> PathBuf {
        self.dir.join(METRICS_FILE)
    }
    pub fn events(&self) -> PathBuf {
        self.dir.join(EVENTS_FILE)
    }
    pub fn test(&self) -> PathBuf {
        self.dir.join(TEST_FILE)
    }
    /// Files convtrain writes (what `--overwrite` removes; anything else is left alone).
    fn own_files(&self) -> Vec<PathBuf> {
        vec![
            self.config(),
            self.log(),
            self.last(),
            self.best(),
            self.split(),
            self.metrics(),
            self.events(),
            self.test(),
            self.dir.join("eval-best-test.json"),
        ]
    }

    /// The whole `config.json` document: the configuration and the facts recorded beside it.
    fn read_config_document(&self) -> Result<serde_json::Value> {
        let path = self.config();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            input_err!(
                "{}: cannot read the run's configuration ({e}); is {} a convtrain run directory?",
                path.display(),
                self.dir.display()
            )
        })?;
        crate::config::parse_json(&text).map_err(|e| input_err!("{}: corrupt run configuration ({e}).", path.display()))
    }

    /// Reads the training configuration saved in the run directory.
    pub fn read_config(&self) -> Result<TrainConfig> {
        let v = self.read_config_document()?;
        TrainConfig::resolve(
            v.get("config").cloned().unwrap_or_default(),
            serde_json::Value::Null,
            &self.config().display().to_string(),
        )
    }

    /// The run's test results (`test.json`), if it has scored them.
    pub fn read_test(&self) -> Result<Option<TestReport>> {
        let path = self.test();
        read_json_if_present(&path, |e| input_err!("{}: corrupt test results ({e}).", path.display()))
    }

    /// The data fingerprint recorded when the run started (`None` for runs of earlier versions).
    pub fn recorded_fingerprint(&self) -> Option<Fingerprint> {
        let doc = self.read_config_document().ok()?;
        serde_json::from_value(doc.get("dataset")?.get("fingerprint")?.clone()).ok()
    }

    /// The epochs a run directory without `last.safetensors` has trained all the same (its log rows;
    /// one where only `best.safetensors` is left): a run whose last checkpoint was removed — a sweep
    /// keeps only the best of a done point — rather than one stopped before its first checkpoint.
    fn epochs_without_checkpoint(&self) -> usize {
        let logged = if self.log().is_file() { read_rows(&self.log()).map_or(0, |rows| rows.len()) } else { 0 };
        if logged == 0 && self.best().is_file() {
            1
        } else {
            logged
        }
    }

    /// Removes the files convtrain writes (a start that failed before its first checkpoint).
    pub fn remove_own_files(&self) -> Result<()> {
        for f in self.own_files() {
            if f.exists() {
                std::fs::remove_file(&f).at(&f)?;
            }
        }
        Ok(())
    }

    /// Writes `config.json` with `cfg` as the run's configuration (current after a resume) and one more
    /// entry in its `invocations` (time, command line, the settings `changes` changed), keeping the facts
    /// recorded at the run's start, or `facts()` for a new run (or where they are unreadable).
    pub fn record_invocation(
        &self,
        cfg: &TrainConfig,
        changes: &serde_json::Map<String, serde_json::Value>,
        facts: impl FnOnce() -> serde_json::Value,
    ) -> Result<()> {
        let mut doc = match self.read_config_document() {
            Ok(serde_json::Value::Object(d)) => d,
            _ => match facts() {
                serde_json::Value::Object(f) => f,
                _ => serde_json::Map::new(),
            },
        };
        doc.insert("config".into(), to_json_value(cfg, "the run configuration")?);
        let invocation = serde_json::json!({
            "time": utc_now_iso(),
            "command_line": std::env::args().collect::<Vec<_>>(),
            "host": hostname(),
            "changed": changes,
        });
        match doc.get_mut("invocations").and_then(|i| i.as_array_mut()) {
            Some(list) => list.push(invocation),
            None => {
                doc.insert("invocations".into(), serde_json::Value::Array(vec![invocation]));
            }
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
    /// On resume, let `epochs` change where the schedule refuses it (cosine; SGDR ending mid-cycle).
    pub allow_schedule_change: bool,
}

/// A decided start: where the run lives, its effective configuration, and whether it resumes.
#[derive(Debug)]
pub struct RunPlan {
    pub run: RunDir,
    pub cfg: TrainConfig,
    /// Continue from `last.safetensors` (else the run starts at epoch 0).
    pub resuming: bool,
    /// What the user should know about this start (a restart from epoch 0, an edited config.json).
    pub warnings: Vec<String>,
    /// The settings a resume changed: key → `{"from": …, "to": …}`.
    pub changes: serde_json::Map<String, serde_json::Value>,
}

/// `YYYYMMDD-hhmmss` in UTC, for default job ids.
fn utc_timestamp() -> String {
    let (y, m, d, hh, mm, ss) = super::utc_now();
    format!("{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}")
}

fn is_temp_file(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Removes `.<name>.<pid>.tmp` files a killed process left behind (see `checkpoint::write_atomic`).
fn sweep_temp_files(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if is_temp_file(&e.file_name().to_string_lossy()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Whether `dir` holds nothing but a lock file and temp files of killed writers.
fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten().all(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name == LOCK_FILE || is_temp_file(&name)
            })
        })
        .unwrap_or(true)
}

/// Decides the run directory and whether this is a new run, a restart or a resume, with the effective
/// configuration, and returns it with the directory's lock, held for the whole run. The lock is taken
/// first (creating the directory for a new run), then every check is made under it; nothing else is
/// written but the removal of temporary files killed writers left.
pub fn plan_run(cfg: TrainConfig, opts: &StartOptions) -> Result<(RunPlan, RunLock)> {
    let (plan, lock) = plan_with(cfg, opts, RunLock::acquire)?;
    sweep_temp_files(&plan.run.dir);
    Ok((plan, lock))
}

/// What [`plan_run`] would decide, with the same checks and refusals, taking no lock and writing
/// nothing (`--print-config` and `--dry-run`, also of a resume).
pub fn preview_run(cfg: TrainConfig, opts: &StartOptions) -> Result<RunPlan> {
    plan_with(cfg, opts, |_, _| Ok(())).map(|(plan, ())| plan)
}

/// [`plan_run`] with `lock(dir, create)` taking the run directory's lock (or not).
fn plan_with<L>(
    cfg: TrainConfig,
    opts: &StartOptions,
    lock: impl Fn(&Path, bool) -> Result<L>,
) -> Result<(RunPlan, L)> {
    let auto = opts.resume.as_deref() == Some(Path::new("auto"));
    if let Some(r) = &opts.resume {
        if opts.overwrite {
            return Err(input_err!(
                "--overwrite has no effect with --resume {}: a resume continues the run in place. Drop --overwrite, \
                 or drop --resume to replace the run.",
                r.display()
            ));
        }
        if let (Some(init), false) = (&opts.init_from, auto) {
            return Err(input_err!(
                "--init-from {} has no effect with --resume {}: a resumed run continues from its own checkpoint. \
                 Drop --init-from, or start a new run with it.",
                init.display(),
                r.display()
            ));
        }
    }
    match &opts.resume {
        Some(_) if auto => {
            let job = cfg
                .job_id
                .clone()
                .ok_or_else(|| input_err!("--resume auto: needs --job-id to know which run to continue."))?;
            let run = RunDir { dir: cfg.runs_dir.join(&job) };
            let lock = lock(&run.dir, true)?;
            let plan = if run.last().is_file() || run.config().is_file() {
                plan_continue(run, opts)?
            } else {
                plan_new(cfg, run, &job, opts)?
            };
            Ok((plan, lock))
        }
        Some(dir) => {
            if dir.is_file() {
                let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                return Err(input_err!(
                    "--resume takes a run directory, and {} is a file (a checkpoint?). Continue its run with --resume {}.",
                    dir.display(),
                    parent.display()
                ));
            }
            if !dir.is_dir() {
                return Err(input_err!("--resume {}: no such run directory.", dir.display()));
            }
            check_names_resume_dir(&cfg, opts, dir)?;
            let run = RunDir { dir: dir.clone() };
            let lock = lock(&run.dir, false)?;
            if !run.last().is_file() && !run.config().is_file() {
                return Err(input_err!(
                    "--resume {}: not a convtrain run directory (it holds neither last.safetensors nor config.json).",
                    dir.display()
                ));
            }
            Ok((plan_continue(run, opts)?, lock))
        }
        None => {
            let job = cfg.job_id.clone().unwrap_or_else(|| format!("{}-{}-{}", cfg.arch, cfg.dataset, utc_timestamp()));
            let run = RunDir { dir: cfg.runs_dir.join(&job) };
            let lock = lock(&run.dir, true)?;
            Ok((plan_new(cfg, run, &job, opts)?, lock))
        }
    }
}

/// `--job-id` / `--runs-dir` given beside `--resume DIR` must name DIR (re-running the command that
/// started the run is fine); naming another directory would be silently ignored.
fn check_names_resume_dir(cfg: &TrainConfig, opts: &StartOptions, dir: &Path) -> Result<()> {
    let given = |k: &str| opts.flags.get(k).is_some_and(|v| !v.is_null());
    if !given("job_id") && !given("runs_dir") {
        return Ok(());
    }
    let name = cfg.job_id.clone().map(PathBuf::from).or_else(|| dir.file_name().map(PathBuf::from)).unwrap_or_default();
    let named = cfg.runs_dir.join(name);
    let same = match (named.canonicalize(), dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Ok(());
    }
    Err(input_err!(
        "--job-id/--runs-dir name {}, but --resume continues {}; drop them (or use --resume auto --job-id).",
        named.display(),
        dir.display()
    ))
}

/// A new run in `run.dir`: refuses a directory that already holds files, unless `--overwrite`.
fn plan_new(cfg: TrainConfig, run: RunDir, job: &str, opts: &StartOptions) -> Result<RunPlan> {
    if !dir_is_empty(&run.dir) && !opts.overwrite {
        let early = if run.config().is_file() && !run.last().is_file() && run.epochs_without_checkpoint() == 0 {
            " It holds a run that stopped before its first checkpoint: --resume restarts it from epoch 0."
        } else {
            ""
        };
        return Err(input_err!(
            "{}: the run directory already holds files. Continue that run with --resume {} (or --resume auto --job-id {job}), \
             replace it with --overwrite, or choose another --job-id.{early}",
            run.dir.display(),
            run.dir.display()
        ));
    }
    let cfg = new_run_config(cfg)?;
    Ok(RunPlan { run, cfg, resuming: false, warnings: Vec::new(), changes: serde_json::Map::new() })
}

/// The configuration a new run records: `cfg` with the data named by absolute path, so that the run
/// resumes, and its `config.json` trains again, from any directory.
pub fn new_run_config(mut cfg: TrainConfig) -> Result<TrainConfig> {
    cfg.data_dir = Some(std::path::absolute(cfg.data_dir()).at(&cfg.data_dir())?);
    Ok(cfg)
}

/// Continues the run in `run.dir`: from its checkpoint, or from epoch 0 when it has a configuration
/// but no checkpoint yet.
fn plan_continue(run: RunDir, opts: &StartOptions) -> Result<RunPlan> {
    let mut warnings = Vec::new();
    let resuming = run.last().is_file();
    let trained = if resuming { 0 } else { run.epochs_without_checkpoint() };
    if trained > 0 {
        let init = if run.best().is_file() {
            format!(" (--init-from {} starts it from this run's best weights)", run.best().display())
        } else {
            String::new()
        };
        return Err(input_err!(
            "--resume {}: the run has trained {} epoch(s), but its last checkpoint (last.safetensors) is gone — a sweep \
             keeps only best.safetensors of a done point unless --keep-checkpoints all — so it cannot continue, and \
             restarting it would replace its results. Start a new run instead{init}.",
            run.dir.display(),
            trained
        ));
    }
    let (saved, source) = if resuming {
        let meta = checkpoint::read_metadata(&run.last())?;
        match meta.get("train_config") {
            Some(text) => {
                let source = run.last().display().to_string();
                let v = crate::config::parse_json(text)
                    .map_err(|e| input_err!("{source}: corrupt train_config metadata ({e}).",))?;
                let saved = TrainConfig::resolve(v, serde_json::Value::Null, &source)?;
                report_config_edits(&run, &saved, &mut warnings);
                (saved, source)
            }
            // Checkpoints of early versions carried no configuration: config.json is all there is.
            None => (run.read_config()?, run.config().display().to_string()),
        }
    } else {
        warnings.push(format!(
            "{} holds no checkpoint yet (the run stopped before its first one): restarting it from epoch 0 with \
             its configuration.",
            run.dir.display()
        ));
        (run.read_config()?, run.config().display().to_string())
    };
    // The run's own configuration, with the flags given now on top (a recipe file is not re-read).
    let mut flags = opts.flags.clone();
    if let Some(d) = flags.get("data_dir").and_then(|d| d.as_str()).map(PathBuf::from) {
        flags["data_dir"] = std::path::absolute(&d).at(&d)?.display().to_string().into();
    }
    if let Some(m) = flags.as_object_mut() {
        m.remove("job_id");
        m.remove("runs_dir");
    }
    let effective = TrainConfig::resolve(to_json_value(&saved, "the run configuration")?, flags, &source)?;
    // Flags may change only what does not change the computation.
    let saved_json = to_json_value(&saved, "the run configuration")?;
    let effective_json = to_json_value(&effective, "the run configuration")?;
    let changed: Vec<String> = saved
        .differing_keys(&effective)?
        .into_iter()
        .filter(|k| !RESUMABLE_OVERRIDES.contains(&k.as_str()))
        .map(|k| format!("{k} (run: {}, now: {})", show(saved_json.get(&k)), show(effective_json.get(&k))))
        .collect();
    if !changed.is_empty() {
        return Err(input_err!(
            "--resume {}: cannot change {} of an existing run (only {} may change on resume); start a new run instead.",
            run.dir.display(),
            changed.join(", "),
            RESUMABLE_OVERRIDES.join(", ")
        ));
    }
    let mut changes = serde_json::Map::new();
    for k in saved.differing_keys(&effective)? {
        let (from, to) = (saved_json.get(&k).cloned(), effective_json.get(&k).cloned());
        changes.insert(k, serde_json::json!({"from": from, "to": to}));
    }
    if changes.contains_key("epochs") && !opts.allow_schedule_change {
        check_new_total(&run, &saved, &effective)?;
    }
    if changes.contains_key("data_dir") {
        check_same_data(&run, &saved, &effective, &mut warnings)?;
    }
    Ok(RunPlan { run, cfg: effective, resuming, warnings, changes })
}

/// A resume that changes `epochs`: refused where the schedule would not be the one the run was trained
/// with (cosine: the lr of every step depends on the total) or would stop in the middle of an SGDR
/// cycle; multi-step schedules and SGDR extended by whole cycles change freely.
fn check_new_total(run: &RunDir, saved: &TrainConfig, effective: &TrainConfig) -> Result<()> {
    let schedule = saved.schedule()?;
    if schedule.depends_on_total() {
        return Err(input_err!(
            "--resume {}: --epochs {} would change the {} schedule of a run of {} epochs: its lr at every step depends \
             on the total, so the epochs already trained would no longer follow the schedule the rest is trained \
             with (the lr would jump). Start a new run with --epochs {}, or pass --allow-schedule-change to stretch \
             the schedule from here on anyway.",
            run.dir.display(),
            effective.epochs,
            saved.schedule,
            saved.epochs,
            effective.epochs
        ));
    }
    let Some(cycle) = schedule.unfinished_cycle(saved.lr, effective.epochs) else { return Ok(()) };
    let whole = if cycle.restart_before > 0 {
        format!("--epochs {} or --epochs {} end", cycle.restart_before, cycle.restart_after)
    } else {
        format!("--epochs {} ends", cycle.restart_after)
    };
    Err(input_err!(
        "--resume {}: --epochs {} would stop the SGDR schedule (cycles of {} epochs, ×{} at each restart) in the \
         middle of the cycle from epoch {} to epoch {}, at lr {} instead of the cycle's floor {}. SGDR extends by \
         whole cycles: {whole} on a restart. Pass --allow-schedule-change to stop mid-cycle anyway.",
        run.dir.display(),
        effective.epochs,
        saved.sgdr_t0,
        saved.sgdr_t_mult,
        cycle.restart_before,
        cycle.restart_after,
        three_digits(cycle.end_lr),
        three_digits(cycle.lr_min)
    ))
}

/// `x` to three significant digits, without trailing zeros (0.00521, 1e-5 as 0.00001).
fn three_digits(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return x.to_string();
    }
    let decimals = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A resume that reads the data from another directory: the data there must be the data the run
/// started with (its fingerprint recorded in `config.json`).
fn check_same_data(
    run: &RunDir,
    saved: &TrainConfig,
    effective: &TrainConfig,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let (old, new) = (saved.data_dir(), effective.data_dir());
    if matches!((old.canonicalize(), new.canonicalize()), (Ok(a), Ok(b)) if a == b) {
        return Ok(());
    }
    let Some(recorded) = run.recorded_fingerprint() else {
        warnings.push(format!(
            "--data-dir {}: the run recorded no fingerprint of its data (it started before convtrain kept one), so \
             that this is the data of {} is not checked.",
            new.display(),
            old.display()
        ));
        return Ok(());
    };
    let found = fingerprint(&new).map_err(|e| {
        input_err!("--data-dir {}: cannot read the data there to check it is the run's ({e}).", new.display())
    })?;
    if found != recorded {
        return Err(input_err!(
            "--data-dir {}: not the data the run started with in {}: it holds {}. The data directory may move on \
             resume, the data may not; point --data-dir at a copy of the run's data, or start a new run.",
            new.display(),
            old.display(),
            recorded.difference(&found)
        ));
    }
    Ok(())
}

/// A configuration value for messages (absent: null).
fn show(v: Option<&serde_json::Value>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "null".into())
}

/// Notes where `config.json` disagrees with the checkpoint's configuration (it is rewritten later).
fn report_config_edits(run: &RunDir, saved: &TrainConfig, warnings: &mut Vec<String>) {
    let consequence = format!(
        "The checkpoint's configuration is used and {} is rewritten from it; to train with other settings, start a \
         new run (--init-from {} keeps the weights).",
        run.config().display(),
        run.last().display()
    );
    match run.read_config() {
        Err(e) => warnings.push(format!("{e} {consequence}")),
        Ok(on_disk) => {
            let (a, b) = match (to_json_value(&on_disk, "config.json"), to_json_value(saved, "the configuration")) {
                (Ok(a), Ok(b)) => (a, b),
                _ => return,
            };
            let diffs: Vec<String> = on_disk
                .differing_keys(saved)
                .unwrap_or_default()
                .into_iter()
                .map(|k| format!("{k}: config.json {}, checkpoint {}", show(a.get(&k)), show(b.get(&k))))
                .collect();
            if !diffs.is_empty() {
                warnings.push(format!(
                    "{} differs from the configuration stored in {} ({}). {consequence}",
                    run.config().display(),
                    run.last().display(),
                    diffs.join("; ")
                ));
            }
        }
    }
}

/// Prepares a new (or restarted) run's directory: clears convtrain's files from it (`--overwrite`, or
/// a restart from epoch 0) and checks that it is writable. Called once the model and data are known
/// to be good.
pub fn create_run_dir(run: &RunDir) -> Result<()> {
    run.remove_own_files()?;
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

/// Refuses an output path (of `evaluate`, `export`, `visualize`) that is — symlinks followed — one of
/// a run directory's own files: writing it would break the run (a checkpoint replaced by an export
/// cannot be resumed).
pub fn refuse_run_file(out: &Path, flag: &str) -> Result<()> {
    let resolved = match out.canonicalize() {
        Ok(p) => p,
        Err(_) => {
            match (out.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }), out.file_name()) {
                (Some(parent), Some(name)) => match parent.canonicalize() {
                    Ok(p) => p.join(name),
                    Err(_) => return Ok(()), // no such directory: nothing of a run is there
                },
                _ => return Ok(()),
            }
        }
    };
    let (Some(dir), Some(name)) = (resolved.parent(), resolved.file_name().and_then(|n| n.to_str())) else {
        return Ok(());
    };
    let is_run = ["config.json", "last.safetensors", "log.csv", LOCK_FILE].iter().any(|f| dir.join(f).is_file());
    if is_run && RUN_FILES.contains(&name) {
        return Err(input_err!(
            "{flag} {}: that is {}, a file of the run in {}; writing it would break the run. Choose another output path.",
            out.display(),
            resolved.display(),
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_onto_a_runs_files_are_refused_through_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let run = root.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("config.json"), "{}").unwrap();
        std::fs::write(run.join("last.safetensors"), "x").unwrap();
        std::os::unix::fs::symlink(&run, root.path().join("alias")).unwrap();
        std::os::unix::fs::symlink(run.join("last.safetensors"), root.path().join("link.safetensors")).unwrap();
        for bad in ["run/last.safetensors", "run/best.safetensors", "alias/log.csv", "link.safetensors", "run/.lock"] {
            let e = refuse_run_file(&root.path().join(bad), "--out").unwrap_err().to_string();
            assert!(e.contains("--out") && e.contains("break the run"), "{bad}: {e}");
        }
        for ok in ["run/eval.json", "other.safetensors", "nowhere/last.safetensors", "last.safetensors"] {
            refuse_run_file(&root.path().join(ok), "--out").unwrap();
        }
    }

    #[test]
    fn numbers_in_messages_keep_three_significant_digits() {
        assert_eq!(three_digits(0.0052091), "0.00521");
        assert_eq!(three_digits(1e-5), "0.00001");
        assert_eq!(three_digits(0.1), "0.1");
        assert_eq!(three_digits(123.456), "123");
        assert_eq!(three_digits(0.0), "0");
    }
}
