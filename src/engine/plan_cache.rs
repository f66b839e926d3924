//! Plans kept per session, so a statement executed again — a prepared
//! statement's every Execute, a repeated `UPDATE … WHERE id = $1` row
//! selection — skips SQL-to-plan work (brief: "prepared statements plan
//! once").
//!
//! What is kept is the plan before optimization, and — for a plan that
//! calls no stable or volatile function (`now()` is folded to the
//! statement's time by the optimizer) and is no EXPLAIN — the optimized
//! plan too, with its parameters typed as they were bound but not
//! substituted: an execution binding the same types substitutes the values
//! and goes straight to physical planning, whose scans read the
//! statement's own snapshot. Logical optimization is most of a small
//! statement's fixed cost (a single-row INSERT, a key lookup), and plans
//! nothing from data, so it is done once. A plan is kept only if every
//! relation it reads is a Tarn table (catalog tables, views and
//! statement-local relations are built at planning time, so their plans
//! are not reusable), and is used only while the catalog, the session's
//! DataFusion configuration and each table's definition are those it was
//! planned under. A protocol-level prepared statement holds its optimized
//! plan itself as well ([`KeptSlot`]), found without hashing the statement.

// foldhash (hashbrown's default): hashing the statement's AST with SipHash was 3% of a
// prepared lookup.
use datafusion::common::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use arrow::datatypes::{DataType, Field, FieldRef, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Volatility};
use datafusion::sql::sqlparser::ast::Statement;

use super::point::PointInsert;
use crate::storage::Storage;
use crate::storage::handle::TableHandle;
use crate::storage::table::Table;

/// Statements kept at most; a full cache starts over (statements with
/// inline literals would otherwise grow it without bound).
const CAPACITY: usize = 256;

enum Optimized {
    /// Optimized with its placeholders typed as these.
    Plan(Vec<DataType>, LogicalPlan),
    /// Calls a stable or volatile function, is an EXPLAIN, or failed to
    /// optimize with placeholders: optimized per execution.
    Unfit,
}

#[derive(Default)]
pub struct PlanCache {
    entries: HashMap<Statement, Cached>,
}

struct Cached {
    plan: LogicalPlan,
    /// The optimized plan, once made (or found unfit).
    optimized: Option<Optimized>,
    /// The planning conditions: catalog generation, configuration generation.
    under: (u64, u64),
    /// The table definitions the plan resolved.
    tables: Vec<Arc<Table>>,
}

impl PlanCache {
    /// The plan of `stmt` if one was kept under these conditions and its
    /// tables are still current.
    pub fn get(&self, stmt: &Statement, under: (u64, u64), storage: &Storage) -> Option<LogicalPlan> {
        self.current(stmt, under, storage).map(|cached| cached.plan.clone())
    }

    /// The entry of `stmt`, if kept under these conditions with its tables
    /// still current.
    fn current(&self, stmt: &Statement, under: (u64, u64), storage: &Storage) -> Option<&Cached> {
        let cached = self.entries.get(stmt)?;
        (cached.under == under && tables_current(&cached.tables, storage)).then_some(cached)
    }

    /// Keep `plan` if it can be reused.
    pub fn put(&mut self, stmt: &Statement, plan: &LogicalPlan, under: (u64, u64)) {
        let Some(tables) = reusable_tables(plan) else { return };
        if self.entries.len() >= CAPACITY {
            self.entries.clear();
        }
        self.entries.insert(stmt.clone(), Cached { plan: plan.clone(), optimized: None, under, tables });
    }

    /// The optimized plan of `stmt` for parameters of `types`: `Ok(plan)`,
    /// or `Err(true)` if one may be made and kept with
    /// [`PlanCache::put_optimized`], `Err(false)` if not.
    pub fn get_optimized(&self, stmt: &Statement, under: (u64, u64), storage: &Storage, types: &[DataType]) -> Result<LogicalPlan, bool> {
        let Some(cached) = self.current(stmt, under, storage) else { return Err(false) };
        match &cached.optimized {
            Some(Optimized::Plan(kept, plan)) if kept.as_slice() == types => Ok(plan.clone()),
            Some(Optimized::Plan(..)) => Err(true),
            Some(Optimized::Unfit) => Err(false),
            None => Err(optimizable(&cached.plan)),
        }
    }

