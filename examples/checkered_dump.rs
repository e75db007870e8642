//! Dumps inputs, parameters, outputs and gradients of convtrain's checkered layers for
//! `scripts/crosscheck_checkered.py`, which recomputes them with its own PyTorch implementation.
//!
//! Usage: `cargo run --release --example checkered_dump -- OUT_DIR` writes `OUT_DIR/checkered.safetensors`
//! (tensors `{case}.x`, `.w`, `.b`, `.y`, `.r`, `.gx`, `.gw`, `.gb`) and `OUT_DIR/cases.json`. The
//! gradients are those of `sum(y · r)` for a random `r`.
use convtrain::models::checkered::{forward_with, Op};
use serde_json::json;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

struct Case {
    name: &'static str,
    /// "conv", "max" or "avg".
    op: &'static str,
    x: Vec<i64>,
    /// Conv weight shape (4-D or 5-D); empty for pools.
    w: Vec<i64>,
    bias: bool,
    kernel: i64,
    depth: i64,
    stride: i64,
    padding: i64,
    dilation: i64,
    groups: i64,
    samplers: Vec<u8>,
    /// Input values: random normal, or all ones (the spec's 4×4 average-pool example).
    ones: bool,
}

fn conv(name: &'static str, x: &[i64], w: &[i64], stride: i64, padding: i64, samplers: &[u8]) -> Case {
    let depth = if w.len() == 5 { w[2] } else { 1 };
    Case {
        name,
        op: "conv",
        x: x.to_vec(),
        w: w.to_vec(),
        bias: true,
        kernel: w[w.len() - 1],
        depth,
        stride,
        padding,
        dilation: 1,
        groups: 1,
        samplers: samplers.to_vec(),
        ones: false,
    }
}

/// A depth-1 pool (set `depth` with struct update syntax for deeper ones).
fn pool(
    name: &'static str,
    op: &'static str,
    x: &[i64],
    kernel: i64,
    stride: i64,
    padding: i64,
    samplers: &[u8],
) -> Case {
    Case {
        name,
        op,
        x: x.to_vec(),
        w: Vec::new(),
        bias: false,
        kernel,
        depth: 1,
        stride,
        padding,
        dilation: 1,
        groups: 1,
        samplers: samplers.to_vec(),
        ones: false,
    }
}

