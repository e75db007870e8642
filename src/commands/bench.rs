//! `convtrain bench`: the rows chosen by `--filter`, measured (and with `--against-pytorch` measured in
//! PyTorch eager too, interleaved), printed as one table or as JSON.
use crate::bench::reference::{default_python, default_script, Reference};
use crate::bench::rows::{self, RowKind};
use crate::bench::{run as run_bench, verify, Settings};
use crate::cli::BenchArgs;
use crate::error::{to_json_pretty, Result};
use crate::internal_err;
use crate::train::{parse_device, set_threads};

pub fn run(a: &BenchArgs) -> Result<()> {
    let rows = rows::select(a.filter.as_deref())?;
    if a.list {
        for r in &rows {
            let what = match &r.kind {
                RowKind::Model { settings, batch } => format!("batch {batch}, {settings}"),
                RowKind::Pipeline { dataset, prefetch } => {
                    let (name, _, _, ops) = dataset.describe();
                    format!(
                        "{name} {}{}",
                        ops.join(","),
                        if *prefetch { ", prefetching loader" } else { ", one thread" }
                    )
                }
                RowKind::Epoch { settings, batches, .. } => {
                    format!("{batches} batches of {}, {settings}", rows::PIPELINE_BATCH)
                }
            };
            println!("{:<28} {:<34} {what}", r.id, r.label);
        }
        return Ok(());
    }
    let device = parse_device(&a.device)?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let requested = a.threads.unwrap_or(cores);
    if let Some(warning) = set_threads(requested) {
        eprintln!("warning: {warning}");
    }
    let settings = Settings {
        device,
        threads: tch::get_num_threads() as usize,
        repeats: a.repeats,
        steps: a.steps,
        batch: a.batch,
        precision: a.precision,
        channels_last: a.channels_last,
    };
    settings.validate()?;
    if let Some(w) = a.precision.slow_on(device) {
        eprintln!("warning: {w}");
    }
    let mut reference = if a.against_pytorch {
        let python = a.python.clone().unwrap_or_else(default_python);
        let script = a.reference_script.clone().unwrap_or_else(default_script);
        Some(Reference::start(&python, &script, settings.threads, &torch_device_name(device))?)
    } else {
        None
    };
    if let (true, Some(r)) = (a.verify_only, reference.as_mut()) {
        let checked = verify(&rows, &settings, r)?;
        for (id, g) in &checked {
            let verdict = if g.agrees { "same" } else { "DIFFERENT" };
            println!(
                "{id:<28} {verdict:<9} {} parameters, eval logits max relative difference {:.1e}",
                g.parameters, g.relative_difference
            );
        }
        return disagreements(checked.iter().filter(|(_, g)| !g.agrees).map(|(id, _)| *id).collect());
    }
    let total = rows.len();
    let mut done = 0;
    let report = run_bench(&rows, &settings, reference.as_mut(), &mut |id| {
        done += 1;
        eprintln!("[{done}/{total}] {id}");
    })?;
    if a.json {
        println!("{}", to_json_pretty(&report, "the bench results")?);
    } else {
        print!("{}", report.render());
    }
    disagreements(
        report
            .rows
            .iter()
            .filter(|r| r.reference.as_ref().and_then(|p| p.agreement.as_ref()).is_some_and(|g| !g.agrees))
            .map(|r| r.id.as_str())
            .collect(),
    )
}

/// The error for rows whose PyTorch model computes something else (none: success).
fn disagreements(ids: Vec<&str>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    Err(internal_err!(
        "the PyTorch reference computes something else for {} (parameter count, or eval logits beyond a relative \
         difference of {:e}); those rows were not timed against it.",
        ids.join(", "),
        crate::bench::reference::TOLERANCE
    ))
}

/// The device as PyTorch names it.
fn torch_device_name(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}
