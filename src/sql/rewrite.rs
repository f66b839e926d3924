//! Rewrites of PostgreSQL syntax that DataFusion 54 does not plan, applied
//! to every parsed statement (the AST is changed in place; no text is
//! re-parsed). Each rewrite has a test below and a note of when it can go.
//!
//! | PostgreSQL | becomes | can go when |
//! |---|---|---|
//! | `a OPERATOR(pg_catalog.~) b` | `a ~ b` (any schema-qualified builtin operator) | DataFusion plans `PGCustomBinaryOperator` |
//! | `x COLLATE pg_catalog.default` / `COLLATE "C"` | `x` (Tarn compares text bytewise, which is "C") | DataFusion supports COLLATE |
//! | `pg_catalog.f(…)`, `FROM pg_catalog.f(…)` | `f(…)` | DataFusion resolves functions by schema |
//! | `current_user`, `session_user`, `user`, `current_catalog`, `current_schema` (no parentheses) | calls of Tarn's functions | DataFusion plans these keywords |
//! | `'t1'::regclass` / `x::regclass` (also `regtype`; `regnamespace` output) | `tarn_regclass_in('t1')` (an oid) / `tarn_regclass_out(x)` (a name) | Tarn has reg* types of its own |
//! | `x::pg_catalog.text` | `x::text` | DataFusion resolves type names by schema |
//! | `ARRAY(subquery)` | `(SELECT array_agg(e) FROM (subquery) AS _array(e))` | DataFusion plans array subqueries |
//! | `information_schema._pg_expandarray(a)` | `unnest(tarn_expandarray(a))`: rows of `{x, n}` | Tarn has set-returning functions of records |
//! | `SELECT t.oid, t.*` (DBeaver) | `SELECT t.oid AS "oid\u{1}0", t.*`, headed `oid` again | DataFusion allows duplicate output names |
//! | a correlated scalar subquery selecting a plain value | the value in `first_value(…)`; outer-only conditions moved to a `CASE WHEN` around it; outer columns equal to inner ones replaced by them in the other conditions | DataFusion decorrelates any scalar subquery |
//! | `WITH RECURSIVE t(a, b) AS (SELECT x, y UNION ALL …)` | `WITH RECURSIVE t AS (SELECT x AS a, y AS b UNION ALL …)` | DataFusion applies a recursive CTE's column list |
//! | asyncpg's `(WITH RECURSIVE typebases … FROM pg_type t2 WHERE t2.oid = t.oid …)` | `tarn_domain_base_type(t.oid)` | DataFusion plans correlated recursive CTEs |
//! | `generate_subscripts(a, d)` (one-dimensional arrays) | `unnest(generate_series(1, array_length(a, d)::bigint))` | DataFusion has `generate_subscripts` |
//! | `(expr).field` on a computed record (pgjdbc's `(_pg_expandarray(…)).n`) | `get_field(expr, 'field')` | DataFusion plans field access on any expression |
//! | `FROM generate_series(…) g` | `FROM generate_series(…) AS g(g)`: PostgreSQL names a scalar function's column after its alias | DataFusion names it so |

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, ObjectNamePart, Query, SelectItem, SetExpr, Statement, TableAliasColumnDef, TableFactor, Value, VisitMut, VisitorMut,
};

use crate::engine::pg_catalog::functions::{EXPANDARRAY, REGCLASS_IN, REGCLASS_OUT, REGNAMESPACE_OUT, REGTYPE_IN, REGTYPE_OUT};

/// Apply every rewrite to `stmt`.
pub fn apply(stmt: &mut Statement) {
    let _ = stmt.visit(&mut Rewriter);
}

struct Rewriter;

