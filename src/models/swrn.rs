//! SWRN-d-w-k: the Wide ResNet of the soft-sharing repository with one [`TemplateBank`] of k templates
//! per stage, shared by the 2(N−1) 3×3 convolutions of blocks 1..N−1 (spec/swrn.md §3).
//!
//! Variable names equal the authors' `SWRN.state_dict()` keys without DataParallel's `module.` prefix
//! (`conv_3x3.weight`, `bank_1.templates`, `stage_1.1.conv1.coefficients`, `stage_1.0.convShortcut.weight`,
//! `lastact.0.running_mean`, `classifier.bias`, ...). Besides the architecture this module converts
//! weights: [`materialize`] folds a trained SWRN into a plain WRN, [`to_pytorch_names`] /
//! [`from_pytorch_names`] translate to and from the authors' checkpoint keys, and `Model::load_named` copies
//! named tensors into a variable store.
use super::layers::Grid;
use super::options::Validate;
use super::soft_sharing::{mix, orthogonal, SConv2d, TemplateBank};
use super::wrn::{blocks_per_stage, depth_width, DynConv, StageConvs, WideResNet};
use super::{with_batch_counts, Arch, ModelConfig};
use crate::error::Result;
use crate::input_err;
use crate::models::pass::Layer;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use tch::nn;
use tch::{Kind, Tensor};

pub const ARCHS: &[Arch] = &[Arch {
    // main.py's group_weight_decay(net, decay, ['coefficients']) (swrn.md §4).
    no_decay: &["coefficients"],
    // The authors' state_dict names (with or without `module.`, duplicated bank keys) load directly.
    import: |named| Ok(from_pytorch_names(named)),
    export: |named, request| {
        request.original_names_only()?;
        Ok(to_pytorch_names(named, PytorchExport::default()))
    },
    materialize: Some(materialize_config),
    ..Arch::new(
        "swrn",
        "swrn",
        "SWRN-d-w-k: Wide ResNet with one bank of k templates per stage (soft parameter sharing)",
        build_swrn,
    )
}];

/// The SWRN model options (swrn.md §3–4).
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct SwrnOptions {
    /// SWRN: templates per template bank.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_size: Option<i64>,
}

/// The most templates a bank may hold: far above the paper's (at most 2(N−1), the convolutions that
/// share a bank, swrn.md §3), low enough that a typo is an error rather than gigabytes of templates.
pub const MAX_BANK_SIZE: i64 = 1024;

impl Validate for SwrnOptions {
    fn validate(&self) -> Result<()> {
        match self.bank_size {
            Some(k) if k > MAX_BANK_SIZE => {
                Err(input_err!("--bank-size: at most {MAX_BANK_SIZE} templates per bank, got {k}."))
            }
            _ => Ok(()),
        }
    }
}

/// [`materialize`] for the registry: the SWRN's configuration becomes the WRN's.
fn materialize_config(named: &[(String, Tensor)], cfg: &ModelConfig) -> Result<(ModelConfig, Vec<(String, Tensor)>)> {
    let (depth, width, bank) = depth_width_bank(cfg)?;
    let mut plain = ModelConfig { arch: "wrn".into(), depth: Some(depth), width: Some(width), ..cfg.clone() };
    plain.options.remove("bank_size");
    Ok((plain, materialize(named, depth, width, bank)?))
}

/// The seed repository's CLI default `--bank_size 2` (swrn.md §4).
pub const DEFAULT_BANK_SIZE: i64 = 2;

/// The SWRN [`StageConvs`]: at the start of stage s it creates `bank_s` (k templates of
/// channels×channels×3×3) and draws the stage's (2(N−1) × k) coefficient matrix with
/// [`orthogonal`]; the j-th shared convolution of the stage, in depth order
/// (`stage_s.1.conv1`, `stage_s.1.conv2`, `stage_s.2.conv1`, ...), gets row j (swrn.md §3).
pub struct SharedConvs<'a> {
    root: nn::Path<'a>,
    bank_size: i64,
    bank: Option<TemplateBank>,
    alpha: Tensor,
    next_row: i64,
}

