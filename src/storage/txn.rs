//! A transaction's state: the snapshot it reads, its private writes, its
//! savepoints, and the table write locks it holds.
//!
//! Writes stay private to the session until [`super::Storage::commit`]
//! turns them into one WAL record and publishes them all at once. An
//! autocommit statement is a transaction of one statement.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use tokio::sync::OwnedMutexGuard;

use super::version::{DbState, without_deleted};

/// One transaction's changes to one table.
#[derive(Debug, Clone, Default)]
pub struct TableWrites {
    pub truncate: bool,
    /// New rows, storage schema (user columns, then the row id).
    pub inserts: Vec<RecordBatch>,
    /// Row ids this transaction deleted (committed rows or its own inserts);
    /// the value is unused (kept a map to share the scan's filter type).
    pub deletes: imbl::HashMap<u64, u64>,
    /// Primary-key values of the committed rows deleted, by row id.
    pub deleted_keys: Vec<(u64, Box<[u8]>)>,
    /// Primary-key values of `live_inserts`, kept up to date by INSERT
    /// inside a block so each statement checks only its own rows; None when
    /// not built yet or after this transaction deleted rows (rebuilt then).
    pub own_keys: Option<Arc<HashMap<Box<[u8]>, u64>>>,
}

impl TableWrites {
    pub fn is_empty(&self) -> bool {
        !self.truncate && self.inserts.is_empty() && self.deletes.is_empty()
    }

    /// The inserted rows still alive (not deleted again by this transaction).
    pub fn live_inserts(&self) -> Vec<RecordBatch> {
        self.inserts.iter().filter_map(|b| without_deleted(b, &self.deletes)).collect()
    }

    pub fn truncate(&mut self) {
        *self = TableWrites { truncate: true, ..Default::default() };
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    RepeatableRead,
}

impl Isolation {
    pub fn name(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read committed",
            Isolation::RepeatableRead => "repeatable read",
        }
    }
}

/// Where a session's transaction is (PostgreSQL's ReadyForQuery status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    /// Autocommit: each statement is its own transaction.
    Idle,
    InBlock,
    /// An error happened inside the block: everything but ROLLBACK fails
    /// with 25P02.
    Failed,
}

pub struct TxnState {
    pub status: TxnStatus,
    pub isolation: Isolation,
    /// What statements read. Refreshed per statement, except under
    /// REPEATABLE READ once the transaction's first statement has run.
    pub snapshot: Arc<DbState>,
    pub snapshot_pinned: bool,
    pub writes: BTreeMap<u64, TableWrites>,
    /// The oldest snapshot any of this transaction's writes was computed
    /// from: rows deleted by others after it are conflicts (40001).
    pub read_seq: Option<u64>,
    pub savepoints: Vec<(String, BTreeMap<u64, TableWrites>)>,
    /// Table write locks held (autocommit UPDATE/DELETE hold theirs from
    /// before their snapshot until commit, so they never lose an update).
    pub held: BTreeMap<u64, OwnedMutexGuard<()>>,
    /// Registered with storage while a block is open (see `Storage::oldest_reader`).
    pub registered_seq: Option<u64>,
    /// The WAL failure generation of a snapshot that includes commits
    /// queued but not yet durable (see `Storage::lock_for_update`): its
    /// commit is refused if one of them failed.
    pub generation: Option<u64>,
    /// What the running statement asked of INSERT (cleared after it).
    pub statement: StatementWrites,
}

/// Per-statement requests to the INSERT sink, and the statement-local
/// relation RETURNING reads.
#[derive(Default)]
pub struct StatementWrites {
    /// Keep a copy of the inserted rows (user columns) for RETURNING.
    pub capture: Option<Vec<RecordBatch>>,
    /// `ON CONFLICT DO NOTHING`: skip rows whose key exists.
    pub skip_conflicts: bool,
    /// `ON CONFLICT DO UPDATE`: rows whose key exists are set aside here
    /// (they become the `excluded` relation of the update).
    pub conflicts: Option<Vec<RecordBatch>>,
    /// The rows RETURNING projects (`<table>\u{1}returning`).
    pub returning: Option<Arc<dyn datafusion::datasource::TableProvider>>,
}

impl TxnState {
    pub fn new(snapshot: Arc<DbState>) -> TxnState {
        TxnState {
            status: TxnStatus::Idle,
            isolation: Isolation::ReadCommitted,
            snapshot,
            snapshot_pinned: false,
            writes: BTreeMap::new(),
            read_seq: None,
            savepoints: vec![],
            held: BTreeMap::new(),
            registered_seq: None,
            generation: None,
            statement: StatementWrites::default(),
        }
    }

    pub fn table_writes(&mut self, table_id: u64) -> &mut TableWrites {
        let seq = self.snapshot.seq;
        self.read_seq = Some(self.read_seq.map_or(seq, |s| s.min(seq)));
        self.writes.entry(table_id).or_default()
    }

    pub fn has_writes(&self) -> bool {
        self.writes.values().any(|w| !w.is_empty())
    }

    /// Forget every write, savepoint and lock (after commit or rollback).
    pub fn reset(&mut self) {
        self.writes.clear();
        self.savepoints.clear();
        self.held.clear();
        self.read_seq = None;
        self.generation = None;
        self.snapshot_pinned = false;
        self.statement = StatementWrites::default();
        self.release_snapshot();
    }

    /// Stop holding the snapshot: an idle session must not keep old Lance
    /// versions from being cleaned up (a running result stream holds what
    /// it reads itself).
    pub fn release_snapshot(&mut self) {
        // One empty state shared by every idle session: making one after
        // every statement was an allocation and a free per commit.
        static EMPTY: std::sync::LazyLock<Arc<DbState>> = std::sync::LazyLock::new(Arc::default);
        self.snapshot = EMPTY.clone();
    }
}

/// The session's transaction, shared with the table handles its statements
/// plan (they read its snapshot and add to its writes).
pub type TxnHandle = Arc<Mutex<TxnState>>;
