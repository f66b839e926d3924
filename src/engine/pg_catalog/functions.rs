//! The functions clients call on the catalogs and the session
//! (`format_type`, `pg_get_indexdef`, `current_setting`, `pg_typeof` …), as
//! DataFusion `ScalarUDF`s that read the same [`Snapshot`] as `pg_catalog`.
//!
//! They take any argument types (a literal oid arrives as Int64, a column
//! as UInt32) and are evaluated row by row: catalog queries are small, and
//! one body per function is clearer than a vectorised kernel for each.

use std::fmt;
use std::sync::Arc;

use arrow::array::Array;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use super::oids::{self, *};
use super::relations::{self, indexes};
use super::{SessionInfo, Snapshot, SystemTable};
use crate::storage::Storage;
use crate::types::PgType;

/// What a catalog function reads.
pub struct FnContext {
    pub storage: Arc<Storage>,
    pub session: Arc<dyn SessionInfo>,
}

impl FnContext {
    fn snapshot(&self) -> Snapshot {
        Snapshot::take(&self.storage, &self.session)
    }

    /// The schemas of the session's search_path that exist.
    fn search_path(&self) -> Vec<String> {
        let path = self.session.setting("search_path").unwrap_or_default();
        super::search_path(&path, &self.session.user()).into_iter().filter(|s| self.storage.schema_exists(s)).collect()
    }
}

type Body = fn(&FnContext, &[ScalarValue]) -> Result<ScalarValue>;

/// One catalog function: a name, its result type, and a body evaluated per row.
struct CatalogFn {
    name: &'static str,
    returns: PgType,
    body: Body,
    signature: Signature,
    ctx: Arc<FnContext>,
}

impl fmt::Debug for CatalogFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CatalogFn({})", self.name)
    }
}

impl PartialEq for CatalogFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for CatalogFn {}
impl std::hash::Hash for CatalogFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl ScalarUDFImpl for CatalogFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.returns.arrow_type())
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(self.returns.to_field(self.name, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if all_scalar { 1 } else { args.number_rows };
        let arrays = args.args.iter().map(|a| a.to_array(n)).collect::<Result<Vec<_>>>()?;
        // pg_typeof needs the argument's type, not its value.
        // (without typmods: a value's type has none)
        let typeof_arg = (self.name == "pg_typeof").then(|| args.arg_fields.first().map(|f| without_typmod(PgType::from_field(f))));
        let mut out = Vec::with_capacity(n);
        for row in 0..n {
            let values = arrays.iter().map(|a| ScalarValue::try_from_array(a, row)).collect::<Result<Vec<_>>>()?;
            let v = match &typeof_arg {
                Some(ty) => ScalarValue::Utf8(ty.as_ref().map(|t| t.name())),
                None => (self.body)(&self.ctx, &values)?,
            };
            let target = self.returns.arrow_type();
            out.push(if v.data_type() == target { v } else { v.cast_to(&target)? });
        }
        if all_scalar {
            Ok(ColumnarValue::Scalar(out.pop().unwrap_or(ScalarValue::Null)))
        } else {
            Ok(ColumnarValue::Array(ScalarValue::iter_to_array(out)?))
        }
    }
}

fn without_typmod(ty: PgType) -> PgType {
    match ty {
        PgType::Numeric(_) => PgType::Numeric(None),
        PgType::Varchar(_) => PgType::Varchar(None),
        PgType::Array(e) => PgType::Array(Box::new(without_typmod(*e))),
        t => t,
    }
}

fn text(s: impl Into<String>) -> ScalarValue {
    ScalarValue::Utf8(Some(s.into()))
}

fn null_text() -> ScalarValue {
    ScalarValue::Utf8(None)
}

fn boolean(b: bool) -> ScalarValue {
    ScalarValue::Boolean(Some(b))
}

/// An argument as an oid / integer (None for NULL or not a number).
fn int_arg(args: &[ScalarValue], i: usize) -> Option<i64> {
    let v = args.get(i)?;
    if v.is_null() {
        return None;
    }
    match v.cast_to(&DataType::Int64).ok()? {
        ScalarValue::Int64(Some(x)) => Some(x),
        _ => None,
    }
}

