//! One log into the index: decoded with the suite's bindings, stored as its event row and its
//! normalised row, and folded into the current-state and derived tables.
//!
//! Every change is a function of the events alone (never of the time the indexer runs), so a
//! clean re-index and an index that lived through reorgs hold the same rows.

use alloy::{
    primitives::{Address, B256, U256},
    rpc::types::Log,
    sol_types::SolEventInterface,
};
use openledger_primitives::{
    bindings::{
        DatanetRegistry::DatanetRegistryEvents as D, ModelRegistry::ModelRegistryEvents as M,
        OpenToken::OpenTokenEvents as T, OperatorRegistry::OperatorRegistryEvents as O,
        Settlement::SettlementEvents as S,
    },
    deployment::{Contracts, Deployment},
};

use crate::{
    catalog::{self, Table},
    error::{Error, Result},
    store::{Changes, Store},
    value::{Row, Value},
};

/// The periods of the time-bucketed series, with their length in seconds. Weeks are unix
/// weeks (they start on a Thursday, 00:00 UTC).
pub const PERIODS: &[(&str, u64)] = &[("hour", 3_600), ("day", 86_400), ("week", 604_800)];

/// The series the buckets hold, and what their key is.
pub mod series {
    /// Charged amounts per model id.
    pub const MODEL_REVENUE: &str = "model_revenue";
    /// Charged amounts per operator address.
    pub const OPERATOR_COLLECTED: &str = "operator_collected";
    /// Charged amounts of the whole system (key `all`).
    pub const PROTOCOL_VOLUME: &str = "volume";
    /// Rewards credited per account.
    pub const ACCOUNT_EARNINGS: &str = "account_earnings";
    /// Data rewards per datanet id (its own and its contributions').
    pub const DATANET_EARNINGS: &str = "datanet_earnings";
    /// Data rewards per contribution id.
    pub const CONTRIBUTION_EARNINGS: &str = "contribution_earnings";
}

/// The reward kinds of `ISettlement.RewardKind`, by their index.
pub const REWARD_KINDS: &[&str] = &[
    "protocol",
    "operator",
    "developer",
    "contribution",
    "datanet",
];

/// The skip reasons of `ISettlement.SkipReason`, by their index.
pub const SKIP_REASONS: &[&str] = &[
    "voucher_mismatch",
    "expired",
    "revoked",
    "cap_exceeded",
    "insufficient_escrow",
    "invalid_signature",
    "model_inactive",
    "model_not_served",
];

/// Where a log sits.
struct At {
    block: u64,
    log_index: u64,
    timestamp: u64,
    tx: String,
}

/// Applies logs of the suite's contracts.
pub struct Applier {
    contracts: Contracts,
    chain_id: u64,
    treasury: Address,
}

fn t(name: &str) -> &'static Table {
    catalog::table(name).expect("catalog table")
}

fn hex_addr(a: Address) -> String {
    format!("{a:#x}")
}

fn hex_b256(b: B256) -> String {
    format!("{b:#x}")
}

fn small(v: U256, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::TooLarge {
        what: format!("{what} {v}"),
    })
}

impl Applier {
    /// For the suite of `deployment`.
    pub fn new(deployment: &Deployment) -> Self {
        Self {
            contracts: deployment.contracts,
            chain_id: deployment.chain_id,
            treasury: deployment.treasury,
        }
    }

    /// The addresses whose logs the index follows.
    pub fn addresses(&self) -> Vec<Address> {
        let c = &self.contracts;
        vec![c.token, c.datanets, c.models, c.operators, c.settlement]
    }

