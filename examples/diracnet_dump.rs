//! Writes what scripts/crosscheck_diracnet.py compares against an independent PyTorch DiracNet
//! (diracnet.md §2-4):
//!
//! - `<dir>/weights.safetensors`: a random DiracNet with non-trivial BatchNorm statistics and 1-D
//!   parameters (α, β, BN, fc bias) moved off their constant init, in the authors' functional names as
//!   `export --format pytorch` writes them (`eye*` deltas included);
//! - `<dir>/folded.safetensors`: the same model folded by `export --materialize` (`features.*`, `fc.*`);
//! - `<dir>/io.safetensors`: `config` = [imagenet 0|1, depth, width, num_classes, in_channels] (int64),
//!   `input` (4×C×S×S), convtrain's `logits_eval`, `logits_folded` (the `diracnet-folded` model loaded
//!   with the folded tensors) and `logits_train` (batch statistics).
//!
//! Usage: `cargo run --release --example diracnet_dump -- DIR [cifar|imagenet DEPTH WIDTH NUM_CLASSES
//! IN_CHANNELS SIZE]` (defaults cifar 10 1 10 3 32).
use convtrain::models::{find, ExportRequest, Model, ModelConfig};
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        return Err("usage: diracnet_dump DIR [cifar|imagenet DEPTH WIDTH NUM_CLASSES IN_CHANNELS SIZE]".into());
    };
    let network = args.get(1).map(String::as_str).unwrap_or("cifar");
    let num = |i: usize, default: i64| -> Result<i64, Box<dyn std::error::Error>> {
        Ok(args.get(i).map(|s| s.parse()).transpose()?.unwrap_or(default))
    };
    let (depth, width, classes, channels, size) = (num(2, 10)?, num(3, 1)?, num(4, 10)?, num(5, 3)?, num(6, 32)?);
    std::fs::create_dir_all(dir)?;
    let dir = Path::new(dir);

    tch::manual_seed(0);
    let cfg =
        ModelConfig { depth: Some(depth), width: Some(width), ..ModelConfig::new("diracnet", classes, channels, size) }
            .with_option("dirac_net", network);
    let model = Model::build(&cfg, Device::Cpu)?;
    let input_shape = [8, channels, size, size];
    tch::no_grad(|| {
        for _ in 0..3 {
            let _ = model.forward_t(&(Tensor::randn(input_shape, (Kind::Float, Device::Cpu)) * 2.0 + 0.5), true);
        }
        for (_, mut t) in model.named_parameters() {
            if t.dim() == 1 {
                let noise = t.randn_like() * 0.2;
                t += noise;
            }
        }
    });
    let input = Tensor::randn([4, channels, size, size], (Kind::Float, Device::Cpu));
    let logits_eval = tch::no_grad(|| model.forward_t(&input, false));
    let named = model.named_variables();
    let weights = (model.arch.export)(&named, &ExportRequest { config: &cfg, naming: None })?;
    Tensor::write_safetensors(&weights, dir.join("weights.safetensors"))?;

    let fold = model.arch.materialize.ok_or("diracnet has no materialize")?;
    let (folded_cfg, folded) = fold(&named, &model.config)?;
    Tensor::write_safetensors(&folded, dir.join("folded.safetensors"))?;
    let folded_model = Model::build(&folded_cfg, Device::Cpu)?;
    folded_model.load_named(&(find(&folded_cfg.arch)?.import)(folded)?, dir, None)?;
    let logits_folded = tch::no_grad(|| folded_model.forward_t(&input, false));
    let logits_train = tch::no_grad(|| model.forward_t(&input, true));

    let io = vec![
        (
            "config".to_string(),
            Tensor::from_slice(&[i64::from(network == "imagenet"), depth, width, classes, channels]),
        ),
        ("input".to_string(), input),
        ("logits_eval".to_string(), logits_eval),
        ("logits_folded".to_string(), logits_folded),
        ("logits_train".to_string(), logits_train),
    ];
    Tensor::write_safetensors(&io, dir.join("io.safetensors"))?;
    println!(
        "DiracNet-{depth}-{width} {network} ({classes} classes, {channels}×{size}×{size}, {} parameters, folded {}): written to {}",
        model.num_parameters(),
        folded_model.num_parameters(),
        dir.display()
    );
    Ok(())
}
