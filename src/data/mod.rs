//! Datasets, augmentation and batch loading.
//!
//! Formats: the IDX files of MNIST, Fashion-MNIST and KMNIST ([`idx`]), the binary CIFAR-10/100 files
//! ([`cifar`]) and ImageNet-style image folders ([`folder`]). The small datasets are decoded once into
//! one uint8 tensor ([`InMemory`]); image folders decode per batch. [`augment`] turns uint8 batches into
//! normalised f32 batches with batched tensor ops, [`loader`] prepares them on a background thread, and
//! [`download`](download::download) fetches the small datasets when asked to (`--download`).
//!
//! Every random draw of the data path (split, shuffle, crops, flips, rotations, cutout) comes from a
//! ChaCha8 stream keyed by (seed, epoch, batch index) — never from torch's global RNG or `thread_rng` —
//! so any batch can be regenerated bit for bit. Exact mid-epoch resume depends on it.
pub mod augment;
pub mod cifar;
pub mod download;
pub mod fingerprint;
pub mod folder;
pub mod idx;
pub mod loader;

pub use augment::{AugmentConfig, Op, Pipeline};
pub use download::download;
pub use folder::{FolderTransform, ImageFolder};
pub use loader::{Batch, BatchLoader};

use crate::error::{Error, Result};
use crate::input_err;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tch::{Device, Kind, Tensor};

/// MNIST mean in [0,1] pixel space: `Normalize((0.1307,), (0.3081,))` (checkered.md §5.1, vgg_features.md §3.5).
pub const MNIST_MEAN: [f64; 1] = [0.1307];
/// MNIST std (checkered.md §5.1, vgg_features.md §3.5).
pub const MNIST_STD: [f64; 1] = [0.3081];
/// Fashion-MNIST mean: the statistic of its 60,000 training images in [0,1], 0.2860 as commonly quoted
/// (Xiao et al. 2017 data). vgg_features.md §3.5 (and pitfall 14 in §8) notes that the VGG sweep reused
/// MNIST's 0.1307/0.3081 instead; set `mean`/`std` in the config to reproduce that.
pub const FASHION_MNIST_MEAN: [f64; 1] = [0.2860];
/// Fashion-MNIST std of the training images, 0.3530 as commonly quoted (see [`FASHION_MNIST_MEAN`]).
pub const FASHION_MNIST_STD: [f64; 1] = [0.3530];
/// KMNIST mean: 0.190362, the training-set value the VGG sweep used (vgg_features.md §3.5).
pub const KMNIST_MEAN: [f64; 1] = [0.190362];
/// KMNIST std: 0.347463 (vgg_features.md §3.5).
pub const KMNIST_STD: [f64; 1] = [0.347463];
/// CIFAR-10 mean, [125.3, 123.0, 113.9]/255 (swrn.md §5; the same numbers in diracnet.md §5.2).
pub const CIFAR10_MEAN: [f64; 3] = [125.3 / 255.0, 123.0 / 255.0, 113.9 / 255.0];
/// CIFAR-10 std, [63.0, 62.1, 66.7]/255 (swrn.md §5; diracnet.md §5.2).
pub const CIFAR10_STD: [f64; 3] = [63.0 / 255.0, 62.1 / 255.0, 66.7 / 255.0];
/// CIFAR-100 mean, [129.3, 124.1, 112.4]/255 (swrn.md §5).
pub const CIFAR100_MEAN: [f64; 3] = [129.3 / 255.0, 124.1 / 255.0, 112.4 / 255.0];
/// CIFAR-100 std, [68.2, 65.4, 70.4]/255 (swrn.md §5).
pub const CIFAR100_STD: [f64; 3] = [68.2 / 255.0, 65.4 / 255.0, 70.4 / 255.0];
/// ImageNet mean, (0.485, 0.456, 0.406) (diracnet.md §5.2, associative.md §4.2).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet std, (0.229, 0.224, 0.225) (diracnet.md §5.2, associative.md §4.2).
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// The datasets convtrain reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Mnist,
    FashionMnist,
    Kmnist,
    Cifar10,
    Cifar100,
    ImageFolder,
}

