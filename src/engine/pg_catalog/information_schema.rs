//! `information_schema`: the SQL-standard views, with PostgreSQL's columns,
//! from the same snapshot as `pg_catalog`. DataFusion has an
//! `information_schema` of its own, but with Arrow type names (`Int32`) and
//! 0-based positions; clients (SQLAlchemy, Metabase, pandas) expect
//! PostgreSQL's.

use super::relations::view_columns;
use super::{Rows, SYSTEM_TABLES, Snapshot, cell};
use crate::types::PgType;

pub fn fill(name: &str, rows: &mut Rows, snap: &Snapshot) {
    let db = snap.session.database();
    match name {
        "schemata" => {
            let owner = snap.session.user();
            let mut names: Vec<&str> = vec!["information_schema", "pg_catalog", "pg_toast", "public"];
            names.extend(snap.schemas.iter().map(|s| s.name.as_str()));
            for s in names {
                rows.push(&[("catalog_name", cell(&db)), ("schema_name", cell(s)), ("schema_owner", cell(if s == "public" { "pg_database_owner" } else { &owner }))]);
            }
        }
        "tables" => {
            for t in SYSTEM_TABLES {
                let kind = if t.kind == 'r' { "BASE TABLE" } else { "VIEW" };
                table_row(rows, &db, t.schema, t.name, kind);
            }
            for t in &snap.tables {
                table_row(rows, &db, &t.schema, &t.name, "BASE TABLE");
            }
            for v in &snap.views {
                table_row(rows, &db, &v.schema, &v.name, "VIEW");
            }
        }
        "views" => {
            for v in &snap.views {
                rows.push(&[
                    ("table_catalog", cell(&db)),
                    ("table_schema", cell(&v.schema)),
                    ("table_name", cell(&v.name)),
                    ("view_definition", cell(format!(" {};", v.sql))),
                    ("check_option", cell("NONE")),
                    ("is_updatable", cell("NO")),
                    ("is_insertable_into", cell("NO")),
                    ("is_trigger_updatable", cell("NO")),
                    ("is_trigger_deletable", cell("NO")),
                    ("is_trigger_insertable_into", cell("NO")),
                ]);
            }
        }
        "columns" => {
            for t in &snap.tables {
                for (i, c) in t.columns.iter().enumerate() {
                    let default = c.default.as_deref().map(|d| super::relations::default_as_postgres_prints(d, &c.pg_type()));
                    column_row(rows, &db, &t.schema, &t.name, i + 1, &c.name, &c.pg_type(), !c.not_null, default, c.identity, true);
                }
            }
            for v in &snap.views {
                for (i, (name, ty)) in view_columns(snap, v).into_iter().enumerate() {
                    column_row(rows, &db, &v.schema, &v.name, i + 1, &name, &ty, true, None, None, false);
                }
            }
        }
        "table_constraints" => {
            for t in snap.tables.iter().filter(|t| !t.primary_key.is_empty()) {
                constraint_row(rows, &db, t, t.pkey_name(), "PRIMARY KEY");
            }
            for (t, _, name) in not_null_checks(snap) {
                constraint_row(rows, &db, t, name, "CHECK");
            }
        }
        "check_constraints" => {
            for (t, i, name) in not_null_checks(snap) {
                rows.push(&[
                    ("constraint_catalog", cell(&db)),
                    ("constraint_schema", cell(&t.schema)),
                    ("constraint_name", cell(name)),
                    ("check_clause", cell(format!("{} IS NOT NULL", super::relations::quote_ident(&t.columns[i].name)))),
                ]);
            }
        }
        "key_column_usage" | "constraint_column_usage" => {
            for t in snap.tables.iter().filter(|t| !t.primary_key.is_empty()) {
                for (k, c) in t.primary_key.iter().enumerate() {
                    let mut cells = vec![
                        ("constraint_catalog", cell(&db)),
                        ("constraint_schema", cell(&t.schema)),
                        ("constraint_name", cell(t.pkey_name())),
                        ("table_catalog", cell(&db)),
                        ("table_schema", cell(&t.schema)),
                        ("table_name", cell(&t.name)),
                        ("column_name", cell(&t.columns[*c].name)),
                    ];
                    if name == "key_column_usage" {
                        cells.push(("ordinal_position", cell(k + 1)));
                        cells.push(("position_in_unique_constraint", None));
                    }
                    rows.push(&cells);
                }
            }
        }
        // referential_constraints, check_constraints, routines: none
        // (no foreign keys or CHECK constraints; functions are built in).
        _ => {}
    }
}

/// One `table_constraints` row.
fn constraint_row(rows: &mut Rows, db: &str, t: &crate::storage::catalog::TableDef, name: String, kind: &str) {
    rows.push(&[
        ("constraint_catalog", cell(db)),
        ("constraint_schema", cell(&t.schema)),
        ("constraint_name", cell(name)),
        ("table_catalog", cell(db)),
        ("table_schema", cell(&t.schema)),
        ("table_name", cell(&t.name)),
        ("constraint_type", cell(kind)),
        ("is_deferrable", cell("NO")),
        ("initially_deferred", cell("NO")),
        ("enforced", cell("YES")),
        ("nulls_distinct", None),
    ]);
}

