//! Simple and extended query protocol handlers.
//!
//! The simple protocol runs a message's statements one after another, each
//! streamed to the client before the next starts (so `INSERT …; SELECT …`
//! sees the insert), and stops at the first error, as PostgreSQL does. A
//! CancelRequest is raced against the whole statement, row streaming
//! included — pgwire's default only races the handler call.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::Statement;
use futures::future::{Either, select};
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::portal::{Format as PortalFormat, Portal};
use pgwire::api::portal::PortalExecutionState;
use pgwire::api::query::{
    ExtendedQueryHandler, SimpleQueryHandler, send_execution_response, send_query_response,
};
use pgwire::api::results::{
    DescribePortalResponse, DescribeResponse, DescribeStatementResponse, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, METADATA_APPLICATION_NAME, METADATA_DATABASE, METADATA_USER,
    PgWireConnectionState, Type,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, Parse, ParseComplete, Sync as PgSync, TARGET_TYPE_BYTE_PORTAL,
    TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
use pgwire::messages::response::{CommandComplete, EmptyQueryResponse, ReadyForQuery, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::ParameterStatus;

use super::copy;
use super::stop;
use super::error::{error_info, to_pgwire};
use super::rows::{describe_columns, result_formats, row_stream};
use crate::engine::Engine;
use crate::engine::execute::{Output, describe};
use crate::engine::plan_cache::KeptSlot;
use crate::error::{Result, TarnError};
use crate::session::Session;
use crate::storage::txn::TxnStatus;
use crate::types::PgType;
use crate::types::decode::{decode_param, in_bind_parameter, param_type};
use crate::types::encode::Format;

/// Handles queries for every connection; per-connection state lives in the
/// [`Session`] kept in the connection's extensions.
pub struct QueryHandler {
    engine: Arc<Engine>,
    parser: Arc<StatementParser>,
}

impl QueryHandler {
    pub fn new(engine: Arc<Engine>) -> Self {
        QueryHandler { parser: Arc::new(StatementParser { engine: engine.clone() }), engine }
    }

    pub(super) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// A Describe in a failed block: refused (25P02) for a statement or
    /// portal that returns rows, answered for one that does not.
    fn refuse_rows_in_failed_block<C: ClientInfo>(&self, client: &C, result: &SchemaRef) -> PgWireResult<()> {
        if result.fields().is_empty() {
            return Ok(());
        }
        session_of(&self.engine, client).refuse_in_failed_block().map_err(to_pgwire)
    }
}

pub(super) fn session_of<C: ClientInfo + ?Sized>(engine: &Arc<Engine>, client: &C) -> Arc<Session> {
    client.session_extensions().get_or_insert_with(|| {
        let md = client.metadata();
        let get = |k: &str| md.get(k).map(String::as_str).unwrap_or("");
        let pid = client.pid_and_secret_key().0;
        Session::new(engine.clone(), get(METADATA_USER), get(METADATA_DATABASE), get(METADATA_APPLICATION_NAME), pid)
    })
}

/// What one statement sent, for the caller's bookkeeping.
enum Sent {
    Done,
    /// `COPY … FROM STDIN` started: the data comes next.
    CopyIn,
    /// The statement failed; the error is already on its way to the client.
    Failed,
}

impl QueryHandler {
    /// Run one statement of a simple query and send its complete response.
    async fn run_simple_statement<C>(&self, client: &mut C, session: &Session, stmt: Statement) -> PgWireResult<Sent>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match session.execute(stmt, None).await {
            Ok(Output::Rows { schema, stream, tag }) => {
                let formats = vec![Format::Text; schema.fields().len()];
                let (fields, columns) = describe_columns(&schema, &formats);
                let rows = row_stream(stream, columns, session.encode_options());
                let mut response = QueryResponse::new(Arc::new(fields), rows);
                response.set_command_tag(tag);
                match send_query_response(client, response, true).await {
                    Ok(()) => Ok(Sent::Done),
                    // An execution error after some rows: PostgreSQL sends the
                    // rows, then the error. A socket error ends the connection.
                    Err(PgWireError::UserError(info)) => {
                        client.feed(PgWireBackendMessage::ErrorResponse((*info).into())).await?;
                        Ok(Sent::Failed)
                    }
                    Err(e) => Err(e),
                }
            }
            Ok(Output::Command { tag, parameter_status }) => {
                client.feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(tag))).await?;
                if let Some((name, value)) = parameter_status {
                    client.feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(name, value))).await?;
                }
                Ok(Sent::Done)
            }
            Ok(Output::CopyIn { columns, binary }) => {
                pgwire::api::copy::send_copy_in_response(client, copy::copy_in_response(columns, binary)).await?;
                Ok(Sent::CopyIn)
            }
            Ok(Output::CopyOut { columns, binary, rows }) => {
                Ok(if copy::send_copy_out(client, columns, binary, rows).await? { Sent::Done } else { Sent::Failed })
            }
            Err(e) => {
                client.feed(PgWireBackendMessage::ErrorResponse(error_info(e).into())).await?;
                Ok(Sent::Failed)
            }
        }
    }

    async fn run_simple_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = match crate::sql::parse(query) {
            Ok(s) => s,
            Err(e) => {
                client.feed(PgWireBackendMessage::ErrorResponse(error_info(e).into())).await?;
                return Ok(());
            }
        };
        if statements.is_empty() {
            client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
            return Ok(());
        }
        if statements.len() > 1 && statements.iter().any(|s| matches!(s, Statement::Copy { to: false, .. })) {
            let e = TarnError::not_supported("COPY … FROM STDIN must be sent as a query of its own");
            client.feed(PgWireBackendMessage::ErrorResponse(error_info(e).into())).await?;
            return Ok(());
        }
        let session = session_of(&self.engine, client);
        for stmt in statements {
            let deadline = stop::deadline(session.settings().statement_timeout());
            let stop = stop::stop_signal(stop::connection_handle(client), deadline);
            let run = self.run_simple_statement(client, &session, stmt);
            // Err: stopped (cancel or timeout). The statement's future (and
            // its borrow of the client) is dropped before the error is sent.
            let outcome = match select(Box::pin(run), stop).await {
                Either::Left((sent, _)) => Ok(sent?),
                Either::Right((e, _)) => Err(e),
            };
            let sent = match outcome {
                Ok(sent) => sent,
                Err(e) => {
                    session.statement_interrupted();
                    client.feed(PgWireBackendMessage::ErrorResponse(error_info(e).into())).await?;
                    Sent::Failed
                }
            };
            match sent {
                Sent::Failed => break,
                Sent::CopyIn => {
                    copy::enter_copy_in(client);
                    break;
                }
                Sent::Done => {}
            }
        }
        Ok(())
    }
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let result = self.run_simple_query(client, &query.query).await;
        if matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) && result.is_ok() {
            // ReadyForQuery follows the COPY's data (pgwire sends it).
            client.flush().await?;
            return Ok(());
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        result?;
        let status = wire_status(&session_of(&self.engine, client));
        client.set_transaction_status(status);
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(status))).await?;
        Ok(())
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        unreachable!("on_query is overridden and never calls do_query")
    }
}

