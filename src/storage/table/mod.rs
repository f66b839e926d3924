//! A Tarn table: its definition, constraints, row ids and primary-key set,
//! and folding its delta into Lance.
//!
//! What a table holds at any moment is a [`TableVersion`] published in
//! storage's `DbState`; this type owns everything about the table that is not
//! a snapshot: checking rows before they are written (NOT NULL, lengths,
//! primary key), and allocating row ids. The flush that turns a version's
//! delta and deletes into one Lance commit (brief invariant 4) is in [`fold`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use lance::Dataset;
use tracing::debug;

use super::catalog::{Identity, TableDef, TableKind};
use super::compact::VersionPins;
use super::scan::read_columns;
use super::txn::TableWrites;
use super::version::{ROWID, TableVersion};
use crate::error::{Result, TarnError, sqlstate};
use crate::types::{PgType, schema_of};

/// Transaction property holding the last WAL LSN folded into a Lance version.
pub const FLUSHED_LSN_PROPERTY: &str = "tarn.flushed_lsn";
/// Transaction property holding the table's next row id at that flush.
pub const NEXT_ROWID_PROPERTY: &str = "tarn.next_rowid";

pub use super::keys::Key;
pub use fold::Folded;

mod fold;

/// The committed rows' primary keys, as of one table version.
struct KeySet {
    map: HashMap<Key, u64>,
    /// The `TableVersion::last_lsn` the map reflects.
    lsn: u64,
    /// The WAL failure generation it was built in (see `Wal::generation`).
    generation: u64,
}

/// How a commit changes the primary-key set.
#[derive(Debug, Default)]
pub struct KeyChanges {
    truncate: bool,
    removed: Vec<Key>,
    added: Vec<(Key, u64)>,
}

/// One table, shared by every session.
pub struct Table {
    pub def: TableDef,
    /// Each column's type (parsed once: `ColumnDef` holds its name).
    pg_types: Vec<PgType>,
    /// The user's columns.
    pub schema: SchemaRef,
    /// The user's columns, then the row id: what Lance and the delta hold.
    pub storage_schema: SchemaRef,
    pub dir: PathBuf,
    /// Serialises commits to this table (and autocommit UPDATE/DELETE from
    /// snapshot to commit), so key checks and WAL order agree.
    pub write_lock: Arc<tokio::sync::Mutex<()>>,
    /// Serialises flushes.
    pub flush_lock: tokio::sync::Mutex<()>,
    /// Primary-key value → row id of the committed rows, loaded on first use.
    keys: Mutex<Option<KeySet>>,
    /// A background load of the key set was started (for key probes).
    keys_requested: std::sync::atomic::AtomicBool,
    /// Where each row id of a Lance version sits (for key probes).
    pub row_addresses: tokio::sync::Mutex<super::key_probe::RowAddresses>,
    /// Open fragment readers for key probes' row reads.
    pub fragment_readers: Mutex<super::key_probe::FragmentReaders>,
    /// Rows key probes read from Lance, decoded (`storage::row_cache`).
    pub row_cache: Mutex<super::row_cache::RowCache>,
    /// Fragments key probes read often, decoded whole (`storage::fragment_cache`).
    pub fragment_cache: Arc<Mutex<super::fragment_cache::FragmentCache>>,
    next_rowid: AtomicU64,
    /// Row id → publish sequence of recent deletes, for conflict checks of
    /// explicit transactions; pruned once no open transaction is older.
    recent_deletes: Mutex<HashMap<u64, u64>>,
    /// Publish sequence of the last TRUNCATE.
    truncated_seq: AtomicU64,
    /// Next value of each identity column (by column index).
    identity_next: Mutex<Vec<i64>>,
    /// The columns' DEFAULT expressions planned by the engine, once.
    pub defaults: OnceLock<Arc<Vec<Option<datafusion::logical_expr::Expr>>>>,
    /// Every dataset version handed out, for cleanup to spare (shared with
    /// the table's later definitions).
    pub pins: Arc<VersionPins>,
    /// The newest Lance version carrying flush properties, and those
    /// properties: compaction commits repeat them.
    flushed: Mutex<(u64, HashMap<String, String>)>,
    /// The Lance version at the last old-version cleanup.
    pub cleaned_at: AtomicU64,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table").field("name", &self.def.name).field("id", &self.def.id).finish()
    }
}

