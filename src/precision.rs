//! Arithmetic of the forward passes (`--precision`): float32, or libtorch's automatic mixed precision
//! ("autocast") in bfloat16 or float16, as `torch.autocast(device_type, dtype)` runs it in PyTorch.
//!
//! Under autocast the parameters, their gradients and the optimizer state stay float32 (the "master
//! weights"); the convolutions and matrix products of the forward pass run on reduced-precision casts
//! of them, and the operations autocast keeps in float32 (softmax, losses, norms) upcast their inputs.
//! The logits come back as float32, so the loss and the scores are computed as in a float32 run. The
//! backward pass follows the casts the forward pass recorded. float16 needs loss scaling against
//! gradient underflow (`train::loss_scale`); bfloat16 has float32's exponent range and does not.
//!
//! tch binds only the CUDA switch of autocast; the per-device switch and its dtype come from the small
//! C++ binding `csrc/autocast.cpp`, compiled by `build.rs` against the same libtorch.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::ffi::{c_char, c_int, CStr};
use tch::{Device, Kind, Tensor};

/// The floating-point format of the forward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 throughout (the originals' arithmetic).
    #[default]
    Fp32,
    /// Autocast to bfloat16 (CPU and CUDA).
    Bf16,
    /// Autocast to float16 with dynamic loss scaling (meant for CUDA; runs on CPUs too).
    Fp16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }

    /// Whether training needs loss scaling (float16's narrow exponent range).
    pub fn scales_loss(self) -> bool {
        self == Precision::Fp16
    }

    /// The logits of `forward` (a model's forward pass on `device`), computed in this precision and
    /// returned as float32.
    pub fn forward(self, device: Device, forward: impl FnOnce() -> Tensor) -> Result<Tensor> {
        let half = match self {
            Precision::Fp32 => return Ok(forward()),
            Precision::Bf16 => false,
            Precision::Fp16 => true,
        };
        let guard = Autocast::enter(device, half)?;
        let logits = forward();
        guard.exit()?;
        Ok(logits.to_kind(Kind::Float))
    }

    /// A warning for a precision that `device` runs several times slower than float32: float16 on
    /// any CPU, bfloat16 on an x86-64 CPU without AVX-512 ([`CpuBf16::Reference`]). On the AVX2 AMD
    /// EPYC of docs/PERFORMANCE.md a bfloat16 convolution took 7× its float32 time.
    pub fn slow_on(self, device: Device) -> Option<String> {
        let cpu = match device {
            Device::Cpu => cpu_bf16_support(),
            _ => return None,
        };
        let why = match (self, cpu) {
            (Precision::Fp16, _) => "libtorch's CPU float16 kernels are reference loops (fp16 is meant for CUDA)",
            (Precision::Bf16, CpuBf16::Reference) => {
                "this CPU has no AVX-512, so libtorch runs bfloat16 convolutions in its reference kernels"
            }
            _ => return None,
        };
        Some(format!(
            "--precision {}: {why}; expect training several times slower than --precision fp32 here.",
            self.name()
        ))
    }
}

/// How libtorch runs bfloat16 convolutions on this machine's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuBf16 {
    /// AVX512-BF16 or AMX-BF16 instructions: oneDNN's native kernels.
    Native,
    /// AVX-512 without bfloat16 instructions: oneDNN, converting to float32 inside its kernels.
    Converted,
    /// An x86-64 CPU without AVX-512: libtorch's reference kernels, far slower than float32.
    Reference,
    /// Not an x86-64 CPU: not known here.
    Unknown,
}

/// The CPU's bfloat16 support, from the capabilities libtorch detected (csrc/autocast.cpp).
pub fn cpu_bf16_support() -> CpuBf16 {
    // SAFETY: a C function without arguments that catches every C++ exception.
    match unsafe { convtrain_cpu_bf16_support() } {
        2 => CpuBf16::Native,
        1 => CpuBf16::Converted,
        0 => CpuBf16::Reference,
        _ => CpuBf16::Unknown,
    }
}

/// The state `convtrain_autocast_enter` replaced (csrc/autocast.cpp).
#[repr(C)]
#[derive(Default)]
struct AutocastState {
    enabled: c_int,
    dtype: c_int,
}

