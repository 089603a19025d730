//! The OpenLedger oracle's libtorch backend: serves TorchScript causal language models
//! exported from PyTorch, through [`tch`](https://docs.rs/tch) 0.26 (libtorch 2.13.0).
//!
//! **What it is for:** loading a model saved with `torch.jit.script(model).save(path)` or
//! `torch.jit.trace(model, example).save(path)` whose `forward` takes token ids `[1, T]`
//! (`int64`) and returns logits `[1, T, V]`, and generating from it: greedy, or temperature +
//! top-p with a seed (deterministic for a fixed seed), up to `max_tokens`, stopping at the
//! end-of-sequence token. Prompt and completion are counted with the model's own tokenizer
//! ([`openledger_tokenizer`]), so metering matches what the model saw. The oracle server
//! reaches it with its own `tch` feature (`openledger oracle serve --backend tch`).
//!
//! `TchEngine` (feature `tch`) serves it through the inference interface of `openledger-inference`
//! (`Backend`: the same request, event, usage and error types, stop rules, chat template and
//! incremental detokenizer as the candle engine), so `openledger oracle serve --backend tch`
//! streams from it like from the candle engine.
//!
//! **What it is not for:** GGUF models, continuous batching or LoRA adapters (that is the
//! candle engine, `openledger-engine`); HTTP or billing (`openledger-oracle`).
//! A TorchScript module with this signature has no KV cache, so each step reruns the whole
//! sequence: fine for the small models it serves, quadratic in the sequence length.
//!
//! # Features and building
//! - Without features the crate builds without libtorch and holds only the backend-neutral
//!   parts ([`SamplingParams`], [`Sampler`], [`Completion`], [`Error`]). This keeps a plain
//!   `cargo build --workspace` free of libtorch; `Cargo.toml` features are the only switch
//!   (`default-members` would not help: `--workspace` builds every member).
//! - `tch`: the backend itself, `TchModel` and `TchEngine`. Building needs libtorch 2.13.0 and running needs
//!   its libraries on the loader path; `scripts/setup-libtorch.sh` installs it from PyPI
//!   (CPU-lite, 1.2 GB) and prints the environment:
//!   ```sh
//!   eval "$(scripts/setup-libtorch.sh)"          # LIBTORCH, LD_LIBRARY_PATH, PYTHONPATH
//!   cargo test -p openledger-engine-tch --features tch
//!   ```
//!   The integration tests also export a model with PyTorch, which needs
//!   `scripts/setup-libtorch.sh --with-python` (Python's `torch` links the CUDA libraries
//!   even on CPU: 2.4 GB more).
//! - `cuda`: links downstream binaries against `libtorch_cuda.so` (see below).
//!
//! # The CUDA link trap
//! `torch-sys` links `torch_cuda` with a plain `-l`, and rustc links with `--as-needed`.
//! Nothing in a Rust binary calls into `libtorch_cuda.so` directly (its kernels register
//! themselves from static initialisers), so the linker drops it: the binary links, runs, and
//! `tch::Cuda::is_available()` silently reports `false` on a GPU machine. Link flags that
//! `torch-sys` could pass with `cargo:rustc-link-arg` would only reach its own targets, never a
//! downstream binary.
//!
//! On stable Rust a library cannot hand `-Wl,--no-as-needed -ltorch_cuda` to downstream
//! links: `rustc-link-arg` stays in its own package and the `-as-needed` modifier of
//! `rustc-link-lib` is nightly-only. So with the `cuda` feature this crate makes the link
//! needed instead: `TchModel::load_on` refers to a C symbol of `libtorch_cuda.so`
//! (`src/cuda_link.rs`; only its address is taken, nothing is called), the linker has to
//! resolve it and keeps the library, in every binary that depends on this crate (the oracle
//! server included) without a build script of its own. `build.rs` checks that `LIBTORCH` is a
//! CUDA build, adds its `lib/` to the link search path, and gives this package's own tests an
//! rpath to it; other binaries find libtorch through `LD_LIBRARY_PATH` (printed by
//! `setup-libtorch.sh`) or an rpath of their own (`-C link-arg=-Wl,-rpath,$LIBTORCH/lib`).
//! Without the feature (CPU builds) a binary links only `libtorch_cpu.so` and `libc10.so`.
//!
//! A GPU machine then needs the full CUDA library set at run time
//! (`scripts/setup-libtorch.sh --with-python` installs it) and an NVIDIA driver. Check with
//! `readelf -d <binary> | grep torch_cuda` and `tch::Cuda::is_available()`.
//!
//! # Example
//! ```no_run
//! # #[cfg(feature = "tch")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use openledger_engine_tch::{SamplingParams, TchModel};
//! use openledger_tokenizer::Tokenizer;
//!
//! let tokenizer = Tokenizer::from_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let model = TchModel::load("model.pt", tokenizer)?;
//! let out = model.generate("The capital of France is", &SamplingParams::greedy(8))?;
//! println!("{} ({} + {} tokens)", out.text, out.usage.prompt_tokens, out.usage.completion_tokens);
//! # Ok(()) }
//! # #[cfg(not(feature = "tch"))]
//! # fn main() {}
//! ```

#[cfg(feature = "cuda")]
mod cuda_link;
#[cfg(feature = "tch")]
mod engine;
mod error;
#[cfg(feature = "tch")]
mod model;
pub use openledger_inference as inference;
pub use openledger_sampling as sampling;

#[cfg(feature = "tch")]
pub use engine::{TchEngine, TchEngineConfig};
pub use error::{Error, Result};
#[cfg(feature = "tch")]
pub use model::{Logits, TchModel};
pub use openledger_inference::{Completion, FinishReason, Usage};
pub use openledger_sampling::{Sampler, SamplingParams};

#[cfg(feature = "tch")]
pub use tch;
