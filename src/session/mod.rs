//! A session: one per connection. It owns the connection's DataFusion
//! context and its settings (GUCs), and runs statements through
//! sql → engine, returning rows or a command tag.

pub mod settings;
mod transaction;

use std::sync::{Arc, Mutex};

use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;

use crate::engine::Engine;
use crate::engine::execute::{self, Output};
use crate::error::Result;
use crate::sql::{self, Command};
use crate::storage::txn::{TxnHandle, TxnState, TxnStatus};
use crate::types::encode::EncodeOptions;
pub use settings::Settings;

pub struct Session {
    engine: Arc<Engine>,
    ctx: SessionContext,
    settings: Mutex<Settings>,
    txn: TxnHandle,
}

impl Session {
    pub fn new(engine: Arc<Engine>, user: &str, database: &str, application_name: &str) -> Session {
        let txn = Arc::new(Mutex::new(TxnState::new(engine.storage.snapshot())));
        let ctx = engine.session_context(txn.clone());
        Session { engine, ctx, settings: Mutex::new(Settings::new(user, database, application_name)), txn }
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
        EncodeOptions { utc_offset_secs: self.settings().utc_offset_secs() }
    }

    /// Make DataFusion interpret zone-less timestamps (`'…'::timestamptz`,
    /// `now()`) in the session's TimeZone, as PostgreSQL does.
    pub fn apply_time_zone(&self) {
        let secs = self.settings().utc_offset_secs();
        let sign = if secs < 0 { '-' } else { '+' };
        let abs = secs.unsigned_abs();
        let offset = format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60);
        self.ctx.state_ref().write().config_mut().options_mut().execution.time_zone = Some(offset);
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
        let cmd = match sql::classify(stmt) {
            Ok(cmd) => cmd,
            Err(e) => return Err(self.statement_failed(e)),
        };
        if let Command::Transaction(t) = cmd {
            return self.transaction_command(t).await;
        }
        self.begin_statement()?;
        let result = execute::run(self, cmd, params).await;
        self.end_statement(result).await
    }

    /// Plan a query/DML statement without running it (Describe).
    pub async fn plan(&self, stmt: &Statement) -> Result<LogicalPlan> {
        execute::plan(self, stmt).await
    }
}
