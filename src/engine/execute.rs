//! Running a classified statement: plan and execute through DataFusion, or
//! perform DDL and settings changes directly. Results are streams — nothing
//! here collects a query's rows.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, UInt64Type};
use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{DmlStatement, LogicalPlan, WriteOp};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    ConflictTarget, Ident, Insert, OnConflict, OnConflictAction, OnInsert, Statement, TableObject,
};

use super::plan_cache::{KeptKind, KeptPlan, KeptSlot};
use crate::error::{Result, TarnError, sqlstate};
use crate::session::Session;
use crate::sql::{Command, naming};

/// What a statement produced.
pub enum Output {
    /// A result set, streamed. `tag` is the command tag's verb: `SELECT`, or
    /// `INSERT 0`/`UPDATE`/`DELETE` for RETURNING (the row count follows).
    Rows { schema: SchemaRef, stream: SendableRecordBatchStream, tag: &'static str },
    /// A command tag (`CREATE TABLE`, `INSERT 0 2`), and a setting to report
    /// to the client in ParameterStatus if the command changed one.
    Command { tag: String, parameter_status: Option<(String, String)> },
    /// `COPY … FROM STDIN` waits for `columns`-wide data; the session holds
    /// the copy until the data ends.
    CopyIn { columns: usize, binary: bool },
    /// `COPY … TO STDOUT`: one text/CSV line per row.
    CopyOut { columns: usize, binary: bool, rows: futures::stream::BoxStream<'static, Result<Vec<u8>>> },
}

impl Output {
    pub(crate) fn tag(tag: impl Into<String>) -> Output {
        Output::Command { tag: tag.into(), parameter_status: None }
    }
}

/// Plan a statement DataFusion runs: kept plans are reused (see
/// `plan_cache`).
pub async fn plan(session: &Session, stmt: &Statement) -> Result<LogicalPlan> {
    let under = (crate::storage::catalog::generation(), session.config_generation());
    let storage = &session.engine().storage;
    if let Some(plan) = session.plan_cache().get(stmt, under, storage) {
        return Ok(plan);
    }
    let state = session.statement_state();
    let plan = state.state.statement_to_plan(DfStatement::Statement(Box::new(stmt.clone()))).await;
    session.release_state(state);
    let plan = super::plan_cache::unify_placeholder_types(super::text_casts::tag_result_casts(plan?)?)?;
    session.plan_cache().put(stmt, &plan, under);
    Ok(plan)
}

/// A statement's plan and its parameters: optimized already (kept in the
/// plan cache, see `plan_cache`) or not yet.
pub struct Bound {
    pub plan: LogicalPlan,
    pub optimized: bool,
    /// Values for `plan`'s placeholders, not yet substituted: an optimized
    /// plan keeps its placeholders until it runs, so a point plan
    /// (`point`) puts the values in its few expressions only.
    params: Option<ParamValues>,
}

impl Bound {
    /// A plan optimized ahead of its parameter values (kept by a prepared
    /// statement), to run with `params`.
    pub fn kept(plan: LogicalPlan, params: Option<ParamValues>) -> Bound {
        Bound { plan, optimized: true, params }
    }

    /// The plan with its parameter values substituted.
    fn into_plan(self) -> Result<LogicalPlan> {
        bind_values(self.plan, self.params)
    }
}

/// Plan `stmt` and bind `params`, reusing its kept optimized plan when the
/// parameters are of the types it was optimized for (and making one when
/// it may be kept).
pub async fn bind(session: &Session, stmt: &Statement, params: Option<ParamValues>) -> Result<Bound> {
    if let Some(ParamValues::Map(_)) = &params {
        return Ok(Bound { plan: bind_values(plan(session, stmt).await?, params)?, optimized: false, params: None });
    }
    let types = param_types_of(&params);
    let under = (crate::storage::catalog::generation(), session.config_generation());
    let storage = &session.engine().storage;
    let lookup = session.plan_cache().get_optimized(stmt, under, storage, &types);
    let may_keep = match lookup {
        Ok(optimized) => return Ok(Bound { plan: optimized, optimized: true, params }),
        Err(may_keep) => may_keep,
    };
    let logical = plan(session, stmt).await?;
    if !may_keep {
        return Ok(Bound { plan: bind_values(logical, params)?, optimized: false, params: None });
    }
    let state = session.statement_state();
    let optimized = super::plan_cache::type_placeholders(logical.clone(), &types).and_then(|typed| state.state.optimize(&typed));
    session.release_state(state);
    match optimized {
        Ok(optimized) => {
            session.plan_cache().put_optimized(stmt, Some((types, optimized.clone())));
            Ok(Bound { plan: optimized, optimized: true, params })
        }
        Err(e) => {
            tracing::debug!(error = %e, "plan not optimized ahead of its parameter values");
            session.plan_cache().put_optimized(stmt, None);
            Ok(Bound { plan: bind_values(logical, params)?, optimized: false, params: None })
        }
    }
}

fn bind_values(plan: LogicalPlan, params: Option<ParamValues>) -> Result<LogicalPlan> {
    Ok(match params {
        Some(params) => plan.with_param_values(params)?,
        None => plan,
    })
}

/// Optimize `plan` (unless `optimized`) and plan its execution, with the
/// session's state.
pub async fn physical_plan(session: &Session, plan: &LogicalPlan, optimized: bool) -> Result<Arc<dyn ExecutionPlan>> {
    let state = session.statement_state();
    let physical = if optimized {
        state.state.query_planner().create_physical_plan(plan, &state.state).await
    } else {
        state.state.create_physical_plan(plan).await
    };
    session.release_state(state);
    Ok(physical?)
}

/// Run `plan` to the end and keep every row (DML row selections, EXPLAIN).
pub async fn collect_plan(session: &Session, plan: &LogicalPlan) -> Result<Vec<RecordBatch>> {
    let physical = physical_plan(session, plan, false).await?;
    Ok(datafusion::physical_plan::collect(physical, session.task_ctx()).await?)
}

pub async fn collect_bound(session: &Session, bound: Bound) -> Result<Vec<RecordBatch>> {
    if bound.optimized {
        if let Some(row) = super::point::run(&bound.plan, bound.params.as_ref()).await? {
            return Ok(vec![row]);
        }
    }
    let optimized = bound.optimized;
    let physical = physical_plan(session, &bound.into_plan()?, optimized).await?;
    Ok(datafusion::physical_plan::collect(physical, session.task_ctx()).await?)
}

/// Run `plan` as a stream of its rows, with its result schema.
pub async fn stream_plan(session: &Session, plan: &LogicalPlan) -> Result<(SchemaRef, SendableRecordBatchStream)> {
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let physical = physical_plan(session, plan, false).await?;
    Ok((schema, datafusion::physical_plan::execute_stream(physical, session.task_ctx())?))
}

async fn stream_bound(session: &Session, bound: Bound) -> Result<(SchemaRef, SendableRecordBatchStream)> {
    let schema: SchemaRef = Arc::new(bound.plan.schema().as_arrow().clone());
    if bound.optimized {
        if let Some(row) = super::point::run(&bound.plan, bound.params.as_ref()).await? {
            let rows = RecordBatchStreamAdapter::new(schema.clone(), futures::stream::iter([Ok(row)]));
            return Ok((schema, Box::pin(rows)));
        }
    }
    let optimized = bound.optimized;
    let physical = physical_plan(session, &bound.into_plan()?, optimized).await?;
    Ok((schema, datafusion::physical_plan::execute_stream(physical, session.task_ctx())?))
}

/// Run a statement DataFusion plans (a query, INSERT, EXPLAIN). With a
/// prepared statement's `slot`, a plan optimized ahead of its values is
/// kept there for the statement's next Execute ([`run_kept`]).
pub async fn run_query(session: &Session, mut stmt: Box<Statement>, params: Option<ParamValues>, slot: Option<&KeptSlot>) -> Result<Output> {
    name_omitted_insert_columns(session, &mut stmt);
    if let Statement::Insert(ins) = stmt.as_ref() {
        if ins.returning.is_some() || ins.on.is_some() {
            return insert(session, ins, params).await;
        }
    }
    // Read before planning: a catalog change meanwhile leaves the kept plan stale, not current.
    let keeping = slot.map(|slot| (slot, session.kept_under(), param_types_of(&params)));
    let bound = bind(session, &stmt, params).await?;
    if let Some((slot, under, types)) = keeping.filter(|_| bound.optimized) {
        let result = postgres_column_names(&stmt, bound.plan.schema().as_arrow());
        slot.keep(under, types, &bound.plan, KeptKind::Query { result });
    }
    Ok(match run_plan(session, bound).await? {
        Output::Rows { schema, stream, tag } => Output::Rows { schema: postgres_column_names(&stmt, &schema), stream, tag },
        other => other,
    })
}

/// A parameter's value as the type its plan expects (`target`, from
/// [`describe`]), where the plan knows one: the plan was typed and coerced
/// for that type, and a value of another type would meet its operators
/// uncoerced. Both a protocol Bind and SQL `EXECUTE` go through here.
pub fn param_as_target(value: ScalarValue, target: Option<&DataType>) -> Result<ScalarValue> {
    match target {
        // A placeholder DataFusion could not type (`$1 * $2`) is `Null`: no target.
        Some(target) if !target.is_null() && value.data_type() != *target => Ok(value.cast_to(target)?),
        _ => Ok(value),
    }
}

/// The types of a statement's parameter values, as a kept plan records them.
pub fn param_types_of(params: &Option<ParamValues>) -> Vec<DataType> {
    match params {
        Some(ParamValues::List(values)) => values.iter().map(|v| v.value.data_type()).collect(),
        _ => vec![],
    }
}

/// Run a prepared statement's kept plan ([`KeptSlot::current`]).
pub async fn run_kept(session: &Session, kept: &KeptPlan, params: Option<ParamValues>) -> Result<Output> {
    if let Some(insert) = kept.point_insert()
        && let Some(count) = insert.insert(params.as_ref()).await?
    {
        return Ok(Output::tag(format!("INSERT 0 {count}")));
    }
    let bound = Bound::kept(kept.plan.clone(), params);
    match &kept.kind {
        KeptKind::Query { result } => Ok(match run_plan(session, bound).await? {
            Output::Rows { stream, tag, .. } => Output::Rows { schema: result.clone(), stream, tag },
            other => other,
        }),
        KeptKind::RowSelection(sel) => super::dml::run_selection(session, sel, bound).await,
    }
}

pub async fn run(session: &Session, cmd: Command, params: Option<ParamValues>) -> Result<Output> {
    match cmd {
        Command::Plan(stmt) => run_query(session, stmt, params, None).await,
        Command::CreateTable(ct) => {
            for c in &ct.table.columns {
                if let Some(sql) = &c.default {
                    super::plan_default(sql, &c.pg_type())?;
                }
            }
            session.engine().storage.create_table(ct.table, ct.if_not_exists).await?;
            Ok(Output::tag("CREATE TABLE"))
        }
        Command::DropTable { names, if_exists } => {
            for (schema, name) in names {
                session.engine().storage.drop_table(&schema, &name, if_exists).await?;
            }
            Ok(Output::tag("DROP TABLE"))
        }
        // Boxed: CREATE TABLE AS runs its INSERT through `run` again.
        Command::CreateTableAs(cta) => Box::pin(super::views::create_table_as(session, *cta)).await,
        Command::CreateView(cv) => super::views::create_view(session, *cv).await,
        Command::CreateIndex(ci) => {
            let storage = &session.engine().storage;
            storage.create_index(&ci.schema, &ci.table, ci.name, &ci.column, ci.method, ci.if_not_exists).await?;
            Ok(Output::tag("CREATE INDEX"))
        }
        Command::DropIndex { names, if_exists } => {
            for (schema, name) in names {
                session.engine().storage.drop_index(&schema, &name, if_exists).await?;
            }
            Ok(Output::tag("DROP INDEX"))
        }
        Command::CreateSchema { name, if_not_exists } => {
            session.engine().storage.create_schema(&name, if_not_exists).await?;
            Ok(Output::tag("CREATE SCHEMA"))
        }
        Command::DropSchema { names, if_exists, cascade } => {
            for name in names {
                session.engine().storage.drop_schema(&name, if_exists, cascade).await?;
            }
            Ok(Output::tag("DROP SCHEMA"))
        }
        Command::DropView { names, if_exists } => {
            for (schema, name) in names {
                session.engine().storage.drop_view(&schema, &name, if_exists).await?;
            }
            Ok(Output::tag("DROP VIEW"))
        }
        Command::AlterTable { schema, name, if_exists, actions } => {
            session.engine().storage.alter_table(&schema, &name, if_exists, &actions).await?;
            Ok(Output::tag("ALTER TABLE"))
        }
        Command::Rename { schema, name, to, if_exists } => {
            session.engine().storage.rename_relation(&schema, &name, &to, if_exists).await?;
            Ok(Output::tag("ALTER TABLE"))
        }
        Command::Update(stmt) | Command::Delete(stmt) => super::dml::run(session, &stmt, params, None).await,
        Command::Truncate { names } => super::dml::truncate(session, &names).await,
        Command::Vacuum { table } => {
            if session.transaction_status() != crate::storage::txn::TxnStatus::Idle {
                return Err(TarnError::new(
                    sqlstate::ACTIVE_SQL_TRANSACTION,
                    "VACUUM cannot run inside a transaction block",
                ));
            }
            let storage = &session.engine().storage;
            let table = match table {
                Some((schema, name)) => Some(storage.table(&schema, &name).ok_or_else(|| TarnError::undefined_table(&name))?),
                None => None,
            };
            session.txn().lock().unwrap().release_snapshot();
            storage.vacuum(table).await?;
            Ok(Output::tag("VACUUM"))
        }
        Command::Set { name, value } => {
            let parameter_status = session.settings().set(&name, value)?;
            session.apply_time_zone();
            Ok(Output::Command { tag: "SET".into(), parameter_status })
        }
        Command::Reset { name } => {
            let parameter_status = match name {
                Some(name) => session.settings().set(&name, None)?,
                None => {
                    session.settings().reset_all();
                    None
                }
            };
            session.apply_time_zone();
            Ok(Output::Command { tag: "RESET".into(), parameter_status })
        }
        Command::Show { name } => show(session, &name),
        Command::Copy(copy) => super::copy::run(session, *copy).await,
        Command::Transaction(_) => Err(TarnError::internal("transaction control is run by the session")),
        Command::DeclareCursor { name, hold, query } => {
            let rows = Box::pin(run(session, Command::Plan(query), params)).await?;
            session.declare_cursor(name, hold, rows).await
        }
        Command::Fetch { name, count } => session.fetch(&name, count).await,
        Command::CloseCursor(name) => session.close_cursor(name.as_deref()),
        Command::Prepare { name, types, stmt } => session.prepare(name, types, *stmt),
        Command::Execute { name, args } => {
            let (stmt, values) = session.bind_prepared(&name, &args).await?;
            Box::pin(run(session, session.classify(stmt)?, Some(values))).await
        }
        Command::Deallocate(name) => session.deallocate(name.as_deref()),
        Command::DiscardAll => session.discard_all(),
    }
}

/// `INSERT INTO t VALUES (…)` with fewer values than `t` has columns fills
/// the leading columns and defaults the rest in PostgreSQL; DataFusion wants
/// every column, so name the leading ones explicitly.
fn name_omitted_insert_columns(session: &Session, stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{ObjectName, ObjectNamePart, SetExpr};
    let Statement::Insert(ins) = stmt else { return };
    if !ins.columns.is_empty() {
        return;
    }
    let (TableObject::TableName(name), Some(source)) = (&ins.table, &ins.source) else { return };
    let SetExpr::Values(values) = source.body.as_ref() else { return };
    let Some(width) = values.rows.iter().map(|r| r.content.len()).max() else { return };
    let Ok((schema, table_name)) = session.qualified_name(name) else { return };
    let Some(table) = session.engine().storage.table(&schema, &table_name) else { return };
    if width >= table.def.columns.len() {
        return;
    }
    ins.columns = table.def.columns[..width]
        .iter()
        .map(|c| ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote('"', &c.name))]))
        .collect();
}

