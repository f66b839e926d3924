"""Catalog queries real tools send (DBeaver's connect-and-browse queries,
Metabase- and Grafana-style information_schema queries, asyncpg's type
introspection), run against a schema with a key, NOT NULL, a default, an
index and a view. Each asserts real content, and the part of the answer
that is about that schema must equal PostgreSQL's."""
import asyncio

import asyncpg
import psycopg
import pytest

from conftest import TARGETS, dsn

SCHEMA = [
    "DROP VIEW IF EXISTS cc_v",
    "DROP TABLE IF EXISTS cc_t",
    "CREATE TABLE cc_t (id integer PRIMARY KEY, name varchar(30) NOT NULL DEFAULT 'n', amount numeric(12,3), tags text[])",
    "CREATE INDEX cc_t_name_idx ON cc_t (name)",
    "CREATE VIEW cc_v AS SELECT id, name FROM cc_t",
]


def connect(t):
    conn = psycopg.connect(dsn(t), autocommit=True)
    for stmt in SCHEMA:
        conn.execute(stmt)
    return conn


def table_oid(conn):
    return conn.execute("SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = 'public' AND c.relname = 'cc_t'").fetchone()[0]


# (name, SQL with {oid} for cc_t's oid, projection of the answer that must equal PostgreSQL's)
DBEAVER = [
    ("current_database", "SELECT current_database()", lambda rows: len(rows)),
    ("version", "SELECT version()", lambda rows: rows[0][0].startswith("PostgreSQL 15.")),
    ("databases", "SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE 1 = 1 AND datallowconn AND NOT datistemplate ORDER BY db.datname",
     lambda rows: len(rows) >= 1),
    ("templates", "SELECT db.datname FROM pg_catalog.pg_database db WHERE datistemplate AND datname = 'nope'", lambda rows: rows),
    ("settings", "select * from pg_catalog.pg_settings where name='standard_conforming_strings'", lambda rows: rows[0][1]),
    ("schema and user", "SELECT current_schema(),session_user", lambda rows: rows[0][0]),
    ("roles", "SELECT a.oid,a.* FROM pg_catalog.pg_roles a WHERE a.rolcanlogin ORDER BY a.oid", lambda rows: rows[0][0]),
    ("access methods", "SELECT am.oid,am.* FROM pg_catalog.pg_am am WHERE am.amname IN ('btree', 'heap') ORDER BY am.oid",
     lambda rows: [(r[0], r[1]) for r in rows]),
    ("collations", "SELECT c.oid,c.* FROM pg_catalog.pg_collation c WHERE c.collname IN ('C', 'POSIX', 'default') ORDER BY c.oid",
     lambda rows: [(r[0], r[1]) for r in rows]),
    ("namespaces", "SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d "
     "ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass WHERE n.nspname IN ('public', 'pg_catalog') ORDER BY nspname",
     lambda rows: [(r[0], r[1]) for r in rows]),
    ("types", "SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description "
     "FROM pg_catalog.pg_type t LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem LEFT OUTER JOIN pg_catalog.pg_class c "
     "ON c.oid=t.typrelid LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid WHERE t.typname IS NOT NULL "
     "AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C') AND t.typnamespace = 11 "
     "AND t.typname IN ('int4', 'text', '_int4', 'numeric', 'timestamptz') ORDER BY t.oid",
     lambda rows: [(r[0], r[1], r[5], r[7], r[8]) for r in rows]),
    ("relations", "SELECT c.oid,c.*,d.description FROM pg_catalog.pg_class c LEFT OUTER JOIN pg_catalog.pg_description d "
     "ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass WHERE c.relnamespace=2200 AND c.relkind not in ('i','I','c') "
     "AND c.relname LIKE 'cc\\_%' ORDER BY c.relname", lambda rows: [(r[2], r[17]) for r in rows]),
    ("attributes", "SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description "
     "FROM pg_catalog.pg_attribute a INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid) LEFT OUTER JOIN pg_catalog.pg_attrdef ad "
     "ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum) LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid) "
     "WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid={oid} AND a.attnum > 0 ORDER BY a.attnum",
     lambda rows: [(r[0], r[2], r[3], r[6], r[9], r[14], r[-2]) for r in rows]),
    ("constraints", "SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description FROM pg_catalog.pg_constraint c "
     "INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid "
     "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass "
     "WHERE c.conrelid={oid} ORDER BY c.oid", lambda rows: [(r[2], r[4]) for r in rows]),
    ("indexes", "SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as tabrelname,dsc.description "
     "FROM pg_catalog.pg_index i INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid "
     "LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid WHERE i.indrelid={oid} ORDER BY c.relname",
     lambda rows: [(r[-6], r[4], r[6]) for r in rows]),
    ("index definition", "SELECT pg_catalog.pg_get_indexdef(i.indexrelid, 1, true) FROM pg_catalog.pg_index i WHERE i.indrelid={oid} ORDER BY 1",
     lambda rows: rows),
    ("enums", "SELECT * FROM pg_catalog.pg_enum", lambda rows: rows),
    ("inheritance", "SELECT i.inhrelid relid, pc.relnamespace parent_ns, pc.oid parent_oid, i.inhseqno FROM pg_catalog.pg_inherits i "
     "JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent WHERE i.inhrelid = {oid}", lambda rows: rows),
    ("default acl", "SELECT * FROM pg_default_acl WHERE defaclnamespace = 2200", lambda rows: rows),
    ("extensions", "SELECT e.oid, e.* FROM pg_catalog.pg_extension e WHERE e.extname = 'nope'", lambda rows: rows),
]

