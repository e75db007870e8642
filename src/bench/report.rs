//! The results of a bench: one [`RowResult`] per row, the terminal table and the JSON document.
use super::reference::Agreement;
use super::Samples;
use serde::Serialize;
use std::fmt::Write;

/// What the PyTorch side measured for a row.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReferenceResult {
    /// The check made before timing (model rows); a row that disagrees is not timed.
    pub agreement: Option<Agreement>,
    pub throughput: Samples,
    pub eval: Option<Samples>,
    pub peak_rss_bytes: Option<u64>,
}

/// The same model row measured in fp32 and the default memory order, interleaved with the row's own
/// repeats (when `--precision` or `--channels-last` changed how the row runs).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Baseline {
    pub throughput: Samples,
    pub eval: Samples,
}

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct RowResult {
    pub id: String,
    pub label: String,
    /// `model`, `pipeline` or `epoch`.
    pub kind: &'static str,
    pub note: String,
    pub batch: i64,
    pub parameters: Option<i64>,
    pub macs_per_image: Option<i64>,
    /// Images/s of the row's main measurement: the training step, the pipeline pass, the epoch.
    pub throughput: Samples,
    /// Images/s of the evaluation pass (model rows).
    pub eval: Option<Samples>,
    /// Achieved GFLOP/s of the training step: 3 × 2 × MACs per image (forward, and a backward
    /// counted as twice the forward) × the median images/s.
    pub train_gflops: Option<f64>,
    /// Achieved GFLOP/s of the evaluation pass: 2 × MACs × images/s.
    pub eval_gflops: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub reference: Option<ReferenceResult>,
    pub baseline: Option<Baseline>,
}

impl RowResult {
    /// Fills in the GFLOP/s from the MACs and the medians.
    pub fn with_gflops(mut self) -> RowResult {
        if let Some(macs) = self.macs_per_image {
            let g = |passes: f64, s: &Samples| passes * 2.0 * macs as f64 * s.median() / 1e9;
            if self.kind == "model" {
                self.train_gflops = Some(g(3.0, &self.throughput));
            }
            self.eval_gflops = self.eval.as_ref().map(|e| g(1.0, e));
        }
        self
    }
}

/// A whole bench: the machine, the settings and the rows.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub date_utc: String,
    pub cpu: String,
    pub device: String,
    pub threads: usize,
    /// The rows' arithmetic (`fp32`, `bf16`, `fp16`) and memory order.
    pub precision: String,
    pub channels_last: bool,
    pub repeats: usize,
    pub steps: usize,
    pub libtorch: String,
    pub reference_torch: Option<String>,
    pub rows: Vec<RowResult>,
}

fn rate(s: &Samples) -> String {
    if s.values.is_empty() {
        return "-".into();
    }
    format!("{:.1} ±{:.0}%", s.median(), s.spread_percent())
}

fn ratio(ours: &Samples, theirs: &Samples) -> String {
    let r = ours.ratios(theirs);
    if r.values.is_empty() {
        return "-".into();
    }
    let (lo, hi) = r.range();
    format!("{:.2}× ({lo:.2}–{hi:.2})", r.median())
}

fn mib(b: Option<u64>) -> String {
    b.map_or("-".into(), |b| format!("{:.0}", b as f64 / (1 << 20) as f64))
}

