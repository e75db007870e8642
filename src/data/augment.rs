//! Batched augmentation and normalisation: uint8 [B,C,H,W] in, normalised f32 [B,C,H,W] out, on whatever
//! device the input is on. Every step is a tensor op over the whole batch; the per-image random
//! parameters are drawn from the batch's ChaCha8 stream (see [`super::batch_rng`]).
//!
//! Order, for train and eval alike: uint8 → f32 in [0,1] (`ToTensor`), `resize`, `gray_to_rgb`; then,
//! for training only, the train ops in the order given; then `Normalize(mean, std)`; then, for training
//! only, Cutout. Padding and rotation fill with 0 in [0,1] pixel space, i.e. before normalisation, as
//! torchvision does on PIL images (swrn.md §5: pad pixels become −mean/std after Normalize).
use crate::data::DatasetInfo;
use crate::error::Result;
use crate::input_err;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// The augmentation and normalisation settings of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Train-time ops, applied in this order before normalisation; see [`Op::parse`].
    pub train_ops: Vec<String>,
    /// Side length of the single Cutout hole (train only, after normalisation); 0 turns Cutout off.
    /// swrn.md §5 uses 16.
    pub cutout: i64,
    /// Bilinear resize to `resize`×`resize` before everything else, train and eval alike (the VGG
    /// sweep's MNIST 28 → 32, vgg_features.md §3.5).
    pub resize: Option<i64>,
    /// Repeat a single channel three times, train and eval alike (vgg_features.md §3.5: MNIST fed to a
    /// 3-channel VGG). Images that already have three channels are left alone.
    pub gray_to_rgb: bool,
    /// Normalisation mean per channel (or one value for all), in [0,1] pixel space.
    pub mean: Vec<f64>,
    /// Normalisation std per channel (or one value for all).
    pub std: Vec<f64>,
}

impl AugmentConfig {
    /// No augmentation, no resize, the dataset's default normalisation.
    pub fn plain(info: &DatasetInfo) -> AugmentConfig {
        AugmentConfig {
            train_ops: Vec::new(),
            cutout: 0,
            resize: None,
            gray_to_rgb: false,
            mean: info.mean.clone(),
            std: info.std.clone(),
        }
    }
}

/// One train-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// `flip`: horizontal flip with probability 0.5 (`RandomHorizontalFlip()`).
    Flip,
    /// `crop:P`: `RandomCrop(size, padding=P)`, zero padding; `crop:P:reflect`: reflection padding
    /// (numpy/torchvision `reflect`, edge not repeated; diracnet.md §5.2).
    Crop { pad: i64, reflect: bool },
    /// `rotate:D`: `RandomRotation(D)`: angle uniform in [−D, D] degrees, counter-clockwise for positive
    /// angles, about the image centre, nearest neighbour, fill 0 (checkered.md §5.1 uses 15).
    Rotate { degrees: f64 },
    /// `rrc`: `RandomResizedCrop`, done by the image-folder source while decoding (see
    /// [`super::FolderTransform::from_augment`]); the tensor pipeline leaves the batch as it is.
    RandomResizedCrop,
}

impl Op {
    /// Parses `flip`, `crop:P`, `crop:P:reflect`, `rotate:D` or `rrc`.
    pub fn parse(s: &str) -> Result<Op> {
        let bad = || {
            input_err!(
                "augmentation op '{s}' is not valid. Valid ops: flip, crop:P, crop:P:reflect, rotate:D, rrc \
                 (P: padding in pixels, an integer >= 0; D: largest rotation in degrees, a number >= 0)."
            )
        };
        let pad = |p: &str| p.parse::<i64>().ok().filter(|&p| p >= 0).ok_or_else(bad);
        match s.split(':').collect::<Vec<_>>().as_slice() {
            ["flip"] => Ok(Op::Flip),
            ["rrc"] => Ok(Op::RandomResizedCrop),
            ["crop", p] => Ok(Op::Crop { pad: pad(p)?, reflect: false }),
            ["crop", p, "reflect"] => Ok(Op::Crop { pad: pad(p)?, reflect: true }),
            ["rotate", d] => {
                let degrees = d.parse::<f64>().ok().filter(|d| d.is_finite() && *d >= 0.0).ok_or_else(bad)?;
                Ok(Op::Rotate { degrees })
            }
            _ => Err(bad()),
        }
    }
}

