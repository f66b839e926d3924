//! Protocol-level behaviour with a real client (tokio-postgres): the README
//! session, errors and their SQLSTATEs, both query protocols, streaming.

use futures::{StreamExt, TryStreamExt};
use tokio_postgres::SimpleQueryMessage;

use crate::harness::{fresh, rows, s, sqlstate};

#[tokio::test]
async fn the_readme_session_works() {
    let (_dir, _server, c) = fresh().await;
    c.simple_query("CREATE TABLE trips (id bigint PRIMARY KEY, city text NOT NULL, fare numeric(10,2), at timestamptz)")
        .await
        .unwrap();
    let msgs = c
        .simple_query("INSERT INTO trips VALUES (1, 'Oslo', 12.50, now()), (2, 'Lima', 8.00, now())")
        .await
        .unwrap();
    assert!(matches!(msgs.last(), Some(SimpleQueryMessage::CommandComplete(2))));
    assert_eq!(
        rows(&c, "SELECT city, sum(fare) FROM trips GROUP BY city ORDER BY 1").await,
        vec![vec![s("Lima"), s("8.00")], vec![s("Oslo"), s("12.50")]]
    );
    // timestamptz prints in the session zone with PostgreSQL's layout.
    let at = rows(&c, "SELECT at FROM trips WHERE id = 1").await[0][0].clone().unwrap();
    assert!(at.ends_with("+00") && at.len() >= 22, "{at}");
}

#[tokio::test]
async fn errors_carry_sqlstates_and_the_connection_survives_them() {
    let (_dir, _server, c) = fresh().await;
    c.simple_query("CREATE TABLE t (id bigint PRIMARY KEY, name text NOT NULL, v varchar(3))").await.unwrap();
    c.simple_query("INSERT INTO t VALUES (1, 'a', 'x')").await.unwrap();

    assert_eq!(sqlstate(&c, "SELECT * FROM nope").await, "42P01");
    assert_eq!(sqlstate(&c, "SELECT nope FROM t").await, "42703");
    assert_eq!(sqlstate(&c, "SELEC 1").await, "42601");
    assert_eq!(sqlstate(&c, "INSERT INTO t VALUES (1, 'dup', NULL)").await, "23505");
    assert_eq!(sqlstate(&c, "INSERT INTO t VALUES (2, NULL, NULL)").await, "23502");
    assert_eq!(sqlstate(&c, "INSERT INTO t VALUES (3, 'x', 'toolong')").await, "22001");
    assert_eq!(sqlstate(&c, "INSERT INTO t VALUES ('abc', 'x', NULL)").await, "22P02");
    assert_eq!(sqlstate(&c, "CREATE TABLE t (a int)").await, "42P07");
    assert_eq!(sqlstate(&c, "SELECT 1/0").await, "22012");
    // Duplicates inside one statement are refused too, and nothing of it lands.
    assert_eq!(sqlstate(&c, "INSERT INTO t VALUES (5, 'a', NULL), (5, 'b', NULL)").await, "23505");

    let err = c.simple_query("INSERT INTO t VALUES (1, 'dup', NULL)").await.unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.message(), "duplicate key value violates unique constraint \"t_pkey\"");
    assert_eq!(db.detail(), Some("Key (id)=(1) already exists."));

    // After all that, the same connection still works and nothing partial landed.
    assert_eq!(rows(&c, "SELECT count(*) FROM t").await, vec![vec![s("1")]]);
}

#[tokio::test]
async fn simple_protocol_runs_statements_in_order_and_stops_at_the_first_error() {
    let (_dir, _server, c) = fresh().await;
    let msgs = c.simple_query("CREATE TABLE m (a int); INSERT INTO m VALUES (1), (2); SELECT sum(a) FROM m").await.unwrap();
    let values: Vec<_> = msgs
        .iter()
        .filter_map(|m| if let SimpleQueryMessage::Row(r) = m { r.get(0).map(str::to_string) } else { None })
        .collect();
    assert_eq!(values, vec!["3"]);
    // The INSERT after the failing statement must not run.
    assert!(c.simple_query("INSERT INTO m VALUES (10); SELECT * FROM nope; INSERT INTO m VALUES (100)").await.is_err());
    assert_eq!(rows(&c, "SELECT sum(a) FROM m").await, vec![vec![s("13")]]);
    // Empty queries.
    c.simple_query("").await.unwrap();
    c.simple_query(";;;").await.unwrap();
}

