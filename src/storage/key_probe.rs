//! Key probes: the fast path of primary-key lookups (brief: "primary-key
//! lookups take a fast path").
//!
//! A scan whose filters pin every primary-key column to a constant —
//! `SELECT … WHERE id = $1`, and the row selections of `UPDATE`/`DELETE …
//! WHERE id = $1` — is answered from the table's primary-key set (key → row
//! id) and, for a row already folded into Lance, a map of row id → Lance
//! row address and one `take`. Nothing is scanned and Lance's own scan is
//! never planned, which is most of a point query's cost otherwise.
//!
//! A probe answers only when it is exact, else the caller scans as usual:
//! the key set must reflect the very table version the statement reads
//! (same last LSN), the transaction must have no writes of its own to the
//! table, and the row must be found where that version keeps it. DataFusion
//! still applies the statement's filters above the probe (the pushdown is
//! inexact), so other conditions on the row hold as in a scan.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{SchemaRef, UInt64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, SchedulingType};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use futures::TryStreamExt;
use lance::Dataset;
use lance::dataset::fragment::session::FragmentSession;

use super::table::Table;
use super::version::{ROWID, TableVersion};
use crate::error::{Result, TarnError};

/// Tables with more Lance rows than this are not given a row-address map
/// (about 40 bytes a row): their point lookups scan through Lance's index.
const MAX_MAPPED_ROWS: usize = 10_000_000;

/// The constant each primary-key column is pinned to by `filters` (the
/// conjuncts DataFusion pushed into the scan), in key order, cast exactly to
/// the column's type; None if any key column is not pinned.
pub fn pinned_key(table: &Table, filters: &[Expr]) -> Option<Vec<ScalarValue>> {
    if table.def.primary_key.is_empty() {
        return None;
    }
    table
        .def
        .primary_key
        .iter()
        .map(|&i| {
            let field = table.storage_schema.field(i);
            filters.iter().find_map(|f| pinned_value(f, field.name())).and_then(|v| exact_cast(&v, field.data_type()))
        })
        .collect()
}

/// The positions in `filters` of the conjuncts [`pinned_key`] takes each
/// key column's value from (the first that pins it). A row the probe found
/// for that key satisfies exactly these, so they need no checking again.
pub fn pinning_filters(table: &Table, filters: &[Expr]) -> Vec<usize> {
    table
        .def
        .primary_key
        .iter()
        .filter_map(|&i| {
            let name = table.storage_schema.field(i).name();
            filters.iter().position(|f| pinned_value(f, name).is_some())
        })
        .collect()
}

/// `v` if `filter` is `column = v` (either way round).
fn pinned_value(filter: &Expr, column: &str) -> Option<ScalarValue> {
    let Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) = filter else { return None };
    match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) if c.name == column => Some(v.clone()),
        _ => None,
    }
}

/// `v` as `to`, if the cast loses nothing (and `v` is not NULL, which no
/// key equals).
fn exact_cast(v: &ScalarValue, to: &arrow::datatypes::DataType) -> Option<ScalarValue> {
    if v.is_null() {
        return None;
    }
    if v.data_type() == *to {
        return Some(v.clone());
    }
    let cast = v.cast_to(to).ok()?;
    (!cast.is_null() && cast.cast_to(&v.data_type()).ok()? == *v).then_some(cast)
}

/// Row id → Lance row address for one dataset version, kept up to date
/// fragment by fragment: addresses only change when compaction replaces a
/// fragment (with a new fragment id), so a new version costs a read of the
/// row ids of its new fragments only.
#[derive(Default)]
pub struct RowAddresses {
    version: Option<u64>,
    /// Fragment id → the row ids it holds (to forget them when it goes).
    fragments: HashMap<u64, Vec<u64>>,
    address: HashMap<u64, u64>,
}

