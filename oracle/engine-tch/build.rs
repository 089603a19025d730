//! With the `cuda` feature: checks that `LIBTORCH` is a CUDA build, tells the linker where
//! `libtorch_cuda.so` is, and gives this package's own tests and examples an rpath to it.
//! The library is kept in downstream binaries by a symbol reference (`src/cuda_link.rs`),
//! not by link flags: see the crate docs, "The CUDA link trap". Without `cuda`, does nothing.

use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let Some(libtorch) = env::var_os("LIBTORCH").map(PathBuf::from) else {
        panic!(
            "the `cuda` feature of openledger-engine-tch needs LIBTORCH (a CUDA build of \
             libtorch 2.13.0): run `eval \"$(scripts/setup-libtorch.sh --with-python)\"`"
        );
    };
    let lib = libtorch.join("lib");
    let cuda = lib.join("libtorch_cuda.so");
    if !cuda.is_file() {
        panic!(
            "the `cuda` feature needs {}, which is missing: LIBTORCH must point at a CUDA \
             build of libtorch (the PyPI torch==2.13.0 wheel is one)",
            cuda.display()
        );
    }
    println!("cargo:rustc-link-search=native={}", lib.display());
    // `-Wl,--no-as-needed -ltorch_cuda` here would only reach this package's own targets
    // (link args do not propagate), so it is not the fix; the rpath is a convenience for
    // them. Other binaries find libtorch through LD_LIBRARY_PATH or an rpath of their own.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
