//! `convtrain visualize sweep DIR`: pictures of a sweep's `results.csv`.
//!
//! A VGG feature-amount sweep gets the paper's views (vgg_features.md §2, §6): best test accuracy
//! against the skew-normal location ξ, one panel per scale ω, coloured by the shape α
//! (`accuracy_vs_xi.png`); accuracy against the parameter count, coloured by ξ
//! (`accuracy_vs_parameters.png`); and the per-layer widths of the best and worst variants against
//! VGG-D's (`width_profiles.png`). A grid sweep gets accuracy against each swept setting
//! (`accuracy_by_setting.png`). Both get `explorer.html`, a self-contained page in the manner of the
//! authors' plot.ly explorer (§7): a scatter — rotatable in 3-D, by default over (ξ, ω, α) coloured by
//! accuracy — whose points show their variant (settings, accuracies, width profile) on hover. The
//! columns are the original's (§5.1), so the original's own CSV files can be shown too.
use super::{draw_figure, draw_legend, font, series_color, viridis, DrawResult};
use crate::error::{to_json, IoContext, Result};
use crate::input_err;
use crate::models::vgg_features::base_widths;
use crate::sweep::results::read_csv;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// A results CSV: its header and rows as text.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepTable {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One VGG variant's numbers, for the pictures.
#[derive(Debug, Clone, PartialEq)]
struct VariantRow {
    id: String,
    xi: f64,
    omega: f64,
    alpha: f64,
    parameters: f64,
    widths: Vec<f64>,
    best_val: f64,
    best_train: Option<f64>,
    aborted: bool,
}

impl SweepTable {
    /// Reads `<dir>/results.csv`, or the CSV file given.
    pub fn read(path: &Path) -> Result<SweepTable> {
        let file = if path.is_dir() { path.join("results.csv") } else { path.to_path_buf() };
        if !file.is_file() {
            return Err(input_err!(
                "{}: no results.csv; give a sweep directory whose results are merged (convtrain sweep collect DIR) or a results CSV.",
                path.display()
            ));
        }
        let (header, rows) = read_csv(&file)?;
        if !header.iter().any(|h| h == "BestVal") {
            return Err(input_err!("{}: no BestVal column; this is not a sweep's results file.", file.display()));
        }
        Ok(SweepTable { header, rows })
    }

    fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    fn number(&self, row: &[String], name: &str) -> Option<f64> {
        self.col(name).and_then(|i| row.get(i)).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite())
    }

    fn text<'a>(&self, row: &'a [String], name: &str) -> &'a str {
        self.col(name).and_then(|i| row.get(i)).map_or("", String::as_str)
    }

    /// The point's own columns: those between the id and the metrics.
    fn label_columns(&self) -> Vec<String> {
        let end = self.col("BestVal").unwrap_or(self.header.len());
        self.header[..end].iter().filter(|h| !h.is_empty() && *h != "id").cloned().collect()
    }

    fn is_vgg(&self) -> bool {
        ["Filters", "Parameters", "Mean", "Variance", "Skew"].iter().all(|c| self.col(c).is_some())
    }

    /// The VGG variants that have a best accuracy.
    fn variants(&self) -> Vec<VariantRow> {
        self.rows
            .iter()
            .filter_map(|r| {
                Some(VariantRow {
                    id: self.text(r, "id").to_string(),
                    xi: self.number(r, "Mean")?,
                    omega: self.number(r, "Variance")?,
                    alpha: self.number(r, "Skew")?,
                    parameters: self.number(r, "Parameters")?,
                    widths: parse_list(self.text(r, "Filters")),
                    best_val: self.number(r, "BestVal")?,
                    best_train: self.number(r, "BestValsTrain"),
                    aborted: self.text(r, "status") == "aborted",
                })
            })
            .collect()
    }
}

/// `[823.0, 961.0, …]` → numbers.
fn parse_list(s: &str) -> Vec<f64> {
    s.trim().trim_start_matches('[').trim_end_matches(']').split(',').filter_map(|v| v.trim().parse().ok()).collect()
}

