//! convtrain's side of a model row: the model and optimizer `train` builds for the row's settings,
//! timed on one batch of random data through the trainer's own step (forward, cross-entropy, backward
//! via [`micro_batch::forward_backward`], [`Sgd::step`], zero the gradients) and its evaluation pass.
use super::{median_seconds, synchronize, Settings};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::models::summary::summarize;
use crate::models::vgg_features::{self, VggFeaturesOptions};
use crate::models::{ExportRequest, Model};
use crate::train::loss_scale::{self, LossScale};
use crate::train::micro_batch::{self, StepError};
use crate::train::optimizer::Sgd;
use crate::train::trainer::build_model_and_optimizer;
use std::path::Path;
use tch::{Kind, Tensor};

/// The learning rate of the timed steps: small, so that random labels never make a loss diverge (the
/// cost of a step does not depend on it).
pub const BENCH_LR: f64 = 1e-3;

/// One model row, built and fed.
pub struct ModelBench {
    pub cfg: TrainConfig,
    pub model: Model,
    sgd: Sgd,
    /// The loss scale of an fp16 row, applied as the trainer applies it.
    loss_scale: Option<LossScale>,
    images: Tensor,
    labels: Tensor,
    /// MACs of one image's forward pass (the `summary` trace).
    pub macs: i64,
}

impl ModelBench {
    /// Resolves `settings` as `train` would (the architecture's recipe under them, the bench's
    /// precision and memory order on top), builds the model and its optimizer on the settings' device
    /// and draws one batch of `batch` random images.
    pub fn build(id: &str, settings: &serde_json::Value, batch: i64, s: &Settings) -> Result<ModelBench> {
        let execution = serde_json::json!({"precision": s.precision, "channels_last": s.channels_last});
        let cfg = TrainConfig::resolve(settings.clone(), execution, &format!("bench row {id}"))?;
        let (model, sgd) = build_model_and_optimizer(&cfg, s.device)?;
        let loss_scale = cfg.precision.scales_loss().then(LossScale::default);
        let macs = summarize(&model, Vec::new()).total_macs;
        let c = &model.config;
        let images = Tensor::randn([batch, c.in_channels, c.image_size, c.image_size], (Kind::Float, s.device));
        let labels = Tensor::randint(c.num_classes, [batch], (Kind::Int64, s.device));
        Ok(ModelBench { cfg, model, sgd, loss_scale, images, labels, macs })
    }

    pub fn batch(&self) -> i64 {
        self.labels.size()[0]
    }

    /// One training step on `images`/`labels`, as the trainer takes it: the loss and hits stay on the
    /// device, unread, as the trainer leaves them between its log intervals.
    pub fn train_step_on(&mut self, images: &Tensor, labels: &Tensor) -> Result<()> {
        let (model, precision, device) = (&self.model, self.cfg.precision, images.device());
        let n = labels.size()[0] as usize;
        let scale = loss_scale::loss_factor(self.loss_scale.as_ref());
        let forward = |x: &Tensor| precision.forward(device, || model.forward_t(x, true));
        micro_batch::forward_backward(&forward, images, labels, n, scale).map_err(|e| match e {
            StepError::Failed(e) => e,
            StepError::OutOfMemory(m) => Error::OutOfMemory(m),
        })?;
        loss_scale::optimizer_step(&mut self.sgd, BENCH_LR, self.loss_scale.as_mut());
        self.sgd.zero_grad();
        Ok(())
    }

    fn train_step(&mut self) -> Result<()> {
        let (x, y) = (self.images.shallow_clone(), self.labels.shallow_clone());
        self.train_step_on(&x, &y)
    }

    fn eval_step(&self) -> Result<()> {
        let device = self.images.device();
        let logits = tch::no_grad(|| self.cfg.precision.forward(device, || self.model.forward_t(&self.images, false)))?;
        drop(logits);
        Ok(())
    }

    /// One untimed training step and evaluation pass (allocator, kernel selection, caches).
    pub fn warm_up(&mut self) -> Result<()> {
        self.train_step()?;
        self.eval_step()?;
        synchronize(self.images.device());
        Ok(())
    }

