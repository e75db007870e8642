//! `convtrain visualize curves RUN…`: loss, top-1 (accuracy or error) and learning rate per epoch of
//! one or several runs, from their `log.csv`: three panels side by side, the legend below them.
//!
//! Each run has one colour ([`series_color`]); validation is a solid line with filled markers,
//! training a dashed line with hollow markers; the lr panel has one step line per run (the lr of
//! epoch e held over (e − 1, e], epoch e being plotted where it ends). Markers are
//! drawn at every epoch while the longest run has at most [`MARKER_EPOCHS`] (so a 1-epoch run shows
//! as points). The y-axes fit the data (6 % padding, kept inside [0, 100] for percentages and ≥ 0
//! for the loss); `ylim` fixes the top-1 panel; `log_y` puts loss and top-1 on a log scale (values
//! ≤ 0, e.g. a 0 % training error, are left out there); the lr panel is logarithmic when the lr
//! spans more than a factor of 10. Epoch ticks are integers.
use super::{draw_err, font, series_color, text_size, Figure};
use crate::error::Result;
use crate::input_err;
use crate::train::log::{read_rows, EpochRow};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

/// One run: its label and its log rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub label: String,
    pub rows: Vec<EpochRow>,
}

/// What the top-1 panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Metric {
    /// Top-1 accuracy in percent.
    #[default]
    Accuracy,
    /// Top-1 error in percent (100 − accuracy), as the papers' tables report it.
    Error,
}

/// The choices of `visualize curves`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CurveOptions {
    pub metric: Metric,
    /// Loss and top-1 on a logarithmic axis.
    pub log_y: bool,
    /// Fixed range of the top-1 axis (percent).
    pub ylim: Option<(f64, f64)>,
}

/// Markers at every epoch up to this many epochs.
pub const MARKER_EPOCHS: usize = 40;

/// Reads each run's log; labels are `labels` when given (one per run), else each run's job id
/// (`config.json`'s `job_id`, else the directory's name, which is the job id convtrain chose).
pub fn load_runs(runs: &[PathBuf], labels: Option<&[String]>) -> Result<Vec<Run>> {
    if runs.is_empty() {
        return Err(input_err!("visualize curves: give at least one run directory."));
    }
    if let Some(l) = labels {
        if l.len() != runs.len() {
            return Err(input_err!(
                "--label: got {} labels for {} runs; give one per run, separated by commas.",
                l.len(),
                runs.len()
            ));
        }
    }
    let loaded: Vec<Run> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let log = r.join("log.csv");
            if !log.is_file() {
                return Err(input_err!("{}: no log.csv here; give convtrain run directories.", r.display()));
            }
            let label = match labels {
                Some(l) => l[i].clone(),
                None => job_id(r),
            };
            Ok(Run { label, rows: read_rows(&log)? })
        })
        .collect::<Result<_>>()?;
    if loaded.iter().all(|r| r.rows.is_empty()) {
        return Err(input_err!("visualize curves: no run has finished an epoch yet (every log.csv is empty)."));
    }
    Ok(loaded)
}

/// Parses `--ylim LO,HI` (the range itself is checked with the other options).
pub fn parse_ylim(text: &str) -> Result<(f64, f64)> {
    let parts: Vec<Option<f64>> = text.split(',').map(|p| p.trim().parse().ok()).collect();
    match parts[..] {
        [Some(lo), Some(hi)] => Ok((lo, hi)),
        _ => Err(input_err!("--ylim: expected two numbers LO,HI (e.g. 90,100), got '{text}'.")),
    }
}

/// The run's job id: `config.json`'s `config.job_id`, else the directory name.
fn job_id(run: &Path) -> String {
    let from_config = std::fs::read_to_string(run.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["config"]["job_id"].as_str().map(str::to_string));
    from_config.unwrap_or_else(|| {
        let dir = std::path::absolute(run).unwrap_or_else(|_| run.to_path_buf());
        dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| run.display().to_string())
    })
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Train,
    Val,
    Lr,
}

/// One run's values of one quantity, epoch by epoch.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    run: usize,
    kind: Kind,
    points: Vec<(i32, f64)>,
}

/// One panel: axis label, scale, y range and lines.
#[derive(Debug, Clone, PartialEq)]
struct Panel {
    y_desc: &'static str,
    log: bool,
    range: (f64, f64),
    lines: Vec<Line>,
}

