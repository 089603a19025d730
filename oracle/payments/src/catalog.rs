//! The models this node serves, as the chain says, kept current from the registries' events.
//!
//! A model is **listed** when this operator serves it on chain (`serves(operator, id)`) and it
//! is active. Requests name it `model-<id>` (the on-chain id in decimal). It is **servable**
//! when, in addition, its `baseModelHash` is the SHA-256 of the GGUF file this node runs and
//! its latest version's `adapterHash` is zero (the base model itself) or the SHA-256 of an
//! adapter in the node's adapter directory; otherwise requests for it are refused with the
//! reason, before any compute.
//!
//! [`Catalog::refresh`] re-reads every model named by a new `ModelRegistry` event
//! (registration, new version, price change, deactivation, transfer) or an `OperatorRegistry`
//! `ServingSet` event since the last block it looked at, so new versions and prices apply
//! while running, with no restart.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use alloy::primitives::{B256, U256};
use alloy::sol_types::SolEvent;
use openledger_primitives::bindings::{ModelRegistry, OperatorRegistry};

use crate::chain::{ChainClient, ModelFacts};
use crate::error::Result;

/// The name requests use for model `id`.
pub fn model_name(id: U256) -> String {
    format!("model-{id}")
}

/// The model id a request's `model` names, if it has the `model-<id>` form.
pub fn parse_model_name(name: &str) -> Option<U256> {
    let digits = name.strip_prefix("model-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// A listed model and how this node would serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The chain's facts.
    pub facts: ModelFacts,
    /// The adapter to run (its SHA-256, hex), or `None` for the base model; `Err` when the
    /// node cannot serve this model, with why.
    pub serving: std::result::Result<Option<String>, String>,
}

/// What the node runs, to match models against.
pub trait Runtime: Send + Sync {
    /// SHA-256 of the base model file served.
    fn base_model_sha256(&self) -> B256;
    /// Whether an adapter with this SHA-256 (lowercase hex) is available.
    fn has_adapter(&self, sha256_hex: &str) -> bool;
}

/// The served models, shared by the handlers and the follower.
#[derive(Clone)]
pub struct Catalog {
    chain: ChainClient,
    runtime: Arc<dyn Runtime>,
    models: Arc<RwLock<BTreeMap<U256, CatalogEntry>>>,
    /// The last block whose events were applied.
    cursor: Arc<RwLock<u64>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("models", &self.models.read().map(|m| m.len()).unwrap_or(0))
            .finish()
    }
}

impl Catalog {
    /// Reads every registered model once.
    pub async fn load(chain: ChainClient, runtime: Arc<dyn Runtime>) -> Result<Self> {
        let (head, _) = chain.head().await?;
        let catalog = Self {
            chain,
            runtime,
            models: Arc::default(),
            cursor: Arc::new(RwLock::new(head)),
        };
        let count = catalog.chain.model_count().await?;
        for id in 1..=count {
            catalog.reload(U256::from(id)).await?;
        }
        Ok(catalog)
    }

    async fn reload(&self, id: U256) -> Result<()> {
        let facts = self.chain.model(id).await?;
        let mut models = self.models.write().unwrap_or_else(|p| p.into_inner());
        if !(facts.served && facts.active) {
            if models.remove(&id).is_some() {
                tracing::info!(target: "payments::catalog", model = %model_name(id), "no longer served");
            }
            return Ok(());
        }
        let serving = self.serving(&facts);
        match &serving {
            Ok(adapter) => {
                tracing::info!(target: "payments::catalog", model = %model_name(id), version = facts.version, price_per_1k = %facts.price_per_1k, adapter = adapter.as_deref().unwrap_or("none (base model)"), "serving")
            }
            Err(why) => {
                tracing::warn!(target: "payments::catalog", model = %model_name(id), "listed on chain but not servable here: {why}")
            }
        }
        models.insert(id, CatalogEntry { facts, serving });
        Ok(())
    }

    fn serving(&self, facts: &ModelFacts) -> std::result::Result<Option<String>, String> {
        let base = self.runtime.base_model_sha256();
        if facts.base_model_hash != base {
            return Err(format!(
                "its base model hash {} is not the SHA-256 {base} of the model file this node runs",
                facts.base_model_hash
            ));
        }
        if facts.adapter_hash.is_zero() {
            return Ok(None);
        }
        let hex = alloy::hex::encode(facts.adapter_hash);
        if self.runtime.has_adapter(&hex) {
            Ok(Some(hex))
        } else {
            Err(format!(
                "version {} names adapter {} (SHA-256), which is not in this node's adapter directory",
                facts.version, facts.adapter_hash
            ))
        }
    }

    /// Applies the registries' events up to the chain head; returns whether anything changed.
    pub async fn refresh(&self) -> Result<bool> {
        let (head, _) = self.chain.head().await?;
        let from = *self.cursor.read().unwrap_or_else(|p| p.into_inner()) + 1;
        if head < from {
            return Ok(false);
        }
        let d = &self.chain.deployment().contracts;
        let logs = self
            .chain
            .logs(vec![d.models, d.operators], from, head)
            .await?;
        let mut touched = std::collections::BTreeSet::new();
        for log in &logs {
            let Some(topic0) = log.topic0() else { continue };
            let model_event = log.address() == d.models
                && [
                    ModelRegistry::ModelRegistered::SIGNATURE_HASH,
                    ModelRegistry::ModelVersionAdded::SIGNATURE_HASH,
                    ModelRegistry::ModelPriceChanged::SIGNATURE_HASH,
                    ModelRegistry::ModelDeactivated::SIGNATURE_HASH,
                ]
                .contains(topic0);
            let serving_event = log.address() == d.operators
                && *topic0 == OperatorRegistry::ServingSet::SIGNATURE_HASH
                && log.topics().get(1)
                    == Some(&B256::left_padding_from(self.chain.operator().as_slice()));
            if model_event || serving_event {
                // modelId is the first indexed field of each of these events (topic 1), but
                // for ServingSet it is topic 2.
                let topic = if serving_event { 2 } else { 1 };
                if let Some(t) = log.topics().get(topic) {
                    touched.insert(U256::from_be_bytes(t.0));
                }
            }
        }
        for id in &touched {
            self.reload(*id).await?;
        }
        *self.cursor.write().unwrap_or_else(|p| p.into_inner()) = head;
        Ok(!touched.is_empty())
    }

    /// The listed model `id`, if any.
    pub fn get(&self, id: U256) -> Option<CatalogEntry> {
        self.models
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// Every listed model, by id.
    pub fn entries(&self) -> Vec<CatalogEntry> {
        self.models
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_round_trip_and_refuse_other_forms() {
        assert_eq!(
            parse_model_name(&model_name(U256::from(42))),
            Some(U256::from(42))
        );
        for bad in [
            "model-",
            "model-0",
            "model-01",
            "model-1a",
            "smollm2-135m",
            "model--1",
        ] {
            assert_eq!(parse_model_name(bad), None, "{bad}");
        }
    }
}
