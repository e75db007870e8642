//! The Rust side of scripts/crosscheck_checkered_models.py (interchange with the checkered-CNN
//! authors' saved files, checkered.md §3, §5).
//!
//! - `checkered_models_dump export DIR`: for the toy CCNN, the Tiny CCNN, a converted ResNet-18 and a
//!   converted DenseNet-BC-40, writes `M.export.safetensors` (`export --format pytorch`, non-trivial BN
//!   statistics), `M.io.safetensors` (input, eval-mode logits) and `M.json` (what the script builds).
//! - `checkered_models_dump import DIR`: loads each `M.theirs.safetensors` the script wrote (the
//!   authors' key format) through the architecture's import and compares the eval-mode logits with
//!   `M.theirs_io.safetensors`; exits 1 on a difference above 1e-4 (relative to the largest logit).
use convtrain::checkpoint;
use convtrain::models::{ExportRequest, Model, ModelConfig};
use serde_json::json;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// (file stem, model configuration, what the script builds).
fn cases() -> Vec<(&'static str, ModelConfig, serde_json::Value)> {
    let densenet =
        ModelConfig { depth: Some(40), width: Some(12), checkered: true, ..ModelConfig::new("densenet-bc", 10, 3, 32) };
    vec![
        (
            "ccnn-toy",
            ModelConfig::new("ccnn-toy", 10, 1, 28),
            json!({"model": "ccnn-toy", "classes": 10, "conv4_depth": 2}),
        ),
        (
            "ccnn-toy-d1",
            ModelConfig::new("ccnn-toy-d1", 10, 1, 28),
            json!({"model": "ccnn-toy", "classes": 10, "conv4_depth": 1}),
        ),
        (
            "resnet18-checkered",
            ModelConfig { checkered: true, ..ModelConfig::new("resnet18", 10, 3, 32) },
            json!({"model": "resnet18", "classes": 10}),
        ),
        (
            "densenet-bc40-checkered",
            densenet,
            json!({"model": "densenet", "depth": 40, "growth": 12, "classes": 10, "dotted": true}),
        ),
    ]
}

fn input(cfg: &ModelConfig) -> Tensor {
    Tensor::randn([1, cfg.in_channels, cfg.image_size, cfg.image_size], (Kind::Float, Device::Cpu))
}

fn export(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    for (name, cfg, desc) in cases() {
        tch::manual_seed(0);
        let model = Model::build(&cfg, Device::Cpu)?;
        // BN running statistics from training-mode passes.
        tch::no_grad(|| {
            for _ in 0..2 {
                let _ = model.forward_t(&(input(&cfg) * 2.0 + 0.5), true);
            }
        });
        let x = input(&cfg);
        let logits = tch::no_grad(|| model.forward_t(&x, false));
        let weights = (model.arch.export)(&model.named_variables(), &ExportRequest { config: &cfg, naming: None })?;
        Tensor::write_safetensors(&weights, dir.join(format!("{name}.export.safetensors")))?;
        Tensor::write_safetensors(&[("input", x), ("logits", logits)], dir.join(format!("{name}.io.safetensors")))?;
        std::fs::write(dir.join(format!("{name}.json")), desc.to_string())?;
    }
    Ok(())
}

fn import(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut failed = false;
    for (name, cfg, _) in cases() {
        let model = Model::build(&cfg, Device::Cpu)?;
        model.load_checkpoint(&checkpoint::load(&dir.join(format!("{name}.theirs.safetensors")))?)?;
        let io = checkpoint::load(&dir.join(format!("{name}.theirs_io.safetensors")))?;
        let get =
            |k: &str| io.tensors.iter().find(|(n, _)| n == k).map(|(_, t)| t.shallow_clone()).ok_or(k.to_string());
        let (x, want) = (get("input")?, get("logits")?);
        let logits = tch::no_grad(|| model.forward_t(&x, false));
        let diff = f64::try_from((&logits - &want).abs().max())? / f64::try_from(want.abs().max())?;
        let ok = diff <= 1e-4;
        failed |= !ok;
        println!("{name:28} authors' file → convtrain: max rel |Δlogits| {diff:.2e}{}", if ok { "" } else { "  FAIL" });
    }
    if failed {
        return Err("logits differ".into());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("export"), Some(dir)) => {
            std::fs::create_dir_all(dir)?;
            export(Path::new(dir))
        }
        (Some("import"), Some(dir)) => import(Path::new(dir)),
        _ => Err("usage: checkered_models_dump export|import DIR".into()),
    }
}
