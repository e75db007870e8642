//! The research workflow end to end: recipes by name from any directory, `--print-config` and
//! `--dry-run`, a run's config.json training the same run again bit for bit, resume rules (a cosine
//! schedule's total, a moved data directory), tracking files and the test results at the end.
mod common;
use common::*;
use std::path::Path;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn recipes_print_config_and_dry_run_work_from_an_empty_directory() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["recipes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for needle in ["mnist_quickstart", "swrn28-10-6_cifar10", "Sadigh & Sen", "description"] {
        assert!(stdout(&o).contains(needle), "{needle}: {}", stdout(&o));
    }
    let o = run(d.path(), &["train", "--config", "mnist_quickstart", "--print-config", "--set", "lr=0.02"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    assert_eq!(cfg["data_dir"], data.display().to_string());
    assert_eq!(
        (cfg["arch"].as_str(), cfg["lr"].as_f64(), cfg["epochs"].as_u64()),
        (Some("ccnn-toy"), Some(0.02), Some(3))
    );
    let o = std::process::Command::new(bin())
        .args(["train", "--config", "mnist_quickstart", "--print-config"])
        .current_dir(d.path())
        .env("CONVTRAIN_DATA", "/somewhere/data")
        .output()
        .unwrap();
    assert!(stdout(&o).contains("\"data_dir\": \"/somewhere/data/mnist\""), "{}", stdout(&o));
    assert_input_error(
        &run(d.path(), &["train", "--config", "swrn28-10-6_cifar1"]),
        &["did you mean `swrn28-10-6_cifar10`?"],
    );
    assert_input_error(&run(d.path(), &["train", "--set", "batchsize=3"]), &["did you mean `batch_size`?"]);
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0, "nothing is written");

    write_mnist(&d.path().join("m"), 400, 100);
    let o = run(d.path(), &quick_args("dry", "1", &["--dry-run"]));
    assert!(o.status.success(), "{}", stderr(&o));
    for needle in ["nothing is written", "MACs per image", "360 train / 40 validation", "parameter group", "runs/dry"] {
        assert!(stdout(&o).contains(needle), "{needle}: {}", stdout(&o));
    }
    assert!(!d.path().join("runs").exists(), "a dry run writes nothing");
}

