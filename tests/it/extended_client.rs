//! A minimal PostgreSQL client for the extended query protocol with text
//! results, built on `postgres-protocol`'s codecs.
//!
//! Why not tokio-postgres: it always asks for binary results, and the
//! sqllogictest files expect PostgreSQL's text output — the same text the
//! simple protocol returns — so the same files can check both protocols.
//! (sqllogictest-engines' `postgres-extended` engine has the same limit: it
//! reads binary values through tokio-postgres, renders them with Rust's
//! `Display`, and panics on types it does not know, such as uuid or json.)
//! Binary results are covered by the real-driver suites instead.
//!
//! Each query is one Parse / Bind (all results text) / Describe portal /
//! Execute / Sync round trip on the unnamed statement and portal, as drivers
//! send an unparameterised query.

use bytes::{Buf, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::{backend, frontend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one query returned.
pub struct QueryResult {
    /// The number of columns, if the statement returns rows.
    pub width: Option<usize>,
    pub rows: Vec<Vec<Option<String>>>,
    /// The CommandComplete tag (`INSERT 0 3`, `SELECT 2`, …).
    pub tag: String,
}

/// An ErrorResponse.
#[derive(Debug)]
pub struct ServerError {
    pub code: String,
    pub message: String,
}

pub struct ExtendedClient {
    stream: TcpStream,
    read: BytesMut,
}

impl ExtendedClient {
    /// Connect with trust authentication.
    pub async fn connect(addr: std::net::SocketAddr, user: &str, database: &str) -> std::io::Result<ExtendedClient> {
        let stream = TcpStream::connect(addr).await?;
        let mut client = ExtendedClient { stream, read: BytesMut::new() };
        let mut buf = BytesMut::new();
        frontend::startup_message([("user", user), ("database", database)], &mut buf)?;
        client.stream.write_all(&buf).await?;
        loop {
            match client.next_message().await? {
                backend::Message::ReadyForQuery(_) => return Ok(client),
                backend::Message::ErrorResponse(e) => {
                    let e = server_error(&e);
                    return Err(std::io::Error::other(format!("{}: {}", e.code, e.message)));
                }
                backend::Message::AuthenticationOk
                | backend::Message::ParameterStatus(_)
                | backend::Message::BackendKeyData(_)
                | backend::Message::NoticeResponse(_) => {}
                _ => return Err(std::io::Error::other("unexpected message during startup (only trust auth is supported)")),
            }
        }
    }

    /// Run one statement through the extended protocol.
    pub async fn query(&mut self, sql: &str) -> std::io::Result<Result<QueryResult, ServerError>> {
        let mut buf = BytesMut::new();
        frontend::parse("", sql, std::iter::empty(), &mut buf)?;
        frontend::bind(
            "",
            "",
            std::iter::empty::<i16>(),
            std::iter::empty::<Option<&[u8]>>(),
            |_: Option<&[u8]>, _: &mut BytesMut| -> Result<postgres_protocol::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                unreachable!("no parameters")
            },
            [0i16], // every result column as text
            &mut buf,
        )
        .map_err(|_| std::io::Error::other("bind encoding"))?;
        frontend::describe(b'P', "", &mut buf)?;
        frontend::execute("", 0, &mut buf)?;
        frontend::sync(&mut buf);
        self.stream.write_all(&buf).await?;

        let mut result = QueryResult { width: None, rows: vec![], tag: String::new() };
        let (mut error, mut parsed) = (None, false);
        loop {
            match self.next_message().await? {
                backend::Message::ParseComplete => parsed = true,
                backend::Message::RowDescription(d) => {
                    result.width = Some(d.fields().count().map_err(std::io::Error::other)?);
                }
                backend::Message::DataRow(row) => {
                    let data = row.buffer();
                    let values = row
                        .ranges()
                        .map(|r| Ok(r.map(|r| String::from_utf8_lossy(&data[r]).into_owned())))
                        .collect()
                        .map_err(std::io::Error::other)?;
                    result.rows.push(values);
                }
                backend::Message::CommandComplete(c) => result.tag = c.tag().map_err(std::io::Error::other)?.to_string(),
                backend::Message::ErrorResponse(e) => error = Some(server_error(&e)),
                backend::Message::ReadyForQuery(_) => break,
                // BindComplete, NoData, EmptyQueryResponse,
                // notices, parameter changes, PortalSuspended (no row limit).
                _ => {}
            }
        }
        Ok(match error {
            Some(e) => Err(e),
            None if !parsed => return Err(std::io::Error::other("the server never answered Parse")),
            None => Ok(result),
        })
    }

    /// Send `messages` (frontend messages the caller encoded, ending in
    /// Sync) and name every reply up to ReadyForQuery: `ParseComplete`,
    /// `BindComplete`, `DataRow`, `CommandComplete`, `Error 26000: …`, ….
    pub async fn round_trip(&mut self, messages: &[u8]) -> std::io::Result<Vec<String>> {
        self.stream.write_all(messages).await?;
        let mut replies = vec![];
        loop {
            let reply = match self.next_message().await? {
                backend::Message::ReadyForQuery(_) => return Ok(replies),
                backend::Message::ParseComplete => "ParseComplete".to_string(),
                backend::Message::BindComplete => "BindComplete".to_string(),
                backend::Message::DataRow(_) => "DataRow".to_string(),
                backend::Message::CommandComplete(_) => "CommandComplete".to_string(),
                backend::Message::RowDescription(_) => "RowDescription".to_string(),
                backend::Message::ParameterDescription(_) => "ParameterDescription".to_string(),
                backend::Message::NoData => "NoData".to_string(),
                backend::Message::ErrorResponse(e) => {
                    let e = server_error(&e);
                    format!("Error {}: {}", e.code, e.message)
                }
                _ => "other".to_string(),
            };
            replies.push(reply);
        }
    }

    async fn next_message(&mut self) -> std::io::Result<backend::Message> {
        loop {
            if let Some(message) = backend::Message::parse(&mut self.read)? {
                return Ok(message);
            }
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "server closed the connection"));
            }
        }
    }
}

impl Drop for ExtendedClient {
    fn drop(&mut self) {
        // Terminate politely if the socket will take it without waiting.
        let mut buf = BytesMut::new();
        frontend::terminate(&mut buf);
        let _ = self.stream.try_write(buf.chunk());
    }
}

fn server_error(e: &backend::ErrorResponseBody) -> ServerError {
    let mut out = ServerError { code: String::new(), message: String::new() };
    let mut fields = e.fields();
    while let Ok(Some(f)) = fields.next() {
        let value = String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'C' => out.code = value,
            b'M' => out.message = value,
            _ => {}
        }
    }
    out
}
