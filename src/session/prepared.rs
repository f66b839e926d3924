//! SQL-level prepared statements: `PREPARE name [(types)] AS statement`,
//! `EXECUTE name [(args)]`, `DEALLOCATE [PREPARE] name | ALL`, and
//! `DISCARD ALL`. The statement is parsed once at PREPARE; EXECUTE evaluates
//! its arguments and runs it with them as `$n` parameters — the same path a
//! protocol-level Bind takes.

use std::collections::HashMap;
use std::sync::Mutex;

use arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{self, Statement};
use futures::TryStreamExt;

use super::Session;
use crate::engine::execute::Output;
use crate::error::{Result, TarnError, sqlstate};
use crate::storage::txn::TxnStatus;

/// A session's prepared statements, by name.
#[derive(Default)]
pub struct PreparedStatements {
    by_name: Mutex<HashMap<String, (Statement, Vec<ast::DataType>)>>,
}

impl Session {
    pub fn prepare(&self, name: String, types: Vec<ast::DataType>, stmt: Statement) -> Result<Output> {
        let mut all = self.prepared.by_name.lock().unwrap();
        if all.contains_key(&name) {
            return Err(TarnError::new(sqlstate::DUPLICATE_PREPARED_STATEMENT, format!("prepared statement \"{name}\" already exists")));
        }
        all.insert(name, (stmt, types));
        Ok(Output::tag("PREPARE"))
    }

    fn lookup(&self, name: &str) -> Result<(Statement, Vec<ast::DataType>)> {
        self.prepared.by_name.lock().unwrap().get(name).cloned().ok_or_else(|| {
            TarnError::new(sqlstate::INVALID_SQL_STATEMENT_NAME, format!("prepared statement \"{name}\" does not exist"))
        })
    }

    /// The statement PREPARE stored under `name` (for Describe of an EXECUTE).
    pub fn prepared_statement(&self, name: &str) -> Result<Statement> {
        Ok(self.lookup(name)?.0)
    }

    /// The statement `name` names and its arguments as parameter values.
    pub async fn bind_prepared(&self, name: &str, args: &[ast::Expr]) -> Result<(Statement, ParamValues)> {
        let (stmt, types) = self.lookup(name)?;
        if !types.is_empty() && types.len() != args.len() {
            return Err(TarnError::new(
                sqlstate::SYNTAX_ERROR,
                format!("wrong number of parameters for prepared statement \"{name}\""),
            )
            .with_detail(format!("Expected {} parameters but got {}.", types.len(), args.len())));
        }
        let values = self.evaluate_arguments(args, &types).await?;
        // As a protocol Bind does: each value as the type the plan gave its
        // placeholder (`$2 * 7` types `$2` as bigint), so a plan kept for
        // these types meets values of them.
        let (targets, _) = crate::engine::execute::describe(self, &stmt).await?;
        let values = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| crate::engine::execute::param_as_target(v, targets.get(i).and_then(|t| t.as_ref()).map(|f| f.data_type())))
            .collect::<Result<Vec<_>>>()?;
        Ok((stmt, ParamValues::from(values)))
    }

    /// Evaluate EXECUTE's arguments as one `SELECT a1, a2, …` (cast to the
    /// declared types, where PREPARE gave them).
    async fn evaluate_arguments(&self, args: &[ast::Expr], types: &[ast::DataType]) -> Result<Vec<ScalarValue>> {
        if args.is_empty() {
            return Ok(vec![]);
        }
        let items = args
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let expr = match types.get(i) {
                    Some(t) => ast::Expr::Cast {
                        kind: ast::CastKind::Cast,
                        expr: Box::new(e.clone()),
                        data_type: t.clone(),
                        array: false,
                        format: None,
                    },
                    None => e.clone(),
                };
                // Named apart: two equal arguments (`NULL, NULL`) would
                // otherwise be two columns of one name, which is refused.
                ast::SelectItem::ExprWithAlias { expr, alias: ast::Ident::with_quote('"', format!("${}", i + 1)) }
            })
            .collect::<Vec<_>>();
        let select = format!("SELECT {}", items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
        let df = self.context().sql(&select).await?;
        let batches: Vec<arrow::array::RecordBatch> = df.execute_stream().await?.try_collect().await?;
        let batch = batches.into_iter().find(|b| b.num_rows() > 0).ok_or_else(|| TarnError::internal("EXECUTE arguments gave no row"))?;
        (0..batch.num_columns())
            .map(|i| {
                let v = ScalarValue::try_from_array(batch.column(i), 0)?;
                // Untyped literals arrive as text; the plan casts them.
                Ok(if matches!(v.data_type(), DataType::Null) { ScalarValue::Utf8(None) } else { v })
            })
            .collect()
    }

    pub fn deallocate(&self, name: Option<&str>) -> Result<Output> {
        match name {
            None => self.prepared.by_name.lock().unwrap().clear(),
            Some(name) => {
                self.lookup(name)?;
                self.prepared.by_name.lock().unwrap().remove(name);
            }
        }
        Ok(Output::tag(if name.is_none() { "DEALLOCATE ALL" } else { "DEALLOCATE" }))
    }

    /// `DISCARD ALL`: close cursors, drop prepared statements, reset settings.
    pub fn discard_all(&self) -> Result<Output> {
        if self.transaction_status() != TxnStatus::Idle {
            return Err(TarnError::new(sqlstate::ACTIVE_SQL_TRANSACTION, "DISCARD ALL cannot run inside a transaction block"));
        }
        self.cursors.close_all();
        self.prepared.by_name.lock().unwrap().clear();
        self.plan_cache().clear();
        self.settings().reset_all();
        self.apply_time_zone();
        Ok(Output::tag("DISCARD ALL"))
    }
}
