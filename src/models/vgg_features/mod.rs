//! The VGG of the layer-wise feature-amount sweep (Mundt et al. 2018, vgg_features.md §2.9) for any
//! width list, and the sweep's variant generator ([`variants`]).
//!
//! Layout for `vgg_depth` D = 3L + 7: five blocks of 2, 2, L, L, L convolutions, each conv 3×3/p1
//! without bias → BatchNorm (eps 1e-4, momentum 0.1) → ReLU, each block closed by MaxPool(2, 2); then
//! flatten → Linear(no bias) → BN1d → ReLU, twice; one Dropout(0.5); the output Linear with bias. The
//! widths list holds every conv's width and then the two hidden FC widths (D − 1 entries), so a variant
//! changes the classifier too (§8 pitfall 1). No dropout in the conv blocks.
//!
//! Variable names are the authors' `VGG.state_dict()` keys without DataParallel's `module.` prefix
//! (module paths of the original `lib/Models/architectures.py`): `features.block{b}.block.conv_layer{l}
//! .convlayer.conv{l}.weight` and `….bn{l}.{weight,bias,running_mean,running_var}` (l counts from 1 in
//! every block), `classifier.0.fc_block.fc_layer{0,1}.fclayer.{fc,bn}{1,2}.…` and
//! `classifier.0.fc_block.final_layer.{weight,bias}`.
//!
//! Initialisation (§3.4): every conv and linear weight, the output layer's included, by `--weight-init`
//! (default kaiming-normal: N(0, 2/fan_in)); the output bias 0; BN γ = 1, β = 0. The original also runs
//! two random 1-image forward passes in train mode while building (to size its GPU-memory estimate,
//! §4.1), which nudges the BN running statistics before training; that noise is not reproduced.
//!
//! Input: 3 channels at 32×32 (MNIST-type data bilinearly resized from 28 and repeated to 3 channels,
//! the arch's defaults). Five pools leave `side/32` (1×1 at 32), which sizes the first FC layer.
//!
//! The sweep's recipe (§3) is the architecture's `defaults`: 150 epochs, batch 128, SGD lr 0.01, momentum
//! 0.9, no Nesterov, weight decay 5e-4 on every parameter (BN and the output bias included), SGDR per
//! mini-batch (T0 10, ×2, floor 1e-5), no input normalisation (raw [0,1] pixels; `--normalize-data`
//! turns on the original's per-channel statistics), CIFAR crop 4 + flip, no augmentation on MNIST-type
//! data, and validation on the official test set (val_split 0), which is the paper's protocol: its
//! "BestVal" is the best test accuracy over epochs (§3.6). Not reproduced by the engine: the original
//! scales each mini-batch's mean loss by its size / 128 (§4.3), so the last, partial batch of an epoch
//! (80 images on CIFAR, 96 on MNIST) weighs less; here it is a plain mean.
//!
//! The original's only stop rule (§3.6): at 0-based epoch [`ABORT_EPOCH`] (= `--lr-wr-epochs` − 1), a
//! variant whose running train top-1 is below [`abort_threshold`] (2·100/classes %, 20 % for ten classes)
//! stops training; its result row is still written.
pub mod variants;

pub use variants::{base_widths, csv_parameters, layers_per_block, variant, variants, Variant};

use super::layers::{path_name, BatchNorm, Conv2d, ConvSpec, Grid, Linear};
use super::options::Validate;
use super::{Arch, ModelConfig, NamedTensors};
use crate::error::Result;
use crate::input_err;
use crate::models::pass::{Layer, Pass};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::Tensor;

/// Where this family's `defaults` come from (named in the start-up log).
const RECIPE: &str = "the VGG feature-amount sweep's main.py (vgg_features.md §3)";

pub const ARCHS: &[Arch] = &[Arch {
    import: from_pytorch_names,
    defaults: recipe,
    recipe: RECIPE,
    ..Arch::new(
        "vgg-features",
        "vgg_features",
        "VGG of the layer-wise feature-amount sweep: --variant N of --vgg-depth D, or any --widths",
        build_vgg_features,
    )
}];

