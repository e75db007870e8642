//! The CIFAR networks of associativeconv (associative.md §3.1, §3.2): `models/resnet.py`'s
//! `CifarResNet` and `models/densenet.py`'s DenseNet-BC, each with its generated convolutions or, as
//! the baseline ("org"), plain ones. Variables carry the authors' `state_dict()` names.
use super::layers::{SliceGenerator, SwitchableConv};
use crate::error::Result;
use crate::input_err;
use crate::models::densenet::layers_per_block;
use crate::models::layers::{kaiming_normal, torch_default_uniform, BatchNorm, Conv2d, ConvSpec, Grid, Linear};
use crate::models::pass::{Layer, Pass};
use tch::nn::{self, Init};
use tch::Tensor;

/// CIFAR ResNet codes: the init loop's `p.data.normal_(1/1000)` for every parameter named `code*`
/// passes 1/1000 as the **mean**: N(0.001, 1), not N(0, 10⁻⁶) (§2.3, §6.1). Kept as the original.
pub const CIFAR_RESNET_CODE_INIT: Init = Init::Randn { mean: 0.001, stdev: 1.0 };
/// `torch.randn` codes: N(0, 1) (DenseNet, ImageNet ResNets; §2.3).
pub const RANDN_CODE_INIT: Init = Init::Randn { mean: 0.0, stdev: 1.0 };

/// Generated convolutions of the CIFAR ResNet: code name → the baseline's conv (§2.5).
pub const RESNET_GENERATED: &[(&str, &str)] = &[("code", "conv_a"), ("code2", "conv_b")];
/// Generated convolution of a DenseNet-BC bottleneck.
pub const DENSENET_GENERATED: &[(&str, &str)] = &[("code2", "conv2")];

/// Global average pooling before the classifier: the original's `AvgPool2d(8)` (ResNet) and
/// `avg_pool2d(out, 8)` (DenseNet) on the 8×8 map of a 32×32 input; the whole final map of other input
/// sizes (7×7 for 28×28 MNIST), where the original's fixed 8 would fail.
/// (torchvision's `AdaptiveAvgPool2d((1, 1))` in the ImageNet ResNets.) Traced as `avgpool`.
pub fn global_avg_pool(x: &Tensor, pass: &mut Pass) -> Tensor {
    let size = x.size();
    Grid::Dense.avg_pool2d("avgpool", x, size[2], size[3], 0, pass)
}

/// `ResNetBasicblock` / `ResNetBasicblockOrg`: conv_a(stride)-bn_a-ReLU-conv_b-bn_b, plus the option-A
/// shortcut (`DownsampleA`: `AvgPool2d(1, stride 2)` then zero channels appended), then ReLU.
#[derive(Debug)]
struct BasicBlock {
    conv_a: SwitchableConv,
    bn_a: BatchNorm,
    conv_b: SwitchableConv,
    bn_b: BatchNorm,
    /// The downsampling shortcut's trace name, when the block changes width.
    downsample: Option<String>,
    grid: Grid,
}

impl BasicBlock {
    fn new(
        p: &nn::Path,
        generator: Option<&SliceGenerator>,
        cin: i64,
        planes: i64,
        stride: i64,
        grid: Grid,
    ) -> Result<BasicBlock> {
        // The init loop: every Conv2d ~ N(0, 2/(k·k·out_channels)) (fan-out).
        let conv = |plain: &str, code: &str, cin: i64, stride: i64| {
            let spec = ConvSpec::new(3).stride(stride).padding(1).grid(grid);
            SwitchableConv::new(
                p,
                generator,
                plain,
                code,
                cin,
                planes,
                spec,
                kaiming_normal(9 * planes),
                CIFAR_RESNET_CODE_INIT,
            )
        };
        Ok(BasicBlock {
            conv_a: conv("conv_a", "code", cin, stride)?,
            bn_a: BatchNorm::new(&(p / "bn_a"), planes),
            conv_b: conv("conv_b", "code2", planes, 1)?,
            bn_b: BatchNorm::new(&(p / "bn_b"), planes),
            downsample: (stride != 1 || cin != planes)
                .then(|| format!("{}.downsample", crate::models::layers::path_name(p))),
            grid,
        })
    }
}

