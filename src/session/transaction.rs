//! Transaction blocks as PostgreSQL runs them: BEGIN/COMMIT/ROLLBACK,
//! savepoints, the failed state (25P02) and per-statement snapshots.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{FutureExt, TryStreamExt};

use super::Session;
use crate::engine::execute::Output;
use crate::error::{Result, TarnError, sqlstate};
use crate::sql::TxnCommand;
use crate::storage::txn::{Isolation, TxnStatus};

fn tag(t: &str) -> Output {
    Output::Command { tag: t.into(), parameter_status: None }
}

fn aborted() -> TarnError {
    TarnError::new(
        sqlstate::IN_FAILED_SQL_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

/// A future run where it is awaited that, if dropped before it is done,
/// finishes in a task of its own. `tokio::spawn` and awaiting the handle
/// gave the same guarantee, but a spawn wakes a parked worker to steal the
/// task: a thread wake-up and a hop between workers on every commit. A
/// panic inside is caught, as the spawned task's was.
struct FinishOnDrop<T: Send + 'static> {
    fut: Option<Pin<Box<dyn Future<Output = std::thread::Result<T>> + Send>>>,
}

impl<T: Send + 'static> FinishOnDrop<T> {
    fn new(fut: impl Future<Output = T> + Send + 'static) -> Self {
        FinishOnDrop { fut: Some(Box::pin(std::panic::AssertUnwindSafe(fut).catch_unwind())) }
    }
}

impl<T: Send + 'static> Future for FinishOnDrop<T> {
    type Output = std::thread::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(fut) = self.fut.as_mut() else { panic!("FinishOnDrop polled after it finished") };
        let out = std::task::ready!(fut.as_mut().poll(cx));
        self.fut = None;
        Poll::Ready(out)
    }
}

impl<T: Send + 'static> Drop for FinishOnDrop<T> {
    fn drop(&mut self) {
        if let Some(fut) = self.fut.take() {
            // Without a runtime the server is shutting down: nothing can
            // finish it (a queued WAL record is still published by the
            // writer thread).
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(fut);
            }
        }
    }
}

impl Session {
    /// Before a statement: refuse it in a failed block, and give it its
    /// snapshot (a fresh one, except under REPEATABLE READ after the block's
    /// first statement).
    pub(super) fn begin_statement(&self) -> Result<()> {
        let snapshot = self.engine.storage.snapshot();
        let mut t = self.txn.lock().unwrap();
        match t.status {
            TxnStatus::Failed => return Err(aborted()),
            TxnStatus::Idle => t.snapshot = snapshot,
            TxnStatus::InBlock => {
                // READ COMMITTED takes a new snapshot per statement — until
                // the block first writes: its own writes are relative to the
                // snapshot they were made against, so it keeps reading that
                // one (a concurrent change to the same rows then fails its
                // COMMIT with 40001 rather than showing two versions of a row).
                let keep = t.snapshot_pinned && (t.isolation == Isolation::RepeatableRead || t.has_writes());
                if !keep {
                    t.snapshot = snapshot;
                }
                t.snapshot_pinned = true;
            }
        }
        Ok(())
    }

