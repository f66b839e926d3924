//! The types Lance cannot store, and how Tarn stores them there instead.
//!
//! Lance 14 has no interval type, so an `interval` column (Arrow
//! `Interval(MonthDayNano)` everywhere else: delta, WAL, queries) is written
//! to Lance as a struct of its three fields, `months: int32, days: int32,
//! nanos: int64` — lossless and still readable by any Lance reader. This
//! module owns both directions: batches on their way into Lance, batches and
//! scan plans on their way out. Every other type passes through untouched.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, IntervalMonthDayNanoArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Field, Fields, IntervalMonthDayNanoType, IntervalUnit, Schema, SchemaRef};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, Expr};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;

use crate::error::{Result, TarnError};

const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);

fn interval_struct_fields() -> Fields {
    Fields::from(vec![
        Field::new("months", DataType::Int32, false),
        Field::new("days", DataType::Int32, false),
        Field::new("nanos", DataType::Int64, false),
    ])
}

/// The type a column of `dt` has in Lance.
pub fn lance_type(dt: &DataType) -> DataType {
    match dt {
        d if *d == INTERVAL => DataType::Struct(interval_struct_fields()),
        other => other.clone(),
    }
}

/// `field` as Lance stores it (same name and metadata).
pub fn lance_field(field: &Field) -> Field {
    field.clone().with_data_type(lance_type(field.data_type()))
}

fn needs_conversion(schema: &Schema) -> bool {
    schema.fields().iter().any(|f| *f.data_type() == INTERVAL)
}

/// A batch on its way into Lance.
pub fn to_lance(batch: &RecordBatch) -> Result<RecordBatch> {
    if !needs_conversion(&batch.schema()) {
        return Ok(batch.clone());
    }
    let schema = Arc::new(Schema::new_with_metadata(
        batch.schema().fields().iter().map(|f| lance_field(f)).collect::<Vec<_>>(),
        batch.schema().metadata().clone(),
    ));
    Ok(RecordBatch::try_new(schema, batch.columns().iter().map(to_lance_column).collect())?)
}

/// `batch` (already [`to_lance`]) with its columns in the Lance dataset's
/// field order: Lance appends by position, and ALTER TABLE ADD COLUMN puts
/// new fields after the row id.
pub fn in_field_order(batch: &RecordBatch, lance_schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == lance_schema.fields() {
        return Ok(batch.clone());
    }
    let columns = lance_schema.fields().iter().map(|f| {
        batch.column_by_name(f.name()).cloned().ok_or_else(|| TarnError::internal(format!("Lance field {} is not a column of the rows written", f.name())))
    });
    Ok(RecordBatch::try_new(lance_schema.clone(), columns.collect::<Result<Vec<_>>>()?)?)
}

/// One column on its way into Lance.
pub fn to_lance_column(c: &ArrayRef) -> ArrayRef {
    if *c.data_type() == INTERVAL { interval_to_struct(c) } else { c.clone() }
}