# Metabase / Grafana style: information_schema and friends.
INFORMATION_SCHEMA = [
    ("grafana tables", "SELECT quote_ident(table_name) AS table_name FROM information_schema.tables WHERE "
     "quote_ident(table_schema) NOT IN ('information_schema', 'pg_catalog') AND table_name LIKE 'cc\\_%' ORDER BY table_name",
     lambda rows: rows),
    ("grafana columns", "SELECT quote_ident(column_name) AS column_name, data_type AS data_type FROM information_schema.columns "
     "WHERE table_name = 'cc_t' ORDER BY ordinal_position", lambda rows: rows),
    ("metabase schemas", "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' "
     "AND has_schema_privilege(nspname, 'USAGE') ORDER BY nspname", lambda rows: rows),
    ("metabase tables", "SELECT n.nspname AS schema, c.relname AS name, CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'v' THEN 'VIEW' END AS type, "
     "obj_description(c.oid, 'pg_class') AS description FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
     "WHERE c.relkind IN ('r', 'v') AND n.nspname = 'public' AND c.relname LIKE 'cc\\_%' AND has_table_privilege(c.oid, 'SELECT') ORDER BY 2",
     lambda rows: rows),
    ("columns detail", "SELECT column_name, ordinal_position, column_default, is_nullable, data_type, character_maximum_length, "
     "numeric_precision, numeric_scale, udt_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'cc_t' "
     "ORDER BY ordinal_position", lambda rows: rows),
    ("key columns", "SELECT tc.constraint_name, tc.constraint_type, kcu.column_name, kcu.ordinal_position FROM information_schema.table_constraints tc "
     "JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name AND tc.table_name = kcu.table_name "
     "WHERE tc.table_name = 'cc_t' AND tc.constraint_type = 'PRIMARY KEY'", lambda rows: rows),
    # (is_updatable differs on purpose: Tarn's views are not updatable.)
    ("views", "SELECT table_name, check_option FROM information_schema.views WHERE table_name = 'cc_v'", lambda rows: rows),
    ("schemata", "SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ('public', 'pg_catalog') ORDER BY 1",
     lambda rows: rows),
    ("regclass round trip", "SELECT 'cc_t'::regclass::oid = {oid}, {oid}::regclass::text, to_regclass('cc_missing') IS NULL", lambda rows: rows),
    ("pg_typeof and format_type", "SELECT pg_typeof(1::int4), pg_typeof('a'::text), pg_typeof(1.5), format_type(1700, 786439), format_type(1043, 34)",
     lambda rows: rows),
    ("array subquery", "SELECT array_to_string(ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = {oid} "
     "AND a.attnum > 0 ORDER BY a.attnum), ',')", lambda rows: rows),
    ("current_setting", "SELECT current_setting('server_version_num')::int >= 150000, current_setting('nope', true) IS NULL",
     lambda rows: rows),
]


def answer(t, sql):
    with connect(t) as conn:
        oid = table_oid(conn)
        return conn.execute(sql.format(oid=oid)).fetchall()


@pytest.mark.parametrize("name,sql,project", DBEAVER + INFORMATION_SCHEMA, ids=[q[0] for q in DBEAVER + INFORMATION_SCHEMA])
def test_tool_query(target, name, sql, project):
    got = project(answer(target, sql))
    assert got is not None
    pg = TARGETS.get("postgres")
    pg = None if pg is None else dict(pg, name="postgres")
    if pg is not None and target["name"] != "postgres" and name not in ("current_database", "version", "roles", "schema and user"):
        assert got == project(answer(pg, sql))


def test_information_schema_columns_content(target):
    rows = answer(target, INFORMATION_SCHEMA[4][1])
    assert rows == [
        ("id", 1, None, "NO", "integer", None, 32, 0, "int4"),
        ("name", 2, "'n'::character varying", "NO", "character varying", 30, None, None, "varchar"),
        ("amount", 3, None, "YES", "numeric", None, 12, 3, "numeric"),
        ("tags", 4, None, "YES", "ARRAY", None, None, None, "_text"),
    ]


def test_asyncpg_type_introspection(target):
    """asyncpg learns codecs for types it has no built-in codec for (here:
    arrays) with a recursive pg_type query, after current_setting('jit')."""
    async def go():
        conn = await asyncpg.connect(host=target["host"], port=target["port"], user=target["user"], database=target["dbname"])
        try:
            await conn.execute("DROP TABLE IF EXISTS intro_arr")
            await conn.execute("CREATE TABLE intro_arr (id int PRIMARY KEY, xs int[], ys text[])")
            await conn.execute("INSERT INTO intro_arr VALUES ($1, $2, $3)", 1, [1, None, 3], ["a", "b c"])
            return await conn.fetch("SELECT xs, ys FROM intro_arr")
        finally:
            await conn.close()
    rows = asyncio.run(go())
    assert [tuple(r) for r in rows] == [([1, None, 3], ["a", "b c"])]
