//! Storage: the durable catalog, the WAL, and the tables (Lance + delta).
//!
//! Opening a data directory is recovery (brief invariant 5): load the catalog,
//! open each table at its latest Lance version, then replay every WAL record
//! newer than the LSN recorded with that version. A background flusher folds
//! deltas into Lance in large commits and lets the WAL drop what is folded.

pub mod alter;
pub mod bulk;
pub mod catalog;
pub mod compact;
mod ddl;
pub mod durable;
pub mod fragment_cache;
pub mod heap;
pub mod index;
pub mod key_probe;
pub mod keys;
pub mod lance_types;
pub mod row_cache;
pub mod handle;
pub mod scan;
pub mod table;
pub mod txn;
pub mod version;
pub mod wal;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::UInt64Type;
use tracing::{info, warn};

use crate::error::{Result, TarnError, sqlstate};
use catalog::{Catalog, ColumnDef};
use table::Table;
use txn::{TableWrites, TxnHandle, TxnStatus};
use version::{DbState, TableVersion};
use wal::{TableChange, Wal, WalEntry};

/// When the flusher folds a table's delta into Lance.
#[derive(Debug, Clone)]
pub struct FlushPolicy {
    /// Flush once a table has this many rows inserted or deleted since its
    /// last flush.
    pub max_rows: usize,
    /// ... or once its oldest change has waited this long.
    pub max_age: Duration,
    /// How often the flusher looks.
    pub interval: Duration,
    /// When a flush is followed by compaction and old-version cleanup.
    pub compaction: compact::CompactionPolicy,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy {
            max_rows: 100_000,
            max_age: Duration::from_secs(30),
            interval: Duration::from_millis(500),
            compaction: compact::CompactionPolicy::default(),
        }
    }
}

/// A table to create, as the SQL layer describes it.
#[derive(Debug, Clone)]
pub struct NewTable {
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<usize>,
    pub kind: catalog::TableKind,
}

/// Everything durable, shared by all sessions.
pub struct Storage {
    dir: PathBuf,
    catalog: tokio::sync::Mutex<Catalog>,
    tables: RwLock<HashMap<(String, String), Arc<Table>>>,
    views: RwLock<HashMap<(String, String), catalog::ViewDef>>,
    /// Schemas made by CREATE SCHEMA (mirrors the catalog, read without its async lock).
    schemas: RwLock<Vec<catalog::SchemaDef>>,
    /// What a statement starting now reads; replaced whole by every commit
    /// (commits publish from the WAL writer thread, hence the `Arc`).
    current: Arc<RwLock<Arc<DbState>>>,
    wal: Arc<Wal>,
    policy: FlushPolicy,
    /// Snapshot sequence → number of open transaction blocks that began there.
    readers: Mutex<BTreeMap<u64, usize>>,
    _lock: fs::File,
}

