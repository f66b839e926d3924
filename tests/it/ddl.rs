//! DDL durability: views, renames and ALTER TABLE survive crashes, an
//! ALTER the server stopped in the middle of is finished at startup, and a
//! transaction that wrote the old shape of an altered table is refused.

use crate::harness::{TestServer, fresh, plan, rows, s, sqlstate};

#[tokio::test]
async fn ddl_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, label text);
         INSERT INTO t VALUES (1, 'a'), (2, 'b');
         VACUUM t;
         INSERT INTO t VALUES (3, 'c');
         ALTER TABLE t ADD COLUMN n int DEFAULT 5, RENAME COLUMN label TO name;
         INSERT INTO t VALUES (4, 'd', 6);
         CREATE VIEW big AS SELECT id, name FROM t WHERE n > 5;
         CREATE TABLE copy AS SELECT * FROM t;
         ALTER TABLE copy RENAME TO copied;",
    )
    .await
    .unwrap();
    drop(c);
    server.kill9();

    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert_eq!(
        rows(&c, "SELECT id, name, n FROM t ORDER BY id").await,
        vec![
            vec![s("1"), s("a"), s("5")],
            vec![s("2"), s("b"), s("5")],
            vec![s("3"), s("c"), s("5")],
            vec![s("4"), s("d"), s("6")]
        ]
    );
    assert_eq!(rows(&c, "SELECT * FROM big").await, vec![vec![s("4"), s("d")]]);
    assert_eq!(rows(&c, "SELECT count(*) FROM copied").await, vec![vec![s("4")]]);
    assert_eq!(sqlstate(&c, "SELECT * FROM copy").await, "42P01");
}

#[tokio::test]
async fn an_alter_interrupted_before_lance_followed_is_finished_at_startup() {
    alter_interrupted_after_catalog_commit("lance").await;
}

#[tokio::test]
async fn an_alter_interrupted_before_the_heap_checkpoint_followed_is_finished_at_startup() {
    alter_interrupted_after_catalog_commit("heap").await;
}

async fn alter_interrupted_after_catalog_commit(access_method: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    c.batch_execute(&format!(
        "CREATE TABLE t (id int PRIMARY KEY, label text, gone text) USING {access_method}; INSERT INTO t VALUES (1, 'a', 'x'), (2, 'b', 'y'); VACUUM t"
    ))
    .await
    .unwrap();
    drop(c);
    server.stop();

    // What the catalog holds when the server stops right after an ALTER's
    // catalog commit: label renamed, gone dropped, n added; the rows (Lance or
    // heap checkpoint) unchanged.
    let path = dir.path().join("catalog.json");
    let mut catalog: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let table = &mut catalog["tables"][0];
    let columns = table["columns"].as_array_mut().unwrap();
    columns[1]["name"] = "name".into();
    columns.remove(2);
    columns.push(serde_json::json!({"name": "n", "type": "integer", "not_null": false, "default": "40 + 2"}));
    table["pending_renames"] = serde_json::json!([["label", "name"]]);
    std::fs::write(&path, serde_json::to_vec_pretty(&catalog).unwrap()).unwrap();

    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert_eq!(
        rows(&c, "SELECT * FROM t ORDER BY id").await,
        vec![vec![s("1"), s("a"), s("42")], vec![s("2"), s("b"), s("42")]]
    );
    c.batch_execute("INSERT INTO t VALUES (3, 'c', 1); VACUUM t").await.unwrap();
    assert_eq!(rows(&c, "SELECT sum(n), string_agg(name, ',' ORDER BY id) FROM t").await, vec![vec![s("85"), s("a,b,c")]]);
    // The catalog no longer asks for the rename.
    let catalog = std::fs::read_to_string(&path).unwrap();
    assert!(!catalog.contains("pending_renames"), "{catalog}");
}

#[tokio::test]
async fn a_transaction_that_wrote_the_old_shape_is_refused_at_commit() {
    let (_dir, server, a) = fresh().await;
    a.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v int)").await.unwrap();
    a.batch_execute("BEGIN; INSERT INTO t VALUES (1, 1)").await.unwrap();
    let b = server.connect().await;
    // DDL over the extended protocol, as drivers send it.
    b.execute("ALTER TABLE t ADD COLUMN w int", &[]).await.unwrap();
    b.execute("CREATE VIEW tv AS SELECT id FROM t", &[]).await.unwrap();
    assert_eq!(b.query("SELECT count(*) FROM tv", &[]).await.unwrap()[0].get::<_, i64>(0), 0);
    b.execute("DROP VIEW tv", &[]).await.unwrap();
    assert_eq!(sqlstate(&a, "COMMIT").await, "40001");
    // A rename keeps the shape: a transaction across it commits.
    a.batch_execute("BEGIN; INSERT INTO t VALUES (2, 2, 2)").await.unwrap();
    b.batch_execute("ALTER TABLE t RENAME COLUMN w TO x").await.unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(rows(&b, "SELECT id, v, x FROM t").await, vec![vec![s("2"), s("2"), s("2")]]);
}