fn str_arg(args: &[ScalarValue], i: usize) -> Option<String> {
    let v = args.get(i)?;
    if v.is_null() {
        return None;
    }
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn bool_arg(args: &[ScalarValue], i: usize) -> bool {
    matches!(args.get(i), Some(ScalarValue::Boolean(Some(true))))
}

fn err(e: crate::error::TarnError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// `format_type(type_oid, typmod)`.
pub fn format_type(oid: u32, typmod: Option<i64>) -> Option<String> {
    let tarn = crate::types::decode::pg_type_for_oid(&pgwire::api::Type::from_oid(oid)?)?;
    let ty = match (tarn, typmod.filter(|m| *m >= 0)) {
        (PgType::Numeric(_), Some(m)) => PgType::Numeric(Some((((m - 4) >> 16) as u8, ((m - 4) & 0xffff) as i8))),
        (PgType::Varchar(_), Some(m)) => PgType::Varchar(Some((m - 4) as u32)),
        (PgType::Bpchar(_), Some(m)) => PgType::Bpchar((m - 4) as u32),
        (PgType::Bpchar(_), None) => return Some("character".into()),
        (PgType::Numeric(_), None) => PgType::Numeric(None),
        (PgType::Varchar(_), None) => PgType::Varchar(None),
        (t, _) => t,
    };
    Some(ty.name())
}

/// `format_type` for any oid: Tarn's types by their SQL names, other
/// built-in types by `pg_type.typname`, user row types by their relation.
fn format_any_type(snap: Option<&Snapshot>, oid: u32, typmod: Option<i64>) -> String {
    if let Some(name) = format_type(oid, typmod) {
        return name;
    }
    if let Some(name) = super::builtin_type_name(oid) {
        return name.to_string();
    }
    if let (Some(snap), Some((id, _))) = (snap, decompose(oid)) {
        if let Some(t) = snap.tables.iter().find(|t| t.id == id) {
            return t.name.clone();
        }
        if let Some(v) = snap.views.iter().find(|v| v.id == id) {
            return v.name.clone();
        }
    }
    "???".into()
}

/// The name of relation `oid` (regclass output), or None.
fn relation_name(snap: &Snapshot, oid: u32) -> Option<String> {
    if let Some(t) = super::SYSTEM_TABLES.iter().find(|t| t.oid == oid) {
        return Some(t.name.to_string());
    }
    let (id, slot) = decompose(oid)?;
    if let Some(t) = snap.tables.iter().find(|t| t.id == id) {
        return match slot {
            0 => Some(relations::quote_ident(&t.name)),
            _ => indexes(snap).into_iter().find(|i| i.oid == oid).map(|i| relations::quote_ident(&i.name)),
        };
    }
    snap.views.iter().find(|v| v.id == id && slot == 0).map(|v| relations::quote_ident(&v.name))
}

/// The oid of a relation named in text (`'t1'`, `'public.t1'`, `'"T"'`), as
/// `'…'::regclass` and `to_regclass` resolve it.
fn relation_oid(snap: &Snapshot, name: &str) -> Option<u32> {
    let parts = split_qualified(name);
    let (schema, rel) = match parts.as_slice() {
        [rel] => (None, rel.as_str()),
        [schema, rel] => (Some(schema.as_str()), rel.as_str()),
        _ => return None,
    };
    if let Ok(oid) = rel.parse::<u32>() {
        return Some(oid);
    }
    let in_schema = |s: &str| schema.is_none_or(|want| want == s);
    if let Some(t) = super::SYSTEM_TABLES.iter().find(|t| t.name == rel && in_schema(t.schema)) {
        return Some(t.oid);
    }
    if let Some(t) = snap.tables.iter().find(|t| t.name == rel && in_schema(&t.schema)) {
        return Some(oids::relation(t.id));
    }
    if let Some(v) = snap.views.iter().find(|v| v.name == rel && in_schema(&v.schema)) {
        return Some(oids::relation(v.id));
    }
    indexes(snap).into_iter().find(|i| i.name == rel && in_schema(&i.table.schema)).map(|i| i.oid)
}

/// `a.b` / `"A".b` → identifiers, folded to lower case unless quoted.
fn split_qualified(name: &str) -> Vec<String> {
    let mut parts = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = name.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c if quoted => cur.push(c),
            c => cur.push(c.to_ascii_lowercase()),
        }
    }
    parts.push(cur);
    parts
}

