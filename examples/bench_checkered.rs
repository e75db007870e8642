//! Benchmark of the checkered layers: the original's four-shift definition ([`reference`]) against
//! convtrain's implementation, per layer and for a converted CIFAR ResNet-18, forward + backward on
//! the CPU (float32). Prints a table of median times.
//!
//! Usage: `cargo run --release --example bench_checkered [-- BATCH [REPEATS]]` (defaults 16 and 5).
//!
//! Recorded on an AMD EPYC (Zen 4, AVX-512, 2 cores of a KVM guest; libtorch 2.13 CPU, 2 threads,
//! batch 16, 9 interleaved pairs; 2 December 2026, 14:17 UTC). The original's two unused branches are
//! never differentiated (their outputs reach no loss), so with the same kernels a stride-2 layer's
//! training step could gain at most (4 + 2·2) / (2 + 2·2) = 1.33× (a backward pass costing about two
//! forward passes) and its forward pass 2×; the original's `Conv3d` is also slower than the 2-D
//! convolution on folded submaps, hence the stride-1 row and the ratios above those bounds:
//!
//! | layer | reference ms | convtrain ms | training (range) | forward only (range) |
//! |---|---|---|---|---|
//! | conv3x3/s2 64→128, (16,64,1,32,32) | 54.7 | 37.0 | 1.56× (1.33–1.73) | 2.44× (1.86–3.45) |
//! | conv3x3/s2 128→256, (16,128,2,16,16) | 98.4 | 62.2 | 1.56× (1.46–1.65) | 2.16× (2.05–2.29) |
//! | conv3x3/s2 256→512, (16,256,4,8,8) | 179.2 | 127.3 | 1.41× (1.30–1.48) | 2.74× (2.42–2.92) |
//! | conv1x1/s2 64→128, (16,64,1,32,32) | 21.4 | 14.2 | 1.60× (1.20–2.02) | 1.63× (1.51–2.21) |
//! | conv3x3/s1 128→128, (16,128,2,16,16) | 55.1 | 48.9 | 1.11× (1.02–1.21) | 1.04× (0.86–1.41) |
//! | maxpool2/s2, (16,64,1,32,32) | 18.7 | 9.8 | 1.96× (1.51–2.20) | 2.05× (1.79–2.58) |
//! | avgpool2/s2, (16,96,1,32,32) | 22.3 | 13.5 | 1.65× (1.59–1.90) | 2.05× (1.99–2.29) |
//! | converted ResNet-18 | 1565 (10.2 img/s) | 1140 (14.0 img/s) | 1.37× (1.33–1.40) | 1.47× (1.39–1.58) |
use convtrain::models::checkered::{forward_with, reference, Op};
use convtrain::models::{Model, ModelConfig};
use tch::{Device, Kind, Tensor};

#[path = "common/timing.rs"]
mod timing;
use timing::{interleaved, Paired};

fn speedup(t: &Paired) -> String {
    format!("{:.2}× ({:.2}–{:.2})", t.ratio, t.ratio_lo, t.ratio_hi)
}

