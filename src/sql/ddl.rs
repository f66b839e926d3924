//! DDL translation: `CREATE TABLE` as parsed → a table definition for storage.
//!
//! Everything a definition can say that Tarn cannot yet honour is refused
//! with 0A000 rather than silently ignored (a DEFAULT that is dropped would
//! corrupt data the user believes they wrote).

use datafusion::sql::sqlparser::ast::{self, ColumnOption, Expr, TableConstraint};

use super::{normalize_ident, qualified_name};
use crate::error::{Result, TarnError, sqlstate};
use crate::storage::NewTable;
use crate::storage::catalog::{ColumnDef, Identity, IndexMethod, TableKind};
use crate::types::PgType;

/// A parsed and checked `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct CreateTable {
    pub table: NewTable,
    pub if_not_exists: bool,
}

/// A parsed `CREATE TABLE … AS query`.
#[derive(Debug, Clone)]
pub struct CreateTableAs {
    pub schema: String,
    pub name: String,
    pub query: Box<ast::Query>,
    /// Column names given before AS (empty: the query's names).
    pub columns: Vec<String>,
    pub if_not_exists: bool,
}

/// A parsed `CREATE [OR REPLACE] VIEW`.
#[derive(Debug, Clone)]
pub struct CreateView {
    pub schema: String,
    pub name: String,
    pub query: Box<ast::Query>,
    /// Column names given after the view name (empty: the query's names).
    pub columns: Vec<String>,
    pub or_replace: bool,
    pub if_not_exists: bool,
}

/// The (schema, name) an object is created under; storage checks the schema exists.
fn public_name(name: &ast::ObjectName) -> Result<(String, String)> {
    qualified_name(name)
}

/// A parsed `CREATE INDEX`.
#[derive(Debug, Clone)]
pub struct CreateIndex {
    pub schema: String,
    pub table: String,
    pub name: Option<String>,
    pub column: String,
    pub method: IndexMethod,
    pub if_not_exists: bool,
}

/// `CREATE INDEX [IF NOT EXISTS] [name] ON t [USING btree|hash|bitmap] (column)`:
/// one plain column; the rest of PostgreSQL's forms are refused with 0A000.
pub fn create_index(ci: &ast::CreateIndex) -> Result<CreateIndex> {
    let unsupported = |what: &str| Err(TarnError::not_supported(format!("CREATE INDEX … {what} is not supported yet")));
    if ci.unique {
        return unsupported("UNIQUE (only the primary key is unique)");
    }
    if ci.predicate.is_some() {
        return unsupported("WHERE (partial indexes)");
    }
    if !ci.include.is_empty() {
        return unsupported("INCLUDE");
    }
    let (schema, table) = public_name(&ci.table_name)?;
    let column = match ci.columns.as_slice() {
        [c] => match &c.column.expr {
            Expr::Identifier(ident) => normalize_ident(ident),
            other => return unsupported(&format!("on the expression {other}")),
        },
        _ => return unsupported("on several columns"),
    };
    // Lance's BTree serves equality and ranges (PostgreSQL's btree and hash);
    // its bitmap suits low-cardinality columns.
    let method = match &ci.using {
        None | Some(ast::IndexType::BTree) | Some(ast::IndexType::Hash) => IndexMethod::Btree,
        Some(ast::IndexType::Custom(m)) if m.value.eq_ignore_ascii_case("bitmap") => IndexMethod::Bitmap,
        Some(other) => return unsupported(&format!("USING {other}")),
    };
    let name = ci.name.as_ref().map(qualified_name).transpose()?.map(|(_, n)| n);
    Ok(CreateIndex { schema, table, name, column, method, if_not_exists: ci.if_not_exists })
}