impl BenchReport {
    /// The terminal table: one line per row; with the reference, PyTorch's rates and the paired
    /// convtrain/PyTorch ratios (median and range over the interleaved repeats).
    pub fn render(&self) -> String {
        let with_ref = self.reference_torch.is_some();
        let with_baseline = self.rows.iter().any(|r| r.baseline.is_some());
        let mut s = String::new();
        let _ = writeln!(
            s,
            "convtrain bench, {} UTC, {}, device {}, {} threads, {}{}, libtorch {}{}; median of {} repeats × {} steps, ± half the range",
            self.date_utc,
            self.cpu,
            self.device,
            self.threads,
            self.precision,
            if self.channels_last { " channels-last" } else { "" },
            self.libtorch,
            self.reference_torch.as_ref().map_or(String::new(), |t| format!(" (PyTorch {t}, interleaved)")),
            self.repeats,
            self.steps
        );
        let mut header = format!(
            "{:<34} {:>5} {:>16} {:>16} {:>13} {:>7}",
            "row", "batch", "img/s", "eval img/s", "GFLOP/s", "RSS MiB"
        );
        if with_baseline {
            let _ = write!(header, " {:>20} {:>20}", "× fp32 (range)", "× fp32 eval (range)");
        }
        if with_ref {
            let _ = write!(
                header,
                " {:>16} {:>20} {:>16} {:>20} {:>8} {:>9}",
                "PyTorch img/s", "× (range)", "PyTorch eval", "× eval (range)", "PT MiB", "check"
            );
        }
        let _ = writeln!(s, "{header}");
        for r in &self.rows {
            let gflops = match (r.train_gflops, r.eval_gflops) {
                (Some(t), Some(e)) => format!("{t:.0} / {e:.0}"),
                _ => "-".into(),
            };
            let eval = r.eval.as_ref().map_or("-".into(), rate);
            let _ = write!(
                s,
                "{:<34} {:>5} {:>16} {:>16} {:>13} {:>7}",
                r.label,
                r.batch,
                rate(&r.throughput),
                eval,
                gflops,
                mib(r.peak_rss_bytes)
            );
            if with_baseline {
                let (t, e) = match (&r.baseline, &r.eval) {
                    (Some(b), Some(e)) => (ratio(&r.throughput, &b.throughput), ratio(e, &b.eval)),
                    _ => ("-".into(), "-".into()),
                };
                let _ = write!(s, " {t:>20} {e:>20}");
            }
            if let Some(p) = &r.reference {
                let check = match &p.agreement {
                    Some(a) if a.agrees => format!("{:.0e}", a.relative_difference),
                    Some(_) => "DIFFERS".into(),
                    None => "-".into(),
                };
                let (pe, re) = match (&p.eval, &r.eval) {
                    (Some(pe), Some(e)) => (rate(pe), ratio(e, pe)),
                    _ => ("-".into(), "-".into()),
                };
                let _ = write!(
                    s,
                    " {:>16} {:>20} {:>16} {:>20} {:>8} {:>9}",
                    rate(&p.throughput),
                    ratio(&r.throughput, &p.throughput),
                    pe,
                    re,
                    mib(p.peak_rss_bytes),
                    check
                );
            }
            let _ = writeln!(s);
        }
        let notes: Vec<String> =
            self.rows.iter().filter(|r| !r.note.is_empty()).map(|r| format!("  {}: {}", r.label, r.note)).collect();
        if !notes.is_empty() {
            let _ = writeln!(s, "\nnotes:\n{}", notes.join("\n"));
        }
        let _ = writeln!(
            s,
            "\nimg/s: training step (forward, loss, backward, SGD) for model rows, one pass for pipeline and epoch rows. \
             GFLOP/s: train / eval, from the MACs of `summary` (training counted as 3 × the forward)."
        );
        if with_baseline {
            let _ = writeln!(
                s,
                "× fp32: this precision and memory order / the same row in fp32 NCHW, measured interleaved (RSS then \
                 includes both models)."
            );
        }
        if with_ref {
            let _ = writeln!(
                s,
                "×: convtrain / PyTorch, the median of the per-repeat ratios (range); above 1 convtrain is faster. \
                 check: max relative difference of the eval logits on shared weights."
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gflops_follow_the_macs_and_the_table_shows_ratios() {
        let row = RowResult {
            id: "m".into(),
            label: "model".into(),
            kind: "model",
            note: "small batch".into(),
            batch: 4,
            parameters: Some(10),
            macs_per_image: Some(1_000_000_000),
            throughput: Samples { values: vec![10.0, 12.0, 11.0] },
            eval: Some(Samples { values: vec![30.0] }),
            train_gflops: None,
            eval_gflops: None,
            peak_rss_bytes: Some(3 << 20),
            reference: Some(ReferenceResult {
                agreement: Some(Agreement { parameters: 10, relative_difference: 1e-6, agrees: true }),
                throughput: Samples { values: vec![5.0, 6.0, 5.5] },
                eval: Some(Samples { values: vec![15.0] }),
                peak_rss_bytes: None,
            }),
            baseline: Some(Baseline {
                throughput: Samples { values: vec![4.0, 6.0, 4.4] },
                eval: Samples { values: vec![20.0] },
            }),
        }
        .with_gflops();
        assert_eq!(row.train_gflops, Some(66.0));
        assert_eq!(row.eval_gflops, Some(60.0));
        let report = BenchReport {
            date_utc: "d".into(),
            cpu: "cpu".into(),
            device: "cpu".into(),
            threads: 2,
            precision: "bf16".into(),
            channels_last: false,
            repeats: 3,
            steps: 1,
            libtorch: "2.13.0".into(),
            reference_torch: Some("2.13.0".into()),
            rows: vec![row],
        };
        let table = report.render();
        assert!(table.contains("11.0 ±9%") && table.contains("2.00× (2.00–2.00)"), "{table}");
        assert!(table.contains("model: small batch"), "{table}");
        // Paired ratios to the fp32 baseline: 10/4, 12/6, 11/4.4 → median 2.5, range 2.0–2.5.
        assert!(table.contains("bf16") && table.contains("2.50× (2.00–2.50)") && table.contains("1.50×"), "{table}");
    }
}
