//! convtrain's layers against independent PyTorch implementations (scripts/crosscheck_*.py) on the same
//! weights, with the PyTorch of the set-up environment (`scripts/env.sh` exports CONVTRAIN_TORCH_HOME).
use std::path::PathBuf;
use std::process::Command;

/// `target/release/examples/<name>`, built by `cargo test` next to the test binaries.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("examples").join(name)
}

fn python() -> PathBuf {
    let home = std::env::var("CONVTRAIN_TORCH_HOME")
        .expect("CONVTRAIN_TORCH_HOME is not set: run the tests through `bash scripts/test.sh` (README command 2)");
    PathBuf::from(home).join("bin/python")
}

/// Runs `program args…` in the repository root; panics with its output unless it succeeds.
fn succeed(program: PathBuf, args: &[String]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new(&program).args(args).current_dir(&root).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{} {args:?} failed:\n{out}\n{}",
        program.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    println!("{out}");
}

/// `dump DIR dump_args…`, then `python script script_args…` (`{dir}` replaced by DIR).
fn check(dump: &str, dump_args: &[&str], script: &str, script_args: &[&str]) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap();
    let with_dir = |args: &[&str]| args.iter().map(|a| a.replace("{dir}", dir)).collect::<Vec<_>>();
    let mut args = vec![dir.to_string()];
    args.extend(with_dir(dump_args));
    succeed(example(dump), &args);
    let mut args = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(script).display().to_string()];
    args.extend(with_dir(script_args));
    succeed(python(), &args);
}

#[test]
fn swrn_matches_an_independent_pytorch_swrn() {
    for shape in [["16", "1", "3", "10"], ["22", "2", "9", "100"]] {
        check("swrn_dump", &shape, "scripts/crosscheck_swrn.py", &["{dir}"]);
    }
}

#[test]
fn checkered_layers_match_the_four_conv_definition_in_pytorch() {
    check("checkered_dump", &[], "scripts/crosscheck_checkered.py", &["--dump", "{dir}"]);
}

#[test]
fn checkered_models_interchange_with_the_authors_state_dicts_both_ways() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    succeed(example("checkered_models_dump"), &["export".into(), dir.clone()]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/crosscheck_checkered_models.py");
    succeed(python(), &[script.display().to_string(), dir.clone()]);
    succeed(example("checkered_models_dump"), &["import".into(), dir]);
}

#[test]
fn vgg_features_matches_an_independent_pytorch_vgg() {
    for (widths, classes) in [("8,9,10,11,12,13,14,6,5", "10"), ("12,10,9,8,7,6,5,8,9,16,20,7", "100")] {
        check("vgg_features_dump", &[widths, classes], "scripts/crosscheck_vgg_features.py", &["{dir}"]);
    }
}

#[test]
fn vgg_feature_variants_match_an_independent_numpy_generator() {
    use convtrain::models::layers::Grid;
    use convtrain::models::vgg_features::{trainable_parameters, variants, VggSettings, WeightInit, DEFAULT_BN_EPS};
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for (depth, classes) in [(10, 10), (13, 100), (16, 10), (19, 10), (22, 100)] {
        let o = Command::new(python())
            .arg(root.join("scripts/crosscheck_vgg_variants.py"))
            .args(["--vgg-depth", &depth.to_string(), "--classes", &classes.to_string()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let theirs: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
        let ours = variants(depth, classes, 32).unwrap();
        let settings = VggSettings {
            in_channels: 3,
            num_classes: classes,
            image_size: 32,
            weight_init: WeightInit::KaimingNormal,
            bn_eps: DEFAULT_BN_EPS,
            grid: Grid::Dense,
        };
        assert_eq!(ours.len(), theirs.len(), "depth {depth}");
        for (v, t) in ours.iter().zip(&theirs) {
            let trainable = trainable_parameters(&v.widths, &settings);
            let ours = serde_json::json!({
                "id": v.id, "xi": v.xi, "omega": v.omega, "alpha": v.alpha, "widths": v.widths,
                "parameters": v.parameters, "trainable": trainable,
            });
            assert_eq!(&ours, t, "depth {depth}");
        }
        println!("depth {depth}: {} variants agree", ours.len());
    }
}

#[test]
fn diracnet_matches_an_independent_functional_pytorch_diracnet() {
    // Unfolded (eval and train mode) and folded logits on the same weights: CIFAR-10-style, a 1-channel
    // 28×28 CIFAR net (MNIST) and the ImageNet geometry at 64×64.
    for shape in [
        ["cifar", "10", "1", "10", "3", "32"],
        ["cifar", "16", "2", "100", "1", "28"],
        ["imagenet", "18", "1", "5", "3", "64"],
    ] {
        check("diracnet_dump", &shape, "scripts/crosscheck_diracnet.py", &["{dir}"]);
    }
}

#[test]
fn csg_networks_match_an_independent_pytorch_implementation() {
    for args in [
        &["csg-resnet", "depth=8"][..],
        &["csg-resnet", "depth=14", "slice=16,16,3,3", "code_size=72"],
        &["csg-densenet", "depth=10", "width=12"],
        &["csg-densenet", "depth=10", "width=10", "slice=16,16,3,3", "code_size=20"],
        &["csg-resnet18", "image_size=32"],
        &["csg-resnet18-basic", "image_size=40", "in_channels=1", "classes=7"],
    ] {
        check("csg_dump", args, "scripts/crosscheck_csg.py", &["{dir}"]);
    }
}
