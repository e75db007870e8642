//! The fixed list of benchmark rows (`convtrain bench --list`).
use crate::error::Result;
use crate::input_err;
use serde_json::json;

/// What a row measures.
#[derive(Debug, Clone, PartialEq)]
pub enum RowKind {
    /// A model's training step and evaluation pass on random data; `settings` are training settings
    /// (the keys of a recipe file) resolved like `train`'s, so the architecture's recipe applies.
    Model { settings: serde_json::Value, batch: i64 },
    /// The augmentation path of a dataset on synthetic images: `prefetch` runs it through the
    /// loader's background thread, otherwise on the calling thread.
    Pipeline { dataset: Synthetic, prefetch: bool },
    /// `batches` training steps fed by the prefetching loader with the dataset's augmentation.
    Epoch { settings: serde_json::Value, dataset: Synthetic, batches: usize },
}

/// A synthetic dataset in a real one's shape with the augmentation its recipe uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Synthetic {
    /// 3×32×32, `flip, crop:4` (the CIFAR recipes).
    Cifar,
    /// 1×28×28, `rotate:15, crop:2` (the checkered toy CCNN's recipe, checkered.md §5.1).
    Mnist,
}

impl Synthetic {
    /// (dataset name, channels, side, train ops)
    pub fn describe(self) -> (&'static str, i64, i64, &'static [&'static str]) {
        match self {
            Synthetic::Cifar => ("cifar10", 3, 32, &["flip", "crop:4"]),
            Synthetic::Mnist => ("mnist", 1, 28, &["rotate:15", "crop:2"]),
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What `--filter` matches and `--json` names.
    pub id: &'static str,
    pub label: &'static str,
    /// Said in the table: what the reference does differently (a batch below the recipe's is added).
    pub note: &'static str,
    pub kind: RowKind,
}

/// Images per batch of the pipeline and epoch rows.
pub const PIPELINE_BATCH: i64 = 128;
/// Synthetic images the pipeline rows go through per repeat.
pub const PIPELINE_IMAGES: i64 = 2560;

fn model(id: &'static str, label: &'static str, note: &'static str, batch: i64, settings: serde_json::Value) -> Row {
    Row { id, label, note, kind: RowKind::Model { settings, batch } }
}

/// Every row, in table order.
pub fn all() -> Vec<Row> {
    let mut rows = vec![
        model("wrn-16-4", "WRN-16-4", "", 16, json!({"arch": "wrn", "depth": 16, "width": 4})),
        model("swrn-16-4-2", "SWRN-16-4-2", "", 16, json!({"arch": "swrn", "depth": 16, "width": 4, "bank_size": 2})),
        model(
            "ccnn-toy",
            "toy CCNN (MNIST)",
            "reference: the original four-convolution checkered layers",
            64,
            json!({"arch": "ccnn-toy", "dataset": "mnist"}),
        ),
        model("tiny-cnn", "Tiny CNN (MNIST)", "", 64, json!({"arch": "tiny-cnn", "dataset": "mnist"})),
        model(
            "resnet18-checkered",
            "ResNet-18, checkered",
            "reference: the original four-convolution checkered layers",
            4,
            json!({"arch": "resnet18", "checkered": true}),
        ),
        model("diracnet-16-2", "DiracNet-16-2", "", 16, json!({"arch": "diracnet", "depth": 16, "width": 2})),
        model("diracnet-34-2", "DiracNet-34-2", "", 16, json!({"arch": "diracnet", "depth": 34, "width": 2})),
        model("csg-resnet56", "CSG ResNet-56", "", 16, json!({"arch": "csg-resnet", "depth": 56})),
        model("csg-resnet56-org", "ResNet-56 (CSG baseline)", "", 16, json!({"arch": "csg-resnet-org", "depth": 56})),
        model(
            "csg-densenet-bc-40-48",
            "CSG DenseNet-BC-40-48",
            "",
            4,
            json!({"arch": "csg-densenet", "depth": 40, "width": 48}),
        ),
        model(
            "csg-densenet-bc-40-48-org",
            "DenseNet-BC-40-48 (CSG baseline)",
            "",
            4,
            json!({"arch": "csg-densenet-org", "depth": 40, "width": 48}),
        ),
        model("vgg-features-1", "VGG features #1 (11 GMACs)", "", 2, json!({"arch": "vgg-features", "variant": 1})),
        model("vgg-features-193", "VGG features #193", "", 16, json!({"arch": "vgg-features", "variant": 193})),
    ];
    for (dataset, ids, labels) in [
        (
            Synthetic::Cifar,
            ["pipeline-cifar", "pipeline-cifar-prefetch"],
            ["CIFAR flip+crop, 1 thread", "CIFAR flip+crop, prefetched"],
        ),
        (
            Synthetic::Mnist,
            ["pipeline-mnist", "pipeline-mnist-prefetch"],
            ["MNIST rotate+crop, 1 thread", "MNIST rotate+crop, prefetched"],
        ),
    ] {
        for (prefetch, (id, label)) in [false, true].into_iter().zip(ids.into_iter().zip(labels)) {
            let note = if prefetch {
                "the loader's background thread; reference: DataLoader(num_workers=2)"
            } else {
                "reference: per-image transforms, DataLoader(num_workers=0)"
            };
            rows.push(Row { id, label, note, kind: RowKind::Pipeline { dataset, prefetch } });
        }
    }
    rows.push(Row {
        id: "epoch-ccnn-toy",
        label: "toy CCNN epoch (10 batches)",
        note: "loader + augmentation + steps; reference: DataLoader(num_workers=2)",
        kind: RowKind::Epoch {
            settings: json!({"arch": "ccnn-toy", "dataset": "mnist"}),
            dataset: Synthetic::Mnist,
            batches: 10,
        },
    });
    rows
}

/// The rows chosen by the comma-separated `filter` terms (all rows without a filter): a term that is a
/// row's id picks that row, any other term every row whose id contains it.
pub fn select(filter: Option<&str>) -> Result<Vec<Row>> {
    let rows = all();
    let Some(filter) = filter else { return Ok(rows) };
    let terms: Vec<&str> = filter.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
    let exact = |t: &str| rows.iter().any(|r| r.id == t);
    let picks = |r: &Row| terms.iter().any(|&t| if exact(t) { r.id == t } else { r.id.contains(t) });
    let chosen: Vec<Row> = rows.iter().filter(|r| picks(r)).cloned().collect();
    if chosen.is_empty() {
        let ids: Vec<&str> = rows.iter().map(|r| r.id).collect();
        return Err(input_err!(
            "--filter '{filter}' matches no benchmark row (a comma-separated term picks the row of that id, or \
             every row whose id contains it). Rows: {}.",
            ids.join(", ")
        ));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;

    #[test]
    fn ids_are_unique_and_every_model_row_resolves() {
        let rows = all();
        let mut ids: Vec<&str> = rows.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), rows.len());
        for r in &rows {
            if let RowKind::Model { settings, .. } | RowKind::Epoch { settings, .. } = &r.kind {
                TrainConfig::resolve(settings.clone(), serde_json::Value::Null, r.id).unwrap();
            }
        }
    }

    #[test]
    fn filter_terms_pick_rows_and_an_unmatched_filter_lists_them() {
        let picked: Vec<&str> = select(Some("wrn-16, tiny")).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(picked, ["wrn-16-4", "swrn-16-4-2", "tiny-cnn"]);
        let exact: Vec<&str> = select(Some("wrn-16-4")).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(exact, ["wrn-16-4"]);
        let e = select(Some("resnet9000")).unwrap_err().to_string();
        assert!(e.contains("--filter 'resnet9000'") && e.contains("csg-resnet56-org"), "{e}");
    }
}