/// INSERT with RETURNING and/or `ON CONFLICT (key) DO NOTHING`: DataFusion
/// plans the plain INSERT; the sink skips conflicting rows and keeps a copy
/// of what it wrote for RETURNING.
async fn insert(session: &Session, ins: &Insert, params: Option<ParamValues>) -> Result<Output> {
    let mut plain = ins.clone();
    let items = plain.returning.take();
    // The alias only names the target in ON CONFLICT and RETURNING, which
    // are resolved here; DataFusion's INSERT planning refuses it.
    plain.table_alias = None;
    let TableObject::TableName(name) = &plain.table else {
        return Err(TarnError::not_supported("INSERT INTO a table function is not supported"));
    };
    let (schema, table_name) = session.qualified_name(name)?;
    let storage = &session.engine().storage;
    let table = storage.table(&schema, &table_name).ok_or_else(|| TarnError::undefined_table(&table_name))?;
    let mut do_update = None;
    let skip_conflicts = match plain.on.take() {
        None => false,
        Some(OnInsert::OnConflict(OnConflict { conflict_target, action: OnConflictAction::DoNothing })) => {
            check_conflict_target(&table, conflict_target.as_ref())?;
            true
        }
        Some(OnInsert::OnConflict(OnConflict { conflict_target, action: OnConflictAction::DoUpdate(u) })) => {
            if conflict_target.is_none() {
                return Err(TarnError::syntax("ON CONFLICT DO UPDATE requires inference specification or constraint name")
                    .with_hint("For example, ON CONFLICT (column_name)."));
            }
            check_conflict_target(&table, conflict_target.as_ref())?;
            do_update = Some(u);
            false
        }
        Some(_) => return Err(TarnError::not_supported("ON DUPLICATE KEY UPDATE is MySQL syntax; use ON CONFLICT")),
    };
    let locks = skip_conflicts || do_update.is_some();
    let txn = session.txn();
    if locks && txn.lock().unwrap().status == crate::storage::txn::TxnStatus::Idle {
        // Autocommit: decide which rows conflict under the table's write
        // lock, held to the commit, so a concurrent insert cannot slip in.
        storage.lock_for_update(&table, txn).await;
    }
    {
        let mut t = txn.lock().unwrap();
        t.statement.skip_conflicts = skip_conflicts;
        t.statement.conflicts = do_update.is_some().then(Vec::new);
        t.statement.capture = (items.is_some() || do_update.is_some()).then(Vec::new);
    }
    let result = async {
        let bound = bind(session, &Statement::Insert(plain), params).await?;
        run_plan(session, bound).await
    }
    .await;
    let (mut captured, conflicts) = {
        let mut t = txn.lock().unwrap();
        t.statement.skip_conflicts = false;
        (t.statement.capture.take().unwrap_or_default(), t.statement.conflicts.take())
    };
    let out = result?;
    let alias = ins.table_alias.as_ref().map(|a| a.alias.clone()).unwrap_or_else(|| Ident::with_quote('"', &table_name));
    if let (Some(update), Some(conflicts)) = (do_update, conflicts) {
        // The conflicting proposals are `excluded`; update the rows they hit.
        let mut count: usize = captured.iter().map(|b| b.num_rows()).sum();
        if !conflicts.is_empty() {
            let excluded = datafusion::datasource::MemTable::try_new(table.schema.clone(), vec![conflicts])?;
            txn.lock().unwrap().statement.returning = Some(Arc::new(excluded));
            let sel = super::dml::upsert_selection(table.clone(), alias.clone(), &update.assignments, update.selection.clone());
            let applied = match sel {
                Ok(sel) => super::dml::apply(session, &sel, None).await,
                Err(e) => Err(e),
            };
            txn.lock().unwrap().statement.returning = None;
            let (updated, rows) = applied?;
            count += updated;
            captured.extend(rows);
        }
        return match items {
            None => Ok(Output::tag(format!("INSERT 0 {count}"))),
            Some(items) => super::returning::project(session, &table, alias, items, captured, "INSERT 0").await,
        };
    }
    match items {
        None => Ok(out),
        Some(items) => super::returning::project(session, &table, alias, items, captured, "INSERT 0").await,
    }
}

