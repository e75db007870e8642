//! `convtrain bench`: a fixed, listed set of measurements of convtrain's own training engine, and the
//! same measurements of PyTorch eager on the same libtorch, interleaved (see [`reference`]).
//!
//! Three kinds of rows ([`rows`]): a model's training step (forward, loss, backward, SGD update, on
//! random data, exactly the trainer's step) and its evaluation forward pass, in images/s, with the
//! peak resident memory and the MACs-based achieved GFLOP/s; the data pipeline alone (images/s of the
//! CIFAR and MNIST augmentation paths, on one thread and through the prefetching loader); and a short
//! end-to-end epoch (loader, augmentation, training steps). Every number is the median of `repeats`
//! repeats, each the median of `steps` timed steps after a warm-up; the spread of the repeats is
//! kept, and with the reference each repeat of convtrain is followed by the same repeat of PyTorch,
//! so that a ratio compares two measurements taken under the same load.
pub mod data_rows;
pub mod model_rows;
pub mod reference;
pub mod report;
pub mod rows;

use crate::error::Result;
use crate::input_err;
use crate::precision::Precision;
use crate::train::memory::{peak_rss_bytes, reset_peak_rss};
use data_rows::PipelineBench;
use model_rows::ModelBench;
use reference::{Agreement, Reference};
use report::{Baseline, BenchReport, ReferenceResult, RowResult};
use rows::{Row, RowKind, PIPELINE_BATCH, PIPELINE_IMAGES};
use serde::Serialize;
use serde_json::json;
use tch::Device;

/// How the rows are measured.
#[derive(Debug, Clone)]
pub struct Settings {
    pub device: Device,
    /// libtorch intra-op threads (both sides).
    pub threads: usize,
    /// Repeats of every measurement; the table shows their median and spread.
    pub repeats: usize,
    /// Timed steps (or batches) per repeat, after one warm-up step.
    pub steps: usize,
    /// Overrides every model row's batch size.
    pub batch: Option<i64>,
    /// The forward passes' arithmetic and memory order of every model and epoch row (both sides).
    /// Other than fp32 and NCHW, each model row is also measured as fp32 NCHW, interleaved: the
    /// table's speed-up column.
    pub precision: Precision,
    pub channels_last: bool,
}

impl Settings {
    /// Whether the rows run other than in fp32 and the default memory order.
    fn changes_execution(&self) -> bool {
        self.precision != Precision::Fp32 || self.channels_last
    }

    /// Refuses settings that measure nothing.
    pub fn validate(&self) -> Result<()> {
        if self.repeats == 0 || self.steps == 0 {
            return Err(input_err!(
                "--repeats {} --steps {}: both must be at least 1 (a median needs one measurement).",
                self.repeats,
                self.steps
            ));
        }
        if self.batch.is_some_and(|b| b < 1) {
            return Err(input_err!("--batch must be at least 1."));
        }
        Ok(())
    }
}

/// Repeated measurements of one rate (images/s), one value per repeat.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Samples {
    pub values: Vec<f64>,
}

impl Samples {
    pub fn push(&mut self, v: f64) {
        self.values.push(v);
    }

    /// The median of the values (the mean of the middle two for an even count); NaN when empty.
    pub fn median(&self) -> f64 {
        median(&self.values)
    }

    /// Half the range of the values relative to their median, in percent: the table's `±`.
    pub fn spread_percent(&self) -> f64 {
        let (lo, hi) = self.range();
        50.0 * (hi - lo) / self.median()
    }

    /// The value of each repeat divided by the same repeat of `other` (interleaved pairs).
    pub fn ratios(&self, other: &Samples) -> Samples {
        Samples { values: self.values.iter().zip(&other.values).map(|(a, b)| a / b).collect() }
    }

    /// Smallest and largest value (infinities when empty).
    pub fn range(&self) -> (f64, f64) {
        self.values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)))
    }
}