/// Parses a list of op strings.
pub fn parse_ops(ops: &[String]) -> Result<Vec<Op>> {
    ops.iter().map(|s| Op::parse(s)).collect()
}

/// The transform a batch goes through between the source and the network.
#[derive(Debug, Clone)]
pub struct Pipeline {
    ops: Vec<Op>,
    cutout: i64,
    resize: Option<i64>,
    gray_to_rgb: bool,
    mean: Vec<f64>,
    std: Vec<f64>,
    in_channels: i64,
}

impl Pipeline {
    /// The train (`train = true`: ops and Cutout) or eval (resize, gray_to_rgb and Normalize only)
    /// pipeline for images with `in_channels` channels. The ops are parsed and every setting checked
    /// either way, so a bad config fails before training starts.
    pub fn new(cfg: &AugmentConfig, in_channels: i64, train: bool) -> Result<Pipeline> {
        let ops = parse_ops(&cfg.train_ops)?;
        if cfg.cutout < 0 {
            return Err(input_err!("cutout length {} must be >= 0 (0 turns Cutout off).", cfg.cutout));
        }
        if let Some(s) = cfg.resize.filter(|&s| s < 1) {
            return Err(input_err!("resize {s} must be a side length >= 1."));
        }
        let out_channels = if cfg.gray_to_rgb && in_channels == 1 { 3 } else { in_channels };
        let (m, s) = (cfg.mean.len(), cfg.std.len());
        if m != s || !(m == 1 || m as i64 == out_channels) {
            return Err(input_err!(
                "normalisation: mean has {m} value{} and std {s}; expected one value or one per channel ({out_channels}).",
                if m == 1 { "" } else { "s" }
            ));
        }
        if cfg.mean.iter().any(|v| !v.is_finite()) || cfg.std.iter().any(|v| !v.is_finite() || *v <= 0.0) {
            return Err(input_err!(
                "normalisation: mean {:?} must be finite and std {:?} positive.",
                cfg.mean,
                cfg.std
            ));
        }
        Ok(Pipeline {
            ops: if train { ops } else { Vec::new() },
            cutout: if train { cfg.cutout } else { 0 },
            resize: cfg.resize,
            gray_to_rgb: cfg.gray_to_rgb,
            mean: cfg.mean.clone(),
            std: cfg.std.clone(),
            in_channels,
        })
    }

    /// Channels of the output (3 after `gray_to_rgb` on 1-channel images).
    pub fn out_channels(&self) -> i64 {
        if self.gray_to_rgb && self.in_channels == 1 {
            3
        } else {
            self.in_channels
        }
    }

    /// Side length of the output for square inputs of side `in_size`.
    pub fn out_size(&self, in_size: i64) -> i64 {
        self.resize.unwrap_or(in_size)
    }

