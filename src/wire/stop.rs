//! Stopping a running statement: a CancelRequest for its connection, or the
//! session's `statement_timeout`. Either ends it with 57014 within a poll of
//! the statement's future — while it plans, runs, or streams its rows.
//!
//! pgwire only races cancellation against the handler call; rows stream
//! after that call returns, so the row stream is wrapped too
//! ([`stoppable`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::Instant;
use pgwire::api::{ClientInfo, ConnectionHandle};
use pgwire::error::PgWireResult;

use super::error::to_pgwire;
use crate::error::{TarnError, sqlstate};

/// Resolves, with the error to send, when the statement must stop.
pub type StopSignal = Pin<Box<dyn Future<Output = TarnError> + Send>>;

/// The connection's cancel handle (registered at startup).
pub fn connection_handle<C: ClientInfo + ?Sized>(client: &C) -> Option<Arc<ConnectionHandle>> {
    client.session_extensions().get::<Arc<ConnectionHandle>>().map(|h| (*h).clone())
}

/// When a statement's `timeout` starts now.
pub fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}

/// Fires on a CancelRequest for `handle`'s connection or at `deadline`.
/// The cancel is registered when the signal is first polled: for the
/// extended protocol that is when the rows start to stream, after pgwire's
/// own race of the handler call against cancellation has ended (registering
/// a second receiver earlier would end pgwire's, which it takes for a
/// cancel).
pub fn stop_signal(handle: Option<Arc<ConnectionHandle>>, deadline: Option<Instant>) -> StopSignal {
    Box::pin(async move {
        let cancelled = async {
            // Err: the handle moved on to a later statement; never fires.
            let fired = match handle {
                Some(handle) => handle.start_query().await.await.is_ok(),
                None => false,
            };
            if !fired {
                futures::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = cancelled => TarnError::new(sqlstate::QUERY_CANCELED, "canceling statement due to user request"),
            _ = timed_out(deadline) => timeout_error(),
        }
    })
}

/// Fires at `deadline` only.
pub fn timeout_signal(deadline: Option<Instant>) -> StopSignal {
    Box::pin(async move {
        timed_out(deadline).await;
        timeout_error()
    })
}

async fn timed_out(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending::<()>().await,
    }
}

fn timeout_error() -> TarnError {
    TarnError::new(sqlstate::QUERY_CANCELED, "canceling statement due to statement timeout")
}

/// `rows`, ended by the stop error as soon as `stop` fires (`on_stop` runs
/// then, to fail the session's transaction block).
pub fn stoppable<T: Send + 'static>(
    rows: impl Stream<Item = PgWireResult<T>> + Send + 'static,
    stop: StopSignal,
    on_stop: impl FnOnce() + Send + 'static,
) -> impl Stream<Item = PgWireResult<T>> + Send + 'static {
    let rows: Pin<Box<dyn Stream<Item = PgWireResult<T>> + Send>> = Box::pin(rows);
    let on_stop: Box<dyn FnOnce() + Send> = Box::new(on_stop);
    futures::stream::unfold(Some((rows, stop, on_stop)), |state| async move {
        let (mut rows, mut stop, on_stop) = state?;
        let next = tokio::select! {
            biased;
            e = &mut stop => Err(e),
            item = rows.next() => Ok(item),
        };
        match next {
            Ok(Some(item)) => Some((item, Some((rows, stop, on_stop)))),
            Ok(None) => None,
            Err(e) => {
                on_stop();
                Some((Err(to_pgwire(e)), None))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stopped_stream_ends_with_the_stop_error() {
        let rows = futures::stream::iter(0..).then(|i| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok::<_, pgwire::error::PgWireError>(i)
        });
        let stop: StopSignal = Box::pin(async {
            tokio::time::sleep(Duration::from_millis(60)).await;
            TarnError::new(sqlstate::QUERY_CANCELED, "stop")
        });
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stopped.clone();
        let items: Vec<_> = stoppable(rows, stop, move || flag.store(true, std::sync::atomic::Ordering::SeqCst)).collect().await;
        assert!(stopped.load(std::sync::atomic::Ordering::SeqCst));
        assert!(items.len() > 3 && items.len() < 30, "{} items", items.len());
        assert!(items[..items.len() - 1].iter().all(|i| i.is_ok()));
        assert!(items.last().unwrap().is_err());
    }
}
