//! The layer similarity matrix (LSM) of a soft-sharing network: for the L layers that share one
//! template bank, S_ij = |⟨α_i, α_j⟩| / (‖α_i‖·‖α_j‖), the absolute cosine similarity of their
//! coefficient vectors, one matrix per sharing group (a stage of SWRN), layers in depth order
//! (spec/swrn.md §6, "Visualisations"). Layers with S_ij ≈ 1 use the same kernel up to scale.
use super::{draw_figure, font, register_font, text_size, viridis, DrawResult};
use crate::error::Result;
use crate::input_err;
use crate::models::swrn::stage_coefficients;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// One sharing group's LSM with its layer labels (row i and column i belong to `labels[i]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LsmGroup {
    /// E.g. `stage_1`.
    pub name: String,
    /// E.g. `1.conv1`, `1.conv2`, `2.conv1`, ... (block.conv within the stage).
    pub labels: Vec<String>,
    pub matrix: Vec<Vec<f64>>,
}

/// The LSM of one sharing group: `coefficients[i]` is layer i's α (any shape; flattened), all with the
/// same number of values. S_ij = |⟨α_i, α_j⟩| / (‖α_i‖‖α_j‖); an entry involving an all-zero α is 0.
///
/// # Panics
/// If the coefficient vectors differ in length.
pub fn lsm(coefficients: &[Tensor]) -> Vec<Vec<f64>> {
    let alphas: Vec<Vec<f64>> = coefficients
        .iter()
        .map(|a| Vec::<f64>::try_from(a.detach().to_device(Device::Cpu).to_kind(Kind::Double).flatten(0, -1)).unwrap())
        .collect();
    if let Some(first) = alphas.first() {
        assert!(alphas.iter().all(|a| a.len() == first.len()), "lsm: coefficient vectors of different lengths");
    }
    let norms: Vec<f64> = alphas.iter().map(|a| a.iter().map(|x| x * x).sum::<f64>().sqrt()).collect();
    (0..alphas.len())
        .map(|i| {
            (0..alphas.len())
                .map(|j| {
                    let denom = norms[i] * norms[j];
                    if denom == 0.0 {
                        return 0.0;
                    }
                    let dot: f64 = alphas[i].iter().zip(&alphas[j]).map(|(x, y)| x * y).sum();
                    (dot.abs() / denom).min(1.0)
                })
                .collect()
        })
        .collect()
}

/// The LSMs of an SWRN, one per stage with shared layers, from its named tensors (convtrain's names,
/// e.g. a variable store's or [`crate::models::swrn::from_pytorch_names`]'s output).
pub fn swrn_lsm(named: &[(String, Tensor)]) -> Vec<LsmGroup> {
    stage_coefficients(named)
        .into_iter()
        .map(|(stage, layers)| {
            let alphas: Vec<Tensor> = layers.iter().map(|(_, a)| a.shallow_clone()).collect();
            LsmGroup {
                name: format!("stage_{stage}"),
                labels: layers.into_iter().map(|(label, _)| label).collect(),
                matrix: lsm(&alphas),
            }
        })
        .collect()
}

/// Writes the matrices as CSV with the header `group,row,col,similarity`, one line per entry, rows
/// and columns named by their layer labels.
pub fn write_lsm_csv(groups: &[LsmGroup], path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(|e| input_err!("{}: {e}", path.display()))?;
    let mut write = || -> std::result::Result<(), csv::Error> {
        w.write_record(["group", "row", "col", "similarity"])?;
        for g in groups {
            for (i, row) in g.matrix.iter().enumerate() {
                for (j, s) in row.iter().enumerate() {
                    w.write_record([g.name.as_str(), &g.labels[i], &g.labels[j], &format!("{s:.6}")])?;
                }
            }
        }
        w.flush()?;
        Ok(())
    };
    write().map_err(|e| input_err!("{}: could not write the LSM table: {e}", path.display()))
}