    /// Transforms a uint8 batch [B,C,H,W] into a normalised f32 batch on the same device, drawing the
    /// random parameters from `rng` (op by op, image by image).
    pub fn apply(&self, images: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        let shape = images.size();
        if images.kind() != Kind::Uint8 || shape.len() != 4 || shape[1] != self.in_channels {
            return Err(input_err!(
                "augmentation: expected a uint8 batch [B,{},H,W], got {:?} {shape:?}",
                self.in_channels,
                images.kind()
            ));
        }
        let mut x = images.f_to_kind(Kind::Float)?;
        if let Some(s) = self.resize.filter(|&s| s != shape[2] || s != shape[3]) {
            // PIL resizes the 8-bit image (antialiased when shrinking) and stays 8-bit: round back.
            x = x
                .f_internal_upsample_bilinear2d_aa([s, s], false, None::<f64>, None::<f64>)?
                .f_round()?
                .f_clamp(0.0, 255.0)?;
        }
        x = x.f_div_scalar(255.0)?;
        if self.gray_to_rgb && shape[1] == 1 {
            x = x.f_repeat([1, 3, 1, 1])?;
        }
        for op in &self.ops {
            x = match *op {
                Op::Flip => flip(&x, rng)?,
                Op::Crop { pad, reflect } => crop(&x, pad, reflect, rng)?,
                Op::Rotate { degrees } => {
                    let angles: Vec<f64> = (0..x.size()[0]).map(|_| rng.gen_range(-degrees..=degrees)).collect();
                    rotate(&x, &angles)?
                }
                Op::RandomResizedCrop => x,
            };
        }
        x = normalize(&x, &self.mean, &self.std)?;
        if self.cutout > 0 {
            x = cutout(&x, self.cutout, rng)?;
        }
        Ok(x)
    }
}

fn dims4(x: &Tensor) -> (i64, i64, i64, i64) {
    let s = x.size();
    (s[0], s[1], s[2], s[3])
}

/// A [B,1,1,1] tensor of per-image values on `device`.
fn per_image<T: tch::kind::Element>(values: &[T], device: Device) -> Result<Tensor> {
    Ok(Tensor::from_slice(values).f_to_device(device)?.f_view([values.len() as i64, 1, 1, 1])?)
}

/// `arange(n)` viewed as `shape` on `device`.
fn arange(n: i64, shape: [i64; 4], device: Device) -> Result<Tensor> {
    Ok(Tensor::f_arange(n, (Kind::Int64, device))?.f_view(shape)?)
}

/// Flips each image horizontally with probability 1/2.
fn flip(x: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let flags: Vec<bool> = (0..x.size()[0]).map(|_| rng.gen_bool(0.5)).collect();
    Ok(x.f_flip([3])?.f_where_self(&per_image(&flags, x.device())?, x)?)
}

/// RandomCrop to the same size after padding by `pad`: the batch is padded once, then each image's
/// window (offsets uniform in 0..=2·pad) is gathered with index tensors.
fn crop(x: &Tensor, pad: i64, reflect: bool, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let (b, c, h, w) = dims4(x);
    if reflect && (pad >= h || pad >= w) {
        return Err(input_err!(
            "augmentation op crop:{pad}:reflect: reflection padding must be smaller than the {h}×{w} image."
        ));
    }
    let oy: Vec<i64> = (0..b).map(|_| rng.gen_range(0..=2 * pad)).collect();
    let ox: Vec<i64> = (0..b).map(|_| rng.gen_range(0..=2 * pad)).collect();
    let dev = x.device();
    let padded =
        if reflect { x.f_reflection_pad2d([pad, pad, pad, pad])? } else { x.f_constant_pad_nd([pad, pad, pad, pad])? };
    let rows = per_image(&oy, dev)?.f_add(&arange(h, [1, 1, h, 1], dev)?)?.f_expand([b, c, h, w + 2 * pad], false)?;
    let cols = per_image(&ox, dev)?.f_add(&arange(w, [1, 1, 1, w], dev)?)?.f_expand([b, c, h, w], false)?;
    Ok(padded.f_gather(2, &rows, false)?.f_gather(3, &cols, false)?)
}

