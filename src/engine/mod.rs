//! The engine: DataFusion over Tarn's storage.
//!
//! One [`Engine`] per server owns the shared pieces (storage, the DataFusion
//! runtime and memory pool, the catalog provider); each session gets its own
//! `SessionContext` over them, so per-session settings never leak.

pub mod execute;
pub mod functions;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::storage::Storage;
use crate::storage::table::TableHandle;

/// The catalog name DataFusion plans against (one database per server).
pub const CATALOG: &str = "tarn";
/// The default schema.
pub const PUBLIC: &str = "public";

/// Shared query-engine state.
pub struct Engine {
    pub storage: Arc<Storage>,
    runtime: Arc<RuntimeEnv>,
    catalog: Arc<TarnCatalog>,
}

impl Engine {
    pub fn new(storage: Arc<Storage>) -> crate::error::Result<Arc<Engine>> {
        let runtime = RuntimeEnvBuilder::new().build_arc()?;
        let catalog = Arc::new(TarnCatalog { storage: storage.clone() });
        Ok(Arc::new(Engine { storage, runtime, catalog }))
    }

    /// A fresh DataFusion context for one session.
    pub fn session_context(&self) -> SessionContext {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, PUBLIC)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true)
            // `12.50` is numeric in PostgreSQL, not float8.
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
            // Follows the session's TimeZone (see Session::apply_time_zone).
            .set_str("datafusion.execution.time_zone", "+00:00");
        let ctx = SessionContext::new_with_config_rt(config, self.runtime.clone());
        ctx.register_catalog(CATALOG, self.catalog.clone());
        functions::register(&ctx);
        ctx
    }
}

/// DataFusion's view of Tarn's catalog: reads live from storage, so a table
/// created by one session is visible to every other at once.
struct TarnCatalog {
    storage: Arc<Storage>,
}

impl fmt::Debug for TarnCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TarnCatalog")
    }
}

impl CatalogProvider for TarnCatalog {
    fn schema_names(&self) -> Vec<String> {
        vec![PUBLIC.to_string()]
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        (name == PUBLIC).then(|| Arc::new(TarnSchema { storage: self.storage.clone(), name: name.to_string() }) as _)
    }
}

struct TarnSchema {
    storage: Arc<Storage>,
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
        self.storage.table_names(&self.name)
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(self.storage.table(&self.name, name).map(|t| Arc::new(TableHandle::new(t)) as _))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.storage.table(&self.name, name).is_some()
    }
}
