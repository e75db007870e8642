//! The ImageNet ResNets of associativeconv's `Imagenet-1000/models/resnet.py` (associative.md §3.4):
//! torchvision's ResNet (7×7 stem, max-pool, four stages, adaptive average pool, `fc`) whose blocks
//! take the shared CSG. Variables carry torchvision's / the authors' names (`conv1`, `bn1`,
//! `layer{1..4}.{j}.conv1/bn1/code2/bn2/conv3/bn3/downsample.{0,1}`, `fc`, `CSG`).
//!
//! Init as the original's loop: every `nn.Conv2d` kaiming_normal_(fan_out, relu) = N(0, 2/(out·k·k)),
//! BN γ = 1, β = 0 (`zero_init_residual=False`); `fc` and the CSG keep `nn.Linear`'s default
//! U(±1/√fan_in) (fc bias too); codes `torch.randn`.
use super::cifar::{global_avg_pool, RANDN_CODE_INIT};
use super::layers::{SliceGenerator, SwitchableConv};
use crate::error::Result;
use crate::models::layers::{
    kaiming_normal, residual_forward, torch_default_uniform, BatchNorm, Conv2d, ConvSpec, Grid, Linear,
};
use crate::models::pass::{Layer, Pass};
use tch::nn;
use tch::Tensor;

/// The residual block of an ImageNet CSG ResNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// `Bottleneck` (expansion 4): 1×1 conv1, 3×3 conv2 (stride; generated from `code2`), 1×1 conv3.
    Bottleneck,
    /// The repo's `BasicBlock2`, its current `resnet18()`: 3×3 conv1 (stride; generated from `code1`)
    /// and a plain 3×3 conv2.
    BasicFirstGenerated,
}

impl Block {
    fn expansion(self) -> i64 {
        match self {
            Block::Bottleneck => 4,
            Block::BasicFirstGenerated => 1,
        }
    }

    /// Generated convolution: code name → the baseline's conv.
    pub fn generated(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Block::Bottleneck => &[("code2", "conv2")],
            Block::BasicFirstGenerated => &[("code1", "conv1")],
        }
    }
}

fn plain_conv(p: &nn::Path, cin: i64, cout: i64, k: i64, stride: i64, grid: Grid) -> Conv2d {
    let spec = ConvSpec::new(k).stride(stride).padding(k / 2).init(kaiming_normal(cout * k * k)).grid(grid);
    Conv2d::new(p, cin, cout, spec)
}

#[derive(Debug)]
struct ResidualBlock {
    /// (conv, BN) pairs in order; ReLU between them.
    layers: Vec<(SwitchableConv, BatchNorm)>,
    downsample: Option<(Conv2d, BatchNorm)>,
}

impl ResidualBlock {
    fn new(
        p: &nn::Path,
        block: Block,
        generator: Option<&SliceGenerator>,
        cin: i64,
        planes: i64,
        stride: i64,
        grid: Grid,
    ) -> Result<ResidualBlock> {
        let cout = planes * block.expansion();
        let bn = |i: usize, c: i64| BatchNorm::new(&(p / format!("bn{i}")), c);
        let plain = |i: usize, cin: i64, cout: i64, k: i64, s: i64| {
            SwitchableConv::Plain(plain_conv(&(p / format!("conv{i}")), cin, cout, k, s, grid))
        };
        let generated = |i: usize, cin: i64, s: i64| {
            let spec = ConvSpec::new(3).stride(s).padding(1).grid(grid);
            let (plain_name, code_name) = (format!("conv{i}"), format!("code{i}"));
            let init = kaiming_normal(planes * 9);
            SwitchableConv::new(p, generator, &plain_name, &code_name, cin, planes, spec, init, RANDN_CODE_INIT)
        };
        let layers = match block {
            Block::Bottleneck => vec![
                (plain(1, cin, planes, 1, 1), bn(1, planes)),
                (generated(2, planes, stride)?, bn(2, planes)),
                (plain(3, planes, cout, 1, 1), bn(3, cout)),
            ],
            Block::BasicFirstGenerated => {
                vec![(generated(1, cin, stride)?, bn(1, planes)), (plain(2, planes, planes, 3, 1), bn(2, planes))]
            }
        };
        let downsample = (stride != 1 || cin != cout).then(|| {
            let d = p / "downsample";
            (plain_conv(&(&d / "0"), cin, cout, 1, stride, grid), BatchNorm::new(&(&d / "1"), cout))
        });
        Ok(ResidualBlock { layers, downsample })
    }
}

impl Layer for ResidualBlock {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        residual_forward(&self.layers, self.downsample.as_ref(), x, pass)
    }
}

/// torchvision's `ResNet(block, layers)` with the CSG passed to every block.
#[derive(Debug)]
pub struct ImageNetResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    blocks: Vec<ResidualBlock>,
    fc: Linear,
    grid: Grid,
}

impl ImageNetResNet {
    pub fn new(
        root: &nn::Path,
        generator: Option<&SliceGenerator>,
        block: Block,
        counts: [i64; 4],
        in_channels: i64,
        num_classes: i64,
        grid: Grid,
    ) -> Result<ImageNetResNet> {
        let spec = ConvSpec::new(7).stride(2).padding(3).init(kaiming_normal(64 * 49)).grid(grid);
        let conv1 = Conv2d::new(&(root / "conv1"), in_channels, 64, spec);
        let mut blocks = Vec::new();
        let mut cin = 64;
        for (i, (&n, planes)) in counts.iter().zip([64, 128, 256, 512]).enumerate() {
            let layer = root / format!("layer{}", i + 1);
            for j in 0..n {
                let stride = if i > 0 && j == 0 { 2 } else { 1 };
                blocks.push(ResidualBlock::new(&(&layer / j), block, generator, cin, planes, stride, grid)?);
                cin = planes * block.expansion();
            }
        }
        let fc = Linear::new(&(root / "fc"), cin, num_classes, torch_default_uniform(cin), None);
        Ok(ImageNetResNet { conv1, bn1: BatchNorm::new(&(root / "bn1"), 64), blocks, fc, grid })
    }
}

impl Layer for ImageNetResNet {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let y = self.bn1.forward(&self.conv1.forward(&self.grid.input(x), pass), pass).relu();
        let mut y = self.grid.max_pool2d("maxpool", &y, 3, 2, 1, pass);
        for b in &self.blocks {
            y = b.forward(&y, pass);
        }
        self.fc.forward(&global_avg_pool(&self.grid.merge_submaps(&y), pass).flatten(1, -1), pass)
    }
}
