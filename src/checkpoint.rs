//! Checkpoint files, at the ground of the crate (models, training and commands all read them):
//! safetensors holding a model's variables under their names (BN running statistics included),
//! optionally the optimizer's momentum buffers under `optimizer.momentum.<name>`, and JSON metadata
//! (`arch`, `model_config`, `train_state`). Every write is atomic: temp file, fsync, rename, fsync of
//! the directory — a crash at any instant leaves the previous file intact.
//!
//! Every file [`save`] writes carries checksums in its metadata: a CRC-32 of each tensor (its dtype,
//! shape and bytes, `tensor_crc32`) and one of the other metadata entries (`metadata_crc32`); [`load`]
//! verifies them, so a flipped bit is an error naming the tensor. Files without checksums (written
//! by an earlier convtrain, or by other code) load as before. The metadata `format`
//! (`convtrain-checkpoint-N`) is checked: a newer format than this build reads is refused.
use crate::error::{IoContext, Result};
use crate::{input_err, internal_err};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

pub const MOMENTUM_PREFIX: &str = "optimizer.momentum.";

/// The `format` metadata of convtrain checkpoints is this prefix and the format version.
pub const FORMAT_PREFIX: &str = "convtrain-checkpoint-";
/// The newest checkpoint format this build reads and the one it writes.
pub const FORMAT_VERSION: u32 = 1;
/// The metadata key of the format name ([`format_name`]).
const FORMAT_KEY: &str = "format";
const TENSOR_CRC: &str = "tensor_crc32";
const METADATA_CRC: &str = "metadata_crc32";
/// Largest safetensors header [`read_metadata`] accepts (a checkpoint's is a few kilobytes).
const MAX_HEADER_BYTES: u64 = 100 << 20;

/// The `format` metadata value of the checkpoints this build writes.
pub fn format_name() -> String {
    format!("{FORMAT_PREFIX}{FORMAT_VERSION}")
}

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

/// CRC-32 of a tensor's dtype, shape and bytes.
fn tensor_crc(dtype: Dtype, shape: &[usize], data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(format!("{dtype:?}").as_bytes());
    shape.iter().for_each(|&d| h.update(&(d as u64).to_le_bytes()));
    h.update(data);
    h.finalize()
}

/// CRC-32 of the metadata entries other than `metadata_crc32`, in key order.
fn metadata_crc(metadata: &HashMap<String, String>) -> u32 {
    let mut keys: Vec<&String> = metadata.keys().filter(|k| k.as_str() != METADATA_CRC).collect();
    keys.sort();
    let mut h = crc32fast::Hasher::new();
    for k in keys {
        h.update(k.as_bytes());
        h.update(&[0]);
        h.update(metadata[k].as_bytes());
        h.update(&[0]);
    }
    h.finalize()
}

/// Serialises named tensors (moved to the CPU) with metadata and checksums, and writes them atomically.
pub fn save(path: &Path, tensors: &[(String, Tensor)], mut metadata: HashMap<String, String>) -> Result<()> {
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    let mut crcs = serde_json::Map::new();
    for (name, t) in tensors {
        let t = t.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()?;
        let numel = t.numel();
        let mut buf = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut buf, numel)?;
        let (dtype, shape) = (dtype_of(t.kind())?, t.size().iter().map(|&d| d as usize).collect::<Vec<_>>());
        crcs.insert(name.clone(), format!("{:08x}", tensor_crc(dtype, &shape, &buf)).into());
        owned.push((name.clone(), dtype, shape, buf));
    }
    metadata.insert(TENSOR_CRC.into(), crate::error::to_json(&crcs, "the tensor checksums")?);
    metadata.insert(METADATA_CRC.into(), format!("{:08x}", metadata_crc(&metadata)));
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

