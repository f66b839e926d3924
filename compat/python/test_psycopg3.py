"""psycopg 3: text and binary results, binary parameters (it sends ints as
int2/int4/int8 by value), prepared statements, server-side cursors, errors."""
import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Json, Jsonb

from cases import CASES, assert_round_trip, table_name
from conftest import dsn


def connect(t, **kw):
    return psycopg.connect(dsn(t), autocommit=True, **kw)


def wrap(sql_type, value):
    if sql_type == "json" and value is not None:
        return Json(value)
    if sql_type == "jsonb" and value is not None:
        return Jsonb(value)
    return value


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("sql_type,values", CASES, ids=[c[0] for c in CASES])
def test_type_round_trip(target, sql_type, values, binary):
    name = table_name("pg3", sql_type) + ("_b" if binary else "_t")
    with connect(target) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v {sql_type})")
        rows = list(enumerate(values + [None]))
        with conn.cursor(binary=binary) as cur:
            # Binary parameters in binary mode, text ones otherwise.
            fmt = "%b" if binary else "%t"
            cur.executemany(f"INSERT INTO {name} (id, v) VALUES (%s, {fmt})", [(i, wrap(sql_type, v)) for i, v in rows])
            cur.execute(f"SELECT id, v FROM {name} ORDER BY id")
            assert_round_trip(sql_type, rows, cur.fetchall())
            # The value compares equal to itself as a parameter, server side.
            if sql_type not in ("json", "real", "double precision") and not sql_type.endswith("[]") and values:
                cur.execute(f"SELECT count(*) FROM {name} WHERE v = {fmt}", [wrap(sql_type, values[0])])
                assert cur.fetchone()[0] == 1
        conn.execute(f"DROP TABLE {name}")


def test_prepared_statement_reused(target):
    with connect(target) as conn:
        conn.execute("DROP TABLE IF EXISTS pg3_prep")
        conn.execute("CREATE TABLE pg3_prep (id bigint PRIMARY KEY, label text, amount numeric(10,2))")
        for i in range(8):
            conn.execute("INSERT INTO pg3_prep VALUES (%s, %s, %s)", (i, f"row {i}", i * 1.25), prepare=True)
        for i in range(8):
            row = conn.execute("SELECT label, amount FROM pg3_prep WHERE id = %s", (i,), prepare=True).fetchone()
            assert row[0] == f"row {i}"
            assert float(row[1]) == i * 1.25
        assert conn.execute("SELECT count(*), sum(id) FROM pg3_prep").fetchone() == (8, 28)


def test_nulls_and_empty_results(target):
    with connect(target) as conn:
        assert conn.execute("SELECT 1 WHERE false").fetchall() == []
        cur = conn.execute("SELECT NULL::int AS a, NULL::text AS b")
        assert cur.fetchone() == (None, None)
        assert [d.name for d in cur.description] == ["a", "b"]


def test_errors_and_recovery(target):
    with connect(target) as conn:
        conn.execute("DROP TABLE IF EXISTS pg3_err")
        conn.execute("CREATE TABLE pg3_err (id int PRIMARY KEY, v text NOT NULL)")
        conn.execute("INSERT INTO pg3_err VALUES (1, 'a')")
        with pytest.raises(errors.UniqueViolation):
            conn.execute("INSERT INTO pg3_err VALUES (%s, %s)", (1, "b"))
        with pytest.raises(errors.NotNullViolation):
            conn.execute("INSERT INTO pg3_err VALUES (%s, %s)", (2, None))
        with pytest.raises(errors.UndefinedTable):
            conn.execute("SELECT * FROM pg3_missing")
        with pytest.raises(errors.UndefinedColumn):
            conn.execute("SELECT nope FROM pg3_err")
        with pytest.raises(errors.InvalidTextRepresentation):
            conn.execute("SELECT 'x'::int")
        with pytest.raises(errors.DivisionByZero):
            conn.execute("SELECT 1 / %s", (0,))
        assert conn.execute("SELECT count(*) FROM pg3_err").fetchone() == (1,)