/// PostgreSQL 15 shows each NOT NULL column as a CHECK constraint named
/// `<namespace oid>_<table oid>_<attnum>_not_null`.
fn not_null_checks(snap: &Snapshot) -> Vec<(&crate::storage::catalog::TableDef, usize, String)> {
    let mut out = vec![];
    for t in &snap.tables {
        for (i, c) in t.columns.iter().enumerate().filter(|(_, c)| c.not_null) {
            let _ = c;
            let name = format!("{}_{}_{}_not_null", snap.namespace_oid(&t.schema), super::oids::relation(t.id), i + 1);
            out.push((t, i, name));
        }
    }
    out
}

fn yes_no(b: bool) -> super::Cell {
    cell(if b { "YES" } else { "NO" })
}

fn table_row(rows: &mut Rows, db: &str, schema: &str, name: &str, kind: &str) {
    let base = kind == "BASE TABLE" && schema != "pg_catalog" && schema != "information_schema";
    rows.push(&[
        ("table_catalog", cell(db)),
        ("table_schema", cell(schema)),
        ("table_name", cell(name)),
        ("table_type", cell(kind)),
        ("self_referencing_column_name", None),
        ("reference_generation", None),
        ("user_defined_type_catalog", None),
        ("user_defined_type_schema", None),
        ("user_defined_type_name", None),
        ("is_insertable_into", yes_no(base)),
        ("is_typed", cell("NO")),
        ("commit_action", None),
    ]);
}

#[allow(clippy::too_many_arguments)]
fn column_row(
    rows: &mut Rows,
    db: &str,
    schema: &str,
    table: &str,
    position: usize,
    name: &str,
    ty: &PgType,
    nullable: bool,
    default: Option<String>,
    identity: Option<crate::storage::catalog::Identity>,
    updatable: bool,
) {
    let (data_type, udt) = match ty {
        PgType::Array(e) => ("ARRAY".to_string(), format!("_{}", super::server_type_name(e))),
        t => (t.name().split('(').next().unwrap_or_default().to_string(), super::server_type_name(t)),
    };
    let (char_len, numeric) = match ty {
        PgType::Varchar(Some(n)) | PgType::Bpchar(n) => (Some(*n), None),
        PgType::Numeric(Some((p, s))) => (None, Some((i64::from(*p), 10, Some(i64::from(*s))))),
        PgType::Int2 => (None, Some((16, 2, Some(0)))),
        PgType::Int4 => (None, Some((32, 2, Some(0)))),
        PgType::Int8 => (None, Some((64, 2, Some(0)))),
        PgType::Float4 => (None, Some((24, 2, None))),
        PgType::Float8 => (None, Some((53, 2, None))),
        _ => (None, None),
    };
    let octets = match ty {
        PgType::Text | PgType::Varchar(None) => Some(1073741824),
        PgType::Varchar(Some(n)) | PgType::Bpchar(n) => Some(n * 4),
        _ => None,
    };
    let datetime_precision = matches!(ty, PgType::Date | PgType::Time | PgType::Timestamp | PgType::Timestamptz | PgType::Interval)
        .then(|| if *ty == PgType::Date { 0 } else { 6 });
    let identity_generation = identity.map(|i| match i {
        crate::storage::catalog::Identity::Always => "ALWAYS",
        crate::storage::catalog::Identity::ByDefault => "BY DEFAULT",
    });
    rows.push(&[
        ("table_catalog", cell(db)),
        ("table_schema", cell(schema)),
        ("table_name", cell(table)),
        ("column_name", cell(name)),
        ("ordinal_position", cell(position)),
        ("column_default", default),
        ("is_nullable", yes_no(nullable)),
        ("data_type", cell(data_type)),
        ("character_maximum_length", char_len.map(|n| n.to_string())),
        ("character_octet_length", octets.map(|n| n.to_string())),
        ("numeric_precision", numeric.map(|n| n.0.to_string())),
        ("numeric_precision_radix", numeric.map(|n| n.1.to_string())),
        ("numeric_scale", numeric.and_then(|n| n.2).map(|s| s.to_string())),
        ("datetime_precision", datetime_precision.map(|p| p.to_string())),
        ("interval_type", None),
        ("interval_precision", None),
        ("udt_catalog", cell(db)),
        ("udt_schema", cell("pg_catalog")),
        ("udt_name", cell(udt)),
        ("maximum_cardinality", None),
        ("dtd_identifier", cell(position)),
        ("is_self_referencing", cell("NO")),
        ("is_identity", yes_no(identity.is_some())),
        ("identity_generation", identity_generation.map(str::to_string)),
        ("is_generated", cell("NEVER")),
        ("is_updatable", yes_no(updatable)),
    ]);
}
