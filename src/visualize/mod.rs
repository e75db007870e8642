//! Pictures — training curves, SWRN layer-similarity maps, checkered sampling patterns, DiracNet α/β,
//! sweep results — and the figure machinery they share.
//!
//! # Writing a figure
//! ```no_run
//! # use convtrain::visualize::Figure;
//! # use plotters::prelude::*;
//! # fn main() -> convtrain::error::Result<()> {
//! # let out = std::path::Path::new("f.pdf");
//! let mut fig = Figure::new(out, (480, 320))?.with_dpi(300.0)?; // format from out's extension
//! {
//!     let root = fig.area()?; // a white plotters drawing area, in layout pixels
//!     root.draw(&Text::new("hello", (20, 20), convtrain::visualize::font(12.0)))
//!         .map_err(convtrain::visualize::draw_err(out))?;
//! } // the area (and every area split from it) must be gone before `finish`
//! fig.finish()?; // converts and writes the file
//! # Ok(()) }
//! ```
//!
//! Every figure is drawn once, with plotters' SVG backend, in *layout pixels* of 1/96 inch (CSS
//! pixels, [`LAYOUT_DPI`]); design at the printed size (12 px text is 9 pt). The extension of the
//! output path chooses the format ([`Format`]):
//! - `.svg`: that SVG, `width`/`height` in px, so it opens at its physical size;
//! - `.pdf`: one page of that size (1 px = 0.75 pt), converted by svg2pdf, text embedded as a subset
//!   of the bundled font (selectable);
//! - `.png`: rasterised by resvg at `dpi` dots per inch (default [`DEFAULT_DPI`]: each layout pixel
//!   becomes dpi/96 pixels), the DPI recorded in the file's `pHYs` chunk so that LaTeX and word
//!   processors place it at the intended size.
//!
//! Text is DejaVu Sans (assets/, Bitstream Vera licence) everywhere: plotters measures it (ab_glyph),
//! resvg and svg2pdf draw it as their only font, so no figure depends on the machine's fonts.
//! Colours for data series come from [`series_color`] (Okabe–Ito, colour-blind safe).
pub mod checkered;
pub mod curves;
pub mod dirac;
pub mod lsm;
pub mod sweep;

use crate::checkpoint::write_atomic;
use crate::error::{IoContext, Result};
use crate::{input_err, internal_err};
use image::RgbImage;
use plotters::coord::Shift;
use plotters::prelude::*;
use resvg::{tiny_skia, usvg};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The bundled font, registered with plotters as [`FONT`] and given to usvg as its only face.
const FONT_DATA: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The family name inside [`FONT_DATA`].
const FONT_NAME: &str = "DejaVu Sans";
/// The family every figure names; [`register_font`] makes it DejaVu Sans.
pub const FONT: &str = "sans-serif";
/// Layout pixels per inch: the unit of figure sizes and coordinates (the SVG px).
pub const LAYOUT_DPI: f64 = 96.0;
/// Resolution of PNG output unless `--dpi` says otherwise.
pub const DEFAULT_DPI: f64 = 300.0;
/// Most `--dpi` accepted.
pub const MAX_DPI: f64 = 2400.0;
/// Largest PNG side (pixels) a figure may rasterise to.
const MAX_PNG_SIDE: f64 = 32768.0;

/// Registers the bundled DejaVu Sans as plotters' "sans-serif", which measures all figure text.
pub fn register_font() -> Result<()> {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE
        .get_or_init(|| plotters::style::register_font(FONT, plotters::style::FontStyle::Normal, FONT_DATA).is_ok());
    if ok {
        Ok(())
    } else {
        Err(internal_err!("the bundled font assets/DejaVuSans.ttf could not be loaded"))
    }
}

/// Turns a plotters drawing error into ours (internal: drawing into a string cannot fail on input),
/// naming the output file.
pub fn draw_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> crate::Error + '_ {
    move |e| internal_err!("{}: cannot draw the picture ({e}).", path.display())
}