/// Blue (−1) through grey (0) to red (+1), for the shape α (the grey stays visible on white).
fn diverging(v: f64) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    let (end, t) = if v < 0.0 { ((33.0, 102.0, 172.0), -v) } else { ((178.0, 24.0, 43.0), v) };
    let mix = |e: f64| (200.0 + (e - 200.0) * t).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// conv1_1 … conv5_L, fc1, fc2 for `n` widths.
fn layer_names(n: usize) -> Vec<String> {
    let l = n.saturating_sub(6) / 3;
    let mut names = Vec::new();
    for (block, convs) in [2, 2, l, l, l].into_iter().enumerate() {
        names.extend((1..=convs).map(|i| format!("conv{}_{i}", block + 1)));
    }
    names.extend(["fc1".to_string(), "fc2".to_string()]);
    names.truncate(n);
    names
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo.is_finite() {
        (lo, hi.max(lo + 1e-9))
    } else {
        (0.0, 1.0)
    }
}

/// An accuracy axis a little wider than the values.
fn accuracy_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = range(values);
    let pad = ((hi - lo) * 0.08).max(0.5);
    ((lo - pad).max(0.0), (hi + pad).min(100.0).max(lo + pad))
}

/// A vertical colour bar for `colour` over [0, 1], labelled `lo`..`hi`, at the right of `area`.
fn colour_bar(
    area: &DrawingArea<SVGBackend, Shift>,
    title: &str,
    lo: f64,
    hi: f64,
    colour: &dyn Fn(f64) -> RGBColor,
) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    let (x, top, bottom) = (w as i32 - 70, 70, h as i32 - 60);
    area.draw(&Text::new(title.to_string(), (x - 10, top - 30), font(18.0)))?;
    for y in top..bottom {
        let v = 1.0 - (y - top) as f64 / (bottom - top) as f64;
        area.draw(&Rectangle::new([(x, y), (x + 18, y + 1)], colour(v).filled()))?;
    }
    area.draw(&Text::new(format!("{hi:.1}"), (x + 22, top - 6), font(14.0)))?;
    area.draw(&Text::new(format!("{lo:.1}"), (x + 22, bottom - 8), font(14.0)))?;
    Ok(())
}

/// Which accuracy a figure shows.
#[derive(Clone, Copy)]
enum Metric {
    /// The best test top-1 (BestVal).
    Test,
    /// The train top-1 of the best epoch (BestValsTrain), as the authors' "training accuracies" plots.
    Train,
}

impl Metric {
    fn of(self, v: &VariantRow) -> Option<f64> {
        match self {
            Metric::Test => Some(v.best_val),
            Metric::Train => v.best_train,
        }
    }
}

/// The accuracy axis of the VGG figures: the range of the variants that were not aborted (aborted
/// ones, near chance, are drawn as × on the lower edge rather than squeezing the rest).
fn variant_accuracy_range(variants: &[VariantRow], metric: Metric) -> (f64, f64) {
    let only_aborted = variants.iter().all(|v| v.aborted);
    accuracy_range(variants.iter().filter(|v| only_aborted || !v.aborted).filter_map(|v| metric.of(v)))
}