impl VisitorMut for Rewriter {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        disambiguate_wildcard_duplicates(&mut query.body);
        if let Some(with) = query.with.as_mut().filter(|w| w.recursive) {
            with.cte_tables.iter_mut().for_each(name_recursive_cte_columns);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args: Some(args), alias, .. } = factor {
            strip_pg_catalog(name);
            let single_column = match last_name(name).as_str() {
                "generate_series" => true,
                "unnest" => args.args.len() == 1,
                _ => false,
            };
            if let Some(alias) = alias.as_mut().filter(|a| single_column && a.columns.is_empty()) {
                alias.columns = vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::BinaryOp { op: op @ BinaryOperator::PGCustomBinaryOperator(_), .. } => {
                if let BinaryOperator::PGCustomBinaryOperator(parts) = &*op {
                    if let Some(builtin) = builtin_operator(parts) {
                        *op = builtin;
                    }
                }
            }
            // `(expr).field` on a computed record: DataFusion's `get_field`.
            Expr::CompoundFieldAccess { root, access_chain }
                if !matches!(root.as_ref(), Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                    && access_chain.iter().all(|a| matches!(a, datafusion::sql::sqlparser::ast::AccessExpr::Dot(Expr::Identifier(_)))) =>
            {
                let mut value = std::mem::replace(root.as_mut(), Expr::value(Value::Null));
                if let Expr::Nested(inner) = value {
                    value = *inner;
                }
                for a in access_chain.drain(..) {
                    if let datafusion::sql::sqlparser::ast::AccessExpr::Dot(Expr::Identifier(field)) = a {
                        value = call("get_field", vec![value, Expr::value(Value::SingleQuotedString(super::normalize_ident(&field)))]);
                    }
                }
                *expr = value;
            }
            Expr::Subquery(q) => match domain_base_lookup(q) {
                Some(of) => *expr = call(DOMAIN_BASE_TYPE, vec![of]),
                None => decorrelate_scalar_subquery(expr),
            },
            Expr::Collate { expr: inner, .. } => *expr = std::mem::replace(inner.as_mut(), Expr::value(Value::Null)),
            Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("current_schema") => {
                *expr = call("current_schema", vec![]);
            }
            Expr::Function(f) => {
                strip_pg_catalog(&mut f.name);
                let name = last_name(&f.name);
                if matches!(f.args, FunctionArguments::None)
                    && matches!(name.as_str(), "current_user" | "session_user" | "user" | "current_catalog" | "current_role" | "current_schema")
                {
                    let target = if name == "user" { "current_user" } else { name.as_str() };
                    *expr = call(target, vec![]);
                } else if name == "generate_subscripts" {
                    if let FunctionArguments::List(list) = &f.args {
                        if let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arr)), FunctionArg::Unnamed(FunctionArgExpr::Expr(dim))] = list.args.as_slice() {
                            let length = Expr::Cast {
                                kind: CastKind::DoubleColon,
                                expr: Box::new(call("array_length", vec![arr.clone(), dim.clone()])),
                                data_type: DataType::BigInt(None),
                                array: false,
                                format: None,
                            };
                            let series = call("generate_series", vec![Expr::value(Value::Number("1".into(), false)), length]);
                            *expr = call("unnest", vec![series]);
                        }
                    }
                } else if name == "_pg_expandarray" {
                    if let FunctionArguments::List(list) = &f.args {
                        if let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = list.args.as_slice() {
                            *expr = call("unnest", vec![call(EXPANDARRAY, vec![arg.clone()])]);
                        }
                    }
                } else if name == "array" {
                    if let FunctionArguments::Subquery(q) = &f.args {
                        *expr = array_subquery(q.as_ref().clone());
                    }
                }
            }
            Expr::Cast { expr: inner, data_type, kind, .. } if !matches!(kind, CastKind::TryCast | CastKind::SafeCast) => {
                strip_type_schema(data_type);
                // `'t1'::regclass::text` is the relation's (normalised) name.
                if matches!(data_type, DataType::Text) {
                    if let Expr::Function(f) = inner.as_mut() {
                        let out = match last_name(&f.name).as_str() {
                            REGCLASS_IN => Some(REGCLASS_OUT),
                            REGTYPE_IN => Some(REGTYPE_OUT),
                            _ => None,
                        };
                        if let Some(out) = out {
                            let lookup = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
                            **inner = call(out, vec![lookup]);
                        }
                    }
                }
                let literal = matches!(inner.as_ref(), Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)));
                let function = match reg_type(data_type).as_deref() {
                    Some("regclass") => Some(if literal { REGCLASS_IN } else { REGCLASS_OUT }),
                    Some("regtype") => Some(if literal { REGTYPE_IN } else { REGTYPE_OUT }),
                    Some("regnamespace") if !literal => Some(REGNAMESPACE_OUT),
                    Some("regproc") => {
                        *data_type = DataType::Text;
                        None
                    }
                    _ => None,
                };
                if let Some(function) = function {
                    let arg = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
                    *expr = call(function, vec![arg]);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Aggregates DataFusion knows, by name: a scalar subquery selecting one of
/// these needs no wrapping.
const AGGREGATES: &[&str] = &[
    "count", "sum", "min", "max", "avg", "array_agg", "string_agg", "bool_and", "bool_or", "every", "first_value", "last_value",
    "stddev", "variance", "bit_and", "bit_or",
];

/// DataFusion plans a correlated scalar subquery only when it is
/// aggregated and its correlation is equalities between inner and outer
/// columns; psql's `(SELECT pg_get_expr(d.adbin, …) FROM pg_attrdef d WHERE
/// d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef)` is
/// neither. So, for a correlated subquery selecting one plain value:
/// - the value is wrapped in `first_value` (the one row's value, or NULL;
///   more than one row gives one of them, where PostgreSQL raises 21000);
/// - a condition on outer columns only moves out: `CASE WHEN a.atthasdef
///   THEN (SELECT …) END`;
/// - an outer column equal to an inner one (`c.oid = a.attcollation`) is
///   replaced by the inner one in the other conditions, so
///   `a.attcollation <> t.typcollation` becomes `c.oid <> t.typcollation`.
fn decorrelate_scalar_subquery(expr: &mut Expr) {
    let Expr::Subquery(q) = expr else { return };
    let SetExpr::Select(select) = q.body.as_mut() else { return };
    let no_grouping = matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty());
    if select.projection.len() != 1 || !no_grouping || select.having.is_some() || q.limit_clause.is_some() {
        return;
    }
    let local: Vec<String> = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .filter_map(|f| match f {
            TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => Some(a.name.value.to_lowercase()),
            TableFactor::Table { name, .. } => Some(last_name(name)),
            _ => None,
        })
        .collect();
    let Some(selection) = select.selection.take() else { return };
    let mut conjuncts = vec![];
    split_and(selection, &mut conjuncts);
    let (outer_refs, inner_refs): (Vec<bool>, Vec<bool>) = conjuncts.iter().map(|c| refs(c, &local)).unzip();
    if !outer_refs.iter().any(|o| *o) {
        select.selection = join_and(conjuncts);
        return;
    }
    // outer column → the inner column it equals
    let mut equal: Vec<(Expr, Expr)> = vec![];
    for c in &conjuncts {
        if let Expr::BinaryOp { left, op: BinaryOperator::Eq, right } = c {
            for (outer, inner) in [(left, right), (right, left)] {
                if is_column(outer, &local, false) && is_column(inner, &local, true) {
                    equal.push((outer.as_ref().clone(), inner.as_ref().clone()));
                }
            }
        }
    }
    let mut kept = vec![];
    let mut outside = vec![];
    for (mut c, (outer, inner)) in conjuncts.into_iter().zip(outer_refs.into_iter().zip(inner_refs)) {
        if outer && !inner {
            outside.push(c);
            continue;
        }
        let is_binding = matches!(&c, Expr::BinaryOp { op: BinaryOperator::Eq, left, right }
            if (is_column(left, &local, false) && is_column(right, &local, true)) || (is_column(right, &local, false) && is_column(left, &local, true)));
        if outer && !is_binding {
            let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut c, |x| {
                if let Some((_, inner)) = equal.iter().find(|(o, _)| o == x) {
                    *x = inner.clone();
                }
                ControlFlow::<()>::Continue(())
            });
        }
        kept.push(c);
    }
    select.selection = join_and(kept);
    let value = match &mut select.projection[0] {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return,
    };
    if !is_aggregate(value) {
        let inner = std::mem::replace(value, Expr::value(Value::Null));
        *value = call("first_value", vec![inner]);
    }
    if let Some(condition) = join_and(outside) {
        let subquery = std::mem::replace(expr, Expr::value(Value::Null));
        *expr = Expr::Case {
            case_token: datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
            end_token: datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
            operand: None,
            conditions: vec![datafusion::sql::sqlparser::ast::CaseWhen { condition, result: subquery }],
            else_result: None,
        };
    }
}

