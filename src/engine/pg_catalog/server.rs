//! The server-wide catalogs: schemas, the database, roles, settings, and the
//! built-in objects PostgreSQL ships (types, functions, access methods,
//! ranges, collations). Catalogs for features Tarn does not have (triggers,
//! policies, publications, extensions …) exist with their real columns and
//! no rows, as in a fresh PostgreSQL database that uses none of them.

use super::oids::*;
use super::{Rows, Snapshot, cell};

pub const PG_TYPE: &str = include_str!("data/pg_type.tsv");
const PG_PROC: &str = include_str!("data/pg_proc.tsv");
const PG_AM: &str = include_str!("data/pg_am.tsv");
const PG_RANGE: &str = include_str!("data/pg_range.tsv");
const PG_COLLATION: &str = include_str!("data/pg_collation.tsv");

/// The built-in rows, by table (see `tools/pg_catalog/generate.py`).
pub const BUILTIN: &[(&str, &str)] =
    &[("pg_type", PG_TYPE), ("pg_proc", PG_PROC), ("pg_am", PG_AM), ("pg_range", PG_RANGE), ("pg_collation", PG_COLLATION)];

pub fn fill(name: &str, rows: &mut Rows, snap: &Snapshot) {
    match name {
        "pg_namespace" => pg_namespace(rows, snap),
        "pg_database" => pg_database(rows, snap),
        "pg_roles" | "pg_authid" | "pg_user" => roles(name, rows, snap),
        "pg_am" => {
            rows.push_builtin(PG_AM);
            for (oid, name, kind) in [(AM_LANCE, "lance", "t"), (AM_BITMAP, "bitmap", "i")] {
                rows.push(&[("oid", cell(oid)), ("amname", cell(name)), ("amhandler", cell("-")), ("amtype", cell(kind))]);
            }
        }
        "pg_settings" => pg_settings(rows, snap),
        "pg_stat_activity" => pg_stat_activity(rows, snap),
        "pg_language" => {
            for (oid, name) in [(12, "internal"), (13, "c"), (14, "sql")] {
                rows.push(&[
                    ("oid", cell(oid)),
                    ("lanname", cell(name)),
                    ("lanowner", cell(BOOTSTRAP_ROLE)),
                    ("lanpltrusted", cell(if name == "sql" { "t" } else { "f" })),
                ]);
            }
        }
        "pg_tablespace" => {
            for (oid, name) in [(1663, "pg_default"), (1664, "pg_global")] {
                rows.push(&[("oid", cell(oid)), ("spcname", cell(name)), ("spcowner", cell(BOOTSTRAP_ROLE))]);
            }
        }
        _ => {
            if let Some((_, tsv)) = BUILTIN.iter().find(|(n, _)| *n == name) {
                rows.push_builtin(tsv);
            }
            // Every other catalog: PostgreSQL's columns, no rows.
        }
    }
}

fn pg_namespace(rows: &mut Rows, snap: &Snapshot) {
    for s in &snap.schemas {
        rows.push(&[("oid", cell(relation(s.id))), ("nspname", cell(&s.name)), ("nspowner", cell(BOOTSTRAP_ROLE))]);
    }
    for (oid, name, owner) in [
        (PG_CATALOG_NAMESPACE, "pg_catalog", BOOTSTRAP_ROLE),
        (PG_TOAST_NAMESPACE, "pg_toast", BOOTSTRAP_ROLE),
        (PUBLIC_NAMESPACE, "public", DATABASE_OWNER_ROLE),
        (INFORMATION_SCHEMA_NAMESPACE, "information_schema", BOOTSTRAP_ROLE),
    ] {
        rows.push(&[("oid", cell(oid)), ("nspname", cell(name)), ("nspowner", cell(owner))]);
    }
}

fn pg_database(rows: &mut Rows, snap: &Snapshot) {
    rows.push(&[
        ("oid", cell(DATABASE)),
        ("datname", cell(snap.session.database())),
        ("datdba", cell(BOOTSTRAP_ROLE)),
        ("encoding", cell(6)), // UTF8
        ("datlocprovider", cell("c")),
        ("datallowconn", cell("t")),
        ("datconnlimit", cell(-1)),
        ("dattablespace", cell(1663)),
        ("datcollate", cell("C.UTF-8")),
        ("datctype", cell("C.UTF-8")),
    ]);
}

/// Tarn has one role: whoever connects is the bootstrap superuser (trust
/// authentication), so the role is named after the session's user.
fn roles(table: &str, rows: &mut Rows, snap: &Snapshot) {
    let user = snap.session.user();
    let yes = || cell("t");
    let (name_col, oid_col) = if table == "pg_user" { ("usename", "usesysid") } else { ("rolname", "oid") };
    let mut cells = vec![(name_col, cell(&user)), (oid_col, cell(BOOTSTRAP_ROLE))];
    match table {
        "pg_user" => cells.extend([("usecreatedb", yes()), ("usesuper", yes()), ("userepl", yes()), ("usebypassrls", yes()), ("passwd", cell("********"))]),
        _ => {
            cells.extend([
                ("rolsuper", yes()),
                ("rolinherit", yes()),
                ("rolcreaterole", yes()),
                ("rolcreatedb", yes()),
                ("rolcanlogin", yes()),
                ("rolreplication", yes()),
                ("rolbypassrls", yes()),
                ("rolconnlimit", cell(-1)),
            ]);
            if table == "pg_roles" {
                cells.push(("rolpassword", cell("********")));
            }
        }
    }
    rows.push(&cells);
    if table != "pg_user" {
        rows.push(&[(name_col, cell("pg_database_owner")), (oid_col, cell(DATABASE_OWNER_ROLE)), ("rolinherit", yes()), ("rolconnlimit", cell(-1))]);
    }
}

fn pg_settings(rows: &mut Rows, snap: &Snapshot) {
    let mut settings = snap.session.settings();
    // Read-only limits clients ask for (pgjdbc: max_index_keys).
    for (name, value) in [("max_index_keys", "32"), ("block_size", "8192"), ("max_connections", "100")] {
        if !settings.iter().any(|(n, _)| n == name) {
            settings.push((name.to_string(), value.to_string()));
        }
    }
    settings.sort();
    for (name, value) in settings {
        let vartype = if value == "on" || value == "off" {
            "bool"
        } else if value.parse::<i64>().is_ok() {
            "integer"
        } else {
            "string"
        };
        rows.push(&[
            ("name", cell(&name)),
            ("setting", cell(&value)),
            ("context", cell("user")),
            ("vartype", cell(vartype)),
            ("source", cell("default")),
            ("boot_val", cell(&value)),
            ("reset_val", cell(&value)),
            ("category", cell("Tarn")),
            ("short_desc", cell("")),
            ("pending_restart", cell("f")),
        ]);
    }
}

fn pg_stat_activity(rows: &mut Rows, snap: &Snapshot) {
    rows.push(&[
        ("datid", cell(DATABASE)),
        ("datname", cell(snap.session.database())),
        ("pid", cell(snap.session.backend_pid())),
        ("usesysid", cell(BOOTSTRAP_ROLE)),
        ("usename", cell(snap.session.user())),
        ("application_name", cell(snap.session.application_name())),
        ("state", cell("active")),
        ("backend_type", cell("client backend")),
    ]);
}
