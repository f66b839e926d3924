//! UPDATE, DELETE and TRUNCATE.
//!
//! DataFusion plans `UPDATE`/`DELETE` but has no notion of a row's identity,
//! so Tarn turns each into a row selection it plans as an ordinary query
//! over the target table with its hidden row id exposed:
//!
//! ```text
//! DELETE FROM t USING u WHERE c       →  SELECT t._tarn_rowid, t.<pk…> FROM t, u WHERE c
//! UPDATE t SET a = e FROM u WHERE c   →  SELECT t._tarn_rowid, t.<pk…>, <e or t.col for each column> FROM t, u WHERE c
//! ```
//!
//! The selected row ids become the transaction's deletes and the computed
//! rows its inserts (an update is a delete plus an insert of the new row
//! version). The AST is built from the statement's own parts; nothing is
//! re-serialised.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::UInt64Type;
use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::{
    Assignment, AssignmentTarget, Delete, Expr, FromTable, Ident, ObjectName, ObjectNamePart, SelectItem, SetExpr,
    Statement, TableAlias, TableFactor, TableWithJoins, Update, UpdateTableFromKind,
};

use super::WITH_ROWID;
use super::execute::{Bound, Output};
use super::plan_cache::{KeptKind, KeptSlot};
use crate::error::{Result, TarnError, sqlstate};
use crate::session::Session;
use crate::sql::normalize_ident;
use crate::storage::table::Table;
use crate::storage::txn::TxnStatus;
use crate::storage::version::ROWID;

/// A DML statement turned into its row selection.
#[derive(Clone)]
pub struct Selection {
    pub table: Arc<Table>,
    /// `SELECT rowid, pk…, [new values…] FROM … WHERE …`
    pub query: Statement,
    /// For UPDATE: where the new row's columns start in the selection.
    pub new_values_at: Option<usize>,
    /// The name the statement's columns are qualified with.
    pub alias: Ident,
}

impl Selection {
    /// The command tag's verb.
    fn verb(&self) -> &'static str {
        if self.new_values_at.is_some() { "UPDATE" } else { "DELETE" }
    }
}

/// Build the row selection of an UPDATE or DELETE.
pub fn selection(session: &Session, stmt: &Statement) -> Result<Selection> {
    match stmt {
        Statement::Delete(d) => delete_selection(session, d),
        Statement::Update(u) => update_selection(session, u),
        _ => Err(TarnError::internal("dml::selection called on a statement that is not UPDATE or DELETE")),
    }
}

fn delete_selection(session: &Session, d: &Delete) -> Result<Selection> {
    let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
    let [target] = from.as_slice() else {
        return Err(TarnError::syntax("DELETE takes exactly one target table"));
    };
    let (table, target, alias) = resolve_target(session, target)?;
    let mut items = key_items(&table, &alias);
    // The deleted rows' values, for RETURNING.
    if d.returning.is_some() {
        items.extend(table.def.columns.iter().map(|c| column_ref(&alias, &c.name)));
    }
    let mut tables = vec![target];
    tables.extend(d.using.iter().flatten().cloned());
    Ok(Selection { table, query: select(positional(items), tables, d.selection.clone())?, new_values_at: None, alias })
}

fn update_selection(session: &Session, u: &Update) -> Result<Selection> {
    let (table, target, alias) = resolve_target(session, &u.table)?;
    let values = assigned_values(&table, &u.assignments)?;
    let mut items = key_items(&table, &alias);
    let new_values_at = items.len();
    for (i, value) in values.into_iter().enumerate() {
        let expr = value.unwrap_or_else(|| column_ref(&alias, &table.def.columns[i].name));
        items.push(expr);
    }
    let mut tables = vec![target];
    if let Some(UpdateTableFromKind::AfterSet(from) | UpdateTableFromKind::BeforeSet(from)) = &u.from {
        tables.extend(from.iter().cloned());
    }
    Ok(Selection {
        table,
        query: select(positional(items), tables, u.selection.clone())?,
        new_values_at: Some(new_values_at),
        alias,
    })
}

