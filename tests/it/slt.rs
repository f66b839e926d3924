//! Runs every `sql-tests/**/*.slt` file over the wire against a fresh Tarn
//! server (one per file), using the `sqllogictest` crate's parser and runner
//! with a tokio-postgres connection speaking the simple query protocol.
//!
//! Every failing record in every file is reported, not just the first.
//! `statement error (23505)` asserts a SQLSTATE.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Record, Runner};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::harness::TestServer;

struct Tarn {
    client: Client,
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
        let msgs = self.client.simple_query(sql).await?;
        let mut rows = vec![];
        let mut width = None;
        let mut last_count = 0;
        for m in msgs {
            match m {
                SimpleQueryMessage::RowDescription(cols) => width = Some(cols.len()),
                SimpleQueryMessage::Row(r) => {
                    width = Some(r.len());
                    rows.push(
                        (0..r.len())
                            .map(|i| match r.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(v) => v.to_string(),
                            })
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => last_count = n,
                _ => {}
            }
        }
        Ok(match width {
            Some(w) => DBOutput::Rows { types: vec![DefaultColumnType::Any; w], rows },
            None => DBOutput::StatementComplete(last_count),
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
async fn run_file(path: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let conn = server.conn_string();
    let mut runner = Runner::new(move || {
        let conn = conn.clone();
        async move {
            let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok::<_, SltError>(Tarn { client })
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

#[tokio::test]
async fn sql_tests_pass_over_the_simple_protocol() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql-tests");
    let mut files = vec![];
    slt_files(&root, &mut files);
    assert!(!files.is_empty(), "no .slt files under {}", root.display());
    let mut report = vec![];
    for f in &files {
        for failure in run_file(f).await {
            report.push(failure);
        }
    }
    eprintln!("sqllogictest: {} files, {} failing records", files.len(), report.len());
    assert!(report.is_empty(), "{} failing records:\n\n{}", report.len(), report.join("\n\n"));
}
