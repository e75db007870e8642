//! CIFAR-10 and CIFAR-100 in their binary versions.
//!
//! CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`, 3073-byte records (one label
//! byte, then 1024 red, 1024 green and 1024 blue bytes of a 32×32 image in row-major order), in the data
//! directory or in `cifar-10-batches-bin/` below it. CIFAR-100: `train.bin` and `test.bin`, 3074-byte
//! records (coarse label, fine label, pixels), in the directory or in `cifar-100-binary/`; the fine
//! label (100 classes) is used.
use super::{missing_files, Dataset, InMemory};
use crate::error::{IoContext, Result};
use crate::input_err;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Bytes of one 3×32×32 image.
const PIXELS: usize = 3 * 32 * 32;

/// The file layout of one of the two datasets.
pub(crate) struct Layout {
    /// The directory the official tarball unpacks to.
    pub subdir: &'static str,
    pub train_files: &'static [&'static str],
    pub test_files: &'static [&'static str],
    /// Label bytes before the pixels; the label used is the last of them.
    label_bytes: usize,
    num_classes: i64,
}

const CIFAR10: Layout = Layout {
    subdir: "cifar-10-batches-bin",
    train_files: &["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"],
    test_files: &["test_batch.bin"],
    label_bytes: 1,
    num_classes: 10,
};

const CIFAR100: Layout = Layout {
    subdir: "cifar-100-binary",
    train_files: &["train.bin"],
    test_files: &["test.bin"],
    label_bytes: 2,
    num_classes: 100,
};

pub(crate) fn layout(ds: Dataset) -> &'static Layout {
    if ds == Dataset::Cifar100 {
        &CIFAR100
    } else {
        &CIFAR10
    }
}

/// The directory (`dir` or its official subdirectory) holding all of `files`, with their paths.
pub(crate) fn find_files(ds: Dataset, dir: &Path, files: &[&str]) -> Result<Vec<PathBuf>> {
    let dirs = [dir.to_path_buf(), dir.join(layout(ds).subdir)];
    dirs.iter()
        .map(|d| files.iter().map(|f| d.join(f)).collect::<Vec<_>>())
        .find(|paths| paths.iter().all(|p| p.is_file()))
        .ok_or_else(|| missing_files(ds, &dirs, &files.iter().map(|f| f.to_string()).collect::<Vec<_>>()))
}

