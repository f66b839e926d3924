//! A session: one per connection. It owns the connection's DataFusion
//! context and its settings (GUCs), and runs statements through
//! sql → engine, returning rows or a command tag.

pub mod cursor;
mod prepared;
pub mod settings;
mod transaction;

use std::sync::{Arc, Mutex};

use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionState;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;

use crate::engine::Engine;
use crate::engine::execute::{self, Output};
use crate::engine::plan_cache::KeptSlot;
use crate::engine::copy::CopyIn;
use crate::error::{Result, TarnError, sqlstate};
use crate::sql::{self, Command};
use crate::storage::txn::{TxnHandle, TxnState, TxnStatus};
use crate::types::encode::EncodeOptions;
pub use settings::Settings;

pub struct Session {
    engine: Arc<Engine>,
    ctx: SessionContext,
    settings: Arc<Mutex<Settings>>,
    txn: TxnHandle,
    /// A `COPY … FROM STDIN` waiting for its data.
    copy_in: Mutex<Option<CopyState>>,
    /// Open SQL cursors (DECLARE … CURSOR).
    pub cursors: cursor::Cursors,
    /// SQL prepared statements (PREPARE).
    prepared: prepared::PreparedStatements,
    /// DataFusion's state and task context, built once and reused until
    /// the session's configuration changes (see [`Session::statement_state`]).
    planning: Mutex<PlanningState>,
    /// Plans of statements run before (see `engine::plan_cache`).
    plans: Mutex<crate::engine::plan_cache::PlanCache>,
    /// The current schema and the (settings version, catalog generation)
    /// it was worked out under.
    schema_memo: Mutex<Option<((u64, u64), String)>>,
}

/// The state one statement plans with (see [`Session::statement_state`]).
pub struct StatementState {
    pub state: Arc<SessionState>,
    /// The configuration generation it was copied under.
    generation: u64,
}

/// The cached copy of the context's state. Cloning a `SessionState` (and
/// building a `TaskContext` from it) copies every function registry, about
/// a tenth of a point query's time, so statements share one.
#[derive(Default)]
struct PlanningState {
    state: Option<SessionState>,
    task: Option<Arc<TaskContext>>,
    /// Bumped by every configuration change; a state taken before one is
    /// not put back.
    generation: u64,
}

/// What the catalogs and catalog functions see of a session.
struct SessionView {
    settings: Arc<Mutex<Settings>>,
    pid: i32,
}

impl crate::engine::pg_catalog::SessionInfo for SessionView {
    fn user(&self) -> String {
        self.settings.lock().unwrap().user.clone()
    }
    fn database(&self) -> String {
        self.settings.lock().unwrap().database.clone()
    }
    fn backend_pid(&self) -> i32 {
        self.pid
    }
    fn application_name(&self) -> String {
        self.settings.lock().unwrap().get("application_name").unwrap_or_default()
    }
    fn setting(&self, name: &str) -> Result<String> {
        self.settings.lock().unwrap().get(name)
    }
    fn set_setting(&self, name: &str, value: &str) -> Result<String> {
        let mut settings = self.settings.lock().unwrap();
        settings.set(name, Some(value.to_string()))?;
        settings.get(name)
    }
    fn settings(&self) -> Vec<(String, String)> {
        self.settings.lock().unwrap().all()
    }
}

/// A COPY FROM STDIN between its statement and the end of its data.
enum CopyState {
    Receiving(Box<CopyIn>),
    /// A row failed: the rest of the data is ignored and the error is
    /// reported when it ends (CopyDone or CopyFail).
    Failed(TarnError),
}

impl Session {
    pub fn new(engine: Arc<Engine>, user: &str, database: &str, application_name: &str, pid: i32) -> Session {
        let txn = Arc::new(Mutex::new(TxnState::new(engine.storage.snapshot())));
        let settings = Arc::new(Mutex::new(Settings::new(user, database, application_name)));
        let info = Arc::new(SessionView { settings: settings.clone(), pid });
        let ctx = engine.session_context(txn.clone(), info);
        Session {
            engine,
            ctx,
            settings,
            txn,
            copy_in: Mutex::new(None),
            cursors: Default::default(),
            prepared: Default::default(),
            planning: Default::default(),
            plans: Default::default(),
            schema_memo: Default::default(),
        }
    }