/// The value each column is SET to (None: unchanged), checked.
fn assigned_values(table: &Table, assignments: &[Assignment]) -> Result<Vec<Option<Expr>>> {
    let mut values: Vec<Option<Expr>> = vec![None; table.def.columns.len()];
    for Assignment { target: assigned, value } in assignments {
        let AssignmentTarget::ColumnName(name) = assigned else {
            return Err(TarnError::not_supported("UPDATE … SET (a, b) = … is not supported yet"));
        };
        let column = name.0.last().and_then(ObjectNamePart::as_ident).map(normalize_ident).unwrap_or_default();
        let Some(i) = table.def.columns.iter().position(|c| c.name == column) else {
            return Err(TarnError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!("column \"{column}\" of relation \"{}\" does not exist", table.def.name),
            ));
        };
        if table.def.columns[i].identity == Some(crate::storage::catalog::Identity::Always) {
            return Err(TarnError::new("428C9", format!("column \"{column}\" can only be updated to DEFAULT"))
                .with_detail(format!("Column \"{column}\" is an identity column defined as GENERATED ALWAYS.")));
        }
        if values[i].replace(value.clone()).is_some() {
            return Err(TarnError::syntax(format!("multiple assignments to same column \"{column}\"")));
        }
    }
    Ok(values)
}

/// The target table, its FROM item with the row id exposed, and the name
/// its columns are qualified with.
fn resolve_target(session: &Session, target: &TableWithJoins) -> Result<(Arc<Table>, TableWithJoins, Ident)> {
    let TableFactor::Table { name, alias, .. } = &target.relation else {
        return Err(TarnError::syntax("the target of UPDATE/DELETE must be a table"));
    };
    if !target.joins.is_empty() {
        return Err(TarnError::syntax("the target of UPDATE/DELETE cannot be a join"));
    }
    let (schema, table_name) = session.qualified_name(name)?;
    let table = session.engine().storage.table(&schema, &table_name).ok_or_else(|| TarnError::undefined_table(&table_name))?;
    let alias_ident = alias.as_ref().map(|a| a.name.clone()).unwrap_or_else(|| Ident::with_quote('"', &table_name));
    let mut exposed = target.clone();
    if let TableFactor::Table { name, alias, .. } = &mut exposed.relation {
        // Qualified with the schema `table` was found in, so DataFusion
        // plans the selection over that same table whatever the search path.
        *name = ObjectName(vec![
            ObjectNamePart::Identifier(Ident::with_quote('"', &schema)),
            ObjectNamePart::Identifier(Ident::with_quote('"', format!("{table_name}{WITH_ROWID}"))),
        ]);
        *alias = Some(TableAlias { explicit: true, name: alias_ident.clone(), columns: vec![], at: None });
    }
    Ok((table, exposed, alias_ident))
}

fn column_ref(qualifier: &Ident, column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![qualifier.clone(), Ident::with_quote('"', column)])
}

/// The row id, then the primary-key columns (for the key set).
fn key_items(table: &Table, alias: &Ident) -> Vec<Expr> {
    let mut items = vec![column_ref(alias, ROWID)];
    items.extend(table.def.primary_key.iter().map(|&i| column_ref(alias, &table.def.columns[i].name)));
    items
}

/// `SELECT 1 FROM x`, parsed once: the shape [`select`] and [`table_ref`]
/// fill in (parsing it for every UPDATE/DELETE was a tokenizer and parser
/// run per execution).
fn select_template() -> Statement {
    static TEMPLATE: std::sync::LazyLock<Statement> =
        std::sync::LazyLock::new(|| crate::sql::parse("SELECT 1 FROM x").expect("a constant query parses").remove(0));
    TEMPLATE.clone()
}

/// `SELECT items FROM from WHERE selection`, built from parts.
pub fn select(items: Vec<SelectItem>, from: Vec<TableWithJoins>, selection: Option<Expr>) -> Result<Statement> {
    let mut query = select_template();
    let Statement::Query(q) = &mut query else { unreachable!("SELECT parses as a query") };
    let SetExpr::Select(s) = q.body.as_mut() else { unreachable!("SELECT parses as a select") };
    s.projection = items;
    s.from = from;
    s.selection = selection;
    Ok(query)
}

/// A row selection's items. Positional aliases: the same column may be
/// selected twice (old key and unchanged new value), and DataFusion refuses
/// duplicate names.
fn positional(items: Vec<Expr>) -> Vec<SelectItem> {
    items.into_iter().enumerate().map(|(i, expr)| SelectItem::ExprWithAlias { expr, alias: Ident::new(format!("c{i}")) }).collect()
}

