//! Stopping a running statement: a CancelRequest for its connection, or the
//! session's `statement_timeout`. Either ends it with 57014 within a poll of
//! the statement's future — while it plans, runs, or streams its rows.
//!
//! pgwire only races cancellation against the handler call; rows stream
//! after that call returns, so the row stream is wrapped too
//! ([`stoppable`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
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
    Stoppable { rows: Box::pin(rows), stop: Some(stop), on_stop: Some(Box::new(on_stop)), unchecked: CHECK_EVERY }
}

/// Rows between two polls of the stop signal while rows are ready. Polling
/// it per row (a boxed `select!` over the cancel receiver and the timer) was
/// a sixth of a streaming `SELECT *`; a few hundred rows are sent in well
/// under a millisecond, so the 100 ms bound holds. Whenever the rows are not
/// ready the signal is polled too, so a stop while planning or scanning is
/// seen at once.
const CHECK_EVERY: u32 = 256;

struct Stoppable<T> {
    rows: Pin<Box<dyn Stream<Item = PgWireResult<T>> + Send>>,
    /// None once the stream has ended with the stop error.
    stop: Option<StopSignal>,
    on_stop: Option<Box<dyn FnOnce() + Send>>,
    /// Rows sent since the signal was last polled.
    unchecked: u32,
}

impl<T> Stoppable<T> {
    /// Poll the stop signal; on its firing, the item that ends the stream.
    fn poll_stop(&mut self, cx: &mut Context<'_>) -> Option<PgWireResult<T>> {
        self.unchecked = 0;
        let e = match self.stop.as_mut()?.as_mut().poll(cx) {
            Poll::Ready(e) => e,
            Poll::Pending => return None,
        };
        self.stop = None;
        if let Some(on_stop) = self.on_stop.take() {
            on_stop();
        }
        Some(Err(to_pgwire(e)))
    }
}

impl<T> Stream for Stoppable<T> {
    type Item = PgWireResult<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.stop.is_none() {
            return Poll::Ready(None);
        }
        if this.unchecked >= CHECK_EVERY {
            if let Some(stopped) = this.poll_stop(cx) {
                return Poll::Ready(Some(stopped));
            }
        }
        match this.rows.as_mut().poll_next(cx) {
            Poll::Ready(item) => {
                this.unchecked += 1;
                Poll::Ready(item)
            }
            // Registers the signal's wake-up while the rows wait.
            Poll::Pending => match this.poll_stop(cx) {
                Some(stopped) => Poll::Ready(Some(stopped)),
                None => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_stream_that_is_always_ready_still_stops() {
        let rows = futures::stream::iter(0..).map(Ok::<_, pgwire::error::PgWireError>);
        let (fire, fired) = tokio::sync::oneshot::channel::<()>();
        let stop: StopSignal = Box::pin(async move {
            let _ = fired.await;
            TarnError::new(sqlstate::QUERY_CANCELED, "stop")
        });
        let mut rows = Box::pin(stoppable(rows, stop, || {}));
        // The signal is polled before the first row.
        assert_eq!(rows.next().await.unwrap().unwrap(), 0);
        fire.send(()).unwrap();
        let mut sent = 1;
        loop {
            match rows.next().await.unwrap() {
                Ok(_) => sent += 1,
                Err(e) => {
                    assert!(e.to_string().contains("stop"), "{e}");
                    break;
                }
            }
            assert!(sent <= CHECK_EVERY as usize + 1, "still streaming after {sent} rows");
        }
        assert!(rows.next().await.is_none());
    }

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