/// The authors' `state_dict()` keys are this model's names; a DataParallel `module.` prefix (the
/// original wraps the model in `nn.DataParallel`) is dropped. `num_batches_tracked` is ignored on load.
fn from_pytorch_names(named: NamedTensors) -> Result<NamedTensors> {
    Ok(named.into_iter().map(|(n, t)| (n.strip_prefix("module.").map(str::to_string).unwrap_or(n), t)).collect())
}

/// The sweep's recipe for `dataset` (vgg_features.md §3; see the module documentation). MNIST-type
/// data is bilinearly resized to 32×32 and repeated to 3 channels. Normalisation is off (raw [0,1]
/// pixels, the original's default); `mean`/`std` are the statistics the original's `--normalize-data`
/// uses (§3.5: Fashion-MNIST reuses MNIST's; other datasets keep the engine's), which
/// `--normalize-data` turns on.
fn recipe(dataset: &str) -> serde_json::Value {
    let statistics: Option<(&[f64], &[f64])> = match dataset {
        "cifar10" => Some((&[0.4914, 0.4822, 0.4465], &[0.2023, 0.1994, 0.2010])),
        "cifar100" => Some((&[0.5071, 0.4866, 0.4409], &[0.2009, 0.1984, 0.2023])),
        "mnist" | "fashion-mnist" => Some((&[0.1307], &[0.3081])),
        "kmnist" => Some((&[0.190362], &[0.347463])),
        _ => None,
    };
    let grey = matches!(dataset, "mnist" | "fashion-mnist" | "kmnist");
    let mut r = serde_json::json!({
        "epochs": 150,
        "batch_size": 128,
        "lr": 0.01,
        "momentum": 0.9,
        "nesterov": false,
        "dampening": 0.0,
        "weight_decay": 5e-4,
        "no_decay": [],
        "no_decay_1d": false,
        "schedule": "sgdr",
        "sgdr_t0": 10,
        "sgdr_t_mult": 2,
        "lr_min": 1e-5,
        "cutout": 0,
        "val_split": 0.0,
        "augment": if grey { serde_json::json!([]) } else { serde_json::json!(["crop:4", "flip"]) },
        "normalize_data": false,
    });
    if let Some((mean, std)) = statistics {
        r["mean"] = mean.into();
        r["std"] = std.into();
    }
    if grey {
        r["resize"] = 32.into();
        r["gray_to_rgb"] = true.into();
    }
    r
}

/// The original's default `--vgg-depth` (VGG-D).
pub const DEFAULT_VGG_DEPTH: usize = 16;
/// The original's BatchNorm epsilon (`-bn 1e-4`, §3.1; tch's default is 1e-5).
pub const DEFAULT_BN_EPS: f64 = 1e-4;
/// Dropout probability before the output layer (§2.9).
const CLASSIFIER_DROPOUT: f64 = 0.5;
/// 0-based epoch after which the abort rule is checked: the original's `lr_wr_epochs − 1` with its
/// default first SGDR cycle of 10 epochs (§3.6), i.e. after the 10th epoch. (The trainer's `EpochRow`
/// numbers epochs from 1: there it is `ABORT_EPOCH + 1`.)
pub const ABORT_EPOCH: usize = 9;

/// The running train top-1 (in %) below which a variant is aborted at [`ABORT_EPOCH`]: twice chance,
/// 2·100/`num_classes` (§3.6).
pub fn abort_threshold(num_classes: i64) -> f64 {
    2.0 * 100.0 / num_classes as f64
}

/// vgg-features options (vgg_features.md §2.8, §2.9, §3.4). With neither `--variant` nor `--widths`
/// the network is the unmodified VGG of `--vgg-depth` (the original's `custom_filters=False`).
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct VggFeaturesOptions {
    /// vgg-features: train variant N (1-based) of the sweep for --vgg-depth (`convtrain sweep vgg-features --list`).
    #[arg(long, conflicts_with = "widths")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<usize>,
    /// vgg-features: depth D = 3L + 7 with blocks of 2-2-L-L-L convs (10, 13, 16, 19, …; default 16, VGG-D).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vgg_depth: Option<usize>,
    /// vgg-features: explicit widths, comma separated: every conv, then the two hidden FC layers (D − 1 values).
    #[arg(long, value_delimiter = ',')]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<i64>>,
    /// vgg-features: kaiming-normal (default), kaiming-uniform, xavier-normal or xavier-uniform.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_init: Option<String>,
    /// vgg-features: BatchNorm epsilon (default 1e-4; 0 builds the network without BN).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bn_eps: Option<f64>,
}