/// `ON CONFLICT (cols)` must name the primary key (Tarn's only unique
/// constraint); no target means any key conflict.
fn check_conflict_target(table: &crate::storage::table::Table, target: Option<&ConflictTarget>) -> Result<()> {
    let mismatch = || {
        TarnError::new("42P10", "there is no unique or exclusion constraint matching the ON CONFLICT specification")
    };
    match target {
        None => Ok(()),
        Some(ConflictTarget::Columns(cols)) => {
            let mut named: Vec<String> = cols.iter().map(crate::sql::normalize_ident).collect();
            let mut key: Vec<String> = table.def.primary_key.iter().map(|&i| table.def.columns[i].name.clone()).collect();
            named.sort();
            key.sort();
            if key.is_empty() || named != key { Err(mismatch()) } else { Ok(()) }
        }
        Some(ConflictTarget::OnConstraint(name)) => {
            let n = name.0.last().and_then(|p| p.as_ident()).map(crate::sql::normalize_ident).unwrap_or_default();
            if table.has_primary_key() && n == table.def.pkey_name() {
                Ok(())
            } else {
                Err(TarnError::new(
                    sqlstate::UNDEFINED_OBJECT,
                    format!("constraint \"{n}\" for table \"{}\" does not exist", table.def.name),
                ))
            }
        }
    }
}

