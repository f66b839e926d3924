//! Point queries: key probes (a primary-key lookup answered from the key set
//! instead of a scan) give the same rows as a scan through every kind of
//! change, snapshot and table; prepared statements keep their plans only
//! while the tables they read are unchanged.

use crate::harness::{TestServer, fresh, plan, rows, s};

/// `v` of row `id`, by key probe and by a scan that cannot probe
/// (`id + 0` pins nothing), which must agree.
async fn both_ways(c: &tokio_postgres::Client, id: i64) -> Option<String> {
    let probed = rows(c, &format!("SELECT v FROM kv WHERE id = {id}")).await;
    let scanned = rows(c, &format!("SELECT v FROM kv WHERE id + 0 = {id}")).await;
    assert_eq!(probed, scanned, "key {id}");
    assert!(probed.len() <= 1);
    probed.into_iter().next().and_then(|r| r[0].clone())
}

#[tokio::test]
async fn key_probes_agree_with_scans_through_updates_deletes_flushes_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    // Small flushes, so rows move from the delta into Lance fragments often.
    let server = TestServer::start_with(dir.path(), &["--flush-rows", "50"]);
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE kv (id bigint PRIMARY KEY, v text); INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 2000) g")
        .await
        .unwrap();
    let p = plan(&c, "SELECT v FROM kv WHERE id = 42").await;
    assert!(p.contains("TarnKeyProbe: table=kv, key=(42), rows=1"), "{p}");
    assert!(!p.contains("Repartition"), "a one-row probe is not repartitioned: {p}");
    assert!(!plan(&c, "SELECT v FROM kv WHERE id > 42").await.contains("TarnKeyProbe"));

    let mut expected: std::collections::BTreeMap<i64, Option<String>> = (1..=2000).map(|i| (i, Some(format!("v{i}")))).collect();
    for round in 0..6i64 {
        for i in 0..40i64 {
            let id = (round * 97 + i * 13) % 2100 + 1;
            match (round + i) % 4 {
                0 => {
                    c.batch_execute(&format!("UPDATE kv SET v = 'u{round}' WHERE id = {id}")).await.unwrap();
                    if let Some(v) = expected.get_mut(&id).filter(|v| v.is_some()) {
                        *v = Some(format!("u{round}"));
                    }
                }
                1 => {
                    c.batch_execute(&format!("DELETE FROM kv WHERE id = {id}")).await.unwrap();
                    expected.insert(id, None);
                }
                2 => {
                    let sql = format!("INSERT INTO kv VALUES ({id}, 'i{round}') ON CONFLICT (id) DO UPDATE SET v = excluded.v");
                    c.batch_execute(&sql).await.unwrap();
                    expected.insert(id, Some(format!("i{round}")));
                }
                _ => {}
            }
        }
        if round % 2 == 1 {
            c.batch_execute("VACUUM kv").await.unwrap();
        }
        for id in (1..=2100).step_by(37).chain([1, 2000, 2100]) {
            assert_eq!(both_ways(&c, id).await, expected.get(&id).cloned().flatten(), "round {round}");
        }
    }
    let p = plan(&c, "SELECT v FROM kv WHERE id = 7").await;
    assert!(p.contains("TarnKeyProbe"), "{p}");
}