fn accuracy_vs_xi(variants: &[VariantRow], metric: Metric, out: &Path, dpi: f64) -> Result<()> {
    let mut omegas: Vec<f64> = variants.iter().map(|v| v.omega).collect();
    omegas.sort_by(f64::total_cmp);
    omegas.dedup();
    let cols = omegas.len().clamp(1, 4);
    let rows = omegas.len().div_ceil(cols).max(1);
    let (panel_w, panel_h) = (420u32, 360u32);
    draw_figure(out, (panel_w * cols as u32 + 110, panel_h * rows as u32 + 70), dpi, |root| {
        root.fill(&WHITE)?;
        let (title, body) = root.split_vertically(70);
        let what = match metric {
            Metric::Test => "Best test top-1",
            Metric::Train => "Train top-1 at the best test epoch",
        };
        // Two lines, so that one panel's width holds the title.
        title.draw(&Text::new(format!("{what} against ξ (location)"), (20, 14), font(17.0)))?;
        title.draw(&Text::new("one panel per ω (scale), colour α (shape); ×: aborted", (20, 40), font(14.0)))?;
        let (panels, bar) = body.split_horizontally(panel_w * cols as u32);
        let alpha_max = variants.iter().map(|v| v.alpha.abs()).fold(1e-9, f64::max);
        colour_bar(&bar, "α", -alpha_max, alpha_max, &|v| diverging(2.0 * v - 1.0))?;
        let xi_max = variants.iter().map(|v| v.xi).fold(1.0, f64::max);
        let (lo, hi) = variant_accuracy_range(variants, metric);
        for (panel, omega) in panels.split_evenly((rows, cols)).iter().zip(&omegas) {
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("ω = {omega}"), font(18.0))
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(48)
                .build_cartesian_2d(-0.5..xi_max + 0.5, lo..hi)?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| format!("{y:.1}"))
                .x_desc("ξ")
                .y_desc("top-1 %")
                .label_style(font(13.0))
                .draw()?;
            let here: Vec<(&VariantRow, f64)> =
                variants.iter().filter(|v| v.omega == *omega).filter_map(|v| Some((v, metric.of(v)?))).collect();
            chart.draw_series(here.iter().filter(|(v, _)| !v.aborted).map(|(v, acc)| {
                EmptyElement::at((v.xi, *acc))
                    + Circle::new((0, 0), 5, diverging(v.alpha / alpha_max).filled())
                    + Circle::new((0, 0), 5, BLACK.mix(0.6))
            }))?;
            chart.draw_series(
                here.iter()
                    .filter(|(v, _)| v.aborted)
                    .map(|(v, acc)| Cross::new((v.xi, acc.max(lo)), 6, BLACK.stroke_width(2))),
            )?;
        }
        root.present()?;
        Ok(())
    })
}

fn accuracy_vs_parameters(variants: &[VariantRow], out: &Path, dpi: f64) -> Result<()> {
    draw_figure(out, (1000, 640), dpi, |root| {
        root.fill(&WHITE)?;
        let (plot, bar) = root.split_horizontally(900);
        let xi_max = variants.iter().map(|v| v.xi).fold(1e-9, f64::max);
        colour_bar(&bar, "ξ", 0.0, xi_max, &viridis)?;
        let (plo, phi) = range(variants.iter().map(|v| v.parameters / 1e6));
        // Enough decimals that ~5 ticks over the span read apart (13.77 … 13.84 M, not 14 … 14).
        let decimals = (-((phi - plo) / 5.0).log10()).ceil().clamp(0.0, 6.0) as usize;
        let pad = (phi - plo) * 0.05 + 0.1;
        let (lo, hi) = variant_accuracy_range(variants, Metric::Test);
        let mut chart = ChartBuilder::on(&plot)
            .caption("Best test top-1 against the parameter count, colour ξ; ×: aborted", font(22.0))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(plo - pad..phi + pad, lo..hi)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_label_formatter(&|x| format!("{x:.decimals$}"))
            .x_desc("parameters (millions, the original's count)")
            .y_desc("top-1 %")
            .label_style(font(14.0))
            .draw()?;
        chart.draw_series(variants.iter().filter(|v| !v.aborted).map(|v| {
            EmptyElement::at((v.parameters / 1e6, v.best_val))
                + Circle::new((0, 0), 5, viridis(v.xi / xi_max).filled())
                + Circle::new((0, 0), 5, BLACK.mix(0.5))
        }))?;
        chart.draw_series(
            variants
                .iter()
                .filter(|v| v.aborted)
                .map(|v| Cross::new((v.parameters / 1e6, v.best_val), 6, BLACK.stroke_width(2))),
        )?;
        root.present()?;
        Ok(())
    })
}

