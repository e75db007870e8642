//! The toy MNIST networks of the checkered-CNN paper (checkered.md §5.1, Table 8).
//!
//! All three share one layout: `init_conv` 3×3 (→32), `conv1` 3×3 (32→32), `conv2` 3×3 stride 2
//! (32→45), `conv3` 3×3 (45→45), `conv4` 3×3 (45→64), each with bias and followed by BN (`bn1`..`bn5`)
//! and ReLU, then channel dropout 0.2, global average pooling and `fc` (64→classes).
//!
//! - `ccnn-toy` is `demo_mnist.py`'s `CheckeredCNN` (93,833 parameters): always checkered, and `conv4`
//!   is a native checkered convolution of kernel depth 2 spanning both submaps, weight (64, 45, 2, 3, 3),
//!   so the two submaps after `conv2` merge into one. Dropout3d, AdaptiveAvgPool3d(1).
//! - `tiny-cnn` is Table 8's 2-D "Tiny CNN" baseline (67,913): ordinary convolutions, Dropout2d,
//!   AdaptiveAvgPool2d(1). With `checkered` it is converted like every other network here.
//! - `ccnn-toy-d1` is Table 8's "Tiny CCNN" (67,913): `tiny-cnn` converted (always checkered), i.e.
//!   `ccnn-toy` with a depth-1 `conv4`; its variables are those of `tiny-cnn`.
//!
//! The original nests each checkered conv's parameters as `init_conv.conv.weight`; here they are
//! `init_conv.weight` so that a `tiny-cnn` checkpoint loads into `ccnn-toy-d1`. Initialisation is
//! PyTorch 0.4's default: conv weights and biases, linear weight and bias ~ U(±1/√fan_in) (fan_in of
//! the depth-2 conv4 is 45·2·9), BN γ ~ U(0,1), β = 0.
use super::layers::{
    channel_dropout, torch04_batch_norm, torch_default_uniform, BatchNorm, CheckeredConv2d, Conv2d, ConvSpec, Grid,
    Linear,
};
use super::{checkered_arch, checkered_names, Arch, ModelConfig};
use crate::error::Result;
use crate::models::pass::{Layer, Pass};
use tch::nn;
use tch::{Kind, Tensor};

pub const ARCHS: &[Arch] = &[
    Arch {
        export: checkered_names::export_converted,
        ..checkered_arch(
            "ccnn-toy",
            "toy MNIST CCNN of demo_mnist.py with a depth-2 conv4 (93,833 parameters); always checkered",
            build::<2, true>,
        )
    },
    Arch {
        export: checkered_names::export_converted,
        ..checkered_arch(
            "ccnn-toy-d1",
            "Tiny CCNN of Table 8: tiny-cnn converted (67,913 parameters); always checkered",
            build::<1, true>,
        )
    },
    checkered_arch(
        "tiny-cnn",
        "Tiny CNN of Table 8, the 2-D MNIST baseline (67,913 parameters), --checkered converts it",
        build::<1, false>,
    ),
];

/// Dropout probability before the pooling (Dropout3d(0.2) in the original).
pub const DROPOUT: f64 = 0.2;

#[derive(Debug)]
pub struct ToyCnn {
    convs: Vec<(Box<dyn Layer>, BatchNorm)>,
    fc: Linear,
    grid: Grid,
}

impl ToyCnn {
    /// `conv4_depth` 2 makes `conv4` the native depth-2 checkered convolution (`grid` must then be
    /// checkered).
    pub fn new(root: &nn::Path, conv4_depth: i64, grid: Grid, cfg: &ModelConfig) -> ToyCnn {
        let layout: [(&str, i64, i64, i64); 5] = [
            ("init_conv", cfg.in_channels, 32, 1),
            ("conv1", 32, 32, 1),
            ("conv2", 32, 45, 2),
            ("conv3", 45, 45, 1),
            ("conv4", 45, 64, 1),
        ];
        let convs = layout
            .iter()
            .enumerate()
            .map(|(i, &(name, cin, cout, stride))| {
                let spec = ConvSpec::new(3).stride(stride).padding(1).bias(true).grid(grid);
                let p = root / name;
                let conv: Box<dyn Layer> = match grid {
                    Grid::Checkered(sampling) if name == "conv4" && conv4_depth > 1 => {
                        Box::new(CheckeredConv2d::new(&p, cin, cout, conv4_depth, spec, sampling))
                    }
                    _ => Box::new(Conv2d::new(&p, cin, cout, spec.torch_default(cin))),
                };
                (conv, torch04_batch_norm(&(root / format!("bn{}", i + 1)), cout))
            })
            .collect();
        let fc = Linear::new(&(root / "fc"), 64, cfg.num_classes, torch_default_uniform(64), None);
        ToyCnn { convs, fc, grid }
    }
}