/// What drawing code returns: plotters' errors (of any backend) or ours, boxed.
pub type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Draws a `size` figure into `out` (format by extension, PNG at `dpi`) with `draw`, and writes it.
pub fn draw_figure(
    out: &Path,
    size: (u32, u32),
    dpi: f64,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> DrawResult,
) -> Result<()> {
    let mut fig = Figure::new(out, size)?.with_dpi(dpi)?;
    draw(&fig.area()?).map_err(draw_err(out))?;
    fig.finish()
}

/// Draws a chart's series legend as every plot here does: a white box at `position`, black border,
/// 11-pixel labels.
pub fn draw_legend<'a, DB, CT>(
    chart: &mut plotters::chart::ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(font(11.0))
        .draw()
}

/// matplotlib's viridis colour map sampled at 8 evenly spaced points, linearly interpolated; `v` is
/// clamped to [0, 1].
pub fn viridis(v: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 8] = [
        (68.0, 1.0, 84.0),
        (70.0, 50.0, 127.0),
        (54.0, 92.0, 141.0),
        (39.0, 127.0, 143.0),
        (31.0, 162.0, 136.0),
        (74.0, 194.0, 110.0),
        (160.0, 219.0, 57.0),
        (254.0, 232.0, 37.0),
    ];
    let x = v.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let t = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * t).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The figure font at `px` layout pixels.
pub fn font(px: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FONT), px, FontStyle::Normal)
}

/// Width and height of `text` at `px`, as plotters lays it out (call [`register_font`] first).
pub fn text_size(text: &str, px: f64) -> (i32, i32) {
    let (w, h) = font(px).box_size(text).unwrap_or((0, 0));
    (w as i32, h as i32)
}

/// Okabe & Ito's colour-blind-safe palette ("Color Universal Design", 2008) in the order it reads
/// best on white: blue, vermillion, bluish green, reddish purple, orange, sky blue, black (its
/// yellow is left out: too faint on white).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// Colour of data series `i` (the palette repeats after 7).
pub fn series_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A figure file format, chosen by the output path's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
    Pdf,
}

impl Format {
    /// The extensions understood, for messages.
    pub const SUPPORTED: &'static str = ".png, .svg or .pdf";

    /// The format of `path` from its extension (any case); an input error otherwise.
    pub fn of(path: &Path) -> Result<Format> {
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("png") => Ok(Format::Png),
            Some("svg") => Ok(Format::Svg),
            Some("pdf") => Ok(Format::Pdf),
            Some(other) => Err(input_err!(
                "{}: unknown figure format '.{other}'; the extension chooses the format: {}.",
                path.display(),
                Format::SUPPORTED
            )),
            None => Err(input_err!(
                "{}: no extension; the extension chooses the figure format: {}.",
                path.display(),
                Format::SUPPORTED
            )),
        }
    }
}

/// A figure being drawn: [`Figure::area`] gives the plotters drawing area, [`Figure::finish`] writes
/// the file in the format of its extension (see the module documentation).
#[derive(Debug)]
pub struct Figure {
    path: PathBuf,
    format: Format,
    size: (u32, u32),
    dpi: f64,
    svg: String,
}

impl Figure {
    /// A `size` (layout pixels, 1/96 inch) figure for `path`; refuses an unknown extension.
    pub fn new(path: &Path, size: (u32, u32)) -> Result<Figure> {
        let format = Format::of(path)?;
        if size.0 == 0 || size.1 == 0 {
            return Err(internal_err!("{}: empty figure size {}×{}", path.display(), size.0, size.1));
        }
        register_font()?;
        Ok(Figure { path: path.to_path_buf(), format, size, dpi: DEFAULT_DPI, svg: String::new() })
    }

    /// Sets the PNG resolution (SVG and PDF are vector and ignore it); refuses values outside
    /// 1..=[`MAX_DPI`] or a raster larger than 32768 pixels a side, naming `--dpi`.
    pub fn with_dpi(mut self, dpi: f64) -> Result<Figure> {
        let side = self.size.0.max(self.size.1) as f64 * dpi / LAYOUT_DPI;
        if !(1.0..=MAX_DPI).contains(&dpi) || side > MAX_PNG_SIDE {
            return Err(input_err!(
                "--dpi: must be between 1 and {MAX_DPI} and keep the PNG under {MAX_PNG_SIDE} pixels a side, got {dpi}."
            ));
        }
        self.dpi = dpi;
        Ok(self)
    }

