//! Checkpoint files, at the ground of the crate (models, training and commands all read them):
//! safetensors holding a model's variables under their names (BN running statistics included),
//! optionally the optimizer's momentum buffers under `optimizer.momentum.<name>`, and JSON metadata
//! (`arch`, `model_config`, `train_state`). Every write is atomic: temp file, fsync, rename, fsync of
//! the directory — a crash at any instant leaves the previous file intact.
use crate::error::{IoContext, Result};
use crate::{input_err, internal_err};
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
        k => return Err(internal_err!("cannot store a tensor of kind {k:?} in a checkpoint")),
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
        .map_err(|e| internal_err!("{}: cannot serialise checkpoint: {e}", path.display()))?;
    let bytes = safetensors::serialize(views, &Some(metadata))
        .map_err(|e| internal_err!("{}: cannot serialise checkpoint: {e}", path.display()))?;
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
    /// Model tensors only (optimizer state stripped), sharing storage with the checkpoint.
    pub fn model_tensors(&self) -> Vec<(String, Tensor)> {
        self.tensors
            .iter()
            .filter(|(n, _)| !n.starts_with(MOMENTUM_PREFIX))
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect()
    }

    /// Momentum buffers keyed by parameter name.
    pub fn momentum(&self) -> Vec<(String, Tensor)> {
        self.tensors
            .iter()
            .filter_map(|(n, t)| n.strip_prefix(MOMENTUM_PREFIX).map(|p| (p.to_string(), t.shallow_clone())))
            .collect()
    }
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
