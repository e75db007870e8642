//! The model registry: every paper family registers its architectures here, and the engine only ever
//! sees a [`Model`] (a variable store plus a [`pass::Layer`]) and the architecture's default weight-decay
//! exclusions.
pub mod associative;
pub mod checkered;
pub mod checkered_names;
pub mod densenet;
pub mod diracnet;
pub mod export;
pub mod kernel_cache;
pub mod layers;
pub mod mnist_toy;
pub mod options;
pub mod pass;
pub mod resnet;
pub mod soft_sharing;
pub mod summary;
pub mod swrn;
pub mod vgg;
pub mod vgg_features;
pub mod wrn;

use crate::checkpoint::Checkpoint;
use crate::error::{to_json, Result};
use crate::input_err;
use layers::Grid;
use pass::{Layer, LayerTrace, Pass};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::nn;
use tch::{Device, Tensor};

/// What a builder needs to know to construct a network. `None` means "the architecture's default".
/// The family knobs (`bank_size`, `sampler`, ...) live in `options`, flattened on (de)serialisation so
/// that checkpoints and run configurations keep one flat object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelConfig {
    pub arch: String,
    pub depth: Option<i64>,
    pub width: Option<i64>,
    /// Convert the network into a checkered CNN (checkered.md §3).
    pub checkered: bool,
    pub num_classes: i64,
    pub in_channels: i64,
    pub image_size: i64,
    /// The family options, read by the builder with [`ModelConfig::options`].
    #[serde(flatten)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

impl ModelConfig {
    /// `arch` for `num_classes` classes and `in_channels`×`image_size`² inputs, every other choice the
    /// architecture's default (not checkered, no options).
    pub fn new(arch: &str, num_classes: i64, in_channels: i64, image_size: i64) -> ModelConfig {
        ModelConfig {
            arch: arch.into(),
            depth: None,
            width: None,
            checkered: false,
            num_classes,
            in_channels,
            image_size,
            options: serde_json::Map::new(),
        }
    }

    /// This configuration with the family option `key` set to `value` (for tests and examples).
    pub fn with_option(mut self, key: &str, value: impl Into<serde_json::Value>) -> ModelConfig {
        self.options.insert(key.into(), value.into());
        self
    }

    /// The typed options of one family (its declared knobs; other families' keys are ignored).
    pub fn options<T: DeserializeOwned>(&self) -> Result<T> {
        options::read(&self.options, "model options")
    }

    /// Where the network's spatial operations run: dense 4-D maps, or checkered 5-D stacks with the
    /// configured sampler (checkered.md §2).
    pub fn grid(&self) -> Result<Grid> {
        self.grid_if(self.checkered)
    }

    /// [`ModelConfig::grid`] for an architecture that decides itself whether it is `checkered`.
    pub fn grid_if(&self, checkered: bool) -> Result<Grid> {
        if checkered {
            Ok(Grid::Checkered(self.options::<checkered::CheckeredOptions>()?.sampling()?))
        } else {
            Ok(Grid::Dense)
        }
    }

    /// The model configuration stored with a checkpoint, if any.
    pub fn from_checkpoint(ck: &Checkpoint) -> Result<Option<ModelConfig>> {
        match ck.metadata.get("model_config") {
            None => Ok(None),
            Some(s) => serde_json::from_str(s)
                .map(Some)
                .map_err(|e| input_err!("{}: corrupt model_config metadata ({e}).", ck.path.display())),
        }
    }
}

// The families' model options: one line per family (see `options`).
options::family_options! {
    swrn: swrn::SwrnOptions,
    checkered: checkered::CheckeredOptions,
    vgg_features: vgg_features::VggFeaturesOptions,
    diracnet: diracnet::DiracOptions,
    associative: associative::CsgOptions,
}

/// Tensors with their variable names, as checkpoints hold them.
pub type NamedTensors = Vec<(String, Tensor)>;

/// Builds a network under `root` (its variables are created there, named as in the original code).
pub type BuildFn = fn(&nn::Path, &ModelConfig) -> Result<Box<dyn Layer>>;