    /// The whole figure as a white plotters drawing area whose coordinates are layout pixels.
    /// Drawing again starts the figure afresh.
    pub fn area(&mut self) -> Result<DrawingArea<SVGBackend<'_>, Shift>> {
        self.svg.clear();
        let root = SVGBackend::with_string(&mut self.svg, self.size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err(&self.path))?;
        Ok(root)
    }

    /// Converts what was drawn to the file's format and writes it (atomically, creating the
    /// directory).
    pub fn finish(self) -> Result<()> {
        if self.svg.is_empty() {
            return Err(internal_err!("{}: the figure was never drawn", self.path.display()));
        }
        let bytes = match self.format {
            Format::Svg => self.svg.into_bytes(),
            Format::Png => png_with_dpi(&rasterize(&self.svg, self.dpi)?, self.dpi)?,
            Format::Pdf => svg_to_pdf(&self.svg)?,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        write_atomic(&self.path, &bytes)
    }
}

/// Parses an SVG that a figure drew, with the bundled font as the only face (and as "sans-serif").
fn parse_svg(svg: &str) -> Result<usvg::Tree> {
    let mut fonts = usvg::fontdb::Database::new();
    fonts.load_font_data(FONT_DATA.to_vec());
    fonts.set_sans_serif_family(FONT_NAME);
    let options = usvg::Options { font_family: FONT_NAME.into(), fontdb: Arc::new(fonts), ..Default::default() };
    usvg::Tree::from_str(svg, &options).map_err(|e| internal_err!("a figure's SVG could not be parsed: {e}"))
}

/// Renders an SVG (in layout pixels) at `dpi`, on white: each layout pixel becomes dpi/96 pixels.
pub fn rasterize(svg: &str, dpi: f64) -> Result<RgbImage> {
    let tree = parse_svg(svg)?;
    let scale = dpi / LAYOUT_DPI;
    let (w, h) = ((tree.size().width() as f64 * scale).round(), (tree.size().height() as f64 * scale).round());
    let mut pixmap = tiny_skia::Pixmap::new(w.max(1.0) as u32, h.max(1.0) as u32)
        .ok_or_else(|| internal_err!("cannot allocate a {w}×{h} picture"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::from_scale(scale as f32, scale as f32), &mut pixmap.as_mut());
    let rgb: Vec<u8> = pixmap
        .pixels()
        .iter()
        .flat_map(|p| {
            let c = p.demultiply();
            [c.red(), c.green(), c.blue()]
        })
        .collect();
    RgbImage::from_raw(pixmap.width(), pixmap.height(), rgb)
        .ok_or_else(|| internal_err!("rasterised figure has the wrong number of pixels"))
}

/// PNG bytes of `image` with a `pHYs` chunk saying it is `dpi` dots per inch.
fn png_with_dpi(image: &RgbImage, dpi: f64) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgb8)
        .map_err(|e| internal_err!("cannot encode a PNG: {e}"))?;
    // pHYs: pixels per metre on x and y, unit 1 (metre); it must come before the image data, so it
    // goes right after IHDR (8-byte signature + 25-byte IHDR chunk).
    let per_metre = ((dpi / 0.0254).round() as u32).to_be_bytes();
    let mut body = b"pHYs".to_vec();
    body.extend(per_metre);
    body.extend(per_metre);
    body.push(1);
    let mut crc = flate2::Crc::new();
    crc.update(&body);
    let mut chunk = 9u32.to_be_bytes().to_vec();
    chunk.extend(&body);
    chunk.extend(crc.sum().to_be_bytes());
    png.splice(33..33, chunk);
    Ok(png)
}

