//! One database, SQLite or PostgreSQL, behind one diesel connection type.
//!
//! SQLite is the default: a file, zero setup, WAL so that readers (the GraphQL server) never
//! block the one writer. PostgreSQL is chosen by a `postgres://` URL. Both get the same tables
//! from their own migrations (`migrations/sqlite`, `migrations/postgres`), embedded in the
//! binary and applied at open. Catalog rows are read and written with SQL built from
//! [`crate::catalog`] (identifiers from the catalog, every value a bound parameter).

use diesel::{
    Connection, QueryResult, QueryableByName, RunQueryDsl,
    backend::Backend,
    connection::SimpleConnection,
    pg::PgConnection,
    query_builder::{AstPass, BoxedSqlQuery, QueryFragment, QueryId},
    serialize::ToSql,
    sql_types::HasSqlType,
    sql_types::{BigInt, Bool, Nullable, Text},
    sqlite::SqliteConnection,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use serde_json::Value as Json;

use crate::{
    catalog::{Kind, Table},
    error::{Error, Result},
    value::{Amount, Row, Value},
};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

pub use connection::{AnyConnection, MultiBackend};

mod connection {
    //! The derive generates undocumented items (the backend, its bind collector).
    #![allow(missing_docs)]
    use diesel::{pg::PgConnection, sqlite::SqliteConnection};

    /// Either database, one diesel connection type.
    #[derive(diesel::MultiConnection)]
    pub enum AnyConnection {
        /// PostgreSQL.
        Postgresql(PgConnection),
        /// SQLite.
        Sqlite(SqliteConnection),
    }
}

/// Which SQL the connection speaks where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// The `n`th (1-based) bind placeholder.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Self::Sqlite => "?".to_owned(),
            Self::Postgres => format!("${n}"),
        }
    }

    /// `count` placeholders numbered from `first`, comma-separated.
    pub fn placeholders(self, first: usize, count: usize) -> String {
        (first..first + count)
            .map(|n| self.placeholder(n))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// An expression turning the columns of `table` (aliased `alias`) into one JSON text.
    pub fn json_row(self, table: &Table, alias: &str) -> String {
        let pairs = table
            .all_columns()
            .map(|c| format!("'{0}', {alias}.{0}", c.name))
            .collect::<Vec<_>>()
            .join(", ");
        match self {
            Self::Sqlite => format!("json_object({pairs})"),
            Self::Postgres => format!("json_build_object({pairs})::text"),
        }
    }

    /// The most bind parameters one statement may carry (with margin).
    pub fn max_binds(self) -> usize {
        match self {
            Self::Sqlite => 30_000,
            Self::Postgres => 60_000,
        }
    }
}

/// A value bound to a statement, typed for the column it goes to.
#[derive(Debug, Clone)]
pub enum Bind {
    /// BIGINT.
    Int(Option<i64>),
    /// TEXT.
    Text(Option<String>),
    /// BOOLEAN.
    Bool(Option<bool>),
}

impl Bind {
    /// `value` as it is stored in a column of `kind`.
    pub fn of(kind: Kind, value: &Value) -> Self {
        match (kind, value) {
            (Kind::Int, Value::Int(i)) => Self::Int(Some(*i)),
            (Kind::Int, _) => Self::Int(None),
            (Kind::Bool, Value::Bool(b)) => Self::Bool(Some(*b)),
            (Kind::Bool, _) => Self::Bool(None),
            (Kind::Amount, Value::Amount(a)) => Self::Text(Some(Amount::encode(*a))),
            (_, Value::Text(s)) => Self::Text(Some(s.clone())),
            (_, _) => Self::Text(None),
        }
    }
}

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Text)]
    j: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// An open, migrated database.
pub struct Database {
    conn: AnyConnection,
    dialect: Dialect,
    url: String,
}

/// Statements on a borrowed connection: the database itself, or one of its transactions.
pub struct Sql<'c> {
    conn: &'c mut AnyConnection,
    dialect: Dialect,
}

