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
    let o = run(d.path(), &["table", "sweeps/grid/runs/001_lr=0.05_seed=1", "sweeps/grid/runs/002_lr=0.05_seed=2"]);
    let md = stdout(&o);
    assert!(md.starts_with("| arch | options | parameters | MACs | epochs | test error % | n |"), "{md}");
    assert!(md.contains(" ± ") && md.contains("| 2 |"), "{md}");
    assert_input_error(&run(d.path(), &["table", "m"]), &["holds no runs"]);
}
