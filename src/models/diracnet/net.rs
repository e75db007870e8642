//! The DiracNet networks of `diracnet.py` (diracnet.md §3) and their folded, plain form (§3.6, §4).
//!
//! Both are one chain: stem → [ImageNet: max-pool 3/2/1] → groups of blocks with a 2×2 max-pool
//! between groups → ReLU → global average pool → fc. No skip connections, no strided convolutions
//! (§3.1). An unfolded block is `BN(DiracConv3x3(ReLU(x)))` with one BatchNorm after every conv, BN
//! before every max-pool and the ReLU after it (max-pool and ReLU commute), which is what lets every BN
//! fold into its convolution (§3.3, PR #1). A folded block is `Conv3x3+bias(ReLU(x))`.
//!
//! Variable names are the authors': the functional model's flat dict (`conv`, `bn.weight`,
//! `group0.block0.conv`, `group0.block0.alpha`, `group0.block0.bn.running_var`, `fc.weight`, ...) and
//! the folded module's `state_dict` (`features.conv.weight`, `features.group0.block0.conv.bias`,
//! `fc.bias`, ...).
use super::conv::{dirac_kernel, DiracConv, DiracNames};
use super::{DiracInit, DiracOptions, Network};
use crate::error::Result;
use crate::input_err;
use crate::models::layers::{kaiming_normal, torch_default_uniform, BatchNorm, Conv2d, ConvSpec, Grid, Linear};
use crate::models::pass::{Layer, Pass};
use crate::models::ModelConfig;
use std::collections::HashMap;
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

/// BN eps of `F.batch_norm` and of the fold (diracnet.md §3.4, §4).
const BN_EPS: f64 = 1e-5;

/// Blocks per ImageNet group for depth 18 and 34; each has twice as many Dirac convs (§3.3).
const IMAGENET_GROUPS: [(i64, [i64; 4]); 2] = [(18, [2, 2, 2, 2]), (34, [3, 4, 6, 3])];

/// The shape of a DiracNet: which network, its widths and Dirac convs per group.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    pub network: Network,
    pub depth: i64,
    pub width: i64,
    /// Output channels of each group (and of the stem: `widths[0]`).
    pub widths: Vec<i64>,
    /// Dirac convolutions (blocks) per group.
    pub blocks: Vec<i64>,
}

impl Geometry {
    /// CIFAR: depth 6n+4 (n ≥ 1), 2n blocks per group, widths 16/32/64·w (§3.2). ImageNet: depth 18
    /// ([2,2,2,2] ⇒ 4/4/4/4 blocks) or 34 ([3,4,6,3] ⇒ 6/8/12/6), widths 64/128/256/512·w (§3.3).
    /// Any other depth, or a width below 1, is an input error naming the valid values.
    pub fn new(network: Network, depth: i64, width: i64) -> Result<Geometry> {
        if width < 1 {
            return Err(input_err!("--width: a DiracNet's width multiplier must be at least 1, got {width}."));
        }
        let (widths, blocks) = match network {
            Network::Cifar => {
                if depth < 10 || (depth - 4) % 6 != 0 {
                    return Err(input_err!(
                        "--depth {depth}: the CIFAR DiracNet (every dataset but imagefolder, or --dirac-net cifar) has depth 6n+4 with n >= 1: \
                         10, 16, 22, 28, 34, 40, ... (diracnet.md §3.2); the ImageNet DiracNet-18/34 needs --dataset imagefolder."
                    ));
                }
                let n = (depth - 4) / 6;
                (vec![16 * width, 32 * width, 64 * width], vec![2 * n; 3])
            }
            Network::Imagenet => {
                let groups = IMAGENET_GROUPS.iter().find(|(d, _)| *d == depth).map(|(_, g)| g).ok_or_else(|| {
                    input_err!(
                        "--depth {depth}: the ImageNet DiracNet (--dataset imagefolder, or --dirac-net imagenet) has depth 18 or 34 \
                         (diracnet.md §3.3); CIFAR-style depths 6n+4 need --dirac-net cifar."
                    )
                })?;
                (vec![64 * width, 128 * width, 256 * width, 512 * width], groups.iter().map(|b| 2 * b).collect())
            }
        };
        Ok(Geometry { network, depth, width, widths, blocks })
    }