#[tokio::test]
async fn point_lookups_use_the_lance_index_from_creation_through_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    // Declared on an empty table: built once there is Lance data.
    c.batch_execute("CREATE TABLE ev (id bigint PRIMARY KEY, account int, kind text); CREATE INDEX ev_account ON ev (account)")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO ev SELECT i, i % 1000, 'k' || (i % 3) FROM generate_series(1, 20000) AS g(i)").await.unwrap();
    let lookup = "SELECT id FROM ev WHERE account = 42";
    assert!(!plan(&c, lookup).await.contains("ScalarIndexQuery"), "no Lance data yet, so no index to use");
    c.batch_execute("VACUUM ev").await.unwrap();
    let p = plan(&c, lookup).await;
    assert!(p.contains("ScalarIndexQuery") && p.contains("@ev_account(BTree)"), "{p}");
    assert_eq!(rows(&c, "SELECT count(*) FROM ev WHERE account = 42").await, vec![vec![s("20")]]);

    // A bitmap index; rows added after the index are still found.
    c.batch_execute("CREATE INDEX ev_kind ON ev USING bitmap (kind); INSERT INTO ev VALUES (30000, 42, 'new')").await.unwrap();
    assert!(plan(&c, "SELECT id FROM ev WHERE kind = 'k1'").await.contains("@ev_kind(Bitmap)"));
    assert_eq!(rows(&c, "SELECT count(*) FROM ev WHERE account = 42").await, vec![vec![s("21")]]);

    drop(c);
    server.kill9();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert!(plan(&c, lookup).await.contains("@ev_account(BTree)"));
    assert_eq!(rows(&c, "SELECT count(*) FROM ev WHERE account = 42").await, vec![vec![s("21")]]);
    c.batch_execute("DROP INDEX ev_account").await.unwrap();
    assert!(!plan(&c, lookup).await.contains("ev_account"));
    assert_eq!(rows(&c, "SELECT count(*) FROM ev WHERE account = 42").await, vec![vec![s("21")]]);
}

#[tokio::test]
async fn an_index_committed_but_not_built_is_built_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, k int); INSERT INTO t SELECT i, i * 1 FROM generate_series(1, 1000) AS g(i); VACUUM t")
        .await
        .unwrap();
    drop(c);
    server.stop();
    // The catalog as a crash right after CREATE INDEX's commit leaves it.
    let path = dir.path().join("catalog.json");
    let mut catalog: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    catalog["tables"][0]["indexes"] = serde_json::json!([{"name": "t_k_idx", "column": "k", "method": "btree"}]);
    std::fs::write(&path, serde_json::to_vec_pretty(&catalog).unwrap()).unwrap();

    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert!(plan(&c, "SELECT id FROM t WHERE k = 5").await.contains("@t_k_idx(BTree)"));
    assert_eq!(rows(&c, "SELECT id FROM t WHERE k = 5").await, vec![vec![s("5")]]);
}

#[tokio::test]
async fn identity_counters_follow_their_columns_across_alter_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    for method in ["lance", "heap"] {
        c.batch_execute(&format!(
            "CREATE TABLE t_{method} (a int, id serial, note text, b bigint GENERATED ALWAYS AS IDENTITY) USING {method};
             INSERT INTO t_{method} (a, note) VALUES (1, 'x'), (2, 'y'), (3, 'z');
             INSERT INTO t_{method} (id, a, note) VALUES (10, 4, 'v');
             VACUUM t_{method};
             ALTER TABLE t_{method} DROP COLUMN a;"
        ))
        .await
        .unwrap();
    }
    drop(c);
    server.kill9();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    for method in ["lance", "heap"] {
        // The counters of `id` and `b` moved one column left with them (an
        // explicit id does not advance a serial, as in PostgreSQL).
        assert_eq!(
            rows(&c, &format!("INSERT INTO t_{method} (note) VALUES ('w') RETURNING id, b")).await,
            vec![vec![s("4"), s("5")]],
            "{method}"
        );
    }
}

/// Schemas, and the oids clients cache (pgjdbc, DBeaver), survive a crash:
/// oids derive from durable ids, so the same object has the same oid after
/// restart, and a view made before views had ids gets one that then stays.
#[tokio::test]
async fn schemas_and_catalog_oids_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    c.batch_execute(
        "CREATE SCHEMA app;
         CREATE TABLE app.users (id int PRIMARY KEY, name text NOT NULL);
         CREATE INDEX users_name ON app.users (name);
         INSERT INTO app.users VALUES (1, 'ann');
         CREATE VIEW app.names AS SELECT name FROM app.users;",
    )
    .await
    .unwrap();
    let oids = "SELECT c.relname, c.oid::text, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                WHERE n.nspname = 'app' ORDER BY 1";
    let before = rows(&c, oids).await;
    assert_eq!(before.len(), 4, "{before:?}"); // names, users, users_name, users_pkey
    drop(c);
    server.kill9();

    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert_eq!(rows(&c, oids).await, before);
    assert_eq!(rows(&c, "SELECT name FROM app.names").await, vec![vec![s("ann")]]);
    assert_eq!(sqlstate(&c, "CREATE SCHEMA app").await, "42P06");
}
