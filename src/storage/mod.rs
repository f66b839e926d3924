//! Storage: the durable catalog, the WAL, and the tables (Lance + delta).
//!
//! Opening a data directory is recovery (brief invariant 5): load the catalog,
//! open each table at its latest Lance version, then replay every WAL record
//! newer than the LSN recorded with that version. A background flusher folds
//! deltas into Lance in large commits and lets the WAL drop what is folded.

pub mod catalog;
pub mod table;
pub mod wal;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tracing::{info, warn};

use crate::error::{Result, TarnError, sqlstate};
use catalog::{Catalog, ColumnDef, TableDef};
use table::Table;
use wal::{Wal, WalEntry};

/// When the flusher folds a table's delta into Lance.
#[derive(Debug, Clone)]
pub struct FlushPolicy {
    /// Flush once a table's delta holds this many rows.
    pub max_rows: usize,
    /// ... or once its oldest row has waited this long.
    pub max_age: Duration,
    /// How often the flusher looks.
    pub interval: Duration,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy { max_rows: 100_000, max_age: Duration::from_secs(30), interval: Duration::from_millis(500) }
    }
}

/// A table to create, as the SQL layer describes it.
#[derive(Debug, Clone)]
pub struct NewTable {
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<usize>,
}

/// Everything durable, shared by all sessions.
pub struct Storage {
    dir: PathBuf,
    catalog: tokio::sync::Mutex<Catalog>,
    tables: RwLock<HashMap<(String, String), Arc<Table>>>,
    wal: Arc<Wal>,
    policy: FlushPolicy,
    _lock: fs::File,
}

impl Storage {
    /// Open (and recover) the data directory, creating it if needed.
    pub async fn open(dir: &Path, policy: FlushPolicy) -> Result<Arc<Storage>> {
        fs::create_dir_all(dir.join("tables")).map_err(|e| TarnError::io("creating data directory", e))?;
        let dir = dir.canonicalize().map_err(|e| TarnError::io("resolving data directory", e))?;
        let lock = lock_data_dir(&dir)?;
        let catalog = Catalog::open(&dir)?;
        remove_orphan_table_dirs(&dir, &catalog);

        // Open every table's Lance version first: the WAL must resume above
        // every LSN already used, and a fully checkpointed log is empty.
        let mut loaded = vec![];
        let mut max_lsn = 0;
        for def in catalog.tables() {
            let tdir = table_dir(&dir, def.id);
            let (dataset, flushed) = Table::load_dataset(&tdir).await?;
            max_lsn = max_lsn.max(flushed);
            loaded.push((def.clone(), tdir, dataset, flushed));
        }
        let recovered = wal::recover(&dir.join("wal"))?;
        let next_lsn = recovered.last_lsn.max(max_lsn) + 1;
        let wal = Arc::new(Wal::start(&dir.join("wal"), next_lsn)?);

        let mut by_id = HashMap::new();
        let mut tables = HashMap::new();
        for (def, tdir, dataset, flushed) in loaded {
            let key = (def.schema.clone(), def.name.clone());
            let t = Arc::new(Table::new(def, tdir, wal.clone(), dataset, flushed));
            by_id.insert(t.def.id, t.clone());
            tables.insert(key, t);
        }
        let mut replayed = 0usize;
        for rec in recovered.records {
            match rec.entry {
                WalEntry::Insert { table_id, batches } => {
                    // Records of dropped tables are simply not replayed.
                    if let Some(t) = by_id.get(&table_id) {
                        if rec.lsn > t.flushed_lsn() {
                            replayed += batches.iter().map(|b| b.num_rows()).sum::<usize>();
                            t.replay(rec.lsn, batches)?;
                        }
                    }
                }
            }
        }
        info!(dir = %dir.display(), tables = tables.len(), replayed_rows = replayed, next_lsn, "storage opened");
        Ok(Arc::new(Storage {
            dir,
            catalog: tokio::sync::Mutex::new(catalog),
            tables: RwLock::new(tables),
            wal,
            policy,
            _lock: lock,
        }))
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<Arc<Table>> {
        self.tables.read().unwrap().get(&(schema.to_string(), name.to_string())).cloned()
    }

    pub fn table_names(&self, schema: &str) -> Vec<String> {
        let mut names: Vec<String> =
            self.tables.read().unwrap().keys().filter(|(s, _)| s == schema).map(|(_, n)| n.clone()).collect();
        names.sort();
        names
    }

    /// Create a table durably. Returns false if it existed and `if_not_exists`.
    pub async fn create_table(&self, new: NewTable, if_not_exists: bool) -> Result<bool> {
        let mut catalog = self.catalog.lock().await;
        if catalog.find(&new.schema, &new.name).is_some() {
            if if_not_exists {
                return Ok(false);
            }
            return Err(TarnError::new(sqlstate::DUPLICATE_TABLE, format!("relation \"{}\" already exists", new.name)));
        }
        let id = catalog.allocate_id();
        let def = TableDef { id, schema: new.schema, name: new.name, columns: new.columns, primary_key: new.primary_key };
        catalog.commit(|tables| tables.push(def.clone()))?;
        let tdir = table_dir(&self.dir, id);
        let table = Arc::new(Table::new(def.clone(), tdir, self.wal.clone(), None, 0));
        self.tables.write().unwrap().insert((def.schema.clone(), def.name.clone()), table);
        info!(table = %def.name, id, "table created");
        Ok(true)
    }

    /// Drop a table durably. Returns false if it was absent and `if_exists`.
    pub async fn drop_table(&self, schema: &str, name: &str, if_exists: bool) -> Result<bool> {
        let mut catalog = self.catalog.lock().await;
        let Some(def) = catalog.find(schema, name).cloned() else {
            if if_exists {
                return Ok(false);
            }
            return Err(TarnError::undefined_table(name));
        };
        catalog.commit(|tables| tables.retain(|t| t.id != def.id))?;
        let removed = self.tables.write().unwrap().remove(&(schema.to_string(), name.to_string()));
        if let Some(t) = removed {
            // The catalog no longer names it, so its files are garbage even
            // if removing them fails now; startup removes orphans again.
            if let Err(e) = t.remove_files() {
                warn!(table = name, error = %e, "could not remove dropped table's files");
            }
        }
        info!(table = name, id = def.id, "table dropped");
        Ok(true)
    }

    /// Fold every table's delta into Lance and trim the WAL.
    pub async fn flush_all(&self) -> Result<()> {
        let tables: Vec<_> = self.tables.read().unwrap().values().cloned().collect();
        for t in tables {
            t.flush().await?;
        }
        self.checkpoint().await;
        Ok(())
    }

    async fn checkpoint(&self) {
        self.wal
            .checkpoint_where(|| self.tables.read().unwrap().values().filter_map(|t| t.oldest_unflushed_lsn()).min())
            .await;
    }

    /// One pass of the flusher: flush tables whose delta is big or old.
    pub async fn flush_due(&self) -> Result<usize> {
        let tables: Vec<_> = self.tables.read().unwrap().values().cloned().collect();
        let mut flushed = 0;
        for t in tables {
            let (rows, age) = t.delta_stats();
            if rows > 0 && (rows >= self.policy.max_rows || age.is_some_and(|a| a >= self.policy.max_age)) {
                flushed += t.flush().await?;
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

fn table_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join("tables").join(format!("{id}.lance"))
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
        let id = name.strip_suffix(".lance").and_then(|n| n.parse::<u64>().ok());
        if let Some(id) = id {
            if !catalog.tables().iter().any(|t| t.id == id) {
                info!(dir = %entry.path().display(), "removing files of a dropped table");
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}
