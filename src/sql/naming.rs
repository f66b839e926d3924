//! Result column names the way PostgreSQL chooses them
//! (`FigureColname` in `parse_target.c`): `SELECT sum(fare)` is headed
//! `sum`, `SELECT 1` is `?column?`, `SELECT x::text` keeps `x`, `SELECT
//! '1'::int` is `int4`. DataFusion names columns after the whole expression
//! (`sum(trips.fare)`), which clients show verbatim and ORMs map by name.
//!
//! Pure function of the AST; the engine applies the names to RowDescription.

use datafusion::sql::sqlparser::ast::{
    self, CeilFloorKind, DataType, Expr, Query, SelectItem, SetExpr, Statement,
};

use super::normalize_ident;

/// One output column of a SELECT list.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputName {
    Named(String),
    /// `*` or `t.*`: expands to the table's column names, kept as planned.
    Wildcard,
}

/// PostgreSQL's names for a query's output columns, or None when the
/// statement is not a SELECT-shaped query (then the planner's names stand).
pub fn output_names(stmt: &Statement) -> Option<Vec<OutputName>> {
    match stmt {
        Statement::Query(q) => query_names(q),
        _ => None,
    }
}

fn query_names(q: &Query) -> Option<Vec<OutputName>> {
    set_expr_names(&q.body)
}

fn set_expr_names(body: &SetExpr) -> Option<Vec<OutputName>> {
    match body {
        SetExpr::Select(select) => Some(
            select
                .projection
                .iter()
                .map(|item| match item {
                    SelectItem::UnnamedExpr(e) => OutputName::Named(expr_name(e).unwrap_or_else(|| "?column?".into())),
                    SelectItem::ExprWithAlias { alias, .. } => {
                        let name = normalize_ident(alias);
                        // A rewrite's made-up alias (see `rewrite::ALIAS_MARK`) stands for the part before it.
                        OutputName::Named(name.split(super::rewrite::ALIAS_MARK).next().unwrap_or_default().to_string())
                    }
                    SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => OutputName::Wildcard,
                    SelectItem::ExprWithAliases { .. } => OutputName::Wildcard,
                })
                .collect(),
        ),
        // A set operation takes its names from its first branch.
        SetExpr::SetOperation { left, .. } => set_expr_names(left),
        SetExpr::Query(q) => query_names(q),
        _ => None,
    }
}

/// The name PostgreSQL gives an unaliased expression, if any.
pub(crate) fn expr_name(e: &Expr) -> Option<String> {
    Some(match e {
        Expr::Identifier(i) => normalize_ident(i),
        Expr::CompoundIdentifier(parts) => normalize_ident(parts.last()?),
        // count(*) and friends are named after the function.
        Expr::Function(f) => f.name.0.last()?.as_ident().map(normalize_ident)?,
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => return expr_name(inner),
        Expr::Cast { expr, data_type, .. } => return expr_name(expr).or_else(|| type_name(data_type)),
        Expr::TypedString(ts) => return type_name(&ts.data_type),
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::Subquery(q) => match query_names(q)?.into_iter().next()? {
            OutputName::Named(n) if n != "?column?" => n,
            _ => return None,
        },
        Expr::Array(_) => "array".into(),
        Expr::Tuple(_) => "row".into(),
        Expr::Extract { .. } => "extract".into(),
        Expr::Substring { .. } => "substring".into(),
        Expr::Trim { .. } => "btrim".into(),
        Expr::Position { .. } => "position".into(),
        Expr::Overlay { .. } => "overlay".into(),
        Expr::Ceil { field: CeilFloorKind::DateTimeField(_), .. } => "ceil".into(),
        Expr::Floor { field: CeilFloorKind::DateTimeField(_), .. } => "floor".into(),
        Expr::Ceil { .. } => "ceil".into(),
        Expr::Floor { .. } => "floor".into(),
        Expr::Interval(_) => "interval".into(),
        Expr::AtTimeZone { .. } => "timezone".into(),
        _ => return None,
    })
}