/// Pixel geometry of the figure (layout pixels), derived from the largest group.
struct Layout {
    cell: i32,
    /// Width of the column left of a matrix: the rotated "layer i" and the row indices.
    label_w: i32,
    label_h: i32,
    x_label_every: usize,
    annotate: bool,
    panel_w: i32,
    grid_top: i32,
    width: u32,
    height: u32,
}

const MARGIN: i32 = 16;
const PANEL_GAP: i32 = 28;
const TITLE_H: i32 = 30;
const PANEL_TITLE_H: i32 = 24;
const BAR_W: i32 = 14;
const LABEL_PX: f64 = 12.0;
const DESC_PX: f64 = 12.0;
const NOTE_PX: f64 = 11.0;
/// Side of the largest matrix: three 6×6 stages fit a 7.5-inch-wide figure.
const GRID_PX: i32 = 186;
const NOTE: &str = "layer i: the i-th convolution of the stage that draws on its template bank, in depth order";

/// The paper's layer index of each row: 1..L in depth order within the sharing group (S_ij,
/// spec/swrn.md §6), not the block.conv names of [`LsmGroup::labels`].
fn layer_indices(g: &LsmGroup) -> Vec<String> {
    (1..=g.labels.len()).map(|i| i.to_string()).collect()
}

fn layout(groups: &[LsmGroup]) -> Layout {
    let n = groups.iter().map(|g| g.labels.len()).max().unwrap_or(1).max(1) as i32;
    let cell = (GRID_PX / n).clamp(12, 40);
    let (index_w, label_h) = groups
        .iter()
        .flat_map(layer_indices)
        .map(|l| text_size(&l, LABEL_PX))
        .fold((0, 0), |(w, h), (a, b)| (w.max(a), h.max(b)));
    let desc_h = text_size("layer i", DESC_PX).1;
    let label_w = desc_h + 8 + index_w;
    let x_label_every = ((index_w + 6) as f64 / cell as f64).ceil().max(1.0) as usize;
    let panel_w = label_w + 6 + n * cell;
    let grid_top = MARGIN + TITLE_H + PANEL_TITLE_H;
    let groups_w = groups.len() as i32 * panel_w + (groups.len() as i32 - 1) * PANEL_GAP;
    let bar_label_w = text_size("0.00", LABEL_PX).0;
    let note_w = text_size(NOTE, NOTE_PX).0;
    let width = (2 * MARGIN + groups_w + PANEL_GAP + BAR_W + 6 + bar_label_w).max(2 * MARGIN + note_w);
    let height = grid_top + n * cell + 6 + label_h + 8 + desc_h + 12 + label_h + MARGIN;
    Layout {
        cell,
        label_w,
        label_h,
        x_label_every,
        annotate: cell >= 28,
        panel_w,
        grid_top,
        width: width as u32,
        height: height as u32,
    }
}

/// Draws the matrices as heat-maps side by side — row i, column j = S_ij, the rows and columns
/// numbered 1..L as in the paper, the value printed in each cell when there is room — with one
/// colour bar for [0, 1], into `path` (PNG, SVG or PDF by its extension; PNG at `dpi`).
pub fn write_lsm_figure(groups: &[LsmGroup], path: &Path, dpi: f64) -> Result<()> {
    if groups.iter().all(|g| g.labels.is_empty()) {
        return Err(input_err!("no shared layers: the layer similarity matrix needs at least one soft-shared layer."));
    }
    for g in groups {
        if g.matrix.len() != g.labels.len() || g.matrix.iter().any(|r| r.len() != g.labels.len()) {
            return Err(input_err!("LSM group {}: the matrix is not {n}×{n}.", g.name, n = g.labels.len()));
        }
    }
    register_font()?;
    let lay = layout(groups);
    draw_figure(path, (lay.width, lay.height), dpi, |root| draw(groups, &lay, root))
}

