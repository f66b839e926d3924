"""asyncpg: binary results for everything, Parse/Describe/Flush before Bind,
prepared statements, cursors (portals with row limits), errors."""
import asyncio
import json

import asyncpg
import pytest

from cases import CASES, assert_round_trip, table_name


def run(coro):
    return asyncio.run(coro)


async def connect(t):
    return await asyncpg.connect(host=t["host"], port=t["port"], user=t["user"], database=t["dbname"])


def to_asyncpg(sql_type, v):
    # asyncpg carries json/jsonb as text (its binary jsonb format is a version
    # byte and the text); set_type_codec would query pg_type, which is the
    # catalog issue's to test.
    if sql_type in ("json", "jsonb") and v is not None:
        return json.dumps(v)
    return v


@pytest.mark.parametrize("sql_type,values", CASES, ids=[c[0] for c in CASES])
def test_type_round_trip(target, sql_type, values):
    async def go():
        name = table_name("apg", sql_type)
        conn = await connect(target)
        try:
            await conn.execute(f"DROP TABLE IF EXISTS {name}")
            await conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v {sql_type})")
            rows = list(enumerate(values + [None]))
            await conn.executemany(f"INSERT INTO {name} (id, v) VALUES ($1, $2)", [(i, to_asyncpg(sql_type, v)) for i, v in rows])
            got = await conn.fetch(f"SELECT id, v FROM {name} ORDER BY id")
            decode = json.loads if sql_type in ("json", "jsonb") else (lambda v: v)
            assert_round_trip(sql_type, rows, [(r["id"], r["v"]) for r in got], decode)
            await conn.execute(f"DROP TABLE {name}")
        finally:
            await conn.close()
    run(go())


def test_one_parameter_in_two_contexts(target):
    """`$1` next to an integer column and next to a literal is one int4
    parameter, and a prepared statement gives the same rows however often
    it runs (later runs reuse a plan kept for the parameter's type)."""
    async def go():
        conn = await connect(target)
        try:
            await conn.execute("DROP TABLE IF EXISTS apg_two")
            await conn.execute("CREATE TABLE apg_two (a int, b int)")
            await conn.executemany("INSERT INTO apg_two VALUES ($1, $2)", [(1, 10), (2, 20), (3, None)])
            stmt = await conn.prepare("SELECT a, b + $1 AS s FROM apg_two WHERE a > $1 - 1 ORDER BY a")
            assert [p.name for p in stmt.get_parameters()] == ["int4"]
            assert [a.type.name for a in stmt.get_attributes()] == ["int4", "int4"]
            for _ in range(3):
                assert [tuple(r) for r in await stmt.fetch(2)] == [(2, 22), (3, None)]
            assert [tuple(r) for r in await stmt.fetch(1)] == [(1, 11), (2, 21), (3, None)]
            # Next to a bigint column and a literal: one int8 parameter.
            await conn.execute("DROP TABLE IF EXISTS apg_two_big")
            await conn.execute("CREATE TABLE apg_two_big (id bigint)")
            await conn.execute("INSERT INTO apg_two_big VALUES (1), (2)")
            big = await conn.prepare("SELECT id, id + $1 AS s FROM apg_two_big WHERE id > $1 - 1 ORDER BY id")
            assert [p.name for p in big.get_parameters()] == ["int8"]
            assert [tuple(r) for r in await big.fetch(2)] == [(2, 4)]
            await conn.execute("DROP TABLE apg_two_big")
            await conn.execute("DROP TABLE apg_two")
        finally:
            await conn.close()
    run(go())


def test_prepared_and_cursor(target):
    async def go():
        conn = await connect(target)
        try:
            await conn.execute("DROP TABLE IF EXISTS apg_cur")
            await conn.execute("CREATE TABLE apg_cur (id bigint PRIMARY KEY, v double precision)")
            await conn.executemany("INSERT INTO apg_cur VALUES ($1, $2)", [(i, i / 4) for i in range(1000)])
            stmt = await conn.prepare("SELECT v FROM apg_cur WHERE id = $1")
            for i in range(10):
                assert await stmt.fetchval(i * 7) == i * 7 / 4
            assert [a.name for a in stmt.get_attributes()] == ["v"]
            assert [p.name for p in stmt.get_parameters()] == ["int8"]
            async with conn.transaction():
                seen = [r["id"] async for r in conn.cursor("SELECT id FROM apg_cur ORDER BY id", prefetch=64)]
                assert seen == list(range(1000))
                cur = await conn.cursor("SELECT id FROM apg_cur WHERE id >= $1 ORDER BY id", 990)
                assert [r["id"] for r in await cur.fetch(4)] == [990, 991, 992, 993]
                assert [r["id"] for r in await cur.fetch(100)] == list(range(994, 1000))
        finally:
            await conn.close()
    run(go())


def test_errors_and_recovery(target):
    async def go():
        conn = await connect(target)
        try:
            await conn.execute("DROP TABLE IF EXISTS apg_err")
            await conn.execute("CREATE TABLE apg_err (id int PRIMARY KEY, v text NOT NULL)")
            await conn.execute("INSERT INTO apg_err VALUES (1, 'a')")
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute("INSERT INTO apg_err VALUES ($1, $2)", 1, "b")
            with pytest.raises(asyncpg.NotNullViolationError):
                await conn.execute("INSERT INTO apg_err VALUES ($1, $2)", 2, None)
            with pytest.raises(asyncpg.UndefinedTableError):
                await conn.fetch("SELECT * FROM apg_missing")
            with pytest.raises(asyncpg.PostgresSyntaxError):
                await conn.fetch("SELEC 1")
            with pytest.raises(asyncpg.DataError):
                await conn.fetch("SELECT $1::int", "x")  # asyncpg refuses a str for int4
            assert await conn.fetchval("SELECT count(*) FROM apg_err") == 1
            assert await conn.fetch("SELECT 1 WHERE false") == []
            tx = conn.transaction()
            await tx.start()
            with pytest.raises(asyncpg.DivisionByZeroError):
                await conn.fetch("SELECT 1/0")
            with pytest.raises(asyncpg.InFailedSQLTransactionError):
                await conn.fetch("SELECT 1")
            await tx.rollback()
            assert await conn.fetchval("SELECT 41 + 1") == 42
        finally:
            await conn.close()
    run(go())
