//! Checkered subsampling layers and samplers (checkered.md §2).
//!
//! A checkered tensor is 5-D, `(B, C, S, H, W)`: `S` submaps of one feature map. Every layer here takes
//! such a tensor and applies a 2-D convolution or pooling to each submap, or a kernel of depth `D ≥ 1`
//! that spans `D` consecutive submaps (no padding on the submap axis, so `S_out = S − D + 1`). Padding
//! is on H and W only and is always **zero** padding, for max-pooling too.
//!
//! A stride-2 layer keeps two of the four samples of every 2×2 window of its stride-1 output `Z`
//! (the input zero-padded by `p` on top/left and `p + 1` on bottom/right, §2.3). Sampler 0 keeps
//! `Z[2i, 2j]` ("top") and `Z[2i+1, 2j+1]` ("bottom"); sampler 1 keeps `Z[2i, 2j+1]` and `Z[2i+1, 2j]`.
//! The output has `2·S_out` submaps: the top samples of every input submap in order, then the bottom
//! samples (§2.4). Which sampler each submap gets comes from the layer's [`Sampling`] (naive by
//! default, which is what the paper's experiments used), which a network stores in its layers through
//! `layers::Grid::Checkered`.
//!
//! The fast path computes only the kept outputs: two strided operations per submap (its sampler's top
//! and bottom branch) instead of the original's four, with kernel-depth-1 layers run as 2-D operations
//! on the submap axis folded into the batch. [`reference`] is the original's straightforward
//! four-convolution definition, the oracle of the tests and the benchmark.
use super::options::Validate;
use crate::error::Result;
use crate::input_err;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use tch::{Kind, Tensor};

/// How each submap picks its sampler at a stride-2 layer (checkered.md §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sampler {
    /// Sampler 0 on every submap: submap k of a T-step stack sits at offset (k, k) of each 2^T block.
    #[default]
    Naive,
    /// The original `lattice_generator` table: a low-discrepancy n-rooks lattice. Needs a power-of-2
    /// submap count and at most 10 subsampling steps.
    Lattice,
    /// Each submap draws sampler 0 or 1 uniformly. Unlike the original (Python's unseeded `random`),
    /// inside a network the draws come from torch's global RNG, which training re-seeds before every
    /// mini-batch from (seed, epoch, batch): reproducible from `--seed` and exact across resume.
    Random,
}

impl Sampler {
    /// Parses `naive`, `lattice` or `random`.
    pub fn parse(name: &str) -> Result<Sampler> {
        match name {
            "naive" => Ok(Sampler::Naive),
            "lattice" => Ok(Sampler::Lattice),
            "random" => Ok(Sampler::Random),
            _ => Err(input_err!("--sampler: unknown sampler '{name}'. Known samplers: naive, lattice, random.")),
        }
    }
}

impl fmt::Display for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sampler::Naive => write!(f, "naive"),
            Sampler::Lattice => write!(f, "lattice"),
            Sampler::Random => write!(f, "random"),
        }
    }
}

/// The original `lattice_generator` (generate.py) for 1..=9 steps, as run lengths of alternating
/// 0s and 1s starting with 0; entry 9 (the 10th step) is 0,1,0,1,... of length 512.
const LATTICE_RUNS: [&[usize]; 9] = [
    &[1],
    &[2],
    &[1, 1, 1, 1],
    &[1, 2, 3, 2],
    &[2, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1, 1],
    &[3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 2],
    &[5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 4],
    &[10, 10, 10, 10, 10, 10, 9, 10, 10, 10, 10, 10, 9],
    &[20, 20, 20, 19, 20, 20, 19, 20, 20, 19, 20, 20, 19],
];

/// Most subsampling steps the lattice table covers.
pub const LATTICE_MAX_STEPS: u32 = 10;

/// The lattice sampler sequence for a stack of `submap_count` = 2^t submaps (t < 10).
pub fn lattice_sequence(submap_count: usize) -> Result<Vec<u8>> {
    if !submap_count.is_power_of_two() {
        return Err(input_err!(
            "the lattice sampler needs a power-of-2 submap count (one subsampling step doubles it), got {submap_count}."
        ));
    }
    let index = submap_count.trailing_zeros() as usize;
    if index >= LATTICE_MAX_STEPS as usize {
        return Err(input_err!(
            "the lattice sampler covers at most {LATTICE_MAX_STEPS} subsampling steps (512 input submaps), got {submap_count} submaps."
        ));
    }
    if index == 9 {
        return Ok((0..512).map(|i| (i % 2) as u8).collect());
    }
    let mut seq = Vec::with_capacity(submap_count);
    for (r, &len) in LATTICE_RUNS[index].iter().enumerate() {
        seq.extend(std::iter::repeat_n((r % 2) as u8, len));
    }
    Ok(seq)
}

