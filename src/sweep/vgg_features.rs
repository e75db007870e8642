//! The VGG feature-amount sweep as sweep points (vgg_features.md §2, §3.6, §5): one point per
//! skew-normal variant, its results row led by the original's descriptive columns, the original's
//! abort rule, and the cost of a variant from its widths.
use super::spec::Point;
use crate::config::TrainConfig;
use crate::data::dataset_info;
use crate::error::Result;
use crate::models::vgg_features::{self, abort_threshold, layers_per_block, Variant, VggFeaturesOptions};
use crate::train::hooks::{MinTrainAccuracy, StopRule};
use crate::train::setup::input_geometry;
use serde_json::json;

/// The original CSV's columns before its metrics (§5.1): widths as a Python list of floats (as the
/// original writes them, §8 pitfall 18), its parameter count (§2.5), and ξ, ω, α under its names.
pub const LABEL_COLUMNS: [&str; 5] = ["Filters", "Parameters", "Mean", "Variance", "Skew"];

/// The points for variants `ids` (1-based) of `variants` at `vgg_depth`, run directories `variant-NNN`.
pub fn points(variants: &[Variant], ids: &[usize], vgg_depth: usize) -> Vec<Point> {
    ids.iter()
        .filter_map(|&id| variants.get(id.wrapping_sub(1)))
        .map(|v| {
            let filters = v.widths.iter().map(|w| format!("{w}.0")).collect::<Vec<_>>().join(", ");
            Point {
                id: v.id,
                name: format!("variant-{:03}", v.id),
                overrides: json!({ "variant": v.id, "vgg_depth": vgg_depth }).as_object().cloned().unwrap_or_default(),
                labels: vec![
                    json!(format!("[{filters}]")),
                    json!(v.parameters),
                    json!(v.xi),
                    json!(v.omega),
                    json!(v.alpha),
                ],
                cost: 0.0,
            }
        })
        .collect()
}

/// The original's only stop rule (§3.6): after epoch `lr_wr_epochs` (1-based; the original's
/// 0-based epoch `lr_wr_epochs − 1`, [`vgg_features::ABORT_EPOCH`] with its default cycle of 10), a
/// variant whose running train top-1 is below 2·100/classes % stops; its row is written, as
/// `aborted`. The first SGDR cycle length here is `sgdr_t0`.
pub fn stop_rules(cfg: &TrainConfig) -> Result<Vec<Box<dyn StopRule>>> {
    let classes = dataset_info(&cfg.dataset, &cfg.data_dir())?.num_classes;
    Ok(vec![Box::new(MinTrainAccuracy { epoch: cfg.sgdr_t0, min_train_top1: abort_threshold(classes) })])
}

/// Forward multiply-accumulates of one image through the VGG with `widths` (every conv, then the two
/// hidden FC layers): each 3×3 convolution at its block's resolution, then the three linear layers —
/// what the layer trace counts (BN, ReLU, pooling and dropout count nothing). Built from the widths
/// alone, so planning a 193-variant sweep builds no network.
pub fn macs_per_image(widths: &[i64], in_channels: i64, image_size: i64, num_classes: i64) -> Result<i64> {
    let l = layers_per_block(widths.len() + 1)?;
    let (mut macs, mut channels, mut side, mut w) = (0i64, in_channels, image_size, widths.iter());
    for convs in [2, 2, l, l, l] {
        for width in w.by_ref().take(convs) {
            macs += 9 * channels * width * side * side;
            channels = *width;
        }
        side /= 2;
    }
    let features = channels * side * side;
    let (fc1, fc2) = (widths[widths.len() - 2], widths[widths.len() - 1]);
    Ok(macs + features * fc1 + fc1 * fc2 + fc2 * num_classes)
}

/// [`macs_per_image`] of the variant a point's configuration trains.
pub fn config_macs(cfg: &TrainConfig) -> Result<i64> {
    let info = dataset_info(&cfg.dataset, &cfg.data_dir())?;
    let (channels, side) = input_geometry(cfg, &info);
    let model = cfg.model_config(info.num_classes, channels, side);
    let options: VggFeaturesOptions = model.options()?;
    let (widths, _) = vgg_features::resolve(&model, &options)?;
    macs_per_image(&widths, channels, side, info.num_classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::spec::traced_macs;

    #[test]
    fn the_macs_from_the_widths_are_the_layer_traces() {
        for (depth, variant) in [(16, 169), (16, 94), (10, 1)] {
            let cfg = TrainConfig::resolve(
                json!({"arch": "vgg-features", "vgg_depth": depth, "variant": variant, "dataset": "cifar10"}),
                json!({}),
                "test",
            )
            .unwrap();
            assert_eq!(config_macs(&cfg).unwrap(), traced_macs(&cfg).unwrap(), "depth {depth} variant {variant}");
        }
    }

    #[test]
    fn points_carry_the_originals_columns() {
        let all = vgg_features::variants(16, 10, 32).unwrap();
        let p = &points(&all, &[1, 193], 16)[0];
        assert_eq!(p.name, "variant-001");
        assert_eq!(p.overrides, json!({"variant": 1, "vgg_depth": 16}).as_object().cloned().unwrap());
        assert_eq!(
            p.labels,
            vec![
                json!(
                    "[823.0, 961.0, 852.0, 708.0, 552.0, 405.0, 279.0, 181.0, 110.0, 63.0, 34.0, 17.0, 9.0, 4.0, 2.0]"
                ),
                json!(27206551),
                json!(0.0),
                json!(4.0),
                json!(8.0)
            ]
        );
        let cfg =
            TrainConfig::resolve(json!({"arch": "vgg-features", "dataset": "mnist", "sgdr_t0": 3}), json!({}), "t")
                .unwrap();
        let rule = &stop_rules(&cfg).unwrap()[0];
        let row = |epoch, train_top1| crate::train::log::EpochRow { epoch, train_top1, ..Default::default() };
        assert!(
            rule.check(&row(3, 19.9)).is_some()
                && rule.check(&row(3, 20.0)).is_none()
                && rule.check(&row(2, 1.0)).is_none()
        );
    }
}
