//! Every bad input exits 2 with one clear paragraph, no panic, and damages nothing.
mod common;
use common::*;

#[test]
fn unknown_arch_and_invalid_depth() {
    let d = tempfile::tempdir().unwrap();
    assert_input_error(
        &run(d.path(), &["summary", "--arch", "resnet9000", "--dataset", "cifar10"]),
        &["--arch", "resnet9000", "wrn"],
    );
    assert_input_error(
        &run(d.path(), &["summary", "--arch", "wrn", "--depth", "27", "--dataset", "cifar10"]),
        &["--depth", "6n+4", "27"],
    );
}

#[test]
fn out_of_range_settings_are_refused() {
    let d = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--momentum", "-1"),
        ("--weight-decay", "-0.1"),
        ("--threads", "0"),
        ("--resize", "0"),
        ("--cutout", "-3"),
        ("--batch-size", "0"),
        ("--accum-steps", "0"),
        ("--micro-batch", "0"),
        ("--limit-train-batches", "0"),
        ("--limit-val-batches", "0"),
        ("--val-split", "1"),
    ] {
        let arg = format!("{flag}={value}");
        let o = run(d.path(), &["train", arg.as_str(), "--data-dir", "nowhere"]);
        assert_input_error(&o, &[flag]);
    }
}

#[test]
fn config_file_with_unknown_key_or_wrong_type() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.json"), r#"{"arch": "wrn", "learning_rate": 0.1}"#).unwrap();
    std::fs::write(d.path().join("b.json"), r#"{"epochs": "many"}"#).unwrap();
    std::fs::write(d.path().join("c.json"), r#"{"epochs": 3"#).unwrap();
    assert_input_error(&run(d.path(), &["train", "--config", "a.json"]), &["a.json", "learning_rate"]);
    assert_input_error(&run(d.path(), &["train", "--config", "b.json"]), &["b.json", "epochs"]);
    assert_input_error(&run(d.path(), &["train", "--config", "c.json"]), &["c.json", "JSON"]);
    assert_input_error(&run(d.path(), &["train", "--config", "missing.json"]), &["missing.json"]);
}

#[test]
fn missing_dataset_directory_names_the_files() {
    let d = tempfile::tempdir().unwrap();
    let o =
        run(d.path(), &["train", "--dataset", "cifar10", "--data-dir", "nowhere", "--epochs", "1", "--job-id", "x"]);
    assert_input_error(&o, &["nowhere", "data_batch_1.bin", "--download"]);
    assert!(!d.path().join("runs/x").exists(), "a failed start leaves no run directory");
    let o = run(
        d.path(),
        &["train", "--arch", "swrn", "--depth", "20", "--dataset", "mnist", "--data-dir", "nowhere", "--job-id", "y"],
    );
    assert_input_error(&o, &["--depth", "20"]);
    assert!(!d.path().join("runs/y").exists());
}

#[test]
fn corrupt_idx_and_cifar_files() {
    let d = tempfile::tempdir().unwrap();
    let mnist = d.path().join("m");
    write_mnist(&mnist, 20, 10);
    let args = wrn_train("mnist", "m", "j", "1", &["--overwrite"]);
    // Truncated IDX (raw file takes precedence over a missing .gz).
    let raw = mnist.join("train-images-idx3-ubyte");
    std::fs::remove_file(mnist.join("train-images-idx3-ubyte.gz")).unwrap();
    let mut bytes = vec![0, 0, 8, 3];
    bytes.extend(20u32.to_be_bytes());
    bytes.extend(28u32.to_be_bytes());
    bytes.extend(28u32.to_be_bytes());
    bytes.extend(vec![0u8; 100]);
    std::fs::write(&raw, &bytes).unwrap();
    assert_input_error(&run(d.path(), &args), &["train-images-idx3-ubyte"]);
    // Wrong magic number.
    bytes[2] = 9;
    std::fs::write(&raw, &bytes).unwrap();
    assert_input_error(&run(d.path(), &args), &["train-images-idx3-ubyte", "magic"]);

    let cifar = d.path().join("c");
    write_cifar10(&cifar, 4, 4);
    let cargs = wrn_train("cifar10", "c", "k", "1", &["--overwrite"]);
    let f = cifar.join("data_batch_3.bin");
    let mut b = std::fs::read(&f).unwrap();
    b.push(0);
    std::fs::write(&f, &b).unwrap();
    assert_input_error(&run(d.path(), &cargs), &["data_batch_3.bin", "3073"]);
    b.pop();
    b[3073] = 17; // label of the second record
    std::fs::write(&f, &b).unwrap();
    assert_input_error(&run(d.path(), &cargs), &["data_batch_3.bin", "17"]);
}

#[test]
fn bad_checkpoints_and_unwritable_run_dir() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(&d.path().join("cifar"), 10, 10);
    let ok = run(d.path(), &tiny_cifar_args("a", "1"));
    assert!(ok.status.success(), "{}", stderr(&ok));
    let last = d.path().join("runs/a/last.safetensors");
    let good = std::fs::read(&last).unwrap();

    // Another architecture / other shapes: the first mismatching tensor is named.
    let o = run(d.path(), &["evaluate", "--resume", "runs/a/last.safetensors", "--width", "2"]);
    assert_input_error(&o, &["last.safetensors", "shape"]);
    // Truncated checkpoint.
    std::fs::write(d.path().join("trunc.safetensors"), &good[..good.len() / 2]).unwrap();
    let o = run(
        d.path(),
        &[
            "evaluate",
            "--resume",
            "trunc.safetensors",
            "--arch",
            "wrn",
            "--depth",
            "10",
            "--width",
            "1",
            "--data-dir",
            "cifar",
        ],
    );
    assert_input_error(&o, &["trunc.safetensors", "truncated"]);
    // Missing checkpoint.
    assert_input_error(&run(d.path(), &["evaluate", "--resume", "nope"]), &["nope"]);
    assert_eq!(std::fs::read(&last).unwrap(), good);

    // Run directory not writable (a file stands where the runs directory should be).
    std::fs::write(d.path().join("blocked"), b"").unwrap();
    let mut args = tiny_cifar_args("b", "1");
    args.extend(["--runs-dir", "blocked"]);
    assert_input_error(&run(d.path(), &args), &["blocked", "--runs-dir"]);
}