    /// Keep `stmt`'s optimized plan for parameters of `types` (None: it
    /// cannot be optimized ahead of its values).
    pub fn put_optimized(&mut self, stmt: &Statement, optimized: Option<(Vec<DataType>, LogicalPlan)>) {
        if let Some(cached) = self.entries.get_mut(stmt) {
            cached.optimized = Some(match optimized {
                Some((types, plan)) => Optimized::Plan(types, plan),
                None => Optimized::Unfit,
            });
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Whether each table is still the definition in force.
fn tables_current(tables: &[Arc<Table>], storage: &Storage) -> bool {
    tables.iter().all(|t| storage.table_by_id(t.def.id).is_some_and(|now| Arc::ptr_eq(&now, t)))
}

/// A prepared statement's optimized plan, kept with the statement itself
/// (wire `Prepared`), so that its next Execute goes from the parameters
/// straight to the plan: no copy of the statement's syntax tree, no
/// classifying it, no hashing it to find its entry in the [`PlanCache`]
/// (together ~8% of a prepared primary-key lookup).
#[derive(Default)]
pub struct KeptSlot(Mutex<Option<Arc<KeptPlan>>>);

impl std::fmt::Debug for KeptSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeptSlot")
    }
}

pub struct KeptPlan {
    /// What it was planned under: the session's settings version (the
    /// search path resolved its names), catalog and configuration
    /// generations, as [`KeptSlot::current`] is given them.
    under: (u64, u64, u64),
    tables: Vec<Arc<Table>>,
    /// The parameter types it was optimized for.
    types: Vec<DataType>,
    /// Optimized, placeholders typed but not substituted (as in the cache).
    pub plan: LogicalPlan,
    pub kind: KeptKind,
    /// The plan made ready as a point INSERT, once first asked for.
    point_insert: OnceLock<Option<PointInsert>>,
}

impl KeptPlan {
    /// The plan made ready to run as a point INSERT, if it is one
    /// (`point::PointInsert`).
    pub fn point_insert(&self) -> Option<&PointInsert> {
        self.point_insert
            .get_or_init(|| match &self.plan {
                LogicalPlan::Dml(dml) => PointInsert::compile(dml),
                _ => None,
            })
            .as_ref()
    }
}

/// What the kept plan is of.
pub enum KeptKind {
    /// A query or INSERT; its result columns named as PostgreSQL names them.
    Query { result: SchemaRef },
    /// The row selection of an UPDATE or DELETE (without RETURNING).
    RowSelection(Arc<crate::engine::dml::Selection>),
}

impl KeptSlot {
    /// The kept plan, if made under `under` for parameters of the types
    /// `params` has, with its tables' definitions still in force.
    pub fn current(&self, under: (u64, u64, u64), storage: &Storage, params: Option<&ParamValues>) -> Option<Arc<KeptPlan>> {
        let kept = self.0.lock().unwrap().clone()?;
        let types_match = match params {
            None => kept.types.is_empty(),
            Some(ParamValues::List(values)) => {
                values.len() == kept.types.len() && values.iter().zip(&kept.types).all(|(v, t)| v.value.data_type() == *t)
            }
            Some(ParamValues::Map(_)) => false,
        };
        (kept.under == under && types_match && tables_current(&kept.tables, storage)).then_some(kept)
    }