fn split_and(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            split_and(*left, out);
            split_and(*right, out);
        }
        Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: BinaryOperator::And, .. }) => split_and(*inner, out),
        other => out.push(other),
    }
}

fn join_and(conjuncts: Vec<Expr>) -> Option<Expr> {
    conjuncts.into_iter().reduce(|a, b| Expr::BinaryOp { left: Box::new(a), op: BinaryOperator::And, right: Box::new(b) })
}

/// A column qualified by a local relation (`local_side`) or by another one.
fn is_column(e: &Expr, local: &[String], local_side: bool) -> bool {
    matches!(e, Expr::CompoundIdentifier(p) if p.len() >= 2 && local.contains(&qualifier(p)) == local_side)
}

/// The relation a qualified column names (`t.c`, `pg_catalog.t.c`: `t`).
fn qualifier(parts: &[Ident]) -> String {
    parts[parts.len() - 2].value.to_lowercase()
}

/// (names an outer column, names a local column); unqualified names count as local.
fn refs(e: &Expr, local: &[String]) -> (bool, bool) {
    let (mut outer, mut inner) = (false, false);
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |x| {
        match x {
            Expr::CompoundIdentifier(p) if p.len() >= 2 => {
                if local.contains(&qualifier(p)) {
                    inner = true
                } else {
                    outer = true
                }
            }
            Expr::Identifier(_) => inner = true,
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    (outer, inner)
}

fn is_aggregate(e: &Expr) -> bool {
    matches!(e, Expr::Function(f) if AGGREGATES.contains(&last_name(&f.name).as_str()))
}

/// `WITH RECURSIVE t(a, b) AS (anchor UNION ALL step)`: DataFusion ignores
/// the column list of a recursive CTE, so the names move onto the anchor's
/// select list (`SELECT x AS a, y AS b`), which names the CTE's columns.
fn name_recursive_cte_columns(cte: &mut datafusion::sql::sqlparser::ast::Cte) {
    if cte.alias.columns.is_empty() {
        return;
    }
    let mut anchor = cte.query.body.as_mut();
    while let SetExpr::SetOperation { left, .. } = anchor {
        anchor = left.as_mut();
    }
    let SetExpr::Select(select) = anchor else { return };
    if select.projection.len() != cte.alias.columns.len() {
        return;
    }
    for (item, column) in select.projection.iter_mut().zip(&cte.alias.columns) {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
            _ => return,
        };
        *item = SelectItem::ExprWithAlias { expr, alias: column.name.clone() };
    }
    cte.alias.columns.clear();
}

/// asyncpg's type introspection finds a domain's base type with a recursive
/// CTE inside a correlated subquery (`WITH RECURSIVE typebases(oid, depth)
/// AS (SELECT t2.typbasetype, 0 FROM pg_type t2 WHERE t2.oid = t.oid UNION
/// ALL …) SELECT oid FROM typebases ORDER BY depth DESC LIMIT 1`), which
/// DataFusion cannot plan. That walk is `tarn_domain_base_type(t.oid)`.
/// Returns the outer expression the walk starts from.
fn domain_base_lookup(q: &Query) -> Option<Expr> {
    let with = q.with.as_ref().filter(|w| w.recursive && w.cte_tables.len() == 1)?;
    let mut anchor = with.cte_tables[0].query.body.as_ref();
    while let SetExpr::SetOperation { left, .. } = anchor {
        anchor = left.as_ref();
    }
    let SetExpr::Select(select) = anchor else { return None };
    let reads_typbasetype = select.projection.iter().any(|i| match i {
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) | SelectItem::ExprWithAlias { expr: Expr::CompoundIdentifier(p), .. } => {
            p.last().is_some_and(|c| c.value.eq_ignore_ascii_case("typbasetype"))
        }
        _ => false,
    });
    let from_pg_type = matches!(select.from.as_slice(), [t] if matches!(&t.relation, TableFactor::Table { name, .. } if last_name(name) == "pg_type"));
    if !(reads_typbasetype && from_pg_type) {
        return None;
    }
    match select.selection.as_ref()? {
        Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => match (left.as_ref(), right.as_ref()) {
            (Expr::CompoundIdentifier(l), outer) | (outer, Expr::CompoundIdentifier(l)) if l.last().is_some_and(|c| c.value.eq_ignore_ascii_case("oid")) => {
                Some(outer.clone())
            }
            _ => None,
        },
        _ => None,
    }
}

