//! The Dirac-parameterised convolution of DiracNets v2 (diracnet.md §2): its kernel is
//! Ŵ = diag(α)·δ + diag(β)·normalize(W), recomputed on every forward pass, so gradients reach W, α and β.
//!
//! - normalize(W) divides each output filter W[o] (in × k^d values jointly) by max(‖W[o]‖₂, 1e-12),
//!   `F.normalize(W.view(out, -1))` (§2.2) — not each 2-D plane, whatever the README says.
//! - δ is `torch.nn.init.dirac_` of the weight shape: 1 at `[d, d, k/2, ...]` for d < min(in, out), 0
//!   elsewhere (§2.1), so with α = 1, β = 0 and padding `dilation·(k/2)` the layer passes its first
//!   min(in, out) input channels through unchanged; extra output channels have no identity path (α_o
//!   of those channels still exists and is counted, but its gradient is always 0).
//! - α and β hold one value per output channel, initialised to 1 and 0.1 (§2.3); they are the 1-D
//!   parameters a DiracNet recipe excludes from weight decay (`no_decay_1d`, §5.3).
//! - Stride 1 and odd kernels only, as `diracconv.py` (§2.6, §7 pitfall 13): an even kernel puts the 1
//!   off-centre and a stride breaks the identity, so both are refused.
//!
//! # Example
//!
//! A 2-D Dirac convolution set to the identity, then a 1-D one with a bias. The geometry is a
//! [`ConvSpec`] (kernel, padding, dilation, bias, init of W; stride 1 and groups 1 only):
//!
//! ```
//! use convtrain::models::diracnet::DiracConv;
//! use convtrain::models::layers::ConvSpec;
//! use convtrain::models::pass::{Layer, Pass};
//! use tch::nn;
//! use tch::{Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let root = vs.root();
//! let conv = DiracConv::new(&(&root / "conv"), 2, 8, 8, ConvSpec::new(3).padding(1)).unwrap();
//! // Variables `conv.weight` (8×8×3×3), `conv.alpha` and `conv.beta` (8 each), as diracconv.py names them.
//! assert_eq!(vs.trainable_variables().iter().map(|t| t.numel()).sum::<usize>(), 8 * 8 * 9 + 16);
//! tch::no_grad(|| {
//!     let _ = conv.alpha.shallow_clone().fill_(1.0);
//!     let _ = conv.beta.shallow_clone().fill_(0.0);
//! });
//! let pass = &mut Pass::new(false); // an evaluation-mode forward pass, not traced
//! let x = Tensor::randn([2, 8, 5, 5], (Kind::Float, Device::Cpu));
//! assert!(conv.forward(&x, pass).equal(&x));
//!
//! let line = DiracConv::new(&(&root / "line"), 1, 4, 6, ConvSpec::new(5).padding(2).bias(true)).unwrap();
//! assert_eq!(line.forward(&Tensor::randn([3, 4, 10], (Kind::Float, Device::Cpu)), pass).size(), [3, 6, 10]);
//! // Stride 2 (or an even kernel) is refused with an input error.
//! assert!(DiracConv::new(&(&root / "bad"), 2, 4, 4, ConvSpec::new(3).stride(2)).is_err());
//! ```
use crate::error::Result;
use crate::input_err;
use crate::models::layers::{conv_macs, kaiming_normal, path_name, torch_default_uniform, ConvSpec};
use crate::models::pass::{Layer, Pass};
use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};

/// The eps of `F.normalize` (diracnet.md §2.2).
pub const NORMALIZE_EPS: f64 = 1e-12;

/// What the variables of a [`DiracConv`] are called under its path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiracNames {
    pub weight: &'static str,
    pub alpha: &'static str,
    pub beta: &'static str,
}

impl DiracNames {
    /// `diracconv.py`'s modules: `weight`, `alpha`, `beta` (and `bias`).
    pub const MODULE: DiracNames = DiracNames { weight: "weight", alpha: "alpha", beta: "beta" };
    /// The functional DiracNet of `diracnet.py`: the weight of block `groupG.blockB` is `groupG.blockB.conv`
    /// beside `groupG.blockB.alpha` and `groupG.blockB.beta` (§3).
    pub const FUNCTIONAL: DiracNames = DiracNames { weight: "conv", alpha: "alpha", beta: "beta" };
}

