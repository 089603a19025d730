//! The oracle's paid mode (DESIGN §5–7): every inference paid by a voucher, attributed to the
//! contributions it used, journaled, batched and settled on chain.
//!
//! **What it is for:** the oracle server calls [`Payments::authorize`] before any compute
//! (the voucher-API-key, model, cap and escrow checks, reserving the worst-case fee) and
//! [`Payments::record`] when a generation ends (metering, Proof of Attribution, the receipt,
//! journaled durably before the response ends). In the background it follows the registries
//! (models, prices, versions, contributions) and runs the batcher.
//!
//! **What it is not for:** HTTP (the server maps [`Refusal`]s to responses), the rules
//! themselves (`openledger-billing`: fee, voucher checks, credits, Merkle tree, batch
//! building) and attribution's algorithm (`openledger-attribution`).
//!
//! Pieces: [`journal`] (the durable log), [`ledger`] (the state it describes, reservations),
//! [`chain`] (reads and posting), [`catalog`] (models served by hash), [`content`] (content
//! store and attribution indexes), [`batcher`] (batches, posting, reconciliation), [`crash`]
//! (deterministic crash points for the tests), [`metrics`].

pub mod batcher;
pub mod catalog;
pub mod chain;
pub mod content;
pub mod crash;
pub mod error;
pub mod journal;
pub mod ledger;
pub mod metrics;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use openledger_attribution::AttributionConfig;
use openledger_billing::{
    Receipt,
    merkle::MerkleTree,
    meter,
    voucher::{self, Node, Signer, decode_api_key, recover_signer},
};
use openledger_primitives::{deployment::Deployment, eip712::voucher_digest};
use openledger_tokenizer::Tokenizer;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use batcher::BatchPolicy;
pub use catalog::{Catalog, CatalogEntry, Runtime, model_name, parse_model_name};
pub use chain::ChainClient;
pub use content::{Attributor, ContentStore};
pub use error::{Error, Result};
pub use journal::{Journal, Record, Served};
pub use ledger::{Ledger, Reservation};
pub use metrics::PaymentMetrics;

/// Settings of the paid mode (the `[oracle.chain]` table). Keys are not here: see [`Keys`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaidConfig {
    /// JSON-RPC URL of the chain.
    pub rpc_url: String,
    /// The deployment manifest (`openledger deploy` writes it).
    pub manifest: PathBuf,
    /// The node's data directory: `journal.log` and `content/`.
    pub data_dir: PathBuf,
    /// When batches are cut.
    pub batch: BatchPolicy,
    /// Seconds the node needs after serving to get a charge settled: vouchers expiring sooner
    /// are refused. Default 900 (above the default batch age plus a little).
    pub settlement_margin_secs: u64,
    /// How often the registries are polled for new events and the batcher runs, ms.
    /// Default 1,000.
    pub poll_interval_ms: u64,
}

impl Default for PaidConfig {
    fn default() -> Self {
        Self {
            rpc_url: "http://127.0.0.1:8545".into(),
            manifest: PathBuf::from(".openledger/deployment.json"),
            data_dir: PathBuf::from(".openledger/oracle"),
            batch: BatchPolicy::default(),
            settlement_margin_secs: 900,
            poll_interval_ms: 1_000,
        }
    }
}

/// The node's keys: the operator account (sends `settleBatch`, named by vouchers) and the
/// signer registered for it in the operator registry (signs batches). Never logged.
#[derive(Clone)]
pub struct Keys {
    /// The operator account.
    pub operator: PrivateKeySigner,
    /// Its registered batch signer (often the same key).
    pub signer: PrivateKeySigner,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("operator", &self.operator.address())
            .field("signer", &self.signer.address())
            .finish()
    }
}