impl Validate for VggFeaturesOptions {
    fn validate(&self) -> Result<()> {
        if let Some(d) = self.vgg_depth {
            layers_per_block(d)?;
        }
        if self.variant == Some(0) {
            return Err(input_err!("--variant: variants are numbered from 1 (`convtrain sweep vgg-features --list`)."));
        }
        if let Some(widths) = &self.widths {
            check_widths(widths)?;
        }
        if let Some(name) = &self.weight_init {
            WeightInit::parse(name)?;
        }
        bn_eps(self)?;
        Ok(())
    }
}

/// `--widths` must hold D − 1 positive widths for a valid depth D.
fn check_widths(widths: &[i64]) -> Result<usize> {
    let per_block = layers_per_block(widths.len() + 1).map_err(|_| {
        input_err!(
            "--widths: expected vgg_depth − 1 widths (the convs, then the two hidden FC layers) for a depth D \
             with (D − 7) divisible by 3 (9, 12, 15, 18, … widths), got {}.",
            widths.len()
        )
    })?;
    match widths.iter().find(|&&w| w < 1) {
        Some(w) => Err(input_err!("--widths: every width must be at least 1, got {w}.")),
        None => Ok(per_block),
    }
}

fn bn_eps(o: &VggFeaturesOptions) -> Result<f64> {
    match o.bn_eps.unwrap_or(DEFAULT_BN_EPS) {
        eps if eps.is_finite() && eps >= 0.0 => Ok(eps),
        eps => Err(input_err!("--bn-eps: must be a finite number ≥ 0 (0: no BatchNorm), got {eps}.")),
    }
}

/// The widths and settings `cfg` and its options describe; every inconsistency is an input error.
pub fn resolve(cfg: &ModelConfig, o: &VggFeaturesOptions) -> Result<(Vec<i64>, VggSettings)> {
    if cfg.depth.is_some() || cfg.width.is_some() {
        return Err(input_err!("--depth/--width: vgg-features takes --vgg-depth and --variant or --widths instead."));
    }
    let widths = match (o.variant, &o.widths) {
        (Some(_), Some(_)) => return Err(input_err!("--variant and --widths: choose one.")),
        (Some(id), None) => {
            variant(o.vgg_depth.unwrap_or(DEFAULT_VGG_DEPTH), cfg.num_classes, cfg.image_size, id)?.widths
        }
        (None, Some(widths)) => match o.vgg_depth {
            Some(d) if d != widths.len() + 1 => {
                return Err(input_err!(
                    "--widths: --vgg-depth {d} takes {} widths (the convs, then the two hidden FC layers), got {}.",
                    d - 1,
                    widths.len()
                ))
            }
            _ => widths.clone(),
        },
        (None, None) => base_widths(o.vgg_depth.unwrap_or(DEFAULT_VGG_DEPTH), cfg.image_size)?,
    };
    let bn_eps = bn_eps(o)?;
    let weight_init = WeightInit::parse(o.weight_init.as_deref().unwrap_or("kaiming-normal"))?;
    let settings = VggSettings {
        in_channels: cfg.in_channels,
        num_classes: cfg.num_classes,
        image_size: cfg.image_size,
        weight_init,
        bn_eps,
        grid: cfg.grid()?,
    };
    Ok((widths, settings))
}

/// The original's `--weight-init` choices (`lib/Models/initialization.py`, §3.4), applied to every
/// conv and linear weight. The original falls back to kaiming-normal on an unknown name; here that
/// is an input error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightInit {
    /// `kaiming_normal_` defaults: N(0, 2/fan_in).
    KaimingNormal,
    /// `kaiming_uniform_` defaults: U(±√(6/fan_in)).
    KaimingUniform,
    /// `xavier_normal_`: N(0, 2/(fan_in + fan_out)).
    XavierNormal,
    /// `xavier_uniform_`: U(±√(6/(fan_in + fan_out))).
    XavierUniform,
}