pub const DOMAIN_BASE_TYPE: &str = "tarn_domain_base_type";

/// Marks an alias the rewrites made up: the result column is named by the
/// part before it (see `naming`).
pub const ALIAS_MARK: char = '\u{1}';

/// `SELECT t.oid, t.*` names `oid` twice, and `SELECT pubname, NULL, NULL`
/// has the same expression twice, which PostgreSQL allows and DataFusion
/// refuses; the repeated item gets a made-up alias that the result header
/// turns back into PostgreSQL's name.
fn disambiguate_wildcard_duplicates(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            // `SELECT oid::int4 … ORDER BY oid`: DataFusion names a cast after
            // its operand, so the sort key would clash with it; PostgreSQL
            // names the column `oid` and sorts by it. The alias says so.
            let names: Vec<Option<String>> = select
                .projection
                .iter()
                .map(|i| match i {
                    SelectItem::UnnamedExpr(e) => super::naming::expr_name(e),
                    SelectItem::ExprWithAlias { alias, .. } => Some(super::normalize_ident(alias)),
                    _ => None,
                })
                .collect();
            for (i, item) in select.projection.iter_mut().enumerate() {
                if let SelectItem::UnnamedExpr(e @ Expr::Cast { .. }) = item {
                    if let Some(name) = names[i].as_ref().filter(|n| names.iter().filter(|m| m.as_ref() == Some(n)).count() == 1) {
                        *item = SelectItem::ExprWithAlias { expr: e.clone(), alias: Ident::with_quote('"', name.clone()) };
                    }
                }
            }
            let mut seen = std::collections::HashSet::new();
            for (i, item) in select.projection.iter_mut().enumerate() {
                if let SelectItem::UnnamedExpr(e) = item {
                    if !seen.insert(e.to_string()) {
                        let name = super::naming::expr_name(e).unwrap_or_else(|| "?column?".into());
                        let alias = Ident::with_quote('"', format!("{name}{ALIAS_MARK}{i}"));
                        *item = SelectItem::ExprWithAlias { expr: e.clone(), alias };
                    }
                }
            }
            let has_wildcard = select.projection.iter().any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)));
            if !has_wildcard {
                return;
            }
            for (i, item) in select.projection.iter_mut().enumerate() {
                if let SelectItem::UnnamedExpr(e @ (Expr::CompoundIdentifier(_) | Expr::Identifier(_))) = item {
                    let name = match e {
                        Expr::CompoundIdentifier(parts) => parts.last().map(super::normalize_ident).unwrap_or_default(),
                        Expr::Identifier(id) => super::normalize_ident(id),
                        _ => unreachable!("matched above"),
                    };
                    let alias = Ident::with_quote('"', format!("{name}{ALIAS_MARK}{i}"));
                    *item = SelectItem::ExprWithAlias { expr: e.clone(), alias };
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            disambiguate_wildcard_duplicates(left);
            disambiguate_wildcard_duplicates(right);
        }
        _ => {}
    }
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn last_name(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(id)) => id.value.to_ascii_lowercase(),
        _ => String::new(),
    }
}

