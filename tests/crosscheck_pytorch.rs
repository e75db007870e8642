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
