//! Checkered CNNs through the CLI: counts (converted and not), training the toy models, evaluating an
//! ordinary CNN checkpoint as a CCNN without retraining, and the pattern visualiser.
mod common;
use common::*;

fn count(out: &str) -> String {
    out.lines().find_map(|l| l.strip_prefix("trainable parameters: ")).unwrap_or_default().to_string()
}

#[test]
fn parameter_counts_are_unchanged_by_conversion() {
    let d = tempfile::tempdir().unwrap();
    for (arch, dataset, want) in [
        ("ccnn-toy", "mnist", "93,833"),
        ("tiny-cnn", "mnist", "67,913"),
        ("resnet18", "cifar10", "11,173,962"),
        ("resnet50", "cifar100", "23,705,252"),
        ("vgg11-bn", "cifar10", "9,756,426"),
    ] {
        for conv in ["false", "true"] {
            let o = run(d.path(), &["summary", "--arch", arch, "--dataset", dataset, "--checkered", conv]);
            assert!(o.status.success(), "{arch}: {}", stderr(&o));
            assert_eq!(count(&stdout(&o)), want, "{arch} checkered={conv}");
        }
    }
}

#[test]
fn train_a_cnn_then_evaluate_it_as_a_ccnn() {
    let d = tempfile::tempdir().unwrap();
    write_mnist(&d.path().join("m"), 64, 40);
    let o = run(
        d.path(),
        &[
            "train",
            "--arch",
            "tiny-cnn",
            "--dataset",
            "mnist",
            "--data-dir",
            "m",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--val-split",
            "0",
            "--augment",
            "rotate:15,crop:2",
            "--weight-decay",
            "0",
            "--job-id",
            "t",
            "--threads",
            "2",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let plain = run(d.path(), &["evaluate", "--resume", "runs/t"]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    let ccnn = run(d.path(), &["evaluate", "--resume", "runs/t", "--checkered"]);
    assert!(ccnn.status.success(), "{}", stderr(&ccnn));
    let r: serde_json::Value = serde_json::from_str(&stdout(&ccnn)).unwrap();
    assert_eq!(r["checkered"], true);
    assert_eq!(r["count"], 40);
    assert!(d.path().join("runs/t/eval-best-checkered-test.json").is_file());
    assert!(d.path().join("runs/t/eval-best-test.json").is_file());

    let toy = run(
        d.path(),
        &[
            "train",
            "--arch",
            "ccnn-toy",
            "--dataset",
            "mnist",
            "--data-dir",
            "m",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--val-split",
            "0",
            "--job-id",
            "c",
            "--threads",
            "2",
        ],
    );
    assert!(toy.status.success(), "{}", stderr(&toy));
}

#[test]
fn visualiser_reproduces_the_original_pictures() {
    let d = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkered");
    for (args, fixture) in [
        (
            vec!["--im-size", "32", "--steps", "3", "--method", "lattice", "--color", "--png-size", "32"],
            "lattice32__checkered_even_32_3.png",
        ),
        (
            vec!["--im-size", "32", "--steps", "2", "--method", "naive", "--png-size", "32"],
            "naive32__checkered_naive_32_2.png",
        ),
        (
            vec!["--im-size", "16", "--steps", "4", "--method", "traditional", "--png-size", "16"],
            "traditional16__traditional_16_4.png",
        ),
        (
            vec!["--im-size", "32", "--steps", "2", "--method", "lattice", "--png-size", "256"],
            "lattice32_big_bw__checkered_lattice_32_2.png",
        ),
    ] {
        let mut a = vec!["visualize", "checkered", "--out", "p.png"];
        a.extend(args);
        let o = run(d.path(), &a);
        assert!(o.status.success(), "{}", stderr(&o));
        let got = image::open(d.path().join("p.png")).unwrap().to_rgb8();
        let want = image::open(fixtures.join(fixture)).unwrap().to_rgb8();
        assert_eq!(got.dimensions(), want.dimensions(), "{fixture}");
        assert!(got.pixels().zip(want.pixels()).all(|(a, b)| a == b), "{fixture} differs");
    }
    assert_input_error(&run(d.path(), &["visualize", "checkered", "--method", "hexagonal"]), &["hexagonal", "lattice"]);
}

#[test]
fn random_sampler_runs_resume_exactly() {
    let d = tempfile::tempdir().unwrap();
    write_mnist(&d.path().join("m"), 48, 16);
    let args = |job: &'static str, epochs: &'static str| {
        vec![
            "train",
            "--arch",
            "tiny-cnn",
            "--checkered",
            "--sampler",
            "random",
            "--dataset",
            "mnist",
            "--data-dir",
            "m",
            "--epochs",
            epochs,
            "--batch-size",
            "16",
            "--val-split",
            "0",
            "--job-id",
            job,
            "--threads",
            "1",
        ]
    };
    let o = run(d.path(), &args("straight", "2"));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(d.path(), &args("split", "1"));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(d.path(), &["train", "--resume", "runs/split", "--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cut = |job: &str| -> Vec<String> {
        let text = std::fs::read_to_string(d.path().join("runs").join(job).join("log.csv")).unwrap();
        text.lines().map(|l| l.split(',').take(8).collect::<Vec<_>>().join(",")).collect()
    };
    assert_eq!(cut("straight"), cut("split"));
    assert_eq!(
        weights(&d.path().join("runs/straight/last.safetensors")),
        weights(&d.path().join("runs/split/last.safetensors"))
    );
}
