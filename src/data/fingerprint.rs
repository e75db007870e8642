//! A dataset directory's fingerprint: its files (relative paths, sizes) and a SHA-256 over their
//! contents, recorded when a run starts so that a resume may read the data from another directory
//! (clusters stage it to a new scratch path in every job) only when it is the same data. Hidden files
//! (names starting with `.`) are left out. Above [`CONTENT_LIMIT`] bytes in all (ImageNet folders), the
//! hash covers the paths and sizes only, and says so.
use crate::error::{IoContext, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Directories holding more bytes than this are fingerprinted by paths and sizes alone.
pub const CONTENT_LIMIT: u64 = 4 << 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub files: usize,
    pub bytes: u64,
    /// `content` (paths, sizes and every byte) or `sizes` (paths and sizes).
    pub method: String,
    pub sha256: String,
}

impl Fingerprint {
    /// What differs between two fingerprints, for messages.
    pub fn difference(&self, other: &Fingerprint) -> String {
        if (self.files, self.bytes) != (other.files, other.bytes) {
            format!("{} files of {} bytes, not {} files of {} bytes", other.files, other.bytes, self.files, self.bytes)
        } else {
            format!(
                "the same {} files and sizes, but other contents (SHA-256 {} ≠ {})",
                self.files, other.sha256, self.sha256
            )
        }
    }
}

/// The regular files under `dir`, relative, sorted, hidden ones left out.
fn files(dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).at(&d)? {
            let e = e.at(&d)?;
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let meta = std::fs::metadata(e.path()).at(&e.path())?;
            if meta.is_dir() {
                todo.push(e.path());
            } else if meta.is_file() {
                out.push((e.path().strip_prefix(dir).unwrap_or(&e.path()).to_path_buf(), meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The fingerprint of the dataset directory `dir`.
pub fn fingerprint(dir: &Path) -> Result<Fingerprint> {
    let list = files(dir)?;
    let bytes: u64 = list.iter().map(|(_, n)| n).sum();
    let content = bytes <= CONTENT_LIMIT;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for (rel, size) in &list {
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(size.to_le_bytes());
        if content {
            let path = dir.join(rel);
            let mut f = std::fs::File::open(&path).at(&path)?;
            loop {
                let n = f.read(&mut buf).at(&path)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
    }
    let sha256 = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Fingerprint { files: list.len(), bytes, method: if content { "content" } else { "sizes" }.into(), sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_matches_and_a_changed_byte_does_not() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d.join("sub")).unwrap();
            std::fs::write(d.join("x.bin"), [1u8, 2, 3]).unwrap();
            std::fs::write(d.join("sub/y.bin"), [4u8; 10]).unwrap();
        }
        std::fs::write(b.join(".lock"), "ignored").unwrap();
        let fa = fingerprint(&a).unwrap();
        assert_eq!(fa, fingerprint(&b).unwrap());
        assert_eq!((fa.files, fa.bytes, fa.method.as_str()), (2, 13, "content"));
        std::fs::write(b.join("x.bin"), [1u8, 2, 4]).unwrap();
        let fb = fingerprint(&b).unwrap();
        assert_ne!(fa, fb);
        assert!(fa.difference(&fb).contains("other contents"), "{}", fa.difference(&fb));
        std::fs::write(b.join("z.bin"), [0u8]).unwrap();
        assert!(fa.difference(&fingerprint(&b).unwrap()).contains("3 files of 14 bytes"));
    }
}