impl Dataset {
    /// Every dataset, in the order help texts list them.
    pub const ALL: [Dataset; 6] = [
        Dataset::Mnist,
        Dataset::FashionMnist,
        Dataset::Kmnist,
        Dataset::Cifar10,
        Dataset::Cifar100,
        Dataset::ImageFolder,
    ];

    /// The name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Kmnist => "kmnist",
            Dataset::Cifar10 => "cifar10",
            Dataset::Cifar100 => "cifar100",
            Dataset::ImageFolder => "imagefolder",
        }
    }

    /// The dataset's usual written name, for messages.
    pub fn title(self) -> &'static str {
        match self {
            Dataset::Mnist => "MNIST",
            Dataset::FashionMnist => "Fashion-MNIST",
            Dataset::Kmnist => "KMNIST",
            Dataset::Cifar10 => "CIFAR-10",
            Dataset::Cifar100 => "CIFAR-100",
            Dataset::ImageFolder => "image folder",
        }
    }

    /// Looks a dataset up by name; the error lists the known names.
    pub fn parse(name: &str) -> Result<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Dataset::ALL.iter().map(|d| d.name()).collect();
            input_err!("--dataset: unknown dataset '{name}'. Known datasets: {}.", names.join(", "))
        })
    }
}

/// What the engine needs to know about a dataset before opening it.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    pub name: String,
    pub num_classes: i64,
    /// Channels of the stored images (before `gray_to_rgb`).
    pub channels: i64,
    /// Side length of the images as the source yields them (before `resize`).
    pub image_size: i64,
    /// Default normalisation mean, one value per channel, in [0,1] pixel space.
    pub mean: Vec<f64>,
    /// Default normalisation std, one value per channel.
    pub std: Vec<f64>,
}

/// Shape, class count and default normalisation of a dataset. `dir` is only read for `imagefolder`,
/// whose class count is the number of class directories in `dir/train` and whose images are decoded
/// to the ImageNet 224×224 (diracnet.md §5.2, associative.md §4.2).
pub fn dataset_info(name: &str, dir: &Path) -> Result<DatasetInfo> {
    let ds = Dataset::parse(name)?;
    let (num_classes, channels, image_size, mean, std): (i64, i64, i64, &[f64], &[f64]) = match ds {
        Dataset::Mnist => (10, 1, 28, &MNIST_MEAN, &MNIST_STD),
        Dataset::FashionMnist => (10, 1, 28, &FASHION_MNIST_MEAN, &FASHION_MNIST_STD),
        Dataset::Kmnist => (10, 1, 28, &KMNIST_MEAN, &KMNIST_STD),
        Dataset::Cifar10 => (10, 3, 32, &CIFAR10_MEAN, &CIFAR10_STD),
        Dataset::Cifar100 => (100, 3, 32, &CIFAR100_MEAN, &CIFAR100_STD),
        Dataset::ImageFolder => {
            let classes = folder::class_names(dir)?;
            (classes.len() as i64, 3, folder::DEFAULT_SIZE, &IMAGENET_MEAN, &IMAGENET_STD)
        }
    };
    Ok(DatasetInfo {
        name: ds.name().to_string(),
        num_classes,
        channels,
        image_size,
        mean: mean.to_vec(),
        std: std.to_vec(),
    })
}

/// A labelled image collection that yields batches by index.
pub trait Source: Send + Sync {
    /// Number of images.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn num_classes(&self) -> i64;
    /// uint8 images [B,C,H,W] and i64 labels [B] for these indices, on the device the source keeps
    /// them on (the CPU unless [`Source::resident_on`] moved them). `rng` is used only by sources
    /// that crop while decoding (image folders).
    fn batch(&self, indices: &[i64], rng: &mut ChaCha8Rng) -> Result<(Tensor, Tensor)>;
    /// A copy of this source whose images and labels live on `device`, so that each batch is gathered
    /// there and nothing is copied from the host per batch; `None` for a source that decodes every
    /// batch on the host (image folders).
    fn resident_on(&self, _device: Device) -> Result<Option<Arc<dyn Source>>> {
        Ok(None)
    }
}