/// The transaction status ReadyForQuery reports ('I', 'T' or 'E').
pub(super) fn wire_status(session: &Session) -> TransactionStatus {
    match session.transaction_status() {
        TxnStatus::Idle => TransactionStatus::Idle,
        TxnStatus::InBlock => TransactionStatus::Transaction,
        TxnStatus::Failed => TransactionStatus::Error,
    }
}

/// A statement prepared by Parse: parsed once, with its parameter and result
/// types worked out by planning it.
#[derive(Debug)]
pub struct Prepared {
    stmt: Statement,
    /// Parameter types as reported in ParameterDescription.
    param_types: Vec<Type>,
    /// The Arrow type the plan expects for each parameter, where it knows.
    param_targets: Vec<Option<DataType>>,
    result: SchemaRef,
    /// The plan its Executes run, once one is kept.
    kept: KeptSlot,
}

pub struct StatementParser {
    engine: Arc<Engine>,
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Arc<Prepared>>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = crate::sql::parse(sql).map_err(to_pgwire)?;
        let stmt = match statements.len() {
            0 => return Ok(None),
            1 => statements.remove(0),
            _ => {
                return Err(to_pgwire(TarnError::syntax("cannot insert multiple commands into a prepared statement")));
            }
        };
        let session = session_of(&self.engine, client);
        if !crate::sql::ends_block(&stmt) {
            session.refuse_in_failed_block().map_err(to_pgwire)?;
        }
        // A declared type Tarn does not have is refused here, not at the
        // first Bind that carries a value of it.
        for ty in types.iter().flatten() {
            param_type(ty).map_err(to_pgwire)?;
        }
        let (inferred, result) = describe(&session, &stmt).await.map_err(to_pgwire)?;
        let n = inferred.len().max(types.len());
        let mut param_types = Vec::with_capacity(n);
        for i in 0..n {
            let declared = types.get(i).cloned().flatten().filter(|t| *t != Type::UNKNOWN);
            let inferred_ty = inferred.get(i).cloned().flatten();
            let ty = match (declared, &inferred_ty) {
                (Some(t), _) => t,
                (None, Some(field)) => PgType::from_field(field).wire_type(),
                // PostgreSQL resolves an unconstrained parameter as text.
                (None, None) => Type::TEXT,
            };
            param_types.push(ty);
        }
        let mut param_targets: Vec<Option<DataType>> = inferred.into_iter().map(|f| f.map(|f| f.data_type().clone())).collect();
        param_targets.resize(n, None);
        Ok(Some(Arc::new(Prepared { stmt, param_types, param_targets, result, kept: KeptSlot::default() })))
    }

    fn get_parameter_types(&self, stmt: &Arc<Prepared>) -> PgWireResult<Vec<Type>> {
        Ok(stmt.param_types.clone())
    }

    fn get_result_schema(&self, stmt: &Arc<Prepared>, column_format: Option<&PortalFormat>) -> PgWireResult<Vec<FieldInfo>> {
        let n = stmt.result.fields().len();
        let formats = match column_format {
            Some(f) => result_formats(f, n).map_err(to_pgwire)?,
            None => vec![Format::Text; n],
        };
        Ok(describe_columns(&stmt.result, &formats).0)
    }
}