/// The oid of a type named in text (`'int4'`, `'integer'`, `'text[]'`).
fn type_oid_by_name(name: &str) -> Option<u32> {
    let name = name.trim().trim_start_matches("pg_catalog.");
    if let Ok(dt) = datafusion::sql::sqlparser::parser::Parser::new(&datafusion::sql::sqlparser::dialect::PostgreSqlDialect {})
        .try_with_sql(name)
        .and_then(|mut p| p.parse_data_type())
    {
        if let Ok(ty) = PgType::from_sql(&dt) {
            return Some(oids::type_oid(&ty));
        }
    }
    super::server::PG_TYPE.lines().find_map(|l| {
        let mut f = l.split('\t');
        let oid = f.next()?;
        (f.next()? == name).then(|| oid.parse().ok()).flatten()
    })
}

fn namespace_name(oid: u32) -> Option<&'static str> {
    Some(match oid {
        PG_CATALOG_NAMESPACE => "pg_catalog",
        PG_TOAST_NAMESPACE => "pg_toast",
        PUBLIC_NAMESPACE => "public",
        INFORMATION_SCHEMA_NAMESPACE => "information_schema",
        _ => return None,
    })
}

fn current_setting(ctx: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(name) = str_arg(a, 0) else { return Ok(null_text()) };
    match ctx.session.setting(&name) {
        Ok(v) => Ok(text(v)),
        Err(_) if bool_arg(a, 1) => Ok(null_text()),
        Err(e) => Err(err(e)),
    }
}

fn set_config(ctx: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(name), Some(value)) = (str_arg(a, 0), str_arg(a, 1)) else { return Ok(null_text()) };
    ctx.session.set_setting(&name, &value).map(text).map_err(err)
}

fn pg_get_indexdef(ctx: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(oid) = int_arg(a, 0) else { return Ok(null_text()) };
    let snap = ctx.snapshot();
    let column = int_arg(a, 1).unwrap_or(0);
    Ok(match indexes(&snap).into_iter().find(|i| i64::from(i.oid) == oid) {
        Some(ix) if column > 0 => ix
            .columns
            .get(column as usize - 1)
            .map(|c| text(relations::quote_ident(&ix.table.columns[*c].name)))
            .unwrap_or_else(|| text("")),
        Some(ix) => text(ix.definition()),
        None => null_text(),
    })
}

fn pg_get_constraintdef(ctx: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(oid) = int_arg(a, 0) else { return Ok(null_text()) };
    let snap = ctx.snapshot();
    Ok(snap
        .tables
        .iter()
        .find(|t| !t.primary_key.is_empty() && i64::from(pkey_constraint(t.id)) == oid)
        .map(|t| {
            let cols: Vec<String> = t.primary_key.iter().map(|c| relations::quote_ident(&t.columns[*c].name)).collect();
            text(format!("PRIMARY KEY ({})", cols.join(", ")))
        })
        .unwrap_or_else(null_text))
}

fn regclass_name(ctx: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(oid) = int_arg(a, 0) else { return Ok(null_text()) };
    if oid == 0 {
        return Ok(text("-"));
    }
    Ok(text(relation_name(&ctx.snapshot(), oid as u32).unwrap_or_else(|| oid.to_string())))
}

/// `'name'::regclass`: an unknown name is an error, as in PostgreSQL.
fn regclass_in(ctx: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(name) = str_arg(a, 0) else { return Ok(ScalarValue::UInt32(None)) };
    match relation_oid(&ctx.snapshot(), &name) {
        Some(oid) => Ok(ScalarValue::UInt32(Some(oid))),
        None => Err(err(crate::error::TarnError::undefined_table(&name))),
    }
}

fn to_regclass(ctx: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    Ok(ScalarValue::UInt32(str_arg(a, 0).and_then(|n| relation_oid(&ctx.snapshot(), &n))))
}

fn regtype_in(_: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(name) = str_arg(a, 0) else { return Ok(ScalarValue::UInt32(None)) };
    match type_oid_by_name(&name) {
        Some(oid) => Ok(ScalarValue::UInt32(Some(oid))),
        None => Err(err(crate::error::TarnError::new(crate::error::sqlstate::UNDEFINED_OBJECT, format!("type \"{name}\" does not exist")))),
    }
}

