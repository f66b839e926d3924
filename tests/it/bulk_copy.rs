//! Bulk loads: an autocommit COPY into a Lance table without a primary key
//! writes Lance files directly and commits them at the end. Nothing of it is
//! visible (or survives a crash) before CopyDone; a failed load keeps no
//! rows and no files; changes committed before it (deletes, TRUNCATE, delta
//! inserts) stay ordered before it, across kill -9 and restart.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::Client;

use crate::harness::{TestServer, rows, s};

const TABLE: &str = "CREATE TABLE big (id bigint, name text, amount numeric(10,2), day date, flag char(3))";

/// `n` rows with ids from `first`, as COPY text.
fn data(first: u64, n: u64) -> String {
    (first..first + n).map(|i| format!("{i}\tname {i}\t{}.25\t2026-01-{:02}\tab\n", i % 1000, i % 28 + 1)).collect()
}

async fn send_all(sink: &mut std::pin::Pin<Box<tokio_postgres::CopyInSink<Bytes>>>, text: &str) {
    for chunk in text.as_bytes().chunks(65_536) {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
}

async fn copy(c: &Client, text: &str) -> Result<u64, tokio_postgres::Error> {
    let mut sink = Box::pin(c.copy_in::<_, Bytes>("COPY big FROM STDIN").await?);
    for chunk in text.as_bytes().chunks(65_536) {
        sink.send(Bytes::copy_from_slice(chunk)).await?;
    }
    sink.as_mut().finish().await
}

/// Lance data files of every table under `dir`.
fn data_files(dir: &Path) -> usize {
    let tables = dir.join("tables");
    std::fs::read_dir(tables)
        .unwrap()
        .filter_map(|t| std::fs::read_dir(t.unwrap().path().join("data")).ok())
        .map(|files| files.count())
        .sum()
}

#[tokio::test]
async fn a_bulk_copy_is_one_commit_ordered_after_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    let other = server.connect().await;
    c.batch_execute(TABLE).await.unwrap();

    // Nothing is visible before CopyDone, though most rows are written.
    let mut sink = Box::pin(c.copy_in::<_, Bytes>("COPY big FROM STDIN").await.unwrap());
    send_all(&mut sink, &data(1, 50_000)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rows(&other, "SELECT count(*) FROM big").await, vec![vec![s("0")]]);
    assert_eq!(sink.as_mut().finish().await.unwrap(), 50_000);
    assert_eq!(
        rows(&other, "SELECT count(*), sum(id), sum(amount), min(day), max(flag) FROM big").await,
        vec![vec![s("50000"), s("1250025000"), s("24987500.00"), s("2026-01-01"), s("ab ")]]
    );

    // A bad row after several batches were written: an error naming its
    // line, no rows, and the files written so far removed.
    let files = data_files(dir.path());
    let bad = format!("{}60000\tbad\tnot a number\t2026-01-01\tab\n{}", data(100_000, 40_000), data(200_000, 10));
    let e = copy(&c, &bad).await.unwrap_err();
    let e = e.as_db_error().unwrap();
    assert_eq!(e.code().code(), "22P02");
    assert!(e.where_().unwrap_or_default().contains("line 40001"), "{:?}", e.where_());
    assert_eq!(rows(&c, "SELECT count(*) FROM big").await, vec![vec![s("50000")]]);
    let mut left = data_files(dir.path());
    for _ in 0..50 {
        if left == files {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = data_files(dir.path());
    }
    assert_eq!(left, files, "an abandoned COPY left data files behind");

    // Deletes and inserts committed before a COPY apply before it.
    c.batch_execute("DELETE FROM big WHERE id <= 10; INSERT INTO big VALUES (-1, 'inserted', 1, '2026-02-01', 'x')").await.unwrap();
    assert_eq!(copy(&c, &data(100_001, 1000)).await.unwrap(), 1000);
    assert_eq!(rows(&c, "SELECT count(*), min(id), max(id) FROM big").await, vec![vec![s("50991"), s("-1"), s("101000")]]);

    // A TRUNCATE before a COPY empties only what came before.
    c.batch_execute("TRUNCATE big").await.unwrap();
    assert_eq!(copy(&c, &data(1, 5)).await.unwrap(), 5);
    c.batch_execute("INSERT INTO big VALUES (6, 'six', 6, '2026-03-01', 'y')").await.unwrap();
    assert_eq!(rows(&c, "SELECT count(*), sum(id) FROM big").await, vec![vec![s("6"), s("21")]]);

    // Acknowledged means durable; recovery replays nothing twice and hands
    // out no row id again.
    drop((c, other));
    server.kill9();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert_eq!(rows(&c, "SELECT count(*), sum(id) FROM big").await, vec![vec![s("6"), s("21")]]);
    assert_eq!(copy(&c, &data(7, 3)).await.unwrap(), 3);
    assert_eq!(c.execute("UPDATE big SET name = 'three' WHERE id = 3", &[]).await.unwrap(), 1);
    assert_eq!(
        rows(&c, "SELECT count(*), count(DISTINCT id), sum(id), max(name) FROM big").await,
        vec![vec![s("9"), s("9"), s("45"), s("three")]]
    );
    c.batch_execute("VACUUM big").await.unwrap();
    assert_eq!(rows(&c, "SELECT count(*), sum(id) FROM big").await, vec![vec![s("9"), s("45")]]);
}

#[tokio::test]
async fn kill_9_during_a_bulk_copy_keeps_none_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    c.batch_execute(TABLE).await.unwrap();
    assert_eq!(copy(&c, &data(1, 100)).await.unwrap(), 100);
    let mut sink = Box::pin(c.copy_in::<_, Bytes>("COPY big FROM STDIN").await.unwrap());
    send_all(&mut sink, &data(1000, 40_000)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill9();
    drop(sink);
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert_eq!(rows(&c, "SELECT count(*), max(id) FROM big").await, vec![vec![s("100"), s("100")]]);
    assert_eq!(copy(&c, &data(101, 10)).await.unwrap(), 10);
    assert_eq!(rows(&c, "SELECT count(*), count(DISTINCT id) FROM big").await, vec![vec![s("110"), s("110")]]);
}
