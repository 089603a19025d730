//! The indexed tables, described once.
//!
//! Three parts of the system need to know the tables at run time, not only at compile time:
//! the store's undo log (it saves and restores whole rows of any mutable table), the GraphQL
//! dialect (one object type, filter input and order enum per table, with its relations) and
//! the tests that compare databases row for row. So the entity tables are described here, as
//! data, and every one of them is written and read through that description; the migrations
//! under `migrations/` create exactly these columns (a test checks it on both databases).
//! The bookkeeping tables (checkpoint, block window, undo log) are in [`crate::schema`].
//!
//! Every table has a text primary key `id`, as The Graph's entities do. Amounts (uint256) are
//! stored as 78-digit zero-padded decimal text ([`crate::value::Amount`]): exact on both
//! databases, and their text order is their numeric order, so filters and ordering run in SQL.

/// What a column holds, which decides its SQL type, its GraphQL scalar and its filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A 64-bit integer (block numbers, timestamps, counts, ids the contracts hand out).
    Int,
    /// A uint256 amount: padded decimal text in the database, `BigInt` in GraphQL.
    Amount,
    /// Free text (URIs, reasons, statuses).
    Text,
    /// An address or hash: `0x`-prefixed lowercase hex text, `Bytes` in GraphQL.
    Bytes,
    /// A boolean.
    Bool,
}

/// One column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Its name, in the database and (camel-cased) in GraphQL.
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// Whether it may be NULL.
    pub nullable: bool,
    /// The table whose `id` this column holds, if it is a reference.
    pub refers: Option<&'static str>,
}

/// A table whose rows point at this one: exposed as a list field on this table's entities.
#[derive(Debug, Clone, Copy)]
pub struct Children {
    /// The field's name in GraphQL (camelCase).
    pub field: &'static str,
    /// The child table.
    pub table: &'static str,
    /// The child's column holding this table's `id`.
    pub column: &'static str,
}

/// One table.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// Its name in the database (plural, snake case).
    pub name: &'static str,
    /// Its entity's name in GraphQL (singular, PascalCase).
    pub entity: &'static str,
    /// Its collection's name in GraphQL (plural, camelCase).
    pub collection: &'static str,
    /// Append-only rows of one event each (they carry `block_number` and are deleted by block
    /// on a reorg); otherwise the table holds current state, updated in place and restored from
    /// the undo log on a reorg.
    pub append_only: bool,
    /// Its columns after `id`.
    pub columns: &'static [Column],
    /// Tables pointing at it.
    pub children: &'static [Children],
}

impl Table {
    /// The column called `name` (`id` included).
    pub fn column(&self, name: &str) -> Option<&Column> {
        if name == "id" {
            return Some(&ID);
        }
        self.columns.iter().find(|c| c.name == name)
    }

    /// `id` and then every column, in database order.
    pub fn all_columns(&self) -> impl Iterator<Item = &Column> {
        std::iter::once(&ID).chain(self.columns.iter())
    }
}

/// The `id` column every table starts with.
pub const ID: Column = col("id", Kind::Text);

const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: false,
        refers: None,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: true,
        refers: None,
    }
}

const fn rel(name: &'static str, kind: Kind, table: &'static str) -> Column {
    Column {
        name,
        kind,
        nullable: false,
        refers: Some(table),
    }
}

const fn kids(field: &'static str, table: &'static str, column: &'static str) -> Children {
    Children {
        field,
        table,
        column,
    }
}

/// The columns every append-only table ends with: where its event is.
macro_rules! event_columns {
    ($($c:expr),* $(,)?) => {
        &[
            $($c,)*
            col("block_number", Kind::Int),
            col("log_index", Kind::Int),
            col("timestamp", Kind::Int),
            col("tx_hash", Kind::Bytes),
        ]
    };
}