fn strip_pg_catalog(name: &mut ObjectName) {
    if name.0.len() == 2 && matches!(&name.0[0], ObjectNamePart::Identifier(id) if id.value.eq_ignore_ascii_case("pg_catalog")) {
        name.0.remove(0);
    }
}

/// `pg_catalog.text` → `text` (any type name qualified by pg_catalog).
fn strip_type_schema(ty: &mut DataType) {
    use datafusion::sql::sqlparser::ast::ArrayElemTypeDef;
    if let DataType::Array(ArrayElemTypeDef::SquareBracket(elem, _) | ArrayElemTypeDef::AngleBracket(elem) | ArrayElemTypeDef::Parenthesis(elem)) = ty {
        return strip_type_schema(elem);
    }
    if let DataType::Custom(name, modifiers) = ty {
        if name.0.len() == 2 && modifiers.is_empty() {
            strip_pg_catalog(name);
            if name.0.len() == 1 {
                let text = last_name(name);
                let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
                if let Ok(parsed) = datafusion::sql::sqlparser::parser::Parser::new(&dialect).try_with_sql(&text).and_then(|mut p| p.parse_data_type()) {
                    *ty = parsed;
                }
            }
        }
    }
}

/// The reg* type a cast names, if any.
fn reg_type(ty: &DataType) -> Option<String> {
    match ty {
        DataType::Regclass => Some("regclass".into()),
        DataType::Custom(name, _) if name.0.len() == 1 => {
            let n = last_name(name);
            matches!(n.as_str(), "regclass" | "regtype" | "regnamespace" | "regproc" | "regprocedure").then(|| n.replace("regprocedure", "regproc"))
        }
        _ => None,
    }
}