/// Rotates image i by `angles[i]` degrees (counter-clockwise for positive angles, as PIL and
/// torchvision) about its centre: nearest neighbour, zero fill. torchvision's inverse affine matrix
/// [[cos a, −sin a], [sin a, cos a]] in centred pixel coordinates, rescaled to the normalised
/// coordinates of `affine_grid` (align_corners = false).
fn rotate(x: &Tensor, angles: &[f64]) -> Result<Tensor> {
    let (b, c, h, w) = dims4(x);
    let ratio = h as f64 / w as f64;
    let theta: Vec<f32> = angles
        .iter()
        .flat_map(|a| {
            let (s, c) = a.to_radians().sin_cos();
            [c, -s * ratio, 0.0, s / ratio, c, 0.0].map(|v| v as f32)
        })
        .collect();
    let theta = Tensor::from_slice(&theta).f_to_device(x.device())?.f_view([b, 2, 3])?;
    let grid = Tensor::f_affine_grid_generator(&theta, [b, c, h, w], false)?;
    // interpolation 1 = nearest, padding 0 = zeros.
    Ok(x.f_grid_sampler_2d(&grid, 1, 0, false)?)
}

/// `(x − mean) / std` per channel, in f32 as torchvision's Normalize.
fn normalize(x: &Tensor, mean: &[f64], std: &[f64]) -> Result<Tensor> {
    let stat = |v: &[f64]| -> Result<Tensor> {
        let v: Vec<f32> = v.iter().map(|&v| v as f32).collect();
        Ok(Tensor::from_slice(&v).f_to_device(x.device())?.f_view([1, v.len() as i64, 1, 1])?)
    };
    Ok(x.f_sub(&stat(mean)?)?.f_div(&stat(std)?)?)
}

