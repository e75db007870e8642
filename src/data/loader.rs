//! The batch loader: one epoch of batches, prepared on a background thread two batches ahead.
//!
//! Batch k of epoch e is a function of (source, indices, batch size, shuffle, pipeline, seed, e, k) only:
//! the visiting order is a permutation drawn from (seed, e) and every random draw of the batch comes from
//! [`batch_rng`]`(seed, e, k)`. A loader started with `skip_batches = k` therefore yields exactly the
//! batches k, k+1, … of a full epoch, bit for bit, which is what exact mid-epoch resume needs.
use super::augment::Pipeline;
use super::{batch_rng, shuffled, Source};
use crate::error::Result;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use tch::{Device, Tensor};

/// Batches the loader keeps ready ahead of the consumer.
const PREFETCH: usize = 2;

/// One batch: normalised f32 images [B,C,H,W] and i64 labels [B], on the loader's device.
#[derive(Debug)]
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
}

/// An iterator over the batches of one epoch. The last batch is kept even when it is smaller (no
/// drop_last). Dropping the loader early stops its thread.
pub struct BatchLoader {
    rx: Option<Receiver<Result<Batch>>>,
    handle: Option<JoinHandle<()>>,
    num_batches: usize,
    remaining: usize,
}

impl BatchLoader {
    /// Starts preparing batches `skip_batches..` of epoch `epoch` over `indices` (visited in a
    /// permutation drawn from (seed, epoch) when `shuffle`, else in the given order). Each batch is read
    /// from `source`, moved to `device` as uint8, and run through `pipeline` there.
    ///
    /// Panics if `batch_size` is 0.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: Arc<dyn Source>,
        indices: Arc<Vec<i64>>,
        batch_size: usize,
        shuffle: bool,
        pipeline: Arc<Pipeline>,
        seed: u64,
        epoch: u64,
        skip_batches: usize,
        device: Device,
    ) -> BatchLoader {
        assert!(batch_size > 0, "BatchLoader: batch_size must be at least 1");
        let num_batches = indices.len().div_ceil(batch_size);
        let first = skip_batches.min(num_batches);
        let (tx, rx) = sync_channel(PREFETCH);
        let handle = std::thread::spawn(move || {
            let order = if shuffle { shuffled(&indices, seed, epoch) } else { indices.to_vec() };
            for (k, chunk) in order.chunks(batch_size).enumerate().skip(first) {
                let mut rng = batch_rng(seed, epoch, k as u64);
                let batch = source.batch(chunk, &mut rng).and_then(|(images, labels)| {
                    let images = pipeline.apply(&images.f_to_device(device)?, &mut rng)?;
                    Ok(Batch { images, labels: labels.f_to_device(device)? })
                });
                let failed = batch.is_err();
                // A send error means the loader was dropped: stop.
                if tx.send(batch).is_err() || failed {
                    return;
                }
            }
        });
        BatchLoader { rx: Some(rx), handle: Some(handle), num_batches, remaining: num_batches - first }
    }

    /// Batches in the whole epoch, skipped ones included: ceil(indices / batch_size).
    pub fn num_batches(&self) -> usize {
        self.num_batches
    }

    /// Stops the thread, propagating its panic if it had one.
    fn finish(&mut self) {
        self.rx = None;
        if let Some(handle) = self.handle.take() {
            if let Err(panic) = handle.join() {
                if !std::thread::panicking() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }
}

impl Iterator for BatchLoader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.remaining == 0 {
            return None;
        }
        match self.rx.as_ref()?.recv() {
            Ok(Ok(batch)) => {
                self.remaining -= 1;
                Some(Ok(batch))
            }
            Ok(Err(e)) => {
                self.remaining = 0;
                Some(Err(e))
            }
            Err(_) => {
                // The thread ended without sending every batch: it panicked.
                self.remaining = 0;
                self.finish();
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl Drop for BatchLoader {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::augment::AugmentConfig;
    use crate::data::{InMemory, Source};
    use crate::error::Error;
    use rand_chacha::ChaCha8Rng;
    use tch::Kind;

    /// n 4×4 RGB images; image i is filled with i % 256 and labelled i.
    fn source(n: i64) -> Arc<dyn Source> {
        let images = Tensor::arange(n, (Kind::Int64, Device::Cpu))
            .remainder(256)
            .to_kind(Kind::Uint8)
            .view([n, 1, 1, 1])
            .repeat([1, 3, 4, 4]);
        Arc::new(InMemory::new(images, Tensor::arange(n, (Kind::Int64, Device::Cpu)), n).unwrap())
    }

    fn pipeline(ops: &[&str], cutout: i64) -> Arc<Pipeline> {
        let cfg = AugmentConfig {
            train_ops: ops.iter().map(|s| s.to_string()).collect(),
            cutout,
            resize: None,
            gray_to_rgb: false,
            mean: vec![0.5],
            std: vec![0.25],
        };
        Arc::new(Pipeline::new(&cfg, 3, true).unwrap())
    }

    fn loader(src: &Arc<dyn Source>, n: i64, bs: usize, shuffle: bool, epoch: u64, skip: usize) -> BatchLoader {
        let indices = Arc::new((0..n).collect::<Vec<i64>>());
        let p = pipeline(&["flip", "crop:1", "rotate:20"], 2);
        BatchLoader::new(src.clone(), indices, bs, shuffle, p, 11, epoch, skip, Device::Cpu)
    }

    #[test]
    fn every_index_once_per_epoch_last_batch_kept() {
        let src = source(103);
        let l = loader(&src, 103, 10, true, 0, 0);
        assert_eq!((l.num_batches(), l.size_hint()), (11, (11, Some(11))));
        let batches: Vec<Batch> = l.map(|b| b.unwrap()).collect();
        assert_eq!(batches.iter().map(|b| b.labels.size()[0]).collect::<Vec<_>>(), [vec![10; 10], vec![3]].concat());
        assert_eq!((batches[0].images.size(), batches[0].images.kind()), (vec![10, 3, 4, 4], Kind::Float));
        let mut seen: Vec<i64> = batches.iter().flat_map(|b| Vec::<i64>::try_from(&b.labels).unwrap()).collect();
        assert_ne!(seen, (0..103).collect::<Vec<_>>(), "shuffled");
        seen.sort_unstable();
        assert_eq!(seen, (0..103).collect::<Vec<_>>());
        let order = |epoch| -> Vec<i64> {
            loader(&src, 103, 10, true, epoch, 0)
                .flat_map(|b| Vec::<i64>::try_from(&b.unwrap().labels).unwrap())
                .collect()
        };
        assert_eq!(order(1), order(1));
        assert_ne!(order(1), order(2));
        let plain: Vec<i64> = loader(&src, 103, 10, false, 0, 0)
            .flat_map(|b| Vec::<i64>::try_from(&b.unwrap().labels).unwrap())
            .collect();
        assert_eq!(plain, (0..103).collect::<Vec<_>>());
    }

    #[test]
    fn skip_batches_yields_the_exact_tail() {
        let src = source(50);
        let full: Vec<Batch> = loader(&src, 50, 8, true, 3, 0).map(|b| b.unwrap()).collect();
        let tail: Vec<Batch> = loader(&src, 50, 8, true, 3, 4).map(|b| b.unwrap()).collect();
        assert_eq!((full.len(), tail.len()), (7, 3));
        for (a, b) in full[4..].iter().zip(&tail) {
            assert!(a.images.equal(&b.images) && a.labels.equal(&b.labels));
        }
        assert_eq!(loader(&src, 50, 8, true, 3, 99).count(), 0);
    }

    #[test]
    fn dropping_early_does_not_hang() {
        let src = source(1000);
        let mut l = loader(&src, 1000, 1, true, 0, 0);
        assert!(l.next().unwrap().is_ok());
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(l);
        drop(loader(&src, 1000, 1, true, 0, 0));
    }

    /// A source that fails on one index.
    struct Failing;
    impl Source for Failing {
        fn len(&self) -> usize {
            10
        }
        fn num_classes(&self) -> i64 {
            2
        }
        fn batch(&self, indices: &[i64], _rng: &mut ChaCha8Rng) -> Result<(Tensor, Tensor)> {
            if indices.contains(&5) {
                return Err(Error::Input("bad image 5".into()));
            }
            let n = indices.len() as i64;
            Ok((
                Tensor::zeros([n, 3, 2, 2], (Kind::Uint8, Device::Cpu)),
                Tensor::zeros([n], (Kind::Int64, Device::Cpu)),
            ))
        }
    }

    #[test]
    fn a_source_error_ends_the_epoch_with_that_error() {
        let l = BatchLoader::new(
            Arc::new(Failing),
            Arc::new((0..10).collect()),
            2,
            false,
            pipeline(&[], 0),
            0,
            0,
            0,
            Device::Cpu,
        );
        let items: Vec<Result<Batch>> = l.collect();
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok() && items[1].is_ok());
        assert!(matches!(&items[2], Err(Error::Input(m)) if m == "bad image 5"));
    }
}