/// A dataset held in memory as one uint8 tensor [N,C,H,W] and one i64 label tensor [N].
///
/// `tch::Tensor` is `Send` but not `Sync`, so the tensors sit behind a mutex, held only for the two
/// `index_select`s of a batch.
pub struct InMemory {
    data: Mutex<(Tensor, Tensor)>,
    len: usize,
    num_classes: i64,
}

impl InMemory {
    /// Wraps images (uint8 [N,C,H,W]) and labels (integer [N], converted to i64).
    pub fn new(images: Tensor, labels: Tensor, num_classes: i64) -> Result<InMemory> {
        let (ishape, lshape) = (images.size(), labels.size());
        if images.kind() != Kind::Uint8 || ishape.len() != 4 || lshape.len() != 1 || ishape[0] != lshape[0] {
            return Err(input_err!(
                "in-memory dataset: expected uint8 images [N,C,H,W] and labels [N], got {:?} images {ishape:?} and labels {lshape:?}",
                images.kind()
            ));
        }
        let labels = labels.f_to_kind(Kind::Int64)?;
        Ok(InMemory { len: ishape[0] as usize, data: Mutex::new((images, labels)), num_classes })
    }
}

impl Source for InMemory {
    fn len(&self) -> usize {
        self.len
    }
    fn num_classes(&self) -> i64 {
        self.num_classes
    }
    fn batch(&self, indices: &[i64], _rng: &mut ChaCha8Rng) -> Result<(Tensor, Tensor)> {
        check_indices(indices, self.len)?;
        let data = self.data.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let idx = Tensor::from_slice(indices).f_to_device(data.0.device())?;
        Ok((data.0.f_index_select(0, &idx)?, data.1.f_index_select(0, &idx)?))
    }
    fn resident_on(&self, device: Device) -> Result<Option<Arc<dyn Source>>> {
        let data = self.data.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let moved = (data.0.f_to_device(device)?, data.1.f_to_device(device)?);
        Ok(Some(Arc::new(InMemory { data: Mutex::new(moved), len: self.len, num_classes: self.num_classes })))
    }
}

/// Rejects an index outside `0..len`.
fn check_indices(indices: &[i64], len: usize) -> Result<()> {
    match indices.iter().find(|&&i| i < 0 || i as usize >= len) {
        Some(i) => Err(input_err!("sample index {i} is out of range for a dataset of {len} images")),
        None => Ok(()),
    }
}

/// Opens the train (or test/val) part of a dataset. `folder` says how image folders decode images; the
/// other datasets ignore it, except that they reject a RandomResizedCrop (op `rrc`), which only folders do.
pub fn open(name: &str, dir: &Path, train: bool, folder: &FolderTransform) -> Result<Arc<dyn Source>> {
    let ds = Dataset::parse(name)?;
    if ds != Dataset::ImageFolder && folder.random_resized_crop {
        return Err(input_err!(
            "augmentation op 'rrc' (RandomResizedCrop at decode time) only applies to --dataset imagefolder; \
             {} images are shifted with 'crop:P' instead.",
            ds.title()
        ));
    }
    Ok(match ds {
        Dataset::Mnist | Dataset::FashionMnist | Dataset::Kmnist => Arc::new(idx::load(ds, dir, train)?),
        Dataset::Cifar10 | Dataset::Cifar100 => Arc::new(cifar::load(ds, dir, train)?),
        Dataset::ImageFolder => Arc::new(ImageFolder::open(dir, train, *folder)?),
    })
}

