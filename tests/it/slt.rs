//! Runs every `sql-tests/**/*.slt` file over the wire against a fresh Tarn
//! server (one per file), using the `sqllogictest` crate's parser and runner,
//! twice: over the simple query protocol (tokio-postgres) and over the
//! extended protocol with text results (`extended_client`). The files expect
//! the same output from both.
//!
//! Every failing record in every file is reported, not just the first.
//! `statement error (23505)` asserts a SQLSTATE.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Record, Runner};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::extended_client::ExtendedClient;
use crate::harness::TestServer;

/// A connection speaking one of the two query protocols.
enum Tarn {
    Simple(Client),
    Extended(ExtendedClient),
}

#[derive(Clone, Copy, Debug)]
enum Protocol {
    Simple,
    Extended,
}

#[derive(Debug)]
struct SltError {
    message: String,
    code: Option<String>,
}

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(c) => write!(f, "{} (SQLSTATE {c})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SltError {}

impl From<tokio_postgres::Error> for SltError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => SltError { message: db.message().to_string(), code: Some(db.code().code().to_string()) },
            None => SltError { message: e.to_string(), code: None },
        }
    }
}

#[async_trait]
impl AsyncDB for Tarn {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let (width, rows, tag) = match self {
            Tarn::Simple(client) => simple_query(client, sql).await?,
            Tarn::Extended(client) => {
                let result = client
                    .query(sql)
                    .await
                    .map_err(|e| SltError { message: e.to_string(), code: None })?
                    .map_err(|e| SltError { message: e.message, code: Some(e.code) })?;
                (result.width, result.rows, result.tag)
            }
        };
        let rows = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| match v.as_deref() {
                        None => "NULL".to_string(),
                        Some("") => "(empty)".to_string(),
                        Some(v) => v.to_string(),
                    })
                    .collect()
            })
            .collect();
        Ok(match width {
            Some(w) => DBOutput::Rows { types: vec![DefaultColumnType::Any; w], rows },
            None => DBOutput::StatementComplete(rows_affected(&tag)),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "tarn"
    }

    fn error_sql_state(err: &SltError) -> Option<String> {
        err.code.clone()
    }
}

/// Columns (if any), rows and the last command tag of a simple query.
async fn simple_query(client: &Client, sql: &str) -> Result<(Option<usize>, Vec<Vec<Option<String>>>, String), SltError> {
    let mut rows = vec![];
    let mut width = None;
    let mut count = 0;
    for m in client.simple_query(sql).await? {
        match m {
            SimpleQueryMessage::RowDescription(cols) => width = Some(cols.len()),
            SimpleQueryMessage::Row(r) => {
                width = Some(r.len());
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
            }
            SimpleQueryMessage::CommandComplete(n) => count = n,
            _ => {}
        }
    }
    Ok((width, rows, count.to_string()))
}

/// The row count a command tag ends with (`INSERT 0 3` → 3; `BEGIN` → 0).
fn rows_affected(tag: &str) -> u64 {
    tag.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn slt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            slt_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "slt") {
            out.push(p);
        }
    }
}

/// Run one file; returns a description of each failing record.
async fn run_file(path: &Path, protocol: Protocol) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let (conn, addr) = (server.conn_string(), server.addr);
    let mut runner = Runner::new(move || {
        let conn = conn.clone();
        async move {
            Ok::<_, SltError>(match protocol {
                Protocol::Simple => {
                    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    Tarn::Simple(client)
                }
                Protocol::Extended => Tarn::Extended(
                    ExtendedClient::connect(addr, "tarn", "tarn").await.map_err(|e| SltError { message: e.to_string(), code: None })?,
                ),
            })
        }
    });
    let records = match sqllogictest::parse_file::<DefaultColumnType>(path) {
        Ok(r) => r,
        Err(e) => return vec![format!("{}: cannot parse: {e}", path.display())],
    };
    let mut failures = vec![];
    let mut ran = 0;
    for record in records {
        if matches!(record, Record::Statement { .. } | Record::Query { .. }) {
            ran += 1;
        }
        if let Err(e) = runner.run_async(record).await {
            failures.push(format!("{}: {e}", e.location()));
        }
    }
    assert!(ran > 0, "{} has no statements or queries", path.display());
    failures
}

async fn run_all(protocol: Protocol) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql-tests");
    let mut files = vec![];
    slt_files(&root, &mut files);
    assert!(!files.is_empty(), "no .slt files under {}", root.display());
    let mut report = vec![];
    for f in &files {
        for failure in run_file(f, protocol).await {
            report.push(failure);
        }
    }
    eprintln!("sqllogictest ({protocol:?} protocol): {} files, {} failing records", files.len(), report.len());
    assert!(report.is_empty(), "{} failing records ({protocol:?} protocol):\n\n{}", report.len(), report.join("\n\n"));
}

#[tokio::test]
async fn sql_tests_pass_over_the_simple_protocol() {
    run_all(Protocol::Simple).await;
}

#[tokio::test]
async fn sql_tests_pass_over_the_extended_protocol() {
    run_all(Protocol::Extended).await;
}

#[test]
fn row_counts_come_from_the_tag() {
    assert_eq!(rows_affected("INSERT 0 3"), 3);
    assert_eq!(rows_affected("UPDATE 12"), 12);
    assert_eq!(rows_affected("BEGIN"), 0);
}
