//! DenseNet-BC for 32×32 inputs as in the checkered-CNN repository's `models/densenet.py`
//! (torchvision-style, `small_inputs=True`; checkered.md §5.4).
//!
//! Depth `d` gives three dense blocks of `(d − 4)/6` bottleneck layers (BC-100: 16, BC-40: 6); the
//! growth rate `k` is `--width` (default 12), the stem has 2k channels (the original's fixed 24 at its
//! k = 12), compression 0.5, bottleneck width 4k, no dropout (the original's default drop rate 0).
//!
//! Variables follow the original's names except that `norm.1`, `conv.1`, `norm.2`, `conv.2` (module
//! names with dots, which modern PyTorch refuses) are `norm1`, `conv1`, `norm2`, `conv2`, as in
//! torchvision: `features.conv0`, `features.denseblock{b}.denselayer{l}.{norm1,conv1,norm2,conv2}`,
//! `features.transition{b}.{norm,conv}`, `features.norm_final`, `classifier`.
//!
//! As a checkered CNN (`checkered`), each transition's `AvgPool2d(2, 2)` is the subsampling step: its
//! bottom submap averages the extra zero row/column at the bottom/right edge (§7 pitfall 4).
//!
//! Initialisation is PyTorch 0.4's default (the file has no init loop): conv and linear weights (and
//! the linear bias) ~ U(±1/√fan_in), BN γ ~ U(0,1), β = 0.
use super::layers::{torch04_batch_norm, torch_default_uniform, BatchNorm, Conv2d, ConvSpec, Grid, Linear};
use super::{checkered_arch, Arch, ModelConfig};
use crate::error::Result;
use crate::input_err;
use crate::models::pass::{Layer, Pass};
use tch::nn;
use tch::Tensor;

pub const ARCHS: &[Arch] = &[checkered_arch(
    "densenet-bc",
    "DenseNet-BC-d (k = --width, default BC-100, k = 12) for 32×32 inputs, --checkered converts it",
    build_densenet,
)];

/// Layers per dense block of DenseNet-BC-`depth`: (depth − 4)/6.
pub fn layers_per_block(depth: i64) -> Result<i64> {
    if depth < 10 || (depth - 4) % 6 != 0 {
        return Err(input_err!("--depth: DenseNet-BC needs depth = 6n+4 with n ≥ 1 (e.g. 40 or 100), got {depth}."));
    }
    Ok((depth - 4) / 6)
}

fn conv(p: &nn::Path, cin: i64, cout: i64, kernel: i64, grid: Grid) -> Conv2d {
    Conv2d::new(p, cin, cout, ConvSpec::new(kernel).padding(kernel / 2).torch_default(cin).grid(grid))
}

/// BN-ReLU-conv1×1(4k)-BN-ReLU-conv3×3(k), concatenated to its input.
#[derive(Debug)]
struct DenseLayer {
    norm1: BatchNorm,
    conv1: Conv2d,
    norm2: BatchNorm,
    conv2: Conv2d,
}

impl Layer for DenseLayer {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let y = self.conv1.forward(&self.norm1.forward(x, pass).relu(), pass);
        let y = self.conv2.forward(&self.norm2.forward(&y, pass).relu(), pass);
        Tensor::cat(&[x, &y], 1)
    }
}

/// BN-ReLU-conv1×1-AvgPool(2, 2).
#[derive(Debug)]
struct Transition {
    norm: BatchNorm,
    conv: Conv2d,
    pool_name: String,
    grid: Grid,
}

impl Layer for Transition {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let y = self.conv.forward(&self.norm.forward(x, pass).relu(), pass);
        self.grid.avg_pool2d(&self.pool_name, &y, 2, 2, 0, pass)
    }
}

#[derive(Debug)]
pub struct DenseNet {
    conv0: Conv2d,
    stages: Vec<(Vec<DenseLayer>, Option<Transition>)>,
    norm_final: BatchNorm,
    classifier: Linear,
    grid: Grid,
}

