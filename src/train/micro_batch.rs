//! Micro-batches: one mini-batch's forward and backward in slices, for batches that do not fit in
//! memory (the VGG sweep's original splits batches by a memory estimate, vgg_features.md §4; here the
//! split is `--micro-batch N`, or found on CUDA by halving after an out-of-memory error).
//!
//! Slice k of n_k images contributes its mean loss weighted by n_k / n, so the gradients add up to the
//! whole mini-batch's mean-loss gradient (up to float rounding) and the optimizer still steps once per
//! mini-batch with the schedule's lr for it. Not equal by construction: BatchNorm normalises each
//! slice with the slice's own statistics (and updates its running statistics once per slice), and
//! dropout masks are drawn per slice.
use crate::error::{is_out_of_memory, panic_message, Error, Result};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tch::{Kind, Tensor};

/// Why a mini-batch's forward/backward did not complete.
#[derive(Debug)]
pub enum StepError {
    /// The device (or host) ran out of memory; the message is libtorch's.
    OutOfMemory(String),
    Failed(Error),
}

/// What one mini-batch's forward passes measured, left on the device: nothing here waits for the
/// device, so a CUDA step is queued without a host synchronisation, and the values are read later,
/// many batches at a time (by the trainer's `PendingBatches`).
#[derive(Debug)]
pub struct BatchStats {
    /// The mini-batch's mean cross-entropy, a 0-d float64 tensor: each slice's float32 mean loss,
    /// widened and weighted by the slice's share, summed in slice order — the same float64
    /// operations, in the same order, as summing the values on the host.
    pub loss: Tensor,
    /// Correct top-1 predictions, a 0-d float64 tensor.
    pub hits: Tensor,
}

/// The next micro-batch size to try after `size` ran out of memory; `None` when one image did.
pub fn halve(size: usize) -> Option<usize> {
    (size > 1).then_some(size / 2)
}

/// Forward, loss and backward of the mini-batch (`images`, `labels`) in slices of at most `micro`
/// images, each slice's mean loss scaled by its share of the mini-batch and by `weight` (the
/// mini-batch's share of its accumulation group). Gradients accumulate into the parameters' `.grad`.
/// Returns the mini-batch's mean loss and its number of correct top-1 predictions, on the device; a
/// NaN or infinite loss is found when they are read.
///
/// An out-of-memory failure in the forward pass (a panic inside tch) or the backward pass is returned
/// as [`StepError::OutOfMemory`]; any other panic continues unwinding. After an error the slices
/// already done have added to `.grad`: the caller restores a [`StepSnapshot`] before retrying.
pub fn forward_backward(
    forward: &dyn Fn(&Tensor) -> Result<Tensor>,
    images: &Tensor,
    labels: &Tensor,
    micro: usize,
    weight: f64,
) -> std::result::Result<BatchStats, StepError> {
    let n = labels.size()[0];
    let micro = (micro as i64).clamp(1, n.max(1));
    let (mut loss, mut hits): (Option<Tensor>, Option<Tensor>) = (None, None);
    let mut start = 0;
    while start < n {
        let len = micro.min(n - start);
        let whole = len == n;
        let (x, y) = if whole {
            (images.shallow_clone(), labels.shallow_clone())
        } else {
            (images.narrow(0, start, len), labels.narrow(0, start, len))
        };
        let slice = catch_unwind(AssertUnwindSafe(|| -> Result<_> {
            let logits = forward(&x)?;
            let slice_loss = logits.cross_entropy_for_logits(&y);
            let slice_hits = logits.detach().argmax(-1, false).eq_tensor(&y).sum(Kind::Float);
            Ok((slice_loss, slice_hits))
        }));
        let (slice_loss, slice_hits) = slice.map_err(out_of_memory_or_resume)?.map_err(StepError::Failed)?;
        // A whole batch keeps the exact arithmetic of an unsliced step.
        let share = if whole { 1.0 } else { len as f64 / n as f64 };
        (&slice_loss * (if whole { weight } else { share * weight })).f_backward().map_err(|e| {
            let message = e.to_string();
            if is_out_of_memory(&message) {
                StepError::OutOfMemory(message)
            } else {
                StepError::Failed(e.into())
            }
        })?;
        let weighted = slice_loss.detach().to_kind(Kind::Double) * share;
        let slice_hits = slice_hits.to_kind(Kind::Double);
        loss = Some(match loss {
            Some(sum) => sum + weighted,
            None => weighted,
        });
        hits = Some(match hits {
            Some(sum) => sum + slice_hits,
            None => slice_hits,
        });
        start += len;
    }
    let zero = || Tensor::zeros([], (Kind::Double, images.device()));
    Ok(BatchStats { loss: loss.unwrap_or_else(zero), hits: hits.unwrap_or_else(zero) })
}