/// A 1-D, 2-D or 3-D Dirac-parameterised convolution (see the module documentation).
#[derive(Debug)]
pub struct DiracConv {
    /// W, (out, in, k, ...): a trainable variable.
    pub weight: Tensor,
    /// α, (out,): a trainable variable, initialised to 1.
    pub alpha: Tensor,
    /// β, (out,): a trainable variable, initialised to 0.1.
    pub beta: Tensor,
    pub bias: Option<Tensor>,
    /// Kernel (the same along every spatial axis), padding, dilation and, for a 2-D layer, the grid.
    pub spec: ConvSpec,
    /// Spatial dimensions: 1, 2 or 3.
    pub dims: usize,
    name: String,
}

impl DiracConv {
    /// A `dims`-D Dirac convolution under `p` with diracconv.py's variable names ([`DiracNames::MODULE`]).
    pub fn new(p: &nn::Path, dims: usize, in_channels: i64, out_channels: i64, spec: ConvSpec) -> Result<Self> {
        Self::with_names(p, DiracNames::MODULE, dims, in_channels, out_channels, spec)
    }

    /// [`DiracConv::new`] with the variables named `names` under `p`. W is initialised with `spec.init`
    /// (`None`: Kaiming-normal with fan_in = in·k^dims, HEAD's `kaiming_normal_`, §3.4 — the scale of W
    /// does not change the forward pass, only the effective step size, §2.4), the bias (diracconv.py
    /// defaults to one; the DiracNet training code has none) with `spec.bias_init` (`None`: PyTorch's
    /// U(±1/√fan_in)). Input errors for a kernel that is not odd and positive, a stride other than 1,
    /// groups other than 1, `dims` outside 1..=3, channels or dilation below 1, or negative padding.
    pub fn with_names(
        p: &nn::Path,
        names: DiracNames,
        dims: usize,
        in_channels: i64,
        out_channels: i64,
        spec: ConvSpec,
    ) -> Result<Self> {
        let what = format!("Dirac convolution '{}'", path_name(p));
        if !(1..=3).contains(&dims) {
            return Err(input_err!("{what}: {dims} spatial dimensions; DiracConv is 1-D, 2-D or 3-D."));
        }
        if spec.kernel < 1 || spec.kernel % 2 == 0 {
            return Err(input_err!(
                "{what}: kernel size {} is not odd; the Dirac delta sits at index k/2, which is the centre only for odd kernels (diracnet.md §7 pitfall 13).",
                spec.kernel
            ));
        }
        if spec.stride != 1 {
            return Err(input_err!(
                "{what}: stride {} is not supported; a Dirac convolution has stride 1 (diracconv.py), so that δ is the identity. Downsample with a pooling layer.",
                spec.stride
            ));
        }
        if spec.groups != 1 {
            return Err(input_err!(
                "{what}: groups {} is not supported; diracconv.py's layers have groups 1.",
                spec.groups
            ));
        }
        if in_channels < 1 || out_channels < 1 || spec.dilation < 1 || spec.padding < 0 {
            return Err(input_err!(
                "{what}: {in_channels} → {out_channels} channels, dilation {}, padding {}: channels and dilation must be at least 1, padding at least 0.",
                spec.dilation,
                spec.padding
            ));
        }
        let mut shape = vec![out_channels, in_channels];
        shape.extend(std::iter::repeat_n(spec.kernel, dims));
        let fan_in = in_channels * spec.kernel.pow(dims as u32);
        let weight = p.var(names.weight, &shape, spec.init.unwrap_or_else(|| kaiming_normal(fan_in)));
        let alpha = p.var(names.alpha, &[out_channels], Init::Const(1.0));
        let beta = p.var(names.beta, &[out_channels], Init::Const(0.1));
        let bias_init = spec.bias_init.unwrap_or_else(|| torch_default_uniform(fan_in));
        let bias = spec.bias.then(|| p.var("bias", &[out_channels], bias_init));
        Ok(DiracConv { weight, alpha, beta, bias, spec, dims, name: path_name(p) })
    }

    /// The kernel Ŵ = diag(β)·normalize(W) + diag(α)·δ actually convolved (diracnet.md §2.4).
    pub fn kernel(&self) -> Tensor {
        dirac_kernel(&self.weight, &self.alpha, &self.beta)
    }

    /// The name of the layer's path (as it appears in traces).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Layer for DiracConv {
    fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Tensor {
        let w = self.kernel();
        let s = &self.spec;
        match self.dims {
            2 => s.grid.conv2d(&self.name, xs, &w, self.bias.as_ref(), s, pass),
            1 => {
                let out = xs.conv1d(&w, self.bias.as_ref(), [1], [s.padding], [s.dilation], 1);
                pass.record(&self.name, "DiracConv1d", &out, conv_macs(&out, &w));
                out
            }
            _ => {
                let out = xs.conv3d(&w, self.bias.as_ref(), [1; 3], [s.padding; 3], [s.dilation; 3], 1);
                pass.record(&self.name, "DiracConv3d", &out, conv_macs(&out, &w));
                out
            }
        }
    }
}

