//! Pictures of which pixels survive repeated subsampling, as the checkered-CNN repository's
//! `visualize.py` draws them (checkered.md §4).
//!
//! The image starts white (`im_size`²). Checkered methods (`naive`, `lattice`, `random`) split every
//! submap at each of `steps` steps into two with sampler 0 (rows/cols `[::2, ::2]` and `[1::2, 1::2]`)
//! or sampler 1 (`[::2, 1::2]` and `[1::2, ::2]`), firsts then seconds; the pixels of the final submaps
//! are painted black, or submap k in colour k of [`PALETTE`] when `color` and the submaps fit the
//! palette (`steps < 4`, as in the original). `traditional` paints `[::2^steps, ::2^steps]` black.
//! `tri` splits into three with one of six 3×3 n-rooks samplers per submap and paints black (or its
//! three submaps in colour at `steps = 1`, which the original never does). `png_resize` rescales the
//! picture to that side with nearest-neighbour sampling (Pillow's `resize` default when the pictures
//! were made); as in the original, `tri` ignores it.
//!
//! The CLI is stricter than `visualize.py`: it refuses `--color` where no colour can be drawn
//! ([`Options::check_color`]) and sizes every method's output itself ([`Picture::save`], default
//! [`default_side`]: the picture upscaled to about 512 pixels).
//!
//! `random` and `tri` draw their sampler choices from a ChaCha8 stream seeded with `seed` (the
//! original used Python's unseeded `random`); [`render_sequences`] paints given choices, which is how
//! the original's named random patterns are reproduced.
use super::{draw_err, Figure, Format};
use crate::error::{Error, Result};
use crate::input_err;
use crate::models::checkered::{lattice_sequence, LATTICE_MAX_STEPS};
use image::{ImageFormat, Rgb, RgbImage};
use plotters::prelude::{Color, RGBColor, Rectangle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// Submap colours k = 0..7 (black, red, green, blue, teal, pink, yellow, grey): the original's float
/// RGB values times 255, truncated to `u8` (0.8 → 204, 0.5 → 127).
pub const PALETTE: [[u8; 3]; 8] =
    [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 255, 255], [255, 0, 255], [204, 204, 0], [127, 127, 127]];

/// Largest image side (before and after resizing) accepted.
pub const MAX_SIZE: u32 = 8192;
/// Most steps for `naive`, `random` and `traditional` (`lattice` allows 10, `tri` 10).
pub const MAX_STEPS: u32 = 16;

/// (row, column) offsets of the three samples of each `tri` sampler, in output order.
const TRI_SAMPLERS: [[(usize, usize); 3]; 6] = [
    [(0, 0), (1, 2), (2, 1)],
    [(0, 1), (1, 0), (2, 2)],
    [(0, 2), (1, 1), (2, 0)],
    [(0, 2), (1, 0), (2, 1)],
    [(0, 1), (1, 2), (2, 0)],
    [(0, 0), (1, 1), (2, 2)],
];

/// A subsampling method of `visualize.py`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Traditional,
    Naive,
    Lattice,
    Random,
    Tri,
}

impl Method {
    pub const ALL: [Method; 5] = [Method::Lattice, Method::Naive, Method::Random, Method::Traditional, Method::Tri];

    pub fn name(self) -> &'static str {
        match self {
            Method::Traditional => "traditional",
            Method::Naive => "naive",
            Method::Lattice => "lattice",
            Method::Random => "random",
            Method::Tri => "tri",
        }
    }

    /// Samplers to choose from at each split (0 for `traditional`).
    fn sampler_count(self) -> usize {
        match self {
            Method::Traditional => 0,
            Method::Tri => 6,
            _ => 2,
        }
    }

    /// Submaps one split makes of one.
    fn fan_out(self) -> usize {
        if self == Method::Tri {
            3
        } else {
            2
        }
    }

    fn max_steps(self) -> u32 {
        match self {
            Method::Lattice => LATTICE_MAX_STEPS,
            Method::Tri => 10,
            _ => MAX_STEPS,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Method> {
        Method::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            input_err!("method: unknown method '{s}'. Known methods: lattice, naive, random, traditional, tri.")
        })
    }
}