fn to_regtype(_: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    Ok(ScalarValue::UInt32(str_arg(a, 0).and_then(|n| type_oid_by_name(&n))))
}

fn regtype_name(ctx: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(oid) = int_arg(a, 0) else { return Ok(null_text()) };
    if oid == 0 {
        return Ok(text("-"));
    }
    Ok(text(format_any_type(Some(&ctx.snapshot()), oid as u32, None)))
}

fn regnamespace_name(ctx: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some(oid) = int_arg(a, 0) else { return Ok(null_text()) };
    let user = ctx.storage.schemas().into_iter().find(|s| i64::from(oids::relation(s.id)) == oid).map(|s| s.name);
    Ok(text(namespace_name(oid as u32).map(str::to_string).or(user).unwrap_or_else(|| oid.to_string())))
}

fn relation_size(ctx: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    let snap = ctx.snapshot();
    let oid = match (int_arg(a, 0), str_arg(a, 0)) {
        (Some(oid), _) => Some(oid as u32),
        (None, Some(name)) => relation_oid(&snap, &name),
        _ => None,
    };
    let Some((id, 0)) = oid.and_then(decompose) else { return Ok(ScalarValue::Int64(oid.map(|_| 0))) };
    Ok(ScalarValue::Int64(Some(ctx.storage.disk_bytes(id) as i64)))
}

/// (result type, argument types, returns a set) of built-in functions, from `data/pg_proc.tsv`.
fn proc_signature(oid: u32) -> Option<&'static (u32, Vec<u32>, bool)> {
    static PROCS: std::sync::OnceLock<std::collections::HashMap<u32, (u32, Vec<u32>, bool)>> = std::sync::OnceLock::new();
    PROCS
        .get_or_init(|| {
            let table = SystemTable::find(super::PG_CATALOG, "pg_proc").expect("pg_proc is generated");
            let col = |name: &str| table.columns.iter().position(|(n, _)| *n == name).expect("pg_proc column");
            let (oid_at, ret_at, args_at, set_at) = (col("oid"), col("prorettype"), col("proargtypes"), col("proretset"));
            super::server::BUILTIN
                .iter()
                .find(|(n, _)| *n == "pg_proc")
                .map(|(_, tsv)| *tsv)
                .unwrap_or_default()
                .lines()
                .filter_map(|line| {
                    let f: Vec<&str> = line.split('\t').collect();
                    let args = f.get(args_at)?.trim_matches(|c| c == '{' || c == '}');
                    let args = args.split(',').filter(|a| !a.is_empty()).filter_map(|a| a.parse().ok()).collect();
                    Some((f.get(oid_at)?.parse().ok()?, (f.get(ret_at)?.parse().ok()?, args, *f.get(set_at)? == "t")))
                })
                .collect()
        })
        .get(&oid)
}

fn function_result(ctx: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some((ret, _, set)) = int_arg(a, 0).and_then(|o| proc_signature(o as u32)) else { return Ok(null_text()) };
    let name = format_any_type(Some(&ctx.snapshot()), *ret, None);
    Ok(text(if *set { format!("SETOF {name}") } else { name }))
}

fn function_arguments(ctx: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    let Some((_, args, _)) = int_arg(a, 0).and_then(|o| proc_signature(o as u32)) else { return Ok(null_text()) };
    let snap = ctx.snapshot();
    Ok(text(args.iter().map(|t| format_any_type(Some(&snap), *t, None)).collect::<Vec<_>>().join(", ")))
}

/// `json_build_object(k1, v1, …)`: keys as text, values as JSON (strings
/// quoted, numbers and booleans bare, NULL as null).
fn json_build_object(_: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    if a.len() % 2 != 0 {
        return Err(err(crate::error::TarnError::new(
            crate::error::sqlstate::INVALID_PARAMETER_VALUE,
            "argument list must have even number of elements",
        )
        .with_hint("The arguments of json_build_object() must consist of alternating keys and values.")));
    }
    let mut object = serde_json::Map::new();
    for pair in a.chunks(2) {
        let Some(key) = str_arg(pair, 0) else {
            return Err(err(crate::error::TarnError::new(crate::error::sqlstate::NULL_VALUE_NOT_ALLOWED, "null value not allowed for object key")));
        };
        let v = &pair[1];
        let value = if v.is_null() {
            serde_json::Value::Null
        } else {
            match v {
                ScalarValue::Boolean(Some(b)) => serde_json::Value::Bool(*b),
                ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => serde_json::Value::String(s.clone()),
                other if other.data_type().is_numeric() => other.to_string().parse::<serde_json::Number>().map(serde_json::Value::Number).unwrap_or(serde_json::Value::String(other.to_string())),
                other => serde_json::Value::String(other.to_string()),
            }
        };
        object.insert(key, value);
    }
    Ok(text(serde_json::Value::Object(object).to_string()))
}

