//! Writes what scripts/crosscheck_csg.py compares against an independent PyTorch implementation of the
//! associative (CSG) networks (associative.md §2-3):
//!
//! - `<dir>/config.json`: the model (arch, depth, width, slice, code_size, num_classes, in_channels,
//!   image_size) and convtrain's parameter count;
//! - `<dir>/weights.safetensors`: a random model with non-trivial BatchNorm statistics and affine
//!   parameters under the authors' `state_dict()` keys, as `export --format pytorch` writes them
//!   (per-block `CSG.weight` aliases and `num_batches_tracked` included);
//! - `<dir>/io.safetensors`: an input, convtrain's `logits_eval` and `logits_train` for it, and every
//!   generated kernel as `kernel.<the baseline conv's weight name>`;
//! - `<dir>/materialized.safetensors`: `export --materialize` in the baseline's `state_dict()` names.
//!
//! Usage: `cargo run --release --example csg_dump -- DIR ARCH [depth=D] [width=K] [slice=S,S,k,k]
//! [code_size=C] [classes=N] [image_size=H] [in_channels=C]` (defaults: the architecture's, 10 classes,
//! 32×32×3 inputs).
use convtrain::models::associative::{generated_kernels, generator_config};
use convtrain::models::{find, ExportRequest, Model, ModelConfig};
use tch::{Device, Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(arch)) = (args.first(), args.get(1)) else {
        return Err("usage: csg_dump DIR ARCH [depth=D] [width=K] [slice=S,S,k,k] [code_size=C] [classes=N] [image_size=H] [in_channels=C]".into());
    };
    let mut settings = std::collections::HashMap::new();
    for kv in &args[2..] {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("'{kv}' is not key=value"))?;
        settings.insert(k.to_string(), v.to_string());
    }
    let num = |k: &str| -> Result<Option<i64>, Box<dyn std::error::Error>> {
        Ok(settings.get(k).map(|v| v.parse()).transpose()?)
    };
    let (classes, size, channels) =
        (num("classes")?.unwrap_or(10), num("image_size")?.unwrap_or(32), num("in_channels")?.unwrap_or(3));
    let mut cfg =
        ModelConfig { depth: num("depth")?, width: num("width")?, ..ModelConfig::new(arch, classes, channels, size) };
    if let Some(s) = settings.get("slice") {
        let dims: Vec<i64> = s.split(',').map(str::parse).collect::<Result<_, _>>()?;
        cfg = cfg.with_option("slice", dims);
    }
    if let Some(c) = num("code_size")? {
        cfg = cfg.with_option("code_size", c);
    }
    std::fs::create_dir_all(dir)?;
    let dir = std::path::Path::new(dir);

    tch::manual_seed(0);
    let model = Model::build(&cfg, Device::Cpu)?;
    tch::no_grad(|| {
        // BN running statistics from a few training-mode passes; BN γ, β and biases moved away from
        // their constant initialisation.
        for _ in 0..3 {
            let x = Tensor::randn([8, channels, size, size], (Kind::Float, Device::Cpu)) * 2.0 + 0.5;
            let _ = model.forward_t(&x, true);
        }
        for (_, mut t) in model.named_parameters() {
            if t.dim() == 1 {
                let noise = t.randn_like() * 0.2;
                t += noise;
            }
        }
    });
    let named = model.named_variables();
    let input = Tensor::randn([4, channels, size, size], (Kind::Float, Device::Cpu));
    let logits_eval = tch::no_grad(|| model.forward_t(&input, false));
    let arch_entry = find(arch)?;
    let request = ExportRequest { config: &cfg, naming: None };
    Tensor::write_safetensors(&(arch_entry.export)(&named, &request)?, dir.join("weights.safetensors"))?;
    let mut io = vec![("input".to_string(), input.shallow_clone()), ("logits_eval".to_string(), logits_eval)];
    io.extend(generated_kernels(&named, &cfg)?.into_iter().map(|(name, kernel)| (format!("kernel.{name}"), kernel)));
    let fold = arch_entry.materialize.ok_or("the architecture has no baseline to materialize")?;
    let (plain_cfg, plain) = fold(&named, &cfg)?;
    let plain_request = ExportRequest { config: &plain_cfg, naming: None };
    let plain_names = (find(&plain_cfg.arch)?.export)(&plain, &plain_request)?;
    Tensor::write_safetensors(&plain_names, dir.join("materialized.safetensors"))?;
    // Train mode last: it updates the running statistics.
    io.push(("logits_train".to_string(), tch::no_grad(|| model.forward_t(&input, true))));
    Tensor::write_safetensors(&io, dir.join("io.safetensors"))?;

    let g = generator_config(&cfg)?.ok_or("a CSG architecture is needed")?;
    let doc = serde_json::json!({
        "arch": arch, "depth": cfg.depth, "width": cfg.width, "slice": g.slice.dims(), "code_size": g.code_size,
        "num_classes": classes, "in_channels": channels, "image_size": size, "num_parameters": model.num_parameters(),
    });
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&doc)?)?;
    println!(
        "{arch} ({} parameters): {} generated kernels written to {}",
        model.num_parameters(),
        io.len() - 3,
        dir.display()
    );
    Ok(())
}
