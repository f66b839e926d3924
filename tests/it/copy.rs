//! COPY over the wire with tokio-postgres (which runs COPY through the
//! extended protocol): text and CSV in and out, defaults and identity for
//! omitted columns, errors that name the line and keep nothing, CopyFail,
//! transactions, and durability of copied rows.

use bytes::Bytes;
use futures::{SinkExt, TryStreamExt};
use tokio_postgres::Client;

use crate::harness::{TestServer, fresh, rows, s, sqlstate};

async fn copy_in(c: &Client, sql: &str, chunks: &[&str]) -> Result<u64, tokio_postgres::Error> {
    let sink = c.copy_in::<_, Bytes>(sql).await?;
    futures::pin_mut!(sink);
    for chunk in chunks {
        sink.send(Bytes::from(chunk.to_string())).await?;
    }
    sink.finish().await
}

async fn copy_out(c: &Client, sql: &str) -> String {
    let stream = c.copy_out(sql).await.unwrap();
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    String::from_utf8(chunks.concat()).unwrap()
}

const TABLE: &str = "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2), added date DEFAULT '2026-01-01', note text)";

#[tokio::test]
async fn text_and_csv_copy_in_and_out() {
    let (_dir, _server, c) = fresh().await;
    c.batch_execute(TABLE).await.unwrap();
    // Text: rows split across CopyData messages, \N for NULL, escapes.
    let n = copy_in(&c, "COPY items (name, price, note) FROM STDIN", &["apple\t1.50\tfirst\\tline\npe", "ar\t\\N\t\\N\n", "plum\t3\ta\\\\b\n"]).await.unwrap();
    assert_eq!(n, 3);
    // CSV with a header, quotes, an embedded newline, an empty string vs NULL.
    let csv = "name,price,note\n\"fig, dried\",2.25,\"multi\nline\"\nkiwi,,\"\"\n";
    assert_eq!(copy_in(&c, "COPY items (name, price, note) FROM STDIN WITH (FORMAT csv, HEADER)", &[csv]).await.unwrap(), 2);
    assert_eq!(
        rows(&c, "SELECT id, name, price, added, note IS NULL, note FROM items ORDER BY id").await,
        vec![
            vec![s("1"), s("apple"), s("1.50"), s("2026-01-01"), s("f"), s("first\tline")],
            vec![s("2"), s("pear"), None, s("2026-01-01"), s("t"), None],
            vec![s("3"), s("plum"), s("3.00"), s("2026-01-01"), s("f"), s("a\\b")],
            vec![s("4"), s("fig, dried"), s("2.25"), s("2026-01-01"), s("f"), s("multi\nline")],
            vec![s("5"), s("kiwi"), None, s("2026-01-01"), s("f"), s("")],
        ]
    );
    // Out again, exactly as PostgreSQL writes it.
    assert_eq!(
        copy_out(&c, "COPY items (id, name, note) TO STDOUT").await,
        "1\tapple\tfirst\\tline\n2\tpear\t\\N\n3\tplum\ta\\\\b\n4\tfig, dried\tmulti\\nline\n5\tkiwi\t\n"
    );
    assert_eq!(
        copy_out(&c, "COPY (SELECT name, price FROM items WHERE id >= 4 ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)").await,
        "name,price\n\"fig, dried\",2.25\nkiwi,\n"
    );
    // What COPY TO writes, COPY FROM reads back unchanged.
    let text = copy_out(&c, "COPY items TO STDOUT").await;
    c.batch_execute("CREATE TABLE items2 (id int, name text, price numeric(10,2), added date, note text)").await.unwrap();
    copy_in(&c, "COPY items2 FROM STDIN", &[&text]).await.unwrap();
    assert_eq!(copy_out(&c, "COPY items2 TO STDOUT").await, text);
}

