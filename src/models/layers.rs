//! Layers shared by every model family: plain convolution, batch norm and linear layers with the
//! initialisations the papers use, each recording itself in the forward [`Pass`] for `convtrain summary`.
//!
//! Where the spatial operations run is explicit: a [`Grid`], stored in each convolution's
//! [`ConvSpec`] and held by the networks for their pools. [`Grid::Dense`] is the ordinary 4-D
//! network; [`Grid::Checkered`] runs the same variables as a checkered CNN on `(B, C, S, H, W)`
//! tensors (checkered.md §2): [`Grid::input`] adds the submap axis at the entry, convolutions and
//! pools become checkered ones with the same 4-D weights, and [`Grid::merge_submaps`] averages the
//! submaps before the head. [`BatchNorm`] shares its statistics over all submaps (BatchNorm3d) and
//! [`channel_dropout`] drops whole channels (Dropout3d) on either kind of tensor.
use super::checkered::{self, ConvGeometry, Sampling};
use super::pass::{Layer, Pass};
use tch::nn::{self, Init};
use tch::Tensor;

/// Multiply-accumulates per example of a convolution (any dimensionality) that produced `out` with
/// kernel `weight`: output elements per example × the weights each one reads.
pub fn conv_macs(out: &Tensor, weight: &Tensor) -> i64 {
    out.numel() as i64 / out.size()[0].max(1) * (weight.numel() as i64 / weight.size()[0].max(1))
}

/// The dotted name of a path, as it appears in checkpoints.
pub fn path_name(p: &nn::Path) -> String {
    p.components().collect::<Vec<_>>().join(".")
}

/// `kaiming_normal_` with PyTorch's defaults (fan_in, gain √2): N(0, 2/fan_in).
pub fn kaiming_normal(fan_in: i64) -> Init {
    Init::Randn { mean: 0.0, stdev: (2.0 / fan_in as f64).sqrt() }
}

/// PyTorch's default Conv/Linear initialisation (weight and bias): U(±1/√fan_in).
pub fn torch_default_uniform(fan_in: i64) -> Init {
    let b = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform { lo: -b, up: b }
}

/// Where a network's convolutions and pools run: on ordinary feature maps, or on checkered submap
/// stacks with a sampling rule (checkered.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grid {
    /// 4-D `(B, C, H, W)` feature maps.
    #[default]
    Dense,
    /// 5-D `(B, C, S, H, W)` submap stacks: stride-2 layers keep two samples per 2×2 window.
    Checkered(Sampling),
}

impl Grid {
    pub fn is_checkered(&self) -> bool {
        matches!(self, Grid::Checkered(_))
    }

    /// The network entry: a checkered net sees its image as one submap (`x.unsqueeze(2)`).
    pub fn input(&self, xs: &Tensor) -> Tensor {
        match self {
            Grid::Dense => xs.shallow_clone(),
            Grid::Checkered(_) => xs.unsqueeze(2),
        }
    }

    /// Before the head: the mean over the submaps of a checkered net (the original's `torch.mean(x, 2)`).
    pub fn merge_submaps(&self, xs: &Tensor) -> Tensor {
        match self {
            Grid::Dense => xs.shallow_clone(),
            Grid::Checkered(_) => checkered::submap_mean(xs),
        }
    }

    /// `conv2d` with `spec`'s geometry (checkered: the checkered convolution with the same weight,
    /// stride 1 or 2 only), recorded in `pass` under `name`.
    pub fn conv2d(
        &self,
        name: &str,
        xs: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        spec: &ConvSpec,
        pass: &mut Pass,
    ) -> Tensor {
        let (s, p, d) = (spec.stride, spec.padding, spec.dilation);
        let (out, kind) = match self {
            Grid::Dense => (xs.conv2d(weight, bias, [s, s], [p, p], [d, d], spec.groups), "Conv2d"),
            Grid::Checkered(sampling) => {
                (checkered::conv(xs, weight, bias, spec.geometry(), *sampling), "CheckeredConv2d")
            }
        };
        pass.record(name, kind, &out, conv_macs(&out, weight));
        out
    }

