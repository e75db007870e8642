//! End-to-end: `--precision bf16|fp16` and `--channels-last` on the quickest real run — fp32 master
//! weights in the checkpoints, exact resume (the loss scale included), and what may not change on resume.
mod common;
use common::*;

fn train_state(run: &std::path::Path) -> serde_json::Value {
    let meta = convtrain::checkpoint::read_metadata(&run.join("last.safetensors")).unwrap();
    serde_json::from_str(&meta["train_state"]).unwrap()
}

#[test]
fn mixed_precision_runs_keep_fp32_weights_and_resume_bit_for_bit() {
    let d = quick_dir();
    for precision in ["bf16", "fp16"] {
        let (straight, split) = (format!("{precision}-straight"), format!("{precision}-split"));
        // Eight steps an epoch: float16 convolutions are slow on CPUs.
        let extra = ["--precision", precision, "--limit-train-batches", "8"];
        let o = run(d.path(), &quick_args(&straight, "2", &extra));
        assert!(o.status.success(), "{}", stderr(&o));
        let o = run(d.path(), &quick_args(&split, "1", &extra));
        assert!(o.status.success(), "{}", stderr(&o));
        let mut resume = quick_args(&split, "2", &extra);
        resume.extend(["--resume", "auto"]);
        let o = run(d.path(), &resume);
        assert!(o.status.success(), "{}", stderr(&o));

        let (a, b) = (d.path().join("runs").join(&straight), d.path().join("runs").join(&split));
        assert_eq!(weights(&a.join("last.safetensors")), weights(&b.join("last.safetensors")), "{precision}");
        assert_eq!(train_state(&a)["loss_scale"], train_state(&b)["loss_scale"], "{precision}");
        let bytes = std::fs::read(a.join("last.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (name, t) in st.tensors() {
            if !name.contains("num_batches_tracked") {
                assert_eq!(t.dtype(), safetensors::Dtype::F32, "{precision}: {name} is not an fp32 master weight");
            }
        }
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(a.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["config"]["precision"], precision);
        // fp16 scales its loss (and starts at GradScaler's 2^16); bf16 needs no scale.
        let scale = &train_state(&a)["loss_scale"];
        if precision == "fp16" {
            assert!(scale["scale"].as_f64().unwrap() > 1.0, "{scale}");
        } else {
            assert!(scale.is_null(), "{scale}");
        }
    }
    // The bf16 and fp16 runs computed something else than each other.
    let runs = d.path().join("runs");
    assert_ne!(
        weights(&runs.join("bf16-straight/last.safetensors")),
        weights(&runs.join("fp16-straight/last.safetensors"))
    );
}

#[test]
fn precision_and_memory_order_cannot_change_on_resume_and_bad_names_are_refused() {
    let d = quick_dir();
    let o = run(d.path(), &quick_args("cl", "1", &["--channels-last"]));
    assert!(o.status.success(), "{}", stderr(&o));
    for change in [["--precision", "bf16"], ["--channels-last", "false"]] {
        let mut resume = quick_args("cl", "2", &["--channels-last"]);
        resume.retain(|a| *a != "--channels-last");
        resume.extend(change);
        resume.extend(["--resume", "runs/cl"]);
        let o = run(d.path(), &resume);
        let key = change[0].trim_start_matches("--").replace('-', "_");
        assert_input_error(&o, &["--resume", &key]);
    }
    let o = run(d.path(), &quick_args("bad", "1", &["--precision", "fp8"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("fp8") && stderr(&o).contains("bf16"), "{}", stderr(&o));
    let o = run(d.path(), &quick_args("bad", "1", &["--set", "precision=fp8"]));
    assert_input_error(&o, &["precision", "fp8"]);
}
