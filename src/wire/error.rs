//! Tarn errors → ErrorResponse fields.

use pgwire::error::{ErrorInfo, PgWireError};

use crate::error::TarnError;

pub fn error_info(e: TarnError) -> ErrorInfo {
    let mut info = ErrorInfo::new("ERROR".to_string(), e.code.to_string(), e.message);
    info.detail = e.detail;
    info.hint = e.hint;
    info.where_context = e.context;
    info
}

pub fn to_pgwire(e: TarnError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

/// PostgreSQL's error for a Bind or Describe naming a prepared statement
/// that does not exist (pgwire's own names no statement the way psql shows).
pub fn statement_not_found(name: &str) -> PgWireError {
    let message = match name {
        "" => "unnamed prepared statement does not exist".to_string(),
        name => format!("prepared statement \"{name}\" does not exist"),
    };
    to_pgwire(TarnError::new(crate::error::sqlstate::INVALID_SQL_STATEMENT_NAME, message))
}

/// PostgreSQL's error for an Execute or Describe naming a portal that does
/// not exist: 34000, where pgwire's own says 26000.
pub fn portal_not_found(name: &str) -> PgWireError {
    to_pgwire(TarnError::new(crate::error::sqlstate::INVALID_CURSOR_NAME, format!("portal \"{name}\" does not exist")))
}

/// PostgreSQL's error for a Bind whose parameter count is not the statement's.
pub fn parameter_count_mismatch(supplied: usize, statement: &str, required: usize) -> TarnError {
    TarnError::new(
        crate::error::sqlstate::PROTOCOL_VIOLATION,
        format!("bind message supplies {supplied} parameters, but prepared statement \"{statement}\" requires {required}"),
    )
}

/// PostgreSQL's error for a Parse declaring a parameter type OID that no
/// type has (its catalog lookup fails: XX000, in its wording).
pub fn unknown_type_oid(oid: u32) -> PgWireError {
    to_pgwire(TarnError::new(crate::error::sqlstate::INTERNAL_ERROR, format!("cache lookup failed for type {oid}")))
}