fn width_profiles(variants: &[VariantRow], out: &Path, dpi: f64) -> Result<()> {
    let mut ranked: Vec<&VariantRow> = variants.iter().filter(|v| !v.widths.is_empty()).collect();
    ranked.sort_by(|a, b| b.best_val.total_cmp(&a.best_val));
    let n = ranked.iter().map(|v| v.widths.len()).max().unwrap_or(0);
    // VGG-D's (the unmodified VGG of that depth at 32×32, the original's count: §2.1).
    let reference: Vec<f64> =
        base_widths(n + 1, 32).map(|w| w.into_iter().map(|x| x as f64).collect()).unwrap_or_default();
    let names = layer_names(n);
    let top = ranked.iter().take(3).enumerate().map(|(i, v)| (*v, i, true));
    let bottom =
        ranked.iter().rev().take(3.min(ranked.len().saturating_sub(3))).enumerate().map(|(i, v)| (*v, i, false));
    let picked: Vec<(&VariantRow, usize, bool)> = top.chain(bottom).collect();
    let w_max = picked
        .iter()
        .flat_map(|(v, _, _)| v.widths.iter().copied())
        .chain(reference.iter().copied())
        .fold(1.0, f64::max);
    draw_figure(out, (1200, 640), dpi, |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption("Features per layer: the best and worst variants against VGG-D", font(22.0))
            .margin(16)
            .x_label_area_size(70)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.3..(n as f64 - 0.7).max(0.7), 0.0..w_max * 1.08)?;
        chart
            .configure_mesh()
            .x_labels(n.max(2))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .light_line_style(WHITE)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .y_desc("features (channels / units)")
            .label_style(font(14.0))
            .draw()?;
        let line = |widths: &[f64]| widths.iter().enumerate().map(|(i, w)| (i as f64, *w)).collect::<Vec<_>>();
        chart
            .draw_series(LineSeries::new(line(&reference), BLACK.stroke_width(3)))?
            .label("VGG-D")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(3)));
        let greens = [RGBColor(0, 110, 40), RGBColor(60, 160, 80), RGBColor(130, 200, 140)];
        let reds = [RGBColor(180, 20, 30), RGBColor(220, 90, 80), RGBColor(240, 150, 140)];
        for (v, rank, best) in picked {
            let colour = if best { greens[rank] } else { reds[rank] };
            let width = if rank == 0 { 3 } else { 2 };
            chart
                .draw_series(LineSeries::new(line(&v.widths), colour.stroke_width(width)))?
                .label(format!(
                    "{} #{}: ξ={} ω={} α={}  {:.2}%",
                    if best { "best" } else { "worst" },
                    v.id,
                    v.xi,
                    v.omega,
                    v.alpha,
                    v.best_val
                ))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(width)));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperMiddle)?;
        root.present()?;
        Ok(())
    })
}

fn accuracy_by_setting(table: &SweepTable, out: &Path, dpi: f64) -> Result<()> {
    let keys = table.label_columns();
    let rows: Vec<&Vec<String>> = table.rows.iter().filter(|r| table.number(r, "BestVal").is_some()).collect();
    let (lo, hi) = accuracy_range(rows.iter().map(|r| table.number(r, "BestVal").unwrap_or(0.0)));
    let panel_w = 460u32;
    draw_figure(out, (panel_w * keys.len().max(1) as u32, 460), dpi, |root| {
        root.fill(&WHITE)?;
        for (panel, key) in root.split_evenly((1, keys.len().max(1))).iter().zip(&keys) {
            let mut values: Vec<&str> = rows.iter().map(|r| table.text(r, key)).collect();
            values.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => a.cmp(b),
            });
            values.dedup();
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("best top-1 by {key}"), font(18.0))
                .margin(14)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(-0.5..values.len() as f64 - 0.5, lo..hi)?;
            chart
                .configure_mesh()
                .x_labels(values.len().max(2))
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 {
                        values.get(i as usize).map(|s| s.to_string()).unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .light_line_style(WHITE)
                .x_desc(key.as_str())
                .y_desc("top-1 %")
                .label_style(font(13.0))
                .draw()?;
            chart.draw_series(rows.iter().filter_map(|r| {
                let x = values.iter().position(|v| *v == table.text(r, key))? as f64;
                Some(Circle::new((x, table.number(r, "BestVal")?), 5, series_color(0).mix(0.8).filled()))
            }))?;
            let means = values.iter().enumerate().filter_map(|(i, v)| {
                let acc: Vec<f64> = rows
                    .iter()
                    .filter(|r| table.text(r, key) == *v)
                    .filter_map(|r| table.number(r, "BestVal"))
                    .collect();
                (!acc.is_empty()).then(|| (i as f64, acc.iter().sum::<f64>() / acc.len() as f64))
            });
            chart.draw_series(LineSeries::new(means, BLACK.stroke_width(2)))?;
        }
        root.present()?;
        Ok(())
    })
}

