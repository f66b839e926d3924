//! COPY sub-protocol: CopyInResponse and the CopyData / CopyDone / CopyFail
//! a client then sends (`COPY … FROM STDIN`), and CopyOutResponse, one
//! CopyData per row and CopyDone (`COPY … TO STDOUT`). The session does the
//! work; this module only moves messages.

use std::fmt::Debug;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::copy::CopyHandler;
use pgwire::api::results::CopyResponse;
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail, CopyOutResponse};
use pgwire::messages::response::CommandComplete;

use super::error::{error_info, to_pgwire};
use super::query::{QueryHandler, session_of, wire_status};
use crate::engine::execute::Output;
use crate::error::Result;

/// The CopyInResponse of `COPY … FROM STDIN` (text format, `columns` wide).
pub fn copy_in_response(columns: usize) -> CopyResponse {
    CopyResponse::new(0, columns, futures::stream::empty())
}

/// The CopyOutResponse of `COPY … TO STDOUT` for the extended protocol,
/// where pgwire sends it.
pub fn copy_out_response(columns: usize, rows: BoxStream<'static, Result<Vec<u8>>>) -> CopyResponse {
    CopyResponse::new(0, columns, rows.map(|line| line.map(|l| CopyData::new(Bytes::from(l))).map_err(to_pgwire)))
}

/// Send `COPY … TO STDOUT` over the simple protocol. An error mid-stream is
/// an ErrorResponse after the rows sent, as PostgreSQL does (pgwire's own
/// sender would answer with CopyFail, a frontend message). Returns false if
/// the statement failed.
pub async fn send_copy_out<C>(client: &mut C, columns: usize, mut rows: BoxStream<'static, Result<Vec<u8>>>) -> PgWireResult<bool>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    client.send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(0, columns as i16, vec![0; columns]))).await?;
    let mut count = 0u64;
    while let Some(line) = rows.next().await {
        match line {
            Ok(line) => {
                client.feed(PgWireBackendMessage::CopyData(CopyData::new(Bytes::from(line)))).await?;
                count += 1;
            }
            Err(e) => {
                client.feed(PgWireBackendMessage::ErrorResponse(error_info(e).into())).await?;
                return Ok(false);
            }
        }
    }
    client.feed(PgWireBackendMessage::CopyDone(CopyDone::new())).await?;
    client.feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(format!("COPY {count}")))).await?;
    Ok(true)
}

#[async_trait]
impl CopyHandler for QueryHandler {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        session_of(self.engine(), client).copy_data(&copy_data.data).await;
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(self.engine(), client);
        let result = session.copy_done().await;
        client.set_transaction_status(wire_status(&session));
        match result {
            Ok(Output::Command { tag, .. }) => {
                client.send(PgWireBackendMessage::CommandComplete(CommandComplete::new(tag))).await?;
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(to_pgwire(e)),
        }
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(self.engine(), client);
        let e = session.copy_fail(&fail.message).await;
        client.set_transaction_status(wire_status(&session));
        to_pgwire(e)
    }
}

/// After a simple query that started `COPY … FROM STDIN`: the connection
/// waits for CopyData rather than sending ReadyForQuery.
pub fn enter_copy_in<C: ClientInfo>(client: &mut C) {
    client.set_state(PgWireConnectionState::CopyInProgress(false));
}