/// A Describe's answer, queued for the next flush (Sync or Flush), as
/// PostgreSQL sends it; pgwire's `send_describe_response` flushes each message.
async fn feed_describe_response<C, D>(client: &mut C, response: &D) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    D: DescribeResponse,
{
    if let Some(types) = response.parameters() {
        let oids = types.iter().map(|t| t.oid()).collect();
        client.feed(PgWireBackendMessage::ParameterDescription(ParameterDescription::new(oids))).await?;
    }
    let message = if response.is_no_data() {
        PgWireBackendMessage::NoData(NoData::new())
    } else {
        PgWireBackendMessage::RowDescription(RowDescription::new(response.fields().iter().map(Into::into).collect()))
    };
    client.feed(message).await?;
    Ok(())
}

/// The parameters Bind decoded, kept for the Execute that follows: Bind
/// decodes them to refuse a bad value there, as PostgreSQL does, and
/// pgwire's portal has no room for them. They are held with the portal they
/// belong to (the `Arc` keeps its address from being reused), so only that
/// very portal's Execute takes them; any other decodes its own.
#[derive(Default)]
struct BoundParameters(std::sync::Mutex<Option<(Arc<Portal<Arc<Prepared>>>, Vec<ScalarValue>)>>);

impl BoundParameters {
    fn of<C: ClientInfo + ?Sized>(client: &C) -> Arc<BoundParameters> {
        client.session_extensions().get_or_insert_with(BoundParameters::default)
    }

