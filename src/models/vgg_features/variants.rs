//! The architecture generator of the layer-wise feature-amount sweep (vgg_features.md §2): a skew-normal
//! density over the layer axis decides how a VGG's total feature budget is spread over its layers.
//!
//! Everything is plain float64 as in §2.6, which reproduces the original's list element for element
//! (Appendix A is the golden test). A variant is known only by its 1-based position in the list and its
//! (ξ, ω, α) triple; the list depends on the depth and the patch size (never on the dataset), its
//! "Parameters" figure also on the class count.
use crate::error::Result;
use crate::input_err;
use serde::Serialize;

/// Samples per layer bin on the x axis (`np.arange(0, B, 0.01)`, §2.3).
const SAMPLES_PER_BIN: usize = 100;
/// The sample spacing on the x axis.
const STEP: f64 = 0.01;
/// A variant whose bins hold at most this much of the density is rejected as truncated (§2.4,
/// `1 − eps` with `eps = 0.05`).
const MIN_AREA: f64 = 0.95;
/// The narrowest layer a variant may have (§2.1 `min_layer_filters`).
const MIN_WIDTH: i64 = 2;
/// Scales ω: 0, 0.5, …, 5.5 (§2.1); ω = 0 is always rejected.
const OMEGA_STEPS: usize = 12;
/// Shapes α: −40, −36, …, 40 (§2.1).
const ALPHA_STEPS: usize = 21;

/// One architecture of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    /// 1-based position in the list (the original's CSV file number, `model_%03d`).
    pub id: usize,
    /// Skew-normal location ξ (the original CSV's "Mean"), in layers: ξ = 0 centres the mass on conv1_1.
    pub xi: f64,
    /// Skew-normal scale ω (the CSV's "Variance"; a standard-deviation-like quantity, not a variance).
    pub omega: f64,
    /// Skew-normal shape α (the CSV's "Skew").
    pub alpha: f64,
    /// Widths of every conv layer, then of the two hidden FC layers (`vgg_depth − 1` entries).
    pub widths: Vec<i64>,
    /// The original CSV's "Parameters" (§2.5): weights only, 3 input channels, 1×1 features before the
    /// classifier.
    pub parameters: i64,
}

/// Layers per block in blocks 3 to 5 for `vgg_depth` (`L = (D − 7)/3`, §2.8): depths 10, 13, 16, 19, …
/// (VGG-B is 13, VGG-D 16, VGG-E 19; VGG-A cannot be expressed).
pub fn layers_per_block(vgg_depth: usize) -> Result<usize> {
    if vgg_depth < 10 || !(vgg_depth - 7).is_multiple_of(3) {
        return Err(input_err!(
            "--vgg-depth: expected a depth D with (D − 7) divisible by 3 and D ≥ 10 (10, 13, 16, 19, 22, …; \
             16 is VGG-D, 19 VGG-E), got {vgg_depth}."
        ));
    }
    Ok((vgg_depth - 7) / 3)
}

/// The unmodified VGG's widths, whose sum is the feature budget (§2.1): `[64, 64, 128, 128] ++ [256]·L
/// ++ [512]·2L ++ [C, C]`, with the hidden FC width C = 4096 for patches over 100 pixels, else 512.
pub fn base_widths(vgg_depth: usize, patch_size: i64) -> Result<Vec<i64>> {
    let l = layers_per_block(vgg_depth)?;
    let classifier = if patch_size > 100 { 4096 } else { 512 };
    let mut widths = vec![64, 64, 128, 128];
    widths.extend(std::iter::repeat_n(256, l));
    widths.extend(std::iter::repeat_n(512, 2 * l));
    widths.extend([classifier, classifier]);
    Ok(widths)
}

/// Skew-normal density with location `xi`, scale `omega` and shape `alpha` (§2.2).
fn skew_normal_pdf(x: f64, xi: f64, omega: f64, alpha: f64) -> f64 {
    let z = x - xi;
    (2.0 / std::f64::consts::PI).sqrt() / omega
        * (-(z * z) / (2.0 * omega * omega)).exp()
        * 0.5
        * (1.0 + libm::erf(alpha * z / omega / std::f64::consts::SQRT_2))
}

/// The density's mass per layer (§2.3): a trapezoid over each bin's 100 samples, i.e. over [k, k + 0.99]
/// (the original's quirk: a fully contained density sums to about 0.99).
fn bin_areas(bins: usize, xi: f64, omega: f64, alpha: f64) -> Vec<f64> {
    let pdf: Vec<f64> =
        (0..bins * SAMPLES_PER_BIN).map(|n| skew_normal_pdf(n as f64 * STEP, xi, omega, alpha)).collect();
    pdf.chunks(SAMPLES_PER_BIN).map(|bin| bin.windows(2).map(|p| STEP * (p[0] + p[1]) / 2.0).sum()).collect()
}

