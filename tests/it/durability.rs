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
                // Wait until the flusher has folded the first rows into Lance.
                let versions = dir.path().join("tables/1.lance/_versions");
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while !versions.exists() {
                    assert!(std::time::Instant::now() < deadline, "no flush into Lance within 60s");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        server.kill9();
    }
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

#[tokio::test]
async fn concurrent_writers_lose_nothing_and_conflicts_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let setup = server.connect().await;
    setup.batch_execute("CREATE TABLE c (id bigint PRIMARY KEY, writer int NOT NULL); CREATE TABLE other (x int)").await.unwrap();
    let mut tasks = vec![];
    for w in 0..8i32 {
        let client = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            let mut dup = 0;
            for i in 0..40i64 {
                // Keys 0..300 are shared between writers, so some inserts collide.
                let id = (i * 7 + w as i64 * 13) % 300;
                match client.execute("INSERT INTO c VALUES ($1, $2)", &[&id, &w]).await {
                    Ok(1) => ok += 1,
                    Ok(n) => panic!("INSERT reported {n} rows"),
                    Err(e) if e.code().map(|c| c.code()) == Some("23505") => dup += 1,
                    Err(e) => panic!("unexpected error: {e}"),
                }
                client.execute("INSERT INTO other VALUES ($1)", &[&w]).await.unwrap();
            }
            (ok, dup)
        }));
    }
    let mut acknowledged = 0;
    for t in tasks {
        let (ok, dup) = t.await.unwrap();
        assert_eq!(ok + dup, 40);
        acknowledged += ok;
    }
    let check = |c: tokio_postgres::Client| async move {
        assert_eq!(
            rows(&c, "SELECT count(*), count(DISTINCT id) FROM c").await,
            vec![vec![Some(acknowledged.to_string()), Some(acknowledged.to_string())]]
        );
        assert_eq!(rows(&c, "SELECT count(*) FROM other").await, vec![vec![s("320")]]);
    };
    check(setup).await;
    // And every acknowledged row is still there after a crash.
    server.kill9();
    let server = TestServer::start(dir.path());
    check(server.connect().await).await;
}

#[tokio::test]
async fn a_first_flush_interrupted_before_lance_committed_is_recovered_from_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    {
        let server = TestServer::start(dir.path());
        let c = server.connect().await;
        c.batch_execute("CREATE TABLE f (id bigint PRIMARY KEY); INSERT INTO f VALUES (1), (2)").await.unwrap();
        server.kill9();
    }
    // What a crash between Lance creating its directories and committing the
    // first manifest leaves behind.
    std::fs::create_dir_all(dir.path().join("tables/1.lance/_versions")).unwrap();
    std::fs::create_dir_all(dir.path().join("tables/1.lance/data")).unwrap();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert_eq!(rows(&c, "SELECT count(*) FROM f").await, vec![vec![s("2")]]);
    server.stop(); // the flush now creates the dataset over the leftovers
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert_eq!(rows(&c, "SELECT count(*), sum(id) FROM f").await, vec![vec![s("2"), s("3")]]);
}

/// Types Lance cannot store as they are (interval) or stores tagged (uuid,
/// jsonb, arrays) come back the same from the delta, from Lance after a
/// flush, and after `kill -9` and restart — and the table stays writable.
#[tokio::test]
async fn every_type_survives_flush_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let select = "SELECT id, tm, iv, u, jb, ta, ia FROM ty ORDER BY id";
    let want = vec![
        vec![s("1"), s("03:04:05.25"), s("1 year 2 mons 3 days 04:05:06.5"), s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), s(r#"{"a": 1, "b": [true]}"#), s(r#"{a,"b c",NULL}"#), s("{1,2}")],
        vec![s("2"), None, s("-00:01:30"), None, None, s("{}"), None],
    ];
    {
        let server = TestServer::start(dir.path());
        let c = server.connect().await;
        c.batch_execute(
            "CREATE TABLE ty (id int PRIMARY KEY, tm time, iv interval, u uuid, jb jsonb, ta text[], ia bigint[]);
             INSERT INTO ty VALUES (1, '03:04:05.25', '1 year 2 mons 3 days 04:05:06.5', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{\"b\": [true], \"a\": 1}', ARRAY['a', 'b c', NULL], ARRAY[1, 2]);
             INSERT INTO ty (id, iv, ta) VALUES (2, '-00:01:30', '{}')",
        )
        .await
        .unwrap();
        assert_eq!(rows(&c, select).await, want, "from the delta");
        c.batch_execute("VACUUM ty").await.unwrap();
        assert_eq!(rows(&c, select).await, want, "from Lance");
        server.kill9();
    }
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert_eq!(rows(&c, select).await, want, "after kill -9");
    c.batch_execute("INSERT INTO ty (id, iv) VALUES (3, '2 hours')").await.unwrap();
    assert_eq!(rows(&c, "SELECT id FROM ty WHERE iv > interval '1 hour' ORDER BY id").await, vec![vec![s("1")], vec![s("3")]]);
}
