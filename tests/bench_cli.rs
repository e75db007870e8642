//! `convtrain bench`: the JSON document of a tiny run, bad flags, and the PyTorch side's agreement check
//! (with the Python of the set-up environment, as the cross-check tests).
mod common;
use common::{assert_input_error, run, stdout};
use std::path::PathBuf;

#[test]
fn json_holds_every_chosen_row_with_its_measurements() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &["bench", "--filter", "tiny-cnn,mnist", "--repeats", "2", "--steps", "1", "--batch", "2", "--json"],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["tiny-cnn", "pipeline-mnist", "pipeline-mnist-prefetch"]);
    let tiny = &rows[0];
    assert_eq!(tiny["batch"], 2);
    assert_eq!(tiny["macs_per_image"], 18_644_356);
    assert_eq!(tiny["throughput"]["values"].as_array().unwrap().len(), 2);
    assert!(tiny["train_gflops"].as_f64().unwrap() > 0.0 && tiny["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(tiny["note"].as_str().unwrap().contains("batch 2, below the recipe's"), "{tiny}");
    assert!(rows[1]["throughput"]["values"][0].as_f64().unwrap() > 0.0);
    assert_eq!(doc["repeats"], 2);
}

#[test]
fn bad_flags_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert_input_error(&run(dir.path(), &["bench", "--filter", "resnet9000"]), &["--filter", "wrn-16-4"]);
    assert_input_error(&run(dir.path(), &["bench", "--filter", "tiny", "--repeats", "0"]), &["--repeats"]);
    assert_input_error(&run(dir.path(), &["bench", "--device", "tpu"]), &["--device"]);
    let missing = ["bench", "--filter", "tiny", "--against-pytorch", "--python", "/nonexistent/python"];
    assert_input_error(&run(dir.path(), &missing), &["--python /nonexistent/python"]);
}

#[test]
fn the_pytorch_models_compute_what_convtrain_computes() {
    let home = std::env::var("CONVTRAIN_TORCH_HOME")
        .expect("CONVTRAIN_TORCH_HOME is not set: run the tests through `bash scripts/test.sh` (README command 2)");
    let python = PathBuf::from(home).join("bin/python");
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "bench",
        "--against-pytorch",
        "--verify-only",
        "--filter",
        "swrn,ccnn,diracnet-16,csg-resnet56,csg-resnet56-org",
    ];
    let mut args: Vec<&str> = args.to_vec();
    let python = python.display().to_string();
    args.extend(["--python", &python]);
    let o = run(dir.path(), &args);
    assert!(o.status.success(), "{}\n{}", stdout(&o), common::stderr(&o));
    let out = stdout(&o);
    for id in ["swrn-16-4-2", "ccnn-toy", "diracnet-16-2", "csg-resnet56", "csg-resnet56-org", "epoch-ccnn-toy"] {
        assert!(out.lines().any(|l| l.starts_with(id) && l.contains(" same ")), "{id}:\n{out}");
    }
    // A reference that computes something else is refused: the toy CCNN's PyTorch model given
    // perturbed logits by a script that wraps the real one.
    let wrapper = dir.path().join("wrong_reference.py");
    let real = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/bench/torch_reference.py");
    std::fs::write(
        &wrapper,
        format!(
            "import runpy, sys, torch\nsys.argv = [{real:?}]\nm = runpy.run_path({real:?})\n\
             orig = m['relative']\nm['Reference'].model_.__globals__['relative'] = lambda a, b: orig(a + 1.0, b)\n\
             m['main']()\n",
            real = real.display().to_string()
        ),
    )
    .unwrap();
    let wrapper = wrapper.display().to_string();
    let o = run(
        dir.path(),
        &[
            "bench",
            "--against-pytorch",
            "--verify-only",
            "--filter",
            "tiny-cnn",
            "--python",
            &python,
            "--reference-script",
            &wrapper,
        ],
    );
    assert_eq!(o.status.code(), Some(70), "{}\n{}", stdout(&o), common::stderr(&o));
    assert!(stdout(&o).contains("DIFFERENT") && common::stderr(&o).contains("tiny-cnn"), "{}", common::stderr(&o));
}
