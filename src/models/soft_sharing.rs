//! Soft parameter sharing (Savarese & Maire, ICLR 2019): a [`TemplateBank`] of k convolution kernels
//! and [`SConv2d`] layers whose kernel is a learned mixture W = Σ_j α_j T_j of the bank's templates
//! (spec/swrn.md §2). These two types put soft sharing into any network, not only SWRN.
//!
//! # Example
//!
//! The soft-sharing README's small CNN: `conv1` is a plain convolution, `conv2`..`conv4` share one bank
//! of three 10→10 3×3 templates, each with its own three coefficients.
//!
//! ```
//! use convtrain::models::layers::{Conv2d, ConvSpec};
//! use convtrain::models::soft_sharing::{orthogonal, SConv2d, TemplateBank};
//! use convtrain::models::pass::{Layer, Pass};
//! use tch::nn;
//! use tch::{Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let root = vs.root();
//! let conv1 = Conv2d::new(&(&root / "conv1"), 1, 10, ConvSpec::new(3).bias(true));
//! let bank = TemplateBank::new(&(&root / "bank"), 3, 10, 10, 3);
//! // The original constructor leaves α = 0 (a zero kernel); give the three layers orthogonal rows as
//! // SWRN does (swrn.md §3).
//! let alpha = orthogonal(3, 3);
//! let shared: Vec<SConv2d> = (0..3)
//!     .map(|j| SConv2d::with_coefficients(&(&root / format!("conv{}", j + 2)), &bank, 1, 1, &alpha.get(j)))
//!     .collect();
//!
//! let pass = &mut Pass::new(false); // an evaluation-mode forward pass, not traced
//! let x = Tensor::randn([2, 1, 12, 12], (Kind::Float, Device::Cpu));
//! let mut y = conv1.forward(&x, pass).relu();
//! for conv in &shared {
//!     y = conv.forward(&y, pass).relu();
//! }
//! assert_eq!(y.size(), vec![2, 10, 10, 10]);
//! // One bank (3·10·10·3·3) + three coefficient vectors + conv1: templates are stored once.
//! assert_eq!(vs.trainable_variables().iter().map(|t| t.numel()).sum::<usize>(), 2700 + 9 + 100);
//! ```
use super::kernel_cache::KernelCache;
use super::layers::{kaiming_normal, path_name, ConvSpec, Grid};
use crate::models::pass::{Layer, Pass};
use tch::nn;
use tch::{Device, Kind, Tensor};

/// k convolution kernels stored as one variable `templates` of shape (k, out, in, kh, kw)
/// (swrn.md §2, layers.py:8-12).
#[derive(Debug)]
pub struct TemplateBank {
    /// The stacked templates; a trainable variable named `<path>.templates`.
    pub templates: Tensor,
}

impl TemplateBank {
    /// Creates the bank under `p`. Every template is drawn independently from Kaiming-normal with
    /// fan_in = in·kh·kw and gain √2, i.e. N(0, 2/(in·ks·ks)) (swrn.md §2).
    pub fn new(p: &nn::Path, num_templates: i64, in_planes: i64, out_planes: i64, kernel_size: i64) -> Self {
        let fan_in = in_planes * kernel_size * kernel_size;
        let templates = p.var(
            "templates",
            &[num_templates, out_planes, in_planes, kernel_size, kernel_size],
            kaiming_normal(fan_in),
        );
        TemplateBank { templates }
    }

    /// Number of templates k.
    pub fn num_templates(&self) -> i64 {
        self.templates.size()[0]
    }

    /// The kernel Σ_j α_j T_j for coefficients of any shape holding k values (e.g. (k,1,1,1,1)).
    pub fn kernel(&self, coefficients: &Tensor) -> Tensor {
        mix(&self.templates, coefficients)
    }
}

/// Σ_j α_j T_j over the first axis of `templates` (k, out, in, kh, kw).
pub fn mix(templates: &Tensor, coefficients: &Tensor) -> Tensor {
    let k = templates.size()[0];
    (templates * coefficients.reshape([k, 1, 1, 1, 1])).sum_dim_intlist([0i64].as_slice(), false, Kind::Float)
}

/// A convolution without bias whose kernel is recomputed from a [`TemplateBank`] on every forward
/// pass with gradients, so that they reach both its coefficients and the templates (swrn.md §2,
/// layers.py:18-27); without gradients (evaluation) it is computed once while neither changes
/// ([`KernelCache`]).
#[derive(Debug)]
pub struct SConv2d {
    /// This layer's α: a trainable variable `<path>.coefficients` of shape (k,1,1,1,1).
    pub coefficients: Tensor,
    templates: Tensor,
    spec: ConvSpec,
    name: String,
    cache: KernelCache,
}