    /// Keep `plan`, optimized for parameters of `types` (if it reads only
    /// Tarn tables, as every plan the cache optimizes does).
    pub fn keep(&self, under: (u64, u64, u64), types: Vec<DataType>, plan: &LogicalPlan, kind: KeptKind) {
        let Some(tables) = reusable_tables(plan) else { return };
        *self.0.lock().unwrap() = Some(Arc::new(KeptPlan { under, tables, types, plan: plan.clone(), kind, point_insert: OnceLock::new() }));
    }
}

/// Whether `plan` gives the same optimized plan whenever it runs: no EXPLAIN
/// (its output records the optimizer's passes), and only immutable
/// functions (the optimizer folds `now()` and other stable functions).
fn optimizable(plan: &LogicalPlan) -> bool {
    if matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) {
        return false;
    }
    let mut immutable = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                let volatility = match e {
                    Expr::ScalarFunction(f) => f.func.signature().volatility,
                    Expr::AggregateFunction(f) => f.func.signature().volatility,
                    Expr::WindowFunction(_) | Expr::ScalarVariable(..) => Volatility::Volatile,
                    _ => Volatility::Immutable,
                };
                immutable &= volatility == Volatility::Immutable;
                Ok(if immutable { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
            })
        })
    });
    immutable
}

/// `plan` with each untyped `$n` placeholder typed as `types[n-1]` (the
/// types its values are bound as), schemas recomputed — what optimizing
/// ahead of the values needs, as DataFusion's own substitution does.
pub fn type_placeholders(plan: LogicalPlan, types: &[DataType]) -> datafusion::common::Result<LogicalPlan> {
    retype_placeholders(plan, |id, field| {
        let n: usize = id.strip_prefix('$').and_then(|n| n.parse().ok())?;
        match field {
            None => types.get(n.wrapping_sub(1)).map(|ty| Arc::new(Field::new(id, ty.clone(), true))),
            Some(_) => None,
        }
    })
}

/// `plan` with every occurrence of a `$n` of one type: the type of its
/// first typed occurrence, top down (a query's select list before its
/// WHERE). DataFusion types each occurrence from its own context, so
/// `SELECT b + $1 … WHERE a > $1 - 1` has `$1` as an integer and as a
/// bigint (its literals are bigints) and then refuses to bind it; PostgreSQL
/// gives a parameter one type, and casts where the other contexts need
/// another — as the analyzer's coercion does here once the types agree.
pub fn unify_placeholder_types(plan: LogicalPlan) -> datafusion::common::Result<LogicalPlan> {
    let mut first: HashMap<String, FieldRef> = HashMap::default();
    let mut conflict = false;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::Placeholder(Placeholder { id, field: Some(field) }) = e {
                    match first.get(id) {
                        None => {
                            first.insert(id.clone(), field.clone());
                        }
                        Some(seen) => conflict |= !same_type(seen, field),
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    if !conflict {
        return Ok(plan);
    }
    retype_placeholders(plan, |id, field| {
        let one = first.get(id)?;
        field.is_some_and(|f| !same_type(f, one)).then(|| one.clone())
    })
}

/// Whether two placeholder fields are one type as DataFusion's binding
/// checks it: the Arrow type and the metadata (a column's `tarn.pg_type`).
fn same_type(a: &FieldRef, b: &FieldRef) -> bool {
    a.data_type() == b.data_type() && a.metadata() == b.metadata()
}

/// `plan` with each placeholder given the field `new_field(id, its field)`
/// returns (left as it is where that is None), schemas recomputed.
fn retype_placeholders(
    plan: LogicalPlan,
    new_field: impl Fn(&str, Option<&FieldRef>) -> Option<FieldRef>,
) -> datafusion::common::Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|plan| {
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|e| {
            let saved = names.save(&e);
            let typed = e.transform_up(|e| match e {
                Expr::Placeholder(Placeholder { id, field }) => match new_field(&id, field.as_ref()) {
                    Some(field) => Ok(Transformed::yes(Expr::Placeholder(Placeholder { id, field: Some(field) }))),
                    None => Ok(Transformed::no(Expr::Placeholder(Placeholder { id, field }))),
                },
                other => Ok(Transformed::no(other)),
            })?;
            Ok(if typed.transformed { typed.update_data(|e| saved.restore(e)) } else { typed })
        })?
        .map_data(|plan| match plan {
            LogicalPlan::Values(v) => LogicalPlanBuilder::values(v.values)?.build(),
            plan => plan.recompute_schema(),
        })
    })
    .map(|t| t.data)
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
