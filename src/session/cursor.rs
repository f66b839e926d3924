//! SQL cursors: `DECLARE name CURSOR [WITH HOLD] FOR query`, `FETCH` and
//! `CLOSE`, as psycopg's and psycopg2's named cursors use them.
//!
//! A cursor holds its query's running record-batch stream (which reads the
//! snapshot the query was planned against), so a FETCH pulls only the rows
//! it returns and memory stays bounded whatever the result size. Cursors
//! without HOLD close when their transaction ends; a HOLD cursor outlives
//! the commit (still reading its snapshot) until CLOSE or disconnect.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use super::Session;
use crate::engine::execute::Output;
use crate::error::{Result, TarnError, sqlstate};
use crate::storage::txn::TxnStatus;

/// How many rows a FETCH asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FetchCount {
    Rows(u64),
    All,
}

struct Cursor {
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
    /// Rows read from the stream but not yet fetched.
    pending: Option<RecordBatch>,
    hold: bool,
}

/// A session's open cursors, by name.
#[derive(Default)]
pub struct Cursors {
    open: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Cursor>>>>,
}

fn no_such_cursor(name: &str) -> TarnError {
    TarnError::new(sqlstate::INVALID_CURSOR_NAME, format!("cursor \"{name}\" does not exist"))
}

impl Cursors {
    /// The result columns of an open cursor (for Describe).
    pub fn schema(&self, name: &str) -> Result<SchemaRef> {
        let cursor = self.open.lock().unwrap().get(name).cloned().ok_or_else(|| no_such_cursor(name))?;
        let schema = cursor.try_lock().map(|c| c.schema.clone()).map_err(|_| TarnError::new(sqlstate::OBJECT_IN_USE, format!("cursor \"{name}\" is in use")))?;
        Ok(schema)
    }

    /// The transaction ended: cursors without HOLD close.
    pub fn transaction_ended(&self) {
        self.open.lock().unwrap().retain(|_, c| c.try_lock().map(|c| c.hold).unwrap_or(true));
    }

    pub fn close_all(&self) {
        self.open.lock().unwrap().clear();
    }
}

impl Session {
    /// `DECLARE name CURSOR FOR …`: `rows` is the query's started output.
    pub async fn declare_cursor(&self, name: String, hold: bool, rows: Output) -> Result<Output> {
        if !hold && self.transaction_status() == TxnStatus::Idle {
            return Err(TarnError::new(sqlstate::NO_ACTIVE_SQL_TRANSACTION, "DECLARE CURSOR can only be used in transaction blocks"));
        }
        let Output::Rows { schema, stream, .. } = rows else {
            return Err(TarnError::new(sqlstate::INVALID_CURSOR_DEFINITION, "cursor query must return rows"));
        };
        let mut open = self.cursors.open.lock().unwrap();
        if open.contains_key(&name) {
            return Err(TarnError::new(sqlstate::DUPLICATE_CURSOR, format!("cursor \"{name}\" already exists")));
        }
        open.insert(name, Arc::new(tokio::sync::Mutex::new(Cursor { schema, stream, pending: None, hold })));
        Ok(Output::tag("DECLARE CURSOR"))
    }

    /// `FETCH [FORWARD] n FROM name`: the next `count` rows.
    pub async fn fetch(&self, name: &str, count: FetchCount) -> Result<Output> {
        let cursor = self.cursors.open.lock().unwrap().get(name).cloned().ok_or_else(|| no_such_cursor(name))?;
        let mut c = cursor.lock().await;
        let want = match count {
            FetchCount::Rows(n) => n as usize,
            FetchCount::All => usize::MAX,
        };
        let mut got: Vec<RecordBatch> = vec![];
        let mut n = 0usize;
        while n < want {
            let batch = match c.pending.take() {
                Some(b) => b,
                None => match c.stream.next().await {
                    Some(b) => b?,
                    None => break,
                },
            };
            let take = batch.num_rows().min(want - n);
            if take < batch.num_rows() {
                c.pending = Some(batch.slice(take, batch.num_rows() - take));
            }
            n += take;
            got.push(batch.slice(0, take));
        }
        let schema = c.schema.clone();
        let stream = futures::stream::iter(got.into_iter().map(Ok));
        Ok(Output::Rows { schema: schema.clone(), stream: Box::pin(RecordBatchStreamAdapter::new(schema, stream)), tag: "FETCH" })
    }

    /// `CLOSE name` / `CLOSE ALL`.
    pub fn close_cursor(&self, name: Option<&str>) -> Result<Output> {
        let mut open = self.cursors.open.lock().unwrap();
        match name {
            None => open.clear(),
            Some(name) => {
                open.remove(name).ok_or_else(|| no_such_cursor(name))?;
            }
        }
        Ok(Output::tag("CLOSE CURSOR"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_cursors_name_the_cursor() {
        let c = Cursors::default();
        let e = c.schema("c1").unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (sqlstate::INVALID_CURSOR_NAME, "cursor \"c1\" does not exist"));
    }
}