/// `FROM "<name>" AS alias`, as a FROM item.
pub fn table_ref(name: &str, alias: Ident) -> TableWithJoins {
    let Statement::Query(q) = select_template() else { unreachable!("SELECT parses as a query") };
    let SetExpr::Select(s) = *q.body else { unreachable!("SELECT parses as a select") };
    let mut from = s.from.into_iter().next().expect("one FROM item");
    if let TableFactor::Table { name: n, alias: a, .. } = &mut from.relation {
        *n = ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote('"', name))]);
        *a = Some(TableAlias { explicit: true, name: alias, columns: vec![], at: None });
    }
    from
}


/// Run an UPDATE or DELETE into the session's transaction. With a prepared
/// statement's `slot`, its row selection and the selection's optimized plan
/// are kept there for the next Execute ([`run_selection`]).
pub async fn run(session: &Session, stmt: &Statement, params: Option<ParamValues>, slot: Option<&KeptSlot>) -> Result<Output> {
    // Read before the names are resolved: a catalog change meanwhile leaves what is kept stale.
    let keeping = slot.map(|slot| (slot, session.kept_under(), super::execute::param_types_of(&params)));
    let sel = selection(session, stmt)?;
    lock_target(session, &sel).await;
    let bound = super::execute::bind(session, &sel.query, params).await?;
    let returning = returning_items(stmt);
    if let Some((slot, under, types)) = keeping.filter(|_| bound.optimized && returning.is_none()) {
        slot.keep(under, types, &bound.plan, KeptKind::RowSelection(Arc::new(sel.clone())));
    }
    let (count, returned) = apply_bound(session, &sel, bound).await?;
    let verb = sel.verb();
    if let Some(items) = returning {
        return super::returning::project(session, &sel.table, sel.alias.clone(), items, returned, verb).await;
    }
    Ok(Output::Command { tag: format!("{verb} {count}"), parameter_status: None })
}

/// Run a kept row selection (an UPDATE or DELETE without RETURNING).
pub async fn run_selection(session: &Session, sel: &Selection, bound: Bound) -> Result<Output> {
    lock_target(session, sel).await;
    let (count, _) = apply_bound(session, sel, bound).await?;
    Ok(Output::Command { tag: format!("{} {count}", sel.verb()), parameter_status: None })
}

/// Autocommit: hold the table's write lock from before the snapshot to the
/// commit, so concurrent updates of the same rows serialise and none is lost.
async fn lock_target(session: &Session, sel: &Selection) {
    let txn = session.txn();
    if txn.lock().unwrap().status == TxnStatus::Idle {
        session.engine().storage.lock_for_update(&sel.table, txn).await;
    }
}

/// Run a row selection and record its deletes (and, for an update, the new
/// row versions) in the transaction. Returns the rows affected and what
/// RETURNING sees of them (new rows of an update, old rows of a delete).
pub async fn apply(session: &Session, sel: &Selection, params: Option<ParamValues>) -> Result<(usize, Vec<RecordBatch>)> {
    let bound = super::execute::bind(session, &sel.query, params).await?;
    apply_bound(session, sel, bound).await
}

