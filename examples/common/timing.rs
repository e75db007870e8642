//! Timing shared by the benchmark examples.
use std::time::Instant;

/// Median wall time of `f` in milliseconds over `repeats` runs, after one warm-up run.
pub fn median_ms(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}
