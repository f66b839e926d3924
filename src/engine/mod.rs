//! The engine: DataFusion over Tarn's storage.
//!
//! One [`Engine`] per server owns the shared pieces (storage, the DataFusion
//! runtime and memory pool, the catalog provider); each session gets its own
//! `SessionContext` over them, so per-session settings never leak.

pub mod checked_arith;
pub mod copy;
pub mod dml;
pub mod execute;
pub mod functions;
pub mod ids;
pub mod pg_catalog;
pub mod plan_cache;
pub mod point;
pub mod returning;
pub mod small_plans;
pub mod text_casts;
pub mod views;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::storage::Storage;
use crate::storage::handle::TableHandle;
use crate::storage::txn::TxnHandle;
use pg_catalog::SessionInfo;

/// The catalog name DataFusion plans against (one database per server).
pub const CATALOG: &str = "tarn";
/// The default schema.
pub const PUBLIC: &str = "public";

/// A table name suffix that makes the catalog hand out the table with its
/// hidden row id as a last column. Only `engine::dml` uses it, to plan the
/// row selection of UPDATE and DELETE; `\u{1}` cannot appear in an unquoted
/// identifier, so no client names it by accident.
pub const WITH_ROWID: &str = "\u{1}with_rowid";

/// Shared query-engine state.
pub struct Engine {
    pub storage: Arc<Storage>,
    runtime: Arc<RuntimeEnv>,
}

impl Engine {
    pub fn new(storage: Arc<Storage>) -> crate::error::Result<Arc<Engine>> {
        let runtime = RuntimeEnvBuilder::new().build_arc()?;
        Ok(Arc::new(Engine { storage, runtime }))
    }

    /// A fresh DataFusion context for one session, whose tables read and
    /// write through the session's transaction.
    pub fn session_context(&self, txn: TxnHandle, session: Arc<dyn SessionInfo>) -> SessionContext {
        context_over(self.storage.clone(), txn, self.runtime.clone(), session)
    }
}

/// A DataFusion context whose catalog is Tarn's, read through `txn`.
fn context_over(storage: Arc<Storage>, txn: TxnHandle, runtime: Arc<RuntimeEnv>, session: Arc<dyn SessionInfo>) -> SessionContext {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, PUBLIC)
            .with_create_default_catalog_and_schema(false)
            // Tarn serves its own, with PostgreSQL's columns (pg_catalog::information_schema).
            .with_information_schema(false)
            // `12.50` is numeric in PostgreSQL, not float8.
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
            // Follows the session's TimeZone (see Session::apply_time_zone).
            .set_str("datafusion.execution.time_zone", "+00:00");
        let mut builder = datafusion::execution::SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime.clone())
            .with_default_features();
        *builder.optimizer() = Some(checked_arith::optimizer());
        let state = builder
            .with_type_planner(Arc::new(crate::types::planner::PgTypePlanner))
            .with_analyzer_rules(text_casts::analyzer_rules())
            .with_physical_optimizer_rules(vec![Arc::new(small_plans::SmallPlansAsPlanned::new())])
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_catalog(CATALOG, Arc::new(TarnCatalog { storage: storage.clone(), txn, runtime, session: session.clone() }));
        functions::register(&ctx);
        pg_catalog::functions::register(&ctx, Arc::new(pg_catalog::functions::FnContext { storage, session }));
        ctx
}

/// DataFusion's view of Tarn's catalog: reads live from storage, so a table
/// created by one session is visible to every other at once.
struct TarnCatalog {
    storage: Arc<Storage>,
    txn: TxnHandle,
    runtime: Arc<RuntimeEnv>,
    session: Arc<dyn SessionInfo>,
}

impl fmt::Debug for TarnCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TarnCatalog")
    }
}

impl CatalogProvider for TarnCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = vec![PUBLIC.to_string(), pg_catalog::PG_CATALOG.to_string(), pg_catalog::INFORMATION_SCHEMA.to_string()];
        names.extend(self.storage.schemas().into_iter().map(|s| s.name));
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match name {
            _ if name == PUBLIC || self.storage.schemas().iter().any(|s| s.name == name) => Some(Arc::new(TarnSchema {
                storage: self.storage.clone(),
                txn: self.txn.clone(),
                runtime: self.runtime.clone(),
                session: self.session.clone(),
                name: name.to_string(),
            }) as _),
            pg_catalog::PG_CATALOG | pg_catalog::INFORMATION_SCHEMA => Some(Arc::new(pg_catalog::SystemSchema {
                schema: if name == pg_catalog::PG_CATALOG { pg_catalog::PG_CATALOG } else { pg_catalog::INFORMATION_SCHEMA },
                storage: self.storage.clone(),
                session: self.session.clone(),
            }) as _),
            _ => None,
        }
    }
}

