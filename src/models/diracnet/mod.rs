//! DiracNets v2 (Zagoruyko & Komodakis, arXiv 1706.00388; spec/diracnet.md): plain networks without
//! skip connections whose 3×3 convolutions are Dirac-parameterised, Ŵ = diag(α)·δ + diag(β)·normalize(W).
//!
//! - [`DiracConv`] (1-D, 2-D, 3-D): the layer, for any network (the [`conv`] module has an example).
//! - `diracnet`: DiracNet-d-w of `diracnet.py` — the CIFAR network (depth 6n+4, 3 groups of 2n blocks)
//!   or the ImageNet one (DiracNet-18/34, 7×7 stem, 4 groups). **Which network is `dirac_net`**
//!   (`--dirac-net cifar|imagenet`), which the recipe sets from the dataset: `imagefolder` ⇒ ImageNet,
//!   every other dataset ⇒ CIFAR. The depth alone cannot decide: 34 = 6·5+4 is a CIFAR depth too (the
//!   README's DiracNet-34-2).
//! - `diracnet-folded`: the same function with BN and the Dirac parameterisation folded into plain
//!   conv weight + bias (§4), as the authors' released `diracnet18v2folded.pth`; `export --materialize`
//!   writes it.
//!
//! Initialisation (§3.4, §2.4): HEAD by default (Kaiming-normal W); `--dirac-init normal` draws the
//! Dirac convolutions' W from N(0,1) like the January-2018 code that trained the released ImageNet
//! weights. The forward pass is the same (W is normalised), but the gradient through normalize scales
//! as 1/‖W‖ and W gets weight decay, so the effective step size of W differs (‖W[o]‖ ≈ √2 vs ≈ √(9·in)).
//!
//! Names: the model's variables are the functional model's keys, so `export --format pytorch` only adds
//! the constant `eye<out>_<in>_3_3` deltas the authors' flat dict holds, and `--init-from` accepts the
//! authors' tensors with or without them (the released `diracnet18-v2_checkpoint.pth` is a dict of
//! `params` and `stats`; both together are this model's tensors).
pub mod conv;
mod net;

pub use conv::{dirac_delta, dirac_kernel, normalize_filters, scaled_delta, DiracConv, DiracNames};
pub use net::{fold, DiracNet, FoldedDiracNet, Geometry};

use super::options::Validate;
use super::{Arch, ModelConfig, NamedTensors};
use crate::data::{CIFAR10_MEAN, CIFAR10_STD};
use crate::error::Result;
use crate::input_err;
use crate::models::pass::Layer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::nn;
use tch::Tensor;

/// Where this family's `defaults` come from (named in the start-up log).
const RECIPE: &str = "the DiracNet repository's train.py (diracnet.md §5)";

pub const ARCHS: &[Arch] = &[
    Arch {
        import: from_authors_names,
        export: |named, request| {
            request.original_names_only()?;
            Ok(to_authors_names(named))
        },
        materialize: Some(materialize_config),
        defaults: recipe,
        recipe: RECIPE,
        ..Arch::new(
            "diracnet",
            "diracnet",
            "DiracNet-d-w v2: plain ReLU-conv-BN chain with Dirac-parameterised convs (CIFAR 6n+4, ImageNet 18/34)",
            build_diracnet,
        )
    },
    Arch {
        import: from_folded_names,
        defaults: recipe,
        recipe: RECIPE,
        ..Arch::new(
            "diracnet-folded",
            "diracnet",
            "DiracNet with BN and the Dirac parameterisation folded in: plain conv+bias/ReLU/max-pool chain",
            build_folded,
        )
    },
];

/// Which DiracNet (diracnet.md §3.2 / §3.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// 3×3 stem + BN + ReLU, 3 groups of 2n blocks (depth 6n+4), widths 16/32/64·w.
    #[default]
    Cifar,
    /// 7×7 stride-2 stem + BN + max-pool, 4 groups (depth 18 or 34), widths 64/128/256/512·w.
    Imagenet,
}