impl Layer for ToyCnn {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let mut y = self.grid.input(x);
        for (conv, bn) in &self.convs {
            y = bn.forward(&conv.forward(&y, pass), pass).relu();
        }
        let y = channel_dropout(&y, DROPOUT, pass.train);
        // AdaptiveAvgPool3d(1) over (S, H, W) = the mean of equally sized submaps, then over H, W.
        let v = self.grid.merge_submaps(&y).mean_dim([2i64, 3].as_slice(), false, None::<Kind>);
        self.fc.forward(&v, pass)
    }
}

fn build<const CONV4_DEPTH: i64, const CHECKERED: bool>(root: &nn::Path, cfg: &ModelConfig) -> Result<Box<dyn Layer>> {
    Ok(Box::new(ToyCnn::new(root, CONV4_DEPTH, cfg.grid_if(CHECKERED || cfg.checkered)?, cfg)))
}

#[cfg(test)]
mod tests {
    use crate::models::{test_config, Model};
    use tch::{Device, Kind, Tensor};

    #[test]
    fn toy_parameter_counts_and_shapes() {
        tch::manual_seed(0);
        let x = Tensor::randn([3, 1, 28, 28], (Kind::Float, Device::Cpu));
        for (arch, checkered, params, conv2, conv4) in [
            ("ccnn-toy", false, 93_833, vec![3, 45, 2, 14, 14], vec![3, 64, 1, 14, 14]),
            ("ccnn-toy-d1", false, 67_913, vec![3, 45, 2, 14, 14], vec![3, 64, 2, 14, 14]),
            ("tiny-cnn", false, 67_913, vec![3, 45, 14, 14], vec![3, 64, 14, 14]),
            ("tiny-cnn", true, 67_913, vec![3, 45, 2, 14, 14], vec![3, 64, 2, 14, 14]),
        ] {
            let m = Model::build(&test_config(arch, 10, checkered, 1, 28), Device::Cpu).unwrap();
            assert_eq!(m.num_parameters(), params, "{arch}");
            let (y, tr) = m.forward_traced(&x, true);
            assert_eq!(y.size(), vec![3, 10]);
            let shape = |n: &str| tr.iter().find(|t| t.name == n).unwrap().shape.clone();
            assert_eq!(shape("conv2"), conv2, "{arch}");
            assert_eq!(shape("conv4"), conv4, "{arch}");
        }
        let m = Model::build(&test_config("ccnn-toy", 10, true, 1, 28), Device::Cpu).unwrap();
        let v: std::collections::HashMap<String, Tensor> = m.named_variables().into_iter().collect();
        assert_eq!(v["conv4.weight"].size(), vec![64, 45, 2, 3, 3]);
        let bound = 1.0 / 810f64.sqrt();
        assert!(f64::try_from(v["conv4.bias"].abs().max()).unwrap() <= bound);
    }

    #[test]
    fn tiny_cnn_checkpoint_loads_into_ccnn_toy_d1() {
        tch::manual_seed(0);
        let cnn = Model::build(&test_config("tiny-cnn", 10, false, 1, 28), Device::Cpu).unwrap();
        let mut ccnn = Model::build(&test_config("ccnn-toy-d1", 10, false, 1, 28), Device::Cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.safetensors");
        cnn.vs.save(&path).unwrap();
        ccnn.vs.load(&path).unwrap();
        let x = Tensor::randn([2, 1, 28, 28], (Kind::Float, Device::Cpu));
        let y = tch::no_grad(|| ccnn.forward_t(&x, false));
        assert_eq!(y.size(), vec![2, 10]);
    }
}
