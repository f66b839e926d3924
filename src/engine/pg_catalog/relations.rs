//! The relation catalogs: `pg_class`, `pg_attribute`, `pg_type`, `pg_attrdef`,
//! `pg_constraint`, `pg_index` and the views over them (`pg_tables`,
//! `pg_views`, `pg_indexes`, `pg_stat_user_tables`), from Tarn's tables,
//! views, keys and indexes, plus the system tables themselves.

use super::oids::{self, *};
use super::{Rows, SYSTEM_TABLES, Snapshot, SystemTable, cell};
use crate::storage::catalog::{IndexMethod, TableDef, TableKind};
use crate::types::PgType;

/// An index as the catalogs show it: the primary key's, or a secondary one.
pub struct IndexInfo<'a> {
    pub oid: u32,
    pub name: String,
    pub table: &'a TableDef,
    /// Column positions (0-based) in key order.
    pub columns: Vec<usize>,
    pub primary: bool,
    pub am: u32,
}

impl IndexInfo<'_> {
    pub fn method(&self) -> &'static str {
        if self.am == AM_BITMAP { "bitmap" } else { "btree" }
    }

    /// `pg_get_indexdef(oid)`.
    pub fn definition(&self) -> String {
        let cols: Vec<&str> = self.columns.iter().map(|c| self.table.columns[*c].name.as_str()).collect();
        format!(
            "CREATE {}INDEX {} ON {}.{} USING {} ({})",
            if self.primary { "UNIQUE " } else { "" },
            quote_ident(&self.name),
            quote_ident(&self.table.schema),
            quote_ident(&self.table.name),
            self.method(),
            cols.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ")
        )
    }
}

/// Every index of every table in `snap`.
pub fn indexes(snap: &Snapshot) -> Vec<IndexInfo<'_>> {
    let mut out = vec![];
    for t in &snap.tables {
        if !t.primary_key.is_empty() {
            out.push(IndexInfo { oid: pkey_index(t.id), name: t.pkey_name(), table: t, columns: t.primary_key.clone(), primary: true, am: AM_BTREE });
        }
        for (k, ix) in t.indexes.iter().enumerate() {
            let Some(col) = t.columns.iter().position(|c| c.name == ix.column) else { continue };
            let am = match ix.method {
                IndexMethod::Btree => AM_BTREE,
                IndexMethod::Bitmap => AM_BITMAP,
            };
            out.push(IndexInfo { oid: index(t.id, k), name: ix.name.clone(), table: t, columns: vec![col], primary: false, am });
        }
    }
    out
}