/// What a table's directory holds at startup.
pub struct Loaded {
    pub dataset: Option<Dataset>,
    /// A heap table's checkpointed rows.
    pub heap: Option<Vec<RecordBatch>>,
    pub flushed_lsn: u64,
    /// The properties of the newest flush (row-id and identity counters),
    /// and the version that carries them.
    pub properties: HashMap<String, String>,
    pub properties_version: u64,
}

impl Table {
    /// Open a table's Lance dataset, if it has been flushed to at least once,
    /// with the WAL position and row-id counter recorded with it.
    pub async fn load_dataset(dir: &std::path::Path, kind: TableKind) -> Result<Loaded> {
        if kind == TableKind::Heap {
            let (heap, properties) = match super::heap::load(dir)? {
                Some((rows, props)) => (Some(rows), props),
                None => (None, HashMap::new()),
            };
            let flushed_lsn = counter(&properties, FLUSHED_LSN_PROPERTY)?.unwrap_or(0);
            return Ok(Loaded { dataset: None, heap, flushed_lsn, properties, properties_version: 0 });
        }
        if !has_committed_version(dir) {
            // Never flushed, or a crash interrupted the first flush before
            // Lance committed a manifest: the rows are all still in the WAL.
            return Ok(Loaded { dataset: None, heap: None, flushed_lsn: 0, properties: HashMap::new(), properties_version: 0 });
        }
        let ds = Dataset::open(path_str(dir)?).await?;
        let (properties_version, properties) = read_flush_properties(&ds).await?;
        let flushed_lsn = counter(&properties, FLUSHED_LSN_PROPERTY)?.unwrap_or(0);
        Ok(Loaded { dataset: Some(ds), heap: None, flushed_lsn, properties, properties_version })
    }

    /// A table opened from `loaded` (None: a new, empty table), and its
    /// dataset as readers will hold it.
    pub fn open(def: TableDef, dir: PathBuf, loaded: Option<Loaded>) -> Result<(Table, Option<Arc<Dataset>>)> {
        let Some(loaded) = loaded else { return Ok((Table::new(def, dir, HashMap::new(), 0)?, None)) };
        let table = Table::new(def, dir, loaded.properties, loaded.properties_version)?;
        let ds = loaded.dataset.map(|ds| table.pins.track(ds));
        if let Some(ds) = &ds {
            table.cleaned_at.store(ds.version_id(), Ordering::Relaxed);
        }
        Ok((table, ds))
    }

