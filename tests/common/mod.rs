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
