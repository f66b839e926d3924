//! A session: one per connection. It owns the connection's DataFusion
//! context and its settings (GUCs), and runs statements through
//! sql → engine, returning rows or a command tag.

pub mod settings;

use std::sync::{Arc, Mutex};

use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;

use crate::engine::Engine;
use crate::engine::execute::{self, Output};
use crate::error::Result;
use crate::sql;
use crate::types::encode::EncodeOptions;
pub use settings::Settings;

pub struct Session {
    engine: Arc<Engine>,
    ctx: SessionContext,
    settings: Mutex<Settings>,
}

impl Session {
    pub fn new(engine: Arc<Engine>, user: &str, database: &str, application_name: &str) -> Session {
        let ctx = engine.session_context();
        Session { engine, ctx, settings: Mutex::new(Settings::new(user, database, application_name)) }
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

    /// Classify and run one parsed statement.
    pub async fn execute(&self, stmt: Statement, params: Option<ParamValues>) -> Result<Output> {
        let cmd = sql::classify(stmt)?;
        execute::run(self, cmd, params).await
    }

    /// Plan a query/DML statement without running it (Describe).
    pub async fn plan(&self, stmt: &Statement) -> Result<LogicalPlan> {
        execute::plan(self, stmt).await
    }
}
