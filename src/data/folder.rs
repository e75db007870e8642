//! ImageNet-style image folders: `train/<class>/**/*.{jpg,jpeg,png}` and `val/<class>/**/*`, decoded with
//! the `image` crate, as torchvision's `ImageFolder` reads them (associative.md §4.2, diracnet.md §5.2).
//!
//! Class labels are the indices of the sorted class-directory names of `train/` (directories whose name
//! starts with a dot are skipped); `val/` must use the same names. Images are converted to RGB and brought
//! to a fixed size while decoding: RandomResizedCrop for training when the `rrc` op is on, otherwise
//! Resize (shorter side) + CenterCrop, the torchvision ImageNet recipe.
use super::augment::{parse_ops, AugmentConfig, Op};
use super::{check_indices, Source};
use crate::error::{IoContext, Result};
use crate::input_err;
use image::imageops::{self, FilterType};
use image::RgbImage;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The ImageNet crop size, 224 (associative.md §4.2, diracnet.md §5.2).
pub const DEFAULT_SIZE: i64 = 224;
/// RandomResizedCrop's area range, torchvision's default scale=(0.08, 1.0).
const RRC_SCALE: (f64, f64) = (0.08, 1.0);
/// RandomResizedCrop's aspect-ratio range, torchvision's default ratio=(3/4, 4/3).
const RRC_RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);
/// Decode threads per batch at most.
const MAX_THREADS: usize = 8;

/// How an image folder turns a decoded image into a `size`×`size` RGB tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FolderTransform {
    /// Output side length.
    pub size: i64,
    /// Shorter side after the resize that precedes the centre crop (256 for 224: `Resize(256)` +
    /// `CenterCrop(224)`, diracnet.md §5.2).
    pub resize: i64,
    /// `RandomResizedCrop(size)` with scale (0.08, 1) and ratio (3/4, 4/3) instead of resize + centre
    /// crop (training only).
    pub random_resized_crop: bool,
}

impl FolderTransform {
    /// The ImageNet recipe at output size `size`: resize to `size`·256/224 before the centre crop.
    pub fn new(size: i64, random_resized_crop: bool) -> FolderTransform {
        let resize = (size as f64 * 256.0 / 224.0).round() as i64;
        FolderTransform { size, resize, random_resized_crop }
    }

    /// The transform an augmentation config asks for: RandomResizedCrop when `train` and its train ops
    /// contain `rrc`, resize + centre crop otherwise.
    pub fn from_augment(cfg: &AugmentConfig, size: i64, train: bool) -> Result<FolderTransform> {
        let rrc = train && parse_ops(&cfg.train_ops)?.contains(&Op::RandomResizedCrop);
        Ok(FolderTransform::new(size, rrc))
    }
}

impl Default for FolderTransform {
    /// 224×224, resize to 256 and centre crop.
    fn default() -> Self {
        FolderTransform::new(DEFAULT_SIZE, false)
    }
}

/// The sorted class-directory names of `root/train`.
pub fn class_names(root: &Path) -> Result<Vec<String>> {
    let train = root.join("train");
    if !train.is_dir() {
        return Err(input_err!(
            "--dataset imagefolder: {} is not a directory; expected an ImageNet-style folder with \
             train/<class>/*.jpg|jpeg|png and val/<class>/*. (--download only fetches MNIST, Fashion-MNIST, \
             KMNIST, CIFAR-10 and CIFAR-100.)",
            train.display()
        ));
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&train).at(&train)? {
        let entry = entry.at(&train)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !name.starts_with('.') {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(input_err!(
            "--dataset imagefolder: {} has no class directories; expected train/<class>/*.jpg|jpeg|png.",
            train.display()
        ));
    }
    names.sort();
    Ok(names)
}

/// True for the extensions torchvision's ImageFolder would load and the `image` crate here decodes.
fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str()))
}