    /// Applies `log` (of block `timestamp`) to `changes`.
    pub fn apply(
        &self,
        store: &mut Store,
        changes: &mut Changes,
        log: &Log,
        timestamp: u64,
    ) -> Result<()> {
        let at = At {
            block: log.block_number.unwrap_or_default(),
            log_index: log.log_index.unwrap_or_default(),
            timestamp,
            tx: log.transaction_hash.map(hex_b256).unwrap_or_default(),
        };
        let address = log.address();
        let c = &self.contracts;
        let decode_error = |contract: &'static str, e: alloy::sol_types::Error| Error::Decode {
            contract,
            block: at.block,
            log_index: at.log_index,
            message: e.to_string(),
        };
        let mut cx = Cx {
            store,
            changes,
            at: &at,
            treasury: self.treasury,
        };
        let (contract, name) = if address == c.token {
            let e = T::decode_log(&log.inner).map_err(|e| decode_error("OpenToken", e))?;
            ("OpenToken", cx.token(e.data)?)
        } else if address == c.datanets {
            let e = D::decode_log(&log.inner).map_err(|e| decode_error("DatanetRegistry", e))?;
            ("DatanetRegistry", cx.datanets(e.data)?)
        } else if address == c.models {
            let e = M::decode_log(&log.inner).map_err(|e| decode_error("ModelRegistry", e))?;
            ("ModelRegistry", cx.models(e.data)?)
        } else if address == c.operators {
            let e = O::decode_log(&log.inner).map_err(|e| decode_error("OperatorRegistry", e))?;
            ("OperatorRegistry", cx.operators(e.data)?)
        } else if address == c.settlement {
            let e = S::decode_log(&log.inner).map_err(|e| decode_error("Settlement", e))?;
            ("Settlement", cx.settlement(e.data)?)
        } else {
            return Ok(());
        };
        let topics = log
            .topics()
            .iter()
            .map(|t| hex_b256(*t))
            .collect::<Vec<_>>()
            .join(",");
        let mut row = cx.event_row("events");
        row.set("chain_id", self.chain_id)
            .set(
                "block_hash",
                log.block_hash.map(hex_b256).unwrap_or_default(),
            )
            .set("contract", contract)
            .set("name", name)
            .set("topics", topics)
            .set("data", log.data().data.to_string());
        cx.changes.insert_event(row);
        Ok(())
    }
}

/// One log's context: where it is and what it changes.
struct Cx<'a> {
    store: &'a mut Store,
    changes: &'a mut Changes,
    at: &'a At,
    treasury: Address,
}

