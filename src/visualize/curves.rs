//! `convtrain visualize curves RUN…`: loss and top-1 per epoch of one or several runs, from their
//! `log.csv`, as one PNG with two panels.
use super::{draw_err, draw_legend, register_font};
use crate::error::Result;
use crate::input_err;
use crate::train::log::{read_rows, EpochRow};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Reads each run's log; the error names a directory without one.
pub fn load_runs(runs: &[PathBuf]) -> Result<Vec<(String, Vec<EpochRow>)>> {
    if runs.is_empty() {
        return Err(input_err!("visualize curves: give at least one run directory."));
    }
    runs.iter()
        .map(|r| {
            let log = r.join("log.csv");
            if !log.is_file() {
                return Err(input_err!("{}: no log.csv here; give convtrain run directories.", r.display()));
            }
            let name =
                r.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| r.display().to_string());
            Ok((name, read_rows(&log)?))
        })
        .collect()
}

/// Draws the two panels (loss, accuracy) into `out`.
pub fn plot_curves(runs: &[(String, Vec<EpochRow>)], out: &Path) -> Result<()> {
    register_font()?;
    let err = draw_err(out);
    let root = BitMapBackend::new(out, (1200, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let panels = root.split_evenly((1, 2));
    let max_epoch = runs.iter().flat_map(|(_, r)| r.iter().map(|x| x.epoch)).max().unwrap_or(1).max(2) as f64;
    type Pick = fn(&EpochRow) -> f64;
    type Panel<'a> = (&'a str, &'a str, [(&'a str, Pick); 2]);
    let specs: [Panel; 2] = [
        ("loss", "cross-entropy", [("train", |r| r.train_loss), ("val", |r| r.val_loss)]),
        ("top-1 accuracy", "%", [("train", |r| r.train_top1), ("val", |r| r.val_top1)]),
    ];
    for (panel, (title, ylabel, series)) in panels.iter().zip(specs) {
        let mut values = Vec::new();
        for (_, rows) in runs {
            for r in rows {
                values.extend(series.iter().map(|(_, f)| f(r)).filter(|v| v.is_finite()));
            }
        }
        let lo = values.iter().cloned().fold(f64::INFINITY, f64::min).min(0.0);
        let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max).max(lo + 1e-6) * 1.05;
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 24))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1.0..max_epoch, lo..hi)
            .map_err(&err)?;
        chart.configure_mesh().x_desc("epoch").y_desc(ylabel).label_style(("sans-serif", 14)).draw().map_err(&err)?;
        for (i, (name, rows)) in runs.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            for (s, (split, f)) in series.iter().enumerate() {
                let style = if s == 0 { color.stroke_width(1) } else { color.stroke_width(3) };
                chart
                    .draw_series(LineSeries::new(rows.iter().map(|r| (r.epoch as f64, f(r))), style))
                    .map_err(&err)?
                    .label(format!("{name} {split}"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(if s == 0 { 1 } else { 3 }))
                    });
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::MiddleRight).map_err(&err)?;
    }
    root.present().map_err(&err)?;
    Ok(())
}