impl WeightInit {
    pub const NAMES: &'static [&'static str] =
        &["kaiming-normal", "kaiming-uniform", "xavier-normal", "xavier-uniform"];

    pub fn parse(name: &str) -> Result<WeightInit> {
        Ok(match name {
            "kaiming-normal" => WeightInit::KaimingNormal,
            "kaiming-uniform" => WeightInit::KaimingUniform,
            "xavier-normal" => WeightInit::XavierNormal,
            "xavier-uniform" => WeightInit::XavierUniform,
            _ => {
                return Err(input_err!(
                    "--weight-init: '{name}' is not an initialisation; use one of {}.",
                    Self::NAMES.join(", ")
                ))
            }
        })
    }

    /// The weight initialiser for a layer with these fans (a conv's fans include its 3×3 kernel).
    fn init(self, fan_in: i64, fan_out: i64) -> Init {
        let (fan_in, fans) = (fan_in as f64, (fan_in + fan_out) as f64);
        match self {
            WeightInit::KaimingNormal => Init::Randn { mean: 0.0, stdev: (2.0 / fan_in).sqrt() },
            WeightInit::KaimingUniform => uniform((6.0 / fan_in).sqrt()),
            WeightInit::XavierNormal => Init::Randn { mean: 0.0, stdev: (2.0 / fans).sqrt() },
            WeightInit::XavierUniform => uniform((6.0 / fans).sqrt()),
        }
    }
}

fn uniform(bound: f64) -> Init {
    Init::Uniform { lo: -bound, up: bound }
}

/// Everything [`VggFeatures::new`] needs besides the widths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VggSettings {
    pub in_channels: i64,
    pub num_classes: i64,
    /// Input side; five 2×2 pools must leave at least 1×1.
    pub image_size: i64,
    pub weight_init: WeightInit,
    /// BatchNorm epsilon; 0 builds the network without BN, as the original's `-bn 0` (§2.9).
    pub bn_eps: f64,
    /// Dense, or checkered (checkered.md §3: the same variables on submap stacks; not in the sweep).
    pub grid: Grid,
}

/// One conv (or hidden linear) layer with its optional batch norm; ReLU follows.
#[derive(Debug)]
struct FeatureLayer<L> {
    weight: L,
    bn: Option<BatchNorm>,
}

impl<L: Layer> Layer for FeatureLayer<L> {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let y = self.weight.forward(x, pass);
        match &self.bn {
            Some(bn) => bn.forward(&y, pass),
            None => y,
        }
        .relu()
    }
}

/// The sweep's VGG (see the module documentation).
#[derive(Debug)]
pub struct VggFeatures {
    grid: Grid,
    /// Five blocks of conv layers, each with the name of the pool that closes it.
    blocks: Vec<(Vec<FeatureLayer<Conv2d>>, String)>,
    hidden: Vec<FeatureLayer<Linear>>,
    output: Linear,
}

impl VggFeatures {
    /// The network for `widths` (every conv, then the two hidden FC layers; `vgg_depth − 1` entries).
    pub fn new(root: &nn::Path, widths: &[i64], s: &VggSettings) -> Result<VggFeatures> {
        let per_block = check_widths(widths)?;
        let final_side = s.image_size >> 5;
        if final_side < 1 {
            return Err(input_err!(
                "vgg-features: five 2×2 max-pools need inputs of at least 32×32, got {0}×{0} (use --resize 32).",
                s.image_size
            ));
        }
        let bn = |p: &nn::Path, c: i64| (s.bn_eps > 0.0).then(|| BatchNorm::new(p, c).eps(s.bn_eps));
        let features = root / "features";
        let mut blocks = Vec::new();
        let (mut cin, mut next) = (s.in_channels, 0);
        for (b, count) in [2, 2, per_block, per_block, per_block].into_iter().enumerate() {
            let block = &features / format!("block{}", b + 1) / "block";
            let mut layers = Vec::new();
            for l in 1..=count {
                let p = &block / format!("conv_layer{l}") / "convlayer";
                let cout = widths[next];
                let spec = ConvSpec::new(3).padding(1).init(s.weight_init.init(9 * cin, 9 * cout)).grid(s.grid);
                let conv = Conv2d::new(&(&p / format!("conv{l}")), cin, cout, spec);
                layers.push(FeatureLayer { weight: conv, bn: bn(&(&p / format!("bn{l}")), cout) });
                (cin, next) = (cout, next + 1);
            }
            blocks.push((layers, path_name(&(&block / "mp"))));
        }
        let fc_block = root / "classifier" / "0" / "fc_block";
        let mut fan_in = cin * final_side * final_side;
        let mut hidden = Vec::new();
        for (l, &width) in widths[next..].iter().enumerate() {
            let p = &fc_block / format!("fc_layer{l}") / "fclayer";
            let fc =
                Linear::without_bias(&(&p / format!("fc{}", l + 1)), fan_in, width, s.weight_init.init(fan_in, width));
            hidden.push(FeatureLayer { weight: fc, bn: bn(&(&p / format!("bn{}", l + 1)), width) });
            fan_in = width;
        }
        let init = s.weight_init.init(fan_in, s.num_classes);
        let output = Linear::new(&(&fc_block / "final_layer"), fan_in, s.num_classes, init, Some(Init::Const(0.0)));
        Ok(VggFeatures { grid: s.grid, blocks, hidden, output })
    }
}