fn builtin_operator(parts: &[String]) -> Option<BinaryOperator> {
    let [schema, op] = parts else { return None };
    if !schema.eq_ignore_ascii_case("pg_catalog") {
        return None;
    }
    Some(match op.as_str() {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "+" => BinaryOperator::Plus,
        "-" => BinaryOperator::Minus,
        "*" => BinaryOperator::Multiply,
        "/" => BinaryOperator::Divide,
        "||" => BinaryOperator::StringConcat,
        _ => return None,
    })
}

/// `ARRAY(SELECT e FROM … WHERE … ORDER BY o)` → `(SELECT array_agg(e ORDER
/// BY o) FROM … WHERE …)`, which keeps a correlated subquery's outer
/// references at its own level; any other query → `(SELECT array_agg(_elem)
/// FROM (q) AS _array(_elem))`.
fn array_subquery(mut q: Query) -> Expr {
    if let Some(direct) = aggregate_in_place(&mut q) {
        return direct;
    }
    array_subquery_derived(q)
}

fn aggregate_in_place(q: &mut Query) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{FunctionArgumentClause, GroupByExpr, OrderByKind};
    let simple_query = q.limit_clause.is_none() && q.fetch.is_none() && q.with.is_none();
    let SetExpr::Select(select) = q.body.as_mut() else { return None };
    let plain = select.distinct.is_none()
        && select.having.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
        && select.projection.len() == 1;
    if !(simple_query && plain) {
        return None;
    }
    let item = match &select.projection[0] {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
        _ => return None,
    };
    let mut order = match q.order_by.take().map(|o| o.kind) {
        None => vec![],
        Some(OrderByKind::Expressions(exprs)) => exprs,
        Some(OrderByKind::All(_)) => return None,
    };
    for o in &mut order {
        // `ORDER BY 1` names the one output column.
        if matches!(&o.expr, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n == "1")) {
            o.expr = item.clone();
        }
    }
    let Expr::Function(mut agg) = call("array_agg", vec![item]) else { unreachable!("call builds a function") };
    if let FunctionArguments::List(list) = &mut agg.args {
        if !order.is_empty() {
            list.clauses.push(FunctionArgumentClause::OrderBy(order));
        }
    }
    select.projection[0] = SelectItem::UnnamedExpr(Expr::Function(agg));
    Some(Expr::Subquery(Box::new(q.clone())))
}

fn array_subquery_derived(q: Query) -> Expr {
    let template = "SELECT array_agg(_elem) FROM (SELECT 1) AS _array(_elem)";
    let mut stmts = super::parse_plain(template).expect("template parses");
    let Statement::Query(mut outer) = stmts.remove(0) else { unreachable!("template is a query") };
    if let SetExpr::Select(select) = outer.body.as_mut() {
        if let TableFactor::Derived { subquery, .. } = &mut select.from[0].relation {
            **subquery = q;
        }
    }
    Expr::Subquery(outer)
}