fn array_upper(_: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    Ok(ScalarValue::Int32(match (a.first(), int_arg(a, 1)) {
        (Some(ScalarValue::List(l)), Some(1)) if !l.is_null(0) && !l.value(0).is_empty() => Some(l.value(0).len() as i32),
        _ => None,
    }))
}

fn array_lower(_: &FnContext, a: &[ScalarValue]) -> Result<ScalarValue> {
    Ok(ScalarValue::Int32(match (a.first(), int_arg(a, 1)) {
        (Some(ScalarValue::List(l)), Some(1)) if !l.is_null(0) && !l.value(0).is_empty() => Some(1),
        _ => None,
    }))
}

/// Every catalog function: (name, result type, body).
fn catalog_functions() -> Vec<(&'static str, PgType, Body)> {
    use PgType::*;
    vec![
        ("current_setting", Text, current_setting),
        ("set_config", Text, set_config),
        ("current_database", Name, |c, _| Ok(text(c.session.database()))),
        ("current_catalog", Name, |c, _| Ok(text(c.session.database()))),
        ("current_schema", Name, |c, _| Ok(c.search_path().into_iter().next().map(text).unwrap_or_else(null_text))),
        ("current_schemas", Array(Box::new(Name)), |c, a| {
            let mut names = vec![];
            if bool_arg(a, 0) {
                names.push("pg_catalog".to_string());
            }
            names.extend(c.search_path());
            let values: Vec<ScalarValue> = names.into_iter().map(text).collect();
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Utf8)))
        }),
        ("current_user", Name, |c, _| Ok(text(c.session.user()))),
        ("session_user", Name, |c, _| Ok(text(c.session.user()))),
        ("current_role", Name, |c, _| Ok(text(c.session.user()))),
        ("pg_backend_pid", Int4, |c, _| Ok(ScalarValue::Int32(Some(c.session.backend_pid())))),
        ("pg_get_userbyid", Name, |c, a| {
            Ok(match int_arg(a, 0) {
                Some(oid) if oid == i64::from(BOOTSTRAP_ROLE) => text(c.session.user()),
                Some(oid) if oid == i64::from(DATABASE_OWNER_ROLE) => text("pg_database_owner"),
                Some(oid) => text(format!("unknown (OID={oid})")),
                None => null_text(),
            })
        }),
        ("format_type", Text, |c, a| {
            Ok(match int_arg(a, 0) {
                Some(oid) => text(format_any_type(Some(&c.snapshot()), oid as u32, int_arg(a, 1))),
                None => null_text(),
            })
        }),
        // adbin holds the expression's SQL already (see pg_attrdef).
        ("pg_get_expr", Text, |_, a| Ok(str_arg(a, 0).map(text).unwrap_or_else(null_text))),
        ("pg_get_indexdef", Text, pg_get_indexdef),
        ("pg_get_constraintdef", Text, pg_get_constraintdef),
        ("pg_get_function_result", Text, function_result),
        ("pg_get_function_arguments", Text, function_arguments),
        ("pg_get_function_identity_arguments", Text, function_arguments),
        // Identity columns keep their counter with the table: no sequence.
        ("pg_get_serial_sequence", Text, |_, _| Ok(null_text())),
        (crate::sql::rewrite::DOMAIN_BASE_TYPE, Oid, |_, a| {
            // Tarn has no domains; built-in types are their own base (0 = none).
            Ok(ScalarValue::UInt32(int_arg(a, 0).map(|_| 0)))
        }),
        ("json_build_object", Json, json_build_object),
        ("pg_get_statisticsobjdef_columns", Text, |_, _| Ok(null_text())),
        ("pg_get_viewdef", Text, |c, a| {
            let snap = c.snapshot();
            let oid = int_arg(a, 0).map(|o| o as u32).or_else(|| str_arg(a, 0).and_then(|n| relation_oid(&snap, &n)));
            Ok(oid
                .and_then(decompose)
                .and_then(|(id, _)| snap.views.iter().find(|v| v.id == id).map(|v| text(format!(" {};", v.sql))))
                .unwrap_or_else(null_text))
        }),
        ("pg_table_is_visible", Bool, |_, a| Ok(boolean(int_arg(a, 0).is_some()))),
        ("pg_type_is_visible", Bool, |_, a| Ok(boolean(int_arg(a, 0).is_some()))),
        ("pg_function_is_visible", Bool, |_, a| Ok(boolean(int_arg(a, 0).is_some()))),
        ("pg_relation_is_publishable", Bool, |_, _| Ok(boolean(false))),
        ("pg_is_in_recovery", Bool, |_, _| Ok(boolean(false))),
        // One role, the superuser: every privilege is held.
        ("has_table_privilege", Bool, |_, _| Ok(boolean(true))),
        ("has_schema_privilege", Bool, |_, _| Ok(boolean(true))),
        ("has_database_privilege", Bool, |_, _| Ok(boolean(true))),
        ("has_column_privilege", Bool, |_, _| Ok(boolean(true))),
        ("has_any_column_privilege", Bool, |_, _| Ok(boolean(true))),
        ("has_function_privilege", Bool, |_, _| Ok(boolean(true))),
        ("has_sequence_privilege", Bool, |_, _| Ok(boolean(true))),
        ("pg_has_role", Bool, |_, _| Ok(boolean(true))),
        ("pg_encoding_to_char", Name, |_, a| Ok(text(if int_arg(a, 0) == Some(6) { "UTF8" } else { "" }))),
        // Tarn keeps no comments (COMMENT ON is not supported).
        ("obj_description", Text, |_, _| Ok(null_text())),
        ("col_description", Text, |_, _| Ok(null_text())),
        ("shobj_description", Text, |_, _| Ok(null_text())),
        ("pg_typeof", Text, |_, _| Ok(null_text())), // answered from the argument's field
        ("to_regclass", Oid, to_regclass),
        ("to_regtype", Oid, to_regtype),
        ("pg_relation_size", Int8, relation_size),
        ("pg_table_size", Int8, relation_size),
        ("pg_total_relation_size", Int8, relation_size),
        ("pg_indexes_size", Int8, |_, _| Ok(ScalarValue::Int64(Some(0)))),
        ("pg_database_size", Int8, |c, _| Ok(ScalarValue::Int64(Some(c.storage.disk_bytes_total() as i64)))),
        ("array_upper", Int4, array_upper),
        ("array_lower", Int4, array_lower),
        ("quote_ident", Text, |_, a| Ok(str_arg(a, 0).map(|s| text(relations::quote_ident(&s))).unwrap_or_else(null_text))),
        // What the rewrites make of `::regclass`, `::regtype`, `::regnamespace` (see sql::rewrite).
        (REGCLASS_IN, Oid, regclass_in),
        (REGCLASS_OUT, Text, regclass_name),
        (REGTYPE_IN, Oid, regtype_in),
        (REGTYPE_OUT, Text, regtype_name),
        (REGNAMESPACE_OUT, Text, regnamespace_name),
    ]
}