/// Loads the train or test split into memory: uint8 images [N,3,32,32] and labels.
pub fn load(ds: Dataset, dir: &Path, train: bool) -> Result<InMemory> {
    let layout = layout(ds);
    let paths = find_files(ds, dir, if train { layout.train_files } else { layout.test_files })?;
    let record = layout.label_bytes + PIXELS;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for path in &paths {
        let bytes = std::fs::read(path).at(path)?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(input_err!(
                "{}: {} bytes is not a whole number of {}-byte {} records ({} label byte{} + {PIXELS} pixel \
                 bytes); the file is truncated or not the binary version of the dataset.",
                path.display(),
                bytes.len(),
                record,
                ds.title(),
                layout.label_bytes,
                if layout.label_bytes == 1 { "" } else { "s" }
            ));
        }
        pixels.reserve(bytes.len() / record * PIXELS);
        for (i, rec) in bytes.chunks_exact(record).enumerate() {
            let label = rec[layout.label_bytes - 1];
            if label as i64 >= layout.num_classes {
                return Err(input_err!(
                    "{}: label {label} of record {i} is out of range; expected a class in 0..{}.",
                    path.display(),
                    layout.num_classes
                ));
            }
            labels.push(label);
            pixels.extend_from_slice(&rec[layout.label_bytes..]);
        }
    }
    let n = labels.len() as i64;
    let images = Tensor::from_slice(&pixels).f_view([n, 3, 32, 32])?;
    InMemory::new(images, Tensor::from_slice(&labels), layout.num_classes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::input_message;
    use crate::data::{batch_rng, Source};

    /// `n` records; record i has label `label(i)` (CIFAR-100: fine label, coarse = fine / 5) and every
    /// pixel of channel c equal to i + c.
    pub(crate) fn records(ds: Dataset, n: usize, label: impl Fn(usize) -> u8) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            if ds == Dataset::Cifar100 {
                out.push(label(i) / 5);
            }
            out.push(label(i));
            for c in 0..3 {
                out.extend(std::iter::repeat_n((i + c) as u8, 1024));
            }
        }
        out
    }

    /// Writes a small copy of the dataset into `dir`: 2 records per file, labels 0, 1, 2, … (mod 10).
    pub(crate) fn write_dataset(ds: Dataset, dir: &Path) {
        let layout = layout(ds);
        for (k, f) in layout.train_files.iter().chain(layout.test_files).enumerate() {
            std::fs::write(dir.join(f), records(ds, 2, |i| ((k * 2 + i) % 10) as u8)).unwrap();
        }
    }

    #[test]
    fn reads_cifar10_channels_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir(&sub).unwrap();
        write_dataset(Dataset::Cifar10, &sub);
        let train = load(Dataset::Cifar10, dir.path(), true).unwrap();
        assert_eq!((train.len(), train.num_classes()), (10, 10));
        let (x, y) = train.batch(&[0, 9], &mut batch_rng(0, 0, 0)).unwrap();
        assert_eq!(x.size(), vec![2, 3, 32, 32]);
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![0, 9]);
        // Record 1 of data_batch_5: pixel value = 1 + channel.
        assert_eq!(
            [x.int64_value(&[1, 0, 5, 7]), x.int64_value(&[1, 1, 0, 0]), x.int64_value(&[1, 2, 31, 31])],
            [1, 2, 3]
        );
        let test = load(Dataset::Cifar10, dir.path(), false).unwrap();
        assert_eq!(test.len(), 2);
    }

    #[test]
    fn reads_cifar100_fine_labels() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.bin"), records(Dataset::Cifar100, 3, |i| [7, 99, 42][i])).unwrap();
        let train = load(Dataset::Cifar100, dir.path(), true).unwrap();
        assert_eq!((train.len(), train.num_classes()), (3, 100));
        let (x, y) = train.batch(&[0, 1, 2], &mut batch_rng(0, 0, 0)).unwrap();
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![7, 99, 42]);
        assert_eq!(x.int64_value(&[2, 2, 3, 3]), 4);
    }

    #[test]
    fn bad_size_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(Dataset::Cifar10, dir.path());
        let path = dir.path().join("data_batch_3.bin");
        std::fs::write(&path, &records(Dataset::Cifar10, 2, |_| 1)[..3073 + 100]).unwrap();
        let m = input_message(load(Dataset::Cifar10, dir.path(), true));
        assert!(m.contains("data_batch_3.bin") && m.contains("3173 bytes") && m.contains("3073"), "{m}");
        // A CIFAR-10 file offered as CIFAR-100.
        std::fs::write(dir.path().join("test.bin"), records(Dataset::Cifar10, 2, |_| 1)).unwrap();
        std::fs::write(dir.path().join("train.bin"), records(Dataset::Cifar10, 2, |_| 1)).unwrap();
        assert!(input_message(load(Dataset::Cifar100, dir.path(), false)).contains("3074"));
    }

    #[test]
    fn label_out_of_range_names_file_and_record() {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(Dataset::Cifar10, dir.path());
        std::fs::write(dir.path().join("test_batch.bin"), records(Dataset::Cifar10, 3, |i| [1, 2, 10][i])).unwrap();
        let m = input_message(load(Dataset::Cifar10, dir.path(), false));
        assert!(m.contains("test_batch.bin") && m.contains("record 2") && m.contains("label 10"), "{m}");
    }

    #[test]
    fn missing_files_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(Dataset::Cifar10, dir.path());
        std::fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
        let m = input_message(load(Dataset::Cifar10, dir.path(), true));
        assert!(m.contains("data_batch_1.bin") && m.contains("data_batch_5.bin") && m.contains("--download"), "{m}");
        assert!(m.contains("cifar-10-batches-bin"), "{m}");
        let m = input_message(load(Dataset::Cifar100, dir.path(), true));
        assert!(m.contains("train.bin") && m.contains("cifar-100-binary"), "{m}");
    }
}
