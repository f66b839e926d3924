//! SQL: parse once with sqlparser's PostgreSQL dialect and classify each
//! statement by who executes it. Statements are handed on as ASTs, never
//! re-serialised and re-parsed.

pub mod alter;
pub mod copy;
pub mod ddl;
pub mod naming;
pub mod rewrite;

use datafusion::sql::sqlparser::ast::{ObjectName, ObjectType, SchemaName, Statement, TransactionIsolationLevel, TransactionMode};

use crate::storage::txn::Isolation;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Result, TarnError};

/// What a statement is, and so who runs it.
#[derive(Debug, Clone)]
pub enum Command {
    /// A query or DML planned and run by DataFusion (SELECT, VALUES,
    /// INSERT, EXPLAIN).
    Plan(Box<Statement>),
    CreateTable(Box<ddl::CreateTable>),
    CreateTableAs(Box<ddl::CreateTableAs>),
    CreateSchema { name: String, if_not_exists: bool },
    /// `RESET name` / `RESET ALL` (None).
    Reset { name: Option<String> },
    DropSchema { names: Vec<String>, if_exists: bool, cascade: bool },
    DropTable { names: Vec<(String, String)>, if_exists: bool },
    CreateView(Box<ddl::CreateView>),
    CreateIndex(Box<ddl::CreateIndex>),
    DropIndex { names: Vec<(String, String)>, if_exists: bool },
    DropView { names: Vec<(String, String)>, if_exists: bool },
    /// `ALTER TABLE|VIEW name RENAME TO to`.
    Rename { schema: String, name: String, to: String, if_exists: bool },
    /// `ALTER TABLE name` column changes, applied together.
    AlterTable { schema: String, name: String, if_exists: bool, actions: Vec<alter::AlterAction> },
    /// `SET name = value` / `SET TIME ZONE …` / `RESET name`.
    Set { name: String, value: Option<String> },
    Show { name: String },
    /// `COPY … FROM STDIN` / `COPY … TO STDOUT`.
    Copy(Box<copy::Copy>),
    /// UPDATE / DELETE: run by `engine::dml` as a row selection over the
    /// target table.
    Update(Box<Statement>),
    Delete(Box<Statement>),
    Truncate { names: Vec<(String, String)> },
    /// `VACUUM [FULL] [table]`: flush, compact and clean up now.
    Vacuum { table: Option<(String, String)> },
    Transaction(TxnCommand),
    /// `DECLARE name [BINARY] [NO SCROLL] CURSOR [WITH[OUT] HOLD] FOR query`.
    DeclareCursor { name: String, hold: bool, query: Box<Statement> },
    /// `FETCH [FORWARD] [n | ALL | NEXT] FROM name`.
    Fetch { name: String, count: crate::session::cursor::FetchCount },
    /// `CLOSE name` / `CLOSE ALL` (None).
    CloseCursor(Option<String>),
    /// `PREPARE name [(types)] AS statement`.
    Prepare { name: String, types: Vec<datafusion::sql::sqlparser::ast::DataType>, stmt: Box<Statement> },
    /// `EXECUTE name [(args)]`.
    Execute { name: String, args: Vec<datafusion::sql::sqlparser::ast::Expr> },
    /// `DEALLOCATE [PREPARE] name | ALL` (None).
    Deallocate(Option<String>),
    /// `DISCARD ALL`: the session as if newly connected.
    DiscardAll,
}

/// Transaction control statements.
#[derive(Debug, Clone, PartialEq)]
pub enum TxnCommand {
    /// `BEGIN` / `START TRANSACTION` (with `ISOLATION LEVEL …`).
    Begin { isolation: Option<Isolation> },
    Commit,
    Rollback,
    Savepoint(String),
    RollbackTo(String),
    Release(String),
    /// `SET TRANSACTION ISOLATION LEVEL …` (before the block's first query).
    SetIsolation(Isolation),
}

impl TxnCommand {
    /// Whether it ends the block, and so may run in a failed one
    /// (PostgreSQL's `IsTransactionExitStmt`).
    pub fn ends_block(&self) -> bool {
        matches!(self, TxnCommand::Commit | TxnCommand::Rollback | TxnCommand::RollbackTo(_))
    }
}

