//! The Convolutional Slice Generator and the convolutions whose kernels it generates
//! (associative.md §2): one [`SliceGenerator`] per network, shared by every [`GeneratedConv2d`].
//!
//! ```
//! use convtrain::models::associative::{GeneratedConv2d, GeneratorInit, SliceGenerator, SliceShape};
//! use convtrain::models::layers::ConvSpec;
//! use convtrain::models::pass::{Layer, Pass};
//! use tch::nn::{self, Init};
//! use tch::{Device, Kind, Tensor};
//!
//! # fn main() -> convtrain::Result<()> {
//! let vs = nn::VarStore::new(Device::Cpu);
//! let root = vs.root();
//! // One generator for the whole network: 72-d codes → 12×12×3×3 slices, stored once as `CSG.weight`.
//! let csg = SliceGenerator::new(&(&root / "CSG"), SliceShape::new(&[12, 12, 3, 3])?, 72, GeneratorInit::TorchDefault, false)?;
//! // Two 3×3 convolutions (16 → 32, stride 2, and 32 → 32) whose kernels it generates from their codes.
//! let codes = Init::Randn { mean: 0.0, stdev: 1.0 };
//! let conv1 = GeneratedConv2d::new(&(&root / "block"), "code1", &csg, 16, 32, ConvSpec::new(3).stride(2).padding(1), codes)?;
//! let conv2 = GeneratedConv2d::new(&(&root / "block"), "code2", &csg, 32, 32, ConvSpec::new(3).padding(1), codes)?;
//! let pass = &mut Pass::new(false); // an evaluation-mode forward pass, not traced
//! let y = conv2.forward(&conv1.forward(&Tensor::zeros([2, 16, 8, 8], (Kind::Float, Device::Cpu)), pass), pass);
//! assert_eq!(y.size(), [2, 32, 4, 4]);
//! // ⌈16/12⌉·⌈32/12⌉ = 6 and 3·3 = 9 slices of 72-d codes, plus the 1296×72 generator.
//! assert_eq!(vs.trainable_variables().iter().map(|t| t.numel()).sum::<usize>(), (6 + 9) * 72 + 1296 * 72);
//! # Ok(())
//! # }
//! ```
use crate::error::Result;
use crate::input_err;
use crate::models::kernel_cache::KernelCache;
use crate::models::layers::{kaiming_normal, path_name, torch_default_uniform, Conv2d, ConvSpec};
use crate::models::pass::{Layer, Pass};
use tch::nn::{self, Init};
use tch::Tensor;

/// `SLICE_SHAPE` = [S0, S1, k, k] (associative.md §2.1). Only square slices (S0 = S1) and square
/// kernels: the original's flat reshape (§2.4) allocates ⌈C_in/S0⌉·⌈C_out/S1⌉ slices but views them
/// as ⌈C_out/S0⌉·S0 × ⌈C_in/S1⌉·S1 rows and columns, which only counts the same elements when S0 = S1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceShape {
    /// S = S0 = S1: output and input channels per slice.
    pub channels: i64,
    /// k: the generated kernels are k×k.
    pub kernel: i64,
}

impl SliceShape {
    /// Parses `--slice S0,S1,k,k`; anything but four positive numbers with S0 = S1 and a square
    /// kernel is an input error naming the flag.
    pub fn new(dims: &[i64]) -> Result<SliceShape> {
        let &[s0, s1, kh, kw] = dims else {
            return Err(input_err!(
                "--slice: a slice shape is 4 numbers S0,S1,k,k (e.g. 12,12,3,3 or 16,16,1,1), got {} ({dims:?}).",
                dims.len()
            ));
        };
        if dims.iter().any(|&d| d < 1) {
            return Err(input_err!("--slice: every slice dimension must be a positive integer, got {dims:?}."));
        }
        if s0 != s1 {
            return Err(input_err!(
                "--slice {s0},{s1},{kh},{kw}: the slice must be square (S0 = S1). The original reshapes \
                 ⌈C_in/S0⌉·⌈C_out/S1⌉ generated slices into ⌈C_out/S0⌉·S0 × ⌈C_in/S1⌉·S1 kernel rows and \
                 columns, which only holds the same number of elements when S0 = S1 (associative.md §2.4)."
            ));
        }
        if kh != kw {
            return Err(input_err!(
                "--slice {s0},{s1},{kh},{kw}: the generated kernels are square (k×k), got {kh}×{kw}."
            ));
        }
        Ok(SliceShape { channels: s0, kernel: kh })
    }