/// The median of `values`; NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Waits for the device's queued work (CUDA kernels run asynchronously; the CPU runs them in place).
pub fn synchronize(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Times `step` `steps` times (the caller warms up) and returns the median in seconds.
pub fn median_seconds(device: Device, steps: usize, mut step: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t = std::time::Instant::now();
        step()?;
        synchronize(device);
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(median(&times))
}

/// The CPU's model name (`/proc/cpuinfo`), or "unknown CPU".
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Measures `rows` with `s`, interleaved with `reference` when given; `progress` hears which row is
/// being measured.
pub fn run(
    rows: &[Row],
    s: &Settings,
    mut reference: Option<&mut Reference>,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchReport> {
    let mut results = Vec::with_capacity(rows.len());
    for row in rows {
        progress(row.id);
        let r = reference.as_deref_mut();
        let result = match &row.kind {
            RowKind::Model { settings, batch } => measure_model(row, settings, s.batch.unwrap_or(*batch), s, r)?,
            RowKind::Pipeline { dataset, prefetch } => {
                let bench = PipelineBench::new(*dataset, PIPELINE_IMAGES, s.device)?;
                let request = json!({"cmd": "pipeline", "dataset": dataset.describe().0, "images": PIPELINE_IMAGES,
                                     "batch": PIPELINE_BATCH, "workers": if *prefetch { 2 } else { 0 }});
                measure_pass(row, s, r, None, request, |epoch| bench.rate(*prefetch, epoch))?
            }
            RowKind::Epoch { settings, dataset, batches } => {
                let images = PIPELINE_BATCH * *batches as i64;
                let data = PipelineBench::new(*dataset, images, s.device)?;
                let mut model = ModelBench::build(row.id, settings, PIPELINE_BATCH, s)?;
                let loaded = match &r {
                    Some(r) => Some((model.export_for_reference(row.id, &r.dir)?, model.model.num_parameters())),
                    None => None,
                };
                let request = json!({"cmd": "epoch", "dataset": dataset.describe().0, "images": images,
                                     "batch": PIPELINE_BATCH, "workers": 2});
                measure_pass(row, s, r, loaded, request, |epoch| data.epoch_rate(&mut model, epoch))?
            }
        };
        results.push(result.with_gflops());
    }
    let (y, mo, d, h, mi, _) = crate::train::utc_now();
    Ok(BenchReport {
        date_utc: format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}"),
        cpu: cpu_model(),
        device: format!("{:?}", s.device).to_lowercase(),
        threads: s.threads,
        precision: s.precision.name().into(),
        channels_last: s.channels_last,
        repeats: s.repeats,
        steps: s.steps,
        libtorch: crate::LIBTORCH_VERSION.into(),
        reference_torch: reference.map(|r| r.torch_version.clone()),
        rows: results,
    })
}

fn measure_model(
    row: &Row,
    settings: &serde_json::Value,
    batch: i64,
    s: &Settings,
    mut reference: Option<&mut Reference>,
) -> Result<RowResult> {
    let mut bench = ModelBench::build(row.id, settings, batch, s)?;
    let parameters = bench.model.num_parameters();
    let mut theirs = match reference.as_deref_mut() {
        Some(r) => {
            let description = bench.export_for_reference(row.id, &r.dir)?;
            let agreement = r.load_model(&description, parameters)?;
            Some(ReferenceResult { agreement: Some(agreement), eval: Some(Samples::default()), ..Default::default() })
        }
        None => None,
    };
    // A reference that computes something else is not timed.
    let mut timed = reference.filter(|_| theirs.as_ref().and_then(|t| t.agreement.as_ref()).is_some_and(|a| a.agrees));
    // The same row in fp32 and NCHW, for the speed-up of --precision / --channels-last.
    let plain_settings = Settings { precision: Precision::Fp32, channels_last: false, ..s.clone() };
    let mut plain = match s.changes_execution() {
        true => Some((ModelBench::build(row.id, settings, batch, &plain_settings)?, Baseline::default())),
        false => None,
    };
    if let Some((p, _)) = plain.as_mut() {
        p.warm_up()?;
    }
    reset_peak_rss();
    bench.warm_up()?;
    if let Some(r) = timed.as_deref_mut() {
        r.call(json!({"cmd": "warm_up"}))?;
    }
    let (mut train, mut eval) = (Samples::default(), Samples::default());
    for _ in 0..s.repeats {
        train.push(bench.train_rate(s.steps)?);
        eval.push(bench.eval_rate(s.steps)?);
        if let Some((p, b)) = plain.as_mut() {
            b.throughput.push(p.train_rate(s.steps)?);
            b.eval.push(p.eval_rate(s.steps)?);
        }
        if let (Some(r), Some(t)) = (timed.as_deref_mut(), theirs.as_mut()) {
            t.throughput.push(batch as f64 / r.seconds(json!({"cmd": "train", "steps": s.steps}))?);
            if let Some(e) = t.eval.as_mut() {
                e.push(batch as f64 / r.seconds(json!({"cmd": "eval", "steps": s.steps}))?);
            }
        }
    }
    if let (Some(r), Some(t)) = (timed, theirs.as_mut()) {
        t.peak_rss_bytes = r.peak_rss()?;
    }
    Ok(RowResult {
        id: row.id.into(),
        label: row.label.into(),
        kind: "model",
        note: batch_note(batch, bench.cfg.batch_size, row.note),
        batch,
        parameters: Some(parameters),
        macs_per_image: Some(bench.macs),
        throughput: train,
        eval: Some(eval),
        train_gflops: None,
        eval_gflops: None,
        peak_rss_bytes: peak_rss_bytes(),
        reference: theirs,
        baseline: plain.map(|(_, b)| b),
    })
}

/// Checks, for every model and epoch row, that the reference computes what convtrain does (parameter
/// count, eval-mode logits on shared weights), without timing anything.
pub fn verify(rows: &[Row], s: &Settings, reference: &mut Reference) -> Result<Vec<(&'static str, Agreement)>> {
    let mut checked = Vec::new();
    for row in rows {
        let (settings, batch) = match &row.kind {
            RowKind::Model { settings, batch } => (settings, s.batch.unwrap_or(*batch)),
            RowKind::Epoch { settings, .. } => (settings, PIPELINE_BATCH),
            RowKind::Pipeline { .. } => continue,
        };
        let bench = ModelBench::build(row.id, settings, batch.min(4), s)?;
        let description = bench.export_for_reference(row.id, &reference.dir)?;
        checked.push((row.id, reference.load_model(&description, bench.model.num_parameters())?));
    }
    Ok(checked)
}

/// A row's note, with a batch below the recipe's said first (a CPU-sized default, or `--batch`).
fn batch_note(batch: i64, recipe: usize, note: &str) -> String {
    let small = (batch < recipe as i64).then(|| format!("batch {batch}, below the recipe's {recipe}"));
    small.into_iter().chain((!note.is_empty()).then(|| note.to_string())).collect::<Vec<_>>().join("; ")
}

/// A row timed as whole passes (`pass(repeat)` returns images/s), after one warm-up pass; the
/// reference loads `model` first when given (the epoch row) and answers `request` with seconds.
fn measure_pass(
    row: &Row,
    s: &Settings,
    mut reference: Option<&mut Reference>,
    model: Option<(serde_json::Value, i64)>,
    request: serde_json::Value,
    mut pass: impl FnMut(u64) -> Result<f64>,
) -> Result<RowResult> {
    let images = request["images"].as_f64().unwrap_or(f64::NAN);
    let mut theirs = None;
    if let Some(r) = reference.as_deref_mut() {
        let agreement = match &model {
            Some((description, parameters)) => Some(r.load_model(description, *parameters)?),
            None => None,
        };
        theirs = Some(ReferenceResult { agreement, ..Default::default() });
    }
    let mut timed =
        reference.filter(|_| theirs.as_ref().is_some_and(|t| t.agreement.as_ref().is_none_or(|a| a.agrees)));
    pass(0)?;
    if let Some(r) = timed.as_deref_mut() {
        r.seconds(request.clone())?;
    }
    let mut ours = Samples::default();
    for repeat in 1..=s.repeats as u64 {
        ours.push(pass(repeat)?);
        if let (Some(r), Some(t)) = (timed.as_deref_mut(), theirs.as_mut()) {
            t.throughput.push(images / r.seconds(request.clone())?);
        }
    }
    Ok(RowResult {
        id: row.id.into(),
        label: row.label.into(),
        kind: if model.is_some() { "epoch" } else { "pipeline" },
        note: row.note.into(),
        batch: request["batch"].as_i64().unwrap_or(0),
        parameters: model.as_ref().map(|m| m.1),
        macs_per_image: None,
        throughput: ours,
        eval: None,
        train_gflops: None,
        eval_gflops: None,
        peak_rss_bytes: None,
        reference: theirs,
        baseline: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_spreads_and_paired_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let a = Samples { values: vec![90.0, 100.0, 110.0] };
        assert!((a.spread_percent() - 10.0).abs() < 1e-12);
        let b = Samples { values: vec![45.0, 40.0, 55.0] };
        assert_eq!(a.ratios(&b).values, vec![2.0, 2.5, 2.0]);
        assert_eq!(a.ratios(&b).range(), (2.0, 2.5));
        let bad = Settings {
            device: Device::Cpu,
            threads: 1,
            repeats: 0,
            steps: 1,
            batch: None,
            precision: Precision::Fp32,
            channels_last: false,
        };
        assert!(matches!(bad.validate(), Err(crate::Error::Input(_))));
    }
}
