//! Paid mode: the `[oracle.chain]` settings and starting `openledger-payments` beside the
//! backend.
//!
//! With a chain configured, every completion is paid by a voucher (the API key), metered,
//! attributed, journaled and settled (`openledger-payments`); `/v1/models` lists the on-chain
//! models this operator serves, named `model-<id>`. Without one, the node serves unpaid in
//! development mode and says so at start.

use std::path::PathBuf;
use std::sync::Arc;

use alloy::primitives::B256;
use alloy::signers::local::PrivateKeySigner;
use openledger_engine::Backend;
use openledger_payments::{Keys, PaidConfig, PaymentMetrics, Payments, Runtime};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Metrics, Result};

/// The chain a paid node settles on, and its keys (the `[oracle.chain]` table; the keys and
/// the keystore password come from env or flags only, never from the file).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ChainConfig {
    /// Where and how the node settles.
    #[serde(flatten)]
    pub paid: PaidConfig,
    /// Hex private key of the operator account (never serialized).
    #[serde(skip)]
    pub private_key: Option<String>,
    /// Encrypted JSON keystore of the operator account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keystore: Option<PathBuf>,
    /// Its password (never serialized).
    #[serde(skip)]
    pub keystore_password: Option<String>,
    /// Hex private key of the operator's registered batch signer, when it is not the
    /// operator key (never serialized).
    #[serde(skip)]
    pub signer_key: Option<String>,
}

impl ChainConfig {
    /// The operator and signer keys.
    pub fn keys(&self) -> Result<Keys> {
        let bad = |what: &str, e: String| Error::Backend {
            reason: format!("{what}: {e}"),
        };
        let operator: PrivateKeySigner = match (&self.private_key, &self.keystore) {
            (Some(key), _) => key
                .trim()
                .parse()
                .map_err(|e| bad("the operator private key is not a hex key", format!("{e}")))?,
            (None, Some(path)) => PrivateKeySigner::decrypt_keystore(
                path,
                self.keystore_password.as_deref().unwrap_or_default(),
            )
            .map_err(|e| {
                bad(
                    &format!("cannot decrypt keystore {}", path.display()),
                    e.to_string(),
                )
            })?,
            (None, None) => {
                return Err(Error::Backend {
                    reason: "paid mode needs the operator key: set OPENLEDGER_ORACLE_PRIVATE_KEY or pass --keystore".into(),
                });
            }
        };
        let signer = match &self.signer_key {
            Some(key) => key
                .trim()
                .parse()
                .map_err(|e| bad("the signer key is not a hex key", format!("{e}")))?,
            None => operator.clone(),
        };
        Ok(Keys { operator, signer })
    }
}

/// What the node serves, for matching on-chain models.
struct Served {
    backend: Arc<dyn Backend>,
    base: B256,
}

impl Runtime for Served {
    fn base_model_sha256(&self) -> B256 {
        self.base
    }

    fn has_adapter(&self, sha256_hex: &str) -> bool {
        self.backend.has_adapter(sha256_hex)
    }
}

/// SHA-256 of a file.
pub fn file_sha256(path: &std::path::Path) -> std::io::Result<B256> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(B256::from_slice(&hasher.finalize()))
}

/// Starts the paid mode for `backend`, whose base model file is `model_file`.
pub async fn start(
    chain: &ChainConfig,
    backend: Arc<dyn Backend>,
    model_file: PathBuf,
    metrics: &Metrics,
) -> Result<Payments> {
    let keys = chain.keys()?;
    let deployment =
        openledger_chain::deploy::read_manifest(&chain.paid.manifest).map_err(|e| {
            Error::Backend {
                reason: format!("paid mode: {e}"),
            }
        })?;
    let base =
        tokio::task::spawn_blocking(move || file_sha256(&model_file).map_err(|e| (model_file, e)))
            .await
            .map_err(|e| Error::Serve(std::io::Error::other(e)))?
            .map_err(|(path, e)| Error::Backend {
                reason: format!("cannot hash the model file {}: {e}", path.display()),
            })?;
    let tokenizer = Arc::new(backend.tokenizer().clone());
    let runtime = Arc::new(Served { backend, base });
    let payment_metrics = metrics.scope(PaymentMetrics::register);
    Payments::start(
        chain.paid.clone(),
        deployment,
        keys,
        runtime,
        tokenizer,
        payment_metrics,
    )
    .await
    .map_err(|e| Error::Backend {
        reason: e.to_string(),
    })
}