impl Storage {
    /// Open (and recover) the data directory, creating it if needed.
    pub async fn open(dir: &Path, policy: FlushPolicy) -> Result<Arc<Storage>> {
        fs::create_dir_all(dir.join("tables")).map_err(|e| TarnError::io("creating data directory", e))?;
        let dir = dir.canonicalize().map_err(|e| TarnError::io("resolving data directory", e))?;
        let lock = lock_data_dir(&dir)?;
        let mut catalog = Catalog::open(&dir)?;
        remove_orphan_table_dirs(&dir, &catalog);

        // Open every table's Lance version first: the WAL must resume above
        // every LSN already used, and a fully checkpointed log is empty.
        let mut tables = HashMap::new();
        let mut by_id: HashMap<u64, (Arc<Table>, TableVersion)> = HashMap::new();
        let mut max_lsn = 0;
        let defs = catalog.tables().to_vec();
        for def in &defs {
            let tdir = table_dir(&dir, def.id, def.kind);
            let mut loaded = Table::load_dataset(&tdir, def.kind).await?;
            // Finish an ALTER TABLE the catalog committed but Lance had not
            // caught up with.
            if let Some(ds) = &loaded.dataset {
                if let Some(conformed) = alter::conform_lance(ds, def, &def.pending_renames).await? {
                    loaded.dataset = Some(conformed);
                }
            }
            // ... and build indexes the catalog declares but Lance lacks.
            if let Some(ds) = &loaded.dataset {
                match index::sync_indexes(ds, def, false).await {
                    Ok(Some(synced)) => loaded.dataset = Some(synced),
                    Ok(None) => {}
                    Err(e) => warn!(table = %def.name, error = %e, "could not build indexes; will retry after the next flush"),
                }
            }
            let flushed_lsn = loaded.flushed_lsn;
            max_lsn = max_lsn.max(flushed_lsn);
            let heap = loaded.heap.take();
            let properties = loaded.properties.clone();
            let (t, dataset) = Table::open(def.clone(), tdir, Some(loaded))?;
            let mut version = TableVersion::new(dataset, flushed_lsn);
            if let Some(rows) = heap {
                // A heap checkpoint of an older shape (an ALTER TABLE the
                // server stopped in): conform it and write it back.
                let (rows, changed) = heap::conform(rows, &t.storage_schema, def, &def.pending_renames)?;
                if changed {
                    t.write_heap(&rows, properties)?;
                }
                version.heap = Some(Arc::new(rows));
            }
            let t = Arc::new(t);
            tables.insert((def.schema.clone(), def.name.clone()), t.clone());
            by_id.insert(def.id, (t, version));
        }
        if defs.iter().any(|d| !d.pending_renames.is_empty()) {
            catalog.commit(|o| o.tables.iter_mut().for_each(|t| t.pending_renames.clear()))?;
        }
        let recovered = wal::recover(&dir.join("wal"))?;
        let next_lsn = recovered.last_lsn.max(max_lsn) + 1;
        let wal = Arc::new(Wal::start(&dir.join("wal"), next_lsn)?);

        let mut replayed = 0usize;
        for rec in recovered.records {
            let WalEntry::Commit { changes } = rec.entry;
            for c in changes {
                // Records of dropped tables are simply not replayed.
                let Some((t, version)) = by_id.get_mut(&c.table_id) else { continue };
                // A flushed record's counters are in the flush's properties,
                // and it may predate an ALTER (another column layout): only
                // the records replayed can raise the counters.
                if rec.lsn > version.flushed_lsn {
                    t.saw_inserts(&c.inserts);
                    replayed += c.inserts.iter().map(|b| b.num_rows()).sum::<usize>() + c.deletes.len();
                    version.apply(rec.lsn, c.truncate, &c.deletes, c.inserts);
                }
            }
        }
        let views = catalog.views().iter().map(|v| ((v.schema.clone(), v.name.clone()), v.clone())).collect();
        let catalog_schemas = catalog.schemas().to_vec();
        let state = DbState { seq: 0, tables: by_id.into_iter().map(|(id, (_, v))| (id, Arc::new(v))).collect() };
        info!(dir = %dir.display(), tables = tables.len(), replayed_rows = replayed, next_lsn, "storage opened");
        Ok(Arc::new(Storage {
            dir,
            catalog: tokio::sync::Mutex::new(catalog),
            tables: RwLock::new(tables),
            views: RwLock::new(views),
            schemas: RwLock::new(catalog_schemas),
            current: Arc::new(RwLock::new(Arc::new(state))),
            wal,
            policy,
            readers: Mutex::new(BTreeMap::new()),
            _lock: lock,
        }))
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<Arc<Table>> {
        self.tables.read().unwrap().get(&(schema.to_string(), name.to_string())).cloned()
    }

    pub fn table_by_id(&self, id: u64) -> Option<Arc<Table>> {
        self.tables.read().unwrap().values().find(|t| t.def.id == id).cloned()
    }

    pub fn table_names(&self, schema: &str) -> Vec<String> {
        let mut names: Vec<String> =
            self.tables.read().unwrap().keys().filter(|(s, _)| s == schema).map(|(_, n)| n.clone()).collect();
        names.sort();
        names
    }

    /// About how many rows a table holds now (`pg_class.reltuples`): counted
    /// from Lance's fragment metadata and the delta, without a scan.
    pub fn row_count(&self, id: u64) -> Option<u64> {
        let state = self.snapshot();
        let v = state.tables.get(&id)?;
        let stored: usize = if v.dataset_truncated {
            0
        } else if let Some(ds) = &v.dataset {
            compact::fragment_sizes(ds).iter().map(|f| f.physical_rows.saturating_sub(f.deleted_rows)).sum()
        } else {
            v.heap.as_ref().map(|h| h.iter().map(|b| b.num_rows()).sum()).unwrap_or(0)
        };
        Some((stored + v.delta_rows).saturating_sub(v.deleted.len()) as u64)
    }

    /// Bytes a table's files take on disk (`pg_relation_size`).
    pub fn disk_bytes(&self, id: u64) -> u64 {
        let Some(t) = self.table_by_id(id) else { return 0 };
        dir_bytes(&table_dir(&self.dir, id, t.def.kind))
    }

    /// Bytes the whole data directory takes (`pg_database_size`).
    pub fn disk_bytes_total(&self) -> u64 {
        dir_bytes(&self.dir)
    }

    /// What a statement starting now reads.
    /// Count the calling session as running a statement while the guard
    /// lives (see [`Wal::running`]).
    pub fn running(&self) -> wal::Running<'_> {
        self.wal.running()
    }

