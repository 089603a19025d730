//! The GraphQL API over the indexer's database, in The Graph's query dialect.
//!
//! One object type per catalog table ([`openledger_indexer::catalog`]), built at start with
//! async-graphql's dynamic schema, so the API and the database are described once:
//!
//! - `entity(id)` and `entities(first, skip, orderBy, orderDirection, where)` with The Graph's
//!   filters (`field`, `_not`, `_gt`, `_gte`, `_lt`, `_lte`, `_in`, `_not_in`, nested `child_`,
//!   `and`, `or`); `first` defaults to 100 and is capped at 1,000, `skip` at 5,000.
//! - `entitiesConnection(first, after, …)`: Relay cursor connections with `totalCount`.
//! - Relations as fields (a charge's `model`) and their reverse as lists (a model's
//!   `chargeList`); time-bucketed aggregates are the `buckets` entities (hour, day, week).
//! - `_meta { block { number hash timestamp } }`.
//! - uint256 amounts as the `BigInt` scalar and hashes and addresses as `Bytes`, both strings.
//! - Depth and complexity limits, and a bound on the rows a query's lists may return
//!   ([`cost`]); the SDL is committed (`graphql/schema.graphql`) and a test
//!   fails when the schema changes without it.
//!
//! Not for: writing anything (the indexer is the only writer) or HTTP concerns beyond the
//! [`router`].

pub mod cost;
pub mod query;

use std::sync::{Arc, Mutex};

use std::collections::HashMap;

use async_graphql::{
    Value,
    dataloader::{DataLoader, Loader},
    dynamic::{
        Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext,
        Scalar, Schema, SchemaError, Subscription, SubscriptionField, SubscriptionFieldFuture,
        TypeRef,
    },
};
use futures_util::StreamExt;
use openledger_indexer::{
    catalog::{self, Kind, Table},
    db::{Bind, Database},
    value::{Row, Value as Cell},
};
use serde_json::Value as Json;
use tokio::sync::watch;

use query::{Refused, Where, column_of, field_name, page, scalar_of};

/// Deepest query accepted.
pub const MAX_DEPTH: usize = 10;
/// Highest complexity accepted (each field counts 1).
pub const MAX_COMPLEXITY: usize = 2_000;

/// Database connections the server reads through.
pub const READERS: usize = 4;

/// The database the API reads: a few connections (SQLite readers in WAL mode do not block
/// each other or the indexer), queries on the blocking pool.
#[derive(Clone)]
pub struct Reader {
    dbs: Arc<Vec<Mutex<Database>>>,
    next: Arc<std::sync::atomic::AtomicUsize>,
    /// Statements run so far (the DataLoader test counts them).
    statements: Arc<std::sync::atomic::AtomicU64>,
    dialect: openledger_indexer::db::Dialect,
}

fn join_error(e: tokio::task::JoinError) -> async_graphql::Error {
    async_graphql::Error::new(e.to_string())
}

fn db_error(e: openledger_indexer::Error) -> async_graphql::Error {
    async_graphql::Error::new(e.to_string())
}

impl Reader {
    /// Reads through `db` alone.
    pub fn new(db: Database) -> Self {
        Self::pool(vec![db])
    }

    /// Reads through these connections (at least one).
    pub fn pool(dbs: Vec<Database>) -> Self {
        let dialect = dbs[0].dialect();
        Self {
            dbs: Arc::new(dbs.into_iter().map(Mutex::new).collect()),
            next: Default::default(),
            statements: Default::default(),
            dialect,
        }
    }