/// Cutout (DeVries & Taylor), one hole per image: centre (y, x) uniform in [0,H)×[0,W), box
/// [y − len/2, y + len/2) × [x − len/2, x + len/2) clipped to the image, set to 0 in every channel
/// (swrn.md §5).
fn cutout(x: &Tensor, length: i64, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let (b, _, h, w) = dims4(x);
    let half = length / 2;
    let (mut y1, mut y2, mut x1, mut x2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..b {
        let cy = rng.gen_range(0..h);
        let cx = rng.gen_range(0..w);
        y1.push((cy - half).clamp(0, h));
        y2.push((cy + half).clamp(0, h));
        x1.push((cx - half).clamp(0, w));
        x2.push((cx + half).clamp(0, w));
    }
    let dev = x.device();
    let (ys, xs) = (arange(h, [1, 1, h, 1], dev)?, arange(w, [1, 1, 1, w], dev)?);
    let inside = ys
        .f_ge_tensor(&per_image(&y1, dev)?)?
        .f_logical_and(&ys.f_lt_tensor(&per_image(&y2, dev)?)?)?
        .f_logical_and(&xs.f_ge_tensor(&per_image(&x1, dev)?)?)?
        .f_logical_and(&xs.f_lt_tensor(&per_image(&x2, dev)?)?)?;
    Ok(x.f_masked_fill(&inside, 0.0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch_rng;
    use crate::error::Error;

    fn cfg(ops: &[&str], cutout: i64, mean: f64, std: f64) -> AugmentConfig {
        AugmentConfig {
            train_ops: ops.iter().map(|s| s.to_string()).collect(),
            cutout,
            resize: None,
            gray_to_rgb: false,
            mean: vec![mean],
            std: vec![std],
        }
    }

    /// A batch whose pixels are all distinct within an image (values 1..=255 cycling).
    fn ramp(b: i64, c: i64, h: i64, w: i64) -> Tensor {
        (Tensor::arange(b * c * h * w, (Kind::Int64, Device::Cpu)).remainder(255) + 1)
            .to_kind(Kind::Uint8)
            .view([b, c, h, w])
    }

    fn constant(b: i64, c: i64, h: i64, w: i64, v: i64) -> Tensor {
        Tensor::full([b, c, h, w], v, (Kind::Uint8, Device::Cpu))
    }

    #[test]
    fn parses_ops_and_rejects_bad_ones() {
        let ok = ["flip", "crop:4", "crop:2:reflect", "rotate:15", "rotate:7.5", "rrc"];
        let ops = parse_ops(&ok.map(String::from)).unwrap();
        assert_eq!(ops[1], Op::Crop { pad: 4, reflect: false });
        assert_eq!(ops[2], Op::Crop { pad: 2, reflect: true });
        assert_eq!(ops[4], Op::Rotate { degrees: 7.5 });
        for bad in ["flop", "crop", "crop:-1", "crop:4:mirror", "rotate:x", "rotate:-3", "flip:1", ""] {
            match Op::parse(bad) {
                Err(Error::Input(m)) => assert!(m.contains(&format!("'{bad}'")) && m.contains("crop:P:reflect"), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn config_errors_are_input_errors() {
        let bad = [
            AugmentConfig { mean: vec![0.1, 0.2], std: vec![1.0, 1.0], ..cfg(&[], 0, 0.0, 1.0) },
            AugmentConfig { std: vec![0.0], ..cfg(&[], 0, 0.0, 1.0) },
            AugmentConfig { resize: Some(0), ..cfg(&[], 0, 0.0, 1.0) },
            cfg(&[], -1, 0.0, 1.0),
            cfg(&["shear"], 0, 0.0, 1.0),
        ];
        for c in bad {
            assert!(matches!(Pipeline::new(&c, 1, false), Err(Error::Input(_))), "{c:?}");
        }
        let three = AugmentConfig { mean: vec![0.1; 3], std: vec![0.3; 3], gray_to_rgb: true, ..cfg(&[], 0, 0.0, 1.0) };
        assert_eq!(Pipeline::new(&three, 1, true).unwrap().out_channels(), 3);
    }

    #[test]
    fn shapes_with_resize_and_gray_to_rgb() {
        let c = AugmentConfig {
            resize: Some(32),
            gray_to_rgb: true,
            ..cfg(&["flip", "crop:4", "rotate:15"], 8, 0.1307, 0.3081)
        };
        for train in [true, false] {
            let p = Pipeline::new(&c, 1, train).unwrap();
            assert_eq!((p.out_channels(), p.out_size(28)), (3, 32));
            let y = p.apply(&ramp(5, 1, 28, 28), &mut batch_rng(0, 0, 0)).unwrap();
            assert_eq!((y.size(), y.kind()), (vec![5, 3, 32, 32], Kind::Float));
        }
        // A constant image stays constant through the resize, and the three channels are equal.
        let p = Pipeline::new(&AugmentConfig { resize: Some(32), gray_to_rgb: true, ..cfg(&[], 0, 0.0, 1.0) }, 1, true)
            .unwrap();
        let y = p.apply(&constant(2, 1, 28, 28, 255), &mut batch_rng(0, 0, 0)).unwrap();
        assert!(y.equal(&Tensor::ones([2, 3, 32, 32], (Kind::Float, Device::Cpu))));
        assert!(Pipeline::new(&cfg(&[], 0, 0.0, 1.0), 1, true)
            .unwrap()
            .apply(&ramp(1, 3, 4, 4), &mut batch_rng(0, 0, 0))
            .is_err());
    }

    #[test]
    fn same_stream_same_batch_other_stream_other_batch() {
        let p = Pipeline::new(&cfg(&["flip", "crop:4", "rotate:10"], 16, 0.5, 0.25), 3, true).unwrap();
        let x = ramp(8, 3, 32, 32);
        let a = p.apply(&x, &mut batch_rng(3, 1, 7)).unwrap();
        let b = p.apply(&x, &mut batch_rng(3, 1, 7)).unwrap();
        let c = p.apply(&x, &mut batch_rng(3, 1, 8)).unwrap();
        assert!(a.equal(&b));
        assert!(!a.equal(&c));
        // The eval pipeline has no randomness and only normalises.
        let e = Pipeline::new(&cfg(&["flip", "crop:4"], 16, 0.5, 0.25), 3, false).unwrap();
        let expected = (x.to_kind(Kind::Float) / 255.0 - 0.5) / 0.25;
        assert!(e.apply(&x, &mut batch_rng(0, 0, 0)).unwrap().allclose(&expected, 1e-6, 1e-6, false));
    }

    #[test]
    fn zero_padded_crop_shifts_content_and_pads_zero_before_normalising() {
        let (b, pad) = (16, 4);
        let x = ramp(b, 1, 8, 8).to_kind(Kind::Float) / 255.0;
        let y = crop(&x, pad, false, &mut batch_rng(0, 0, 1)).unwrap();
        let padded = x.constant_pad_nd([pad, pad, pad, pad]);
        let mut shifted = 0;
        for i in 0..b {
            let matches: Vec<(i64, i64)> = (0..=2 * pad)
                .flat_map(|oy| (0..=2 * pad).map(move |ox| (oy, ox)))
                .filter(|&(oy, ox)| padded.get(i).narrow(1, oy, 8).narrow(2, ox, 8).equal(&y.get(i)))
                .collect();
            assert_eq!(matches.len(), 1, "image {i}: the output must be exactly one window of the padded image");
            shifted += (matches[0] != (pad, pad)) as i32;
        }
        assert!(shifted >= b as i32 / 2, "only {shifted} of {b} images moved");
        assert!(y.eq(0.0).any().int64_value(&[]) == 1, "no zero padding visible");
        // Through the pipeline: a white image normalised with mean 0.5, std 0.5 becomes 1, padding −1.
        let p = Pipeline::new(&cfg(&["crop:4"], 0, 0.5, 0.5), 3, true).unwrap();
        let z = p.apply(&constant(b, 3, 32, 32, 255), &mut batch_rng(0, 0, 2)).unwrap();
        let ones = z.eq(1.0).sum(Kind::Int64).int64_value(&[]);
        let minus = z.eq(-1.0).sum(Kind::Int64).int64_value(&[]);
        assert!(minus > 0 && ones + minus == z.numel() as i64);
    }

    #[test]
    fn reflect_crop_only_uses_image_pixels() {
        let x = ramp(8, 1, 6, 6);
        let p = Pipeline::new(&cfg(&["crop:3:reflect"], 0, 0.0, 1.0), 1, true).unwrap();
        let y = (p.apply(&x, &mut batch_rng(0, 0, 0)).unwrap() * 255.0).round().to_kind(Kind::Uint8);
        for i in 0..8 {
            let values: Vec<u8> = Vec::try_from(&x.get(i).flatten(0, -1)).unwrap();
            let out: Vec<u8> = Vec::try_from(&y.get(i).flatten(0, -1)).unwrap();
            assert!(out.iter().all(|v| values.contains(v)));
        }
        assert!(matches!(
            Pipeline::new(&cfg(&["crop:6:reflect"], 0, 0.0, 1.0), 1, true).unwrap().apply(&x, &mut batch_rng(0, 0, 0)),
            Err(Error::Input(_))
        ));
    }

    #[test]
    fn flip_mirrors_some_images_and_keeps_others() {
        let x = ramp(32, 2, 5, 7);
        let p = Pipeline::new(&cfg(&["flip"], 0, 0.0, 1.0), 2, true).unwrap();
        let y = p.apply(&x, &mut batch_rng(0, 0, 0)).unwrap();
        let xf = x.to_kind(Kind::Float) / 255.0;
        let (mut same, mut flipped) = (0, 0);
        for i in 0..32 {
            if y.get(i).equal(&xf.get(i)) {
                same += 1;
            } else {
                assert!(y.get(i).equal(&xf.get(i).flip([2])));
                flipped += 1;
            }
        }
        assert!(same > 0 && flipped > 0);
    }

    #[test]
    fn cutout_zeroes_a_clipped_box_after_normalising() {
        let (b, len) = (64, 16);
        let p = Pipeline::new(&cfg(&[], len, 0.5, 0.5), 3, true).unwrap();
        let y = p.apply(&constant(b, 3, 32, 32, 255), &mut batch_rng(0, 0, 0)).unwrap();
        // Unmasked pixels normalise to exactly 1, masked ones are 0 (the mean), never −1.
        assert_eq!(
            y.eq(1.0).sum(Kind::Int64).int64_value(&[]) + y.eq(0.0).sum(Kind::Int64).int64_value(&[]),
            y.numel() as i64
        );
        let mut clipped = 0;
        for i in 0..b {
            let hole = y.get(i).eq(0.0);
            assert!(hole.get(0).equal(&hole.get(1)) && hole.get(0).equal(&hole.get(2)), "same box in every channel");
            let rows: Vec<i64> = Vec::try_from(&hole.get(0).any_dim(1, false).nonzero().flatten(0, -1)).unwrap();
            let cols: Vec<i64> = Vec::try_from(&hole.get(0).any_dim(0, false).nonzero().flatten(0, -1)).unwrap();
            let (hh, ww) = (rows.len() as i64, cols.len() as i64);
            assert!((1..=len).contains(&hh) && (1..=len).contains(&ww), "box {hh}×{ww}");
            assert_eq!(hole.get(0).sum(Kind::Int64).int64_value(&[]), hh * ww, "the hole is one rectangle");
            assert_eq!(rows.last().unwrap() - rows[0] + 1, hh);
            if hh < len || ww < len {
                clipped += 1;
                let at_border =
                    rows[0] == 0 || *rows.last().unwrap() == 31 || cols[0] == 0 || *cols.last().unwrap() == 31;
                assert!(at_border, "only boxes at the border are clipped");
            }
        }
        assert!(clipped > 0 && clipped < b);
    }

    #[test]
    fn rotation_by_zero_is_identity_and_by_90_matches_rot90() {
        let x = ramp(3, 2, 6, 6).to_kind(Kind::Float);
        assert!(rotate(&x, &[0.0, 0.0, 0.0]).unwrap().equal(&x));
        // Counter-clockwise for positive angles, like PIL and torch.rot90.
        assert!(rotate(&x, &[90.0, 90.0, 90.0]).unwrap().equal(&x.rot90(1, [2, 3])));
        assert!(rotate(&x, &[-90.0, -90.0, -90.0]).unwrap().equal(&x.rot90(-1, [2, 3])));
        // Non-square: 180° flips both axes; 90° maps the central 4×4 block onto itself and fills the
        // columns that fall outside the 4-row input with zeros.
        let r = ramp(1, 1, 4, 6).to_kind(Kind::Float);
        assert!(rotate(&r, &[180.0]).unwrap().equal(&r.flip([2, 3])));
        let quarter = rotate(&r, &[90.0]).unwrap();
        assert!(quarter.narrow(3, 1, 4).equal(&r.narrow(3, 1, 4).rot90(1, [2, 3])));
        assert_eq!(quarter.narrow(3, 0, 1).abs().sum(Kind::Float).double_value(&[]), 0.0);
        assert_eq!(quarter.narrow(3, 5, 1).abs().sum(Kind::Float).double_value(&[]), 0.0);
        let p = Pipeline::new(&cfg(&["rotate:0"], 0, 0.0, 1.0), 2, true).unwrap();
        let y = p.apply(&ramp(3, 2, 6, 6), &mut batch_rng(0, 0, 0)).unwrap();
        assert!(y.equal(&(x / 255.0)));
        // A 45° turn of a white image leaves black (zero-filled) corners.
        let corners = rotate(&Tensor::ones([1, 1, 16, 16], (Kind::Float, Device::Cpu)), &[45.0]).unwrap();
        assert_eq!(corners.double_value(&[0, 0, 0, 0]), 0.0);
        assert_eq!(corners.double_value(&[0, 0, 8, 8]), 1.0);
    }
}