/// The image files below `dir`, recursively, in sorted order.
fn image_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        entries.push(entry.at(dir)?.path());
    }
    entries.sort();
    for path in entries {
        if path.is_dir() {
            image_files(&path, out)?;
        } else if is_image(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// An image folder split: the files with their labels, decoded per batch.
pub struct ImageFolder {
    samples: Vec<(PathBuf, i64)>,
    classes: Vec<String>,
    transform: FolderTransform,
}

impl ImageFolder {
    /// Lists `root/train` (or `root/val`) with the classes of `root/train`.
    pub fn open(root: &Path, train: bool, transform: FolderTransform) -> Result<ImageFolder> {
        if transform.size < 1 || transform.resize < transform.size {
            return Err(input_err!(
                "image folder transform: size {} and resize {} must satisfy 1 <= size <= resize.",
                transform.size,
                transform.resize
            ));
        }
        let classes = class_names(root)?;
        let split = root.join(if train { "train" } else { "val" });
        if !split.is_dir() {
            return Err(input_err!(
                "--dataset imagefolder: {} is not a directory; expected val/<class>/* next to train/ with the \
                 same class names.",
                split.display()
            ));
        }
        let mut samples = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let class_dir = split.join(class);
            let mut files = Vec::new();
            if class_dir.is_dir() {
                image_files(&class_dir, &mut files)?;
            }
            if files.is_empty() && train {
                return Err(input_err!(
                    "--dataset imagefolder: class directory {} holds no .jpg, .jpeg or .png file.",
                    class_dir.display()
                ));
            }
            samples.extend(files.into_iter().map(|f| (f, label as i64)));
        }
        if !train {
            for entry in std::fs::read_dir(&split).at(&split)? {
                let entry = entry.at(&split)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.path().is_dir() && !name.starts_with('.') && !classes.contains(&name) {
                    return Err(input_err!(
                        "--dataset imagefolder: {} is a class that train/ does not have; val/ must use the \
                         class names of train/ ({}).",
                        entry.path().display(),
                        classes.join(", ")
                    ));
                }
            }
        }
        if samples.is_empty() {
            return Err(input_err!("--dataset imagefolder: {} holds no .jpg, .jpeg or .png file.", split.display()));
        }
        Ok(ImageFolder { samples, classes, transform })
    }

    /// The class names, index = label.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Decodes one image into `size`×`size`×3 bytes (HWC). `rng` draws the RandomResizedCrop.
    fn decode(&self, path: &Path, rng: &mut ChaCha8Rng) -> Result<Vec<u8>> {
        let t = self.transform;
        let img = image::ImageReader::open(path)
            .at(path)?
            .with_guessed_format()
            .at(path)?
            .decode()
            .map_err(|e| input_err!("{}: cannot decode the image ({e}); expected a JPEG or PNG file.", path.display()))?
            .to_rgb8();
        let size = t.size as u32;
        let out = if t.random_resized_crop {
            let (x, y, w, h) = random_resized_crop_box(img.width(), img.height(), rng);
            imageops::resize(&imageops::crop_imm(&img, x, y, w, h).to_image(), size, size, FilterType::Triangle)
        } else {
            resize_center_crop(&img, t.resize as u32, size)
        };
        Ok(out.into_raw())
    }
}

/// torchvision `Resize(resize)` (shorter side to `resize`, the longer one truncated in proportion,
/// bilinear) then `CenterCrop(size)` (offsets rounded half to even, as Python's `round`).
fn resize_center_crop(img: &RgbImage, resize: u32, size: u32) -> RgbImage {
    let (w, h) = (img.width() as u64, img.height() as u64);
    let (nw, nh) = if w <= h { (resize as u64, resize as u64 * h / w) } else { (resize as u64 * w / h, resize as u64) };
    let resized = imageops::resize(img, nw as u32, nh as u32, FilterType::Triangle);
    let left = ((nw - size as u64) as f64 / 2.0).round_ties_even() as u32;
    let top = ((nh - size as u64) as f64 / 2.0).round_ties_even() as u32;
    imageops::crop_imm(&resized, left, top, size, size).to_image()
}

/// torchvision `RandomResizedCrop.get_params` with the default scale and ratio: up to ten tries at a
/// random area and log-uniform aspect ratio, then a centre crop clamped to the ratio range.
/// Returns (x, y, width, height).
fn random_resized_crop_box(width: u32, height: u32, rng: &mut ChaCha8Rng) -> (u32, u32, u32, u32) {
    let area = (width as f64) * (height as f64);
    let log_ratio = (RRC_RATIO.0.ln(), RRC_RATIO.1.ln());
    for _ in 0..10 {
        let target_area = area * rng.gen_range(RRC_SCALE.0..RRC_SCALE.1);
        let aspect = rng.gen_range(log_ratio.0..log_ratio.1).exp();
        let w = (target_area * aspect).sqrt().round_ties_even() as u32;
        let h = (target_area / aspect).sqrt().round_ties_even() as u32;
        if 0 < w && w <= width && 0 < h && h <= height {
            return (rng.gen_range(0..=width - w), rng.gen_range(0..=height - h), w, h);
        }
    }
    let in_ratio = width as f64 / height as f64;
    let (w, h) = if in_ratio < RRC_RATIO.0 {
        (width, ((width as f64 / RRC_RATIO.0).round_ties_even() as u32).min(height))
    } else if in_ratio > RRC_RATIO.1 {
        (((height as f64 * RRC_RATIO.1).round_ties_even() as u32).min(width), height)
    } else {
        (width, height)
    };
    ((width - w) / 2, (height - h) / 2, w, h)
}

impl Source for ImageFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }
    fn num_classes(&self) -> i64 {
        self.classes.len() as i64
    }
    /// Decodes the images on up to [`MAX_THREADS`] threads. Each image gets its own ChaCha8 stream
    /// seeded from `rng` in index order, so the result does not depend on the thread count.
    fn batch(&self, indices: &[i64], rng: &mut ChaCha8Rng) -> Result<(Tensor, Tensor)> {
        check_indices(indices, self.samples.len())?;
        let seeds: Vec<u64> = indices.iter().map(|_| rng.next_u64()).collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_THREADS);
        let chunk = indices.len().div_ceil(threads).max(1);
        let decoded: Vec<Result<Vec<Vec<u8>>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = indices
                .chunks(chunk)
                .zip(seeds.chunks(chunk))
                .map(|(idx, seeds)| {
                    scope.spawn(move || {
                        idx.iter()
                            .zip(seeds)
                            .map(|(&i, &s)| self.decode(&self.samples[i as usize].0, &mut ChaCha8Rng::seed_from_u64(s)))
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        let mut pixels = Vec::with_capacity(indices.len() * (self.transform.size * self.transform.size * 3) as usize);
        for part in decoded {
            for img in part? {
                pixels.extend_from_slice(&img);
            }
        }
        let s = self.transform.size;
        let images = Tensor::from_slice(&pixels)
            .f_view([indices.len() as i64, s, s, 3])?
            .f_permute([0, 3, 1, 2])?
            .f_contiguous()?;
        let labels: Vec<i64> = indices.iter().map(|&i| self.samples[i as usize].1).collect();
        Ok((images, Tensor::from_slice(&labels)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{batch_rng, dataset_info, open};
    use crate::error::Error;
    use image::{GrayImage, Luma, Rgb};

    /// train/{cat,dog}, val/{cat,dog}: cat images are solid red 40×30, dog images grey 20×50.
    fn write_folder(root: &Path) {
        for split in ["train", "val"] {
            for (class, n) in [("cat", 2), ("dog", 3)] {
                let d = root.join(split).join(class);
                std::fs::create_dir_all(&d).unwrap();
                for i in 0..n {
                    if class == "cat" {
                        RgbImage::from_pixel(40, 30, Rgb([200, 10, 20])).save(d.join(format!("{i}.png"))).unwrap();
                    } else {
                        GrayImage::from_pixel(20, 50, Luma([77])).save(d.join(format!("{i}.PNG"))).unwrap();
                    }
                }
            }
        }
        std::fs::write(root.join("train/cat/notes.txt"), "not an image").unwrap();
    }

    #[test]
    fn reads_classes_labels_and_pixels() {
        let dir = tempfile::tempdir().unwrap();
        write_folder(dir.path());
        let info = dataset_info("imagefolder", dir.path()).unwrap();
        assert_eq!((info.num_classes, info.channels, info.image_size), (2, 3, 224));
        let t = FolderTransform::new(16, false);
        let train = ImageFolder::open(dir.path(), true, t).unwrap();
        assert_eq!(train.classes(), ["cat", "dog"]);
        assert_eq!((train.len(), train.num_classes()), (5, 2));
        let (x, y) = train.batch(&[0, 4, 1], &mut batch_rng(0, 0, 0)).unwrap();
        assert_eq!(x.size(), vec![3, 3, 16, 16]);
        assert_eq!(x.kind(), tch::Kind::Uint8);
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![0, 1, 0]);
        assert_eq!(
            [x.int64_value(&[0, 0, 3, 3]), x.int64_value(&[0, 1, 3, 3]), x.int64_value(&[0, 2, 15, 0])],
            [200, 10, 20]
        );
        assert_eq!([x.int64_value(&[1, 0, 8, 8]), x.int64_value(&[1, 2, 0, 15])], [77, 77]);
        let val = open("imagefolder", dir.path(), false, &t).unwrap();
        assert_eq!(val.len(), 5);
    }

    #[test]
    fn random_resized_crop_is_seeded_and_sized() {
        let dir = tempfile::tempdir().unwrap();
        write_folder(dir.path());
        let train = ImageFolder::open(dir.path(), true, FolderTransform::new(8, true)).unwrap();
        let (a, _) = train.batch(&[0, 2, 3, 4], &mut batch_rng(1, 0, 5)).unwrap();
        let (b, _) = train.batch(&[0, 2, 3, 4], &mut batch_rng(1, 0, 5)).unwrap();
        assert_eq!(a.size(), vec![4, 3, 8, 8]);
        assert!(a.equal(&b));
        let mut rng = batch_rng(0, 0, 0);
        for (w, h) in [(40, 30), (20, 50), (1, 1), (500, 3)] {
            for _ in 0..50 {
                let (x, y, cw, ch) = random_resized_crop_box(w, h, &mut rng);
                assert!(cw > 0 && ch > 0 && x + cw <= w && y + ch <= h, "{w}x{h}: {x},{y} {cw}x{ch}");
            }
        }
    }

    #[test]
    fn resize_center_crop_matches_torchvision_geometry() {
        // 40×30 → Resize(16) gives 21×16 (int(16·40/30)), CenterCrop(16) offsets (round(2.5) = 2, 0).
        let img = RgbImage::from_fn(40, 30, |x, _| Rgb([(x * 6) as u8, 0, 0]));
        let out = resize_center_crop(&img, 16, 16);
        assert_eq!(out.dimensions(), (16, 16));
        assert!(out.get_pixel(0, 8)[0] > 10 && out.get_pixel(15, 8)[0] < 230);
    }

    #[test]
    fn folder_errors_are_input_errors() {
        let dir = tempfile::tempdir().unwrap();
        let msg = |r: Result<ImageFolder>| match r {
            Err(Error::Input(m)) => m,
            Err(e) => panic!("expected Error::Input, got {e:?}"),
            Ok(_) => panic!("expected an error"),
        };
        assert!(msg(ImageFolder::open(dir.path(), true, FolderTransform::default())).contains("train"));
        write_folder(dir.path());
        std::fs::create_dir_all(dir.path().join("val/bird")).unwrap();
        assert!(msg(ImageFolder::open(dir.path(), false, FolderTransform::default())).contains("bird"));
        std::fs::create_dir_all(dir.path().join("train/emu")).unwrap();
        assert!(msg(ImageFolder::open(dir.path(), true, FolderTransform::default())).contains("emu"));
        std::fs::remove_dir(dir.path().join("train/emu")).unwrap();
        std::fs::write(dir.path().join("train/cat/9.png"), b"not a png").unwrap();
        let train = ImageFolder::open(dir.path(), true, FolderTransform::new(8, false)).unwrap();
        let err = train.batch(&[2], &mut batch_rng(0, 0, 0)).unwrap_err().to_string();
        assert!(err.contains("9.png") && err.contains("decode"), "{err}");
    }
}