/// Every indexed table.
pub const TABLES: &[Table] = &[
    // ---- current state ----
    Table {
        name: "datanets",
        entity: "Datanet",
        collection: "datanets",
        append_only: false,
        columns: &[
            col("datanet_id", Kind::Int),
            col("owner", Kind::Bytes),
            opt("pending_owner", Kind::Bytes),
            col("min_accepted", Kind::Int),
            col("metadata_uri", Kind::Text),
            col("contributions", Kind::Int),
            col("accepted", Kind::Int),
            col("rejected", Kind::Int),
            col("withdrawn", Kind::Int),
            col("earned", Kind::Amount),
            col("rewards", Kind::Int),
            col("created_block", Kind::Int),
            col("created_at", Kind::Int),
        ],
        children: &[
            kids("contributionList", "contributions", "datanet"),
            kids("curators", "curators", "datanet"),
        ],
    },
    Table {
        name: "curators",
        entity: "Curator",
        collection: "curators",
        append_only: false,
        columns: &[
            rel("datanet", Kind::Text, "datanets"),
            col("curator", Kind::Bytes),
            col("enabled", Kind::Bool),
            col("updated_block", Kind::Int),
        ],
        children: &[],
    },
    Table {
        name: "contributions",
        entity: "Contribution",
        collection: "contributions",
        append_only: false,
        columns: &[
            col("contribution_id", Kind::Int),
            rel("datanet", Kind::Text, "datanets"),
            col("contributor", Kind::Bytes),
            col("content_hash", Kind::Bytes),
            col("tokens", Kind::Int),
            col("stake", Kind::Amount),
            col("uri", Kind::Text),
            col("status", Kind::Text),
            opt("curator", Kind::Bytes),
            col("slashed", Kind::Amount),
            col("earned", Kind::Amount),
            col("rewards", Kind::Int),
            col("added_block", Kind::Int),
            col("added_at", Kind::Int),
            col("status_block", Kind::Int),
        ],
        children: &[
            kids("changes", "contribution_changes", "contribution"),
            kids("rewardList", "rewards", "contribution"),
            kids("attributions", "attributions", "contribution"),
        ],
    },
    Table {
        name: "models",
        entity: "Model",
        collection: "models",
        append_only: false,
        columns: &[
            col("model_id", Kind::Int),
            col("developer", Kind::Bytes),
            opt("pending_developer", Kind::Bytes),
            col("base_model_hash", Kind::Bytes),
            col("price_per_1k_tokens", Kind::Amount),
            col("active", Kind::Bool),
            col("versions", Kind::Int),
            col("charges", Kind::Int),
            col("skipped", Kind::Int),
            col("revenue", Kind::Amount),
            col("created_block", Kind::Int),
            col("created_at", Kind::Int),
        ],
        children: &[
            kids("versionList", "model_versions", "model"),
            kids("chargeList", "charges", "model"),
            kids("receiptList", "receipts", "model"),
        ],
    },
    Table {
        name: "operators",
        entity: "Operator",
        collection: "operators",
        append_only: false,
        columns: &[
            opt("signer", Kind::Bytes),
            col("stake", Kind::Amount),
            col("unstaking", Kind::Amount),
            col("unstake_ready_at", Kind::Int),
            col("slashed", Kind::Amount),
            col("rewards_slashed", Kind::Amount),
            col("batches", Kind::Int),
            col("charges", Kind::Int),
            col("skipped", Kind::Int),
            col("collected", Kind::Amount),
            col("last_sequence", Kind::Int),
        ],
        children: &[
            kids("batchList", "batches", "operator"),
            kids("stakeChanges", "stake_changes", "operator"),
            kids("serving", "serving", "operator"),
        ],
    },
    Table {
        name: "serving",
        entity: "Serving",
        collection: "servings",
        append_only: false,
        columns: &[
            rel("operator", Kind::Text, "operators"),
            rel("model", Kind::Text, "models"),
            col("serving", Kind::Bool),
            col("updated_block", Kind::Int),
        ],
        children: &[],
    },
    Table {
        name: "escrows",
        entity: "Escrow",
        collection: "escrows",
        append_only: false,
        columns: &[
            rel("payer", Kind::Text, "accounts"),
            rel("operator", Kind::Text, "operators"),
            col("balance", Kind::Amount),
            col("deposited", Kind::Amount),
            col("withdrawn", Kind::Amount),
            col("pending_withdrawal", Kind::Amount),
            col("withdrawal_ready_at", Kind::Int),
            col("withdrawal_expires_at", Kind::Int),
            col("spent", Kind::Amount),
            col("charges", Kind::Int),
        ],
        children: &[kids("changes", "escrow_changes", "escrow")],
    },
    Table {
        name: "accounts",
        entity: "Account",
        collection: "accounts",
        append_only: false,
        columns: &[
            col("token_balance", Kind::Amount),
            col("earned_protocol", Kind::Amount),
            col("earned_operator", Kind::Amount),
            col("earned_developer", Kind::Amount),
            col("earned_contribution", Kind::Amount),
            col("earned_datanet", Kind::Amount),
            col("earned_slashed", Kind::Amount),
            col("forfeited", Kind::Amount),
            col("earned", Kind::Amount),
            col("claimed", Kind::Amount),
            col("rewards", Kind::Int),
            col("spent", Kind::Amount),
            col("charges", Kind::Int),
            col("min_nonce", Kind::Int),
            col("revocation_effective_at", Kind::Int),
        ],
        children: &[
            kids("rewardList", "rewards", "account"),
            kids("claimList", "claims", "account"),
            kids("chargeList", "charges", "payer"),
            kids("receiptList", "receipts", "payer"),
        ],
    },
    Table {
        name: "parameters",
        entity: "Parameter",
        collection: "parameters",
        append_only: false,
        columns: &[
            col("value", Kind::Text),
            col("effective_at", Kind::Int),
            col("updated_block", Kind::Int),
        ],
        children: &[],
    },
    Table {
        name: "buckets",
        entity: "Bucket",
        collection: "buckets",
        append_only: false,
        columns: &[
            col("series", Kind::Text),
            col("key", Kind::Text),
            col("period", Kind::Text),
            col("start", Kind::Int),
            col("amount", Kind::Amount),
            col("count", Kind::Int),
        ],
        children: &[],
    },
    // ---- one row per event ----
    Table {
        name: "events",
        entity: "Event",
        collection: "events",
        append_only: true,
        columns: event_columns![
            col("chain_id", Kind::Int),
            col("block_hash", Kind::Bytes),
            col("contract", Kind::Text),
            col("name", Kind::Text),
            col("topics", Kind::Text),
            col("data", Kind::Bytes),
        ],
        children: &[],
    },
    Table {
        name: "model_versions",
        entity: "ModelVersion",
        collection: "modelVersions",
        append_only: true,
        columns: event_columns![
            rel("model", Kind::Text, "models"),
            col("version", Kind::Int),
            col("parent_version", Kind::Int),
            col("adapter_hash", Kind::Bytes),
            col("adapter_uri", Kind::Text),
        ],
        children: &[kids("lineage", "model_datanets", "model_version")],
    },
    Table {
        name: "model_datanets",
        entity: "ModelDatanet",
        collection: "modelDatanets",
        append_only: true,
        columns: event_columns![
            rel("model_version", Kind::Text, "model_versions"),
            rel("model", Kind::Text, "models"),
            rel("datanet", Kind::Text, "datanets"),
        ],
        children: &[],
    },
    Table {
        name: "contribution_changes",
        entity: "ContributionChange",
        collection: "contributionChanges",
        append_only: true,
        columns: event_columns![
            rel("contribution", Kind::Text, "contributions"),
            rel("datanet", Kind::Text, "datanets"),
            col("status", Kind::Text),
            col("actor", Kind::Bytes),
            col("amount", Kind::Amount),
        ],
        children: &[],
    },
    Table {
        name: "stake_changes",
        entity: "StakeChange",
        collection: "stakeChanges",
        append_only: true,
        columns: event_columns![
            rel("operator", Kind::Text, "operators"),
            col("kind", Kind::Text),
            col("amount", Kind::Amount),
            col("stake", Kind::Amount),
            col("unstaking", Kind::Amount),
            col("reason", Kind::Text),
        ],
        children: &[],
    },
    Table {
        name: "escrow_changes",
        entity: "EscrowChange",
        collection: "escrowChanges",
        append_only: true,
        columns: event_columns![
            rel("escrow", Kind::Text, "escrows"),
            rel("payer", Kind::Text, "accounts"),
            rel("operator", Kind::Text, "operators"),
            col("kind", Kind::Text),
            col("amount", Kind::Amount),
            col("balance", Kind::Amount),
            col("ready_at", Kind::Int),
            col("expires_at", Kind::Int),
        ],
        children: &[],
    },
    Table {
        name: "voucher_revocations",
        entity: "VoucherRevocation",
        collection: "voucherRevocations",
        append_only: true,
        columns: event_columns![
            rel("payer", Kind::Text, "accounts"),
            col("min_nonce", Kind::Int),
            col("effective_at", Kind::Int),
        ],
        children: &[],
    },
    Table {
        name: "batches",
        entity: "Batch",
        collection: "batches",
        append_only: true,
        columns: event_columns![
            rel("operator", Kind::Text, "operators"),
            col("sequence", Kind::Int),
            col("receipts_root", Kind::Bytes),
            col("policy_epoch", Kind::Int),
            col("total_charged", Kind::Amount),
            col("collected", Kind::Int),
            col("skipped", Kind::Int),
            col("verification", Kind::Text),
            opt("flag_reason", Kind::Text),
            col("receipts", Kind::Int),
        ],
        children: &[
            kids("chargeList", "charges", "batch"),
            kids("rewardList", "rewards", "batch"),
            kids("receiptList", "receipts", "batch"),
        ],
    },
    Table {
        name: "charges",
        entity: "Charge",
        collection: "charges",
        append_only: true,
        columns: event_columns![
            rel("batch", Kind::Text, "batches"),
            rel("operator", Kind::Text, "operators"),
            rel("payer", Kind::Text, "accounts"),
            rel("model", Kind::Text, "models"),
            col("sequence", Kind::Int),
            col("amount", Kind::Amount),
            col("spent", Kind::Amount),
            col("collected", Kind::Bool),
            opt("skip_reason", Kind::Text),
        ],
        children: &[],
    },
    Table {
        name: "rewards",
        entity: "Reward",
        collection: "rewards",
        append_only: true,
        columns: event_columns![
            rel("account", Kind::Text, "accounts"),
            rel("batch", Kind::Text, "batches"),
            rel("model", Kind::Text, "models"),
            col("sequence", Kind::Int),
            col("kind", Kind::Text),
            col("source_id", Kind::Int),
            Column {
                name: "contribution",
                kind: Kind::Text,
                nullable: true,
                refers: Some("contributions")
            },
            Column {
                name: "datanet",
                kind: Kind::Text,
                nullable: true,
                refers: Some("datanets")
            },
            col("amount", Kind::Amount),
            col("vests_at", Kind::Int),
        ],
        children: &[],
    },
    Table {
        name: "claims",
        entity: "Claim",
        collection: "claims",
        append_only: true,
        columns: event_columns![
            rel("account", Kind::Text, "accounts"),
            col("recipient", Kind::Bytes),
            col("amount", Kind::Amount),
        ],
        children: &[],
    },
    Table {
        name: "split_policies",
        entity: "SplitPolicy",
        collection: "splitPolicies",
        append_only: true,
        columns: event_columns![
            col("epoch", Kind::Int),
            col("protocol_bps", Kind::Int),
            col("operator_bps", Kind::Int),
            col("developer_bps", Kind::Int),
            col("data_bps", Kind::Int),
            col("effective_at", Kind::Int),
        ],
        children: &[],
    },
    Table {
        name: "transfers",
        entity: "Transfer",
        collection: "transfers",
        append_only: true,
        columns: event_columns![
            col("from_address", Kind::Bytes),
            col("to_address", Kind::Bytes),
            col("value", Kind::Amount),
        ],
        children: &[],
    },
    // ---- verified receipts (from the operator's receipts API, checked against the chain) ----
    Table {
        name: "receipts",
        entity: "Receipt",
        collection: "receipts",
        append_only: true,
        columns: event_columns![
            rel("batch", Kind::Text, "batches"),
            rel("operator", Kind::Text, "operators"),
            rel("payer", Kind::Text, "accounts"),
            rel("model", Kind::Text, "models"),
            col("model_version", Kind::Int),
            col("tokens_in", Kind::Int),
            col("tokens_out", Kind::Int),
            col("fee", Kind::Amount),
            col("prompt_hash", Kind::Bytes),
            col("output_hash", Kind::Bytes),
            rel("datanet", Kind::Text, "datanets"),
            col("receipt_timestamp", Kind::Int),
        ],
        children: &[kids("attributions", "attributions", "receipt")],
    },
    Table {
        name: "attributions",
        entity: "Attribution",
        collection: "attributions",
        append_only: true,
        columns: event_columns![
            rel("receipt", Kind::Text, "receipts"),
            rel("model", Kind::Text, "models"),
            rel("datanet", Kind::Text, "datanets"),
            Column {
                name: "contribution",
                kind: Kind::Text,
                nullable: true,
                refers: Some("contributions")
            },
            col("ppm", Kind::Int),
            col("fee_share", Kind::Amount),
            col("spans", Kind::Text),
        ],
        children: &[],
    },
];

