//! The epoch's running training loss and top-1, read from the device at intervals rather than after
//! every mini-batch: on CUDA a read waits for every queued kernel, so reading once per step would
//! stall the host each step. The trainer pushes each mini-batch's [`BatchStats`] and reads them all
//! in one transfer at its log interval, before every checkpoint and at the end of the epoch — so a
//! checkpoint never holds weights trained on a loss nobody looked at. On the CPU the same code runs
//! (a read there costs nothing), which is what the test suite exercises.
//!
//! Exactness: the values are added to the running sums on the host in batch order, with the same
//! float64 operations as reading each batch at once, so the sums (saved in every checkpoint) do not
//! depend on when they were read.
use super::micro_batch::BatchStats;
use crate::error::Result;
use tch::{Device, Tensor};

/// A mini-batch whose loss turned NaN or infinite, found when its values were read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Divergence {
    /// 0-based index of the mini-batch in its epoch (the first non-finite one).
    pub batch: usize,
    pub loss: f64,
    /// The learning rate it was trained with.
    pub lr: f64,
}

/// A mini-batch trained but not yet read.
struct Pending {
    batch: usize,
    images: u64,
    lr: f64,
    stats: BatchStats,
}

/// The mini-batches of the epoch since the last read.
#[derive(Default)]
pub struct PendingBatches {
    pending: Vec<Pending>,
}

impl PendingBatches {
    /// Records mini-batch `batch` (0-based) of `images` images, trained with `lr`.
    pub fn push(&mut self, batch: usize, images: u64, lr: f64, stats: BatchStats) {
        self.pending.push(Pending { batch, images, lr, stats });
    }

    /// Images in the mini-batches not yet read.
    pub fn images(&self) -> u64 {
        self.pending.iter().map(|p| p.images).sum()
    }

    /// Reads every pending mini-batch in one transfer and adds its loss (times its images) to
    /// `loss_sum` and its hits to `correct`, in batch order. Stops at the first mini-batch whose loss
    /// is not finite and returns it, the sums left as they were before it; nothing stays pending
    /// either way.
    pub fn read_into(&mut self, loss_sum: &mut f64, correct: &mut f64) -> Result<Option<Divergence>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let pending = std::mem::take(&mut self.pending);
        let values: Vec<&Tensor> = pending.iter().flat_map(|p| [&p.stats.loss, &p.stats.hits]).collect();
        let values = Vec::<f64>::try_from(Tensor::f_stack(&values, 0)?.f_to_device(Device::Cpu)?)?;
        for (p, v) in pending.iter().zip(values.chunks_exact(2)) {
            let (loss, hits) = (v[0], v[1]);
            if !loss.is_finite() {
                return Ok(Some(Divergence { batch: p.batch, loss, lr: p.lr }));
            }
            *loss_sum += loss * p.images as f64;
            *correct += hits;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn stats(loss: f64, hits: f64) -> BatchStats {
        let scalar = |v: f64| Tensor::from(v).to_kind(Kind::Double);
        BatchStats { loss: scalar(loss), hits: scalar(hits) }
    }

    #[test]
    fn a_deferred_read_gives_the_sums_of_reading_each_batch_at_once() {
        // Losses whose float64 sums depend on the order of additions.
        let batches = [(2.3025851249694824, 3.0, 64), (0.1, 60.0, 64), (1e-17, 1.0, 7), (0.7, 2.0, 33)];
        let (mut each_loss, mut each_correct) = (0.0, 0.0);
        for &(loss, hits, images) in &batches {
            let mut one = PendingBatches::default();
            one.push(0, images, 0.1, stats(loss, hits));
            assert_eq!(one.read_into(&mut each_loss, &mut each_correct).unwrap(), None);
        }
        let mut all = PendingBatches::default();
        for (b, &(loss, hits, images)) in batches.iter().enumerate() {
            all.push(b, images, 0.1, stats(loss, hits));
        }
        assert_eq!(all.images(), 168);
        let (mut loss_sum, mut correct) = (0.0, 0.0);
        assert_eq!(all.read_into(&mut loss_sum, &mut correct).unwrap(), None);
        assert_eq!((loss_sum.to_bits(), correct), (each_loss.to_bits(), each_correct));
        assert_eq!(all.images(), 0);
        assert_eq!(all.read_into(&mut loss_sum, &mut correct).unwrap(), None, "nothing pending");
    }

    #[test]
    fn the_first_non_finite_batch_is_named_with_its_lr() {
        for bad in [f64::NAN, f64::INFINITY] {
            let mut p = PendingBatches::default();
            p.push(4, 10, 0.1, stats(0.5, 1.0));
            p.push(5, 10, 0.2, stats(bad, 0.0));
            p.push(6, 10, 0.3, stats(f64::NAN, 0.0));
            let (mut loss_sum, mut correct) = (1.0, 2.0);
            let d = p.read_into(&mut loss_sum, &mut correct).unwrap().unwrap();
            assert_eq!((d.batch, d.lr, d.loss.is_nan()), (5, 0.2, bad.is_nan()));
            assert_eq!((loss_sum, correct, p.images()), (6.0, 3.0, 0));
        }
    }
}
