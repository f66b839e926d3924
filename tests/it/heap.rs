//! Heap tables (`CREATE TABLE … USING heap`): rows kept in memory, made
//! durable by the WAL and an Arrow checkpoint, recovered exactly after
//! `kill -9` whether they were checkpointed or only in the WAL.

use crate::harness::{TestServer, rows, s, sqlstate};

#[tokio::test]
async fn heap_rows_survive_kill_9_from_checkpoint_and_wal() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--flush-rows", "50", "--flush-secs", "3600"];
    let server = TestServer::start_with(dir.path(), &args);
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE h (id bigint PRIMARY KEY, n serial, v text DEFAULT 'new') USING heap").await.unwrap();
    let checkpoint = dir.path().join("tables/1.heap/rows.arrow");
    for i in 1..=120i64 {
        c.execute("INSERT INTO h (id) VALUES ($1)", &[&i]).await.unwrap();
        if i == 60 {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !checkpoint.exists() {
                assert!(std::time::Instant::now() < deadline, "no heap checkpoint within 60s");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    // Changes to checkpointed rows that only the WAL holds.
    c.batch_execute("UPDATE h SET v = 'old' WHERE id <= 10; DELETE FROM h WHERE id BETWEEN 11 AND 20").await.unwrap();
    drop(c);
    server.kill9();

    let expected = vec![vec![s("110"), s("7105"), s("10"), s("7105")]];
    let check = "SELECT count(*), sum(id), count(*) FILTER (WHERE v = 'old'), sum(n) FROM h";
    let server = TestServer::start_with(dir.path(), &args);
    let c = server.connect().await;
    assert_eq!(rows(&c, check).await, expected);
    // Keys are enforced against recovered rows; serial resumes above them.
    assert_eq!(sqlstate(&c, "INSERT INTO h (id) VALUES (5)").await, "23505");
    assert_eq!(rows(&c, "INSERT INTO h (id) VALUES (1000) RETURNING n").await, vec![vec![s("122")]]);
    // VACUUM checkpoints everything; a second crash loses and repeats nothing.
    c.batch_execute("VACUUM h; DELETE FROM h WHERE id = 1000").await.unwrap();
    drop(c);
    server.kill9();
    let server = TestServer::start_with(dir.path(), &args);
    let c = server.connect().await;
    assert_eq!(rows(&c, check).await, expected);
    // Heap tables have no Lance files, and refuse Lance indexes.
    assert!(!dir.path().join("tables/1.lance").exists());
    assert_eq!(sqlstate(&c, "CREATE INDEX ON h (v)").await, "0A000");
}
