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

fn format_code(binary: bool) -> i8 {
    i8::from(binary)
}

/// The CopyInResponse of `COPY … FROM STDIN` (`columns` wide).
pub fn copy_in_response(columns: usize, binary: bool) -> CopyResponse {
    CopyResponse::new(format_code(binary), columns, futures::stream::empty())
}

/// The CopyOutResponse of `COPY … TO STDOUT` for the extended protocol,
/// where pgwire sends it. (pgwire counts every CopyData but the binary
/// trailer for the tag, so a binary COPY of no rows — a header alone — is
/// tagged `COPY 1` there; the simple protocol's sender below counts right.)
pub fn copy_out_response(columns: usize, binary: bool, rows: BoxStream<'static, Result<Vec<u8>>>) -> CopyResponse {
    CopyResponse::new(format_code(binary), columns, rows.map(|line| line.map(|l| CopyData::new(Bytes::from(l))).map_err(to_pgwire)))
}

/// Whether a COPY TO chunk carries a row (not the binary header alone or the trailer).
fn is_row(chunk: &[u8]) -> bool {
    let header_alone = chunk.len() == 19 && chunk.starts_with(crate::types::copy_binary::SIGNATURE);
    !(header_alone || chunk == crate::types::copy_binary::TRAILER)
}

/// Send `COPY … TO STDOUT` over the simple protocol. An error mid-stream is
/// an ErrorResponse after the rows sent, as PostgreSQL does (pgwire's own
/// sender would answer with CopyFail, a frontend message). Returns false if
/// the statement failed.
pub async fn send_copy_out<C>(client: &mut C, columns: usize, binary: bool, mut rows: BoxStream<'static, Result<Vec<u8>>>) -> PgWireResult<bool>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let format = format_code(binary);
    client.send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(format, columns as i16, vec![i16::from(format); columns]))).await?;
    let mut count = 0u64;
    while let Some(line) = rows.next().await {
        match line {
            Ok(line) => {
                count += u64::from(is_row(&line));
                client.feed(PgWireBackendMessage::CopyData(CopyData::new(Bytes::from(line)))).await?;
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