/// PostgreSQL's `quote_ident`: quotes only where needed.
pub fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !RESERVED.contains(&name);
    if plain { name.to_string() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

/// PostgreSQL's reserved keywords that can appear as a column or table name
/// only quoted (the ones `quote_ident` quotes).
const RESERVED: &[&str] = &[
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case", "cast", "check", "collate",
    "column", "constraint", "create", "current_catalog", "current_date", "current_role", "current_time", "current_timestamp",
    "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false", "fetch", "for",
    "foreign", "from", "grant", "group", "having", "in", "initially", "intersect", "into", "lateral", "leading", "limit",
    "localtime", "localtimestamp", "not", "null", "offset", "on", "only", "or", "order", "placing", "primary", "references",
    "returning", "select", "session_user", "some", "symmetric", "table", "then", "to", "trailing", "true", "union", "unique",
    "user", "using", "variadic", "when", "where", "window", "with",
];


/// Physical attributes of a type, as `pg_type`/`pg_attribute` show them:
/// (typlen, typbyval, typalign, typstorage).
fn physical(ty: &PgType) -> (i16, bool, char, char) {
    let len = ty.type_size();
    match len {
        1 => (1, true, 'c', 'p'),
        2 => (2, true, 's', 'p'),
        4 => (4, true, 'i', 'p'),
        8 => (8, true, 'd', 'p'),
        64 => (64, false, 'c', 'p'),
        16 => (16, false, if *ty == PgType::Uuid { 'c' } else { 'd' }, 'p'),
        _ => (-1, false, if matches!(ty, PgType::Array(_)) { 'd' } else { 'i' }, 'x'),
    }
}

fn collation(ty: &PgType) -> u32 {
    match ty {
        PgType::Name => 950,
        t if t.is_text_backed() && !matches!(t, PgType::Uuid | PgType::Json | PgType::Jsonb | PgType::Char) => 100,
        PgType::Array(e) => collation(e),
        _ => 0,
    }
}

/// Fill `rows` if `name` is one of this module's catalogs.
pub fn fill(name: &str, rows: &mut Rows, snap: &Snapshot) -> bool {
    match name {
        "pg_class" => pg_class(rows, snap),
        "pg_attribute" => pg_attribute(rows, snap),
        "pg_type" => pg_type(rows, snap),
        "pg_attrdef" => pg_attrdef(rows, snap),
        "pg_constraint" => pg_constraint(rows, snap),
        "pg_index" => pg_index(rows, snap),
        "pg_tables" => pg_tables(rows, snap),
        "pg_views" => pg_views(rows, snap),
        "pg_indexes" => pg_indexes(rows, snap),
        "pg_stat_user_tables" => pg_stat_user_tables(rows, snap),
        _ => return false,
    }
    true
}

fn pg_class(rows: &mut Rows, snap: &Snapshot) {
    for t in SYSTEM_TABLES {
        rows.push(&[
            ("oid", cell(t.oid)),
            ("relname", cell(t.name)),
            ("relnamespace", cell(snap.namespace_oid(t.schema))),
            ("relowner", cell(BOOTSTRAP_ROLE)),
            ("relam", cell(if t.kind == 'r' { AM_HEAP } else { 0 })),
            ("relpersistence", cell("p")),
            ("relkind", cell(t.kind)),
            ("relnatts", cell(t.columns.len())),
            ("relreplident", cell("n")),
            ("relispopulated", cell("t")),
            ("reltuples", cell(-1)),
        ]);
    }
    for t in &snap.tables {
        let has_index = !t.primary_key.is_empty() || !t.indexes.is_empty();
        rows.push(&[
            ("oid", cell(relation(t.id))),
            ("relname", cell(&t.name)),
            ("relnamespace", cell(snap.namespace_oid(&t.schema))),
            ("reltype", cell(row_type(t.id))),
            ("relowner", cell(BOOTSTRAP_ROLE)),
            ("relam", cell(if t.kind == TableKind::Heap { AM_HEAP } else { AM_LANCE })),
            ("relfilenode", cell(relation(t.id))),
            ("reltuples", cell(snap.row_count(t))),
            ("relhasindex", cell(if has_index { "t" } else { "f" })),
            ("relpersistence", cell("p")),
            ("relkind", cell("r")),
            ("relnatts", cell(t.columns.len())),
            ("relreplident", cell("d")),
            ("relispopulated", cell("t")),
        ]);
    }
    for v in &snap.views {
        rows.push(&[
            ("oid", cell(relation(v.id))),
            ("relname", cell(&v.name)),
            ("relnamespace", cell(snap.namespace_oid(&v.schema))),
            ("reltype", cell(row_type(v.id))),
            ("relowner", cell(BOOTSTRAP_ROLE)),
            ("relpersistence", cell("p")),
            ("relkind", cell("v")),
            ("relnatts", cell(v.columns.len())),
            ("relreplident", cell("n")),
            ("relispopulated", cell("t")),
            ("reltuples", cell(-1)),
        ]);
    }
    for ix in indexes(snap) {
        rows.push(&[
            ("oid", cell(ix.oid)),
            ("relname", cell(&ix.name)),
            ("relnamespace", cell(snap.namespace_oid(&ix.table.schema))),
            ("relowner", cell(BOOTSTRAP_ROLE)),
            ("relam", cell(ix.am)),
            ("relfilenode", cell(ix.oid)),
            ("reltuples", cell(snap.row_count(ix.table))),
            ("relpersistence", cell("p")),
            ("relkind", cell("i")),
            ("relnatts", cell(ix.columns.len())),
            ("relreplident", cell("n")),
            ("relispopulated", cell("t")),
        ]);
    }
}

fn attribute(rows: &mut Rows, rel: u32, num: usize, name: &str, ty: &PgType, not_null: bool, has_default: bool, identity: &str) {
    let (len, byval, align, storage) = physical(ty);
    rows.push(&[
        ("attrelid", cell(rel)),
        ("attname", cell(name)),
        ("atttypid", cell(oids::type_oid(ty))),
        ("attstattarget", cell(-1)),
        ("attlen", cell(len)),
        ("attnum", cell(num)),
        ("attndims", cell(if matches!(ty, PgType::Array(_)) { 1 } else { 0 })),
        ("attcacheoff", cell(-1)),
        ("atttypmod", cell(ty.typmod())),
        ("attbyval", cell(if byval { "t" } else { "f" })),
        ("attalign", cell(align)),
        ("attstorage", cell(storage)),
        ("attcompression", cell("")),
        ("attnotnull", cell(if not_null { "t" } else { "f" })),
        ("atthasdef", cell(if has_default { "t" } else { "f" })),
        ("attidentity", cell(identity)),
        ("attgenerated", cell("")),
        ("attislocal", cell("t")),
        ("attcollation", cell(collation(ty))),
    ]);
}

fn pg_attribute(rows: &mut Rows, snap: &Snapshot) {
    for t in SYSTEM_TABLES {
        for (i, (name, _)) in t.columns.iter().enumerate() {
            attribute(rows, t.oid, i + 1, name, &t.column_type(i), t.kind == 'r', false, "");
        }
    }
    for t in &snap.tables {
        for (i, c) in t.columns.iter().enumerate() {
            let identity = match c.identity {
                Some(crate::storage::catalog::Identity::Always) => "a",
                Some(crate::storage::catalog::Identity::ByDefault) => "d",
                None => "",
            };
            attribute(rows, relation(t.id), i + 1, &c.name, &c.pg_type(), c.not_null, c.default.is_some(), identity);
        }
    }
    for v in &snap.views {
        for (i, (name, ty)) in view_columns(snap, v).into_iter().enumerate() {
            attribute(rows, relation(v.id), i + 1, &name, &ty, false, false, "");
        }
    }
    for ix in indexes(snap) {
        for (i, c) in ix.columns.iter().enumerate() {
            let col = &ix.table.columns[*c];
            attribute(rows, ix.oid, i + 1, &col.name, &col.pg_type(), false, false, "");
        }
    }
}

/// A view's columns and their types. The catalog keeps only names (a view
/// is planned when used); types are those of the view's stored column types
/// when known, else text.
pub fn view_columns(_snap: &Snapshot, v: &crate::storage::catalog::ViewDef) -> Vec<(String, PgType)> {
    v.columns
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), v.column_types.get(i).and_then(|t| PgType::from_name(t)).unwrap_or(PgType::Text)))
        .collect()
}