/// [`apply`] with the selection's plan bound already.
async fn apply_bound(session: &Session, sel: &Selection, bound: Bound) -> Result<(usize, Vec<RecordBatch>)> {
    let storage = &session.engine().storage;
    let txn = session.txn();
    let batches = super::execute::collect_bound(session, bound).await?;

    let table = &sel.table;
    let key_len = table.def.primary_key.len();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut deleted_keys = vec![];
    let mut new_rows = vec![];
    let mut old_rows = vec![];
    for batch in &batches {
        let ids = batch.column(0).as_primitive::<UInt64Type>();
        // UPDATE … FROM may join a row more than once: PostgreSQL updates it
        // once, with one of the matches.
        let first: arrow::array::BooleanArray = ids.values().iter().map(|id| Some(seen.insert(*id))).collect();
        let batch = arrow::compute::filter_record_batch(batch, &first)?;
        if batch.num_rows() == 0 {
            continue;
        }
        let ids = batch.column(0).as_primitive::<UInt64Type>().clone();
        if key_len > 0 {
            let key_cols: Vec<ArrayRef> = batch.columns()[1..1 + key_len].to_vec();
            let keys = table.keys_of(&key_cols)?;
            deleted_keys.extend(ids.values().iter().copied().zip(keys));
        }
        if sel.new_values_at.is_none() && batch.num_columns() > 1 + key_len {
            let columns = batch.columns()[1 + key_len..].to_vec();
            old_rows.push(RecordBatch::try_new(table.schema.clone(), columns)?);
        }
        if let Some(at) = sel.new_values_at {
            let columns = batch.columns()[at..].to_vec();
            let fields: Vec<_> = columns.iter().zip(table.schema.fields()).map(|(c, f)| f.as_ref().clone().with_data_type(c.data_type().clone())).collect();
            new_rows.push(RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)?);
        }
    }
    let count = seen.len();
    let new_rows = table.prepare_insert(new_rows, false)?;
    let user_columns: Vec<usize> = (0..table.schema.fields().len()).collect();
    let returned: Vec<RecordBatch> = match sel.new_values_at {
        Some(_) => new_rows
            .iter()
            .map(|b| Ok(RecordBatch::try_new(table.schema.clone(), b.project(&user_columns)?.columns().to_vec())?))
            .collect::<Result<_>>()?,
        None => old_rows,
    };
    let in_block = {
        let mut t = txn.lock().unwrap();
        let w = t.table_writes(table.def.id);
        for id in &seen {
            w.deletes.insert(*id, 0);
        }
        w.deleted_keys.extend(deleted_keys);
        w.inserts.extend(new_rows);
        // Rows of its own may be gone now: rebuild the own-key set on demand.
        w.own_keys = None;
        t.status != TxnStatus::Idle
    };
    if in_block && sel.new_values_at.is_some() {
        storage.check_keys_now(table, txn).await?;
    }
    Ok((count, returned))
}

/// The row selection of `ON CONFLICT (key) DO UPDATE SET … [WHERE …]`:
/// the existing rows joined to their proposed replacements, which the
/// catalog hands out as the statement-local relation named `excluded`.
pub fn upsert_selection(table: Arc<Table>, alias: Ident, assignments: &[Assignment], condition: Option<Expr>) -> Result<Selection> {
    let values = assigned_values(&table, assignments)?;
    let mut items = key_items(&table, &alias);
    let new_values_at = items.len();
    items.extend(values.into_iter().enumerate().map(|(i, v)| v.unwrap_or_else(|| column_ref(&alias, &table.def.columns[i].name))));
    let excluded = Ident::new("excluded");
    let mut target = table_ref(&format!("{}{WITH_ROWID}", table.def.name), alias.clone());
    target.joins.clear();
    let mut cond: Option<Expr> = condition;
    for &i in &table.def.primary_key {
        let name = &table.def.columns[i].name;
        let eq = Expr::BinaryOp {
            left: Box::new(column_ref(&alias, name)),
            op: datafusion::sql::sqlparser::ast::BinaryOperator::Eq,
            right: Box::new(column_ref(&excluded, name)),
        };
        cond = Some(match cond {
            None => eq,
            Some(c) => Expr::BinaryOp { left: Box::new(eq), op: datafusion::sql::sqlparser::ast::BinaryOperator::And, right: Box::new(Expr::Nested(Box::new(c))) },
        });
    }
    let from = vec![target, table_ref(&format!("{}{}", table.def.name, super::returning::RETURNING), excluded)];
    Ok(Selection { table, query: select(positional(items), from, cond)?, new_values_at: Some(new_values_at), alias })
}

/// `TRUNCATE a, b`: every row of each table goes, atomically with the rest
/// of the transaction.
pub async fn truncate(session: &Session, names: &[(String, String)]) -> Result<Output> {
    let storage = &session.engine().storage;
    let mut tables = vec![];
    for (schema, name) in names {
        tables.push(storage.table(schema, name).ok_or_else(|| TarnError::undefined_table(name))?);
    }
    let mut txn = session.txn().lock().unwrap();
    for t in tables {
        txn.table_writes(t.def.id).truncate();
    }
    Ok(Output::Command { tag: "TRUNCATE TABLE".into(), parameter_status: None })
}

pub fn returning_items(stmt: &Statement) -> Option<Vec<SelectItem>> {
    match stmt {
        Statement::Update(u) => u.returning.clone(),
        Statement::Delete(d) => d.returning.clone(),
        _ => None,
    }
}
