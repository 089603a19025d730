//! HTTP tests of the oracle server with the real SmolLM2-135M-Instruct model.
//!
//! Needs the model file (`scripts/fetch-model.sh`, run by the workspace test command); the
//! tests fail, not skip, when it is missing. Each test talks to a server on a free local port.
//! [`contract`] holds the checks every backend must pass; they run against the candle engine
//! here and, with the `tch` feature, against the libtorch backend ([`tch`]; needs
//! `eval "$(scripts/setup-libtorch.sh --with-python)"`).

mod api;
pub mod contract;
pub mod http;
#[cfg(feature = "tch")]
mod tch;

/// The backend contract on the candle engine.
mod candle {
    use crate::contract::Target;

    fn target() -> Target {
        Target {
            addr: crate::shared_server(),
            model: "smollm2-135m",
            backend: "candle",
            context_len: 8192,
        }
    }

    crate::contract_tests!(target());
}

use std::net::SocketAddr;
use std::sync::OnceLock;

use openledger_oracle::{Config, Server};

/// Config for a test server: free port, the real model.
pub fn test_config() -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_tokens_limit: 64,
        ..Config::default()
    };
    config.engine.model_path =
        openledger_engine::default_model_dir().join(openledger_engine::DEFAULT_MODEL_FILE);
    assert!(
        config.engine.model_path.is_file(),
        "model file {} is missing: run scripts/fetch-model.sh (or set OPENLEDGER_MODEL_DIR)",
        config.engine.model_path.display()
    );
    config
}

/// A server shared by the tests of this binary, running on its own runtime thread.
pub fn shared_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| serve_in_background(|| Server::bind(test_config())))
}

/// Binds the server `bind` makes on a runtime thread of its own, serves it for the rest of
/// the test process, and returns its address.
pub fn serve_in_background<F, Fut>(bind: F) -> SocketAddr
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = openledger_oracle::Result<Server>>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let server = bind().await.expect("server starts");
            tx.send(server.local_addr()).unwrap();
            server.run_until(std::future::pending()).await.unwrap();
        });
    });
    rx.recv().expect("server address")
}
