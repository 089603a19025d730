//! The indexer against the paid devnet: real anvil, the real contracts, the oracle in paid mode
//! settling a real batch, and the index in a real SQLite file and a real PostgreSQL database.
//!
//! PostgreSQL: `scripts/test.sh` starts a server of its own under `$OPENLEDGER_HOME` and exports
//! `OPENLEDGER_TEST_POSTGRES` (an admin URL); each test creates its own database there. The
//! PostgreSQL tests fail, never skip, without it.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
};
use openledger_devnet::{Devnet, demo};
use openledger_indexer::{
    FollowConfig, Indexer, IndexerConfig, ReceiptSources, Step, Store, catalog, db::Database,
    follow::lock,
};
use openledger_primitives::bindings::{OpenToken, OperatorRegistry, Settlement};
use serde_json::Value;

use crate::paid::{chat, paid_devnet, post, provider, until};

/// A fresh PostgreSQL database on the test server.
pub(crate) fn postgres_database(name: &str) -> String {
    let admin = std::env::var("OPENLEDGER_TEST_POSTGRES").expect(
        "OPENLEDGER_TEST_POSTGRES is unset: run scripts/test.sh, which starts PostgreSQL \
         (or export an admin URL such as postgres://postgres@127.0.0.1:55432/postgres)",
    );
    let db = format!("it_{name}_{}", std::process::id());
    let mut conn = Database::connect(&admin).expect("PostgreSQL is up");
    let mut sql = conn.sql();
    sql.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .unwrap();
    sql.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    let base = admin.rsplit_once('/').expect("URL with a database").0;
    format!("{base}/{db}")
}

fn config(devnet: &Devnet, database: String, window: u64) -> IndexerConfig {
    IndexerConfig {
        database,
        rpc_url: devnet.rpc_url(),
        deployment: devnet.deployment().clone(),
        follow: FollowConfig {
            window,
            poll: Duration::from_millis(50),
            initial_range: 7,
            ..Default::default()
        },
        receipts: ReceiptSources {
            default: devnet.oracle_url(),
            ..Default::default()
        },
        resync: false,
    }
}

/// Indexes to the chain's head and waits until no batch is pending verification.
pub(crate) async fn index(devnet: &Devnet, database: String, window: u64) -> Arc<Mutex<Store>> {
    let indexer = Indexer::open(config(devnet, database, window))
        .await
        .expect("indexer opens");
    let store = indexer.store();
    let head = provider(devnet).get_block_number().await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(indexer.run(async {
        let _ = stop_rx.await;
    }));
    until_async(
        "the index reaches the head and verifies its batches",
        || {
            let mut st = lock(&store);
            let at = st.checkpoint().unwrap().map_or(0, |c| c.number);
            at >= head && pending(&mut st) == 0
        },
    )
    .await;
    let _ = stop_tx.send(());
    task.await.unwrap().expect("the indexer stops cleanly");
    store
}

async fn until_async(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..600 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn pending(st: &mut Store) -> i64 {
    st.db()
        .sql()
        .query_count(
            "SELECT COUNT(*) AS n FROM batches WHERE verification = 'pending'",
            vec![],
        )
        .unwrap()
}

/// Every catalog table, row by row, and the checkpoint.
pub(crate) fn dump(store: &Mutex<Store>) -> BTreeMap<&'static str, Vec<Value>> {
    let mut st = lock(store);
    let mut out = BTreeMap::new();
    for t in catalog::TABLES {
        out.insert(t.name, st.db().sql().dump(t).unwrap());
    }
    let cp = st.checkpoint().unwrap().unwrap();
    out.insert("checkpoint", vec![serde_json::json!([cp.number, cp.hash])]);
    out
}

pub(crate) fn row(store: &Arc<Mutex<Store>>, table: &str, id: &str) -> Value {
    let t = catalog::table(table).unwrap();
    lock(store)
        .db()
        .sql()
        .load(t, id)
        .unwrap()
        .unwrap_or_else(|| panic!("{table} {id} is indexed"))
        .to_json()
}

pub(crate) fn amount(v: &Value) -> U256 {
    v.as_str().unwrap().parse().unwrap()
}

pub(crate) fn addr(a: Address) -> String {
    format!("{a:#x}")
}

