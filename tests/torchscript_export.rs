//! `export --format torchscript`: the traced module loads in PyTorch (`torch.jit.load`, the set-up
//! environment's torch) and gives convtrain's eval-mode logits, for a plain, a checkered and a
//! materialised model.
mod common;
use common::*;
use convtrain::checkpoint;
use convtrain::models::{Model, ModelConfig};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

fn python() -> PathBuf {
    let home = std::env::var("CONVTRAIN_TORCH_HOME")
        .expect("CONVTRAIN_TORCH_HOME is not set: run the tests through `bash scripts/test.sh` (README command 2)");
    PathBuf::from(home).join("bin/python")
}

/// convtrain's eval-mode logits of the checkpoint at `ck` for `x`.
fn logits(ck: &Path, x: &Tensor) -> Tensor {
    let ck = checkpoint::load(ck).unwrap();
    let model = Model::build(&ModelConfig::from_checkpoint(&ck).unwrap().unwrap(), Device::Cpu).unwrap();
    model.load_checkpoint(&ck).unwrap();
    tch::no_grad(|| model.forward_t(x, false))
}

/// Exports `ck` as TorchScript traced on `batch` images, runs it in PyTorch on `x` and compares.
fn check(dir: &Path, ck: &Path, x: &Tensor, batch: &str) {
    let pt = dir.join("model.pt");
    let o = run(dir, &["export", "--format", "torchscript", "--batch-size", batch, ck.to_str().unwrap(), "model.pt"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("TorchScript"), "{}", stdout(&o));
    Tensor::write_safetensors(&[("x", x.shallow_clone())], dir.join("x.safetensors")).unwrap();
    let script = "import sys, torch\nfrom safetensors.torch import load_file, save_file\n\
                  m = torch.jit.load(sys.argv[1]).eval()\nx = load_file(sys.argv[2])['x']\n\
                  with torch.no_grad():\n    y = m(x)\nsave_file({'y': y.contiguous()}, sys.argv[3])\n";
    let o = std::process::Command::new(python())
        .args(["-c", script, pt.to_str().unwrap(), "x.safetensors", "y.safetensors"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "torch.jit.load failed: {}", String::from_utf8_lossy(&o.stderr));
    let theirs = Tensor::read_safetensors(dir.join("y.safetensors")).unwrap().remove(0).1;
    let ours = logits(ck, x);
    let diff = f64::try_from((&theirs - &ours).abs().max()).unwrap();
    assert!(
        diff <= 1e-5 * f64::try_from(ours.abs().max()).unwrap().max(1.0),
        "{} logits differ by {diff}",
        ck.display()
    );
}

#[test]
fn torchscript_exports_load_in_pytorch_with_the_same_logits() {
    let d = tempfile::tempdir().unwrap();
    write_mnist(&d.path().join("mnist"), 64, 16);
    let train = |job: &str, extra: &[&str]| {
        let mut a = vec!["train", "--dataset", "mnist", "--data-dir", "mnist", "--epochs", "1", "--batch-size", "32"];
        a.extend(["--job-id", job]);
        a.extend(extra);
        let o = run(d.path(), &a);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    train("tiny", &["--arch", "tiny-cnn"]);
    train("ccnn", &["--arch", "ccnn-toy"]);
    tch::manual_seed(3);
    let x = Tensor::randn([3, 1, 28, 28], (Kind::Float, Device::Cpu));
    // A plain CNN traced on one image runs any batch; the checkered net keeps its tracing batch.
    check(d.path(), &d.path().join("runs/tiny/best.safetensors"), &x, "1");
    check(d.path(), &d.path().join("runs/ccnn/best.safetensors"), &x, "3");

    write_cifar10(&d.path().join("cifar"), 8, 8);
    let mut a = vec!["train", "--arch", "swrn", "--depth", "10", "--width", "1", "--bank-size", "2"];
    a.extend(["--dataset", "cifar10", "--data-dir", "cifar", "--epochs", "1", "--batch-size", "16", "--job-id", "sw"]);
    let o = run(d.path(), &a);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(d.path(), &["export", "--materialize", "runs/sw", "wrn.safetensors"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    check(d.path(), &d.path().join("wrn.safetensors"), &x, "1");

    let o = run(d.path(), &["export", "--format", "torchscript", "--naming", "torchvision", "runs/tiny", "m.pt"]);
    assert_input_error(&o, &["--naming"]);
}