/// The table called `name`.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_references_resolve() {
        let mut names = std::collections::BTreeSet::new();
        for t in TABLES {
            assert!(names.insert(t.name), "{} twice", t.name);
            let mut cols = std::collections::BTreeSet::new();
            for c in t.all_columns() {
                assert!(cols.insert(c.name), "{}.{} twice", t.name, c.name);
                if let Some(r) = c.refers {
                    assert!(table(r).is_some(), "{}.{} refers to {r}", t.name, c.name);
                }
            }
            for k in t.children {
                let child = table(k.table).expect("child table");
                assert_eq!(child.column(k.column).and_then(|c| c.refers), Some(t.name));
            }
        }
    }
}

/// The `CREATE TABLE` statements of the catalog for `postgres` or SQLite: what the initial
/// migrations contain (a test keeps them equal).
pub fn create_sql(postgres: bool) -> String {
    let mut out = String::new();
    for t in TABLES {
        let cols = t
            .all_columns()
            .map(|c| {
                let ty = match (c.kind, postgres) {
                    (Kind::Int, _) => "BIGINT",
                    (Kind::Bool, _) => "BOOLEAN",
                    _ => "TEXT",
                };
                let null = if c.nullable { "" } else { " NOT NULL" };
                let pk = if c.name == "id" { " PRIMARY KEY" } else { "" };
                format!("    {} {ty}{null}{pk}", c.name)
            })
            .collect::<Vec<_>>()
            .join(",\n");
        out.push_str(&format!("CREATE TABLE {} (\n{cols}\n);\n", t.name));
        if t.append_only {
            out.push_str(&format!(
                "CREATE INDEX {0}_block ON {0} (block_number, log_index);\n",
                t.name
            ));
        }
        // A reference, with the block where there is one: "X's history, newest first" is
        // one index range.
        for c in t.columns.iter().filter(|c| c.refers.is_some()) {
            let cols = if t.append_only {
                format!("{}, block_number", c.name)
            } else {
                c.name.to_owned()
            };
            out.push_str(&format!(
                "CREATE INDEX {0}_{1} ON {0} ({cols});\n",
                t.name, c.name
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod migration_tests {
    use super::*;

    const SQLITE_UP: &str =
        include_str!("../../migrations/sqlite/2026-12-01-000001_entities/up.sql");
    const POSTGRES_UP: &str =
        include_str!("../../migrations/postgres/2026-12-01-000001_entities/up.sql");
    const HEADER: &str = "-- The catalog's tables (indexer/src/catalog.rs; `create_sql` writes this file and a test\n-- keeps them equal: OPENLEDGER_WRITE_MIGRATIONS=1 cargo test -p openledger-indexer migration).\n";

    /// The entity migrations are the catalog's DDL; run with OPENLEDGER_WRITE_MIGRATIONS=1 to
    /// rewrite them after changing the catalog.
    #[test]
    fn the_entity_migrations_create_the_catalog() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
        for (dir, postgres, committed) in [
            ("sqlite", false, SQLITE_UP),
            ("postgres", true, POSTGRES_UP),
        ] {
            let expected = format!("{HEADER}{}", create_sql(postgres));
            if std::env::var_os("OPENLEDGER_WRITE_MIGRATIONS").is_some() {
                let path = format!("{root}/{dir}/2026-12-01-000001_entities");
                let drops: String = TABLES
                    .iter()
                    .rev()
                    .map(|t| format!("DROP TABLE {};\n", t.name))
                    .collect();
                std::fs::write(format!("{path}/up.sql"), &expected).unwrap();
                std::fs::write(format!("{path}/down.sql"), drops).unwrap();
                continue;
            }
            assert_eq!(
                committed, expected,
                "migrations/{dir} is not the catalog: rewrite it (see HEADER)"
            );
        }
    }
}