impl Network {
    /// The option value: `cifar` or `imagenet`.
    pub fn name(&self) -> &'static str {
        match self {
            Network::Cifar => "cifar",
            Network::Imagenet => "imagenet",
        }
    }
}

/// Initialisation of the Dirac convolutions' W (diracnet.md §2.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiracInit {
    /// HEAD (since June 2018): `kaiming_normal_`, N(0, 2/(9·in)).
    #[default]
    Kaiming,
    /// January 2018 (`df843a7`, the released ImageNet weights): N(0, 1).
    Normal,
}

/// DiracNet options (diracnet.md §2.4, §3).
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct DiracOptions {
    /// DiracNet: cifar (depth 6n+4) or imagenet (depth 18|34); default from the dataset (imagefolder: imagenet).
    #[arg(long, value_enum)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirac_net: Option<Network>,
    /// DiracNet: init of the Dirac convs' W: kaiming (HEAD, default) or normal (N(0,1), the released ImageNet weights').
    #[arg(long, value_enum)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirac_init: Option<DiracInit>,
}

impl Validate for DiracOptions {}

fn build_diracnet(root: &nn::Path, cfg: &ModelConfig) -> Result<Box<dyn Layer>> {
    let geometry = Geometry::from_config(cfg)?;
    let init = cfg.options::<DiracOptions>()?.dirac_init.unwrap_or_default();
    Ok(Box::new(DiracNet::new(root, geometry, init, cfg.in_channels, cfg.num_classes)?))
}

fn build_folded(root: &nn::Path, cfg: &ModelConfig) -> Result<Box<dyn Layer>> {
    let geometry = Geometry::from_config(cfg)?;
    Ok(Box::new(FoldedDiracNet::new(root, geometry, cfg.in_channels, cfg.num_classes)))
}

/// `train.py`'s recipe (diracnet.md §5): SGD momentum 0.9 without Nesterov, lr 0.1, weight decay on
/// every tensor with more than one dimension only (α, β, BN γ/β and the fc bias excluded, §5.3), the
/// lr multiplied before the listed 1-based epochs with the momentum buffers reset there (a new
/// optimizer, §5.4), the test set evaluated after every epoch (no held-out split).
///
/// - `imagefolder` (ImageNet, the README command): batch 256, wd 1e-4, ×0.1 before epochs 30/60/90 of
///   100 (milestones 29/59/89, 0-based), RandomResizedCrop(224) + flip; validation Resize(256) +
///   CenterCrop(224) (the image folder's eval transform); ImageNet mean/std (the dataset's default).
/// - Every other dataset (CIFAR): batch 128, wd 5e-4, ×0.2 before epochs 60/120/160 of 200 (milestones
///   59/119/159), flip then reflect-pad 4 + random crop (HEAD's Pad(reflect) → flip → RandomCrop: the
///   flip commutes with the symmetric pad); on CIFAR-10 and CIFAR-100 alike the CIFAR-10 mean/std
///   [125.3, 123.0, 113.9]/255, [63.0, 62.1, 66.7]/255 (§5.2); other datasets keep their own statistics.
/// - MNIST, Fashion-MNIST, KMNIST (not in the paper): the CIFAR optimiser and batch, but the lr annealed
///   to 0 by cosine over the run (20 epochs; `--epochs` rescales it) and a 2-pixel crop without flip.
///   Under the CIFAR schedule a 2-epoch DiracNet-16-2 ends at the full lr 0.1 and scored 98.18 %.
pub fn recipe(dataset: &str) -> serde_json::Value {
    let common = serde_json::json!({
        "lr": 0.1, "momentum": 0.9, "nesterov": false, "dampening": 0.0, "no_decay_1d": true,
        "schedule": "multistep", "reset_momentum": true, "val_split": 0.0,
    });
    let specific = if dataset == "imagefolder" {
        serde_json::json!({
            "dirac_net": "imagenet", "epochs": 100, "batch_size": 256, "weight_decay": 1e-4,
            "milestones": [29, 59, 89], "gammas": [0.1], "augment": ["rrc", "flip"],
        })
    } else if super::is_grey_28(dataset) {
        serde_json::json!({
            "dirac_net": "cifar", "epochs": 20, "batch_size": 128, "weight_decay": 5e-4,
            "schedule": "cosine", "lr_min": 0.0, "augment": ["crop:2"],
        })
    } else {
        let mut r = serde_json::json!({
            "dirac_net": "cifar", "epochs": 200, "batch_size": 128, "weight_decay": 5e-4,
            "milestones": [59, 119, 159], "gammas": [0.2], "augment": ["flip", "crop:4:reflect"],
        });
        if dataset == "cifar10" || dataset == "cifar100" {
            r["mean"] = serde_json::json!(CIFAR10_MEAN);
            r["std"] = serde_json::json!(CIFAR10_STD);
        }
        r
    };
    let mut out = common;
    if let (Some(o), serde_json::Value::Object(s)) = (out.as_object_mut(), specific) {
        o.extend(s);
    }
    out
}

