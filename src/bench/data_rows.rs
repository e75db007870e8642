//! convtrain's side of the data rows: the training augmentation of a dataset on synthetic uint8
//! images of its shape, on the calling thread or through the prefetching [`BatchLoader`], and the
//! short end-to-end epoch (loader, augmentation and training steps of a [`ModelBench`]).
use super::model_rows::ModelBench;
use super::rows::{Synthetic, PIPELINE_BATCH};
use super::synchronize;
use crate::data::augment::{AugmentConfig, Pipeline};
use crate::data::loader::BatchLoader;
use crate::data::{batch_rng, dataset_info, shuffled, InMemory, Source};
use crate::error::Result;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// A synthetic dataset in memory and its training pipeline.
pub struct PipelineBench {
    source: Arc<dyn Source>,
    pipeline: Arc<Pipeline>,
    indices: Arc<Vec<i64>>,
    device: Device,
}

impl PipelineBench {
    /// `images` random uint8 images of `dataset`'s shape with its recipe's augmentation and the real
    /// dataset's normalisation, batches produced on `device`.
    pub fn new(dataset: Synthetic, images: i64, device: Device) -> Result<PipelineBench> {
        let (name, channels, side, ops) = dataset.describe();
        let info = dataset_info(name, Path::new(""))?;
        let augment =
            AugmentConfig { train_ops: ops.iter().map(|s| s.to_string()).collect(), ..AugmentConfig::plain(&info) };
        let pipeline = Arc::new(Pipeline::new(&augment, channels, true)?);
        let pixels = Tensor::randint(256, [images, channels, side, side], (Kind::Uint8, Device::Cpu));
        let labels = Tensor::randint(info.num_classes, [images], (Kind::Int64, Device::Cpu));
        let source: Arc<dyn Source> = Arc::new(InMemory::new(pixels, labels, info.num_classes)?);
        Ok(PipelineBench { source, pipeline, indices: Arc::new((0..images).collect()), device })
    }

    pub fn images(&self) -> usize {
        self.indices.len()
    }

    fn loader(&self, epoch: u64) -> BatchLoader {
        let (source, pipeline, indices) = (self.source.clone(), self.pipeline.clone(), self.indices.clone());
        BatchLoader::new(source, indices, PIPELINE_BATCH as usize, true, pipeline, 0, epoch, 0, self.device)
    }

    /// Images/s of one shuffled pass: every batch read, moved to the device and augmented, on this
    /// thread (`prefetch` false) or by the loader's thread while this one takes the batches.
    pub fn rate(&self, prefetch: bool, epoch: u64) -> Result<f64> {
        let start = Instant::now();
        if prefetch {
            for batch in self.loader(epoch) {
                drop(batch?);
            }
        } else {
            let order = shuffled(&self.indices, 0, epoch);
            for (k, chunk) in order.chunks(PIPELINE_BATCH as usize).enumerate() {
                let mut rng = batch_rng(0, epoch, k as u64);
                let (images, _labels) = self.source.batch(chunk, &mut rng)?;
                drop(self.pipeline.apply(&images.f_to_device(self.device)?, &mut rng)?);
            }
        }
        synchronize(self.device);
        Ok(self.images() as f64 / start.elapsed().as_secs_f64())
    }

    /// Images/s of one shuffled pass of training `bench` on the loader's batches.
    pub fn epoch_rate(&self, bench: &mut ModelBench, epoch: u64) -> Result<f64> {
        let start = Instant::now();
        for batch in self.loader(epoch) {
            let batch = batch?;
            bench.train_step_on(&batch.images, &batch.labels)?;
        }
        synchronize(self.device);
        Ok(self.images() as f64 / start.elapsed().as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_paths_go_through_every_image() {
        let b = PipelineBench::new(Synthetic::Mnist, 40, Device::Cpu).unwrap();
        assert_eq!(b.images(), 40);
        assert!(b.rate(false, 0).unwrap() > 0.0);
        assert!(b.rate(true, 1).unwrap() > 0.0);
        let batches: Vec<_> = b.loader(0).map(|x| x.unwrap().images.size()).collect();
        assert_eq!(batches, [vec![40, 1, 28, 28]]);
    }
}
