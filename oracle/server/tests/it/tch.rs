//! The backend contract on the libtorch backend, serving a TorchScript model that PyTorch
//! exports for the test (`oracle/engine-tch/tests/fixtures/export_models.py`: a tiny causal
//! transformer over SmolLM2's vocabulary with 128 positions).
//!
//! Needs libtorch and Python's `torch`: `eval "$(scripts/setup-libtorch.sh --with-python)"`
//! (the test command does this); the tests fail with that instruction when it is missing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use openledger_engine_tch::{TchEngine, TchEngineConfig, TchModel};
use openledger_oracle::Server;

use crate::contract::Target;

/// Positions of the fixture model.
const CONTEXT: usize = 128;

/// Exports the fixture models once; returns the folder.
fn exported() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let libtorch = std::env::var_os("LIBTORCH").map(PathBuf::from).expect(
            "LIBTORCH is not set: run `eval \"$(scripts/setup-libtorch.sh --with-python)\"` first",
        );
        let site = libtorch.parent().expect("LIBTORCH has a parent folder");
        let dir = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../engine-tch/tests/fixtures/export_models.py");
        let mut pythonpath = std::ffi::OsString::from(site);
        if let Some(old) = std::env::var_os("PYTHONPATH") {
            pythonpath.push(":");
            pythonpath.push(old);
        }
        let out = Command::new("python3")
            .arg(&script)
            .arg(dir.path())
            .args(["1,2,3", "1", "2"])
            .env("PYTHONPATH", pythonpath)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "exporting the TorchScript fixtures failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

/// A server on the libtorch backend, shared by the tests of this module.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let config = crate::test_config();
        let tokenizer =
            openledger_engine::inference::Tokenizer::from_gguf(&config.engine.model_path)
                .expect("tokenizer");
        let model = TchModel::load(exported().join("scripted.pt"), tokenizer).expect("loads");
        let engine = TchEngine::new(
            model,
            TchEngineConfig {
                model_name: "tiny-torchscript".into(),
                context_len: CONTEXT,
                ..TchEngineConfig::default()
            },
        )
        .expect("engine");
        crate::serve_in_background(move || Server::bind_backend(Arc::new(engine), config))
    })
}

fn target() -> Target {
    Target {
        addr: server(),
        model: "tiny-torchscript",
        backend: "tch",
        context_len: CONTEXT,
    }
}

crate::contract_tests!(target());

#[tokio::test]
async fn adapters_are_refused_on_a_backend_without_them() {
    let t = target();
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/completions", t.addr))
        .json(&serde_json::json!({ "model": "tiny-torchscript:some-adapter", "prompt": "Hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