#[tokio::test]
async fn startup_reports_a_postgres_15_server_and_settings_work() {
    let (_dir, _server, c) = fresh().await;
    let v = rows(&c, "SHOW server_version").await[0][0].clone().unwrap();
    assert!(v.starts_with("15."), "{v}");
    assert_eq!(rows(&c, "SHOW standard_conforming_strings").await, vec![vec![s("on")]]);
    c.simple_query("SET TIME ZONE '+05:30'").await.unwrap();
    assert_eq!(
        rows(&c, "SELECT CAST('2026-01-02 03:04:05+00:00' AS timestamptz)").await,
        vec![vec![s("2026-01-02 08:34:05+05:30")]]
    );
    assert_eq!(sqlstate(&c, "SET no_such_setting = 1").await, "42704");
    // Describe (extended protocol) and execution agree on SHOW's columns.
    let st = c.prepare("SHOW ALL").await.unwrap();
    let described: Vec<&str> = st.columns().iter().map(|c| c.name()).collect();
    assert_eq!(described, ["name", "setting"]);
    let all = c.query(&st, &[]).await.unwrap();
    assert!(all.iter().any(|r| r.get::<_, &str>(0) == "server_version"));
}

#[tokio::test]
async fn extended_protocol_binds_parameters_and_returns_binary_values() {
    let (_dir, _server, c) = fresh().await;
    c.batch_execute(
        "CREATE TABLE k (id bigint PRIMARY KEY, i2 smallint, i4 int, f4 real, f8 double precision, b boolean, \
         t text, bin bytea, d date, ts timestamp, tz timestamptz, n numeric(10,2))",
    )
    .await
    .unwrap();
    let d = chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
    let ts = d.and_hms_micro_opt(3, 4, 5, 600).unwrap();
    let tz = ts.and_utc();
    let n = c
        .execute(
            "INSERT INTO k (id, i2, i4, f4, f8, b, t, bin, d, ts, tz) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[&7i64, &2i16, &4i32, &1.5f32, &-2.25f64, &true, &"héllo", &vec![0u8, 255], &d, &ts, &tz],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let row = c.query_one("SELECT i2, i4, f4, f8, b, t, bin, d, ts, tz, id FROM k WHERE id = $1", &[&7i64]).await.unwrap();
    assert_eq!(row.get::<_, i16>(0), 2);
    assert_eq!(row.get::<_, i32>(1), 4);
    assert_eq!(row.get::<_, f32>(2), 1.5);
    assert_eq!(row.get::<_, f64>(3), -2.25);
    assert!(row.get::<_, bool>(4));
    assert_eq!(row.get::<_, &str>(5), "héllo");
    assert_eq!(row.get::<_, Vec<u8>>(6), vec![0, 255]);
    assert_eq!(row.get::<_, chrono::NaiveDate>(7), d);
    assert_eq!(row.get::<_, chrono::NaiveDateTime>(8), ts);
    assert_eq!(row.get::<_, chrono::DateTime<chrono::Utc>>(9), tz);
    assert_eq!(row.get::<_, i64>(10), 7);
    // NULLs, numeric through text, empty results and a prepared statement reused.
    c.execute("INSERT INTO k (id, n) VALUES ($1, 12.5)", &[&8i64]).await.unwrap();
    let stmt = c.prepare("SELECT n::text, t FROM k WHERE id = $1").await.unwrap();
    for _ in 0..6 {
        let r = c.query_one(&stmt, &[&8i64]).await.unwrap();
        assert_eq!(r.get::<_, Option<&str>>(0), Some("12.50"));
        assert_eq!(r.get::<_, Option<&str>>(1), None);
    }
    assert!(c.query(&stmt, &[&999i64]).await.unwrap().is_empty());
    // Errors in the extended protocol leave the connection usable.
    let e = c.execute("INSERT INTO k (id) VALUES ($1)", &[&7i64]).await.unwrap_err();
    assert_eq!(e.code().unwrap().code(), "23505");
    assert!(c.prepare("SELECT * FROM nope WHERE a = $1").await.is_err());
    assert_eq!(c.query_one("SELECT count(*) FROM k", &[]).await.unwrap().get::<_, i64>(0), 2);
}

#[tokio::test]
async fn large_results_stream_with_bounded_memory_and_disconnects_are_harmless() {
    let (_dir, mut server, c) = fresh().await;
    let before = server.rss_bytes();
    let stream = c.simple_query_raw("SELECT * FROM generate_series(1, 10000000)").await.unwrap();
    futures::pin_mut!(stream);
    let mut count = 0u64;
    let mut peak = before;
    while let Some(msg) = stream.next().await {
        if let SimpleQueryMessage::Row(_) = msg.unwrap() {
            count += 1;
            if count % 1_000_000 == 0 {
                peak = peak.max(server.rss_bytes());
            }
        }
    }
    assert_eq!(count, 10_000_000);
    // Holding 10M rows would take well over a gigabyte; streaming stays near
    // the idle footprint.
    assert!(peak < before + 400 * 1024 * 1024, "server RSS grew from {before} to {peak} bytes");

    // A client that walks away mid-result does not hurt the server or others.
    let other = server.connect().await;
    {
        let quitter = server.connect().await;
        let stream = quitter.query_raw("SELECT * FROM generate_series(1, 10000000)", Vec::<i64>::new()).await.unwrap();
        futures::pin_mut!(stream);
        let first: Vec<_> = stream.as_mut().take(10).try_collect().await.unwrap();
        assert_eq!(first.len(), 10);
    }
    assert_eq!(rows(&other, "SELECT 41 + 1").await, vec![vec![s("42")]]);
    assert!(server.is_running());
}

#[tokio::test]
async fn text_output_matches_postgres_for_each_type() {
    let (_dir, _server, c) = fresh().await;
    c.batch_execute(
        "CREATE TABLE ty (b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric(12,3), nu numeric, \
         t text, vc varchar(5), ch char(4), by bytea, d date, ts timestamp, tz timestamptz)",
    )
    .await
    .unwrap();
    c.batch_execute(
        "INSERT INTO ty VALUES (true, -2, 4, 9000000000, 0.1, 1e20, 3.5, 12.50, 'x', 'ab', 'ab', decode('00ff', 'hex'), \
         '2026-01-02', '2026-01-02 03:04:05.25', '2026-01-02 03:04:05+00:00')",
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&c, "SELECT * FROM ty").await,
        vec![vec![
            s("t"),
            s("-2"),
            s("4"),
            s("9000000000"),
            s("0.1"),
            s("1e+20"),
            s("3.500"),
            s("12.5"),
            s("x"),
            s("ab"),
            s("ab  "),
            s("\\x00ff"),
            s("2026-01-02"),
            s("2026-01-02 03:04:05.25"),
            s("2026-01-02 03:04:05+00"),
        ]]
    );
}