pub fn create_table_as(ct: &ast::CreateTable) -> Result<CreateTableAs> {
    let Some(query) = ct.query.clone() else { return Err(TarnError::internal("CREATE TABLE AS without a query")) };
    if ct.temporary || ct.or_replace {
        return Err(TarnError::not_supported("CREATE TEMPORARY / OR REPLACE TABLE … AS is not supported yet"));
    }
    let (schema, name) = public_name(&ct.name)?;
    let columns = ct.columns.iter().map(|c| normalize_ident(&c.name)).collect();
    Ok(CreateTableAs { schema, name, query, columns, if_not_exists: ct.if_not_exists })
}

pub fn create_view(cv: &ast::CreateView) -> Result<CreateView> {
    if cv.materialized {
        return Err(TarnError::not_supported("CREATE MATERIALIZED VIEW is not supported yet"));
    }
    if cv.temporary {
        return Err(TarnError::not_supported("CREATE TEMPORARY VIEW is not supported yet"));
    }
    let (schema, name) = public_name(&cv.name)?;
    let columns = cv.columns.iter().map(|c| normalize_ident(&c.name)).collect();
    Ok(CreateView { schema, name, query: cv.query.clone(), columns, or_replace: cv.or_replace, if_not_exists: cv.if_not_exists })
}

pub fn create_table(ct: &ast::CreateTable) -> Result<CreateTable> {
    let unsupported = |what: &str| Err(TarnError::not_supported(format!("CREATE TABLE … {what} is not supported yet")));
    if ct.temporary {
        return unsupported("TEMPORARY");
    }
    if ct.or_replace {
        return unsupported("OR REPLACE");
    }
    let (schema, name) = public_name(&ct.name)?;
    if ct.columns.is_empty() {
        return Err(TarnError::not_supported("tables without columns are not supported"));
    }

    let mut columns: Vec<ColumnDef> = vec![];
    let mut primary_key: Option<Vec<usize>> = None;
    let set_pk = |pk: &mut Option<Vec<usize>>, cols: Vec<usize>| -> Result<()> {
        if pk.is_some() {
            return Err(TarnError::new(
                sqlstate::INVALID_TABLE_DEFINITION,
                format!("multiple primary keys for table \"{name}\" are not allowed"),
            ));
        }
        *pk = Some(cols);
        Ok(())
    };

    for (pos, col) in ct.columns.iter().enumerate() {
        let (column, is_key) = column_def(col, &name)?;
        if columns.iter().any(|c| c.name == column.name) {
            return Err(TarnError::new(sqlstate::DUPLICATE_COLUMN, format!("column \"{}\" specified more than once", column.name)));
        }
        if is_key {
            set_pk(&mut primary_key, vec![pos])?;
        }
        columns.push(column);
    }

    for constraint in &ct.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                let mut cols = vec![];
                for ic in &pk.columns {
                    let Expr::Identifier(ident) = &ic.column.expr else {
                        return Err(TarnError::syntax(format!("primary key column must be a column name, not {}", ic.column.expr)));
                    };
                    let n = normalize_ident(ident);
                    let pos = columns.iter().position(|c| c.name == n).ok_or_else(|| {
                        TarnError::new(sqlstate::UNDEFINED_COLUMN, format!("column \"{n}\" named in key does not exist"))
                    })?;
                    if cols.contains(&pos) {
                        return Err(TarnError::new(sqlstate::DUPLICATE_COLUMN, format!("column \"{n}\" appears twice in primary key constraint")));
                    }
                    cols.push(pos);
                }
                set_pk(&mut primary_key, cols)?;
            }
            other => return Err(TarnError::not_supported(format!("table constraint {other} is not supported yet"))),
        }
    }
    let primary_key = primary_key.unwrap_or_default();
    for &i in &primary_key {
        columns[i].not_null = true;
    }
    let kind = access_method(&ct.table_options)?;
    Ok(CreateTable { table: NewTable { schema, name, columns, primary_key, kind }, if_not_exists: ct.if_not_exists })
}