    pub fn plan_cache(&self) -> std::sync::MutexGuard<'_, crate::engine::plan_cache::PlanCache> {
        self.plans.lock().unwrap()
    }

    /// Changes whenever the DataFusion configuration statements plan under does.
    pub fn config_generation(&self) -> u64 {
        self.planning.lock().unwrap().generation
    }

    /// The state one statement plans with: the cached copy of the
    /// context's state, its start time (`now()`) set to now. Hand it back
    /// with [`Session::release_state`].
    pub fn statement_state(&self) -> StatementState {
        let (cached, generation) = {
            let mut p = self.planning.lock().unwrap();
            (p.state.take(), p.generation)
        };
        let mut state = cached.unwrap_or_else(|| self.ctx.state_ref().read().clone());
        state.mark_start_execution();
        StatementState { state: Arc::new(state), generation }
    }

    /// Keep a statement's state for the next one, unless the configuration
    /// changed meanwhile or something still holds it.
    pub fn release_state(&self, StatementState { state, generation }: StatementState) {
        if let Ok(state) = Arc::try_unwrap(state) {
            let mut p = self.planning.lock().unwrap();
            if p.generation == generation && p.state.is_none() {
                p.state = Some(state);
            }
        }
    }

    /// The task context statements execute with.
    pub fn task_ctx(&self) -> Arc<TaskContext> {
        if let Some(task) = self.planning.lock().unwrap().task.clone() {
            return task;
        }
        let task = Arc::new(TaskContext::from(&*self.ctx.state_ref().read()));
        let mut p = self.planning.lock().unwrap();
        p.task.get_or_insert(task).clone()
    }

    /// Change DataFusion's configuration (and drop the cached copies).
    fn configure(&self, change: impl FnOnce(&mut datafusion::config::ConfigOptions)) {
        change(self.ctx.state_ref().write().config_mut().options_mut());
        let mut p = self.planning.lock().unwrap();
        p.state = None;
        p.task = None;
        p.generation += 1;
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    pub fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap()
    }

    /// How values print for this session right now.
    pub fn encode_options(&self) -> EncodeOptions {
        let settings = self.settings();
        EncodeOptions { utc_offset_secs: settings.utc_offset_secs(), zone: settings.named_zone() }
    }

    /// Make DataFusion interpret zone-less timestamps (`'…'::timestamptz`,
    /// `now()`) in the session's TimeZone, as PostgreSQL does.
    pub fn apply_time_zone(&self) {
        if let Some(tz) = self.settings().named_zone() {
            // Arrow resolves IANA names itself (its chrono-tz feature).
            self.configure(|o| o.execution.time_zone = Some(tz.name().to_string()));
            return;
        }
        let secs = self.settings().utc_offset_secs();
        let sign = if secs < 0 { '-' } else { '+' };
        let abs = secs.unsigned_abs();
        let offset = format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60);
        self.configure(|o| o.execution.time_zone = Some(offset));
    }

    /// The schema unqualified names mean: the first schema of `search_path`
    /// that exists (`$user` is the session's user), else `public`.
    ///
    /// It is kept for as long as the settings and the catalog stay as they
    /// were (parsing search_path and looking its schemas up was 2% of a
    /// primary key lookup); worked out afresh, DataFusion's name resolution
    /// is pointed at it too.
    pub fn current_schema(&self) -> String {
        let (path, user, version) = {
            let s = self.settings();
            let version = (s.version(), crate::storage::catalog::generation());
            if let Some((at, schema)) = &*self.schema_memo.lock().unwrap() {
                if *at == version {
                    return schema.clone();
                }
            }
            (s.get("search_path").unwrap_or_default(), s.user.clone(), version)
        };
        let schema = crate::engine::pg_catalog::search_path(&path, &user)
            .into_iter()
            .find(|s| self.engine.storage.schema_exists(s))
            .unwrap_or_else(|| crate::engine::PUBLIC.to_string());
        if self.ctx.state_ref().read().config().options().catalog.default_schema != schema {
            self.configure(|o| o.catalog.default_schema = schema.clone());
        }
        *self.schema_memo.lock().unwrap() = Some((version, schema.clone()));
        schema
    }

    /// (schema, table) of a name in a statement being executed: an
    /// unqualified name is in the current schema, as DataFusion resolves it
    /// when it plans the same statement.
    pub fn qualified_name(&self, name: &datafusion::sql::sqlparser::ast::ObjectName) -> Result<(String, String)> {
        sql::qualified_name_in(name, &self.current_schema())
    }

    /// Classify a statement with unqualified names in the current schema,
    /// and point DataFusion's name resolution at the same schema.
    pub fn classify(&self, stmt: Statement) -> Result<Command> {
        let schema = self.current_schema();
        sql::classify_in(stmt, &schema)
    }

    /// The session's transaction (read by its table handles).
    pub fn txn(&self) -> &TxnHandle {
        &self.txn
    }

    pub fn transaction_status(&self) -> TxnStatus {
        self.txn.lock().unwrap().status
    }

    /// Classify and run one parsed statement inside the session's
    /// transaction: autocommit statements commit (or vanish) on their own;
    /// inside a block an error moves the block to the failed state.
    pub async fn execute(&self, stmt: Statement, params: Option<ParamValues>) -> Result<Output> {
        self.execute_keeping(stmt, params, None).await
    }

    /// Execute a prepared statement: its kept plan if it is still current,
    /// else as [`Session::execute`], keeping the plan in `slot` for next time.
    pub async fn execute_prepared(&self, stmt: &Statement, slot: &KeptSlot, params: Option<ParamValues>) -> Result<Output> {
        match slot.current(self.kept_under(), &self.engine.storage, params.as_ref()) {
            Some(kept) => {
                let _running = self.engine.storage.running();
                self.begin_statement()?;
                let result = execute::run_kept(self, &kept, params).await;
                self.end_statement(result).await
            }
            None => self.execute_keeping(stmt.clone(), params, Some(slot)).await,
        }
    }

    /// What a kept plan must have been made under to be used now: the
    /// settings (the search path), the catalog and DataFusion's configuration.
    pub fn kept_under(&self) -> (u64, u64, u64) {
        (self.settings().version(), crate::storage::catalog::generation(), self.config_generation())
    }

    async fn execute_keeping(&self, stmt: Statement, params: Option<ParamValues>, slot: Option<&KeptSlot>) -> Result<Output> {
        let _running = self.engine.storage.running();
        let cmd = match self.classify(stmt) {
            Ok(cmd) => cmd,
            Err(e) => return Err(self.statement_failed(e)),
        };
        if let Command::Transaction(t) = cmd {
            return self.transaction_command(t).await;
        }
        self.begin_statement()?;
        let result = match cmd {
            Command::Plan(stmt) => execute::run_query(self, stmt, params, slot).await,
            Command::Update(stmt) | Command::Delete(stmt) => crate::engine::dml::run(self, &stmt, params, slot).await,
            cmd => execute::run(self, cmd, params).await,
        };
        if matches!(result, Ok(Output::CopyIn { .. })) {
            // The statement ends with its data: see `copy_done`.
            return result;
        }
        self.end_statement(result).await
    }

    /// `COPY … FROM STDIN` is waiting for data.
    pub fn begin_copy_in(&self, copy: CopyIn) {
        *self.copy_in.lock().unwrap() = Some(CopyState::Receiving(Box::new(copy)));
    }

    pub fn copy_in_progress(&self) -> bool {
        self.copy_in.lock().unwrap().is_some()
    }

    /// One CopyData message.
    pub async fn copy_data(&self, data: &[u8]) {
        // After a failure the rest of the data is dropped; the error waits
        // for CopyDone.
        let receiving = self.copy_in.lock().unwrap().take_if(|s| matches!(s, CopyState::Receiving(_)));
        let Some(CopyState::Receiving(mut copy)) = receiving else {
            return;
        };
        let state = match copy.push(self, data).await {
            Ok(()) => CopyState::Receiving(copy),
            Err(e) => CopyState::Failed(e),
        };
        *self.copy_in.lock().unwrap() = Some(state);
    }

    /// CopyDone: the statement ends — committed when autocommit, part of
    /// the block otherwise — with tag `COPY n`.
    pub async fn copy_done(&self) -> Result<Output> {
        let result = match self.copy_in.lock().unwrap().take() {
            Some(CopyState::Receiving(copy)) => Ok(copy),
            Some(CopyState::Failed(e)) => Err(e),
            None => return Err(TarnError::new(sqlstate::PROTOCOL_VIOLATION, "CopyDone without COPY in progress")),
        };
        let result = match result {
            Ok(mut copy) => copy.finish(self).await.map(|n| Output::tag(format!("COPY {n}"))),
            Err(e) => Err(e),
        };
        self.end_statement(result).await
    }

    /// CopyFail from the client: nothing of this COPY is kept.
    pub async fn copy_fail(&self, message: &str) -> TarnError {
        let failed = self.copy_in.lock().unwrap().take();
        let e = match failed {
            Some(CopyState::Failed(e)) => e,
            _ => TarnError::new(sqlstate::QUERY_CANCELED, format!("COPY from stdin failed: {message}")),
        };
        match self.end_statement(Err(e)).await {
            Err(e) => e,
            Ok(_) => TarnError::internal("a failed COPY ended without an error"),
        }
    }

    /// Plan a query/DML statement without running it (Describe).
    pub async fn plan(&self, stmt: &Statement) -> Result<LogicalPlan> {
        execute::plan(self, stmt).await
    }
}