    /// `MaxPool2d(kernel, stride, padding)` (padding −∞); checkered: the checkered max-pool, whose
    /// padding is zero as in the original (checkered.md §7 pitfall 3). Traced.
    pub fn max_pool2d(
        &self,
        name: &str,
        xs: &Tensor,
        kernel: i64,
        stride: i64,
        padding: i64,
        pass: &mut Pass,
    ) -> Tensor {
        let out = match self {
            Grid::Dense => xs.max_pool2d([kernel, kernel], [stride, stride], [padding, padding], [1, 1], false),
            Grid::Checkered(sampling) => checkered::max_pool(xs, kernel, 1, stride, padding, *sampling),
        };
        pass.record(name, "MaxPool2d", &out, 0);
        out
    }

    /// `AvgPool2d(kernel, stride, padding)` (padding zeros counted); checkered: the checkered average
    /// pool. Traced.
    pub fn avg_pool2d(
        &self,
        name: &str,
        xs: &Tensor,
        kernel: i64,
        stride: i64,
        padding: i64,
        pass: &mut Pass,
    ) -> Tensor {
        let out = match self {
            Grid::Dense => {
                xs.avg_pool2d([kernel, kernel], [stride, stride], [padding, padding], false, true, None::<i64>)
            }
            Grid::Checkered(sampling) => checkered::avg_pool(xs, kernel, 1, stride, padding, *sampling),
        };
        pass.record(name, "AvgPool2d", &out, 0);
        out
    }
}

/// How a convolution is built.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
    pub dilation: i64,
    pub groups: i64,
    pub bias: bool,
    /// Weight initialisation; `None` means Kaiming-normal (fan_in).
    pub init: Option<Init>,
    /// Bias initialisation; `None` means PyTorch's default U(±1/√fan_in).
    pub bias_init: Option<Init>,
    /// Dense or checkered.
    pub grid: Grid,
}

impl ConvSpec {
    /// A k×k convolution with stride 1, no padding, no bias, Kaiming-normal weights.
    pub fn new(kernel: i64) -> Self {
        ConvSpec {
            kernel,
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
            bias: false,
            init: None,
            bias_init: None,
            grid: Grid::Dense,
        }
    }
    pub fn stride(mut self, s: i64) -> Self {
        self.stride = s;
        self
    }
    pub fn padding(mut self, p: i64) -> Self {
        self.padding = p;
        self
    }
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
    pub fn init(mut self, i: Init) -> Self {
        self.init = Some(i);
        self
    }
    pub fn bias_init(mut self, i: Init) -> Self {
        self.bias_init = Some(i);
        self
    }
    pub fn dilation(mut self, d: i64) -> Self {
        self.dilation = d;
        self
    }
    pub fn groups(mut self, g: i64) -> Self {
        self.groups = g;
        self
    }
    pub fn grid(mut self, g: Grid) -> Self {
        self.grid = g;
        self
    }
    /// Stride, padding, dilation and groups.
    pub fn geometry(&self) -> ConvGeometry {
        ConvGeometry { stride: self.stride, padding: self.padding, dilation: self.dilation, groups: self.groups }
    }
    /// PyTorch ≤ 1.0's (and today's) default Conv2d initialisation for `in_channels` inputs: weight and
    /// bias ~ U(±1/√fan_in), fan_in = in/groups·k².
    pub fn torch_default(self, in_channels: i64) -> Self {
        let init = torch_default_uniform(in_channels / self.groups * self.kernel * self.kernel);
        self.init(init).bias_init(init)
    }
}

/// A batch norm initialised as PyTorch 0.4 did: γ ~ U(0,1), β = 0 (checkered.md §7 pitfall 8).
pub fn torch04_batch_norm(p: &nn::Path, channels: i64) -> BatchNorm {
    BatchNorm::with_gamma_init(p, channels, Init::Uniform { lo: 0.0, up: 1.0 })
}

/// A 2-D convolution whose weight is a variable `weight` (and optional `bias`) under its path.
#[derive(Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub spec: ConvSpec,
    pub name: String,
}