/// The internal type name PostgreSQL reports for a cast target.
fn type_name(dt: &DataType) -> Option<String> {
    use DataType as D;
    Some(
        match dt {
            D::Bool | D::Boolean => "bool",
            D::SmallInt(_) | D::Int2(_) => "int2",
            D::Int(_) | D::Integer(_) | D::Int4(_) => "int4",
            D::BigInt(_) | D::Int8(_) => "int8",
            D::Real | D::Float4 => "float4",
            D::Double(_) | D::DoublePrecision | D::Float8 | D::Float(_) => "float8",
            D::Numeric(_) | D::Decimal(_) | D::Dec(_) => "numeric",
            D::Text => "text",
            D::Varchar(_) | D::CharacterVarying(_) | D::CharVarying(_) => "varchar",
            D::Char(_) | D::Character(_) => "bpchar",
            D::Bytea => "bytea",
            D::Date => "date",
            D::Timestamp(_, ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz) => "timestamptz",
            D::Timestamp(..) => "timestamp",
            D::Custom(name, _) => return name.0.last()?.as_ident().map(normalize_ident),
            _ => return None,
        }
        .to_string(),
    )
}

/// Merge PostgreSQL's names with the planned column names: each wildcard
/// keeps the planner's names for the columns it expanded to. Returns None if
/// the shapes do not line up (then the planner's names are used as they are).
pub fn resolve(names: &[OutputName], planned: &[String]) -> Option<Vec<String>> {
    let wildcards = names.iter().filter(|n| **n == OutputName::Wildcard).count();
    let named = names.len() - wildcards;
    let expanded = planned.len().checked_sub(named)?;
    if (wildcards == 0 && expanded != 0) || wildcards > 1 {
        return None;
    }
    let mut out = Vec::with_capacity(planned.len());
    let mut pos = 0;
    for n in names {
        match n {
            OutputName::Named(s) => {
                out.push(s.clone());
                pos += 1;
            }
            OutputName::Wildcard => {
                out.extend(planned[pos..pos + expanded].iter().cloned());
                pos += expanded;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        let stmt = crate::sql::parse(sql).unwrap().remove(0);
        output_names(&stmt)
            .unwrap()
            .into_iter()
            .map(|n| match n {
                OutputName::Named(s) => s,
                OutputName::Wildcard => "*".into(),
            })
            .collect()
    }

    #[test]
    fn names_match_postgres() {
        // Each expectation is the header PostgreSQL 15 prints for the same query.
        assert_eq!(names("SELECT city, sum(fare) FROM trips"), ["city", "sum"]);
        assert_eq!(names("SELECT count(*), 1, 'a', 1 + 2"), ["count", "?column?", "?column?", "?column?"]);
        assert_eq!(names("SELECT t.Id, \"Mixed\", x AS Y, x AS \"Y\""), ["id", "Mixed", "y", "Y"]);
        assert_eq!(names("SELECT x::text, '1'::int, CAST(2 AS bigint), 3::numeric(4,1)"), ["x", "int4", "int8", "numeric"]);
        assert_eq!(names("SELECT CASE WHEN true THEN 1 END, (a), pg_catalog.version()"), ["case", "a", "version"]);
        assert_eq!(names("SELECT DATE '2026-01-01', now() AT TIME ZONE 'UTC'"), ["date", "timezone"]);
        assert_eq!(names("SELECT (SELECT max(a) FROM t), EXISTS (SELECT 1)"), ["max", "exists"]);
        assert_eq!(names("SELECT a FROM t UNION SELECT b FROM u"), ["a"]);
        assert_eq!(names("SELECT *, 1 FROM t"), ["*", "?column?"]);
    }

    #[test]
    fn wildcards_keep_planned_names() {
        let n = vec![OutputName::Wildcard, OutputName::Named("?column?".into())];
        let planned: Vec<String> = ["id", "city", "Int64(1)"].iter().map(|s| s.to_string()).collect();
        assert_eq!(resolve(&n, &planned).unwrap(), ["id", "city", "?column?"]);
        assert!(resolve(&[OutputName::Named("a".into())], &planned).is_none());
    }
}