/// Why a paid request was refused before any compute: an HTTP status, an OpenAI-style error
/// code and a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401 (no or unreadable key), 402 (the voucher does not pay for it), 404 (model), 400
    /// (the request itself), 503 (the chain is unreachable).
    pub status: u16,
    /// OpenAI-style `code`.
    pub code: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl Refusal {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

/// A request the voucher pays for; holds its reservation until [`Payments::record`].
#[derive(Debug)]
pub struct Authorized {
    /// The model and how to serve it.
    pub model: CatalogEntry,
    /// The adapter to run (SHA-256 hex), `None` for the base model.
    pub adapter: Option<String>,
    /// The paying user.
    pub user: Address,
    api_key: String,
    price: U256,
    reservation: Reservation,
}

pub(crate) struct Inner {
    config: PaidConfig,
    chain: ChainClient,
    signer: PrivateKeySigner,
    journal: Arc<Journal>,
    ledger: Ledger,
    catalog: Catalog,
    attributor: Attributor,
    metrics: PaymentMetrics,
    node: Node,
    requests: AtomicU64,
    boot: u128,
    /// Held by each batcher step: the background loop and [`Payments::flush`] never drive a
    /// batch at the same time.
    batching: tokio::sync::Mutex<()>,
}

impl Inner {
    /// Journals `record` durably, then applies it to the ledger.
    pub(crate) async fn journal(&self, record: Record) -> Result<()> {
        let journal = self.journal.clone();
        let line = record.clone();
        tokio::task::spawn_blocking(move || journal.append(&line))
            .await
            .map_err(|e| Error::Replay(format!("journal writer: {e}")))??;
        self.ledger.apply(&record)
    }
}

/// Unix seconds now.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The paid mode, started.
#[derive(Clone)]
pub struct Payments {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("operator", &self.inner.chain.operator())
            .finish_non_exhaustive()
    }
}

impl Payments {
    /// Connects to the chain, replays the journal, loads the catalog and the attribution
    /// indexes, and starts the follower and the batcher. `runtime` is what the node serves
    /// (its base model hash and adapters), `tokenizer` the served model's.
    pub async fn start(
        config: PaidConfig,
        deployment: Deployment,
        keys: Keys,
        runtime: Arc<dyn Runtime>,
        tokenizer: Arc<Tokenizer>,
        metrics: PaymentMetrics,
    ) -> Result<Self> {
        let chain = ChainClient::connect(&config.rpc_url, deployment, keys.operator).await?;
        let registered = chain.signer_of().await?;
        if registered != keys.signer.address() {
            return Err(Error::Config {
                reason: format!(
                    "the operator registry's signer for {} is {registered}, not this node's signer key {}: register it (setSigner) or use that key",
                    chain.operator(),
                    keys.signer.address()
                ),
            });
        }
        let (journal, records) = Journal::open(config.data_dir.join("journal.log"))?;
        let ledger = Ledger::replay(records)?;
        let (queued, _) = ledger.queued();
        tracing::info!(target: "payments", journal = %journal.path().display(), receipts = ledger.all_receipts().len(), queued, outstanding = ?ledger.outstanding().map(|b| b.signed.sequence), "journal replayed");
        let catalog = Catalog::load(chain.clone(), runtime).await?;
        let store = ContentStore::new(config.data_dir.join("content"))?;
        let attributor = Attributor::new(
            chain.clone(),
            store,
            tokenizer,
            AttributionConfig::default(),
            metrics.clone(),
        );
        attributor.refresh(&catalog).await?;
        let node = Node {
            domain: chain.domain().clone(),
            operator: chain.operator(),
            settlement_margin: config.settlement_margin_secs,
        };
        let boot = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let inner = Arc::new(Inner {
            config,
            chain,
            signer: keys.signer,
            journal: Arc::new(journal),
            ledger,
            catalog,
            attributor,
            metrics,
            node,
            requests: AtomicU64::new(0),
            boot,
            batching: tokio::sync::Mutex::new(()),
        });
        let payments = Self { inner };
        payments.spawn_background();
        Ok(payments)
    }