/// PostgreSQL searches `pg_catalog` before the search path, so an
/// unqualified `pg_type` is the system catalog, even in a user schema.
fn system_table(schema: &TarnSchema, name: &str) -> Option<pg_catalog::SystemSchema> {
    pg_catalog::SystemTable::find(pg_catalog::PG_CATALOG, name).map(|_| pg_catalog::SystemSchema {
        schema: pg_catalog::PG_CATALOG,
        storage: schema.storage.clone(),
        session: schema.session.clone(),
    })
}

struct TarnSchema {
    storage: Arc<Storage>,
    txn: TxnHandle,
    runtime: Arc<RuntimeEnv>,
    session: Arc<dyn SessionInfo>,
    name: String,
}

impl fmt::Debug for TarnSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TarnSchema({})", self.name)
    }
}

#[async_trait]
impl SchemaProvider for TarnSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.storage.table_names(&self.name);
        names.extend(self.storage.view_names(&self.name));
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if name.ends_with(returning::RETURNING) {
            return Ok(self.txn.lock().unwrap().statement.returning.clone());
        }
        if let Some(system) = system_table(self, name) {
            return system.table(name).await;
        }
        if let Some(view) = self.storage.view(&self.name, name) {
            let ctx = context_over(self.storage.clone(), self.txn.clone(), self.runtime.clone(), self.session.clone());
            return views::provider(&ctx, &view).await.map(Some);
        }
        let (name, with_rowid) = match name.strip_suffix(WITH_ROWID) {
            Some(n) => (n, true),
            None => (name, false),
        };
        Ok(self.storage.table(&self.name, name).map(|t| {
            t.defaults.get_or_init(|| Arc::new(column_defaults(&t.def)));
            Arc::new(TableHandle::new(self.storage.clone(), t, self.txn.clone(), with_rowid)) as _
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        if name.ends_with(returning::RETURNING) {
            return self.txn.lock().unwrap().statement.returning.is_some();
        }
        self.storage.table(&self.name, name.strip_suffix(WITH_ROWID).unwrap_or(name)).is_some()
            || self.storage.view(&self.name, name).is_some()
            || system_table(self, name).is_some()
    }
}

/// A context for planning DEFAULT expressions: Tarn's functions, no tables.
fn defaults_context() -> &'static SessionContext {
    static CTX: std::sync::OnceLock<SessionContext> = std::sync::OnceLock::new();
    CTX.get_or_init(|| {
        let config = SessionConfig::new().set_bool("datafusion.sql_parser.parse_float_as_decimal", true);
        let mut builder = datafusion::execution::SessionStateBuilder::new().with_config(config).with_default_features();
        *builder.optimizer() = Some(checked_arith::optimizer());
        let state = builder
            .with_type_planner(Arc::new(crate::types::planner::PgTypePlanner))
            .with_analyzer_rules(text_casts::analyzer_rules())
            .with_physical_optimizer_rules(vec![Arc::new(small_plans::SmallPlansAsPlanned::new())])
            .build();
        let ctx = SessionContext::new_with_state(state);
        functions::register(&ctx);
        ctx
    })
}

/// Plan a column's DEFAULT expression (SQL text) as a value of the column's
/// type. Column references are refused as PostgreSQL refuses them.
pub fn plan_default(sql: &str, ty: &crate::types::PgType) -> crate::error::Result<datafusion::logical_expr::Expr> {
    use crate::error::{TarnError, sqlstate};
    let empty = datafusion::common::DFSchema::empty();
    let expr = defaults_context().parse_sql_expr(sql, &empty).map_err(|e| {
        let e = TarnError::from(e);
        if e.code == sqlstate::UNDEFINED_COLUMN {
            TarnError::new(sqlstate::FEATURE_NOT_SUPPORTED, "cannot use column reference in DEFAULT expression")
        } else {
            e
        }
    })?;
    use datafusion::logical_expr::ExprSchemable;
    Ok(expr.cast_to(&ty.arrow_type(), &empty)?)
}

/// Every column's planned DEFAULT (None where it has none).
fn column_defaults(def: &crate::storage::catalog::TableDef) -> Vec<Option<datafusion::logical_expr::Expr>> {
    def.columns
        .iter()
        .map(|c| {
            let sql = c.default.as_ref()?;
            plan_default(sql, &c.pg_type())
                .map_err(|e| tracing::error!(table = %def.name, column = %c.name, error = %e, "stored DEFAULT no longer plans"))
                .ok()
        })
        .collect()
}
