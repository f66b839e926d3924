#!/usr/bin/env python3
"""Regenerate Tarn's pg_catalog column sets and built-in rows from a real PostgreSQL 15.

    python3 tools/pg_catalog/generate.py "host=127.0.0.1 port=5432 user=postgres"

Writes src/engine/pg_catalog/generated.rs (every system table and view Tarn
serves, with PostgreSQL's own oid and columns in PostgreSQL's order) and
src/engine/pg_catalog/data/*.tsv (the rows of built-in objects: types, access
methods, functions, ranges, collations), in COPY text format. Clients read
catalogs with `SELECT c.*`, so the column sets must be PostgreSQL's exactly;
generating them from a real server is how they stay exact.

Only psql is needed (no Python packages), so it runs on a bare machine.
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "src" / "engine" / "pg_catalog"

# The catalogs and views Tarn serves (schema, name).
PG_CATALOG = """
pg_aggregate pg_am pg_attrdef pg_attribute pg_auth_members pg_authid pg_available_extensions pg_cast
pg_class pg_collation pg_constraint pg_conversion pg_database pg_default_acl pg_depend pg_description
pg_enum pg_event_trigger pg_extension pg_foreign_data_wrapper pg_foreign_server pg_foreign_table
pg_index pg_indexes pg_inherits pg_init_privs pg_language pg_locks pg_matviews pg_namespace pg_opclass
pg_operator pg_partitioned_table pg_policy pg_prepared_statements pg_proc pg_publication
pg_publication_namespace pg_publication_rel pg_range pg_rewrite pg_roles pg_sequence pg_sequences
pg_settings pg_shdepend pg_shdescription pg_stat_activity pg_stat_database pg_stat_user_indexes
pg_stat_user_tables pg_statio_user_tables pg_statistic_ext pg_subscription pg_tables pg_tablespace
pg_timezone_names pg_trigger pg_type pg_user pg_views
""".split()
INFORMATION_SCHEMA = """
check_constraints columns constraint_column_usage key_column_usage referential_constraints routines
schemata table_constraints tables views
""".split()

# Catalog column types Tarn has no type for, as the Tarn type that holds them.
# int2vector/oidvector become arrays (PostgreSQL prints them space-separated);
# the reg* types become text (their text form is what clients compare).
TYPE_MAP = {
    "regproc": "text", "regtype": "text", "regtype[]": "text[]",
    "aclitem[]": "text[]", "anyarray": "text", "pg_node_tree": "text", "pg_lsn": "text", "inet": "text",
    "pg_dependencies": "text", "pg_ndistinct": "text", "pg_mcv_list": "text", "xid": "bigint",
    "int2vector": "smallint[]", "oidvector": "oid[]", "boolean[]": "boolean[]",
    "double precision[]": "double precision[]", "real[]": "real[]", "pg_statistic[]": "text",
    # information_schema's domains, as their base types
    "information_schema.sql_identifier": "name", "information_schema.character_data": "character varying",
    "information_schema.cardinal_number": "integer", "information_schema.yes_or_no": "character varying(3)",
    "information_schema.time_stamp": "timestamp with time zone",
}
SUPPORTED = {
    "boolean", "smallint", "integer", "bigint", "real", "double precision", "numeric", "text", "name", "oid",
    "bytea", "interval", "timestamp with time zone", "character varying", "character varying(3)", '"char"', '"char"[]',
    "text[]", "name[]", "oid[]", "smallint[]", "boolean[]", "double precision[]", "real[]",
}


def psql(conn, sql):
    return subprocess.run(["psql", "-X", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", conn, "-c", sql],
                          check=True, capture_output=True, text=True).stdout


def columns(conn, schema, name):
    rows = psql(conn, f"""
        SELECT a.attname, format_type(a.atttypid, a.atttypmod)
        FROM pg_attribute a WHERE a.attrelid = '{schema}.{name}'::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum""")
    out = []
    for line in rows.splitlines():
        col, ty = line.split("\t")
        ty = TYPE_MAP.get(ty, ty)
        if ty not in SUPPORTED:
            sys.exit(f"{schema}.{name}.{col}: no Tarn type for {ty}")
        out.append((col, ty, line.split("\t")[1]))
    return out


def select_list(cols):
    """Expressions that print each column the way Tarn's text input reads it."""
    exprs = []
    for col, ty, pg_ty in cols:
        q = f'"{col}"'
        if pg_ty in ("int2vector", "oidvector"):
            exprs.append(f"('{{' || replace({q}::text, ' ', ',') || '}}')")
        else:
            exprs.append(q)
    return ", ".join(exprs)


