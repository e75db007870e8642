//! Writes what scripts/crosscheck_vgg_features.py compares against an independent PyTorch version of the
//! feature-amount sweep's VGG (vgg_features.md §2.9):
//!
//! - `<dir>/weights.safetensors`: a random `vgg-features` network for WIDTHS with non-trivial BatchNorm
//!   statistics and affine parameters, under the authors' `state_dict()` keys (`num_batches_tracked`
//!   included), as the architecture's export writes them;
//! - `<dir>/io.safetensors`: `widths` and `num_classes` (int64), `input` (4×3×32×32), convtrain's
//!   `logits_eval` and `logits_train` (batch statistics, dropout drawn right after
//!   `tch::manual_seed(77)`), and `after_train.<name>` = every BN running statistic after that pass.
//!
//! Usage: `cargo run --release --example vgg_features_dump -- DIR WIDTHS NUM_CLASSES`, WIDTHS comma
//! separated (the convs, then the two hidden FC layers).
use convtrain::models::{ExportRequest, Model, ModelConfig};
use tch::{Device, Kind, Tensor};

/// The seed both sides set right before the training-mode pass, so that they draw the same dropout mask.
const DROPOUT_SEED: i64 = 77;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, widths, classes] = &args[..] else {
        return Err("usage: vgg_features_dump DIR WIDTHS NUM_CLASSES".into());
    };
    let widths: Vec<i64> = widths.split(',').map(str::parse).collect::<Result<_, _>>()?;
    let classes: i64 = classes.parse()?;
    std::fs::create_dir_all(dir)?;
    let dir = std::path::Path::new(dir);

    tch::manual_seed(0);
    let cfg = ModelConfig::new("vgg-features", classes, 3, 32).with_option("widths", widths.clone());
    let model = Model::build(&cfg, Device::Cpu)?;
    tch::no_grad(|| {
        // BN running statistics from a few training-mode passes; γ, β and the output bias moved away
        // from their constant initialisation.
        for _ in 0..3 {
            let _ = model.forward_t(&(Tensor::randn([16, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 + 0.5), true);
        }
        for (_, mut t) in model.named_parameters() {
            if t.dim() == 1 {
                let noise = t.randn_like() * 0.2;
                t += noise;
            }
        }
    });
    let input = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
    let logits_eval = tch::no_grad(|| model.forward_t(&input, false));
    let weights = (model.arch.export)(&model.named_variables(), &ExportRequest { config: &cfg, naming: None })?;
    Tensor::write_safetensors(&weights, dir.join("weights.safetensors"))?;
    tch::manual_seed(DROPOUT_SEED);
    let logits_train = tch::no_grad(|| model.forward_t(&input, true));

    let mut io = vec![
        ("widths".to_string(), Tensor::from_slice(&widths)),
        ("num_classes".to_string(), Tensor::from(classes)),
        ("input".to_string(), input),
        ("logits_eval".to_string(), logits_eval),
        ("logits_train".to_string(), logits_train),
    ];
    for (name, t) in model.named_variables() {
        if name.ends_with(".running_mean") || name.ends_with(".running_var") {
            io.push((format!("after_train.{name}"), t));
        }
    }
    Tensor::write_safetensors(&io, dir.join("io.safetensors"))?;
    println!(
        "vgg-features {widths:?} ({classes} classes, {} parameters): {} tensors written to {}",
        model.num_parameters(),
        weights.len(),
        dir.display()
    );
    Ok(())
}
