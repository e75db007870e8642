//! Training: optimizer, schedules, run directory, logging, evaluation, and the [`trainer::Trainer`]
//! that ties them together behind small hooks ([`hooks`]).
pub mod evaluate;
pub mod hooks;
pub mod log;
pub mod micro_batch;
pub mod optimizer;
pub mod progress;
pub mod run_dir;
pub mod schedule;
pub mod setup;
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
