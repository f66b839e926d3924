//! Reading a table version: the DataFusion plan over Lance + delta with
//! deleted rows filtered out, and the same view as plain batches for
//! storage's own needs (loading primary keys).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{DataType, Schema, SchemaRef, UInt64Type};
use datafusion::catalog::Session;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, Expr};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::datasource::TableProvider;
use datafusion::datasource::memory::MemorySourceConfig;
use futures::TryStreamExt;

use super::version::{ROWID, TableVersion, without_deleted};
use crate::error::Result;

/// Deleted row ids: the committed version's and, inside a transaction, its
/// own not-yet-committed deletes.
pub type DeleteSets = Arc<Vec<imbl::HashMap<u64, u64>>>;

/// True for rows whose row id is in none of the delete sets.
///
/// The row id is a child expression (not a bare index) so optimizer passes
/// that move columns around see it and rewrite it.
#[derive(Debug)]
pub struct LiveRows {
    rowid: Arc<dyn PhysicalExpr>,
    deleted: DeleteSets,
}

impl LiveRows {
    pub fn new(rowid: Arc<dyn PhysicalExpr>, deleted: DeleteSets) -> LiveRows {
        LiveRows { rowid, deleted }
    }
}

impl fmt::Display for LiveRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n: usize = self.deleted.iter().map(|d| d.len()).sum();
        write!(f, "{} NOT IN <{n} deleted rows>", self.rowid)
    }
}

// Equal only to itself: two filters over different delete sets must never be
// merged by the optimizer.
impl PartialEq for LiveRows {
    fn eq(&self, other: &Self) -> bool {
        self.rowid.as_ref() == other.rowid.as_ref() && Arc::ptr_eq(&self.deleted, &other.deleted)
    }
}
impl Eq for LiveRows {}
impl Hash for LiveRows {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.rowid.hash(state);
        (Arc::as_ptr(&self.deleted) as usize).hash(state);
    }
}

