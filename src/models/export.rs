//! `convtrain export`: rewrites a checkpoint for other code — as the original PyTorch model's
//! `state_dict()` (`--format pytorch`), as a traced TorchScript module (`--format torchscript`), or
//! folded into a plain architecture (`--materialize`, SWRN → WRN).
use super::{find, ExportRequest, Model, ModelConfig};
use crate::checkpoint;
use crate::error::Result;
use crate::{input_err, internal_err};
use std::collections::HashMap;
use std::path::Path;

/// Output formats of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The original implementation's `state_dict()` names (no `module.` prefix), BN buffers included.
    Pytorch,
    /// convtrain's own checkpoint (weights + model metadata, optimizer state stripped).
    Convtrain,
    /// A TorchScript module traced in eval mode (`torch.jit.load` in Python, `CModule` in libtorch).
    Torchscript,
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

/// Choices of `export --format`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions<'a> {
    /// An alternative naming scheme the architecture offers (`--naming`, pytorch format only).
    pub naming: Option<&'a str>,
    /// The batch size of the TorchScript tracing input.
    pub trace_batch: i64,
}

/// Writes the checkpoint's model in `format` to `out`; returns a one-line description of what was
/// written.
pub fn export(src: &Path, out: &Path, format: ExportFormat, options: ExportOptions) -> Result<String> {
    if let (Some(n), false) = (options.naming, format == ExportFormat::Pytorch) {
        return Err(input_err!("--naming {n}: only --format pytorch has alternative namings."));
    }
    let (ck, mc) = open(src)?;
    let (tensors, meta) = match format {
        ExportFormat::Torchscript => return torchscript(&ck, &mc, out, options.trace_batch),
        ExportFormat::Pytorch => {
            let meta = HashMap::from([
                ("format".to_string(), "pytorch-state-dict".to_string()),
                ("arch".to_string(), mc.arch.clone()),
            ]);
            let request = ExportRequest { config: &mc, naming: options.naming };
            ((find(&mc.arch)?.export)(&ck.model_tensors(), &request)?, meta)
        }
        ExportFormat::Convtrain => {
            let mut meta = ck.metadata.clone();
            meta.remove("train_state");
            (ck.model_tensors(), meta)
        }
    };
    checkpoint::save(out, &tensors, meta)?;
    Ok(format!("{} tensors", tensors.len()))
}

/// Traces the checkpoint's model in eval mode on a `batch`×C×H×W input of its own geometry and writes a
/// TorchScript module. The trace records the operations one forward pass ran: shape arithmetic done
/// outside libtorch (the checkered layers' submap bookkeeping, for one) is fixed to that batch size.
fn torchscript(ck: &checkpoint::Checkpoint, mc: &ModelConfig, out: &Path, batch: i64) -> Result<String> {
    if batch < 1 {
        return Err(input_err!("--batch-size: the tracing batch must be at least 1, got {batch}."));
    }
    let mut model = Model::build(mc, tch::Device::Cpu)?;
    model.load_checkpoint(ck)?;
    // The weights become constants of the traced graph, which must not require gradients.
    model.vs.freeze();
    let shape = [batch, mc.in_channels, mc.image_size, mc.image_size];
    let x = tch::Tensor::zeros(shape, (tch::Kind::Float, tch::Device::Cpu));
    let module = tch::no_grad(|| {
        tch::CModule::create_by_tracing("convtrain", "forward", &[x], &mut |inputs| {
            vec![model.forward_t(&inputs[0], false)]
        })
    })
    .map_err(|e| internal_err!("tracing {} failed: {e}", mc.arch))?;
    module.save(out).map_err(|e| input_err!("{}: cannot write the TorchScript module ({e}).", out.display()))?;
    Ok(format!("TorchScript, {} traced in eval mode on a {shape:?} input", mc.arch))
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
    // The plain model, built and loaded, checks the fold and describes itself (its own count).
    let model = Model::build(&plain, tch::Device::Cpu)?;
    model.load_named(&tensors, out, Some(&mc.arch))?;
    let mut meta = ck.metadata.clone();
    meta.remove("train_state");
    meta.extend(model.metadata()?);
    meta.insert("materialized_from".into(), mc.arch.clone());
    checkpoint::save(out, &model.named_variables(), meta)?;
    Ok(plain)
}
