//! Fragment hygiene: flushes, compaction and old-version cleanup keep a
//! table's Lance dataset small, never under a running reader's feet.

use std::path::{Path, PathBuf};

use crate::harness::{TestServer, rows, s, sqlstate};

/// The one table directory of a data directory.
fn table_dir(data: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(data.join("tables")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

/// (fragments, versions) of a table's Lance dataset, read by Lance itself.
async fn lance_shape(dir: &Path) -> (usize, usize) {
    let ds = lance::Dataset::open(dir.to_str().unwrap()).await.unwrap();
    (ds.count_fragments(), ds.versions().await.unwrap().len())
}

#[tokio::test]
async fn many_single_row_inserts_leave_few_fragments_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    // Flush often, so the load makes hundreds of Lance commits.
    let server = TestServer::start_with(dir.path(), &["--flush-rows", "200", "--flush-secs", "1"]);
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE events (id bigint PRIMARY KEY, payload text)").await.unwrap();
    let clients = 8i64;
    let total = 100_000i64;
    let mut tasks = vec![];
    for k in 0..clients {
        let client = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let insert = client.prepare("INSERT INTO events VALUES ($1, $2)").await.unwrap();
            let mut id = k;
            while id < total {
                client.execute(&insert, &[&id, &format!("event {id}")]).await.unwrap();
                id += clients;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let expected = vec![vec![s(&total.to_string()), s(&(total * (total - 1) / 2).to_string())]];
    assert_eq!(rows(&c, "SELECT count(*), sum(id) FROM events").await, expected);

    // Let the flusher fold the tail, then look at what Lance holds.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (fragments, versions) = lance_shape(&table_dir(dir.path())).await;
    assert!(fragments <= 24, "{fragments} fragments after 100k single-row inserts");
    assert!(versions <= 24, "{versions} versions kept after 100k single-row inserts");

    // VACUUM folds everything into one fragment and keeps one version.
    c.batch_execute("VACUUM events").await.unwrap();
    assert_eq!(lance_shape(&table_dir(dir.path())).await, (1, 1));
    assert_eq!(rows(&c, "SELECT count(*), sum(id) FROM events").await, expected);

    // And the table survives a restart in that shape.
    drop(c);
    server.stop();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert_eq!(rows(&c, "SELECT count(*), sum(id) FROM events").await, expected);
    c.batch_execute("INSERT INTO events VALUES (-1, 'after restart')").await.unwrap();
    assert_eq!(sqlstate(&c, "INSERT INTO events VALUES (5, 'duplicate')").await, "23505");
}

#[tokio::test]
async fn cleanup_spares_versions_a_running_transaction_reads() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &["--flush-rows", "1", "--flush-secs", "1"]);
    let writer = server.connect().await;
    writer.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v int)").await.unwrap();
    writer.batch_execute("INSERT INTO t SELECT i, 0 FROM generate_series(1, 1000) AS g(i)").await.unwrap();
    writer.batch_execute("VACUUM t").await.unwrap();

    // A REPEATABLE READ transaction reads the flushed version...
    let reader = server.connect().await;
    reader.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ").await.unwrap();
    assert_eq!(rows(&reader, "SELECT sum(v) FROM t").await, vec![vec![s("0")]]);

    // ... while every row is rewritten, flushed, compacted and cleaned up.
    for round in 1..=3 {
        writer.execute("UPDATE t SET v = v + 1", &[]).await.unwrap();
        writer.batch_execute("VACUUM t").await.unwrap();
        assert_eq!(rows(&writer, "SELECT sum(v) FROM t").await, vec![vec![s(&(1000 * round).to_string())]]);
    }
    assert_eq!(lance_shape(&table_dir(dir.path())).await.0, 1);

    // The old version's files are still there for the reader.
    assert_eq!(rows(&reader, "SELECT sum(v), count(*) FROM t").await, vec![vec![s("0"), s("1000")]]);
    reader.batch_execute("COMMIT").await.unwrap();

    // Once it is done, the next cleanup removes that version too.
    writer.batch_execute("VACUUM t").await.unwrap();
    assert_eq!(lance_shape(&table_dir(dir.path())).await, (1, 1));
    assert_eq!(sqlstate(&writer, "BEGIN; VACUUM t").await, "25001");
}