#[cfg(test)]
mod tests {
    fn rewritten(sql: &str) -> String {
        let mut stmts = super::super::parse(sql).unwrap();
        stmts.remove(0).to_string()
    }

    #[test]
    fn qualified_operators_become_builtin() {
        assert_eq!(rewritten("SELECT 1 WHERE c.relname OPERATOR(pg_catalog.~) '^(t1)$'"), "SELECT 1 WHERE c.relname ~ '^(t1)$'");
        assert_eq!(rewritten("SELECT a OPERATOR(pg_catalog.=) b"), "SELECT a = b");
    }

    #[test]
    fn collations_are_dropped() {
        assert_eq!(rewritten("SELECT 1 WHERE x ~ '^a' COLLATE pg_catalog.default"), "SELECT 1 WHERE x ~ '^a'");
    }

    #[test]
    fn pg_catalog_qualified_functions_lose_the_schema() {
        assert_eq!(rewritten("SELECT pg_catalog.version()"), "SELECT version()");
        assert_eq!(rewritten("SELECT * FROM pg_catalog.generate_series(1, 3) s"), "SELECT * FROM generate_series(1, 3) s (s)");
        assert_eq!(rewritten("SELECT * FROM pg_catalog.pg_class"), "SELECT * FROM pg_catalog.pg_class");
    }

    #[test]
    fn session_keywords_become_calls() {
        assert_eq!(rewritten("SELECT current_user, session_user, user, current_schema"), "SELECT current_user(), session_user(), current_user(), current_schema()");
        assert_eq!(rewritten("SELECT current_schema()"), "SELECT current_schema()");
    }

    #[test]
    fn reg_casts_become_lookups() {
        assert_eq!(rewritten("SELECT 'pg_class'::regclass"), "SELECT tarn_regclass_in('pg_class')");
        assert_eq!(rewritten("SELECT c.oid::pg_catalog.regclass"), "SELECT tarn_regclass_out(c.oid) AS \"oid\"");
        assert_eq!(rewritten("SELECT t::regtype::text"), "SELECT tarn_regtype_out(t)::TEXT AS \"t\"");
        assert_eq!(rewritten("SELECT n::regnamespace"), "SELECT tarn_regnamespace_out(n) AS \"n\"");
        assert_eq!(rewritten("SELECT x::pg_catalog.text"), "SELECT x::TEXT AS \"x\"");
        assert_eq!(rewritten("SELECT 't1'::regclass::text"), "SELECT tarn_regclass_out(tarn_regclass_in('t1'))::TEXT AS \"text\"");
        assert_eq!(rewritten("SELECT x::pg_catalog.int2[]"), "SELECT x::INT2[] AS \"x\"");
    }

    #[test]
    fn array_subqueries_aggregate() {
        assert_eq!(
            rewritten("SELECT ARRAY(SELECT rolname FROM pg_roles WHERE oid = ANY(p.polroles) ORDER BY 1) FROM pg_policy p"),
            "SELECT (SELECT array_agg(rolname ORDER BY rolname) FROM pg_roles WHERE oid = ANY(p.polroles)) FROM pg_policy p"
        );
        assert_eq!(
            rewritten("SELECT ARRAY(SELECT DISTINCT rolname FROM pg_roles)"),
            "SELECT (SELECT array_agg(_elem) FROM (SELECT DISTINCT rolname FROM pg_roles) AS _array (_elem))"
        );
    }

    #[test]
    fn columns_repeated_by_a_wildcard_get_made_up_aliases() {
        assert_eq!(rewritten("SELECT t.oid, t.* FROM pg_type t"), "SELECT t.oid AS \"oid\u{1}0\", t.* FROM pg_type t");
        assert_eq!(rewritten("SELECT t.oid, t.typname FROM pg_type t"), "SELECT t.oid, t.typname FROM pg_type t");
        assert_eq!(rewritten("SELECT a, NULL, NULL"), "SELECT a, NULL, NULL AS \"?column?\u{1}2\"");
    }

