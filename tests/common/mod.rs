//! Helpers for the CLI tests: tiny datasets in the real file formats, and running the binary.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_convtrain"))
}

/// Runs convtrain with `args` in `cwd`, 2 threads.
pub fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("OMP_NUM_THREADS", "2")
        .output()
        .expect("failed to start convtrain")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Asserts a clean bad-input failure: exit 2, a message containing every `needle`, no panic.
pub fn assert_input_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "expected exit 2, got {:?}; stderr:\n{err}\nstdout:\n{}",
        o.status.code(),
        stdout(o)
    );
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "panic in stderr:\n{err}");
    // One paragraph: a run of spaces is a string continuation that lost its `\`.
    assert!(!err.contains("   "), "a run of spaces in the message:\n{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
}

/// A learnable synthetic image: class c has a bright square at a class-dependent position plus noise.
fn pixel(class: usize, i: usize, y: usize, x: usize, c: usize, size: usize) -> u8 {
    let cell = size / 4;
    let (cy, cx) = ((class / 4) * cell, (class % 4) * cell);
    let inside = y >= cy && y < cy + cell && x >= cx && x < cx + cell;
    let noise = ((i * 131 + y * 17 + x * 7 + c * 3) % 41) as u8;
    if inside {
        200 + noise
    } else {
        noise
    }
}

/// Writes CIFAR-10 binary files (`data_batch_1..5.bin`, `test_batch.bin`) with `per_batch` training
/// images per file and `test` test images.
pub fn write_cifar10(dir: &Path, per_batch: usize, test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, n: usize, offset: usize| {
        let mut bytes = Vec::with_capacity(n * 3073);
        for i in 0..n {
            let label = (i + offset) % 10;
            bytes.push(label as u8);
            for c in 0..3 {
                for y in 0..32 {
                    for x in 0..32 {
                        bytes.push(pixel(label, i + offset, y, x, c, 32));
                    }
                }
            }
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    for b in 1..=5 {
        write(&format!("data_batch_{b}.bin"), per_batch, b * 1000);
    }
    write("test_batch.bin", test, 0);
}

/// Writes gzipped MNIST-format IDX files with `train` and `test` 28×28 images.
pub fn write_mnist(dir: &Path, train: usize, test: usize) {
    use flate2::write::GzEncoder;
    use std::io::Write;
    std::fs::create_dir_all(dir).unwrap();
    let write_gz = |name: &str, bytes: &[u8]| {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        std::fs::write(dir.join(name), e.finish().unwrap()).unwrap();
    };
    for (prefix, n) in [("train", train), ("t10k", test)] {
        let mut img = vec![0, 0, 8, 3];
        img.extend((n as u32).to_be_bytes());
        img.extend(28u32.to_be_bytes());
        img.extend(28u32.to_be_bytes());
        let mut lab = vec![0, 0, 8, 1];
        lab.extend((n as u32).to_be_bytes());
        for i in 0..n {
            let class = i % 10;
            lab.push(class as u8);
            for y in 0..28 {
                for x in 0..28 {
                    img.push(pixel(class, i, y, x, 0, 28));
                }
            }
        }
        write_gz(&format!("{prefix}-images-idx3-ubyte.gz"), &img);
        write_gz(&format!("{prefix}-labels-idx1-ubyte.gz"), &lab);
    }
}

/// `train` of a WRN-10-1 (the smallest WRN) on `dataset` read from `data_dir`, into `runs/<job>`, on the
/// CPU, followed by `extra`.
pub fn wrn_train<'a>(
    dataset: &'a str,
    data_dir: &'a str,
    job: &'a str,
    epochs: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut a =
        vec!["train", "--arch", "wrn", "--depth", "10", "--width", "1", "--dataset", dataset, "--data-dir", data_dir];
    a.extend(["--epochs", epochs, "--job-id", job, "--device", "cpu"]);
    a.extend(extra);
    a
}

/// A tiny, fast CIFAR run (WRN-10-1, 20 % held out) in `runs/<job>`.
pub fn tiny_cifar_args<'a>(job: &'a str, epochs: &'a str) -> Vec<&'a str> {
    let extra =
        ["--batch-size", "32", "--eval-batch-size", "64", "--lr", "0.05", "--schedule", "1,3", "--gammas", "0.5"];
    let mut a = wrn_train("cifar10", "cifar", job, epochs, &extra);
    a.extend(["--val-split", "0.2", "--seed", "7", "--threads", "2"]);
    a
}

/// Sends `sig` (a name such as INT, TERM or KILL) to process `pid`.
pub fn send_signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status();
}

/// The tensors of a safetensors checkpoint as (name, raw bytes), sorted; metadata (which names the
/// run) left out, so two runs' weights compare bit for bit.
pub fn weights(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<_> = st.tensors().into_iter().map(|(n, t)| (n, t.data().to_vec())).collect();
    v.sort();
    v
}

/// The quickest real run: WRN-10-1 on MNIST resized to 8×8 (about a second an epoch on one thread),
/// 10 % held out, batches of 16, in `runs/<job>`, followed by `extra`. Data: [`write_mnist`] into `m`.
/// A flag in `extra` replaces the default one.
pub fn quick_args<'a>(job: &'a str, epochs: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = wrn_train("mnist", "m", job, epochs, &[]);
    let defaults = [
        ("--resize", "8"),
        ("--batch-size", "16"),
        ("--val-split", "0.1"),
        ("--threads", "1"),
        ("--seed", "5"),
        ("--log-interval", "1000"),
    ];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            a.extend([flag, value]);
        }
    }
    a.extend(extra);
    a
}

/// A temporary directory holding the data of [`quick_args`] (400 training and 100 test images).
pub fn quick_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_mnist(&d.path().join("m"), 400, 100);
    d
}

/// Starts convtrain in its own process group (so that a signal sent to the group reaches it alone, and
/// it does not inherit a shell's ignored SIGINT), stdout discarded, stderr captured.
pub fn spawn_group(cwd: &Path, args: &[&str]) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("OMP_NUM_THREADS", "1")
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("failed to start convtrain")
}

/// Sends `signal` to the process group of `child` (see [`spawn_group`]).
pub fn signal_group(child: &std::process::Child, signal: i32) {
    // SAFETY: kill has no memory preconditions; a negative pid names the process group.
    unsafe { libc::kill(-(child.id() as i32), signal) };
}

/// Waits (at most a minute) until `cond` holds or `child` has exited; returns whether `cond` held.
pub fn wait_for(child: &mut std::process::Child, cond: impl Fn() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(60) {
        if cond() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return cond();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// Rows of a run's log.csv without the timing columns (which differ between runs).
pub fn log_rows(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("log.csv"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(',').take(8).collect::<Vec<_>>().join(","))
        .collect()
}

/// Number of finished epochs in a run's log.csv.
pub fn logged_epochs(run: &Path) -> usize {
    log_rows(run).len().saturating_sub(1)
}
