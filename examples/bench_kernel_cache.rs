//! Evaluation of the generated-kernel families against their materialised plain networks: SWRN-16-4-2
//! against the WRN-16-4 its templates fold into, CSG ResNet-56 and CSG DenseNet-BC-40-48 against their
//! `-org` networks loaded with the materialised kernels (`export --materialize`). Both forward passes
//! run interleaved in one process on the same input (no gradients, BN in eval mode), so that the
//! ratio is a side-by-side measurement; the generated model keeps its kernels between batches
//! (`models::kernel_cache`), so after the first batch the two differ only in the cache's checks.
//!
//! Usage: `cargo run --release --example bench_kernel_cache [-- BATCH [PAIRS]]` (defaults 16 and 15).
use convtrain::models::{Model, ModelConfig};
use std::path::Path;
use tch::{Device, Kind, Tensor};

#[path = "common/timing.rs"]
mod timing;
use timing::interleaved;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("BATCH and PAIRS are integers")).collect();
    let batch = *args.first().unwrap_or(&16) as i64;
    let pairs = *args.get(1).unwrap_or(&15);
    println!(
        "evaluation, CPU float32, {} threads, batch {batch}, {pairs} interleaved pairs of forward passes \
         (medians; ratio: plain ms / generated ms per pair, median and range; 1.00 = as fast as the plain network)",
        tch::get_num_threads()
    );
    println!();
    println!("{:<26} {:>14} {:>10} {:>22} {:>9}", "model", "generated ms", "plain ms", "ratio (range)", "max |Δy|");
    let mut swrn = ModelConfig::new("swrn", 10, 3, 32);
    (swrn.depth, swrn.width) = (Some(16), Some(4));
    let swrn = swrn.with_option("bank_size", 2);
    let mut csg_resnet = ModelConfig::new("csg-resnet", 10, 3, 32);
    csg_resnet.depth = Some(56);
    let mut csg_densenet = ModelConfig::new("csg-densenet", 10, 3, 32);
    (csg_densenet.depth, csg_densenet.width) = (Some(40), Some(48));
    for (label, cfg) in [("SWRN-16-4-2", swrn), ("CSG ResNet-56", csg_resnet), ("CSG DenseNet-BC-40-48", csg_densenet)]
    {
        tch::manual_seed(0);
        let generated = Model::build(&cfg, Device::Cpu).expect("build the generated-kernel model");
        let x = Tensor::randn([batch, 3, 32, 32], (Kind::Float, Device::Cpu));
        // Training-mode passes move the BatchNorm statistics off their initial values, which let a
        // freshly initialised ResNet-56's activations overflow in eval mode.
        tch::no_grad(|| (0..20).for_each(|_| drop(generated.forward_t(&x, true))));
        let fold = generated.arch.materialize.expect("the family has a plain equivalent");
        let (plain_cfg, tensors) = fold(&generated.named_variables(), &cfg).expect("materialise");
        let plain = Model::build(&plain_cfg, Device::Cpu).expect("build the plain model");
        plain.load_named(&tensors, Path::new("materialised"), None).expect("load the materialised kernels");
        let eval = |m: &Model| tch::no_grad(|| m.forward_t(&x, false));
        let diff = f64::try_from((eval(&generated) - eval(&plain)).abs().max()).unwrap();
        let t = interleaved(pairs, || drop(eval(&plain)), || drop(eval(&generated)));
        let ratio = format!("{:.3} ({:.2}–{:.2})", t.ratio, t.ratio_lo, t.ratio_hi);
        println!("{label:<26} {:>14.2} {:>10.2} {ratio:>22} {diff:>9.1e}", t.b_ms, t.a_ms);
    }
}