def dump(conn, name, cols, where):
    sql = f"COPY (SELECT {select_list(cols)} FROM pg_catalog.{name} WHERE {where} ORDER BY 1) TO STDOUT"
    text = subprocess.run(["psql", "-X", "-q", conn, "-c", sql], check=True, capture_output=True, text=True).stdout
    (OUT / "data").mkdir(parents=True, exist_ok=True)
    (OUT / "data" / f"{name}.tsv").write_text(text)
    return text.count("\n")


def main():
    conn = sys.argv[1] if len(sys.argv) > 1 else ""
    version = psql(conn, "SHOW server_version").strip()
    tables = []
    for schema, names in (("pg_catalog", PG_CATALOG), ("information_schema", INFORMATION_SCHEMA)):
        for name in names:
            oid, kind = psql(conn, f"SELECT oid, relkind FROM pg_class WHERE oid = '{schema}.{name}'::regclass").strip().split("\t")
            tables.append((schema, name, int(oid), kind, columns(conn, schema, name)))
    by_name = {(s, n): cols for s, n, _, _, cols in tables}

    counts = {
        # Built-in types of pg_catalog (not the row types of its own tables).
        "pg_type": dump(conn, "pg_type", by_name[("pg_catalog", "pg_type")], "typnamespace = 11 AND typrelid = 0"),
        "pg_range": dump(conn, "pg_range", by_name[("pg_catalog", "pg_range")], "true"),
        "pg_collation": dump(conn, "pg_collation", by_name[("pg_catalog", "pg_collation")],
                             "collname IN ('default', 'C', 'POSIX', 'ucs_basic')"),
        "pg_am": dump(conn, "pg_am", by_name[("pg_catalog", "pg_am")], "amname IN ('heap', 'btree')"),
        # Functions Tarn answers (the names its engine registers, see FUNCTIONS).
        "pg_proc": dump(conn, "pg_proc", by_name[("pg_catalog", "pg_proc")],
                        "pronamespace = 11 AND proname IN (" + ", ".join(f"'{f}'" for f in FUNCTIONS) + ")"),
    }

    lines = [
        "//! PostgreSQL's system tables and views as Tarn serves them: each one's oid,",
        "//! kind and columns (name and Tarn type, in PostgreSQL's order).",
        "//!",
        f"//! GENERATED by `tools/pg_catalog/generate.py` from PostgreSQL {version}; do not edit.",
        "",
        "use super::SystemTable;",
        "",
        "pub const SYSTEM_TABLES: &[SystemTable] = &[",
    ]
    for schema, name, oid, kind, cols in tables:
        col_list = ", ".join(f'("{c}", "{t.replace(chr(34), chr(92) + chr(34))}")' for c, t, _ in cols)
        lines.append(f'    SystemTable {{ schema: "{schema}", name: "{name}", oid: {oid}, kind: \'{kind}\', columns: &[{col_list}] }},')
    lines.append("];")
    (OUT / "generated.rs").write_text("\n".join(lines) + "\n")
    print(f"{len(tables)} system tables; rows: {counts}")


# The functions Tarn's engine answers that PostgreSQL has in pg_catalog
# (DataFusion's built-ins with PostgreSQL's names, and Tarn's own).
FUNCTIONS = """
abs acos acosh array_agg array_append array_cat array_dims array_length array_lower array_position
array_positions array_prepend array_remove array_replace array_to_string array_upper ascii asin asinh atan
atan2 atanh avg bit_and bit_length bit_or bool_and bool_or btrim cardinality cbrt ceil ceiling char_length
character_length chr coalesce col_description concat concat_ws corr cos cosh cot count covar_pop
covar_samp cume_dist current_database current_schema current_schemas current_setting date_bin date_part
date_trunc decode degrees dense_rank digest encode every exp factorial first_value floor format_type gcd
gen_random_uuid generate_series greatest has_database_privilege has_schema_privilege has_table_privilege
initcap isfinite lag last_value lcm lead least left length ln log lower lpad ltrim max md5 min mod now
nth_value ntile nullif obj_description octet_length overlay percent_rank pg_backend_pid pg_encoding_to_char
pg_get_constraintdef pg_get_expr pg_get_indexdef pg_get_userbyid pg_relation_size pg_table_is_visible
pg_total_relation_size pg_type_is_visible pg_typeof pi position power radians random rank regexp_count
regexp_like regexp_match regexp_replace repeat replace reverse right round row_number rpad rtrim set_config
sha224 sha256 sha384 sha512 sign sin sinh split_part sqrt starts_with stddev stddev_pop stddev_samp
string_agg strpos substr substring sum tan tanh to_char to_hex to_regclass to_regtype to_timestamp
translate trim trunc unnest upper var_pop var_samp variance version
""".split()

if __name__ == "__main__":
    main()