#[tokio::test]
async fn result_columns_are_named_and_typed_like_postgres() {
    let (_dir, _server, c) = fresh().await;
    c.batch_execute("CREATE TABLE trips (id bigint PRIMARY KEY, city varchar(20), fare numeric(10,2))").await.unwrap();
    let st = c.prepare("SELECT city, sum(fare), count(*), 1, id::text, fare FROM trips GROUP BY city, id, fare").await.unwrap();
    let cols: Vec<(&str, &tokio_postgres::types::Type)> = st.columns().iter().map(|c| (c.name(), c.type_())).collect();
    use tokio_postgres::types::Type;
    assert_eq!(
        cols,
        vec![
            ("city", &Type::VARCHAR),
            ("sum", &Type::NUMERIC),
            ("count", &Type::INT8),
            ("?column?", &Type::INT8),
            ("id", &Type::TEXT),
            ("fare", &Type::NUMERIC),
        ]
    );
    // The simple protocol's RowDescription carries the same names.
    let msgs = c.simple_query("SELECT count(*) FROM trips").await.unwrap();
    match &msgs[0] {
        tokio_postgres::SimpleQueryMessage::RowDescription(cols) => assert_eq!(cols[0].name(), "count"),
        other => panic!("expected a RowDescription, got {other:?}"),
    }
    let v = rows(&c, "SELECT version()").await[0][0].clone().unwrap();
    assert!(v.starts_with("PostgreSQL 15.") && v.contains("Tarn"), "{v}");
}

