//! Writes what scripts/crosscheck_swrn.py compares against an independent PyTorch SWRN (swrn.md §2-3):
//!
//! - `<dir>/weights.safetensors`: a random SWRN-d-w-k with non-trivial BatchNorm statistics and affine
//!   parameters, under the authors' `state_dict()` keys (template aliases and `num_batches_tracked`
//!   included), as `to_pytorch_names` writes them;
//! - `<dir>/io.safetensors`: `config` = [depth, width, bank_size, num_classes] (int64), `input`
//!   (4×3×32×32), convtrain's `logits_eval` and `logits_train` (batch statistics) for it, and
//!   `orthogonal_RxC` = `orthogonal(R, C)` drawn right after `tch::manual_seed(1234)`.
//!
//! Usage: `cargo run --release --example swrn_dump -- DIR [DEPTH WIDTH BANK_SIZE NUM_CLASSES]`
//! (defaults 28 2 2 10).
use convtrain::models::soft_sharing::orthogonal;
use convtrain::models::swrn::{to_pytorch_names, PytorchExport};
use convtrain::models::{Model, ModelConfig};
use tch::{Device, Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        return Err("usage: swrn_dump DIR [DEPTH WIDTH BANK_SIZE NUM_CLASSES]".into());
    };
    let num = |i: usize, default: i64| -> Result<i64, Box<dyn std::error::Error>> {
        Ok(args.get(i).map(|s| s.parse()).transpose()?.unwrap_or(default))
    };
    let (depth, width, k, classes) = (num(1, 28)?, num(2, 2)?, num(3, 2)?, num(4, 10)?);
    std::fs::create_dir_all(dir)?;
    let dir = std::path::Path::new(dir);

    tch::manual_seed(0);
    let cfg = ModelConfig { depth: Some(depth), width: Some(width), ..ModelConfig::new("swrn", classes, 3, 32) }
        .with_option("bank_size", k);
    let model = Model::build(&cfg, Device::Cpu)?;
    tch::no_grad(|| {
        // BN running statistics from a few training-mode passes; γ, β and the classifier bias moved
        // away from their constant initialisation.
        for _ in 0..3 {
            let _ = model.forward_t(&(Tensor::randn([16, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 + 0.5), true);
        }
        for (name, mut t) in model.named_parameters() {
            if t.dim() == 1 {
                let noise = t.randn_like() * 0.2;
                t += noise;
            } else if name.ends_with("coefficients") {
                let _ = t.g_mul_scalar_(1.5);
            }
        }
    });
    let input = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
    let logits_eval = tch::no_grad(|| model.forward_t(&input, false));
    let weights = to_pytorch_names(&model.named_variables(), PytorchExport::default());
    Tensor::write_safetensors(&weights, dir.join("weights.safetensors"))?;
    let logits_train = tch::no_grad(|| model.forward_t(&input, true));

    let mut io = vec![
        ("config".to_string(), Tensor::from_slice(&[depth, width, k, classes])),
        ("input".to_string(), input),
        ("logits_eval".to_string(), logits_eval),
        ("logits_train".to_string(), logits_train),
    ];
    for (rows, cols) in [(6, 2), (6, 6), (6, 9), (10, 3)] {
        tch::manual_seed(1234);
        io.push((format!("orthogonal_{rows}x{cols}"), orthogonal(rows, cols)));
    }
    Tensor::write_safetensors(&io, dir.join("io.safetensors"))?;
    println!(
        "SWRN-{depth}-{width}-{k} ({classes} classes, {} parameters): {} tensors written to {}",
        model.num_parameters(),
        weights.len(),
        dir.display()
    );
    Ok(())
}