/// Paid requests, one settled batch, and the other kinds of events around it.
async fn history(devnet: &Devnet) {
    let demo = devnet.demo().unwrap().clone();
    let payments = devnet.payments().unwrap().clone();
    let model = format!("model-{}", demo.model_id);
    for prompt in ["Call me Ishmael.", "It is a truth universally"] {
        let (status, body) = post(
            devnet,
            "/v1/chat/completions",
            Some(&demo.api_key),
            &chat(&model, prompt, 12),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let settled = payments.ledger().settlements();
    assert!(payments.flush().await.unwrap());
    until("the batch settles", || {
        payments.ledger().settlements() > settled
    })
    .await;
    more_events(devnet, &demo.developer, &demo.user, demo.operator.address()).await;
}

/// Claims, a withdrawal request and token transfers: events outside settlement.
async fn more_events(
    devnet: &Devnet,
    developer: &PrivateKeySigner,
    user: &PrivateKeySigner,
    operator: Address,
) {
    let d = devnet.deployment();
    let wallet = demo::wallet(&devnet.rpc_url(), developer).unwrap();
    Settlement::new(d.contracts.settlement, &wallet)
        .claim()
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let wallet = demo::wallet(&devnet.rpc_url(), &devnet.dev_signer(0).unwrap()).unwrap();
    let token = OpenToken::new(d.contracts.token, &wallet);
    token
        .transfer(user.address(), U256::from(12_345u64))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let wallet = demo::wallet(&devnet.rpc_url(), user).unwrap();
    Settlement::new(d.contracts.settlement, &wallet)
        .requestWithdrawal(operator, U256::from(1_000u64))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
}

/// Every indexed account, escrow and operator agrees with the contracts' own views.
async fn assert_matches_views(devnet: &Devnet, store: &Arc<Mutex<Store>>) {
    let d = devnet.deployment().clone();
    let demo = devnet.demo().unwrap().clone();
    let p: DynProvider = provider(devnet);
    let token = OpenToken::new(d.contracts.token, &p);
    let settlement = Settlement::new(d.contracts.settlement, &p);
    let operators = OperatorRegistry::new(d.contracts.operators, &p);

    let accounts = lock(store)
        .db()
        .sql()
        .dump(catalog::table("accounts").unwrap())
        .unwrap();
    assert!(accounts.len() >= 5, "{accounts:?}");
    for a in &accounts {
        let who: Address = a["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            amount(&a["token_balance"]),
            token.balanceOf(who).call().await.unwrap(),
            "token balance of {who}"
        );
        let earned = amount(&a["earned"]);
        let claimed = amount(&a["claimed"]);
        if who != demo.operator.address() {
            // Operator rewards vest; every other kind is claimable at once.
            assert_eq!(
                earned - claimed,
                settlement.claimable(who).call().await.unwrap(),
                "claimable of {who}"
            );
        }
    }
    let user = demo.user.address();
    let operator = demo.operator.address();
    let escrow = row(
        store,
        "escrows",
        &format!("{}-{}", addr(user), addr(operator)),
    );
    let view = settlement.escrowOf(user, operator).call().await.unwrap();
    assert_eq!(amount(&escrow["balance"]), view.balance, "{escrow}");
    assert_eq!(
        amount(&escrow["pending_withdrawal"]),
        view.pending,
        "{escrow}"
    );
    let op = row(store, "operators", &addr(operator));
    let view = operators.getOperator(operator).call().await.unwrap();
    assert_eq!(amount(&op["stake"]), view.stake);
    assert_eq!(
        op["last_sequence"].as_i64().unwrap() as u64,
        settlement.lastSequence(operator).call().await.unwrap()
    );
    let model = row(store, "models", &demo.model_id.to_string());
    assert_eq!(model["charges"], 1, "{model}");
    let spent = settlement
        .spent(user, operator, demo.model_id)
        .call()
        .await
        .unwrap();
    assert_eq!(amount(&model["revenue"]), spent);
    let datanet = row(store, "datanets", &demo.datanet_id.to_string());
    assert_eq!(
        datanet["accepted"].as_i64().unwrap() as usize,
        demo.contribution_ids.len()
    );

    // The batch is verified and its receipts are stored with their attributions.
    let batch = row(store, "batches", &format!("{}-1", addr(operator)));
    assert_eq!(batch["verification"], "verified", "{batch}");
    assert_eq!(batch["receipts"], 2, "{batch}");
    let receipts = lock(store)
        .db()
        .sql()
        .dump(catalog::table("receipts").unwrap())
        .unwrap();
    assert_eq!(receipts.len(), 2);
    let fees: U256 = receipts.iter().map(|r| amount(&r["fee"])).sum();
    assert_eq!(fees, spent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_index_equals_the_contracts_views_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = paid_devnet(dir.path()).await;
    history(&devnet).await;

    let sqlite_path = dir.path().join("index.db").display().to_string();
    let sqlite = index(&devnet, sqlite_path.clone(), 64).await;
    assert_matches_views(&devnet, &sqlite).await;
    graphql_answers_from_the_index(&devnet, &sqlite_path).await;
    let postgres = index(&devnet, postgres_database("views"), 64).await;
    assert_matches_views(&devnet, &postgres).await;
    // One schema: both databases hold the same rows.
    assert_eq!(dump(&sqlite), dump(&postgres));
    devnet.shutdown().await.unwrap();
}

async fn snapshot(p: &DynProvider) -> U256 {
    p.raw_request("evm_snapshot".into(), ()).await.unwrap()
}

async fn revert(p: &DynProvider, id: U256) {
    let ok: bool = p.raw_request("evm_revert".into(), (id,)).await.unwrap();
    assert!(ok);
}

pub(crate) async fn mine(p: &DynProvider, blocks: u64) {
    let _: Value = p
        .raw_request("anvil_mine".into(), (U256::from(blocks),))
        .await
        .unwrap();
}

/// One step of the follower at a time, on a store the test holds.
async fn follow_once(devnet: &Devnet, store: &Mutex<Store>, window: u64) -> Step {
    let provider = provider(devnet);
    let applier = openledger_indexer::apply::Applier::new(devnet.deployment());
    let mut follower = openledger_indexer::Follower::new(
        provider,
        applier,
        FollowConfig {
            from_block: devnet.deployment().deploy_block,
            window,
            initial_range: 3,
            ..Default::default()
        },
    );
    loop {
        match follower.step(store).await.expect("step") {
            Step::AtHead => return Step::AtHead,
            Step::Retry => continue,
            s @ Step::Reverted { .. } => return s,
            Step::Advanced { .. } => continue,
        }
    }
}

fn open_store(devnet: &Devnet, url: &str, window: u64) -> Mutex<Store> {
    Mutex::new(
        Store::open(
            Database::open(url).unwrap(),
            &openledger_indexer::deployment_identity(devnet.deployment()),
            window,
        )
        .unwrap(),
    )
}

/// Reorgs at several depths, one across a settled batch: afterwards the index is row for row a
/// clean index of the canonical chain, on SQLite and on PostgreSQL; a reorg below the window
/// halts with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_reorgs_the_index_equals_a_clean_index_of_the_canonical_chain() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = paid_devnet(dir.path()).await;
    let demo = devnet.demo().unwrap().clone();
    let deployer = devnet.dev_signer(0).unwrap();
    let p = provider(&devnet);
    let sqlite = dir.path().join("reorg.db").display().to_string();
    let postgres = postgres_database("reorg");
    let stores = [
        open_store(&devnet, &sqlite, 64),
        open_store(&devnet, &postgres, 64),
    ];
    for s in &stores {
        follow_once(&devnet, s, 64).await;
    }

    // Depth 1 and 5: token transfers replaced by other transfers.
    for depth in [1u64, 5] {
        let id = snapshot(&p).await;
        for _ in 0..depth {
            more_transfer(&devnet, &deployer, demo.user.address(), 7).await;
        }
        for s in &stores {
            assert!(matches!(follow_once(&devnet, s, 64).await, Step::AtHead));
        }
        revert(&p, id).await;
        more_transfer(&devnet, &deployer, demo.user.address(), 3).await;
        mine(&p, depth + 1).await;
        for s in &stores {
            let step = follow_once(&devnet, s, 64).await;
            assert!(matches!(step, Step::Reverted { .. }), "{step:?}");
            follow_once(&devnet, s, 64).await;
        }
    }

    // Across a settled batch: paid requests and their batch, then a chain without them.
    let id = snapshot(&p).await;
    history(&devnet).await;
    for s in &stores {
        follow_once(&devnet, s, 64).await;
        let charges = lock(s)
            .db()
            .sql()
            .dump(catalog::table("charges").unwrap())
            .unwrap();
        assert!(!charges.is_empty());
    }
    revert(&p, id).await;
    mine(&p, 12).await;
    for s in &stores {
        let step = follow_once(&devnet, s, 64).await;
        assert!(matches!(step, Step::Reverted { .. }), "{step:?}");
        follow_once(&devnet, s, 64).await;
    }

    // Row for row, against clean indexes of the canonical chain.
    let clean_sqlite = open_store(
        &devnet,
        &dir.path().join("clean.db").display().to_string(),
        64,
    );
    follow_once(&devnet, &clean_sqlite, 64).await;
    let clean = dump(&clean_sqlite);
    assert!(
        clean["charges"].is_empty(),
        "the batch is gone from the chain"
    );
    assert_eq!(dump(&stores[0]), clean, "SQLite after reorgs");
    let clean_pg = open_store(&devnet, &postgres_database("clean"), 64);
    follow_once(&devnet, &clean_pg, 64).await;
    assert_eq!(dump(&clean_pg), clean, "PostgreSQL clean index");
    assert_eq!(dump(&stores[1]), clean, "PostgreSQL after reorgs");

    // Deeper than the window: a clear error, nothing changed.
    let small = open_store(
        &devnet,
        &dir.path().join("small.db").display().to_string(),
        2,
    );
    follow_once(&devnet, &small, 2).await;
    let id = snapshot(&p).await;
    mine(&p, 1).await;
    more_transfer(&devnet, &deployer, demo.user.address(), 1).await;
    mine(&p, 5).await;
    follow_once(&devnet, &small, 2).await;
    let before = dump(&small);
    revert(&p, id).await;
    mine(&p, 8).await;
    let err = follow_deep(&devnet, &small).await;
    assert!(
        err.contains("reorg deeper than the window") && err.contains("--resync"),
        "{err}"
    );
    assert_eq!(dump(&small), before, "the refused reorg changed nothing");
    devnet.shutdown().await.unwrap();
}

async fn follow_deep(devnet: &Devnet, store: &Mutex<Store>) -> String {
    let applier = openledger_indexer::apply::Applier::new(devnet.deployment());
    let mut follower = openledger_indexer::Follower::new(
        provider(devnet),
        applier,
        FollowConfig {
            from_block: devnet.deployment().deploy_block,
            window: 2,
            ..Default::default()
        },
    );
    loop {
        match follower.step(store).await {
            Ok(Step::AtHead) => panic!("a reorg below the window was not noticed"),
            Ok(_) => continue,
            Err(e) => return e.to_string(),
        }
    }
}

async fn more_transfer(devnet: &Devnet, from: &PrivateKeySigner, to: Address, amount: u64) {
    let wallet = demo::wallet(&devnet.rpc_url(), from).unwrap();
    OpenToken::new(devnet.deployment().contracts.token, &wallet)
        .transfer(to, U256::from(amount))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
}

pub(crate) async fn gql(url: &str, query: &str) -> Value {
    reqwest::Client::new()
        .post(url)
        .json(&serde_json::json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Each query family over real HTTP: entities with relations and children, filters (nested
/// too), ordering, both pagination styles at their edges, `_meta`, and the hostile queries.
async fn graphql_answers_from_the_index(devnet: &Devnet, database: &str) {
    let demo = devnet.demo().unwrap().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let addr = openledger_graphql::serve(database, "127.0.0.1:0".parse().unwrap(), async {
        let _ = stop_rx.await;
    })
    .await
    .unwrap();
    let url = format!("http://{addr}/graphql");
    let page = reqwest::get(format!("http://{addr}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("graphiql"), "GraphiQL at /");

    let model = demo.model_id.to_string();
    let r = gql(&url, &format!(r#"{{ _meta {{ block {{ number hash }} }} model(id: "{model}") {{ revenue charges chargeList(first: 5) {{ amount collected payer {{ id }} }} }} }}"#)).await;
    assert!(r["errors"].is_null(), "{r}");
    let charges = r["data"]["model"]["chargeList"].as_array().unwrap();
    assert_eq!(charges.len(), 1, "{r}");
    assert_eq!(charges[0]["amount"], r["data"]["model"]["revenue"]);
    assert_eq!(charges[0]["payer"]["id"], addr_of(&demo.user));
    assert!(r["data"]["_meta"]["block"]["number"].as_i64().unwrap() > 0);
    let revenue = amount(&r["data"]["model"]["revenue"]);

    // Filters, nested filters and ordering.
    let curator = addr_of(&demo.curator);
    let r = gql(&url, &format!(r#"{{ contributions(where: {{ datanet_: {{ owner: "{curator}" }}, status_in: ["accepted"] }}, orderBy: contributionId, orderDirection: desc) {{ contributionId datanet {{ id }} }} }}"#)).await;
    let list = r["data"]["contributions"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(list.len(), demo.contribution_ids.len(), "{r}");
    let ids: Vec<i64> = list
        .iter()
        .map(|c| c["contributionId"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "descending: {ids:?}");
    let max = U256::MAX.to_string();
    let r = gql(
        &url,
        &format!(r#"{{ charges(where: {{ amount_lte: "{max}", amount_gt: "0" }}) {{ id }} }}"#),
    )
    .await;
    assert_eq!(
        r["data"]["charges"].as_array().map(Vec::len),
        Some(1),
        "2^256 - 1 is exact: {r}"
    );
    let above = format!("{max}0");
    let r = gql(
        &url,
        &format!(r#"{{ charges(where: {{ amount_gt: "{above}" }}) {{ id }} }}"#),
    )
    .await;
    assert!(r["errors"].is_array(), "above 2^256 - 1 is refused: {r}");
    let r = gql(&url, r#"{ charges(where: { amount_gte: "1", or: [{ collected: true }, { collected: false }] }) { id } }"#).await;
    assert_eq!(r["data"]["charges"].as_array().unwrap().len(), 1, "{r}");

    // Receipts with their attributions.
    let r = gql(&url, r#"{ receipts { fee tokensOut attributions { ppm spans datanet { id } } batch { verification } } }"#).await;
    let receipts = r["data"]["receipts"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(receipts.len(), 2, "{r}");
    assert!(
        receipts
            .iter()
            .all(|x| x["batch"]["verification"] == "verified")
    );

    // Both pagination styles at their edges.
    let all = gql(&url, "{ accounts(first: 1000) { id } }").await;
    let all: Vec<String> = all["data"]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let arg = if after.is_empty() {
            String::new()
        } else {
            format!(r#", after: "{after}""#)
        };
        let r = gql(&url, &format!("{{ accountsConnection(first: 2{arg}) {{ totalCount edges {{ cursor node {{ id }} }} pageInfo {{ hasNextPage endCursor }} }} }}")).await;
        let c = &r["data"]["accountsConnection"];
        assert_eq!(c["totalCount"].as_u64().unwrap() as usize, all.len(), "{r}");
        for e in c["edges"].as_array().unwrap() {
            seen.push(e["node"]["id"].as_str().unwrap().to_owned());
        }
        if !c["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = c["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen, all, "cursor pages cover every row once, in order");
    let r = gql(
        &url,
        &format!("{{ accounts(skip: {}) {{ id }} }}", all.len()),
    )
    .await;
    assert_eq!(r["data"]["accounts"].as_array().unwrap().len(), 0);
    let r = gql(&url, "{ accounts(first: 0) { id } }").await;
    assert_eq!(r["data"]["accounts"].as_array().unwrap().len(), 0);

    // Time-bucketed aggregates: the model's revenue per hour, day and week adds up.
    for period in ["hour", "day", "week"] {
        let r = gql(&url, &format!(r#"{{ buckets(where: {{ series: "model_revenue", key: "{model}", period: "{period}" }}, orderBy: start) {{ start amount count }} }}"#)).await;
        let buckets = r["data"]["buckets"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"));
        assert!(!buckets.is_empty(), "{period}: {r}");
        let total: U256 = buckets.iter().map(|b| amount(&b["amount"])).sum();
        assert_eq!(total, revenue, "{period}: {r}");
    }

    // Hostile queries are refused with clear errors.
    let wide = (0..700)
        .map(|i| format!("m{i}: _meta {{ block {{ number }} }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let wide = format!("{{ {wide} }}");
    for (query, says) in [
        (
            "{ accounts(first: 1000) { chargeList(first: 1000) { id } } }",
            "too complex: its lists could return 1001000 rows",
        ),
        (wide.as_str(), "too complex"),
        (
            "{ accounts(first: 1001) { id } }",
            "first must be between 0 and 1000",
        ),
        ("{ accounts(skip: 5001) { id } }", "skip must be between"),
        ("{ accounts(where: { nope: 1 }) { id } }", "nope"),
        (
            "{ charges(first: 1) { model { chargeList(first: 1) { model { chargeList(first: 1) { model { chargeList(first: 1) { model { chargeList(first: 1) { model { id } } } } } } } } } } }",
            "nested too deep",
        ),
        ("{ accounts { id ", "expected"),
    ] {
        let r = gql(&url, query).await;
        let message = r["errors"][0]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{query}: {r}"));
        assert!(
            message.to_lowercase().contains(&says.to_lowercase()),
            "{query}: {message}"
        );
    }
    let _ = stop_tx.send(());
}

fn addr_of(k: &PrivateKeySigner) -> String {
    format!("{:#x}", k.address())
}

/// `openledger devnet` runs the indexer beside the chain and the GraphQL API over it: a batch
/// settled while it follows the head shows up verified, with its receipts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_devnet_indexes_at_the_head_and_serves_graphql() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = crate::paid::paid_devnet_graphql(dir.path()).await;
    let url = devnet.graphql_url().expect("the index runs");
    let mut live = subscribe(
        &url,
        "subscription { batchesAdded { id verification chargeList { amount } } }",
    )
    .await;
    history(&devnet).await;
    // Pushed over graphql-transport-ws once the block settling the batch is committed.
    let pushed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let msg = next_message(&mut live).await;
            assert_eq!(msg["type"], "next", "{msg}");
            let batches = msg["payload"]["data"]["batchesAdded"]
                .as_array()
                .unwrap()
                .clone();
            if !batches.is_empty() {
                return batches;
            }
        }
    })
    .await
    .expect("a new batch is pushed");
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0]["chargeList"].as_array().unwrap().len(), 1);
    let head = provider(&devnet).get_block_number().await.unwrap();
    let mut last = Value::Null;
    for _ in 0..300 {
        last = gql(&url, "{ _meta { block { number } } batches { verification receipts chargeList { amount } } }").await;
        let at = last["data"]["_meta"]["block"]["number"]
            .as_u64()
            .unwrap_or(0);
        if at >= head && last["data"]["batches"][0]["verification"] == "verified" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        last["data"]["batches"][0]["verification"], "verified",
        "{last}"
    );
    assert_eq!(last["data"]["batches"][0]["receipts"], 2, "{last}");
    devnet.shutdown().await.unwrap();
}

/// Paid requests; returns their receipt ids.
pub(crate) async fn requests(devnet: &Devnet, prompts: &[&str]) -> Vec<alloy::primitives::B256> {
    let demo = devnet.demo().unwrap().clone();
    let model = format!("model-{}", demo.model_id);
    let mut ids = Vec::new();
    for prompt in prompts {
        let (status, body) = post(
            devnet,
            "/v1/chat/completions",
            Some(&demo.api_key),
            &chat(&model, prompt, 8),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        ids.push(
            body["openledger"]["receipt_id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        );
    }
    ids
}

/// An operator that settles batch 2 with data credits its receipts do not justify (a credit
/// to a contribution no receipt names), and whose receipts API is down at first and then
/// serves batch 1 with one fee changed: both batches are flagged with the reason, none of
/// their receipts are stored, and the outage is retried, not fatal.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tampered_receipt_or_credits_off_the_rule_are_flagged() {
    use openledger_billing::batch::{BatchTerms, Billed, build};
    let dir = tempfile::tempdir().unwrap();
    let devnet = paid_devnet(dir.path()).await;
    let demo = devnet.demo().unwrap().clone();
    let d = devnet.deployment().clone();
    let payments = devnet.payments().unwrap().clone();
    let p = provider(&devnet);

    // Batch 1, honest, settled by the oracle.
    requests(&devnet, &["Call me Ishmael.", "It is a truth universally"]).await;
    assert!(payments.flush().await.unwrap());
    until("batch 1 settles", || payments.ledger().settlements() > 0).await;

    // Batch 2, settled by the operator's key with an unjustified credit.
    let ids = requests(&devnet, &["Happy families are all alike"]).await;
    let settlement = Settlement::new(d.contracts.settlement, &p);
    let epoch = settlement.currentEpoch().call().await.unwrap();
    let policy = settlement
        .splitPolicyOf(epoch)
        .call()
        .await
        .unwrap()
        .policy
        .into();
    let now = p
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp;
    let entries: Vec<_> = ids
        .iter()
        .map(|id| payments.ledger().receipt(*id).unwrap().served)
        .collect();
    let items = entries
        .iter()
        .map(|s| Billed {
            receipt: s.receipt.clone(),
            voucher: openledger_billing::voucher::decode_api_key(&s.api_key).unwrap(),
        })
        .collect();
    let terms = BatchTerms {
        operator: demo.operator.address(),
        sequence: 2,
        deadline: now + 3_600,
        policy_epoch: epoch,
        policy,
    };
    let mut plan = build(&terms, items).unwrap();
    let named: Vec<U256> = entries
        .iter()
        .flat_map(|s| s.receipt.attribution.iter().map(|w| w.contributionId))
        .collect();
    let unearned = *demo
        .contribution_ids
        .iter()
        .find(|c| !named.contains(c))
        .expect("a contribution the receipts do not name");
    let weight = plan.batch.credits[0].weight;
    plan.batch
        .credits
        .push(openledger_primitives::eip712::DataCredit {
            modelId: demo.model_id,
            datanetId: demo.datanet_id,
            contributionId: unearned,
            weight,
        });
    plan.batch
        .credits
        .sort_by_key(|c| (c.modelId, c.datanetId, c.contributionId));
    let domain =
        openledger_primitives::eip712::settlement_domain(d.chain_id, d.contracts.settlement);
    let signed = plan.sign(&demo.operator, &domain).await.unwrap();
    let call = signed.call();
    let wallet = demo::wallet(&devnet.rpc_url(), &demo.operator).unwrap();
    let receipt = Settlement::new(d.contracts.settlement, &wallet)
        .settleBatch(call.batch, call.operatorSignature, call.vouchers)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(
        receipt.status(),
        "the chain cannot tell: only the receipts can"
    );

    // The operator's receipts API: down for the first two calls, then batch 1 tampered and
    // batch 2 as served.
    let honest_1 = crate::paid::get(&devnet, "/v1/batches/1").await;
    let mut tampered = honest_1.clone();
    let fee: U256 = tampered["receipts"][0]["fee"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    tampered["receipts"][0]["fee"] = Value::String((fee + U256::from(1)).to_string());
    let batch_2 = serde_json::json!({
        "receipts": entries.iter().map(|s| openledger_payments::receipt_json(&s.receipt)).collect::<Vec<_>>(),
        "spans": entries.iter().map(|s| serde_json::to_value(&s.spans).unwrap()).collect::<Vec<_>>(),
    });
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(operator_api(listener, calls.clone(), tampered, batch_2));

    let mut config = config(
        &devnet,
        dir.path().join("flag.db").display().to_string(),
        64,
    );
    config.receipts.default = Some(api);
    let indexer = Indexer::open(config).await.unwrap();
    let store = indexer.store();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(indexer.run(async {
        let _ = stop_rx.await;
    }));
    until_async("both batches are decided", || {
        let mut st = lock(&store);
        st.checkpoint().unwrap().is_some_and(|c| c.number > 0)
            && pending(&mut st) == 0
            && st
                .db()
                .sql()
                .query_count("SELECT COUNT(*) AS n FROM batches", vec![])
                .unwrap()
                == 2
    })
    .await;
    let _ = stop_tx.send(());
    task.await.unwrap().unwrap();
    server.abort();
    assert!(
        calls.load(std::sync::atomic::Ordering::SeqCst) >= 4,
        "the outage was retried"
    );
    let op = addr(demo.operator.address());
    let b1 = row(&store, "batches", &format!("{op}-1"));
    assert_eq!(b1["verification"], "flagged", "{b1}");
    assert!(
        b1["flag_reason"].as_str().unwrap().contains("hash to"),
        "{b1}"
    );
    let b2 = row(&store, "batches", &format!("{op}-2"));
    assert_eq!(b2["verification"], "flagged", "{b2}");
    assert!(
        b2["flag_reason"].as_str().unwrap().contains("credit rule"),
        "{b2}"
    );
    let stored = lock(&store)
        .db()
        .sql()
        .query_count("SELECT COUNT(*) AS n FROM receipts", vec![])
        .unwrap();
    assert_eq!(stored, 0, "no receipt of a flagged batch is stored");
    devnet.shutdown().await.unwrap();
}

/// A receipts API answering 503 to its first two requests, then the documents given.
async fn operator_api(
    listener: tokio::net::TcpListener,
    calls: Arc<std::sync::atomic::AtomicUsize>,
    batch_1: Value,
    batch_2: Value,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut buf = vec![0u8; 4096];
        let len = socket.read(&mut buf).await.unwrap_or(0);
        let request = String::from_utf8_lossy(&buf[..len]).to_string();
        let (status, body) = if n < 2 {
            ("503 Service Unavailable", String::from("{}"))
        } else if request.starts_with("GET /v1/batches/1 ") {
            ("200 OK", batch_1.to_string())
        } else if request.starts_with("GET /v1/batches/2 ") {
            ("200 OK", batch_2.to_string())
        } else {
            ("404 Not Found", String::from("{}"))
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = socket.write_all(response.as_bytes()).await;
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a graphql-transport-ws subscription to `query` at the API whose HTTP URL is `url`.
async fn subscribe(url: &str, query: &str) -> Socket {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};
    let ws = format!("{}/ws", url.replacen("http://", "ws://", 1));
    let mut request = ws.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::text(r#"{"type":"connection_init"}"#))
        .await
        .unwrap();
    assert_eq!(next_message(&mut socket).await["type"], "connection_ack");
    let subscribe =
        serde_json::json!({"id": "1", "type": "subscribe", "payload": {"query": query}});
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .unwrap();
    socket
}

async fn next_message(socket: &mut Socket) -> Value {
    use futures_util::StreamExt;
    loop {
        match socket.next().await.expect("the socket stays open").unwrap() {
            tokio_tungstenite::tungstenite::Message::Text(t) => {
                return serde_json::from_str(t.as_str()).unwrap();
            }
            _ => continue,
        }
    }
}

/// uint256 amounts near 2²⁵⁶ survive both databases exactly and sort as numbers.
#[test]
fn amounts_near_two_to_the_256_are_exact_on_sqlite_and_postgres() {
    use openledger_indexer::value::Row;
    let dir = tempfile::tempdir().unwrap();
    let accounts = catalog::table("accounts").unwrap();
    let values = [
        U256::MAX,
        U256::MAX - U256::from(1),
        U256::from(1) << 255,
        (U256::from(1) << 255) - U256::from(1),
        U256::from(1),
        U256::ZERO,
    ];
    for url in [
        dir.path().join("exact.db").display().to_string(),
        postgres_database("exact"),
    ] {
        let mut db = Database::open(&url).unwrap();
        let rows: Vec<Row> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut r = Row::new(accounts, format!("a{i}"));
                r.set("earned", *v).set("claimed", U256::MAX - *v);
                r
            })
            .collect();
        db.sql().write(&rows, true).unwrap();
        for r in &rows {
            assert_eq!(
                db.sql().load(accounts, r.id()).unwrap().as_ref(),
                Some(r),
                "{url}"
            );
        }
        let sql = format!(
            "SELECT {} AS j FROM accounts t ORDER BY t.earned DESC",
            db.dialect().json_row(accounts, "t")
        );
        let sorted = db.sql().query_json(&sql, vec![]).unwrap();
        let got: Vec<U256> = sorted
            .iter()
            .map(|j| Row::from_json(accounts, j).unwrap().get("earned").amount())
            .collect();
        let mut expected = values.to_vec();
        expected.sort_by(|a, b| b.cmp(a));
        assert_eq!(got, expected, "{url}");
    }
}