impl PhysicalExpr for LiveRows {
    fn data_type(&self, _input_schema: &Schema) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, _input_schema: &Schema) -> DfResult<bool> {
        Ok(false)
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        let ids = self.rowid.evaluate(batch)?.into_array(batch.num_rows())?;
        let ids = ids.as_primitive_opt::<UInt64Type>().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal(format!("row id column has type {}", ids.data_type()))
        })?;
        let live: BooleanArray =
            ids.values().iter().map(|id| Some(!self.deleted.iter().any(|d| d.contains_key(id)))).collect();
        Ok(ColumnarValue::Array(Arc::new(live)))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.rowid]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> DfResult<Arc<dyn PhysicalExpr>> {
        let [rowid] = <[_; 1]>::try_from(children)
            .map_err(|_| datafusion::error::DataFusionError::Internal("LiveRows takes one child".into()))?;
        Ok(Arc::new(LiveRows { rowid, deleted: self.deleted.clone() }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What one scan reads: a committed version, and a transaction's own
/// uncommitted writes to the same table.
pub struct ScanSource<'a> {
    pub version: &'a TableVersion,
    /// The transaction truncated the table: nothing committed is visible.
    pub own_truncate: bool,
    pub own_inserts: &'a [RecordBatch],
    pub own_deletes: Option<&'a imbl::HashMap<u64, u64>>,
}

impl ScanSource<'_> {
    fn delete_sets(&self) -> Vec<imbl::HashMap<u64, u64>> {
        let mut sets = vec![];
        if self.version.has_deletes() && !self.own_truncate {
            sets.push(self.version.deleted.clone());
        }
        if let Some(own) = self.own_deletes.filter(|d| !d.is_empty()) {
            sets.push(own.clone());
        }
        sets
    }

    fn lance_visible(&self) -> bool {
        !self.own_truncate && !self.version.dataset_truncated
    }
}

/// The physical plan for scanning `source`. `storage_schema` is the user
/// columns followed by the row id; `projection` indexes into it.
pub async fn plan(
    source: ScanSource<'_>,
    storage_schema: &SchemaRef,
    state: &dyn Session,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
    limit: Option<usize>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let rowid_index = storage_schema.fields().len() - 1;
    let wanted: Vec<usize> = match projection {
        Some(p) => p.clone(),
        None => (0..rowid_index).collect(),
    };
    let deleted = source.delete_sets();
    let filtering = !deleted.is_empty();
    let mut inner = wanted.clone();
    if filtering && !inner.contains(&rowid_index) {
        inner.push(rowid_index);
    }
    // A limit is only safe below the delete filter if nothing is filtered.
    let inner_limit = if filtering { None } else { limit };

    let mut inputs: Vec<Arc<dyn ExecutionPlan>> = vec![];
    if let Some(ds) = source.version.dataset.clone().filter(|_| source.lance_visible()) {
        let lance = lance::datafusion::LanceTableProvider::new_with_ordering(ds, false, false, false);
        // Lance's field order differs from the table's once ALTER TABLE has
        // added a column: project by name.
        let lance_schema = lance.schema();
        let in_lance = inner
            .iter()
            .map(|&i| lance_schema.index_of(storage_schema.field(i).name()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let pushed = super::lance_types::lance_filters(filters, storage_schema);
        let scan = lance.scan(state, Some(&in_lance), &pushed, inner_limit).await?;
        inputs.push(super::lance_types::from_lance_plan(scan, &storage_schema.project(&inner)?)?);
    }
    let mut memory: Vec<RecordBatch> = vec![];
    if let Some(heap) = source.version.heap.as_ref().filter(|_| source.lance_visible()) {
        memory.extend(heap.iter().cloned());
    }
    if !source.own_truncate {
        memory.extend(source.version.delta.iter().map(|d| d.batch.clone()));
    }
    memory.extend(source.own_inserts.iter().cloned());
    if !memory.is_empty() {
        inputs.push(MemorySourceConfig::try_new_exec(&[memory], storage_schema.clone(), Some(inner.clone()))?);
    }
    let plan: Arc<dyn ExecutionPlan> = match inputs.len() {
        0 => return Ok(Arc::new(EmptyExec::new(Arc::new(storage_schema.project(&wanted)?)))),
        1 => inputs.pop().unwrap(),
        _ => UnionExec::try_new(inputs)?,
    };
    if !filtering {
        return Ok(plan);
    }
    let rowid_pos = inner.iter().position(|&i| i == rowid_index).expect("row id projected above");
    let live = Arc::new(LiveRows::new(Arc::new(Column::new(ROWID, rowid_pos)), Arc::new(deleted)));
    let filtered: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(live, plan)?);
    if inner.len() == wanted.len() {
        return Ok(filtered);
    }
    let schema = filtered.schema();
    let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = (0..wanted.len())
        .map(|i| (Arc::new(Column::new(schema.field(i).name(), i)) as Arc<dyn PhysicalExpr>, schema.field(i).name().clone()))
        .collect();
    Ok(Arc::new(ProjectionExec::try_new(exprs, filtered)?))
}

/// Read `columns` (names, the row id last) of every live row of a version.
pub async fn read_columns(version: &TableVersion, storage_schema: &SchemaRef, columns: &[usize]) -> Result<Vec<RecordBatch>> {
    let rowid_index = storage_schema.fields().len() - 1;
    let mut indices = columns.to_vec();
    indices.push(rowid_index);
    let mut out = vec![];
    if let Some(ds) = version.dataset.as_ref().filter(|_| !version.dataset_truncated) {
        let names: Vec<&str> = indices.iter().map(|&i| storage_schema.field(i).name().as_str()).collect();
        let mut scan = ds.scan();
        scan.project(&names)?;
        let mut stream = scan.try_into_stream().await?;
        let schema = Arc::new(storage_schema.project(&indices)?);
        while let Some(batch) = stream.try_next().await? {
            let batch = super::lance_types::from_lance(batch, &schema)?;
            out.extend(without_deleted(&batch, &version.deleted));
        }
    }
    if let Some(heap) = version.heap.as_ref().filter(|_| !version.dataset_truncated) {
        for batch in heap.iter().filter_map(|b| without_deleted(b, &version.deleted)) {
            out.push(batch.project(&indices)?);
        }
    }
    for batch in version.live_delta() {
        out.push(batch.project(&indices)?);
    }
    Ok(out)
}