async fn run_plan(session: &Session, bound: Bound) -> Result<Output> {
    let dml_tag = match &bound.plan {
        LogicalPlan::Dml(DmlStatement { op: WriteOp::Insert(_), .. }) => Some("INSERT 0"),
        LogicalPlan::Dml(DmlStatement { op, .. }) => {
            return Err(TarnError::not_supported(format!("{op} is not supported yet")));
        }
        LogicalPlan::Ddl(_) | LogicalPlan::Copy(_) | LogicalPlan::Statement(_) => {
            return Err(TarnError::not_supported("this statement is not supported yet"));
        }
        _ => None,
    };
    let explain = matches!(bound.plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
    if explain {
        return Ok(query_plan_rows(collect_bound(session, bound).await?));
    }
    match dml_tag {
        Some(tag) => {
            let batches = collect_bound(session, bound).await?;
            let count: u64 = batches
                .iter()
                .filter(|b| b.num_columns() > 0)
                .map(|b| b.column(0).as_primitive_opt::<UInt64Type>().map(|a| a.values().iter().sum::<u64>()).unwrap_or(0))
                .sum();
            Ok(Output::tag(format!("{tag} {count}")))
        }
        None => {
            let (schema, stream) = stream_bound(session, bound).await?;
            Ok(Output::Rows { schema, stream, tag: "SELECT" })
        }
    }
}

/// EXPLAIN's result as PostgreSQL shapes it: one `QUERY PLAN` text column,
/// a row per line. DataFusion returns (plan_type, plan) rows; the physical
/// plan (or, for ANALYZE, the plan with metrics) is what PostgreSQL users
/// read, so only the logical plan is dropped when a physical one is there.
fn query_plan_rows(batches: Vec<RecordBatch>) -> Output {
    let mut plans: Vec<(String, String)> = vec![];
    for b in &batches {
        if b.num_columns() < 2 {
            continue;
        }
        let (Some(kinds), Some(texts)) = (b.column(0).as_string_opt::<i32>(), b.column(1).as_string_opt::<i32>()) else { continue };
        for i in 0..b.num_rows() {
            plans.push((kinds.value(i).to_string(), texts.value(i).to_string()));
        }
    }
    let physical = plans.iter().any(|(k, _)| k != "logical_plan");
    let lines: Vec<String> = plans
        .into_iter()
        .filter(|(k, _)| !physical || k != "logical_plan")
        .flat_map(|(_, text)| text.lines().map(str::to_string).filter(|l| !l.trim().is_empty()).collect::<Vec<_>>())
        .collect();
    let schema = query_plan_schema();
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(lines))]).expect("one text column");
    let stream = RecordBatchStreamAdapter::new(schema.clone(), futures::stream::iter(vec![Ok(batch)]));
    Output::Rows { schema, stream: Box::pin(stream), tag: "EXPLAIN" }
}