    /// Training images/s: the batch over the median of `steps` steps.
    pub fn train_rate(&mut self, steps: usize) -> Result<f64> {
        let device = self.images.device();
        let t = median_seconds(device, steps, || self.train_step())?;
        Ok(self.batch() as f64 / t)
    }

    /// Evaluation images/s (no gradients, BN in eval mode) of the batches after the first: one
    /// untimed pass first, because the first batch after the training steps changed the weights
    /// computes the SWRN and CSG kernels that the rest of an evaluation reuses.
    pub fn eval_rate(&self, steps: usize) -> Result<f64> {
        self.eval_step()?;
        let t = median_seconds(self.images.device(), steps, || self.eval_step())?;
        Ok(self.batch() as f64 / t)
    }

    /// Writes what the PyTorch side loads into `dir`: the weights under the original code's names
    /// (`export --format pytorch`), after two training-mode passes moved the BatchNorm statistics off
    /// their initial values, and up to four input images with convtrain's eval-mode logits. Returns the
    /// row's description for [`super::reference`].
    pub fn export_for_reference(&self, id: &str, dir: &Path) -> Result<serde_json::Value> {
        tch::no_grad(|| {
            for _ in 0..2 {
                drop(self.model.forward_t(&(&self.images * 1.5 + 0.3), true));
            }
        });
        let named = (self.model.arch.export)(
            &self.model.named_variables(),
            &ExportRequest { config: &self.model.config, naming: None },
        )?;
        let cpu = |t: &Tensor| t.to_device(tch::Device::Cpu);
        let named: Vec<(String, Tensor)> = named.iter().map(|(n, t)| (n.clone(), cpu(t))).collect();
        let weights = dir.join(format!("{id}.weights.safetensors"));
        Tensor::write_safetensors(&named, &weights)?;
        let input = self.images.narrow(0, 0, self.batch().min(4));
        let logits = tch::no_grad(|| self.model.forward_t(&input, false));
        let io = dir.join(format!("{id}.io.safetensors"));
        Tensor::write_safetensors(&[("input", cpu(&input)), ("logits", cpu(&logits))], &io)?;
        let c = &self.model.config;
        let widths = if c.arch == "vgg-features" {
            Some(vgg_features::resolve(c, &c.options::<VggFeaturesOptions>()?)?.0)
        } else {
            None
        };
        Ok(serde_json::json!({
            "id": id,
            "config": c,
            "widths": widths,
            "num_parameters": self.model.num_parameters(),
            "batch": self.batch(),
            "lr": BENCH_LR,
            "momentum": self.cfg.momentum,
            "dampening": self.cfg.dampening,
            "nesterov": self.cfg.nesterov,
            "weight_decay": self.cfg.weight_decay,
            "precision": self.cfg.precision,
            "channels_last": self.cfg.channels_last,
            "weights": path_string(&weights),
            "io": path_string(&io),
        }))
    }
}

fn path_string(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precision::Precision;
    use tch::Device;

    #[test]
    fn a_timed_step_trains_the_model_and_rates_are_positive() {
        let s = Settings {
            device: Device::Cpu,
            threads: 1,
            repeats: 1,
            steps: 1,
            batch: None,
            precision: Precision::Bf16,
            channels_last: true,
        };
        let mut b =
            ModelBench::build("tiny", &serde_json::json!({"arch": "tiny-cnn", "dataset": "mnist"}), 4, &s).unwrap();
        assert_eq!(b.macs, 18_644_356);
        assert_eq!((b.cfg.precision, b.cfg.channels_last), (Precision::Bf16, true), "the bench's execution settings");
        let before = b.model.named_parameters()[0].1.copy();
        b.warm_up().unwrap();
        assert!(b.train_rate(1).unwrap() > 0.0 && b.eval_rate(1).unwrap() > 0.0);
        assert!(!before.equal(&b.model.named_parameters()[0].1), "the SGD update ran");
    }
}
