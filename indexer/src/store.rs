//! The index's writes: blocks committed in order, and reverted to an ancestor on a reorg.
//!
//! - [`Store::commit`] writes the changes of one or more consecutive blocks, the reorg
//!   window's block hashes and the checkpoint in **one transaction**: a process killed at any
//!   point resumes from the last checkpoint with nothing missing and nothing applied twice.
//! - Current-state rows are changed through [`Changes::entity`], which saves the row's prior
//!   image once per block for the blocks inside the reorg window. [`Store::revert_to`] restores
//!   those images in reverse order, deletes the append-only rows above the ancestor and moves
//!   the checkpoint back, again in one transaction: afterwards the database is row for row what
//!   indexing the chain up to the ancestor produces.
//! - A commit is written on its own thread while the follower applies the next blocks: the
//!   rows it touched are in the cache at once, reads of other rows go through a second
//!   connection (they are the same before and after the commit), and every other use of the
//!   database first waits for it. A commit that fails clears the cache and is reported by the
//!   next [`Store::commit`] or [`Store::checkpoint`]; the checkpoint is then the last one
//!   written, so the follower redoes what the failed commit held.
//! - Preconditions: `commit` gets the blocks right after the checkpoint; `revert_to` gets an
//!   ancestor at or above the oldest block of the window (deeper reorgs are refused by the
//!   follower, see [`crate::Error::ReorgTooDeep`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, RunQueryDsl};

use crate::{
    catalog::{self, Table},
    db::{Bind, Database, Sql},
    error::{Error, Result},
    schema::{blocks, checkpoint, meta, undo},
    value::Row,
};

/// A block the index has seen: the reorg window's unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRef {
    /// Its number.
    pub number: u64,
    /// Its hash (`0x…`).
    pub hash: String,
    /// Its parent's hash.
    pub parent_hash: String,
    /// Its timestamp (unix seconds).
    pub timestamp: u64,
}

/// The last block applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its number.
    pub number: u64,
    /// Its hash.
    pub hash: String,
    /// Its timestamp.
    pub timestamp: u64,
}

