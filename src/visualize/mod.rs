//! Figures convtrain draws from trained models. Text is rendered with the DejaVu Sans font embedded
//! in the binary (assets/DejaVuSans.ttf, Bitstream Vera licence in assets/DejaVuSans-LICENSE.txt), so
//! images look the same on machines without system fonts.
pub mod lsm;

use plotters::style::{register_font, FontStyle};
use std::sync::Once;

/// The family name every figure asks plotters for.
pub const FONT: &str = "sans-serif";

static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Registers the embedded font with plotters as [`FONT`]; idempotent, call before drawing text.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        assert!(register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok(), "the embedded DejaVu Sans is a valid font");
    });
}