    /// prod(SLICE_SHAPE): the generator's output size.
    pub fn numel(&self) -> i64 {
        self.channels * self.channels * self.kernel * self.kernel
    }

    /// `[S, S, k, k]`, as the flag writes it.
    pub fn dims(&self) -> [i64; 4] {
        [self.channels, self.channels, self.kernel, self.kernel]
    }

    /// Code vectors of a C_in → C_out convolution: ⌈C_in/S⌉·⌈C_out/S⌉ (§2.2; padded slices included, §6.14).
    pub fn num_slices(&self, in_channels: i64, out_channels: i64) -> i64 {
        div_ceil(in_channels, self.channels) * div_ceil(out_channels, self.channels)
    }
}

fn div_ceil(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

impl std::fmt::Display for SliceShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d] = self.dims();
        write!(f, "[{a},{b},{c},{d}]")
    }
}

/// How the generator weight starts (associative.md §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratorInit {
    /// `init.kaiming_normal(CSG.weight)`: N(0, 2/CODE_SIZE) — the CIFAR ResNet's init loop, which
    /// reaches the CSG because it is an `nn.Linear`.
    KaimingNormal,
    /// PyTorch's `nn.Linear` default U(±1/√CODE_SIZE) (DenseNet, ImageNet ResNets).
    TorchDefault,
    /// The `*_bcsg` files: `kaiming_normal_` then `sign(w)·0.5`, i.e. each entry ±0.5 with
    /// probability ½ (which they then freeze with `requires_grad_(False)`).
    Binary,
}

/// The network-wide Convolutional Slice Generator: a bias-free linear map CODE_SIZE → prod(SLICE_SHAPE)
/// (`torch.nn.Linear(CODE_SIZE, prod(SLICE_SHAPE), bias=False)`, §2.2), one variable `weight` of shape
/// [prod(SLICE_SHAPE), CODE_SIZE]. Clones share that variable, so it is stored and counted once.
#[derive(Debug)]
pub struct SliceGenerator {
    pub weight: Tensor,
    pub slice: SliceShape,
    pub code_size: i64,
}

impl SliceGenerator {
    /// Creates `weight` under `p` (the original's top-level `CSG`). A `frozen` generator is not
    /// trainable: no optimizer step or weight decay touches it and the trainable count leaves it
    /// out, but it is saved and restored with the model (a reused generator, §4.1; the binary one of
    /// the `*_bcsg` files is `GeneratorInit::Binary`, frozen).
    pub fn new(
        p: &nn::Path,
        slice: SliceShape,
        code_size: i64,
        init: GeneratorInit,
        frozen: bool,
    ) -> Result<SliceGenerator> {
        if code_size < 1 {
            return Err(input_err!("--code-size: the code vectors need at least one entry, got {code_size}."));
        }
        let dims = [slice.numel(), code_size];
        let mut weight = match init {
            GeneratorInit::KaimingNormal => nn::f_init(kaiming_normal(code_size), &dims, p.device(), p.kind())?,
            GeneratorInit::TorchDefault => nn::f_init(torch_default_uniform(code_size), &dims, p.device(), p.kind())?,
            GeneratorInit::Binary => nn::f_init(kaiming_normal(code_size), &dims, p.device(), p.kind())?.sign() * 0.5,
        };
        weight = p.add("weight", weight, !frozen);
        Ok(SliceGenerator { weight, slice, code_size })
    }

    /// The kernel of a C_in → C_out convolution from its codes (§2.4): `codes @ weightᵀ`, a flat
    /// row-major view as [⌈C_out/S⌉·S, ⌈C_in/S⌉·S, k, k], cropped to [C_out, C_in, k, k].
    pub fn kernel(&self, codes: &Tensor, in_channels: i64, out_channels: i64) -> Tensor {
        let s = self.slice.channels;
        let k = self.slice.kernel;
        codes
            .linear(&self.weight, None::<Tensor>)
            .view([div_ceil(out_channels, s) * s, div_ceil(in_channels, s) * s, k, k])
            .narrow(0, 0, out_channels)
            .narrow(1, 0, in_channels)
    }
}

impl Clone for SliceGenerator {
    fn clone(&self) -> Self {
        SliceGenerator { weight: self.weight.shallow_clone(), slice: self.slice, code_size: self.code_size }
    }
}

