//! Ctrl-C and SIGKILL: a run stopped at any moment resumes to completion with a clean log.csv.
mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(dir: &std::path::Path, args: &[&str]) -> std::process::Child {
    Command::new(bin()).args(args).current_dir(dir).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

fn args(epochs: &'static str) -> Vec<&'static str> {
    // One thread: the interrupted and the reference runs must compute identically.
    let mut a =
        wrn_train("cifar10", "cifar", "k", epochs, &["--batch-size", "16", "--val-split", "0.1", "--seed", "3"]);
    a.extend(["--log-interval", "5", "--threads", "1"]);
    a
}

fn rows(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("runs/k/log.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(8).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn sigint_mid_epoch_checkpoints_exits_130_and_resumes_exactly() {
    let reference = tempfile::tempdir().unwrap();
    write_cifar10(&reference.path().join("cifar"), 60, 20);
    let o = run(reference.path(), &args("8"));
    assert!(o.status.success(), "{}", stderr(&o));

    let d = tempfile::tempdir().unwrap();
    write_cifar10(&d.path().join("cifar"), 60, 20);
    let mut child = spawn(d.path(), &args("8"));
    // Interrupt shortly after the first epoch's checkpoint, i.e. in the middle of a later epoch.
    let start = Instant::now();
    while !d.path().join("runs/k/last.safetensors").exists() && start.elapsed() < Duration::from_secs(120) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    send_signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");
    // `--resume DIR` alone continues with the run's own settings, exactly.
    let o = run(d.path(), &["train", "--resume", "runs/k"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(rows(d.path()), rows(reference.path()));
    assert_eq!(
        weights(&d.path().join("runs/k/last.safetensors")),
        weights(&reference.path().join("runs/k/last.safetensors"))
    );
    // ... and `--epochs` extends it.
    let o = run(d.path(), &["train", "--resume", "runs/k", "--epochs", "9"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(rows(d.path()).len(), 10);
}

#[test]
fn sigkill_at_random_moments_then_resume_gives_a_clean_log() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(&d.path().join("cifar"), 40, 20);
    // Reference: the same run uninterrupted.
    let reference = tempfile::tempdir().unwrap();
    write_cifar10(&reference.path().join("cifar"), 40, 20);
    let started = Instant::now();
    let o = run(reference.path(), &args("3"));
    assert!(o.status.success(), "{}", stderr(&o));
    let whole = started.elapsed();
    let want = rows(reference.path());

    // Kill at fractions of an uninterrupted run's duration: start-up, mid-epoch, around epoch ends.
    let mut delays = [0.2, 0.55, 0.4, 0.7].into_iter().map(|f| whole.mul_f64(f));
    let mut killed_while_running = 0;
    loop {
        // Mid-epoch checkpoints every 2 mini-batches (the reference has none: they change nothing).
        let mut a = args("3");
        a.extend(["--checkpoint-interval", "2"]);
        if d.path().join("runs/k/last.safetensors").exists() {
            a.extend(["--resume", "runs/k"]);
        } else if d.path().join("runs/k").exists() {
            a.push("--overwrite");
        }
        let mut child = spawn(d.path(), &a);
        match delays.next() {
            Some(delay) => {
                std::thread::sleep(delay);
                if child.try_wait().unwrap().is_none() {
                    killed_while_running += 1;
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            None => {
                let out = child.wait_with_output().unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                break;
            }
        }
    }
    assert!(killed_while_running >= 3, "only {killed_while_running} kills hit a running process");
    assert_eq!(rows(d.path()), want);
    assert_eq!(
        weights(&d.path().join("runs/k/last.safetensors")),
        weights(&reference.path().join("runs/k/last.safetensors"))
    );
    // Temp files of killed writers are swept on resume.
    for e in std::fs::read_dir(d.path().join("runs/k")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.ends_with(".tmp"), "{name}");
    }
}