fn pg_type(rows: &mut Rows, snap: &Snapshot) {
    rows.push_builtin(super::server::PG_TYPE);
    let relations = snap.tables.iter().map(|t| (t.id, &t.name, &t.schema)).chain(snap.views.iter().map(|v| (v.id, &v.name, &v.schema)));
    for (id, name, schema) in relations {
        let ns = snap.namespace_oid(schema);
        rows.push(&[
            ("oid", cell(row_type(id))),
            ("typname", cell(name)),
            ("typnamespace", cell(ns)),
            ("typowner", cell(BOOTSTRAP_ROLE)),
            ("typlen", cell(-1)),
            ("typbyval", cell("f")),
            ("typtype", cell("c")),
            ("typcategory", cell("C")),
            ("typisdefined", cell("t")),
            ("typdelim", cell(",")),
            ("typrelid", cell(relation(id))),
            ("typsubscript", cell("-")),
            ("typarray", cell(row_array_type(id))),
            ("typinput", cell("record_in")),
            ("typoutput", cell("record_out")),
            ("typreceive", cell("record_recv")),
            ("typsend", cell("record_send")),
            ("typmodin", cell("-")),
            ("typmodout", cell("-")),
            ("typanalyze", cell("-")),
            ("typalign", cell("d")),
            ("typstorage", cell("x")),
            ("typtypmod", cell(-1)),
        ]);
        rows.push(&[
            ("oid", cell(row_array_type(id))),
            ("typname", cell(format!("_{name}"))),
            ("typnamespace", cell(ns)),
            ("typowner", cell(BOOTSTRAP_ROLE)),
            ("typlen", cell(-1)),
            ("typbyval", cell("f")),
            ("typtype", cell("b")),
            ("typcategory", cell("A")),
            ("typisdefined", cell("t")),
            ("typdelim", cell(",")),
            ("typsubscript", cell("array_subscript_handler")),
            ("typelem", cell(row_type(id))),
            ("typinput", cell("array_in")),
            ("typoutput", cell("array_out")),
            ("typreceive", cell("array_recv")),
            ("typsend", cell("array_send")),
            ("typmodin", cell("-")),
            ("typmodout", cell("-")),
            ("typanalyze", cell("array_typanalyze")),
            ("typalign", cell("d")),
            ("typstorage", cell("x")),
            ("typtypmod", cell(-1)),
        ]);
    }
}

