//! A Tarn table: a Lance dataset plus an in-memory delta of WAL-durable rows
//! not yet folded into Lance (brief invariant 4).
//!
//! Reads see one consistent snapshot — the dataset version and the delta
//! taken together under one lock — so a flush that moves rows from the delta
//! into Lance is invisible to readers. Writes are checked (NOT NULL, lengths,
//! primary key), made durable in the WAL, and only then applied to the delta.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{Constraint, Constraints};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use datafusion::datasource::memory::MemorySourceConfig;
use futures::TryStreamExt;
use lance::Dataset;
use lance::dataset::{InsertBuilder, WriteMode, WriteParams};
use tracing::{debug, info};

use super::catalog::TableDef;
use super::wal::{Wal, WalEntry};
use crate::error::{Result, TarnError, sqlstate, to_df};
use crate::types::{PgType, schema_of};

/// Transaction property holding the last WAL LSN folded into a Lance version.
pub const FLUSHED_LSN_PROPERTY: &str = "tarn.flushed_lsn";

/// Rows committed to the WAL but not yet to Lance.
#[derive(Debug, Clone)]
struct DeltaEntry {
    lsn: u64,
    batch: RecordBatch,
    at: Instant,
}

#[derive(Debug, Default)]
struct TableState {
    dataset: Option<Arc<Dataset>>,
    delta: Vec<DeltaEntry>,
    delta_rows: usize,
    /// Every WAL record of this table with LSN <= this is in `dataset`.
    flushed_lsn: u64,
}

/// One table, shared by every session.
pub struct Table {
    pub def: TableDef,
    schema: SchemaRef,
    dir: PathBuf,
    wal: Arc<Wal>,
    state: RwLock<TableState>,
    /// Serialises writers so constraint checks and WAL order agree.
    write_lock: tokio::sync::Mutex<()>,
    /// Serialises flushes.
    flush_lock: tokio::sync::Mutex<()>,
    /// Primary-key values present, loaded on first write.
    keys: Mutex<Option<HashSet<Box<[u8]>>>>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table").field("name", &self.def.name).field("id", &self.def.id).finish()
    }
}

impl Table {
    /// Open a table's Lance dataset, if it has been flushed to at least once,
    /// and the last WAL LSN folded into it.
    pub async fn load_dataset(dir: &std::path::Path) -> Result<(Option<Dataset>, u64)> {
        if !has_committed_version(dir) {
            // Never flushed, or a crash interrupted the first flush before
            // Lance committed a manifest: the rows are all still in the WAL.
            return Ok((None, 0));
        }
        let ds = Dataset::open(path_str(dir)?).await?;
        let lsn = read_flushed_lsn(&ds).await?;
        Ok((Some(ds), lsn))
    }

    pub fn new(def: TableDef, dir: PathBuf, wal: Arc<Wal>, dataset: Option<Dataset>, flushed_lsn: u64) -> Table {
        let columns: Vec<_> = def.columns.iter().map(|c| (c.name.clone(), c.pg_type(), true)).collect();
        // Every field is nullable in Arrow: NOT NULL is enforced here, with
        // PostgreSQL's error, rather than by Arrow's schema checks.
        let schema = schema_of(&columns);
        let state = TableState { dataset: dataset.map(Arc::new), flushed_lsn, ..Default::default() };
        Table {
            def,
            schema,
            dir,
            wal,
            state: RwLock::new(state),
            write_lock: tokio::sync::Mutex::new(()),
            flush_lock: tokio::sync::Mutex::new(()),
            keys: Mutex::new(None),
        }
    }

    pub fn flushed_lsn(&self) -> u64 {
        self.state.read().unwrap().flushed_lsn
    }

    /// Oldest LSN still only in the delta, if any.
    pub fn oldest_unflushed_lsn(&self) -> Option<u64> {
        self.state.read().unwrap().delta.first().map(|d| d.lsn)
    }

    /// Re-apply a WAL record found at recovery (already durable).
    pub fn replay(&self, lsn: u64, batches: Vec<RecordBatch>) -> Result<()> {
        let mut st = self.state.write().unwrap();
        if lsn <= st.flushed_lsn {
            return Ok(());
        }
        for b in batches {
            let batch = conform(&self.schema, &b)?;
            st.delta_rows += batch.num_rows();
            st.delta.push(DeltaEntry { lsn, batch, at: Instant::now() });
        }
        Ok(())
    }

    /// Rows in the delta and the age of its oldest entry.
    pub fn delta_stats(&self) -> (usize, Option<std::time::Duration>) {
        let st = self.state.read().unwrap();
        (st.delta_rows, st.delta.first().map(|d| d.at.elapsed()))
    }

