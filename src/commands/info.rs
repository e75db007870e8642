//! `convtrain info`: versions, libtorch location, threads, CUDA devices and the architectures.

/// What `convtrain info` prints.
pub fn text() -> String {
    let mut s = String::new();
    use std::fmt::Write;
    let _ = writeln!(s, "convtrain {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(s, "tch {}, libtorch {}", crate::TCH_VERSION, crate::LIBTORCH_VERSION);
    let _ = writeln!(s, "libtorch location: {}", env!("CONVTRAIN_LIBTORCH_LIB"));
    let _ = writeln!(s, "CPU threads (intra-op): {}", tch::get_num_threads());
    let n = tch::Cuda::device_count();
    let _ = writeln!(
        s,
        "CUDA available: {}, devices: {n}, cuDNN: {}",
        tch::Cuda::is_available(),
        tch::Cuda::cudnn_is_available()
    );
    if n > 0 {
        let names = std::process::Command::new("nvidia-smi")
            .args(["--query-gpu=index,name,memory.total", "--format=csv,noheader"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string());
        match names {
            Some(t) => t.lines().for_each(|l| {
                let _ = writeln!(s, "  cuda:{l}");
            }),
            None => (0..n).for_each(|i| {
                let _ = writeln!(s, "  cuda:{i} (name unavailable: nvidia-smi not found)");
            }),
        }
    }
    let _ = writeln!(s, "architectures:");
    let w = crate::models::registry().iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in crate::models::registry() {
        let _ = writeln!(s, "  {:<w$} [{}] {}", a.name, a.family, a.about);
    }
    s
}
