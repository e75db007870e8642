//! Timing shared by the benchmark examples.
use std::time::Instant;

/// Two operations timed side by side: the medians of their wall times in milliseconds and the median
/// and range of the per-repeat ratios `a / b`.
pub struct Paired {
    pub a_ms: f64,
    pub b_ms: f64,
    pub ratio: f64,
    pub ratio_lo: f64,
    pub ratio_hi: f64,
}

fn ms(f: &mut impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Times `a` and `b` interleaved, `repeats` pairs after one warm-up run of each, alternating which of
/// the two runs first, so that a slow spell of the machine falls on both.
pub fn interleaved(repeats: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> Paired {
    a();
    b();
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for r in 0..repeats.max(1) {
        if r % 2 == 0 {
            ta.push(ms(&mut a));
            tb.push(ms(&mut b));
        } else {
            tb.push(ms(&mut b));
            ta.push(ms(&mut a));
        }
    }
    let ratios: Vec<f64> = ta.iter().zip(&tb).map(|(x, y)| x / y).collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(0.0, f64::max);
    Paired { a_ms: median(ta), b_ms: median(tb), ratio: median(ratios), ratio_lo: lo, ratio_hi: hi }
}