/// Writes the pictures and `explorer.html` of `table` into `out_dir`; returns the files written.
pub fn write_sweep_pictures(table: &SweepTable, title: &str, out_dir: &Path, dpi: f64) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir).at(out_dir)?;
    let mut written = Vec::new();
    let mut draw = |name: &str, f: &dyn Fn(&Path) -> Result<()>| -> Result<()> {
        let path = out_dir.join(name);
        f(&path)?;
        written.push(path);
        Ok(())
    };
    if table.is_vgg() {
        let variants = table.variants();
        if variants.is_empty() {
            return Err(input_err!("{title}: no variant has a BestVal yet; nothing to draw."));
        }
        draw("accuracy_vs_xi.png", &|p| accuracy_vs_xi(&variants, Metric::Test, p, dpi))?;
        draw("train_accuracy_vs_xi.png", &|p| accuracy_vs_xi(&variants, Metric::Train, p, dpi))?;
        draw("accuracy_vs_parameters.png", &|p| accuracy_vs_parameters(&variants, p, dpi))?;
        draw("width_profiles.png", &|p| width_profiles(&variants, p, dpi))?;
    } else {
        draw("accuracy_by_setting.png", &|p| accuracy_by_setting(table, p, dpi))?;
    }
    let html = out_dir.join("explorer.html");
    std::fs::write(&html, explorer_html(table, title)?).at(&html)?;
    written.push(html);
    Ok(written)
}

/// The explorer page: the table as JSON (numbers where a column's cells are numbers), the axes to
/// start with, and the script that draws it.
fn explorer_html(table: &SweepTable, title: &str) -> Result<String> {
    let numeric: Vec<bool> = (0..table.header.len())
        .map(|i| {
            table.rows.iter().any(|r| r[i].parse::<f64>().is_ok())
                && table.rows.iter().all(|r| r[i].is_empty() || r[i].parse::<f64>().is_ok())
        })
        .collect();
    let rows: Vec<Vec<serde_json::Value>> = table
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(&numeric)
                .map(|(cell, &num)| match (num, cell.parse::<f64>()) {
                    (true, Ok(v)) if v.is_finite() => serde_json::json!(v),
                    (true, _) => serde_json::Value::Null,
                    (false, _) => serde_json::json!(cell),
                })
                .collect()
        })
        .collect();
    let labels = table.label_columns();
    let (x, y, z) = if table.is_vgg() {
        ("Mean", "Variance", "Skew")
    } else {
        (labels.first().map_or("id", String::as_str), "BestVal", labels.get(1).map_or("", String::as_str))
    };
    let data = serde_json::json!({
        "title": title,
        "columns": table.header,
        "numeric": numeric,
        "rows": rows,
        "axes": {"x": x, "y": y, "z": z, "colour": "BestVal"},
        "names": {"Mean": "ξ (Mean)", "Variance": "ω (Variance)", "Skew": "α (Skew)"},
        "widths": if table.is_vgg() { "Filters" } else { "" },
    });
    // `</` cannot appear inside a script element.
    let json = to_json(&data, "the explorer data")?.replace("</", "<\\/");
    Ok(EXPLORER.replace("__TITLE__", &html_escape(title)).replace("__DATA__", &json))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const EXPLORER: &str = r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body { font-family: sans-serif; margin: 16px; color: #222; }
#controls label { margin-right: 14px; }
#plot { border: 1px solid #ccc; cursor: grab; user-select: none; }
#tip { position: fixed; display: none; background: #fff; border: 1px solid #888; padding: 6px 8px;
       font-size: 12px; pointer-events: none; box-shadow: 2px 2px 6px rgba(0,0,0,.2); max-width: 420px; }
