//! Dynamic loss scaling for float16 training (`--precision fp16`), with the rule and the defaults of
//! PyTorch's `torch.amp.GradScaler`: the loss is multiplied by the scale before the backward pass so
//! that small gradients do not underflow float16; the gradients are divided by it before the optimizer
//! step; a step whose gradients hold an infinity or a NaN is skipped and the scale halved; after 2000
//! steps in a row without one the scale doubles. The scale is a power of two, so scaling and
//! unscaling are exact. Its state is part of the trainer's state, saved in every checkpoint.
use super::optimizer::Sgd;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// `GradScaler`'s `init_scale`, `growth_factor`, `backoff_factor` and `growth_interval`.
const INIT_SCALE: f64 = 65536.0;
const GROWTH_FACTOR: f64 = 2.0;
const BACKOFF_FACTOR: f64 = 0.5;
const GROWTH_INTERVAL: u64 = 2000;

/// What the loss is multiplied by before the backward pass: the scale of a float16 run, else 1.
pub fn loss_factor(scale: Option<&LossScale>) -> f64 {
    scale.map_or(1.0, |s| s.scale)
}

/// The optimizer step with learning rate `lr` of a run with or without loss scaling: with it, the
/// gradients are unscaled first and a step whose gradients overflowed is skipped.
pub fn optimizer_step(sgd: &mut Sgd, lr: f64, scale: Option<&mut LossScale>) {
    if scale.is_none_or(|s| s.unscale_and_update(sgd.parameters())) {
        sgd.step(lr);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossScale {
    /// What the loss is multiplied by before the backward pass.
    pub scale: f64,
    /// Optimizer steps in a row whose gradients were finite (since the last change of the scale).
    pub growth_tracker: u64,
    /// Steps skipped for non-finite gradients over the run.
    pub skipped_steps: u64,
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale { scale: INIT_SCALE, growth_tracker: 0, skipped_steps: 0 }
    }
}

impl LossScale {
    /// Divides the gradients of `params` by the scale and updates it; returns whether they are all
    /// finite, i.e. whether the optimizer may step (one read of the device per call).
    pub fn unscale_and_update<'a>(&mut self, params: impl IntoIterator<Item = &'a Tensor>) -> bool {
        let inverse = 1.0 / self.scale;
        let mut non_finite: Option<Tensor> = None;
        tch::no_grad(|| {
            for p in params {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = g.g_mul_scalar_(inverse);
                let bad = g.isfinite().logical_not().any();
                non_finite = Some(match non_finite.take() {
                    Some(acc) => acc.logical_or(&bad),
                    None => bad,
                });
            }
        });
        let finite = non_finite.is_none_or(|t| !bool::try_from(t.to_kind(Kind::Bool)).unwrap_or(true));
        if finite {
            self.growth_tracker += 1;
            if self.growth_tracker == GROWTH_INTERVAL {
                self.scale *= GROWTH_FACTOR;
                self.growth_tracker = 0;
            }
        } else {
            self.scale *= BACKOFF_FACTOR;
            self.growth_tracker = 0;
            self.skipped_steps += 1;
        }
        finite
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn param_with_grad(grad: &[f32]) -> Tensor {
        let p = Tensor::zeros([grad.len() as i64], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        (&p * Tensor::from_slice(grad)).sum(Kind::Float).backward();
        p
    }

    #[test]
    fn finite_gradients_are_divided_exactly_and_the_scale_doubles_after_the_interval() {
        let mut s = LossScale::default();
        let p = param_with_grad(&[65536.0, -3.0 * 65536.0, 1.5]);
        assert!(s.unscale_and_update([&p]));
        assert_eq!(Vec::<f32>::try_from(p.grad()).unwrap(), vec![1.0, -3.0, 1.5 / 65536.0]);
        assert_eq!((s.scale, s.growth_tracker), (65536.0, 1));
        s.growth_tracker = GROWTH_INTERVAL - 1;
        assert!(s.unscale_and_update([&p]));
        assert_eq!((s.scale, s.growth_tracker, s.skipped_steps), (131072.0, 0, 0));
    }

    #[test]
    fn a_non_finite_gradient_anywhere_skips_the_step_and_halves_the_scale() {
        for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            let mut s = LossScale { growth_tracker: 17, ..LossScale::default() };
            let fine = param_with_grad(&[1.0, 2.0]);
            let broken = param_with_grad(&[0.0, bad]);
            let unused = Tensor::zeros([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            assert!(!s.unscale_and_update([&fine, &unused, &broken]), "{bad}");
            assert_eq!((s.scale, s.growth_tracker, s.skipped_steps), (32768.0, 0, 1));
        }
    }

    #[test]
    fn the_state_round_trips_through_json() {
        let s = LossScale { scale: 1024.0, growth_tracker: 5, skipped_steps: 7 };
        let back: LossScale = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
