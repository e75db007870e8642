//! SWRN through the CLI: counts, coefficient exclusion, LSM, materialise to WRN, PyTorch export and
//! `--init-from` of the exported file.
mod common;
use common::*;

fn tensor_names(p: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.names().into_iter().cloned().collect()
}

#[test]
fn summary_counts_of_the_paper_variants() {
    let d = tempfile::tempdir().unwrap();
    for (args, want) in [
        (vec!["--depth", "28", "--width", "10", "--bank-size", "6"], "36,479,302"),
        (vec!["--depth", "28", "--width", "10", "--bank-size", "4"], "26,802,466"),
        (vec!["--bank-size", "2"], "693,502"),
    ] {
        let mut a = vec!["summary", "--arch", "swrn", "--dataset", "cifar10"];
        a.extend(args);
        let o = run(d.path(), &a);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains(&format!("trainable parameters: {want}")), "{out}");
        assert!(out.contains("no_decay (wd 0)"), "{out}");
    }
}

/// Counted from a checkpoint's tensors (everything but BN running statistics is a parameter), the
/// trainable count equals its `num_parameters` metadata.
fn assert_count_matches_metadata(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let counted: usize = st
        .tensors()
        .iter()
        .filter(|(n, _)| !n.ends_with("running_mean") && !n.ends_with("running_var"))
        .map(|(_, t)| t.shape().iter().product::<usize>())
        .sum();
    let meta = safetensors::SafeTensors::read_metadata(&bytes).unwrap().1;
    assert_eq!(meta.metadata().as_ref().unwrap()["num_parameters"], counted.to_string(), "{}", path.display());
}

/// The model of the end-to-end test: SWRN-16-1-3 (2 shared convs per stage).
const SWRN_16_1_3: [&str; 8] = ["--arch", "swrn", "--depth", "16", "--width", "1", "--bank-size", "3"];

#[test]
fn swrn_train_lsm_materialize_export_and_init_from() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(&d.path().join("cifar"), 24, 40);
    let mut train = vec!["train"];
    train.extend(SWRN_16_1_3);
    train.extend([
        "--dataset",
        "cifar10",
        "--data-dir",
        "cifar",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--cutout",
        "--threads",
        "2",
        "--device",
        "cpu",
    ]);
    let mut first = train.to_vec();
    first.extend(["--job-id", "s"]);
    let o = run(d.path(), &first);
    assert!(o.status.success(), "{}", stderr(&o));
    // Only the 6 coefficient tensors (2 shared convs × 3 stages) escape weight decay.
    assert!(stdout(&o).contains("no_decay weight decay 0        6 tensors, 18 parameters"), "{}", stdout(&o));
    assert_count_matches_metadata(&d.path().join("runs/s/best.safetensors"));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("runs/s/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["config"]["cutout"], 16);

    let l = run(d.path(), &["visualize", "lsm", "runs/s", "--out-dir", "lsm"]);
    assert!(l.status.success(), "{}", stderr(&l));
    assert!(std::fs::metadata(d.path().join("lsm/lsm.png")).unwrap().len() > 1000);
    let csv = std::fs::read_to_string(d.path().join("lsm/lsm.csv")).unwrap();
    assert!(csv.lines().count() > 3 * 4, "{csv}");
    for ext in ["svg", "pdf"] {
        let fig = format!("lsm/fig.{ext}");
        let l = run(d.path(), &["visualize", "lsm", "runs/s", "--out", &fig]);
        assert!(l.status.success(), "{}", stderr(&l));
        let bytes = std::fs::read(d.path().join(&fig)).unwrap();
        assert!(bytes.starts_with(if ext == "svg" { b"<svg" } else { b"%PDF-" }), "{fig}");
    }
    assert_eq!(std::fs::read_to_string(d.path().join("lsm/fig.csv")).unwrap(), csv);
    assert_input_error(&run(d.path(), &["visualize", "lsm", "runs/s", "--out", "lsm.tiff"]), &[".png, .svg or .pdf"]);

    let ev = |ck: &str| {
        let o = run(d.path(), &["evaluate", "--resume", ck, "--data-dir", "cifar", "--threads", "2"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    let m = run(d.path(), &["export", "--materialize", "runs/s/best.safetensors", "wrn.safetensors"]);
    assert!(m.status.success(), "{}", stderr(&m));
    assert!(tensor_names(&d.path().join("wrn.safetensors"))
        .iter()
        .all(|n| !n.contains("coefficients") && !n.starts_with("bank_")));
    // The plain WRN describes itself: its own (smaller) parameter count, not the SWRN's.
    assert_count_matches_metadata(&d.path().join("wrn.safetensors"));
    let (a, b) = (ev("runs/s/best.safetensors"), ev("wrn.safetensors"));
    assert_eq!(b["arch"], "wrn");
    assert_eq!(a["top1"], b["top1"]);
    let (la, lb) = (a["loss"].as_f64().unwrap(), b["loss"].as_f64().unwrap());
    assert!((la - lb).abs() <= 1e-5 * la.abs(), "{la} vs {lb}");

    let p = run(d.path(), &["export", "--format", "pytorch", "runs/s", "pt.safetensors"]);
    assert!(p.status.success(), "{}", stderr(&p));
    let names = tensor_names(&d.path().join("pt.safetensors"));
    for want in [
        "conv_3x3.weight",
        "bank_1.templates",
        "stage_1.1.conv1.coefficients",
        "stage_1.1.conv1.bank.templates",
        "stage_1.0.bn1.num_batches_tracked",
        "classifier.bias",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    // The authors'-names file scores like the checkpoint it came from.
    let mut eval_pt = vec!["evaluate", "--init-from", "pt.safetensors", "--data-dir", "cifar"];
    eval_pt.extend(SWRN_16_1_3);
    let o = run(d.path(), &eval_pt);
    assert!(o.status.success(), "{}", stderr(&o));
    let c: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let best = ev("runs/s");
    assert_eq!(c["top1"], best["top1"]);
    assert_eq!(c["loss"], best["loss"]);
    let mut init = train.to_vec();
    init.extend(["--init-from", "pt.safetensors", "--job-id", "s2"]);
    let i = run(d.path(), &init);
    assert!(i.status.success(), "{}", stderr(&i));
    // A WRN checkpoint is refused by an SWRN, naming the first missing tensor.
    let mut wrong = train.to_vec();
    wrong.extend(["--init-from", "wrn.safetensors", "--job-id", "s3"]);
    assert_input_error(&run(d.path(), &wrong), &["wrn.safetensors", "bank_1.templates", "'wrn'"]);
}

#[test]
fn summary_json_has_the_counts_layers_and_groups() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["summary", "--arch", "wrn", "--depth", "28", "--width", "10", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["arch"], "wrn");
    assert_eq!(v["summary"]["total_params"], 36_479_194);
    assert_eq!(v["model"]["depth"], 28);
    assert!(v["summary"]["rows"].as_array().unwrap().len() > 50);
    assert_eq!(v["summary"]["groups"].as_array().unwrap().len(), 2);
}
