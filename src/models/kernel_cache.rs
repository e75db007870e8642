//! The kernel of a generated convolution (SWRN's template mixture, a CSG layer's assembled slices)
//! kept between forward passes that need no gradient: evaluation computes each layer's kernel once
//! instead of once per batch.
//!
//! The cached kernel is the one the sources (the tensors it is computed from: templates and
//! coefficients, generator and codes) gave when it was computed. It is used again only while every
//! source is the same tensor at the same libtorch version — every in-place change (an optimizer step,
//! loading weights, `copy_`) bumps a tensor's version — so it is always equal to what computing it
//! again would give. With gradients on (training) the kernel is computed fresh, so that gradients
//! reach the sources, and the cache is emptied.
use std::sync::Mutex;
use tch::Tensor;

/// Whether libtorch records operations for autograd on this thread (off inside `tch::no_grad`).
pub fn grad_enabled() -> bool {
    // SAFETY: at_grad_set_enabled sets libtorch's thread-local grad mode and returns the previous
    // mode; it is set straight back, so the call only reads it.
    unsafe {
        let previous = torch_sys::at_grad_set_enabled(0);
        torch_sys::at_grad_set_enabled(previous);
        previous != 0
    }
}

/// What identifies a source's contents: its storage and its version counter.
type SourceKey = Vec<(usize, i64)>;

fn key(sources: &[&Tensor]) -> SourceKey {
    sources.iter().map(|t| (t.data_ptr() as usize, t.internal_version())).collect()
}

/// One layer's cached kernel.
#[derive(Debug, Default)]
pub struct KernelCache {
    entry: Mutex<Option<(SourceKey, Tensor)>>,
}

impl KernelCache {
    /// The kernel `compute` gives from `sources`: the cached one while gradients are off and no source
    /// changed since it was computed, otherwise computed now (and cached, in contiguous memory, when
    /// gradients are off).
    pub fn kernel(&self, sources: &[&Tensor], compute: impl FnOnce() -> Tensor) -> Tensor {
        let mut entry = self.entry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if grad_enabled() {
            *entry = None;
            return compute();
        }
        let now = key(sources);
        if let Some((k, kernel)) = entry.as_ref() {
            if *k == now {
                return kernel.shallow_clone();
            }
        }
        // Stored contiguous: a CSG kernel is a crop of the generated slices (a strided view whenever
        // the slice's channels do not divide the layer's), which every convolution would otherwise
        // copy again (about 3 % of a CSG ResNet-56 evaluation at batch 16).
        let kernel = compute().contiguous();
        *entry = Some((now, kernel.shallow_clone()));
        kernel
    }

    /// Whether a kernel is cached (for tests).
    pub fn is_filled(&self) -> bool {
        self.entry.lock().map(|e| e.is_some()).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn cached_while_the_sources_are_unchanged_and_never_with_gradients() {
        let w = Tensor::randn([3, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let cache = KernelCache::default();
        let calls = std::cell::Cell::new(0);
        let compute = || {
            calls.set(calls.get() + 1);
            &w * 2.0
        };
        assert!(grad_enabled());
        let k = cache.kernel(&[&w], compute);
        assert!(k.requires_grad() && !cache.is_filled() && calls.get() == 1);
        tch::no_grad(|| {
            assert!(!grad_enabled());
            let a = cache.kernel(&[&w], compute);
            let b = cache.kernel(&[&w], compute);
            assert_eq!(calls.get(), 2, "the second pass reuses the kernel");
            assert!(a.equal(&b) && a.equal(&(&w * 2.0)));
            let mut w2 = w.shallow_clone();
            w2 += 1.0;
            let c = cache.kernel(&[&w], compute);
            assert_eq!(calls.get(), 3, "an in-place update invalidates it");
            assert!(c.equal(&(&w * 2.0)));
        });
        assert!(grad_enabled(), "grad mode restored");
        drop(cache.kernel(&[&w], compute));
        assert!(!cache.is_filled(), "training empties the cache");
    }

    #[test]
    fn cached_evaluation_equals_the_uncached_path_bit_for_bit_across_updates() {
        use crate::models::{Model, ModelConfig};
        for cfg in [
            ModelConfig { depth: Some(16), width: Some(1), ..ModelConfig::new("swrn", 10, 3, 32) }
                .with_option("bank_size", 2),
            ModelConfig { depth: Some(20), ..ModelConfig::new("csg-resnet", 10, 3, 32) },
        ] {
            tch::manual_seed(0);
            let model = Model::build(&cfg, Device::Cpu).unwrap();
            let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
            for update in 0..2 {
                // With gradients on, every kernel is computed (the uncached path).
                let fresh = model.forward_t(&x, false).detach();
                let (first, second) = tch::no_grad(|| (model.forward_t(&x, false), model.forward_t(&x, false)));
                assert!(first.equal(&fresh) && second.equal(&fresh), "{} after {update} updates", cfg.arch);
                // An optimizer-like in-place step on every parameter.
                tch::no_grad(|| {
                    for (_, mut p) in model.named_parameters() {
                        let noise = p.randn_like() * 0.01;
                        p += noise;
                    }
                });
            }
        }
    }
}
