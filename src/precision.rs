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
}