    fn spawn_background(&self) {
        let every = Duration::from_millis(self.inner.config.poll_interval_ms.max(10));
        let follower = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(p) = follower.upgrade() else { return };
                if let Err(e) = p.catalog.refresh().await {
                    tracing::warn!(target: "payments::follow", "catalog refresh failed (retrying): {e}");
                    continue;
                }
                if let Err(e) = p.attributor.refresh(&p.catalog).await {
                    tracing::warn!(target: "payments::follow", "attribution refresh failed (retrying): {e}");
                }
            }
        });
        let batcher = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut backoff = every;
            loop {
                tokio::time::sleep(backoff).await;
                let Some(p) = batcher.upgrade() else { return };
                match batcher::step(&p, false).await {
                    Ok(_) => backoff = every,
                    Err(e) => {
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        tracing::warn!(target: "payments::batch", retry_in = ?backoff, "batcher: {e}");
                    }
                }
            }
        });
    }

    /// Checks a request before any compute: the API key (a signed voucher), the model, the
    /// worst-case fee against the voucher's cap and the user's guaranteed escrow; reserves the
    /// worst case on success.
    pub async fn authorize(
        &self,
        api_key: Option<&str>,
        model: &str,
        prompt_tokens: u64,
        max_tokens: u64,
    ) -> std::result::Result<Authorized, Refusal> {
        let started = Instant::now();
        let r = self
            .authorize_inner(api_key, model, prompt_tokens, max_tokens)
            .await;
        match &r {
            Ok(_) => self
                .inner
                .metrics
                .authorize_seconds
                .record(started.elapsed().as_secs_f64()),
            Err(_) => self.inner.metrics.refusals.increment(1),
        }
        r
    }

    async fn authorize_inner(
        &self,
        api_key: Option<&str>,
        model: &str,
        prompt_tokens: u64,
        max_tokens: u64,
    ) -> std::result::Result<Authorized, Refusal> {
        let p = &self.inner;
        let api_key = api_key.ok_or_else(|| {
            Refusal::new(
                401,
                "missing_api_key",
                "this node serves paid requests: pass a signed voucher as the API key (Authorization: Bearer 0x…; make one with `openledger voucher sign`)",
            )
        })?;
        let signed = decode_api_key(api_key).map_err(|e| {
            Refusal::new(
                401,
                "invalid_api_key",
                format!("{e}; the API key is 0x + hex of abi.encode(SignedVoucher), as `openledger voucher sign` prints it"),
            )
        })?;
        let model_id = parse_model_name(model).ok_or_else(|| {
            Refusal::new(
                404,
                "model_not_found",
                format!("model {model:?} is not served here: paid models are named model-<on-chain id>; GET /v1/models lists them"),
            )
        })?;
        let entry = p.catalog.get(model_id).ok_or_else(|| {
            Refusal::new(
                404,
                "model_not_found",
                format!("{model} is not an active model this operator serves on chain; GET /v1/models lists them"),
            )
        })?;
        let adapter = entry.serving.clone().map_err(|why| {
            Refusal::new(
                404,
                "model_not_found",
                format!("{model} cannot be served by this node: {why}"),
            )
        })?;
        if entry.facts.datanets.is_empty() {
            return Err(Refusal::new(
                404,
                "model_not_found",
                format!("{model} has no lineage datanet to credit"),
            ));
        }
        let price = entry.facts.price_per_1k;
        let worst_case_fee = meter::worst_case_fee(prompt_tokens, max_tokens, price)
            .map_err(|e| Refusal::new(400, "invalid_request", e.to_string()))?;
        let v = &signed.voucher;
        let unreachable = |e: Error| {
            Refusal::new(
                503,
                "chain_unavailable",
                format!("cannot check the voucher on chain ({e}); try again"),
            )
        };
        let signer = match recover_signer(p.chain.domain(), &signed) {
            Ok(recovered) if recovered == v.user => Signer::Eoa,
            _ if p
                .chain
                .erc1271_accepts(
                    v.user,
                    voucher_digest(p.chain.domain(), v),
                    signed.signature.clone(),
                )
                .await =>
            {
                Signer::Wallet
            }
            _ => Signer::Eoa,
        };
        let request = voucher::Request {
            model_id,
            worst_case_fee,
            now: now_secs(),
        };
        // The chain facts and the ledger must describe one moment: a batch settled between
        // reading the facts and reserving would be counted in neither, so read them again.
        let reservation = loop {
            let settlements = p.ledger.settlements();
            let facts = p.chain.facts(v.user, model_id).await.map_err(unreachable)?;
            let reserved = p
                .ledger
                .reserve(v.user, model_id, worst_case_fee, settlements, |unsettled| {
                    voucher::authorize_signed_by(
                        &p.node, &signed, &request, &facts, unsettled, signer,
                    )
                })
                .map_err(|e| Refusal::new(402, "payment_required", payment_advice(&e)))?;
            if let Some((_, reservation)) = reserved {
                break reservation;
            }
        };
        p.metrics.reserved_wei.set(u256_f64(p.ledger.reserved()));
        Ok(Authorized {
            model: entry,
            adapter,
            user: v.user,
            api_key: api_key.to_string(),
            price,
            reservation,
        })
    }

    /// Meters, attributes and journals a finished (or cut-off) generation; returns the
    /// journaled record once it is durable. `body` is the request body as received (the
    /// receipt's `promptHash` is its keccak256), `completion_tokens` the tokens charged (the
    /// response's `usage`), `output` the text returned and `output_tokens` the generated
    /// token ids (what attribution reads).
    pub async fn record(
        &self,
        auth: Authorized,
        body: &[u8],
        prompt_tokens: u64,
        completion_tokens: u64,
        output: &str,
        output_tokens: &[u32],
    ) -> Result<Served> {
        let p = &self.inner;
        let recording = Instant::now();
        let fee = meter::request_fee(prompt_tokens, completion_tokens, auth.price)?;
        let started = Instant::now();
        let model_id = auth.model.facts.id;
        let attributed =
            p.attributor
                .attribute(model_id, &auth.model.facts.datanets, output_tokens);
        p.metrics
            .attribution_seconds
            .record(started.elapsed().as_secs_f64());
        let n = p.requests.fetch_add(1, Ordering::Relaxed);
        let request_id = keccak256(
            [
                p.chain.operator().as_slice(),
                &p.boot.to_be_bytes(),
                &n.to_be_bytes(),
            ]
            .concat(),
        );
        let receipt = Receipt {
            requestId: request_id,
            user: auth.user,
            operator: p.chain.operator(),
            modelId: model_id,
            modelVersion: auth.model.facts.version,
            tokensIn: prompt_tokens,
            tokensOut: completion_tokens,
            fee,
            promptHash: keccak256(body),
            outputHash: keccak256(output.as_bytes()),
            datanetId: attributed.datanet_id,
            attribution: attributed.weights,
            timestamp: now_secs(),
        };
        receipt.validate(auth.price)?;
        let served = Served {
            receipt,
            api_key: auth.api_key.clone(),
            spans: attributed.spans,
        };
        crash::point("before_journal");
        p.journal(Record::Served(Box::new(served.clone()))).await?;
        crash::point("after_journal");
        drop(auth.reservation);
        p.metrics.reserved_wei.set(u256_f64(p.ledger.reserved()));
        p.metrics.receipts.increment(1);
        p.metrics
            .record_seconds
            .record(recording.elapsed().as_secs_f64());
        p.metrics
            .fees_gwei
            .increment((fee / U256::from(1_000_000_000u64)).saturating_to());
        Ok(served)
    }

    /// The models this node lists (`/v1/models`).
    pub fn models(&self) -> Vec<CatalogEntry> {
        self.inner.catalog.entries()
    }

    /// The ledger (for views and tests).
    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// The attributor (for views and tests).
    pub fn attributor(&self) -> &Attributor {
        &self.inner.attributor
    }

    /// The operator account.
    pub fn operator(&self) -> Address {
        self.inner.chain.operator()
    }

    /// Runs one batcher step now, cutting a batch from whatever is queued.
    pub async fn flush(&self) -> Result<bool> {
        batcher::step(&self.inner, true).await
    }

    /// `GET /v1/receipts/{id}`: the receipt, its spans, its batch and, once batched, its
    /// Merkle proof against the batch's root.
    pub fn receipt_view(&self, id: B256) -> Option<Value> {
        let p = &self.inner;
        let entry = p.ledger.receipt(id)?;
        let mut v = json!({
            "receipt": receipt_json(&entry.served.receipt),
            "spans": entry.served.spans,
            "batch": Value::Null,
        });
        if let Some(sequence) = entry.batch
            && let Some(receipts) = p.ledger.batch_receipts(sequence)
            && let Ok(tree) = MerkleTree::of_receipts(&receipts)
        {
            let index = receipts.iter().position(|r| r.requestId == id)?;
            let state = p.ledger.batch(sequence)?;
            v["batch"] = json!({
                "sequence": sequence,
                "status": status(&state),
                "root": tree.root(),
                "leaf": tree.leaf(index).ok(),
                "proof": tree.proof(index).ok(),
            });
        }
        Some(v)
    }

    /// `GET /v1/batches/{seq}`: the batch as signed and settled, its transaction, and its
    /// receipts tree in `@openzeppelin/merkle-tree`'s `standard-v1` dump format.
    pub fn batch_view(&self, sequence: u64) -> Option<Value> {
        let p = &self.inner;
        let state = p.ledger.batch(sequence)?;
        let plan = p.ledger.plan(&state.signed, p.chain.operator()).ok()?;
        let tree = &plan.tree;
        let values: Vec<Value> = plan
            .receipts
            .iter()
            .enumerate()
            .map(|(i, r)| json!({ "value": [receipt_tuple(r)], "treeIndex": tree.position(i).unwrap_or_default() }))
            .collect();
        Some(json!({
            "sequence": sequence,
            "status": status(&state),
            "batch": {
                "operator": plan.batch.operator,
                "sequence": plan.batch.sequence,
                "deadline": plan.batch.deadline,
                "policyEpoch": plan.batch.policyEpoch,
                "receiptsRoot": plan.batch.receiptsRoot,
                "debits": plan.batch.debits.iter().map(|d| json!({"user": d.user, "modelId": d.modelId.to_string(), "amount": d.amount.to_string()})).collect::<Vec<_>>(),
                "credits": plan.batch.credits.iter().map(|c| json!({"modelId": c.modelId.to_string(), "datanetId": c.datanetId.to_string(), "contributionId": c.contributionId.to_string(), "weight": c.weight.to_string()})).collect::<Vec<_>>(),
            },
            "signature": state.signed.signature,
            "tx": state.settled.as_ref().map(|s| s.tx).or(state.tx),
            "settled": state.settled.as_ref().map(|s| json!({
                "tx": s.tx, "block": s.block,
                "collected": s.collected.to_string(), "debitsCollected": s.debits_collected,
                "skipped": s.skipped.iter().map(|k| json!({"user": k.user, "modelId": k.model_id.to_string(), "amount": k.amount.to_string(), "reason": k.reason})).collect::<Vec<_>>(),
            })),
            "receipts": plan.receipts.iter().map(receipt_json).collect::<Vec<_>>(),
            // The attribution evidence of each receipt, at the same index.
            "spans": plan.receipts.iter().map(|r| p.ledger.receipt(r.requestId).map(|e| e.served.spans).unwrap_or_default()).collect::<Vec<_>>(),
            "tree": {
                "format": "standard-v1",
                "leafEncoding": [RECEIPT_TUPLE],
                "tree": tree.nodes(),
                "values": values,
            },
        }))
    }
}

