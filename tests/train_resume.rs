//! End-to-end: train → checkpoint → resume → evaluate on tiny generated CIFAR-format data, and the
//! exact-resume guarantee.
mod common;
use common::*;
use std::path::Path;

fn log_without_timing(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| l.split(',').take(8).collect::<Vec<_>>().join(",")).collect()
}

#[test]
fn two_plus_two_epochs_equal_four_bit_for_bit_and_evaluate_works() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(&d.path().join("cifar"), 40, 50);

    let straight = run(d.path(), &tiny_cifar_args("straight", "4"));
    assert!(straight.status.success(), "{}", stderr(&straight));

    let first = run(d.path(), &tiny_cifar_args("split", "2"));
    assert!(first.status.success(), "{}", stderr(&first));
    let mut resume_args = tiny_cifar_args("split", "4");
    resume_args.extend(["--resume", "runs/split"]);
    let second = run(d.path(), &resume_args);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stdout(&second).contains("resuming at epoch 3"), "{}", stdout(&second));

    // `--resume auto --job-id` re-runs the same command: it continues the run (here already complete).
    let mut auto = tiny_cifar_args("split", "4");
    auto.extend(["--resume", "auto"]);
    let again = run(d.path(), &auto);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("resuming at epoch 5"), "{}", stdout(&again));

    let a = d.path().join("runs/straight");
    let b = d.path().join("runs/split");
    assert_eq!(weights(&a.join("last.safetensors")), weights(&b.join("last.safetensors")));
    let (la, lb) = (log_without_timing(&a.join("log.csv")), log_without_timing(&b.join("log.csv")));
    assert_eq!(la.len(), 5, "header + 4 rows: {la:?}");
    assert_eq!(la, lb);
    assert_eq!(std::fs::read(a.join("split.json")).unwrap(), std::fs::read(b.join("split.json")).unwrap());

    // evaluate --resume on the run dir (best checkpoint) and on the last checkpoint file, test and val.
    let ev = run(d.path(), &["evaluate", "--resume", "runs/split", "--threads", "2"]);
    assert!(ev.status.success(), "{}", stderr(&ev));
    let report: serde_json::Value = serde_json::from_str(&stdout(&ev)).unwrap();
    assert_eq!(report["count"], 50);
    let best = convtrain::checkpoint::read_metadata(&b.join("best.safetensors")).unwrap();
    assert_eq!(report["epoch"].to_string(), best["epoch"], "the epoch it scored: {report}");
    assert!(
        report["top1"].as_f64().unwrap() >= 0.0 && report["top5"].as_f64().unwrap() >= report["top1"].as_f64().unwrap()
    );
    assert!(b.join("eval-best-test.json").is_file());
    let ev = run(d.path(), &["evaluate", "--resume", "runs/split/last", "--split", "val"]);
    assert!(ev.status.success(), "{}", stderr(&ev));
    let report: serde_json::Value = serde_json::from_str(&stdout(&ev)).unwrap();
    assert_eq!(report["count"], 40, "20% of 200 training images held out");

    // Curves of both runs.
    let cv = run(d.path(), &["visualize", "curves", "runs/straight", "runs/split", "--out", "c.png"]);
    assert!(cv.status.success(), "{}", stderr(&cv));
    assert!(std::fs::metadata(d.path().join("c.png")).unwrap().len() > 1000);
}

#[test]
fn a_run_dir_with_a_run_is_refused_and_nan_keeps_the_last_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(&d.path().join("cifar"), 20, 20);
    let ok = run(d.path(), &tiny_cifar_args("r", "1"));
    assert!(ok.status.success(), "{}", stderr(&ok));
    let last = d.path().join("runs/r/last.safetensors");
    let before = std::fs::read(&last).unwrap();
    let log_before = std::fs::read(d.path().join("runs/r/log.csv")).unwrap();

    let again = run(d.path(), &tiny_cifar_args("r", "1"));
    assert_input_error(&again, &["runs/r", "--resume", "--overwrite"]);
    assert_eq!(std::fs::read(&last).unwrap(), before);

    // Resume with a huge lr is refused (lr cannot change on resume) ...
    let mut args = tiny_cifar_args("r", "3");
    args.extend(["--resume", "runs/r", "--lr", "1e6"]);
    assert_input_error(&run(d.path(), &args), &["lr"]);
    // A run whose lr explodes at epoch 2 (×1e8 at milestone 1) diverges: exit 3, no panic, and the
    // checkpoint and log of epoch 1 stay as they were.
    let args = wrn_train(
        "cifar10",
        "cifar",
        "nan",
        "3",
        &[
            "--batch-size",
            "32",
            "--lr",
            "0.05",
            "--schedule",
            "1",
            "--gammas",
            "1e8",
            "--val-split",
            "0",
            "--seed",
            "1",
        ],
    );
    let nan = run(d.path(), &args);
    let err = stderr(&nan);
    assert_eq!(nan.status.code(), Some(3), "{err}");
    assert!(err.contains("loss") && err.contains("last.safetensors") && !err.contains("panicked"), "{err}");
    // The loss is read from the device at the log interval (here every batch), yet the message
    // names the same first batch whose loss was not finite as when it is read once an epoch.
    let mut each_batch = args.clone();
    each_batch.extend(["--log-interval", "1"]);
    let job = each_batch.iter().position(|a| *a == "nan").unwrap();
    each_batch[job] = "nan-read-each-batch";
    let again = run(d.path(), &each_batch);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    let position = |e: &str| e.split(": the training loss").next().unwrap().to_string();
    assert_eq!(position(&stderr(&again)), position(&err), "{}", stderr(&again));
    assert!(position(&err).contains("batch"), "{err}");
    // BN can keep the loss finite for a while after the jump; whenever it diverges, the checkpoint is
    // the last finished epoch and the log holds exactly its rows.
    let ck = std::fs::read(d.path().join("runs/nan/last.safetensors")).unwrap();
    let st = safetensors::SafeTensors::read_metadata(&ck).unwrap().1;
    let epoch: usize = st.metadata().as_ref().unwrap()["epoch"].parse().unwrap();
    assert!((1..3).contains(&epoch), "{epoch}");
    let rows = std::fs::read_to_string(d.path().join("runs/nan/log.csv")).unwrap();
    assert_eq!(rows.lines().count(), epoch + 1, "{rows}");
    let resumed = run(d.path(), &["evaluate", "--resume", "runs/nan/last"]);
    assert!(resumed.status.success(), "the kept checkpoint loads: {}", stderr(&resumed));
    assert_eq!(std::fs::read(d.path().join("runs/r/log.csv")).unwrap(), log_before);
}

#[test]
fn when_the_loss_is_read_from_the_device_changes_no_bit_of_the_run() {
    // Read after every batch, or only at a mid-epoch checkpoint every 5 batches and the epoch's end.
    let d = quick_dir();
    let each = run(d.path(), &quick_args("each", "2", &["--log-interval", "1"]));
    assert!(each.status.success(), "{}", stderr(&each));
    let deferred =
        run(d.path(), &quick_args("deferred", "2", &["--log-interval", "1000", "--checkpoint-interval", "5"]));
    assert!(deferred.status.success(), "{}", stderr(&deferred));
    let (a, b) = (d.path().join("runs/each"), d.path().join("runs/deferred"));
    assert_eq!(weights(&a.join("last.safetensors")), weights(&b.join("last.safetensors")));
    assert_eq!(log_without_timing(&a.join("log.csv")), log_without_timing(&b.join("log.csv")));
}