impl<'a> SharedConvs<'a> {
    /// Banks are created under `root` (as `bank_1`..`bank_3`), with `bank_size` templates each.
    pub fn new(root: &nn::Path<'a>, bank_size: i64) -> Self {
        SharedConvs { root: root.clone(), bank_size, bank: None, alpha: Tensor::new(), next_row: 0 }
    }
}

impl StageConvs for SharedConvs<'_> {
    fn begin_stage(&mut self, _stage_path: &nn::Path, stage: usize, channels: i64, num_shared_convs: i64) {
        let bank_path = &self.root / format!("bank_{stage}");
        self.bank = Some(TemplateBank::new(&bank_path, self.bank_size, channels, channels, 3));
        self.alpha = orthogonal(num_shared_convs, self.bank_size);
        self.next_row = 0;
    }

    fn conv(&mut self, p: &nn::Path, _channels: i64, grid: Grid) -> DynConv {
        let bank = self.bank.as_ref().expect("WideResNet calls begin_stage before conv");
        assert!(self.next_row < self.alpha.size()[0], "more shared convolutions than begin_stage announced");
        let conv = SConv2d::with_coefficients(p, bank, 1, 1, &self.alpha.get(self.next_row)).on_grid(grid);
        self.next_row += 1;
        Box::new(conv)
    }
}

/// Depth, width and bank size k with the seed repository's defaults (28, 2, 2; swrn.md §4).
pub fn depth_width_bank(cfg: &ModelConfig) -> Result<(i64, i64, i64)> {
    let (depth, width) = depth_width(cfg);
    Ok((depth, width, cfg.options::<SwrnOptions>()?.bank_size.unwrap_or(DEFAULT_BANK_SIZE)))
}

fn build_swrn(root: &nn::Path, cfg: &ModelConfig) -> Result<Box<dyn Layer>> {
    let (depth, width, k) = depth_width_bank(cfg)?;
    if k < 1 {
        return Err(input_err!("--bank-size: SWRN needs at least one template per bank, got {k}."));
    }
    if blocks_per_stage(depth)? == 1 {
        // swrn.py creates bank_1..bank_3 whatever the depth; with one block per stage no layer uses them.
        eprintln!(
            "convtrain: warning: SWRN-{depth} has one block per stage, so no convolution shares the template banks; \
             as in the original (swrn.py builds bank_1..3 unconditionally) they are still created and counted as trainable."
        );
    }
    let mut convs = SharedConvs::new(root, k);
    Ok(Box::new(WideResNet::new(root, depth, width, cfg.in_channels, cfg.num_classes, cfg.grid()?, &mut convs)?))
}

/// Where a shared convolution sits: stage s ∈ 1..=3, block b ∈ 1..N−1, conv 1 or 2.
fn shared_conv_slot(name: &str) -> Option<(usize, i64, u8)> {
    let rest = name.strip_prefix("stage_")?;
    let mut parts = rest.split('.');
    let stage: usize = parts.next()?.parse().ok()?;
    let block: i64 = parts.next()?.parse().ok()?;
    let conv = match parts.next()? {
        "conv1" => 1,
        "conv2" => 2,
        _ => return None,
    };
    (parts.next()? == "coefficients" && parts.next().is_none()).then_some((stage, block, conv))
}

/// The coefficient vectors of a named SWRN state, grouped by stage and sorted in depth order
/// (`stage_s.1.conv1`, `stage_s.1.conv2`, ...): one `(stage, [(layer label "b.convX", α)])` per stage
/// that has shared convolutions. Names are convtrain's (see [`from_pytorch_names`] for the authors').
pub fn stage_coefficients(named: &[(String, Tensor)]) -> Vec<(usize, Vec<(String, Tensor)>)> {
    let mut stages: BTreeMap<usize, BTreeMap<(i64, u8), Tensor>> = BTreeMap::new();
    for (name, t) in named {
        if let Some((s, b, c)) = shared_conv_slot(name) {
            stages.entry(s).or_default().insert((b, c), t.shallow_clone());
        }
    }
    stages
        .into_iter()
        .map(|(s, layers)| (s, layers.into_iter().map(|((b, c), t)| (format!("{b}.conv{c}"), t)).collect()))
        .collect()
}

