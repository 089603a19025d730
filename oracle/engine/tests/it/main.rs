//! Engine integration tests on the real SmolLM2-135M-Instruct Q4_1 model.
//!
//! Needs the model file: `scripts/fetch-model.sh` puts it in `$OPENLEDGER_MODEL_DIR`
//! (default `~/.cache/openledger/models`); the workspace test command runs it first. The tests
//! fail (not skip) when it is missing.

mod adapters;
mod formats;
mod generation;
mod recorder;

use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use openledger_engine::{Engine, EngineConfig, GenerateRequest, Prompt, SamplingParams};

/// How long a test waits on the engine before failing: a guard against hanging, not a
/// performance bound (a healthy run takes a small fraction of it on a loaded 2-core machine).
pub const DEADLINE: Duration = Duration::from_secs(120);

/// Runs `fut` to completion; panics naming `what` if it does not finish within [`DEADLINE`]
/// (a stalled engine fails the test instead of hanging it).
pub fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // The timer is created inside the runtime, which drives it.
    rt.block_on(async { tokio::time::timeout(DEADLINE, fut).await })
        .unwrap_or_else(|_| panic!("{what}: not done within {DEADLINE:?}; the engine stalled"))
}

/// Path of the real model; panics with the fix when it is missing.
pub fn model_path() -> PathBuf {
    let path = openledger_engine::default_model_dir().join(openledger_engine::DEFAULT_MODEL_FILE);
    assert!(
        path.is_file(),
        "model file {} is missing: run scripts/fetch-model.sh (or set OPENLEDGER_MODEL_DIR)",
        path.display()
    );
    path
}

/// One engine shared by the generation tests (loading takes a moment in debug builds).
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::start(EngineConfig {
            model_path: model_path(),
            ..Default::default()
        })
        .expect("engine starts")
    })
}

/// Submits every request at once (so they share decoding steps) and collects the results in
/// order.
pub fn run_together(e: &Engine, reqs: &[GenerateRequest]) -> Vec<openledger_engine::Completion> {
    let gens: Vec<_> = reqs
        .iter()
        .map(|r| e.generate(r.clone()).unwrap())
        .collect();
    within("requests run together", async {
        let mut out = Vec::new();
        for g in gens {
            out.push(g.collect().await.unwrap());
        }
        out
    })
}

/// A greedy request for `max_tokens` tokens.
pub fn greedy(prompt: &str, max_tokens: usize) -> GenerateRequest {
    GenerateRequest {
        prompt: Prompt::Text(prompt.into()),
        adapter: None,
        params: SamplingParams {
            temperature: 0.0,
            max_tokens,
            ..Default::default()
        },
    }
}
