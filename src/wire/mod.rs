//! The wire: the PostgreSQL frontend/backend protocol via pgwire 0.42.
//!
//! Only protocol work happens here — startup, the two query protocols,
//! encoding results as DataRows, mapping errors to ErrorResponse. Statements
//! are run by the connection's [`crate::session::Session`].

pub mod copy;
pub mod error;
pub mod query;
pub mod rows;
pub mod startup;
pub mod stop;

use std::sync::Arc;

use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::{ConnectionManager, PgWireServerHandlers};

use crate::engine::Engine;
use query::QueryHandler;
use startup::TarnStartup;

/// The handlers pgwire calls for every connection.
pub struct Handlers {
    query: Arc<QueryHandler>,
    startup: Arc<TarnStartup>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Handlers {
    pub fn new(engine: Arc<Engine>) -> Handlers {
        let connections = Arc::new(ConnectionManager::new());
        Handlers {
            query: Arc::new(QueryHandler::new(engine)),
            startup: Arc::new(TarnStartup::new(connections.clone())),
            cancel: Arc::new(DefaultCancelHandler::new(connections)),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.query.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.query.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }

    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        self.query.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}
