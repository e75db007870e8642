//! The model registry: every paper family registers its architectures here, and the engine only ever
//! sees a [`Model`] (a variable store plus a `ModuleT`) and the architecture's default weight-decay
//! exclusions.
pub mod checkered;
pub mod densenet;
pub mod export;
pub mod layers;
pub mod mnist_toy;
pub mod resnet;
pub mod soft_sharing;
pub mod summary;
pub mod swrn;
pub mod vgg;
pub mod wrn;

use crate::error::Result;
use crate::input_err;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

/// What a builder needs to know to construct a network. Fields an architecture does not use are
/// ignored by it; `None` means "the architecture's default".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelConfig {
    pub arch: String,
    pub depth: Option<i64>,
    pub width: Option<i64>,
    pub bank_size: Option<i64>,
    /// Convert the network into a checkered CNN (checkered.md §3).
    pub checkered: bool,
    pub num_classes: i64,
    pub in_channels: i64,
    pub image_size: i64,
    /// Checkered subsampling sampler: `naive` (the papers' training, default), `lattice` or `random`
    /// (checkered.md §2.4). Set for the thread that builds the model, which is the one that runs it.
    #[serde(default)]
    pub sampler: Option<String>,
}

impl ModelConfig {
    /// `arch` for `num_classes` classes and `in_channels`×`image_size`² inputs, every other choice the
    /// architecture's default (not checkered, naive sampler).
    pub fn new(arch: &str, num_classes: i64, in_channels: i64, image_size: i64) -> ModelConfig {
        ModelConfig {
            arch: arch.into(),
            depth: None,
            width: None,
            bank_size: None,
            checkered: false,
            num_classes,
            in_channels,
            image_size,
            sampler: None,
        }
    }
}

/// Tensors with their variable names, as checkpoints hold them.
pub type NamedTensors = Vec<(String, Tensor)>;

/// Builds a network under `root` (its variables are created there, named as in the original code).
pub type BuildFn = fn(&nn::Path, &ModelConfig) -> Result<Box<dyn ModuleT>>;

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
    pub import: fn(NamedTensors) -> NamedTensors,
    /// Renames this model's tensors to the original code's `state_dict()` names (`export --format pytorch`).
    pub export: fn(&[(String, Tensor)]) -> NamedTensors,
    /// Folds the trained model into an equivalent plain architecture (`export --materialize`), if the
    /// family has one (SWRN → WRN).
    pub materialize: Option<MaterializeFn>,
}

/// Returns the plain model's configuration and tensors.
pub type MaterializeFn = fn(&[(String, Tensor)], &ModelConfig) -> Result<(ModelConfig, Vec<(String, Tensor)>)>;

/// PyTorch `state_dict()` names for modules whose variable names already match: every BatchNorm also
/// lists an int64 `num_batches_tracked` (tch does not count batches; written as 0).
pub fn torch_state_dict(named: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    let mut out = Vec::with_capacity(named.len());
    for (name, t) in named {
        out.push((name.clone(), t.shallow_clone()));
        if let Some(bn) = name.strip_suffix(".running_var") {
            out.push((format!("{bn}.num_batches_tracked"), Tensor::from(0i64)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The identity import: tensor names are already the model's.
pub fn same_names(t: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    t
}

/// Every architecture convtrain knows, in the order `convtrain info` lists them.
pub fn registry() -> Vec<&'static Arch> {
    [wrn::ARCHS, swrn::ARCHS, resnet::ARCHS, densenet::ARCHS, vgg::ARCHS, mnist_toy::ARCHS]
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
    pub net: Box<dyn ModuleT>,
    pub arch: &'static Arch,
    pub config: ModelConfig,
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
        checkered::set_sampler(checkered::Sampler::parse(config.sampler.as_deref().unwrap_or("naive"))?);
        let vs = nn::VarStore::new(device);
        let net = (arch.build)(&vs.root(), config)?;
        Ok(Model { vs, net, arch, config: config.clone() })
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.net.forward_t(xs, train)
    }

    /// Trainable parameter count (each shared tensor once): the number the papers quote.
    pub fn num_parameters(&self) -> i64 {
        self.vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
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
