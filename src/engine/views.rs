//! Views and `CREATE TABLE … AS`: relations defined by a query.
//!
//! A view is stored as its query's SQL text and column names and planned
//! again each time a statement names it (as PostgreSQL rewrites a view into
//! the query that uses it), so it always reads the tables as they are now,
//! through the reading session's transaction. DataFusion's `ViewTable` is
//! the `TableProvider`.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, col};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{self, Statement};

use super::execute::{Output, plan, postgres_column_names};
use crate::error::{Result, TarnError, sqlstate};
use crate::session::Session;
use crate::sql::ddl::{CreateTableAs, CreateView};
use crate::storage::catalog::{ColumnDef, ViewDef};
use crate::types::PgType;

/// The provider for a stored view, planned in `ctx`.
pub async fn provider(ctx: &SessionContext, view: &ViewDef) -> DfResult<Arc<dyn TableProvider>> {
    let plan = ctx.state().create_logical_plan(&view.sql).await?;
    let plan = rename_columns(plan, &view.columns)?;
    Ok(Arc::new(ViewTable::new(plan, Some(view.sql.clone()))))
}

/// Give a plan's output columns the relation's names.
fn rename_columns(plan: LogicalPlan, names: &[String]) -> DfResult<LogicalPlan> {
    let exprs: Vec<_> = plan
        .schema()
        .columns()
        .into_iter()
        .zip(names)
        .map(|(c, name)| col(c).alias(name))
        .collect();
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}

/// The query's result columns with PostgreSQL's names, overridden by the
/// names a statement lists (`CREATE VIEW v (a, b) AS …`).
async fn query_columns(session: &Session, query: &ast::Query, listed: &[String], what: &str) -> Result<(LogicalPlan, Vec<(String, arrow::datatypes::DataType)>)> {
    let stmt = Statement::Query(Box::new(query.clone()));
    let plan = plan(session, &stmt).await?;
    let schema = postgres_column_names(&stmt, plan.schema().as_arrow());
    if listed.len() > schema.fields().len() {
        return Err(TarnError::syntax(format!("{what} specifies more column names than columns")));
    }
    let mut columns: Vec<(String, arrow::datatypes::DataType)> = vec![];
    for (i, f) in schema.fields().iter().enumerate() {
        let name = listed.get(i).cloned().unwrap_or_else(|| f.name().clone());
        if columns.iter().any(|(n, _)| *n == name) {
            return Err(TarnError::new(sqlstate::DUPLICATE_COLUMN, format!("column \"{name}\" specified more than once")));
        }
        columns.push((name, f.data_type().clone()));
    }
    Ok((plan, columns))
}

pub async fn create_view(session: &Session, cv: CreateView) -> Result<Output> {
    let (_, columns) = query_columns(session, &cv.query, &cv.columns, "CREATE VIEW").await?;
    let view = ViewDef {
        id: 0, // assigned by storage
        schema: cv.schema,
        name: cv.name,
        sql: cv.query.to_string(),
        column_types: columns.iter().map(|(_, dt)| PgType::from_arrow(dt).name()).collect(),
        columns: columns.into_iter().map(|(n, _)| n).collect(),
    };
    session.engine().storage.create_view(view, cv.or_replace, cv.if_not_exists).await?;
    Ok(Output::tag("CREATE VIEW"))
}

/// `CREATE TABLE … AS query`: a table with the query's columns (types
/// mapped back to PostgreSQL types), filled by the query. PostgreSQL's tag
/// is `SELECT n`.
pub async fn create_table_as(session: &Session, cta: CreateTableAs) -> Result<Output> {
    let (_, columns) = query_columns(session, &cta.query, &cta.columns, "CREATE TABLE AS").await?;
    let columns: Vec<ColumnDef> = columns
        .into_iter()
        .map(|(name, dt)| ColumnDef {
            name,
            type_name: PgType::from_arrow(&dt).name(),
            not_null: false,
            default: None,
            identity: None,
        })
        .collect();
    let storage = &session.engine().storage;
    let new = crate::storage::NewTable { schema: cta.schema.clone(), name: cta.name.clone(), columns, primary_key: vec![], kind: Default::default() };
    if !storage.create_table(new, cta.if_not_exists).await? {
        return Ok(Output::tag("CREATE TABLE AS"));
    }
    let insert = insert_query(&cta.name, *cta.query);
    match super::execute::run(session, crate::sql::Command::Plan(Box::new(insert)), None).await {
        Ok(Output::Command { tag, .. }) => Ok(Output::tag(tag.replacen("INSERT 0", "SELECT", 1))),
        Ok(_) => Ok(Output::tag("SELECT 0")),
        Err(e) => {
            // The statement failed as a whole: take the new table away again.
            let _ = storage.drop_table(&cta.schema, &cta.name, true).await;
            Err(e)
        }
    }
}

/// `INSERT INTO table <query>`, built as an AST (never as SQL text).
fn insert_query(table: &str, query: ast::Query) -> Statement {
    let mut template = crate::sql::parse("INSERT INTO t SELECT 1").expect("a fixed statement parses");
    let Some(Statement::Insert(mut ins)) = template.pop() else { unreachable!("parsed an INSERT") };
    ins.table = ast::TableObject::TableName(ast::ObjectName::from(vec![ast::Ident::with_quote('"', table)]));
    ins.source = Some(Box::new(query));
    Statement::Insert(ins)
}