/// A convolution without bias whose k×k kernel the shared [`SliceGenerator`] assembles from the
/// layer's own code matrix on every forward pass with gradients (§2.4, §6.13); without gradients
/// (evaluation) once while neither the generator nor the codes change ([`KernelCache`]).
/// The convolution runs through the layer's grid (dense or checkered) and is traced under the codes'
/// name.
#[derive(Debug)]
pub struct GeneratedConv2d {
    /// [⌈C_in/S⌉·⌈C_out/S⌉, CODE_SIZE].
    pub codes: Tensor,
    pub generator: SliceGenerator,
    pub in_channels: i64,
    pub out_channels: i64,
    /// Stride, padding and grid of the convolution.
    pub spec: ConvSpec,
    /// The trace name: the codes' variable name.
    name: String,
    cache: KernelCache,
}

impl GeneratedConv2d {
    /// A C_in → C_out convolution with `spec`'s stride, padding and grid (no bias, no groups or
    /// dilation: the original's `F.conv2d(x, K, padding, stride)`), its codes the variable `code_name`
    /// under `p` (the authors' `code`, `code1`, `code2` of a block), initialised with `code_init`.
    pub fn new(
        p: &nn::Path,
        code_name: &str,
        generator: &SliceGenerator,
        in_channels: i64,
        out_channels: i64,
        spec: ConvSpec,
        code_init: Init,
    ) -> Result<GeneratedConv2d> {
        let slice = generator.slice;
        if spec.kernel != slice.kernel {
            return Err(input_err!(
                "--slice {slice}: the slices are {0}×{0} but '{1}.{code_name}' generates a {2}×{2} convolution's \
                 kernel; give a slice shape S,S,{2},{2}.",
                slice.kernel,
                path_name(p),
                spec.kernel
            ));
        }
        if spec.bias || spec.groups != 1 || spec.dilation != 1 {
            return Err(input_err!(
                "'{}.{code_name}': a generated convolution has no bias, groups or dilation (associative.md §2.4).",
                path_name(p)
            ));
        }
        let rows = slice.num_slices(in_channels, out_channels);
        let codes = p.f_var(code_name, &[rows, generator.code_size], code_init)?;
        let name = format!("{}.{code_name}", path_name(p));
        let cache = KernelCache::default();
        Ok(GeneratedConv2d { codes, generator: generator.clone(), in_channels, out_channels, spec, name, cache })
    }

    /// The current kernel, [C_out, C_in, k, k].
    pub fn kernel(&self) -> Tensor {
        self.generator.kernel(&self.codes, self.in_channels, self.out_channels)
    }
}

impl Layer for GeneratedConv2d {
    fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Tensor {
        let kernel = self.cache.kernel(&[&self.generator.weight, &self.codes], || self.kernel());
        self.spec.grid.conv2d(&self.name, xs, &kernel, None, &self.spec, pass)
    }
}

/// A convolution of a network that has a CSG and a baseline ("org") form: a plain [`Conv2d`] in the
/// baseline, a [`GeneratedConv2d`] in the CSG network.
#[derive(Debug)]
pub enum SwitchableConv {
    Plain(Conv2d),
    Generated(GeneratedConv2d),
}

impl SwitchableConv {
    /// `plain_name` (a `Conv2d` initialised with `plain_init`) when `generator` is `None`, otherwise
    /// the generated convolution with codes `code_name` (initialised with `code_init`), both under `p`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        p: &nn::Path,
        generator: Option<&SliceGenerator>,
        plain_name: &str,
        code_name: &str,
        in_channels: i64,
        out_channels: i64,
        spec: ConvSpec,
        plain_init: Init,
        code_init: Init,
    ) -> Result<SwitchableConv> {
        Ok(match generator {
            None => {
                SwitchableConv::Plain(Conv2d::new(&(p / plain_name), in_channels, out_channels, spec.init(plain_init)))
            }
            Some(g) => SwitchableConv::Generated(GeneratedConv2d::new(
                p,
                code_name,
                g,
                in_channels,
                out_channels,
                spec,
                code_init,
            )?),
        })
    }
}

