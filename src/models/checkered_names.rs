//! The checkered-CNN authors' `state_dict` names, both ways (checkered.md §3, §5.4).
//!
//! `convert_to_checkered` replaces every `Conv2d` by a `CheckeredConv2d` that nests a `Conv3d` as its
//! child `conv`, so a converted network's convolution `P` is saved as `P.conv.weight` with shape
//! `(O, I/g, D, k, k)` (`D` = 1 for a converted 2-D conv) and `P.conv.bias`; BatchNorm3d keeps the
//! BatchNorm2d names. The toy MNIST CCNN of `demo_mnist.py` is built from `CheckeredConv2d`s, so its
//! convolutions are nested the same way. The repository's DenseNet names its dense-layer modules with
//! dots (`norm.1`, `relu.1`, `conv.1`, `norm.2`, `relu.2`, `conv.2`), so their keys read
//! `features.denseblock1.denselayer1.norm.1.weight` (torchvision later renamed them `norm1`, ...,
//! which are this crate's variable names).
//!
//! convtrain stores every converted convolution as the ordinary 4-D weight (the native depth-2
//! `conv4` of the toy CCNN is 5-D), so exporting a converted model nests and unsqueezes, and
//! importing un-nests and squeezes.
use super::{with_batch_counts, ExportRequest, NamedTensors};
use crate::error::Result;
use crate::input_err;
use std::collections::HashSet;
use tch::Tensor;

/// The dotted dense-layer module names of the repository's DenseNet and their torchvision spelling.
const DENSE_LAYER_MODULES: [(&str, &str); 4] =
    [(".norm.1.", ".norm1."), (".conv.1.", ".conv1."), (".norm.2.", ".norm2."), (".conv.2.", ".conv2.")];

/// Whether `name` lies inside a dense layer (`…denselayerN.…`).
fn in_dense_layer(name: &str) -> bool {
    name.split('.').any(|part| part.starts_with("denselayer"))
}

/// The repository's dotted spelling of one of our dense-layer names (`norm1` → `norm.1`).
fn dotted(name: &str) -> String {
    if !in_dense_layer(name) {
        return name.to_string();
    }
    let mut out = name.to_string();
    for (dot, plain) in DENSE_LAYER_MODULES {
        out = out.replace(plain, dot);
    }
    out
}

/// Our spelling of a dotted dense-layer name (`norm.1` → `norm1`); other names pass.
fn undotted(name: &str) -> String {
    if !in_dense_layer(name) {
        return name.to_string();
    }
    let mut out = name.to_string();
    for (dot, plain) in DENSE_LAYER_MODULES {
        out = out.replace(dot, plain);
    }
    out
}

/// Convolution weights among `named`: 4-D or 5-D tensors named `….weight` (linear weights are 2-D).
fn conv_prefixes(named: &[(String, Tensor)]) -> HashSet<String> {
    named
        .iter()
        .filter(|(_, t)| matches!(t.dim(), 4 | 5))
        .filter_map(|(n, _)| n.strip_suffix(".weight").map(str::to_string))
        .collect()
}

/// Export for a network of the checkered family: `converted` nests every convolution as the authors'
/// `CheckeredConv2d` does; DenseNet names are dotted unless the request asks for `torchvision`.
pub fn export(named: &[(String, Tensor)], request: &ExportRequest, converted: bool) -> Result<NamedTensors> {
    let dense_names = match request.naming {
        None => dotted,
        Some("torchvision") if request.config.arch.starts_with("densenet") => undotted,
        Some(other) => {
            return Err(input_err!(
                "--naming: '{other}' is not a naming of architecture '{}'{}.",
                request.config.arch,
                if request.config.arch.starts_with("densenet") { " (it has: torchvision)" } else { "" }
            ))
        }
    };
    let convs = if converted { conv_prefixes(named) } else { HashSet::new() };
    let renamed: NamedTensors = named
        .iter()
        .map(|(name, t)| {
            let (prefix, leaf) = name.rsplit_once('.').unwrap_or(("", name));
            if convs.contains(prefix) {
                let t = if t.dim() == 4 { t.unsqueeze(2) } else { t.shallow_clone() };
                (dense_names(&format!("{prefix}.conv.{leaf}")), t)
            } else {
                (dense_names(name), t.shallow_clone())
            }
        })
        .collect();
    Ok(with_batch_counts(&renamed, 0))
}

/// [`export`] of a network converted when its configuration says so.
pub fn export_by_config(named: &[(String, Tensor)], request: &ExportRequest) -> Result<NamedTensors> {
    export(named, request, request.config.checkered)
}

/// [`export`] of an always-checkered network (the toy CCNNs).
pub fn export_converted(named: &[(String, Tensor)], request: &ExportRequest) -> Result<NamedTensors> {
    export(named, request, true)
}

