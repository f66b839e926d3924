//! Bulk loads: an autocommit `COPY … FROM STDIN` into a Lance table without
//! a primary key writes its rows straight into new Lance data files while
//! the data arrives, and commits them as one Lance version when it ends.
//!
//! The usual write path (one WAL record, then the in-memory delta, folded
//! into Lance later) would hold the whole COPY in memory and write every row
//! twice. Here nothing is visible, and nothing survives a crash, until the
//! commit: the data files are not named by any Lance version before it, so
//! a failed or interrupted COPY leaves no rows (its files are removed, or
//! after a crash left for Lance's cleanup of unreferenced files). The commit
//! is the brief's invariants kept another way:
//! - *acknowledged means durable*: the files and the new manifest are
//!   fsynced before `COPY n` is sent;
//! - *whole transactions only*: one Lance commit names every file;
//! - *order*: under the table's flush and write locks, the delta is folded
//!   first, so every change committed before the COPY (a TRUNCATE, deletes)
//!   applies to the rows before it and none to the copied rows; the new
//!   version records the same flushed WAL position, so recovery replays
//!   nothing twice.
//!
//! A table with a primary key takes the usual path (its keys are checked
//! against the key set at commit), as does a COPY inside a transaction block
//! (it commits with the block's other writes in one WAL record).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use lance::Dataset;
use lance::dataset::transaction::{Operation, Transaction};
use lance::dataset::{CommitBuilder, InsertBuilder, WriteMode, WriteParams};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::Storage;
use super::catalog::TableKind;
use super::durable::sync_tree;
use super::lance_types::{in_field_order, lance_field, to_lance};
use super::table::Table;
use crate::error::{Result, TarnError, sqlstate};

/// Batches queued for the Lance writer: enough to keep it busy while the
/// next one is parsed, few enough to bound memory.
const QUEUED_BATCHES: usize = 4;
/// Rows between progress lines in the log.
const PROGRESS_EVERY: u64 = 1_000_000;

/// Whether a `COPY FROM` into `table` outside a transaction block can be a
/// bulk load.
pub fn bulk_loadable(table: &Table) -> bool {
    table.def.kind == TableKind::Lance && !table.has_primary_key()
}

/// A bulk load in progress: rows go to a Lance writer task as they come.
pub struct BulkLoad {
    table: Arc<Table>,
    /// Started with the first rows (an empty COPY writes nothing).
    writer: Option<Writer>,
    rows: u64,
    started: Instant,
}

struct Writer {
    /// The field order the files are written in (the dataset's, or the
    /// storage schema's for a table Lance has not seen yet).
    schema: SchemaRef,
    sender: Option<mpsc::Sender<Result<RecordBatch, DataFusionError>>>,
    task: Option<JoinHandle<Result<Transaction>>>,
    /// The dataset version the files were written against (None: written
    /// to create the dataset).
    base: Option<Arc<Dataset>>,
}

impl Storage {
    /// Begin a bulk load into `table` (see [`bulk_loadable`]).
    pub fn start_bulk_load(&self, table: Arc<Table>) -> BulkLoad {
        BulkLoad { table, writer: None, rows: 0, started: Instant::now() }
    }

    /// Make a finished bulk load's files part of the table: one Lance commit
    /// after folding the delta, fsynced, then published.
    async fn commit_bulk_load(&self, table: &Arc<Table>, written: Transaction, base: Option<Arc<Dataset>>) -> Result<()> {
        let _flushing = table.flush_lock.lock().await;
        let _writing = table.write_lock.lock().await;
        self.settle().await;
        if !self.table_by_id(table.def.id).is_some_and(|t| Arc::ptr_eq(&t, table)) {
            return Err(TarnError::new(
                sqlstate::SERIALIZATION_FAILURE,
                format!("could not serialize access: table \"{}\" was altered or dropped during COPY", table.def.name),
            ));
        }
        self.flush_table_locked(table).await?;
        let version = self.snapshot().table(table.def.id).unwrap_or_default();
        let props = Arc::new(table.flush_props(version.last_lsn));
        sync_tree(table.dir.join("data")).await?;
        let (fragments, created_schema) = match &written.operation {
            Operation::Append { fragments } => (fragments.clone(), None),
            Operation::Overwrite { fragments, schema, .. } => (fragments.clone(), Some(schema.clone())),
            other => return Err(TarnError::internal(format!("Lance staged an unexpected {other:?}"))),
        };
        let written_schema = created_schema.as_ref().or(base.as_ref().map(|b| b.schema())).cloned();
        let committed = match version.dataset.clone() {
            Some(ds) => {
                // Files name their fields by Lance field id: they fit any
                // version whose schema is the one they were written with.
                if written_schema.as_ref() != Some(ds.schema()) {
                    return Err(TarnError::new(
                        sqlstate::SERIALIZATION_FAILURE,
                        format!("could not serialize access: table \"{}\" was altered during COPY", table.def.name),
                    ));
                }
                let tx = Transaction {
                    read_version: ds.version_id(),
                    operation: Operation::Append { fragments },
                    transaction_properties: Some(props.clone()),
                    ..written
                };
                CommitBuilder::new(ds).execute(tx).await?
            }
            None if created_schema.is_some() => {
                let tx = Transaction { transaction_properties: Some(props.clone()), ..written };
                let uri = table.dir.to_str().ok_or_else(|| TarnError::internal("table path is not UTF-8"))?;
                CommitBuilder::new(uri).execute(tx).await?
            }
            None => return Err(TarnError::internal(format!("table \"{}\" lost its Lance dataset during COPY", table.def.name))),
        };
        sync_tree(table.dir.clone()).await?;
        let committed = table.committed(committed, (*props).clone());
        self.publish_table_version(table.def.id, |v| v.dataset = Some(committed));
        Ok(())
    }
}