impl Layer for VggFeatures {
    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Tensor {
        let mut y = self.grid.input(x);
        for (layers, pool) in &self.blocks {
            for layer in layers {
                y = layer.forward(&y, pass);
            }
            y = self.grid.max_pool2d(pool, &y, 2, 2, 0, pass);
        }
        y = self.grid.merge_submaps(&y).flatten(1, -1);
        for layer in &self.hidden {
            y = layer.forward(&y, pass);
        }
        self.output.forward(&y.dropout(CLASSIFIER_DROPOUT, pass.train), pass)
    }
}

/// The trainable parameter count of [`VggFeatures`] for `widths` (conv and linear weights, BN γ and β,
/// the output bias) — the number `convtrain summary` reports.
pub fn trainable_parameters(widths: &[i64], s: &VggSettings) -> i64 {
    let convs = widths.len() - 2;
    let bn = if s.bn_eps > 0.0 { 2 } else { 0 };
    let side = s.image_size >> 5;
    let mut cin = s.in_channels;
    let mut total = 0;
    for (i, &w) in widths.iter().enumerate() {
        let fan_in = if i < convs {
            9 * cin
        } else if i == convs {
            cin * side * side
        } else {
            cin
        };
        total += fan_in * w + bn * w;
        cin = w;
    }
    total + cin * s.num_classes + s.num_classes
}