fn query_plan_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("QUERY PLAN", DataType::Utf8, false)]))
}

/// The result columns of `SHOW name` (shared by execution and Describe).
fn show_columns(name: &str) -> Vec<String> {
    if name.eq_ignore_ascii_case("all") {
        return vec!["name".into(), "setting".into()];
    }
    let column = match name {
        "transaction isolation level" => "transaction_isolation",
        "time zone" => "TimeZone",
        n => n,
    };
    vec![column.to_string()]
}

fn show_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(show_columns(name).into_iter().map(|c| Field::new(c, DataType::Utf8, false)).collect::<Vec<_>>()))
}

fn show(session: &Session, name: &str) -> Result<Output> {
    let settings = session.settings();
    let rows: Vec<Vec<String>> = if name.eq_ignore_ascii_case("all") {
        settings.all().into_iter().map(|(n, v)| vec![n, v]).collect()
    } else {
        vec![vec![settings.get(name)?]]
    };
    let schema = show_schema(name);
    let columns = schema.fields().len();
    let arrays = (0..columns)
        .map(|i| Arc::new(StringArray::from(rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>())) as _)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    let stream = RecordBatchStreamAdapter::new(schema.clone(), futures::stream::iter(vec![Ok(batch)]));
    Ok(Output::Rows { schema, stream: Box::pin(stream), tag: "SELECT" })
}