/// `USING lance | heap` (parsed as `WITH (access_method = …)`, see
/// `sql::parse`). Other storage parameters are refused as PostgreSQL
/// refuses ones it does not know.
fn access_method(options: &ast::CreateTableOptions) -> Result<TableKind> {
    let ast::CreateTableOptions::With(options) = options else {
        return match options {
            ast::CreateTableOptions::None => Ok(TableKind::Lance),
            other => Err(TarnError::not_supported(format!("table options {other} are not supported"))),
        };
    };
    let mut kind = TableKind::Lance;
    for option in options {
        let ast::SqlOption::KeyValue { key, value } = option else {
            return Err(TarnError::new(sqlstate::INVALID_PARAMETER_VALUE, format!("unrecognized parameter \"{option}\"")));
        };
        if normalize_ident(key) != "access_method" {
            return Err(TarnError::new(sqlstate::INVALID_PARAMETER_VALUE, format!("unrecognized parameter \"{}\"", key.value)));
        }
        let method = match value {
            Expr::Identifier(i) => i.value.to_lowercase(),
            Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => s.to_lowercase(),
                other => other.to_string(),
            },
            other => other.to_string(),
        };
        kind = match method.as_str() {
            "lance" => TableKind::Lance,
            "heap" => TableKind::Heap,
            _ => return Err(TarnError::new(sqlstate::UNDEFINED_OBJECT, format!("access method \"{method}\" does not exist"))),
        };
    }
    Ok(kind)
}

/// One column definition (of CREATE TABLE or ADD COLUMN) → the catalog's
/// column, and whether it declares itself the primary key.
pub fn column_def(col: &ast::ColumnDef, name: &str) -> Result<(ColumnDef, bool)> {
    let unsupported = |what: &str| Err(TarnError::not_supported(format!("column option {what} is not supported yet")));
    let col_name = normalize_ident(&col.name);
    let mut is_key = false;
    let (ty, mut identity) = match serial_type(&col.data_type) {
        Some(ty) => (ty, Some(Identity::ByDefault)),
        None => (PgType::from_sql(&col.data_type)?, None),
    };
    let mut not_null = identity.is_some();
    let mut default = None;
    for opt in &col.options {
        match &opt.option {
            ColumnOption::Null => {}
            ColumnOption::NotNull => not_null = true,
            ColumnOption::PrimaryKey(_) => {
                if is_key {
                    return Err(TarnError::new(
                        sqlstate::INVALID_TABLE_DEFINITION,
                        format!("multiple primary keys for table \"{name}\" are not allowed"),
                    ));
                }
                is_key = true;
                not_null = true;
            }
            ColumnOption::Default(Expr::Value(v)) if matches!(v.value, ast::Value::Null) => {}
            ColumnOption::Default(expr) => {
                if identity.is_some() {
                    return Err(TarnError::syntax(format!(
                        "both default and identity specified for column \"{col_name}\" of table \"{name}\""
                    )));
                }
                default = Some(expr.to_string());
            }
            ColumnOption::Generated { generated_as, generation_expr: None, sequence_options, .. } => {
                if sequence_options.as_ref().is_some_and(|o| !o.is_empty()) {
                    return unsupported("identity sequence options (START WITH, INCREMENT BY, …)");
                }
                if identity.is_some() || default.is_some() {
                    return Err(TarnError::syntax(format!(
                        "multiple identity specifications for column \"{col_name}\" of table \"{name}\""
                    )));
                }
                if !matches!(ty, PgType::Int2 | PgType::Int4 | PgType::Int8) {
                    return Err(TarnError::new(
                        sqlstate::INVALID_PARAMETER_VALUE,
                        "identity column type must be smallint, integer, or bigint",
                    ));
                }
                identity = Some(match generated_as {
                    ast::GeneratedAs::Always => Identity::Always,
                    _ => Identity::ByDefault,
                });
                not_null = true;
            }
            ColumnOption::Generated { .. } => return unsupported("GENERATED ALWAYS AS (expression)"),
            ColumnOption::Unique(_) => return unsupported("UNIQUE"),
            ColumnOption::ForeignKey(_) => return unsupported("REFERENCES"),
            ColumnOption::Check(_) => return unsupported("CHECK"),
            other => return Err(TarnError::not_supported(format!("column option {other} is not supported yet"))),
        }
    }
    Ok((ColumnDef { name: col_name, type_name: ty.name(), not_null, default, identity }, is_key))
}

