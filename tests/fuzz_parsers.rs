//! The file parsers (IDX, CIFAR, checkpoints, config files) under random truncations and bit flips:
//! never a panic; a damaged file is a clean input error naming it (a damaged checkpoint always is).
mod common;
use convtrain::data::{cifar, idx, Dataset};
use convtrain::error::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// `good` truncated at a random length, or with 1–3 random bits flipped.
fn damage(good: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut bytes = good.to_vec();
    if rng.gen_bool(0.3) {
        bytes.truncate(rng.gen_range(0..good.len()));
    } else {
        for _ in 0..rng.gen_range(1..=3) {
            let i = rng.gen_range(0..bytes.len());
            bytes[i] ^= 1 << rng.gen_range(0..8);
        }
    }
    bytes
}

/// Runs `parse` on `cases` damaged copies of `file`; every result is a success or an input (or I/O)
/// error whose message names the file; returns how many were errors.
fn fuzz<T>(file: &Path, cases: usize, seed: u64, parse: impl Fn() -> convtrain::Result<T>) -> usize {
    let good = std::fs::read(file).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let mut errors = 0;
    for case in 0..cases {
        let bytes = damage(&good, &mut rng);
        std::fs::write(file, &bytes).unwrap();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&parse)) {
            Err(_) => panic!("{name}, case {case}: the parser panicked"),
            Ok(Ok(_)) => {}
            Ok(Err(e @ (Error::Input(_) | Error::Io { .. }))) => {
                assert!(e.to_string().contains(&name), "{name}, case {case}: {e}");
                errors += 1;
            }
            Ok(Err(e)) => panic!("{name}, case {case}: not an input error: {e:?}"),
        }
    }
    std::fs::write(file, &good).unwrap();
    errors
}

fn idx_file(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    dims.iter().for_each(|d| out.extend(d.to_be_bytes()));
    out.extend(data);
    out
}

#[test]
fn idx_files() {
    let d = tempfile::tempdir().unwrap();
    let n = 6u32;
    let pixels: Vec<u8> = (0..n * 784).map(|i| (i % 251) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    std::fs::write(d.path().join("train-images-idx3-ubyte"), idx_file(&[n, 28, 28], &pixels)).unwrap();
    std::fs::write(d.path().join("train-labels-idx1-ubyte"), idx_file(&[n], &labels)).unwrap();
    let load = || idx::load(Dataset::Mnist, d.path(), true);
    assert!(load().is_ok());
    for (i, f) in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"].iter().enumerate() {
        fuzz(&d.path().join(f), 150, i as u64, load);
    }
    // Gzipped: the gzip layer's own checks come first.
    common::write_mnist(&d.path().join("gz"), 4, 2);
    let load = || idx::load(Dataset::Mnist, &d.path().join("gz"), false);
    assert!(load().is_ok());
    let errors = fuzz(&d.path().join("gz/t10k-images-idx3-ubyte.gz"), 150, 7, load);
    assert!(errors > 100, "{errors} of 150 damaged gzip files were noticed");
}

#[test]
fn cifar_files() {
    let d = tempfile::tempdir().unwrap();
    common::write_cifar10(d.path(), 3, 3);
    let load = || cifar::load(Dataset::Cifar10, d.path(), true);
    assert!(load().is_ok());
    fuzz(&d.path().join("data_batch_2.bin"), 150, 3, load);
}

#[test]
fn checkpoints() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("last.safetensors");
    let tensors = vec![
        ("conv.weight".to_string(), tch::Tensor::arange(54, (tch::Kind::Float, tch::Device::Cpu)).view([2, 3, 3, 3])),
        ("bn.running_mean".to_string(), tch::Tensor::from_slice(&[0.5f32, -1.0])),
        ("steps".to_string(), tch::Tensor::from_slice(&[7i64])),
    ];
    let meta = [("format", "convtrain-checkpoint-1"), ("train_state", r#"{"epoch":2,"batch":0}"#), ("arch", "wrn")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
    convtrain::checkpoint::save(&path, &tensors, meta).unwrap();
    assert!(convtrain::checkpoint::load(&path).is_ok());
    let cases = 300;
    assert_eq!(fuzz(&path, cases, 11, || convtrain::checkpoint::load(&path)), cases, "every damage is noticed");
    fuzz(&path, cases, 12, || convtrain::checkpoint::read_metadata(&path));
}

#[test]
fn config_files() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("recipe.json");
    let recipe = r#"{"arch": "wrn", "depth": 16, "width": 4, "lr": 0.1, "milestones": [60, 120, 160],
                     "gammas": [0.2, 0.2, 0.2], "augment": ["flip", "crop:4"], "batch_size": 128, "epochs": 200}"#;
    std::fs::write(&path, recipe).unwrap();
    let parse = || {
        let v = convtrain::config::TrainConfig::read_file(&path)?;
        convtrain::config::TrainConfig::resolve(v, serde_json::Value::Null, &path.display().to_string())
    };
    assert!(parse().is_ok());
    fuzz(&path, 300, 5, parse);
}