/// The error for a file that is not a readable checkpoint.
fn not_a_checkpoint(path: &Path, e: &dyn std::fmt::Display) -> crate::Error {
    input_err!(
        "{}: not a valid convtrain/safetensors checkpoint ({e}); the file may be truncated or of another format.",
        path.display()
    )
}

/// The error for a checkpoint whose content does not match its checksums.
fn damaged(path: &Path, what: &str) -> crate::Error {
    input_err!(
        "{}: {what} does not match its checksum: the file is damaged (a flipped bit, a bad copy or a failing \
         disk) or was edited. Use another checkpoint (best.safetensors, a backup) or start the run over.",
        path.display()
    )
}

/// Whether `key` is one of the keys convtrain reserves (`format` and the two checksum keys) with up to
/// three bytes changed: what a few flipped bits make of it (a bit flip never changes the length).
fn is_damaged_reserved_key(key: &str) -> bool {
    [FORMAT_KEY, TENSOR_CRC, METADATA_CRC].iter().any(|reserved| {
        let changed = key.bytes().zip(reserved.bytes()).filter(|(a, b)| a != b).count();
        key.len() == reserved.len() && (1..=3).contains(&changed)
    })
}

/// Checks the format version and the metadata checksum of a checkpoint's metadata.
fn check_metadata(path: &Path, metadata: &HashMap<String, String>) -> Result<()> {
    if let Some(version) = metadata.get(FORMAT_KEY).and_then(|f| f.strip_prefix(FORMAT_PREFIX)) {
        match version.parse::<u32>() {
            Ok(v) if (1..=FORMAT_VERSION).contains(&v) => {}
            _ => {
                return Err(input_err!(
                    "{}: checkpoint format '{FORMAT_PREFIX}{version}' is not one this convtrain reads (versions 1 to \
                     {FORMAT_VERSION}); it was written by a newer convtrain, or its metadata is damaged.",
                    path.display()
                ))
            }
        }
    }
    // Both checksums are written together: one without the other is a damaged key, and so is a key
    // a few flipped bits away from a reserved one (both checksum keys damaged would otherwise read
    // as a file written without checksums).
    if metadata.contains_key(METADATA_CRC) != metadata.contains_key(TENSOR_CRC)
        || metadata.keys().any(|k| is_damaged_reserved_key(k))
    {
        return Err(damaged(path, "its metadata"));
    }
    match metadata.get(METADATA_CRC) {
        Some(stored) if *stored != format!("{:08x}", metadata_crc(metadata)) => Err(damaged(path, "its metadata")),
        _ => Ok(()),
    }
}

/// The metadata of a checkpoint, from its header alone (the tensors are not read), checked as
/// [`load`] checks it.
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).at(path)?;
    let size = f.metadata().at(path)?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| not_a_checkpoint(path, &e))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES || n + 8 > size {
        return Err(not_a_checkpoint(path, &format!("a header of {n} bytes in a file of {size}")));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|e| not_a_checkpoint(path, &e))?;
    let header: serde_json::Value = serde_json::from_slice(&header).map_err(|e| not_a_checkpoint(path, &e))?;
    let metadata: HashMap<String, String> = match header.get("__metadata__") {
        None => HashMap::new(),
        Some(m) => serde_json::from_value(m.clone()).map_err(|e| not_a_checkpoint(path, &e))?,
    };
    check_metadata(path, &metadata)?;
    Ok(metadata)
}