#tip td { padding: 0 6px 0 0; vertical-align: top; }
.note { color: #666; font-size: 13px; }
</style></head><body>
<h2>__TITLE__</h2>
<div id="controls"></div>
<p class="note">Hover a point for its run; with a third axis, drag to rotate.</p>
<svg id="plot" width="920" height="640"></svg>
<div id="tip"></div>
<script>
const D = __DATA__;
const W = 920, H = 640, NS = "http://www.w3.org/2000/svg";
const svg = document.getElementById("plot"), tip = document.getElementById("tip");
const col = n => D.columns.indexOf(n);
const numericCols = D.columns.filter((c, i) => D.numeric[i] && c !== "");
const nameOf = c => D.names[c] || c;
let axes = Object.assign({}, D.axes), yaw = -0.6, pitch = 0.35;
function select(key, allowNone) {
  const label = document.createElement("label");
  label.textContent = key + " ";
  const s = document.createElement("select");
  (allowNone ? [""] : []).concat(numericCols).forEach(c => {
    const o = document.createElement("option"); o.value = c; o.textContent = c ? nameOf(c) : "(none)";
    if (c === axes[key]) o.selected = true; s.appendChild(o);
  });
  s.onchange = () => { axes[key] = s.value; draw(); };
  label.appendChild(s); document.getElementById("controls").appendChild(label);
}
select("x", false); select("y", false); select("z", true); select("colour", false);
const VIR = [[68,1,84],[70,50,127],[54,92,141],[39,127,143],[31,162,136],[74,194,110],[160,219,57],[254,232,37]];
function viridis(t) {
  t = Math.max(0, Math.min(1, t)) * (VIR.length - 1);
  const i = Math.min(Math.floor(t), VIR.length - 2), f = t - i, a = VIR[i], b = VIR[i + 1];
  return "rgb(" + [0, 1, 2].map(k => Math.round(a[k] + (b[k] - a[k]) * f)).join(",") + ")";
}
// Ranges over the points that trained to the end where there are any (aborted ones sit near chance).
const finished = D.rows.filter(r => col("status") < 0 || r[col("status")] === "finished");
const ranged = finished.length ? finished : D.rows;
function extent(c) {
  const v = ranged.map(r => r[col(c)]).filter(x => typeof x === "number");
  let lo = Math.min(...v), hi = Math.max(...v);
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (hi === lo) { lo -= 0.5; hi += 0.5; }
  return [lo, hi];
}
function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  svg.appendChild(e); return e;
}
const fmt = v => typeof v !== "number" ? v : Number.isInteger(v) ? v.toLocaleString("en-US") : +v.toFixed(3);
function showTip(ev, r) {
  let h = "<table>";
  D.columns.forEach((c, i) => {
    if (c === "" || c === "AllTrain" || c === "AllVal" || c === D.widths) return;
    h += "<tr><td><b>" + nameOf(c) + "</b></td><td>" + String(fmt(r[i])).replace(/</g, "&lt;") + "</td></tr>";
  });
  h += "</table>";
  if (D.widths) {
    const w = String(r[col(D.widths)]).replace(/[\[\]]/g, "").split(",").map(Number).filter(isFinite);
    const m = Math.max(...w, 1), bw = Math.max(3, Math.floor(300 / Math.max(w.length, 1)));
    h += "<div>features per layer</div><svg width='" + (bw * w.length) + "' height='70'>" +
      w.map((x, i) => "<rect x='" + i * bw + "' y='" + (70 - 66 * x / m) + "' width='" + (bw - 1) +
        "' height='" + (66 * x / m) + "' fill='#3b6'><title>" + x + "</title></rect>").join("") + "</svg>";
  }
  tip.innerHTML = h; tip.style.display = "block";
  tip.style.left = (ev.clientX + 14) + "px"; tip.style.top = (ev.clientY + 10) + "px";
}
function draw() {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const three = axes.z !== "";
  const ex = extent(axes.x), ey = extent(axes.y), ez = three ? extent(axes.z) : [0, 1], ec = extent(axes.colour);
  const norm = (v, e) => Math.max(-1.05, Math.min(1.05, 2 * (v - e[0]) / (e[1] - e[0]) - 1));
  const pts = D.rows.map(r => [r[col(axes.x)], r[col(axes.y)], three ? r[col(axes.z)] : 0, r[col(axes.colour)], r])
    .filter(p => typeof p[0] === "number" && typeof p[1] === "number" && (!three || typeof p[2] === "number"));
  let project;
  if (three) {
    const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch), s = 210;
    project = (x, y, z) => { // x, y, z in [-1, 1]; y is up
      const x1 = cy * x + sy * z, z1 = -sy * x + cy * z, y1 = cp * y - sp * z1, z2 = sp * y + cp * z1;
      return [W / 2 - 40 + s * x1, H / 2 - s * y1, z2];
    };
    const corners = [-1, 1];
    for (const a of corners) for (const b of corners) {
      [[[-1, a, b], [1, a, b]], [[a, -1, b], [a, 1, b]], [[a, b, -1], [a, b, 1]]].forEach(([p, q]) => {
        const P = project(...p), Q = project(...q);
        el("line", {x1: P[0], y1: P[1], x2: Q[0], y2: Q[1], stroke: "#ddd"});
      });
    }
    [[axes.x, [1.15, -1, -1], ex], [axes.y, [-1, 1.12, -1], ey], [axes.z, [-1, -1, 1.15], ez]].forEach(([c, p, e]) => {
      const P = project(...p);
      el("text", {x: P[0], y: P[1], "font-size": 14, "text-anchor": "middle"}, nameOf(c) + " [" + fmt(e[0]) + ", " + fmt(e[1]) + "]");
    });
  } else {
    const L = 70, R = W - 130, T = 20, B = H - 60;
    project = (x, y) => [L + (x + 1) / 2 * (R - L), B - (y + 1) / 2 * (B - T), 0];
    el("line", {x1: L, y1: B, x2: R, y2: B, stroke: "#888"}); el("line", {x1: L, y1: B, x2: L, y2: T, stroke: "#888"});
    for (let i = 0; i <= 5; i++) {
      const fx = ex[0] + (ex[1] - ex[0]) * i / 5, fy = ey[0] + (ey[1] - ey[0]) * i / 5;
      const px = L + (R - L) * i / 5, py = B - (B - T) * i / 5;
      el("text", {x: px, y: B + 18, "font-size": 12, "text-anchor": "middle"}, fmt(fx));
      el("text", {x: L - 6, y: py + 4, "font-size": 12, "text-anchor": "end"}, fmt(fy));
    }
    el("text", {x: (L + R) / 2, y: H - 16, "font-size": 14, "text-anchor": "middle"}, nameOf(axes.x));
    el("text", {x: 16, y: (T + B) / 2, "font-size": 14, transform: "rotate(-90 16 " + (T + B) / 2 + ")", "text-anchor": "middle"}, nameOf(axes.y));
  }
  const placed = pts.map(p => [project(norm(p[0], ex), norm(p[1], ey), three ? norm(p[2], ez) : 0), p]);
  placed.sort((a, b) => a[0][2] - b[0][2]);
  placed.forEach(([q, p]) => {
    const c = typeof p[3] === "number" ? viridis((p[3] - ec[0]) / (ec[1] - ec[0])) : "#bbb";
    const dot = el("circle", {cx: q[0], cy: q[1], r: 6, fill: c, stroke: "#333", "stroke-width": 0.6});
    dot.addEventListener("mousemove", ev => showTip(ev, p[4]));
    dot.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  });
  for (let i = 0; i < 100; i++) el("rect", {x: W - 60, y: 60 + 4 * (99 - i), width: 18, height: 4, fill: viridis(i / 99)});
  el("text", {x: W - 70, y: 48, "font-size": 13}, nameOf(axes.colour));
  el("text", {x: W - 38, y: 68, "font-size": 12}, fmt(ec[1]));
  el("text", {x: W - 38, y: 460, "font-size": 12}, fmt(ec[0]));
}
let drag = null;
svg.addEventListener("mousedown", ev => { if (axes.z !== "") drag = [ev.clientX, ev.clientY, yaw, pitch]; });
window.addEventListener("mouseup", () => { drag = null; });
window.addEventListener("mousemove", ev => {
  if (!drag) return;
  yaw = drag[2] + (ev.clientX - drag[0]) * 0.01;
  pitch = Math.max(-1.5, Math.min(1.5, drag[3] + (ev.clientY - drag[1]) * 0.01));
  draw();
});
draw();
</script></body></html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    fn vgg_table() -> SweepTable {
        let header = "id,Filters,Parameters,Mean,Variance,Skew,BestVal,BestValsTrain,BestEpoch,LastValPrec,LastTrainPrec,AllTrain,AllVal,status";
        let row = |id: usize, xi: f64, omega: f64, alpha: f64, acc: f64, status: &str| {
            let widths =
                (0..15).map(|i| format!("{:.1}", 10.0 + (i as f64 - xi).abs() * 30.0)).collect::<Vec<_>>().join(", ");
            vec![
                id.to_string(),
                format!("[{widths}]"),
                format!("{}", 1e7 + id as f64 * 1e5),
                xi.to_string(),
                omega.to_string(),
                alpha.to_string(),
                acc.to_string(),
                (acc + 3.0).to_string(),
                "4".into(),
                acc.to_string(),
                acc.to_string(),
                "[1.0]".into(),
                "[1.0]".into(),
                status.into(),
            ]
        };
        SweepTable {
            header: header.split(',').map(str::to_string).collect(),
            rows: vec![
                row(1, 0.0, 4.0, 8.0, 91.5, "finished"),
                row(2, 0.0, 4.5, 12.0, 92.0, "finished"),
                row(3, 7.0, 2.0, 0.0, 90.0, "finished"),
                row(4, 15.0, 4.0, -40.0, 19.0, "aborted"),
                row(5, 14.0, 5.5, -4.0, 88.0, "finished"),
            ],
        }
    }

    #[test]
    fn vgg_results_give_the_three_figures_and_the_explorer() {
        let d = tempfile::tempdir().unwrap();
        let files = write_sweep_pictures(&vgg_table(), "test </script> sweep", d.path(), 96.0).unwrap();
        let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().to_string()).collect();
        assert_eq!(
            names,
            [
                "accuracy_vs_xi.png",
                "train_accuracy_vs_xi.png",
                "accuracy_vs_parameters.png",
                "width_profiles.png",
                "explorer.html"
            ]
        );
        for f in &files[..4] {
            let img = image::open(f).unwrap();
            assert!(img.width() >= 900 && img.height() >= 400, "{}: {}x{}", f.display(), img.width(), img.height());
        }
        let html = std::fs::read_to_string(&files[4]).unwrap();
        assert!(html.contains(r#""x":"Mean","y":"Variance","z":"Skew""#), "{html}");
        assert!(!html.contains(" src=") && !html.contains("https://"), "self-contained");
        assert_eq!(html.matches("</script>").count(), 1, "the title cannot close the script");
    }

    #[test]
    fn helpers() {
        assert_eq!(parse_list("[823.0, 961.0]"), vec![823.0, 961.0]);
        assert_eq!(
            layer_names(12)[4..],
            ["conv3_1", "conv3_2", "conv4_1", "conv4_2", "conv5_1", "conv5_2", "fc1", "fc2"]
        );
        assert_eq!(diverging(0.0), RGBColor(200, 200, 200));
    }
}