/// The sampler (0 or 1) of each of `submap_count` submaps; `rng` is only used by [`Sampler::Random`].
pub fn sampler_sequence(sampler: Sampler, submap_count: usize, rng: &mut impl Rng) -> Result<Vec<u8>> {
    match sampler {
        Sampler::Naive => Ok(vec![0; submap_count]),
        Sampler::Lattice => lattice_sequence(submap_count),
        Sampler::Random => Ok((0..submap_count).map(|_| rng.gen_range(0..2u8)).collect()),
    }
}

/// Which code computes the checkered layers (the benchmark compares them on whole networks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Implementation {
    /// Only the kept outputs, kernel-depth-1 layers as one folded 2-D op.
    #[default]
    Fast,
    /// [`reference`]: the original's four shifted 3-D ops per stride-2 layer.
    Reference,
}

impl Implementation {
    /// Parses `fast` or `reference`.
    pub fn parse(name: &str) -> Result<Implementation> {
        match name {
            "fast" => Ok(Implementation::Fast),
            "reference" => Ok(Implementation::Reference),
            _ => Err(input_err!("--checkered-impl: unknown implementation '{name}'. Known: fast, reference.")),
        }
    }
}

/// How a checkered network's stride-2 layers choose and compute their samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sampling {
    pub sampler: Sampler,
    pub implementation: Implementation,
}

/// The checkered family's model options (checkered.md §2.4); `--checkered` itself is a model-wide
/// switch every convertible architecture honours.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct CheckeredOptions {
    /// Checkered sampler: naive (default, the papers' training), lattice, or random (seeded by --seed).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler: Option<String>,
    /// Checkered stride-2 layers: fast (only the kept outputs, default) or reference (the original's
    /// four convolutions per layer, for comparisons).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkered_impl: Option<String>,
}

impl CheckeredOptions {
    /// The sampling these options describe (naive, fast by default).
    pub fn sampling(&self) -> Result<Sampling> {
        Ok(Sampling {
            sampler: self.sampler.as_deref().map(Sampler::parse).transpose()?.unwrap_or_default(),
            implementation: self.checkered_impl.as_deref().map(Implementation::parse).transpose()?.unwrap_or_default(),
        })
    }
}

impl Validate for CheckeredOptions {
    fn validate(&self) -> Result<()> {
        self.sampling().map(|_| ())
    }
}

/// The next sampler sequence of `sampler` (`random`: from torch's global RNG).
///
/// # Panics
/// With the lattice sampler, when `submap_count` is not a power of 2 or exceeds 512 (see
/// [`lattice_sequence`]): a network whose geometry the lattice table does not cover.
fn next_sequence(sampler: Sampler, submap_count: usize) -> Vec<u8> {
    match sampler {
        Sampler::Random => {
            let draws = Tensor::randint(2, [submap_count as i64], (Kind::Int64, tch::Device::Cpu));
            Vec::<i64>::try_from(&draws).unwrap_or_default().into_iter().map(|v| v as u8).collect()
        }
        Sampler::Lattice => lattice_sequence(submap_count).unwrap_or_else(|e| panic!("checkered layer: {e}")),
        Sampler::Naive => vec![0; submap_count],
    }
}

/// The operation a checkered layer applies to each window.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// Convolution with a `(O, I/g, k, k)` (depth 1) or `(O, I/g, D, k, k)` weight. As in the original's
    /// `Conv3d`, the dilation applies to all three axes.
    Conv { weight: &'a Tensor, bias: Option<&'a Tensor>, dilation: i64, groups: i64 },
    /// Max over `(depth, kernel, kernel)` windows.
    MaxPool { kernel: i64, depth: i64 },
    /// Mean over `(depth, kernel, kernel)` windows (padding zeros count, as the original's explicit pad).
    AvgPool { kernel: i64, depth: i64 },
}