/// One-page PDF of an SVG (in layout pixels), the page that size at 96 px per inch.
fn svg_to_pdf(svg: &str) -> Result<Vec<u8>> {
    let tree = parse_svg(svg)?;
    let page = svg2pdf::PageOptions { dpi: LAYOUT_DPI as f32 };
    svg2pdf::to_pdf(&tree, svg2pdf::ConversionOptions::default(), page)
        .map_err(|e| internal_err!("cannot convert a figure to PDF: {e}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks that `path` is a non-empty figure of its extension's format: a PNG of `png_size`
    /// pixels, an SVG whose root has `svg_size` as width and height, a PDF with one page.
    pub(crate) fn assert_figure(path: &Path, svg_size: (u32, u32), png_size: (u32, u32)) {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(bytes.len() > 100, "{}: only {} bytes", path.display(), bytes.len());
        match Format::of(path).unwrap() {
            Format::Png => {
                let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap();
                assert_eq!((img.width(), img.height()), png_size, "{}", path.display());
            }
            Format::Svg => {
                let text = String::from_utf8(bytes).unwrap();
                let root = text.find("<svg").map(|i| &text[i..]).unwrap();
                let root = &root[..root.find('>').unwrap()];
                assert!(root.contains(&format!("width=\"{}\"", svg_size.0)), "{root}");
                assert!(root.contains(&format!("height=\"{}\"", svg_size.1)), "{root}");
            }
            Format::Pdf => {
                assert!(bytes.starts_with(b"%PDF-"), "{}", path.display());
                let text = String::from_utf8_lossy(&bytes);
                assert_eq!(text.matches("/Type /Page\n").count() + text.matches("/Type /Page/").count(), 1);
            }
        }
    }

    #[test]
    fn a_figure_in_each_format() {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["png", "svg", "pdf", "PNG"] {
            let path = dir.path().join("sub").join(format!("f.{ext}"));
            let mut fig = Figure::new(&path, (192, 96)).unwrap().with_dpi(200.0).unwrap();
            {
                let root = fig.area().unwrap();
                root.draw(&Rectangle::new([(10, 10), (50, 50)], PALETTE[0].filled())).unwrap();
                root.draw(&Text::new("αᵢⱼ 0.5 − ×", (60, 30), font(14.0))).unwrap();
                root.present().unwrap();
            }
            fig.finish().unwrap();
            assert_figure(&path, (192, 96), (400, 200));
        }
        let png = std::fs::read(dir.path().join("sub/f.png")).unwrap();
        let at = png.windows(4).position(|w| w == b"pHYs").unwrap();
        assert_eq!(&png[at + 4..at + 8], &7874u32.to_be_bytes(), "200 dpi = 7874 px/m");
        for bad in ["f.jpg", "f"] {
            let e = Figure::new(&dir.path().join(bad), (10, 10)).unwrap_err();
            assert!(e.to_string().contains(".png, .svg or .pdf"), "{e}");
            assert_eq!(e.exit_code(), 2);
        }
        let e = Figure::new(&dir.path().join("f.png"), (100, 100)).unwrap().with_dpi(0.0).unwrap_err();
        assert!(e.to_string().contains("--dpi"), "{e}");
    }

    #[test]
    fn rasterised_text_and_shapes_land_where_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.svg");
        let mut fig = Figure::new(&path, (100, 50)).unwrap();
        {
            let root = fig.area().unwrap();
            root.draw(&Rectangle::new([(10, 10), (30, 40)], PALETTE[1].filled())).unwrap();
        }
        let svg = fig.svg.clone();
        let img = rasterize(&svg, LAYOUT_DPI).unwrap();
        assert_eq!(img.dimensions(), (100, 50));
        let c = PALETTE[1];
        assert_eq!(img.get_pixel(20, 20).0, [c.0, c.1, c.2]);
        assert_eq!(img.get_pixel(5, 5).0, [255, 255, 255]);
        assert_eq!(rasterize(&svg, 192.0).unwrap().dimensions(), (200, 100));
    }

    #[test]
    fn the_bundled_font_has_every_special_character_the_figures_use() {
        let face = ttf_parser::Face::parse(FONT_DATA, 0).unwrap();
        for c in "αᵢⱼ−×–·°".chars() {
            assert!(face.glyph_index(c).is_some(), "DejaVu Sans has no glyph for {c:?}");
        }
    }
}