/// `smallserial`/`serial`/`bigserial`: an integer with an identity default.
fn serial_type(dt: &ast::DataType) -> Option<PgType> {
    let ast::DataType::Custom(name, args) = dt else { return None };
    if !args.is_empty() {
        return None;
    }
    match name.to_string().to_ascii_lowercase().as_str() {
        "smallserial" | "serial2" => Some(PgType::Int2),
        "serial" | "serial4" => Some(PgType::Int4),
        "bigserial" | "serial8" => Some(PgType::Int8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(sql: &str) -> Result<CreateTable> {
        match super::super::parse(sql)?.remove(0) {
            ast::Statement::CreateTable(c) => create_table(&c),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn the_readme_table() {
        let t = ct("CREATE TABLE trips (id bigint PRIMARY KEY, city text NOT NULL, fare numeric(10,2), at timestamptz)").unwrap();
        let cols: Vec<_> = t.table.columns.iter().map(|c| (c.name.as_str(), c.type_name.as_str(), c.not_null)).collect();
        assert_eq!(
            cols,
            vec![
                ("id", "bigint", true),
                ("city", "text", true),
                ("fare", "numeric(10,2)", false),
                ("at", "timestamp with time zone", false)
            ]
        );
        assert_eq!(t.table.primary_key, vec![0]);
    }

    #[test]
    fn table_level_composite_key_implies_not_null() {
        let t = ct("create table t (a int, B text, primary key (b, a))").unwrap();
        assert_eq!(t.table.primary_key, vec![1, 0]);
        assert!(t.table.columns.iter().all(|c| c.not_null));
    }

    #[test]
    fn defaults_and_identity_columns_are_recorded() {
        let t = ct("create table t (id bigserial primary key, n int default 1 + 2, g int generated always as identity)").unwrap();
        let c = &t.table.columns;
        assert_eq!((c[0].type_name.as_str(), c[0].identity), ("bigint", Some(Identity::ByDefault)));
        assert_eq!(c[1].default.as_deref(), Some("1 + 2"));
        assert_eq!(c[2].identity, Some(Identity::Always));
        assert!(c[2].not_null);
    }

    #[test]
    fn bad_definitions_get_postgres_errors() {
        assert_eq!(ct("create table t (a int, a int)").unwrap_err().code, sqlstate::DUPLICATE_COLUMN);
        assert_eq!(ct("create table t (a int primary key, b int primary key)").unwrap_err().code, sqlstate::INVALID_TABLE_DEFINITION);
        assert_eq!(ct("create table t (a int, primary key (z))").unwrap_err().code, sqlstate::UNDEFINED_COLUMN);
        assert_eq!(ct("create table t (a text generated always as (upper(b)) stored, b text)").unwrap_err().code, sqlstate::FEATURE_NOT_SUPPORTED);
        assert_eq!(ct("create table t (a serial default 3)").unwrap_err().code, sqlstate::SYNTAX_ERROR);
        assert_eq!(ct("create table t (a text generated always as identity)").unwrap_err().code, sqlstate::INVALID_PARAMETER_VALUE);
        assert_eq!(ct("create table t (a int generated always as identity (start with 100))").unwrap_err().code, sqlstate::FEATURE_NOT_SUPPORTED);
        assert_eq!(ct("create table t (a geometry)").unwrap_err().code, sqlstate::UNDEFINED_OBJECT);
    }
}
