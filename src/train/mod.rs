//! Training: optimizer, schedules, run directory, logging, evaluation, and the [`trainer::Trainer`]
//! that ties them together behind small hooks ([`hooks`]).
pub mod evaluate;
pub mod hooks;
pub mod lock;
pub mod log;
pub mod loss_scale;
pub mod memory;
pub mod micro_batch;
pub mod optimizer;
pub mod progress;
pub mod run_dir;
pub mod running;
pub mod schedule;
pub mod setup;
pub mod signals;
pub mod tfevents;
pub mod tracking;
pub mod trainer;

use crate::error::Result;
use crate::input_err;
use tch::Device;

/// Parses `--device auto|cpu|cuda|cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    let cuda_count = || tch::Cuda::device_count() as usize;
    match spec {
        "auto" => Ok(if tch::Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "cuda:0" if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        s if s.starts_with("cuda") => {
            let idx: usize = match s.strip_prefix("cuda:") {
                Some(n) => n.parse().map_err(|_| input_err!("--device: '{s}' is not cuda:N with an integer N."))?,
                None if s == "cuda" => 0,
                None => return Err(input_err!("--device: '{s}' is not one of auto, cpu, cuda, cuda:N.")),
            };
            if idx < cuda_count() {
                Ok(Device::Cuda(idx))
            } else {
                Err(input_err!(
                    "--device: '{s}' asked for CUDA device {idx}, but libtorch sees {} CUDA device(s). Use --device cpu or auto.",
                    cuda_count()
                ))
            }
        }
        s => Err(input_err!("--device: '{s}' is not one of auto, cpu, cuda, cuda:N.")),
    }
}

/// A seed for one purpose at one position, mixed with SplitMix64 so nearby inputs give unrelated seeds.
pub fn derive_seed(seed: u64, parts: &[u64]) -> u64 {
    let mut z = seed ^ 0x9E37_79B9_7F4A_7C15;
    for &p in parts {
        z = z.wrapping_add(p.wrapping_mul(0xBF58_476D_1CE4_E5B9)).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// The current UTC time as (year, month, day, hour, minute, second).
pub fn utc_now() -> (i64, i64, i64, u64, u64, u64) {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Sets libtorch's intra-op threads to `requested`, capped at the machine's cores (more threads than
/// cores only slow a run down, and thousands of them exhaust the process); returns a warning when
/// capped.
pub fn set_threads(requested: usize) -> Option<String> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = requested.min(cores);
    tch::set_num_threads(threads as i32);
    (threads < requested)
        .then(|| format!("--threads {requested}: this machine has {cores} cores; using {cores} threads."))
}