/// Folds a trained SWRN-`depth`-`width`-`bank_size` into the equivalent plain WRN-`depth`-`width`:
/// every shared convolution's kernel W = Σ_j α_j T_j is computed once and stored as
/// `stage_s.b.convX.weight`; the banks and coefficients are dropped; everything else (BN statistics
/// included) is passed through. A `wrn` model loading the result (`Model::load_named`) computes the
/// same function. `named` uses convtrain's names (the SWRN variable store's). Sorted by name.
pub fn materialize(
    named: &[(String, Tensor)],
    depth: i64,
    width: i64,
    bank_size: i64,
) -> Result<Vec<(String, Tensor)>> {
    let n = blocks_per_stage(depth)?;
    let map: HashMap<&str, &Tensor> = named.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out: BTreeMap<String, Tensor> = BTreeMap::new();
    tch::no_grad(|| -> Result<()> {
        for s in 1..=3i64 {
            let c = 16 * width * (1 << (s - 1));
            let bank_name = format!("bank_{s}.templates");
            let templates = map
                .get(bank_name.as_str())
                .ok_or_else(|| input_err!("materialize: the SWRN weights have no '{bank_name}'."))?;
            if templates.size() != [bank_size, c, c, 3, 3] {
                return Err(input_err!(
                    "materialize: '{bank_name}' has shape {:?}, but SWRN-{depth}-{width}-{bank_size} needs {:?}.",
                    templates.size(),
                    [bank_size, c, c, 3, 3]
                ));
            }
            for b in 1..n {
                for conv in ["conv1", "conv2"] {
                    let coef_name = format!("stage_{s}.{b}.{conv}.coefficients");
                    let alpha = map
                        .get(coef_name.as_str())
                        .ok_or_else(|| input_err!("materialize: the SWRN weights have no '{coef_name}'."))?;
                    if alpha.numel() as i64 != bank_size {
                        return Err(input_err!(
                            "materialize: '{coef_name}' holds {} values, the bank {bank_size} templates.",
                            alpha.numel()
                        ));
                    }
                    let weight =
                        mix(&templates.to_kind(Kind::Float), &alpha.to_kind(Kind::Float).to_device(templates.device()));
                    out.insert(format!("stage_{s}.{b}.{conv}.weight"), weight.detach());
                }
            }
        }
        Ok(())
    })?;
    for (name, t) in named {
        let dropped = (name.starts_with("bank_") && name.ends_with(".templates")) || shared_conv_slot(name).is_some();
        if !dropped {
            out.insert(name.clone(), t.shallow_clone());
        }
    }
    Ok(out.into_iter().collect())
}

/// Options of [`to_pytorch_names`].
#[derive(Debug, Clone, Copy)]
pub struct PytorchExport {
    /// Also write every template tensor under the aliases PyTorch's `state_dict()` lists it by,
    /// `stage_s.b.bank.templates` and `stage_s.b.convX.bank.templates` (swrn.md §2, "Module
    /// registration"), so that the authors' `load_state_dict(..., strict=True)` accepts the file.
    pub bank_aliases: bool,
    /// The value written to every BatchNorm's `num_batches_tracked` (tch does not count; 0 = unknown).
    pub num_batches_tracked: i64,
}

impl Default for PytorchExport {
    fn default() -> Self {
        PytorchExport { bank_aliases: true, num_batches_tracked: 0 }
    }
}

/// convtrain's named tensors → the authors' `SWRN.state_dict()` keys (without `module.`): adds the
/// int64 scalar `num_batches_tracked` beside every BatchNorm's `running_var` and, if asked, the
/// template aliases. Works for `wrn` weights too (they only gain `num_batches_tracked`). Sorted by name.
pub fn to_pytorch_names(named: &[(String, Tensor)], opts: PytorchExport) -> Vec<(String, Tensor)> {
    let mut out: BTreeMap<String, Tensor> = with_batch_counts(named, opts.num_batches_tracked).into_iter().collect();
    for (name, _) in named {
        if let (true, Some((s, b, c))) = (opts.bank_aliases, shared_conv_slot(name)) {
            let bank = format!("bank_{s}.templates");
            if let Some((_, templates)) = named.iter().find(|(n, _)| *n == bank) {
                out.insert(format!("stage_{s}.{b}.bank.templates"), templates.shallow_clone());
                out.insert(format!("stage_{s}.{b}.conv{c}.bank.templates"), templates.shallow_clone());
            }
        }
    }
    out.into_iter().collect()
}

