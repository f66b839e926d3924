//! Connection startup: protocol negotiation, trust authentication, the
//! ParameterStatus values real clients expect (server_version 15.x, UTF8,
//! ISO dates, …), BackendKeyData, and registration for CancelRequest.
//!
//! pgwire's `NoopStartupHandler` would do most of this but advertises its
//! own server_version (16.6-pgwire), which clients parse; so this handler
//! composes pgwire's public startup steps with Tarn's parameters.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::{
    ServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, ConnectionHandle, ConnectionManager, METADATA_APPLICATION_NAME, METADATA_DATABASE, METADATA_USER,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::session::Settings;

pub struct TarnStartup {
    pub connections: Arc<ConnectionManager>,
    pids: RandomPidSecretKeyGenerator,
}

impl TarnStartup {
    pub fn new(connections: Arc<ConnectionManager>) -> Self {
        TarnStartup { connections, pids: RandomPidSecretKeyGenerator::default() }
    }
}

struct StartupParameters;

impl ServerParameterProvider for StartupParameters {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        let md = client.metadata();
        let get = |k: &str| md.get(k).cloned().unwrap_or_default();
        let settings = Settings::new(&get(METADATA_USER), &get(METADATA_DATABASE), &get(METADATA_APPLICATION_NAME));
        Some(settings.reported().into_iter().collect())
    }
}

#[async_trait]
impl StartupHandler for TarnStartup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let PgWireFrontendMessage::Startup(ref startup) = message else { return Ok(()) };
        protocol_negotiation(client, startup).await?;
        save_startup_parameters_to_metadata(client, startup);
        // libpq sends no database when it equals the user name.
        if !client.metadata().contains_key(METADATA_DATABASE) {
            let user = client.metadata().get(METADATA_USER).cloned().unwrap_or_default();
            client.metadata_mut().insert(METADATA_DATABASE.to_string(), user);
        }
        let (pid, key) = self.pids.generate(client);
        client.set_pid_and_secret_key(pid, key.clone());
        let (handle, guard) = self.connections.register(pid, key);
        client.session_extensions().insert::<Arc<ConnectionHandle>>(handle);
        client.session_extensions().insert(guard);
        tracing::debug!(pid, user = ?client.metadata().get(METADATA_USER), "connection started");
        finish_authentication(client, &StartupParameters).await
    }
}