/// The error for a dataset whose files are not where they should be: one paragraph naming the
/// directories searched, the files expected, and `--download`.
pub(crate) fn missing_files(ds: Dataset, dirs: &[PathBuf], expected: &[String]) -> Error {
    let root = &dirs[0];
    let where_ = if !root.is_dir() {
        format!("the directory {} does not exist", root.display())
    } else if dirs.len() > 1 {
        let others: Vec<String> = dirs[1..].iter().map(|d| d.display().to_string()).collect();
        format!("they are neither in {} nor in {}", root.display(), others.join(" nor in "))
    } else {
        format!("they are not in {}", root.display())
    };
    input_err!(
        "--dataset {}: cannot find the {} files {}; {where_}. Put them there, or run with --download, \
         which fetches MNIST, Fashion-MNIST, KMNIST, CIFAR-10 and CIFAR-100 into the data directory.",
        ds.name(),
        ds.title(),
        expected.join(", ")
    )
}

/// Independent random streams of the data path; the tag keeps them apart.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Split = 1,
    Shuffle = 2,
    Batch = 3,
}

/// The fixed mixing function: the 32-byte ChaCha8 key is (seed, epoch, index, stream tag) as
/// little-endian u64s, so distinct tuples give distinct, independent streams.
fn stream_rng(seed: u64, epoch: u64, index: u64, stream: Stream) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (chunk, word) in key.chunks_exact_mut(8).zip([seed, epoch, index, stream as u64]) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// The random stream of batch `batch_index` of `epoch`: the source's decode-time crops draw from it
/// first, then the augmentation pipeline.
pub fn batch_rng(seed: u64, epoch: u64, batch_index: u64) -> ChaCha8Rng {
    stream_rng(seed, epoch, batch_index, Stream::Batch)
}

/// The order in which an epoch visits `indices`: a permutation drawn from (seed, epoch).
pub fn shuffled(indices: &[i64], seed: u64, epoch: u64) -> Vec<i64> {
    let mut order = indices.to_vec();
    order.shuffle(&mut stream_rng(seed, epoch, 0, Stream::Shuffle));
    order
}

