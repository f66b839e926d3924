//! Starting and stopping real Tarn servers for tests.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

/// A `tarn serve` process.
pub struct TestServer {
    child: Option<Child>,
    pub addr: SocketAddr,
}

impl TestServer {
    /// Start a server on an ephemeral port over `data_dir`.
    pub fn start(data_dir: &Path) -> TestServer {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra_args: &[&str]) -> TestServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tarn"))
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra_args)
            .env("RUST_LOG", std::env::var("TARN_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tarn");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("tarn listening on ") {
                    let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("tarn did not start within 120s")
        });
        TestServer { child: Some(child), addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn conn_string(&self) -> String {
        format!("host={} port={} user=tarn dbname=tarn", self.addr.ip(), self.addr.port())
    }

    pub async fn connect(&self) -> Client {
        let (client, conn) = tokio_postgres::connect(&self.conn_string(), NoTls).await.expect("connect to tarn");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    /// SIGKILL: no shutdown work happens.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill -TERM failed");
        let status = child.wait().unwrap();
        assert!(status.success(), "tarn exited with {status}");
    }

    /// The server process's resident memory, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb * 1024
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().unwrap().try_wait(), Ok(None))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A server over a fresh temporary data directory, and a client of it. Keep
/// the directory alive as long as the server.
pub async fn fresh() -> (tempfile::TempDir, TestServer, Client) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let client = server.connect().await;
    (dir, server, client)
}

/// A non-NULL text cell, for comparing with [`rows`].
pub fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// Run a simple query and return its rows as text (NULL as None).
pub async fn rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let msgs = client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    msgs.into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect()
}

/// The QUERY PLAN lines of `EXPLAIN sql`, joined.
pub async fn plan(client: &Client, sql: &str) -> String {
    rows(client, &format!("EXPLAIN {sql}")).await.into_iter().map(|r| r[0].clone().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The SQLSTATE of a failing statement.
pub async fn sqlstate(client: &Client, sql: &str) -> String {
    match client.simple_query(sql).await {
        Ok(_) => panic!("expected an error from {sql}"),
        Err(e) => e.code().map(|c| c.code().to_string()).unwrap_or_else(|| panic!("{sql}: no SQLSTATE in {e}")),
    }
}