/// Smallest and largest finite value (positive only, for a log axis).
fn extent(values: &[f64], log: bool) -> Option<(f64, f64)> {
    let shown = values.iter().copied().filter(|v| v.is_finite() && (!log || *v > 0.0));
    shown.fold(None, |acc, v| Some(acc.map_or((v, v), |(lo, hi): (f64, f64)| (lo.min(v), hi.max(v)))))
}

/// The y range of `values`: padded min..max (linear, kept within `bounds` when the data are), or
/// padded by a factor (log, positive values only). `None` if there is nothing to show.
fn fit(values: &[f64], log: bool, bounds: (f64, f64)) -> Option<(f64, f64)> {
    let (lo, hi) = extent(values, log)?;
    if log {
        let pad = (hi / lo).powf(0.06).max(1.25);
        return Some((lo / pad, hi * pad));
    }
    // A constant (e.g. the lr between milestones) gets ±50 % of itself.
    let span = if hi > lo { hi - lo } else { (hi.abs() * 0.5 / 0.06).max(1e-3) };
    let lo = if lo >= bounds.0 { (lo - 0.06 * span).max(bounds.0) } else { lo - 0.06 * span };
    let hi = if hi <= bounds.1 { (hi + 0.06 * span).min(bounds.1) } else { hi + 0.06 * span };
    Some((lo, hi))
}

/// The three panels (loss, top-1, lr) of `runs`.
fn panels(runs: &[Run], opts: &CurveOptions) -> Result<Vec<Panel>> {
    if let Some((lo, hi)) = opts.ylim {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) || (opts.log_y && lo <= 0.0) {
            return Err(input_err!(
                "--ylim: expected LO,HI with LO < HI{}, got {lo},{hi}.",
                if opts.log_y { " and LO > 0 (--log-y)" } else { "" }
            ));
        }
    }
    let metric = |top1: f64| match opts.metric {
        Metric::Accuracy => top1,
        Metric::Error => 100.0 - top1,
    };
    /// A line kind and the value it reads from a log row.
    type Pick<'a> = (Kind, &'a dyn Fn(&EpochRow) -> f64);
    let lines = |picks: &[Pick]| -> Vec<Line> {
        runs.iter()
            .enumerate()
            .flat_map(|(run, r)| {
                picks.iter().map(move |(kind, f)| Line {
                    run,
                    kind: *kind,
                    points: r.rows.iter().map(|row| (row.epoch as i32, f(row))).collect(),
                })
            })
            .collect()
    };
    let panel = |y_desc, log, fixed: Option<(f64, f64)>, bounds, lines: Vec<Line>| {
        let values: Vec<f64> = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).collect();
        let range = fixed.or_else(|| fit(&values, log, bounds)).unwrap_or((0.0, 1.0));
        Panel { y_desc, log, range, lines }
    };
    let positive = (0.0, f64::INFINITY);
    let loss = lines(&[(Kind::Train, &|r| r.train_loss), (Kind::Val, &|r| r.val_loss)]);
    let top1 = lines(&[(Kind::Train, &|r| metric(r.train_top1)), (Kind::Val, &|r| metric(r.val_top1))]);
    let lr = lines(&[(Kind::Lr, &|r| r.lr)]);
    let lr_extent = extent(&lr.iter().flat_map(|l| l.points.iter().map(|p| p.1)).collect::<Vec<_>>(), true);
    let top1_desc = match opts.metric {
        Metric::Accuracy => "top-1 accuracy (%)",
        Metric::Error => "top-1 error (%)",
    };
    Ok(vec![
        panel("cross-entropy loss", opts.log_y, None, positive, loss),
        panel(top1_desc, opts.log_y, opts.ylim, (0.0, 100.0), top1),
        panel("learning rate", lr_extent.is_some_and(|(lo, hi)| hi / lo > 10.0), None, positive, lr),
    ])
}

/// Layout (layout pixels, 1/96 in): three panels across a 7.5-inch figure, the legend below.
const PANEL_W: u32 = 240;
const PANEL_H: u32 = 210;
const LEGEND_PX: f64 = 12.0;
const TICK_PX: f64 = 11.0;
const DESC_PX: f64 = 12.0;
const LEGEND_ROW: i32 = 20;
const LEGEND_SWATCH: i32 = 30;
const LEGEND_GAP: i32 = 18;
const LEGEND_INDENT: i32 = 30;
const MARKER_R: i32 = 3;

