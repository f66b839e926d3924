//! Point plans: a kept, optimized plan that reads or writes one row — or
//! a few — is answered without DataFusion's physical planning. Two shapes:
//!
//! - **A key lookup.** One Tarn table read by its whole primary key:
//!   `SELECT v FROM kv WHERE id = $1`, and the row selection of
//!   `UPDATE acct SET balance = balance + 1 WHERE id = $1`. Such a plan is
//!   a projection, maybe a filter, maybe a subquery alias and a limit, over
//!   one table scan whose filters pin the key. Its answer is the key
//!   probe's row (`storage::key_probe`) with the projection and the rest of
//!   the filter (what the key was not taken from) evaluated on it.
//! - **An INSERT of VALUES.** `INSERT INTO t (c, v) VALUES ($1, $2)`: the
//!   VALUES rows and the projection onto the table's columns are evaluated
//!   and handed to the table's insert, as its DataFusion sink would be.
//!
//! Expressions are the plan's own, evaluated on the few rows: a column, a
//! constant or a parameter is taken as it is, anything else is made
//! physical with the statement's parameter values put in its placeholders
//! here — binding them into the whole plan (every node's schema
//! recomputed) and planning execution nodes (their equivalence properties
//! and statistics, the optimizer gate) cost more than the row itself.
//! Anything else — no key pinned, a probe that cannot answer exactly, any
//! other node — is bound and planned as usual, so this is an answer for
//! the plans it recognises, never a different meaning.

use std::sync::Arc;

use std::borrow::Cow;

use arrow::array::{Array, ArrayRef, AsArray, Datum, RecordBatch, RecordBatchOptions, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, ParamValues, ScalarValue};
use datafusion::datasource::DefaultTableSource;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::expr::{BinaryExpr, Cast, Placeholder};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{DmlStatement, Expr, ExprSchemable, LogicalPlan, Operator, TableScan, TableSource, WriteOp};
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};

use super::checked_arith::CheckedArith;
use crate::error::Result;
use crate::storage::handle::TableHandle;
use crate::storage::table::STRICT_CAST;

/// The parts of a point plan.
struct Shape<'a> {
    /// The result columns, over `input`'s schema.
    columns: &'a [Expr],
    input: &'a DFSchema,
    /// Conditions on the row beyond the scan's, over the schema given.
    predicate: Option<(&'a Expr, &'a DFSchema)>,
    scan: &'a TableScan,
}

/// Rows of VALUES a point INSERT takes at most; more are planned as usual.
const MAX_VALUES_ROWS: usize = 1024;

/// `plan`'s result if it is a point plan answered here, as one batch of
/// `plan`'s schema; None to bind and plan it as usual. `params` are the
/// values of `plan`'s placeholders, not yet substituted.
pub async fn run(plan: &LogicalPlan, params: Option<&ParamValues>) -> Result<Option<RecordBatch>> {
    if let LogicalPlan::Dml(dml) = plan {
        return insert_values(dml, params).await;
    }
    let Some(shape) = shape(plan) else { return Ok(None) };
    let Some(handle) = table_handle(&shape.scan.source) else { return Ok(None) };
    let filters = shape.scan.filters.iter().map(|f| Ok(bind(f, params)?.into_owned())).collect::<Result<Vec<Expr>>>()?;
    let Some(row) = handle.probe(shape.scan.projection.as_ref(), &filters).await? else { return Ok(None) };
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let props = ExecutionProps::new();
    let predicate = shape.predicate.and_then(|(p, over)| beyond_pinned_key(p, shape.scan, handle, &filters).map(|p| (p, over)));
    let row = match predicate {
        Some((predicate, over)) if row.num_rows() > 0 => {
            let predicate = bind(&predicate, params)?;
            let keep = create_physical_expr(&predicate, over, &props)?.evaluate(&row)?.into_array(row.num_rows())?;
            // A predicate typed otherwise (a bare NULL): let the planner decide.
            let Some(keep) = keep.as_boolean_opt() else { return Ok(None) };
            arrow::compute::filter_record_batch(&row, keep)?
        }
        _ => row,
    };
    let columns = evaluate(shape.columns, shape.input, &row, params)?;
    let options = RecordBatchOptions::new().with_row_count(Some(row.num_rows()));
    Ok(Some(RecordBatch::try_new_with_options(schema, columns, &options)?))
}