impl Conv2d {
    pub fn new(p: &nn::Path, in_channels: i64, out_channels: i64, spec: ConvSpec) -> Self {
        let fan_in = in_channels / spec.groups * spec.kernel * spec.kernel;
        let init = spec.init.unwrap_or_else(|| kaiming_normal(fan_in));
        let weight = p.var("weight", &[out_channels, in_channels / spec.groups, spec.kernel, spec.kernel], init);
        let bias = spec
            .bias
            .then(|| p.var("bias", &[out_channels], spec.bias_init.unwrap_or_else(|| torch_default_uniform(fan_in))));
        Conv2d { weight, bias, spec, name: path_name(p) }
    }

    /// Convolves `xs` with an explicit kernel using this layer's geometry and grid (used by shared
    /// and generated convolutions).
    pub fn apply_kernel(&self, xs: &Tensor, weight: &Tensor, pass: &mut Pass) -> Tensor {
        self.spec.grid.conv2d(&self.name, xs, weight, self.bias.as_ref(), &self.spec, pass)
    }
}

/// Channel dropout: `Dropout2d` on 4-D input, `Dropout3d` on 5-D input (whole channels of a sample,
/// all submaps at once).
pub fn channel_dropout(xs: &Tensor, p: f64, train: bool) -> Tensor {
    xs.feature_dropout(p, train)
}

impl Layer for Conv2d {
    fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Tensor {
        self.apply_kernel(xs, &self.weight, pass)
    }
}

/// A native checkered convolution with a `(O, I, D, k, k)` weight (kernel depth `D` across submaps),
/// e.g. conv4 of the toy MNIST CCNN. Its input must already be 5-D.
#[derive(Debug)]
pub struct CheckeredConv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub spec: ConvSpec,
    pub sampling: Sampling,
    pub name: String,
}

impl CheckeredConv2d {
    /// Variables `weight` (and `bias`) under `p`. Both default to PyTorch's U(±1/√fan_in) with
    /// fan_in = I·D·k² (the original's `Conv3d`), unless `spec` sets an init.
    pub fn new(
        p: &nn::Path,
        in_channels: i64,
        out_channels: i64,
        depth: i64,
        spec: ConvSpec,
        sampling: Sampling,
    ) -> Self {
        let k = spec.kernel;
        let fan_in = in_channels / spec.groups * depth * k * k;
        let init = spec.init.unwrap_or_else(|| torch_default_uniform(fan_in));
        let weight = p.var("weight", &[out_channels, in_channels / spec.groups, depth, k, k], init);
        let bias_init: Init = spec.bias_init.unwrap_or_else(|| torch_default_uniform(fan_in));
        let bias = spec.bias.then(|| p.var("bias", &[out_channels], bias_init));
        CheckeredConv2d { weight, bias, spec, sampling, name: path_name(p) }
    }
}

impl Layer for CheckeredConv2d {
    fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Tensor {
        let out = checkered::conv(xs, &self.weight, self.bias.as_ref(), self.spec.geometry(), self.sampling);
        pass.record(&self.name, "CheckeredConv2d", &out, conv_macs(&out, &self.weight));
        out
    }
}

/// Batch norm (eps 1e-5 unless [`BatchNorm::eps`] says otherwise, momentum 0.1) with γ=1, β=0 unless told otherwise; works on 2-D to 5-D input.
/// On a checkered tensor the statistics are shared by all submaps (BatchNorm3d, checkered.md §7 pitfall 6).
#[derive(Debug)]
pub struct BatchNorm {
    inner: nn::BatchNorm,
    eps: f64,
    name: String,
}

impl BatchNorm {
    pub fn new(p: &nn::Path, channels: i64) -> Self {
        Self::with_gamma_init(p, channels, Init::Const(1.0))
    }

    /// PyTorch 0.4 initialised γ ~ U(0,1) (checkered.md §7 pitfall 8); models that copy it say so.
    pub fn with_gamma_init(p: &nn::Path, channels: i64, gamma: Init) -> Self {
        let cfg = nn::BatchNormConfig { ws_init: gamma, bs_init: Init::Const(0.0), ..Default::default() };
        BatchNorm { inner: nn::batch_norm2d(p, channels, cfg), eps: 1e-5, name: path_name(p) }
    }

    /// The same layer with another epsilon (the VGG sweep's 1e-4, vgg_features.md §2.9).
    pub fn eps(self, eps: f64) -> Self {
        BatchNorm { eps, ..self }
    }
}