    /// The geometry a model configuration asks for: `dirac_net` (the recipe sets it from the dataset),
    /// depth and width with `train.py`'s defaults (CIFAR 16 and 1, ImageNet 18 and 1; §5.1).
    pub fn from_config(cfg: &ModelConfig) -> Result<Geometry> {
        let o: DiracOptions = cfg.options()?;
        let network = o.dirac_net.unwrap_or_default();
        let default_depth = if network == Network::Imagenet { 18 } else { 16 };
        let g = Geometry::new(network, cfg.depth.unwrap_or(default_depth), cfg.width.unwrap_or(1))?;
        if cfg.checkered {
            return Err(input_err!("--checkered: DiracNet has no checkered variant; train it without --checkered."));
        }
        g.check_input(cfg.in_channels, cfg.image_size)?;
        Ok(g)
    }

    /// The stem convolution: 3×3, padding 1 (CIFAR) or 7×7, stride 2, padding 3 (ImageNet); no bias.
    fn stem(&self) -> ConvSpec {
        match self.network {
            Network::Cifar => ConvSpec::new(3).padding(1),
            Network::Imagenet => ConvSpec::new(7).stride(2).padding(3),
        }
    }

    /// Refuses inputs the pooling cannot reduce: every map must keep at least one pixel.
    fn check_input(&self, in_channels: i64, image_size: i64) -> Result<()> {
        let mut side = image_size;
        if self.network == Network::Imagenet {
            side = (side + 6 - 7) / 2 + 1; // stem
            side = (side + 2 - 3) / 2 + 1; // max_pool0
        }
        let pools = self.blocks.len() as u32 - 1;
        if in_channels < 1 || side < 1 || side / 2i64.pow(pools) < 1 {
            return Err(input_err!(
                "DiracNet-{}-{} ({}): {in_channels}×{image_size}×{image_size} inputs are too small for its pooling; \
                 the last group needs at least a 1×1 map (CIFAR net: side >= 4, ImageNet net: side >= 29).",
                self.depth,
                self.width,
                self.network.name()
            ));
        }
        Ok(())
    }

    /// Block names `groupG.blockB` in depth order.
    pub fn block_names(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (g, &count) in self.blocks.iter().enumerate() {
            v.extend((0..count).map(|b| format!("group{g}.block{b}")));
        }
        v
    }

    /// (in, out) channels of every block, in depth order.
    fn block_channels(&self) -> Vec<(i64, i64)> {
        let mut v = Vec::new();
        let mut cin = self.widths[0];
        for (&cout, &count) in self.widths.iter().zip(&self.blocks) {
            for _ in 0..count {
                v.push((cin, cout));
                cin = cout;
            }
        }
        v
    }

    /// The chain both forms share (see the module documentation): `stem` maps the input to the stem's
    /// output, `block(i, x)` is the i-th block (depth order) applied to ReLU(x).
    fn forward(
        &self,
        xs: &Tensor,
        stem: impl FnOnce(&Tensor, &mut Pass) -> Tensor,
        mut block: impl FnMut(usize, &Tensor, &mut Pass) -> Tensor,
        fc: &Linear,
        pass: &mut Pass,
    ) -> Tensor {
        let dense = Grid::Dense;
        let mut o = stem(xs, pass);
        if self.network == Network::Imagenet {
            o = dense.max_pool2d("max_pool0", &o, 3, 2, 1, pass);
        }
        let mut i = 0;
        for (g, &count) in self.blocks.iter().enumerate() {
            if g > 0 {
                o = dense.max_pool2d(&format!("max_pool{g}"), &o, 2, 2, 0, pass);
            }
            for _ in 0..count {
                o = block(i, &o.relu(), pass);
                i += 1;
            }
        }
        // HEAD: avg_pool2d(relu(o), 8) on CIFAR, kernel o.size(-1) on ImageNet — the same global average
        // at 32×32 / 224×224; the map's own size here, so that any input the pooling allows works.
        let o = o.relu();
        let side = o.size()[3];
        fc.forward(&dense.avg_pool2d("avg_pool", &o, side, side, 0, pass).flatten(1, -1), pass)
    }
}