/// Changes being made by a run of blocks, applied by the next [`Store::commit`].
#[derive(Default)]
pub struct Changes {
    /// Current-state rows touched, as they are now.
    rows: HashMap<(&'static str, String), Row>,
    /// Rows to insert into append-only tables, per table.
    inserts: BTreeMap<&'static str, Vec<Row>>,
    /// Prior images to keep, in order: (block, table, id, prior row).
    undo: Vec<(u64, &'static str, String, Option<Row>)>,
    /// Rows whose prior image this block already saved.
    saved: HashSet<(&'static str, String)>,
    /// The block being applied, and whether it is inside the window (keeps undo).
    block: u64,
    keep_undo: bool,
    /// Blocks to add to the window.
    window: Vec<BlockRef>,
    events: usize,
}

impl Changes {
    /// Starts applying block `number`; `in_window` says whether it is recent enough to be
    /// reorganised (then its changes can be undone).
    pub fn begin_block(&mut self, number: u64, in_window: bool) {
        self.block = number;
        self.keep_undo = in_window;
        self.saved.clear();
    }

    /// Records a block of the window.
    pub fn window_block(&mut self, block: BlockRef) {
        self.window.push(block);
    }

    /// Adds the `events` row of one applied log: the one row that counts as an event (a log
    /// also writes its normalised rows).
    pub fn insert_event(&mut self, row: Row) {
        self.events += 1;
        self.insert(row);
    }

    /// Adds an append-only row (ignored if its `id` is already stored: re-delivery).
    pub fn insert(&mut self, row: Row) {
        self.inserts.entry(row.table.name).or_default().push(row);
    }

    /// Append-only rows of `table` added so far (for receipts of a batch in the same run).
    pub fn inserted(&self, table: &str) -> &[Row] {
        self.inserts.get(table).map_or(&[], Vec::as_slice)
    }

    /// The current-state row of `table` with this `id`, created at its zeros if there is none,
    /// for changing in place.
    pub fn entity(
        &mut self,
        store: &mut Store,
        table: &'static Table,
        id: &str,
    ) -> Result<&mut Row> {
        let key = (table.name, id.to_owned());
        if !self.rows.contains_key(&key) {
            let stored = store.cached(table, id)?;
            if self.keep_undo {
                self.undo
                    .push((self.block, table.name, id.to_owned(), stored.clone()));
                self.saved.insert(key.clone());
            }
            let row = stored.unwrap_or_else(|| Row::new(table, id));
            self.rows.insert(key.clone(), row);
        } else if self.keep_undo && !self.saved.contains(&key) {
            let prior = self.rows[&key].clone();
            // A row created in this run but absent before it: its prior image is "absent"
            // only for the block that created it; later blocks see it as it is.
            self.undo
                .push((self.block, table.name, id.to_owned(), Some(prior)));
            self.saved.insert(key.clone());
        }
        Ok(self.rows.get_mut(&key).expect("present"))
    }

    /// The current-state row if it exists (here or stored), without creating it.
    pub fn peek(
        &mut self,
        store: &mut Store,
        table: &'static Table,
        id: &str,
    ) -> Result<Option<Row>> {
        if let Some(row) = self.rows.get(&(table.name, id.to_owned())) {
            return Ok(Some(row.clone()));
        }
        store.cached(table, id)
    }

    /// Events applied in this run.
    pub fn events(&self) -> usize {
        self.events
    }
}

/// The index's database, with a cache of current-state rows (the store is the only writer).
pub struct Store {
    /// The writing connection; `None` while a commit holds it.
    db: Option<Database>,
    /// Reads of rows the cache lacks, while a commit runs.
    reads: Database,
    /// The commit being written.
    pending: Option<Pending>,
    /// The error of a commit that failed, until reported.
    failed: Option<Error>,
    cache: HashMap<(&'static str, String), Option<Row>>,
    next_undo: i64,
    window: u64,
}

/// A commit running on its own thread; it hands the connection back.
struct Pending {
    to: Checkpoint,
    thread: std::thread::JoinHandle<(Database, Result<()>)>,
}

/// Rows kept in the cache before it is dropped and refilled.
const CACHE_ROWS: usize = 200_000;

impl Store {
    /// Opens the index in `db` for `deployment` (an identity such as `chain 31337 settlement
    /// 0x…`), keeping `window` blocks for reorgs. A database holding another deployment is
    /// refused.
    pub fn open(mut db: Database, deployment: &str, window: u64) -> Result<Self> {
        let found: Option<String> = meta::table
            .filter(meta::key.eq("deployment"))
            .select(meta::value)
            .first(db.sql().conn())
            .optional()?;
        match found {
            Some(found) if found != deployment => {
                return Err(Error::OtherDeployment {
                    expected: deployment.to_owned(),
                    found,
                });
            }
            Some(_) => {}
            None => {
                diesel::insert_into(meta::table)
                    .values((meta::key.eq("deployment"), meta::value.eq(deployment)))
                    .execute(db.sql().conn())?;
            }
        }
        let next_undo = undo::table
            .select(diesel::dsl::max(undo::seq))
            .first::<Option<i64>>(db.sql().conn())?
            .unwrap_or(0)
            + 1;
        Ok(Self {
            reads: db.reconnect()?,
            db: Some(db),
            pending: None,
            failed: None,
            cache: HashMap::new(),
            next_undo,
            window,
        })
    }

    /// Waits for the running commit, if any; keeps its error for the follower.
    fn settle(&mut self) -> &mut Database {
        if let Some(p) = self.pending.take() {
            let (db, result) = p.thread.join().unwrap_or_else(|_| {
                unreachable!("the commit thread returns its errors, it does not panic")
            });
            self.db = Some(db);
            if let Err(e) = result {
                self.cache.clear();
                self.failed = Some(e);
            }
        }
        self.db.as_mut().expect("the connection is back")
    }

    /// The error of a commit that failed since the last call, if any.
    fn failure(&mut self) -> Result<()> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits until every commit is written; the error of one that failed.
    pub fn flush(&mut self) -> Result<()> {
        self.settle();
        self.failure()
    }

    /// Empties every table (for `--resync`).
    pub fn wipe(db: &mut Database) -> Result<()> {
        db.transaction(|sql| {
            for t in catalog::TABLES {
                sql.batch_execute(&format!("DELETE FROM {}", t.name))?;
            }
            sql.batch_execute(
                "DELETE FROM undo; DELETE FROM blocks; DELETE FROM checkpoint; DELETE FROM meta",
            )
        })
    }

    /// The database, for reads and for the receipts verifier's writes (once the running
    /// commit is written).
    pub fn db(&mut self) -> &mut Database {
        self.settle()
    }

    /// The reorg window's size in blocks.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// The last block applied, if any (the running commit's, which is written before any
    /// other use of the database).
    pub fn checkpoint(&mut self) -> Result<Option<Checkpoint>> {
        if let Some(p) = &self.pending
            && !p.thread.is_finished()
        {
            return Ok(Some(p.to.clone()));
        }
        self.settle();
        self.failure()?;
        let db = self.db.as_mut().expect("settled");
        let row: Option<(i64, String, i64)> = checkpoint::table
            .select((
                checkpoint::block_number,
                checkpoint::block_hash,
                checkpoint::block_timestamp,
            ))
            .first(db.sql().conn())
            .optional()?;
        Ok(row.map(|(n, hash, ts)| Checkpoint {
            number: n as u64,
            hash,
            timestamp: ts as u64,
        }))
    }

    /// The window's blocks, oldest first.
    pub fn window_blocks(&mut self) -> Result<Vec<BlockRef>> {
        let db = self.settle();
        let rows: Vec<(i64, String, String, i64)> = blocks::table
            .order(blocks::number.asc())
            .select((
                blocks::number,
                blocks::hash,
                blocks::parent_hash,
                blocks::timestamp,
            ))
            .load(db.sql().conn())?;
        Ok(rows
            .into_iter()
            .map(|(n, hash, parent_hash, ts)| BlockRef {
                number: n as u64,
                hash,
                parent_hash,
                timestamp: ts as u64,
            })
            .collect())
    }

    fn cached(&mut self, table: &'static Table, id: &str) -> Result<Option<Row>> {
        let key = (table.name, id.to_owned());
        if let Some(row) = self.cache.get(&key) {
            return Ok(row.clone());
        }
        let row = match &mut self.db {
            Some(db) => db.sql().load(table, id)?,
            None => self.reads.sql().load(table, id)?,
        };
        self.cache.insert(key, row.clone());
        Ok(row)
    }

    /// Writes `changes` and moves the checkpoint to `to`, in one transaction, on its own
    /// thread; prunes the window below `to − window`. Waits for the previous commit first and
    /// returns its error, if it failed (then `changes` are dropped: they followed it).
    pub fn commit(&mut self, changes: Changes, to: &Checkpoint) -> Result<()> {
        self.settle();
        self.failure()?;
        let Changes {
            rows,
            inserts,
            undo: undo_rows,
            window,
            ..
        } = changes;
        let mut by_table: BTreeMap<&'static str, Vec<Row>> = BTreeMap::new();
        for ((table, _), row) in &rows {
            by_table.entry(table).or_default().push(row.clone());
        }
        let first_undo = self.next_undo;
        self.next_undo += undo_rows.len() as i64;
        if self.cache.len() > CACHE_ROWS {
            self.cache.clear();
        }
        for ((table, id), row) in rows {
            self.cache.insert((table, id), Some(row));
        }
        let keep_from = to.number.saturating_sub(self.window) as i64;
        let mut db = self.db.take().expect("settled");
        let checkpoint = to.clone();
        let thread = std::thread::spawn(move || {
            let result = db.transaction(|sql| {
                for rows in by_table.values_mut() {
                    rows.sort_by(|a, b| a.id().cmp(b.id()));
                    sql.write(rows, true)?;
                }
                for rows in inserts.values() {
                    sql.write(rows, false)?;
                }
                write_undo(sql, first_undo, &undo_rows)?;
                for b in &window {
                    diesel::delete(blocks::table.filter(blocks::number.eq(b.number as i64)))
                        .execute(sql.conn())?;
                    diesel::insert_into(blocks::table)
                        .values((
                            blocks::number.eq(b.number as i64),
                            blocks::hash.eq(&b.hash),
                            blocks::parent_hash.eq(&b.parent_hash),
                            blocks::timestamp.eq(b.timestamp as i64),
                        ))
                        .execute(sql.conn())?;
                }
                diesel::delete(blocks::table.filter(blocks::number.lt(keep_from)))
                    .execute(sql.conn())?;
                diesel::delete(undo::table.filter(undo::block_number.lt(keep_from)))
                    .execute(sql.conn())?;
                write_checkpoint(sql, &checkpoint)
            });
            // The written rows are freed here too, off the follower's path.
            drop((by_table, inserts, undo_rows));
            (db, result)
        });
        self.pending = Some(Pending {
            to: to.clone(),
            thread,
        });
        Ok(())
    }

    /// Rewinds the index to `ancestor` (a block of the window), in one transaction.
    pub fn revert_to(&mut self, ancestor: &BlockRef) -> Result<()> {
        self.settle();
        self.failure()?;
        self.cache.clear();
        let above = ancestor.number as i64;
        self.settle().transaction(|sql| {
            let entries: Vec<(String, String, Option<String>)> = undo::table
                .filter(undo::block_number.gt(above))
                .order(undo::seq.desc())
                .select((undo::table_name, undo::row_id, undo::prior))
                .load(sql.conn())?;
            for (table_name, id, prior) in entries {
                let table = catalog::table(&table_name).ok_or_else(|| Error::Corrupt {
                    what: format!("undo entry for unknown table {table_name}"),
                })?;
                match prior {
                    None => sql.delete(table, &id)?,
                    Some(json) => {
                        let json = serde_json::from_str(&json).map_err(|e| Error::Corrupt {
                            what: format!("undo image of {table_name} {id}: {e}"),
                        })?;
                        sql.write(&[Row::from_json(table, &json)?], true)?;
                    }
                }
            }
            diesel::delete(undo::table.filter(undo::block_number.gt(above))).execute(sql.conn())?;
            for t in catalog::TABLES.iter().filter(|t| t.append_only) {
                let q = format!(
                    "DELETE FROM {} WHERE block_number > {}",
                    t.name,
                    sql.dialect().placeholder(1)
                );
                sql.execute(&q, vec![Bind::Int(Some(above))])?;
            }
            diesel::delete(blocks::table.filter(blocks::number.gt(above))).execute(sql.conn())?;
            write_checkpoint(
                sql,
                &Checkpoint {
                    number: ancestor.number,
                    hash: ancestor.hash.clone(),
                    timestamp: ancestor.timestamp,
                },
            )
        })
    }
}

/// Saves the undo images of a commit, numbered from `first`, 500 to a statement.
fn write_undo(
    sql: &mut Sql<'_>,
    first: i64,
    images: &[(u64, &'static str, String, Option<Row>)],
) -> Result<()> {
    let mut seq = first;
    for chunk in images.chunks(500) {
        let mut binds = Vec::with_capacity(chunk.len() * 5);
        let tuples = chunk
            .iter()
            .map(|(block, table, id, prior)| {
                binds.extend([
                    Bind::Int(Some(seq)),
                    Bind::Int(Some(*block as i64)),
                    Bind::Text(Some((*table).to_owned())),
                    Bind::Text(Some(id.clone())),
                    Bind::Text(prior.as_ref().map(|r| r.to_json().to_string())),
                ]);
                seq += 1;
                format!("({})", sql.dialect().placeholders(binds.len() - 4, 5))
            })
            .collect::<Vec<_>>()
            .join(", ");
        sql.execute(
            &format!(
                "INSERT INTO undo (seq, block_number, table_name, row_id, prior) VALUES {tuples}"
            ),
            binds,
        )?;
    }
    Ok(())
}

fn write_checkpoint(sql: &mut Sql<'_>, to: &Checkpoint) -> Result<()> {
    diesel::delete(checkpoint::table).execute(sql.conn())?;
    diesel::insert_into(checkpoint::table)
        .values((
            checkpoint::id.eq(1),
            checkpoint::block_number.eq(to.number as i64),
            checkpoint::block_hash.eq(&to.hash),
            checkpoint::block_timestamp.eq(to.timestamp as i64),
        ))
        .execute(sql.conn())?;
    Ok(())
}

impl Drop for Store {
    /// A store dropped with a commit running lets it finish (a killed process loses it, and
    /// resumes from the checkpoint before it).
    fn drop(&mut self) {
        self.settle();
        if let Some(e) = self.failed.take() {
            tracing::warn!(target: "indexer::store", error = %e, "the last commit failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u64) -> Checkpoint {
        Checkpoint {
            number: n,
            hash: format!("0x{n:064x}"),
            timestamp: 1_700_000_000 + n,
        }
    }

    /// Commits block `n` holding one transfer.
    fn commit_transfer(store: &mut Store, n: u64) -> Result<()> {
        let mut changes = Changes::default();
        changes.begin_block(n, false);
        let mut row = Row::new(catalog::table("transfers").unwrap(), format!("{n}-0"));
        row.set("block_number", n as i64);
        changes.insert_event(row);
        store.commit(changes, &block(n))
    }

    /// A commit that fails on its thread is reported by the next commit, which writes nothing;
    /// the checkpoint is the last one written, and committing from there works again.
    #[test]
    fn a_failed_commit_is_reported_and_the_checkpoint_stays_at_the_last_written() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("store.db").display().to_string();
        let mut store = Store::open(Database::open(&url).unwrap(), "test", 128).unwrap();
        commit_transfer(&mut store, 1).unwrap();
        store.flush().unwrap();

        // The next commit's table is gone: its transaction fails on the commit thread.
        let mut other = Database::connect(&url).unwrap();
        other
            .sql()
            .batch_execute("ALTER TABLE transfers RENAME TO moved")
            .unwrap();
        commit_transfer(&mut store, 2).unwrap();
        assert!(
            commit_transfer(&mut store, 3).is_err(),
            "the failure is reported"
        );
        assert_eq!(store.checkpoint().unwrap(), Some(block(1)));

        other
            .sql()
            .batch_execute("ALTER TABLE moved RENAME TO transfers")
            .unwrap();
        commit_transfer(&mut store, 2).unwrap();
        store.flush().unwrap();
        assert_eq!(store.checkpoint().unwrap(), Some(block(2)));
        let rows = store
            .db()
            .sql()
            .dump(catalog::table("transfers").unwrap())
            .unwrap();
        assert_eq!(rows.len(), 2);
    }
}