/// The part of a point plan's `predicate` the key probe does not already
/// guarantee: its conjuncts less the scan filters the probed key was taken
/// from (`bound` is the scan's filters with their values in). None if
/// nothing is left — `WHERE id = $1` is the probe's own condition, and
/// evaluating it again on the probed row was ~5% of a key lookup.
fn beyond_pinned_key(predicate: &Expr, scan: &TableScan, handle: &TableHandle, bound: &[Expr]) -> Option<Expr> {
    let pinned = crate::storage::key_probe::pinning_filters(handle.table(), bound);
    let rest: Vec<Expr> = split_conjunction(predicate)
        .into_iter()
        .filter(|c| !pinned.iter().any(|&i| scan.filters.get(i) == Some(*c)))
        .cloned()
        .collect();
    conjunction(rest)
}

/// `INSERT INTO t … VALUES …` (plain: no ON CONFLICT, no RETURNING, which
/// `execute::insert` runs around this) into a Tarn table, made ready and
/// run once.
async fn insert_values(dml: &DmlStatement, params: Option<&ParamValues>) -> Result<Option<RecordBatch>> {
    let Some(insert) = PointInsert::compile(dml) else { return Ok(None) };
    insert.run(params).await
}

/// A point INSERT — `Dml ← [Projection] ← Values` into a Tarn table —
/// made ready to run: its VALUES expressions made physical once, each
/// parameter read as a column of a one-row batch of the statement's
/// values, and the projection onto the table's columns made physical over
/// the VALUES rows. A prepared statement's kept plan keeps this too
/// (`plan_cache::KeptPlan::point_insert`), so its every Execute evaluates
/// expressions and nothing else: binding the values into each expression
/// and making it physical again was ~4 µs, an eighth of a single-row
/// INSERT's CPU.
pub struct PointInsert {
    target: Arc<dyn TableSource>,
    /// The placeholders the VALUES read, in the order of `params`' columns,
    /// with the position in a parameter list of each `$n` (n - 1).
    placeholders: Vec<(String, Option<usize>)>,
    params: SchemaRef,
    /// Per VALUES row, its expressions over `params`.
    rows: Vec<Vec<Ready>>,
    /// The VALUES list's columns, all nullable ([`nullable_schema`]).
    values: SchemaRef,
    /// The projection onto the table's columns, over `values`.
    projection: Option<(Vec<Ready>, SchemaRef)>,
    /// The DML node's result: the row count.
    output: SchemaRef,
}