    /// Statements this reader has run.
    pub fn statements(&self) -> u64 {
        self.statements.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` on a free connection (or waits for the next one in turn).
    fn with<T>(&self, f: impl FnOnce(&mut Database) -> T) -> T {
        self.statements
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = self.dbs.len();
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for i in 0..n {
            if let Ok(mut db) = self.dbs[(start + i) % n].try_lock() {
                return f(&mut db);
            }
        }
        let mut db = self.dbs[start % n]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f(&mut db)
    }

    async fn rows(
        &self,
        table: &'static Table,
        sql: String,
        binds: Vec<Bind>,
    ) -> async_graphql::Result<Vec<Row>> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            me.with(|db| {
                let rows = db.sql().query_json(&sql, binds)?;
                rows.iter()
                    .map(|j| Row::from_json(table, j))
                    .collect::<openledger_indexer::Result<Vec<_>>>()
            })
        })
        .await
        .map_err(join_error)?
        .map_err(db_error)
    }

    /// The rows of `table` with these ids (those that exist), in one statement.
    async fn by_ids(
        &self,
        table: &'static Table,
        ids: &[String],
    ) -> async_graphql::Result<Vec<Row>> {
        let sql = format!(
            "SELECT {} AS j FROM {} t WHERE t.id IN ({})",
            self.dialect.json_row(table, "t"),
            table.name,
            self.dialect.placeholders(1, ids.len())
        );
        let binds = ids.iter().map(|id| Bind::Text(Some(id.clone()))).collect();
        self.rows(table, sql, binds).await
    }

    async fn json(&self, sql: String) -> async_graphql::Result<Vec<Json>> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.with(|db| db.sql().query_json(&sql, vec![])))
            .await
            .map_err(join_error)?
            .map_err(db_error)
    }

    async fn count(&self, sql: String, binds: Vec<Bind>) -> async_graphql::Result<i64> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.with(|db| db.sql().query_count(&sql, binds)))
            .await
            .map_err(join_error)?
            .map_err(db_error)
    }

    fn dialect(&self) -> openledger_indexer::db::Dialect {
        self.dialect
    }
}

/// Loads the rows a page's relation fields name, one query per table for the whole page
/// (no N+1).
struct RowLoader {
    reader: Reader,
}

/// (table, row id); owned, as async keys must be.
type RowKey = (String, String);

impl Loader<RowKey> for RowLoader {
    type Value = Row;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, keys: &[RowKey]) -> Result<HashMap<RowKey, Row>, Self::Error> {
        let mut by_table: HashMap<&str, Vec<String>> = HashMap::new();
        for (t, id) in keys {
            by_table.entry(t).or_default().push(id.clone());
        }
        let mut out = HashMap::new();
        for (name, ids) in by_table {
            let table = catalog::table(name).expect("catalog table");
            for row in self.reader.by_ids(table, &ids).await.map_err(Arc::new)? {
                out.insert((name.to_owned(), row.id().to_owned()), row);
            }
        }
        Ok(out)
    }
}

/// Loads a page's children lists given without arguments (the first 100 by id, as
/// [`list`] would), one query per child table for the whole page.
struct ChildLoader {
    reader: Reader,
}

/// (child table, its column naming the parent, the parent's id); owned, as async keys must be.
type ChildKey = (String, String, String);

impl Loader<ChildKey> for ChildLoader {
    type Value = Vec<Row>;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, keys: &[ChildKey]) -> Result<HashMap<ChildKey, Vec<Row>>, Self::Error> {
        let mut groups: HashMap<(String, String), Vec<String>> = HashMap::new();
        for (t, c, id) in keys {
            groups
                .entry((t.clone(), c.clone()))
                .or_default()
                .push(id.clone());
        }
        let mut out: HashMap<ChildKey, Vec<Row>> = HashMap::new();
        for ((name, column), ids) in groups {
            let table = catalog::table(&name).expect("catalog table");
            let column = table.column(&column).expect("catalog column").name;
            let dialect = self.reader.dialect();
            let marks = dialect.placeholders(1, ids.len());
            // At most a page per parent, read by the database, not filtered here: a model
            // with a million charges reads 100 of them.
            let sql = format!(
                "SELECT s.j AS j FROM (SELECT {} AS j, ROW_NUMBER() OVER \
                 (PARTITION BY t.{column} ORDER BY t.id) AS n FROM {} t \
                 WHERE t.{column} IN ({marks})) s WHERE s.n <= {} ORDER BY s.n",
                dialect.json_row(table, "t"),
                table.name,
                query::DEFAULT_FIRST
            );
            let binds = ids.iter().cloned().map(|id| Bind::Text(Some(id))).collect();
            for id in ids {
                out.insert((name.clone(), column.to_owned(), id), Vec::new());
            }
            for row in self
                .reader
                .rows(table, sql, binds)
                .await
                .map_err(Arc::new)?
            {
                let Cell::Text(parent) = row.get(column) else {
                    continue;
                };
                if let Some(list) = out.get_mut(&(name.clone(), column.to_owned(), parent.clone()))
                {
                    list.push(row);
                }
            }
        }
        Ok(out)
    }
}

fn refused(r: Refused) -> async_graphql::Error {
    async_graphql::Error::new(r.0)
}

/// A cell as a GraphQL value.
fn cell(v: &Cell) -> Value {
    match v {
        Cell::Null => Value::Null,
        Cell::Int(i) => Value::from(*i),
        Cell::Amount(a) => Value::from(a.to_string()),
        Cell::Text(s) => Value::from(s.clone()),
        Cell::Bool(b) => Value::from(*b),
    }
}

fn type_of(kind: Kind) -> &'static str {
    scalar_of(kind)
}

/// The arguments of a collection (and of a list of children).
fn collection_args(field: Field, table: &Table) -> Field {
    field
        .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("skip", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new(
            "orderBy",
            TypeRef::named(format!("{}_orderBy", table.entity)),
        ))
        .argument(InputValue::new(
            "orderDirection",
            TypeRef::named("OrderDirection"),
        ))
        .argument(InputValue::new(
            "where",
            TypeRef::named(format!("{}_filter", table.entity)),
        ))
}

struct Listing {
    where_sql: String,
    binds: Vec<Bind>,
    order: String,
    first: i64,
    skip: i64,
}

/// The SQL of a collection query from its arguments, with `extra` conditions (a parent's id).
fn listing(
    ctx: &ResolverContext<'_>,
    reader: &Reader,
    table: &'static Table,
    extra: Option<(&str, String)>,
) -> async_graphql::Result<Listing> {
    let (first, skip) = page(
        ctx.args.get("first").map(|v| v.i64()).transpose()?,
        ctx.args.get("skip").map(|v| v.i64()).transpose()?,
    )
    .map_err(refused)?;
    let mut w = Where::new(reader.dialect());
    let mut conds = Vec::new();
    if let Some((column, id)) = extra {
        let mark = w.bind(Bind::Text(Some(id)));
        conds.push(format!("t.{column} = {mark}"));
    }
    if let Some(filter) = ctx.args.get("where") {
        let json = filter.as_value().clone().into_json()?;
        conds.push(w.filter(table, "t", &json, 0).map_err(refused)?);
    }
    let order_column = match ctx.args.get("orderBy") {
        Some(v) => column_of(table, v.enum_name()?)
            .map(|c| c.name)
            .ok_or_else(|| async_graphql::Error::new("unknown orderBy"))?,
        None => "id",
    };
    let descending = match ctx.args.get("orderDirection") {
        Some(v) => v.enum_name()? == "desc",
        None => false,
    };
    let direction = if descending { "DESC" } else { "ASC" };
    let order = if order_column == "id" {
        format!("t.id {direction}")
    } else {
        format!("t.{order_column} {direction}, t.id {direction}")
    };
    Ok(Listing {
        where_sql: if conds.is_empty() {
            "1 = 1".into()
        } else {
            conds.join(" AND ")
        },
        binds: w.binds,
        order,
        first,
        skip,
    })
}

async fn list(
    ctx: ResolverContext<'_>,
    table: &'static Table,
    extra: Option<(&str, String)>,
) -> async_graphql::Result<Option<FieldValue<'static>>> {
    let reader = ctx.data::<Reader>()?.clone();
    let l = listing(&ctx, &reader, table, extra)?;
    let sql = format!(
        "SELECT {} AS j FROM {} t WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
        reader.dialect().json_row(table, "t"),
        table.name,
        l.where_sql,
        l.order,
        l.first,
        l.skip
    );
    let rows = reader.rows(table, sql, l.binds).await?;
    prefetch(&ctx, &reader, table, &rows, ctx.look_ahead()).await?;
    Ok(Some(FieldValue::list(
        rows.into_iter().map(FieldValue::owned_any),
    )))
}

/// The rows a request's lists have already read for their relation fields, by (table, id):
/// `None` where the row does not exist. Per request, made by [`PrefetchScope`].
#[derive(Default)]
struct Prefetched(Mutex<HashMap<(&'static str, String), Option<Row>>>);

impl Prefetched {
    fn get(&self, table: &'static str, id: &str) -> Option<Option<Row>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(table, id.to_owned())).cloned()
    }
}

/// Gives each request its [`Prefetched`].
struct PrefetchScope;

impl async_graphql::extensions::ExtensionFactory for PrefetchScope {
    fn create(&self) -> Arc<dyn async_graphql::extensions::Extension> {
        Arc::new(PrefetchScope)
    }
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for PrefetchScope {
    async fn prepare_request(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        request: async_graphql::Request,
        next: async_graphql::extensions::NextPrepareRequest<'_>,
    ) -> async_graphql::ServerResult<async_graphql::Request> {
        next.run(ctx, request.data(Prefetched::default())).await
    }
}

/// Reads, one statement per relation and level, the rows that the selection `look` over
/// `rows` (of `table`) asks of their relation fields, and of theirs below, into the request's
/// [`Prefetched`]. A page's relations then resolve without the DataLoader's wait per nesting
/// level (its batching window rounds up to tokio's 1 ms timer tick).
async fn prefetch(
    ctx: &ResolverContext<'_>,
    reader: &Reader,
    table: &'static Table,
    rows: &[Row],
    look: async_graphql::Lookahead<'_>,
) -> async_graphql::Result<()> {
    let Ok(store) = ctx.data::<Prefetched>() else {
        return Ok(());
    };
    let mut level = vec![(table, rows.to_vec(), look)];
    while let Some((table, rows, look)) = level.pop() {
        for column in table.columns.iter().filter(|c| c.refers.is_some()) {
            let sub = look.field(&field_name(column.name));
            if !sub.exists() {
                continue;
            }
            let target = catalog::table(column.refers.expect("reference")).expect("catalog");
            let mut ids: Vec<String> = rows
                .iter()
                .filter_map(|r| match r.get(column.name) {
                    Cell::Text(id) if store.get(target.name, id).is_none() => Some(id.clone()),
                    _ => None,
                })
                .collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() {
                continue;
            }
            let found = reader.by_ids(target, &ids).await?;
            {
                let mut map = store.0.lock().unwrap_or_else(|e| e.into_inner());
                for id in ids {
                    map.insert((target.name, id), None);
                }
                for row in &found {
                    map.insert((target.name, row.id().to_owned()), Some(row.clone()));
                }
            }
            level.push((target, found, sub));
        }
    }
    Ok(())
}

async fn one(
    reader: &Reader,
    table: &'static Table,
    id: String,
) -> async_graphql::Result<Option<Row>> {
    let sql = format!(
        "SELECT {} AS j FROM {} t WHERE t.id = {}",
        reader.dialect().json_row(table, "t"),
        table.name,
        reader.dialect().placeholder(1)
    );
    Ok(reader
        .rows(table, sql, vec![Bind::Text(Some(id))])
        .await?
        .into_iter()
        .next())
}

/// A connection page: `first` rows after the cursor (the last row's id), in id order.
async fn connection(
    ctx: ResolverContext<'_>,
    table: &'static Table,
) -> async_graphql::Result<Option<FieldValue<'static>>> {
    let reader = ctx.data::<Reader>()?.clone();
    let (first, _) =
        page(ctx.args.get("first").map(|v| v.i64()).transpose()?, None).map_err(refused)?;
    let mut w = Where::new(reader.dialect());
    let mut conds = vec!["1 = 1".to_owned()];
    if let Some(filter) = ctx.args.get("where") {
        let json = filter.as_value().clone().into_json()?;
        conds.push(w.filter(table, "t", &json, 0).map_err(refused)?);
    }
    // Counted only when asked for; without a filter the statement has no WHERE at all, which
    // SQLite answers from its smallest index instead of visiting every row.
    let count = ctx.look_ahead().field("totalCount").exists().then(|| {
        let sql = if conds.len() == 1 {
            format!("SELECT COUNT(*) AS n FROM {}", table.name)
        } else {
            format!(
                "SELECT COUNT(*) AS n FROM {} t WHERE {}",
                table.name,
                conds.join(" AND ")
            )
        };
        (sql, w.binds.clone())
    });
    if let Some(after) = ctx.args.get("after") {
        let mark = w.bind(Bind::Text(Some(after.string()?.to_owned())));
        conds.push(format!("t.id > {mark}"));
    }
    let sql = format!(
        "SELECT {} AS j FROM {} t WHERE {} ORDER BY t.id LIMIT {}",
        reader.dialect().json_row(table, "t"),
        table.name,
        conds.join(" AND "),
        first + 1
    );
    let mut rows = reader.rows(table, sql, w.binds).await?;
    prefetch(
        &ctx,
        &reader,
        table,
        &rows,
        ctx.look_ahead().field("edges").field("node"),
    )
    .await?;
    let total = match count {
        Some((sql, binds)) => Some(reader.count(sql, binds).await?),
        None => None,
    };
    let has_next = rows.len() as i64 > first;
    rows.truncate(first as usize);
    Ok(Some(FieldValue::owned_any(Page {
        rows,
        has_next,
        total,
    })))
}

struct Page {
    rows: Vec<Row>,
    has_next: bool,
    /// The matching rows, when `totalCount` was asked for.
    total: Option<i64>,
}

/// The head of the index, for `_meta`.
struct Meta {
    number: i64,
    hash: String,
    timestamp: i64,
}

/// The checkpoint the index has committed, watched by the subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    /// The block number (0 before the first commit).
    pub number: i64,
}

async fn read_meta(reader: &Reader) -> async_graphql::Result<Option<Meta>> {
    let object = match reader.dialect() {
        openledger_indexer::db::Dialect::Sqlite => "json_object",
        openledger_indexer::db::Dialect::Postgres => "json_build_object",
    };
    let sql = format!(
        "SELECT CAST({object}('n', block_number, 'h', block_hash, 't', block_timestamp) AS TEXT) AS j FROM checkpoint"
    );
    let rows = reader.json(sql).await?;
    Ok(rows.first().map(|j: &Json| Meta {
        number: j["n"].as_i64().unwrap_or_default(),
        hash: j["h"].as_str().unwrap_or_default().to_owned(),
        timestamp: j["t"].as_i64().unwrap_or_default(),
    }))
}

/// Watches the database's checkpoint (every `every`), so subscriptions push after each
/// committed block; the indexer may be another process.
pub fn watch_head(reader: Reader, every: std::time::Duration) -> watch::Receiver<Head> {
    let (tx, rx) = watch::channel(Head::default());
    tokio::spawn(async move {
        loop {
            if let Ok(Some(m)) = read_meta(&reader).await {
                tx.send_if_modified(|h| {
                    let changed = h.number != m.number;
                    h.number = m.number;
                    changed
                });
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    });
    rx
}

/// The append-only tables with a live feed: `<collection>Added(where:)` pushes the rows of each
/// newly committed block range. (Receipts and attributions arrive with their batch's
/// verification, not with a block: follow `batchesAdded`, or `rewardsAdded(where: { kind_in:
/// ["contribution", "datanet"] })` for attribution payouts.)
pub const LIVE: &[&str] = &[
    "batches",
    "charges",
    "rewards",
    "claims",
    "transfers",
    "events",
];

fn live_field(table: &'static Table) -> SubscriptionField {
    SubscriptionField::new(
        format!("{}Added", table.collection),
        TypeRef::named_nn_list_nn(table.entity),
        move |ctx| {
            SubscriptionFieldFuture::new(async move {
                let reader = ctx.data::<Reader>()?.clone();
                let mut head = ctx.data::<watch::Receiver<Head>>()?.clone();
                let filter = match ctx.args.get("where") {
                    Some(f) => Some(f.as_value().clone().into_json()?),
                    None => None,
                };
                let mut last = head.borrow_and_update().number;
                Ok(async_stream(move |tx| async move {
                    while head.changed().await.is_ok() {
                        let now = head.borrow_and_update().number;
                        if now == last {
                            continue;
                        }
                        let mut w = Where::new(reader.dialect());
                        let lo = w.bind(Bind::Int(Some(last.min(now))));
                        let hi = w.bind(Bind::Int(Some(now)));
                        let mut cond = format!("t.block_number > {lo} AND t.block_number <= {hi}");
                        if let Some(f) = &filter {
                            match w.filter(table, "t", f, 0) {
                                Ok(c) => cond = format!("{cond} AND {c}"),
                                Err(e) => {
                                    let _ = tx.send(Err(refused(e))).await;
                                    return;
                                }
                            }
                        }
                        last = now;
                        let sql = format!(
                            "SELECT {} AS j FROM {} t WHERE {cond} ORDER BY t.block_number, t.log_index",
                            reader.dialect().json_row(table, "t"),
                            table.name
                        );
                        let item = reader.rows(table, sql, w.binds).await.map(|rows| {
                            FieldValue::list(rows.into_iter().map(FieldValue::owned_any))
                        });
                        if tx.send(item).await.is_err() {
                            return;
                        }
                    }
                })
                .map(shorten))
            })
        },
    )
    .argument(InputValue::new(
        "where",
        TypeRef::named(format!("{}_filter", table.entity)),
    ))
}

/// A `'static` item as one of the resolver's lifetime (FieldValue is covariant).
fn shorten<'a>(
    item: async_graphql::Result<FieldValue<'static>>,
) -> async_graphql::Result<FieldValue<'a>> {
    item
}

/// A stream fed by `f` through a channel.
fn async_stream<F, Fut>(
    f: F,
) -> impl futures_util::Stream<Item = async_graphql::Result<FieldValue<'static>>> + Send
where
    F: FnOnce(tokio::sync::mpsc::Sender<async_graphql::Result<FieldValue<'static>>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Builds the schema over `reader`; subscriptions follow `head` (see [`watch_head`]).
pub fn schema(reader: Reader, head: watch::Receiver<Head>) -> Result<Schema, SchemaError> {
    let mut query = Object::new("Query");
    let mut subscription = Subscription::new("Subscription");
    let mut builder = Schema::build("Query", None, Some("Subscription"));
    builder = builder
        .register(Scalar::new("BigInt").description("A uint256, as a decimal string."))
        .register(
            Scalar::new("Bytes").description("An address or hash, as 0x-prefixed lowercase hex."),
        )
        .register(Enum::new("OrderDirection").item("asc").item("desc"))
        .register(
            Object::new("PageInfo")
                .field(Field::new(
                    "hasNextPage",
                    TypeRef::named_nn(TypeRef::BOOLEAN),
                    |ctx| {
                        FieldFuture::new(async move {
                            let p = ctx.parent_value.try_downcast_ref::<Page>()?;
                            Ok(Some(Value::from(p.has_next)))
                        })
                    },
                ))
                .field(Field::new(
                    "endCursor",
                    TypeRef::named(TypeRef::STRING),
                    |ctx| {
                        FieldFuture::new(async move {
                            let p = ctx.parent_value.try_downcast_ref::<Page>()?;
                            Ok(p.rows.last().map(|r| Value::from(r.id().to_owned())))
                        })
                    },
                )),
        );
    for table in catalog::TABLES {
        let mut object = Object::new(table.entity);
        for column in table.all_columns() {
            let name = field_name(column.name);
            let col = column.name;
            if let Some(target) = column.refers {
                let target = catalog::table(target).expect("reference");
                let ty = if column.nullable {
                    TypeRef::named(target.entity)
                } else {
                    TypeRef::named_nn(target.entity)
                };
                object = object.field(Field::new(name, ty, move |ctx| {
                    FieldFuture::new(async move {
                        let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                        let Cell::Text(id) = row.get(col) else {
                            return Ok(None);
                        };
                        if let Ok(prefetched) = ctx.data::<Prefetched>()
                            && let Some(row) = prefetched.get(target.name, id)
                        {
                            return Ok(row.map(FieldValue::owned_any));
                        }
                        let loader = ctx.data::<DataLoader<RowLoader>>()?;
                        Ok(loader
                            .load_one((target.name.to_owned(), id.clone()))
                            .await
                            .map_err(|e| (*e).clone())?
                            .map(FieldValue::owned_any))
                    })
                }));
                continue;
            }
            let scalar = if column.name == "id" {
                TypeRef::ID
            } else {
                type_of(column.kind)
            };
            let ty = if column.nullable {
                TypeRef::named(scalar)
            } else {
                TypeRef::named_nn(scalar)
            };
            object = object.field(Field::new(name, ty, move |ctx| {
                FieldFuture::new(async move {
                    let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                    Ok(Some(cell(row.get(col))))
                })
            }));
        }
        for kids in table.children {
            let child = catalog::table(kids.table).expect("child");
            let column = kids.column;
            let field = Field::new(
                kids.field,
                TypeRef::named_nn_list_nn(child.entity),
                move |ctx| {
                    FieldFuture::new(async move {
                        let id = ctx.parent_value.try_downcast_ref::<Row>()?.id().to_owned();
                        if ctx.args.iter().next().is_none() {
                            let loader = ctx.data::<DataLoader<ChildLoader>>()?;
                            let key: ChildKey = (child.name.to_owned(), column.to_owned(), id);
                            let rows = loader
                                .load_one(key)
                                .await
                                .map_err(|e| (*e).clone())?
                                .unwrap_or_default();
                            return Ok(Some(FieldValue::list(
                                rows.into_iter().map(FieldValue::owned_any),
                            )));
                        }
                        list(ctx, child, Some((column, id))).await
                    })
                },
            );
            object = object.field(collection_args(field, child));
        }
        builder = builder.register(object);

        // Filters and ordering.
        let mut filter = InputObject::new(format!("{}_filter", table.entity));
        let mut order = Enum::new(format!("{}_orderBy", table.entity));
        for column in table.all_columns() {
            let name = field_name(column.name);
            order = order.item(name.clone());
            let scalar = if column.refers.is_some() {
                TypeRef::STRING
            } else {
                type_of(column.kind)
            };
            filter = filter.field(InputValue::new(name.clone(), TypeRef::named(scalar)));
            for (suffix, _) in query::ops_of(column.kind) {
                let ty = if suffix.ends_with("in") {
                    TypeRef::named_nn_list(scalar)
                } else {
                    TypeRef::named(scalar)
                };
                filter = filter.field(InputValue::new(format!("{name}{suffix}"), ty));
            }
            if let Some(target) = column.refers {
                let target = catalog::table(target).expect("reference");
                filter = filter.field(InputValue::new(
                    format!("{name}_"),
                    TypeRef::named(format!("{}_filter", target.entity)),
                ));
            }
        }
        let me = format!("{}_filter", table.entity);
        filter = filter
            .field(InputValue::new("and", TypeRef::named_nn_list(me.clone())))
            .field(InputValue::new("or", TypeRef::named_nn_list(me)));
        builder = builder.register(filter).register(order);

        // Connection types.
        let edge = format!("{}Edge", table.entity);
        let conn = format!("{}Connection", table.entity);
        builder = builder
            .register(
                Object::new(edge.clone())
                    .field(Field::new(
                        "cursor",
                        TypeRef::named_nn(TypeRef::STRING),
                        |ctx| {
                            FieldFuture::new(async move {
                                let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                                Ok(Some(Value::from(row.id().to_owned())))
                            })
                        },
                    ))
                    .field(Field::new("node", TypeRef::named_nn(table.entity), |ctx| {
                        FieldFuture::new(async move {
                            let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                            Ok(Some(FieldValue::owned_any(row.clone())))
                        })
                    })),
            )
            .register(
                Object::new(conn.clone())
                    .field(Field::new(
                        "totalCount",
                        TypeRef::named_nn(TypeRef::INT),
                        |ctx| {
                            FieldFuture::new(async move {
                                let p = ctx.parent_value.try_downcast_ref::<Page>()?;
                                Ok(Some(Value::from(p.total)))
                            })
                        },
                    ))
                    .field(Field::new(
                        "edges",
                        TypeRef::named_nn_list_nn(edge),
                        |ctx| {
                            FieldFuture::new(async move {
                                let p = ctx.parent_value.try_downcast_ref::<Page>()?;
                                Ok(Some(FieldValue::list(
                                    p.rows.iter().cloned().map(FieldValue::owned_any),
                                )))
                            })
                        },
                    ))
                    .field(Field::new(
                        "pageInfo",
                        TypeRef::named_nn("PageInfo"),
                        |ctx| {
                            FieldFuture::new(async move {
                                let p = ctx.parent_value.try_downcast_ref::<Page>()?;
                                Ok(Some(FieldValue::borrowed_any(p)))
                            })
                        },
                    )),
            );

        if LIVE.contains(&table.name) {
            subscription = subscription.field(live_field(table));
        }

        // Query fields.
        let singular = {
            let mut s = table.entity.to_owned();
            s[..1].make_ascii_lowercase();
            s
        };
        query = query.field(
            Field::new(singular, TypeRef::named(table.entity), move |ctx| {
                FieldFuture::new(async move {
                    let id = ctx.args.try_get("id")?.string()?.to_owned();
                    let reader = ctx.data::<Reader>()?.clone();
                    Ok(one(&reader, table, id).await?.map(FieldValue::owned_any))
                })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        );
        query = query.field(collection_args(
            Field::new(
                table.collection,
                TypeRef::named_nn_list_nn(table.entity),
                move |ctx| FieldFuture::new(async move { list(ctx, table, None).await }),
            ),
            table,
        ));
        query = query.field(
            Field::new(
                format!("{}Connection", table.collection),
                TypeRef::named_nn(conn),
                move |ctx| FieldFuture::new(async move { connection(ctx, table).await }),
            )
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new(
                "where",
                TypeRef::named(format!("{}_filter", table.entity)),
            )),
        );
    }

    // _meta
    builder = builder
        .register(
            Object::new("_Block_")
                .field(meta_field("number", TypeRef::INT, |m| {
                    Value::from(m.number)
                }))
                .field(meta_field("hash", "Bytes", |m| Value::from(m.hash.clone())))
                .field(meta_field("timestamp", TypeRef::INT, |m| {
                    Value::from(m.timestamp)
                })),
        )
        .register(Object::new("_Meta_").field(Field::new(
            "block",
            TypeRef::named_nn("_Block_"),
            |ctx| {
                FieldFuture::new(async move {
                    let m = ctx.parent_value.try_downcast_ref::<Meta>()?;
                    Ok(Some(FieldValue::borrowed_any(m)))
                })
            },
        )));
    query = query.field(Field::new("_meta", TypeRef::named("_Meta_"), |ctx| {
        FieldFuture::new(async move {
            let reader = ctx.data::<Reader>()?.clone();
            Ok(read_meta(&reader).await?.map(FieldValue::owned_any))
        })
    }));
    subscription = subscription.field(SubscriptionField::new(
        "head",
        TypeRef::named_nn("_Block_"),
        |ctx| {
            SubscriptionFieldFuture::new(async move {
                let reader = ctx.data::<Reader>()?.clone();
                let head = ctx.data::<watch::Receiver<Head>>()?.clone();
                Ok(
                    tokio_stream::wrappers::WatchStream::from_changes(head).then(move |_| {
                        let reader = reader.clone();
                        async move {
                            let m = read_meta(&reader).await?.unwrap_or(Meta {
                                number: 0,
                                hash: String::new(),
                                timestamp: 0,
                            });
                            Ok::<_, async_graphql::Error>(FieldValue::owned_any(m))
                        }
                    }),
                )
            })
        },
    ));

    let loader = DataLoader::new(
        RowLoader {
            reader: reader.clone(),
        },
        tokio::spawn,
    );
    let children = DataLoader::new(
        ChildLoader {
            reader: reader.clone(),
        },
        tokio::spawn,
    );
    // Every list field, for the row bound: collections, their connections, children lists and
    // the per-block subscription lists.
    let mut lists = Vec::new();
    for table in catalog::TABLES {
        lists.push(table.collection.to_owned());
        lists.push(format!("{}Connection", table.collection));
        lists.push(format!("{}Added", table.collection));
        lists.extend(table.children.iter().map(|k| k.field.to_owned()));
    }
    builder
        .register(query)
        .register(subscription)
        .extension(cost::RowLimit {
            lists: Arc::new(lists),
        })
        .extension(PrefetchScope)
        .data(children)
        .data(reader)
        .data(head)
        .data(loader)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

fn meta_field(name: &'static str, ty: &'static str, f: fn(&Meta) -> Value) -> Field {
    Field::new(name, TypeRef::named_nn(ty), move |ctx| {
        FieldFuture::new(async move {
            let m = ctx.parent_value.try_downcast_ref::<Meta>()?;
            Ok(Some(f(m)))
        })
    })
}

/// GraphiQL at `/`, queries at `/graphql` (POST and GET), subscriptions over
/// graphql-transport-ws (and the older graphql-ws) at `/graphql/ws`.
pub fn router(schema: Schema) -> axum::Router {
    use axum::{response::Html, routing::get};
    let graphiql = async_graphql::http::GraphiQLSource::build()
        .endpoint("/graphql")
        .subscription_endpoint("/graphql/ws")
        .finish();
    axum::Router::new()
        .route("/", get(move || async move { Html(graphiql.clone()) }))
        .route_service("/graphql", async_graphql_axum::GraphQL::new(schema.clone()))
        .route_service(
            "/graphql/ws",
            async_graphql_axum::GraphQLSubscription::new(schema),
        )
}

/// Serves the API for the database at `database` on `listen` until `stop` resolves.
pub async fn serve(
    database: &str,
    listen: std::net::SocketAddr,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<std::net::SocketAddr> {
    let dbs = (0..READERS)
        .map(|_| Database::open(database))
        .collect::<openledger_indexer::Result<Vec<_>>>()
        .map_err(std::io::Error::other)?;
    let reader = Reader::pool(dbs);
    let head = watch_head(reader.clone(), std::time::Duration::from_millis(200));
    let schema = schema(reader, head).map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(schema))
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!(target: "graphql", error = %e, "server stopped");
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed SDL is the schema; run with OPENLEDGER_WRITE_SDL=1 to rewrite it.
    #[tokio::test]
    async fn the_committed_sdl_is_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("sdl.db").display().to_string()).unwrap();
        let (_tx, head) = watch::channel(Head::default());
        let sdl = schema(Reader::new(db), head).unwrap().sdl();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        if std::env::var_os("OPENLEDGER_WRITE_SDL").is_some() {
            std::fs::write(path, &sdl).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == sdl,
            "graphql/schema.graphql is not the schema: rerun with OPENLEDGER_WRITE_SDL=1 and commit it"
        );
    }

    /// A page's relation fields and children lists are read with one statement per table
    /// for the whole page, however many rows it has (no N+1).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_page_reads_its_relations_with_one_statement_per_table() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::open(&dir.path().join("page.db").display().to_string()).unwrap();
        let t = |n| catalog::table(n).unwrap();
        db.transaction(|sql| {
            let models: Vec<Row> = (1..=5)
                .map(|m| Row::new(t("models"), m.to_string()))
                .collect();
            sql.write(&models, true)?;
            let mut receipts = Vec::new();
            let mut attributions = Vec::new();
            for i in 0..60i64 {
                let id = format!("{i:#066x}");
                let mut r = Row::new(t("receipts"), id.clone());
                r.set("payer", format!("0x{:040x}", i % 7))
                    .set("model", ((i % 5) + 1).to_string())
                    .set("block_number", i);
                receipts.push(r);
                for k in 0..2 {
                    let mut a = Row::new(t("attributions"), format!("{id}-{k}"));
                    a.set("receipt", id.clone()).set("block_number", i);
                    attributions.push(a);
                }
            }
            let accounts: Vec<Row> = (0..7)
                .map(|u| Row::new(t("accounts"), format!("0x{u:040x}")))
                .collect();
            sql.write(&accounts, true)?;
            sql.write(&receipts, false)?;
            sql.write(&attributions, false)
        })
        .unwrap();
        let reader = Reader::new(db);
        let (_tx, head) = watch::channel(Head::default());
        let schema = schema(reader.clone(), head).unwrap();
        let run = |query: &'static str| {
            let (schema, reader) = (schema.clone(), reader.clone());
            async move {
                let before = reader.statements();
                let response = schema.execute(query).await;
                assert!(response.errors.is_empty(), "{:?}", response.errors);
                (
                    response.data.into_json().unwrap(),
                    reader.statements() - before,
                )
            }
        };

        // Relations: the list reads them itself, one statement each, whatever the timing.
        let (json, statements) =
            run("{ receipts(first: 50) { id payer { id } model { id } } }").await;
        let page = json["receipts"].as_array().unwrap();
        assert_eq!(page.len(), 50);
        assert!(
            page.iter()
                .all(|r| r["payer"]["id"].is_string() && r["model"]["id"].is_string())
        );
        assert_eq!(statements, 3, "the page, its payers, its models");

        // Children lists and their relations go through the DataLoader, whose batches are
        // cut by time (a busy machine may split them), but one query per row (101 here) is
        // what they prevent.
        let (json, statements) =
            run("{ receipts(first: 50) { id attributions { id receipt { id } } } }").await;
        let page = json["receipts"].as_array().unwrap();
        assert!(page.iter().all(|r| {
            let list = r["attributions"].as_array().unwrap();
            list.len() == 2 && list.iter().all(|a| a["receipt"]["id"] == r["id"])
        }));
        assert!(statements <= 6, "{statements} statements for one page");
    }
}