/// One legend entry: colour, line kind (`Lr` = a run's colour patch) and text.
struct Entry {
    color: RGBColor,
    kind: Kind,
    text: String,
}

/// The legend: one entry per run, then the two line styles; laid out in rows of `width`.
fn legend(runs: &[Run]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| Entry { color: series_color(i), kind: Kind::Lr, text: r.label.clone() })
        .collect();
    entries.push(Entry { color: BLACK, kind: Kind::Val, text: "validation".into() });
    entries.push(Entry { color: BLACK, kind: Kind::Train, text: "training".into() });
    entries
}

/// Top-left corners of the legend entries in rows no wider than `width`, and the rows' count.
fn legend_positions(entries: &[Entry], width: i32) -> (Vec<(i32, i32)>, i32) {
    let mut pos = Vec::with_capacity(entries.len());
    let (mut x, mut row) = (0, 0);
    for e in entries {
        let w = LEGEND_SWATCH + 6 + text_size(&e.text, LEGEND_PX).0;
        if x > 0 && x + w > width {
            x = 0;
            row += 1;
        }
        pos.push((x, row * LEGEND_ROW));
        x += w + LEGEND_GAP;
    }
    (pos, row + 1)
}

/// Width of the figure and where the legend entries go: (size, entry positions).
fn layout(entries: &[Entry]) -> ((u32, u32), Vec<(i32, i32)>) {
    let width = 3 * PANEL_W;
    let (positions, rows) = legend_positions(entries, width as i32 - 2 * LEGEND_INDENT);
    ((width, PANEL_H + (rows * LEGEND_ROW + 16) as u32), positions)
}

/// Draws the curves of `runs` into `out` (PNG, SVG or PDF by its extension; PNG at `dpi`).
pub fn plot_curves(runs: &[Run], opts: &CurveOptions, out: &Path, dpi: f64) -> Result<()> {
    let panels = panels(runs, opts)?;
    super::register_font()?;
    let entries = legend(runs);
    let (size, positions) = layout(&entries);
    let mut fig = Figure::new(out, size)?.with_dpi(dpi)?;
    let err = draw_err(out);
    {
        let root = fig.area()?;
        let (top, bottom) = root.split_vertically(PANEL_H);
        let max_epoch = runs.iter().flat_map(|r| r.rows.iter().map(|x| x.epoch)).max().unwrap_or(1) as i32;
        let markers = max_epoch as usize <= MARKER_EPOCHS;
        for (area, panel) in top.split_evenly((1, 3)).iter().zip(&panels) {
            let (lo, hi) = panel.range;
            if panel.log {
                let ticks = log_ticks(lo, hi);
                let sci = scientific(&ticks);
                draw_panel(area, max_epoch, (lo..hi).log_scale().with_key_points(ticks), panel, markers, sci, out)?;
            } else {
                draw_panel(area, max_epoch, lo..hi, panel, markers, scientific(&[lo.abs().max(hi.abs())]), out)?;
            }
        }
        for (e, (x, y)) in entries.iter().zip(positions) {
            let (x, y) = (x + LEGEND_INDENT, y + 8);
            let mid = y + LEGEND_ROW / 2;
            let style = e.color.stroke_width(2);
            match e.kind {
                Kind::Train => {
                    bottom
                        .draw(&DashedPathElement::new([(x, mid), (x + LEGEND_SWATCH, mid)], 5, 3, style))
                        .map_err(&err)?;
                    bottom.draw(&Circle::new((x + LEGEND_SWATCH / 2, mid), MARKER_R, WHITE.filled())).map_err(&err)?;
                    bottom.draw(&Circle::new((x + LEGEND_SWATCH / 2, mid), MARKER_R, style)).map_err(&err)?;
                }
                Kind::Val => {
                    bottom.draw(&PathElement::new([(x, mid), (x + LEGEND_SWATCH, mid)], style)).map_err(&err)?;
                    bottom
                        .draw(&Circle::new((x + LEGEND_SWATCH / 2, mid), MARKER_R, e.color.filled()))
                        .map_err(&err)?;
                }
                Kind::Lr => {
                    let patch = [(x, mid - 5), (x + LEGEND_SWATCH, mid + 5)];
                    bottom.draw(&Rectangle::new(patch, e.color.filled())).map_err(&err)?;
                }
            }
            let text = font(LEGEND_PX).color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
            bottom.draw(&Text::new(e.text.as_str(), (x + LEGEND_SWATCH + 6, mid), text)).map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    fig.finish()
}

/// Whether an axis with these ticks labels them in `2.5e-4` style: when one is below 0.001 or
/// from 100000 up (then all are, so that an axis reads one way).
fn scientific(ticks: &[f64]) -> bool {
    ticks.iter().any(|t| *t != 0.0 && !(1e-3..1e5).contains(&t.abs()))
}

/// Tick label of an axis value: its shortest decimal (to 9 significant digits), or `2.5e-4`.
fn tick_label(v: f64, scientific: bool) -> String {
    let r: f64 = format!("{v:.8e}").parse().unwrap_or(v);
    if r == 0.0 {
        "0".into()
    } else if scientific {
        format!("{r:e}")
    } else {
        format!("{r}")
    }
}

/// Ticks of a log axis over `lo..hi`: the powers of ten inside it when there are at least three,
/// else 1, 2 and 5 times them, else 1, 2, 3 and 5 times them, else every digit times them.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = (lo.log10().floor() as i32)..=(hi.log10().ceil() as i32);
    let ticks = |mantissas: &[f64]| -> Vec<f64> {
        decades
            .clone()
            .flat_map(|d| mantissas.iter().map(move |m| m * 10f64.powi(d)))
            .filter(|t| (lo..=hi).contains(t))
            .collect()
    };
    [&[1.0][..], &[1.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 5.0]]
        .iter()
        .map(|m| ticks(m))
        .find(|t| t.len() >= 3)
        .unwrap_or_else(|| ticks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]))
}