/// An out-of-memory panic as an error; any other panic goes on unwinding.
fn out_of_memory_or_resume(payload: Box<dyn Any + Send>) -> StepError {
    let message = panic_message(payload.as_ref());
    if is_out_of_memory(&message) {
        StepError::OutOfMemory(message)
    } else {
        std::panic::resume_unwind(payload)
    }
}

/// What a failed mini-batch may have changed, saved before it: the buffers a forward pass updates
/// (BatchNorm running statistics) and the gradients. Gradients are copied only inside an
/// accumulation group (`keep_grads`); at a group's start they are absent (`Sgd::zero_grad` drops
/// them), and restoring zeroes any that the failed pass created (as in-place zeroing left them).
pub struct StepSnapshot {
    buffers: Vec<(Tensor, Tensor)>,
    grads: Vec<(Tensor, Option<Tensor>)>,
}

impl StepSnapshot {
    pub fn take(buffers: Vec<Tensor>, params: Vec<Tensor>, keep_grads: bool) -> StepSnapshot {
        tch::no_grad(|| StepSnapshot {
            buffers: buffers.into_iter().map(|b| (b.copy(), b)).collect(),
            grads: params
                .into_iter()
                .map(|p| {
                    let g = p.grad();
                    let saved = (keep_grads && g.defined()).then(|| g.copy());
                    (p, saved)
                })
                .collect(),
        })
    }