/// [`TxnCommand::ends_block`] for a statement not yet classified: COMMIT
/// (END), ROLLBACK (ABORT) and ROLLBACK TO SAVEPOINT.
pub fn ends_block(stmt: &Statement) -> bool {
    matches!(stmt, Statement::Commit { .. } | Statement::Rollback { .. })
}

fn isolation_of(modes: &[TransactionMode]) -> Option<Isolation> {
    modes.iter().find_map(|m| match m {
        // PostgreSQL runs READ UNCOMMITTED as READ COMMITTED; Tarn runs
        // SERIALIZABLE as REPEATABLE READ (snapshot isolation), and says so
        // in docs/transactions.md.
        TransactionMode::IsolationLevel(l) => Some(match l {
            TransactionIsolationLevel::ReadUncommitted | TransactionIsolationLevel::ReadCommitted => Isolation::ReadCommitted,
            _ => Isolation::RepeatableRead,
        }),
        _ => None,
    })
}

/// Parse a query string into statements.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    let mut stmts = parse_plain(sql)?;
    stmts.iter_mut().for_each(rewrite::apply);
    Ok(stmts)
}

/// Parse without Tarn's rewrites (see `rewrite`).
fn parse_plain(sql: &str) -> Result<Vec<Statement>> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| TarnError::syntax(e.to_string()))?;
    let tokens = table_access_method_as_option(tokens);
    Ok(Parser::new(&dialect).with_tokens_with_locations(tokens).parse_statements()?)
}

/// PostgreSQL's `CREATE TABLE … (…) USING method` is not in sqlparser's
/// grammar; it is the same as Tarn's `WITH (access_method = method)`, which
/// is, so the two tokens are swapped for those before parsing (the AST then
/// carries the method; the text is never rewritten).
fn table_access_method_as_option(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let (mut in_create, mut saw_table, mut depth) = (false, false, 0i32);
    let mut last_significant: Option<Token> = None;
    let mut iter = tokens.into_iter().peekable();
    while let Some(t) = iter.next() {
        let keyword = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k);
        match &t.token {
            Token::Whitespace(_) => {
                out.push(t);
                continue;
            }
            Token::SemiColon => (in_create, saw_table, depth) = (false, false, 0),
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            tok if keyword(tok, Keyword::CREATE) && last_significant.is_none() => in_create = true,
            tok if keyword(tok, Keyword::TABLE) && in_create => saw_table = true,
            tok if keyword(tok, Keyword::USING) && saw_table && depth == 0 && last_significant == Some(Token::RParen) => {
                // Skip whitespace to the method name.
                let mut gap = vec![];
                while iter.peek().is_some_and(|n| matches!(n.token, Token::Whitespace(_))) {
                    gap.push(iter.next().expect("peeked"));
                }
                if let Some(method) = iter.next_if(|n| matches!(n.token, Token::Word(_))) {
                    let at = |token: Token| TokenWithSpan { token, span: t.span };
                    out.push(at(Token::make_keyword("WITH")));
                    out.push(at(Token::LParen));
                    out.push(at(Token::make_word("access_method", None)));
                    out.push(at(Token::Eq));
                    out.push(TokenWithSpan { token: method.token, span: method.span });
                    out.push(at(Token::RParen));
                    last_significant = Some(Token::RParen);
                    continue;
                }
                out.push(t);
                out.extend(gap);
                continue;
            }
            _ => {}
        }
        if matches!(t.token, Token::SemiColon) {
            last_significant = None;
        } else {
            last_significant = Some(t.token.clone());
        }
        out.push(t);
    }
    out
}

thread_local! {
    /// Where unqualified names of tables to create, drop or alter resolve:
    /// the session's first existing `search_path` schema, set by
    /// [`classify_in`] around one (synchronous) classification.
    static DEFAULT_SCHEMA: std::cell::RefCell<String> = std::cell::RefCell::new(crate::engine::PUBLIC.to_string());
}

/// [`classify`] with unqualified names resolving in `schema`.
pub fn classify_in(stmt: Statement, schema: &str) -> Result<Command> {
    DEFAULT_SCHEMA.with(|d| *d.borrow_mut() = schema.to_string());
    let cmd = classify(stmt);
    DEFAULT_SCHEMA.with(|d| *d.borrow_mut() = crate::engine::PUBLIC.to_string());
    cmd
}