impl RowAddresses {
    /// Bring the map to `ds`'s version; false if the table is too large to map.
    async fn refresh(&mut self, ds: &Dataset) -> Result<bool> {
        let version = ds.version_id();
        if self.version == Some(version) {
            return Ok(true);
        }
        let fragments = ds.fragments();
        let rows: usize = fragments.iter().map(|f| f.physical_rows.unwrap_or(0)).sum();
        if rows > MAX_MAPPED_ROWS {
            *self = RowAddresses::default();
            return Ok(false);
        }
        let present: std::collections::HashSet<u64> = fragments.iter().map(|f| f.id).collect();
        let gone: Vec<u64> = self.fragments.keys().copied().filter(|id| !present.contains(id)).collect();
        for id in gone {
            for rowid in self.fragments.remove(&id).unwrap_or_default() {
                self.address.remove(&rowid);
            }
        }
        let new: Vec<_> = fragments.iter().filter(|f| !self.fragments.contains_key(&f.id)).cloned().collect();
        if !new.is_empty() {
            for f in &new {
                self.fragments.insert(f.id, vec![]);
            }
            let mut scan = ds.scan();
            scan.with_fragments(new).project(&[ROWID])?.with_row_address();
            let mut stream = scan.try_into_stream().await?;
            while let Some(batch) = stream.try_next().await? {
                let (Some(ids), Some(addrs)) = (batch.column_by_name(ROWID), batch.column_by_name("_rowaddr")) else {
                    return Err(TarnError::internal("a row-address scan returned no row ids"));
                };
                let (ids, addrs) = (ids.as_primitive::<UInt64Type>(), addrs.as_primitive::<UInt64Type>());
                for (&id, &addr) in ids.values().iter().zip(addrs.values()) {
                    self.fragments.entry(addr >> 32).or_default().push(id);
                    self.address.insert(id, addr);
                }
            }
        }
        self.version = Some(version);
        Ok(true)
    }
}

/// The row of `version` whose primary key is `key`, with the storage
/// columns `wanted`: an empty batch when no row has the key, None when the
/// probe cannot answer exactly (scan instead).
pub async fn probe(table: &Table, version: &TableVersion, key: &[ScalarValue], wanted: &[usize]) -> Result<Option<RecordBatch>> {
    let schema: SchemaRef = Arc::new(table.storage_schema.project(wanted)?);
    let arrays = key.iter().map(|v| v.to_array()).collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
    let Some(encoded) = table.keys_of(&arrays)?.pop() else { return Ok(None) };
    let Some(found) = table.key_lookup(&encoded, version.last_lsn) else {
        tracing::debug!(table = %table.def.name, lsn = version.last_lsn, "key probe: key set not at this version");
        return Ok(None);
    };
    let Some(rowid) = found else { return Ok(Some(RecordBatch::new_empty(schema))) };
    if version.deleted.contains_key(&rowid) {
        return Ok(None);
    }
    if let Some(row) = version.delta_row(rowid) {
        return Ok(Some(row.project(wanted)?));
    }
    // A heap table's checkpointed rows: few, by design.
    for batch in version.heap.iter().flat_map(|h| h.iter()) {
        if let Some(i) = position_of(batch, rowid) {
            return Ok(Some(batch.slice(i, 1).project(wanted)?));
        }
    }
    let Some(ds) = version.dataset.as_ref().filter(|_| !version.dataset_truncated && version.heap.is_none()) else {
        return Ok(None);
    };
    if let Some(row) = table.row_cache.lock().unwrap().get(wanted, rowid) {
        return Ok(Some(row));
    }
    let address = {
        let mut addresses = table.row_addresses.lock().await;
        if !addresses.refresh(ds).await? {
            return Ok(None);
        }
        addresses.address.get(&rowid).copied()
    };
    let Some(address) = address else { return Ok(None) };
    let Some((row, read)) = take(table, ds, address, rowid, &schema).await? else { return Ok(None) };
    if read == RowRead::Lance {
        // A row the fragment cache answered is answered there again as
        // cheaply: copying it into the row cache too was ~4% of an UPDATE.
        table.row_cache.lock().unwrap().keep(wanted, rowid, &row);
    }
    Ok(Some(row))
}

/// Where [`take_row`] found a row.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RowRead {
    /// A fragment held decoded whole (`storage::fragment_cache`).
    FragmentCache,
    /// Read through Lance.
    Lance,
}

/// Most fragment readers a table keeps open (fragments × projections).
const MAX_OPEN_READERS: usize = 64;

