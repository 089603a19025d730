//! The node's journal: an append-only, fsync'd log of everything the node owes and did about
//! money, from which its whole paid state is rebuilt at start ([`crate::ledger::Ledger`]).
//!
//! One JSON [`Record`] per line. A record is durable when [`Journal::append`] returns: the line
//! is written and `fdatasync`'d before the caller answers the client (a receipt) or sends a
//! transaction (a signed batch). A crash can leave only the *last* line torn (no newline, or
//! not parseable); [`Journal::open`] cuts it off, since nothing acted on an unfinished append.
//! A bad line anywhere else is corruption and is refused ([`Error::JournalCorrupt`]).
//!
//! Why a log and not a database: the node only ever appends, reads it all once at start and
//! keeps the live state in memory; a log makes "durable before the response" one `write` and
//! one `fdatasync`, with no schema to migrate.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use alloy::primitives::{Address, B256, Bytes, U256};
use openledger_billing::Receipt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// A paid inference was served (journaled before its response ends).
    Served(Box<Served>),
    /// A batch was built and signed (journaled before it is sent).
    Signed(SignedBatch),
    /// A transaction settling batch `sequence` was sent.
    Sent {
        /// The batch.
        sequence: u64,
        /// The transaction hash; zero when the last one sent reverted and none is pending.
        tx: B256,
    },
    /// The chain settled batch `sequence` (read from its `BatchSettled` event, never assumed
    /// from a submission).
    Settled(Settled),
    /// Batch `sequence` passed its deadline unsettled; its receipts go back to the queue and
    /// the number will be signed again.
    Abandoned {
        /// The batch.
        sequence: u64,
    },
}

/// A served, paid inference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    /// The receipt (what the batch's root commits to).
    pub receipt: Receipt,
    /// The voucher it was served against, as its API key (`0x` + hex of the ABI encoding).
    pub api_key: String,
    /// The attribution's evidence: which output tokens came from which contributions.
    pub spans: Vec<SpanRecord>,
}

/// One attributed span of an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// Offset of its first token in the output.
    pub output_start: u32,
    /// Length in tokens.
    pub len: u32,
    /// The span's text.
    pub text: String,
    /// Its share of the data fee, in ppm.
    pub ppm: u32,
    /// Common text (credits nobody).
    pub common: bool,
    /// The contributions containing it.
    pub sources: Vec<SpanSourceRecord>,
}

/// Where a span occurs in one contribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanSourceRecord {
    /// The contribution's datanet.
    pub datanet_id: U256,
    /// The contribution.
    pub contribution_id: U256,
    /// Token offset of the span's first occurrence in it.
    pub offset: u32,
    /// What it got for the span, in ppm.
    pub ppm: u32,
}

/// A signed batch: enough to rebuild exactly the `settleBatch` call after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBatch {
    /// Its sequence number.
    pub sequence: u64,
    /// Unix seconds after which it can never settle.
    pub deadline: u64,
    /// The split-policy epoch it is priced under.
    pub policy_epoch: u32,
    /// That epoch's basis points (protocol, operator, developer, data).
    pub policy_bps: [u16; 4],
    /// Its receipts, in tree order.
    pub request_ids: Vec<B256>,
    /// The operator signer's signature over the batch.
    pub signature: Bytes,
    /// The chain head when it was signed: its settlement event is at or after this block.
    pub from_block: u64,
}

/// What the chain did with a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    /// The batch.
    pub sequence: u64,
    /// The settling transaction.
    pub tx: B256,
    /// Its block.
    pub block: u64,
    /// Wei the contract collected (`BatchSettled.totalCharged`).
    pub collected: U256,
    /// Debits collected (`BatchSettled.collected`).
    pub debits_collected: u64,
    /// Debits the contract skipped as uncollectable.
    pub skipped: Vec<SkippedDebit>,
}

/// A debit the contract skipped (`DebitSkipped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedDebit {
    /// The user.
    pub user: Address,
    /// The model.
    pub model_id: U256,
    /// The amount not collected.
    pub amount: U256,
    /// `ISettlement.SkipReason` as its number.
    pub reason: u8,
}

/// The open journal file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Opens (or creates) the journal at `path` and reads every record in it, cutting off a
    /// torn last line.
    pub fn open(path: impl AsRef<Path>) -> Result<(Self, Vec<Record>)> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::Journal {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        let mut records = Vec::new();
        let mut good_end = 0u64;
        let mut reader = BufReader::new(&file);
        let mut line = String::new();
        let mut number = 0usize;
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(io)?;
            if n == 0 {
                break;
            }
            number += 1;
            let complete = line.ends_with('\n');
            match serde_json::from_str::<Record>(line.trim_end()) {
                Ok(record) if complete => {
                    records.push(record);
                    good_end += n as u64;
                }
                parsed => {
                    // Only the last line may be unfinished.
                    let mut rest = String::new();
                    reader.read_line(&mut rest).map_err(io)?;
                    if !rest.is_empty() {
                        return Err(Error::JournalCorrupt {
                            path: path.clone(),
                            line: number,
                            reason: match parsed {
                                Err(e) => e.to_string(),
                                Ok(_) => "no newline".into(),
                            },
                        });
                    }
                    tracing::warn!(target: "payments::journal", path = %path.display(), line = number, "cutting off a torn last record (an append the crash interrupted)");
                    break;
                }
            }
        }
        drop(reader);
        if file.metadata().map_err(io)?.len() != good_end {
            file.set_len(good_end).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok((
            Self {
                path,
                file: Mutex::new(file),
            },
            records,
        ))
    }

    /// Appends `record` and makes it durable (`fdatasync`) before returning. Blocking: call
    /// from a blocking context.
    pub fn append(&self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(record).expect("records serialize");
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let io = |source| Error::Journal {
            path: self.path.clone(),
            source,
        };
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(())
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abandoned(sequence: u64) -> Record {
        Record::Abandoned { sequence }
    }

    #[test]
    fn records_survive_reopening_and_a_torn_last_line_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.log");
        let (journal, records) = Journal::open(&path).unwrap();
        assert!(records.is_empty());
        journal.append(&abandoned(1)).unwrap();
        journal.append(&abandoned(2)).unwrap();
        drop(journal);
        // A crash in the middle of the third append.
        let mut text = std::fs::read_to_string(&path).unwrap();
        let whole = text.len();
        text.push_str(r#"{"record":"abandoned","sequ"#);
        std::fs::write(&path, &text).unwrap();
        let (journal, records) = Journal::open(&path).unwrap();
        assert_eq!(records, vec![abandoned(1), abandoned(2)]);
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, whole);
        journal.append(&abandoned(3)).unwrap();
        drop(journal);
        let (_, records) = Journal::open(&path).unwrap();
        assert_eq!(records, vec![abandoned(1), abandoned(2), abandoned(3)]);
    }

    #[test]
    fn a_damaged_line_before_the_end_is_refused_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.log");
        std::fs::write(
            &path,
            "{\"record\":\"abandoned\",\"sequence\":1}\nnot json\n{\"record\":\"abandoned\",\"sequence\":2}\n",
        )
        .unwrap();
        let err = Journal::open(&path).unwrap_err();
        assert!(
            matches!(err, Error::JournalCorrupt { line: 2, .. }),
            "{err}"
        );
        // Nothing was cut.
        assert!(std::fs::read_to_string(&path).unwrap().contains("not json"));
    }
}