/// Decide who runs a statement.
pub fn classify(stmt: Statement) -> Result<Command> {
    Ok(match stmt {
        Statement::CreateSchema { schema_name, if_not_exists, .. } => {
            let name = match &schema_name {
                SchemaName::Simple(n) | SchemaName::NamedAuthorization(n, _) => n,
                SchemaName::UnnamedAuthorization(_) => return Err(TarnError::not_supported("CREATE SCHEMA AUTHORIZATION without a name: Tarn has one role")),
            };
            let [part] = name.0.as_slice() else { return Err(TarnError::syntax(format!("invalid schema name {name}"))) };
            let ident = part.as_ident().ok_or_else(|| TarnError::syntax(format!("invalid schema name {name}")))?;
            Command::CreateSchema { name: normalize_ident(ident), if_not_exists }
        }
        Statement::Drop { object_type: ObjectType::Schema, names, if_exists, cascade, .. } => {
            let names = names
                .iter()
                .map(|n| match n.0.as_slice() {
                    [p] => p.as_ident().map(normalize_ident).ok_or_else(|| TarnError::syntax(format!("invalid schema name {n}"))),
                    _ => Err(TarnError::syntax(format!("invalid schema name {n}"))),
                })
                .collect::<Result<Vec<_>>>()?;
            Command::DropSchema { names, if_exists, cascade }
        }
        Statement::CreateDatabase { db_name, .. } => {
            return Err(TarnError::not_supported(format!("CREATE DATABASE {db_name}: a Tarn server holds one database"))
                .with_hint("Connect with any database name to use it, or run another Tarn server with its own --data-dir."));
        }
        Statement::Query(_) | Statement::Insert(_) | Statement::Explain { .. } => Command::Plan(Box::new(stmt)),
        Statement::CreateTable(ct) if ct.query.is_some() => Command::CreateTableAs(Box::new(ddl::create_table_as(&ct)?)),
        Statement::CreateTable(ct) => Command::CreateTable(Box::new(ddl::create_table(&ct)?)),
        Statement::CreateView(cv) => Command::CreateView(Box::new(ddl::create_view(&cv)?)),
        Statement::CreateIndex(ci) => Command::CreateIndex(Box::new(ddl::create_index(&ci)?)),
        Statement::Drop { object_type: object_type @ (ObjectType::Table | ObjectType::View | ObjectType::Index), names, if_exists, cascade, .. } => {
            if cascade {
                return Err(TarnError::not_supported(format!("DROP {object_type} … CASCADE is not supported yet")));
            }
            let names = names.iter().map(qualified_name).collect::<Result<Vec<_>>>()?;
            match object_type {
                ObjectType::View => Command::DropView { names, if_exists },
                ObjectType::Index => Command::DropIndex { names, if_exists },
                _ => Command::DropTable { names, if_exists },
            }
        }
        Statement::AlterTable(at) => alter::alter_table(at)?,
        Statement::Set(set) => set_command(set)?,
        Statement::Reset(r) => Command::Reset {
            name: match r.reset {
                datafusion::sql::sqlparser::ast::Reset::ALL => None,
                datafusion::sql::sqlparser::ast::Reset::ConfigurationParameter(n) => Some(n.to_string().to_lowercase()),
            },
        },
        Statement::ShowVariable { variable } => {
            Command::Show { name: variable.iter().map(|i| i.value.to_lowercase()).collect::<Vec<_>>().join(" ") }
        }
        Statement::StartTransaction { modes, statements, .. } if statements.is_empty() => {
            Command::Transaction(TxnCommand::Begin { isolation: isolation_of(&modes) })
        }
        Statement::Commit { .. } => Command::Transaction(TxnCommand::Commit),
        Statement::Rollback { savepoint: None, .. } => Command::Transaction(TxnCommand::Rollback),
        Statement::Rollback { savepoint: Some(name), .. } => Command::Transaction(TxnCommand::RollbackTo(normalize_ident(&name))),
        Statement::Savepoint { name } => Command::Transaction(TxnCommand::Savepoint(normalize_ident(&name))),
        Statement::ReleaseSavepoint { name } => Command::Transaction(TxnCommand::Release(normalize_ident(&name))),
        Statement::Update(_) => Command::Update(Box::new(stmt)),
        Statement::Delete(_) => Command::Delete(Box::new(stmt)),
        Statement::Truncate(t) => {
            let names = t.table_names.iter().map(|t| qualified_name(&t.name)).collect::<Result<Vec<_>>>()?;
            Command::Truncate { names }
        }
        Statement::Copy { source, to, target, options, legacy_options, values } => {
            if !values.is_empty() {
                return Err(TarnError::syntax("COPY data must follow as CopyData messages, not inline in the query"));
            }
            Command::Copy(Box::new(copy::copy(source, to, target, &options, &legacy_options)?))
        }
        Statement::Vacuum(v) => Command::Vacuum { table: v.table_name.as_ref().map(qualified_name).transpose()? },
        Statement::Declare { mut stmts } if stmts.len() == 1 && stmts[0].for_query.is_some() => {
            let mut d = stmts.remove(0);
            if d.scroll == Some(true) {
                return Err(TarnError::not_supported("SCROLL cursors are not supported yet; cursors move forward only"));
            }
            let Some(query) = d.for_query.take() else { return Err(TarnError::syntax("DECLARE … CURSOR needs FOR query")) };
            let [name] = <[_; 1]>::try_from(d.names).map_err(|_| TarnError::syntax("DECLARE names one cursor"))?;
            Command::DeclareCursor { name: normalize_ident(&name), hold: d.hold == Some(true), query: Box::new(Statement::Query(query)) }
        }
        Statement::Fetch { name, direction, into: None, .. } => fetch_command(normalize_ident(&name), direction)?,
        Statement::Close { cursor } => Command::CloseCursor(match cursor {
            datafusion::sql::sqlparser::ast::CloseCursor::All => None,
            datafusion::sql::sqlparser::ast::CloseCursor::Specific { name } => Some(normalize_ident(&name)),
        }),
        Statement::Prepare { name, data_types, statement } => Command::Prepare { name: normalize_ident(&name), types: data_types, stmt: statement },
        Statement::Execute { name: Some(name), parameters, immediate: false, into, using, .. } if into.is_empty() && using.is_empty() => {
            let name = match name.0.as_slice() {
                [part] => part.as_ident().map(normalize_ident).ok_or_else(|| TarnError::syntax(format!("invalid name {name}")))?,
                _ => return Err(TarnError::syntax(format!("invalid prepared statement name {name}"))),
            };
            Command::Execute { name, args: parameters }
        }
        Statement::Deallocate { name, .. } => {
            Command::Deallocate(if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") { None } else { Some(normalize_ident(&name)) })
        }
        Statement::Discard { object_type: datafusion::sql::sqlparser::ast::DiscardObject::ALL } => Command::DiscardAll,
        other => {
            return Err(TarnError::not_supported(format!("statement not supported yet: {}", statement_kind(&other))));
        }
    })
}

fn fetch_command(name: String, direction: datafusion::sql::sqlparser::ast::FetchDirection) -> Result<Command> {
    use crate::session::cursor::FetchCount;
    use datafusion::sql::sqlparser::ast::{FetchDirection as D, Value};
    let count = |v: &datafusion::sql::sqlparser::ast::ValueWithSpan| match &v.value {
        Value::Number(n, _) => n.parse::<u64>().map(FetchCount::Rows).map_err(|_| TarnError::syntax(format!("invalid FETCH count {n}"))),
        other => Err(TarnError::syntax(format!("invalid FETCH count {other}"))),
    };
    let count = match direction {
        D::Next | D::Forward { limit: None } => FetchCount::Rows(1),
        D::Count { limit } | D::Forward { limit: Some(limit) } => count(&limit)?,
        D::All | D::ForwardAll => FetchCount::All,
        other => return Err(TarnError::not_supported(format!("FETCH {other} is not supported: cursors move forward only"))),
    };
    Ok(Command::Fetch { name, count })
}

fn set_command(set: datafusion::sql::sqlparser::ast::Set) -> Result<Command> {
    use datafusion::sql::sqlparser::ast::Set as S;
    let value_text = |e: &datafusion::sql::sqlparser::ast::Expr| -> String {
        use datafusion::sql::sqlparser::ast::{Expr, Value};
        match e {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                other => other.to_string(),
            },
            Expr::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        }
    };
    Ok(match set {
        S::SingleAssignment { variable, values, .. } => {
            let name = variable.to_string().to_lowercase();
            let value = values.iter().map(value_text).collect::<Vec<_>>().join(", ");
            if value.eq_ignore_ascii_case("default") {
                Command::Set { name, value: None }
            } else {
                Command::Set { name, value: Some(value) }
            }
        }
        S::SetTimeZone { value, .. } => Command::Set { name: "timezone".into(), value: Some(value_text(&value)) },
        S::SetTransaction { modes, session: false, .. } => match isolation_of(&modes) {
            Some(i) => Command::Transaction(TxnCommand::SetIsolation(i)),
            None => return Err(TarnError::not_supported("SET TRANSACTION supports only ISOLATION LEVEL")),
        },
        S::SetNames { charset_name, .. } => Command::Set { name: "client_encoding".into(), value: Some(charset_name.to_string()) },
        other => return Err(TarnError::not_supported(format!("{other} is not supported yet"))),
    })
}