#[test]
fn a_runs_config_trains_the_same_run_again_and_stays_current_on_resume() {
    let d = quick_dir();
    let o = run(d.path(), &quick_args("a", "1", &["--log-interval", "5"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let a = d.path().join("runs/a");
    // Tracking: per-interval and per-epoch records, TensorBoard's events, the test results (val held out).
    let records = convtrain::train::tracking::read_metrics(&a.join("metrics.jsonl")).unwrap();
    let kinds: Vec<&str> = records.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "step").count(), 23 / 5, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "epoch").count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == "test").count(), 2);
    let events = convtrain::train::tfevents::read(&a.join("events.out.tfevents.convtrain")).unwrap();
    assert!(events.iter().any(|e| e.scalars.iter().any(|(t, _)| t == "val/top1")));
    // Resident memory at each epoch's end (a long run's memory growth shows there).
    let epochs = records.iter().filter(|r| r["kind"] == "epoch");
    assert!(epochs.clone().all(|r| r["rss_bytes"].as_u64().is_some_and(|b| b > 1 << 20)), "{records:?}");
    assert!(events.iter().any(|e| e.scalars.iter().any(|(t, v)| t == "system/rss_mib" && *v > 1.0)));
    let test = json(&a.join("test.json"));
    assert_eq!((test["best"]["epoch"].as_u64(), test["last"]["epoch"].as_u64()), (Some(1), Some(1)));
    assert_eq!(test["best"]["count"], 100);
    assert!(stdout(&o).contains(&format!("test top-1 {:.2}% (best, epoch 1)", test["best"]["top1"].as_f64().unwrap())));
    // Provenance.
    let doc = json(&a.join("config.json"));
    for key in ["git_commit", "libtorch_version", "libtorch_cuda", "libtorch_cudnn", "host", "started"] {
        assert!(doc[key].is_string(), "{key}: {doc}");
    }
    assert_eq!(doc["invocations"].as_array().unwrap().len(), 1);

    // The run's own config.json, as it is, trains the same run under another job id.
    let o = run(d.path(), &["train", "--config", "runs/a/config.json", "--job-id", "b"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b = d.path().join("runs/b");
    assert_eq!(weights(&a.join("last.safetensors")), weights(&b.join("last.safetensors")));
    assert_eq!(json(&a.join("test.json")), json(&b.join("test.json")));

    // A resume that extends the run keeps config.json current and records the invocation.
    let o = run(d.path(), &["train", "--resume", "runs/a", "--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = json(&a.join("config.json"));
    assert_eq!(doc["config"]["epochs"], 2);
    let inv = doc["invocations"].as_array().unwrap();
    assert_eq!(inv.len(), 2);
    assert_eq!(inv[1]["changed"]["epochs"], serde_json::json!({"from": 1, "to": 2}));
    assert!(inv[1]["command_line"].as_array().unwrap().iter().any(|a| a == "--resume"));
    assert_eq!(json(&a.join("test.json"))["last"]["epoch"], 2);
    let tests = |a: &Path| {
        let records = convtrain::train::tracking::read_metrics(&a.join("metrics.jsonl")).unwrap();
        records.iter().filter(|r| r["kind"] == "test").map(|r| r["epoch"].as_u64().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(tests(&a).len(), 2, "the first scores were replaced");
    // Resuming the finished run: nothing to do, and its results stand.
    let o = run(d.path(), &["train", "--resume", "runs/a"]);
    assert!(o.status.success() && stdout(&o).contains("nothing to do"), "{}", stdout(&o));
    assert_eq!(tests(&a).len(), 2);
    assert!(a.join("test.json").is_file());
}

#[test]
fn resume_refuses_a_stretched_cosine_and_other_data_but_follows_moved_data() {
    let d = quick_dir();
    let o = run(d.path(), &quick_args("c", "1", &["--schedule", "cosine", "--val-split", "0"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!d.path().join("runs/c/test.json").exists(), "validation on the test set: no separate test scoring");
    assert!(!stdout(&o).contains("test top-1"), "{}", stdout(&o));
    assert_input_error(
        &run(d.path(), &["train", "--resume", "runs/c", "--epochs", "2"]),
        &["cosine", "--allow-schedule-change"],
    );
    // The data staged elsewhere: the same files are accepted, other files are not.
    let moved = d.path().join("staged");
    std::fs::create_dir(&moved).unwrap();
    for e in std::fs::read_dir(d.path().join("m")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), moved.join(e.file_name())).unwrap();
    }
    let args = ["train", "--resume", "runs/c", "--epochs", "2", "--allow-schedule-change", "--data-dir", "staged"];
    let o = run(d.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let other = d.path().join("other");
    write_mnist(&other, 401, 100);
    let o = run(
        d.path(),
        &["train", "--resume", "runs/c", "--epochs", "3", "--allow-schedule-change", "--data-dir", "other"],
    );
    assert_input_error(&o, &["--data-dir", "not the data the run started with"]);
    assert_eq!(json(&d.path().join("runs/c/config.json"))["config"]["epochs"], 2, "a refused resume writes nothing");
}

/// Every file of a directory tree with its bytes.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(snapshot(&p));
        } else {
            files.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    files.sort();
    files
}

#[test]
fn resume_extends_sgdr_by_whole_cycles_and_previews_without_writing() {
    let d = quick_dir();
    let sgdr = ["--schedule", "sgdr", "--sgdr-t0", "1", "--sgdr-t-mult", "2", "--val-split", "0"];
    let o = run(d.path(), &quick_args("s", "1", &[&sgdr[..], &["--limit-train-batches", "4"]].concat()));
    assert!(o.status.success(), "{}", stderr(&o));
    let s = d.path().join("runs/s");
    // Restarts at epochs 1, 3, 7: a run of 2 epochs would stop half-way through the second cycle.
    let o = run(d.path(), &["train", "--resume", "runs/s", "--epochs", "2"]);
    assert_input_error(
        &o,
        &["--epochs 2", "from epoch 1 to epoch 3", "--epochs 1 or --epochs 3", "--allow-schedule-change"],
    );
    // --print-config and --dry-run preview the resume with the same refusals, taking no lock (they run
    // beside a holder of it) and writing nothing (not even the lock file's holder, as a resume does).
    let before = snapshot(&s);
    for preview in ["--print-config", "--dry-run"] {
        let refused = run(d.path(), &["train", "--resume", "runs/s", "--epochs", "2", preview]);
        assert_input_error(&refused, &[]);
        assert_eq!(stderr(&refused), stderr(&o), "{preview}");
    }
    assert_input_error(
        &run(d.path(), &["train", "--resume", "runs/s", "--lr", "0.5", "--print-config"]),
        &["cannot change lr"],
    );
    let lock = std::fs::File::open(s.join(".lock")).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(std::os::unix::io::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    let o = run(d.path(), &["train", "--resume", "runs/s", "--epochs", "3", "--print-config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut saved = json(&s.join("config.json"))["config"].clone();
    saved["epochs"] = 3.into();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap(), saved);
    let o = run(d.path(), &["train", "--resume", "runs/s", "--epochs", "3", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for needle in ["MACs per image", "resumes at epoch 2 batch 0 of 3 epochs; changes epochs 1 → 3", "400 train / 100"]
    {
        assert!(stdout(&o).contains(needle), "{needle}: {}", stdout(&o));
    }
    drop(lock);
    let after = snapshot(&s);
    let changed: Vec<_> = after.iter().filter(|f| !before.contains(f)).map(|f| &f.0).collect();
    assert!(after.len() == before.len() && changed.is_empty(), "the previews changed {changed:?}");
    let o = run(d.path(), &["train", "--resume", "runs/s", "--epochs", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(logged_epochs(&s), 3);
}

#[test]
fn a_seed_grid_becomes_a_paper_table() {
    let d = quick_dir();
    let mut args = vec!["sweep", "grid", "--arch", "wrn", "--depth", "10", "--width", "1", "--dataset", "mnist"];
    args.extend(["--data-dir", "m", "--epochs", "1", "--device", "cpu", "--resize", "8", "--batch-size", "16"]);
    args.extend(["--val-split", "0.1", "--threads", "1", "--set", "lr=0.05,0.1", "--set", "seed=1,2"]);
    let o = run(d.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(d.path(), &["table", "sweeps/grid", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, lr) in rows.iter().zip(["lr=0.05", "lr=0.1"]) {
        assert!(row["options"].as_str().unwrap().contains(lr), "{row}");
        assert_eq!((row["n"].as_u64(), row["seeds"].clone()), (Some(2), serde_json::json!([1, 2])));
        assert_eq!(row["scored_by"], "test.json");
        let (mean, tops) = (row["test_error_mean"].as_f64().unwrap(), row["runs"].as_array().unwrap());
        let errors: Vec<f64> = tops
            .iter()
            .map(|r| {
                100.0 - json(&d.path().join(r.as_str().unwrap()).join("test.json"))["best"]["top1"].as_f64().unwrap()
            })
            .collect();
        assert!((mean - (errors[0] + errors[1]) / 2.0).abs() < 1e-9, "{row}");
        assert!(row["parameters"].as_i64().unwrap() > 0 && row["macs"].as_i64().unwrap() > 0);
    }
    // Each point's result.json carries its test results, and results.csv shows them.
    let point = d.path().join("sweeps/grid/runs/001_lr=0.05_seed=1");
    let test = json(&point.join("test.json"));
    assert_eq!(json(&point.join("result.json"))["test"], test);
    let (header, csv_rows) = convtrain::sweep::results::read_csv(&d.path().join("sweeps/grid/results.csv")).unwrap();
    let col = |name: &str| csv_rows[0][header.iter().position(|c| c == name).unwrap()].clone();
    assert_eq!(col("test_top1_best").parse::<f64>().unwrap(), test["best"]["top1"].as_f64().unwrap());
    assert_eq!((col("test_epoch_best"), col("test_epoch_last")), ("1".to_string(), "1".to_string()));
    // MACs come from what the runs recorded at their start; runs of earlier versions (without) are traced.
    let config = point.join("config.json");
    let recorded = json(&config)["macs"].clone();
    assert_eq!(rows[0]["macs"], recorded);
    let mut old = json(&config);
    old.as_object_mut().unwrap().remove("macs");
    std::fs::write(&config, old.to_string()).unwrap();
    let second = d.path().join("sweeps/grid/runs/002_lr=0.05_seed=2/config.json");
    let mut edited = json(&second);
    edited["macs"] = 7.into();
    std::fs::write(&second, edited.to_string()).unwrap();
    let macs = |run_dir: &str| {
        let o = run(d.path(), &["table", "--json", run_dir]);
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()[0]["macs"].clone()
    };
    assert_eq!(macs("sweeps/grid/runs/001_lr=0.05_seed=1"), recorded, "traced");
    assert_eq!(macs("sweeps/grid/runs/002_lr=0.05_seed=2"), 7, "read, not traced");
    // A point whose test.json is gone is scored from its result.json.
    std::fs::remove_file(point.join("test.json")).unwrap();
    let o = run(d.path(), &["table", "sweeps/grid", "--json"]);
    let again: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(again[0]["test_error_mean"], rows[0]["test_error_mean"]);
    assert_eq!(again[0]["scored_by"], "result.json, test.json");
    // A done point keeps best.safetensors only: it cannot be resumed, and --resume does not restart it
    // from epoch 0 over its results.
    let done = d.path().join("sweeps/grid/runs/003_lr=0.1_seed=1");
    let log = std::fs::read(done.join("log.csv")).unwrap();
    let o = run(d.path(), &["train", "--resume", "sweeps/grid/runs/003_lr=0.1_seed=1"]);
    assert_input_error(&o, &["trained 1 epoch(s)", "last.safetensors) is gone", "--init-from"]);
    assert_eq!(std::fs::read(done.join("log.csv")).unwrap(), log);
    assert!(done.join("best.safetensors").is_file() && done.join("test.json").is_file());
    let o = run(d.path(), &["train", "--config", "sweeps/grid/runs/003_lr=0.1_seed=1/config.json"]);
    assert_input_error(&o, &["already holds files"]);
    assert!(!stderr(&o).contains("before its first checkpoint"), "{}", stderr(&o));
    let o = run(d.path(), &["table", "sweeps/grid/runs/001_lr=0.05_seed=1", "sweeps/grid/runs/002_lr=0.05_seed=2"]);
    let md = stdout(&o);
    assert!(md.starts_with("| arch | options | parameters | MACs | epochs | test error % | n |"), "{md}");
    assert!(md.contains(" ± ") && md.contains("| 2 |"), "{md}");
    assert_input_error(&run(d.path(), &["table", "m"]), &["holds no runs"]);
}