/// Open Lance fragment readers of one dataset version, by fragment and
/// projection. `Dataset::take_builder` opens the fragment's file reader
/// (its metadata and column decoders) on every call, which was most of a
/// probe's time in Lance; a kept `FragmentSession` only reads the row.
#[derive(Default)]
pub struct FragmentReaders {
    version: Option<u64>,
    open: HashMap<super::fragment_cache::FragmentKey, Arc<FragmentSession>>,
}

impl FragmentReaders {
    fn get(&mut self, version: u64, key: &super::fragment_cache::FragmentKey) -> Option<Arc<FragmentSession>> {
        if self.version != Some(version) {
            // A new version may have replaced any fragment: start over.
            *self = FragmentReaders { version: Some(version), open: HashMap::new() };
        }
        self.open.get(key).cloned()
    }

    fn keep(&mut self, version: u64, key: super::fragment_cache::FragmentKey, reader: Arc<FragmentSession>) {
        if self.version != Some(version) {
            return;
        }
        if self.open.len() >= MAX_OPEN_READERS {
            self.open.clear();
        }
        self.open.insert(key, reader);
    }
}

/// Row `address` of `ds` with the columns `names`: from the fragment read
/// whole (`storage::fragment_cache`), through a kept reader of its
/// fragment, or Lance's `take` when the fragment has deletions (a fragment
/// reader counts offsets past its deleted rows).
async fn take_row(table: &Table, ds: &Arc<Dataset>, address: u64, names: &[&str]) -> Result<(RecordBatch, RowRead)> {
    let (fragment_id, offset) = (address >> 32, (address & 0xffff_ffff) as u32);
    let key = (fragment_id, names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    if let Some(row) = table.fragment_cache.lock().unwrap().row(&key, offset as usize) {
        return Ok((row, RowRead::FragmentCache));
    }
    let projection = ds.schema().project(names)?;
    let fragment = ds.fragments().iter().find(|f| f.id == fragment_id);
    let Some(rows) = fragment.filter(|f| f.deletion_file.is_none()).map(|f| f.physical_rows.unwrap_or(usize::MAX)) else {
        return Ok((ds.take_builder(&[address], projection)?.execute().await?, RowRead::Lance));
    };
    let version = ds.version_id();
    let kept = table.fragment_readers.lock().unwrap().get(version, &key);
    let reader = match kept {
        Some(reader) => reader,
        None => {
            // Only on a miss: `get_fragment` clones the dataset handle.
            let fragment = ds.get_fragment(fragment_id as usize).ok_or_else(|| TarnError::internal("a mapped fragment is gone"))?;
            let reader = Arc::new(fragment.open_session(&projection, false).await?);
            table.fragment_readers.lock().unwrap().keep(version, key.clone(), reader.clone());
            reader
        }
    };
    let row = reader.take(&[offset]).await?;
    if table.fragment_cache.lock().unwrap().missed(&key, rows) {
        let cache = table.fragment_cache.clone();
        let present: std::collections::HashSet<u64> = ds.fragments().iter().map(|f| f.id).collect();
        tokio::spawn(async move {
            // Contiguous offsets: Lance reads the range, in physical order.
            let offsets: Vec<u32> = (0..rows as u32).collect();
            let whole = match reader.take(&offsets).await {
                Ok(batch) if batch.num_rows() == rows => Some(batch),
                Ok(_) => None,
                Err(e) => {
                    tracing::debug!(error = %e, fragment = key.0, "reading a fragment whole failed");
                    None
                }
            };
            cache.lock().unwrap().keep(key, whole, &present);
        });
    }
    Ok((row, RowRead::Lance))
}

/// The row at `address` of `ds` as `schema`, checked to be row `rowid`,
/// and where it was found.
async fn take(table: &Table, ds: &Arc<Dataset>, address: u64, rowid: u64, schema: &SchemaRef) -> Result<Option<(RecordBatch, RowRead)>> {
    let mut names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    if !names.contains(&ROWID) {
        names.push(ROWID);
    }
    let (batch, read) = take_row(table, ds, address, &names).await?;
    if batch.num_rows() != 1 || position_of(&batch, rowid) != Some(0) {
        return Ok(None);
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| batch.column_by_name(f.name()).cloned().ok_or_else(|| TarnError::internal("a taken row lacks a column")))
        .collect::<Result<Vec<_>>>()?;
    let lance_typed = RecordBatch::try_new_with_options(
        Arc::new(arrow::datatypes::Schema::new(
            columns.iter().zip(schema.fields()).map(|(c, f)| f.as_ref().clone().with_data_type(c.data_type().clone())).collect::<Vec<_>>(),
        )),
        columns,
        &Default::default(),
    )?;
    let converted = super::lance_types::from_lance(lance_typed, schema)?;
    Ok(Some((RecordBatch::try_new(schema.clone(), converted.columns().to_vec())?, read)))
}

/// The row index of `rowid` in a batch's row-id column.
fn position_of(batch: &RecordBatch, rowid: u64) -> Option<usize> {
    let ids = batch.column_by_name(ROWID)?.as_primitive_opt::<UInt64Type>()?;
    ids.values().iter().position(|&id| id == rowid)
}

/// The plan node of an answered probe: the row (or none), found while
/// planning. EXPLAIN shows it as `TarnKeyProbe`.
pub struct KeyProbeExec {
    table: String,
    key: Vec<ScalarValue>,
    batch: RecordBatch,
    properties: Arc<PlanProperties>,
}

impl KeyProbeExec {
    pub fn new(table: &Table, key: Vec<ScalarValue>, batch: RecordBatch) -> KeyProbeExec {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(batch.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        )
        // It yields at once, so DataFusion need not wrap it to yield.
        .with_scheduling_type(SchedulingType::Cooperative);
        KeyProbeExec { table: table.def.name.clone(), key, batch, properties: Arc::new(properties) }
    }
}

impl fmt::Debug for KeyProbeExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyProbeExec({})", self.table)
    }
}