    #[test]
    fn correlated_scalar_subqueries_are_aggregated() {
        assert_eq!(
            rewritten("SELECT (SELECT d.adbin FROM pg_attrdef d WHERE d.adrelid = a.attrelid) FROM pg_attribute a"),
            "SELECT (SELECT first_value(d.adbin) FROM pg_attrdef d WHERE d.adrelid = a.attrelid) FROM pg_attribute a"
        );
        assert_eq!(
            rewritten("SELECT (SELECT d.adbin FROM pg_attrdef d WHERE d.adrelid = a.attrelid AND a.atthasdef) FROM pg_attribute a"),
            "SELECT CASE WHEN a.atthasdef THEN (SELECT first_value(d.adbin) FROM pg_attrdef d WHERE d.adrelid = a.attrelid) END FROM pg_attribute a"
        );
        assert_eq!(
            rewritten("SELECT (SELECT c.collname FROM pg_collation c, pg_type t WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) FROM pg_attribute a"),
            "SELECT (SELECT first_value(c.collname) FROM pg_collation c, pg_type t WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND c.oid <> t.typcollation) FROM pg_attribute a"
        );
        // Uncorrelated, or already aggregated: left alone.
        assert_eq!(rewritten("SELECT (SELECT d.adbin FROM pg_attrdef d WHERE d.adnum = 1)"), "SELECT (SELECT d.adbin FROM pg_attrdef d WHERE d.adnum = 1)");
        assert_eq!(
            rewritten("SELECT (SELECT max(d.adnum) FROM pg_attrdef d WHERE d.adrelid = a.attrelid) FROM pg_attribute a"),
            "SELECT (SELECT max(d.adnum) FROM pg_attrdef d WHERE d.adrelid = a.attrelid) FROM pg_attribute a"
        );
    }

    #[test]
    fn casts_in_a_select_list_are_named_as_postgres_names_them() {
        assert_eq!(rewritten("SELECT oid::int4, typname FROM pg_type ORDER BY oid"), "SELECT oid::INT4 AS \"oid\", typname FROM pg_type ORDER BY oid");
    }

    #[test]
    fn asyncpgs_domain_walk_becomes_a_lookup() {
        let sql = "SELECT (WITH RECURSIVE typebases(oid, depth) AS (SELECT t2.typbasetype AS oid, 0 AS depth FROM pg_type t2 WHERE t2.oid = t.oid \
                   UNION ALL SELECT t2.typbasetype AS oid, tb.depth + 1 AS depth FROM pg_type t2, typebases tb WHERE tb.oid = t2.oid AND t2.typbasetype != 0) \
                   SELECT oid FROM typebases ORDER BY depth DESC LIMIT 1) FROM pg_type t";
        assert_eq!(rewritten(sql), "SELECT tarn_domain_base_type(t.oid) FROM pg_type t");
    }

    #[test]
    fn generate_subscripts_becomes_an_unnested_series() {
        assert_eq!(
            rewritten("SELECT unnest(conkey), generate_subscripts(conkey, 1) FROM pg_constraint"),
            "SELECT unnest(conkey), unnest(generate_series(1, array_length(conkey, 1)::BIGINT)) FROM pg_constraint"
        );
    }

    #[test]
    fn field_access_on_records_uses_get_field() {
        assert_eq!(
            rewritten("SELECT (information_schema._pg_expandarray(i.indkey)).n FROM pg_index i"),
            "SELECT get_field(unnest(tarn_expandarray(i.indkey)), 'n') FROM pg_index i"
        );
    }

    #[test]
    fn recursive_cte_column_lists_name_the_anchor() {
        assert_eq!(
            rewritten("WITH RECURSIVE t(n, d) AS (SELECT 1, 0 UNION ALL SELECT n + 1, d FROM t WHERE n < 3) SELECT * FROM t"),
            "WITH RECURSIVE t AS (SELECT 1 AS n, 0 AS d UNION ALL SELECT n + 1, d FROM t WHERE n < 3) SELECT * FROM t"
        );
    }

    #[test]
    fn scalar_function_aliases_name_their_column() {
        assert_eq!(rewritten("SELECT g FROM generate_series(1, 3) g"), "SELECT g FROM generate_series(1, 3) g (g)");
        assert_eq!(rewritten("SELECT n FROM generate_series(1, 3) AS t(n)"), "SELECT n FROM generate_series(1, 3) AS t (n)");
    }
}