/// `information_schema._pg_expandarray(a)` yields rows `(x, n)`: each element
/// and its 1-based position (pgjdbc's getPrimaryKeys and getIndexInfo use it).
/// Tarn computes the rows as a list of `{x, n}` structs; the rewrite makes the
/// call `unnest(tarn_expandarray(a))` so that they become rows.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

fn expand_item() -> DataType {
    DataType::Struct(vec![Field::new("x", DataType::Int32, true), Field::new("n", DataType::Int32, false)].into())
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        EXPANDARRAY
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new("item", expand_item(), true))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use arrow::array::{Array, AsArray, Int32Builder, ListBuilder, StructBuilder};
        let n = args.number_rows;
        let input = args.args[0].to_array(n)?;
        let list = arrow::compute::cast(&input, &DataType::List(Arc::new(Field::new("item", DataType::Int32, true))))?;
        let list = list.as_list::<i32>();
        let DataType::Struct(fields) = expand_item() else { unreachable!("expand_item is a struct") };
        let mut out = ListBuilder::new(StructBuilder::from_fields(fields, 0));
        for row in 0..list.len() {
            if list.is_null(row) {
                out.append(false);
                continue;
            }
            let values = list.value(row);
            let values = values.as_primitive::<arrow::datatypes::Int32Type>();
            for (i, v) in values.iter().enumerate() {
                let s = out.values();
                s.field_builder::<Int32Builder>(0).expect("x").append_option(v);
                s.field_builder::<Int32Builder>(1).expect("n").append_value(i as i32 + 1);
                s.append(true);
            }
            out.append(true);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

pub const EXPANDARRAY: &str = "tarn_expandarray";
pub const REGCLASS_IN: &str = "tarn_regclass_in";
pub const REGCLASS_OUT: &str = "tarn_regclass_out";
pub const REGTYPE_IN: &str = "tarn_regtype_in";
pub const REGTYPE_OUT: &str = "tarn_regtype_out";
pub const REGNAMESPACE_OUT: &str = "tarn_regnamespace_out";

pub fn register(ctx: &SessionContext, fctx: Arc<FnContext>) {
    let signature = Signature::one_of(vec![TypeSignature::Nullary, TypeSignature::VariadicAny], Volatility::Stable);
    for (name, returns, body) in catalog_functions() {
        ctx.register_udf(ScalarUDF::from(CatalogFn { name, returns, body, signature: signature.clone(), ctx: fctx.clone() }));
    }
    ctx.register_udf(ScalarUDF::from(ExpandArray { signature: Signature::any(1, Volatility::Immutable) }));
}

/// The field a system table column is described with (exported for tests).
pub fn system_field(table: &SystemTable, column: &str) -> Option<Field> {
    table.columns.iter().find(|(n, _)| *n == column).and_then(|(n, t)| PgType::from_name(t).map(|t| t.to_field(n, true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bodies take any arguments (the signature is variadic), so each
    /// must answer missing, NULL, mistyped and out-of-range ones with a value
    /// or an error, never a panic.
    #[tokio::test]
    async fn every_body_survives_bad_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), Default::default()).await.unwrap();
        let ctx = FnContext { storage, session: Arc::new(super::super::Detached) };
        let junk = [
            vec![],
            vec![ScalarValue::Null],
            vec![ScalarValue::Utf8(Some("no such thing".into()))],
            vec![ScalarValue::Int64(Some(-1)), ScalarValue::Int64(Some(i64::MAX))],
            vec![ScalarValue::Int64(Some(16448)), ScalarValue::Utf8(Some("x".into())), ScalarValue::Boolean(Some(true))],
            vec![ScalarValue::Utf8(None); 3],
        ];
        for (name, _, body) in catalog_functions() {
            for args in &junk {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&ctx, args)));
                assert!(outcome.is_ok(), "{name}({args:?}) panicked");
            }
        }
    }

    #[test]
    fn format_type_prints_typmods_as_postgres() {
        assert_eq!(format_type(1700, Some(((10 << 16) | 2) + 4)).as_deref(), Some("numeric(10,2)"));
        assert_eq!(format_type(1043, Some(24)).as_deref(), Some("character varying(20)"));
        assert_eq!(format_type(1043, Some(-1)).as_deref(), Some("character varying"));
        assert_eq!(format_type(1042, Some(5)).as_deref(), Some("character(1)"));
        assert_eq!(format_type(23, None).as_deref(), Some("integer"));
        assert_eq!(format_type(1007, None).as_deref(), Some("integer[]"));
        assert_eq!(format_any_type(None, 2278, None), "void");
    }

    #[test]
    fn qualified_names_fold_unless_quoted() {
        assert_eq!(split_qualified("Public.T1"), ["public", "t1"]);
        assert_eq!(split_qualified("\"My\"\"T\".x"), ["My\"T", "x"]);
    }

    #[test]
    fn type_names_resolve_both_spellings() {
        assert_eq!(type_oid_by_name("integer"), Some(23));
        assert_eq!(type_oid_by_name("int4"), Some(23));
        assert_eq!(type_oid_by_name("text[]"), Some(1009));
        assert_eq!(type_oid_by_name("void"), Some(2278));
        assert_eq!(type_oid_by_name("nope"), None);
    }
}
