//! Receipts of settled batches, fetched from the operator's receipts API and verified against
//! the chain before they are stored.
//!
//! For each batch the index holds as `pending`, `GET {operator url}/v1/batches/{sequence}` gives
//! its receipts (and each receipt's attribution spans). Two checks, both against what the chain
//! recorded, never against what the operator says about itself:
//!
//! 1. **Root**: the receipts' Merkle tree has the `receiptsRoot` of the `BatchSettled` event.
//! 2. **Credit rule**: the batch's debits (its `Charged` and `DebitSkipped` events, per user and
//!    model) are the receipts' fees summed, and its data credits (`RewardCredited` of kinds
//!    contribution and datanet) are what the published rule ([`openledger_billing::credit`])
//!    pays from the receipts' weights for the amount each model actually collected, under the
//!    batch's split-policy epoch.
//!
//! A batch passing both is `verified` and its receipts and attributions are stored; a batch
//! failing either is `flagged` with the reason, and none of its receipts are stored. The
//! operator being unreachable (or not knowing the batch yet) leaves it `pending`, retried on
//! the next pass. Operator URLs come from configuration (the chain has no registry of them):
//! one per operator address, and a default for the rest.

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, U256};
use openledger_billing::{
    credit::credits_by_model,
    merkle::MerkleTree,
    receipt::{AttributionWeight, Receipt},
};
use openledger_primitives::split::SplitPolicy;
use serde_json::Value as Json;
use tracing::{info, warn};

use crate::{
    catalog,
    db::{Bind, Sql},
    error::Result,
    follow::lock,
    store::Store,
    value::{Row, Value},
};

/// Where each operator's receipts API is.
#[derive(Debug, Clone, Default)]
pub struct ReceiptSources {
    /// Per operator address.
    pub operators: BTreeMap<Address, String>,
    /// For operators not listed (the devnet's one oracle).
    pub default: Option<String>,
}

impl ReceiptSources {
    fn url(&self, operator: Address) -> Option<&str> {
        self.operators
            .get(&operator)
            .or(self.default.as_ref())
            .map(|s| s.trim_end_matches('/'))
    }
}

/// A batch waiting for its receipts.
#[derive(Debug, Clone)]
struct Pending {
    row: Row,
    operator: Address,
    sequence: u64,
}

/// The outcome of checking one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Both checks passed.
    Verified,
    /// A check failed: why.
    Flagged(String),
}

/// Checks the pending batches once; returns how many were decided.
pub async fn verify_pending(
    store: &std::sync::Mutex<Store>,
    sources: &ReceiptSources,
    client: &reqwest::Client,
) -> Result<usize> {
    let pending = {
        let mut st = lock(store);
        let mut sql = st.db().sql();
        pending_batches(&mut sql)?
    };
    let mut decided = 0;
    for p in pending {
        let Some(base) = sources.url(p.operator) else {
            continue;
        };
        let url = format!("{base}/v1/batches/{}", p.sequence);
        let body: Json = match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => match r.json().await {
                Ok(j) => j,
                Err(e) => {
                    warn!(target: "indexer::receipts", %url, error = %e, "unreadable batch; retrying later");
                    continue;
                }
            },
            Ok(r) => {
                warn!(target: "indexer::receipts", %url, status = r.status().as_u16(), "operator does not serve the batch (yet); retrying later");
                continue;
            }
            Err(e) => {
                warn!(target: "indexer::receipts", %url, error = %e, "operator unreachable; retrying later");
                continue;
            }
        };
        let mut st = lock(store);
        st.db().transaction(|sql| {
            // The batch may have been reorganised away while we fetched.
            if !still_pending(sql, p.row.id())? {
                return Ok(());
            }
            let (verdict, receipts) = match parse(&body) {
                Ok((receipts, spans)) => match check(sql, &p, &receipts)? {
                    Verdict::Verified => (Verdict::Verified, Some((receipts, spans))),
                    flagged => (flagged, None),
                },
                Err(reason) => (Verdict::Flagged(reason), None),
            };
            let mut row = p.row.clone();
            match &verdict {
                Verdict::Verified => {
                    let (receipts, spans) = receipts.expect("verified");
                    row.set("verification", "verified")
                        .set("receipts", receipts.len() as i64);
                    store_receipts(sql, &p.row, &receipts, &spans)?;
                    info!(target: "indexer::receipts", batch = p.row.id(), receipts = receipts.len(), "verified");
                }
                Verdict::Flagged(reason) => {
                    row.set("verification", "flagged")
                        .set("flag_reason", reason.clone());
                    metrics::counter!("openledger_indexer_flagged_batches_total").increment(1);
                    warn!(target: "indexer::receipts", batch = p.row.id(), reason, "flagged");
                }
            }
            sql.write(&[row], true)?;
            Ok(())
        })?;
        decided += 1;
    }
    Ok(decided)
}