/// One registered architecture.
pub struct Arch {
    pub name: &'static str,
    /// The spec file / paper family it belongs to.
    pub family: &'static str,
    pub about: &'static str,
    pub build: BuildFn,
    /// Parameters excluded from weight decay by default (substring of the parameter name).
    pub no_decay: &'static [&'static str],
    /// Renames foreign tensors (e.g. the authors' PyTorch `state_dict` names) to this model's names;
    /// [`same_names`] for architectures whose names already match.
    pub import: fn(NamedTensors) -> Result<NamedTensors>,
    /// Renames this model's tensors to the original code's `state_dict()` names (`export --format pytorch`).
    pub export: ExportFn,
    /// Folds the trained model into an equivalent plain architecture (`export --materialize`), if the
    /// family has one (SWRN → WRN).
    pub materialize: Option<MaterializeFn>,
    /// The paper's training recipe for a dataset, as a JSON object of training settings, applied
    /// under the user's recipe file and flags when this architecture is chosen (`{}`: the engine's
    /// defaults).
    pub defaults: fn(dataset: &str) -> serde_json::Value,
    /// Where `defaults` come from (the paper's code and the spec section), named in the start-up log.
    pub recipe: &'static str,
    /// Run once on a new run's freshly built model, after `--init-from` and before anything is
    /// written (never on resume or evaluate): weights the family's options take from elsewhere
    /// (CSG: `--csg-from` copies another run's generator).
    pub prepare: Option<fn(&Model) -> Result<()>>,
    /// Extra lines `summary` prints after its table (CSG: the compression report).
    pub report: Option<fn(&Model) -> Result<String>>,
}

impl Arch {
    /// An architecture with the common choices: nothing excluded from weight decay by name, names
    /// that already match the original's, the plain `state_dict` export, no plain equivalent and the
    /// engine's default recipe. Families override fields with struct update syntax.
    pub const fn new(name: &'static str, family: &'static str, about: &'static str, build: BuildFn) -> Arch {
        Arch {
            name,
            family,
            about,
            build,
            no_decay: &[],
            import: same_names,
            export: torch_state_dict,
            materialize: None,
            defaults: engine_defaults,
            recipe: ENGINE_RECIPE,
            prepare: None,
            report: None,
        }
    }
}

/// An architecture of the checkered-CNN repository: its `state_dict` names (converted or not) both
/// ways, see [`checkered_names`].
pub const fn checkered_arch(name: &'static str, about: &'static str, build: BuildFn) -> Arch {
    Arch {
        import: checkered_names::import,
        export: checkered_names::export_by_config,
        defaults: checkered_recipe,
        recipe:
            "the checkered paper's demo_mnist.py (MNIST-type data) or demo_cifar.py (others), checkered.md §5.6-5.7",
        ..Arch::new(name, "checkered", about, build)
    }
}

/// Whether `dataset` is one of the grey 28×28 digit-like datasets (MNIST, Fashion-MNIST, KMNIST),
/// which no paper of the CIFAR/ImageNet families trains on: their recipes give these a schedule that
/// anneals to 0 over any number of epochs.
pub fn is_grey_28(dataset: &str) -> bool {
    matches!(dataset, "mnist" | "fashion-mnist" | "kmnist")
}

/// The checkered authors' training (checkered.md §5.6-5.7), validating on the test set as they did:
/// on MNIST-type data `demo_mnist.py` (100 epochs, batch 16, no weight decay, ×0.1 at 50 and 75,
/// rotation ±15° then crop with padding 2, MNIST's statistics), otherwise `demo_cifar.py` (300 epochs, batch 64, weight
/// decay 1e-4 on everything, ×0.1 at 150 and 225, crop 4 + flip, the CIFAR-100 statistics it used for
/// both CIFARs). SGD 0.1 with Nesterov momentum 0.9 in both.
pub fn checkered_recipe(dataset: &str) -> serde_json::Value {
    let common = serde_json::json!({
        "lr": 0.1, "momentum": 0.9, "nesterov": true, "dampening": 0.0, "schedule": "multistep",
        "val_split": 0.0, "cutout": 0, "no_decay": [], "no_decay_1d": false,
    });
    let specific = if is_grey_28(dataset) {
        let mut r = serde_json::json!({
            "epochs": 100, "batch_size": 16, "eval_batch_size": 16, "weight_decay": 0.0,
            "milestones": [50, 75], "gammas": [0.1, 0.1], "augment": ["rotate:15", "crop:2"],
        });
        if dataset == "mnist" {
            r["mean"] = serde_json::json!([0.1307]);
            r["std"] = serde_json::json!([0.3081]);
        }
        r
    } else {
        let mut r = serde_json::json!({
            "epochs": 300, "batch_size": 64, "eval_batch_size": 64, "weight_decay": 1e-4,
            "milestones": [150, 225], "gammas": [0.1, 0.1], "augment": ["crop:4", "flip"],
        });
        if dataset == "cifar10" || dataset == "cifar100" {
            r["mean"] = serde_json::json!([0.5071, 0.4867, 0.4408]);
            r["std"] = serde_json::json!([0.2675, 0.2565, 0.2761]);
        }
        r
    };
    let mut out = common;
    if let (Some(o), serde_json::Value::Object(s)) = (out.as_object_mut(), specific) {
        o.extend(s);
    }
    out
}