/// The arguments of `visualize.py`'s `run`, plus the seed of `random` and `tri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Side of the square input image (the original's default is 32).
    pub im_size: u32,
    /// Subsampling steps (default 3).
    pub steps: u32,
    /// Default `lattice`.
    pub method: Method,
    /// Side of the saved picture; `None` keeps `im_size`.
    pub png_resize: Option<u32>,
    /// Colour the submaps (only honoured when they fit the palette: `steps < 4`, `tri` at 1 step).
    pub color: bool,
    /// Seed of the sampler choices of `random` and `tri`.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { im_size: 32, steps: 3, method: Method::Lattice, png_resize: None, color: false, seed: 0 }
    }
}

impl Options {
    /// Submaps the last step leaves (1 for `traditional`).
    fn submaps(&self) -> u64 {
        match self.method {
            Method::Traditional => 1,
            m => (m.fan_out() as u64).saturating_pow(self.steps),
        }
    }

    /// Refuses `color` where the picture cannot show it: `traditional` keeps a single submap, and
    /// more than [`PALETTE`]'s 8 submaps have no colours (the original silently draws black).
    pub fn check_color(&self) -> Result<()> {
        if !self.color {
            return Ok(());
        }
        if self.method == Method::Traditional {
            return Err(input_err!(
                "--color: traditional subsampling keeps a single grid of pixels, drawn in black; there are no submaps to colour."
            ));
        }
        let max_steps = if self.method == Method::Tri { 1 } else { 3 };
        if self.submaps() > PALETTE.len() as u64 {
            return Err(input_err!(
                "--color: {} steps of {} leave {} submaps, but there are only {} colours; use --steps {max_steps} or less, or drop --color.",
                self.steps,
                self.method,
                self.submaps(),
                PALETTE.len()
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        if self.im_size == 0 || self.im_size > MAX_SIZE {
            return Err(input_err!("im_size: must be between 1 and {MAX_SIZE}, got {}.", self.im_size));
        }
        if let Some(r) = self.png_resize {
            if r == 0 || r > MAX_SIZE {
                return Err(input_err!("png_resize: must be between 1 and {MAX_SIZE}, got {r}."));
            }
        }
        let max = self.method.max_steps();
        if self.steps > max {
            return Err(input_err!(
                "steps: the {} method allows at most {max} steps, got {}.",
                self.method,
                self.steps
            ));
        }
        Ok(())
    }

    /// The original's output file name: `checkered_{method}_{im_size}_{steps}.png`,
    /// `traditional_{im_size}_{steps}.png` or `tri_random_{im_size}_{steps}.png`.
    pub fn file_name(&self) -> String {
        match self.method {
            Method::Traditional => format!("traditional_{}_{}.png", self.im_size, self.steps),
            Method::Tri => format!("tri_random_{}_{}.png", self.im_size, self.steps),
            m => format!("checkered_{}_{}_{}.png", m, self.im_size, self.steps),
        }
    }
}

/// The CLI's default output side: `im_size` times the smallest whole factor that reaches 512
/// pixels (every source pixel becomes an equal square), or `im_size` itself from 512 up.
pub fn default_side(im_size: u32) -> u32 {
    im_size.max(1) * 512u32.div_ceil(im_size.max(1))
}

/// A rendered picture and the sampler choices behind it (one list per step).
#[derive(Debug, Clone)]
pub struct Picture {
    pub image: RgbImage,
    pub sequences: Vec<Vec<u8>>,
    pub method: Method,
}

impl Picture {
    /// The lines the original prints while drawing: each step's choices as digits (`0101`), or as a
    /// list (`[0, 2, 2]`) for `tri`.
    pub fn sequence_lines(&self) -> Vec<String> {
        self.sequences
            .iter()
            .map(|s| {
                let digits: Vec<String> = s.iter().map(|k| k.to_string()).collect();
                if self.method == Method::Tri {
                    format!("[{}]", digits.join(", "))
                } else {
                    digits.concat()
                }
            })
            .collect()
    }

    /// What [`sequence_lines`](Self::sequence_lines) prints, labelled: a line saying what the
    /// numbers are, then `step i (n submaps): …` per step.
    pub fn described_sequences(&self) -> Vec<String> {
        let head = match self.method {
            Method::Traditional => return vec!["traditional: no samplers (one grid of pixels is kept)".into()],
            Method::Tri => {
                "sampler (0-5, one of the six 3×3 n-rooks patterns) chosen for each submap at each step, in submap order:"
            }
            _ => {
                "sampler chosen for each submap at each step, in submap order (0: [::2, ::2] + [1::2, 1::2], 1: [::2, 1::2] + [1::2, ::2]):"
            }
        };
        let steps = self.sequences.iter().zip(self.sequence_lines()).enumerate().map(|(i, (seq, line))| {
            let n = seq.len();
            format!("step {} ({n} submap{}): {line}", i + 1, if n == 1 { "" } else { "s" })
        });
        std::iter::once(head.to_string()).chain(steps).collect()
    }

    /// Writes the picture `side` pixels square (nearest-neighbour scaling, as [`resize_nearest`]),
    /// as a PNG, SVG or PDF by the path's extension. PNG pixels are the picture's; SVG and PDF draw
    /// each row's runs of equal pixels as rectangles, in layout pixels (1/96 inch), each reaching
    /// 1 px under its right and lower neighbours (drawn later) so that no seam shows when zoomed.
    pub fn save(&self, path: &Path, side: u32) -> Result<()> {
        if side == 0 || side > MAX_SIZE {
            return Err(input_err!("--png-size: must be between 1 and {MAX_SIZE}, got {side}."));
        }
        if Format::of(path)? == Format::Png {
            let image = if self.image.width() == side { self.image.clone() } else { resize_nearest(&self.image, side) };
            return image
                .save_with_format(path, ImageFormat::Png)
                .map_err(|e| Error::Io { path: path.to_path_buf(), source: std::io::Error::other(e) });
        }
        let mut fig = Figure::new(path, (side, side))?;
        {
            let root = fig.area()?;
            let err = draw_err(path);
            let (w, h) = self.image.dimensions();
            let (xs, ys) = (nearest_edges(w, side), nearest_edges(h, side));
            let side = side as i32;
            for y in 0..h {
                let mut x = 0;
                while x < w {
                    let p = *self.image.get_pixel(x, y);
                    let run = (x..w).take_while(|&x1| *self.image.get_pixel(x1, y) == p).count() as u32;
                    let (x1, y1) = (xs[(x + run) as usize], ys[y as usize + 1]);
                    let corners = [(xs[x as usize], ys[y as usize]), ((x1 + 1).min(side), (y1 + 1).min(side))];
                    root.draw(&Rectangle::new(corners, RGBColor(p.0[0], p.0[1], p.0[2]).filled())).map_err(&err)?;
                    x += run;
                }
            }
            root.present().map_err(&err)?;
        }
        fig.finish()
    }
}

/// The sampler choices of each step: naive all 0, lattice from the table, random/tri seeded draws,
/// none for `traditional`.
pub fn sequences(opts: &Options) -> Result<Vec<Vec<u8>>> {
    opts.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let count = opts.method.sampler_count() as u8;
    let steps = if opts.method == Method::Traditional { 0 } else { opts.steps };
    (0..steps)
        .map(|i| {
            let n = opts.method.fan_out().pow(i);
            match opts.method {
                Method::Lattice => lattice_sequence(n),
                Method::Random | Method::Tri => Ok((0..n).map(|_| rng.gen_range(0..count)).collect()),
                _ => Ok(vec![0; n]),
            }
        })
        .collect()
}

/// Renders the picture of `opts`.
pub fn render(opts: &Options) -> Result<Picture> {
    render_sequences(opts, &sequences(opts)?)
}

/// One submap as the rows and columns of the image it holds (a NumPy view of strided slices).
struct Submap {
    rows: Vec<u32>,
    cols: Vec<u32>,
}

impl Submap {
    fn take(&self, r: usize, c: usize, stride: usize) -> Submap {
        Submap {
            rows: self.rows.iter().skip(r).step_by(stride).copied().collect(),
            cols: self.cols.iter().skip(c).step_by(stride).copied().collect(),
        }
    }
}

/// Renders `opts` with the given sampler choices (`sequences[i]` has one entry per submap at step i:
/// 0/1 for the checkered methods, 0..5 for `tri`; ignored for `traditional`).
pub fn render_sequences(opts: &Options, sequences: &[Vec<u8>]) -> Result<Picture> {
    opts.validate()?;
    let n = opts.im_size;
    let mut image = RgbImage::from_pixel(n, n, Rgb([255, 255, 255]));
    if opts.method == Method::Traditional {
        let stride = 1usize.checked_shl(opts.steps).unwrap_or(usize::MAX);
        for y in (0..n).step_by(stride) {
            for x in (0..n).step_by(stride) {
                image.put_pixel(x, y, Rgb(PALETTE[0]));
            }
        }
    } else {
        if sequences.len() != opts.steps as usize {
            return Err(input_err!(
                "{} steps need {} sampler sequences, got {}.",
                opts.steps,
                opts.steps,
                sequences.len()
            ));
        }
        let fan_out = opts.method.fan_out();
        let count = opts.method.sampler_count() as u8;
        let all: Vec<u32> = (0..n).collect();
        let mut submaps = vec![Submap { rows: all.clone(), cols: all }];
        for (i, seq) in sequences.iter().enumerate() {
            if seq.len() != submaps.len() || seq.iter().any(|&k| k >= count) {
                return Err(input_err!(
                    "step {i}: expected {} sampler choices in 0..{count}, got {:?}.",
                    submaps.len(),
                    seq
                ));
            }
            let mut groups: Vec<Vec<Submap>> = (0..fan_out).map(|_| Vec::with_capacity(submaps.len())).collect();
            for (s, &k) in submaps.iter().zip(seq) {
                let offsets: &[(usize, usize)] = match (fan_out, k) {
                    (3, k) => &TRI_SAMPLERS[k as usize],
                    (_, 0) => &[(0, 0), (1, 1)],
                    _ => &[(0, 1), (1, 0)],
                };
                for (g, &(r, c)) in groups.iter_mut().zip(offsets) {
                    g.push(s.take(r, c, fan_out));
                }
            }
            submaps = groups.into_iter().flatten().collect();
        }
        let colored = opts.color && submaps.len() <= PALETTE.len();
        for (k, s) in submaps.iter().enumerate() {
            let color = Rgb(if colored { PALETTE[k] } else { PALETTE[0] });
            for &y in &s.rows {
                for &x in &s.cols {
                    image.put_pixel(x, y, color);
                }
            }
        }
    }
    let image = match opts.png_resize {
        Some(side) if opts.method != Method::Tri => resize_nearest(&image, side),
        _ => image,
    };
    Ok(Picture { image, sequences: sequences.to_vec(), method: opts.method })
}

/// Where each source pixel starts in a [`resize_nearest`] picture of `side` from `len`: entry x is
/// the first output pixel reading source x (entry `len` is `side`).
fn nearest_edges(len: u32, side: u32) -> Vec<i32> {
    let mut edges = vec![side as i32; len as usize + 1];
    for x in (0..side).rev() {
        edges[nearest_source(x, len, side) as usize] = x as i32;
    }
    // A source pixel no output reads (shrinking) starts where the next one does.
    for x in (0..len as usize).rev() {
        edges[x] = edges[x].min(edges[x + 1]);
    }
    edges
}

/// The source pixel output pixel `x` of `side` reads from `len`, as Pillow's NEAREST.
fn nearest_source(x: u32, len: u32, side: u32) -> u32 {
    (((x as f64 + 0.5) * len as f64 / side as f64) as u32).min(len - 1)
}

/// Nearest-neighbour resize to `side`² as Pillow's NEAREST: output pixel x reads input ⌊(x + ½)·in/out⌋.
pub fn resize_nearest(image: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    RgbImage::from_fn(side, side, |x, y| *image.get_pixel(nearest_source(x, w, side), nearest_source(y, h, side)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> RgbImage {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkered").join(name);
        image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
    }

    fn opts(method: Method, im_size: u32, steps: u32, png_resize: Option<u32>, color: bool) -> Options {
        Options { im_size, steps, method, png_resize, color, seed: 0 }
    }

    fn assert_same(name: &str, got: &RgbImage) {
        let want = fixture(name);
        assert_eq!(got.dimensions(), want.dimensions(), "{name}");
        let differing = got.pixels().zip(want.pixels()).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 0, "{name}: {differing} pixels differ");
    }

    #[test]
    fn pictures_match_the_committed_originals_pixel_for_pixel() {
        use Method::*;
        let mut cases: Vec<(String, Options)> = Vec::new();
        for steps in 1..=4 {
            cases.push((format!("lattice16__checkered_even_16_{steps}.png"), opts(Lattice, 16, steps, None, true)));
            cases.push((format!("naive32__checkered_naive_32_{steps}.png"), opts(Naive, 32, steps, None, false)));
            cases.push((
                format!("traditional16__traditional_16_{steps}.png"),
                opts(Traditional, 16, steps, None, false),
            ));
        }
        for steps in 1..=5 {
            cases.push((format!("lattice32__checkered_even_32_{steps}.png"), opts(Lattice, 32, steps, None, true)));
        }
        for steps in [1, 3, 5] {
            cases.push((
                format!("lattice32_big__checkered_lattice_32_{steps}.png"),
                opts(Lattice, 32, steps, Some(256), true),
            ));
        }
        for steps in [0, 2] {
            cases.push((
                format!("lattice32_big_bw__checkered_lattice_32_{steps}.png"),
                opts(Lattice, 32, steps, Some(256), false),
            ));
        }
        for steps in [0, 3] {
            cases.push((
                format!("traditional32_big__traditional_32_{steps}.png"),
                opts(Traditional, 32, steps, Some(256), false),
            ));
        }
        cases.push(("lattice256__checkered_even_256_8.png".into(), opts(Lattice, 256, 8, None, false)));
        cases.push(("lattice512__checkered_even_512_10.png".into(), opts(Lattice, 512, 10, None, false)));
        for (name, o) in &cases {
            assert_same(name, &render(o).unwrap().image);
        }
    }

    #[test]
    fn the_named_random_patterns_are_reproduced_from_their_sequences() {
        let cell: Vec<Vec<u8>> = vec![vec![0], vec![0, 0], vec![0, 0, 1, 0], vec![1, 0, 0, 0, 1, 1, 0, 0]];
        let pic = render_sequences(&opts(Method::Random, 256, 4, None, false), &cell).unwrap();
        assert_same("patterns__checkered_random_256_4_cell.png", &pic.image);
        let burst: Vec<Vec<u8>> = vec![
            vec![1],
            vec![1, 0],
            vec![0, 0, 1, 1],
            vec![1, 1, 1, 1, 0, 1, 1, 0],
            vec![0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1],
        ];
        let pic = render_sequences(&opts(Method::Random, 256, 5, None, false), &burst).unwrap();
        assert_same("patterns__checkered_random_256_5_burst.png", &pic.image);
        assert_eq!(pic.sequence_lines()[2], "0011");
        let wave: Vec<Vec<u8>> = vec![
            vec![0],
            vec![0, 2, 2],
            vec![0, 2, 2, 1, 0, 0, 1, 0, 2],
            vec![1, 1, 0, 0, 2, 1, 1, 1, 2, 1, 2, 1, 1, 1, 2, 0, 2, 0, 1, 2, 0, 0, 0, 0, 0, 1, 2],
        ];
        let pic = render_sequences(&opts(Method::Tri, 256, 4, Some(1024), true), &wave).unwrap();
        assert_same("patterns__tri_random_256_4_triangle_wave.png", &pic.image);
        assert_eq!(pic.sequence_lines()[1], "[0, 2, 2]");
    }

    /// Every `block`×`block` tile holds exactly one black pixel per row and per column.
    fn assert_n_rooks(image: &RgbImage, block: u32) {
        let black = |x: u32, y: u32| image.get_pixel(x, y).0 == PALETTE[0];
        for by in (0..image.height()).step_by(block as usize) {
            for bx in (0..image.width()).step_by(block as usize) {
                for i in 0..block {
                    assert_eq!(
                        (0..block).filter(|&j| black(bx + j, by + i)).count(),
                        1,
                        "row {i} of block ({bx},{by})"
                    );
                    assert_eq!(
                        (0..block).filter(|&j| black(bx + i, by + j)).count(),
                        1,
                        "col {i} of block ({bx},{by})"
                    );
                }
            }
        }
    }

    #[test]
    fn seeded_random_and_tri_pictures_are_n_rooks_lattices() {
        for seed in 0..4 {
            let o = Options { seed, ..opts(Method::Random, 64, 4, None, false) };
            let a = render(&o).unwrap();
            assert_n_rooks(&a.image, 16);
            assert_eq!(a.image, render(&o).unwrap().image, "same seed, same picture");
            assert_eq!(a.sequences.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 2, 4, 8]);
            let t = render(&Options { seed, ..opts(Method::Tri, 81, 3, Some(500), false) }).unwrap();
            assert_eq!(t.image.dimensions(), (81, 81), "tri ignores png_resize");
            assert_n_rooks(&t.image, 27);
        }
        let seqs = |seed| sequences(&Options { seed, ..opts(Method::Random, 64, 6, None, false) }).unwrap();
        assert_ne!(seqs(1), seqs(2));
        // Colour with fewer than 4 steps: 8 distinct submap colours, each in every 8×8 block once.
        let c = render(&Options { seed: 3, ..opts(Method::Random, 16, 3, None, true) }).unwrap();
        for k in PALETTE {
            assert_eq!(c.image.pixels().filter(|p| p.0 == k).count(), 4);
        }
    }

    #[test]
    fn naive_lattice_and_traditional_geometry() {
        // Naive: the main diagonal of every 2^T block; traditional: its top-left corner.
        let naive = render(&opts(Method::Naive, 16, 2, None, false)).unwrap().image;
        let trad = render(&opts(Method::Traditional, 16, 2, None, false)).unwrap().image;
        for y in 0..16 {
            for x in 0..16 {
                assert_eq!(naive.get_pixel(x, y).0 == PALETTE[0], x % 4 == y % 4);
                assert_eq!(trad.get_pixel(x, y).0 == PALETTE[0], x % 4 == 0 && y % 4 == 0);
            }
        }
        assert_eq!(Options { method: Method::Tri, ..Options::default() }.file_name(), "tri_random_32_3.png");
        assert_eq!(Options::default().file_name(), "checkered_lattice_32_3.png");
    }

    #[test]
    fn nearest_resize_follows_pillow_and_bad_arguments_are_refused() {
        let mut img = RgbImage::from_pixel(3, 1, Rgb([0, 0, 0]));
        img.put_pixel(1, 0, Rgb([1, 1, 1]));
        img.put_pixel(2, 0, Rgb([2, 2, 2]));
        let r = resize_nearest(&img, 7);
        // ⌊(x + ½)·3/7⌋ for x = 0..6: 0 0 1 1 1 2 2.
        let row: Vec<u8> = (0..7).map(|x| r.get_pixel(x, 0).0[0]).collect();
        assert_eq!(row, vec![0, 0, 1, 1, 1, 2, 2]);
        assert!(render(&opts(Method::Lattice, 32, 11, None, false)).is_err());
        assert!(render(&opts(Method::Naive, 0, 1, None, false)).is_err());
        assert!("diagonal".parse::<Method>().is_err());
        assert_eq!("tri".parse::<Method>().unwrap(), Method::Tri);
        let bad = render_sequences(&opts(Method::Random, 8, 2, None, false), &[vec![0], vec![0, 2]]);
        assert!(bad.is_err());
        let dir = tempfile::tempdir().unwrap();
        let o = opts(Method::Lattice, 16, 2, Some(64), true);
        let path = dir.path().join(o.file_name());
        render(&o).unwrap().save(&path, 64).unwrap();
        assert_eq!(image::open(&path).unwrap().to_rgb8(), render(&o).unwrap().image);
    }

    #[test]
    fn every_format_at_the_requested_side_and_vector_matches_raster() {
        use crate::visualize::{rasterize, tests::assert_figure, LAYOUT_DPI};
        let dir = tempfile::tempdir().unwrap();
        for (o, side) in [
            (opts(Method::Lattice, 32, 3, None, true), default_side(32)),
            (opts(Method::Tri, 27, 2, None, false), 100),
            (opts(Method::Traditional, 16, 2, None, false), 40),
        ] {
            let pic = render(&o).unwrap();
            for ext in ["png", "svg", "pdf"] {
                let path = dir.path().join(format!("p.{ext}"));
                pic.save(&path, side).unwrap();
                assert_figure(&path, (side, side), (side, side));
            }
            let png = image::open(dir.path().join("p.png")).unwrap().to_rgb8();
            assert_eq!(png, resize_nearest(&pic.image, side));
            let svg = std::fs::read_to_string(dir.path().join("p.svg")).unwrap();
            assert_eq!(rasterize(&svg, LAYOUT_DPI).unwrap(), png, "{} SVG drawn at 96 dpi = the PNG", o.method);
        }
        assert_eq!((default_side(32), default_side(81), default_side(600)), (512, 567, 600));
        let e = render(&Options::default()).unwrap().save(&dir.path().join("p.gif"), 64).unwrap_err();
        assert!(e.to_string().contains(".png, .svg or .pdf"), "{e}");
    }

    #[test]
    fn color_is_refused_where_it_cannot_be_drawn_and_tri_colours_one_step() {
        let ok = |m, steps| opts(m, 27, steps, None, true).check_color();
        assert!(ok(Method::Lattice, 3).is_ok() && ok(Method::Tri, 1).is_ok());
        for (m, steps, needle) in
            [(Method::Lattice, 4, "16 submaps"), (Method::Tri, 2, "9 submaps"), (Method::Traditional, 1, "traditional")]
        {
            let e = ok(m, steps).unwrap_err();
            assert!(e.to_string().contains("--color") && e.to_string().contains(needle), "{e}");
        }
        let tri = render(&opts(Method::Tri, 27, 1, None, true)).unwrap().image;
        for k in &PALETTE[..3] {
            assert_eq!(tri.pixels().filter(|p| p.0 == *k).count(), 81, "a ninth of the pixels in colour {k:?}");
        }
    }

    #[test]
    fn printed_sequences_say_what_they_are() {
        let pic = render(&opts(Method::Lattice, 32, 2, None, false)).unwrap();
        let lines = pic.described_sequences();
        assert!(lines[0].starts_with("sampler chosen for each submap") && lines[0].contains("0: [::2, ::2]"));
        assert_eq!(
            lines[1..],
            ["step 1 (1 submap): 0".to_string(), format!("step 2 (2 submaps): {}", pic.sequence_lines()[1])]
        );
        let trad = render(&opts(Method::Traditional, 16, 2, None, false)).unwrap();
        assert_eq!(trad.described_sequences().len(), 1);
    }
}