/// normalize(W): each output filter divided by max(its L2 norm, 1e-12), as `F.normalize(W.view(out, -1))`
/// (diracnet.md §2.2).
pub fn normalize_filters(weight: &Tensor) -> Tensor {
    let shape = weight.size();
    let rows = weight.reshape([shape[0], -1]);
    let norms = rows.norm_scalaropt_dim(2, [1i64].as_slice(), true).clamp_min(NORMALIZE_EPS);
    (rows / norms).reshape(shape.as_slice())
}

/// diag(α)·δ for a weight of shape (out, in, k, ...): α_d at `[d, d, k/2, ...]` for d < min(in, out),
/// 0 elsewhere. Built by padding diag(α) rather than multiplying a stored δ; the values are the same
/// (α·1 on the diagonal, exact zeros elsewhere) and gradients reach α.
pub fn scaled_delta(alpha: &Tensor, weight_shape: &[i64]) -> Tensor {
    let (out, inp) = (weight_shape[0], weight_shape[1]);
    let m = out.min(inp);
    let diag = alpha.narrow(0, 0, m).diag_embed(0, 0, 1);
    let spatial = &weight_shape[2..];
    let mut shape = vec![m, m];
    shape.extend(std::iter::repeat_n(1, spatial.len()));
    // constant_pad_nd pads the last dimension first.
    let mut pad = Vec::new();
    for &k in spatial.iter().rev() {
        pad.extend([k / 2, k - 1 - k / 2]);
    }
    pad.extend([0, inp - m, 0, out - m]);
    diag.reshape(shape.as_slice()).constant_pad_nd(pad.as_slice())
}

/// `torch.nn.init.dirac_` of `shape` (out, in, k, ...) as float on `device` (diracnet.md §2.1).
pub fn dirac_delta(shape: &[i64], device: Device) -> Tensor {
    scaled_delta(&Tensor::ones([shape[0]], (Kind::Float, device)), shape)
}