impl Cx<'_> {
    /// A row of an append-only table for this log, id `block-logIndex`.
    fn event_row(&self, table: &str) -> Row {
        let mut row = Row::new(t(table), format!("{}-{}", self.at.block, self.at.log_index));
        row.set("block_number", self.at.block)
            .set("log_index", self.at.log_index)
            .set("timestamp", self.at.timestamp)
            .set("tx_hash", self.at.tx.clone());
        row
    }

    fn entity(&mut self, table: &str, id: &str) -> Result<&mut Row> {
        self.changes.entity(self.store, t(table), id)
    }

    fn insert(&mut self, row: Row) {
        self.changes.insert(row);
    }

    fn parameter(&mut self, name: &str, value: String, effective_at: u64) -> Result<()> {
        let block = self.at.block;
        self.entity("parameters", name)?
            .set("value", value)
            .set("effective_at", effective_at)
            .set("updated_block", block);
        Ok(())
    }

    /// Adds `amount` to the `series` of `key` in each period's bucket of this block's time.
    fn bucket(&mut self, series: &str, key: &str, amount: U256) -> Result<()> {
        let ts = self.at.timestamp;
        for (period, secs) in PERIODS {
            let start = ts - ts % secs;
            let id = format!("{series}|{key}|{period}|{start}");
            let row = self.entity("buckets", &id)?;
            row.set("series", series)
                .set("key", key)
                .set("period", *period)
                .set("start", start);
            row.add_amount("amount", amount)?.add_int("count", 1);
        }
        Ok(())
    }

    fn token(&mut self, e: T) -> Result<&'static str> {
        Ok(match e {
            T::Transfer(e) => {
                let mut row = self.event_row("transfers");
                row.set("from_address", hex_addr(e.from))
                    .set("to_address", hex_addr(e.to))
                    .set("value", e.value);
                self.insert(row);
                if e.from != Address::ZERO {
                    self.entity("accounts", &hex_addr(e.from))?
                        .sub_amount("token_balance", e.value)?;
                }
                if e.to != Address::ZERO {
                    self.entity("accounts", &hex_addr(e.to))?
                        .add_amount("token_balance", e.value)?;
                }
                "Transfer"
            }
            T::Approval(_) => "Approval",
            T::EIP712DomainChanged(_) => "EIP712DomainChanged",
        })
    }

    fn contribution_change(
        &mut self,
        contribution: U256,
        datanet: U256,
        status: &str,
        actor: Address,
        amount: U256,
    ) -> Result<()> {
        let block = self.at.block;
        let mut row = self.event_row("contribution_changes");
        row.set("contribution", contribution.to_string())
            .set("datanet", datanet.to_string())
            .set("status", status)
            .set("actor", hex_addr(actor))
            .set("amount", amount);
        self.insert(row);
        let c = self.entity("contributions", &contribution.to_string())?;
        c.set("status", status).set("status_block", block);
        Ok(())
    }

    fn datanets(&mut self, e: D) -> Result<&'static str> {
        let (block, ts) = (self.at.block, self.at.timestamp);
        Ok(match e {
            D::DatanetCreated(e) => {
                let id = small(e.datanetId, "datanet id")?;
                self.entity("datanets", &e.datanetId.to_string())?
                    .set("datanet_id", id)
                    .set("owner", hex_addr(e.owner))
                    .set("min_accepted", e.minAccepted)
                    .set("metadata_uri", e.metadataURI)
                    .set("created_block", block)
                    .set("created_at", ts);
                "DatanetCreated"
            }
            D::DatanetTransferStarted(e) => {
                let pending = (e.pendingOwner != Address::ZERO).then(|| hex_addr(e.pendingOwner));
                self.entity("datanets", &e.datanetId.to_string())?
                    .set("pending_owner", pending);
                "DatanetTransferStarted"
            }
            D::DatanetTransferred(e) => {
                self.entity("datanets", &e.datanetId.to_string())?
                    .set("owner", hex_addr(e.owner))
                    .set("pending_owner", Value::Null);
                "DatanetTransferred"
            }
            D::ContributionCommitted(_) => "ContributionCommitted",
            D::CuratorSet(e) => {
                let id = format!("{}-{}", e.datanetId, hex_addr(e.curator));
                self.entity("curators", &id)?
                    .set("datanet", e.datanetId.to_string())
                    .set("curator", hex_addr(e.curator))
                    .set("enabled", e.enabled)
                    .set("updated_block", block);
                "CuratorSet"
            }
            D::ContributionAdded(e) => {
                let id = small(e.contributionId, "contribution id")?;
                self.entity("contributions", &e.contributionId.to_string())?
                    .set("contribution_id", id)
                    .set("datanet", e.datanetId.to_string())
                    .set("contributor", hex_addr(e.contributor))
                    .set("content_hash", hex_b256(e.contentHash))
                    .set("tokens", e.tokens)
                    .set("stake", e.stake)
                    .set("uri", e.uri)
                    .set("added_block", block)
                    .set("added_at", ts);
                self.contribution_change(
                    e.contributionId,
                    e.datanetId,
                    "pending",
                    e.contributor,
                    e.stake,
                )?;
                self.entity("datanets", &e.datanetId.to_string())?
                    .add_int("contributions", 1);
                "ContributionAdded"
            }
            D::ContributionAccepted(e) => {
                self.contribution_change(
                    e.contributionId,
                    e.datanetId,
                    "accepted",
                    e.curator,
                    U256::ZERO,
                )?;
                self.entity("contributions", &e.contributionId.to_string())?
                    .set("curator", hex_addr(e.curator));
                self.entity("datanets", &e.datanetId.to_string())?
                    .add_int("accepted", 1);
                "ContributionAccepted"
            }
            D::ContributionRejected(e) => {
                self.contribution_change(
                    e.contributionId,
                    e.datanetId,
                    "rejected",
                    e.curator,
                    e.slashed,
                )?;
                self.entity("contributions", &e.contributionId.to_string())?
                    .set("curator", hex_addr(e.curator))
                    .set("slashed", e.slashed);
                self.entity("datanets", &e.datanetId.to_string())?
                    .add_int("rejected", 1);
                "ContributionRejected"
            }
            D::ContributionWithdrawn(e) => {
                self.contribution_change(
                    e.contributionId,
                    e.datanetId,
                    "withdrawn",
                    e.contributor,
                    e.stake,
                )?;
                self.entity("datanets", &e.datanetId.to_string())?
                    .add_int("withdrawn", 1);
                "ContributionWithdrawn"
            }
            D::GovernanceTransferStarted(e) => {
                self.parameter("datanets.pendingGovernance", hex_addr(e.pending), ts)?;
                "GovernanceTransferStarted"
            }
            D::GovernanceTransferred(e) => {
                self.parameter("datanets.governance", hex_addr(e.current), ts)?;
                "GovernanceTransferred"
            }
        })
    }

    fn models(&mut self, e: M) -> Result<&'static str> {
        let (block, ts) = (self.at.block, self.at.timestamp);
        Ok(match e {
            M::ModelRegistered(e) => {
                let id = small(e.modelId, "model id")?;
                self.entity("models", &e.modelId.to_string())?
                    .set("model_id", id)
                    .set("developer", hex_addr(e.developer))
                    .set("base_model_hash", hex_b256(e.baseModelHash))
                    .set("price_per_1k_tokens", e.pricePer1kTokens)
                    .set("active", true)
                    .set("created_block", block)
                    .set("created_at", ts);
                "ModelRegistered"
            }
            M::ModelVersionAdded(e) => {
                let version_id = format!("{}-{}", e.modelId, e.version);
                let mut row = self.event_row("model_versions");
                row.values[0] = Value::Text(version_id.clone());
                row.set("model", e.modelId.to_string())
                    .set("version", e.version)
                    .set("parent_version", e.parentVersion)
                    .set("adapter_hash", hex_b256(e.adapterHash))
                    .set("adapter_uri", e.adapterURI);
                self.insert(row);
                for datanet in &e.addedDatanetIds {
                    let mut row = self.event_row("model_datanets");
                    row.values[0] = Value::Text(format!("{version_id}-{datanet}"));
                    row.set("model_version", version_id.clone())
                        .set("model", e.modelId.to_string())
                        .set("datanet", datanet.to_string());
                    self.insert(row);
                }
                self.entity("models", &e.modelId.to_string())?
                    .add_int("versions", 1);
                "ModelVersionAdded"
            }
            M::ModelPriceChanged(e) => {
                self.entity("models", &e.modelId.to_string())?
                    .set("price_per_1k_tokens", e.pricePer1kTokens);
                "ModelPriceChanged"
            }
            M::ModelDeactivated(e) => {
                self.entity("models", &e.modelId.to_string())?
                    .set("active", false);
                "ModelDeactivated"
            }
            M::ModelTransferStarted(e) => {
                let pending =
                    (e.pendingDeveloper != Address::ZERO).then(|| hex_addr(e.pendingDeveloper));
                self.entity("models", &e.modelId.to_string())?
                    .set("pending_developer", pending);
                "ModelTransferStarted"
            }
            M::ModelTransferred(e) => {
                self.entity("models", &e.modelId.to_string())?
                    .set("developer", hex_addr(e.developer))
                    .set("pending_developer", Value::Null);
                "ModelTransferred"
            }
        })
    }

    fn stake_change(
        &mut self,
        operator: Address,
        kind: &str,
        amount: U256,
        stake: U256,
        unstaking: U256,
        reason: String,
    ) {
        let mut row = self.event_row("stake_changes");
        row.set("operator", hex_addr(operator))
            .set("kind", kind)
            .set("amount", amount)
            .set("stake", stake)
            .set("unstaking", unstaking)
            .set("reason", reason);
        self.insert(row);
    }

    fn operators(&mut self, e: O) -> Result<&'static str> {
        let (block, ts) = (self.at.block, self.at.timestamp);
        Ok(match e {
            O::Staked(e) => {
                let op = self.entity("operators", &hex_addr(e.operator))?;
                op.set("stake", e.stake);
                let unstaking = op.get("unstaking").amount();
                self.stake_change(
                    e.operator,
                    "staked",
                    e.amount,
                    e.stake,
                    unstaking,
                    String::new(),
                );
                "Staked"
            }
            O::SignerSet(e) => {
                self.entity("operators", &hex_addr(e.operator))?
                    .set("signer", hex_addr(e.signer));
                "SignerSet"
            }
            O::ServingSet(e) => {
                self.entity("operators", &hex_addr(e.operator))?;
                let id = format!("{}-{}", hex_addr(e.operator), e.modelId);
                self.entity("serving", &id)?
                    .set("operator", hex_addr(e.operator))
                    .set("model", e.modelId.to_string())
                    .set("serving", e.serving)
                    .set("updated_block", block);
                "ServingSet"
            }
            O::UnstakeRequested(e) => {
                let op = self.entity("operators", &hex_addr(e.operator))?;
                op.sub_amount("stake", e.amount)?
                    .set("unstaking", e.unstaking)
                    .set("unstake_ready_at", e.readyAt);
                let stake = op.get("stake").amount();
                self.stake_change(
                    e.operator,
                    "unstake_requested",
                    e.amount,
                    stake,
                    e.unstaking,
                    String::new(),
                );
                "UnstakeRequested"
            }
            O::Unstaked(e) => {
                let op = self.entity("operators", &hex_addr(e.operator))?;
                op.sub_amount("unstaking", e.amount)?
                    .set("unstake_ready_at", 0u64);
                let (stake, unstaking) = (op.get("stake").amount(), op.get("unstaking").amount());
                self.stake_change(
                    e.operator,
                    "unstaked",
                    e.amount,
                    stake,
                    unstaking,
                    String::new(),
                );
                "Unstaked"
            }
            O::Slashed(e) => {
                let op = self.entity("operators", &hex_addr(e.operator))?;
                op.set("stake", e.stake).set("unstaking", e.unstaking);
                op.add_amount("slashed", e.amount)?;
                self.stake_change(
                    e.operator,
                    "slashed",
                    e.amount,
                    e.stake,
                    e.unstaking,
                    e.reason,
                );
                "Slashed"
            }
            O::MinStakeChanged(e) => {
                self.parameter("operators.minStake", e.minStake.to_string(), e.effectiveAt)?;
                "MinStakeChanged"
            }
            O::UnstakeCooldownChanged(e) => {
                self.parameter(
                    "operators.unstakeCooldown",
                    e.cooldown.to_string(),
                    e.effectiveAt,
                )?;
                "UnstakeCooldownChanged"
            }
            O::GovernanceTransferStarted(e) => {
                self.parameter("operators.pendingGovernance", hex_addr(e.pending), ts)?;
                "GovernanceTransferStarted"
            }
            O::GovernanceTransferred(e) => {
                self.parameter("operators.governance", hex_addr(e.current), ts)?;
                "GovernanceTransferred"
            }
        })
    }

    fn escrow_change(
        &mut self,
        user: Address,
        operator: Address,
        kind: &str,
        amount: U256,
        (ready_at, expires_at): (u64, u64),
    ) -> Result<()> {
        let id = format!("{}-{}", hex_addr(user), hex_addr(operator));
        let balance = self.entity("escrows", &id)?.get("balance").amount();
        let mut row = self.event_row("escrow_changes");
        row.set("escrow", id)
            .set("payer", hex_addr(user))
            .set("operator", hex_addr(operator))
            .set("kind", kind)
            .set("amount", amount)
            .set("balance", balance)
            .set("ready_at", ready_at)
            .set("expires_at", expires_at);
        self.insert(row);
        Ok(())
    }

    fn escrow(&mut self, user: Address, operator: Address) -> Result<&mut Row> {
        self.entity("accounts", &hex_addr(user))?;
        self.entity("operators", &hex_addr(operator))?;
        let id = format!("{}-{}", hex_addr(user), hex_addr(operator));
        let row = self.entity("escrows", &id)?;
        row.set("payer", hex_addr(user))
            .set("operator", hex_addr(operator));
        Ok(row)
    }

    fn settlement(&mut self, e: S) -> Result<&'static str> {
        let ts = self.at.timestamp;
        Ok(match e {
            S::Deposited(e) => {
                self.escrow(e.user, e.operator)?
                    .set("balance", e.balance)
                    .add_amount("deposited", e.amount)?;
                self.escrow_change(e.user, e.operator, "deposited", e.amount, (0, 0))?;
                "Deposited"
            }
            S::WithdrawalRequested(e) => {
                self.escrow(e.user, e.operator)?
                    .set("pending_withdrawal", e.amount)
                    .set("withdrawal_ready_at", e.readyAt)
                    .set("withdrawal_expires_at", e.expiresAt);
                self.escrow_change(
                    e.user,
                    e.operator,
                    "withdrawal_requested",
                    e.amount,
                    (e.readyAt, e.expiresAt),
                )?;
                "WithdrawalRequested"
            }
            S::Withdrawn(e) => {
                self.escrow(e.user, e.operator)?
                    .set("balance", e.balance)
                    .add_amount("withdrawn", e.amount)?
                    .set("pending_withdrawal", U256::ZERO)
                    .set("withdrawal_ready_at", 0u64)
                    .set("withdrawal_expires_at", 0u64);
                self.escrow_change(e.user, e.operator, "withdrawn", e.amount, (0, 0))?;
                "Withdrawn"
            }
            S::VouchersRevoked(e) => {
                let mut row = self.event_row("voucher_revocations");
                row.set("payer", hex_addr(e.user))
                    .set("min_nonce", e.minNonce)
                    .set("effective_at", e.effectiveAt);
                self.insert(row);
                self.entity("accounts", &hex_addr(e.user))?
                    .set("min_nonce", e.minNonce)
                    .set("revocation_effective_at", e.effectiveAt);
                "VouchersRevoked"
            }
            S::BatchSettled(e) => {
                let id = format!("{}-{}", hex_addr(e.operator), e.sequence);
                let mut row = self.event_row("batches");
                row.values[0] = Value::Text(id);
                row.set("operator", hex_addr(e.operator))
                    .set("sequence", e.sequence)
                    .set("receipts_root", hex_b256(e.receiptsRoot))
                    .set("policy_epoch", e.policyEpoch)
                    .set("total_charged", e.totalCharged)
                    .set("collected", small(e.collected, "collected count")?)
                    .set("skipped", small(e.skipped, "skipped count")?)
                    .set("verification", "pending");
                self.insert(row);
                self.entity("operators", &hex_addr(e.operator))?
                    .add_int("batches", 1)
                    .set("last_sequence", e.sequence);
                "BatchSettled"
            }
            S::Charged(e) => {
                let (op, user, model) = (
                    hex_addr(e.operator),
                    hex_addr(e.user),
                    e.modelId.to_string(),
                );
                let mut row = self.event_row("charges");
                row.set("batch", format!("{op}-{}", e.sequence))
                    .set("operator", op.clone())
                    .set("payer", user.clone())
                    .set("model", model.clone())
                    .set("sequence", e.sequence)
                    .set("amount", e.amount)
                    .set("spent", e.spent)
                    .set("collected", true);
                self.insert(row);
                self.escrow(e.user, e.operator)?
                    .sub_amount("balance", e.amount)?
                    .add_amount("spent", e.amount)?
                    .add_int("charges", 1);
                self.entity("accounts", &user)?
                    .add_amount("spent", e.amount)?
                    .add_int("charges", 1);
                self.entity("models", &model)?
                    .add_amount("revenue", e.amount)?
                    .add_int("charges", 1);
                self.entity("operators", &op)?
                    .add_amount("collected", e.amount)?
                    .add_int("charges", 1);
                self.bucket(series::MODEL_REVENUE, &model, e.amount)?;
                self.bucket(series::OPERATOR_COLLECTED, &op, e.amount)?;
                self.bucket(series::PROTOCOL_VOLUME, "all", e.amount)?;
                "Charged"
            }
            S::DebitSkipped(e) => {
                let (op, model) = (hex_addr(e.operator), e.modelId.to_string());
                let reason = SKIP_REASONS
                    .get(usize::from(e.reason))
                    .copied()
                    .unwrap_or("unknown");
                let mut row = self.event_row("charges");
                row.set("batch", format!("{op}-{}", e.sequence))
                    .set("operator", op.clone())
                    .set("payer", hex_addr(e.user))
                    .set("model", model.clone())
                    .set("sequence", e.sequence)
                    .set("amount", e.amount)
                    .set("collected", false)
                    .set("skip_reason", reason);
                self.insert(row);
                self.entity("accounts", &hex_addr(e.user))?;
                self.entity("models", &model)?.add_int("skipped", 1);
                self.entity("operators", &op)?.add_int("skipped", 1);
                "DebitSkipped"
            }
            S::RewardCredited(e) => {
                let account = hex_addr(e.account);
                let kind = REWARD_KINDS
                    .get(usize::from(e.kind))
                    .copied()
                    .unwrap_or("unknown");
                let source = small(e.sourceId, "reward source id")?;
                let mut row = self.event_row("rewards");
                row.set("account", account.clone())
                    .set("model", e.modelId.to_string())
                    .set("sequence", e.sequence)
                    .set("kind", kind)
                    .set("source_id", source)
                    .set("amount", e.amount)
                    .set("vests_at", e.vestsAt);
                // The event names no operator: the batch is the one whose debits this
                // transaction charged just before (settleBatch emits them first).
                let batch = self
                    .changes
                    .inserted("charges")
                    .iter()
                    .rev()
                    .find(|b| b.get("tx_hash") == &Value::Text(self.at.tx.clone()))
                    .map(|c| c.get("batch").clone())
                    .unwrap_or(Value::Text(String::new()));
                row.set("batch", batch);
                let account_row = self.entity("accounts", &account)?;
                account_row
                    .add_amount(&format!("earned_{kind}"), e.amount)?
                    .add_amount("earned", e.amount)?
                    .add_int("rewards", 1);
                self.bucket(series::ACCOUNT_EARNINGS, &account, e.amount)?;
                match kind {
                    "contribution" => {
                        let cid = e.sourceId.to_string();
                        let c = self.entity("contributions", &cid)?;
                        c.add_amount("earned", e.amount)?.add_int("rewards", 1);
                        let datanet = match c.get("datanet") {
                            Value::Text(d) => d.clone(),
                            _ => String::new(),
                        };
                        row.set("contribution", cid.clone())
                            .set("datanet", datanet.clone());
                        self.entity("datanets", &datanet)?
                            .add_amount("earned", e.amount)?
                            .add_int("rewards", 1);
                        self.bucket(series::CONTRIBUTION_EARNINGS, &cid, e.amount)?;
                        self.bucket(series::DATANET_EARNINGS, &datanet, e.amount)?;
                    }
                    "datanet" => {
                        let did = e.sourceId.to_string();
                        row.set("datanet", did.clone());
                        self.entity("datanets", &did)?
                            .add_amount("earned", e.amount)?
                            .add_int("rewards", 1);
                        self.bucket(series::DATANET_EARNINGS, &did, e.amount)?;
                    }
                    _ => {}
                }
                self.insert(row);
                "RewardCredited"
            }
            S::RewardsSlashed(e) => {
                // Unvested operator rewards move to the treasury's claimable balance: the
                // operator's net earnings fall and the treasury's rise by the same amount.
                self.entity("operators", &hex_addr(e.operator))?
                    .add_amount("rewards_slashed", e.amount)?;
                self.entity("accounts", &hex_addr(e.operator))?
                    .add_amount("forfeited", e.amount)?
                    .sub_amount("earned", e.amount)?;
                let treasury = hex_addr(self.treasury);
                self.entity("accounts", &treasury)?
                    .add_amount("earned_slashed", e.amount)?
                    .add_amount("earned", e.amount)?;
                self.bucket(series::ACCOUNT_EARNINGS, &treasury, e.amount)?;
                "RewardsSlashed"
            }
            S::Claimed(e) => {
                let mut row = self.event_row("claims");
                row.set("account", hex_addr(e.account))
                    .set("recipient", hex_addr(e.recipient))
                    .set("amount", e.amount);
                self.insert(row);
                self.entity("accounts", &hex_addr(e.account))?
                    .add_amount("claimed", e.amount)?;
                "Claimed"
            }
            S::SplitPolicyChanged(e) => {
                let mut row = self.event_row("split_policies");
                row.values[0] = Value::Text(e.epoch.to_string());
                row.set("epoch", e.epoch)
                    .set("protocol_bps", i64::from(e.protocolBps))
                    .set("operator_bps", i64::from(e.operatorBps))
                    .set("developer_bps", i64::from(e.developerBps))
                    .set("data_bps", i64::from(e.dataBps))
                    .set("effective_at", e.effectiveAt);
                self.insert(row);
                "SplitPolicyChanged"
            }
            S::WithdrawalDelayChanged(e) => {
                self.parameter(
                    "settlement.withdrawalDelay",
                    e.delay.to_string(),
                    e.effectiveAt,
                )?;
                "WithdrawalDelayChanged"
            }
            S::GovernanceTransferStarted(e) => {
                self.parameter("settlement.pendingGovernance", hex_addr(e.pending), ts)?;
                "GovernanceTransferStarted"
            }
            S::GovernanceTransferred(e) => {
                self.parameter("settlement.governance", hex_addr(e.current), ts)?;
                "GovernanceTransferred"
            }
            S::EIP712DomainChanged(_) => "EIP712DomainChanged",
        })
    }
}