impl Layer for BasicBlock {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let y = self.bn_a.forward(&self.conv_a.forward(x, pass), pass).relu();
        let y = self.bn_b.forward(&self.conv_b.forward(&y, pass), pass);
        let skip = match &self.downsample {
            Some(name) => {
                let sub = self.grid.avg_pool2d(name, x, 1, 2, 0, pass);
                Tensor::cat(&[&sub, &sub.zeros_like()], 1)
            }
            None => x.shallow_clone(),
        };
        (y + skip).relu()
    }
}

/// `CifarResNet` (§3.1): conv_1_3x3 (in → 16, plain) + bn_1 + ReLU; three stages of n = (d−2)/6 blocks
/// at 16/32/64 channels (stride 2 entering stages 2 and 3); global average pool; `classifier`.
/// Init as the original's loop: convs N(0, 2/(9·out)), BN γ = 1, β = 0, the classifier (and the CSG,
/// an `nn.Linear` too) `kaiming_normal` with bias 0, codes N(0.001, 1).
#[derive(Debug)]
pub struct CifarResNet {
    conv_1_3x3: Conv2d,
    bn_1: BatchNorm,
    blocks: Vec<BasicBlock>,
    classifier: Linear,
    grid: Grid,
}

/// Blocks per stage of CIFAR ResNet-`depth`: (depth − 2)/6.
pub fn resnet_blocks_per_stage(depth: i64) -> Result<i64> {
    if depth < 8 || (depth - 2) % 6 != 0 {
        return Err(input_err!(
            "--depth: the CIFAR ResNet needs depth = 6n+2 with n ≥ 1 (20, 32, 44, 56, 110, ...), got {depth}."
        ));
    }
    Ok((depth - 2) / 6)
}

impl CifarResNet {
    pub fn new(
        root: &nn::Path,
        generator: Option<&SliceGenerator>,
        depth: i64,
        in_channels: i64,
        num_classes: i64,
        grid: Grid,
    ) -> Result<CifarResNet> {
        let n = resnet_blocks_per_stage(depth)?;
        let conv_1_3x3 = Conv2d::new(
            &(root / "conv_1_3x3"),
            in_channels,
            16,
            ConvSpec::new(3).padding(1).init(kaiming_normal(9 * 16)).grid(grid),
        );
        let mut blocks = Vec::new();
        let mut cin = 16;
        for (s, planes) in [16, 32, 64].into_iter().enumerate() {
            let stage = root / format!("stage_{}", s + 1);
            for j in 0..n {
                let stride = if s > 0 && j == 0 { 2 } else { 1 };
                blocks.push(BasicBlock::new(&(&stage / j), generator, cin, planes, stride, grid)?);
                cin = planes;
            }
        }
        let classifier =
            Linear::new(&(root / "classifier"), 64, num_classes, kaiming_normal(64), Some(Init::Const(0.0)));
        Ok(CifarResNet { conv_1_3x3, bn_1: BatchNorm::new(&(root / "bn_1"), 16), blocks, classifier, grid })
    }
}

impl Layer for CifarResNet {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let mut y = self.bn_1.forward(&self.conv_1_3x3.forward(&self.grid.input(x), pass), pass).relu();
        for b in &self.blocks {
            y = b.forward(&y, pass);
        }
        self.classifier.forward(&global_avg_pool(&self.grid.merge_submaps(&y), pass).flatten(1, -1), pass)
    }
}

/// DenseNet-BC `Bottleneck` / `BottleneckOrg`: bn1-ReLU-conv1 (1×1, 4k)-bn2-ReLU-conv2 (3×3, k, the
/// generated one), output `cat([new, x])` (new features first, §3.2).
#[derive(Debug)]
struct DenseBottleneck {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: SwitchableConv,
}

impl Layer for DenseBottleneck {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let y = self.conv1.forward(&self.bn1.forward(x, pass).relu(), pass);
        let y = self.conv2.forward(&self.bn2.forward(&y, pass).relu(), pass);
        Tensor::cat(&[&y, x], 1)
    }
}