/// The result schema with columns named as PostgreSQL names them (the
/// batches themselves are encoded by position, so only the header changes).
pub(crate) fn postgres_column_names(stmt: &Statement, schema: &Schema) -> SchemaRef {
    let planned: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let names = naming::output_names(stmt).and_then(|n| naming::resolve(&n, &planned));
    match names {
        Some(names) => Arc::new(Schema::new_with_metadata(
            schema.fields().iter().zip(names).map(|(f, n)| f.as_ref().clone().with_name(n)).collect::<Vec<_>>(),
            schema.metadata().clone(),
        )),
        None => Arc::new(schema.clone()),
    }
}

/// The (name, type) of each result column a statement will produce, without
/// running it; empty for statements that return no rows.
pub async fn describe(session: &Session, stmt: &Statement) -> Result<(Vec<Option<FieldRef>>, SchemaRef)> {
    let cmd = session.classify(stmt.clone())?;
    if let Command::Update(stmt) | Command::Delete(stmt) = &cmd {
        let sel = super::dml::selection(session, stmt)?;
        let plan = plan(session, &sel.query).await?;
        let schema = match super::dml::returning_items(stmt) {
            Some(items) => super::returning::describe(session, &sel.table, sel.alias.clone(), items).await?,
            None => Arc::new(Schema::empty()),
        };
        return Ok((parameter_types(&plan)?, schema));
    }
    if let Command::Plan(stmt) = &cmd {
        let mut stmt = stmt.clone();
        name_omitted_insert_columns(session, &mut stmt);
        if let Statement::Insert(ins) = stmt.as_ref() {
            if ins.returning.is_some() || ins.on.is_some() || ins.table_alias.is_some() {
                let mut plain = ins.clone();
                let items = plain.returning.take();
                plain.on = None;
                plain.table_alias = None;
                let params = parameter_types(&plan(session, &Statement::Insert(plain)).await?)?;
                let schema = match items {
                    None => Arc::new(Schema::empty()),
                    Some(items) => {
                        let TableObject::TableName(name) = &ins.table else {
                            return Err(TarnError::not_supported("INSERT INTO a table function is not supported"));
                        };
                        let (schema_name, table_name) = session.qualified_name(name)?;
                        let table = session
                            .engine()
                            .storage
                            .table(&schema_name, &table_name)
                            .ok_or_else(|| TarnError::undefined_table(&table_name))?;
                        let alias =
                            ins.table_alias.as_ref().map(|a| a.alias.clone()).unwrap_or_else(|| Ident::with_quote('"', &table_name));
                        super::returning::describe(session, &table, alias, items).await?
                    }
                };
                return Ok((params, schema));
            }
        }
    }
    match cmd {
        Command::Plan(mut stmt) => {
            name_omitted_insert_columns(session, &mut stmt);
            let plan = plan(session, &stmt).await?;
            let out = parameter_types(&plan)?;
            let schema = match &plan {
                LogicalPlan::Dml(_) => Arc::new(Schema::empty()),
                LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) => query_plan_schema(),
                _ => postgres_column_names(&stmt, plan.schema().as_arrow()),
            };
            Ok((out, schema))
        }
        Command::Show { name } => Ok((vec![], show_schema(&name))),
        Command::Fetch { name, .. } => Ok((vec![], session.cursors.schema(&name)?)),
        Command::Execute { name, .. } => {
            // The columns are the prepared statement's; EXECUTE's own arguments are literals.
            let inner = session.prepared_statement(&name)?;
            Ok((vec![], Box::pin(describe(session, &inner)).await?.1))
        }
        _ => Ok((vec![], Arc::new(Schema::empty()))),
    }
}

