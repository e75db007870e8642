//! `convtrain export`: rewrites a checkpoint for other code — as the original PyTorch model's
//! `state_dict()` (`--format pytorch`), or folded into a plain architecture (`--materialize`, SWRN → WRN).
use super::{find, ExportRequest, ModelConfig};
use crate::checkpoint;
use crate::error::{to_json, Result};
use crate::input_err;
use std::collections::HashMap;
use std::path::Path;

/// Output formats of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The original implementation's `state_dict()` names (no `module.` prefix), BN buffers included.
    Pytorch,
    /// convtrain's own checkpoint (weights + model metadata, optimizer state stripped).
    Convtrain,
}

/// Reads the checkpoint at `src` and its model configuration.
fn open(src: &Path) -> Result<(checkpoint::Checkpoint, ModelConfig)> {
    let path = checkpoint::resolve(src, "best")?;
    let ck = checkpoint::load(&path)?;
    let mc = ModelConfig::from_checkpoint(&ck)?.ok_or_else(|| {
        input_err!("{}: the checkpoint does not say which model it holds (no model_config metadata).", path.display())
    })?;
    Ok((ck, mc))
}

/// Writes the checkpoint's model in `format` to `out`; returns the number of tensors written.
/// `naming` picks an alternative naming scheme the architecture offers (`--naming`).
pub fn export(src: &Path, out: &Path, format: ExportFormat, naming: Option<&str>) -> Result<usize> {
    let (ck, mc) = open(src)?;
    let arch = find(&mc.arch)?;
    let named: Vec<_> = ck.model_tensors();
    let mut meta = HashMap::new();
    let tensors = match format {
        ExportFormat::Pytorch => {
            meta.insert("format".to_string(), "pytorch-state-dict".to_string());
            meta.insert("arch".to_string(), mc.arch.clone());
            (arch.export)(&named, &ExportRequest { config: &mc, naming })?
        }
        ExportFormat::Convtrain => {
            if let Some(n) = naming {
                return Err(input_err!("--naming {n}: only --format pytorch has alternative namings."));
            }
            meta = ck.metadata.clone();
            meta.remove("train_state");
            named
        }
    };
    checkpoint::save(out, &tensors, meta)?;
    Ok(tensors.len())
}

/// Folds the checkpoint's model into its plain equivalent and writes a convtrain checkpoint that
/// `evaluate` loads as that architecture; returns the plain model's configuration.
pub fn materialize(src: &Path, out: &Path) -> Result<ModelConfig> {
    let (ck, mc) = open(src)?;
    let arch = find(&mc.arch)?;
    let fold = arch.materialize.ok_or_else(|| {
        input_err!(
            "--materialize: architecture '{}' has no plain equivalent to fold into (SWRN checkpoints do).",
            mc.arch
        )
    })?;
    let named: Vec<_> = ck.model_tensors();
    let (plain, tensors) = fold(&named, &mc)?;
    let mut meta = ck.metadata.clone();
    meta.remove("train_state");
    meta.insert("arch".into(), plain.arch.clone());
    meta.insert("model_config".into(), to_json(&plain, "the plain model's configuration")?);
    meta.insert("materialized_from".into(), mc.arch.clone());
    checkpoint::save(out, &tensors, meta)?;
    Ok(plain)
}