/// A DEFAULT as `pg_get_expr` prints it: PostgreSQL deparses a string
/// literal (and a negative number) with a cast to the column's type —
/// `'x'::text`, `'n'::character varying`, `'-1'::integer` — and the rest as
/// written (`now()`, `0`, `1.5`).
pub fn default_as_postgres_prints(sql: &str, ty: &PgType) -> String {
    use datafusion::sql::sqlparser::ast::{Expr, UnaryOperator, Value};
    let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
    let Ok(expr) = datafusion::sql::sqlparser::parser::Parser::new(&dialect).try_with_sql(sql).and_then(|mut p| p.parse_expr()) else {
        return sql.to_string();
    };
    let type_name = match ty {
        PgType::Varchar(_) => "character varying".to_string(),
        PgType::Numeric(_) => "numeric".to_string(),
        PgType::Bpchar(_) => "bpchar".to_string(),
        t => t.name(),
    };
    match &expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => format!("'{}'::{type_name}", s.replace('\'', "''")),
            _ => sql.to_string(),
        },
        Expr::UnaryOp { op: UnaryOperator::Minus, expr: inner } => match inner.as_ref() {
            Expr::Value(v) if matches!(v.value, Value::Number(..)) => format!("'-{}'::{type_name}", v.value),
            _ => sql.to_string(),
        },
        _ => sql.to_string(),
    }
}

/// `pg_attrdef` oids: a range of their own, one per (table, column).
pub fn attrdef_oid(table_id: u64, attnum: usize) -> u32 {
    0x4000_0000 + (table_id as u32) * 2048 + attnum as u32
}

fn pg_attrdef(rows: &mut Rows, snap: &Snapshot) {
    for t in &snap.tables {
        for (i, c) in t.columns.iter().enumerate() {
            if let Some(d) = &c.default {
                rows.push(&[
                    ("oid", cell(attrdef_oid(t.id, i + 1))),
                    ("adrelid", cell(relation(t.id))),
                    ("adnum", cell(i + 1)),
                    // PostgreSQL keeps a node tree that pg_get_expr prints;
                    // Tarn keeps the expression's SQL, which it prints as is.
                    ("adbin", cell(default_as_postgres_prints(d, &c.pg_type()))),
                ]);
            }
        }
    }
}

fn int_array(values: impl IntoIterator<Item = usize>) -> String {
    format!("{{{}}}", values.into_iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","))
}

fn pg_constraint(rows: &mut Rows, snap: &Snapshot) {
    for t in snap.tables.iter().filter(|t| !t.primary_key.is_empty()) {
        rows.push(&[
            ("oid", cell(pkey_constraint(t.id))),
            ("conname", cell(t.pkey_name())),
            ("connamespace", cell(snap.namespace_oid(&t.schema))),
            ("contype", cell("p")),
            ("condeferrable", cell("f")),
            ("condeferred", cell("f")),
            ("convalidated", cell("t")),
            ("conrelid", cell(relation(t.id))),
            ("conindid", cell(pkey_index(t.id))),
            ("confupdtype", cell(" ")),
            ("confdeltype", cell(" ")),
            ("confmatchtype", cell(" ")),
            ("conislocal", cell("t")),
            ("connoinherit", cell("t")),
            ("conkey", cell(int_array(t.primary_key.iter().map(|c| c + 1)))),
        ]);
    }
}