/// The authors' names (converted or not, dotted or torchvision DenseNet names, with or without
/// DataParallel's `module.`) → ours: `P.conv.weight` of shape `(O, I, 1, k, k)` becomes the 4-D
/// `P.weight` (a depth-2 kernel stays 5-D), `P.conv.bias` becomes `P.bias`, `num_batches_tracked`
/// is dropped.
pub fn import(named: NamedTensors) -> Result<NamedTensors> {
    let named: NamedTensors = named
        .into_iter()
        .filter(|(n, _)| !n.ends_with(".num_batches_tracked"))
        .map(|(n, t)| (undotted(n.strip_prefix("module.").unwrap_or(&n)), t))
        .collect();
    let nested: HashSet<String> = named
        .iter()
        .filter(|(_, t)| t.dim() == 5)
        .filter_map(|(n, _)| n.strip_suffix(".conv.weight").map(str::to_string))
        .collect();
    Ok(named
        .into_iter()
        .map(|(name, t)| {
            let (prefix, leaf) = name.rsplit_once('.').unwrap_or(("", &name));
            match prefix.strip_suffix(".conv").filter(|p| nested.contains(*p)) {
                Some(conv) => {
                    let t = if t.dim() == 5 && t.size()[2] == 1 { t.squeeze_dim(2) } else { t };
                    (format!("{conv}.{leaf}"), t)
                }
                None => (name, t),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{test_config, Model};
    use std::collections::BTreeMap;
    use tch::Device;

    /// The exported names and shapes of `cfg`'s model, after checking that importing them loads the
    /// same variables back.
    fn round_trip(cfg: &crate::models::ModelConfig, naming: Option<&str>) -> BTreeMap<String, Vec<i64>> {
        let m = Model::build(cfg, Device::Cpu).unwrap();
        let out = (m.arch.export)(&m.named_variables(), &ExportRequest { config: cfg, naming }).unwrap();
        let shapes = out.iter().map(|(n, t)| (n.clone(), t.size())).collect();
        let back = (m.arch.import)(out).unwrap();
        m.load_named(&back, std::path::Path::new("round trip"), None).unwrap();
        shapes
    }

    fn export_names(arch: &str, checkered: bool, channels: i64, size: i64) -> BTreeMap<String, Vec<i64>> {
        round_trip(&test_config(arch, 10, checkered, channels, size), None)
    }

    #[test]
    fn toy_ccnn_nests_every_conv_as_the_authors_checkered_conv() {
        let names = export_names("ccnn-toy", false, 1, 28);
        assert_eq!(names["init_conv.conv.weight"], vec![32, 1, 1, 3, 3]);
        assert_eq!(names["init_conv.conv.bias"], vec![32]);
        assert_eq!(names["conv2.conv.weight"], vec![45, 32, 1, 3, 3]);
        assert_eq!(names["conv4.conv.weight"], vec![64, 45, 2, 3, 3]);
        assert_eq!(names["bn5.running_var"], vec![64]);
        assert_eq!(names["bn5.num_batches_tracked"], Vec::<i64>::new());
        assert_eq!(names["fc.weight"], vec![10, 64]);
        assert!(!names.contains_key("conv4.weight"));
    }

    #[test]
    fn converted_resnet_has_5d_nested_weights_and_the_plain_one_keeps_4d() {
        let converted = export_names("resnet18", true, 3, 32);
        assert_eq!(converted["layer0.0.conv.weight"], vec![64, 3, 1, 3, 3]);
        assert_eq!(converted["layer2.0.shortcut.0.conv.weight"], vec![128, 64, 1, 1, 1]);
        assert_eq!(converted["layer2.0.shortcut.1.weight"], vec![128]);
        assert_eq!(converted["linear.weight"], vec![10, 512]);
        let plain = export_names("resnet18", false, 3, 32);
        assert_eq!(plain["layer0.0.weight"], vec![64, 3, 3, 3]);
        assert_eq!(plain.len(), converted.len());
    }

    #[test]
    fn densenet_names_are_dotted_unless_torchvision_is_asked_for() {
        let cfg = |checkered| crate::models::ModelConfig {
            depth: Some(40),
            ..test_config("densenet-bc", 10, checkered, 3, 32)
        };
        let names = |checkered: bool, naming: Option<&str>| round_trip(&cfg(checkered), naming);
        let dotted = names(false, None);
        assert_eq!(dotted["features.denseblock1.denselayer1.norm.1.weight"], vec![24]);
        assert_eq!(dotted["features.denseblock1.denselayer1.conv.2.weight"], vec![12, 48, 3, 3]);
        assert_eq!(dotted["features.transition1.conv.weight"], vec![48, 96, 1, 1]);
        let converted = names(true, None);
        assert_eq!(converted["features.denseblock3.denselayer6.conv.1.conv.weight"], vec![48, 120, 1, 1, 1]);
        assert_eq!(converted["features.transition2.conv.conv.weight"], vec![60, 120, 1, 1, 1]);
        let tv = names(false, Some("torchvision"));
        assert!(tv.contains_key("features.denseblock1.denselayer1.norm1.weight"));
        // BC-40 has 3 blocks × 6 layers × 4 renamed modules; each norm has 5 keys, each conv 1.
        let renamed = dotted.keys().filter(|k| !tv.contains_key(*k)).count();
        assert_eq!(renamed, 3 * 6 * (5 + 1 + 5 + 1));
        let c = cfg(false);
        let m = Model::build(&c, Device::Cpu).unwrap();
        let e =
            (m.arch.export)(&m.named_variables(), &ExportRequest { config: &c, naming: Some("keras") }).unwrap_err();
        assert!(e.to_string().contains("torchvision"), "{e}");
    }

    #[test]
    fn import_accepts_data_parallel_prefixes_and_both_densenet_spellings() {
        let t = || Tensor::zeros([4, 2, 1, 3, 3], (tch::Kind::Float, Device::Cpu));
        let named = vec![
            ("module.features.denseblock1.denselayer2.conv.2.conv.weight".to_string(), t()),
            (
                "module.features.transition1.conv.weight".to_string(),
                Tensor::zeros([4, 2, 1, 1], (tch::Kind::Float, Device::Cpu)),
            ),
            ("module.features.norm_final.num_batches_tracked".to_string(), Tensor::from(3i64)),
        ];
        let ours: BTreeMap<String, Vec<i64>> = import(named).unwrap().into_iter().map(|(n, t)| (n, t.size())).collect();
        assert_eq!(ours["features.denseblock1.denselayer2.conv2.weight"], vec![4, 2, 3, 3]);
        assert_eq!(ours["features.transition1.conv.weight"], vec![4, 2, 1, 1]);
        assert_eq!(ours.len(), 2);
    }
}
