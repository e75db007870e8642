//! Links the binary against libtorch so that it runs without LD_LIBRARY_PATH and, when the libtorch has
//! CUDA, really loads `libtorch_cuda.so` (tch-rs issues #907/#980/#787; spec/ecosystem.md §3.5).
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:rustc-env=CONVTRAIN_LIBTORCH_LIB=unknown");
        return;
    };
    println!("cargo:rustc-env=CONVTRAIN_LIBTORCH_LIB={lib}");
    let lib = PathBuf::from(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath={}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