/// One panel: mesh with integer epoch ticks, then each line (dashed for training), then markers.
fn draw_panel<Y>(
    area: &DrawingArea<SVGBackend, Shift>,
    max_epoch: i32,
    y: Y,
    panel: &Panel,
    markers: bool,
    scientific: bool,
    out: &Path,
) -> Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = draw_err(out);
    let mut chart = ChartBuilder::on(area)
        .margin_top(10)
        .margin_right(14)
        .margin_left(4)
        .x_label_area_size(38)
        .y_label_area_size(52)
        .build_cartesian_2d(0..max_epoch + 1, y)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(panel.y_desc)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|e: &i32| e.to_string())
        .y_label_formatter(&|v: &f64| tick_label(*v, scientific))
        .label_style(font(TICK_PX))
        .axis_desc_style(font(DESC_PX))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(TRANSPARENT)
        .axis_style(BLACK)
        .draw()
        .map_err(&err)?;
    let usable = |v: f64| v.is_finite() && (!panel.log || v > 0.0);
    for line in &panel.lines {
        let color = series_color(line.run);
        let style = color.stroke_width(2);
        // Lines break where a value cannot be drawn (NaN, or ≤ 0 on a log axis).
        for seg in line.points.split(|p| !usable(p.1)).filter(|s| !s.is_empty()) {
            match line.kind {
                Kind::Train => {
                    chart.draw_series(DashedLineSeries::new(seg.iter().copied(), 5, 3, style)).map_err(&err)?;
                }
                Kind::Val => {
                    chart.draw_series(LineSeries::new(seg.iter().copied(), style)).map_err(&err)?;
                }
                Kind::Lr => {
                    // The lr holds through each epoch: a step over (e − 1, e], no markers.
                    let steps = seg.iter().flat_map(|&(e, v)| [(e - 1, v), (e, v)]);
                    chart.draw_series(LineSeries::new(steps, style)).map_err(&err)?;
                    continue;
                }
            }
            if markers {
                for &p in seg {
                    if line.kind == Kind::Train {
                        chart.draw_series([Circle::new(p, MARKER_R, WHITE.filled())]).map_err(&err)?;
                        chart.draw_series([Circle::new(p, MARKER_R, style)]).map_err(&err)?;
                    } else {
                        chart.draw_series([Circle::new(p, MARKER_R, color.filled())]).map_err(&err)?;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visualize::tests::assert_figure;

    fn row(epoch: usize, lr: f64, train_top1: f64, val_top1: f64) -> EpochRow {
        EpochRow {
            epoch,
            lr,
            train_loss: 1.0 / epoch as f64,
            train_top1,
            val_loss: 1.2 / epoch as f64,
            val_top1,
            ..EpochRow::default()
        }
    }

    fn runs() -> Vec<Run> {
        vec![
            Run { label: "a".into(), rows: (1..=5).map(|e| row(e, 0.1, 94.0 + e as f64, 93.5 + e as f64)).collect() },
            Run { label: "one epoch".into(), rows: vec![row(1, 0.001, 100.0, 97.0)] },
        ]
    }

    #[test]
    fn axes_fit_the_data_and_the_metric() {
        let p = panels(&runs(), &CurveOptions::default()).unwrap();
        let (lo, hi) = p[1].range;
        assert!(lo > 90.0 && lo < 94.5 && hi == 100.0, "accuracy axis {lo}..{hi} fits 94.5–100 %");
        assert_eq!(p[1].y_desc, "top-1 accuracy (%)");
        assert!(p[2].log, "lr spans 100×: log axis");
        let e = panels(&runs(), &CurveOptions { metric: Metric::Error, log_y: true, ylim: None }).unwrap();
        assert_eq!(e[1].lines[0].points[0], (1, 5.0));
        let (lo, hi) = e[1].range;
        assert!(lo > 0.5 && lo < 1.0 && hi > 5.5 && hi < 8.0, "error log axis {lo}..{hi} fits 1–5.5 % (0 % left out)");
        let fixed = CurveOptions { ylim: Some((90.0, 100.0)), ..CurveOptions::default() };
        assert_eq!(panels(&runs(), &fixed).unwrap()[1].range, (90.0, 100.0));
        let bad = CurveOptions { ylim: Some((0.0, 10.0)), log_y: true, ..CurveOptions::default() };
        assert!(panels(&runs(), &bad).unwrap_err().to_string().contains("--ylim"));
        assert_eq!(fit(&[0.1, 0.1], false, (0.0, 100.0)), Some((0.05, 0.15000000000000002)));
        assert_eq!(fit(&[f64::NAN], false, (0.0, 1.0)), None);
        assert_eq!(parse_ylim("90, 100").unwrap(), (90.0, 100.0));
        assert!(parse_ylim("90").unwrap_err().to_string().contains("--ylim"));
    }

    #[test]
    fn ticks_read_plainly() {
        assert_eq!(tick_label(0.5, false), "0.5");
        assert_eq!(tick_label(0.1 + 0.2, false), "0.3");
        assert_eq!(tick_label(96.0, false), "96");
        assert_eq!(tick_label(0.0001, true), "1e-4");
        assert_eq!(tick_label(0.00025, true), "2.5e-4");
        assert_eq!(tick_label(0.002, true), "2e-3");
        assert_eq!(tick_label(0.0, true), "0");
        assert_eq!(log_ticks(8e-4, 0.125), [0.001, 0.01, 0.1]);
        assert!(!scientific(&log_ticks(8e-4, 0.125)) && scientific(&log_ticks(7e-5, 2.5e-3)));
        assert_eq!(log_ticks(0.8, 6.9), [1.0, 2.0, 5.0]);
        assert_eq!(log_ticks(2.5, 11.0), [3.0, 5.0, 10.0]);
        assert_eq!(log_ticks(2.1, 4.9), [3.0, 4.0]);
    }

    #[test]
    fn curves_in_each_format_and_a_one_epoch_run_shows() {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["png", "svg", "pdf"] {
            let out = dir.path().join(format!("c.{ext}"));
            plot_curves(&runs(), &CurveOptions::default(), &out, 192.0).unwrap();
            let (w, h) = layout(&legend(&runs())).0;
            assert_eq!(w, 720);
            assert_figure(&out, (w, h), (2 * w, 2 * h));
        }
        // Only the 1-epoch run, at 96 dpi: its colour appears in each panel (markers, not lines).
        let one = &runs()[1..];
        let out = dir.path().join("one.png");
        plot_curves(one, &CurveOptions::default(), &out, 96.0).unwrap();
        let img = image::open(&out).unwrap().to_rgb8();
        let c = series_color(0);
        for panel in 0..3 {
            let x0 = panel * PANEL_W;
            let hits = (x0..x0 + PANEL_W)
                .flat_map(|x| (0..PANEL_H).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0 == [c.0, c.1, c.2])
                .count();
            assert!(hits >= 15, "panel {panel}: {hits} pixels of the run's colour");
        }
    }
}
