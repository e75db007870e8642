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

fn check(dump: &str, dump_args: &[&str], script: &str, script_args: &[&str]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap();
    let o = Command::new(example(dump)).arg(dir).args(dump_args).current_dir(&root).output().unwrap();
    assert!(o.status.success(), "{dump}: {}", String::from_utf8_lossy(&o.stderr));
    let args: Vec<String> = script_args.iter().map(|a| a.replace("{dir}", dir)).collect();
    let o = Command::new(python()).arg(root.join(script)).args(&args).current_dir(&root).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{script} failed:\n{out}\n{}", String::from_utf8_lossy(&o.stderr));
    println!("{out}");
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