/// Where the engine's defaults come from (the architectures without a recipe of their own).
pub const ENGINE_RECIPE: &str = "the SWRN repository's main.py (swrn.md §4-5)";

/// No recipe of the architecture's own: the engine's defaults (the SWRN recipe) apply.
pub fn engine_defaults(_dataset: &str) -> serde_json::Value {
    serde_json::json!({})
}

/// How `export --format pytorch` was asked to name a model's tensors.
#[derive(Debug, Clone, Copy)]
pub struct ExportRequest<'a> {
    /// The model the tensors belong to.
    pub config: &'a ModelConfig,
    /// An alternative naming scheme the architecture offers (e.g. DenseNet's `torchvision`); `None`
    /// for the original code's names. An architecture refuses names it does not know.
    pub naming: Option<&'a str>,
}

impl ExportRequest<'_> {
    /// Refuses any alternative naming (for architectures that have only the original's names).
    pub fn original_names_only(&self) -> Result<()> {
        match self.naming {
            None => Ok(()),
            Some(n) => Err(input_err!(
                "--naming: architecture '{}' has only the original code's names, not '{n}'.",
                self.config.arch
            )),
        }
    }
}

/// Renames a model's tensors to another code's `state_dict()` names.
pub type ExportFn = fn(&[(String, Tensor)], &ExportRequest) -> Result<NamedTensors>;

/// Returns the plain model's configuration and tensors.
pub type MaterializeFn = fn(&[(String, Tensor)], &ModelConfig) -> Result<(ModelConfig, Vec<(String, Tensor)>)>;

/// PyTorch `state_dict()` names for modules whose variable names already match: every BatchNorm also
/// lists an int64 `num_batches_tracked` (tch does not count batches; written as 0).
pub fn torch_state_dict(named: &[(String, Tensor)], request: &ExportRequest) -> Result<NamedTensors> {
    request.original_names_only()?;
    Ok(with_batch_counts(named, 0))
}