fn build_vgg_features(root: &nn::Path, cfg: &ModelConfig) -> Result<Box<dyn Layer>> {
    let (widths, settings) = resolve(cfg, &cfg.options()?)?;
    Ok(Box::new(VggFeatures::new(root, &widths, &settings)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Model;
    use std::collections::HashMap;
    use tch::{Device, Kind};

    fn settings(num_classes: i64) -> VggSettings {
        VggSettings {
            in_channels: 3,
            num_classes,
            image_size: 32,
            weight_init: WeightInit::KaimingNormal,
            bn_eps: DEFAULT_BN_EPS,
            grid: Grid::Dense,
        }
    }

    fn build(widths: &[i64], s: &VggSettings) -> (nn::VarStore, VggFeatures) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = VggFeatures::new(&vs.root(), widths, s).unwrap();
        (vs, net)
    }

    fn count(vs: &nn::VarStore) -> i64 {
        vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
    }

    #[test]
    fn parameter_counts_equal_the_generator_and_the_csv_formula() {
        // Appendix A #1, #161 and #193 (depth 16) and the first depth-10 variant, 10 and 100 classes.
        let d16 = variants(16, 10, 32).unwrap();
        let d10 = variants(10, 100, 32).unwrap();
        for (v, classes) in [(&d16[0], 10), (&d16[160], 10), (&d16[192], 100), (&d10[0], 100)] {
            let s = settings(classes);
            let (vs, _) = build(&v.widths, &s);
            let bn_and_bias = 2 * v.widths.iter().sum::<i64>() + classes;
            assert_eq!(count(&vs), trainable_parameters(&v.widths, &s), "variant {}", v.id);
            assert_eq!(count(&vs), csv_parameters(&v.widths, classes) + bn_and_bias, "variant {}", v.id);
        }
        assert_eq!(d16[0].parameters + 2 * 5000 + 10, 27_216_561);
        let (vs, _) = build(&d16[0].widths, &VggSettings { bn_eps: 0.0, ..settings(10) });
        assert_eq!(count(&vs), 27_206_551 + 10);
    }

    #[test]
    fn forward_shapes_and_authors_names() {
        tch::manual_seed(0);
        let widths = [8, 9, 10, 11, 12, 13, 14, 6, 5];
        let (vs, net) = build(&widths, &settings(7));
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let (y, trace) = crate::models::pass::traced(true, |pass| net.forward(&x, pass));
        assert_eq!(y.size(), [2, 7]);
        let shape = |name: &str| trace.iter().find(|t| t.name == name).unwrap().shape.clone();
        assert_eq!(shape("features.block1.block.conv_layer2.convlayer.conv2"), [2, 9, 32, 32]);
        assert_eq!(shape("features.block1.block.mp"), [2, 9, 16, 16]);
        assert_eq!(shape("features.block5.block.conv_layer1.convlayer.bn1"), [2, 14, 2, 2]);
        assert_eq!(shape("features.block5.block.mp"), [2, 14, 1, 1]);
        assert_eq!(shape("classifier.0.fc_block.fc_layer1.fclayer.fc2"), [2, 5]);
        let names: Vec<String> = vs.variables().into_keys().collect();
        for want in [
            "features.block3.block.conv_layer1.convlayer.conv1.weight",
            "features.block2.block.conv_layer2.convlayer.bn2.running_var",
            "classifier.0.fc_block.fc_layer0.fclayer.fc1.weight",
            "classifier.0.fc_block.fc_layer1.fclayer.bn2.bias",
            "classifier.0.fc_block.final_layer.bias",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
        assert_eq!(names.iter().filter(|n| n.ends_with(".bias")).count(), 7 + 2 + 1);
        // A 64×64 input leaves 2×2 after five pools: the first FC layer takes 14·4 features.
        let (vs, _) = build(&widths, &VggSettings { image_size: 64, ..settings(7) });
        assert_eq!(vs.variables()["classifier.0.fc_block.fc_layer0.fclayer.fc1.weight"].size(), [6, 56]);
    }

    #[test]
    fn init_statistics_follow_weight_init() {
        tch::manual_seed(1);
        let widths = [64, 64, 128, 128, 256, 256, 256, 512, 512];
        for init in WeightInit::NAMES {
            let s = VggSettings { weight_init: WeightInit::parse(init).unwrap(), ..settings(10) };
            let (vs, _) = build(&widths, &s);
            let v: HashMap<String, Tensor> = vs.variables();
            let std = |name: &str| f64::try_from(v[name].std(true)).unwrap();
            let conv = "features.block4.block.conv_layer1.convlayer.conv1.weight"; // 256 → 256
            let fc = "classifier.0.fc_block.fc_layer1.fclayer.fc2.weight"; // 512 → 512
            let out = "classifier.0.fc_block.final_layer.weight"; // 512 → 10
            let (conv_want, fc_want, out_want) = match *init {
                "kaiming-normal" | "kaiming-uniform" => (2.0 / 2304.0, 2.0 / 512.0, 2.0 / 512.0),
                _ => (1.0 / 2304.0, 1.0 / 512.0, 2.0 / 522.0),
            };
            for (name, want) in [(conv, conv_want), (fc, fc_want), (out, out_want)] {
                let (got, want) = (std(name), f64::sqrt(want));
                assert!((got - want).abs() / want < 0.05, "{init} {name}: std {got}, want {want}");
            }
            let uniform = init.ends_with("uniform");
            let max = f64::try_from(v[conv].abs().max()).unwrap();
            assert_eq!(max <= 1.000001 * (3.0 * conv_want).sqrt(), uniform, "{init}: |w| max {max}");
            let sum = |name: &str| f64::try_from(v[name].sum(Kind::Double)).unwrap();
            assert_eq!(sum("classifier.0.fc_block.final_layer.bias"), 0.0);
            assert_eq!(sum("features.block1.block.conv_layer1.convlayer.bn1.weight"), 64.0);
            assert_eq!(sum("classifier.0.fc_block.fc_layer0.fclayer.bn1.bias"), 0.0);
        }
    }

    #[test]
    fn batch_norm_uses_eps_1e4_in_eval_mode() {
        tch::manual_seed(2);
        let (vs, net) = build(&[2, 2, 2, 2, 2, 2, 2, 2, 2], &settings(2));
        let v = vs.variables();
        // Running variance 1e-4 on conv1_1: eps 1e-4 halves y²; eps 1e-5 would nearly not change it.
        let _ = tch::no_grad(|| {
            v["features.block1.block.conv_layer1.convlayer.bn1.running_var"].shallow_clone().fill_(1e-4)
        });
        let x = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        let weight = &v["features.block1.block.conv_layer1.convlayer.conv1.weight"];
        let conv = x.conv2d(weight, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        let manual = &conv / (2e-4f64).sqrt();
        let block1 = net.blocks[0].0[0].forward(&x, &mut Pass::new(false));
        assert!(f64::try_from((block1 - manual.relu()).abs().max()).unwrap() < 1e-4);
    }

    #[test]
    fn builds_from_its_options_and_as_a_checkered_cnn() {
        let cfg = ModelConfig::new("vgg-features", 10, 3, 32).with_option("vgg_depth", 10).with_option("variant", 1);
        let m = Model::build(&cfg, Device::Cpu).unwrap();
        let v = &variants(10, 10, 32).unwrap()[0];
        assert_eq!(m.num_parameters(), trainable_parameters(&v.widths, &settings(10)));
        let widths = vec![4, 4, 5, 5, 6, 6, 6, 3, 3];
        let dense = ModelConfig::new("vgg-features", 10, 3, 32).with_option("widths", widths);
        let checkered = ModelConfig { checkered: true, ..dense.clone() };
        let (dense, checkered) =
            (Model::build(&dense, Device::Cpu).unwrap(), Model::build(&checkered, Device::Cpu).unwrap());
        assert_eq!(dense.num_parameters(), checkered.num_parameters());
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let (y, trace) = tch::no_grad(|| checkered.forward_traced(&x, false));
        assert_eq!(y.size(), [2, 10]);
        assert_eq!(trace.iter().find(|t| t.name == "features.block5.block.mp").unwrap().shape, [2, 6, 32, 1, 1]);
    }

    #[test]
    fn bad_options_are_input_errors() {
        let cfg = ModelConfig::new("vgg-features", 10, 3, 32);
        let opts = |o: VggFeaturesOptions| resolve(&cfg, &o).map(|(w, _)| w);
        assert_eq!(opts(VggFeaturesOptions::default()).unwrap(), base_widths(16, 32).unwrap());
        assert_eq!(opts(VggFeaturesOptions { variant: Some(1), ..Default::default() }).unwrap()[..2], [823, 961]);
        let v13 = VggFeaturesOptions { variant: Some(3), vgg_depth: Some(13), ..Default::default() };
        assert_eq!(opts(v13).unwrap(), variants(13, 10, 32).unwrap()[2].widths);
        for (o, needle) in [
            (VggFeaturesOptions { variant: Some(1), widths: Some(vec![2; 15]), ..Default::default() }, "choose one"),
            (VggFeaturesOptions { variant: Some(500), ..Default::default() }, "1 to 193"),
            (VggFeaturesOptions { vgg_depth: Some(12), ..Default::default() }, "--vgg-depth"),
            (VggFeaturesOptions { widths: Some(vec![2; 10]), ..Default::default() }, "9, 12, 15"),
            (VggFeaturesOptions { widths: Some(vec![2; 9]), vgg_depth: Some(13), ..Default::default() }, "takes 12"),
            (VggFeaturesOptions { widths: Some(vec![0; 9]), ..Default::default() }, "at least 1"),
            (VggFeaturesOptions { weight_init: Some("orthogonal".into()), ..Default::default() }, "xavier-uniform"),
            (VggFeaturesOptions { bn_eps: Some(-1.0), ..Default::default() }, "--bn-eps"),
        ] {
            let e = match opts(o.clone()) {
                Ok(w) => match VggFeatures::new(&nn::VarStore::new(Device::Cpu).root(), &w, &settings(10)) {
                    Ok(_) => panic!("{o:?} accepted"),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            assert!(e.contains(needle), "{o:?}: {e}");
        }
        let small = VggFeatures::new(
            &nn::VarStore::new(Device::Cpu).root(),
            &[2; 9],
            &VggSettings { image_size: 28, ..settings(10) },
        );
        assert!(small.unwrap_err().to_string().contains("--resize 32"));
        assert_eq!(abort_threshold(10), 20.0);
        assert_eq!(abort_threshold(100), 2.0);
    }
}