/// Speak the startup handshake by hand and collect what the server reports.
async fn startup_parameters(addr: std::net::SocketAddr) -> std::collections::HashMap<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut body = 196_608i32.to_be_bytes().to_vec(); // protocol 3.0
    for kv in ["user", "tarn", "database", "tarn", "application_name", "raw-test"] {
        body.extend_from_slice(kv.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend(body);
    sock.write_all(&msg).await.unwrap();
    let mut params = std::collections::HashMap::new();
    loop {
        let tag = sock.read_u8().await.unwrap();
        let len = sock.read_i32().await.unwrap() as usize;
        let mut payload = vec![0; len - 4];
        sock.read_exact(&mut payload).await.unwrap();
        match tag {
            b'S' => {
                let mut parts = payload.split(|b| *b == 0).map(|p| String::from_utf8(p.to_vec()).unwrap());
                params.insert(parts.next().unwrap(), parts.next().unwrap());
            }
            b'Z' => return params,
            b'E' => panic!("startup failed: {}", String::from_utf8_lossy(&payload)),
            _ => {}
        }
    }
}

#[tokio::test]
async fn startup_sends_the_parameter_status_clients_expect() {
    let (_dir, server, _c) = fresh().await;
    let p = startup_parameters(server.addr).await;
    assert!(p["server_version"].starts_with("15."), "{p:?}");
    for (k, v) in [
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("TimeZone", "UTC"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("application_name", "raw-test"),
        ("session_authorization", "tarn"),
    ] {
        assert_eq!(p.get(k).map(String::as_str), Some(v), "{k} in {p:?}");
    }
}

#[tokio::test]
async fn cancel_request_stops_a_long_query_and_the_connection_stays_usable() {
    let (_dir, _server, c) = fresh().await;
    let token = c.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let started = std::time::Instant::now();
    // Minutes of work if it ran to the end.
    let err = c.simple_query("SELECT count(*) FROM generate_series(1, 100000000000)").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "cancel took {:?}", started.elapsed());
    canceller.await.unwrap();
    assert_eq!(rows(&c, "SELECT 1").await, vec![vec![s("1")]]);
}

#[tokio::test]
async fn statement_timeout_stops_long_statements_in_both_protocols() {
    let (_dir, _server, c) = fresh().await;
    c.batch_execute("SET statement_timeout = '300ms'").await.unwrap();
    assert_eq!(rows(&c, "SHOW statement_timeout").await, vec![vec![s("300ms")]]);
    let long = "SELECT count(*) FROM generate_series(1, 100000000000)";
    for extended in [false, true] {
        let started = std::time::Instant::now();
        let err = if extended { c.query(long, &[]).await.map(|_| ()).unwrap_err() } else { c.simple_query(long).await.map(|_| ()).unwrap_err() };
        let db = err.as_db_error().unwrap_or_else(|| panic!("{err}"));
        assert_eq!((db.code().code(), db.message()), ("57014", "canceling statement due to statement timeout"));
        let took = started.elapsed();
        assert!(took >= std::time::Duration::from_millis(300) && took < std::time::Duration::from_secs(5), "took {took:?}");
        assert_eq!(rows(&c, "SELECT 1").await, vec![vec![s("1")]]);
    }
    // Inside a block the timeout fails the block, as any error does.
    c.batch_execute("BEGIN").await.unwrap();
    assert_eq!(sqlstate(&c, long).await, "57014");
    assert_eq!(sqlstate(&c, "SELECT 1").await, "25P02");
    c.batch_execute("ROLLBACK; SET statement_timeout = 0").await.unwrap();
    assert_eq!(rows(&c, "SELECT count(*) FROM generate_series(1, 1000)").await, vec![vec![s("1000")]]);
}

#[tokio::test]
async fn cancel_stops_a_result_stream_of_the_extended_protocol() {
    let (_dir, _server, c) = fresh().await;
    let rows_stream = c.query_raw("SELECT * FROM generate_series(1, 10000000000)", std::iter::empty::<i64>()).await.unwrap();
    futures::pin_mut!(rows_stream);
    for _ in 0..1000 {
        rows_stream.next().await.unwrap().unwrap();
    }
    let cancelled_at = std::time::Instant::now();
    c.cancel_token().cancel_query(tokio_postgres::NoTls).await.unwrap();
    let mut after = 0u64;
    let err = loop {
        match rows_stream.next().await {
            Some(Ok(_)) => after += 1,
            Some(Err(e)) => break e,
            None => panic!("the stream ended without an error"),
        }
    };
    let took = cancelled_at.elapsed();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    eprintln!("cancel stopped the stream after {took:?} ({after} rows already in flight)");
    assert!(took < std::time::Duration::from_secs(2), "cancel took {took:?}");
    assert_eq!(rows(&c, "SELECT 1").await, vec![vec![s("1")]]);
}

/// Malformed extended-protocol requests get PostgreSQL's ErrorResponse —
/// code, wording and the message it comes at — and the connection goes on.
#[tokio::test]
async fn protocol_errors_are_postgres_errors_and_the_connection_goes_on() {
    use bytes::BytesMut;
    use postgres_protocol::message::frontend;
    let (_dir, server, _c) = fresh().await;
    let mut client = crate::extended_client::ExtendedClient::connect(server.addr, "tarn", "tarn").await.unwrap();
    let bind = |statement: &str, params: &[&[u8]], binary: bool, buf: &mut BytesMut| {
        let formats: Vec<i16> = if binary { vec![1] } else { vec![] };
        frontend::bind(
            "",
            statement,
            formats,
            params.iter().map(|p| Some(*p)),
            |p: Option<&[u8]>, buf: &mut BytesMut| -> Result<postgres_protocol::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                buf.extend_from_slice(p.unwrap());
                Ok(postgres_protocol::IsNull::No)
            },
            [0i16],
            buf,
        )
        .map_err(|_| "bind encoding")
        .unwrap();
    };
    let run = |build: &dyn Fn(&mut BytesMut)| {
        let mut buf = BytesMut::new();
        build(&mut buf);
        frontend::sync(&mut buf);
        buf
    };
    let simple = |sql: &str| {
        let mut buf = BytesMut::new();
        frontend::query(sql, &mut buf).unwrap();
        buf
    };
    const ABORTED: &str = "Error 25P02: current transaction is aborted, commands ignored until end of transaction block";
    let cases: Vec<(BytesMut, Vec<&str>)> = vec![
        (
            run(&|b| {
                bind("nope", &[], false, b);
                frontend::execute("", 0, b).unwrap();
            }),
            vec!["Error 26000: prepared statement \"nope\" does not exist"],
        ),
        (
            run(&|b| {
                frontend::parse("s1", "SELECT $1::int + 1", [23u32], b).unwrap();
                bind("s1", &[], false, b);
                frontend::execute("", 0, b).unwrap();
            }),
            vec!["ParseComplete", "Error 08P01: bind message supplies 0 parameters, but prepared statement \"s1\" requires 1"],
        ),
        (
            run(&|b| {
                bind("s1", &[b"1".as_slice(), b"2".as_slice()], false, b);
                frontend::execute("", 0, b).unwrap();
            }),
            vec!["Error 08P01: bind message supplies 2 parameters, but prepared statement \"s1\" requires 1"],
        ),
        (
            run(&|b| frontend::execute("nop", 0, b).unwrap()),
            vec!["Error 34000: portal \"nop\" does not exist"],
        ),
        (run(&|b| frontend::describe(b'S', "zzz", b).unwrap()), vec!["Error 26000: prepared statement \"zzz\" does not exist"]),
        (run(&|b| frontend::describe(b'P', "zzz", b).unwrap()), vec!["Error 34000: portal \"zzz\" does not exist"]),
        // A value that does not decode is refused at Bind, in PostgreSQL's
        // words: three bytes for an int4 run past the end, five leave one.
        (
            run(&|b| {
                bind("s1", &[[0u8, 1, 2].as_slice()], true, b);
                frontend::execute("", 0, b).unwrap();
            }),
            vec!["Error 08P01: insufficient data left in message"],
        ),
        (
            run(&|b| {
                bind("s1", &[[0u8, 0, 0, 1, 2].as_slice()], true, b);
                frontend::execute("", 0, b).unwrap();
            }),
            vec!["Error 22P03: incorrect binary data format in bind parameter 1"],
        ),
        (run(&|b| bind("s1", &[b"abc".as_slice()], false, b)), vec!["Error 22P02: invalid input syntax for type integer: \"abc\""]),
        (
            run(&|b| {
                frontend::parse("s2", "SELECT $1", [21u32], b).unwrap();
                bind("s2", &[b"99999".as_slice()], false, b);
            }),
            vec!["ParseComplete", "Error 22003: value \"99999\" is out of range for type smallint"],
        ),
        // A type OID no type has fails PostgreSQL's catalog lookup; one
        // Tarn does not have is refused at Parse too.
        (run(&|b| frontend::parse("u1", "SELECT $1", [999_999u32], b).unwrap()), vec!["Error XX000: cache lookup failed for type 999999"]),
        (run(&|b| frontend::parse("u2", "SELECT $1", [600u32], b).unwrap()), vec!["Error 0A000: parameters of type point"]),
        // In a failed block only a statement that ends it gets through
        // Parse, Bind or a row-returning Describe: 25P02 comes first, even
        // for a parameter that would not decode.
        (simple("BEGIN"), vec!["CommandComplete"]),
        (simple("SELECT 1/0"), vec!["RowDescription", "Error 22012"]),
        (run(&|b| bind("s1", &[b"abc".as_slice()], false, b)), vec![ABORTED]),
        (run(&|b| frontend::parse("f1", "SELECT 1", [], b).unwrap()), vec![ABORTED]),
        (run(&|b| frontend::parse("f3", "SELECT $1", [999_999u32], b).unwrap()), vec![ABORTED]),
        (run(&|b| frontend::describe(b'S', "s1", b).unwrap()), vec![ABORTED]),
        (
            run(&|b| {
                frontend::parse("f2", "ROLLBACK", [], b).unwrap();
                frontend::describe(b'S', "f2", b).unwrap();
                bind("f2", &[], false, b);
                frontend::execute("", 0, b).unwrap();
            }),
            vec!["ParseComplete", "ParameterDescription", "NoData", "BindComplete", "CommandComplete"],
        ),
        // The statement still works after all of that.
        (
            run(&|b| {
                bind("s1", &[b"41".as_slice()], false, b);
                frontend::execute("", 0, b).unwrap();
            }),
            vec!["BindComplete", "DataRow", "CommandComplete"],
        ),
    ];
    for (messages, expected) in cases {
        let replies = client.round_trip(&messages).await.unwrap();
        assert_eq!(replies.len(), expected.len(), "{replies:?}");
        for (reply, expected) in replies.iter().zip(&expected) {
            assert!(reply.starts_with(expected), "{replies:?} vs {expected:?}");
        }
    }
}