#[tokio::test]
async fn a_probe_sees_what_the_statement_snapshot_sees() {
    let (_dir, server, a) = fresh().await;
    let b = server.connect().await;
    a.batch_execute("CREATE TABLE kv (id int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'old'), (2, 'two')").await.unwrap();

    // REPEATABLE READ: a later commit is not seen, by probe or otherwise.
    a.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ").await.unwrap();
    assert_eq!(rows(&a, "SELECT v FROM kv WHERE id = 1").await, vec![vec![s("old")]]);
    b.batch_execute("UPDATE kv SET v = 'new' WHERE id = 1; DELETE FROM kv WHERE id = 2; INSERT INTO kv VALUES (3, 'three')")
        .await
        .unwrap();
    assert_eq!(rows(&a, "SELECT v FROM kv WHERE id = 1").await, vec![vec![s("old")]]);
    assert_eq!(rows(&a, "SELECT v FROM kv WHERE id = 2").await, vec![vec![s("two")]]);
    assert!(rows(&a, "SELECT v FROM kv WHERE id = 3").await.is_empty());
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(rows(&a, "SELECT v FROM kv WHERE id = 1").await, vec![vec![s("new")]]);

    // The transaction's own writes are seen, and vanish with ROLLBACK.
    a.batch_execute("BEGIN; UPDATE kv SET v = 'mine' WHERE id = 1; INSERT INTO kv VALUES (4, 'four')").await.unwrap();
    assert_eq!(rows(&a, "SELECT v FROM kv WHERE id = 1").await, vec![vec![s("mine")]]);
    assert_eq!(rows(&a, "SELECT v FROM kv WHERE id = 4").await, vec![vec![s("four")]]);
    assert_eq!(rows(&b, "SELECT v FROM kv WHERE id = 1").await, vec![vec![s("new")]]);
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(rows(&a, "SELECT v FROM kv WHERE id = 1").await, vec![vec![s("new")]]);
    assert!(rows(&a, "SELECT v FROM kv WHERE id = 4").await.is_empty());

    // Other key shapes: int4 key with a bigint or text literal, no match,
    // NULL, a lossy literal.
    assert_eq!(rows(&a, "SELECT v FROM kv WHERE id = '3'").await, vec![vec![s("three")]]);
    assert!(plan(&a, "SELECT v FROM kv WHERE id = 3").await.contains("TarnKeyProbe"));
    assert!(rows(&a, "SELECT v FROM kv WHERE id = 99").await.is_empty());
    assert!(rows(&a, "SELECT v FROM kv WHERE id = NULL").await.is_empty());
    assert!(rows(&a, "SELECT v FROM kv WHERE id = 3.5").await.is_empty());
    assert_eq!(rows(&a, "SELECT v FROM kv WHERE id = 3.0").await, vec![vec![s("three")]]);
}

#[tokio::test]
async fn composite_text_and_heap_keys_are_probed() {
    let (_dir, _server, c) = fresh().await;
    c.batch_execute(
        "CREATE TABLE pair (a int, b text, n int, PRIMARY KEY (a, b));
         INSERT INTO pair VALUES (1, 'x', 10), (1, 'y', 11), (2, 'x', 20);
         CREATE TABLE hot (k text PRIMARY KEY, n int) USING heap;
         INSERT INTO hot VALUES ('a', 1), ('b', 2);
         VACUUM",
    )
    .await
    .unwrap();
    let p = plan(&c, "SELECT n FROM pair WHERE b = 'y' AND a = 1").await;
    assert!(p.contains("TarnKeyProbe: table=pair, key=(1, y), rows=1"), "{p}");
    assert_eq!(rows(&c, "SELECT n FROM pair WHERE b = 'y' AND a = 1").await, vec![vec![s("11")]]);
    // Half a key is a scan.
    assert!(!plan(&c, "SELECT n FROM pair WHERE a = 1").await.contains("TarnKeyProbe"));
    assert_eq!(rows(&c, "SELECT n FROM pair WHERE a = 1 ORDER BY n").await, vec![vec![s("10")], vec![s("11")]]);

    c.batch_execute("UPDATE hot SET n = 5 WHERE k = 'b'").await.unwrap();
    assert!(plan(&c, "SELECT n FROM hot WHERE k = 'b'").await.contains("TarnKeyProbe: table=hot"));
    assert_eq!(rows(&c, "SELECT n FROM hot WHERE k = 'b'").await, vec![vec![s("5")]]);
    c.batch_execute("VACUUM hot").await.unwrap();
    assert_eq!(rows(&c, "SELECT n FROM hot WHERE k = 'b'").await, vec![vec![s("5")]]);
    assert_eq!(rows(&c, "SELECT n FROM hot WHERE k = 'a'").await, vec![vec![s("1")]]);
}

