//! Evaluation: loss, top-1 and top-5 over a split, for the training loop and `convtrain evaluate`.
use super::setup::DataSetup;
use crate::data::BatchLoader;
use crate::error::Result;
use crate::models::Model;
use crate::precision::Precision;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct EvalResult {
    pub loss: f64,
    /// Percent.
    pub top1: f64,
    /// Percent (top-k with k = min(5, classes)).
    pub top5: f64,
    pub count: usize,
}

/// A checkpoint of a run scored on the test split, with the epoch it came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct CheckpointScore {
    /// The 1-based epoch whose weights were scored.
    pub epoch: usize,
    /// Its validation top-1 (percent), the score the best checkpoint was chosen by.
    pub val_top1: f64,
    #[serde(flatten)]
    pub test: EvalResult,
}

/// `test.json`: the best (by validation) and the last checkpoints scored on the test split when the run
/// finished.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestReport {
    pub split: String,
    pub best: CheckpointScore,
    pub last: CheckpointScore,
}

/// Evaluates `model` (BN in eval mode, no gradients, forward passes in `precision`) on the evaluation
/// split of `setup`, or on its first `limit_batches` batches.
pub fn evaluate(
    model: &Model,
    setup: &DataSetup,
    batch_size: usize,
    limit_batches: Option<usize>,
    device: Device,
    precision: Precision,
) -> Result<EvalResult> {
    let indices = std::sync::Arc::new(setup.eval_indices.clone());
    let loader = BatchLoader::new(
        setup.eval_source.clone(),
        indices,
        batch_size,
        false,
        setup.eval_pipeline.clone(),
        0,
        0,
        0,
        device,
    );
    let k = model.config.num_classes.min(5);
    // Summed on the device in float64 (the same operations, in the same order, as on the host) and
    // read once at the end: on CUDA no batch waits for the one before it.
    let zero = || Tensor::zeros([], (Kind::Double, device));
    let (mut loss_sum, mut top1, mut top5, mut n) = (zero(), zero(), zero(), 0usize);
    tch::no_grad(|| -> Result<()> {
        for batch in loader.take(limit_batches.unwrap_or(usize::MAX)) {
            let batch = batch?;
            let logits = precision.forward(device, || model.forward_t(&batch.images, false))?;
            let bs = batch.labels.size()[0] as usize;
            let loss = logits.cross_entropy_for_logits(&batch.labels).f_to_kind(Kind::Double)?;
            loss_sum = loss_sum.f_add(&(loss * bs as f64))?;
            let (_, idx) = logits.topk(k, -1, true, true);
            let hits = idx.eq_tensor(&batch.labels.unsqueeze(-1));
            top1 = top1.f_add(&hits.narrow(1, 0, 1).sum(Kind::Float).to_kind(Kind::Double))?;
            top5 = top5.f_add(&hits.sum(Kind::Float).to_kind(Kind::Double))?;
            n += bs;
        }
        Ok(())
    })?;
    let sums = Vec::<f64>::try_from(Tensor::f_stack(&[loss_sum, top1, top5], 0)?.f_to_device(Device::Cpu)?)?;
    let (loss_sum, top1, top5) = (sums[0], sums[1], sums[2]);
    let d = n.max(1) as f64;
    Ok(EvalResult { loss: loss_sum / d, top1: 100.0 * top1 / d, top5: 100.0 * top5 / d, count: n })
}