fn pg_index(rows: &mut Rows, snap: &Snapshot) {
    for ix in indexes(snap) {
        let n = ix.columns.len();
        rows.push(&[
            ("indexrelid", cell(ix.oid)),
            ("indrelid", cell(relation(ix.table.id))),
            ("indnatts", cell(n)),
            ("indnkeyatts", cell(n)),
            ("indisunique", cell(if ix.primary { "t" } else { "f" })),
            ("indisprimary", cell(if ix.primary { "t" } else { "f" })),
            ("indimmediate", cell("t")),
            ("indisvalid", cell("t")),
            ("indisready", cell("t")),
            ("indislive", cell("t")),
            ("indkey", cell(int_array(ix.columns.iter().map(|c| c + 1)))),
            ("indcollation", cell(int_array(ix.columns.iter().map(|c| collation(&ix.table.columns[*c].pg_type()) as usize)))),
            ("indclass", cell(int_array(ix.columns.iter().map(|_| 0)))),
            ("indoption", cell(int_array(ix.columns.iter().map(|_| 0)))),
        ]);
    }
}

fn yes(b: bool) -> super::Cell {
    cell(if b { "t" } else { "f" })
}

fn pg_tables(rows: &mut Rows, snap: &Snapshot) {
    let owner = snap.session.user();
    for t in SYSTEM_TABLES.iter().filter(|t: &&SystemTable| t.kind == 'r') {
        rows.push(&[("schemaname", cell(t.schema)), ("tablename", cell(t.name)), ("tableowner", cell(&owner))]);
    }
    for t in &snap.tables {
        rows.push(&[
            ("schemaname", cell(&t.schema)),
            ("tablename", cell(&t.name)),
            ("tableowner", cell(&owner)),
            ("hasindexes", yes(!t.primary_key.is_empty() || !t.indexes.is_empty())),
        ]);
    }
}

fn pg_views(rows: &mut Rows, snap: &Snapshot) {
    let owner = snap.session.user();
    for v in &snap.views {
        rows.push(&[
            ("schemaname", cell(&v.schema)),
            ("viewname", cell(&v.name)),
            ("viewowner", cell(&owner)),
            ("definition", cell(format!(" {};", v.sql))),
        ]);
    }
}

fn pg_indexes(rows: &mut Rows, snap: &Snapshot) {
    for ix in indexes(snap) {
        rows.push(&[
            ("schemaname", cell(&ix.table.schema)),
            ("tablename", cell(&ix.table.name)),
            ("indexname", cell(&ix.name)),
            ("indexdef", cell(ix.definition())),
        ]);
    }
}

fn pg_stat_user_tables(rows: &mut Rows, snap: &Snapshot) {
    for t in &snap.tables {
        rows.push(&[
            ("relid", cell(relation(t.id))),
            ("schemaname", cell(&t.schema)),
            ("relname", cell(&t.name)),
            ("n_live_tup", cell(snap.row_count(t))),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_print_as_postgres_deparses_them() {
        assert_eq!(default_as_postgres_prints("'x'", &PgType::Text), "'x'::text");
        assert_eq!(default_as_postgres_prints("'it''s'", &PgType::Varchar(Some(20))), "'it''s'::character varying");
        assert_eq!(default_as_postgres_prints("-1", &PgType::Int4), "'-1'::integer");
        assert_eq!(default_as_postgres_prints("5", &PgType::Int8), "5");
        assert_eq!(default_as_postgres_prints("now()", &PgType::Timestamptz), "now()");
    }

    #[test]
    fn quote_ident_quotes_only_where_needed() {
        assert_eq!(quote_ident("abc_1"), "abc_1");
        assert_eq!(quote_ident("Abc"), "\"Abc\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