impl Op<'_> {
    /// The window's extent over (H, W) in input pixels, dilation included.
    fn extent(&self) -> (i64, i64) {
        match *self {
            Op::Conv { weight, dilation, .. } => {
                let z = weight.size();
                let n = z.len();
                (dilation * (z[n - 2] - 1) + 1, dilation * (z[n - 1] - 1) + 1)
            }
            Op::MaxPool { kernel, .. } | Op::AvgPool { kernel, .. } => (kernel, kernel),
        }
    }

    /// The input of the stride-2 branch whose windows start `(dy, dx)` pixels below and right of the
    /// top-left branch's (which is the op with its own padding `p`), to run with padding 0; `x` is 4-D
    /// or 5-D.
    ///
    /// The original pads its shifted copy by `p − d` before and `p + d` after (checkered.md §2.3 step
    /// 4). Only the zeros that some window reaches are added here: `p + d` after along an axis whose
    /// last window reaches the extra zero (odd sizes with 3×3/p1, 2×2 pools), fewer otherwise (one
    /// fewer on a shifted axis of even size with 3×3/p1 or 1×1/p0). The windows are the same and the
    /// input is smaller. In oneDNN (2 threads, batch 16,
    /// forward and backward, 31 interleaved pairs) the shifted branch of ResNet-18's 1×1 stride-2
    /// shortcut 64→128 at 32×32 took 7.5 ms against 12.4 ms; of its 3×3/p1 stride-2 layers, 3 % less.
    fn shifted_input(&self, x: &Tensor, p: i64, (dy, dx): (i64, i64)) -> Tensor {
        let n = x.dim();
        let (eh, ew) = self.extent();
        // Rows after the input that the last of the ⌊(L + 2p − e)/2⌋ + 1 windows reaches.
        let after = |len: i64, extent: i64, shift: i64| {
            let last_start = 2 * ((len + 2 * p - extent) / 2) + shift - p;
            (last_start + extent - len).max(0)
        };
        let (h, w) = (x.size()[n - 2], x.size()[n - 1]);
        x.constant_pad_nd([p - dx, after(w, ew, dx), p - dy, after(h, eh, dy)])
    }

    /// Kernel extent across submaps.
    pub fn depth(&self) -> i64 {
        match self {
            Op::Conv { weight, .. } if weight.dim() == 5 => weight.size()[2],
            Op::Conv { .. } => 1,
            Op::MaxPool { depth, .. } | Op::AvgPool { depth, .. } => *depth,
        }
    }

    /// The 3-D version over `(B, C, S, H, W)`: kernel `(D, k, k)`, stride `(1, s, s)`, symmetric zero
    /// `padding` on H and W only.
    fn apply3d(&self, x: &Tensor, stride: i64, padding: i64) -> Tensor {
        match *self {
            Op::Conv { weight, bias, dilation, groups } => {
                let w = if weight.dim() == 4 { weight.unsqueeze(2) } else { weight.shallow_clone() };
                x.conv3d(&w, bias, [1, stride, stride], [0, padding, padding], [dilation; 3], groups)
            }
            Op::MaxPool { kernel, depth } => {
                pad_hw(x, padding).max_pool3d([depth, kernel, kernel], [1, stride, stride], [0, 0, 0], [1, 1, 1], false)
            }
            Op::AvgPool { kernel, depth } => pad_hw(x, padding).avg_pool3d(
                [depth, kernel, kernel],
                [1, stride, stride],
                [0, 0, 0],
                false,
                true,
                None::<i64>,
            ),
        }
    }

    /// The 2-D version of a depth-1 op over `(N, C, H, W)` with symmetric `padding`, zero for pools too.
    fn apply2d(&self, x: &Tensor, stride: i64, padding: i64) -> Tensor {
        match *self {
            Op::Conv { weight, bias, dilation, groups } => {
                let w = if weight.dim() == 5 { weight.squeeze_dim(2) } else { weight.shallow_clone() };
                x.conv2d(&w, bias, [stride, stride], [padding, padding], [dilation, dilation], groups)
            }
            Op::MaxPool { kernel, .. } => {
                let x = pad_hw(x, padding);
                x.max_pool2d([kernel, kernel], [stride, stride], [0, 0], [1, 1], false)
            }
            Op::AvgPool { kernel, .. } => {
                x.avg_pool2d([kernel, kernel], [stride, stride], [padding, padding], false, true, None::<i64>)
            }
        }
    }
}