impl SConv2d {
    /// A shared convolution with α = 0, as the original constructor leaves it (layers.py:23). A
    /// network built only from such layers outputs zeros until the coefficients are set; prefer
    /// [`SConv2d::with_coefficients`].
    pub fn new(p: &nn::Path, bank: &TemplateBank, stride: i64, padding: i64) -> Self {
        let k = bank.num_templates();
        Self::with_coefficients(p, bank, stride, padding, &Tensor::zeros([k], (Kind::Float, Device::Cpu)))
    }

    /// A shared convolution whose coefficients start at `alpha` (any shape holding k values).
    /// Stride and padding are passed straight to `conv2d`; dilation 1, groups 1.
    ///
    /// # Panics
    /// If `alpha` does not hold exactly k values.
    pub fn with_coefficients(p: &nn::Path, bank: &TemplateBank, stride: i64, padding: i64, alpha: &Tensor) -> Self {
        let k = bank.num_templates();
        assert_eq!(alpha.numel() as i64, k, "SConv2d: {} coefficients for a bank of {k} templates", alpha.numel());
        let init = alpha.reshape([k, 1, 1, 1, 1]).to_kind(Kind::Float).to_device(p.device());
        let coefficients = p.var_copy("coefficients", &init);
        let kernel_size = bank.templates.size()[3];
        SConv2d {
            coefficients,
            templates: bank.templates.shallow_clone(),
            spec: ConvSpec::new(kernel_size).stride(stride).padding(padding),
            name: path_name(p),
            cache: KernelCache::default(),
        }
    }

    /// The same convolution on `grid` (checkered: the shared kernel goes through the checkered conv).
    pub fn on_grid(mut self, grid: Grid) -> Self {
        self.spec.grid = grid;
        self
    }

    /// The current kernel W = Σ_j α_j T_j, shape (out, in, kh, kw).
    pub fn weight(&self) -> Tensor {
        mix(&self.templates, &self.coefficients)
    }
}

impl Layer for SConv2d {
    fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Tensor {
        let weight = self.cache.kernel(&[&self.templates, &self.coefficients], || self.weight());
        self.spec.grid.conv2d(&self.name, xs, &weight, None, &self.spec, pass)
    }
}

