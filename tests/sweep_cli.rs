//! `convtrain sweep`: one row per point however often the sweep is killed and re-run, results equal to
//! an uninterrupted sweep, shards + collect equal to one process, the Slurm script in a fake Slurm.
mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// A grid of tiny-cnn runs on generated MNIST: 3 seeds × 2 epochs of 2 mini-batches, one thread (so
/// that every process computes identically).
fn grid(sweep_dir: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "sweep",
        "grid",
        "--arch",
        "tiny-cnn",
        "--dataset",
        "mnist",
        "--data-dir",
        "mnist",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--limit-train-batches",
        "2",
        "--limit-val-batches",
        "1",
        "--eval-batch-size",
        "32",
        "--val-split",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--set",
        "seed=0,1,2",
        "--sweep-dir",
        sweep_dir,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Flags of a VGG feature-amount sweep on generated MNIST: mini-batches of 8, two of them per epoch, the
/// abort check after epoch 1 (`--sgdr-t0 1`), one thread; then `extra`.
fn vgg_flags(extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "--dataset",
        "mnist",
        "--data-dir",
        "mnist",
        "--sgdr-t0",
        "1",
        "--batch-size",
        "8",
        "--limit-train-batches",
        "2",
        "--limit-val-batches",
        "1",
        "--eval-batch-size",
        "16",
        "--device",
        "cpu",
        "--threads",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run_strings(dir: &Path, args: &[String]) -> std::process::Output {
    run(dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn with_data() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_mnist(&d.path().join("mnist"), 48, 32);
    d
}

/// The rows of a results CSV without the timing columns (which differ between processes).
fn results(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let keep: Vec<usize> =
        (0..header.len()).filter(|&i| !header[i].ends_with("_seconds") && header[i] != "images_per_second").collect();
    let mut rows = vec![keep.iter().map(|&i| header[i].clone()).collect()];
    rows.extend(r.records().map(|rec| {
        let rec = rec.unwrap();
        keep.iter().map(|&i| rec[i].to_string()).collect::<Vec<String>>()
    }));
    rows
}

#[test]
fn a_grid_sweep_writes_one_row_per_point_and_rebuilds_lost_records() {
    let d = with_data();
    let o = run_strings(d.path(), &grid("sw", &["--keep-checkpoints", "all"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let want = results(&d.path().join("sw/results.csv"));
    assert_eq!(want.len(), 4);
    assert_eq!(&want[0][..3], ["id", "seed", "BestVal"]);
    assert_eq!(want.iter().skip(1).map(|r| r[0].as_str()).collect::<Vec<_>>(), ["1", "2", "3"]);
    let col = |name: &str| want[0].iter().position(|c| c == name).unwrap();
    let (status, epochs) = (col("status"), col("epochs"));
    assert!(want.iter().skip(1).all(|r| r[status] == "finished" && r[epochs] == "2"), "{want:?}");

    // A process killed after a point's run ended but before its record was written: the record is rebuilt
    // from the run's own final state without training again; a lost or stale CSV is rebuilt from the records.
    let run2 = d.path().join("sw/runs/002_seed=1");
    let log = std::fs::read_to_string(run2.join("log.csv")).unwrap();
    std::fs::remove_file(run2.join("result.json")).unwrap();
    std::fs::write(d.path().join("sw/results.csv"), "torn").unwrap();
    let o = run_strings(d.path(), &grid("sw", &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 points (2 done)"), "{}", stdout(&o));
    assert_eq!(results(&d.path().join("sw/results.csv")), want);
    assert_eq!(std::fs::read_to_string(run2.join("log.csv")).unwrap(), log, "trained again");
    // The point done now keeps its best checkpoint only (the default of --keep-checkpoints).
    assert!(run2.join("best.safetensors").is_file() && !run2.join("last.safetensors").exists());

    // The same command again trains nothing; other settings are refused, naming the difference.
    let o = run_strings(d.path(), &grid("sw", &[]));
    assert!(stdout(&o).contains("3 points (3 done)"), "{}", stdout(&o));
    let mut other = grid("sw", &[]);
    other[9] = "3".into(); // --epochs 3
    assert_input_error(&run_strings(d.path(), &other), &["another sweep", "epochs: 2 there, 3 here", "--sweep-dir"]);
    assert_input_error(&run_strings(d.path(), &grid("sw2", &["--set", "lr=0.1,0.1"])), &["--set", "twice"]);
    assert_input_error(&run_strings(d.path(), &grid("sw2", &["--seed", "4"])), &["--set seed", "flag"]);
    assert!(!d.path().join("sw2").exists(), "a refused sweep writes nothing");
}

#[test]
fn a_diverging_point_is_recorded_as_failed_and_the_sweep_goes_on() {
    let d = with_data();
    let mut a = grid("sw", &["--set", "lr=3e38,0.01", "--micro-batch", "8"]);
    let seeds = a.iter().position(|s| s == "seed=0,1,2").unwrap();
    a[seeds] = "seed=0".into();
    let o = run_strings(d.path(), &a);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = results(&d.path().join("sw/results.csv"));
    let status = rows[0].iter().position(|c| c == "status").unwrap();
    assert_eq!(rows[1][status], "failed", "{rows:?}");
    assert!(rows[1][status + 1].contains("training loss is"), "{rows:?}");
    assert_eq!(rows[2][status], "finished", "{rows:?}");
    // A failed point stays failed on a re-run, unless asked to try again.
    let o = run_strings(d.path(), &a);
    assert!(stdout(&o).contains("(2 done)"), "{}", stdout(&o));
    let mut retry = a.clone();
    retry.push("--retry-failed".into());
    let o = run_strings(d.path(), &retry);
    assert!(stdout(&o).contains("(1 done)") && stdout(&o).contains("failed"), "{}", stdout(&o));
}

fn spawn(dir: &Path, args: &[String]) -> std::process::Child {
    Command::new(bin()).args(args).current_dir(dir).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn killed_at_random_moments_then_resumed_equals_one_uninterrupted_sweep_and_so_do_shards() {
    let reference = with_data();
    let started = Instant::now();
    let o = run_strings(reference.path(), &grid("sw", &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let whole = started.elapsed();
    let want = results(&reference.path().join("sw/results.csv"));

    // SIGKILL, SIGTERM and SIGINT at fractions of the uninterrupted sweep's duration (planning, mid-epoch
    // of a point, around a point's end), each time re-running the same command.
    let d = with_data();
    let args = grid("sw", &["--checkpoint-interval", "1"]);
    let mut signals = [(0.1, "KILL"), (0.45, "TERM"), (0.3, "KILL"), (0.6, "INT"), (0.5, "KILL")].into_iter();
    let mut hits = 0;
    loop {
        let mut child = spawn(d.path(), &args);
        let Some((fraction, signal)) = signals.next() else {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            break;
        };
        std::thread::sleep(whole.mul_f64(fraction));
        if child.try_wait().unwrap().is_none() {
            hits += 1;
            send_signal(child.id(), signal);
        }
        let out = child.wait_with_output().unwrap();
        // An interrupt checkpoints and exits 128 + the signal (SIGTERM too where the trainer handles it);
        // a signal that came before the handler was installed, or SIGKILL, ends the process at once.
        let err = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(130 | 143) => assert!(err.contains("re-run the same command"), "{err}"),
            Some(0) | None => {}
            Some(code) => panic!("{signal}: exit {code}: {err}"),
        }
        // Every record written so far is whole, and so is the CSV built from them.
        let csv = d.path().join("sw/results.csv");
        if csv.exists() {
            let rows = results(&csv);
            let ids: Vec<&str> = rows.iter().skip(1).map(|r| r[0].as_str()).collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "rows {ids:?}");
        }
    }
    assert!(hits >= 3, "only {hits} signals hit a running sweep");
    assert_eq!(results(&d.path().join("sw/results.csv")), want);

    // Two shards (one of them run as a Slurm array task) and collect: the same rows.
    let s = with_data();
    let o = run_strings(s.path(), &grid("sw", &["--shard", "1/2"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Command::new(bin())
        .args(grid("sw", &[]))
        .current_dir(s.path())
        .env("SLURM_ARRAY_TASK_ID", "0")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("sweep collect"), "{}", stdout(&o));
    assert!(!s.path().join("sw/results.csv").exists());
    let shard_rows =
        results(&s.path().join("sw/results-0.csv")).len() + results(&s.path().join("sw/results-1.csv")).len();
    assert_eq!(shard_rows, 2 + 3, "two headers and three rows");
    let o = run(s.path(), &["sweep", "collect", "sw"]);
    assert!(o.status.success() && stdout(&o).contains("3 of 3 points (3 finished"), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(results(&s.path().join("sw/results.csv")), want);
}

/// A directory of fake `sbatch`, `srun` and `scontrol` commands that log their arguments to
/// `<dir>/calls`; `sbatch` answers job ids 1001, 1002, …; `srun` runs its command and returns
/// `FAKE_SRUN_RC` if set.
fn fake_slurm(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.join("calls");
    let scripts = [
        (
            "sbatch",
            format!(
                "#!/usr/bin/env bash\nprintf 'sbatch' >> {0}; printf ' <%s>' \"$@\" >> {0}; echo >> {0}\n\
                 n=$(grep -c '^sbatch' {0}); echo $((1000 + n))\n",
                log.display()
            ),
        ),
        (
            "srun",
            format!(
                "#!/usr/bin/env bash\necho \"srun $*\" >> {}\n\"$@\"; rc=$?\nexit ${{FAKE_SRUN_RC:-$rc}}\n",
                log.display()
            ),
        ),
        ("scontrol", format!("#!/usr/bin/env bash\necho \"scontrol $*\" >> {}\n", log.display())),
    ];
    for (name, text) in scripts {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        Command::new("chmod").arg("+x").arg(&p).status().unwrap();
    }
}

#[test]
fn the_slurm_script_submits_an_array_and_a_collect_job_and_its_tasks_requeue_on_the_time_limit() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm/vgg_sweep.sbatch");
    let o = Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let d = with_data();
    let fake = d.path().join("fake");
    fake_slurm(&fake);
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let sweep_dir = d.path().join("sw");
    // The sweep's flags as the user gives them after the script name: two cheap VGG-D variants.
    let flags: Vec<String> = vgg_flags(&["--variants", "167-169", "--epochs", "1", "--keep-checkpoints", "none"]);
    let script_run = |envs: &[(&str, &str)]| {
        let mut c = Command::new("bash");
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SLURM_")) {
            c.env_remove(k);
        }
        c.arg(&script).args(&flags).current_dir(d.path()).env("PATH", &path);
        c.env("CONVTRAIN", bin()).env("SWEEP_DIR", &sweep_dir).env("OMP_NUM_THREADS", "1");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    };

    // Submit mode: the array with the flags, then collect after it.
    let o = script_run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("array job 1001 and collect job 1002"), "{}", stdout(&o));
    let calls = std::fs::read_to_string(fake.join("calls")).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert!(lines[0].starts_with("sbatch <--parsable> <") && lines[0].contains("<--variants> <167-169>"), "{calls}");
    assert!(lines[1].contains("<--dependency=afterany:1001>"), "{calls}");
    let wrap = lines[1].split("<--wrap=").nth(1).unwrap().trim_end_matches('>').to_string();
    assert!(wrap.contains("sweep collect"), "{wrap}");

    // The array's two tasks, as Slurm starts them; the first is stopped by the time-limit signal once.
    for (task, rc) in [("0", Some("138")), ("0", None), ("1", None)] {
        let mut envs = vec![
            ("SLURM_JOB_ID", "2000"),
            ("SLURM_ARRAY_JOB_ID", "1001"),
            ("SLURM_ARRAY_TASK_ID", task),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "1"),
        ];
        if let Some(rc) = rc {
            envs.push(("FAKE_SRUN_RC", rc));
        }
        let o = script_run(&envs);
        assert_eq!(o.status.code(), Some(rc.map_or(0, |r| r.parse().unwrap())), "{}{}", stdout(&o), stderr(&o));
    }
    let calls = std::fs::read_to_string(fake.join("calls")).unwrap();
    assert_eq!(calls.matches("scontrol requeue 1001_0").count(), 1, "{calls}");
    assert_eq!(calls.matches("srun ").count(), 3, "{calls}");
    // The dependent job's command merges the shards.
    let o = Command::new("bash").arg("-c").arg(&wrap).current_dir(d.path()).output().unwrap();
    assert!(
        o.status.success() && stdout(&o).contains("wrote") && stdout(&o).contains("3 of 3 points ("),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let rows = results(&sweep_dir.join("results.csv"));
    assert_eq!(rows.iter().skip(1).map(|r| r[0].as_str()).collect::<Vec<_>>(), ["167", "168", "169"]);
    assert!(!stdout(&o).contains("missing") && !stdout(&o).contains("duplicate"), "{}", stdout(&o));
}

#[test]
fn a_vgg_features_sweep_aborts_by_the_originals_rule_records_it_and_draws_the_figures() {
    let d = with_data();
    // The two cheapest VGG-D variants (0.08 GMACs per image), the abort check after epoch 1.
    let args = |keep: &str| -> Vec<String> {
        let mut a: Vec<String> = ["sweep", "vgg-features"].iter().map(|s| s.to_string()).collect();
        a.extend(vgg_flags(&[
            "--variants",
            "168-169",
            "--epochs",
            "2",
            "--sweep-dir",
            "vs",
            "--keep-checkpoints",
            keep,
        ]));
        a
    };
    let o = run_strings(d.path(), &args("all"));
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = results(&d.path().join("vs/results.csv"));
    assert_eq!(&rows[0][..7], ["id", "Filters", "Parameters", "Mean", "Variance", "Skew", "BestVal"]);
    // Appendix A: #168 is ξ=15 ω=4 α=−12 with 14,321,311 parameters in the original's count.
    assert_eq!(
        &rows[1][..6],
        [
            "168",
            "[2.0, 4.0, 8.0, 17.0, 34.0, 63.0, 110.0, 180.0, 278.0, 403.0, 551.0, 706.0, 851.0, 964.0, 892.0]",
            "14321311",
            "15.0",
            "4.0",
            "-12.0"
        ]
    );
    // The rule: a variant below 2·100/10 % train top-1 after epoch 1 (the check epoch, --sgdr-t0) stops
    // there with its row written; the others train on. With this data #168 is below.
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    let (status, train) = (col("status"), col("AllTrain"));
    for r in &rows[1..] {
        let first: f64 = r[train].trim_matches(['[', ']']).split(',').next().unwrap().trim().parse().unwrap();
        if first < 20.0 {
            assert_eq!([r[status].as_str(), r[status + 2].as_str()], ["aborted", "1"], "{rows:?}");
            assert!(r[status + 1].contains("after epoch 1 is below 20.00%"), "{rows:?}");
        } else {
            assert_eq!([r[status].as_str(), r[status + 2].as_str()], ["finished", "2"], "{rows:?}");
        }
    }
    assert_eq!(rows[1][status], "aborted", "{rows:?}");
    // Killed after the abort but before the record: the resumed run stops again at once.
    let run168 = d.path().join("vs/runs/variant-168");
    let log = std::fs::read_to_string(run168.join("log.csv")).unwrap();
    std::fs::remove_file(run168.join("result.json")).unwrap();
    let o = run_strings(d.path(), &args("none"));
    assert!(o.status.success() && stdout(&o).contains("(1 done)"), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(results(&d.path().join("vs/results.csv")), rows);
    assert_eq!(std::fs::read_to_string(run168.join("log.csv")).unwrap(), log);
    assert!(!run168.join("best.safetensors").exists() && !run168.join("last.safetensors").exists());

    let o = run(d.path(), &["visualize", "sweep", "vs"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "accuracy_vs_xi.png",
        "train_accuracy_vs_xi.png",
        "accuracy_vs_parameters.png",
        "width_profiles.png",
        "explorer.html",
    ] {
        assert!(d.path().join("vs").join(f).is_file(), "{f}: {}", stdout(&o));
    }
    let mut bad = args("best");
    let ids = bad.iter().position(|a| a == "168-169").unwrap();
    bad[ids] = "0-3".into();
    assert_input_error(&run_strings(d.path(), &bad), &["--variants 0-3", "1 to 193"]);
    let mut one = args("best");
    one.extend(["--variant".into(), "3".into()]);
    assert_input_error(&run_strings(d.path(), &one), &["--variant", "--variants"]);
}