impl PointInsert {
    /// `dml` made ready, if it is a point INSERT whose placeholders are all
    /// typed and read only by the VALUES; None to plan it as usual.
    pub fn compile(dml: &DmlStatement) -> Option<PointInsert> {
        if dml.op != WriteOp::Insert(InsertOp::Append) {
            return None;
        }
        table_handle(&dml.target)?;
        let (projection, values) = match dml.input.as_ref() {
            LogicalPlan::Projection(p) => match p.input.as_ref() {
                LogicalPlan::Values(v) => (Some(p), v),
                _ => return None,
            },
            LogicalPlan::Values(v) => (None, v),
            _ => return None,
        };
        if values.values.is_empty() || values.values.len() > MAX_VALUES_ROWS || !values.values.iter().flatten().all(row_wise) {
            return None;
        }
        if projection.is_some_and(|p| !p.expr.iter().all(|e| row_wise(e) && !has_placeholder(e))) {
            return None;
        }
        // The placeholders, each a column of the parameters' batch.
        let mut fields: Vec<Field> = vec![];
        let mut placeholders: Vec<(String, Option<usize>)> = vec![];
        for e in values.values.iter().flatten() {
            e.apply(|e| {
                if let Expr::Placeholder(Placeholder { id, field }) = e
                    && !placeholders.iter().any(|(p, _)| p == id)
                {
                    let position = id.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()).and_then(|n| n.checked_sub(1));
                    placeholders.push((id.clone(), position));
                    fields.push(field.as_ref().map(|f| Field::new(id, f.data_type().clone(), true)).unwrap_or_else(|| Field::new(id, DataType::Null, true)));
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .ok()?;
        }
        if fields.iter().any(|f| f.data_type() == &DataType::Null) {
            return None;
        }
        let params: SchemaRef = Arc::new(Schema::new(fields));
        let over_params = DFSchema::try_from(params.as_ref().clone()).ok()?;
        let props = ExecutionProps::new();
        let ready = |e: &Expr| -> Option<Ready> {
            let read = e
                .clone()
                .transform_up(|e| match e {
                    Expr::Placeholder(Placeholder { id, .. }) => Ok(Transformed::yes(Expr::Column(Column::from_name(id)))),
                    e => Ok(Transformed::no(e)),
                })
                .ok()?
                .data;
            Ready::new(&read, &over_params, &props).ok()
        };
        let rows = values.values.iter().map(|row| row.iter().map(&ready).collect::<Option<Vec<_>>>()).collect::<Option<Vec<_>>>()?;
        let projection = match projection {
            Some(p) => {
                let exprs = p.expr.iter().map(|e| Ready::new(e, p.input.schema(), &props).ok()).collect::<Option<Vec<_>>>()?;
                Some((exprs, nullable_schema(p.schema.inner())))
            }
            None => None,
        };
        Some(PointInsert {
            target: dml.target.clone(),
            placeholders,
            params,
            rows,
            values: nullable_schema(values.schema.inner()),
            projection,
            output: Arc::new(dml.output_schema.as_arrow().clone()),
        })
    }

    /// Insert the rows with `params` for the placeholders: the row count,
    /// as the DML node's one-row result. None if a value is not of the type
    /// its placeholder was planned with (the caller plans it as usual).
    pub async fn run(&self, params: Option<&ParamValues>) -> Result<Option<RecordBatch>> {
        let Some(count) = self.insert(params).await? else { return Ok(None) };
        Ok(Some(RecordBatch::try_new(self.output.clone(), vec![Arc::new(UInt64Array::from(vec![count]))])?))
    }

    /// [`PointInsert::run`]'s row count.
    pub async fn insert(&self, params: Option<&ParamValues>) -> Result<Option<u64>> {
        let Some(handle) = table_handle(&self.target) else { return Ok(None) };
        let mut columns = Vec::with_capacity(self.placeholders.len());
        for ((id, position), field) in self.placeholders.iter().zip(self.params.fields()) {
            let Some(params) = params else { return Ok(None) };
            // `$n` is the n-th value of a list; looking it up by name parses the name.
            let value = match params {
                ParamValues::List(values) if let Some(v) = position.and_then(|i| values.get(i)) => Cow::Borrowed(&v.value),
                _ => Cow::Owned(params.get_placeholders_with_values(id)?.value),
            };
            if value.data_type() != *field.data_type() {
                return Ok(None);
            }
            columns.push(value.to_array_of_size(1)?);
        }
        let one_row = RecordBatchOptions::new().with_row_count(Some(1));
        let params = RecordBatch::try_new_with_options(self.params.clone(), columns, &one_row)?;
        let mut rows = self.values_batch(&params)?;
        if let Some((exprs, schema)) = &self.projection {
            let columns = exprs.iter().map(|e| e.evaluate(&rows)).collect::<Result<Vec<ArrayRef>>>()?;
            rows = RecordBatch::try_new(schema.clone(), columns)?;
        }
        Ok(Some(handle.insert(vec![rows]).await?))
    }

    /// The VALUES rows, each expression evaluated on the parameters and
    /// cast to its column's type.
    fn values_batch(&self, params: &RecordBatch) -> Result<RecordBatch> {
        let fields = self.values.fields();
        let mut columns: Vec<Vec<ArrayRef>> = vec![Vec::with_capacity(self.rows.len()); fields.len()];
        for row in &self.rows {
            for ((expr, field), column) in row.iter().zip(fields).zip(columns.iter_mut()) {
                let value = expr.evaluate(params)?;
                let value = if value.data_type() == field.data_type() { value } else { arrow::compute::cast_with_options(&value, field.data_type(), &STRICT_CAST)? };
                column.push(value);
            }
        }
        let columns = columns
            .iter()
            .map(|parts| match parts.as_slice() {
                [one] => Ok(one.clone()),
                parts => Ok(arrow::compute::concat(&parts.iter().map(|a| a.as_ref()).collect::<Vec<_>>())?),
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok(RecordBatch::try_new(self.values.clone(), columns)?)
    }
}

/// One expression of a [`PointInsert`], made ready to evaluate.
enum Ready {
    /// A constant: its value, and the one-row array it gives — most
    /// INSERTs are of one row, and every one that leaves an identity column
    /// out has a `NULL AS id`.
    Constant(ScalarValue, ArrayRef),
    /// A column of the batch it is evaluated on, by index.
    Column(usize),
    /// `left op right` on two numbers of one type, by the arrow kernel
    /// DataFusion's `BinaryExpr` calls for that operator — so the same
    /// result and the same errors — with a constant operand handed to it
    /// as the one-row array made once, which `BinaryExpr` makes again on
    /// every call (`$1 * 7` spent most of its time there).
    Arith { kernel: ArithKernel, left: Box<Ready>, right: Box<Ready> },
    /// A cast from one integer type to a wider one, which cannot fail.
    Widen(Box<Ready>, DataType),
    Physical(Arc<dyn PhysicalExpr>),
}

/// An arrow arithmetic kernel (`add_wrapping`, `div`, …).
type ArithKernel = super::checked_arith::Kernel;

/// An operand of [`Ready::Arith`]: an array, or a constant's one-row
/// array taken as a scalar.
enum Operand {
    Array(ArrayRef),
    Scalar(ArrayRef),
}

impl Datum for Operand {
    fn get(&self) -> (&dyn Array, bool) {
        match self {
            Operand::Array(a) => (a.as_ref(), false),
            Operand::Scalar(a) => (a.as_ref(), true),
        }
    }
}

impl Ready {
    fn new(expr: &Expr, over: &DFSchema, props: &ExecutionProps) -> Result<Ready> {
        Ok(match expr {
            Expr::Alias(alias) => return Ready::new(&alias.expr, over, props),
            Expr::Literal(value, _) => Ready::Constant(value.clone(), value.to_array_of_size(1)?),
            Expr::Column(c) => Ready::Column(over.index_of_column(c)?),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) if let Some(kernel) = arith_kernel(op, left, right, over) => {
                Ready::arith(expr, kernel, left, right, over, props)?
            }
            Expr::ScalarFunction(f)
                if let (Some(kernel), [left, right]) = (CheckedArith::op_of(f).and_then(|op| op.kernel()), f.args.as_slice()) =>
            {
                Ready::arith(expr, kernel, left, right, over, props)?
            }
            Expr::Cast(Cast { expr: inner, field }) if widens(&inner.get_type(over)?, field.data_type()) => {
                Ready::Widen(Box::new(Ready::new(inner, over, props)?), field.data_type().clone())
            }
            e => Ready::Physical(create_physical_expr(e, over, props)?),
        })
    }

    /// `expr`, which is `left kernel right`.
    fn arith(expr: &Expr, kernel: ArithKernel, left: &Expr, right: &Expr, over: &DFSchema, props: &ExecutionProps) -> Result<Ready> {
        let (left, right) = (Ready::new(left, over, props)?, Ready::new(right, over, props)?);
        if left.is_constant() && right.is_constant() {
            // Two scalars give one; the general path repeats it.
            return Ok(Ready::Physical(create_physical_expr(expr, over, props)?));
        }
        Ok(Ready::Arith { kernel, left: Box::new(left), right: Box::new(right) })
    }

    fn is_constant(&self) -> bool {
        matches!(self, Ready::Constant(..))
    }

    /// The expression's value on each row of `rows`.
    fn evaluate(&self, rows: &RecordBatch) -> Result<ArrayRef> {
        let n = rows.num_rows();
        Ok(match self {
            Ready::Constant(_, one) if n == 1 => one.clone(),
            Ready::Constant(value, _) => value.to_array_of_size(n)?,
            Ready::Column(i) => rows.column(*i).clone(),
            Ready::Arith { kernel, left, right } => {
                let (left, right) = (left.operand(rows)?, right.operand(rows)?);
                kernel(&left, &right).map_err(|e| super::checked_arith::kernel_error(e, left.get().0.data_type()))?
            }
            Ready::Widen(inner, to) => arrow::compute::cast(&inner.evaluate(rows)?, to)?,
            Ready::Physical(e) => e.evaluate(rows)?.into_array(n)?,
        })
    }

    fn operand(&self, rows: &RecordBatch) -> Result<Operand> {
        Ok(match self {
            Ready::Constant(_, one) => Operand::Scalar(one.clone()),
            other => Operand::Array(other.evaluate(rows)?),
        })
    }
}

/// The kernel `BinaryExpr` (without `fail_on_overflow`) evaluates `op`
/// with, when both operands are numbers of one type; None for anything
/// else, which stays with `BinaryExpr`.
fn arith_kernel(op: &Operator, left: &Expr, right: &Expr, over: &DFSchema) -> Option<ArithKernel> {
    use arrow::compute::kernels::numeric;
    let ty = left.get_type(over).ok()?;
    if !ty.is_integer() && !ty.is_floating() || right.get_type(over).ok()? != ty {
        return None;
    }
    Some(match op {
        Operator::Plus => numeric::add_wrapping,
        Operator::Minus => numeric::sub_wrapping,
        Operator::Multiply => numeric::mul_wrapping,
        Operator::Divide => numeric::div,
        Operator::Modulo => numeric::rem,
        _ => return None,
    })
}

/// Whether a cast from `from` to `to` is an integer widening (no value
/// changes, none fails).
fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    matches!((from, to), (Int8, Int16 | Int32 | Int64) | (Int16, Int32 | Int64) | (Int32, Int64))
}

fn has_placeholder(e: &Expr) -> bool {
    e.exists(|e| Ok(matches!(e, Expr::Placeholder(_)))).unwrap_or(true)
}

/// `schema` with every column nullable: a plan's nullability was decided
/// before its parameter values were known; NOT NULL is the table's to
/// enforce (`Table::prepare_insert`), with PostgreSQL's error. The plan's
/// own schema when it already is (no copy).
fn nullable_schema(schema: &SchemaRef) -> SchemaRef {
    if schema.fields().iter().all(|f| f.is_nullable()) {
        return schema.clone();
    }
    Arc::new(Schema::new(schema.fields().iter().map(|f| Field::new(f.name(), f.data_type().clone(), true)).collect::<Vec<_>>()))
}

/// `exprs` over `input`, evaluated on `rows`.
fn evaluate(exprs: &[Expr], input: &DFSchema, rows: &RecordBatch, params: Option<&ParamValues>) -> Result<Vec<ArrayRef>> {
    exprs.iter().map(|e| evaluate_one(e, input, rows, params)).collect()
}

/// `expr` over `input`, evaluated on `rows` once (a key lookup's
/// projection and predicate): a parameter is taken as its value; anything
/// else, with its parameter values in, is made [`Ready`] as a point
/// INSERT's expressions are — a column or a constant taken as it is, the
/// rest made physical.
fn evaluate_one(expr: &Expr, input: &DFSchema, rows: &RecordBatch, params: Option<&ParamValues>) -> Result<ArrayRef> {
    match expr {
        Expr::Alias(alias) => evaluate_one(&alias.expr, input, rows, params),
        Expr::Placeholder(Placeholder { id, .. }) if let Some(params) = params => {
            Ok(params.get_placeholders_with_values(id)?.value.to_array_of_size(rows.num_rows())?)
        }
        expr => Ready::new(bind(expr, params)?.as_ref(), input, &ExecutionProps::new())?.evaluate(rows),
    }
}

/// The Tarn table a plan reads or writes, if it is one.
fn table_handle(source: &Arc<dyn TableSource>) -> Option<&TableHandle> {
    let source = source.as_ref().downcast_ref::<DefaultTableSource>()?;
    (source.table_provider.as_ref() as &dyn std::any::Any).downcast_ref::<TableHandle>()
}

/// `expr` with its placeholders replaced by their values (the types the
/// plan was optimized for, which the plan cache checked).
fn bind<'e>(expr: &'e Expr, params: Option<&ParamValues>) -> Result<Cow<'e, Expr>> {
    let Some(params) = params else { return Ok(Cow::Borrowed(expr)) };
    if !has_placeholder(expr) {
        return Ok(Cow::Borrowed(expr));
    }
    let bound = expr.clone().transform_up(|e| match e {
        Expr::Placeholder(Placeholder { id, .. }) => {
            let value = params.get_placeholders_with_values(&id)?;
            Ok(Transformed::yes(Expr::Literal(value.value, value.metadata)))
        }
        e => Ok(Transformed::no(e)),
    })?;
    Ok(Cow::Owned(bound.data))
}

