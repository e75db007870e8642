//! The CIFAR ResNets of the checkered-CNN repository (checkered.md §5.2, §5.3): kuangliu's
//! `models/resnet.py` (3×3 stem, stages of 64/128/256/512 planes, Bottleneck expansion 4) and the
//! "tiny" `models/resnet_small.py` (64/91/128/181 planes, Bottleneck expansion 2).
//!
//! Variables are named as the original modules: `layer0.0` (stem conv), `layer0.1` (stem BN),
//! `layer{1..4}.{j}.conv1/bn1/conv2/bn2[/conv3/bn3]`, `layer{i}.{j}.shortcut.0/1` (projection conv and
//! BN), `linear`. With `checkered` the same variables run as a checkered CNN: `x.unsqueeze(2)` at the
//! entry, checkered stride-2 convolutions (the 1×1 projection shortcuts sample the same offsets as
//! the 3×3 branch), shared BN statistics, and the mean over submaps before `avg_pool2d(4)`.
//!
//! Initialisation is PyTorch 0.4's default, which the original relied on: conv and linear weights
//! (and the linear bias) ~ U(±1/√fan_in), BN γ ~ U(0,1), β = 0.
//!
//! Known difference: the original wraps `layer0` and `layer1` in `torch.utils.checkpoint`, which
//! updates those layers' BN running statistics twice per training step (§7 pitfall 10). This port
//! has no checkpointing and updates them once.
use super::layers::{residual_forward, torch04_batch_norm, BatchNorm, Conv2d, ConvSpec, Grid, Linear};
use super::{checkered_arch, Arch, ModelConfig};
use crate::error::Result;
use crate::input_err;
use crate::models::pass::{Layer, Pass};
use tch::nn;
use tch::Tensor;

const ABOUT_FULL: &str = "CIFAR ResNet (kuangliu; checkered-CNN paper §5.2), --checkered converts it";
const ABOUT_TINY: &str =
    "tiny CIFAR ResNet, planes 64/91/128/181 (checkered-CNN paper Table 7), --checkered converts it";

pub const ARCHS: &[Arch] = &[
    checkered_arch("resnet18", ABOUT_FULL, build::<18, false>),
    checkered_arch("resnet34", ABOUT_FULL, build::<34, false>),
    checkered_arch("resnet50", ABOUT_FULL, build::<50, false>),
    checkered_arch("resnet101", ABOUT_FULL, build::<101, false>),
    checkered_arch("resnet152", ABOUT_FULL, build::<152, false>),
    checkered_arch("resnet18-tiny", ABOUT_TINY, build::<18, true>),
    checkered_arch("resnet34-tiny", ABOUT_TINY, build::<34, true>),
    checkered_arch("resnet50-tiny", ABOUT_TINY, build::<50, true>),
    checkered_arch("resnet101-tiny", ABOUT_TINY, build::<101, true>),
    checkered_arch("resnet152-tiny", ABOUT_TINY, build::<152, true>),
];

/// The residual block type of a depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Basic,
    Bottleneck,
}

/// Block type and blocks per stage of ResNet-`depth` (18, 34, 50, 101, 152).
pub fn layout(depth: i64) -> Result<(BlockKind, [i64; 4])> {
    Ok(match depth {
        18 => (BlockKind::Basic, [2, 2, 2, 2]),
        34 => (BlockKind::Basic, [3, 4, 6, 3]),
        50 => (BlockKind::Bottleneck, [3, 4, 6, 3]),
        101 => (BlockKind::Bottleneck, [3, 4, 23, 3]),
        152 => (BlockKind::Bottleneck, [3, 8, 36, 3]),
        _ => return Err(input_err!("ResNet depth must be 18, 34, 50, 101 or 152, got {depth}.")),
    })
}

fn conv(p: &nn::Path, cin: i64, cout: i64, kernel: i64, stride: i64, padding: i64, grid: Grid) -> Conv2d {
    Conv2d::new(p, cin, cout, ConvSpec::new(kernel).stride(stride).padding(padding).torch_default(cin).grid(grid))
}

/// BasicBlock (conv3×3(stride)-BN-ReLU-conv3×3-BN) or Bottleneck (1×1-BN-ReLU-3×3(stride)-BN-ReLU-1×1-BN),
/// plus the identity or a projection shortcut, then ReLU.
#[derive(Debug)]
struct Block {
    convs: Vec<(Conv2d, BatchNorm)>,
    shortcut: Option<(Conv2d, BatchNorm)>,
}

