//! `convtrain sweep`: a paper's architecture sweep. `vgg-features --list` prints the variants of the
//! layer-wise feature-amount sweep (vgg_features.md §2.6) with both parameter counts: the original
//! CSV's "Parameters" (§2.5) and the trainable count of the network for the dataset.
use crate::cli::{self, ListFormat, SweepTarget, VggFeaturesSweepArgs};
use crate::error::{to_json, Result};
use crate::input_err;
use crate::models::vgg_features::{self, Variant, VggFeaturesOptions};
use crate::train::setup::input_geometry;
use serde::Serialize;

pub fn run(target: SweepTarget) -> Result<()> {
    match target {
        SweepTarget::VggFeatures(a) => vgg_features_sweep(&a),
    }
}

/// One listed variant: the generator's fields and the network's trainable parameter count.
#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    variant: &'a Variant,
    trainable: i64,
}

fn vgg_features_sweep(a: &VggFeaturesSweepArgs) -> Result<()> {
    if !a.list {
        return Err(input_err!(
            "sweep vgg-features: training a sweep: not in this build. `--list` prints the variants; train one with \
             `convtrain train --arch vgg-features --variant N`."
        ));
    }
    let cfg = cli::vgg_features_sweep_config(a)?;
    let info = crate::data::dataset_info(&cfg.dataset, &cfg.data_dir())?;
    let (channels, side) = input_geometry(&cfg, &info);
    let model = cfg.model_config(info.num_classes, channels, side);
    let options: VggFeaturesOptions = model.options()?;
    let (_, settings) = vgg_features::resolve(&model, &options)?;
    let depth = options.vgg_depth.unwrap_or(vgg_features::DEFAULT_VGG_DEPTH);
    let variants = vgg_features::variants(depth, info.num_classes, side)?;
    let listed: Vec<Listed> = variants
        .iter()
        .map(|v| Listed { variant: v, trainable: vgg_features::trainable_parameters(&v.widths, &settings) })
        .collect();
    let text = match a.format {
        ListFormat::Json => json(&listed)?,
        ListFormat::Csv => csv(&listed),
        ListFormat::Table => {
            let title = format!(
                "vgg-features sweep, --vgg-depth {depth}, {} ({} classes, {channels}x{side}x{side} input): {} variants",
                cfg.dataset,
                info.num_classes,
                listed.len()
            );
            table(&title, &listed)
        }
    };
    print!("{text}");
    Ok(())
}

impl Listed<'_> {
    /// id, ξ, ω, α, parameters, trainable and the widths joined by `separator`.
    fn cells(&self, separator: &str) -> [String; 7] {
        let v = self.variant;
        let widths = v.widths.iter().map(i64::to_string).collect::<Vec<_>>().join(separator);
        let shape = [v.xi, v.omega, v.alpha].map(|x| format!("{x:.1}"));
        let [xi, omega, alpha] = shape;
        [v.id.to_string(), xi, omega, alpha, v.parameters.to_string(), self.trainable.to_string(), widths]
    }
}

/// `id,xi,omega,alpha,parameters,trainable,widths`, the widths space separated.
fn csv(listed: &[Listed]) -> String {
    let mut s = String::from("id,xi,omega,alpha,parameters,trainable,widths\n");
    for l in listed {
        s += &l.cells(" ").join(",");
        s.push('\n');
    }
    s
}

/// A JSON array, one variant object per line.
fn json(listed: &[Listed]) -> Result<String> {
    let lines: Vec<String> = listed.iter().map(|l| to_json(l, "a variant")).collect::<Result<_>>()?;
    Ok(format!("[\n  {}\n]\n", lines.join(",\n  ")))
}

/// Right-aligned columns, the widths last.
fn table(title: &str, listed: &[Listed]) -> String {
    const COLUMNS: [usize; 6] = [4, 5, 5, 6, 11, 11];
    let line = |cells: &[String]| {
        let numbers: Vec<String> = COLUMNS.iter().zip(cells).map(|(w, c)| format!("{c:>w$}")).collect();
        format!("{}  {}\n", numbers.join(" "), cells[6])
    };
    let mut s = format!("{title}\n");
    s += "parameters: the original CSV's count (weights only, §2.5); trainable: this network's (BN and bias too)\n\n";
    let header = ["id", "ξ", "ω", "α", "parameters", "trainable", "widths (convs, fc1, fc2)"];
    s += &line(&header.map(String::from));
    for l in listed {
        s += &line(&l.cells(","));
    }
    s
}