/// Zero-pads the last two axes by `p` on every side (the original's explicit `F.pad`, zeros for
/// pools too).
fn pad_hw(x: &Tensor, p: i64) -> Tensor {
    if p == 0 {
        return x.shallow_clone();
    }
    x.constant_pad_nd([p, p, p, p])
}

/// Row/column shifts of the top and bottom samples of samplers 0 and 1.
const TOP: [(i64, i64); 2] = [(0, 0), (0, 1)];
const BOTTOM: [(i64, i64); 2] = [(1, 1), (1, 0)];

fn check_input(x: &Tensor, stride: i64, depth: i64) {
    assert_eq!(x.dim(), 5, "checkered layer: expected a (B, C, S, H, W) tensor, got shape {:?}", x.size());
    assert!(stride == 1 || stride == 2, "checkered layer: stride must be 1 or 2, got {stride}");
    assert!(
        depth >= 1 && x.size()[2] >= depth,
        "checkered layer: kernel depth {depth} needs at least that many submaps, got shape {:?}",
        x.size()
    );
}

fn index_tensor(index: &[i64], like: &Tensor) -> Tensor {
    Tensor::from_slice(index).to_device(like.device())
}

/// Applies `op` to a `(B, C, S, H, W)` tensor with the given stride (1 or 2) and H/W zero padding,
/// using `samplers` (one 0/1 entry per output-submap position, `S − D + 1` of them) at stride 2.
///
/// # Panics
/// If `x` is not 5-D, the stride is not 1 or 2, `S` is smaller than the kernel depth, or `samplers`
/// has the wrong length at stride 2.
pub fn forward_with(op: &Op, x: &Tensor, stride: i64, padding: i64, samplers: &[u8]) -> Tensor {
    let depth = op.depth();
    check_input(x, stride, depth);
    let s_out = x.size()[2] - depth + 1;
    if stride == 2 {
        assert_eq!(samplers.len() as i64, s_out, "checkered layer: one sampler per output submap position");
    }
    if depth == 1 {
        forward_folded(op, x, stride, padding, samplers)
    } else {
        forward_3d(op, x, stride, padding, samplers)
    }
}

/// Applies `op` with the sampler and implementation of `sampling`.
pub fn forward(op: &Op, x: &Tensor, stride: i64, padding: i64, sampling: Sampling) -> Tensor {
    check_input(x, stride, op.depth());
    let samplers =
        if stride == 2 { next_sequence(sampling.sampler, (x.size()[2] - op.depth() + 1) as usize) } else { Vec::new() };
    match sampling.implementation {
        Implementation::Fast => forward_with(op, x, stride, padding, &samplers),
        Implementation::Reference => reference::forward_with(op, x, stride, padding, &samplers),
    }
}

/// Depth 1: the submap axis is folded into the batch, `(B, S, C, H, W)` → `(B·S, C, H, W)`, and plain
/// 2-D ops run. At stride 2 each submap goes through two strided ops, its sampler's top and bottom
/// branch (the top-left one with the op's own padding, the others on a shifted zero-padded copy,
/// [`Op::shifted_input`]);
/// submaps are grouped by sampler so that every op runs once per group.
fn forward_folded(op: &Op, x: &Tensor, stride: i64, padding: i64, samplers: &[u8]) -> Tensor {
    let b = x.size()[0];
    let fold = |t: &Tensor| {
        let z = t.size();
        t.transpose(1, 2).reshape([z[0] * z[2], z[1], z[3], z[4]])
    };
    // (B·S, O, h, w) → (B, S, O, h, w): submap-major.
    let unfold = |y: &Tensor| {
        let z = y.size();
        y.view([b, z[0] / b, z[1], z[2], z[3]])
    };
    if stride == 1 {
        return unfold(&op.apply2d(&fold(x), 1, padding)).transpose(1, 2);
    }
    let branch = |x4: &Tensor, (dy, dx): (i64, i64)| {
        let y = if (dy, dx) == (0, 0) {
            op.apply2d(x4, 2, padding)
        } else {
            op.apply2d(&op.shifted_input(x4, padding, (dy, dx)), 2, 0)
        };
        unfold(&y)
    };
    let y = if samplers.iter().all(|&k| k == 0) {
        let x4 = fold(x);
        Tensor::cat(&[branch(&x4, TOP[0]), branch(&x4, BOTTOM[0])], 1)
    } else {
        let mut order: Vec<i64> = Vec::new();
        let mut tops = Vec::new();
        let mut bottoms = Vec::new();
        for k in 0..2u8 {
            let group: Vec<i64> = (0..samplers.len()).filter(|&i| samplers[i] == k).map(|i| i as i64).collect();
            if group.is_empty() {
                continue;
            }
            let xk = fold(&x.index_select(2, &index_tensor(&group, x)));
            tops.push(branch(&xk, TOP[k as usize]));
            bottoms.push(branch(&xk, BOTTOM[k as usize]));
            order.extend(group);
        }
        // Position of submap i in the grouped order.
        let mut inverse = vec![0i64; order.len()];
        for (j, &i) in order.iter().enumerate() {
            inverse[i as usize] = j as i64;
        }
        let inverse = index_tensor(&inverse, x);
        Tensor::cat(
            &[Tensor::cat(&tops, 1).index_select(1, &inverse), Tensor::cat(&bottoms, 1).index_select(1, &inverse)],
            1,
        )
    };
    y.transpose(1, 2)
}