    pub fn snapshot(&self) -> Arc<DbState> {
        self.current.read().unwrap().clone()
    }

    /// Replace the published state (commits, flushes, DDL).
    fn publish(&self, change: impl FnOnce(&mut DbState)) -> u64 {
        publish_into(&self.current, change)
    }

    /// A transaction block opened at snapshot `seq`: deletes newer than it
    /// must be remembered for its conflict checks until it ends.
    pub fn register_reader(&self, seq: u64) {
        *self.readers.lock().unwrap().entry(seq).or_default() += 1;
    }

    pub fn unregister_reader(&self, seq: u64) {
        let mut readers = self.readers.lock().unwrap();
        if let Some(n) = readers.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                readers.remove(&seq);
            }
        }
    }

    fn oldest_reader(&self) -> Option<u64> {
        self.readers.lock().unwrap().keys().next().copied()
    }

    /// Wait until every commit queued so far is published (or has failed).
    /// A caller holding a table's write lock then reads that table as it
    /// is: commits release their locks once queued in the WAL, before they
    /// are durable (see [`Storage::commit`]).
    pub async fn settle(&self) {
        self.wal.settled_all().await;
    }

    /// For an autocommit statement that changes rows it reads (UPDATE,
    /// DELETE, INSERT … ON CONFLICT): take `table`'s write lock for the rest
    /// of the transaction, unless held, and read a snapshot that includes
    /// the commits to it already queued in the WAL, durable or not — so
    /// concurrent updates of one row serialise without waiting for each
    /// other's disk writes, and none is lost. The snapshot's generation is
    /// kept: if one of those commits fails, this one is refused.
    pub async fn lock_for_update(&self, table: &Table, txn: &TxnHandle) {
        if !txn.lock().unwrap().held.contains_key(&table.def.id) {
            let guard = table.write_lock.clone().lock_owned().await;
            txn.lock().unwrap().held.insert(table.def.id, guard);
        }
        let (generation, snapshot) = self.snapshot_ahead(table.def.id);
        let mut t = txn.lock().unwrap();
        t.snapshot = snapshot;
        t.generation = Some(generation);
    }

    /// The published state with `table_id`'s queued commits applied, and
    /// the WAL failure generation it was read in.
    fn snapshot_ahead(&self, table_id: u64) -> (u64, Arc<DbState>) {
        let (generation, pending, state) = self.wal.ahead(|| self.snapshot());
        let Some(base) = state.table(table_id) else { return (generation, state) };
        let mut ahead: Option<TableVersion> = None;
        for (lsn, entry) in pending {
            let WalEntry::Commit { changes } = entry.as_ref();
            // Published meanwhile: already in `base`.
            if lsn <= base.last_lsn {
                continue;
            }
            for c in changes.iter().filter(|c| c.table_id == table_id) {
                ahead.get_or_insert_with(|| (*base).clone()).apply(lsn, c.truncate, &c.deletes, c.inserts.clone());
            }
        }
        match ahead {
            None => (generation, state),
            Some(v) => {
                let mut next = (*state).clone();
                next.tables.insert(table_id, Arc::new(v));
                (generation, Arc::new(next))
            }
        }
    }

    /// Make `table`'s key set reflect every commit queued, for a check
    /// under its write lock (held by the caller) in WAL failure epoch
    /// `generation`. A set built before a WAL write failed may hold the
    /// failed commit's keys: it is rebuilt from what was published.
    async fn keys_current(&self, table: &Table, generation: u64) -> Result<()> {
        if !table.keys_stale(generation) {
            return Ok(());
        }
        self.settle().await;
        let latest = self.snapshot().table(table.def.id).unwrap_or_default();
        table.load_keys(&latest, generation).await
    }

    /// Make `table`'s key set current for a check by `txn`: hold the
    /// table's write lock (unless the transaction already does).
    async fn lock_keys<'t>(&self, table: &'t Table, txn: &TxnHandle) -> Result<Option<tokio::sync::MutexGuard<'t, ()>>> {
        let holds = txn.lock().unwrap().held.contains_key(&table.def.id);
        let guard = if holds { None } else { Some(table.write_lock.lock().await) };
        self.keys_current(table, self.wal.generation()).await?;
        Ok(guard)
    }

    /// Load `table`'s key set (for key probes), under its write lock.
    pub async fn load_keys(&self, table: &Table) {
        let _guard = table.write_lock.lock().await;
        if let Err(e) = self.keys_current(table, self.wal.generation()).await {
            tracing::warn!(table = %table.def.name, error = %e, "loading the primary-key set failed");
        }
    }

    /// Check a transaction's primary-key writes to `table` now (inside a
    /// block, as PostgreSQL reports 23505 at the statement, not at COMMIT).
    pub async fn check_keys_now(&self, table: &Table, txn: &TxnHandle) -> Result<()> {
        if !table.has_primary_key() {
            return Ok(());
        }
        let _guard = self.lock_keys(table, txn).await?;
        let writes = txn.lock().unwrap().writes.get(&table.def.id).cloned().unwrap_or_default();
        table.check_keys(&writes).map(|_| ())
    }

    /// Check the rows an INSERT inside a block is about to add (only those:
    /// the transaction's earlier keys are kept in `TableWrites::own_keys`).
    /// Returns the own-key set to store with the rows.
    pub async fn check_new_keys_now(
        &self,
        table: &Table,
        txn: &TxnHandle,
        rows: &[arrow::array::RecordBatch],
    ) -> Result<Option<Arc<HashMap<Box<[u8]>, u64>>>> {
        if !table.has_primary_key() {
            return Ok(None);
        }
        let _guard = self.lock_keys(table, txn).await?;
        let t = txn.lock().unwrap();
        let empty = TableWrites::default();
        let writes = t.writes.get(&table.def.id).unwrap_or(&empty);
        table.check_new_keys(writes, rows).map(Some)
    }

    /// Add rows (storage schema, from [`Table::prepare_insert`]) to the
    /// transaction's writes. Inside a block their keys are checked now, as
    /// in PostgreSQL (and again at COMMIT); autocommit checks once, at its
    /// commit.
    pub async fn stage_inserts(&self, table: &Table, txn: &TxnHandle, rows: Vec<arrow::array::RecordBatch>) -> Result<()> {
        let in_block = txn.lock().unwrap().status != TxnStatus::Idle;
        let own_keys = if in_block { self.check_new_keys_now(table, txn, &rows).await? } else { None };
        let mut t = txn.lock().unwrap();
        let writes = t.table_writes(table.def.id);
        writes.inserts.extend(rows);
        if own_keys.is_some() {
            writes.own_keys = own_keys;
        }
        Ok(())
    }

    /// Split `rows` into those whose primary key is free and those whose key
    /// exists for the transaction (`ON CONFLICT`). With `unique_proposals`
    /// (DO UPDATE) a key proposed twice is an error (21000).
    pub async fn split_conflicts(
        &self,
        table: &Table,
        txn: &TxnHandle,
        rows: Vec<arrow::array::RecordBatch>,
        unique_proposals: bool,
    ) -> Result<(Vec<arrow::array::RecordBatch>, Vec<arrow::array::RecordBatch>)> {
        if !table.has_primary_key() {
            return Ok((rows, vec![]));
        }
        let _guard = self.lock_keys(table, txn).await?;
        let writes = txn.lock().unwrap().writes.get(&table.def.id).cloned().unwrap_or_default();
        table.split_keys(&writes, rows, unique_proposals)
    }

    /// Make a transaction's writes durable and visible, all at once: lock
    /// every table written (in id order), check keys and — for explicit
    /// transactions — conflicts (40001), queue one WAL record, release the
    /// locks, and return once the record is durable and published.
    ///
    /// The locks are not held through the disk write, so commits to one
    /// table share group commits. The key set the next lock holder checks
    /// against takes the commit's keys when the record is queued. An
    /// autocommit UPDATE or DELETE reads the queued commits too
    /// ([`Storage::lock_for_update`]); DDL, bulk loads and the conflict
    /// check of an explicit transaction (deletes are noted at publish) wait
    /// for them to settle ([`Storage::settle`]). If the WAL write fails, the
    /// record and every one queued behind it fail, and key sets built since
    /// the last good write are rebuilt (the WAL's failure generation).
    pub async fn commit(&self, txn: &TxnHandle) -> Result<()> {
        let (writes, read_seq, explicit, mut held, read_generation) = {
            let mut t = txn.lock().unwrap();
            // Taken, not copied: after its commit, or its failure, a
            // transaction's writes are dropped either way.
            let writes: BTreeMap<u64, TableWrites> = std::mem::take(&mut t.writes).into_iter().filter(|(_, w)| !w.is_empty()).collect();
            let explicit = t.status != TxnStatus::Idle;
            if !explicit {
                // An autocommit statement has done its reads (a result
                // stream holds what it reads itself): letting go of the
                // snapshot now lets the commit publish in place.
                t.release_snapshot();
            }
            (writes, t.read_seq.unwrap_or(0), explicit, std::mem::take(&mut t.held), t.generation)
        };
        if writes.is_empty() {
            return Ok(());
        }
        let mut tables = vec![];
        for &id in writes.keys() {
            let table = self.table_by_id(id).ok_or_else(|| {
                TarnError::new(sqlstate::UNDEFINED_TABLE, "a table written by this transaction was dropped concurrently")
            })?;
            if !held.contains_key(&id) {
                held.insert(id, table.write_lock.clone().lock_owned().await);
            }
            // An ALTER TABLE may have finished while this waited for the
            // lock: write with the definition now in force, if the rows
            // still fit it (a rename does not change the shape).
            let table = self.table_by_id(id).unwrap_or(table);
            let fits = |b: &arrow::array::RecordBatch| {
                b.num_columns() == table.storage_schema.fields().len()
                    && b.schema().fields().iter().zip(table.storage_schema.fields()).all(|(a, t)| a.data_type() == t.data_type())
            };
            if !writes[&id].inserts.iter().all(fits) {
                return Err(TarnError::new(
                    sqlstate::SERIALIZATION_FAILURE,
                    format!("could not serialize access: table \"{}\" was altered by a concurrent ALTER TABLE", table.def.name),
                ));
            }
            tables.push(table);
        }
        // Read before any check (or by the reads this commit rests on): a
        // WAL failure after it refuses this commit.
        let generation = read_generation.unwrap_or_else(|| self.wal.generation());
        if explicit && writes.values().any(|w| w.truncate || !w.deletes.is_empty()) {
            // Deletes are noted for conflict checks when published: check
            // against every commit queued before this one.
            self.settle().await;
        }
        let mut changes = vec![];
        let mut key_changes = vec![];
        for (table, (id, w)) in tables.iter().zip(&writes) {
            if explicit && table.conflicts(read_seq, w) {
                return Err(TarnError::new(
                    sqlstate::SERIALIZATION_FAILURE,
                    "could not serialize access due to concurrent update",
                ));
            }
            self.keys_current(table, generation).await?;
            key_changes.push(table.check_keys(w)?);
            let mut change = table_change(*id, w);
            // Rows carry the table's current names (after a concurrent rename).
            for b in change.inserts.iter_mut() {
                *b = arrow::array::RecordBatch::try_new(table.storage_schema.clone(), b.columns().to_vec())?;
            }
            changes.push(change);
        }
        let entry = Arc::new(WalEntry::Commit { changes });
        let publishing = entry.clone();
        let deletes: Vec<(Arc<Table>, bool, Vec<u64>)> = tables
            .iter()
            .zip(writes.values())
            .map(|(t, w)| (t.clone(), w.truncate, w.deletes.keys().copied().collect()))
            .collect();
        let current = self.current.clone();
        let published: wal::Published = Box::new(move |lsn| {
            let WalEntry::Commit { changes } = publishing.as_ref();
            let seq = publish_into(&current, |state| {
                for c in changes {
                    // (A table dropped since has no version to apply to.)
                    let Some(v) = state.tables.get_mut(&c.table_id) else { continue };
                    // In place unless a snapshot holds this version: then
                    // a copy, sharing its delta's chunks but the last.
                    Arc::make_mut(v).apply(lsn, c.truncate, &c.deletes, c.inserts.clone());
                }
            });
            for (table, truncate, ids) in &deletes {
                table.note_deletes(seq, *truncate, ids);
            }
        });
        let _applying = self.wal.applying().await;
        let queued = self.wal.queue(
            entry,
            generation,
            |lsn| {
                for (table, keys) in tables.iter().zip(key_changes) {
                    table.apply_keys(keys, lsn, generation);
                }
            },
            Some(published),
        )?;
        drop(held);
        queued.durable().await?;
        Ok(())
    }

    /// Publish a new Lance version of a table that holds the same rows
    /// (compaction, schema change): its delta and deletes stay as they are.
    fn publish_dataset(&self, table_id: u64, dataset: Arc<lance::Dataset>) {
        self.publish_table_version(table_id, |v| v.dataset = Some(dataset));
    }

    /// Publish a change to one table's current version (if it still exists).
    fn publish_table_version(&self, table_id: u64, change: impl FnOnce(&mut TableVersion)) {
        self.publish(|state| {
            if let Some(v) = state.table(table_id) {
                let mut v = (*v).clone();
                change(&mut v);
                state.tables.insert(table_id, Arc::new(v));
            }
        });
    }

    /// Fold one table's unflushed changes into Lance and publish the result.
    pub async fn flush_table(&self, table: &Table) -> Result<usize> {
        let _flushing = table.flush_lock.lock().await;
        self.flush_table_locked(table).await
    }

    /// [`Storage::flush_table`] for a caller holding the table's flush lock.
    async fn flush_table_locked(&self, table: &Table) -> Result<usize> {
        // A RENAME or ALTER may have replaced this table object (its
        // counters are no longer advanced): leave the flush to the current
        // one, or stale counters would be recorded with the data.
        if !self.table_by_id(table.def.id).is_some_and(|t| std::ptr::eq(t.as_ref(), table)) {
            return Ok(0);
        }
        let Some(version) = self.snapshot().table(table.def.id) else { return Ok(0) };
        if version.oldest_unflushed.is_none() {
            return Ok(0);
        }
        let started = Instant::now();
        let (folded, rows) = table.fold(&version).await?;
        // The WAL may drop these changes once they are published as flushed.
        durable::sync_tree(table.dir.clone()).await?;
        let last_lsn = version.last_lsn;
        self.publish_table_version(table.def.id, |v| match folded {
            table::Folded::Lance(dataset) => v.folded(dataset, last_lsn),
            table::Folded::Heap(rows) => v.folded_heap(rows, last_lsn),
        });
        table.prune_recent_deletes(self.oldest_reader());
        table.log_flush(rows, last_lsn, started);
        // The folded version must not pin its dataset during cleanup.
        drop(version);
        if let Err(e) = self.maintain(table, false).await {
            // The flush itself is durable; compaction and cleanup retry
            // after the next one.
            warn!(table = %table.def.name, error = %e, "compaction or cleanup failed");
        }
        Ok(rows.max(1))
    }

    /// VACUUM: fold a table's (or every table's) delta into Lance, compact
    /// it fully, remove the versions no reader holds, and trim the WAL.
    pub async fn vacuum(&self, table: Option<Arc<Table>>) -> Result<()> {
        let tables = match table {
            Some(t) => vec![t],
            None => self.all_tables(),
        };
        for t in tables {
            self.flush_table(&t).await?;
            let _flushing = t.flush_lock.lock().await;
            self.maintain(&t, true).await?;
        }
        self.checkpoint().await;
        Ok(())
    }

    /// Compact a table's dataset when its fragments call for it (always
    /// for `full`), and clean up versions no reader holds. The caller holds
    /// the flush lock.
    async fn maintain(&self, table: &Table, full: bool) -> Result<()> {
        let policy = &self.policy.compaction;
        if full && !table.def.indexes.is_empty() {
            // Fold new fragments into the indexes first, so compaction may
            // merge them with the indexed ones.
            self.sync_indexes_locked(table, true).await?;
        }
        let Some(ds) = self.snapshot().table(table.def.id).and_then(|v| v.dataset.clone()) else { return Ok(()) };
        let mut current = ds.clone();
        let fragments = compact::fragment_sizes(&ds);
        if compact::needs_compaction(&fragments, policy, full) {
            let started = Instant::now();
            let (_, props) = table.flush_properties();
            if let Some((compacted, metrics)) = compact::compact(&ds, policy, full, props.clone()).await? {
                let compacted = table.committed(compacted, props);
                self.publish_dataset(table.def.id, compacted.clone());
                info!(
                    table = %table.def.name,
                    fragments_before = fragments.len(),
                    fragments_after = compacted.count_fragments(),
                    rewritten = metrics.fragments_removed,
                    version = compacted.version_id(),
                    ms = started.elapsed().as_millis() as u64,
                    "compacted"
                );
                current = compacted;
            }
        }
        // A new dataset needs its indexes built.
        if !table.def.indexes.is_empty() || full {
            self.sync_indexes_locked(table, false).await?;
            if let Some(ds) = self.snapshot().table(table.def.id).and_then(|v| v.dataset.clone()) {
                current = ds;
            }
        }
        let version = current.version_id();
        if full || version >= table.cleaned_at.load(std::sync::atomic::Ordering::Relaxed) + policy.cleanup_every_versions {
            drop(ds);
            // Compaction's and the indexes' new files must be on disk
            // before cleanup removes the files they replace.
            durable::sync_tree(table.dir.clone()).await?;
            // Keep the oldest version a reader holds, and the newest one
            // whose properties recovery reads.
            let (with_properties, _) = table.flush_properties();
            let keep_from = table.pins.oldest().unwrap_or(version).min(with_properties);
            let stats = compact::cleanup(&current, keep_from).await?;
            table.cleaned_at.store(version, std::sync::atomic::Ordering::Relaxed);
            if stats.old_versions > 0 {
                info!(table = %table.def.name, keep_from, versions_removed = stats.old_versions, bytes_removed = stats.bytes_removed, "cleaned up old versions");
            }
        }
        Ok(())
    }

    fn all_tables(&self) -> Vec<Arc<Table>> {
        self.tables.read().unwrap().values().cloned().collect()
    }

    /// Fold every table's delta into Lance and trim the WAL.
    pub async fn flush_all(&self) -> Result<()> {
        for t in self.all_tables() {
            self.flush_table(&t).await?;
        }
        self.checkpoint().await;
        Ok(())
    }

    async fn checkpoint(&self) {
        self.wal.checkpoint_where(|| self.snapshot().tables.values().filter_map(|v| v.oldest_unflushed).min()).await;
    }

    /// One pass of the flusher: flush tables whose unflushed changes are
    /// many or old.
    pub async fn flush_due(&self) -> Result<usize> {
        let state = self.snapshot();
        let mut flushed = 0;
        for t in self.all_tables() {
            let Some(v) = state.table(t.def.id) else { continue };
            let age = v.unflushed_since.map(|at| at.elapsed());
            if v.oldest_unflushed.is_some()
                && (v.pending_rows() >= self.policy.max_rows || age.is_some_and(|a| a >= self.policy.max_age))
            {
                flushed += self.flush_table(&t).await?;
            }
        }
        if flushed > 0 {
            self.checkpoint().await;
        }
        Ok(flushed)
    }

    /// Run the flusher until the storage is dropped.
    pub fn spawn_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let interval = self.policy.interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(storage) = weak.upgrade() else { return };
                if let Err(e) = storage.flush_due().await {
                    // The rows stay in the WAL and the delta; try again later.
                    warn!(error = %e, "flush failed; will retry");
                }
            }
        })
    }
}