fn draw(groups: &[LsmGroup], lay: &Layout, root: &DrawingArea<SVGBackend, Shift>) -> DrawResult {
    let at = |px: f64, h: HPos, v: VPos| font(px).color(&BLACK).pos(Pos::new(h, v));
    root.draw(&Text::new(
        "Layer similarity matrix  |cos(αᵢ, αⱼ)|",
        (lay.width as i32 / 2, MARGIN + TITLE_H / 2),
        at(15.0, HPos::Center, VPos::Center),
    ))?;
    let c = lay.cell;
    for (g_idx, g) in groups.iter().enumerate() {
        let n = g.labels.len() as i32;
        let x0 = MARGIN + g_idx as i32 * (lay.panel_w + PANEL_GAP);
        let gx = x0 + lay.label_w + 6;
        let gy = lay.grid_top;
        root.draw(&Text::new(
            format!("{} ({n} shared layers)", g.name.replace('_', " ")),
            (gx + n * c / 2, gy - PANEL_TITLE_H / 2),
            at(13.0, HPos::Center, VPos::Center),
        ))?;
        for (i, row) in g.matrix.iter().enumerate() {
            for (j, &s) in row.iter().enumerate() {
                let (cx, cy) = (gx + j as i32 * c, gy + i as i32 * c);
                // Each cell reaches 1 px under its right and lower neighbours (drawn later), so that no
                // anti-aliased seam shows between cells at any scale.
                let (ex, ey) = (i32::from(j + 1 < row.len()), i32::from(i + 1 < g.matrix.len()));
                root.draw(&Rectangle::new([(cx, cy), (cx + c + ex, cy + c + ey)], viridis(s).filled()))?;
                if lay.annotate {
                    let ink = if s < 0.6 { &WHITE } else { &BLACK };
                    let style = font(10.0).color(ink).pos(Pos::new(HPos::Center, VPos::Center));
                    root.draw(&Text::new(format!("{s:.2}"), (cx + c / 2, cy + c / 2), style))?;
                }
            }
        }
        root.draw(&Rectangle::new([(gx, gy), (gx + n * c, gy + n * c)], BLACK.stroke_width(1)))?;
        for (i, label) in layer_indices(g).iter().enumerate() {
            let mid = i as i32 * c + c / 2;
            root.draw(&Text::new(label.as_str(), (gx - 5, gy + mid), at(LABEL_PX, HPos::Right, VPos::Center)))?;
            if i % lay.x_label_every == 0 {
                let pos = (gx + mid, gy + n * c + 6);
                root.draw(&Text::new(label.as_str(), pos, at(LABEL_PX, HPos::Center, VPos::Top)))?;
            }
        }
        let below = gy + n * c + 6 + lay.label_h + 8;
        root.draw(&Text::new("layer j", (gx + n * c / 2, below), at(DESC_PX, HPos::Center, VPos::Top)))?;
        let rotated = at(DESC_PX, HPos::Center, VPos::Top).transform(FontTransform::Rotate270);
        root.draw(&Text::new("layer i", (x0, gy + n * c / 2), rotated))?;
    }

    // Colour bar for [0, 1], 1 at the top.
    let n_max = groups.iter().map(|g| g.labels.len()).max().unwrap_or(1) as i32;
    let bar_h = n_max * c;
    let bx = MARGIN + groups.len() as i32 * (lay.panel_w + PANEL_GAP);
    let by = lay.grid_top;
    for y in 0..bar_h {
        let v = 1.0 - y as f64 / (bar_h - 1).max(1) as f64;
        let bottom = (by + y + 2).min(by + bar_h); // overlapping the next step, as the cells do
        root.draw(&Rectangle::new([(bx, by + y), (bx + BAR_W, bottom)], viridis(v).filled()))?;
    }
    root.draw(&Rectangle::new([(bx, by), (bx + BAR_W, by + bar_h)], BLACK.stroke_width(1)))?;
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = by + ((1.0 - tick) * (bar_h - 1) as f64).round() as i32;
        root.draw(&PathElement::new([(bx + BAR_W, y), (bx + BAR_W + 4, y)], BLACK))?;
        root.draw(&Text::new(format!("{tick:.2}"), (bx + BAR_W + 6, y), at(LABEL_PX, HPos::Left, VPos::Center)))?;
    }
    let note_y = lay.height as i32 - MARGIN - lay.label_h / 2;
    root.draw(&Text::new(NOTE, (MARGIN, note_y), at(NOTE_PX, HPos::Left, VPos::Center).color(&RGBColor(80, 80, 80))))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Model, ModelConfig};
    use crate::visualize::tests::assert_figure;
    use crate::visualize::LAYOUT_DPI;

    #[test]
    fn lsm_is_the_absolute_cosine() {
        let a = [
            Tensor::from_slice(&[1.0f32, 0.0]),
            Tensor::from_slice(&[-2.0f32, 0.0]),
            Tensor::from_slice(&[1.0f32, 1.0]),
            Tensor::from_slice(&[0.0f32, 0.0]),
        ];
        let s = lsm(&a);
        let h = 0.5f64.sqrt();
        let want = [[1.0, 1.0, h, 0.0], [1.0, 1.0, h, 0.0], [h, h, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]];
        for i in 0..4 {
            for j in 0..4 {
                assert!((s[i][j] - want[i][j]).abs() < 1e-12, "S[{i}][{j}] = {}", s[i][j]);
            }
        }
    }

    #[test]
    fn swrn_lsm_png_and_csv() {
        tch::manual_seed(0);
        let cfg = ModelConfig { depth: Some(28), width: Some(1), ..ModelConfig::new("swrn", 10, 3, 32) }
            .with_option("bank_size", 2);
        let m = Model::build(&cfg, tch::Device::Cpu).unwrap();
        let groups = swrn_lsm(&m.named_parameters());
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("lsm.png");
        write_lsm_figure(&groups, &png, LAYOUT_DPI).unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[2].name, "stage_3");
        assert_eq!(groups[0].labels, ["1.conv1", "1.conv2", "2.conv1", "2.conv2", "3.conv1", "3.conv2"]);
        for g in &groups {
            for (i, row) in g.matrix.iter().enumerate() {
                assert!((row[i] - 1.0).abs() < 1e-9);
                for (j, &s) in row.iter().enumerate() {
                    assert!((0.0..=1.0).contains(&s) && (s - g.matrix[j][i]).abs() < 1e-12);
                }
            }
        }
        let img = image::open(&png).unwrap();
        let lay = layout(&groups);
        assert_eq!((img.width(), img.height()), (lay.width, lay.height));
        // The corner of cell (i, j) of stage 1 has the colour of S_ij.
        let rgb = img.to_rgb8();
        for (i, j) in [(0, 0), (0, 5), (3, 1)] {
            let x = MARGIN + lay.label_w + 10 + j * lay.cell + 3;
            let y = lay.grid_top + i * lay.cell + 3;
            let want = viridis(groups[0].matrix[i as usize][j as usize]);
            assert_eq!(rgb.get_pixel(x as u32, y as u32).0, [want.0, want.1, want.2], "cell ({i}, {j})");
        }
        let csv_path = dir.path().join("lsm.csv");
        write_lsm_csv(&groups, &csv_path).unwrap();
        let text = std::fs::read_to_string(&csv_path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "group,row,col,similarity");
        assert_eq!(lines.len(), 1 + 3 * 36);
        assert_eq!(lines[1], "stage_1,1.conv1,1.conv1,1.000000");
        let e = write_lsm_figure(&[], &png, LAYOUT_DPI).unwrap_err();
        assert!(e.to_string().contains("no shared layers"), "{e}");
        for ext in ["svg", "pdf", "png"] {
            let out = dir.path().join(format!("lsm300.{ext}"));
            write_lsm_figure(&groups, &out, 300.0).unwrap();
            let scaled = |v: u32| (v as f64 * 300.0 / LAYOUT_DPI).round() as u32;
            assert_figure(&out, (lay.width, lay.height), (scaled(lay.width), scaled(lay.height)));
        }
        assert_eq!(layer_indices(&groups[0]), ["1", "2", "3", "4", "5", "6"]);
    }
}