impl Layer for SwitchableConv {
    fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Tensor {
        match self {
            SwitchableConv::Plain(c) => c.forward(xs, pass),
            SwitchableConv::Generated(c) => c.forward(xs, pass),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::pass::Pass;
    use tch::{Device, Kind};

    fn generator(root: &nn::Path, dims: &[i64], code: i64) -> SliceGenerator {
        SliceGenerator::new(&(root / "CSG"), SliceShape::new(dims).unwrap(), code, GeneratorInit::TorchDefault, false)
            .unwrap()
    }

    /// §2.4's worked shapes and the flat layout: slice s fills flat positions [s·P, (s+1)·P) of the
    /// padded kernel, then the crop.
    #[test]
    fn kernel_is_the_flat_view_of_the_generated_slices_cropped() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        for (dims, code, cin, cout, slices, padded) in [
            ([12, 12, 3, 3], 72, 16, 32, 6, [36, 24, 3, 3]),
            ([12, 12, 3, 3], 72, 192, 48, 64, [48, 192, 3, 3]),
            ([16, 16, 3, 3], 128, 64, 64, 16, [64, 64, 3, 3]),
            ([16, 16, 1, 1], 16, 24, 144, 18, [144, 32, 1, 1]),
        ] {
            let g = generator(&vs.root(), &dims, code);
            let conv = GeneratedConv2d::new(
                &(vs.root() / format!("c{cin}x{cout}")),
                "code",
                &g,
                cin,
                cout,
                ConvSpec::new(dims[2]).padding(dims[2] / 2),
                Init::Randn { mean: 0.0, stdev: 1.0 },
            )
            .unwrap();
            assert_eq!(conv.codes.size(), [slices, code]);
            let flat = conv.codes.matmul(&g.weight.tr()).flatten(0, -1);
            let want = flat.view(padded).narrow(0, 0, cout).narrow(1, 0, cin);
            let k = conv.kernel();
            assert_eq!(k.size(), [cout, cin, dims[2], dims[3]]);
            assert!(f64::try_from((&k - &want).abs().max()).unwrap() < 1e-5);
            // Element (o, i, a, b) of the padded kernel is flat position ((o·I' + i)·k + a)·k + b.
            let (o, i) = (cout - 1, cin - 1);
            let pos = ((o * padded[1] + i) * dims[2]) * dims[3];
            let direct = f64::try_from(flat.get(pos)).unwrap();
            let got = f64::try_from(k.get(o).get(i).flatten(0, -1).get(0)).unwrap();
            assert!((direct - got).abs() < 1e-5, "{dims:?} {cin}->{cout}");
            let y = conv.forward(&Tensor::ones([1, cin, 5, 5], (Kind::Float, Device::Cpu)), &mut Pass::new(false));
            assert_eq!(y.size(), [1, cout, 5, 5]);
        }
    }

    #[test]
    fn bad_slices_and_sizes_are_input_errors() {
        for (dims, needle) in [
            (&[12, 12, 3][..], "4 numbers"),
            (&[12, 16, 3, 3], "square (S0 = S1)"),
            (&[12, 12, 0, 0], "positive"),
            (&[12, 12, 3, 1], "3×1"),
        ] {
            let e = SliceShape::new(dims).unwrap_err().to_string();
            assert!(e.contains("--slice") && e.contains(needle), "{e}");
        }
        let vs = nn::VarStore::new(Device::Cpu);
        let s = SliceShape::new(&[12, 12, 3, 3]).unwrap();
        let e = SliceGenerator::new(&vs.root(), s, 0, GeneratorInit::TorchDefault, false).unwrap_err().to_string();
        assert!(e.contains("--code-size"), "{e}");
        let g = generator(&vs.root(), &[16, 16, 1, 1], 16);
        let e = GeneratedConv2d::new(&vs.root(), "code", &g, 16, 16, ConvSpec::new(3), Init::Const(0.0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("S,S,3,3"), "{e}");
    }

    #[test]
    fn generator_inits_follow_associative_md_2_3() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let s = SliceShape::new(&[12, 12, 3, 3]).unwrap();
        let std = |t: &Tensor| f64::try_from(t.std(true)).unwrap();
        let kaiming = SliceGenerator::new(&(vs.root() / "a"), s, 72, GeneratorInit::KaimingNormal, false).unwrap();
        assert!((std(&kaiming.weight) - (2.0f64 / 72.0).sqrt()).abs() < 0.005);
        let uniform = SliceGenerator::new(&(vs.root() / "b"), s, 72, GeneratorInit::TorchDefault, false).unwrap();
        assert!(f64::try_from(uniform.weight.abs().max()).unwrap() <= 1.0 / 72f64.sqrt());
        let binary = SliceGenerator::new(&(vs.root() / "c"), s, 72, GeneratorInit::Binary, true).unwrap();
        assert!(!binary.weight.requires_grad());
        assert!(binary.weight.abs().eq(0.5).all().try_into().unwrap_or(false));
        let plus = f64::try_from(binary.weight.gt(0.0).to_kind(Kind::Float).mean(Kind::Float)).unwrap();
        assert!((plus - 0.5).abs() < 0.01, "{plus}");
        // Only the two learned generators are trainable.
        assert_eq!(vs.trainable_variables().len(), 2);
        assert_eq!(vs.variables().len(), 3);
    }
}
