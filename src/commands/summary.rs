//! `convtrain summary`: the per-layer table, parameter counts, weight-decay groups and MACs.
use crate::cli::{self, SummaryArgs};
use crate::error::{to_json_pretty, Result};
use crate::models::summary::summarize;
use crate::train::optimizer::param_groups;
use crate::train::trainer::{build_model, decay_exclusion};

pub fn run(a: &SummaryArgs) -> Result<()> {
    let cfg = cli::summary_config(a)?;
    let model = build_model(&cfg, tch::Device::Cpu)?;
    let groups = param_groups(model.named_parameters(), cfg.weight_decay, &decay_exclusion(&cfg, &model))
        .into_iter()
        .map(|g| (g.name.to_string(), g.weight_decay, g.num_elements()))
        .collect();
    let s = summarize(&model, groups);
    let mc = &model.config;
    if a.json {
        let doc = serde_json::json!({
            "arch": mc.arch, "dataset": cfg.dataset, "model": mc, "summary": s,
        });
        println!("{}", to_json_pretty(&doc, "the summary")?);
        return Ok(());
    }
    println!(
        "{} on {} ({} classes, {}x{}x{} input)\n",
        mc.arch, cfg.dataset, mc.num_classes, mc.in_channels, mc.image_size, mc.image_size
    );
    print!("{}", s.render());
    if let Some(report) = model.arch.report {
        print!("{}", report(&model)?);
    }
    Ok(())
}
