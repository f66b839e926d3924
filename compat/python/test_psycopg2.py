"""psycopg2: the simple query protocol with client-side interpolation, text
results, named (server-side) cursors, COPY, errors."""
import psycopg2
import psycopg2.errors as errors
import psycopg2.extras
import pytest

from cases import CASES, assert_round_trip, table_name
from conftest import dsn

psycopg2.extras.register_uuid()
# psycopg2 parses json/jsonb itself; interval → timedelta, arrays → lists.

SKIP_IN_PSYCOPG2 = {"json", "jsonb"}  # psycopg2 needs Json() wrappers: covered below


@pytest.mark.parametrize("sql_type,values", [c for c in CASES if c[0] not in SKIP_IN_PSYCOPG2], ids=[c[0] for c in CASES if c[0] not in SKIP_IN_PSYCOPG2])
def test_type_round_trip(target, sql_type, values):
    name = table_name("pg2", sql_type)
    conn = psycopg2.connect(dsn(target))
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {name}")
        cur.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v {sql_type})")
        rows = list(enumerate(values + [None]))
        for i, v in rows:
            if isinstance(v, float):  # psycopg2 writes inf/nan bare
                v = str(v)
            cur.execute(f"INSERT INTO {name} (id, v) VALUES (%s, CAST(%s AS {sql_type}))", (i, v))
        cur.execute(f"SELECT id, v FROM {name} ORDER BY id")
        assert_round_trip(sql_type, rows, cur.fetchall())
        cur.execute(f"DROP TABLE {name}")
    finally:
        conn.close()


def test_json(target):
    conn = psycopg2.connect(dsn(target))
    try:
        cur = conn.cursor()
        cur.execute("SELECT %s::json, %s::jsonb", (psycopg2.extras.Json({"a": [1, 2]}), psycopg2.extras.Json({"b": None})))
        assert cur.fetchone() == ({"a": [1, 2]}, {"b": None})
    finally:
        conn.close()


def test_transactions_named_cursor_and_errors(target):
    conn = psycopg2.connect(dsn(target))
    try:
        cur = conn.cursor()
        cur.execute("DROP TABLE IF EXISTS pg2_tx")
        cur.execute("CREATE TABLE pg2_tx (id int PRIMARY KEY, v text)")
        conn.commit()
        cur.executemany("INSERT INTO pg2_tx VALUES (%s, %s)", [(i, f"v{i}") for i in range(300)])
        conn.commit()
        named = conn.cursor("pg2_named")
        named.itersize = 50
        named.execute("SELECT id, v FROM pg2_tx ORDER BY id")
        assert named.fetchmany(3) == [(0, "v0"), (1, "v1"), (2, "v2")]
        assert len(named.fetchall()) == 297
        named.close()
        conn.commit()
        with pytest.raises(errors.UniqueViolation):
            cur.execute("INSERT INTO pg2_tx VALUES (1, 'again')")
        with pytest.raises(errors.InFailedSqlTransaction):
            cur.execute("SELECT 1")
        conn.rollback()
        cur.execute("SELECT count(*) FROM pg2_tx WHERE v IS NOT NULL")
        assert cur.fetchone() == (300,)
        cur.execute("SELECT 1 WHERE false")
        assert cur.fetchall() == []
    finally:
        conn.close()


def test_copy_expert(target):
    import io
    conn = psycopg2.connect(dsn(target))
    try:
        cur = conn.cursor()
        cur.execute("DROP TABLE IF EXISTS pg2_copy")
        cur.execute("CREATE TABLE pg2_copy (id int, name text)")
        cur.copy_expert("COPY pg2_copy FROM STDIN WITH (FORMAT csv, HEADER true)", io.StringIO("id,name\n1,one\n2,\"t,wo\"\n3,\n"))
        conn.commit()
        out = io.StringIO()
        cur.copy_expert("COPY (SELECT * FROM pg2_copy ORDER BY id) TO STDOUT WITH (FORMAT csv)", out)
        assert out.getvalue() == '1,one\n2,"t,wo"\n3,\n'
        with pytest.raises(errors.InvalidTextRepresentation):
            cur.copy_expert("COPY pg2_copy FROM STDIN WITH (FORMAT csv)", io.StringIO("4,four\nfive,5\n"))
        conn.rollback()
        cur.execute("SELECT count(*) FROM pg2_copy")
        assert cur.fetchone() == (3,)
    finally:
        conn.close()
