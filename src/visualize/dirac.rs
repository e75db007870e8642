//! `convtrain visualize dirac`: the learned α (weight of the identity δ) and β (weight of the
//! normalised filter) of every Dirac convolution of a DiracNet, in depth order — the paper's question
//! of how much of each layer stays identity as the network gets deeper (diracnet.md §2.3–2.4). One
//! figure (PNG, SVG or PDF by the extension) with two panels; per layer the mean over output channels and the band from the smallest to the
//! largest channel value, group boundaries marked. α is taken over the channels that have an identity
//! path only (the first min(in, out); the others' α never gets a gradient).
use super::{draw_figure, draw_legend, font, series_color, DrawResult};
use crate::error::Result;
use crate::input_err;
use crate::models::diracnet::IdentityWeights;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// (min, mean, max) of a layer's values.
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (lo, values.iter().sum::<f64>() / values.len().max(1) as f64, hi)
}

/// One line per layer: `name  mean α [min, max]  mean β [min, max]`, for the terminal.
pub fn table(layers: &[IdentityWeights]) -> Vec<String> {
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let (a0, a, a1) = spread(&l.alpha);
            let (b0, b, b1) = spread(&l.beta);
            format!(
                "{:>3} {:<16} alpha {a:>8.4} [{a0:>8.4}, {a1:>8.4}]  beta {b:>8.4} [{b0:>8.4}, {b1:>8.4}]",
                i + 1,
                l.name
            )
        })
        .collect()
}

/// Size of the figure in layout pixels (1/96 inch).
const SIZE: (u32, u32) = (800, 560);

/// Draws the α and β panels of `layers` (depth order) into `out` (PNG at `dpi`, SVG or PDF),
/// titled `title`.
pub fn plot_identity_weights(layers: &[IdentityWeights], title: &str, out: &Path, dpi: f64) -> Result<()> {
    if layers.is_empty() {
        return Err(input_err!("no Dirac convolutions (groupG.blockB.alpha / .beta / .conv) to plot."));
    }
    draw_figure(out, SIZE, dpi, |root| draw(layers, title, root))
}

fn draw(layers: &[IdentityWeights], title: &str, root: &DrawingArea<SVGBackend, Shift>) -> DrawResult {
    let root = root.titled(title, font(15.0))?;
    let panels = root.split_evenly((2, 1));
    let n = layers.len() as f64;
    // Dashed lines between groups, each group named below its span.
    let boundaries: Vec<f64> =
        layers.windows(2).enumerate().filter(|(_, w)| w[0].group != w[1].group).map(|(i, _)| i as f64 + 1.5).collect();
    let mut group_spans: Vec<(usize, f64, f64)> = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let x = i as f64 + 1.0;
        match group_spans.last_mut() {
            Some((g, _, end)) if *g == l.group => *end = x,
            _ => group_spans.push((l.group, x, x)),
        }
    }
    type Pick = fn(&IdentityWeights) -> &Vec<f64>;
    let specs: [(&str, Pick, RGBColor); 2] = [
        ("α: weight of the identity (channels with an identity path)", |l| &l.alpha, series_color(0)),
        ("β: weight of normalize(W)", |l| &l.beta, series_color(1)),
    ];
    for (panel, (caption, pick, colour)) in panels.iter().zip(specs) {
        let stats: Vec<(f64, (f64, f64, f64))> =
            layers.iter().enumerate().map(|(i, l)| (i as f64 + 1.0, spread(pick(l)))).collect();
        let lo = stats.iter().map(|(_, s)| s.0).fold(f64::INFINITY, f64::min);
        let hi = stats.iter().map(|(_, s)| s.2).fold(f64::NEG_INFINITY, f64::max);
        let span = (hi - lo).max(1e-3 * hi.abs().max(1e-3));
        // Room at the bottom for the group names, at the top for the legend.
        let (y0, y1) = (lo - 0.16 * span, hi + 0.4 * span);
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, font(13.0))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(0.5..n + 0.5, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("Dirac convolution (depth order)")
            .x_labels(layers.len().min(40))
            .x_label_formatter(&|x| format!("{}", x.round() as i64))
            .y_label_formatter(&|y| format!("{y:.3}"))
            .label_style(font(11.0))
            .axis_desc_style(font(12.0))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(TRANSPARENT)
            .draw()?;
        for &x in &boundaries {
            chart.draw_series(DashedLineSeries::new([(x, y0), (x, y1)], 6, 4, BLACK.mix(0.4).stroke_width(1)))?;
        }
        let label_y = lo - 0.09 * span;
        chart.draw_series(group_spans.iter().map(|(g, a, b)| {
            let style = font(11.0).color(&BLACK.mix(0.7)).pos(Pos::new(HPos::Center, VPos::Center));
            Text::new(format!("group{g}"), ((a + b) / 2.0, label_y), style)
        }))?;
        let band: Vec<(f64, f64)> =
            stats.iter().map(|(x, s)| (*x, s.2)).chain(stats.iter().rev().map(|(x, s)| (*x, s.0))).collect();
        chart
            .draw_series(std::iter::once(Polygon::new(band, colour.mix(0.2).filled())))?
            .label("min–max over channels")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], colour.mix(0.2).filled()));
        chart
            .draw_series(LineSeries::new(stats.iter().map(|(x, s)| (*x, s.1)), colour.stroke_width(2)))?
            .label("mean over channels")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(stats.iter().map(|(x, s)| Circle::new((*x, s.1), 3, colour.filled())))?;
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::diracnet::identity_weights;
    use crate::models::{Model, ModelConfig};
    use crate::visualize::tests::assert_figure;

    #[test]
    fn plots_every_layer_of_a_diracnet() {
        tch::manual_seed(0);
        let m =
            Model::build(&ModelConfig { depth: Some(10), ..ModelConfig::new("diracnet", 10, 3, 32) }, tch::Device::Cpu)
                .unwrap();
        let layers = identity_weights(&m.named_variables()).unwrap();
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            ["group0.block0", "group0.block1", "group1.block0", "group1.block1", "group2.block0", "group2.block1"]
        );
        // The widening block 16 → 32 has 16 identity channels and 32 β.
        assert_eq!((layers[2].alpha.len(), layers[2].beta.len()), (16, 32));
        assert_eq!(spread(&layers[0].alpha), (1.0, 1.0, 1.0));
        assert!(table(&layers)[0].contains("group0.block0"));
        let dir = tempfile::tempdir().unwrap();
        for ext in ["png", "svg", "pdf"] {
            let out = dir.path().join("sub").join(format!("dirac.{ext}"));
            plot_identity_weights(&layers, "DiracNet-10-1", &out, 192.0).unwrap();
            assert_figure(&out, SIZE, (2 * SIZE.0, 2 * SIZE.1));
        }
        assert!(plot_identity_weights(&[], "none", &dir.path().join("none.png"), 96.0).is_err());
    }
}