    fn new(def: TableDef, dir: PathBuf, properties: HashMap<String, String>, properties_version: u64) -> Result<Table> {
        let pg_types: Vec<PgType> = def.columns.iter().map(|c| c.pg_type()).collect();
        let columns: Vec<_> = def.columns.iter().zip(&pg_types).map(|(c, t)| (c.name.clone(), t.clone(), true)).collect();
        // Every field is nullable in Arrow: NOT NULL is enforced here, with
        // PostgreSQL's error, rather than by Arrow's schema checks.
        let schema = schema_of(&columns);
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(ROWID, DataType::UInt64, false));
        let storage_schema = Arc::new(Schema::new(fields));
        let next_rowid = counter(&properties, NEXT_ROWID_PROPERTY)?.unwrap_or(0);
        let mut identity_next = vec![1i64; def.columns.len()];
        for (i, next) in identity_next.iter_mut().enumerate() {
            if let Some(v) = counter(&properties, &identity_property(i))? {
                *next = v as i64;
            }
        }
        Ok(Table {
            def,
            pg_types,
            schema,
            storage_schema,
            dir,
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            flush_lock: tokio::sync::Mutex::new(()),
            keys: Mutex::new(None),
            keys_requested: Default::default(),
            row_addresses: Default::default(),
            fragment_readers: Default::default(),
            row_cache: Default::default(),
            fragment_cache: Default::default(),
            next_rowid: AtomicU64::new(next_rowid),
            recent_deletes: Mutex::new(HashMap::new()),
            truncated_seq: AtomicU64::new(0),
            identity_next: Mutex::new(identity_next),
            defaults: OnceLock::new(),
            pins: Arc::default(),
            flushed: Mutex::new((properties_version, properties)),
            cleaned_at: AtomicU64::new(0),
        })
    }

    /// The same table under a new definition (RENAME, ALTER): counters,
    /// its write lock and dataset pins carry over; the key set is reloaded
    /// on next use. `origins[i]` is the old index of new column i.
    pub fn redefine(&self, def: TableDef, origins: &[Option<usize>]) -> Result<Table> {
        let (version, props) = self.flush_properties();
        let mut t = Table::new(def, self.dir.clone(), props, version)?;
        t.write_lock = self.write_lock.clone();
        t.pins = self.pins.clone();
        t.next_rowid = AtomicU64::new(self.next_rowid.load(Ordering::Relaxed));
        let old_identity = self.identity_next.lock().unwrap().clone();
        t.identity_next = Mutex::new(origins.iter().map(|o| o.and_then(|o| old_identity.get(o).copied()).unwrap_or(1)).collect());
        t.recent_deletes = Mutex::new(self.recent_deletes.lock().unwrap().clone());
        t.truncated_seq = AtomicU64::new(self.truncated_seq.load(Ordering::Relaxed));
        t.cleaned_at = AtomicU64::new(self.cleaned_at.load(Ordering::Relaxed));
        Ok(t)
    }

    /// Recovery saw these inserted rows: never hand out their row ids or
    /// identity values again.
    pub fn saw_inserts(&self, batches: &[RecordBatch]) {
        let mut identity = self.identity_next.lock().unwrap();
        for b in batches {
            let ids = b.column(b.num_columns() - 1).as_primitive::<UInt64Type>();
            if let Some(max) = ids.values().iter().max() {
                self.next_rowid.fetch_max(max + 1, Ordering::Relaxed);
            }
            for (i, col) in self.def.columns.iter().enumerate() {
                if col.identity.is_some() {
                    let values = arrow::compute::cast(b.column(i), &DataType::Int64).ok();
                    let max = values.as_ref().and_then(|v| arrow::compute::max(v.as_primitive::<arrow::datatypes::Int64Type>()));
                    if let Some(max) = max {
                        identity[i] = identity[i].max(max + 1);
                    }
                }
            }
        }
    }

    /// Fill identity columns left NULL (omitted) with the next values;
    /// a value given for a `GENERATED ALWAYS` column is refused (428C9).
    fn fill_identity(&self, columns: &mut [ArrayRef]) -> Result<()> {
        if !self.def.columns.iter().any(|c| c.identity.is_some()) {
            return Ok(());
        }
        let mut next = self.identity_next.lock().unwrap();
        for (i, col) in self.def.columns.iter().enumerate() {
            let Some(kind) = col.identity else { continue };
            // Casts only where the column is not bigint already: a cast to
            // the same type still copies the array's data.
            let values = match columns[i].data_type() {
                DataType::Int64 => columns[i].clone(),
                _ => arrow::compute::cast(&columns[i], &DataType::Int64)?,
            };
            let values = values.as_primitive::<arrow::datatypes::Int64Type>();
            if kind == Identity::Always && values.null_count() < values.len() {
                return Err(TarnError::new(
                    "428C9",
                    format!("cannot insert a non-DEFAULT value into column \"{}\"", col.name),
                )
                .with_detail(format!("Column \"{}\" is an identity column defined as GENERATED ALWAYS.", col.name)));
            }
            if values.null_count() == 0 {
                continue;
            }
            let filled: arrow::array::Int64Array = values
                .iter()
                .map(|v| {
                    Some(v.unwrap_or_else(|| {
                        let n = next[i];
                        next[i] += 1;
                        n
                    }))
                })
                .collect();
            columns[i] = match self.schema.field(i).data_type() {
                DataType::Int64 => Arc::new(filled),
                target => arrow::compute::cast_with_options(&filled, target, &STRICT_CAST)?,
            };
        }
        Ok(())
    }

    /// Check rows about to be inserted (NOT NULL, lengths, char(n)
    /// padding) and give them the storage schema with fresh row ids.
    /// INSERT fills identity columns; UPDATE keeps the values it computed.
    pub fn prepare_insert(&self, batches: Vec<RecordBatch>, fill_identity: bool) -> Result<Vec<RecordBatch>> {
        batches
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| {
                // One batch made at the end: each step works on the columns.
                let mut columns = conform(&self.schema, b)?;
                if fill_identity {
                    self.fill_identity(&mut columns)?;
                }
                self.check_row_constraints(&mut columns)?;
                let n = b.num_rows() as u64;
                let first = self.next_rowid.fetch_add(n, Ordering::Relaxed);
                columns.push(Arc::new(UInt64Array::from_iter_values(first..first + n)));
                Ok(RecordBatch::try_new(self.storage_schema.clone(), columns)?)
            })
            .collect()
    }

    /// NOT NULL, varchar(n)/char(n) lengths and char(n) padding.
    fn check_row_constraints(&self, columns: &mut [ArrayRef]) -> Result<()> {
        for (i, (col, pg_type)) in self.def.columns.iter().zip(&self.pg_types).enumerate() {
            let array = &columns[i];
            if col.not_null && array.null_count() > 0 {
                return Err(TarnError::new(
                    sqlstate::NOT_NULL_VIOLATION,
                    format!("null value in column \"{}\" of relation \"{}\" violates not-null constraint", col.name, self.def.name),
                ));
            }
            match *pg_type {
                PgType::Varchar(Some(n)) => check_length(array.as_string::<i32>(), n, "character varying")?,
                PgType::Bpchar(n) => columns[i] = pad_bpchar(array.as_string::<i32>(), n)?,
                PgType::Uuid => columns[i] = map_text(array.as_string::<i32>(), |v| crate::types::uuid::canonical(v).map(Some))?,
                PgType::Json => columns[i] = map_text(array.as_string::<i32>(), |v| crate::types::json::validate(v, "json").map(|_| None))?,
                PgType::Jsonb => columns[i] = map_text(array.as_string::<i32>(), |v| crate::types::json::normalize_jsonb(v).map(Some))?,
                PgType::Name => columns[i] = map_text(array.as_string::<i32>(), |v| Ok(Some(crate::types::decode::truncate_name(v))))?,
                _ => {}
            }
        }
        Ok(())
    }

    pub fn has_primary_key(&self) -> bool {
        !self.def.primary_key.is_empty()
    }

    /// Encoded primary-key values of `batch`'s rows; `key_columns` are the
    /// key's columns in key order.
    pub fn keys_of(&self, key_columns: &[ArrayRef]) -> Result<Vec<Key>> {
        super::keys::encode(key_columns)
    }

    fn key_columns(&self, batch: &RecordBatch) -> Vec<ArrayRef> {
        self.def.primary_key.iter().map(|&i| batch.column(i).clone()).collect()
    }

    /// Whether the key set must be (re)built before a check in WAL failure
    /// generation `generation`.
    pub fn keys_stale(&self, generation: u64) -> bool {
        self.has_primary_key() && !self.keys.lock().unwrap().as_ref().is_some_and(|k| k.generation == generation)
    }

    /// Build the key set from `version` (the latest, settled, under the
    /// write lock).
    pub async fn load_keys(&self, version: &TableVersion, generation: u64) -> Result<()> {
        let mut keys = HashMap::new();
        for batch in read_columns(version, &self.storage_schema, &self.def.primary_key).await? {
            let cols: Vec<ArrayRef> = batch.columns()[..batch.num_columns() - 1].to_vec();
            let ids = batch.column(batch.num_columns() - 1).as_primitive::<UInt64Type>();
            for (key, id) in self.keys_of(&cols)?.into_iter().zip(ids.values().iter()) {
                keys.insert(key, *id);
            }
        }
        debug!(table = %self.def.name, keys = keys.len(), "primary-key set loaded");
        *self.keys.lock().unwrap() = Some(KeySet { map: keys, lsn: version.last_lsn, generation });
        Ok(())
    }

    /// True once, for the first caller to find the key set not loaded (that
    /// caller loads it).
    pub fn keys_wanted(&self) -> bool {
        self.has_primary_key()
            && self.keys.lock().unwrap().is_none()
            && !self.keys_requested.swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    /// The row id holding `key` in the table version whose last LSN is
    /// `lsn`: `Some(None)` if no row has it, `None` if the key set is not
    /// loaded or reflects another version (the caller must scan instead).
    pub fn key_lookup(&self, key: &[u8], lsn: u64) -> Option<Option<u64>> {
        let guard = self.keys.lock().unwrap();
        let keys = guard.as_ref().filter(|k| k.lsn == lsn)?;
        Some(keys.map.get(key).copied())
    }

    /// Check a transaction's writes against the committed keys (loaded):
    /// 23505 if an inserted key exists and is not deleted by the same
    /// transaction, or repeats.
    pub fn check_keys(&self, writes: &TableWrites) -> Result<KeyChanges> {
        if !self.has_primary_key() {
            return Ok(KeyChanges::default());
        }
        let guard = self.keys.lock().unwrap();
        let committed = &guard.as_ref().ok_or_else(|| TarnError::internal("primary-key set used before loading"))?.map;
        let removed: Vec<Key> = writes
            .deleted_keys
            .iter()
            .filter(|(id, key)| committed.get(key) == Some(id))
            .map(|(_, key)| key.clone())
            .collect();
        let removed_set: HashSet<&Key> = removed.iter().collect();
        let inserts = writes.live_inserts();
        let rows: usize = inserts.iter().map(|b| b.num_rows()).sum();
        let mut added: Vec<(Key, u64)> = Vec::with_capacity(rows);
        // Keys this commit adds, to find one it repeats (none to find in one row).
        let mut fresh: HashSet<Key> = HashSet::new();
        for batch in inserts {
            let cols = self.key_columns(&batch);
            let ids = batch.column(batch.num_columns() - 1).as_primitive::<UInt64Type>();
            for (r, key) in self.keys_of(&cols)?.into_iter().enumerate() {
                let exists = !writes.truncate && committed.contains_key(&key) && !removed_set.contains(&key);
                if exists || (rows > 1 && !fresh.insert(key.clone())) {
                    return Err(self.duplicate_key_error(&cols, r));
                }
                added.push((key, ids.value(r)));
            }
        }
        drop(removed_set);
        Ok(KeyChanges { truncate: writes.truncate, removed, added })
    }

    /// Split `batches` into rows whose key neither exists (committed and not
    /// deleted by `writes`, or inserted by `writes`) nor repeats an earlier
    /// row of `batches`, and the others. With `unique_proposals`, a key
    /// repeated within `batches` is an error (21000), as PostgreSQL's
    /// `ON CONFLICT DO UPDATE` refuses to affect a row twice.
    pub fn split_keys(
        &self,
        writes: &TableWrites,
        batches: Vec<RecordBatch>,
        unique_proposals: bool,
    ) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>)> {
        let guard = self.keys.lock().unwrap();
        let committed = &guard.as_ref().ok_or_else(|| TarnError::internal("primary-key set used before loading"))?.map;
        let removed: HashSet<&Key> =
            writes.deleted_keys.iter().filter(|(id, key)| committed.get(key) == Some(id)).map(|(_, k)| k).collect();
        let mut taken: HashSet<Key> = HashSet::new();
        for b in writes.live_inserts() {
            taken.extend(self.keys_of(&self.key_columns(&b))?);
        }
        let (mut absent, mut present) = (vec![], vec![]);
        let mut proposed: HashSet<Key> = HashSet::new();
        for batch in batches {
            let keys = self.keys_of(&self.key_columns(&batch))?;
            let mut keep = Vec::with_capacity(keys.len());
            for k in keys {
                if !proposed.insert(k.clone()) && unique_proposals {
                    return Err(TarnError::new("21000", "ON CONFLICT DO UPDATE command cannot affect row a second time")
                        .with_hint("Ensure that no rows proposed for insertion within the same command have duplicate constrained values."));
                }
                let exists = (!writes.truncate && committed.contains_key(&k) && !removed.contains(&k)) || taken.contains(&k);
                if !exists {
                    taken.insert(k);
                }
                keep.push(!exists);
            }
            let keep = arrow::array::BooleanArray::from(keep);
            let kept = arrow::compute::filter_record_batch(&batch, &keep)?;
            let other = arrow::compute::filter_record_batch(&batch, &arrow::compute::not(&keep)?)?;
            if kept.num_rows() > 0 {
                absent.push(kept);
            }
            if other.num_rows() > 0 {
                present.push(other);
            }
        }
        Ok((absent, present))
    }

    /// Check rows an INSERT is about to add to `writes` (not yet in it)
    /// against the committed keys (loaded) and the transaction's own: 23505
    /// on a clash. Returns the own-key set with the new keys added.
    pub fn check_new_keys(&self, writes: &TableWrites, rows: &[RecordBatch]) -> Result<Arc<HashMap<Key, u64>>> {
        let guard = self.keys.lock().unwrap();
        let committed = &guard.as_ref().ok_or_else(|| TarnError::internal("primary-key set used before loading"))?.map;
        let removed: HashSet<&Key> =
            writes.deleted_keys.iter().filter(|(id, key)| committed.get(key) == Some(id)).map(|(_, k)| k).collect();
        let mut own = match &writes.own_keys {
            Some(keys) => keys.clone(),
            None => {
                let mut keys = HashMap::new();
                for b in writes.live_inserts() {
                    let ids = b.column(b.num_columns() - 1).as_primitive::<UInt64Type>().clone();
                    keys.extend(self.keys_of(&self.key_columns(&b))?.into_iter().zip(ids.values().iter().copied()));
                }
                Arc::new(keys)
            }
        };
        let own_mut = Arc::make_mut(&mut own);
        for batch in rows {
            let cols = self.key_columns(batch);
            let ids = batch.column(batch.num_columns() - 1).as_primitive::<UInt64Type>();
            for (r, key) in self.keys_of(&cols)?.into_iter().enumerate() {
                let exists = !writes.truncate && committed.contains_key(&key) && !removed.contains(&key);
                if exists || own_mut.contains_key(&key) {
                    return Err(self.duplicate_key_error(&cols, r));
                }
                own_mut.insert(key, ids.value(r));
            }
        }
        Ok(own)
    }

    /// Apply a queued commit's key changes; `lsn` is the table's last LSN
    /// once the commit is published.
    pub fn apply_keys(&self, changes: KeyChanges, lsn: u64, generation: u64) {
        if let Some(keys) = self.keys.lock().unwrap().as_mut().filter(|k| k.generation == generation) {
            if changes.truncate {
                keys.map.clear();
            }
            for k in changes.removed {
                keys.map.remove(&k);
            }
            keys.map.extend(changes.added);
            keys.lsn = lsn;
        }
    }

    fn duplicate_key_error(&self, cols: &[ArrayRef], row: usize) -> TarnError {
        let names: Vec<&str> = self.def.primary_key.iter().map(|&i| self.def.columns[i].name.as_str()).collect();
        let values: Vec<String> = cols
            .iter()
            .map(|c| {
                arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default())
                    .map(|f| f.value(row).to_string())
                    .unwrap_or_default()
            })
            .collect();
        TarnError::new(
            sqlstate::UNIQUE_VIOLATION,
            format!("duplicate key value violates unique constraint \"{}\"", self.def.pkey_name()),
        )
        .with_detail(format!("Key ({})=({}) already exists.", names.join(", "), values.join(", ")))
    }

    /// Record the deletes of a publish (`seq`) for conflict checks.
    pub fn note_deletes(&self, seq: u64, truncate: bool, ids: &[u64]) {
        if truncate {
            self.truncated_seq.store(seq, Ordering::Release);
        }
        if !ids.is_empty() {
            let mut recent = self.recent_deletes.lock().unwrap();
            recent.extend(ids.iter().map(|&id| (id, seq)));
        }
    }

    /// Whether another transaction deleted or truncated what `writes`
    /// deleted after `read_seq` (first committer wins).
    pub fn conflicts(&self, read_seq: u64, writes: &TableWrites) -> bool {
        if writes.deletes.is_empty() && !writes.truncate {
            return false;
        }
        if self.truncated_seq.load(Ordering::Acquire) > read_seq {
            return true;
        }
        let recent = self.recent_deletes.lock().unwrap();
        writes.deletes.keys().any(|id| recent.get(id).is_some_and(|&s| s > read_seq))
    }

    /// Forget deletes no open transaction can conflict with.
    pub fn prune_recent_deletes(&self, oldest_reader: Option<u64>) {
        let mut recent = self.recent_deletes.lock().unwrap();
        match oldest_reader {
            None => recent.clear(),
            Some(seq) => recent.retain(|_, s| *s > seq),
        }
    }

    /// Remove the table's files (after it left the catalog).
    pub fn remove_files(&self) -> Result<()> {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(|e| TarnError::io("removing table files", e))?;
        }
        Ok(())
    }
}