/// The type of each `$n` in a plan, by position (None where unknown), as a
/// field: one compared with or stored into a column carries the column's
/// `tarn.pg_type` tag (a uuid parameter is a tagged Utf8).
fn parameter_types(plan: &LogicalPlan) -> Result<Vec<Option<FieldRef>>> {
    let mut params: Vec<(usize, Option<FieldRef>)> = plan
        .get_parameter_fields()?
        .into_iter()
        .filter_map(|(k, v)| k.trim_start_matches('$').parse::<usize>().ok().map(|i| (i, v)))
        .collect();
    params.sort_by_key(|(i, _)| *i);
    let n = params.last().map(|(i, _)| *i).unwrap_or(0);
    let mut out = vec![None; n];
    for (i, t) in params {
        out[i - 1] = t;
    }
    // `$1::oid[]`: PostgreSQL types a parameter by the cast it meets, where
    // DataFusion leaves it untyped (asyncpg's introspection binds oid[] so).
    use datafusion::common::tree_node::TreeNode;
    plan.apply_with_subqueries(|p| {
        for e in p.expressions() {
            e.apply(|e| {
                if let datafusion::logical_expr::Expr::Cast(datafusion::logical_expr::Cast { expr, field }) = e {
                    if let datafusion::logical_expr::Expr::Placeholder(ph) = expr.as_ref() {
                        if let Some(i) = ph.id.trim_start_matches('$').parse::<usize>().ok().filter(|i| (1..=n).contains(i)) {
                            if out[i - 1].as_ref().is_none_or(|f| f.data_type() == &arrow::datatypes::DataType::Null) {
                                out[i - 1] = Some(field.clone());
                            }
                        }
                    }
                }
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })?;
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })?;
    Ok(out)
}
