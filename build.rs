//! Links the binary against libtorch so that it runs without LD_LIBRARY_PATH and, when the libtorch has
//! CUDA, really loads `libtorch_cuda.so` (tch-rs issues #907/#980/#787; spec/ecosystem.md §3.5).
//! Also records what a run's provenance names (the git commit, the CUDA and cuDNN versions the libtorch
//! was built with), embeds the bundled recipes of `configs/` (`$OUT_DIR/recipes.rs`), and compiles the
//! C++ bindings of `csrc/` against the same libtorch headers: autocast (`autocast.cpp`,
//! src/precision.rs), dropping a gradient (`grad.cpp`) and the one-pass SGD update (`sgd.cpp`, both
//! src/train/optimizer.rs).
use std::path::{Path, PathBuf};

fn main() {
    embed_recipes();
    record_git_commit();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys reported no libtorch directory (DEP_TCH_LIBTORCH_LIB): see scripts/setup.sh");
    println!("cargo:rustc-env=CONVTRAIN_LIBTORCH_LIB={lib}");
    let lib = PathBuf::from(lib);
    record_cuda_versions(&lib);
    compile_bindings(&lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath={}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

/// `csrc/*.cpp`, compiled with the flags torch-sys compiles libtch with: the headers beside the
/// libtorch `lib` directory (`include/`, as in both the PyPI wheel and the libtorch archive), C++17, and
/// the C++11 string ABI unless `LIBTORCH_CXX11_ABI` says otherwise (every torch 2.13 build uses it).
fn compile_bindings(lib: &Path) {
    let csrc = Path::new(env!("CARGO_MANIFEST_DIR")).join("csrc");
    let sources = ["autocast.cpp", "grad.cpp", "sgd.cpp"].map(|f| csrc.join(f));
    for source in &sources {
        println!("cargo:rerun-if-changed={}", source.display());
    }
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let include = lib.parent().unwrap_or(lib).join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        // sgd.cpp rounds every product and sum on its own, as the tensor operations it replaces.
        .flag("-ffp-contract=off")
        .files(&sources)
        .compile("convtrain_bindings");
}

/// `recipes.rs`: `BUNDLED`, every `configs/*.json` as (name, text), sorted by name.
fn embed_recipes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect())
        .unwrap_or_default();
    files.sort();
    let mut out = String::from("/// The recipes of `configs/`, embedded at build time: (name, JSON text).\n");
    out.push_str("pub const BUNDLED: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        out.push_str(&format!("    ({name:?}, include_str!({:?})),\n", f.display().to_string()));
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("recipes.rs");
    std::fs::write(target, out).expect("writing recipes.rs into OUT_DIR");
}

/// `CONVTRAIN_GIT_COMMIT`: the commit the binary was built from (`unknown` outside a git checkout).
fn record_git_commit() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let branch = git(&["rev-parse", "--symbolic-full-name", "HEAD"]).filter(|b| b.starts_with("refs/"));
    for path in ["HEAD".to_string()].into_iter().chain(branch) {
        if let Some(p) = git(&["rev-parse", "--git-path", &path]) {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CONVTRAIN_GIT_COMMIT={commit}");
}

/// `CONVTRAIN_CUDA_BUILD` / `CONVTRAIN_CUDNN_BUILD`: the CUDA and cuDNN versions of the libtorch in
/// `lib` (a wheel's `torch/version.py` and `nvidia/cudnn` headers; `none` for a CPU build).
fn record_cuda_versions(lib: &Path) {
    let torch = lib.parent().unwrap_or(lib);
    let cuda = std::fs::read_to_string(torch.join("version.py"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("cuda"))
                .and_then(|l| l.split('=').nth(1))
                .map(|v| v.trim().trim_matches(['\'', '"']).to_string())
        })
        .map(|v| if v == "None" { "none".to_string() } else { v })
        .unwrap_or_else(|| "unknown".into());
    let header = torch.parent().map(|sp| sp.join("nvidia/cudnn/include/cudnn_version.h"));
    let cudnn = header
        .and_then(|h| std::fs::read_to_string(h).ok())
        .map(|t| {
            let field = |name: &str| {
                t.lines()
                    .find_map(|l| l.strip_prefix(&format!("#define {name} ")).map(|v| v.trim().to_string()))
                    .unwrap_or_else(|| "?".into())
            };
            format!("{}.{}.{}", field("CUDNN_MAJOR"), field("CUDNN_MINOR"), field("CUDNN_PATCHLEVEL"))
        })
        .unwrap_or_else(|| if cuda == "none" { "none".into() } else { "unknown".into() });
    println!("cargo:rustc-env=CONVTRAIN_CUDA_BUILD={cuda}");
    println!("cargo:rustc-env=CONVTRAIN_CUDNN_BUILD={cudnn}");
}