/// A `rows × cols` matrix drawn exactly as `torch.nn.init.orthogonal_` (gain 1) draws it: an N(0,1)
/// matrix from torch's CPU generator, transposed if rows < cols, QR-decomposed, q multiplied column-wise
/// by sign(diag(r)), transposed back (swrn.md §3). Rows are orthonormal when rows ≤ cols, columns
/// otherwise. With the same `tch::manual_seed` the result equals PyTorch's bit for bit. Returned on the
/// CPU as a contiguous float matrix; an empty shape gives an empty matrix (PyTorch's no-op).
pub fn orthogonal(rows: i64, cols: i64) -> Tensor {
    let opts = (Kind::Float, Device::Cpu);
    if rows == 0 || cols == 0 {
        return Tensor::zeros([rows, cols], opts);
    }
    let mut flat = Tensor::empty([rows, cols], opts);
    let _ = flat.normal_(0.0, 1.0);
    let flat = if rows < cols { flat.transpose(0, 1) } else { flat };
    let (q, r) = Tensor::linalg_qr(&flat, "reduced");
    let q = q * r.diag(0).sign();
    // LAPACK's q is column-major; return a plain row-major matrix either way.
    if rows < cols { q.transpose(0, 1) } else { q }.contiguous()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::layers::{Conv2d, ConvSpec};
    use crate::models::pass::Pass;

    fn max_abs(t: &Tensor) -> f64 {
        f64::try_from(t.abs().max()).unwrap()
    }

    #[test]
    fn template_init_is_kaiming_and_kernel_is_the_mixture() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let bank = TemplateBank::new(&(vs.root() / "bank"), 4, 32, 16, 3);
        assert_eq!(bank.templates.size(), vec![4, 16, 32, 3, 3]);
        let want = (2.0f64 / (32.0 * 9.0)).sqrt();
        for j in 0..4 {
            let std = f64::try_from(bank.templates.get(j).std(true)).unwrap();
            assert!((std - want).abs() / want < 0.05, "template {j}: std {std}, want {want}");
        }
        let alpha = Tensor::from_slice(&[0.5f32, -1.0, 0.0, 2.0]);
        let conv = SConv2d::with_coefficients(&(vs.root() / "c"), &bank, 2, 1, &alpha);
        assert_eq!(conv.coefficients.size(), vec![4, 1, 1, 1, 1]);
        let t = &bank.templates;
        let want = t.get(0) * 0.5 - t.get(1) + t.get(3) * 2.0;
        assert!(max_abs(&(conv.weight() - &want)) < 1e-6);
        // Stride and padding are passed through.
        let x = Tensor::randn([1, 32, 9, 9], (Kind::Float, Device::Cpu));
        let y = conv.forward(&x, &mut Pass::new(false));
        let y_ref = x.conv2d(&want, None::<Tensor>, [2, 2], [1, 1], [1, 1], 1);
        assert_eq!(y.size(), vec![1, 16, 5, 5]);
        assert!(max_abs(&(y - y_ref)) < 1e-5);
        let zero = SConv2d::new(&(vs.root() / "z"), &bank, 1, 1);
        assert_eq!(max_abs(&zero.weight()), 0.0);
    }

    #[test]
    fn orthogonal_rows_or_columns_are_orthonormal() {
        tch::manual_seed(3);
        for (rows, cols) in [(6, 2), (6, 6), (6, 9), (1, 4)] {
            let q = orthogonal(rows, cols);
            assert_eq!(q.size(), vec![rows, cols]);
            let (gram, n) =
                if rows <= cols { (q.matmul(&q.transpose(0, 1)), rows) } else { (q.transpose(0, 1).matmul(&q), cols) };
            let eye = Tensor::eye(n, (Kind::Float, Device::Cpu));
            assert!(max_abs(&(gram - eye)) < 1e-5, "{rows}x{cols}");
        }
        assert_eq!(orthogonal(0, 3).size(), vec![0, 3]);
    }

    /// The soft-sharing README's CNN (conv1 plain, one bank of 3 templates shared by conv2..conv4),
    /// with the spatial mean of its 10 output maps used as logits.
    #[test]
    fn readme_cnn_trains_templates_and_every_coefficient() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let conv1 = Conv2d::new(&(&root / "conv1"), 1, 10, ConvSpec::new(3).bias(true));
        let bank = TemplateBank::new(&(&root / "bank"), 3, 10, 10, 3);
        let alpha = orthogonal(3, 3);
        let shared: Vec<SConv2d> = (0..3)
            .map(|j| SConv2d::with_coefficients(&(&root / format!("conv{}", j + 2)), &bank, 1, 1, &alpha.get(j)))
            .collect();
        let forward = |x: &Tensor| {
            let mut y = conv1.forward(x, &mut Pass::new(false)).relu();
            for c in &shared {
                y = c.forward(&y, &mut Pass::new(false)).relu();
            }
            y.mean_dim([2i64, 3].as_slice(), false, Kind::Float)
        };
        let x = Tensor::randn([16, 1, 10, 10], (Kind::Float, Device::Cpu));
        let target = Tensor::randint(10, [16], (Kind::Int64, Device::Cpu));
        let mut opt = nn::OptimizerConfig::build(nn::sgd(0.9, 0.0, 0.0, true), &vs, 0.05).unwrap();
        let before: Vec<Tensor> = shared.iter().map(|c| c.coefficients.detach().copy()).collect();
        let mut losses = Vec::new();
        for step in 0..8 {
            opt.zero_grad();
            let loss = forward(&x).cross_entropy_for_logits(&target);
            losses.push(f64::try_from(&loss).unwrap());
            loss.backward();
            if step == 0 {
                assert!(max_abs(&bank.templates.grad()) > 0.0, "no gradient reached the templates");
                for (j, c) in shared.iter().enumerate() {
                    assert!(max_abs(&c.coefficients.grad()) > 0.0, "no gradient reached conv{}", j + 2);
                }
            }
            opt.step();
        }
        assert!(losses[7] < losses[0], "loss did not decrease: {losses:?}");
        for (c, b) in shared.iter().zip(&before) {
            assert!(max_abs(&(&c.coefficients - b)) > 0.0);
        }
        // The bank is one variable, not one per layer.
        assert_eq!(vs.trainable_variables().len(), 1 + 1 + 1 + 3);
    }
}
