//! A run directory belongs to one `train` at a time, no command writes over a run's files, a resume
//! obeys its checkpoint (never an edited config.json), a run that died before its first checkpoint
//! restarts, and tampered or damaged state is refused with one paragraph (exit 2).
mod common;
use common::*;
use std::collections::HashMap;
use std::path::Path;

#[test]
fn one_train_per_run_directory() {
    let d = quick_dir();
    let run_dir = d.path().join("runs/k");
    let mut first = spawn_group(d.path(), &quick_args("k", "100", &[]));
    assert!(wait_for(&mut first, || run_dir.join("last.safetensors").is_file()));
    let pid = format!("pid {}", first.id());
    for args in [
        vec!["train", "--resume", "runs/k"],
        quick_args("k", "100", &["--overwrite"]),
        quick_args("k", "100", &["--resume", "auto"]),
    ] {
        assert_input_error(&run(d.path(), &args), &["runs/k", "in use", &pid]);
    }
    // Read-only commands run beside the training.
    let ev = run(d.path(), &["evaluate", "--resume", "runs/k/last", "--split", "val"]);
    assert!(ev.status.success(), "{}", stderr(&ev));
    signal_group(&first, libc::SIGTERM);
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", String::from_utf8_lossy(&out.stderr));
    let epochs = logged_epochs(&run_dir);
    let o = run(d.path(), &["train", "--resume", "runs/k", "--epochs", &(epochs + 1).to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = log_rows(&run_dir);
    assert_eq!(rows.len(), epochs + 2, "each epoch logged once: {rows:?}");

    // Three trains of one new job started together: one trains, the others are refused.
    let children: Vec<_> = (0..3).map(|_| spawn_group(d.path(), &quick_args("j", "1", &[]))).collect();
    let outs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let codes: Vec<_> = outs.iter().map(|o| o.status.code()).collect();
    assert_eq!(codes.iter().filter(|&&c| c == Some(0)).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == Some(2)).count(), 2, "{codes:?}");
    assert_eq!(logged_epochs(&d.path().join("runs/j")), 1);
}

#[test]
fn no_output_path_writes_over_a_runs_files() {
    let d = quick_dir();
    let o = run(d.path(), &quick_args("k", "1", &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let last = d.path().join("runs/k/last.safetensors");
    let before = std::fs::read(&last).unwrap();
    std::os::unix::fs::symlink(d.path().join("runs/k"), d.path().join("alias")).unwrap();
    for args in [
        vec!["evaluate", "--resume", "runs/k", "--out", "runs/k/last.safetensors"],
        vec!["evaluate", "--resume", "runs/k", "--out", "alias/config.json"],
        vec!["export", "--format", "pytorch", "runs/k", "runs/k/last.safetensors"],
        vec!["export", "--format", "convtrain", "runs/k", "alias/best.safetensors"],
        vec!["visualize", "curves", "runs/k", "--out", "runs/k/log.csv"],
    ] {
        assert_input_error(&run(d.path(), &args), &["break the run"]);
    }
    assert_eq!(std::fs::read(&last).unwrap(), before);
    let o = run(d.path(), &["train", "--resume", "runs/k", "--epochs", "2"]);
    assert!(o.status.success(), "the run still resumes: {}", stderr(&o));
    // An output that cannot be written is an error, not a warning; so is a batch size of 0.
    let o = run(d.path(), &["evaluate", "--resume", "runs/k", "--out", "no/such/dir/eval.json"]);
    assert_input_error(&o, &["--out", "no/such/dir"]);
    assert_input_error(&run(d.path(), &["evaluate", "--resume", "runs/k", "--batch-size", "0"]), &["--batch-size"]);
}

#[test]
fn resume_obeys_the_checkpoint_and_refuses_flags_without_effect() {
    let d = quick_dir();
    let straight = run(d.path(), &quick_args("straight", "2", &[]));
    assert!(straight.status.success(), "{}", stderr(&straight));
    let o = run(d.path(), &quick_args("k", "1", &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    // Edit lr and batch size in config.json: the resume reports it and trains with the checkpoint's.
    let config = d.path().join("runs/k/config.json");
    let mut doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    doc["config"]["lr"] = 0.7.into();
    doc["config"]["batch_size"] = 64.into();
    std::fs::write(&config, doc.to_string()).unwrap();
    let o = run(d.path(), &["train", "--resume", "runs/k", "--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("config.json differs") && err.contains("lr: config.json 0.7, checkpoint 0.1"), "{err}");
    assert!(err.contains("batch_size: config.json 64, checkpoint 16"), "{err}");
    let (a, b) = (d.path().join("runs/straight"), d.path().join("runs/k"));
    assert_eq!(weights(&a.join("last.safetensors")), weights(&b.join("last.safetensors")));
    assert_eq!(log_rows(&a), log_rows(&b));
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!((doc["config"]["lr"].as_f64(), doc["config"]["epochs"].as_u64()), (Some(0.1), Some(2)));
    assert!(doc["libtorch_version"].is_string(), "the facts of the run are kept: {doc}");

    // A finished run has nothing to do.
    let o = run(d.path(), &["train", "--resume", "runs/k"]);
    assert!(o.status.success() && stdout(&o).contains("nothing to do"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("done:"), "{}", stdout(&o));
    // Flags that would be ignored are refused.
    std::fs::write(d.path().join("r.json"), "{}").unwrap();
    for (args, needle) in [
        (vec!["train", "--resume", "runs/k", "--config", "r.json"], "--config"),
        (vec!["train", "--resume", "runs/k", "--overwrite"], "--overwrite"),
        (vec!["train", "--resume", "runs/k", "--init-from", "runs/k/best.safetensors"], "--init-from"),
        (vec!["train", "--resume", "runs/k", "--job-id", "other"], "--job-id"),
        (vec!["train", "--resume", "runs/k", "--lr", "0.3"], "lr (run: 0.1, now: 0.3)"),
        (vec!["train", "--resume", "runs/k/last.safetensors"], "--resume runs/k."),
        (vec!["train", "--resume", "runs/nope"], "no such run directory"),
    ] {
        assert_input_error(&run(d.path(), &args), &[needle]);
    }
}

#[test]
fn a_run_stopped_before_its_first_checkpoint_restarts_from_epoch_zero() {
    let d = quick_dir();
    let o = run(d.path(), &quick_args("straight", "1", &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    for (job, resume) in [("k", "runs/k"), ("a", "auto")] {
        let run_dir = d.path().join("runs").join(job);
        let mut child = spawn_group(d.path(), &quick_args(job, "1", &[]));
        assert!(wait_for(&mut child, || run_dir.join("config.json").is_file()));
        signal_group(&child, libc::SIGKILL);
        let _ = child.wait();
        assert!(!run_dir.join("last.safetensors").exists(), "killed before the first checkpoint");
        // A plain re-run is refused, pointing at --resume.
        assert_input_error(&run(d.path(), &quick_args(job, "1", &[])), &["--resume restarts it from epoch 0"]);
        let o = run(d.path(), &quick_args(job, "1", &["--resume", resume]));
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("restarting it from epoch 0"), "{}", stderr(&o));
        let straight = d.path().join("runs/straight/last.safetensors");
        assert_eq!(weights(&run_dir.join("last.safetensors")), weights(&straight));
    }
}

/// Rewrites the checkpoint at `path` with one metadata entry changed (through the library, so the
/// checksums are right and only the value itself is wrong).
fn rewrite_metadata(path: &Path, key: &str, edit: impl Fn(&str) -> String) {
    let ck = convtrain::checkpoint::load(path).unwrap();
    let mut meta: HashMap<String, String> = ck.metadata.clone();
    meta.insert(key.into(), edit(&meta[key]));
    convtrain::checkpoint::save(path, &ck.tensors, meta).unwrap();
}

#[test]
fn tampered_checkpoints_and_logs_are_refused() {
    let d = quick_dir();
    let o = run(d.path(), &quick_args("k", "1", &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let last = d.path().join("runs/k/last.safetensors");
    let log = d.path().join("runs/k/log.csv");
    let (good, good_log) = (std::fs::read(&last).unwrap(), std::fs::read_to_string(&log).unwrap());
    let resume = ["train", "--resume", "runs/k", "--epochs", "2"];
    let state = |k: &'static str, v: u64| {
        move |s: &str| {
            let mut j: serde_json::Value = serde_json::from_str(s).unwrap();
            j[k] = v.into();
            j.to_string()
        }
    };
    for (edit, needles) in [
        (("train_state", state("batch", 1_000_000)), vec!["training state", "batch 1000000"]),
        (("train_state", state("epoch", 1_000_000)), vec!["training state", "epoch 1000000"]),
        (("train_state", state("optimizer_steps", 7)), vec!["training state", "optimizer steps"]),
    ] {
        std::fs::write(&last, &good).unwrap();
        rewrite_metadata(&last, edit.0, edit.1);
        assert_input_error(&run(d.path(), &resume), &needles);
    }
    std::fs::write(&last, &good).unwrap();
    rewrite_metadata(&last, "format", |_| "convtrain-checkpoint-99".into());
    assert_input_error(&run(d.path(), &resume), &["convtrain-checkpoint-99", "newer"]);
    // A flipped bit in the tensor data, and an edit of the metadata that leaves the checksums stale.
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n - 3] ^= 0x04;
    std::fs::write(&last, &flipped).unwrap();
    assert_input_error(&run(d.path(), &resume), &["last.safetensors", "tensor '", "checksum"]);
    let mut edited = good.clone();
    let at = good.windows(8).position(|w| w == b"\"epoch\":").unwrap();
    edited[at + 9] = b'9'; // "epoch":"1" → "epoch":"9"
    std::fs::write(&last, &edited).unwrap();
    assert_input_error(&run(d.path(), &resume), &["metadata", "checksum"]);
    std::fs::write(&last, &good).unwrap();
    // log.csv: a damaged row, a comment, a missing row — errors naming the line, the log left alone.
    for (text, needle) in [
        (format!("{good_log}garbage\n"), "line 3"),
        (format!("{good_log}# resumed by hand\n"), "line 3"),
        (good_log.lines().next().unwrap().to_string() + "\n", "missing"),
    ] {
        std::fs::write(&log, &text).unwrap();
        assert_input_error(&run(d.path(), &resume), &["log.csv", needle]);
        assert_eq!(std::fs::read_to_string(&log).unwrap(), text);
    }
    std::fs::write(&log, &good_log).unwrap();
    let o = run(d.path(), &resume);
    assert!(o.status.success(), "the restored run resumes: {}", stderr(&o));
}

#[test]
fn every_data_file_is_checked_before_the_run_starts() {
    let d = quick_dir();
    // Validation comes from the training set, yet a truncated test file stops the run at once.
    let test_images = d.path().join("m/t10k-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&test_images).unwrap();
    std::fs::write(&test_images, &bytes[..bytes.len() / 2]).unwrap();
    assert_input_error(&run(d.path(), &quick_args("k", "1", &[])), &["t10k-images-idx3-ubyte"]);
    assert!(!d.path().join("runs").exists(), "nothing is created");
}

#[test]
fn minor_input_mistakes_are_one_clear_paragraph() {
    let d = quick_dir();
    let o = run(d.path(), &quick_args("k", "1", &["--lr", "nan"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--lr") && stderr(&o).contains("finite"), "{}", stderr(&o));
    assert_input_error(&run(d.path(), &quick_args("k", "1", &["--lr", "0.1", "--lr-min", "0.5"])), &["--lr-min"]);
    std::fs::write(d.path().join("dup.json"), r#"{"epochs": 1, "lr": 0.1, "epochs": 2}"#).unwrap();
    assert_input_error(&run(d.path(), &["summary", "--config", "dup.json"]), &["dup.json", "'epochs'", "twice"]);
    std::fs::write(d.path().join("bom.json"), "\u{feff}{\"arch\": \"wrn\", \"depth\": 10, \"width\": 1}").unwrap();
    let o = run(d.path(), &["summary", "--config", "bom.json", "--dataset", "mnist"]);
    assert!(o.status.success(), "a UTF-8 byte-order mark is skipped: {}", stderr(&o));
    assert!(!d.path().join("runs").exists());
    // A diverged run says that resuming repeats it, and what changes the outcome.
    let o = run(d.path(), &quick_args("nan", "1", &["--lr", "1e30"]));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("diverge again") && err.contains("lower --lr") && err.contains("--seed"), "{err}");
}
