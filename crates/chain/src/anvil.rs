//! A local anvil node from the pinned npm package `@foundry-rs/anvil-linux-amd64`.

use std::path::PathBuf;

use alloy::node_bindings::{Anvil, AnvilInstance};

use crate::{Error, Result};

/// Environment variable naming the anvil binary; defaults to the repository's `node_modules`.
pub const ANVIL_ENV: &str = "OPENLEDGER_ANVIL";

/// Where the anvil binary is: `$OPENLEDGER_ANVIL`, else `node_modules/...` in the repository.
pub fn anvil_path() -> PathBuf {
    std::env::var_os(ANVIL_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
        })
}

/// Starts anvil on `port` (a free one if `None`) with chain id `chain_id` and `accounts` funded
/// dev accounts (anvil's deterministic mnemonic); it stops when the returned instance is dropped.
pub fn spawn_anvil(port: Option<u16>, chain_id: u64, accounts: usize) -> Result<AnvilInstance> {
    let path = anvil_path();
    if !path.exists() {
        return Err(Error::AnvilMissing { path });
    }
    let mut anvil = Anvil::at(path)
        .chain_id(chain_id)
        .args(["--accounts".to_string(), accounts.to_string()]);
    if let Some(port) = port {
        anvil = anvil.port(port);
    }
    anvil
        .try_spawn()
        .map_err(|e| Error::AnvilStart(Box::new(e)))
}
