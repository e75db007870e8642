//! Pictures: training curves, SWRN layer-similarity maps, checkered sampling patterns, DiracNet α/β.
pub mod checkered;
pub mod curves;
pub mod dirac;
pub mod lsm;

use crate::error::Result;
use crate::{input_err, internal_err};

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
