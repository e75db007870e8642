//! Pre-activation Wide ResNet (WRN-d-w) exactly as the SWRN repository's `Block`/`SWRN` with every
//! convolution plain (spec/swrn.md §3). SWRN reuses this skeleton and swaps the convolutions of blocks
//! 1..N-1 of each stage for shared ones through [`StageConvs`].
//!
//! On [`Grid::Checkered`] the same variables run as a checkered CNN (checkered.md §3, Table 1's
//! WRN-28×10 row): `x.unsqueeze(2)` at the entry and the mean over submaps before the global pool.
use super::layers::{kaiming_normal, BatchNorm, Conv2d, ConvSpec, Grid, Linear};
use super::{Arch, ModelConfig};
use crate::error::Result;
use crate::input_err;
use crate::models::pass::{Layer, Pass};
use tch::nn::{self, Init};
use tch::Tensor;

pub const ARCHS: &[Arch] = &[Arch::new(
    "wrn",
    "swrn",
    "pre-activation Wide ResNet WRN-d-w (CIFAR geometry), the SWRN/checkered baseline",
    build_wrn,
)];

/// Blocks per stage for a CIFAR WRN of this depth: N = (d−4)/6 (swrn.md §3).
pub fn blocks_per_stage(depth: i64) -> Result<i64> {
    if depth < 10 || (depth - 4) % 6 != 0 {
        return Err(input_err!(
            "--depth: a Wide ResNet needs depth = 6n+4 with n ≥ 1 (10, 16, 22, 28, 34, 40, ...), got {depth}."
        ));
    }
    Ok((depth - 4) / 6)
}

/// A 3×3 stride-1 convolution inside blocks 1..N-1 of a stage: plain for WRN, template-shared for SWRN.
pub type DynConv = Box<dyn Layer>;

/// Makes the 3×3 convolutions of the non-first blocks of each stage.
pub trait StageConvs {
    /// Called once per stage (1-based) before its blocks are built.
    fn begin_stage(&mut self, stage_path: &nn::Path, stage: usize, channels: i64, num_shared_convs: i64);
    /// The conv at `p` (e.g. `stage_2.3.conv1`) with `channels` in and out, stride 1, padding 1, on `grid`.
    fn conv(&mut self, p: &nn::Path, channels: i64, grid: Grid) -> DynConv;
}

/// WRN: every convolution plain, Kaiming-normal.
struct PlainConvs;

impl StageConvs for PlainConvs {
    fn begin_stage(&mut self, _: &nn::Path, _: usize, _: i64, _: i64) {}
    fn conv(&mut self, p: &nn::Path, channels: i64, grid: Grid) -> DynConv {
        Box::new(Conv2d::new(p, channels, channels, ConvSpec::new(3).padding(1).grid(grid)))
    }
}

/// Pre-activation basic block: o = relu(bn1(x)); out = conv2(relu(bn2(conv1(o)))); out + (x | shortcut(o)).
#[derive(Debug)]
struct Block {
    bn1: BatchNorm,
    conv1: DynConv,
    bn2: BatchNorm,
    conv2: DynConv,
    shortcut: Option<Conv2d>,
}

impl Layer for Block {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let o = self.bn1.forward(x, pass).relu();
        let y = self.conv1.forward(&o, pass);
        let y = self.conv2.forward(&self.bn2.forward(&y, pass).relu(), pass);
        match &self.shortcut {
            Some(s) => y + s.forward(&o, pass),
            None => y + x,
        }
    }
}

fn plain_block(p: &nn::Path, cin: i64, cout: i64, stride: i64, grid: Grid) -> Block {
    let conv3 = ConvSpec::new(3).padding(1).grid(grid);
    Block {
        bn1: BatchNorm::new(&(p / "bn1"), cin),
        conv1: Box::new(Conv2d::new(&(p / "conv1"), cin, cout, conv3.stride(stride))),
        bn2: BatchNorm::new(&(p / "bn2"), cout),
        conv2: Box::new(Conv2d::new(&(p / "conv2"), cout, cout, conv3)),
        shortcut: (cin != cout)
            .then(|| Conv2d::new(&(p / "convShortcut"), cin, cout, ConvSpec::new(1).stride(stride).grid(grid))),
    }
}

/// The whole network: stem, three stages, BN-ReLU, global average pool, classifier.
#[derive(Debug)]
pub struct WideResNet {
    stem: Conv2d,
    blocks: Vec<Block>,
    last_bn: BatchNorm,
    classifier: Linear,
    grid: Grid,
}

