//! Point plans: a kept, optimized plan that reads one row of one Tarn table
//! by its whole primary key — `SELECT v FROM kv WHERE id = $1`, and the row
//! selection of `UPDATE acct SET balance = balance + 1 WHERE id = $1` — is
//! answered without DataFusion's physical planning.
//!
//! Such a plan is a projection, maybe a filter, maybe a subquery alias and
//! a limit, over one table scan whose filters pin the key. Its answer is
//! the key probe's row (`storage::key_probe`) with the filter and the
//! projection evaluated on it: physical expressions made from the plan's
//! own, over the one row. Planning a physical plan for that (the execution
//! plan nodes, their equivalence properties and statistics, the optimizer
//! gate) cost more than the probe itself. Anything else — no key pinned, a
//! probe that cannot answer exactly, any other node — is planned as usual,
//! so this is an answer for the plans it recognises, never a different
//! meaning.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNode;
use datafusion::datasource::source_as_provider;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::{Expr, LogicalPlan, TableScan};
use datafusion::physical_expr::create_physical_expr;

use crate::error::Result;
use crate::storage::handle::TableHandle;

/// The parts of a point plan.
struct Shape<'a> {
    /// The result columns, over `input`'s schema.
    columns: &'a [Expr],
    input: &'a DFSchema,
    /// Conditions on the row beyond the scan's, over the schema given.
    predicate: Option<(&'a Expr, &'a DFSchema)>,
    scan: &'a TableScan,
}

/// `plan`'s rows if it is a point plan the key probe answers exactly,
/// as one batch of `plan`'s schema; None to plan it as usual.
pub async fn run(plan: &LogicalPlan) -> Result<Option<RecordBatch>> {
    let Some(shape) = shape(plan) else { return Ok(None) };
    let Ok(provider) = source_as_provider(&shape.scan.source) else { return Ok(None) };
    let Some(handle) = (provider.as_ref() as &dyn std::any::Any).downcast_ref::<TableHandle>() else { return Ok(None) };
    let Some(row) = handle.probe(shape.scan.projection.as_ref(), &shape.scan.filters).await? else { return Ok(None) };
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let props = ExecutionProps::new();
    let row = match shape.predicate {
        Some((predicate, over)) if row.num_rows() > 0 => {
            let keep = create_physical_expr(predicate, over, &props)?.evaluate(&row)?.into_array(row.num_rows())?;
            // A predicate typed otherwise (a bare NULL): let the planner decide.
            let Some(keep) = keep.as_boolean_opt() else { return Ok(None) };
            arrow::compute::filter_record_batch(&row, keep)?
        }
        _ => row,
    };
    let columns = shape
        .columns
        .iter()
        .map(|e| Ok(create_physical_expr(e, shape.input, &props)?.evaluate(&row)?.into_array(row.num_rows())?))
        .collect::<Result<Vec<ArrayRef>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(row.num_rows()));
    Ok(Some(RecordBatch::try_new_with_options(schema, columns, &options)?))
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
    let row_wise = |e: &Expr| {
        !e.exists(|e| Ok(matches!(e, Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) | Expr::OuterReferenceColumn(..) | Expr::AggregateFunction(_) | Expr::WindowFunction(_) | Expr::Placeholder(_))))
            .unwrap_or(true)
    };
    if !projection.expr.iter().all(row_wise) || !predicate.is_none_or(|(p, _)| row_wise(p)) {
        return None;
    }
    Some(Shape { columns: &projection.expr, input: projection.input.schema(), predicate, scan })
}