/// Depth ≥ 2: 3-D ops over the unfolded tensor; at stride 2 each sampler's two branches run once on
/// all submaps (only the branches some submap uses: the kernel windows overlap across submaps).
fn forward_3d(op: &Op, x: &Tensor, stride: i64, padding: i64, samplers: &[u8]) -> Tensor {
    if stride == 1 {
        return op.apply3d(x, 1, padding);
    }
    let branch = |(dy, dx): (i64, i64)| {
        if (dy, dx) == (0, 0) {
            op.apply3d(x, 2, padding)
        } else {
            op.apply3d(&op.shifted_input(x, padding, (dy, dx)), 2, 0)
        }
    };
    if samplers.iter().all(|&k| k == 0) {
        return Tensor::cat(&[branch(TOP[0]), branch(BOTTOM[0])], 2);
    }
    let s_out = samplers.len();
    let all = Tensor::cat(&[branch(TOP[0]), branch(BOTTOM[0]), branch(TOP[1]), branch(BOTTOM[1])], 2);
    let index: Vec<i64> = (0..s_out)
        .map(|i| (i + 2 * s_out * samplers[i] as usize) as i64)
        .chain((0..s_out).map(|i| (s_out + i + 2 * s_out * samplers[i] as usize) as i64))
        .collect();
    all.index_select(2, &index_tensor(&index, x))
}

/// The geometry of a checkered convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub stride: i64,
    pub padding: i64,
    pub dilation: i64,
    pub groups: i64,
}

/// Checkered convolution of a 5-D input with a 4-D (depth 1) or 5-D weight.
pub fn conv(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, g: ConvGeometry, sampling: Sampling) -> Tensor {
    let op = Op::Conv { weight, bias, dilation: g.dilation, groups: g.groups };
    forward(&op, x, g.stride, g.padding, sampling)
}

/// Checkered max-pooling (zero padding, not −∞).
pub fn max_pool(x: &Tensor, kernel: i64, depth: i64, stride: i64, padding: i64, sampling: Sampling) -> Tensor {
    forward(&Op::MaxPool { kernel, depth }, x, stride, padding, sampling)
}

/// Checkered average pooling (padding zeros are counted).
pub fn avg_pool(x: &Tensor, kernel: i64, depth: i64, stride: i64, padding: i64, sampling: Sampling) -> Tensor {
    forward(&Op::AvgPool { kernel, depth }, x, stride, padding, sampling)
}

/// The original's definition, computed the way `checkered_forward` does (checkered.md §2.3): explicit
/// zero padding, then for stride 2 the four 3-D ops on the shifted copies `y_ul`, `y_dr`, `y_ur`,
/// `y_dl`, of which each submap keeps its sampler's pair; results stacked tops first. For depth D > 1
/// at stride 2 the sampler sequence has S − D + 1 entries (the original indexes past the end there).
pub mod reference {
    use super::{Op, Tensor};

    fn shift(x: &Tensor, dy: i64, dx: i64) -> Tensor {
        let h = x.size()[3];
        let w = x.size()[4];
        x.narrow(3, dy, h - dy).narrow(4, dx, w - dx).constant_pad_nd([0, dx, 0, dy])
    }

