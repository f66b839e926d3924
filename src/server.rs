//! The server: open storage (recovering it), listen, hand each connection to
//! pgwire with Tarn's handlers, and on Ctrl-C/SIGTERM stop accepting and
//! flush every table into Lance before exiting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::engine::Engine;
use crate::error::{Result, TarnError};
use crate::storage::{FlushPolicy, Storage};
use crate::wire::Handlers;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub flush: FlushPolicy,
}

pub async fn serve(config: ServerConfig) -> Result<()> {
    let storage = Storage::open(&config.data_dir, config.flush.clone()).await?;
    let flusher = storage.spawn_flusher();
    let engine = Engine::new(storage.clone())?;
    let handlers = Arc::new(Handlers::new(engine));

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| TarnError::io(&format!("listening on {}", config.listen), e))?;
    let addr = listener.local_addr().map_err(|e| TarnError::io("reading listen address", e))?;
    info!(%addr, data_dir = %config.data_dir.display(), "tarn is ready for connections");
    // Tests and scripts read this line to find an ephemeral port.
    println!("tarn listening on {addr}");

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = handlers.clone();
                    tokio::spawn(async move {
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                            warn!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    error!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
    info!("shutting down: flushing tables");
    flusher.abort();
    storage.flush_all().await?;
    info!("shutdown complete");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