def test_transaction_failed_state(target):
    with psycopg.connect(dsn(target)) as conn:  # not autocommit: psycopg opens a block
        conn.execute("DROP TABLE IF EXISTS pg3_tx")
        conn.execute("CREATE TABLE pg3_tx (id int PRIMARY KEY)")
        conn.commit()
        conn.execute("INSERT INTO pg3_tx VALUES (1)")
        with pytest.raises(errors.DivisionByZero):
            conn.execute("SELECT 1/0")
        with pytest.raises(errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM pg3_tx").fetchone() == (0,)
        conn.execute("INSERT INTO pg3_tx VALUES (2)")
        conn.commit()
        assert conn.execute("SELECT id FROM pg3_tx").fetchall() == [(2,)]


def test_server_side_cursor(target):
    with psycopg.connect(dsn(target)) as conn:
        with conn.cursor(name="pg3_cur") as cur:
            cur.itersize = 100
            cur.execute("SELECT g, g * 2 FROM generate_series(1, 1000) AS t(g) ORDER BY g")
            first = cur.fetchmany(10)
            assert first == [(i, i * 2) for i in range(1, 11)]
            rest = cur.fetchall()
            assert len(rest) == 990 and rest[-1] == (1000, 2000)


def test_copy(target):
    with connect(target) as conn:
        conn.execute("DROP TABLE IF EXISTS pg3_copy")
        conn.execute("CREATE TABLE pg3_copy (id int PRIMARY KEY, name text, at date)")
        with conn.cursor() as cur:
            with cur.copy("COPY pg3_copy (id, name, at) FROM STDIN") as copy:
                for i in range(500):
                    copy.write_row((i, f"name {i}" if i % 7 else None, f"2026-01-{1 + i % 28:02d}"))
            assert conn.execute("SELECT count(*), count(name) FROM pg3_copy").fetchone() == (500, 428)
            out = []
            with cur.copy("COPY (SELECT id, name FROM pg3_copy WHERE id < 3 ORDER BY id) TO STDOUT") as copy:
                for row in copy.rows():
                    out.append(row)
            assert out == [("0", None), ("1", "name 1"), ("2", "name 2")]


def test_copy_binary(target):
    """COPY in PostgreSQL's binary format both ways, every common type;
    a malformed stream is refused with 22P04 and keeps nothing."""
    import datetime
    import decimal
    import uuid
    with connect(target) as conn:
        conn.execute("DROP TABLE IF EXISTS pg3_copy_bin")
        conn.execute("CREATE TABLE pg3_copy_bin (id int8 PRIMARY KEY, ok bool, small int2, n numeric(12,3), x float8, "
                     "label text, raw bytea, day date, at timestamptz, u uuid, tags text[])")
        types = ["int8", "bool", "int2", "numeric", "float8", "text", "bytea", "date", "timestamptz", "uuid", "text[]"]
        rows = [
            (i, i % 2 == 0, i - 3, decimal.Decimal(f"{i}.125"), i * 0.5, f"label {i}" if i % 3 else None, bytes([i, 0, 255]),
             datetime.date(2026, 1, 1 + i), datetime.datetime(2026, 1, 1, 12, i, tzinfo=datetime.timezone.utc),
             uuid.UUID(int=i), ["a", None, f"t{i}"])
            for i in range(6)
        ]
        with conn.cursor() as cur:
            with cur.copy("COPY pg3_copy_bin FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for r in rows:
                    copy.write_row(r)
            assert cur.rowcount == 6
            with cur.copy("COPY (SELECT * FROM pg3_copy_bin ORDER BY id) TO STDOUT (FORMAT BINARY)") as copy:
                copy.set_types(types)
                back = list(copy.rows())
            assert back == rows
            with cur.copy("COPY (SELECT id FROM pg3_copy_bin WHERE false) TO STDOUT WITH (FORMAT binary)") as copy:
                raw = b"".join(bytes(b) for b in copy)
            assert raw == b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\xff\xff"  # header, no tuples, trailer
            assert cur.rowcount == 0
        with pytest.raises(psycopg.errors.BadCopyFileFormat):
            with conn.cursor() as cur:
                with cur.copy("COPY pg3_copy_bin (id) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\x00\x01\x00\x00\x00\x08" + b"\x00" * 7 + b"\x2a"
                               + b"\x00\x01\x00\x00\x00\x03ab")
        assert conn.execute("SELECT count(*) FROM pg3_copy_bin").fetchone() == (6,)


def test_settings_and_parameter_status(target):
    with connect(target) as conn:
        conn.execute("SET application_name = 'compat-suite'")
        assert conn.info.parameter_status("application_name") == "compat-suite"
        assert conn.execute("SHOW application_name").fetchone() == ("compat-suite",)
        conn.execute("SET TimeZone = 'UTC'")
        assert conn.info.parameter_status("TimeZone") == "UTC"
        assert conn.info.parameter_status("integer_datetimes") == "on"
        assert conn.info.server_version >= 150000
