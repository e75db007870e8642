//! MNIST, Fashion-MNIST and KMNIST: the IDX files `{train,t10k}-{images-idx3,labels-idx1}-ubyte`, raw or
//! gzipped (`.gz`), in the data directory or in torchvision's `<Name>/raw/` below it.
//!
//! IDX layout: a big-endian magic `0x0000TTNN` (type code TT = 0x08 for unsigned bytes, NN dimensions),
//! NN big-endian u32 sizes, then the data in row-major order.
use super::{missing_files, Dataset, InMemory};
use crate::error::{IoContext, Result};
use crate::input_err;
use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Magic of an image file: unsigned bytes, 3 dimensions (N, rows, cols).
const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of a label file: unsigned bytes, 1 dimension (N).
const LABELS_MAGIC: u32 = 0x0000_0801;
/// Every dataset of this family has ten classes.
const NUM_CLASSES: i64 = 10;
/// … and 28×28 grey images.
const SIDE: i64 = 28;

/// The (images, labels) file names of a split, without `.gz`.
pub fn file_names(train: bool) -> [&'static str; 2] {
    if train {
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    } else {
        ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    }
}

/// Where torchvision keeps the files below its root.
fn torchvision_subdir(ds: Dataset) -> &'static str {
    match ds {
        Dataset::FashionMnist => "FashionMNIST/raw",
        Dataset::Kmnist => "KMNIST/raw",
        _ => "MNIST/raw",
    }
}

/// `dir/name`, else `dir/name.gz`, if either is a file.
pub(crate) fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))].into_iter().find(|p| p.is_file())
}

/// Loads the train or test split into memory: uint8 images [N,1,28,28] and labels in 0..10.
pub fn load(ds: Dataset, dir: &Path, train: bool) -> Result<InMemory> {
    let [images_name, labels_name] = file_names(train);
    let dirs = [dir.to_path_buf(), dir.join(torchvision_subdir(ds))];
    let found = dirs.iter().find_map(|d| Some((find_file(d, images_name)?, find_file(d, labels_name)?)));
    let Some((images_path, labels_path)) = found else {
        let expected = [format!("{images_name}[.gz]"), format!("{labels_name}[.gz]")];
        return Err(missing_files(ds, &dirs, &expected));
    };
    let (dims, pixels) = read_idx(&images_path, IMAGES_MAGIC)?;
    if dims[1] != SIDE || dims[2] != SIDE {
        return Err(input_err!(
            "{}: holds {}×{} images; expected the 28×28 images of {}.",
            images_path.display(),
            dims[1],
            dims[2],
            ds.title()
        ));
    }
    let (label_dims, labels) = read_idx(&labels_path, LABELS_MAGIC)?;
    if dims[0] != label_dims[0] {
        return Err(input_err!(
            "{}: holds {} images but {} holds {} labels; expected one label per image.",
            images_path.display(),
            dims[0],
            labels_path.display(),
            label_dims[0]
        ));
    }
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as i64 >= NUM_CLASSES) {
        return Err(input_err!(
            "{}: label {l} of record {i} is out of range; expected a class in 0..{NUM_CLASSES}.",
            labels_path.display()
        ));
    }
    let images = Tensor::from_slice(&pixels).f_view([dims[0], 1, dims[1], dims[2]])?;
    InMemory::new(images, Tensor::from_slice(&labels), NUM_CLASSES)
}