/// Splits `0..n` into train and validation indices, each sorted, from a permutation drawn from `seed`.
/// The train part has `int((1 - val_fraction) · n)` images as in swrn.md §4 (50,000 × 0.9 → 45,000 /
/// 5,000); a tiny epsilon keeps float noise such as 0.7·10 = 6.999… from losing an image.
/// `val_fraction` is clamped to [0, 1]; 0 gives every index to train.
pub fn split_indices(n: usize, val_fraction: f64, seed: u64) -> (Vec<i64>, Vec<i64>) {
    let keep = (1.0 - val_fraction.clamp(0.0, 1.0)) * n as f64;
    let n_train = ((keep + 1e-9).floor() as usize).min(n);
    let mut train: Vec<i64> = (0..n as i64).collect();
    train.shuffle(&mut stream_rng(seed, 0, 0, Stream::Split));
    let mut val = train.split_off(n_train);
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// The message of an expected [`Error::Input`] (tests of the format parsers).
#[cfg(test)]
pub(crate) fn input_message<T>(r: Result<T>) -> String {
    match r {
        Err(Error::Input(m)) => m,
        Err(e) => panic!("expected Error::Input, got {e:?}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn names_round_trip_and_unknown_name_lists_known_ones() {
        for ds in Dataset::ALL {
            assert_eq!(Dataset::parse(ds.name()).unwrap(), ds);
        }
        let err = Dataset::parse("svhn").unwrap_err().to_string();
        assert!(err.contains("svhn") && err.contains("fashion-mnist") && err.contains("imagefolder"), "{err}");
    }

    #[test]
    fn info_defaults_follow_the_specs() {
        let dir = Path::new("/nonexistent");
        let m = dataset_info("mnist", dir).unwrap();
        assert_eq!((m.num_classes, m.channels, m.image_size), (10, 1, 28));
        assert_eq!((m.mean.clone(), m.std.clone()), (vec![0.1307], vec![0.3081]));
        let c = dataset_info("cifar10", dir).unwrap();
        assert_eq!((c.num_classes, c.channels, c.image_size), (10, 3, 32));
        assert!((c.mean[0] - 125.3 / 255.0).abs() < 1e-12 && (c.std[2] - 66.7 / 255.0).abs() < 1e-12);
        let c = dataset_info("cifar100", dir).unwrap();
        assert_eq!(c.num_classes, 100);
        assert!((c.mean[1] - 124.1 / 255.0).abs() < 1e-12 && (c.std[0] - 68.2 / 255.0).abs() < 1e-12);
        assert!(matches!(dataset_info("imagefolder", dir), Err(Error::Input(_))));
    }

    #[test]
    fn split_is_deterministic_disjoint_and_int_sized() {
        let (train, val) = split_indices(50_000, 0.1, 7);
        assert_eq!((train.len(), val.len()), (45_000, 5_000));
        assert_eq!(split_indices(50_000, 0.1, 7), (train.clone(), val.clone()));
        assert_ne!(split_indices(50_000, 0.1, 8).1, val);
        let mut all: Vec<i64> = train.iter().chain(&val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..50_000).collect::<Vec<i64>>());
        assert_eq!(split_indices(10, 0.3, 1).0.len(), 7);
        assert_eq!(split_indices(10, 0.0, 1), ((0..10).collect(), vec![]));
    }

    #[test]
    fn streams_differ_by_every_key_part() {
        let first = |mut r: ChaCha8Rng| r.next_u64();
        let base = first(batch_rng(1, 2, 3));
        assert_eq!(base, first(batch_rng(1, 2, 3)));
        for other in [batch_rng(0, 2, 3), batch_rng(1, 0, 3), batch_rng(1, 2, 0), stream_rng(1, 2, 3, Stream::Shuffle)]
        {
            assert_ne!(base, first(other));
        }
        let idx: Vec<i64> = (0..100).collect();
        assert_eq!(shuffled(&idx, 5, 1), shuffled(&idx, 5, 1));
        assert_ne!(shuffled(&idx, 5, 1), shuffled(&idx, 5, 2));
    }

    #[test]
    fn in_memory_selects_and_rejects_bad_indices() {
        let images = Tensor::arange(4 * 2 * 2, (Kind::Uint8, tch::Device::Cpu)).view([4, 1, 2, 2]);
        let src = InMemory::new(images, Tensor::from_slice(&[0u8, 1, 2, 3]), 4).unwrap();
        let (x, y) = src.batch(&[3, 1], &mut batch_rng(0, 0, 0)).unwrap();
        assert_eq!(x.size(), vec![2, 1, 2, 2]);
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![3, 1]);
        assert_eq!(Vec::<u8>::try_from(&x.flatten(0, -1)).unwrap()[..4], [12, 13, 14, 15]);
        assert!(matches!(src.batch(&[4], &mut batch_rng(0, 0, 0)), Err(Error::Input(_))));
    }

    #[test]
    fn a_resident_copy_gathers_the_same_batches_on_its_device() {
        let images = Tensor::arange(5 * 3 * 2 * 2, (Kind::Int64, Device::Cpu)).to_kind(Kind::Uint8).view([5, 3, 2, 2]);
        let src = InMemory::new(images, Tensor::from_slice(&[4i64, 3, 2, 1, 0]), 5).unwrap();
        let device = if tch::Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu };
        let resident = src.resident_on(device).unwrap().expect("an in-memory source moves");
        assert_eq!((resident.len(), resident.num_classes()), (5, 5));
        let (x, y) = src.batch(&[4, 0, 2], &mut batch_rng(0, 0, 0)).unwrap();
        let (rx, ry) = resident.batch(&[4, 0, 2], &mut batch_rng(0, 0, 0)).unwrap();
        assert_eq!((rx.device(), ry.device(), rx.kind()), (device, device, Kind::Uint8));
        assert!(rx.to_device(Device::Cpu).equal(&x) && ry.to_device(Device::Cpu).equal(&y));
        assert!(matches!(resident.batch(&[5], &mut batch_rng(0, 0, 0)), Err(Error::Input(_))));
    }
}