impl DenseNet {
    pub fn new(root: &nn::Path, depth: i64, growth: i64, cfg: &ModelConfig) -> Result<DenseNet> {
        let n = layers_per_block(depth)?;
        if growth < 1 {
            return Err(input_err!("--width: the DenseNet growth rate must be a positive integer, got {growth}."));
        }
        if cfg.image_size != 32 {
            return Err(input_err!(
                "DenseNet-BC here needs 32×32 inputs (its head is avg_pool2d(8) on the 8×8 map), got {0}×{0}.",
                cfg.image_size
            ));
        }
        let grid = cfg.grid()?;
        let f = root / "features";
        let mut channels = 2 * growth;
        let conv0 = conv(&(&f / "conv0"), cfg.in_channels, channels, 3, grid);
        let mut stages = Vec::new();
        for b in 1..=3 {
            let bp = &f / format!("denseblock{b}");
            let layers = (0..n)
                .map(|l| {
                    let lp = &bp / format!("denselayer{}", l + 1);
                    let cin = channels + l * growth;
                    DenseLayer {
                        norm1: torch04_batch_norm(&(&lp / "norm1"), cin),
                        conv1: conv(&(&lp / "conv1"), cin, 4 * growth, 1, grid),
                        norm2: torch04_batch_norm(&(&lp / "norm2"), 4 * growth),
                        conv2: conv(&(&lp / "conv2"), 4 * growth, growth, 3, grid),
                    }
                })
                .collect();
            channels += n * growth;
            let transition = (b < 3).then(|| {
                let tp = &f / format!("transition{b}");
                let out = channels / 2;
                let t = Transition {
                    norm: torch04_batch_norm(&(&tp / "norm"), channels),
                    conv: conv(&(&tp / "conv"), channels, out, 1, grid),
                    pool_name: format!("features.transition{b}.pool"),
                    grid,
                };
                channels = out;
                t
            });
            stages.push((layers, transition));
        }
        let norm_final = torch04_batch_norm(&(&f / "norm_final"), channels);
        let classifier =
            Linear::new(&(root / "classifier"), channels, cfg.num_classes, torch_default_uniform(channels), None);
        Ok(DenseNet { conv0, stages, norm_final, classifier, grid })
    }
}

impl Layer for DenseNet {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let mut y = self.conv0.forward(&self.grid.input(x), pass);
        for (layers, transition) in &self.stages {
            for l in layers {
                y = l.forward(&y, pass);
            }
            if let Some(t) = transition {
                y = t.forward(&y, pass);
            }
        }
        let y = self.norm_final.forward(&y, pass).relu();
        let y = Grid::Dense.avg_pool2d("avg_pool", &self.grid.merge_submaps(&y), 8, 8, 0, pass);
        self.classifier.forward(&y.flatten(1, -1), pass)
    }
}

fn build_densenet(root: &nn::Path, cfg: &ModelConfig) -> Result<Box<dyn Layer>> {
    Ok(Box::new(DenseNet::new(root, cfg.depth.unwrap_or(100), cfg.width.unwrap_or(12), cfg)?))
}

#[cfg(test)]
mod tests {
    use crate::models::{test_config, Model, ModelConfig};
    use tch::{Device, Kind, Tensor};

    fn cfg(depth: i64, classes: i64, checkered: bool) -> ModelConfig {
        ModelConfig { depth: Some(depth), ..test_config("densenet-bc", classes, checkered, 3, 32) }
    }

    #[test]
    fn densenet_bc_parameter_counts() {
        for (depth, c10, c100) in [(100, 769_162, 800_032), (40, 176_122, 188_092)] {
            let count = |classes, checkered| {
                Model::build(&cfg(depth, classes, checkered), Device::Cpu).unwrap().num_parameters()
            };
            assert_eq!(count(10, false), c10);
            assert_eq!(count(100, false), c100);
            assert_eq!(count(100, true), c100);
            assert_eq!(count(10, true), c10);
        }
        let e = Model::build(&cfg(41, 10, false), Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("6n+4"), "{e}");
    }

    #[test]
    fn converted_bc40_traces_the_documented_shapes() {
        tch::manual_seed(0);
        let m = Model::build(&cfg(40, 10, true), Device::Cpu).unwrap();
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let (y, tr) = tch::no_grad(|| m.forward_traced(&x, true));
        assert_eq!(y.size(), vec![2, 10]);
        let shape = |name: &str| tr.iter().find(|t| t.name == name).unwrap().shape.clone();
        assert_eq!(shape("features.conv0"), vec![2, 24, 1, 32, 32]);
        // A block's output is what the next norm sees.
        assert_eq!(shape("features.transition1.norm"), vec![2, 96, 1, 32, 32]);
        assert_eq!(shape("features.transition1.pool"), vec![2, 48, 2, 16, 16]);
        assert_eq!(shape("features.transition2.norm"), vec![2, 120, 2, 16, 16]);
        assert_eq!(shape("features.transition2.pool"), vec![2, 60, 4, 8, 8]);
        assert_eq!(shape("features.norm_final"), vec![2, 132, 4, 8, 8]);
        let names: Vec<String> = m.named_variables().into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"features.denseblock3.denselayer6.norm2.running_mean".to_string()));
        assert!(names.contains(&"classifier.weight".to_string()));
    }
}