impl DisplayAs for KeyProbeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key: Vec<String> = self.key.iter().map(|v| v.to_string()).collect();
        write!(f, "TarnKeyProbe: table={}, key=({}), rows={}", self.table, key.join(", "), self.batch.num_rows())
    }
}

impl ExecutionPlan for KeyProbeExec {
    fn name(&self) -> &'static str {
        "TarnKeyProbe"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn with_new_children(self: Arc<Self>, _: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    /// Exact: a probe's one row is too little to repartition.
    fn partition_statistics(&self, _partition: Option<usize>) -> DfResult<Arc<datafusion::common::Statistics>> {
        let stats = datafusion::common::Statistics::new_unknown(&self.batch.schema())
            .with_num_rows(datafusion::common::stats::Precision::Exact(self.batch.num_rows()));
        Ok(Arc::new(stats))
    }

    fn execute(&self, _partition: usize, _context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let batches = if self.batch.num_rows() > 0 { vec![self.batch.clone()] } else { vec![] };
        Ok(Box::pin(MemoryStream::try_new(batches, self.batch.schema(), None)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::DataType;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn a_filter_pins_a_column_either_way_round() {
        assert_eq!(pinned_value(&col("id").eq(lit(5i64)), "id"), Some(ScalarValue::Int64(Some(5))));
        assert_eq!(pinned_value(&lit(5i64).eq(col("id")), "id"), Some(ScalarValue::Int64(Some(5))));
        assert_eq!(pinned_value(&col("id").gt(lit(5i64)), "id"), None);
        assert_eq!(pinned_value(&col("other").eq(lit(5i64)), "id"), None);
        assert_eq!(pinned_value(&col("id").eq(col("other")), "id"), None);
    }

    #[test]
    fn only_lossless_casts_pin_a_key() {
        assert_eq!(exact_cast(&ScalarValue::Int64(Some(7)), &DataType::Int32), Some(ScalarValue::Int32(Some(7))));
        assert_eq!(exact_cast(&ScalarValue::Int64(Some(1 << 40)), &DataType::Int32), None);
        assert_eq!(exact_cast(&ScalarValue::Float64(Some(1.5)), &DataType::Int64), None);
        assert_eq!(exact_cast(&ScalarValue::Int64(None), &DataType::Int64), None);
    }
}
