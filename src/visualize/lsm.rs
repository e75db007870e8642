//! The layer similarity matrix (LSM) of a soft-sharing network: for the L layers that share one
//! template bank, S_ij = |⟨α_i, α_j⟩| / (‖α_i‖·‖α_j‖), the absolute cosine similarity of their
//! coefficient vectors, one matrix per sharing group (a stage of SWRN), layers in depth order
//! (spec/swrn.md §6, "Visualisations"). Layers with S_ij ≈ 1 use the same kernel up to scale.
use super::{draw_err, register_font, viridis};
use crate::error::{IoContext, Result};
use crate::input_err;
use crate::models::swrn::stage_coefficients;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
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

/// Pixel geometry of the figure, derived from the largest group.
struct Layout {
    cell: i32,
    label_w: i32,
    label_h: i32,
    x_label_every: usize,
    annotate: bool,
    panel_w: i32,
    grid_top: i32,
    width: u32,
    height: u32,
}

/// The family [`register_font`] registers the bundled DejaVu Sans as.
const FONT: &str = "sans-serif";
const MARGIN: i32 = 24;
const PANEL_GAP: i32 = 40;
const TITLE_H: i32 = 44;
const PANEL_TITLE_H: i32 = 30;
const BAR_W: i32 = 22;
const LABEL_PX: f64 = 14.0;

fn text_size(text: &str, px: f64) -> (i32, i32) {
    let (w, h) = FontDesc::new(FontFamily::Name(FONT), px, FontStyle::Normal).box_size(text).unwrap_or((0, 0));
    (w as i32, h as i32)
}

fn layout(groups: &[LsmGroup]) -> Layout {
    let n = groups.iter().map(|g| g.labels.len()).max().unwrap_or(1).max(1) as i32;
    let cell = (480 / n).clamp(18, 64);
    let (label_w, label_h) = groups
        .iter()
        .flat_map(|g| &g.labels)
        .map(|l| text_size(l, LABEL_PX))
        .fold((0, 0), |(w, h), (a, b)| (w.max(a), h.max(b)));
    let x_label_every = ((label_w + 8) as f64 / cell as f64).ceil().max(1.0) as usize;
    let panel_w = label_w + 10 + n * cell;
    let grid_top = MARGIN + TITLE_H + PANEL_TITLE_H;
    let groups_w = groups.len() as i32 * panel_w + (groups.len() as i32 - 1) * PANEL_GAP;
    let bar_label_w = text_size("0.00", LABEL_PX).0;
    let width = 2 * MARGIN + groups_w + PANEL_GAP + BAR_W + 8 + bar_label_w;
    let height = grid_top + n * cell + 8 + label_h + 10 + label_h + MARGIN;
    Layout {
        cell,
        label_w,
        label_h,
        x_label_every,
        annotate: cell >= 40,
        panel_w,
        grid_top,
        width: width as u32,
        height: height as u32,
    }
}

/// Draws the matrices as heat-maps side by side (row i, column j = S_ij, layer labels on both axes,
/// the value printed in each cell when there is room) with one colour bar for [0, 1], as a PNG.
pub fn write_lsm_png(groups: &[LsmGroup], path: &Path) -> Result<()> {
    if groups.iter().all(|g| g.labels.is_empty()) {
        return Err(input_err!("no shared layers: the layer similarity matrix needs at least one soft-shared layer."));
    }
    for g in groups {
        if g.matrix.len() != g.labels.len() || g.matrix.iter().any(|r| r.len() != g.labels.len()) {
            return Err(input_err!("LSM group {}: the matrix is not {n}×{n}.", g.name, n = g.labels.len()));
        }
    }
    register_font()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).at(dir)?;
    }
    let lay = layout(groups);
    draw(groups, &lay, path).map_err(draw_err(path))
}

fn draw(groups: &[LsmGroup], lay: &Layout, path: &Path) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (lay.width, lay.height)).into_drawing_area();
    root.fill(&WHITE)?;
    let font = |px: f64| FontDesc::new(FontFamily::Name(FONT), px, FontStyle::Normal);
    let centred = |px: f64| font(px).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
    let top_centre = |px: f64| font(px).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
    let right_centre = font(LABEL_PX).color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center));
    let left_centre = font(LABEL_PX).color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));

    root.draw(&Text::new(
        "Layer similarity matrix  |cos(α_i, α_j)|",
        (lay.width as i32 / 2, MARGIN + TITLE_H / 2),
        centred(20.0),
    ))?;
    let c = lay.cell;
    for (g_idx, g) in groups.iter().enumerate() {
        let n = g.labels.len() as i32;
        let x0 = MARGIN + g_idx as i32 * (lay.panel_w + PANEL_GAP);
        let gx = x0 + lay.label_w + 10;
        let gy = lay.grid_top;
        root.draw(&Text::new(
            format!("{} ({} layers)", g.name.replace('_', " "), n),
            (gx + n * c / 2, gy - PANEL_TITLE_H / 2),
            centred(16.0),
        ))?;
        for (i, row) in g.matrix.iter().enumerate() {
            for (j, &s) in row.iter().enumerate() {
                let (cx, cy) = (gx + j as i32 * c, gy + i as i32 * c);
                let colour = viridis(s);
                root.draw(&Rectangle::new([(cx, cy), (cx + c, cy + c)], colour.filled()))?;
                if lay.annotate {
                    let ink = if s < 0.6 { &WHITE } else { &BLACK };
                    let style = font(12.0).color(ink).pos(Pos::new(HPos::Center, VPos::Center));
                    root.draw(&Text::new(format!("{s:.2}"), (cx + c / 2, cy + c / 2), style))?;
                }
            }
        }
        root.draw(&Rectangle::new([(gx, gy), (gx + n * c, gy + n * c)], BLACK.stroke_width(1)))?;
        for (i, label) in g.labels.iter().enumerate() {
            let mid = i as i32 * c + c / 2;
            root.draw(&Text::new(label.as_str(), (gx - 6, gy + mid), right_centre.clone()))?;
            if i % lay.x_label_every == 0 {
                root.draw(&Text::new(label.as_str(), (gx + mid, gy + n * c + 6), top_centre(LABEL_PX)))?;
            }
        }
        root.draw(&Text::new("layer (block.conv)", (gx + n * c / 2, gy + n * c + 14 + lay.label_h), top_centre(13.0)))?;
    }

    // Colour bar for [0, 1], 1 at the top.
    let n_max = groups.iter().map(|g| g.labels.len()).max().unwrap_or(1) as i32;
    let bar_h = n_max * c;
    let bx = MARGIN + groups.len() as i32 * (lay.panel_w + PANEL_GAP);
    let by = lay.grid_top;
    for y in 0..bar_h {
        let v = 1.0 - y as f64 / (bar_h - 1).max(1) as f64;
        root.draw(&Rectangle::new([(bx, by + y), (bx + BAR_W, by + y + 1)], viridis(v).filled()))?;
    }
    root.draw(&Rectangle::new([(bx, by), (bx + BAR_W, by + bar_h)], BLACK.stroke_width(1)))?;
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = by + ((1.0 - tick) * (bar_h - 1) as f64).round() as i32;
        root.draw(&PathElement::new([(bx + BAR_W, y), (bx + BAR_W + 4, y)], BLACK))?;
        root.draw(&Text::new(format!("{tick:.2}"), (bx + BAR_W + 7, y), left_centre.clone()))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Model, ModelConfig};

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
        write_lsm_png(&groups, &png).unwrap();
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
        let e = write_lsm_png(&[], &png).unwrap_err();
        assert!(e.to_string().contains("no shared layers"), "{e}");
    }
}