extern "C" {
    fn convtrain_autocast_enter(
        cuda: c_int,
        half: c_int,
        previous: *mut AutocastState,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn convtrain_autocast_exit(cuda: c_int, previous: *const AutocastState, err: *mut c_char, len: usize) -> c_int;
    fn convtrain_cpu_bf16_support() -> c_int;
}

/// One autocast region on the calling thread (libtorch keeps autocast per thread): entered by
/// [`Autocast::enter`], left by [`Autocast::exit`], or on drop when a panic unwinds through it.
struct Autocast {
    cuda: c_int,
    previous: AutocastState,
    open: bool,
}

impl Autocast {
    fn enter(device: Device, half: bool) -> Result<Autocast> {
        let cuda = c_int::from(device.is_cuda());
        let mut previous = AutocastState::default();
        // SAFETY: `previous` and `err` outlive the call; the C++ side writes at most `err.len()` bytes.
        call(|err, len| unsafe { convtrain_autocast_enter(cuda, c_int::from(half), &mut previous, err, len) })?;
        Ok(Autocast { cuda, previous, open: true })
    }

    fn exit(mut self) -> Result<()> {
        self.open = false;
        // SAFETY: as in `enter`.
        call(|err, len| unsafe { convtrain_autocast_exit(self.cuda, &self.previous, err, len) })
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        if self.open {
            // SAFETY: as in `enter`. Only reached while unwinding, where an error cannot be reported.
            let _ = call(|err, len| unsafe { convtrain_autocast_exit(self.cuda, &self.previous, err, len) });
        }
    }
}

/// Runs one binding call with a message buffer; a non-zero status is libtorch's exception.
fn call(f: impl FnOnce(*mut c_char, usize) -> c_int) -> Result<()> {
    let mut err = [0 as c_char; 512];
    if f(err.as_mut_ptr(), err.len()) == 0 {
        return Ok(());
    }
    // SAFETY: the C++ side always NUL-terminates within the buffer.
    let message = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
    Err(Error::Internal(format!("libtorch refused to switch autocast: {message}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module};

    fn linear() -> (nn::VarStore, nn::Linear) {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let lin = nn::linear(vs.root(), 16, 4, Default::default());
        (vs, lin)
    }

    #[test]
    fn fp32_is_the_plain_forward_and_reduced_precisions_round_like_their_dtype() {
        let (_vs, lin) = linear();
        let x = Tensor::randn([8, 16], (Kind::Float, Device::Cpu));
        let plain = lin.forward(&x);
        let fp32 = Precision::Fp32.forward(Device::Cpu, || lin.forward(&x)).unwrap();
        assert!(fp32.equal(&plain));
        for (p, kind) in [(Precision::Bf16, Kind::BFloat16), (Precision::Fp16, Kind::Half)] {
            let out = p.forward(Device::Cpu, || lin.forward(&x)).unwrap();
            assert_eq!(out.kind(), Kind::Float, "{p:?} logits come back as float32");
            // What autocast computes: the product on reduced-precision casts of input and weights.
            let expected = x.to_kind(kind).linear(&lin.ws.to_kind(kind), lin.bs.as_ref().map(|b| b.to_kind(kind)));
            assert!(out.equal(&expected.to_kind(Kind::Float)), "{p:?}: not the {kind:?} product");
            assert!(!out.equal(&plain), "{p:?}: identical to float32, so autocast was not on");
        }
    }

    #[test]
    fn autocast_ends_with_the_region_and_master_weights_stay_float32() {
        let (vs, lin) = linear();
        let x = Tensor::randn([8, 16], (Kind::Float, Device::Cpu));
        let out = Precision::Bf16.forward(Device::Cpu, || lin.forward(&x)).unwrap();
        out.sum(Kind::Float).backward();
        for (name, t) in vs.variables() {
            assert_eq!(t.kind(), Kind::Float, "{name}");
            assert_eq!(t.grad().kind(), Kind::Float, "{name}'s gradient");
        }
        assert_eq!(lin.forward(&x).kind(), Kind::Float, "autocast still on after its region");
        assert!(lin.forward(&x).equal(&x.linear(&lin.ws, lin.bs.as_ref())));
    }

    #[test]
    fn a_panic_inside_the_region_leaves_autocast_off() {
        let (_vs, lin) = linear();
        let x = Tensor::randn([2, 16], (Kind::Float, Device::Cpu));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Precision::Bf16.forward(Device::Cpu, || -> Tensor { panic!("inside") })
        }));
        assert!(r.is_err());
        assert_eq!(lin.forward(&x).kind(), Kind::Float);
    }

    #[test]
    fn names_round_trip_through_serde() {
        for p in [Precision::Fp32, Precision::Bf16, Precision::Fp16] {
            let v = serde_json::to_value(p).unwrap();
            assert_eq!(v, serde_json::json!(p.name()));
            assert_eq!(serde_json::from_value::<Precision>(v).unwrap(), p);
        }
        assert!(serde_json::from_value::<Precision>(serde_json::json!("fp8")).is_err());
    }

    #[test]
    fn the_bf16_support_libtorch_detected_agrees_with_the_kernels_cpu_flags() {
        let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") else { return };
        if !cfg!(target_arch = "x86_64") {
            return assert_eq!(cpu_bf16_support(), CpuBf16::Unknown);
        }
        let flags: Vec<&str> =
            cpuinfo.lines().find(|l| l.starts_with("flags")).map_or(Vec::new(), |l| l.split_whitespace().collect());
        let has = |f: &str| flags.contains(&f);
        let expected = if has("avx512_bf16") || has("amx_bf16") {
            CpuBf16::Native
        } else if has("avx512bw") && has("avx512vl") && has("avx512dq") {
            CpuBf16::Converted
        } else {
            CpuBf16::Reference
        };
        assert_eq!(cpu_bf16_support(), expected, "{flags:?}");
        let slow = Precision::Bf16.slow_on(Device::Cpu);
        assert_eq!(slow.is_some(), expected == CpuBf16::Reference, "{slow:?}");
        assert!(Precision::Fp16.slow_on(Device::Cpu).unwrap().contains("--precision fp16"));
        assert_eq!((Precision::Fp32.slow_on(Device::Cpu), Precision::Fp16.slow_on(Device::Cuda(0))), (None, None));
    }
}