fn cases() -> Vec<Case> {
    vec![
        conv("conv3x3_s2_8x8", &[2, 3, 1, 8, 8], &[4, 3, 3, 3], 2, 1, &[0]),
        conv("conv3x3_s2_7x7", &[2, 3, 1, 7, 7], &[4, 3, 3, 3], 2, 1, &[0]),
        conv("conv3x3_s2_7x9_mixed", &[2, 3, 2, 7, 9], &[4, 3, 3, 3], 2, 1, &[1, 0]),
        conv("conv1x1_s2_8x8_lattice", &[2, 3, 4, 8, 8], &[5, 3, 1, 1], 2, 0, &[0, 1, 0, 1]),
        conv("conv1x1_s2_7x7", &[2, 3, 2, 7, 7], &[5, 3, 1, 1], 2, 0, &[0, 0]),
        conv("conv5x5_s2_p2_9x9", &[1, 2, 2, 9, 9], &[3, 2, 5, 5], 2, 2, &[1, 1]),
        conv("conv3x3_s1_7x7", &[2, 3, 2, 7, 7], &[4, 3, 3, 3], 1, 1, &[]),
        conv("conv_depth2_s1_14x14", &[2, 5, 2, 14, 14], &[6, 5, 2, 3, 3], 1, 1, &[]),
        conv("conv_depth2_s2_7x7", &[2, 3, 3, 7, 7], &[4, 3, 2, 3, 3], 2, 1, &[1, 0]),
        Case {
            dilation: 2,
            groups: 2,
            bias: false,
            ..conv("conv_dil2_groups2_s2_9x9", &[2, 4, 2, 9, 9], &[4, 2, 3, 3], 2, 2, &[0, 1])
        },
        pool("maxpool2_s2_8x8", "max", &[2, 3, 1, 8, 8], 2, 2, 0, &[0]),
        pool("maxpool2_s2_7x7_mixed", "max", &[2, 3, 2, 7, 7], 2, 2, 0, &[0, 1]),
        pool("maxpool3_s2_p1_7x7", "max", &[2, 3, 2, 7, 7], 3, 2, 1, &[1, 0]),
        pool("maxpool3_s1_p1_6x6", "max", &[2, 3, 2, 6, 6], 3, 1, 1, &[]),
        Case { depth: 2, ..pool("maxpool2_depth2_s2_8x8", "max", &[2, 3, 3, 8, 8], 2, 2, 0, &[0, 1]) },
        pool("avgpool2_s2_8x8", "avg", &[2, 3, 1, 8, 8], 2, 2, 0, &[0]),
        pool("avgpool2_s2_7x7_mixed", "avg", &[2, 3, 2, 7, 7], 2, 2, 0, &[1, 0]),
        pool("avgpool3_s2_p1_7x7", "avg", &[2, 3, 2, 7, 7], 3, 2, 1, &[0, 1]),
        Case { depth: 2, ..pool("avgpool3_depth2_s1_p1_5x5", "avg", &[2, 3, 3, 5, 5], 3, 1, 1, &[]) },
        Case { ones: true, ..pool("avgpool2_s2_ones_4x4", "avg", &[1, 1, 1, 4, 4], 2, 2, 0, &[0]) },
    ]
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: checkered_dump OUT_DIR"));
    std::fs::create_dir_all(&dir).expect("create OUT_DIR");
    tch::manual_seed(20180528);
    let opts = (Kind::Float, Device::Cpu);
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    let mut manifest = Vec::new();
    for c in cases() {
        let x = if c.ones { Tensor::ones(c.x.as_slice(), opts) } else { Tensor::randn(c.x.as_slice(), opts) };
        let x = x.set_requires_grad(true);
        let w = (!c.w.is_empty()).then(|| Tensor::randn(c.w.as_slice(), opts).set_requires_grad(true));
        let b = (c.bias).then(|| Tensor::randn([c.w[0]], opts).set_requires_grad(true));
        let op = match (c.op, &w) {
            ("conv", Some(w)) => Op::Conv { weight: w, bias: b.as_ref(), dilation: c.dilation, groups: c.groups },
            ("max", _) => Op::MaxPool { kernel: c.kernel, depth: c.depth },
            _ => Op::AvgPool { kernel: c.kernel, depth: c.depth },
        };
        let y = forward_with(&op, &x, c.stride, c.padding, &c.samplers);
        let r = Tensor::randn(y.size().as_slice(), opts);
        let mut inputs = vec![x.shallow_clone()];
        inputs.extend(w.iter().map(Tensor::shallow_clone));
        inputs.extend(b.iter().map(Tensor::shallow_clone));
        let grads = Tensor::run_backward(&[(&y * &r).sum(Kind::Float)], &inputs, false, false);
        let mut put =
            |suffix: &str, t: &Tensor| tensors.push((format!("{}.{suffix}", c.name), t.detach().contiguous()));
        put("x", &x);
        put("y", &y);
        put("r", &r);
        put("gx", &grads[0]);
        if let Some(w) = &w {
            put("w", w);
            put("gw", &grads[1]);
        }
        if let Some(b) = &b {
            put("b", b);
            put("gb", &grads[2]);
        }
        manifest.push(json!({
            "name": c.name, "op": c.op, "kernel": c.kernel, "depth": c.depth, "stride": c.stride,
            "padding": c.padding, "dilation": c.dilation, "groups": c.groups, "samplers": c.samplers,
            "bias": c.bias,
        }));
    }
    Tensor::write_safetensors(&tensors, dir.join("checkered.safetensors")).expect("write safetensors");
    std::fs::write(dir.join("cases.json"), serde_json::to_string_pretty(&manifest).unwrap()).expect("write cases.json");
    println!("{} cases written to {}", manifest.len(), dir.display());
}