    fn keep(&self, portal: Arc<Portal<Arc<Prepared>>>, params: Vec<ScalarValue>) {
        *self.0.lock().unwrap() = Some((portal, params));
    }

    /// `portal`'s parameters if they are the ones kept (which go either way).
    fn take_for(&self, portal: &Portal<Arc<Prepared>>) -> Option<Vec<ScalarValue>> {
        let (kept, params) = self.0.lock().unwrap().take()?;
        std::ptr::eq(Arc::as_ptr(&kept), portal).then_some(params)
    }
}

/// Decode a portal's parameters into the types its plan expects.
fn bind_parameters(portal: &Portal<Arc<Prepared>>) -> Result<Vec<ScalarValue>> {
    let prepared = &portal.statement.statement;
    let n = prepared.param_types.len();
    if portal.parameters.len() != n {
        return Err(super::error::parameter_count_mismatch(portal.parameters.len(), &portal.statement.id, n));
    }
    let formats = result_formats(&portal.parameter_format, n)?;
    (0..n)
        .map(|i| {
            let value = decode_param(portal.parameters[i].as_deref(), &prepared.param_types[i], formats[i])
                .map_err(|e| in_bind_parameter(e, i))?;
            crate::engine::execute::param_as_target(value, prepared.param_targets[i].as_ref())
        })
        .collect()
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = Arc<Prepared>;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        self.parser.clone()
    }

    /// ReadyForQuery carries the session's own transaction status (pgwire
    /// guesses it from command tags, which misses failed blocks).
    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let status = wire_status(&session_of(&self.engine, client));
        // Sync outside a block ends the implicit transaction, and with it the
        // unnamed portal (and its open row stream), as in PostgreSQL.
        if matches!(status, TransactionStatus::Idle) {
            client.portal_store().rm_portal(pgwire::api::DEFAULT_NAME);
        }
        client.set_transaction_status(status);
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(status))).await?;
        client.flush().await?;
        Ok(())
    }

    /// Bind as pgwire's default does, but BindComplete is queued rather than
    /// flushed: it reaches the client with the rest of the response at Sync
    /// (or Flush), one socket write per round trip as PostgreSQL does.
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        use pgwire::api::store::Entry;
        let Some(statement) = client.portal_store().get_statement(statement_name) else {
            return Err(super::error::statement_not_found(statement_name));
        };
        // Refused here, as PostgreSQL does, not at Execute.
        let required = match &statement {
            Entry::Value(statement) => statement.statement.param_types.len(),
            Entry::Empty => 0,
        };
        if message.parameters.len() != required {
            return Err(to_pgwire(super::error::parameter_count_mismatch(message.parameters.len(), statement_name, required)));
        }
        let ends_block = match &statement {
            Entry::Value(statement) => crate::sql::ends_block(&statement.statement.stmt),
            Entry::Empty => false,
        };
        if !ends_block {
            session_of(&self.engine, client).refuse_in_failed_block().map_err(to_pgwire)?;
        }
        match statement {
            Entry::Value(statement) => {
                let portal = Arc::new(Portal::try_new(&message, statement)?);
                // A value that does not decode is refused here, as
                // PostgreSQL refuses the Bind; Execute takes the values.
                let params = bind_parameters(&portal).map_err(to_pgwire)?;
                BoundParameters::of(client).keep(portal.clone(), params);
                client.portal_store().put_portal(portal);
            }
            Entry::Empty => client.portal_store().put_empty_portal(portal_name),
        }
        client.feed(PgWireBackendMessage::BindComplete(BindComplete::new())).await?;
        Ok(())
    }

    /// Parse as pgwire's default does, with ParseComplete queued, not
    /// flushed (see `on_bind`).
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME).to_owned();
        // pgwire reads an OID no type has as "not declared"; PostgreSQL's
        // catalog lookup fails on it. That lookup comes after the
        // failed-block check (25P02), which the parser makes.
        if let Some(oid) = message.type_oids.iter().find(|&&oid| oid != 0 && Type::from_oid(oid).is_none())
            && session_of(&self.engine, client).refuse_in_failed_block().is_ok()
        {
            return Err(super::error::unknown_type_oid(*oid));
        }
        match StoredStatement::parse(client, &message, self.query_parser()).await? {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => client.portal_store().put_empty_statement(&name),
        }
        client.feed(PgWireBackendMessage::ParseComplete(ParseComplete::new())).await?;
        Ok(())
    }

    /// Close as pgwire's default does, with CloseComplete queued.
    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => client.portal_store().rm_statement(name),
            TARGET_TYPE_BYTE_PORTAL => client.portal_store().rm_portal(name),
            _ => {}
        }
        client.feed(PgWireBackendMessage::CloseComplete(CloseComplete::new())).await?;
        Ok(())
    }

    /// Describe as pgwire's default does, with the answer queued (pgwire
    /// flushes it, which cost `pgbench -M prepared` a second socket write
    /// per transaction). Describe Portal also answers for a SQL cursor
    /// (`DECLARE name CURSOR`): in PostgreSQL cursors and protocol portals
    /// are one namespace, and psycopg's server-side cursors learn their
    /// columns this way.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => match client.portal_store().get_statement(name) {
                Some(pgwire::api::store::Entry::Value(stmt)) => {
                    self.refuse_rows_in_failed_block(client, &stmt.statement.result)?;
                    let response = self.do_describe_statement(client, &stmt).await?;
                    feed_describe_response(client, &response).await
                }
                Some(pgwire::api::store::Entry::Empty) => feed_describe_response(client, &DescribeStatementResponse::no_data()).await,
                None => Err(super::error::statement_not_found(name)),
            },
            TARGET_TYPE_BYTE_PORTAL => match client.portal_store().get_portal(name) {
                Some(pgwire::api::store::Entry::Value(portal)) => {
                    self.refuse_rows_in_failed_block(client, &portal.statement.statement.result)?;
                    let response = self.do_describe_portal(client, &portal).await?;
                    feed_describe_response(client, &response).await
                }
                Some(pgwire::api::store::Entry::Empty) => feed_describe_response(client, &DescribePortalResponse::no_data()).await,
                None => {
                    let session = session_of(&self.engine, client);
                    match session.cursors.schema(name) {
                        Ok(schema) if !name.is_empty() => {
                            self.refuse_rows_in_failed_block(client, &schema)?;
                            let (fields, _) = describe_columns(&schema, &vec![Format::Text; schema.fields().len()]);
                            feed_describe_response(client, &DescribePortalResponse::new(fields)).await
                        }
                        _ => Err(super::error::portal_not_found(name)),
                    }
                }
            },
            other => Err(PgWireError::InvalidTargetType(other)),
        }
    }

    /// Execute without a row limit streams the rows as they are produced.
    /// pgwire's own Execute collects a portal's every row before sending
    /// the first when no limit is given, which holds a whole result in
    /// memory (and cannot be cancelled while it does). With a limit
    /// (JDBC's fetch size), pgwire's batch-by-batch portal fetch is right.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(name) {
            Some(pgwire::api::store::Entry::Value(portal)) => Some(portal),
            Some(pgwire::api::store::Entry::Empty) => None,
            None => return Err(super::error::portal_not_found(name)),
        };
        let Some(portal) = portal.filter(|_| message.max_rows == 0) else {
            return self._on_execute(client, message).await;
        };
        if !matches!(*portal.state().lock().await, PortalExecutionState::Initial) {
            return self._on_execute(client, message).await;
        }
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        *portal.state().lock().await = PortalExecutionState::Finished;
        let session = session_of(&self.engine, client);
        let deadline = stop::deadline(session.settings().statement_timeout());
        let mut stop = stop::stop_signal(stop::connection_handle(client), deadline);
        let result = tokio::select! {
            biased;
            e = &mut stop => {
                session.statement_interrupted();
                Err(to_pgwire(e))
            }
            response = ExtendedQueryHandler::do_query(self, client, portal.as_ref(), 0) => response,
        };
        let sent = match result {
            Ok(Response::Query(mut response)) => {
                let tag = response.command_tag().to_owned();
                let rows = std::mem::replace(response.data_rows(), Box::pin(futures::stream::empty()));
                let interrupted = session.clone();
                let mut rows = Box::pin(stop::stoppable(rows, stop, move || interrupted.statement_interrupted()));
                let mut count = 0usize;
                let mut failed = None;
                while let Some(row) = rows.next().await {
                    match row {
                        Ok(row) => {
                            client.feed(PgWireBackendMessage::DataRow(row)).await?;
                            count += 1;
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    None => send_execution_response(client, Tag::new(&tag).with_rows(count)).await,
                    Some(e) => Err(e),
                }
            }
            Ok(Response::Execution(tag)) => send_execution_response(client, tag).await,
            Ok(Response::EmptyQuery) => {
                client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
                Ok(())
            }
            Ok(Response::CopyIn(copy)) => {
                client.set_state(PgWireConnectionState::CopyInProgress(true));
                pgwire::api::copy::send_copy_in_response(client, copy).await
            }
            Ok(Response::CopyOut(copy)) => pgwire::api::copy::send_copy_out_response(client, copy).await,
            Ok(_) => Err(to_pgwire(TarnError::internal("unexpected response kind for Execute"))),
            Err(e) => Err(e),
        };
        if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            client.set_state(PgWireConnectionState::ReadyForQuery);
            client.set_transaction_status(wire_status(&session));
        }
        sent
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Arc<Prepared>>, max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(&self.engine, client);
        let params = match BoundParameters::of(client).take_for(portal) {
            Some(params) => params,
            None => bind_parameters(portal).map_err(to_pgwire)?,
        };
        let params = (!params.is_empty()).then(|| ParamValues::from(params));
        let prepared = &portal.statement.statement;
        // pgwire races this call against a CancelRequest; the timeout is ours.
        let deadline = stop::deadline(session.settings().statement_timeout());
        let output = tokio::select! {
            biased;
            e = stop::timeout_signal(deadline) => {
                session.statement_interrupted();
                return Err(to_pgwire(e));
            }
            output = session.execute_prepared(&prepared.stmt, &prepared.kept, params) => output.map_err(to_pgwire)?,
        };
        match output {
            Output::Rows { schema, stream, tag } => {
                let formats = result_formats(&portal.result_column_format, schema.fields().len()).map_err(to_pgwire)?;
                let (fields, columns) = describe_columns(&schema, &formats);
                let rows = row_stream(stream, columns, session.encode_options());
                // The rows stream after this returns, so the stop signal goes
                // with them: here for pgwire's batch-by-batch fetch (a row
                // limit), in `on_execute` otherwise.
                let mut response = if max_rows > 0 {
                    let interrupted = session.clone();
                    let stop = stop::stop_signal(stop::connection_handle(client), deadline);
                    QueryResponse::new(Arc::new(fields), stop::stoppable(rows, stop, move || interrupted.statement_interrupted()))
                } else {
                    QueryResponse::new(Arc::new(fields), rows)
                };
                response.set_command_tag(tag);
                Ok(Response::Query(response))
            }
            Output::Command { tag, parameter_status } => {
                if let Some((name, value)) = parameter_status {
                    client.feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(name, value))).await?;
                }
                Ok(Response::Execution(Tag::new(&tag)))
            }
            Output::CopyIn { columns, binary } => Ok(Response::CopyIn(copy::copy_in_response(columns, binary))),
            Output::CopyOut { columns, binary, rows } => Ok(Response::CopyOut(copy::copy_out_response(columns, binary, rows))),
        }
    }
}