struct LayerCase {
    name: &'static str,
    /// Input (B is filled in), conv weight (empty for pools).
    x: [i64; 4],
    w: Vec<i64>,
    pool: Option<(&'static str, i64)>,
    stride: i64,
    padding: i64,
}

fn main() {
    let args: Vec<usize> =
        std::env::args().skip(1).map(|a| a.parse().expect("BATCH and REPEATS are integers")).collect();
    let batch = *args.first().unwrap_or(&16) as i64;
    let repeats = *args.get(1).unwrap_or(&5);
    tch::manual_seed(0);
    let opts = (Kind::Float, Device::Cpu);
    println!(
        "checkered layers, CPU float32, {} threads, batch {batch}, {repeats} interleaved pairs of forward+backward runs \
         and of forward passes without gradients (medians; speedup: the median of the per-pair ratios and their range)",
        tch::get_num_threads()
    );
    println!();
    println!(
        "{:<40} {:>18} {:>13} {:>13} {:>20} {:>20} {:>9}",
        "layer", "input (B,C,S,H,W)", "reference ms", "convtrain ms", "speedup (range)", "forward only", "max |Δy|"
    );
    let cases = [
        LayerCase {
            name: "conv3x3/s2 64→128 (layer2.0.conv1)",
            x: [64, 1, 32, 32],
            w: vec![128, 64, 3, 3],
            pool: None,
            stride: 2,
            padding: 1,
        },
        LayerCase {
            name: "conv3x3/s2 128→256 (layer3.0.conv1)",
            x: [128, 2, 16, 16],
            w: vec![256, 128, 3, 3],
            pool: None,
            stride: 2,
            padding: 1,
        },
        LayerCase {
            name: "conv3x3/s2 256→512 (layer4.0.conv1)",
            x: [256, 4, 8, 8],
            w: vec![512, 256, 3, 3],
            pool: None,
            stride: 2,
            padding: 1,
        },
        LayerCase {
            name: "conv1x1/s2 64→128 (layer2.0.shortcut)",
            x: [64, 1, 32, 32],
            w: vec![128, 64, 1, 1],
            pool: None,
            stride: 2,
            padding: 0,
        },
        LayerCase {
            name: "conv3x3/s1 128→128 (layer2.1.conv1)",
            x: [128, 2, 16, 16],
            w: vec![128, 128, 3, 3],
            pool: None,
            stride: 1,
            padding: 1,
        },
        LayerCase {
            name: "maxpool2/s2 (VGG features.3)",
            x: [64, 1, 32, 32],
            w: vec![],
            pool: Some(("max", 2)),
            stride: 2,
            padding: 0,
        },
        LayerCase {
            name: "avgpool2/s2 (DenseNet transition)",
            x: [96, 1, 32, 32],
            w: vec![],
            pool: Some(("avg", 2)),
            stride: 2,
            padding: 0,
        },
    ];
    for c in &cases {
        let x = Tensor::randn([batch, c.x[0], c.x[1], c.x[2], c.x[3]], opts).set_requires_grad(true);
        let w = (!c.w.is_empty()).then(|| Tensor::randn(c.w.as_slice(), opts).set_requires_grad(true));
        let op = match (c.pool, &w) {
            (Some(("max", k)), _) => Op::MaxPool { kernel: k, depth: 1 },
            (Some((_, k)), _) => Op::AvgPool { kernel: k, depth: 1 },
            (None, Some(w)) => Op::Conv { weight: w, bias: None, dilation: 1, groups: 1 },
            (None, None) => unreachable!("a conv case has a weight"),
        };
        let samplers = if c.stride == 2 { vec![0u8; c.x[1] as usize] } else { Vec::new() };
        let forward = |fast: bool| {
            if fast {
                forward_with(&op, &x, c.stride, c.padding, &samplers)
            } else {
                reference::forward_with(&op, &x, c.stride, c.padding, &samplers)
            }
        };
        let step = |fast: bool| {
            let y = forward(fast);
            y.sum(Kind::Float).backward();
            y
        };
        let diff = f64::try_from((step(true) - step(false)).abs().max()).unwrap();
        let t = interleaved(repeats, || drop(step(false)), || drop(step(true)));
        let f = interleaved(repeats, || drop(tch::no_grad(|| forward(false))), || drop(tch::no_grad(|| forward(true))));
        let shape = format!("({batch},{},{},{},{})", c.x[0], c.x[1], c.x[2], c.x[3]);
        println!(
            "{:<40} {:>18} {:>13.2} {:>13.2} {:>20} {:>20} {:>9.1e}",
            c.name,
            shape,
            t.a_ms,
            t.b_ms,
            speedup(&t),
            speedup(&f),
            diff
        );
    }

    // The same weights computed both ways: two builds from one seed, differing in `checkered_impl`.
    let build = |implementation: &str| {
        tch::manual_seed(0);
        let cfg = ModelConfig { checkered: true, ..ModelConfig::new("resnet18", 10, 3, 32) }
            .with_option("checkered_impl", implementation);
        Model::build(&cfg, Device::Cpu).expect("build resnet18")
    };
    let (reference, fast) = (build("reference"), build("fast"));
    let x = Tensor::randn([batch, 3, 32, 32], opts);
    let step = |model: &Model| {
        let y = model.forward_t(&x, true);
        y.sum(Kind::Float).backward();
    };
    let model_repeats = repeats.div_ceil(2).max(1);
    let t = interleaved(model_repeats, || step(&reference), || step(&fast));
    let eval = |model: &Model| drop(tch::no_grad(|| model.forward_t(&x, false)));
    let e = interleaved(model_repeats, || eval(&reference), || eval(&fast));
    let img_s = |ms: f64| batch as f64 / (ms / 1e3);
    println!();
    println!(
        "converted ResNet-18 (CIFAR, 10 classes), train-mode forward+backward, batch {batch}, {model_repeats} \
         interleaved pairs:"
    );
    println!("  reference  {:9.1} ms  ({:6.1} img/s)", t.a_ms, img_s(t.a_ms));
    println!("  convtrain  {:9.1} ms  ({:6.1} img/s)  speedup {}", t.b_ms, img_s(t.b_ms), speedup(&t));
    println!(
        "  eval-mode forward pass under no_grad: reference {:.1} ms, convtrain {:.1} ms, speedup {}",
        e.a_ms,
        e.b_ms,
        speedup(&e)
    );
}