    /// Puts the buffers and gradients back as they were when the snapshot was taken.
    pub fn restore(&mut self) {
        tch::no_grad(|| {
            for (saved, live) in &mut self.buffers {
                live.copy_(saved);
            }
            for (p, saved) in &self.grads {
                let mut g = p.grad();
                if g.defined() {
                    match saved {
                        Some(s) => g.copy_(s),
                        None => {
                            let _ = g.zero_();
                        }
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// A two-layer perceptron without BatchNorm or dropout (so slicing changes nothing but rounding),
    /// in f32 like the models.
    fn mlp() -> (Tensor, Tensor, Tensor, Tensor) {
        tch::manual_seed(3);
        let opts = (Kind::Float, Device::Cpu);
        let w1 = Tensor::randn([6, 5], opts).set_requires_grad(true);
        let w2 = Tensor::randn([5, 3], opts).set_requires_grad(true);
        let x = Tensor::randn([11, 6], opts);
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1]);
        (w1, w2, x, y)
    }

    fn grads(ws: &[&Tensor]) -> Vec<Tensor> {
        ws.iter().map(|w| w.grad().copy()).collect()
    }

    #[test]
    fn micro_batches_give_the_whole_batch_gradient_loss_and_hits() {
        let (w1, w2, x, y) = mlp();
        let forward = |x: &Tensor| Ok(x.mm(&w1).tanh().mm(&w2));
        let read = |s: BatchStats| (f64::try_from(&s.loss).unwrap(), f64::try_from(&s.hits).unwrap());
        let whole = read(forward_backward(&forward, &x, &y, 11, 0.5).unwrap());
        let want = grads(&[&w1, &w2]);
        // The unsliced path is the plain step: loss value and gradient bit for bit.
        let logits = forward(&x).unwrap();
        let reference_loss = f64::try_from(logits.cross_entropy_for_logits(&y)).unwrap();
        let reference_hits = f64::try_from(logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Float)).unwrap();
        assert_eq!(whole, (reference_loss, reference_hits));
        for micro in [1, 3, 4, 10] {
            for w in [&w1, &w2] {
                let _ = w.grad().zero_();
            }
            let sliced = read(forward_backward(&forward, &x, &y, micro, 0.5).unwrap());
            assert!((sliced.0 - whole.0).abs() < 1e-6, "micro {micro}: loss {} vs {}", sliced.0, whole.0);
            assert_eq!(sliced.1, whole.1);
            for (g, w) in grads(&[&w1, &w2]).iter().zip(&want) {
                assert!(g.allclose(w, 1e-5, 1e-6, false), "micro {micro}");
            }
        }
    }

    #[test]
    fn an_out_of_memory_panic_is_an_error_and_the_snapshot_undoes_the_slices_done() {
        let (w1, w2, x, y) = mlp();
        let bn_stat = Tensor::zeros([3], (Kind::Float, Device::Cpu));
        // Fails on slices of 3 images, after "updating a running statistic" (as BatchNorm would).
        let forward = |x: &Tensor| {
            let _ = tch::no_grad(|| bn_stat.shallow_clone().g_add_scalar_(1.0));
            assert!(x.size()[0] != 3, "CUDA out of memory. Tried to allocate 2.00 GiB");
            Ok(x.mm(&w1).tanh().mm(&w2))
        };
        forward_backward(&forward, &x.narrow(0, 0, 4), &y.narrow(0, 0, 4), 4, 1.0).unwrap();
        let before = grads(&[&w1, &w2]);
        let params = vec![w1.shallow_clone(), w2.shallow_clone()];
        let mut snapshot = StepSnapshot::take(vec![bn_stat.shallow_clone()], params, true);
        // The next mini-batch of 7: its slice of 4 adds to the gradients, its slice of 3 fails.
        let e = forward_backward(&forward, &x.narrow(0, 4, 7), &y.narrow(0, 4, 7), 4, 1.0).unwrap_err();
        assert!(matches!(&e, StepError::OutOfMemory(m) if m.contains("Tried to allocate")), "{e:?}");
        assert_eq!(Vec::<f64>::try_from(&bn_stat).unwrap(), vec![3.0; 3]);
        snapshot.restore();
        assert_eq!(Vec::<f64>::try_from(&bn_stat).unwrap(), vec![1.0; 3]);
        for (g, b) in grads(&[&w1, &w2]).iter().zip(&before) {
            assert!(g.equal(b));
        }
        // At a group's start the restore zeroes the gradients.
        StepSnapshot::take(vec![], vec![w1.shallow_clone()], false).restore();
        assert_eq!(f64::try_from(w1.grad().abs().sum(Kind::Float)).unwrap(), 0.0);
        assert_eq!((halve(128), halve(3), halve(1)), (Some(64), Some(1), None));
    }

    #[test]
    fn other_panics_keep_unwinding_and_a_nan_loss_is_returned_for_the_reader() {
        let (w1, _, x, y) = mlp();
        let r = catch_unwind(AssertUnwindSafe(|| {
            let _ = forward_backward(&|_: &Tensor| panic!("shape mismatch"), &x, &y, 4, 1.0);
        }));
        assert_eq!(panic_message(r.unwrap_err().as_ref()), "shape mismatch");
        let nan = |x: &Tensor| Ok(x.mm(&w1).narrow(1, 0, 3) * f64::NAN);
        for micro in [11, 4] {
            let stats = forward_backward(&nan, &x, &y, micro, 1.0).unwrap();
            assert!(f64::try_from(&stats.loss).unwrap().is_nan() && stats.loss.kind() == Kind::Double);
        }
        let refused = |_: &Tensor| Err(crate::internal_err!("autocast refused"));
        assert!(matches!(forward_backward(&refused, &x, &y, 11, 1.0), Err(StepError::Failed(Error::Internal(_)))));
    }
}
