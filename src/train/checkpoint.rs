//! Checkpoint files: safetensors holding the model's variables under their names (BN running
//! statistics included), optionally the optimizer's momentum buffers under `optimizer.momentum.<name>`,
//! and JSON metadata (`arch`, `model_config`, `train_state`). Every write is atomic: temp file, fsync,
//! rename, fsync of the directory — a crash at any instant leaves the previous file intact.
use crate::error::{IoContext, Result};
use crate::input_err;
use crate::models::{Model, ModelConfig};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

pub const MOMENTUM_PREFIX: &str = "optimizer.momentum.";

/// A checkpoint read from disk (tensors on the CPU).
#[derive(Debug)]
pub struct Checkpoint {
    pub path: PathBuf,
    pub tensors: Vec<(String, Tensor)>,
    pub metadata: HashMap<String, String>,
}

fn dtype_of(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Uint8 => Dtype::U8,
        Kind::Int8 => Dtype::I8,
        Kind::Bool => Dtype::BOOL,
        k => return Err(input_err!("cannot store a tensor of kind {k:?} in a checkpoint")),
    })
}

fn kind_of(d: Dtype) -> Option<Kind> {
    Some(match d {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::U8 => Kind::Uint8,
        Dtype::I8 => Kind::Int8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp).at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        drop(f);
        std::fs::rename(&tmp, path).at(path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Serialises named tensors (moved to the CPU) with metadata and writes them atomically.
pub fn save(path: &Path, tensors: &[(String, Tensor)], metadata: HashMap<String, String>) -> Result<()> {
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.detach().to_device(Device::Cpu).contiguous();
        let numel = t.numel();
        let mut buf = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.copy_data_u8(&mut buf, numel);
        owned.push((name.clone(), dtype_of(t.kind())?, t.size().iter().map(|&d| d as usize).collect(), buf));
    }
    let views = owned
        .iter()
        .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.as_str(), v)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| input_err!("{}: cannot serialise checkpoint: {e}", path.display()))?;
    let bytes = safetensors::serialize(views, &Some(metadata))
        .map_err(|e| input_err!("{}: cannot serialise checkpoint: {e}", path.display()))?;
    write_atomic(path, &bytes)
}

/// Resolves a checkpoint argument: a file, a file name without `.safetensors`, or a run directory
/// (whose `default` checkpoint, `best` or `last`, is taken).
pub fn resolve(arg: &Path, default: &str) -> Result<PathBuf> {
    if arg.is_dir() {
        let p = arg.join(format!("{default}.safetensors"));
        if p.is_file() {
            return Ok(p);
        }
        return Err(input_err!("{}: this run directory holds no {default}.safetensors checkpoint.", arg.display()));
    }
    if arg.is_file() {
        return Ok(arg.to_path_buf());
    }
    let with_ext = PathBuf::from(format!("{}.safetensors", arg.display()));
    if with_ext.is_file() {
        return Ok(with_ext);
    }
    Err(input_err!("{}: no such checkpoint file or run directory.", arg.display()))
}

/// Reads a checkpoint; a truncated or foreign file is an input error naming it.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).at(path)?;
    let bad = |e: &dyn std::fmt::Display| {
        input_err!(
            "{}: not a valid convtrain/safetensors checkpoint ({e}); the file may be truncated or of another format.",
            path.display()
        )
    };
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(&e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(&e))?;
    let mut tensors = Vec::new();
    for (name, v) in st.tensors() {
        let kind =
            kind_of(v.dtype()).ok_or_else(|| bad(&format!("tensor '{name}' has unsupported dtype {:?}", v.dtype())))?;
        let shape: Vec<i64> = v.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(v.data(), &shape, kind).map_err(|e| bad(&e))?;
        tensors.push((name, t));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Checkpoint { path: path.to_path_buf(), tensors, metadata: meta.metadata().clone().unwrap_or_default() })
}

impl Checkpoint {
    /// The model configuration stored with the checkpoint, if any.
    pub fn model_config(&self) -> Result<Option<ModelConfig>> {
        match self.metadata.get("model_config") {
            None => Ok(None),
            Some(s) => serde_json::from_str(s)
                .map(Some)
                .map_err(|e| input_err!("{}: corrupt model_config metadata ({e}).", self.path.display())),
        }
    }

    /// Model tensors only (optimizer state stripped), sharing storage with the checkpoint.
    pub fn model_tensors(&self) -> Vec<(String, Tensor)> {
        self.tensors
            .iter()
            .filter(|(n, _)| !n.starts_with(MOMENTUM_PREFIX))
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect()
    }

    /// Copies this checkpoint's model tensors into `model`, after renaming them from foreign names
    /// (e.g. the authors' PyTorch keys) with the architecture's `import`; see [`load_into`].
    pub fn load_model_into(&self, model: &Model) -> Result<()> {
        let tensors = (model.arch.import)(self.model_tensors());
        load_into(model, &tensors, &self.path, self.metadata.get("arch").map(String::as_str))
    }

    /// Momentum buffers keyed by parameter name.
    pub fn momentum(&self) -> Vec<(String, Tensor)> {
        self.tensors
            .iter()
            .filter_map(|(n, t)| n.strip_prefix(MOMENTUM_PREFIX).map(|p| (p.to_string(), t.shallow_clone())))
            .collect()
    }
}

/// Copies named tensors into the model's variables. Every model variable must be present with the same
/// shape; the error names the first one that is missing or mismatched (and the architectures when the
/// checkpoint says which it came from).
pub fn load_into(model: &Model, tensors: &[(String, Tensor)], source: &Path, source_arch: Option<&str>) -> Result<()> {
    let by_name: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let arch_note = match source_arch {
        Some(a) if a != model.arch.name => {
            format!(" The checkpoint is of architecture '{a}', the model is '{}'.", model.arch.name)
        }
        _ => String::new(),
    };
    for (name, var) in model.named_variables() {
        let src = by_name.get(name.as_str()).ok_or_else(|| {
            input_err!("{}: tensor '{name}' of the model is missing from the checkpoint.{arch_note}", source.display())
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
        for (name, mut var) in model.named_variables() {
            var.copy_(by_name[name.as_str()]);
        }
    });
    Ok(())
}

/// The variables of `model` plus metadata describing it.
pub fn model_metadata(model: &Model) -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert("format".into(), "convtrain-checkpoint-1".into());
    m.insert("convtrain_version".into(), env!("CARGO_PKG_VERSION").into());
    m.insert("arch".into(), model.arch.name.into());
    m.insert("model_config".into(), serde_json::to_string(&model.config).unwrap_or_default());
    // Trainable parameters, each shared tensor once; the other tensors are BN running statistics.
    m.insert("num_parameters".into(), model.num_parameters().to_string());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.safetensors");
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0]).view([3, 1]);
        let b = Tensor::from_slice(&[7i64]);
        let mut meta = HashMap::new();
        meta.insert("k".to_string(), "v".to_string());
        save(&p, &[("a".into(), a.shallow_clone()), ("b".into(), b.shallow_clone())], meta).unwrap();
        let c = load(&p).unwrap();
        assert_eq!(c.metadata["k"], "v");
        assert!(c.tensors[0].1.equal(&a) && c.tensors[1].1.equal(&b));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("c.safetensors") && e.contains("truncated"), "{e}");
        assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")));
    }
}