impl Database {
    /// Opens `url` (a `postgres://` URL, or a SQLite file path, `sqlite://` optional) and applies
    /// the pending migrations.
    pub fn open(url: &str) -> Result<Self> {
        let mut db = Self::connect(url)?;
        let migrated = match &mut db.conn {
            AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(drop),
            AnyConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(drop),
        };
        migrated.map_err(|e| Error::Migration {
            message: e.to_string(),
        })?;
        Ok(db)
    }

    /// Connects to `url` without migrating (for administration: creating databases).
    pub fn connect(url: &str) -> Result<Self> {
        let redacted = redact(url);
        let connect = |source| Error::Connect {
            url: redacted.clone(),
            source,
        };
        let (conn, dialect) = if url.starts_with("postgres://") || url.starts_with("postgresql://")
        {
            let pg = PgConnection::establish(url).map_err(connect)?;
            (AnyConnection::Postgresql(pg), Dialect::Postgres)
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            if let Some(dir) = std::path::Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                let _ = std::fs::create_dir_all(dir);
            }
            let mut sqlite = SqliteConnection::establish(path).map_err(connect)?;
            // WAL: readers never block the writer. synchronous=NORMAL in WAL survives a killed
            // process (a power cut may lose the last commits, and the checkpoint with them:
            // the index resumes from an earlier block, never with a gap).
            // Pages are read through a memory map (up to 1 GiB of the file) rather than copied
            // by a read call each, and a commit's pages stay in a 64 MiB cache instead of
            // spilling to the WAL (and being written again) before it ends.
            sqlite.batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = OFF; \
                 PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -65536;",
            )?;
            (AnyConnection::Sqlite(sqlite), Dialect::Sqlite)
        };
        Ok(Self {
            conn,
            dialect,
            url: url.to_owned(),
        })
    }

    /// A second connection to the same database (already migrated).
    pub fn reconnect(&self) -> Result<Self> {
        Self::connect(&self.url)
    }

    /// Statements outside a transaction (each its own).
    pub fn sql(&mut self) -> Sql<'_> {
        Sql {
            conn: &mut self.conn,
            dialect: self.dialect,
        }
    }

    /// Runs `f` in one transaction: all of it or none of it.
    pub fn transaction<T>(&mut self, f: impl FnOnce(&mut Sql<'_>) -> Result<T>) -> Result<T> {
        let dialect = self.dialect;
        self.conn
            .transaction::<T, Error, _>(|conn| f(&mut Sql { conn, dialect }))
    }

    /// Which SQL it speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }
}

