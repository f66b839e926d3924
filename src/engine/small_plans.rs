//! The physical optimizer Tarn plans with: DataFusion's own rules, skipped
//! for plans too small to gain from them.
//!
//! A primary-key lookup, a one-row INSERT or `SELECT 1` spent more time in
//! DataFusion's two dozen physical optimizer passes (distribution and sort
//! enforcement, projection and limit pushdown, …) than in running. Those
//! passes decide how to parallelise and order work across partitions; a
//! plan built only of nodes that need no such decision, over one partition
//! of a handful of rows, is already executable as the physical planner
//! made it, so [`SmallPlansAsPlanned`] returns it untouched and runs every
//! rule on anything else. EXPLAIN shows whichever plan runs.

use std::sync::Arc;

use datafusion::common::stats::Precision;
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::optimizer::{PhysicalOptimizer, PhysicalOptimizerContext};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

/// Most rows a source of a small plan may have.
const SMALL_ROWS: usize = 1024;

/// Nodes that have no input requirement an optimizer pass must satisfy on
/// one partition (a join, for one, needs its partition mode decided).
const AS_PLANNED: &[&str] = &["ProjectionExec", "FilterExec", "GlobalLimitExec", "LocalLimitExec", "DataSinkExec"];

/// Leaves that are small by construction.
const SMALL_LEAVES: &[&str] = &["TarnKeyProbe", "PlaceholderRowExec", "EmptyExec"];

/// DataFusion's physical optimizer rules, run unless the plan is small.
#[derive(Debug)]
pub struct SmallPlansAsPlanned {
    rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
}

impl SmallPlansAsPlanned {
    /// Gate DataFusion's default rules.
    pub fn new() -> Self {
        Self { rules: PhysicalOptimizer::new().rules }
    }
}

impl PhysicalOptimizerRule for SmallPlansAsPlanned {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if is_small(plan.as_ref()) {
            return Ok(plan);
        }
        self.rules.iter().try_fold(plan, |plan, rule| rule.optimize(plan, config))
    }

    fn optimize_with_context(&self, plan: Arc<dyn ExecutionPlan>, context: &dyn PhysicalOptimizerContext) -> Result<Arc<dyn ExecutionPlan>> {
        if is_small(plan.as_ref()) {
            return Ok(plan);
        }
        self.rules.iter().try_fold(plan, |plan, rule| rule.optimize_with_context(plan, context))
    }

    fn name(&self) -> &str {
        "tarn_small_plans_as_planned"
    }

    fn schema_check(&self) -> bool {
        // The gated rules check their own schemas as they run.
        true
    }
}

/// Whether `plan` is small: only [`AS_PLANNED`] nodes over small leaves,
/// every node on one partition.
fn is_small(plan: &dyn ExecutionPlan) -> bool {
    if plan.output_partitioning().partition_count() != 1 {
        return false;
    }
    let children = plan.children();
    if children.is_empty() {
        return SMALL_LEAVES.contains(&plan.name()) || (plan.name() == "DataSourceExec" && few_rows(plan));
    }
    AS_PLANNED.contains(&plan.name()) && children.iter().all(|c| is_small(c.as_ref()))
}

/// A source that knows it holds at most [`SMALL_ROWS`] rows (VALUES lists).
fn few_rows(plan: &dyn ExecutionPlan) -> bool {
    plan.partition_statistics(None).is_ok_and(|s| matches!(s.num_rows, Precision::Exact(n) if n <= SMALL_ROWS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
    use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
    use datafusion::physical_plan::projection::ProjectionExec;
    use datafusion::physical_plan::repartition::RepartitionExec;
    use datafusion::physical_plan::Partitioning;

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]))
    }

    #[test]
    fn a_projection_of_one_row_is_small() {
        let row: Arc<dyn ExecutionPlan> = Arc::new(PlaceholderRowExec::new(schema()));
        let projected = ProjectionExec::try_new(vec![(Arc::new(Column::new("a", 0)) as _, "a".to_string())], row).unwrap();
        assert!(is_small(&projected));
    }

    #[test]
    fn joins_and_many_partitions_are_optimized() {
        let left: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(schema()));
        let right: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(schema()));
        let on = vec![(Arc::new(Column::new("a", 0)) as _, Arc::new(Column::new("a", 0)) as _)];
        let join = HashJoinExec::try_new(
            left.clone(),
            right,
            on,
            None,
            &datafusion::common::JoinType::Inner,
            None,
            PartitionMode::Auto,
            datafusion::common::NullEquality::NullEqualsNothing,
            false,
        )
        .unwrap();
        assert!(!is_small(&join));
        let spread = RepartitionExec::try_new(left, Partitioning::RoundRobinBatch(4)).unwrap();
        assert!(!is_small(&spread));
    }
}