/// Computes from the row alone: no subquery, aggregate or window (the
/// optimizer would have planned them as nodes of their own).
fn row_wise(e: &Expr) -> bool {
    !e.exists(|e| Ok(matches!(e, Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) | Expr::OuterReferenceColumn(..) | Expr::AggregateFunction(_) | Expr::WindowFunction(_))))
        .unwrap_or(true)
}

/// Recognise a point plan: `Projection [→ Filter] [→ SubqueryAlias] →
/// TableScan`, under at most a `Limit` that keeps a first row, every
/// expression computing only from the row (no subquery, aggregate or
/// window: the optimizer would have planned them as nodes of their own).
fn shape(plan: &LogicalPlan) -> Option<Shape<'_>> {
    let plan = match plan {
        LogicalPlan::Limit(limit) => {
            let keeps_first = matches!(limit.get_skip_type().ok()?, datafusion::logical_expr::SkipType::Literal(0))
                && match limit.get_fetch_type().ok()? {
                    datafusion::logical_expr::FetchType::Literal(fetch) => fetch != Some(0),
                    datafusion::logical_expr::FetchType::UnsupportedExpr => false,
                };
            if !keeps_first {
                return None;
            }
            limit.input.as_ref()
        }
        plan => plan,
    };
    let LogicalPlan::Projection(projection) = plan else { return None };
    let mut predicate = None;
    let mut below = projection.input.as_ref();
    let scan = loop {
        match below {
            LogicalPlan::SubqueryAlias(alias) => below = alias.input.as_ref(),
            LogicalPlan::Filter(filter) if predicate.is_none() => {
                predicate = Some((&filter.predicate, filter.input.schema().as_ref()));
                below = filter.input.as_ref();
            }
            LogicalPlan::TableScan(scan) => break scan,
            _ => return None,
        }
    };
    if scan.fetch == Some(0) || scan.filters.is_empty() {
        return None;
    }
    if !projection.expr.iter().all(row_wise) || !predicate.is_none_or(|(p, _)| row_wise(p)) {
        return None;
    }
    Some(Shape { columns: &projection.expr, input: projection.input.schema(), predicate, scan })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array};
    use arrow::datatypes::DataType;
    use datafusion::common::{Column, ScalarValue};
    use datafusion::logical_expr::{col, lit};
    use crate::error::TarnError;

    fn rows() -> (DFSchema, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, true), Field::new("b", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int32Array::from(vec![Some(1), None])), Arc::new(Int64Array::from(vec![10, 20]))],
        )
        .unwrap();
        (DFSchema::try_from(schema.as_ref().clone()).unwrap(), batch)
    }

    fn placeholder(id: &str, t: DataType) -> Expr {
        Expr::Placeholder(Placeholder::new_with_field(id.into(), Some(Arc::new(Field::new("", t, true)))))
    }

    /// What the general path (physical expression, values bound) gives.
    fn physical(expr: &Expr, input: &DFSchema, rows: &RecordBatch, params: Option<&ParamValues>) -> ArrayRef {
        let props = ExecutionProps::new();
        create_physical_expr(bind(expr, params).unwrap().as_ref(), input, &props).unwrap().evaluate(rows).unwrap().into_array(rows.num_rows()).unwrap()
    }

    #[test]
    fn columns_constants_and_parameters_evaluate_as_their_physical_expressions_do() {
        let (input, rows) = rows();
        let params = ParamValues::List(vec![ScalarValue::Int64(Some(7)).into(), ScalarValue::Utf8(None).into()]);
        let exprs = [
            col("a"),
            col("b").alias("renamed"),
            lit(5i64),
            lit(ScalarValue::Int64(None)).alias("id"),
            placeholder("$1", DataType::Int64),
            placeholder("$2", DataType::Utf8),
            // Not taken as it is: made physical, with the value bound.
            placeholder("$1", DataType::Int64) * lit(7i64),
            Expr::Column(Column::from_name("b")) + placeholder("$1", DataType::Int64),
        ];
        for expr in &exprs {
            let fast = evaluate_one(expr, &input, &rows, Some(&params)).unwrap();
            assert_eq!(fast.as_ref(), physical(expr, &input, &rows, Some(&params)).as_ref(), "{expr}");
            assert_eq!(fast.len(), rows.num_rows());
        }
        // A parameter without values is the planner's error, as before.
        assert!(evaluate_one(&placeholder("$1", DataType::Int64), &input, &rows, None).is_err());
        assert!(evaluate_one(&placeholder("$3", DataType::Int64), &input, &rows, Some(&params)).is_err());
    }

    /// Arithmetic on numbers of one type runs the kernel itself: the same
    /// values (wrapping overflow, NULLs) and the same errors as DataFusion's
    /// `BinaryExpr`; anything else stays physical.
    #[test]
    fn arithmetic_runs_the_binary_expressions_kernel_with_the_same_results_and_errors() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, true), Field::new("b", DataType::Int64, true)]));
        let rows = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int32Array::from(vec![Some(3), None, Some(0), Some(i32::MAX)])), Arc::new(Int64Array::from(vec![10, 20, -7, i64::MAX]))],
        )
        .unwrap();
        let input = DFSchema::try_from(schema.as_ref().clone()).unwrap();
        let props = ExecutionProps::new();
        let widened = Expr::Cast(Cast::new(Box::new(col("a")), DataType::Int64));
        let fast = [
            col("a") * lit(7i32),
            col("b") + lit(i64::MAX),
            lit(10i64) - col("b"),
            col("b") / lit(3i64),
            col("a") % lit(2i32),
            col("a") * col("a"),
            widened.clone() * lit(7i64),
            col("a") + lit(ScalarValue::Int32(None)),
        ];
        for expr in &fast {
            let ready = Ready::new(expr, &input, &props).unwrap();
            assert!(matches!(ready, Ready::Arith { .. }), "{expr} takes the kernel");
            assert_eq!(ready.evaluate(&rows).unwrap().as_ref(), physical(expr, &input, &rows, None).as_ref(), "{expr}");
        }
        assert!(matches!(Ready::new(&widened, &input, &props).unwrap(), Ready::Widen(..)));
        // Division by zero fails alike.
        let by_zero = lit(10i32) / col("a");
        let fast_err = Ready::new(&by_zero, &input, &props).unwrap().evaluate(&rows).unwrap_err();
        let planned = create_physical_expr(&by_zero, &input, &props).unwrap();
        let general_err = planned.evaluate(&rows).unwrap_err();
        assert_eq!(fast_err.message, TarnError::from(general_err).message);
        // Integer arithmetic as the optimizer leaves it (checked functions)
        // takes the checked kernel: equal results, and PostgreSQL's error
        // on overflow, as the general path gives.
        for expr in [col("a") * col("a"), col("b") + lit(1i64), lit(-2i64) - col("b")] {
            let expr = super::super::checked_arith::checked(expr, &input).data;
            let ready = Ready::new(&expr, &input, &props).unwrap();
            assert!(matches!(ready, Ready::Arith { .. }), "{expr} takes the kernel");
            let first_rows = rows.slice(0, 3);
            assert_eq!(ready.evaluate(&first_rows).unwrap().as_ref(), physical(&expr, &input, &first_rows, None).as_ref(), "{expr}");
            let fast_err = ready.evaluate(&rows).unwrap_err();
            let general_err = TarnError::from(create_physical_expr(&expr, &input, &props).unwrap().evaluate(&rows).unwrap_err());
            assert_eq!((fast_err.code, fast_err.message.as_str()), (general_err.code, general_err.message.as_str()), "{expr}");
            assert_eq!(fast_err.code, "22003", "{expr}");
            assert!(fast_err.message.ends_with("out of range"), "{expr}: {}", fast_err.message);
        }
        // Mixed types, comparisons and constants alone stay with DataFusion.
        for expr in [col("a").eq(lit(3i32)), lit(2i64) * lit(3i64), col("b") * Expr::Cast(Cast::new(Box::new(col("a")), DataType::Float64))] {
            assert!(matches!(Ready::new(&expr, &input, &props).unwrap(), Ready::Physical(_)), "{expr}");
        }
    }

    #[test]
    fn an_all_nullable_schema_is_kept_and_others_are_made_nullable() {
        let (_, rows) = rows();
        let schema = rows.schema();
        assert!(Arc::ptr_eq(&nullable_schema(&schema), &schema));
        let strict = Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, false)]));
        let made = nullable_schema(&strict);
        assert!(made.field(0).is_nullable());
        assert_eq!(made.field(0).data_type(), &DataType::Int32);
    }
}