impl Block {
    fn new(p: &nn::Path, kind: BlockKind, expansion: i64, cin: i64, planes: i64, stride: i64, grid: Grid) -> Block {
        let pair = |i: usize, cin: i64, cout: i64, k: i64, s: i64| {
            let pad = k / 2;
            let c = conv(&(p / format!("conv{i}")), cin, cout, k, s, pad, grid);
            (c, torch04_batch_norm(&(p / format!("bn{i}")), cout))
        };
        let (convs, cout) = match kind {
            BlockKind::Basic => (vec![pair(1, cin, planes, 3, stride), pair(2, planes, planes, 3, 1)], planes),
            BlockKind::Bottleneck => {
                let cout = expansion * planes;
                (
                    vec![pair(1, cin, planes, 1, 1), pair(2, planes, planes, 3, stride), pair(3, planes, cout, 1, 1)],
                    cout,
                )
            }
        };
        let shortcut = (stride != 1 || cin != cout).then(|| {
            let sp = p / "shortcut";
            (conv(&(&sp / "0"), cin, cout, 1, stride, 0, grid), torch04_batch_norm(&(&sp / "1"), cout))
        });
        Block { convs, shortcut }
    }
}

impl Layer for Block {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        residual_forward(&self.convs, self.shortcut.as_ref(), x, pass)
    }
}

/// The network: `layer0` stem, four stages, [submap mean], `avg_pool2d(4)`, `linear`.
#[derive(Debug)]
pub struct ResNet {
    stem: (Conv2d, BatchNorm),
    blocks: Vec<Block>,
    linear: Linear,
    grid: Grid,
}

impl ResNet {
    /// ResNet-`depth`, full-size or tiny, for 32×32 inputs.
    pub fn new(root: &nn::Path, depth: i64, tiny: bool, cfg: &ModelConfig) -> Result<ResNet> {
        let (kind, counts) = layout(depth)?;
        if cfg.image_size != 32 {
            return Err(input_err!(
                "the CIFAR ResNets need 32×32 inputs (their head is avg_pool2d(4) on the 4×4 map), got {0}×{0}.",
                cfg.image_size
            ));
        }
        let planes: [i64; 4] = if tiny { [64, 91, 128, 181] } else { [64, 128, 256, 512] };
        let expansion = match (kind, tiny) {
            (BlockKind::Basic, _) => 1,
            (BlockKind::Bottleneck, false) => 4,
            (BlockKind::Bottleneck, true) => 2,
        };
        let grid = cfg.grid()?;
        let l0 = root / "layer0";
        let stem = (conv(&(&l0 / "0"), cfg.in_channels, 64, 3, 1, 1, grid), torch04_batch_norm(&(&l0 / "1"), 64));
        let mut cin = 64;
        let mut blocks = Vec::new();
        for (s, (&n, &pl)) in counts.iter().zip(planes.iter()).enumerate() {
            let lp = root / format!("layer{}", s + 1);
            for j in 0..n {
                let stride = if s > 0 && j == 0 { 2 } else { 1 };
                blocks.push(Block::new(&(&lp / j.to_string()), kind, expansion, cin, pl, stride, grid));
                cin = pl * expansion;
            }
        }
        let linear =
            Linear::new(&(root / "linear"), cin, cfg.num_classes, super::layers::torch_default_uniform(cin), None);
        Ok(ResNet { stem, blocks, linear, grid })
    }
}

impl Layer for ResNet {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let x = self.grid.input(x);
        let mut y = self.stem.1.forward(&self.stem.0.forward(&x, pass), pass).relu();
        for b in &self.blocks {
            y = b.forward(&y, pass);
        }
        let y = Grid::Dense.avg_pool2d("avg_pool", &self.grid.merge_submaps(&y), 4, 4, 0, pass);
        self.linear.forward(&y.flatten(1, -1), pass)
    }
}