/// Every valid variant for `vgg_depth`, in the original's order (ξ outer, ω, α inner; §2.6), with the
/// "Parameters" figure for `num_classes` classes. `patch_size` is the input side (32 here), which picks
/// the hidden FC width of the budget.
pub fn variants(vgg_depth: usize, num_classes: i64, patch_size: i64) -> Result<Vec<Variant>> {
    let base = base_widths(vgg_depth, patch_size)?;
    let bins = base.len();
    let budget = base.iter().sum::<i64>() as f64;
    let mut out = Vec::new();
    for xi in (0..=bins).map(|m| m as f64) {
        for omega in (1..OMEGA_STEPS).map(|v| 0.5 * v as f64) {
            for alpha in (0..ALPHA_STEPS).map(|s| -40.0 + 4.0 * s as f64) {
                let areas = bin_areas(bins, xi, omega, alpha);
                if areas.iter().sum::<f64>() <= MIN_AREA {
                    continue;
                }
                let widths: Vec<i64> = areas.iter().map(|a| (a * budget).ceil() as i64).collect();
                if widths.iter().any(|&w| w < MIN_WIDTH) {
                    continue;
                }
                let parameters = csv_parameters(&widths, num_classes);
                out.push(Variant { id: out.len() + 1, xi, omega, alpha, widths, parameters });
            }
        }
    }
    Ok(out)
}

/// Variant `id` (1-based) of [`variants`]; the error names the valid range.
pub fn variant(vgg_depth: usize, num_classes: i64, patch_size: i64, id: usize) -> Result<Variant> {
    let all = variants(vgg_depth, num_classes, patch_size)?;
    let count = all.len();
    all.into_iter().nth(id.wrapping_sub(1)).ok_or_else(|| {
        input_err!("--variant: depth {vgg_depth} has variants 1 to {count}, got {id} (list them with `convtrain sweep vgg-features --list --vgg-depth {vgg_depth}`).")
    })
}

/// The original CSV's "Parameters" (§2.5): conv and FC weights plus the output layer's weights, for 3
/// input channels and a 1×1 map before the classifier; no BN parameters, no output bias.
pub fn csv_parameters(widths: &[i64], num_classes: i64) -> i64 {
    let convs = widths.len() - 2;
    let conv: i64 = 9 * 3 * widths[0] + (1..convs).map(|i| 9 * widths[i - 1] * widths[i]).sum::<i64>();
    let fc = widths[convs - 1] * widths[convs] + widths[convs] * widths[convs + 1];
    conv + fc + widths[convs + 1] * num_classes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// vgg_features.md Appendix A: id, ξ, ω, α, Parameters, widths (space separated).
    const APPENDIX_A: &str = include_str!("../../../tests/fixtures/vgg_features_appendix_a.csv");

    #[test]
    fn depth_16_reproduces_appendix_a() {
        let golden: Vec<Variant> = APPENDIX_A
            .lines()
            .skip(1)
            .map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                Variant {
                    id: f[0].parse().unwrap(),
                    xi: f[1].parse().unwrap(),
                    omega: f[2].parse().unwrap(),
                    alpha: f[3].parse().unwrap(),
                    parameters: f[4].parse().unwrap(),
                    widths: f[5].split(' ').map(|w| w.parse().unwrap()).collect(),
                }
            })
            .collect();
        assert_eq!(golden.len(), 193);
        let generated = variants(16, 10, 32).unwrap();
        assert_eq!(generated.len(), golden.len());
        for (g, want) in generated.iter().zip(&golden) {
            assert_eq!(g, want);
        }
    }

    #[test]
    fn depth_16_tallies_match_section_2_7() {
        let all = variants(16, 10, 32).unwrap();
        let per_xi: Vec<(usize, usize)> =
            (0..=15).map(|x| (x, all.iter().filter(|v| v.xi == x as f64).count())).filter(|&(_, n)| n > 0).collect();
        let want =
            [(0, 34), (1, 40), (2, 11), (3, 5), (4, 1), (6, 2), (7, 4), (8, 4), (9, 2), (11, 1), (12, 5), (13, 11)];
        assert_eq!(per_xi, [&want[..], &[(14, 40), (15, 33)]].concat());
        let sums: Vec<i64> = all.iter().map(|v| v.widths.iter().sum()).collect();
        assert_eq!((*sums.iter().min().unwrap(), *sums.iter().max().unwrap()), (4995, 5204));
        assert_eq!(all.iter().map(|v| v.parameters).max(), Some(31_953_977));
        assert_eq!(all.iter().map(|v| v.parameters).min(), Some(13_771_031));
    }

    #[test]
    fn base_widths_and_their_parameter_figure() {
        let d = base_widths(16, 32).unwrap();
        assert_eq!(d.len(), 15);
        assert_eq!(d.iter().sum::<i64>(), 5248);
        assert_eq!(csv_parameters(&d, 10), 15_239_872);
        assert_eq!(base_widths(13, 224).unwrap(), [64, 64, 128, 128, 256, 256, 512, 512, 512, 512, 4096, 4096]);
    }

    #[test]
    fn invalid_depths_and_ids_are_input_errors() {
        for d in [0, 7, 11, 15, 17] {
            let e = variants(d, 10, 32).unwrap_err().to_string();
            assert!(e.contains("--vgg-depth") && e.contains("10, 13, 16, 19"), "{e}");
        }
        for id in [0, 194] {
            let e = variant(16, 10, 32, id).unwrap_err().to_string();
            assert!(e.contains("--variant") && e.contains("1 to 193"), "{e}");
        }
        assert_eq!(variant(16, 10, 32, 193).unwrap().widths[0], 24);
    }
}