/// `Transition`: bn-ReLU-conv (1×1, ⌊C/2⌋)-avg_pool(2); the last one (`trans3`) is bn-ReLU only,
/// followed by the global average pool.
#[derive(Debug)]
struct Transition {
    bn: BatchNorm,
    conv: Option<(Conv2d, String)>,
}

/// The CIFAR DenseNet-BC (§3.2, kuangliu style): conv1 (3×3, in → 2k, no BN after it), three dense
/// blocks of (L−4)/6 bottlenecks with transitions (reduction 0.5), `linear`. PyTorch defaults
/// everywhere (the file has no init loop): convs and `linear` U(±1/√fan_in) (the linear bias too),
/// BN γ = 1, β = 0, the CSG U(±1/√CODE_SIZE), codes N(0, 1).
///
/// BN γ = 1 is `nn.BatchNorm2d`'s default since PyTorch 1.2; the authors' runs of June 2019 may
/// predate it (PyTorch ≤ 1.1 drew γ ~ U(0, 1)). The code as written, on the PyTorch it runs on today,
/// is what is reproduced.
#[derive(Debug)]
pub struct DenseNetBC {
    conv1: Conv2d,
    stages: Vec<(Vec<DenseBottleneck>, Transition)>,
    linear: Linear,
    grid: Grid,
}

impl DenseNetBC {
    pub fn new(
        root: &nn::Path,
        generator: Option<&SliceGenerator>,
        depth: i64,
        growth: i64,
        in_channels: i64,
        num_classes: i64,
        grid: Grid,
    ) -> Result<DenseNetBC> {
        let n = layers_per_block(depth)?;
        if growth < 1 {
            return Err(input_err!("--width: the DenseNet growth rate k must be a positive integer, got {growth}."));
        }
        let plain = |p: &nn::Path, cin: i64, cout: i64, k: i64| {
            Conv2d::new(
                p,
                cin,
                cout,
                ConvSpec::new(k).padding(k / 2).init(torch_default_uniform(cin * k * k)).grid(grid),
            )
        };
        let mut channels = 2 * growth;
        let conv1 = plain(&(root / "conv1"), in_channels, channels, 3);
        let mut stages = Vec::new();
        for b in 1..=3 {
            let dense = root / format!("dense{b}");
            let mut layers = Vec::new();
            for i in 0..n {
                let lp = &dense / i;
                let cin = channels + i * growth;
                let spec = ConvSpec::new(3).padding(1).grid(grid);
                let width = 4 * growth;
                layers.push(DenseBottleneck {
                    bn1: BatchNorm::new(&(&lp / "bn1"), cin),
                    conv1: plain(&(&lp / "conv1"), cin, width, 1),
                    bn2: BatchNorm::new(&(&lp / "bn2"), width),
                    conv2: SwitchableConv::new(
                        &lp,
                        generator,
                        "conv2",
                        "code2",
                        width,
                        growth,
                        spec,
                        torch_default_uniform(width * 9),
                        RANDN_CODE_INIT,
                    )?,
                });
            }
            channels += n * growth;
            let tp = root / format!("trans{b}");
            let bn = BatchNorm::new(&(&tp / "bn"), channels);
            let conv = (b < 3).then(|| {
                let out = channels / 2;
                let conv = plain(&(&tp / "conv"), channels, out, 1);
                channels = out;
                (conv, format!("trans{b}.pool"))
            });
            stages.push((layers, Transition { bn, conv }));
        }
        let linear = Linear::new(&(root / "linear"), channels, num_classes, torch_default_uniform(channels), None);
        Ok(DenseNetBC { conv1, stages, linear, grid })
    }
}

impl Layer for DenseNetBC {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let mut y = self.conv1.forward(&self.grid.input(x), pass);
        for (layers, transition) in &self.stages {
            for l in layers {
                y = l.forward(&y, pass);
            }
            y = transition.bn.forward(&y, pass).relu();
            if let Some((conv, pool)) = &transition.conv {
                y = self.grid.avg_pool2d(pool, &conv.forward(&y, pass), 2, 2, 0, pass);
            }
        }
        self.linear.forward(&global_avg_pool(&self.grid.merge_submaps(&y), pass).flatten(1, -1), pass)
    }
}
