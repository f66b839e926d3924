//! Plans kept per session, so a statement executed again — a prepared
//! statement's every Execute, a repeated `UPDATE … WHERE id = $1` row
//! selection — skips SQL-to-plan work (brief: "prepared statements plan
//! once").
//!
//! What is kept is the plan before optimization: each execution still binds
//! its parameters, optimizes (so `now()` is that statement's time, and
//! constant folding sees the parameter values) and plans execution, whose
//! scans read the statement's own snapshot. A plan is kept only if every
//! relation it reads is a Tarn table (catalog tables, views and
//! statement-local relations are built at planning time, so their plans
//! are not reusable), and is used only while the catalog, the session's
//! DataFusion configuration and each table's definition are those it was
//! planned under.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::Statement;

use crate::storage::Storage;
use crate::storage::handle::TableHandle;
use crate::storage::table::Table;

/// Statements kept at most; a full cache starts over (statements with
/// inline literals would otherwise grow it without bound).
const CAPACITY: usize = 256;

#[derive(Default)]
pub struct PlanCache {
    entries: HashMap<Statement, Cached>,
}

struct Cached {
    plan: LogicalPlan,
    /// The planning conditions: catalog generation, configuration generation.
    under: (u64, u64),
    /// The table definitions the plan resolved.
    tables: Vec<Arc<Table>>,
}

impl PlanCache {
    /// The plan of `stmt` if one was kept under these conditions and its
    /// tables are still current.
    pub fn get(&self, stmt: &Statement, under: (u64, u64), storage: &Storage) -> Option<LogicalPlan> {
        let cached = self.entries.get(stmt)?;
        let current = cached.under == under
            && cached.tables.iter().all(|t| storage.table_by_id(t.def.id).is_some_and(|now| Arc::ptr_eq(&now, t)));
        current.then(|| cached.plan.clone())
    }

    /// Keep `plan` if it can be reused.
    pub fn put(&mut self, stmt: &Statement, plan: &LogicalPlan, under: (u64, u64)) {
        let Some(tables) = reusable_tables(plan) else { return };
        if self.entries.len() >= CAPACITY {
            self.entries.clear();
        }
        self.entries.insert(stmt.clone(), Cached { plan: plan.clone(), under, tables });
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The Tarn tables `plan` reads, or None if it reads anything else.
fn reusable_tables(plan: &LogicalPlan) -> Option<Vec<Arc<Table>>> {
    let mut tables = vec![];
    let mut reusable = true;
    let walked = plan.apply_with_subqueries(|node| {
        let source = match node {
            LogicalPlan::TableScan(scan) => &scan.source,
            // INSERT's target, resolved (with its DEFAULTs) at planning.
            LogicalPlan::Dml(dml) => &dml.target,
            _ => return Ok(TreeNodeRecursion::Continue),
        };
        {
            let handle = source_as_provider(source)
                .ok()
                .and_then(|p| (p.as_ref() as &dyn std::any::Any).downcast_ref::<TableHandle>().map(|h| h.table().clone()));
            match handle {
                Some(table) => tables.push(table),
                None => {
                    reusable = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    (walked.is_ok() && reusable).then_some(tables)
}