/// One unfolded block: a Dirac conv under `groupG.blockB` (functional names) and its BN.
#[derive(Debug)]
struct DiracBlock {
    conv: DiracConv,
    bn: BatchNorm,
}

/// The DiracNet of `define_diracnet(depth, width, dataset)` (diracnet.md §3.2–3.4).
#[derive(Debug)]
pub struct DiracNet {
    geometry: Geometry,
    stem: Tensor,
    stem_bn: BatchNorm,
    blocks: Vec<DiracBlock>,
    fc: Linear,
}

/// HEAD's BatchNorm init: γ ~ U[0,1) (`torch.rand`), β = 0, running mean 0 and var 1 (§3.4).
fn batch_norm(p: &nn::Path, channels: i64) -> BatchNorm {
    BatchNorm::with_gamma_init(p, channels, Init::Uniform { lo: 0.0, up: 1.0 })
}

impl DiracNet {
    /// Creates the variables under `root` in the original's order: stem `conv` and `bn`, the groups'
    /// blocks, `fc`. Inits as HEAD (§3.4) — Kaiming-normal stem, Dirac W and fc weight, fc bias 0,
    /// α = 1, β = 0.1, BN γ ~ U[0,1) — except that `DiracInit::Normal` draws the Dirac W from N(0,1) as
    /// the January-2018 code that trained the released ImageNet weights did (§2.4).
    pub fn new(
        root: &nn::Path,
        geometry: Geometry,
        init: DiracInit,
        in_channels: i64,
        num_classes: i64,
    ) -> Result<Self> {
        let spec = geometry.stem();
        let w0 = geometry.widths[0];
        let stem = root.var(
            "conv",
            &[w0, in_channels, spec.kernel, spec.kernel],
            kaiming_normal(in_channels * spec.kernel * spec.kernel),
        );
        let stem_bn = batch_norm(&(root / "bn"), w0);
        let mut blocks = Vec::new();
        for (name, (cin, cout)) in geometry.block_names().iter().zip(geometry.block_channels()) {
            let mut p = root.clone();
            for part in name.split('.') {
                p = p / part;
            }
            let mut dirac = ConvSpec::new(3).padding(1);
            if init == DiracInit::Normal {
                dirac = dirac.init(Init::Randn { mean: 0.0, stdev: 1.0 });
            }
            let conv = DiracConv::with_names(&p, DiracNames::FUNCTIONAL, 2, cin, cout, dirac)?;
            blocks.push(DiracBlock { conv, bn: batch_norm(&(&p / "bn"), cout) });
        }
        let last = *geometry.widths.last().unwrap_or(&w0);
        let fc = Linear::new(&(root / "fc"), last, num_classes, kaiming_normal(last), Some(Init::Const(0.0)));
        Ok(DiracNet { geometry, stem, stem_bn, blocks, fc })
    }
}

impl Layer for DiracNet {
    fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Tensor {
        let g = &self.geometry;
        let stem = |x: &Tensor, pass: &mut Pass| {
            let o = Grid::Dense.conv2d("conv", x, &self.stem, None, &g.stem(), pass);
            let o = self.stem_bn.forward(&o, pass);
            // CIFAR applies the ReLU here as well; the first block's ReLU then changes nothing (§4).
            if g.network == Network::Cifar {
                o.relu()
            } else {
                o
            }
        };
        let block = |i: usize, x: &Tensor, pass: &mut Pass| {
            let b = &self.blocks[i];
            b.bn.forward(&b.conv.forward(x, pass), pass)
        };
        g.forward(xs, stem, block, &self.fc, pass)
    }
}

/// The folded network (diracnet.md §3.6): the plain conv+bias / ReLU / max-pool chain, under the
/// authors' folded `state_dict` names, for CIFAR as well as ImageNet geometry. Its own init is
/// PyTorch's `nn.Conv2d` / `nn.Linear` default, as the authors' `DiracNet` module.
#[derive(Debug)]
pub struct FoldedDiracNet {
    geometry: Geometry,
    stem: Conv2d,
    blocks: Vec<Conv2d>,
    fc: Linear,
}