impl WideResNet {
    /// Builds WRN-`depth`-`width` on `grid` with `convs` supplying the convolutions of blocks 1..N-1.
    pub fn new(
        root: &nn::Path,
        depth: i64,
        width: i64,
        in_channels: i64,
        num_classes: i64,
        grid: Grid,
        convs: &mut dyn StageConvs,
    ) -> Result<Self> {
        let n = blocks_per_stage(depth)?;
        if width < 1 {
            return Err(input_err!("--width: must be a positive integer, got {width}."));
        }
        let channels = [16, 16 * width, 32 * width, 64 * width];
        let stem = Conv2d::new(&(root / "conv_3x3"), in_channels, 16, ConvSpec::new(3).padding(1).grid(grid));
        let mut blocks = Vec::new();
        for s in 1..=3usize {
            let sp = root / format!("stage_{s}");
            let stride = if s == 1 { 1 } else { 2 };
            blocks.push(plain_block(&(&sp / "0"), channels[s - 1], channels[s], stride, grid));
            convs.begin_stage(&sp, s, channels[s], 2 * (n - 1));
            for b in 1..n {
                let bp = &sp / b.to_string();
                let c = channels[s];
                blocks.push(Block {
                    bn1: BatchNorm::new(&(&bp / "bn1"), c),
                    conv1: convs.conv(&(&bp / "conv1"), c, grid),
                    bn2: BatchNorm::new(&(&bp / "bn2"), c),
                    conv2: convs.conv(&(&bp / "conv2"), c, grid),
                    shortcut: None,
                });
            }
        }
        let last_bn = BatchNorm::new(&(root / "lastact" / "0"), channels[3]);
        let classifier = Linear::new(
            &(root / "classifier"),
            channels[3],
            num_classes,
            kaiming_normal(channels[3]),
            Some(Init::Const(0.0)),
        );
        Ok(WideResNet { stem, blocks, last_bn, classifier, grid })
    }
}

impl Layer for WideResNet {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let mut y = self.stem.forward(&self.grid.input(x), pass);
        for b in &self.blocks {
            y = b.forward(&y, pass);
        }
        let y = self.grid.merge_submaps(&self.last_bn.forward(&y, pass).relu());
        // AvgPool2d(8) on the 8×8 map of 32×32 inputs is the global mean; taking the mean keeps
        // other input sizes usable.
        let y = y.mean_dim([2i64, 3].as_slice(), false, tch::Kind::Float);
        self.classifier.forward(&y, pass)
    }
}

/// Depth and width with the WRN defaults of the SWRN repository (depth 28, width 2).
pub fn depth_width(cfg: &ModelConfig) -> (i64, i64) {
    (cfg.depth.unwrap_or(28), cfg.width.unwrap_or(2))
}

fn build_wrn(root: &nn::Path, cfg: &ModelConfig) -> Result<Box<dyn Layer>> {
    let (depth, width) = depth_width(cfg);
    Ok(Box::new(WideResNet::new(root, depth, width, cfg.in_channels, cfg.num_classes, cfg.grid()?, &mut PlainConvs)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Model, ModelConfig};
    use tch::{Device, Kind};

    fn cfg(depth: i64, width: i64, classes: i64) -> ModelConfig {
        ModelConfig { depth: Some(depth), width: Some(width), ..ModelConfig::new("wrn", classes, 3, 32) }
    }

    #[test]
    fn wrn_28_10_has_the_papers_parameter_count() {
        let m = Model::build(&cfg(28, 10, 10), Device::Cpu).unwrap();
        assert_eq!(m.num_parameters(), 36_479_194);
        let m = Model::build(&cfg(28, 10, 100), Device::Cpu).unwrap();
        assert_eq!(m.num_parameters(), 36_536_884);
    }

    #[test]
    fn wrn_forward_shape_and_invalid_depth() {
        let m = Model::build(&cfg(10, 1, 10), Device::Cpu).unwrap();
        let y = m.forward_t(&Tensor::zeros([2, 3, 32, 32], (Kind::Float, Device::Cpu)), false);
        assert_eq!(y.size(), vec![2, 10]);
        let e = Model::build(&cfg(27, 1, 10), Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("6n+4"), "{e}");
    }

    #[test]
    fn checkered_wrn_keeps_its_parameters_and_quadruples_the_last_stage_submaps() {
        let plain = Model::build(&cfg(10, 1, 10), Device::Cpu).unwrap();
        let m = Model::build(&ModelConfig { checkered: true, ..cfg(10, 1, 10) }, Device::Cpu).unwrap();
        assert_eq!(m.num_parameters(), plain.num_parameters());
        let x = Tensor::zeros([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let (y, tr) = m.forward_traced(&x, false);
        assert_eq!(y.size(), vec![2, 10]);
        assert_eq!(tr.iter().find(|t| t.name == "lastact.0").unwrap().shape, vec![2, 64, 4, 8, 8]);
    }
}