/// `export --materialize`: the folded network (`diracnet-folded`, same geometry) and its tensors.
fn materialize_config(named: &[(String, Tensor)], cfg: &ModelConfig) -> Result<(ModelConfig, NamedTensors)> {
    let geometry = Geometry::from_config(cfg)?;
    let mut folded = ModelConfig {
        arch: "diracnet-folded".into(),
        depth: Some(geometry.depth),
        width: Some(geometry.width),
        ..cfg.clone()
    };
    folded.options.remove("dirac_init");
    folded.options.insert("dirac_net".into(), geometry.network.name().into());
    Ok((folded, fold(named, &geometry, cfg.in_channels, cfg.num_classes)?))
}

/// The key of the authors' shared delta for a weight shape, `eye64_64_3_3` (diracnet.md §2.1).
pub fn delta_name(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(i64::to_string).collect();
    format!("eye{}", dims.join("_"))
}

/// convtrain's tensors → the authors' flat dict: the names are already theirs; the constant deltas
/// `eye<shape>` of every Dirac weight shape are added, so that `define_diracnet`'s `f(inputs, params,
/// mode)` runs on the file as it is. Sorted by name.
pub fn to_authors_names(named: &[(String, Tensor)]) -> NamedTensors {
    let mut out: BTreeMap<String, Tensor> = named.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
    for (name, t) in named {
        if name.starts_with("group") && name.ends_with(".conv") {
            out.entry(delta_name(&t.size())).or_insert_with(|| dirac_delta(&t.size(), t.device()));
        }
    }
    out.into_iter().collect()
}

/// The authors' flat dict (`params` and `stats` of their checkpoints merged) → convtrain's tensors:
/// drops the `eye*` deltas, each checked to be the `dirac_` tensor of its shape, and a DataParallel
/// `module.` prefix. The folded network's names are refused with a pointer to `diracnet-folded`.
pub fn from_authors_names(named: NamedTensors) -> Result<NamedTensors> {
    let mut out = Vec::new();
    for (name, t) in named {
        let name = name.strip_prefix("module.").map(str::to_string).unwrap_or(name);
        if name.starts_with("features.") || name.ends_with(".conv.weight") {
            return Err(input_err!(
                "'{name}' is a tensor of the folded DiracNet (BN and the Dirac parameterisation folded into conv weight + bias); \
                 load these weights with --arch diracnet-folded."
            ));
        }
        if name.starts_with("eye") {
            if t.dim() < 3 || !t.equal(&dirac_delta(&t.size(), t.device()).to_kind(t.kind())) {
                return Err(input_err!(
                    "'{name}' is not the Dirac delta torch.nn.init.dirac_ makes for shape {:?}; the authors' eye* tensors are constant.",
                    t.size()
                ));
            }
            continue;
        }
        out.push((name, t));
    }
    Ok(out)
}