#[tokio::test]
async fn a_bad_row_names_its_line_and_nothing_is_kept() {
    let (_dir, _server, c) = fresh().await;
    c.batch_execute(TABLE).await.unwrap();
    let cases: [(&str, &str, &str); 5] = [
        ("a\t1\nb\tnot-a-number\nc\t3\n", "22P02", "line 2, column price: \"not-a-number\""),
        ("a\t1\nb\n", "22P04", "line 2"),
        ("a\t1\t2\n", "22P04", "line 1"),
        ("a\t1\n\\N\t2\n", "23502", "COPY items"),
        ("a\t1\n\\xff\t2\n", "22021", "COPY items, line 2"),
    ];
    for (data, code, context) in cases {
        let e = copy_in(&c, "COPY items (name, price) FROM STDIN", &[data]).await.unwrap_err();
        let db = e.as_db_error().unwrap_or_else(|| panic!("{data:?}: {e}"));
        assert_eq!(db.code().code(), code, "{data:?}: {}", db.message());
        let where_ = db.where_().unwrap_or_default();
        assert!(where_.contains(context), "{data:?}: context {where_:?}");
        assert_eq!(rows(&c, "SELECT count(*) FROM items").await, vec![vec![s("0")]], "{data:?}");
    }
    // The error waits for CopyDone when more data follows the bad row.
    let e = copy_in(&c, "COPY items (name, price) FROM STDIN", &["a\t1\nb\tx\n", "c\t3\n", "d\t4\n"]).await.unwrap_err();
    assert_eq!(e.code().unwrap().code(), "22P02", "{e}");
    assert_eq!(rows(&c, "SELECT count(*) FROM items").await, vec![vec![s("0")]]);
    // A duplicate key, within the COPY or against the table.
    c.batch_execute("CREATE TABLE k (id int PRIMARY KEY)").await.unwrap();
    assert_eq!(copy_in(&c, "COPY k FROM STDIN", &["1\n2\n1\n"]).await.unwrap_err().code().unwrap().code(), "23505");
    copy_in(&c, "COPY k FROM STDIN", &["1\n"]).await.unwrap();
    assert_eq!(copy_in(&c, "COPY k FROM STDIN", &["2\n1\n"]).await.unwrap_err().code().unwrap().code(), "23505");
    assert_eq!(rows(&c, "SELECT count(*) FROM k").await, vec![vec![s("1")]]);
    // Bad statements.
    assert_eq!(sqlstate(&c, "COPY nosuch FROM STDIN").await, "42P01");
    assert_eq!(sqlstate(&c, "COPY k (nosuch) FROM STDIN").await, "42703");
    assert_eq!(sqlstate(&c, "COPY k FROM '/etc/passwd'").await, "0A000");
    assert_eq!(sqlstate(&c, "COPY k FROM STDIN WITH (FORMAT xml)").await, "22023");
}

#[tokio::test]
async fn copy_fail_and_transactions() {
    let (_dir, _server, c) = fresh().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)").await.unwrap();
    // The client gives up half way (tokio-postgres sends CopyFail when the
    // sink is dropped unfinished): nothing is kept, the connection goes on.
    {
        let sink = c.copy_in::<_, Bytes>("COPY t FROM STDIN").await.unwrap();
        futures::pin_mut!(sink);
        sink.send(Bytes::from_static(b"1\tone\n")).await.unwrap();
    }
    assert_eq!(rows(&c, "SELECT count(*) FROM t").await, vec![vec![s("0")]]);
    // Inside a block: part of the transaction.
    c.batch_execute("BEGIN").await.unwrap();
    copy_in(&c, "COPY t FROM STDIN", &["1\tone\n2\ttwo\n"]).await.unwrap();
    assert_eq!(rows(&c, "SELECT count(*) FROM t").await, vec![vec![s("2")]]);
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(rows(&c, "SELECT count(*) FROM t").await, vec![vec![s("0")]]);
    c.batch_execute("BEGIN").await.unwrap();
    copy_in(&c, "COPY t FROM STDIN", &["1\tone\n"]).await.unwrap();
    // A failing COPY fails the block.
    assert!(copy_in(&c, "COPY t FROM STDIN", &["x\tbad\n"]).await.is_err());
    assert_eq!(sqlstate(&c, "SELECT 1").await, "25P02");
    c.batch_execute("ROLLBACK; BEGIN").await.unwrap();
    copy_in(&c, "COPY t FROM STDIN", &["1\tone\n", "2\ttwo\n"]).await.unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    assert_eq!(rows(&c, "SELECT count(*), string_agg(v, ',' ORDER BY id) FROM t").await, vec![vec![s("2"), s("one,two")]]);
}

#[tokio::test]
async fn copied_rows_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE big (id bigint PRIMARY KEY, label text, x float8)").await.unwrap();
    let mut data = String::new();
    for i in 0..100_000 {
        data.push_str(&format!("{i}\trow {i}\t{}\n", i as f64 / 4.0));
    }
    let chunks: Vec<&str> = data.as_bytes().chunks(65_536).map(|c| std::str::from_utf8(c).unwrap()).collect();
    assert_eq!(copy_in(&c, "COPY big FROM STDIN", &chunks).await.unwrap(), 100_000);
    drop(c);
    server.kill9();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert_eq!(
        rows(&c, "SELECT count(*), count(DISTINCT id), sum(x), max(label) FROM big").await,
        vec![vec![s("100000"), s("100000"), s("1249987500"), s("row 99999")]]
    );
}