#[tokio::test]
async fn after_a_restart_lookups_load_the_key_set_and_stay_right() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE kv (id bigint PRIMARY KEY, v text); INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 500) g; VACUUM kv; UPDATE kv SET v = 'changed' WHERE id = 9")
        .await
        .unwrap();
    drop(c);
    server.kill9();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    assert_eq!(both_ways(&c, 9).await, Some("changed".into()));
    // That lookup started loading the key set; probes answer once it is in.
    let mut probed = false;
    for _ in 0..100 {
        if plan(&c, "SELECT v FROM kv WHERE id = 9").await.contains("TarnKeyProbe") {
            probed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(probed, "the key set never loaded");
    c.batch_execute("UPDATE kv SET v = 'again' WHERE id = 10").await.unwrap();
    assert_eq!(both_ways(&c, 9).await, Some("changed".into()));
    assert_eq!(both_ways(&c, 10).await, Some("again".into()));
}

#[tokio::test]
async fn prepared_statements_follow_ddl_between_executions() {
    let (_dir, _server, c) = fresh().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)").await.unwrap();
    let insert = c.prepare("INSERT INTO t (id, v) VALUES ($1, $2)").await.unwrap();
    let lookup = c.prepare("SELECT v FROM t WHERE id = $1").await.unwrap();
    for i in 1..=7 {
        c.execute(&insert, &[&i, &format!("r{i}")]).await.unwrap();
        let got: String = c.query_one(&lookup, &[&i]).await.unwrap().get(0);
        assert_eq!(got, format!("r{i}"));
    }
    let update = c.prepare("UPDATE t SET v = v || '+' WHERE id = $1").await.unwrap();
    for _ in 0..3 {
        assert_eq!(c.execute(&update, &[&1i32]).await.unwrap(), 1);
    }
    assert_eq!(rows(&c, "SELECT v FROM t WHERE id = 1").await, vec![vec![s("r1+++")]]);
    // A new column with a DEFAULT: the kept INSERT plan is replanned and fills it.
    c.batch_execute("ALTER TABLE t ADD COLUMN w int DEFAULT 7").await.unwrap();
    c.execute(&insert, &[&8i32, &"r8"]).await.unwrap();
    assert_eq!(rows(&c, "SELECT w FROM t WHERE id = 8").await, vec![vec![s("7")]]);
    // The kept UPDATE is made again for the new shape, and keeps the new column.
    assert_eq!(c.execute(&update, &[&8i32]).await.unwrap(), 1);
    assert_eq!(rows(&c, "SELECT v, w FROM t WHERE id = 8").await, vec![vec![s("r8+"), s("7")]]);
    // The table dropped and made again: the statements use the new one.
    c.batch_execute("DROP TABLE t; CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'fresh')").await.unwrap();
    let got: String = c.query_one(&lookup, &[&1i32]).await.unwrap().get(0);
    assert_eq!(got, "fresh");
    c.execute(&insert, &[&2i32, &"two"]).await.unwrap();
    assert_eq!(rows(&c, "SELECT count(*) FROM t").await, vec![vec![s("2")]]);
    // now() is each execution's own time, not the time it was first planned.
    let now = c.prepare("SELECT now()::text FROM t WHERE id = $1").await.unwrap();
    let first: String = c.query_one(&now, &[&1i32]).await.unwrap().get(0);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second: String = c.query_one(&now, &[&1i32]).await.unwrap().get(0);
    assert_ne!(first, second);
    // The search path changes between Executes: the unqualified name is
    // resolved again, as PostgreSQL does, and back again after RESET.
    c.batch_execute("CREATE SCHEMA other; CREATE TABLE other.t (id int PRIMARY KEY, v text); INSERT INTO other.t VALUES (1, 'other')")
        .await
        .unwrap();
    c.batch_execute("SET search_path = other, public").await.unwrap();
    let got: String = c.query_one(&lookup, &[&1i32]).await.unwrap().get(0);
    assert_eq!(got, "other");
    c.execute(&insert, &[&2i32, &"two in other"]).await.unwrap();
    c.batch_execute("RESET search_path").await.unwrap();
    let got: String = c.query_one(&lookup, &[&1i32]).await.unwrap().get(0);
    assert_eq!(got, "fresh");
    assert_eq!(rows(&c, "SELECT v FROM other.t WHERE id = 2").await, vec![vec![s("two in other")]]);
    assert_eq!(rows(&c, "SELECT v FROM public.t WHERE id = 2").await, vec![vec![s("two")]]);
    // UPDATE and DELETE follow the search path too.
    let delete = c.prepare("DELETE FROM t WHERE id = $1").await.unwrap();
    assert_eq!(c.execute(&update, &[&1i32]).await.unwrap(), 1);
    assert_eq!(c.execute(&delete, &[&2i32]).await.unwrap(), 1);
    assert_eq!(c.execute(&delete, &[&2i32]).await.unwrap(), 0);
    c.batch_execute("SET search_path = other").await.unwrap();
    assert_eq!(c.execute(&update, &[&1i32]).await.unwrap(), 1);
    assert_eq!(c.execute(&delete, &[&2i32]).await.unwrap(), 1);
    c.batch_execute("RESET search_path").await.unwrap();
    assert_eq!(rows(&c, "SELECT id, v FROM public.t ORDER BY id").await, vec![vec![s("1"), s("fresh+")]]);
    assert_eq!(rows(&c, "SELECT id, v FROM other.t ORDER BY id").await, vec![vec![s("1"), s("other+")]]);
}