/// The authors' folded `state_dict` (`features.conv.weight`, `features.group0.block0.conv.bias`,
/// `fc.weight`, ...) is the folded network's own naming; the notebook's names before the `features.`
/// prefix (`conv.weight`, `group0.block0.conv.weight`) get it. The unfolded network's tensors are
/// refused with a pointer to `diracnet` and `export --materialize`.
pub fn from_folded_names(named: NamedTensors) -> Result<NamedTensors> {
    let mut out = Vec::new();
    for (name, t) in named {
        let name = name.strip_prefix("module.").map(str::to_string).unwrap_or(name);
        let unfolded = name == "conv"
            || name.starts_with("eye")
            || name.starts_with("bn.")
            || [".alpha", ".beta", ".conv", ".running_mean", ".running_var"].iter().any(|s| name.ends_with(s));
        if unfolded {
            return Err(input_err!(
                "'{name}' is a tensor of the unfolded DiracNet (Dirac parameters and BatchNorm); load these weights with --arch diracnet, \
                 or fold them first with convtrain export --materialize."
            ));
        }
        let folded_name =
            if name.starts_with("conv.") || name.starts_with("group") { format!("features.{name}") } else { name };
        out.push((folded_name, t));
    }
    Ok(out)
}

/// The learned α and β of one Dirac convolution (diracnet.md §2.3).
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityWeights {
    /// `groupG.blockB`.
    pub name: String,
    pub group: usize,
    /// α of the output channels that have an identity path (the first min(in, out); the others'
    /// α never receives a gradient, §2.4).
    pub alpha: Vec<f64>,
    /// β of every output channel.
    pub beta: Vec<f64>,
}

