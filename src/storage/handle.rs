//! The DataFusion face of a table for one session: a `TableProvider` that
//! reads the session transaction's snapshot plus its own uncommitted writes,
//! and an INSERT sink that adds rows to those writes.

use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{Constraint, Constraints};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::TryStreamExt;

use super::Storage;
use super::scan::{self, ScanSource};
use super::table::Table;
use super::txn::{TableWrites, TxnHandle};
use super::version::TableVersion;
use crate::error::{TarnError, to_df};

/// One table as one session's statements see it.
pub struct TableHandle {
    storage: Arc<Storage>,
    table: Arc<Table>,
    txn: TxnHandle,
    /// Expose the hidden row id as a last column (UPDATE/DELETE planning).
    with_rowid: bool,
    constraints: Constraints,
}

impl fmt::Debug for TableHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TableHandle({})", self.table.def.name)
    }
}

impl TableHandle {
    pub fn new(storage: Arc<Storage>, table: Arc<Table>, txn: TxnHandle, with_rowid: bool) -> TableHandle {
        let constraints = if table.def.primary_key.is_empty() {
            Constraints::default()
        } else {
            Constraints::new_unverified(vec![Constraint::PrimaryKey(table.def.primary_key.clone())])
        };
        TableHandle { storage, table, txn, with_rowid, constraints }
    }

    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    /// The committed version and own writes a scan reads, taken together.
    fn view(&self) -> (Arc<TableVersion>, TableWrites) {
        let txn = self.txn.lock().unwrap();
        let version = txn.snapshot.table(self.table.def.id).unwrap_or_default();
        let own = txn.writes.get(&self.table.def.id).cloned().unwrap_or_default();
        (version, own)
    }
}

impl TableHandle {
    /// The row a scan with these `filters` reads, by key probe: its key and
    /// the row (or an empty batch), or None if the filters do not pin the
    /// primary key or the probe cannot answer exactly (scan instead).
    /// `projection` indexes [`TableProvider::schema`].
    pub async fn probe(&self, projection: Option<&Vec<usize>>, filters: &[Expr]) -> crate::error::Result<Option<RecordBatch>> {
        let (version, own) = self.view();
        if !own.is_empty() {
            return Ok(None);
        }
        Ok(self.probe_key(&version, projection, filters).await?.map(|(_, row)| row))
    }

    /// INSERT `batches` (the table's user columns) as the table's sink
    /// does, for a plan run without physical planning (`engine::point`).
    pub async fn insert(&self, batches: Vec<RecordBatch>) -> crate::error::Result<u64> {
        insert_rows(&self.storage, &self.table, &self.txn, batches).await
    }

    async fn probe_key(
        &self,
        version: &TableVersion,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
    ) -> crate::error::Result<Option<(Vec<datafusion::common::ScalarValue>, RecordBatch)>> {
        let Some(key) = super::key_probe::pinned_key(&self.table, filters) else { return Ok(None) };
        if self.table.keys_wanted() {
            // After a restart the key set loads with the first write;
            // a read-only workload loads it here, in the background.
            let (storage, table) = (self.storage.clone(), self.table.clone());
            tokio::spawn(async move { storage.load_keys(&table).await });
        }
        let wanted = projection.cloned().unwrap_or_else(|| (0..self.schema().fields().len()).collect());
        let row = super::key_probe::probe(&self.table, version, &key, &wanted).await?;
        Ok(row.map(|row| (key, row)))
    }
}

#[async_trait]
impl TableProvider for TableHandle {
    fn schema(&self) -> SchemaRef {
        if self.with_rowid { self.table.storage_schema.clone() } else { self.table.schema.clone() }
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn constraints(&self) -> Option<&Constraints> {
        Some(&self.constraints)
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        let i = self.table.def.columns.iter().position(|c| c.name == column)?;
        self.table.defaults.get()?.get(i)?.as_ref()
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Lance applies the filters exactly, but the delta is scanned
        // unfiltered, so DataFusion must still filter the union.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (version, own) = self.view();
        if own.is_empty() {
            if let Some((key, row)) = self.probe_key(&version, projection, filters).await.map_err(to_df)? {
                return Ok(Arc::new(super::key_probe::KeyProbeExec::new(&self.table, key, row)));
            }
        }
        let source = ScanSource {
            version: &version,
            own_truncate: own.truncate,
            own_inserts: &own.inserts,
            own_deletes: Some(&own.deletes),
        };
        scan::plan(source, &self.table.storage_schema, state, projection, filters, limit).await
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(to_df(TarnError::not_supported(format!("{insert_op} is not supported"))));
        }
        let sink = InsertSink { storage: self.storage.clone(), table: self.table.clone(), txn: self.txn.clone() };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// Receives the rows of one INSERT statement into the transaction's writes.
struct InsertSink {
    storage: Arc<Storage>,
    table: Arc<Table>,
    txn: TxnHandle,
}

impl fmt::Debug for InsertSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InsertSink({})", self.table.def.name)
    }
}

impl DisplayAs for InsertSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TarnInsert: table={}", self.table.def.name)
    }
}

#[async_trait]
impl DataSink for InsertSink {
    fn schema(&self) -> &SchemaRef {
        &self.table.schema
    }

    async fn write_all(&self, data: SendableRecordBatchStream, _ctx: &Arc<TaskContext>) -> DfResult<u64> {
        let batches: Vec<RecordBatch> = data.try_collect().await?;
        insert_rows(&self.storage, &self.table, &self.txn, batches).await.map_err(to_df)
    }
}

/// Add `batches` (in the table's user columns, as an INSERT's input
/// gives them) to the transaction's writes: identity and constraints
/// applied, conflicts skipped or set aside as the statement asks, a copy
/// kept for RETURNING. Returns the rows written.
async fn insert_rows(storage: &Storage, table: &Arc<Table>, txn: &TxnHandle, batches: Vec<RecordBatch>) -> crate::error::Result<u64> {
    let mut rows = table.prepare_insert(batches, true)?;
    let (skip, upsert) = {
        let t = txn.lock().unwrap();
        (t.statement.skip_conflicts, t.statement.conflicts.is_some())
    };
    if skip || upsert {
        let (absent, present) = storage.split_conflicts(table, txn, rows, upsert).await?;
        rows = absent;
        if upsert {
            let user_columns: Vec<usize> = (0..table.schema.fields().len()).collect();
            let mut t = txn.lock().unwrap();
            let conflicts = t.statement.conflicts.get_or_insert_with(Vec::new);
            for b in present {
                conflicts.push(RecordBatch::try_new(table.schema.clone(), b.project(&user_columns)?.columns().to_vec())?);
            }
        }
    }
    let count: usize = rows.iter().map(|b| b.num_rows()).sum();
    {
        let mut txn = txn.lock().unwrap();
        if let Some(capture) = txn.statement.capture.as_mut() {
            let user_columns: Vec<usize> = (0..table.schema.fields().len()).collect();
            for b in &rows {
                let projected = b.project(&user_columns)?;
                capture.push(RecordBatch::try_new(table.schema.clone(), projected.columns().to_vec())?);
            }
        }
    }
    storage.stage_inserts(table, txn, rows).await?;
    Ok(count as u64)
}