/// The Receipt struct as one bare tuple type: the `leafEncoding` of its Merkle tree.
pub const RECEIPT_TUPLE: &str = "(bytes32,address,address,uint256,uint32,uint64,uint64,uint256,bytes32,bytes32,uint256,(uint256,uint256,uint32)[],uint64)";

fn status(b: &ledger::BatchState) -> &'static str {
    match (&b.settled, &b.tx) {
        (Some(_), _) => "settled",
        (None, Some(_)) => "sent",
        (None, None) => "signed",
    }
}

/// A receipt as JSON with named fields (uint256 as decimal strings).
pub fn receipt_json(r: &Receipt) -> Value {
    json!({
        "requestId": r.requestId, "user": r.user, "operator": r.operator,
        "modelId": r.modelId.to_string(), "modelVersion": r.modelVersion,
        "tokensIn": r.tokensIn, "tokensOut": r.tokensOut, "fee": r.fee.to_string(),
        "promptHash": r.promptHash, "outputHash": r.outputHash,
        "datanetId": r.datanetId.to_string(),
        "attribution": r.attribution.iter().map(|w| json!({"datanetId": w.datanetId.to_string(), "contributionId": w.contributionId.to_string(), "ppm": w.ppm})).collect::<Vec<_>>(),
        "timestamp": r.timestamp,
    })
}