fn pending_batches(sql: &mut Sql<'_>) -> Result<Vec<Pending>> {
    let table = catalog::table("batches").expect("batches");
    let q = format!(
        "SELECT {} AS j FROM batches t WHERE t.verification = 'pending' ORDER BY t.block_number, t.log_index LIMIT 64",
        sql.dialect().json_row(table, "t")
    );
    sql.query_json(&q, vec![])?
        .iter()
        .map(|j| {
            let row = Row::from_json(table, j)?;
            let operator = text(&row, "operator").parse().unwrap_or_default();
            let sequence = row.get("sequence").int() as u64;
            Ok(Pending {
                row,
                operator,
                sequence,
            })
        })
        .collect()
}

fn still_pending(sql: &mut Sql<'_>, id: &str) -> Result<bool> {
    let q = format!(
        "SELECT COUNT(*) AS n FROM batches WHERE id = {} AND verification = 'pending'",
        sql.dialect().placeholder(1)
    );
    Ok(sql.query_count(&q, vec![Bind::Text(Some(id.to_owned()))])? > 0)
}

fn text(row: &Row, col: &str) -> String {
    match row.get(col) {
        Value::Text(s) => s.clone(),
        _ => String::new(),
    }
}

/// The receipts and their spans out of a batch document, or why it is malformed.
fn parse(body: &Json) -> std::result::Result<(Vec<Receipt>, Vec<Json>), String> {
    let receipts = body["receipts"]
        .as_array()
        .ok_or("the batch document has no receipts array")?;
    let parsed = receipts
        .iter()
        .map(receipt_from_json)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let spans = (0..parsed.len())
        .map(|i| body["spans"].get(i).cloned().unwrap_or(Json::Array(vec![])))
        .collect();
    Ok((parsed, spans))
}