impl Sql<'_> {
    /// Which SQL it speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The diesel connection, for the query builder.
    pub fn conn(&mut self) -> &mut AnyConnection {
        self.conn
    }

    /// Runs `sql` with `binds`; returns the rows affected.
    pub fn execute(&mut self, sql: &str, binds: Vec<Bind>) -> Result<usize> {
        Ok(match &mut *self.conn {
            AnyConnection::Sqlite(c) => bound(sql, binds).execute(c)?,
            AnyConnection::Postgresql(c) => bound(sql, binds).execute(c)?,
        })
    }

    /// Runs a query whose one column `j` is a JSON row; returns the rows.
    pub fn query_json(&mut self, sql: &str, binds: Vec<Bind>) -> Result<Vec<Json>> {
        let rows: Vec<JsonRow> = match &mut *self.conn {
            AnyConnection::Sqlite(c) => bound(sql, binds).load(c)?,
            AnyConnection::Postgresql(c) => bound(sql, binds).load(c)?,
        };
        rows.into_iter()
            .map(|r| {
                serde_json::from_str(&r.j).map_err(|e| Error::Corrupt {
                    what: format!("row JSON: {e}"),
                })
            })
            .collect()
    }

    /// Runs a query whose one column `n` is a BIGINT.
    pub fn query_count(&mut self, sql: &str, binds: Vec<Bind>) -> Result<i64> {
        let rows: Vec<Count> = match &mut *self.conn {
            AnyConnection::Sqlite(c) => bound(sql, binds).load(c)?,
            AnyConnection::Postgresql(c) => bound(sql, binds).load(c)?,
        };
        Ok(rows.first().map_or(0, |r| r.n))
    }

    /// Runs statements without binds (`;`-separated).
    pub fn batch_execute(&mut self, sql: &str) -> Result<()> {
        Ok(self.conn.batch_execute(sql)?)
    }

    /// The row of `table` with this `id`.
    pub fn load(&mut self, table: &'static Table, id: &str) -> Result<Option<Row>> {
        let sql = format!(
            "SELECT {} AS j FROM {} t WHERE t.id = {}",
            self.dialect.json_row(table, "t"),
            table.name,
            self.dialect.placeholder(1)
        );
        let rows = self.query_json(&sql, vec![Bind::Text(Some(id.to_owned()))])?;
        rows.first().map(|j| Row::from_json(table, j)).transpose()
    }

    /// Every row of `table`, by `id`, as [`Row::to_json`] writes them: the same JSON from either
    /// database (for dumps and comparisons).
    pub fn dump(&mut self, table: &'static Table) -> Result<Vec<Json>> {
        let sql = format!(
            "SELECT {} AS j FROM {} t ORDER BY t.id",
            self.dialect.json_row(table, "t"),
            table.name
        );
        self.query_json(&sql, vec![])?
            .iter()
            .map(|j| Row::from_json(table, j).map(|r| r.to_json()))
            .collect()
    }

    /// Writes `rows` (all of one table): inserted, or replacing the row with the same `id`
    /// when `replace`, else left alone where one exists (re-delivered events). Returns the
    /// rows the database reports written.
    ///
    /// Rows go in multi-row statements of [`ROWS_PER_INSERT`] rows, the rest in halving
    /// sizes, so each table has a handful of statement shapes and diesel's statement cache
    /// prepares each once per connection.
    pub fn write(&mut self, rows: &[Row], replace: bool) -> Result<usize> {
        let Some(first) = rows.first() else {
            return Ok(0);
        };
        let width = first.table.columns.len() + 1;
        let mut size = ROWS_PER_INSERT.min((self.dialect.max_binds() / width).max(1));
        let mut written = 0;
        let mut rest = rows;
        while !rest.is_empty() {
            while size > rest.len() {
                size /= 2;
            }
            let (chunk, tail) = rest.split_at(size);
            let insert = Insert::new(chunk, replace);
            written += match &mut *self.conn {
                AnyConnection::Sqlite(c) => insert.execute(c)?,
                AnyConnection::Postgresql(c) => insert.execute(c)?,
            };
            rest = tail;
        }
        Ok(written)
    }

    /// Deletes the row of `table` with this `id`.
    pub fn delete(&mut self, table: &'static Table, id: &str) -> Result<()> {
        let sql = format!(
            "DELETE FROM {} WHERE id = {}",
            table.name,
            self.dialect.placeholder(1)
        );
        self.execute(&sql, vec![Bind::Text(Some(id.to_owned()))])?;
        Ok(())
    }
}

/// Rows per multi-row `INSERT` (a power of two: the remainder goes in halving sizes).
pub const ROWS_PER_INSERT: usize = 256;

/// A multi-row `INSERT` of catalog rows, its values bound where they lie (amounts encoded
/// once). Unlike `sql_query`, it is safe for diesel to cache prepared: its SQL depends only on
/// the table, the row count and `replace`.
struct Insert<'r> {
    rows: &'r [Row],
    replace: bool,
    /// The rows' amounts as stored, in walk order.
    amounts: Vec<String>,
}

/// Typed NULLs to bind.
static NULL_INT: Option<i64> = None;
static NULL_TEXT: Option<String> = None;
static NULL_BOOL: Option<bool> = None;

