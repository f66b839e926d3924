"""SQLAlchemy 2 over psycopg2, psycopg 3 and asyncpg: first connect (it parses
version(), asks current_schema() and the isolation level), inspect() of
tables, columns and keys through the catalogs, an ORM model doing
create/insert/query, and pandas read_sql / to_sql."""
import asyncio

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

DRIVERS = ["psycopg2", "psycopg", "asyncpg"]


def url(t, driver):
    return f"postgresql+{driver}://{t['user']}@{t['host']}:{t['port']}/{t['dbname']}"


def run(t, driver, fn):
    """fn(sync_connection) on a fresh engine of `driver`."""
    if driver == "asyncpg":
        async def go():
            engine = create_async_engine(url(t, driver))
            try:
                async with engine.begin() as conn:
                    return await conn.run_sync(fn)
            finally:
                await engine.dispose()
        return asyncio.run(go())
    engine = sa.create_engine(url(t, driver))
    try:
        with engine.begin() as conn:
            return fn(conn)
    finally:
        engine.dispose()


def setup_tables(conn, prefix):
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}_item")
    conn.exec_driver_sql(f"CREATE TABLE {prefix}_item (id integer PRIMARY KEY, name varchar(40) NOT NULL, price numeric(10,2), note text DEFAULT 'none')")


@pytest.mark.parametrize("driver", DRIVERS)
def test_first_connect_and_inspect(target, driver):
    prefix = f"sa_{driver}"

    def check(conn):
        setup_tables(conn, prefix)
        assert conn.dialect.server_version_info[0] == 15
        assert conn.dialect.default_schema_name == "public"
        insp = sa.inspect(conn)
        assert f"{prefix}_item" in insp.get_table_names()
        cols = {c["name"]: c for c in insp.get_columns(f"{prefix}_item")}
        assert list(cols) == ["id", "name", "price", "note"]
        assert isinstance(cols["id"]["type"], sa.Integer)
        assert isinstance(cols["name"]["type"], sa.String) and cols["name"]["type"].length == 40
        assert cols["name"]["nullable"] is False and cols["price"]["nullable"] is True
        assert (cols["price"]["type"].precision, cols["price"]["type"].scale) == (10, 2)
        assert cols["note"]["default"] == "'none'::text"
        assert insp.get_pk_constraint(f"{prefix}_item")["constrained_columns"] == ["id"]
        assert insp.get_foreign_keys(f"{prefix}_item") == []
        assert insp.has_table(f"{prefix}_item") and not insp.has_table(f"{prefix}_missing")
        return True

    assert run(target, driver, check)


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "sa_orm_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(30))
    balance: Mapped[int] = mapped_column(sa.BigInteger, default=0)


def test_orm_create_insert_query(target):
    engine = sa.create_engine(url(target, "psycopg"))
    try:
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
        with Session(engine) as s:
            s.add_all([Account(id=1, owner="ann", balance=10), Account(id=2, owner="bob")])
            s.commit()
        with Session(engine) as s:
            rows = s.scalars(sa.select(Account).order_by(Account.id)).all()
            assert [(a.id, a.owner, a.balance) for a in rows] == [(1, "ann", 10), (2, "bob", 0)]
            bob = s.get(Account, 2)
            bob.balance = 5
            s.commit()
            assert s.scalar(sa.select(sa.func.sum(Account.balance))) == 15
        Base.metadata.drop_all(engine)
    finally:
        engine.dispose()


def test_pandas_to_sql_and_read_sql(target):
    engine = sa.create_engine(url(target, "psycopg2"))
    try:
        df = pd.DataFrame({"k": [1, 2, 3], "label": ["a", "b", None], "x": [0.5, 1.5, 2.5]})
        df.to_sql("sa_pandas", engine, if_exists="replace", index=False)
        back = pd.read_sql("SELECT k, label, x FROM sa_pandas ORDER BY k", engine)
        assert back["k"].tolist() == [1, 2, 3]
        assert back["label"].tolist()[:2] == ["a", "b"] and back["label"].isna().tolist()[2]
        assert back["x"].tolist() == [0.5, 1.5, 2.5]
        assert pd.read_sql_table("sa_pandas", engine).shape == (3, 3)
        df.to_sql("sa_pandas", engine, if_exists="append", index=False)
        assert pd.read_sql("SELECT count(*) AS n FROM sa_pandas", engine)["n"][0] == 6
    finally:
        engine.dispose()