/// A receipt from the receipts API's JSON form (uint256 as decimal strings).
pub fn receipt_from_json(j: &Json) -> std::result::Result<Receipt, String> {
    let s = |k: &str| {
        j[k].as_str()
            .ok_or_else(|| format!("receipt field {k} missing"))
    };
    let u = |k: &str| -> std::result::Result<U256, String> {
        U256::from_str_radix(s(k)?, 10).map_err(|_| format!("receipt field {k} is not a uint256"))
    };
    let n = |k: &str| {
        j[k].as_u64()
            .ok_or_else(|| format!("receipt field {k} missing"))
    };
    let b = |k: &str| -> std::result::Result<B256, String> {
        s(k)?
            .parse()
            .map_err(|_| format!("receipt field {k} is not a bytes32"))
    };
    let a = |k: &str| -> std::result::Result<Address, String> {
        s(k)?
            .parse()
            .map_err(|_| format!("receipt field {k} is not an address"))
    };
    let attribution = j["attribution"]
        .as_array()
        .ok_or("receipt field attribution missing")?
        .iter()
        .map(|w| {
            let dec = |k: &str| {
                w[k].as_str()
                    .and_then(|v| U256::from_str_radix(v, 10).ok())
                    .ok_or_else(|| format!("attribution field {k} is not a uint256"))
            };
            Ok(AttributionWeight {
                datanetId: dec("datanetId")?,
                contributionId: dec("contributionId")?,
                ppm: w["ppm"]
                    .as_u64()
                    .and_then(|p| u32::try_from(p).ok())
                    .ok_or("attribution ppm missing")?,
            })
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(Receipt {
        requestId: b("requestId")?,
        user: a("user")?,
        operator: a("operator")?,
        modelId: u("modelId")?,
        modelVersion: u32::try_from(n("modelVersion")?).map_err(|_| "modelVersion too large")?,
        tokensIn: n("tokensIn")?,
        tokensOut: n("tokensOut")?,
        fee: u("fee")?,
        promptHash: b("promptHash")?,
        outputHash: b("outputHash")?,
        datanetId: u("datanetId")?,
        attribution,
        timestamp: n("timestamp")?,
    })
}

/// Loads rows of `table` where `column` equals `value`.
fn rows_where(sql: &mut Sql<'_>, table: &str, column: &str, value: &str) -> Result<Vec<Row>> {
    let t = catalog::table(table).expect("catalog table");
    let q = format!(
        "SELECT {} AS j FROM {} t WHERE t.{column} = {} ORDER BY t.block_number, t.log_index",
        sql.dialect().json_row(t, "t"),
        t.name,
        sql.dialect().placeholder(1)
    );
    sql.query_json(&q, vec![Bind::Text(Some(value.to_owned()))])?
        .iter()
        .map(|j| Row::from_json(t, j))
        .collect()
}

/// Both checks of one batch against its events in the index.
fn check(sql: &mut Sql<'_>, p: &Pending, receipts: &[Receipt]) -> Result<Verdict> {
    let flag = |s: String| Ok(Verdict::Flagged(s));
    // 1. Root.
    if receipts.is_empty() {
        return flag("the operator lists no receipts".into());
    }
    if let Some(r) = receipts.iter().find(|r| r.operator != p.operator) {
        return flag(format!("receipt {} names another operator", r.requestId));
    }
    let root = match MerkleTree::of_receipts(receipts) {
        Ok(tree) => format!("{:#x}", tree.root()),
        Err(e) => return flag(format!("receipts do not form a tree: {e}")),
    };
    if Value::Text(root.clone()) != *p.row.get("receipts_root") {
        return flag(format!(
            "receipts hash to {root}, the chain settled {}",
            text(&p.row, "receipts_root")
        ));
    }
    // 2. Debits: per (user, model), the receipts' fees.
    let mut expected: BTreeMap<(String, String), U256> = BTreeMap::new();
    for r in receipts {
        *expected
            .entry((format!("{:#x}", r.user), r.modelId.to_string()))
            .or_default() += r.fee;
    }
    let charges = rows_where(sql, "charges", "batch", p.row.id())?;
    let mut debited: BTreeMap<(String, String), U256> = BTreeMap::new();
    let mut collected: BTreeMap<String, U256> = BTreeMap::new();
    for c in &charges {
        let key = (text(c, "payer"), text(c, "model"));
        *debited.entry(key.clone()).or_default() += c.get("amount").amount();
        if c.get("collected") == &Value::Bool(true) {
            *collected.entry(key.1).or_default() += c.get("amount").amount();
        }
    }
    if debited != expected {
        return flag("the batch's debits are not the receipts' fees".into());
    }
    // 2'. Data credits: the rule's payments for what each model collected.
    let epoch = p.row.get("policy_epoch").int();
    let Some(policy) = split_policy(sql, epoch)? else {
        return flag(format!("split-policy epoch {epoch} is not indexed"));
    };
    let models = match credits_by_model(receipts, &policy) {
        Ok(m) => m,
        Err(e) => return flag(format!("receipts break the credit rule: {e}")),
    };
    let mut expected_credits: BTreeMap<(String, String, String), U256> = BTreeMap::new();
    for m in &models {
        let got = collected
            .get(&m.model_id.to_string())
            .copied()
            .unwrap_or_default();
        let (amounts, _dust) = m.amounts(got, &policy);
        for ((datanet, contribution), amount) in amounts {
            if !amount.is_zero() {
                expected_credits.insert(
                    (
                        m.model_id.to_string(),
                        datanet.to_string(),
                        contribution.to_string(),
                    ),
                    amount,
                );
            }
        }
    }
    let rewards = rows_where(sql, "rewards", "batch", p.row.id())?;
    let mut credited: BTreeMap<(String, String, String), U256> = BTreeMap::new();
    for r in &rewards {
        let kind = text(r, "kind");
        let model = text(r, "model");
        let key = match kind.as_str() {
            "contribution" => (model, text(r, "datanet"), text(r, "contribution")),
            "datanet" => (model, text(r, "datanet"), "0".to_owned()),
            _ => continue,
        };
        *credited.entry(key).or_default() += r.get("amount").amount();
    }
    if credited != expected_credits {
        return flag(
            "the batch's data credits do not follow the credit rule for its receipts".into(),
        );
    }
    Ok(Verdict::Verified)
}

fn split_policy(sql: &mut Sql<'_>, epoch: i64) -> Result<Option<SplitPolicy>> {
    let rows = rows_where(sql, "split_policies", "id", &epoch.to_string())?;
    Ok(rows.first().map(|r| SplitPolicy {
        protocol_bps: r.get("protocol_bps").int() as u16,
        operator_bps: r.get("operator_bps").int() as u16,
        developer_bps: r.get("developer_bps").int() as u16,
        data_bps: r.get("data_bps").int() as u16,
    }))
}

fn store_receipts(
    sql: &mut Sql<'_>,
    batch: &Row,
    receipts: &[Receipt],
    spans: &[Json],
) -> Result<()> {
    let receipts_table = catalog::table("receipts").expect("receipts");
    let attributions_table = catalog::table("attributions").expect("attributions");
    let at = |row: &mut Row| {
        for c in ["block_number", "log_index", "timestamp", "tx_hash"] {
            row.set(c, batch.get(c).clone());
        }
    };
    let mut rows = Vec::new();
    let mut weights = Vec::new();
    for (r, spans) in receipts.iter().zip(spans) {
        let id = format!("{:#x}", r.requestId);
        let mut row = Row::new(receipts_table, id.clone());
        at(&mut row);
        row.set("batch", batch.id())
            .set("operator", format!("{:#x}", r.operator))
            .set("payer", format!("{:#x}", r.user))
            .set("model", r.modelId.to_string())
            .set("model_version", r.modelVersion)
            .set("tokens_in", r.tokensIn)
            .set("tokens_out", r.tokensOut)
            .set("fee", r.fee)
            .set("prompt_hash", format!("{:#x}", r.promptHash))
            .set("output_hash", format!("{:#x}", r.outputHash))
            .set("datanet", r.datanetId.to_string())
            .set("receipt_timestamp", r.timestamp);
        rows.push(row);
        for (i, w) in r.attribution.iter().enumerate() {
            let contribution = w.contributionId.to_string();
            let own: Vec<Json> = spans
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|s| {
                            s["sources"].as_array().is_some_and(|src| {
                                src.iter().any(|c| {
                                    c["contribution_id"]
                                        .as_str()
                                        .and_then(|v| v.parse::<U256>().ok())
                                        == Some(w.contributionId)
                                })
                            })
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let mut a = Row::new(attributions_table, format!("{id}-{i}"));
            at(&mut a);
            a.set("receipt", id.clone())
                .set("model", r.modelId.to_string())
                .set("datanet", w.datanetId.to_string())
                .set("contribution", contribution)
                .set("ppm", w.ppm)
                .set(
                    "fee_share",
                    r.fee * U256::from(w.ppm) / U256::from(1_000_000u32),
                )
                .set("spans", Json::Array(own).to_string());
            weights.push(a);
        }
    }
    sql.write(&rows, false)?;
    sql.write(&weights, false)?;
    Ok(())
}
