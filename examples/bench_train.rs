//! Training-step throughput of convtrain's models on the CPU: forward, cross-entropy, backward and
//! convtrain's SGD step (momentum 0.9, Nesterov, weight decay 5e-4) on random data, median over
//! repeated steps after a warm-up. The last column is the authors' original PyTorch code on the same
//! 2-core machine (spec/build_notes.md), the number to beat.
//!
//! Usage: `cargo run --release --example bench_train [-- STEPS]` (default 5 timed steps per model).
use convtrain::models::{Model, ModelConfig};
use convtrain::train::optimizer::{param_groups, DecayExclusion, Sgd};
use tch::{Device, Kind, Tensor};

#[path = "common/timing.rs"]
mod timing;

struct Case {
    label: &'static str,
    config: ModelConfig,
    batch: i64,
    /// img/s of the original implementation (build_notes.md), if measured there.
    original: Option<f64>,
}

/// A CIFAR-10 configuration of `arch`.
fn cifar(arch: &str, depth: Option<i64>, width: Option<i64>, bank: Option<i64>) -> ModelConfig {
    let cfg = ModelConfig { depth, width, ..ModelConfig::new(arch, 10, 3, 32) };
    match bank {
        Some(k) => cfg.with_option("bank_size", k),
        None => cfg,
    }
}

fn main() {
    let steps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    tch::manual_seed(0);
    let cases = [
        Case {
            label: "SWRN-16-4-2",
            config: cifar("swrn", Some(16), Some(4), Some(2)),
            batch: 64,
            original: Some(100.0),
        },
        Case { label: "WRN-16-4", config: cifar("wrn", Some(16), Some(4), None), batch: 64, original: None },
        Case {
            label: "toy CCNN (1×28×28)",
            config: ModelConfig::new("ccnn-toy", 10, 1, 28),
            batch: 128,
            original: Some(670.0),
        },
        Case {
            label: "Tiny CNN (1×28×28)",
            config: ModelConfig::new("tiny-cnn", 10, 1, 28),
            batch: 128,
            original: None,
        },
        Case {
            label: "ResNet-18, checkered",
            config: ModelConfig { checkered: true, ..ModelConfig::new("resnet18", 10, 3, 32) },
            batch: 64,
            original: Some(16.0),
        },
    ];
    println!("training step on {} CPU threads, median of {steps} steps after one warm-up step", tch::get_num_threads());
    println!("{:<24} {:>6} {:>12} {:>10} {:>16}", "model", "batch", "ms / step", "img/s", "original img/s");
    for c in cases {
        let model = Model::build(&c.config, Device::Cpu).expect("model builds");
        let groups = param_groups(model.named_parameters(), 5e-4, &DecayExclusion::default());
        let mut sgd = Sgd::new(groups, 0.9, 0.0, true);
        let size = c.config.image_size;
        let x = Tensor::randn([c.batch, c.config.in_channels, size, size], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(10, [c.batch], (Kind::Int64, Device::Cpu));
        let mut step = || {
            let loss = model.forward_t(&x, true).cross_entropy_for_logits(&y);
            sgd.zero_grad();
            loss.backward();
            sgd.step(0.01);
        };
        let ms = timing::median_ms(steps, &mut step);
        let original = c.original.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
        println!("{:<24} {:>6} {:>12.1} {:>10.1} {:>16}", c.label, c.batch, ms, c.batch as f64 * 1e3 / ms, original);
    }
}