/// Reads an IDX file of unsigned bytes (gunzipping it if it starts with the gzip magic) and checks its
/// magic and length. Returns the dimensions and the data.
pub fn read_idx(path: &Path, magic: u32) -> Result<(Vec<i64>, Vec<u8>)> {
    let raw = std::fs::read(path).at(path)?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| input_err!("{}: not a valid gzip file ({e}); expected a gzipped IDX file.", path.display()))?;
        out
    } else {
        raw
    };
    let ndim = (magic & 0xff) as usize;
    let header = 4 + 4 * ndim;
    let truncated = |len: usize| {
        input_err!("{}: truncated IDX file: {len} bytes, shorter than its {header}-byte header.", path.display())
    };
    if bytes.len() < 4 {
        return Err(truncated(bytes.len()));
    }
    let word = |i: usize| u32::from_be_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]);
    if word(0) != magic {
        return Err(input_err!(
            "{}: wrong IDX magic number 0x{:08x}; expected 0x{magic:08x} (unsigned bytes, {ndim} dimension{}). \
             Is this the {} file?",
            path.display(),
            word(0),
            if ndim == 1 { "" } else { "s" },
            if magic == IMAGES_MAGIC { "images" } else { "labels" }
        ));
    }
    if bytes.len() < header {
        return Err(truncated(bytes.len()));
    }
    let dims: Vec<i64> = (1..=ndim).map(|i| word(i) as i64).collect();
    let expected = dims.iter().product::<i64>() as usize;
    let body = bytes.len() - header;
    if body != expected {
        return Err(input_err!(
            "{}: {} IDX file: its header announces {} = {expected} data bytes but {body} follow.",
            path.display(),
            if body < expected { "truncated" } else { "overlong" },
            dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×")
        ));
    }
    let mut data = bytes;
    data.drain(..header);
    Ok((dims, data))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::input_message;
    use crate::data::{batch_rng, Source};
    use flate2::write::GzEncoder;
    use std::io::Write;

    /// An IDX file of unsigned bytes with these dimensions.
    pub(crate) fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// Writes an n-image 28×28 split (pixel value = image index, label = index % 10) into `dir`.
    pub(crate) fn write_split(dir: &Path, train: bool, n: u32, gz: bool) {
        let [images, labels] = file_names(train);
        let pixels: Vec<u8> = (0..n).flat_map(|i| std::iter::repeat_n(i as u8, 784)).collect();
        let labs: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        for (name, bytes) in [(images, idx_bytes(&[n, 28, 28], &pixels)), (labels, idx_bytes(&[n], &labs))] {
            let (name, bytes) = if gz { (format!("{name}.gz"), gzip(&bytes)) } else { (name.to_string(), bytes) };
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    #[test]
    fn reads_gzipped_and_raw_files() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), true, 5, true);
        write_split(dir.path(), false, 3, false);
        let train = load(Dataset::Mnist, dir.path(), true).unwrap();
        let test = load(Dataset::Mnist, dir.path(), false).unwrap();
        assert_eq!((train.len(), test.len(), train.num_classes()), (5, 3, 10));
        let (x, y) = train.batch(&[4, 2], &mut batch_rng(0, 0, 0)).unwrap();
        assert_eq!(x.size(), vec![2, 1, 28, 28]);
        assert_eq!(x.kind(), tch::Kind::Uint8);
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![4, 2]);
        assert_eq!(x.int64_value(&[0, 0, 27, 27]), 4);
        assert_eq!(x.int64_value(&[1, 0, 0, 0]), 2);
    }

    #[test]
    fn finds_torchvision_raw_subdir() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("KMNIST/raw");
        std::fs::create_dir_all(&raw).unwrap();
        write_split(&raw, false, 2, true);
        assert_eq!(load(Dataset::Kmnist, dir.path(), false).unwrap().len(), 2);
    }

    #[test]
    fn missing_files_name_dir_files_and_download() {
        let dir = tempfile::tempdir().unwrap();
        let m = input_message(load(Dataset::FashionMnist, dir.path(), true));
        assert!(m.contains("train-images-idx3-ubyte[.gz]") && m.contains("train-labels-idx1-ubyte[.gz]"), "{m}");
        assert!(m.contains(&dir.path().display().to_string()) && m.contains("--download"), "{m}");
        let m = input_message(load(Dataset::Mnist, &dir.path().join("nope"), true));
        assert!(m.contains("does not exist") && m.contains("--download"), "{m}");
    }

    #[test]
    fn truncated_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), true, 4, false);
        let path = dir.path().join("train-images-idx3-ubyte");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        let m = input_message(load(Dataset::Mnist, dir.path(), true));
        assert!(m.contains("truncated") && m.contains("train-images-idx3-ubyte") && m.contains("3136"), "{m}");
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(input_message(load(Dataset::Mnist, dir.path(), true)).contains("header"));
    }

    #[test]
    fn wrong_magic_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), true, 2, false);
        // The labels file where the images file should be.
        std::fs::copy(dir.path().join("train-labels-idx1-ubyte"), dir.path().join("train-images-idx3-ubyte")).unwrap();
        let m = input_message(load(Dataset::Mnist, dir.path(), true));
        assert!(m.contains("magic") && m.contains("0x00000801") && m.contains("0x00000803"), "{m}");
    }

    #[test]
    fn other_image_sizes_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), false, 2, false);
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), idx_bytes(&[2, 32, 32], &[0; 2048])).unwrap();
        let m = input_message(load(Dataset::Mnist, dir.path(), false));
        assert!(m.contains("32×32") && m.contains("28×28"), "{m}");
    }

    #[test]
    fn count_mismatch_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), true, 3, false);
        std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_bytes(&[2], &[0, 1])).unwrap();
        let m = input_message(load(Dataset::Mnist, dir.path(), true));
        assert!(m.contains("3 images") && m.contains("2 labels"), "{m}");
    }

    #[test]
    fn label_out_of_range_names_file_and_record() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), true, 3, false);
        std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_bytes(&[3], &[0, 1, 12])).unwrap();
        let m = input_message(load(Dataset::Mnist, dir.path(), true));
        assert!(m.contains("train-labels-idx1-ubyte") && m.contains("record 2") && m.contains("12"), "{m}");
    }

    #[test]
    fn corrupt_gzip_is_an_input_error() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), true, 2, true);
        std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
        assert!(input_message(load(Dataset::Mnist, dir.path(), true)).contains("gzip"));
    }

    #[test]
    fn bundled_mnist_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
        let train = load(Dataset::Mnist, &dir, true).unwrap();
        let test = load(Dataset::Mnist, &dir, false).unwrap();
        assert_eq!((train.len(), test.len()), (60_000, 10_000));
        let all: Vec<i64> = (0..10_000).collect();
        let (x, y) = test.batch(&all, &mut batch_rng(0, 0, 0)).unwrap();
        assert_eq!(x.size(), vec![10_000, 1, 28, 28]);
        let counts = y.bincount(None::<Tensor>, 10);
        assert_eq!(counts.size(), vec![10]);
        assert!(Vec::<i64>::try_from(&counts).unwrap().iter().all(|&c| c > 800));
        let mean = x.to_kind(tch::Kind::Double).mean(tch::Kind::Double).double_value(&[]) / 255.0;
        assert!((mean - 0.1325).abs() < 0.002, "test-set pixel mean {mean}");
    }
}
