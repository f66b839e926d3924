//! Running a classified statement: plan and execute through DataFusion, or
//! perform DDL and settings changes directly. Results are streams — nothing
//! here collects a query's rows.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{DmlStatement, LogicalPlan, WriteOp};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use crate::error::{Result, TarnError};
use crate::session::Session;
use crate::sql::{Command, naming};

/// What a statement produced.
pub enum Output {
    /// A result set, streamed.
    Rows { schema: SchemaRef, stream: SendableRecordBatchStream },
    /// A command tag (`CREATE TABLE`, `INSERT 0 2`), and a setting to report
    /// to the client in ParameterStatus if the command changed one.
    Command { tag: String, parameter_status: Option<(String, String)> },
}

impl Output {
    fn tag(tag: impl Into<String>) -> Output {
        Output::Command { tag: tag.into(), parameter_status: None }
    }
}

/// Plan a statement DataFusion runs.
pub async fn plan(session: &Session, stmt: &Statement) -> Result<LogicalPlan> {
    let state = session.context().state();
    Ok(state.statement_to_plan(DfStatement::Statement(Box::new(stmt.clone()))).await?)
}

pub async fn run(session: &Session, cmd: Command, params: Option<ParamValues>) -> Result<Output> {
    match cmd {
        Command::Plan(stmt) => {
            let mut plan = plan(session, &stmt).await?;
            if let Some(params) = params {
                plan = plan.with_param_values(params)?;
            }
            Ok(match run_plan(session, plan).await? {
                Output::Rows { schema, stream } => Output::Rows { schema: postgres_column_names(&stmt, &schema), stream },
                other => other,
            })
        }
        Command::CreateTable(ct) => {
            session.engine().storage.create_table(ct.table, ct.if_not_exists).await?;
            Ok(Output::tag("CREATE TABLE"))
        }
        Command::DropTable { names, if_exists } => {
            for (schema, name) in names {
                session.engine().storage.drop_table(&schema, &name, if_exists).await?;
            }
            Ok(Output::tag("DROP TABLE"))
        }
        Command::Update(stmt) | Command::Delete(stmt) => super::dml::run(session, &stmt, params).await,
        Command::Truncate { names } => super::dml::truncate(session, &names).await,
        Command::Set { name, value } => {
            let parameter_status = session.settings().set(&name, value)?;
            session.apply_time_zone();
            Ok(Output::Command { tag: "SET".into(), parameter_status })
        }
        Command::Show { name } => show(session, &name),
        Command::Transaction(_) => Err(TarnError::internal("transaction control is run by the session")),
    }
}

async fn run_plan(session: &Session, plan: LogicalPlan) -> Result<Output> {
    let dml_tag = match &plan {
        LogicalPlan::Dml(DmlStatement { op: WriteOp::Insert(_), .. }) => Some("INSERT 0"),
        LogicalPlan::Dml(DmlStatement { op, .. }) => {
            return Err(TarnError::not_supported(format!("{op} is not supported yet")));
        }
        LogicalPlan::Ddl(_) | LogicalPlan::Copy(_) | LogicalPlan::Statement(_) => {
            return Err(TarnError::not_supported("this statement is not supported yet"));
        }
        _ => None,
    };
    let df = session.context().execute_logical_plan(plan).await?;
    match dml_tag {
        Some(tag) => {
            let batches = df.collect().await?;
            let count: u64 = batches
                .iter()
                .filter(|b| b.num_columns() > 0)
                .map(|b| b.column(0).as_primitive_opt::<UInt64Type>().map(|a| a.values().iter().sum::<u64>()).unwrap_or(0))
                .sum();
            Ok(Output::tag(format!("{tag} {count}")))
        }
        None => {
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let stream = df.execute_stream().await?;
            Ok(Output::Rows { schema, stream })
        }
    }
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
    Ok(Output::Rows { schema, stream: Box::pin(stream) })
}

/// The result schema with columns named as PostgreSQL names them (the
/// batches themselves are encoded by position, so only the header changes).
fn postgres_column_names(stmt: &Statement, schema: &Schema) -> SchemaRef {
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
pub async fn describe(session: &Session, stmt: &Statement) -> Result<(Vec<Option<DataType>>, SchemaRef)> {
    let cmd = crate::sql::classify(stmt.clone())?;
    if let Command::Update(stmt) | Command::Delete(stmt) = &cmd {
        let plan = super::dml::plan_selection(session, stmt).await?;
        return Ok((parameter_types(&plan)?, Arc::new(Schema::empty())));
    }
    match cmd {
        Command::Plan(stmt) => {
            let plan = plan(session, &stmt).await?;
            let out = parameter_types(&plan)?;
            let schema = match &plan {
                LogicalPlan::Dml(_) => Arc::new(Schema::empty()),
                _ => postgres_column_names(&stmt, plan.schema().as_arrow()),
            };
            Ok((out, schema))
        }
        Command::Show { name } => Ok((vec![], show_schema(&name))),
        _ => Ok((vec![], Arc::new(Schema::empty()))),
    }
}

/// The type of each `$n` in a plan, by position (None where unknown).
fn parameter_types(plan: &LogicalPlan) -> Result<Vec<Option<DataType>>> {
    let mut params: Vec<(usize, Option<DataType>)> = plan
        .get_parameter_types()?
        .into_iter()
        .filter_map(|(k, v)| k.trim_start_matches('$').parse::<usize>().ok().map(|i| (i, v)))
        .collect();
    params.sort_by_key(|(i, _)| *i);
    let n = params.last().map(|(i, _)| *i).unwrap_or(0);
    let mut out = vec![None; n];
    for (i, t) in params {
        out[i - 1] = t;
    }
    Ok(out)
}