/// Plans answered by the key probe without physical planning
/// (`engine::point`) keep every other part of the statement: further
/// conditions, computed columns, LIMIT, and UPDATE's computed values.
#[tokio::test]
async fn point_plans_apply_the_rest_of_the_statement() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &["--flush-rows", "20"]);
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE acct (id bigint PRIMARY KEY, balance bigint NOT NULL, name text); INSERT INTO acct SELECT g, 0, 'a' || g FROM generate_series(1, 100) g; VACUUM acct")
        .await
        .unwrap();
    let lookup = c.prepare("SELECT balance * 2 + 1, upper(name) FROM acct WHERE id = $1 AND balance >= $2 LIMIT 1").await.unwrap();
    let update = c.prepare("UPDATE acct SET balance = balance + $1 WHERE id = $2").await.unwrap();
    let mut expected = [0i64; 101];
    for round in 0..12i64 {
        for id in [1i64, 7, 50, 100, 101] {
            let n = c.execute(&update, &[&(round + 1), &id]).await.unwrap();
            assert_eq!(n, u64::from(id <= 100), "UPDATE of key {id}");
            if id <= 100 {
                expected[id as usize] += round + 1;
            }
        }
        for id in [1i64, 7, 50, 100, 101] {
            let want = expected.get(id as usize).copied();
            let found = c.query(&lookup, &[&id, &0i64]).await.unwrap();
            let got: Vec<(i64, String)> = found.iter().map(|r| (r.get(0), r.get(1))).collect();
            let row = want.map(|b| (b * 2 + 1, format!("A{id}")));
            assert_eq!(got, row.into_iter().filter(|_| id <= 100).collect::<Vec<_>>(), "round {round}, key {id}");
            // The further condition is applied to the probed row.
            assert!(c.query(&lookup, &[&id, &(i64::MAX)]).await.unwrap().is_empty());
        }
    }
    let total: i64 = expected.iter().sum();
    assert_eq!(rows(&c, "SELECT sum(balance) FROM acct").await, vec![vec![s(&total.to_string())]]);
    // The key is probed by the first condition that pins it; a second one
    // on the same column is still checked on the probed row.
    let twice = c.prepare("SELECT name FROM acct WHERE id = $1 AND id = $2").await.unwrap();
    for _ in 0..3 {
        assert!(c.query(&twice, &[&1i64, &2i64]).await.unwrap().is_empty());
        let same: Vec<String> = c.query(&twice, &[&3i64, &3i64]).await.unwrap().iter().map(|r| r.get(0)).collect();
        assert_eq!(same, ["a3"]);
    }
}

/// A prepared INSERT of VALUES runs without physical planning: its rows,
/// defaults, identity, casts and constraints are as a planned INSERT's, and
/// a failing execution writes nothing and leaves the statement usable.
#[tokio::test]
async fn prepared_values_inserts_keep_every_rule_of_insert() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE ev (id bigserial PRIMARY KEY, n int NOT NULL, label varchar(5), at text DEFAULT 'now', k int)")
        .await
        .unwrap();
    let two_rows = c.prepare("INSERT INTO ev (n, label, k) VALUES ($1, $2, $1 * 10), ($1 + 1, NULL, NULL)").await.unwrap();
    for round in 0..8i32 {
        let n = c.execute(&two_rows, &[&round, &format!("r{round}")]).await.unwrap();
        assert_eq!(n, 2, "round {round}");
    }
    // NOT NULL and varchar(5) are checked per execution, with PostgreSQL's codes.
    let err = c.execute(&two_rows, &[&None::<i32>, &"x"]).await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "23502", "{err}");
    let err = c.execute(&two_rows, &[&1i32, &"toolong"]).await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22001", "{err}");
    assert_eq!(c.execute(&two_rows, &[&100i32, &"ok"]).await.unwrap(), 2);
    let all = rows(&c, "SELECT count(*), count(label), sum(n), sum(k), min(at), count(DISTINCT id) FROM ev").await;
    // 8 rounds of (round, round+1) plus (100, 101): sum n = 2*28+8 + 201.
    assert_eq!(all, vec![vec![s("18"), s("9"), s("265"), s("1280"), s("now"), s("18")]]);
    let first = rows(&c, "SELECT n, label, k FROM ev WHERE n = 3 ORDER BY label NULLS LAST").await;
    assert_eq!(first, vec![vec![s("3"), s("r3"), s("30")], vec![s("3"), None, None]]);
}