/// Whether Lance has committed at least one version in `dir`.
fn has_committed_version(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir.join("_versions"))
        .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".manifest")))
        .unwrap_or(false)
}

fn path_str(p: &std::path::Path) -> Result<&str> {
    p.to_str().ok_or_else(|| TarnError::internal(format!("data path {} is not UTF-8", p.display())))
}

/// Casts that fail on overflow instead of writing NULL.
pub(crate) const STRICT_CAST: arrow::compute::CastOptions<'static> =
    arrow::compute::CastOptions { safe: false, format_options: arrow::util::display::FormatOptions::new() };

/// Give a batch exactly the table's schema (names, metadata, nullability).
fn conform(schema: &SchemaRef, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    if batch.num_columns() != schema.fields().len() {
        return Err(TarnError::internal(format!(
            "batch has {} columns, table has {}",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                return Ok(c.clone());
            }
            // Text into a type PostgreSQL parses its own way (interval, arrays, …).
            let pg = PgType::from_field(f);
            if let (Some(text), true) = (c.as_string_opt::<i32>(), crate::types::decode::parsed_from_text_by_tarn(&pg)) {
                return crate::types::decode::text_column(text, &pg).map_err(|(_, e)| e);
            }
            Ok(arrow::compute::cast_with_options(c, f.data_type(), &STRICT_CAST)?)
        })
        .collect()
}

fn check_length(values: &StringArray, n: u32, type_name: &str) -> Result<()> {
    for v in values.iter().flatten() {
        // No more bytes than n means no more characters.
        if v.len() > n as usize && v.chars().count() > n as usize && v.trim_end_matches(' ').chars().count() > n as usize {
            return Err(TarnError::new(sqlstate::STRING_DATA_RIGHT_TRUNCATION, format!("value too long for type {type_name}({n})")));
        }
    }
    Ok(())
}

/// Check (and rewrite) each value of a text-backed column: `f` returns the
/// value's stored form, or None to keep it as it is.
fn map_text(values: &StringArray, f: impl Fn(&str) -> Result<Option<String>>) -> Result<ArrayRef> {
    let mut changed = false;
    let out = values
        .iter()
        .map(|v| {
            v.map(|s| {
                Ok(match f(s)? {
                    Some(new) if new != s => {
                        changed = true;
                        new
                    }
                    _ => s.to_string(),
                })
            })
            .transpose()
        })
        .collect::<Result<StringArray>>()?;
    Ok(if changed { Arc::new(out) } else { Arc::new(values.clone()) })
}

/// `char(n)`: blank-pad to n characters; longer values may only exceed it by spaces.
fn pad_bpchar(values: &StringArray, n: u32) -> Result<ArrayRef> {
    check_length(values, n, "character")?;
    let n = n as usize;
    let mut padded = arrow::array::StringBuilder::with_capacity(values.len(), values.len() * n);
    let spaces = " ".repeat(n);
    for v in values.iter() {
        let Some(s) = v else {
            padded.append_null();
            continue;
        };
        let len = if s.is_ascii() { s.len() } else { s.chars().count() };
        if len >= n {
            // Longer only by trailing spaces (checked above): cut them.
            let end = s.char_indices().nth(n).map_or(s.len(), |(i, _)| i);
            padded.append_value(&s[..end]);
        } else {
            use std::fmt::Write;
            let _ = padded.write_str(s);
            let _ = padded.write_str(&spaces[..n - len]);
            padded.append_value("");
        }
    }
    Ok(Arc::new(padded.finish()))
}

/// The properties of the newest flush (the newest version that has them),
/// and that version.
async fn read_flush_properties(ds: &Dataset) -> Result<(u64, HashMap<String, String>)> {
    let mut versions = ds.versions().await?;
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    for v in versions {
        let at = if v.version == ds.version_id() { ds.clone() } else { ds.checkout_version(v.version).await? };
        if let Some(tx) = at.read_transaction().await? {
            if let Some(props) = tx.transaction_properties.as_ref().filter(|p| p.contains_key(FLUSHED_LSN_PROPERTY)) {
                return Ok((v.version, props.as_ref().clone()));
            }
        }
    }
    Ok((0, HashMap::new()))
}

/// A counter stored in flush properties.
fn counter(props: &HashMap<String, String>, name: &str) -> Result<Option<u64>> {
    props
        .get(name)
        .map(|v| v.parse().map_err(|_| TarnError::internal(format!("bad {name} {v:?} in Lance transaction properties"))))
        .transpose()
}

fn identity_property(column: usize) -> String {
    format!("tarn.identity.{column}")
}