impl FoldedDiracNet {
    pub fn new(root: &nn::Path, geometry: Geometry, in_channels: i64, num_classes: i64) -> Self {
        let features = root / "features";
        let w0 = geometry.widths[0];
        let stem =
            Conv2d::new(&(&features / "conv"), in_channels, w0, geometry.stem().bias(true).torch_default(in_channels));
        let mut blocks = Vec::new();
        for (name, (cin, cout)) in geometry.block_names().iter().zip(geometry.block_channels()) {
            let mut p = features.clone();
            for part in name.split('.') {
                p = p / part;
            }
            blocks.push(Conv2d::new(
                &(p / "conv"),
                cin,
                cout,
                ConvSpec::new(3).padding(1).bias(true).torch_default(cin),
            ));
        }
        let last = *geometry.widths.last().unwrap_or(&w0);
        let fc = Linear::new(&(root / "fc"), last, num_classes, torch_default_uniform(last), None);
        FoldedDiracNet { geometry, stem, blocks, fc }
    }
}

impl Layer for FoldedDiracNet {
    fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Tensor {
        let stem = |x: &Tensor, pass: &mut Pass| self.stem.forward(x, pass);
        let block = |i: usize, x: &Tensor, pass: &mut Pass| self.blocks[i].forward(x, pass);
        self.geometry.forward(xs, stem, block, &self.fc, pass)
    }
}

/// Folds a trained DiracNet (convtrain's = the functional names) into the folded network's tensors
/// (diracnet.md §4): per block, s = γ/√(running_var + 1e-5), W_fold = s·Ŵ, b_fold = β_bn − running_mean·s;
/// the stem likewise with `bn`; `fc` unchanged; α, β, BN parameters and statistics dropped. Sorted by
/// name. An input error names the first tensor that is missing or has the wrong shape for a
/// `geometry` network on `in_channels` inputs with `num_classes` outputs.
pub fn fold(
    named: &[(String, Tensor)],
    geometry: &Geometry,
    in_channels: i64,
    num_classes: i64,
) -> Result<Vec<(String, Tensor)>> {
    let map: HashMap<&str, &Tensor> = named.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let get = |name: String, shape: &[i64]| -> Result<Tensor> {
        let t = map
            .get(name.as_str())
            .ok_or_else(|| input_err!("--materialize: the DiracNet weights have no '{name}'."))?;
        if t.size() != shape {
            return Err(input_err!(
                "--materialize: '{name}' has shape {:?}, but DiracNet-{}-{} needs {shape:?}.",
                t.size(),
                geometry.depth,
                geometry.width
            ));
        }
        Ok(t.detach().to_kind(Kind::Float))
    };
    let scale_shift = |bn: &str, c: i64| -> Result<(Tensor, Tensor)> {
        let s = get(format!("{bn}.weight"), &[c])? / (get(format!("{bn}.running_var"), &[c])? + BN_EPS).sqrt();
        let b = get(format!("{bn}.bias"), &[c])? - get(format!("{bn}.running_mean"), &[c])? * &s;
        Ok((s.reshape([-1, 1, 1, 1]), b))
    };
    let mut out = Vec::new();
    tch::no_grad(|| -> Result<()> {
        let k = geometry.stem().kernel;
        let w0 = geometry.widths[0];
        let (s, b) = scale_shift("bn", w0)?;
        out.push(("features.conv.weight".to_string(), get("conv".into(), &[w0, in_channels, k, k])? * s));
        out.push(("features.conv.bias".to_string(), b));
        for (name, (cin, cout)) in geometry.block_names().iter().zip(geometry.block_channels()) {
            let w = get(format!("{name}.conv"), &[cout, cin, 3, 3])?;
            let alpha = get(format!("{name}.alpha"), &[cout])?;
            let beta = get(format!("{name}.beta"), &[cout])?;
            let (s, b) = scale_shift(&format!("{name}.bn"), cout)?;
            out.push((format!("features.{name}.conv.weight"), dirac_kernel(&w, &alpha, &beta) * s));
            out.push((format!("features.{name}.conv.bias"), b));
        }
        let last = *geometry.widths.last().unwrap_or(&w0);
        out.push(("fc.weight".to_string(), get("fc.weight".into(), &[num_classes, last])?));
        out.push(("fc.bias".to_string(), get("fc.bias".into(), &[num_classes])?));
        Ok(())
    })?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
