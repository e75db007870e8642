//! Oversize values: bounds name the flag; what passes them but does not fit in memory is one paragraph
//! (what was allocated, how big, what to lower), exit 2 — never a panic, a C++ frame list or a hang.
mod common;
use common::*;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

/// Runs convtrain with its address space limited to `bytes` (as `ulimit -v` or a container would).
fn run_limited(cwd: &Path, args: &[&str], bytes: u64) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(cwd).env("OMP_NUM_THREADS", "1");
    // SAFETY: setrlimit is async-signal-safe and touches nothing of the parent.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd.output().unwrap()
}

/// The address space a tiny convtrain process maps plus `extra` (libtorch and CUDA libraries map
/// a few GiB before anything is allocated).
fn limit_with(extra: u64) -> u64 {
    (5 << 30) + extra
}

fn assert_no_dump(o: &Output) {
    let err = stderr(o);
    assert!(!err.contains("frame #") && !err.contains("Exception raised from"), "{err}");
}

#[test]
fn size_flags_beyond_their_bounds_name_the_flag() {
    let d = quick_dir();
    for (args, needle) in [
        (vec!["summary", "--arch", "wrn", "--depth", "10", "--width", "100000", "--dataset", "mnist"], "--width"),
        (vec!["summary", "--arch", "wrn", "--depth", "6000004", "--dataset", "mnist"], "--depth"),
        (
            vec!["summary", "--arch", "swrn", "--depth", "10", "--bank-size", "1000000", "--dataset", "mnist"],
            "--bank-size",
        ),
    ] {
        let o = run(d.path(), &args);
        assert_input_error(&o, &[needle]);
        assert_no_dump(&o);
    }
    for (extra, needle) in [
        (vec!["--augment", "crop:100000"], "crop:100000"),
        (vec!["--resize", "3000"], "--resize"),
        (vec!["--batch-size", "100000000"], "--batch-size"),
    ] {
        let o = run(d.path(), &quick_args("k", "1", &extra));
        assert_input_error(&o, &[needle]);
        assert_no_dump(&o);
    }
    assert!(!d.path().join("runs").exists(), "a refused start leaves nothing");
}

#[test]
fn what_does_not_fit_in_memory_is_one_paragraph_and_leaves_nothing() {
    let d = quick_dir();
    // The model: WRN-10-100 has 740 million parameters, 3 GiB of weights.
    let o = run_limited(
        d.path(),
        &["summary", "--arch", "wrn", "--depth", "10", "--width", "100", "--dataset", "mnist"],
        limit_with(512 << 20),
    );
    assert_input_error(&o, &["out of memory while building wrn", "GiB", "--width"]);
    assert_no_dump(&o);
    // A batch: 64 images resized to 1000×1000 through 16 channels is 4 GiB per layer.
    let o = run_limited(
        d.path(),
        &quick_args("k", "1", &["--resize", "1000", "--batch-size", "64"]),
        limit_with(512 << 20),
    );
    assert_input_error(&o, &["out of memory while training mini-batches of 64 images of 1×1000×1000", "--batch-size"]);
    assert_no_dump(&o);
    assert!(!d.path().join("runs/k").exists(), "a run that failed before its first checkpoint leaves nothing");
}

#[test]
fn threads_beyond_the_cores_are_capped_with_a_warning() {
    let d = quick_dir();
    let o = run(d.path(), &quick_args("k", "1", &["--threads", "100000"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--threads 100000") && stderr(&o).contains("cores"), "{}", stderr(&o));
    let o = run(d.path(), &["evaluate", "--resume", "runs/k", "--threads", "1000"]);
    assert!(o.status.success() && stderr(&o).contains("--threads 1000"), "{}", stderr(&o));
}
