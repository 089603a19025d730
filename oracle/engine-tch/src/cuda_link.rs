//! Keeps `libtorch_cuda.so` linked into every binary that uses this crate (`cuda` feature).
//!
//! rustc links with `--as-needed`, and nothing in a Rust program calls into
//! `libtorch_cuda.so` (its kernels register themselves from static initialisers), so the
//! linker drops it and CUDA silently reports unavailable. Link flags cannot fix this for
//! downstream binaries on stable Rust: `cargo:rustc-link-arg` reaches only this package's own
//! targets, and the `-as-needed` modifier of `rustc-link-lib` is nightly-only. A real
//! reference to a symbol of the library does propagate: the linker must resolve it, so it
//! keeps the library `NEEDED`, in whatever binary links [`anchor`].

// The workspace denies unsafe code; declaring a foreign function is the only way to make
// the reference, and nothing here calls it (taking an address is safe).
#![allow(unsafe_code)]

use std::ffi::c_void;

#[link(name = "torch_cuda")]
unsafe extern "C" {
    /// A C-ABI entry point of `libtorch_cuda.so` (AOTInductor's C shim). Never called: only
    /// its address is taken.
    fn aoti_torch_create_cuda_guard(device_index: i32, ret_guard: *mut *mut c_void) -> i32;
}

/// Refers to `libtorch_cuda.so` so the linker keeps it. Calls nothing.
#[inline(never)]
pub(crate) fn anchor() {
    let f: unsafe extern "C" fn(i32, *mut *mut c_void) -> i32 = aoti_torch_create_cuda_guard;
    std::hint::black_box(f);
}
