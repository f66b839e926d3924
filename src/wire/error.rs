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