/// The authors' state-dict keys → convtrain's names: strips DataParallel's `module.` prefix, drops
/// every `num_batches_tracked`, and drops the template aliases `stage_s.….bank.templates`, keeping the
/// canonical `bank_s.templates` (taken from an alias if only aliases are given; swrn.md §7, pitfall 9).
/// Never fails: a name that does not belong to SWRN is passed through for `Model::load_named` to report.
/// If a key appears both with and without `module.`, the later one wins. Sorted by name.
pub fn from_pytorch_names(named: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    let mut out: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut aliases: BTreeMap<String, Tensor> = BTreeMap::new();
    for (name, t) in named {
        let name = name.strip_prefix("module.").unwrap_or(&name).to_string();
        if name.ends_with(".num_batches_tracked") {
            continue;
        }
        let stage = name.split('.').next().and_then(|first| first.strip_prefix("stage_"));
        match stage {
            Some(s) if name.ends_with(".bank.templates") => {
                aliases.entry(format!("bank_{s}.templates")).or_insert(t);
            }
            _ => {
                out.insert(name, t);
            }
        }
    }
    for (canonical, t) in aliases {
        out.entry(canonical).or_insert(t);
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{find, Model};
    use std::path::Path;
    use tch::{Device, Kind};

    fn cfg(arch: &str, depth: i64, width: i64, k: i64, classes: i64) -> ModelConfig {
        ModelConfig { depth: Some(depth), width: Some(width), ..ModelConfig::new(arch, classes, 3, 32) }
            .with_option("bank_size", k)
    }

    /// Trainable parameter shapes of SWRN-d-w-k written out from swrn.md §3's layout, used to count
    /// the big variants without allocating them (checked against the real model below).
    fn parameter_shapes(depth: i64, width: i64, k: i64, classes: i64) -> Vec<(String, Vec<i64>)> {
        let n = (depth - 4) / 6;
        let ch = [16, 16 * width, 32 * width, 64 * width];
        let mut v = vec![("conv_3x3.weight".to_string(), vec![16, 3, 3, 3])];
        let bn = |v: &mut Vec<(String, Vec<i64>)>, p: String, c: i64| {
            v.push((format!("{p}.weight"), vec![c]));
            v.push((format!("{p}.bias"), vec![c]));
        };
        for s in 1..=3 {
            let (cin, c) = (ch[s - 1], ch[s]);
            v.push((format!("bank_{s}.templates"), vec![k, c, c, 3, 3]));
            bn(&mut v, format!("stage_{s}.0.bn1"), cin);
            v.push((format!("stage_{s}.0.conv1.weight"), vec![c, cin, 3, 3]));
            bn(&mut v, format!("stage_{s}.0.bn2"), c);
            v.push((format!("stage_{s}.0.conv2.weight"), vec![c, c, 3, 3]));
            if cin != c {
                v.push((format!("stage_{s}.0.convShortcut.weight"), vec![c, cin, 1, 1]));
            }
            for b in 1..n {
                bn(&mut v, format!("stage_{s}.{b}.bn1"), c);
                bn(&mut v, format!("stage_{s}.{b}.bn2"), c);
                v.push((format!("stage_{s}.{b}.conv1.coefficients"), vec![k, 1, 1, 1, 1]));
                v.push((format!("stage_{s}.{b}.conv2.coefficients"), vec![k, 1, 1, 1, 1]));
            }
        }
        bn(&mut v, "lastact.0".into(), ch[3]);
        v.push(("classifier.weight".into(), vec![classes, ch[3]]));
        v.push(("classifier.bias".into(), vec![classes]));
        v.sort();
        v
    }

    fn count(shapes: &[(String, Vec<i64>)]) -> i64 {
        shapes.iter().map(|(_, s)| s.iter().product::<i64>()).sum()
    }

    fn max_abs(t: &Tensor) -> f64 {
        f64::try_from(t.abs().max()).unwrap()
    }

    /// A small SWRN with non-trivial BN statistics (a few training-mode passes).
    fn trained_bn_model(depth: i64, width: i64, k: i64) -> Model {
        let m = Model::build(&cfg("swrn", depth, width, k, 10), Device::Cpu).unwrap();
        tch::no_grad(|| {
            for _ in 0..3 {
                let x = Tensor::randn([8, 3, 32, 32], (Kind::Float, Device::Cpu)) * 1.5 + 0.3;
                let _ = m.forward_t(&x, true);
            }
        });
        m
    }

    #[test]
    fn swrn_parameter_counts_match_swrn_md_table() {
        // swrn.md §3's table, counted from the layout.
        let table: &[(i64, i64, i64, i64, i64)] = &[
            (28, 10, 6, 36_479_302, 36_536_992),
            (28, 10, 4, 26_802_466, 26_860_156),
            (28, 10, 3, 21_964_048, 22_021_738),
            (28, 10, 2, 17_125_630, 17_183_320),
            (28, 10, 1, 12_287_212, 12_344_902),
            (28, 14, 2, 33_537_790, 33_618_520),
            (28, 14, 6, 71_470_918, 71_551_648),
            (28, 18, 2, 55_414_014, 55_517_784),
            (28, 18, 6, 118_119_750, 118_223_520),
            (28, 4, 2, 2_752_510, 2_775_640),
            (28, 2, 2, 693_502, 705_112),
        ];
        for &(d, w, k, c10, c100) in table {
            assert_eq!(count(&parameter_shapes(d, w, k, 10)), c10, "SWRN-{d}-{w}-{k} CIFAR-10");
            assert_eq!(count(&parameter_shapes(d, w, k, 100)), c100, "SWRN-{d}-{w}-{k} CIFAR-100");
        }
        // The layout is the real model's, variable for variable.
        for (d, w, k, classes) in [(28, 2, 2, 10), (16, 1, 3, 100), (22, 3, 7, 10), (10, 2, 1, 10)] {
            let m = Model::build(&cfg("swrn", d, w, k, classes), Device::Cpu).unwrap();
            let real: Vec<(String, Vec<i64>)> = m.named_parameters().into_iter().map(|(n, t)| (n, t.size())).collect();
            assert_eq!(real, parameter_shapes(d, w, k, classes), "SWRN-{d}-{w}-{k}");
        }
        // And the real flagship models.
        for (k, want) in [(6, 36_479_302), (4, 26_802_466)] {
            let m = Model::build(&cfg("swrn", 28, 10, k, 10), Device::Cpu).unwrap();
            assert_eq!(m.num_parameters(), want, "SWRN-28-10-{k}");
        }
        // CLI defaults: depth 28, width 2, bank size 2.
        let mut c = cfg("swrn", 28, 2, 2, 10);
        (c.depth, c.width) = (None, None);
        c.options.remove("bank_size");
        assert_eq!(Model::build(&c, Device::Cpu).unwrap().num_parameters(), 693_502);
    }

    /// configs/swrn*.json carry main.py's recipe (swrn.md §4-5) and name the table's models.
    #[test]
    fn recipe_configs_follow_swrn_md() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().to_string();
            if !file.starts_with("swrn") {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let recipe = serde_json::json!({
                "arch": "swrn", "epochs": 200, "batch_size": 128, "lr": 0.1, "momentum": 0.9, "nesterov": true,
                "weight_decay": 0.0005, "no_decay": ["coefficients"], "schedule": "multistep",
                "milestones": [60, 120, 160], "gammas": [0.2, 0.2, 0.2], "augment": ["flip", "crop:4"],
                "val_split": 0.1, "seed": 0,
            });
            for (key, want) in recipe.as_object().unwrap() {
                assert_eq!(&v[key], want, "{file}: {key}");
            }
            let int = |k: &str| v[k].as_i64().unwrap_or_else(|| panic!("{file}: {k}"));
            let (d, w, k) = (int("depth"), int("width"), int("bank_size"));
            let dataset = v["dataset"].as_str().unwrap();
            let cutout = int("cutout");
            let stem = format!("swrn{d}-{w}-{k}_{dataset}{}.json", if cutout > 0 { "_cutout" } else { "" });
            assert_eq!(file, stem);
            assert!(cutout == 0 || cutout == 16, "{file}: main.py's cutout hole is 16 pixels");
            assert_eq!(
                v.as_object().unwrap().keys().filter(|k| *k != crate::recipes::RECIPE_KEY).count(),
                recipe.as_object().unwrap().len() + 5,
                "{file}: extra keys"
            );
            let classes = if dataset == "cifar100" { 100 } else { 10 };
            seen.push((file, count(&parameter_shapes(d, w, k, classes))));
        }
        seen.sort();
        let want = [
            ("swrn28-10-1_cifar10.json", 12_287_212),
            ("swrn28-10-2_cifar10.json", 17_125_630),
            ("swrn28-10-4_cifar10.json", 26_802_466),
            ("swrn28-10-6_cifar10.json", 36_479_302),
            ("swrn28-10-6_cifar100.json", 36_536_992),
            ("swrn28-10-6_cifar10_cutout.json", 36_479_302),
            ("swrn28-14-2_cifar10.json", 33_537_790),
            ("swrn28-18-2_cifar10.json", 55_414_014),
        ];
        let got: Vec<(&str, i64)> = seen.iter().map(|(f, c)| (f.as_str(), *c)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn swrn_coefficients_are_one_orthogonal_matrix_per_stage() {
        for k in [1, 2, 6, 9] {
            tch::manual_seed(k);
            let m = Model::build(&cfg("swrn", 28, 1, k, 10), Device::Cpu).unwrap();
            let stages = stage_coefficients(&m.named_parameters());
            assert_eq!(stages.len(), 3);
            for (s, layers) in stages {
                let labels: Vec<&str> = layers.iter().map(|(l, _)| l.as_str()).collect();
                assert_eq!(labels, ["1.conv1", "1.conv2", "2.conv1", "2.conv2", "3.conv1", "3.conv2"]);
                let rows: Vec<Tensor> = layers.iter().map(|(_, a)| a.reshape([k])).collect();
                let a = Tensor::stack(&rows, 0).detach();
                let (gram, n) =
                    if k >= 6 { (a.matmul(&a.transpose(0, 1)), 6) } else { (a.transpose(0, 1).matmul(&a), k) };
                let err = max_abs(&(gram - Tensor::eye(n, (Kind::Float, Device::Cpu))));
                assert!(err < 1e-5, "stage {s}, k = {k}: orthonormality error {err}");
            }
        }
    }

    /// One SGD step (momentum 0.9, Nesterov, coupled L2 as PyTorch's SGD) with weight decay 5e-4 on
    /// every parameter except those the registry excludes, after zeroing the coefficients' gradients.
    #[test]
    fn coefficients_excluded_from_weight_decay_do_not_move() {
        tch::manual_seed(0);
        let arch = find("swrn").unwrap();
        let m = Model::build(&cfg("swrn", 16, 1, 2, 10), Device::Cpu).unwrap();
        let x = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 3]);
        m.forward_t(&x, true).cross_entropy_for_logits(&y).backward();
        let (lr, wd, momentum) = (0.1, 5e-4, 0.9);
        let mut moved = Vec::new();
        tch::no_grad(|| {
            for (name, mut p) in m.named_parameters() {
                let excluded = arch.no_decay.iter().any(|pat| name.contains(pat));
                assert_eq!(excluded, name.ends_with(".coefficients"), "{name}");
                let mut g = p.grad();
                if excluded {
                    let _ = g.zero_();
                }
                let before = p.copy();
                let d_p = &g + &p * if excluded { 0.0 } else { wd };
                // First step: the momentum buffer is d_p; Nesterov uses d_p + momentum·buf.
                let step = &d_p + &d_p * momentum;
                p -= step * lr;
                moved.push((name, max_abs(&(&p - before)) > 0.0));
            }
        });
        for (name, moved) in moved {
            assert_eq!(moved, !name.ends_with(".coefficients"), "{name}");
        }
    }

    #[test]
    fn materialized_wrn_gives_the_same_logits() {
        tch::manual_seed(5);
        for (depth, width, k) in [(16, 1, 3), (22, 2, 6)] {
            let swrn = trained_bn_model(depth, width, k);
            let x = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
            let want = tch::no_grad(|| swrn.forward_t(&x, false));
            let plain = materialize(&swrn.named_variables(), depth, width, k).unwrap();
            assert!(plain.iter().all(|(n, _)| !n.contains("bank") && !n.contains("coefficients")));
            let wrn = Model::build(&cfg("wrn", depth, width, k, 10), Device::Cpu).unwrap();
            wrn.load_named(&plain, Path::new("plain"), None).unwrap();
            let got = tch::no_grad(|| wrn.forward_t(&x, false));
            let rel = max_abs(&(&got - &want)) / max_abs(&want);
            assert!(rel < 1e-5, "SWRN-{depth}-{width}-{k}: relative difference {rel}");
        }
        let swrn = Model::build(&cfg("swrn", 16, 1, 3, 10), Device::Cpu).unwrap();
        let e = materialize(&swrn.named_variables(), 16, 1, 4).unwrap_err();
        assert!(e.to_string().contains("bank_1.templates"), "{e}");
    }

    #[test]
    fn pytorch_names_round_trip() {
        tch::manual_seed(2);
        let m = trained_bn_model(16, 1, 2);
        let ours = m.named_variables();
        let theirs = to_pytorch_names(&ours, PytorchExport::default());
        let keys: Vec<&str> = theirs.iter().map(|(n, _)| n.as_str()).collect();
        for key in [
            "bank_2.templates",
            "stage_2.1.bank.templates",
            "stage_2.1.conv2.bank.templates",
            "stage_2.1.conv2.coefficients",
            "stage_2.0.convShortcut.weight",
            "stage_1.0.bn1.num_batches_tracked",
            "lastact.0.num_batches_tracked",
            "conv_3x3.weight",
            "classifier.bias",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        // w = 1: the first block of stage 1 keeps its width and has no shortcut (swrn.md §3).
        assert!(!keys.contains(&"stage_1.0.convShortcut.weight"));
        // 3 stages × (bank + 1 block alias + 2 conv aliases); 13 BNs each gain a counter.
        assert_eq!(theirs.len(), ours.len() + 3 * 3 + 13);
        let counter = &theirs.iter().find(|(n, _)| n == "stage_3.1.bn2.num_batches_tracked").unwrap().1;
        assert_eq!((counter.kind(), counter.size(), i64::try_from(counter).unwrap()), (Kind::Int64, vec![], 0));
        let without = to_pytorch_names(&ours, PytorchExport { bank_aliases: false, num_batches_tracked: 7 });
        assert_eq!(without.len(), ours.len() + 13);

        // Back, through DataParallel's prefix; bank_1 survives only as its aliases.
        let prefixed: Vec<(String, Tensor)> = theirs
            .iter()
            .filter(|(n, _)| n != "bank_1.templates")
            .map(|(n, t)| (format!("module.{n}"), t.copy()))
            .collect();
        let back = from_pytorch_names(prefixed);
        assert_eq!(back.len(), ours.len());
        for ((a, ta), (b, tb)) in ours.iter().zip(&back) {
            assert_eq!(a, b);
            assert!(ta.equal(tb), "{a}");
        }
        let fresh = Model::build(&cfg("swrn", 16, 1, 2, 10), Device::Cpu).unwrap();
        fresh.load_named(&back, Path::new("back"), None).unwrap();
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let (a, b) = tch::no_grad(|| (m.forward_t(&x, false), fresh.forward_t(&x, false)));
        assert!(a.equal(&b));
        let e = fresh.load_named(&back[1..], Path::new("back"), None).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