impl BulkLoad {
    /// Queue rows (storage schema, constraints checked) for the writer.
    pub async fn push(&mut self, storage: &Storage, rows: Vec<RecordBatch>) -> Result<()> {
        for batch in rows {
            let n = batch.num_rows() as u64;
            if n == 0 {
                continue;
            }
            let writer = match &mut self.writer {
                Some(w) => w,
                None => self.writer.insert(Writer::start(storage, &self.table)?),
            };
            let batch = to_lance(&batch)?;
            let batch = RecordBatch::try_new(writer.schema.clone(), in_field_order(&batch, &writer.schema)?.columns().to_vec())?;
            let sender = writer.sender.as_ref().ok_or_else(|| TarnError::internal("bulk load already finished"))?;
            if sender.send(Ok(batch)).await.is_err() {
                // The writer stopped early: its error says why.
                return Err(writer.finish().await.err().unwrap_or_else(|| TarnError::internal("Lance writer stopped early")));
            }
            let before = self.rows;
            self.rows += n;
            if self.rows / PROGRESS_EVERY > before / PROGRESS_EVERY {
                let secs = self.started.elapsed().as_secs_f64();
                info!(table = %self.table.def.name, rows = self.rows, rows_per_s = (self.rows as f64 / secs) as u64, "COPY progress");
            }
        }
        Ok(())
    }

    /// The data ended: commit everything written. Returns the rows loaded.
    pub async fn finish(&mut self, storage: &Storage) -> Result<u64> {
        let Some(mut writer) = self.writer.take() else { return Ok(0) };
        let written = writer.finish().await;
        let result = match written {
            Ok(tx) => storage.commit_bulk_load(&self.table, tx.clone(), writer.base.clone()).await.map_err(|e| (e, Some(tx))),
            Err(e) => Err((e, None)),
        };
        match result {
            Ok(()) => {
                let ms = self.started.elapsed().as_millis() as u64;
                info!(table = %self.table.def.name, rows = self.rows, ms, "COPY committed as one Lance version");
                Ok(self.rows)
            }
            Err((e, tx)) => {
                if let Some(tx) = tx {
                    remove_files(&self.table, &tx).await;
                }
                Err(e)
            }
        }
    }
}

impl Drop for BulkLoad {
    /// An abandoned load (bad row, CopyFail, lost connection): stop the
    /// writer and remove what it wrote.
    fn drop(&mut self) {
        let Some(mut writer) = self.writer.take() else { return };
        let table = self.table.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Ok(tx) = writer.finish().await {
                    remove_files(&table, &tx).await;
                }
            });
        }
    }
}

impl Writer {
    fn start(storage: &Storage, table: &Table) -> Result<Writer> {
        let base = storage.snapshot().table(table.def.id).and_then(|v| v.dataset.clone());
        let schema: SchemaRef = match &base {
            Some(ds) => Arc::new(Schema::from(ds.schema())),
            None => Arc::new(Schema::new_with_metadata(
                table.storage_schema.fields().iter().map(|f| lance_field(f)).collect::<Vec<_>>(),
                table.storage_schema.metadata().clone(),
            )),
        };
        let uri = table.dir.to_str().ok_or_else(|| TarnError::internal("table path is not UTF-8"))?.to_string();
        let (sender, receiver) = mpsc::channel(QUEUED_BATCHES);
        let batches = futures::stream::unfold(receiver, |mut r| async move { r.recv().await.map(|b| (b, r)) });
        let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), batches));
        let dataset = base.clone();
        let task = tokio::spawn(async move {
            let mode = if dataset.is_some() { WriteMode::Append } else { WriteMode::Create };
            let params = WriteParams { mode, skip_auto_cleanup: true, ..Default::default() };
            let builder = match dataset {
                Some(ds) => InsertBuilder::new(ds),
                None => InsertBuilder::new(uri.as_str()),
            };
            Ok(builder.with_params(&params).execute_uncommitted_stream(stream).await?)
        });
        Ok(Writer { schema, sender: Some(sender), task: Some(task), base })
    }

    /// Close the queue and wait for the writer's transaction.
    async fn finish(&mut self) -> Result<Transaction> {
        self.sender = None;
        let task = self.task.take().ok_or_else(|| TarnError::internal("bulk load writer already finished"))?;
        task.await.map_err(|e| TarnError::internal(format!("Lance writer task failed: {e}")))?
    }
}

/// Remove the data files of a load that was not committed.
async fn remove_files(table: &Table, tx: &Transaction) {
    let fragments = match &tx.operation {
        Operation::Append { fragments } | Operation::Overwrite { fragments, .. } => fragments,
        _ => return,
    };
    for file in fragments.iter().flat_map(|f| f.files.iter()) {
        let path = table.dir.join("data").join(&file.path);
        if let Err(e) = tokio::fs::remove_file(&path).await {
            warn!(path = %path.display(), error = %e, "could not remove a data file of an abandoned COPY");
        }
    }
}