/// Reads a checkpoint and verifies its checksums; a truncated, damaged or foreign file is an input
/// error naming it (and the tensor).
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).at(path)?;
    let bad = |e: &dyn std::fmt::Display| not_a_checkpoint(path, e);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(&e))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    check_metadata(path, &metadata)?;
    let crcs: Option<HashMap<String, String>> = match metadata.get(TENSOR_CRC) {
        None => None,
        Some(text) => Some(serde_json::from_str(text).map_err(|_| damaged(path, "its tensor checksum list"))?),
    };
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(&e))?;
    let mut tensors = Vec::new();
    for (name, v) in st.tensors() {
        if let Some(crcs) = &crcs {
            let computed = format!("{:08x}", tensor_crc(v.dtype(), v.shape(), v.data()));
            if crcs.get(&name) != Some(&computed) {
                return Err(damaged(path, &format!("tensor '{name}'")));
            }
        }
        let kind =
            kind_of(v.dtype()).ok_or_else(|| bad(&format!("tensor '{name}' has unsupported dtype {:?}", v.dtype())))?;
        let shape: Vec<i64> = v.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(v.data(), &shape, kind).map_err(|e| bad(&e))?;
        tensors.push((name, t));
    }
    if let Some(missing) = crcs.iter().flat_map(|c| c.keys()).find(|n| !tensors.iter().any(|(t, _)| t == *n)) {
        return Err(damaged(path, &format!("the tensor list (tensor '{missing}' is missing)")));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Checkpoint { path: path.to_path_buf(), tensors, metadata })
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

    fn saved(dir: &Path, meta: &[(&str, &str)]) -> (PathBuf, Vec<u8>) {
        let p = dir.join("c.safetensors");
        let meta = meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]);
        save(&p, &[("layer.weight".into(), t), ("layer.bias".into(), Tensor::from_slice(&[0.5f32]))], meta).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        (p, bytes)
    }

    #[test]
    fn a_flipped_bit_names_the_tensor_and_edited_metadata_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let (p, bytes) = saved(dir.path(), &[("train_state", r#"{"epoch":3}"#)]);
        assert_eq!(read_metadata(&p).unwrap()["train_state"], r#"{"epoch":3}"#);
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 0x10; // inside the data of the last tensor
        std::fs::write(&p, &flipped).unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("c.safetensors") && e.contains("checksum") && e.contains("layer.weight"), "{e}");
        let mut edited = bytes.clone();
        let at = bytes.windows(11).position(|w| w == br#"\"epoch\":3"#).unwrap();
        edited[at + 10] = b'7';
        std::fs::write(&p, &edited).unwrap();
        for e in [load(&p).unwrap_err().to_string(), read_metadata(&p).unwrap_err().to_string()] {
            assert!(e.contains("metadata") && e.contains("checksum"), "{e}");
        }
    }

    #[test]
    fn both_checksum_keys_damaged_is_damage_not_a_file_without_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = saved(dir.path(), &[]);
        let mut edited = std::fs::read(&p).unwrap();
        for (key, damaged_key) in
            [("\"tensor_crc32\"", "\"tensor_crc22\""), ("\"metadata_crc32\"", "\"metadata_crc33\"")]
        {
            let at = edited.windows(key.len()).position(|w| w == key.as_bytes()).unwrap();
            edited[at..at + key.len()].copy_from_slice(damaged_key.as_bytes());
        }
        std::fs::write(&p, &edited).unwrap();
        for e in [load(&p).unwrap_err().to_string(), read_metadata(&p).unwrap_err().to_string()] {
            assert!(e.contains("metadata") && e.contains("checksum"), "{e}");
        }
        assert!(is_damaged_reserved_key("formbt") && !is_damaged_reserved_key("format"));
        assert!(!is_damaged_reserved_key("arch") && !is_damaged_reserved_key("tensor_crc32_extra"));
    }

    #[test]
    fn newer_formats_are_refused_and_files_without_checksums_load() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = saved(dir.path(), &[("format", "convtrain-checkpoint-99")]);
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("convtrain-checkpoint-99") && e.contains("newer"), "{e}");
        // A plain safetensors file (no metadata at all), as other code writes them.
        let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F32, vec![2], &data).unwrap();
        std::fs::write(&p, safetensors::serialize([("w", view)], &None).unwrap()).unwrap();
        assert_eq!(load(&p).unwrap().tensors.len(), 1);
        assert!(read_metadata(&p).unwrap().is_empty());
    }
}