impl<'r> Insert<'r> {
    fn new(rows: &'r [Row], replace: bool) -> Self {
        let amounts = rows
            .iter()
            .flat_map(|r| r.values.iter())
            .filter_map(|v| match v {
                Value::Amount(a) => Some(Amount::encode(*a)),
                _ => None,
            })
            .collect();
        Self {
            rows,
            replace,
            amounts,
        }
    }
}

impl QueryId for Insert<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

// Written for each backend rather than the multi-connection's own: its bind collector boxes
// every value and copies it into the backend's, a tenth of a backfill's time.
impl<DB> QueryFragment<DB> for Insert<'_>
where
    DB: Backend + HasSqlType<BigInt> + HasSqlType<Text> + HasSqlType<Bool>,
    i64: ToSql<BigInt, DB>,
    String: ToSql<Text, DB>,
    bool: ToSql<Bool, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let table = self.rows[0].table;
        out.push_sql("INSERT INTO ");
        out.push_sql(table.name);
        out.push_sql(" (");
        for (i, c) in table.all_columns().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_sql(c.name);
        }
        out.push_sql(") VALUES ");
        let mut amounts = self.amounts.iter();
        for (r, row) in self.rows.iter().enumerate() {
            out.push_sql(if r == 0 { "(" } else { ", (" });
            for (i, (c, v)) in table.all_columns().zip(&row.values).enumerate() {
                if i > 0 {
                    out.push_sql(", ");
                }
                match (c.kind, v) {
                    (Kind::Int, Value::Int(x)) => out.push_bind_param::<BigInt, _>(x)?,
                    (Kind::Int, _) => out.push_bind_param::<Nullable<BigInt>, _>(&NULL_INT)?,
                    (Kind::Bool, Value::Bool(b)) => out.push_bind_param::<Bool, _>(b)?,
                    (Kind::Bool, _) => out.push_bind_param::<Nullable<Bool>, _>(&NULL_BOOL)?,
                    (Kind::Amount, Value::Amount(_)) => {
                        let a = amounts.next().expect("encoded in walk order");
                        out.push_bind_param::<Text, _>(a)?
                    }
                    (_, Value::Text(t)) => out.push_bind_param::<Text, _>(t)?,
                    (_, _) => out.push_bind_param::<Nullable<Text>, _>(&NULL_TEXT)?,
                }
            }
            out.push_sql(")");
        }
        if self.replace && !table.columns.is_empty() {
            out.push_sql(" ON CONFLICT (id) DO UPDATE SET ");
            for (i, c) in table.columns.iter().enumerate() {
                if i > 0 {
                    out.push_sql(", ");
                }
                out.push_sql(c.name);
                out.push_sql(" = excluded.");
                out.push_sql(c.name);
            }
        } else {
            out.push_sql(" ON CONFLICT (id) DO NOTHING");
        }
        Ok(())
    }
}

impl<C> RunQueryDsl<C> for Insert<'_> {}

/// `sql` with `binds`, for one backend (the multi-connection's own row and bind types copy
/// every value once more).
fn bound<DB>(
    sql: &str,
    binds: Vec<Bind>,
) -> BoxedSqlQuery<'static, DB, diesel::query_builder::SqlQuery>
where
    DB: Backend + HasSqlType<BigInt> + HasSqlType<Text> + HasSqlType<Bool>,
    Option<i64>: ToSql<Nullable<BigInt>, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
    Option<bool>: ToSql<Nullable<Bool>, DB>,
{
    let mut q = diesel::sql_query(sql.to_owned()).into_boxed::<DB>();
    for b in binds {
        q = match b {
            Bind::Int(v) => q.bind::<Nullable<BigInt>, _>(v),
            Bind::Text(v) => q.bind::<Nullable<Text>, _>(v),
            Bind::Bool(v) => q.bind::<Nullable<Bool>, _>(v),
        };
    }
    q
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
