//! `--precision bf16` on the bundled real MNIST: the toy CCNN trained under bf16 autocast reaches the
//! test accuracy of the same run in fp32 to within 0.2 points. Alone in its binary so that it has the
//! cores to itself (about a minute and a half on 2 cores of a CPU with AVX-512). On an x86-64 CPU
//! without AVX-512, libtorch runs bfloat16 convolutions in reference kernels that made the bf16 run
//! alone take over 12 minutes (an AVX2 AMD EPYC, 2 December 2026): there the test says so and checks
//! only that convtrain warns about it, unless `CONVTRAIN_SLOW_BF16_TEST=1` asks for the comparison all
//! the same.
mod common;
use common::*;
use convtrain::precision::Precision;
use std::path::Path;
use tch::Device;

/// The test-set top-1 (the checkered MNIST recipe validates on the test set) of a finished run.
fn test_top1(run: &Path) -> f64 {
    let records = convtrain::train::tracking::read_metrics(&run.join("metrics.jsonl")).unwrap();
    let epoch = records.iter().rfind(|r| r["kind"] == "epoch").expect("an epoch record");
    epoch["val_top1"].as_f64().unwrap()
}

#[test]
fn bf16_training_of_the_toy_ccnn_on_real_mnist_matches_fp32_within_two_tenths_of_a_point() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let data = data.to_str().unwrap();
    let d = tempfile::tempdir().unwrap();
    let forced = std::env::var("CONVTRAIN_SLOW_BF16_TEST").is_ok_and(|v| v == "1");
    if let Some(warning) = Precision::Bf16.slow_on(Device::Cpu).filter(|_| !forced) {
        let args = ["train", "--arch", "ccnn-toy", "--dataset", "mnist", "--data-dir", data, "--precision", "bf16"];
        let o = run(d.path(), &[&args[..], &["--dry-run", "--device", "cpu"]].concat());
        assert!(o.status.success() && stderr(&o).contains(&warning), "{}{}", stdout(&o), stderr(&o));
        eprintln!("SKIPPED the bf16 accuracy comparison on this CPU (CONVTRAIN_SLOW_BF16_TEST=1 runs it): {warning}");
        return;
    }
    let mut top1 = Vec::new();
    for precision in ["fp32", "bf16"] {
        // 300 batches of 64 (19,200 images) annealed to lr 0 by cosine: a settled model, so that the
        // two runs differ by the arithmetic and not by where an unfinished schedule left them.
        let settings = format!(
            "--epochs 1 --limit-train-batches 300 --batch-size 64 --eval-batch-size 500 --no-aug --schedule cosine \
             --seed 0 --device cpu --threads 2 --log-interval 100000 --precision {precision} --job-id {precision}"
        );
        let mut args = vec!["train", "--arch", "ccnn-toy", "--dataset", "mnist", "--data-dir", data];
        args.extend(settings.split_whitespace());
        let o = run(d.path(), &args);
        assert!(o.status.success(), "{precision}: {}", stderr(&o));
        top1.push(test_top1(&d.path().join("runs").join(precision)));
    }
    let (fp32, bf16) = (top1[0], top1[1]);
    assert!(fp32 > 96.0, "the fp32 run did not learn: {fp32}%");
    // One-sided: bf16 must not lose more than 0.2 points. Two runs that differ only in rounding also
    // differ by ±0.1–0.3 points in either direction at this training length (seeds 0 and 1 gave
    // −0.07 and +0.30 on an Intel Xeon with AMX); the run is deterministic for a given CPU kind.
    assert!(bf16 >= fp32 - 0.2, "bf16 {bf16}% vs fp32 {fp32}% on the 10,000 test images");
}