/// (schema, table) of a possibly qualified name; unqualified means the
/// session's current schema (see [`classify_in`]; only while classifying —
/// at execution, use [`qualified_name_in`] with the session's schema).
pub fn qualified_name(name: &ObjectName) -> Result<(String, String)> {
    qualified_name_in(name, &DEFAULT_SCHEMA.with(|d| d.borrow().clone()))
}

/// (schema, table) of a possibly qualified name; unqualified means `schema`.
pub fn qualified_name_in(name: &ObjectName, schema: &str) -> Result<(String, String)> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(|i| normalize_ident(i)).ok_or_else(|| TarnError::syntax(format!("invalid name {name}"))))
        .collect::<Result<_>>()?;
    match parts.as_slice() {
        [t] => Ok((schema.to_string(), t.clone())),
        [s, t] => Ok((s.clone(), t.clone())),
        [_db, s, t] => Ok((s.clone(), t.clone())),
        _ => Err(TarnError::syntax(format!("improper qualified name (too many dotted names): {name}"))),
    }
}

/// PostgreSQL folds unquoted identifiers to lower case.
pub fn normalize_ident(ident: &datafusion::sql::sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() { ident.value.clone() } else { ident.value.to_lowercase() }
}

/// The statement's leading keywords, for messages.
fn statement_kind(stmt: &Statement) -> String {
    let text = stmt.to_string();
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ").to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Result<Command> {
        classify(parse(sql)?.remove(0))
    }

    #[test]
    fn classifies_the_statement_kinds() {
        assert!(matches!(one("SELECT 1").unwrap(), Command::Plan(_)));
        assert!(matches!(one("INSERT INTO t VALUES (1)").unwrap(), Command::Plan(_)));
        assert!(matches!(one("CREATE TABLE t (id int)").unwrap(), Command::CreateTable(_)));
        match one("DROP TABLE IF EXISTS a, S.\"B\"").unwrap() {
            Command::DropTable { names, if_exists } => {
                assert!(if_exists);
                assert_eq!(names, vec![("public".into(), "a".into()), ("s".into(), "B".into())]);
            }
            other => panic!("{other:?}"),
        }
        match one("SET TIME ZONE 'UTC'").unwrap() {
            Command::Set { name, value } => assert_eq!((name.as_str(), value.as_deref()), ("timezone", Some("UTC"))),
            other => panic!("{other:?}"),
        }
        assert!(matches!(one("SHOW server_version").unwrap(), Command::Show { .. }));
    }

    #[test]
    fn unsupported_statements_are_0a000_not_panics() {
        let e = one("CREATE MATERIALIZED VIEW v AS SELECT 1").unwrap_err();
        assert_eq!(e.code, crate::error::sqlstate::FEATURE_NOT_SUPPORTED);
    }

    #[test]
    fn create_table_using_method_becomes_an_option() {
        for sql in ["CREATE TABLE t (a int) USING heap", "create table t (a int) using HEAP;", "CREATE TABLE t (a int) WITH (access_method = heap)"] {
            match parse(sql).unwrap().remove(0) {
                Statement::CreateTable(ct) => assert!(ct.table_options.to_string().to_lowercase().contains("access_method = heap"), "{sql}: {}", ct.table_options),
                other => panic!("{other}"),
            }
        }
        // USING elsewhere is untouched.
        assert_eq!(parse("SELECT * FROM a JOIN b USING (id); DELETE FROM a USING b WHERE a.id = b.id").unwrap().len(), 2);
        assert!(parse("SELECT 1; CREATE TABLE t (a int) USING lance").is_ok());
    }

    #[test]
    fn syntax_errors_are_42601() {
        assert_eq!(parse("SELEC 1").unwrap_err().code, crate::error::sqlstate::SYNTAX_ERROR);
    }
}