    /// The reference of [`super::forward_with`].
    pub fn forward_with(op: &Op, x: &Tensor, stride: i64, padding: i64, samplers: &[u8]) -> Tensor {
        let x = if padding > 0 { x.constant_pad_nd([padding, padding, padding, padding]) } else { x.shallow_clone() };
        if stride == 1 {
            return op.apply3d(&x, 1, 0);
        }
        let y_ul = op.apply3d(&x, 2, 0);
        let y_dr = op.apply3d(&shift(&x, 1, 1), 2, 0);
        let y_ur = op.apply3d(&shift(&x, 0, 1), 2, 0);
        let y_dl = op.apply3d(&shift(&x, 1, 0), 2, 0);
        let mut tops = Vec::new();
        let mut bottoms = Vec::new();
        for (i, &sampler) in samplers.iter().enumerate() {
            let i = i as i64;
            if sampler == 0 {
                tops.push(y_ul.select(2, i));
                bottoms.push(y_dr.select(2, i));
            } else {
                tops.push(y_ur.select(2, i));
                bottoms.push(y_dl.select(2, i));
            }
        }
        tops.extend(bottoms);
        Tensor::stack(&tops, 2)
    }
}

/// Averages the submaps of a 5-D tensor (the original's `torch.mean(x, 2)` exit).
pub fn submap_mean(xs: &Tensor) -> Tensor {
    xs.mean_dim([2i64].as_slice(), false, None::<Kind>)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    const GEOMETRY_S2_P1: ConvGeometry = ConvGeometry { stride: 2, padding: 1, dilation: 1, groups: 1 };

    fn randn(shape: &[i64]) -> Tensor {
        Tensor::randn(shape, (Kind::Double, Device::Cpu))
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.size(), b.size());
        f64::try_from((a - b).abs().max()).unwrap()
    }

    /// Makes a closure's signature higher-ranked, so that the op may borrow the parameters.
    fn op_fn<F: for<'a> Fn(&'a [Tensor]) -> Op<'a>>(f: F) -> F {
        f
    }

    /// Output and gradients (w.r.t. the input and the op's parameters) of fast vs reference.
    fn check(
        op_of: &dyn for<'a> Fn(&'a [Tensor]) -> Op<'a>,
        params: &[Tensor],
        x_shape: &[i64],
        stride: i64,
        padding: i64,
        seq: &[u8],
    ) {
        let x = randn(x_shape).set_requires_grad(true);
        let params: Vec<Tensor> = params.iter().map(|p| p.set_requires_grad(true)).collect();
        let op = op_of(&params);
        let y_fast = forward_with(&op, &x, stride, padding, seq);
        let y_ref = reference::forward_with(&op, &x, stride, padding, seq);
        assert!(max_diff(&y_fast, &y_ref) <= 1e-6, "outputs differ by {}", max_diff(&y_fast, &y_ref));
        let r = randn(&y_ref.size());
        let mut inputs = vec![x.shallow_clone()];
        inputs.extend(params.iter().map(|p| p.shallow_clone()));
        let gf = Tensor::run_backward(&[(y_fast * &r).sum(Kind::Double)], &inputs, false, false);
        let gr = Tensor::run_backward(&[(y_ref * &r).sum(Kind::Double)], &inputs, false, false);
        for (a, b) in gf.iter().zip(gr.iter()) {
            assert!(max_diff(a, b) <= 1e-6, "gradients differ by {}", max_diff(a, b));
        }
    }

    fn conv_op(p: &[Tensor]) -> Op<'_> {
        Op::Conv { weight: &p[0], bias: p.get(1), dilation: 1, groups: 1 }
    }

    #[test]
    fn checkered_conv_matches_the_four_conv_reference() {
        tch::manual_seed(1);
        let alt = [0u8, 1, 1, 0];
        // (input shape, weight shape, stride, padding, samplers)
        type ConvCase<'a> = (&'a [i64], &'a [i64], i64, i64, &'a [u8]);
        let cases: &[ConvCase] = &[
            (&[2, 3, 1, 8, 8], &[4, 3, 3, 3], 2, 1, &[0]),
            (&[2, 3, 1, 7, 7], &[4, 3, 3, 3], 2, 1, &[0]),
            (&[2, 3, 2, 7, 9], &[4, 3, 3, 3], 2, 1, &[1, 0]),
            (&[2, 3, 4, 8, 8], &[5, 3, 1, 1], 2, 0, &alt),
            (&[1, 3, 2, 7, 7], &[5, 3, 1, 1], 2, 0, &[0, 0]),
            (&[2, 3, 2, 7, 7], &[4, 3, 3, 3], 1, 1, &[]),
            (&[2, 3, 3, 6, 6], &[4, 3, 2, 3, 3], 1, 1, &[]),
            (&[2, 3, 3, 7, 7], &[4, 3, 2, 3, 3], 2, 1, &[0, 0]),
            (&[2, 3, 3, 7, 7], &[4, 3, 2, 3, 3], 2, 1, &[1, 0]),
            (&[1, 2, 2, 9, 9], &[3, 2, 5, 5], 2, 2, &[1, 1]),
            // One axis whose last shifted window reaches the extra zero and one whose does not.
            (&[2, 3, 2, 8, 7], &[4, 3, 3, 3], 2, 1, &[0, 1]),
            (&[2, 3, 2, 7, 8], &[4, 3, 3, 3], 2, 1, &[1, 0]),
            (&[2, 3, 2, 6, 9], &[4, 3, 1, 1], 2, 0, &[1, 1]),
            (&[2, 3, 2, 10, 6], &[4, 3, 2, 2], 2, 0, &[0, 1]),
        ];
        for &(xs, ws, stride, padding, seq) in cases {
            check(&conv_op, &[randn(ws), randn(&[ws[0]])], xs, stride, padding, seq);
            check(&conv_op, &[randn(ws)], xs, stride, padding, seq);
        }
        // Dilation 2 and two groups.
        let dil = op_fn(|p| Op::Conv { weight: &p[0], bias: None, dilation: 2, groups: 2 });
        check(&dil, &[randn(&[4, 2, 3, 3])], &[2, 4, 2, 9, 9], 2, 2, &[0, 1]);
    }

    #[test]
    fn checkered_pools_match_the_reference() {
        tch::manual_seed(2);
        for (kernel, depth, stride, padding, xs, seq) in [
            (2, 1, 2, 0, [2, 3, 1, 8, 8], vec![0u8]),
            (2, 1, 2, 0, [2, 3, 2, 7, 7], vec![0, 1]),
            (3, 1, 2, 1, [2, 3, 2, 7, 7], vec![1, 0]),
            (3, 1, 1, 1, [2, 3, 2, 6, 6], vec![]),
            (2, 2, 2, 0, [2, 3, 3, 8, 8], vec![0, 1]),
            (3, 2, 1, 1, [2, 3, 3, 5, 5], vec![]),
        ] {
            check(&op_fn(|_| Op::MaxPool { kernel, depth }), &[], &xs, stride, padding, &seq);
            check(&op_fn(|_| Op::AvgPool { kernel, depth }), &[], &xs, stride, padding, &seq);
        }
    }

    #[test]
    fn avg_pool_of_ones_has_the_zero_in_the_last_bottom_window() {
        let x = Tensor::ones([1, 1, 1, 4, 4], (Kind::Float, Device::Cpu));
        let y = avg_pool(&x, 2, 1, 2, 0, Sampling::default());
        assert_eq!(y.size(), vec![1, 1, 2, 2, 2]);
        let top: Vec<f32> = Vec::try_from(y.select(2, 0).flatten(0, -1)).unwrap();
        let bottom: Vec<f32> = Vec::try_from(y.select(2, 1).flatten(0, -1)).unwrap();
        assert_eq!(top, vec![1.0, 1.0, 1.0, 1.0]);
        assert_eq!(bottom, vec![1.0, 0.5, 0.5, 0.25]);
    }

    #[test]
    fn max_pool_pads_with_zero_not_minus_infinity() {
        let x = -Tensor::ones([1, 1, 1, 4, 4], (Kind::Float, Device::Cpu));
        let y = max_pool(&x, 3, 1, 1, 1, Sampling::default());
        assert_eq!(f64::try_from(y.max()).unwrap(), 0.0);
        assert_eq!(f64::try_from(y.select(4, 1).select(3, 1).sum(Kind::Float)).unwrap(), -1.0);
    }

    #[test]
    fn top_submap_is_the_ordinary_strided_conv_and_order_is_tops_then_bottoms() {
        tch::manual_seed(3);
        let x = Tensor::randn([2, 3, 2, 8, 8], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([4, 3, 3, 3], (Kind::Float, Device::Cpu));
        let y = conv(&x, &w, None, GEOMETRY_S2_P1, Sampling::default());
        assert_eq!(y.size(), vec![2, 4, 4, 4, 4]);
        for i in 0..2 {
            let plain = x.select(2, i).conv2d(&w, None::<Tensor>, [2, 2], [1, 1], [1, 1], 1);
            assert!(f64::try_from((y.select(2, i) - plain).abs().max()).unwrap() < 1e-5);
        }
        // Bottom of submap i is the stride-1 conv (padded 1/2) at odd positions.
        let z = x.constant_pad_nd([1, 2, 1, 2]).select(2, 1).conv2d(&w, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1);
        let odd = z.slice(2, 1, 9, 2).slice(3, 1, 9, 2);
        assert!(f64::try_from((y.select(2, 3) - odd).abs().max()).unwrap() < 1e-5);
    }

    #[test]
    fn lattice_table_gives_the_documented_sequences_and_offsets() {
        assert_eq!(lattice_sequence(1).unwrap(), vec![0]);
        assert_eq!(lattice_sequence(4).unwrap(), vec![0, 1, 0, 1]);
        assert_eq!(lattice_sequence(8).unwrap(), vec![0, 1, 1, 0, 0, 0, 1, 1]);
        assert_eq!(lattice_sequence(16).unwrap(), vec![0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0]);
        for t in 0..10 {
            assert_eq!(lattice_sequence(1 << t).unwrap().len(), 1 << t);
        }
        assert!(lattice_sequence(3).is_err());
        assert!(lattice_sequence(1024).is_err());
        // Offsets (r_k, c_k) of submap k after T steps: r_k = k, c_k = g_T·k mod 2^T (§2.4).
        let g = [1usize, 1, 5, 13, 13, 13, 13, 13, 13];
        for t in 1..=9usize {
            let mut offsets = vec![(0usize, 0usize)];
            for step in 0..t {
                let seq = lattice_sequence(1 << step).unwrap();
                let scale = 1 << step;
                let tops = offsets.iter().zip(&seq).map(|(&(r, c), &k)| if k == 0 { (r, c) } else { (r, c + scale) });
                let bottoms =
                    offsets
                        .iter()
                        .zip(&seq)
                        .map(|(&(r, c), &k)| if k == 0 { (r + scale, c + scale) } else { (r + scale, c) });
                offsets = tops.chain(bottoms).collect::<Vec<_>>();
            }
            for (k, &(r, c)) in offsets.iter().enumerate() {
                assert_eq!((r, c), (k, g[t - 1] * k % (1 << t)), "T={t} k={k}");
            }
        }
    }

    #[test]
    fn samplers_follow_the_layer_setting() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        assert_eq!(sampler_sequence(Sampler::Naive, 4, &mut rng).unwrap(), vec![0; 4]);
        assert_eq!(Sampler::parse("random").unwrap(), Sampler::Random);
        assert!(Sampler::parse("diagonal").is_err());
        // Random draws come from torch's global RNG, which parallel unit tests share, so only their
        // shape is checked here; tests/checkered_cli.rs shows a random-sampler run resumes exactly.
        let (a, b) = (next_sequence(Sampler::Random, 64), next_sequence(Sampler::Random, 64));
        assert_ne!(a, b);
        assert!(a.contains(&0) && a.contains(&1));
        assert_eq!(Sampling::default().sampler, Sampler::Naive);
        // A layer under the lattice sampler equals the reference with the lattice sequence.
        tch::manual_seed(4);
        let x = Tensor::randn([1, 2, 4, 6, 6], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([3, 2, 3, 3], (Kind::Float, Device::Cpu));
        let lattice = Sampling { sampler: Sampler::Lattice, ..Sampling::default() };
        let y = conv(&x, &w, None, GEOMETRY_S2_P1, lattice);
        let op = Op::Conv { weight: &w, bias: None, dilation: 1, groups: 1 };
        let r = reference::forward_with(&op, &x, 2, 1, &[0, 1, 0, 1]);
        assert!(f64::try_from((y - r).abs().max()).unwrap() < 1e-5);
        let reference = Sampling { implementation: Implementation::Reference, ..Sampling::default() };
        let yr = conv(&x, &w, None, GEOMETRY_S2_P1, reference);
        assert!(f64::try_from((yr - reference::forward_with(&op, &x, 2, 1, &[0; 4])).abs().max()).unwrap() == 0.0);
    }
}