/// A batch read from Lance, given the schema it must have.
pub fn from_lance(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if !needs_conversion(schema) {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| if *f.data_type() == INTERVAL && *c.data_type() != INTERVAL { struct_to_interval(c) } else { c.clone() })
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn interval_to_struct(array: &ArrayRef) -> ArrayRef {
    let iv = array.as_primitive::<IntervalMonthDayNanoType>();
    let months: Int32Array = iv.values().iter().map(|v| v.months).collect();
    let days: Int32Array = iv.values().iter().map(|v| v.days).collect();
    let nanos: Int64Array = iv.values().iter().map(|v| v.nanoseconds).collect();
    Arc::new(StructArray::new(
        interval_struct_fields(),
        vec![Arc::new(months), Arc::new(days), Arc::new(nanos)],
        iv.nulls().cloned(),
    ))
}

fn struct_to_interval(array: &ArrayRef) -> ArrayRef {
    let s = array.as_struct();
    let months = s.column(0).as_primitive::<arrow::datatypes::Int32Type>();
    let days = s.column(1).as_primitive::<arrow::datatypes::Int32Type>();
    let nanos = s.column(2).as_primitive::<arrow::datatypes::Int64Type>();
    let values = (0..s.len()).map(|i| IntervalMonthDayNanoType::make_value(months.value(i), days.value(i), nanos.value(i)));
    Arc::new(IntervalMonthDayNanoArray::new(values.collect(), s.nulls().cloned()))
}

/// Filters Lance may evaluate: none that touch a column whose Lance type
/// differs (DataFusion filters above the scan in any case).
pub fn lance_filters(filters: &[Expr], schema: &Schema) -> Vec<Expr> {
    let converted: Vec<&str> = schema.fields().iter().filter(|f| *f.data_type() == INTERVAL).map(|f| f.name().as_str()).collect();
    if converted.is_empty() {
        return filters.to_vec();
    }
    filters
        .iter()
        .filter(|e| e.column_refs().iter().all(|c| !converted.contains(&c.name.as_str())))
        .cloned()
        .collect()
}

/// `lance`'s scan output with converted columns turned back, so it has
/// `schema` (the table's types for the projected columns).
pub fn from_lance_plan(lance: Arc<dyn ExecutionPlan>, schema: &Schema) -> DfResult<Arc<dyn ExecutionPlan>> {
    if !needs_conversion(schema) {
        return Ok(lance);
    }
    let input = lance.schema();
    let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let col: Arc<dyn PhysicalExpr> = Arc::new(Column::new(input.field(i).name(), i));
            let expr: Arc<dyn PhysicalExpr> =
                if *f.data_type() == INTERVAL { Arc::new(IntervalFromLance(col, f.clone())) } else { col };
            (expr, f.name().clone())
        })
        .collect();
    Ok(Arc::new(ProjectionExec::try_new(exprs, lance)?))
}

/// The interval a Lance struct column holds; the field is the table's (its
/// metadata must survive, so the plan's schema matches the delta's).
#[derive(Debug)]
struct IntervalFromLance(Arc<dyn PhysicalExpr>, arrow::datatypes::FieldRef);

impl PartialEq for IntervalFromLance {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_ref() == other.0.as_ref() && self.1 == other.1
    }
}
impl Eq for IntervalFromLance {}
impl Hash for IntervalFromLance {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl fmt::Display for IntervalFromLance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interval_from_lance({})", self.0)
    }
}

impl PhysicalExpr for IntervalFromLance {
    fn data_type(&self, _input_schema: &Schema) -> DfResult<DataType> {
        Ok(INTERVAL)
    }

    fn nullable(&self, input_schema: &Schema) -> DfResult<bool> {
        self.0.nullable(input_schema)
    }

    fn return_field(&self, _input_schema: &Schema) -> DfResult<arrow::datatypes::FieldRef> {
        Ok(self.1.clone())
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        let array = self.0.evaluate(batch)?.into_array(batch.num_rows())?;
        Ok(ColumnarValue::Array(if *array.data_type() == INTERVAL { array } else { struct_to_interval(&array) }))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.0]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> DfResult<Arc<dyn PhysicalExpr>> {
        let [child] = <[_; 1]>::try_from(children)
            .map_err(|_| datafusion::error::DataFusionError::Internal("interval_from_lance takes one child".into()))?;
        Ok(Arc::new(IntervalFromLance(child, self.1.clone())))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::IntervalMonthDayNano;

    #[test]
    fn intervals_round_trip_through_the_lance_form() {
        let iv: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            Some(IntervalMonthDayNano::new(14, 3, 5_000)),
            None,
            Some(IntervalMonthDayNano::new(-1, 0, -90_000_000_000)),
        ]));
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("iv", INTERVAL, true)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![ids, iv]).unwrap();
        let stored = to_lance(&batch).unwrap();
        assert!(matches!(stored.schema().field(1).data_type(), DataType::Struct(_)));
        assert_eq!(stored.column(1).null_count(), 1);
        assert_eq!(from_lance(stored, &schema).unwrap(), batch);
    }
}