/// `named` plus an int64 scalar `num_batches_tracked` = `count` beside every BatchNorm's
/// `running_var`, as PyTorch's `state_dict()` lists them; sorted by name.
pub fn with_batch_counts(named: &[(String, Tensor)], count: i64) -> NamedTensors {
    let mut out = Vec::with_capacity(named.len());
    for (name, t) in named {
        out.push((name.clone(), t.shallow_clone()));
        if let Some(bn) = name.strip_suffix(".running_var") {
            out.push((format!("{bn}.num_batches_tracked"), Tensor::from(count).to_device(t.device())));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The identity import: tensor names are already the model's.
pub fn same_names(t: NamedTensors) -> Result<NamedTensors> {
    Ok(t)
}

/// Every architecture convtrain knows, in the order `convtrain info` lists them.
pub fn registry() -> Vec<&'static Arch> {
    [
        wrn::ARCHS,
        swrn::ARCHS,
        resnet::ARCHS,
        densenet::ARCHS,
        vgg::ARCHS,
        vgg_features::ARCHS,
        mnist_toy::ARCHS,
        diracnet::ARCHS,
        associative::ARCHS,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Looks an architecture up by name; the error lists the known names.
pub fn find(name: &str) -> Result<&'static Arch> {
    registry().into_iter().find(|a| a.name == name).ok_or_else(|| {
        let names: Vec<&str> = registry().iter().map(|a| a.name).collect();
        input_err!("--arch: unknown architecture '{name}'. Known architectures: {}.", names.join(", "))
    })
}

/// A built network with its variables.
pub struct Model {
    pub vs: nn::VarStore,
    pub net: Box<dyn Layer>,
    pub arch: &'static Arch,
    pub config: ModelConfig,
    /// Inputs go to the network in channels-last memory order ([`Model::use_channels_last`]).
    channels_last: bool,
}

/// `t` in channels-last (NHWC) memory order when it is 4-D — the same values, strided so that the
/// channels are innermost, which makes libtorch pick its NHWC kernels — else `t` itself.
fn to_channels_last(t: &Tensor) -> Tensor {
    if t.dim() == 4 {
        t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        t.shallow_clone()
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("arch", &self.arch.name).field("config", &self.config).finish()
    }
}

impl Model {
    /// Builds the network on `device`; initialisation draws from torch's global RNG.
    pub fn build(config: &ModelConfig, device: Device) -> Result<Model> {
        let arch = find(&config.arch)?;
        let vs = nn::VarStore::new(device);
        let net = (arch.build)(&vs.root(), config)?;
        Ok(Model { vs, net, arch, config: config.clone(), channels_last: false })
    }

    /// Stores every 4-D variable (convolution kernels) in channels-last memory order and feeds the
    /// inputs in it from now on (`--channels-last`). Values, names and checkpoints are unchanged
    /// (checkpoints are written contiguous and read into the variables' own layout).
    pub fn use_channels_last(&mut self) {
        tch::no_grad(|| {
            for (_, mut v) in self.vs.variables() {
                if v.dim() == 4 {
                    v.set_data(&to_channels_last(&v));
                }
            }
        });
        self.channels_last = true;
    }

    /// The network's output for `xs`, in training mode or not.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward(xs, &mut Pass::new(train))
    }

    /// [`Model::forward_t`] that also returns the layers gone through, in order (`convtrain summary`).
    pub fn forward_traced(&self, xs: &Tensor, train: bool) -> (Tensor, Vec<LayerTrace>) {
        pass::traced(train, |pass| self.forward(xs, pass))
    }

    fn forward(&self, xs: &Tensor, pass: &mut Pass) -> Tensor {
        if self.channels_last {
            self.net.forward(&to_channels_last(xs), pass)
        } else {
            self.net.forward(xs, pass)
        }
    }

    /// Trainable parameter count (each shared tensor once, frozen ones left out): the number the
    /// papers quote.
    pub fn num_parameters(&self) -> i64 {
        self.named_parameters().iter().map(|(_, t)| t.numel() as i64).sum()
    }

    /// All variables (parameters and buffers such as BN running statistics), sorted by name.
    pub fn named_variables(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<_> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Trainable parameters, sorted by name.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.named_variables().into_iter().filter(|(_, t)| t.requires_grad()).collect()
    }
}

impl Model {
    /// Copies the model tensors of a checkpoint into this model, after renaming them from foreign
    /// names (e.g. the authors' PyTorch keys) with the architecture's `import`; see [`Model::load_named`].
    pub fn load_checkpoint(&self, ck: &Checkpoint) -> Result<()> {
        let tensors = (self.arch.import)(ck.model_tensors())?;
        self.load_named(&tensors, &ck.path, ck.metadata.get("arch").map(String::as_str))
    }

    /// Copies named tensors into the model's variables. Every model variable must be present with the
    /// same shape; the error names the first one that is missing or mismatched (and the architectures
    /// when the source says which it came from).
    pub fn load_named(&self, tensors: &[(String, Tensor)], source: &Path, source_arch: Option<&str>) -> Result<()> {
        let by_name: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let arch_note = match source_arch {
            Some(a) if a != self.arch.name => {
                format!(" The checkpoint is of architecture '{a}', the model is '{}'.", self.arch.name)
            }
            _ => String::new(),
        };
        for (name, var) in self.named_variables() {
            let src = by_name.get(name.as_str()).ok_or_else(|| {
                input_err!(
                    "{}: tensor '{name}' of the model is missing from the checkpoint.{arch_note}",
                    source.display()
                )
            })?;
            if src.size() != var.size() {
                return Err(input_err!(
                    "{}: tensor '{name}' has shape {:?} in the checkpoint but {:?} in the model.{arch_note}",
                    source.display(),
                    src.size(),
                    var.size()
                ));
            }
        }
        tch::no_grad(|| {
            for (name, mut var) in self.named_variables() {
                var.copy_(by_name[name.as_str()]);
            }
        });
        Ok(())
    }

    /// Checkpoint metadata describing this model.
    pub fn metadata(&self) -> Result<HashMap<String, String>> {
        let mut m = HashMap::new();
        m.insert("format".into(), crate::checkpoint::format_name());
        m.insert("convtrain_version".into(), env!("CARGO_PKG_VERSION").into());
        m.insert("arch".into(), self.arch.name.into());
        m.insert("model_config".into(), to_json(&self.config, "the model configuration")?);
        // Trainable parameters, each shared tensor once; the other tensors are BN running statistics.
        m.insert("num_parameters".into(), self.num_parameters().to_string());
        Ok(m)
    }
}

/// A configuration for tests: `arch` with default depth/width.
#[cfg(test)]
pub(crate) fn test_config(
    arch: &str,
    num_classes: i64,
    checkered: bool,
    in_channels: i64,
    image_size: i64,
) -> ModelConfig {
    ModelConfig { checkered, ..ModelConfig::new(arch, num_classes, in_channels, image_size) }
}
