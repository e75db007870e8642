//! Pictures: training curves, SWRN layer-similarity maps, checkered sampling patterns, DiracNet α/β,
//! sweep results.
pub mod checkered;
pub mod curves;
pub mod dirac;
pub mod lsm;
pub mod sweep;

use crate::error::Result;
use crate::{input_err, internal_err};
use plotters::style::RGBColor;

/// Registers the bundled DejaVu Sans (assets/, Bitstream Vera licence) as plotters' "sans-serif", so
/// plots render the same on every machine without system fonts.
pub fn register_font() -> Result<()> {
    static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE
        .get_or_init(|| plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(internal_err!("the bundled font assets/DejaVuSans.ttf could not be loaded"))
    }
}

/// Turns a plotters drawing error into ours, naming the output file.
pub fn draw_err<E: std::fmt::Display>(path: &std::path::Path) -> impl Fn(E) -> crate::Error + '_ {
    move |e| input_err!("{}: cannot draw the picture ({e}).", path.display())
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

/// Draws a chart's series legend as every plot here does: white box at `position`, black border,
/// 13-pixel labels.
pub fn draw_legend<'a, DB, CT>(
    chart: &mut plotters::chart::ChartContext<'a, DB, CT>,
    position: plotters::chart::SeriesLabelPosition,
) -> std::result::Result<(), plotters::drawing::DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: plotters::prelude::DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    use plotters::style::{Color, BLACK, WHITE};
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
}