/// The WAL form of a transaction's writes to one table: its own inserts
/// that it deleted again are left out of both lists.
/// Replace the published state `current` by `change` applied to a copy;
/// returns the new state's sequence number.
fn publish_into(current: &RwLock<Arc<DbState>>, change: impl FnOnce(&mut DbState)) -> u64 {
    let mut current = current.write().unwrap();
    // Changed in place when no snapshot holds the published state (a lone
    // writer's commit), else copied first: either way no snapshot sees it change.
    let next = Arc::make_mut(&mut current);
    next.seq += 1;
    change(next);
    next.seq
}

fn table_change(table_id: u64, w: &TableWrites) -> TableChange {
    let inserts = w.live_inserts();
    let own: std::collections::HashSet<u64> = if w.deletes.is_empty() {
        Default::default()
    } else {
        w.inserts
            .iter()
            .flat_map(|b| b.column(b.num_columns() - 1).as_primitive::<UInt64Type>().values().to_vec())
            .collect()
    };
    let mut deletes: Vec<u64> = w.deletes.keys().copied().filter(|id| !own.contains(id)).collect();
    deletes.sort_unstable();
    TableChange { table_id, truncate: w.truncate, deletes, inserts }
}

fn table_dir(dir: &Path, id: u64, kind: catalog::TableKind) -> PathBuf {
    match kind {
        catalog::TableKind::Lance => dir.join("tables").join(format!("{id}.lance")),
        catalog::TableKind::Heap => dir.join("tables").join(format!("{id}.heap")),
    }
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else { return fs::metadata(path).map(|m| m.len()).unwrap_or(0) };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

/// One server per data directory: a second would corrupt the WAL.
fn lock_data_dir(dir: &Path) -> Result<fs::File> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(|e| TarnError::io("opening data directory lock", e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(TarnError::new(
            "55006",
            format!("data directory {} is in use by another Tarn server", dir.display()),
        )),
        Err(fs::TryLockError::Error(e)) => Err(TarnError::io("locking data directory", e)),
    }
}

/// Table directories the catalog does not name: left by a crash between a
/// DROP's catalog commit and its file removal.
fn remove_orphan_table_dirs(dir: &Path, catalog: &Catalog) {
    let Ok(entries) = fs::read_dir(dir.join("tables")) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let id = name.strip_suffix(".lance").or_else(|| name.strip_suffix(".heap")).and_then(|n| n.parse::<u64>().ok());
        if let Some(id) = id {
            if !catalog.tables().iter().any(|t| t.id == id) {
                info!(dir = %entry.path().display(), "removing files of a dropped table");
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}