/// Ŵ = diag(β)·normalize(W) + diag(α)·δ for any weight (out, in, k, ...) (diracnet.md §2.4).
pub fn dirac_kernel(weight: &Tensor, alpha: &Tensor, beta: &Tensor) -> Tensor {
    let shape = weight.size();
    let mut per_channel = vec![-1i64];
    per_channel.extend(std::iter::repeat_n(1, shape.len() - 1));
    normalize_filters(weight) * beta.reshape(per_channel.as_slice()) + scaled_delta(alpha, &shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::pass::Pass;

    fn set(t: &Tensor, v: f64) {
        tch::no_grad(|| {
            let _ = t.shallow_clone().fill_(v);
        });
    }

    #[test]
    fn alpha_one_beta_zero_is_the_identity_in_1d_2d_and_3d() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        for (dims, shape) in [(1, vec![3, 4, 9]), (2, vec![3, 4, 7, 6]), (3, vec![2, 4, 5, 6, 3])] {
            for k in [1, 3, 5] {
                let p = vs.root() / format!("c{dims}_{k}");
                let conv = DiracConv::new(&p, dims, 4, 4, ConvSpec::new(k).padding(k / 2)).unwrap();
                set(&conv.alpha, 1.0);
                set(&conv.beta, 0.0);
                let x = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
                assert!(conv.forward(&x, &mut Pass::new(false)).equal(&x), "{dims}-D, k = {k}");
            }
        }
        // Dilation 2 with padding 2·(k/2), and a widening layer: the first `in` channels pass through,
        // the extra ones get zero.
        let conv = DiracConv::new(&(vs.root() / "dil"), 2, 3, 5, ConvSpec::new(3).padding(2).dilation(2)).unwrap();
        set(&conv.alpha, 1.0);
        set(&conv.beta, 0.0);
        let x = Tensor::randn([2, 3, 6, 6], (Kind::Float, Device::Cpu));
        let y = conv.forward(&x, &mut Pass::new(false));
        assert!(y.narrow(1, 0, 3).equal(&x));
        assert_eq!(f64::try_from(y.narrow(1, 3, 2).abs().max()).unwrap(), 0.0);
    }

    #[test]
    fn delta_matches_torch_dirac_and_kernel_matches_the_formula() {
        for shape in [vec![4, 4, 3, 3], vec![6, 4, 3, 3], vec![3, 5, 5], vec![2, 3, 3, 1, 5]] {
            let shape: Vec<i64> = shape;
            let d = dirac_delta(&shape, Device::Cpu);
            assert_eq!(d.size(), shape);
            let values: Vec<f32> = Vec::try_from(d.flatten(0, -1)).unwrap();
            let spatial = &shape[2..];
            let per = spatial.iter().product::<i64>();
            let centre = spatial.iter().fold(0, |acc, &k| acc * k + k / 2);
            for (i, v) in values.iter().enumerate() {
                let i = i as i64;
                let (o, rest) = (i / (shape[1] * per), i % (shape[1] * per));
                let (c, pos) = (rest / per, rest % per);
                let want = f32::from(o == c && pos == centre);
                assert_eq!(*v, want, "{shape:?} at {o},{c},{pos}");
            }
        }
        tch::manual_seed(1);
        let w = Tensor::randn([6, 4, 3, 3], (Kind::Float, Device::Cpu));
        let (a, b) = (Tensor::randn([6], (Kind::Float, Device::Cpu)), Tensor::randn([6], (Kind::Float, Device::Cpu)));
        let rows = w.reshape([6, -1]);
        let norm = rows.square().sum_dim_intlist([1i64].as_slice(), true, Kind::Float).sqrt();
        let want = (rows / norm).reshape([6, 4, 3, 3]) * b.reshape([-1, 1, 1, 1])
            + dirac_delta(&[6, 4, 3, 3], Device::Cpu) * a.reshape([-1, 1, 1, 1]);
        let got = dirac_kernel(&w, &a, &b);
        assert!(got.allclose(&want, 1e-6, 1e-7, false));
        // A zero filter stays zero (the eps), it does not become NaN.
        let zero = normalize_filters(&Tensor::zeros([2, 3, 3, 3], (Kind::Float, Device::Cpu)));
        assert_eq!(f64::try_from(zero.abs().sum(Kind::Float)).unwrap(), 0.0);
    }

    #[test]
    fn gradients_reach_weight_alpha_beta_and_bias() {
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        for dims in 1..=3usize {
            let p = vs.root() / format!("g{dims}");
            let conv = DiracConv::new(&p, dims, 3, 5, ConvSpec::new(3).padding(1).bias(true)).unwrap();
            let mut shape = vec![2, 3];
            shape.extend(std::iter::repeat_n(5, dims));
            let x = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
            conv.forward(&x, &mut Pass::new(false)).square().sum(Kind::Float).backward();
            for (name, t) in [("weight", &conv.weight), ("alpha", &conv.alpha), ("beta", &conv.beta)] {
                let g = t.grad();
                assert!(f64::try_from(g.abs().sum(Kind::Float)).unwrap() > 0.0, "{dims}-D {name}");
            }
            assert!(conv.bias.as_ref().unwrap().grad().defined());
            // Output channels 3 and 4 have no identity path: their α gets no gradient (diracnet.md §2.4).
            assert_eq!(f64::try_from(conv.alpha.grad().narrow(0, 3, 2).abs().sum(Kind::Float)).unwrap(), 0.0);
        }
        let mut names: Vec<String> = vs.variables().into_keys().filter(|n| n.starts_with("g2.")).collect();
        names.sort();
        assert_eq!(names, ["g2.alpha", "g2.beta", "g2.bias", "g2.weight"]);
    }

    #[test]
    fn bad_geometry_is_an_input_error() {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let msg = |dims, cin, spec| DiracConv::new(&(&root / "x"), dims, cin, 4, spec).unwrap_err().to_string();
        assert!(msg(2, 4, ConvSpec::new(4).padding(2)).contains("kernel size 4 is not odd"));
        assert!(msg(2, 4, ConvSpec::new(3).stride(2)).contains("stride 2"));
        assert!(msg(4, 4, ConvSpec::new(3)).contains("1-D, 2-D or 3-D"));
        assert!(msg(2, 4, ConvSpec::new(3).groups(2)).contains("groups 2"));
        assert!(msg(2, 0, ConvSpec::new(3)).contains("at least 1"));
        let init = DiracConv::new(&(&root / "y"), 2, 4, 4, ConvSpec::new(3)).unwrap();
        assert!(init.alpha.equal(&Tensor::ones([4], (Kind::Float, Device::Cpu))));
        assert!(init.beta.allclose(&Tensor::full([4], 0.1, (Kind::Float, Device::Cpu)), 0.0, 0.0, false));
    }
}