/// α and β of every Dirac convolution in a DiracNet's tensors (convtrain's or the authors' names, which
/// are the same), in depth order (group, then block).
pub fn identity_weights(named: &[(String, Tensor)]) -> Result<Vec<IdentityWeights>> {
    let find = |n: &str| named.iter().find(|(k, _)| k == n).map(|(_, t)| t);
    let values = |t: &Tensor| -> Result<Vec<f64>> {
        Ok(Vec::<f64>::try_from(t.detach().to_device(tch::Device::Cpu).to_kind(tch::Kind::Double).flatten(0, -1))?)
    };
    let mut layers: BTreeMap<(usize, usize), IdentityWeights> = BTreeMap::new();
    for (name, alpha) in named {
        let Some(base) = name.strip_suffix(".alpha") else { continue };
        let parsed = base.strip_prefix("group").and_then(|r| r.split_once(".block"));
        let Some((g, b)) = parsed.and_then(|(g, b)| Some((g.parse::<usize>().ok()?, b.parse::<usize>().ok()?))) else {
            continue;
        };
        let (Some(beta), Some(w)) = (find(&format!("{base}.beta")), find(&format!("{base}.conv"))) else { continue };
        if w.dim() < 2 {
            continue;
        }
        let identity = w.size()[0].min(w.size()[1]) as usize;
        let mut alpha = values(alpha)?;
        alpha.truncate(identity);
        layers.insert((g, b), IdentityWeights { name: base.to_string(), group: g, alpha, beta: values(beta)? });
    }
    Ok(layers.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{find, Model};
    use std::collections::HashMap;
    use std::path::Path;
    use tch::{Device, Kind};

    fn cfg(arch: &str, network: &str, depth: i64, width: i64, classes: i64, channels: i64, size: i64) -> ModelConfig {
        ModelConfig { depth: Some(depth), width: Some(width), ..ModelConfig::new(arch, classes, channels, size) }
            .with_option("dirac_net", network)
    }

    fn max_abs(t: &Tensor) -> f64 {
        f64::try_from(t.abs().max()).unwrap()
    }

    /// A model with BN statistics from a few training passes and 1-D parameters off their init.
    fn trained(c: &ModelConfig) -> Model {
        let m = Model::build(c, Device::Cpu).unwrap();
        tch::no_grad(|| {
            for _ in 0..3 {
                let x = Tensor::randn([6, c.in_channels, c.image_size, c.image_size], (Kind::Float, Device::Cpu));
                let _ = m.forward_t(&(x * 1.5 + 0.3), true);
            }
            for (_, mut t) in m.named_parameters() {
                if t.dim() == 1 {
                    let noise = t.randn_like() * 0.2;
                    t += noise;
                }
            }
        });
        m
    }

    #[test]
    fn parameter_counts_match_diracnet_md_table() {
        // diracnet.md §3.5: (depth, width, CIFAR-10, CIFAR-100).
        let table = [
            (16, 1, 173_402, 179_252),
            (34, 1, 466_394, 472_244),
            (34, 2, 1_854_378, 1_865_988),
            (28, 5, 9_124_250, 9_153_140),
            (28, 10, 36_450_090, 36_507_780),
        ];
        for (d, w, c10, c100) in table {
            for (classes, want) in [(10, c10), (100, c100)] {
                let m = Model::build(&cfg("diracnet", "cifar", d, w, classes, 3, 32), Device::Cpu).unwrap();
                assert_eq!(m.num_parameters(), want, "DiracNet-{d}-{w}, {classes} classes");
            }
        }
        // The verified ImageNet counts, unfolded and folded (§3.5).
        for (d, want, folded) in [(18, 11_523_368, 11_511_784), (34, 21_638_952, 21_616_232)] {
            let m = Model::build(&cfg("diracnet", "imagenet", d, 1, 1000, 3, 224), Device::Cpu).unwrap();
            assert_eq!(m.num_parameters(), want, "DiracNet-{d}");
            let f = Model::build(&cfg("diracnet-folded", "imagenet", d, 1, 1000, 3, 224), Device::Cpu).unwrap();
            assert_eq!(f.num_parameters(), folded, "DiracNet-{d} folded");
        }
        // train.py's defaults: depth 16, width 1 (CIFAR); depth 18 (ImageNet).
        let c = ModelConfig::new("diracnet", 10, 3, 32);
        assert_eq!(Model::build(&c, Device::Cpu).unwrap().num_parameters(), 173_402);
        let c = ModelConfig::new("diracnet", 1000, 3, 224).with_option("dirac_net", "imagenet");
        assert_eq!(Model::build(&c, Device::Cpu).unwrap().num_parameters(), 11_523_368);
    }

    #[test]
    fn variables_have_the_functional_models_names_and_inits() {
        tch::manual_seed(0);
        let m = Model::build(&cfg("diracnet", "cifar", 10, 1, 10, 3, 32), Device::Cpu).unwrap();
        let shapes: Vec<(String, Vec<i64>)> = m.named_variables().into_iter().map(|(n, t)| (n, t.size())).collect();
        let mut want = vec![("conv".to_string(), vec![16, 3, 3, 3])];
        let bn = |v: &mut Vec<(String, Vec<i64>)>, p: &str, c: i64| {
            for s in ["bias", "running_mean", "running_var", "weight"] {
                v.push((format!("{p}.{s}"), vec![c]));
            }
        };
        bn(&mut want, "bn", 16);
        for (g, (cin, c)) in [(16, 16), (16, 32), (32, 64)].into_iter().enumerate() {
            for b in 0..2 {
                let base = format!("group{g}.block{b}");
                want.push((format!("{base}.alpha"), vec![c]));
                want.push((format!("{base}.beta"), vec![c]));
                bn(&mut want, &format!("{base}.bn"), c);
                want.push((format!("{base}.conv"), vec![c, if b == 0 { cin } else { c }, 3, 3]));
            }
        }
        want.push(("fc.bias".into(), vec![10]));
        want.push(("fc.weight".into(), vec![10, 64]));
        want.sort();
        assert_eq!(shapes, want);
        let v: HashMap<String, Tensor> = m.named_variables().into_iter().collect();
        assert!(v["group1.block0.alpha"].equal(&Tensor::ones([32], (Kind::Float, Device::Cpu))));
        assert!(v["group1.block0.beta"].allclose(
            &Tensor::full([32], 0.1, (Kind::Float, Device::Cpu)),
            0.0,
            0.0,
            false
        ));
        let gamma = &v["group2.block1.bn.weight"];
        assert!(f64::try_from(gamma.min()).unwrap() >= 0.0 && f64::try_from(gamma.max()).unwrap() < 1.0);
        assert_eq!(max_abs(&v["fc.bias"]), 0.0);
        // Kaiming-normal W (std √(2/(9·32)) for group2.block0), or N(0,1) with --dirac-init normal.
        let std = f64::try_from(v["group2.block0.conv"].std(true)).unwrap();
        assert!((std - (2.0f64 / 288.0).sqrt()).abs() < 0.01, "{std}");
        let normal = cfg("diracnet", "cifar", 10, 1, 10, 3, 32).with_option("dirac_init", "normal");
        let m = Model::build(&normal, Device::Cpu).unwrap();
        let v: HashMap<String, Tensor> = m.named_variables().into_iter().collect();
        assert!((f64::try_from(v["group2.block0.conv"].std(true)).unwrap() - 1.0).abs() < 0.02);
        assert!(f64::try_from(v["conv"].std(true)).unwrap() < 0.5, "the stem stays Kaiming");
    }

    #[test]
    fn any_input_the_pooling_allows_works_and_bad_geometry_is_refused() {
        for (network, depth, channels, size) in
            [("cifar", 10, 1, 28), ("cifar", 10, 3, 4), ("imagenet", 18, 3, 32), ("cifar", 16, 3, 7)]
        {
            let m = Model::build(&cfg("diracnet", network, depth, 1, 7, channels, size), Device::Cpu).unwrap();
            let x = Tensor::randn([2, channels, size, size], (Kind::Float, Device::Cpu));
            assert_eq!(m.forward_t(&x, false).size(), [2, 7], "{network} at {size}");
        }
        let err = |c: ModelConfig| Model::build(&c, Device::Cpu).unwrap_err().to_string();
        let e = err(cfg("diracnet", "cifar", 18, 1, 10, 3, 32));
        assert!(
            e.contains("--depth 18") && e.contains("6n+4") && e.contains("10, 16, 22") && e.contains("imagefolder"),
            "{e}"
        );
        let e = err(cfg("diracnet", "imagenet", 16, 1, 10, 3, 224));
        assert!(e.contains("18 or 34") && e.contains("--dirac-net cifar"), "{e}");
        assert!(err(cfg("diracnet", "cifar", 4, 1, 10, 3, 32)).contains("6n+4"));
        assert!(err(cfg("diracnet", "cifar", 10, 0, 10, 3, 32)).contains("--width"));
        assert!(err(cfg("diracnet", "cifar", 10, 1, 10, 3, 3)).contains("too small"));
        assert!(err(cfg("diracnet-folded", "imagenet", 18, 1, 10, 3, 16)).contains("too small"));
        let checkered = ModelConfig { checkered: true, ..cfg("diracnet", "cifar", 10, 1, 10, 3, 32) };
        assert!(err(checkered).contains("--checkered"));
        let bad = ModelConfig::new("diracnet", 10, 3, 32).with_option("dirac_net", "resnet");
        assert!(err(bad).contains("dirac_net"));
    }

    #[test]
    fn folded_network_gives_the_same_logits() {
        tch::manual_seed(3);
        for c in [
            cfg("diracnet", "cifar", 10, 1, 10, 3, 32),
            cfg("diracnet", "cifar", 16, 2, 100, 1, 28),
            cfg("diracnet", "imagenet", 18, 1, 5, 3, 64),
        ] {
            let m = trained(&c);
            let x = Tensor::randn([4, c.in_channels, c.image_size, c.image_size], (Kind::Float, Device::Cpu));
            let want = tch::no_grad(|| m.forward_t(&x, false));
            let materialize = find("diracnet").unwrap().materialize.unwrap();
            let (folded_cfg, tensors) = materialize(&m.named_variables(), &c).unwrap();
            assert_eq!(folded_cfg.arch, "diracnet-folded");
            assert!(tensors.iter().all(|(n, _)| n.starts_with("features.") || n.starts_with("fc.")));
            let f = Model::build(&folded_cfg, Device::Cpu).unwrap();
            f.load_named(&tensors, Path::new("folded"), None).unwrap();
            let got = tch::no_grad(|| f.forward_t(&x, false));
            let rel = max_abs(&(&got - &want)) / max_abs(&want);
            assert!(rel < 1e-5, "{c:?}: relative difference {rel}");
        }
        let m = Model::build(&cfg("diracnet", "cifar", 10, 1, 10, 3, 32), Device::Cpu).unwrap();
        let wrong = cfg("diracnet", "cifar", 10, 2, 10, 3, 32);
        let e = fold(&m.named_variables(), &Geometry::from_config(&wrong).unwrap(), 3, 10).unwrap_err().to_string();
        assert!(e.contains("'bn.weight'") && e.contains("shape"), "{e}");
        let e =
            fold(&m.named_variables()[1..], &Geometry::from_config(&wrong).unwrap(), 3, 10).unwrap_err().to_string();
        assert!(e.contains("no 'bn.weight'") || e.contains("'bn.weight' has shape"), "{e}");
    }

    #[test]
    fn authors_names_round_trip_with_or_without_deltas() {
        tch::manual_seed(4);
        let m = trained(&cfg("diracnet", "cifar", 10, 1, 10, 3, 32));
        let ours = m.named_variables();
        let theirs = to_authors_names(&ours);
        let deltas: Vec<&str> = theirs.iter().map(|(n, _)| n.as_str()).filter(|n| n.starts_with("eye")).collect();
        assert_eq!(deltas, ["eye16_16_3_3", "eye32_16_3_3", "eye32_32_3_3", "eye64_32_3_3", "eye64_64_3_3"]);
        assert_eq!(theirs.len(), ours.len() + 5);
        let eye = &theirs.iter().find(|(n, _)| n == "eye32_16_3_3").unwrap().1;
        assert_eq!(f64::try_from(eye.sum(Kind::Float)).unwrap(), 16.0);
        assert_eq!(eye.double_value(&[15, 15, 1, 1]), 1.0);
        for keep_deltas in [true, false] {
            let given: NamedTensors = theirs
                .iter()
                .filter(|(n, _)| keep_deltas || !n.starts_with("eye"))
                .map(|(n, t)| (n.clone(), t.copy()))
                .collect();
            let back = from_authors_names(given).unwrap();
            assert_eq!(back.len(), ours.len());
            for ((a, ta), (b, tb)) in ours.iter().zip(&back) {
                assert_eq!(a, b);
                assert!(ta.equal(tb), "{a}");
            }
        }
        let mut bad: NamedTensors = theirs.iter().map(|(n, t)| (n.clone(), t.copy())).collect();
        bad.push(("eye8_8_3_3".into(), Tensor::ones([8, 8, 3, 3], (Kind::Float, Device::Cpu))));
        assert!(from_authors_names(bad).unwrap_err().to_string().contains("eye8_8_3_3"));
        // Folded and unfolded tensors each point to the other architecture.
        let folded = fold(&ours, &Geometry::new(Network::Cifar, 10, 1).unwrap(), 3, 10).unwrap();
        let e = from_authors_names(folded.iter().map(|(n, t)| (n.clone(), t.copy())).collect()).unwrap_err();
        assert!(e.to_string().contains("--arch diracnet-folded"), "{e}");
        let e = from_folded_names(theirs).unwrap_err();
        assert!(e.to_string().contains("--arch diracnet") && e.to_string().contains("--materialize"), "{e}");
        // The notebook's folded names before the `features.` prefix get it.
        let notebook: NamedTensors =
            folded.iter().map(|(n, t)| (n.strip_prefix("features.").unwrap_or(n).to_string(), t.copy())).collect();
        let renamed = from_folded_names(notebook).unwrap();
        let names: Vec<&str> = renamed.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"features.conv.weight") && names.contains(&"features.group2.block1.conv.bias"));
        assert!(names.contains(&"fc.weight"));
    }

    #[test]
    fn recipe_is_train_py_and_configs_carry_it() {
        let c = recipe("cifar10");
        assert_eq!(c["milestones"], serde_json::json!([59, 119, 159]));
        assert_eq!(
            (c["nesterov"].as_bool(), c["reset_momentum"].as_bool(), c["no_decay_1d"].as_bool()),
            (Some(false), Some(true), Some(true))
        );
        assert_eq!(c["mean"], recipe("cifar100")["mean"]);
        assert!(recipe("mnist").get("mean").is_none() && recipe("mnist")["dirac_net"] == "cifar");
        // Not the paper's: the grey 28×28 datasets anneal to 0 whatever --epochs says, and never flip.
        let m = recipe("kmnist");
        assert_eq!((m["schedule"].as_str(), m["lr"].as_f64()), (Some("cosine"), Some(0.1)));
        assert_eq!(m["augment"], serde_json::json!(["crop:2"]));
        assert_eq!(recipe("cifar100")["schedule"], "multistep");
        let i = recipe("imagefolder");
        assert_eq!(
            (i["batch_size"].as_i64(), i["weight_decay"].as_f64(), i["dirac_net"].as_str()),
            (Some(256), Some(1e-4), Some("imagenet"))
        );
        assert_eq!(i["milestones"], serde_json::json!([29, 59, 89]));

        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().to_string();
            if !file.starts_with("diracnet") {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let dataset = v["dataset"].as_str().unwrap();
            let want = recipe(dataset);
            for (key, value) in want.as_object().unwrap() {
                // serde_json reads decimal floats to within an ulp: mean/std compare with a tolerance.
                let close = |a: &serde_json::Value, b: &serde_json::Value| match (a.as_array(), b.as_array()) {
                    (Some(a), Some(b)) if a.iter().all(|x| x.is_f64()) => {
                        a.len() == b.len()
                            && a.iter().zip(b).all(|(x, y)| (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-15)
                    }
                    _ => a == b,
                };
                assert!(close(&v[key], value), "{file}: {key}: {} vs {value}", v[key]);
            }
            assert_eq!(
                v.as_object().unwrap().keys().filter(|k| *k != crate::recipes::RECIPE_KEY).count(),
                want.as_object().unwrap().len() + 4,
                "{file}: extra keys"
            );
            assert_eq!(v["arch"], "diracnet");
            let (d, w) = (v["depth"].as_i64().unwrap(), v["width"].as_i64().unwrap());
            let stem = if dataset == "imagefolder" {
                format!("diracnet{d}_imagenet.json")
            } else {
                format!("diracnet{d}-{w}_{dataset}.json")
            };
            assert_eq!(file, stem);
            seen.push(file);
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                "diracnet18_imagenet.json",
                "diracnet28-10_cifar10.json",
                "diracnet28-10_cifar100.json",
                "diracnet28-5_cifar10.json",
                "diracnet28-5_cifar100.json",
                "diracnet34-2_cifar10.json",
                "diracnet34-2_cifar100.json",
                "diracnet34_imagenet.json",
            ]
        );
    }
}
