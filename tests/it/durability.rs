//! Durability: acknowledged writes survive restarts and `kill -9`, whether
//! they were still in the WAL or already flushed into Lance.

use crate::harness::{TestServer, rows, s};

#[tokio::test]
async fn tables_and_rows_survive_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let server = TestServer::start(dir.path());
        let c = server.connect().await;
        c.batch_execute("CREATE TABLE a (id bigint PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'one'), (2, 'two')").await.unwrap();
        c.batch_execute("CREATE TABLE gone (x int); DROP TABLE gone").await.unwrap();
        server.stop(); // flushes into Lance
    }
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert_eq!(rows(&c, "SELECT id, v FROM a ORDER BY id").await, vec![vec![s("1"), s("one")], vec![s("2"), s("two")]]);
    assert!(c.simple_query("SELECT * FROM gone").await.is_err());
    // The primary key is still enforced against flushed rows.
    let e = c.simple_query("INSERT INTO a VALUES (2, 'again')").await.unwrap_err();
    assert_eq!(e.code().unwrap().code(), "23505");
}

#[tokio::test]
async fn acknowledged_inserts_survive_kill_9_from_wal_and_from_lance() {
    let dir = tempfile::tempdir().unwrap();
    // Flush every 50 rows so some rows are in Lance and some only in the WAL.
    let args = ["--flush-rows", "50", "--flush-secs", "3600"];
    let mut expected_sum = 0i64;
    {
        let server = TestServer::start_with(dir.path(), &args);
        let c = server.connect().await;
        c.batch_execute("CREATE TABLE k (id bigint PRIMARY KEY, city text NOT NULL)").await.unwrap();
        for i in 1..=120i64 {
            c.execute("INSERT INTO k VALUES ($1, 'c')", &[&i]).await.unwrap();
            expected_sum += i;
            if i == 60 {
                // Give the flusher (500 ms tick) time to fold the first rows into Lance.
                tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            }
        }
        server.kill9();
    }
    assert!(
        std::fs::read_dir(dir.path().join("tables")).unwrap().next().is_some(),
        "some rows should have been flushed into a Lance dataset before the kill"
    );
    let check = |c: tokio_postgres::Client, n: usize, sum: i64| async move {
        assert_eq!(
            rows(&c, "SELECT count(*), sum(id), count(DISTINCT id) FROM k").await,
            vec![vec![Some(n.to_string()), Some(sum.to_string()), Some(n.to_string())]],
        );
        c
    };
    // Round 1: everything acknowledged before the kill is there, once.
    let server = TestServer::start_with(dir.path(), &args);
    let c = check(server.connect().await, 120, expected_sum).await;
    c.execute("INSERT INTO k VALUES ($1, 'z')", &[&1000i64]).await.unwrap();
    server.kill9();
    // Round 2: recovery of a recovered directory loses and duplicates nothing.
    let server = TestServer::start_with(dir.path(), &args);
    check(server.connect().await, 121, expected_sum + 1000).await;
}

#[tokio::test]
async fn a_second_server_cannot_open_the_same_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = TestServer::start(dir.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tarn"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another Tarn server"));
}