impl Layer for BatchNorm {
    fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Tensor {
        let b = &self.inner;
        let out = Tensor::batch_norm(
            xs,
            b.ws.as_ref(),
            b.bs.as_ref(),
            Some(&b.running_mean),
            Some(&b.running_var),
            pass.train,
            0.1,
            self.eps,
            true,
        );
        pass.record(&self.name, "BatchNorm", &out, 0);
        out
    }
}

/// The forward pass of a residual block (torchvision's BasicBlock / Bottleneck): `layers` (conv, BN)
/// in order with a ReLU between them, plus the identity or the projection `shortcut` (conv, BN), then
/// ReLU.
pub fn residual_forward<C: Layer, S: Layer>(
    layers: &[(C, BatchNorm)],
    shortcut: Option<&(S, BatchNorm)>,
    x: &Tensor,
    pass: &mut Pass,
) -> Tensor {
    let mut y = x.shallow_clone();
    for (i, (conv, bn)) in layers.iter().enumerate() {
        y = bn.forward(&conv.forward(&y, pass), pass);
        if i + 1 < layers.len() {
            y = y.relu();
        }
    }
    let skip = match shortcut {
        Some((conv, bn)) => bn.forward(&conv.forward(x, pass), pass),
        None => x.shallow_clone(),
    };
    (y + skip).relu()
}

/// A fully connected layer `weight` (out×in) + `bias`.
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    name: String,
}

impl Linear {
    /// `init` for the weight; the bias is `bias_init` (PyTorch default U(±1/√in) when `None`).
    pub fn new(p: &nn::Path, input: i64, output: i64, init: Init, bias_init: Option<Init>) -> Self {
        let weight = p.var("weight", &[output, input], init);
        let bias = Some(p.var("bias", &[output], bias_init.unwrap_or_else(|| torch_default_uniform(input))));
        Linear { weight, bias, name: path_name(p) }
    }

    /// A layer without bias, `init` for the weight.
    pub fn without_bias(p: &nn::Path, input: i64, output: i64, init: Init) -> Self {
        Linear { weight: p.var("weight", &[output, input], init), bias: None, name: path_name(p) }
    }
}

impl Layer for Linear {
    fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Tensor {
        let out = xs.linear(&self.weight, self.bias.as_ref());
        let w = self.weight.size();
        pass.record(&self.name, "Linear", &out, w[0] * w[1]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::pass::traced;
    use tch::{Device, Kind};

    #[test]
    fn conv_init_has_kaiming_std_and_trace_counts_macs() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let conv = Conv2d::new(&vs.root().sub("c"), 64, 128, ConvSpec::new(3).padding(1));
        let std = f64::try_from(conv.weight.std(true)).unwrap();
        let want = (2.0f64 / (64.0 * 9.0)).sqrt();
        assert!((std - want).abs() / want < 0.02, "std {std} want {want}");
        let x = Tensor::zeros([2, 64, 8, 8], (Kind::Float, Device::Cpu));
        let (y, tr) = traced(false, |pass| conv.forward(&x, pass));
        assert_eq!(y.size(), vec![2, 128, 8, 8]);
        assert_eq!(tr.len(), 1);
        assert_eq!(tr[0].name, "c");
        assert_eq!(tr[0].macs, 128 * 64 * 64 * 9);
    }

    #[test]
    fn native_depth_two_conv_has_torch_fan_in_and_reduces_submaps() {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let spec = ConvSpec::new(3).padding(1).bias(true);
        let c = CheckeredConv2d::new(&(vs.root() / "conv4"), 45, 64, 2, spec, Sampling::default());
        assert_eq!(c.weight.size(), vec![64, 45, 2, 3, 3]);
        let bound = 1.0 / ((45 * 2 * 9) as f64).sqrt();
        let m = f64::try_from(c.weight.abs().max()).unwrap();
        assert!(m <= bound && m > 0.9 * bound, "{m} vs {bound}");
        let x = Tensor::randn([2, 45, 2, 14, 14], (Kind::Float, Device::Cpu));
        let y = c.forward(&x, &mut Pass::new(false));
        assert_eq!(y.size(), vec![2, 64, 1, 14, 14]);
        assert_eq!(checkered::submap_mean(&y).size(), vec![2, 64, 14, 14]);
    }
}