    /// Check and durably append one statement's rows. Returns the row count.
    pub async fn insert(&self, batches: Vec<RecordBatch>) -> Result<u64> {
        let batches = batches
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| conform(&self.schema, b).and_then(|b| self.check_row_constraints(b)))
            .collect::<Result<Vec<_>>>()?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        if rows == 0 {
            return Ok(0);
        }
        let _writer = self.write_lock.lock().await;
        let new_keys = self.check_primary_key(&batches).await?;
        let entry = WalEntry::Insert { table_id: self.def.id, batches: batches.clone() };
        self.wal
            .append_then(&entry, |lsn| {
                // Durable from here on: apply to what readers see.
                let mut st = self.state.write().unwrap();
                st.delta_rows += rows;
                let at = Instant::now();
                st.delta.extend(batches.into_iter().map(|batch| DeltaEntry { lsn, batch, at }));
            })
            .await?;
        if let Some(new_keys) = new_keys {
            if let Some(keys) = self.keys.lock().unwrap().as_mut() {
                keys.extend(new_keys);
            }
        }
        Ok(rows as u64)
    }

    /// NOT NULL, varchar(n)/char(n) lengths and char(n) padding.
    fn check_row_constraints(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for (i, col) in self.def.columns.iter().enumerate() {
            let array = &columns[i];
            if col.not_null && array.null_count() > 0 {
                return Err(TarnError::new(
                    sqlstate::NOT_NULL_VIOLATION,
                    format!("null value in column \"{}\" of relation \"{}\" violates not-null constraint", col.name, self.def.name),
                ));
            }
            match col.pg_type() {
                PgType::Varchar(Some(n)) => check_length(array.as_string::<i32>(), n, "character varying")?,
                PgType::Bpchar(n) => columns[i] = pad_bpchar(array.as_string::<i32>(), n)?,
                _ => {}
            }
        }
        Ok(RecordBatch::try_new(batch.schema(), columns)?)
    }

    /// Refuse rows whose key exists or repeats; returns the new keys.
    async fn check_primary_key(&self, batches: &[RecordBatch]) -> Result<Option<Vec<Box<[u8]>>>> {
        if self.def.primary_key.is_empty() {
            return Ok(None);
        }
        self.ensure_keys_loaded().await?;
        let converter = self.key_converter()?;
        let guard = self.keys.lock().unwrap();
        let existing = guard.as_ref().expect("loaded above");
        let mut fresh: HashSet<Box<[u8]>> = HashSet::new();
        for batch in batches {
            let cols: Vec<ArrayRef> = self.def.primary_key.iter().map(|&i| batch.column(i).clone()).collect();
            let rows = converter.convert_columns(&cols)?;
            for (r, row) in rows.iter().enumerate() {
                let key: Box<[u8]> = row.as_ref().into();
                if existing.contains(&key) || !fresh.insert(key) {
                    return Err(self.duplicate_key_error(&cols, r));
                }
            }
        }
        Ok(Some(fresh.into_iter().collect()))
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

    fn key_converter(&self) -> Result<RowConverter> {
        let fields = self.def.primary_key.iter().map(|&i| SortField::new(self.schema.field(i).data_type().clone())).collect();
        Ok(RowConverter::new(fields)?)
    }

    async fn ensure_keys_loaded(&self) -> Result<()> {
        if self.keys.lock().unwrap().is_some() {
            return Ok(());
        }
        let (dataset, delta) = self.snapshot();
        let converter = self.key_converter()?;
        let mut keys = HashSet::new();
        let mut add = |cols: Vec<ArrayRef>| -> Result<()> {
            for row in converter.convert_columns(&cols)?.iter() {
                keys.insert(Box::<[u8]>::from(row.as_ref()));
            }
            Ok(())
        };
        if let Some(ds) = dataset {
            let names: Vec<&str> = self.def.primary_key.iter().map(|&i| self.def.columns[i].name.as_str()).collect();
            let mut scan = ds.scan();
            scan.project(&names)?;
            let mut stream = scan.try_into_stream().await?;
            while let Some(batch) = stream.try_next().await? {
                add(batch.columns().to_vec())?;
            }
        }
        for d in delta {
            add(self.def.primary_key.iter().map(|&i| d.column(i).clone()).collect())?;
        }
        debug!(table = %self.def.name, keys = keys.len(), "primary-key set loaded");
        *self.keys.lock().unwrap() = Some(keys);
        Ok(())
    }

    /// The dataset version and delta rows a reader sees, taken together.
    fn snapshot(&self) -> (Option<Arc<Dataset>>, Vec<RecordBatch>) {
        let st = self.state.read().unwrap();
        (st.dataset.clone(), st.delta.iter().map(|d| d.batch.clone()).collect())
    }

    /// Fold the current delta into Lance as one commit that records the
    /// highest LSN it contains. Returns the rows flushed.
    pub async fn flush(&self) -> Result<usize> {
        let _flushing = self.flush_lock.lock().await;
        let (dataset, entries) = {
            let st = self.state.read().unwrap();
            (st.dataset.clone(), st.delta.clone())
        };
        let Some(last_lsn) = entries.last().map(|e| e.lsn) else { return Ok(0) };
        let batches: Vec<RecordBatch> = entries.iter().map(|e| e.batch.clone()).collect();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let batch = concat_batches(&self.schema, &batches)?;
        let started = Instant::now();
        let params = WriteParams {
            mode: if dataset.is_some() { WriteMode::Append } else { WriteMode::Create },
            skip_auto_cleanup: true,
            ..Default::default()
        }
        .with_transaction_properties(HashMap::from([(FLUSHED_LSN_PROPERTY.to_string(), last_lsn.to_string())]));
        let uri = path_str(&self.dir)?.to_string();
        let new_ds = match dataset {
            Some(ds) => InsertBuilder::new(ds).with_params(&params).execute(vec![batch]).await?,
            None => InsertBuilder::new(uri.as_str()).with_params(&params).execute(vec![batch]).await?,
        };
        {
            let mut st = self.state.write().unwrap();
            st.dataset = Some(Arc::new(new_ds));
            let keep = st.delta.iter().position(|d| d.lsn > last_lsn).unwrap_or(st.delta.len());
            st.delta.drain(..keep);
            st.delta_rows = st.delta.iter().map(|d| d.batch.num_rows()).sum();
            st.flushed_lsn = last_lsn;
        }
        info!(table = %self.def.name, rows, last_lsn, ms = started.elapsed().as_millis() as u64, "flushed delta into Lance");
        Ok(rows)
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

/// Give a batch exactly the table's schema (names, metadata, nullability).
fn conform(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    if batch.num_columns() != schema.fields().len() {
        return Err(TarnError::internal(format!(
            "batch has {} columns, table has {}",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { arrow::compute::cast(c, f.data_type()) })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn check_length(values: &StringArray, n: u32, type_name: &str) -> Result<()> {
    for v in values.iter().flatten() {
        if v.chars().count() > n as usize && v.trim_end_matches(' ').chars().count() > n as usize {
            return Err(TarnError::new(sqlstate::STRING_DATA_RIGHT_TRUNCATION, format!("value too long for type {type_name}({n})")));
        }
    }
    Ok(())
}

/// `char(n)`: blank-pad to n characters; longer values may only exceed it by spaces.
fn pad_bpchar(values: &StringArray, n: u32) -> Result<ArrayRef> {
    check_length(values, n, "character")?;
    let n = n as usize;
    let padded: StringArray = values
        .iter()
        .map(|v| {
            v.map(|s| {
                let len = s.chars().count();
                if len >= n { s.chars().take(n).collect::<String>() } else { format!("{s}{}", " ".repeat(n - len)) }
            })
        })
        .collect();
    Ok(Arc::new(padded))
}

/// The highest flushed LSN recorded in the dataset's history.
async fn read_flushed_lsn(ds: &Dataset) -> Result<u64> {
    let mut versions = ds.versions().await?;
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    for v in versions {
        let at = if v.version == ds.version().version { ds.clone() } else { ds.checkout_version(v.version).await? };
        if let Some(tx) = at.read_transaction().await? {
            if let Some(lsn) = tx.transaction_properties.as_ref().and_then(|p| p.get(FLUSHED_LSN_PROPERTY)) {
                return lsn.parse().map_err(|_| TarnError::internal(format!("bad {FLUSHED_LSN_PROPERTY} {lsn:?}")));
            }
        }
    }
    Ok(0)
}

/// The DataFusion face of a [`Table`]: what the catalog hands the planner.
#[derive(Debug)]
pub struct TableHandle {
    table: Arc<Table>,
    constraints: Constraints,
}

impl TableHandle {
    pub fn new(table: Arc<Table>) -> TableHandle {
        let constraints = if table.def.primary_key.is_empty() {
            Constraints::default()
        } else {
            Constraints::new_unverified(vec![Constraint::PrimaryKey(table.def.primary_key.clone())])
        };
        TableHandle { table, constraints }
    }
}

#[async_trait]
impl TableProvider for TableHandle {
    fn schema(&self) -> SchemaRef {
        self.table.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn constraints(&self) -> Option<&Constraints> {
        Some(&self.constraints)
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
        let (dataset, delta) = self.table.snapshot();
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = vec![];
        if let Some(ds) = dataset {
            let lance = lance::datafusion::LanceTableProvider::new_with_ordering(ds, false, false, false);
            inputs.push(lance.scan(state, projection, filters, limit).await?);
        }
        if !delta.is_empty() {
            let mem = MemorySourceConfig::try_new_exec(&[delta], self.table.schema.clone(), projection.cloned())?;
            inputs.push(mem);
        }
        if inputs.is_empty() {
            let projected = datafusion::physical_plan::project_schema(&self.table.schema, projection)?;
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        UnionExec::try_new(inputs)
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
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(InsertSink { table: self.table.clone() }), None)))
    }
}

/// Receives the rows of one INSERT statement.
struct InsertSink {
    table: Arc<Table>,
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
        // One statement is one WAL record: all of it commits or none does.
        let batches: Vec<RecordBatch> = data.try_collect().await?;
        self.table.insert(batches).await.map_err(to_df)
    }
}