fn build<const DEPTH: i64, const TINY: bool>(root: &nn::Path, cfg: &ModelConfig) -> Result<Box<dyn Layer>> {
    Ok(Box::new(ResNet::new(root, DEPTH, TINY, cfg)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{test_config, Model};
    use tch::{Device, Kind};

    fn params(arch: &str, classes: i64, checkered: bool) -> i64 {
        Model::build(&test_config(arch, classes, checkered, 3, 32), Device::Cpu).unwrap().num_parameters()
    }

    #[test]
    fn resnet_parameter_counts_match_the_original() {
        let want: [(&str, i64, i64); 10] = [
            ("resnet18", 11_173_962, 11_220_132),
            ("resnet34", 21_282_122, 21_328_292),
            ("resnet50", 23_520_842, 23_705_252),
            ("resnet101", 42_512_970, 42_697_380),
            ("resnet152", 58_156_618, 58_341_028),
            ("resnet18-tiny", 2_112_546, 2_128_926),
            ("resnet34-tiny", 4_257_492, 4_273_872),
            ("resnet50-tiny", 3_301_349, 3_334_019),
            ("resnet101-tiny", 6_939_621, 6_972_291),
            ("resnet152-tiny", 10_155_353, 10_188_023),
        ];
        for (arch, c10, c100) in want {
            assert_eq!(params(arch, 10, false), c10, "{arch}");
            assert_eq!(params(arch, 100, false), c100, "{arch}");
            assert_eq!(params(arch, 100, true), c100, "{arch} checkered");
        }
    }

    #[test]
    fn converted_resnet50_traces_the_documented_shapes() {
        tch::manual_seed(0);
        let m = Model::build(&test_config("resnet50", 100, true, 3, 32), Device::Cpu).unwrap();
        let x = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        let (y, tr) = tch::no_grad(|| m.forward_traced(&x, false));
        assert_eq!(y.size(), vec![1, 100]);
        let last = |prefix: &str| tr.iter().rev().find(|t| t.name.starts_with(prefix)).unwrap().shape.clone();
        assert_eq!(last("layer0."), vec![1, 64, 1, 32, 32]);
        assert_eq!(last("layer1."), vec![1, 256, 1, 32, 32]);
        assert_eq!(last("layer2."), vec![1, 512, 2, 16, 16]);
        assert_eq!(last("layer3."), vec![1, 1024, 4, 8, 8]);
        assert_eq!(last("layer4."), vec![1, 2048, 8, 4, 4]);
        assert_eq!(last("avg_pool"), vec![1, 2048, 1, 1]);
        let kinds: Vec<&str> = tr.iter().filter(|t| t.name == "layer2.0.shortcut.0").map(|t| t.kind).collect();
        assert_eq!(kinds, vec!["CheckeredConv2d"]);
    }

    #[test]
    fn a_resnet18_checkpoint_runs_as_a_checkered_cnn() {
        tch::manual_seed(0);
        let cnn = Model::build(&test_config("resnet18", 10, false, 3, 32), Device::Cpu).unwrap();
        tch::manual_seed(1);
        let mut ccnn = Model::build(&test_config("resnet18", 10, true, 3, 32), Device::Cpu).unwrap();
        let names = |m: &Model| m.named_variables().into_iter().map(|(n, t)| (n, t.size())).collect::<Vec<_>>();
        assert_eq!(names(&cnn), names(&ccnn));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resnet18.safetensors");
        cnn.vs.save(&path).unwrap();
        ccnn.vs.load(&path).unwrap();
        for ((n, a), (_, b)) in cnn.named_variables().iter().zip(ccnn.named_variables().iter()) {
            assert!(a.equal(b), "{n} not loaded");
        }
        let x = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        let (y2d, tr2d) = tch::no_grad(|| cnn.forward_traced(&x, false));
        let (yc, trc) = tch::no_grad(|| ccnn.forward_traced(&x, false));
        assert_eq!(y2d.size(), vec![1, 10]);
        assert_eq!(yc.size(), vec![1, 10]);
        let shape =
            |tr: &[crate::models::pass::LayerTrace], n: &str| tr.iter().find(|t| t.name == n).unwrap().shape.clone();
        assert_eq!(shape(&tr2d, "layer4.1.bn2"), vec![1, 512, 4, 4]);
        assert_eq!(shape(&trc, "layer4.1.bn2"), vec![1, 512, 8, 4, 4]);
        assert_eq!(shape(&trc, "layer2.0.conv1"), vec![1, 128, 2, 16, 16]);
        assert!(f64::try_from((y2d - &yc).abs().max()).unwrap() > 0.0, "multisampling changes the logits");
    }

    #[test]
    fn resnet_init_is_pytorch_04_and_bad_geometry_is_refused() {
        tch::manual_seed(0);
        let m = Model::build(&test_config("resnet18", 10, false, 3, 32), Device::Cpu).unwrap();
        let v: std::collections::HashMap<String, Tensor> = m.named_variables().into_iter().collect();
        let gamma = &v["layer1.0.bn1.weight"];
        assert!(f64::try_from(gamma.min()).unwrap() >= 0.0 && f64::try_from(gamma.max()).unwrap() <= 1.0);
        assert!(f64::try_from(gamma.std(true)).unwrap() > 0.2);
        let w = &v["layer1.0.conv1.weight"];
        let bound = 1.0 / (64.0f64 * 9.0).sqrt();
        assert!(f64::try_from(w.abs().max()).unwrap() <= bound);
        assert!(v.contains_key("layer2.0.shortcut.1.running_var") && v.contains_key("linear.bias"));
        let e = Model::build(&test_config("resnet18", 10, false, 3, 28), Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("32×32"), "{e}");
    }
}