/// A receipt as the positional tuple of [`RECEIPT_TUPLE`] (the npm library's value form).
fn receipt_tuple(r: &Receipt) -> Value {
    json!([
        r.requestId,
        r.user,
        r.operator,
        r.modelId.to_string(),
        r.modelVersion.to_string(),
        r.tokensIn.to_string(),
        r.tokensOut.to_string(),
        r.fee.to_string(),
        r.promptHash,
        r.outputHash,
        r.datanetId.to_string(),
        r.attribution
            .iter()
            .map(|w| json!([
                w.datanetId.to_string(),
                w.contributionId.to_string(),
                w.ppm.to_string()
            ]))
            .collect::<Vec<_>>(),
        r.timestamp.to_string(),
    ])
}

/// A refusal's message: the billing error and what the user can do about it.
fn payment_advice(e: &openledger_billing::Error) -> String {
    use openledger_billing::Error as E;
    let advice = match e {
        E::OverCap(_) => "sign a voucher with a higher cumulativeCap",
        E::InsufficientFunds(_) => {
            "deposit more for this operator (Settlement.deposit(operator, amount)) or cancel your withdrawal request"
        }
        E::VoucherExpired { .. } => "sign a new voucher with a later expiry",
        E::VoucherCancelled { .. } => "sign a new voucher with a nonce at or above your revocation",
        E::WrongOperator { .. } | E::WrongModel { .. } => {
            "sign a voucher for this operator and this model"
        }
        E::WrongSigner { .. } | E::MalformedSignature { .. } => {
            "sign the voucher with the user's key under this chain's settlement contract domain"
        }
        _ => "check the voucher",
    };
    format!("{e}; {advice}")
}

fn u256_f64(v: U256) -> f64 {
    v.to_string().parse().unwrap_or(f64::MAX)
}