    /// After a statement: commit an autocommit statement's writes, or
    /// discard them if it failed; a failure inside a block fails the block.
    pub(super) async fn end_statement(&self, result: Result<Output>) -> Result<Output> {
        if self.transaction_status() != TxnStatus::Idle {
            return match result {
                Ok(Output::Rows { schema, stream, tag }) => {
                    // An error while the rows stream fails the block too.
                    let txn = self.txn.clone();
                    let stream = stream.inspect_err(move |_| {
                        let mut t = txn.lock().unwrap();
                        if t.status == TxnStatus::InBlock {
                            t.status = TxnStatus::Failed;
                        }
                    });
                    let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), stream));
                    Ok(Output::Rows { schema, stream, tag })
                }
                other => other.map_err(|e| self.statement_failed(e)),
            };
        }
        let writes = self.txn.lock().unwrap().has_writes();
        let committed = match result {
            // A read-only statement has nothing to commit.
            Ok(out) if !writes => Ok(out),
            Ok(out) => self.commit_detached().await.map(|_| out),
            Err(e) => Err(e),
        };
        self.txn.lock().unwrap().reset();
        committed
    }

    /// Commit so that, once started, a commit finishes even if the
    /// statement is cancelled or times out, or its client goes away — a WAL
    /// record must never be written without being applied.
    async fn commit_detached(&self) -> Result<()> {
        let storage = self.engine.storage.clone();
        let txn = self.txn.clone();
        FinishOnDrop::new(async move { storage.commit(&txn).await })
            .await
            .map_err(|_| TarnError::internal("the commit panicked"))?
    }

    /// A statement was stopped (cancel, statement_timeout) before it
    /// finished: inside a block the block fails; an autocommit statement's
    /// writes are dropped (unless its commit had started, which finishes).
    pub fn statement_interrupted(&self) {
        let mut t = self.txn.lock().unwrap();
        match t.status {
            TxnStatus::InBlock => t.status = TxnStatus::Failed,
            TxnStatus::Idle => t.reset(),
            TxnStatus::Failed => {}
        }
    }

    /// The extended protocol's check in a failed block: PostgreSQL refuses
    /// Parse and Bind of any statement but one that ends the block, and a
    /// Describe of anything that returns rows, with 25P02 before any of the
    /// message's work (so a bad parameter in a failed block is 25P02 too).
    pub fn refuse_in_failed_block(&self) -> Result<()> {
        match self.transaction_status() {
            TxnStatus::Failed => Err(aborted()),
            _ => Ok(()),
        }
    }

    /// Note a statement's failure: inside a block, the block fails.
    pub(super) fn statement_failed(&self, e: TarnError) -> TarnError {
        let mut t = self.txn.lock().unwrap();
        if t.status == TxnStatus::InBlock {
            t.status = TxnStatus::Failed;
        }
        e
    }

    pub(super) async fn transaction_command(&self, cmd: TxnCommand) -> Result<Output> {
        let status = self.transaction_status();
        if status == TxnStatus::Failed && !cmd.ends_block() {
            return Err(aborted());
        }
        match cmd {
            TxnCommand::Begin { isolation } => {
                // BEGIN inside a block is a warning in PostgreSQL, not an error.
                if status == TxnStatus::Idle {
                    let seq = self.engine.storage.snapshot().seq;
                    self.engine.storage.register_reader(seq);
                    let mut t = self.txn.lock().unwrap();
                    t.reset();
                    t.status = TxnStatus::InBlock;
                    t.isolation = isolation.unwrap_or_else(|| self.settings().default_isolation());
                    t.registered_seq = Some(seq);
                }
                Ok(tag("BEGIN"))
            }
            TxnCommand::Commit => {
                let result = match status {
                    TxnStatus::InBlock => self.commit_detached().await.map(|_| tag("COMMIT")),
                    // COMMIT of a failed block rolls it back, as PostgreSQL does.
                    TxnStatus::Failed => Ok(tag("ROLLBACK")),
                    TxnStatus::Idle => Ok(tag("COMMIT")),
                };
                self.end_block();
                result
            }
            TxnCommand::Rollback => {
                self.end_block();
                Ok(tag("ROLLBACK"))
            }
            TxnCommand::Savepoint(name) => {
                let mut t = self.block("SAVEPOINT")?;
                let writes = t.writes.clone();
                t.savepoints.push((name, writes));
                Ok(tag("SAVEPOINT"))
            }
            TxnCommand::RollbackTo(name) => {
                let mut t = self.block("ROLLBACK TO SAVEPOINT")?;
                let at = find_savepoint(&t.savepoints, &name)?;
                // The savepoint stays; later ones go.
                t.savepoints.truncate(at + 1);
                t.writes = t.savepoints[at].1.clone();
                t.status = TxnStatus::InBlock;
                Ok(tag("ROLLBACK"))
            }
            TxnCommand::Release(name) => {
                let mut t = self.block("RELEASE SAVEPOINT")?;
                let at = find_savepoint(&t.savepoints, &name)?;
                t.savepoints.truncate(at);
                Ok(tag("RELEASE"))
            }
            TxnCommand::SetIsolation(isolation) => {
                let mut t = self.txn.lock().unwrap();
                if t.status == TxnStatus::Idle {
                    // PostgreSQL warns and does nothing outside a block.
                    return Ok(tag("SET"));
                }
                if t.snapshot_pinned {
                    return Err(TarnError::new(
                        sqlstate::ACTIVE_SQL_TRANSACTION,
                        "SET TRANSACTION ISOLATION LEVEL must be called before any query",
                    ));
                }
                t.isolation = isolation;
                Ok(tag("SET"))
            }
        }
    }

    /// The transaction state, if a block is open (savepoint commands).
    fn block(&self, what: &str) -> Result<std::sync::MutexGuard<'_, crate::storage::txn::TxnState>> {
        let t = self.txn.lock().unwrap();
        if t.status == TxnStatus::Idle {
            return Err(outside_block(what));
        }
        Ok(t)
    }

    /// Leave the block, discarding whatever was not committed.
    fn end_block(&self) {
        let mut t = self.txn.lock().unwrap();
        if let Some(seq) = t.registered_seq.take() {
            self.engine.storage.unregister_reader(seq);
        }
        t.reset();
        t.status = TxnStatus::Idle;
        drop(t);
        self.cursors.transaction_ended();
    }
}

fn outside_block(what: &str) -> TarnError {
    TarnError::new(sqlstate::NO_ACTIVE_SQL_TRANSACTION, format!("{what} can only be used in transaction blocks"))
}

fn find_savepoint(savepoints: &[(String, std::collections::BTreeMap<u64, crate::storage::txn::TableWrites>)], name: &str) -> Result<usize> {
    savepoints
        .iter()
        .rposition(|(n, _)| n == name)
        .ok_or_else(|| TarnError::new(sqlstate::INVALID_SAVEPOINT_SPECIFICATION, format!("savepoint \"{name}\" does not exist")))
}

impl Drop for Session {
    fn drop(&mut self) {
        // A connection that goes away inside a block rolls it back.
        if let Ok(mut t) = self.txn.lock() {
            if let Some(seq) = t.registered_seq.take() {
                self.engine.storage.unregister_reader(seq);
            }
        }
    }
}
