//! RETURNING: the rows an INSERT, UPDATE or DELETE wrote, projected through
//! the statement's RETURNING list by planning
//! `SELECT <list> FROM <written rows> AS <target>` — the written rows are a
//! statement-local relation the catalog hands out under
//! `<table>` + [`RETURNING`], so the list resolves exactly as PostgreSQL
//! resolves it (`*`, `t.col`, expressions, output names).

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser::ast::{Ident, SelectItem, Statement};

use super::execute::{Output, plan, postgres_column_names};
use crate::error::Result;
use crate::session::Session;
use crate::storage::table::Table;

/// Table-name suffix of the statement-local relation of written rows.
pub const RETURNING: &str = "\u{1}returning";

/// Project `rows` (the table's user columns) through `items`.
pub async fn project(
    session: &Session,
    table: &Table,
    alias: Ident,
    items: Vec<SelectItem>,
    rows: Vec<RecordBatch>,
    tag: &'static str,
) -> Result<Output> {
    let relation = MemTable::try_new(table.schema.clone(), vec![rows])?;
    session.txn().lock().unwrap().statement.returning = Some(Arc::new(relation));
    let query: Statement =
        super::dml::select(items, vec![super::dml::table_ref(&format!("{}{RETURNING}", table.def.name), alias)], None)?;
    let planned = plan(session, &query).await;
    let result = match planned {
        Ok(p) => match super::execute::stream_plan(session, &p).await {
            Ok((schema, stream)) => Ok(Output::Rows { schema: postgres_column_names(&query, &schema), stream, tag }),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    session.txn().lock().unwrap().statement.returning = None;
    result
}

/// The result columns RETURNING will produce (for Describe), planned over
/// the table itself, which has the same columns.
pub async fn describe(session: &Session, table: &Table, alias: Ident, items: Vec<SelectItem>) -> Result<arrow::datatypes::SchemaRef> {
    let query = super::dml::select(items, vec![super::dml::table_ref(&table.def.name, alias)], None)?;
    let planned = plan(session, &query).await?;
    Ok(postgres_column_names(&query, planned.schema().as_arrow()))
}
