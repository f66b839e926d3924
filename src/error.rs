//! Tarn's error type: every error that can reach a client carries a PostgreSQL
//! SQLSTATE code and a message worded the way PostgreSQL words it.
//!
//! Errors from DataFusion, Arrow and Lance are classified here, in one place,
//! so the wire layer never has to guess a code.

use std::fmt;

use datafusion::error::DataFusionError;

/// SQLSTATE codes Tarn emits (PostgreSQL appendix A).
pub mod sqlstate {
    pub const SUCCESSFUL_COMPLETION: &str = "00000";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const INVALID_BINARY_REPRESENTATION: &str = "22P03";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const STRING_DATA_RIGHT_TRUNCATION: &str = "22001";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const DATA_EXCEPTION: &str = "22000";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
    pub const NO_ACTIVE_SQL_TRANSACTION: &str = "25P01";
    pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
    pub const INVALID_SAVEPOINT_SPECIFICATION: &str = "3B001";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const SYNTAX_ERROR: &str = "42601";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
    pub const DUPLICATE_COLUMN: &str = "42701";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const INVALID_TABLE_DEFINITION: &str = "42P16";
    pub const INVALID_SCHEMA_NAME: &str = "3F000";
    pub const DUPLICATE_SCHEMA: &str = "42P06";
    pub const NULL_VALUE_NOT_ALLOWED: &str = "22004";
    pub const RESERVED_NAME: &str = "42939";
    pub const GROUPING_ERROR: &str = "42803";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const QUERY_CANCELED: &str = "57014";
    pub const INVALID_CURSOR_NAME: &str = "34000";
    pub const DUPLICATE_CURSOR: &str = "42P03";
    pub const INVALID_CURSOR_DEFINITION: &str = "42P11";
    pub const OBJECT_IN_USE: &str = "55006";
    pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";
    pub const DUPLICATE_PREPARED_STATEMENT: &str = "42P05";
    pub const IO_ERROR: &str = "58030";
    pub const DISK_FULL: &str = "53100";
    pub const BAD_COPY_FILE_FORMAT: &str = "22P04";
    pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
    pub const INTERNAL_ERROR: &str = "XX000";
}

/// An error with a SQLSTATE, ready to be sent to a client as ErrorResponse.
#[derive(Debug, Clone)]
pub struct TarnError {
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// Where it happened (ErrorResponse's CONTEXT), e.g. `COPY t, line 3`.
    pub context: Option<String>,
}

pub type Result<T, E = TarnError> = std::result::Result<T, E>;

impl TarnError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), detail: None, hint: None, context: None }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(sqlstate::INTERNAL_ERROR, message)
    }

    pub fn not_supported(message: impl Into<String>) -> Self {
        Self::new(sqlstate::FEATURE_NOT_SUPPORTED, message)
    }

    pub fn syntax(message: impl Into<String>) -> Self {
        Self::new(sqlstate::SYNTAX_ERROR, message)
    }

    pub fn undefined_table(name: &str) -> Self {
        Self::new(sqlstate::UNDEFINED_TABLE, format!("relation \"{name}\" does not exist"))
    }

    pub fn io(context: &str, err: std::io::Error) -> Self {
        // ENOSPC gets its own class so a client can tell "disk full" from a bug.
        let code = if err.raw_os_error() == Some(28) { sqlstate::DISK_FULL } else { sqlstate::IO_ERROR };
        Self::new(code, format!("{context}: {err}"))
    }
}

impl fmt::Display for TarnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for TarnError {}

impl From<lance::Error> for TarnError {
    fn from(err: lance::Error) -> Self {
        // Lance wraps I/O errors in its own (object_store's) types; a full
        // disk still reads as ENOSPC's text.
        let message = format!("storage error: {err}");
        let code = if message.contains("No space left on device") { sqlstate::DISK_FULL } else { sqlstate::IO_ERROR };
        TarnError::new(code, message)
    }
}

impl From<arrow::error::ArrowError> for TarnError {
    fn from(err: arrow::error::ArrowError) -> Self {
        classify_arrow(&err)
    }
}

impl From<DataFusionError> for TarnError {
    fn from(err: DataFusionError) -> Self {
        classify_datafusion(err)
    }
}

impl From<datafusion::sql::sqlparser::parser::ParserError> for TarnError {
    fn from(err: datafusion::sql::sqlparser::parser::ParserError) -> Self {
        let msg = match err {
            datafusion::sql::sqlparser::parser::ParserError::ParserError(m)
            | datafusion::sql::sqlparser::parser::ParserError::TokenizerError(m) => m,
            datafusion::sql::sqlparser::parser::ParserError::RecursionLimitExceeded => {
                "statement is too deeply nested".to_string()
            }
        };
        TarnError::syntax(format!("syntax error: {msg}"))
    }
}

/// Turn a DataFusion error into the SQLSTATE PostgreSQL would have used.
///
/// DataFusion does not carry error codes, so this matches on its error kinds
/// first and on message shapes second. Each shape is covered by a test.
pub fn classify_datafusion(err: DataFusionError) -> TarnError {
    match err {
        // Our own errors travel through DataFusion (from table providers and
        // sinks) wrapped as External; unwrap them unchanged.
        DataFusionError::External(e) => match e.downcast::<TarnError>() {
            Ok(t) => *t,
            Err(e) => match e.downcast::<lance::Error>() {
                Ok(l) => TarnError::from(*l),
                Err(e) => TarnError::internal(e.to_string()),
            },
        },
        DataFusionError::Context(_, inner) => classify_datafusion(*inner),
        DataFusionError::Diagnostic(_, inner) => classify_datafusion(*inner),
        // A shared error (a recursive query's, a scalar subquery's) cannot be
        // taken apart: find a Tarn error inside it by reference.
        DataFusionError::Shared(inner) => tarn_error_in(&inner).unwrap_or_else(|| classify_datafusion(clone_df_error(&inner))),
        DataFusionError::ArrowError(e, _) => classify_arrow(&e),
        DataFusionError::SQL(e, _) => TarnError::from(*e),
        DataFusionError::NotImplemented(m) => TarnError::not_supported(m),
        DataFusionError::SchemaError(e, _) => classify_schema_error(&e.to_string()),
        DataFusionError::Plan(m) => classify_plan_message(m),
        DataFusionError::Execution(m) => classify_execution_message(m),
        DataFusionError::ResourcesExhausted(m) => {
            TarnError::new("53200", format!("out of memory: {m}"))
        }
        DataFusionError::IoError(e) => TarnError::io("I/O error", e),
        other => TarnError::internal(other.strip_backtrace()),
    }
}

/// The Tarn error `err` carries, however deeply wrapped.
fn tarn_error_in(err: &DataFusionError) -> Option<TarnError> {
    match err {
        DataFusionError::External(e) => tarn_error_in_dyn(e.as_ref()),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => tarn_error_in(inner),
        DataFusionError::Shared(inner) => tarn_error_in(inner),
        DataFusionError::ArrowError(e, _) => match e.as_ref() {
            arrow::error::ArrowError::ExternalError(inner) => tarn_error_in_dyn(inner.as_ref()),
            _ => None,
        },
        _ => None,
    }
}

fn tarn_error_in_dyn(e: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<TarnError> {
    if let Some(t) = e.downcast_ref::<TarnError>() {
        return Some(t.clone());
    }
    e.downcast_ref::<DataFusionError>().and_then(tarn_error_in)
}

fn clone_df_error(err: &DataFusionError) -> DataFusionError {
    DataFusionError::Execution(err.to_string())
}

fn classify_schema_error(m: &str) -> TarnError {
    if m.contains("No field named") {
        // "Schema error: No field named nope. Valid fields are ..."
        let name = m
            .split("No field named ")
            .nth(1)
            .map(|rest| rest.split(['.', ' ']).next().unwrap_or(rest))
            .unwrap_or("?")
            .trim_matches('"');
        return TarnError::new(sqlstate::UNDEFINED_COLUMN, format!("column \"{name}\" does not exist"));
    }
    if m.contains("Ambiguous reference") {
        return TarnError::new(sqlstate::AMBIGUOUS_COLUMN, m.to_string());
    }
    if m.contains("project duplicate") || m.contains("Duplicate qualified field") || m.contains("Duplicate unqualified field") {
        return TarnError::new(sqlstate::DUPLICATE_COLUMN, m.to_string());
    }
    TarnError::new(sqlstate::UNDEFINED_COLUMN, m.to_string())
}

fn classify_plan_message(m: String) -> TarnError {
    if m.contains("table '") && m.contains("not found") || m.starts_with("table ") && m.ends_with("not found") {
        // "table 'tarn.public.nope' not found"
        let name = m.split('\'').nth(1).unwrap_or("?");
        let short = name.rsplit('.').next().unwrap_or(name);
        return TarnError::undefined_table(short);
    }
    if m.contains("Invalid function") || m.contains("Unknown function") {
        return TarnError::new(sqlstate::UNDEFINED_FUNCTION, m);
    }
    if m.contains("No function matches") || m.contains("does not support") && m.contains("type") {
        return TarnError::new(sqlstate::UNDEFINED_FUNCTION, m);
    }
    if m.contains("must appear in the GROUP BY clause") || m.contains("GROUP BY") {
        return TarnError::new(sqlstate::GROUPING_ERROR, m);
    }
    if m.contains("Cannot infer common") || m.contains("Cannot coerce") || m.contains("cannot be cast") {
        return TarnError::new(sqlstate::DATATYPE_MISMATCH, m);
    }
    if m.contains("Inserting query must have the same schema")
        || m.contains("Column count doesn't match")
        || m.contains("Inserting query schema")
    {
        return TarnError::syntax("INSERT has more expressions than target columns").with_detail(m);
    }
    TarnError::new(sqlstate::SYNTAX_ERROR, m)
}

fn classify_execution_message(m: String) -> TarnError {
    if m.contains("Divide by zero") || m.contains("division by zero") {
        return TarnError::new(sqlstate::DIVISION_BY_ZERO, "division by zero");
    }
    if m.contains("Overflow") || m.contains("overflow") {
        return overflow(&m);
    }
    TarnError::internal(m)
}

/// An arithmetic overflow; numeric NaN (`i256::MAX` in storage) overflows
/// every decimal kernel, and its 77 digits would mean nothing to a user.
fn overflow(m: &str) -> TarnError {
    if m.contains(&crate::types::numeric::NAN.to_string()) {
        return TarnError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "arithmetic on numeric NaN is not supported in Tarn")
            .with_detail(m.to_string());
    }
    TarnError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, m.to_string())
}

fn classify_arrow(err: &arrow::error::ArrowError) -> TarnError {
    use arrow::error::ArrowError as A;
    match err {
        A::CastError(m) | A::ParseError(m) if m.starts_with("Can't cast value") => {
            // "Can't cast value 40000 to type Int16": a number that does not fit.
            let pg = match pg_type_name(m.rsplit(' ').next().unwrap_or("")) {
                t @ ("smallint" | "integer" | "bigint") => t,
                _ => "value",
            };
            TarnError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, format!("{pg} out of range"))
        }
        A::CastError(m) | A::ParseError(m) if m.starts_with("Cannot cast string '") => {
            // "Cannot cast string 'x' to value of Int64 type"
            let rest = &m["Cannot cast string '".len()..];
            match rest.rsplit_once("' to value of ") {
                Some((value, ty)) => TarnError::new(
                    sqlstate::INVALID_TEXT_REPRESENTATION,
                    format!("invalid input syntax for type {}: \"{value}\"", pg_type_name(ty.trim_end_matches(" type"))),
                ),
                None => TarnError::new(sqlstate::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax: {m}")),
            }
        }
        A::CastError(m) | A::ParseError(m) => {
            if m.contains("Overflow") || m.contains("overflow") || m.contains("too large") || m.contains("out of range") {
                TarnError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, m.clone())
            } else {
                TarnError::new(sqlstate::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax: {m}"))
            }
        }
        A::DivideByZero => TarnError::new(sqlstate::DIVISION_BY_ZERO, "division by zero"),
        A::ArithmeticOverflow(m) => overflow(m),
        A::InvalidArgumentError(m) if m.contains("too large to store in a Decimal") => {
            // "99999999999.00 is too large to store in a Decimal128 of precision 10. Max is 99999999.99"
            TarnError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "numeric field overflow").with_detail(m.clone())
        }
        A::InvalidArgumentError(m) if m.contains("overflow") || m.contains("Overflow") => {
            TarnError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, m.clone())
        }
        A::ExternalError(e) => tarn_error_in_dyn(e.as_ref()).unwrap_or_else(|| TarnError::internal(err.to_string())),
        other => TarnError::internal(other.to_string()),
    }
}

/// PostgreSQL's name for an Arrow type named in an Arrow error message.
fn pg_type_name(arrow: &str) -> &str {
    match arrow {
        "Int16" => "smallint",
        "Int32" => "integer",
        "Int64" => "bigint",
        "Float32" => "real",
        "Float64" => "double precision",
        "Boolean" => "boolean",
        "Date32" => "date",
        a if a.starts_with("Decimal") => "numeric",
        a if a.starts_with("Timestamp") && a.contains("Some") => "timestamp with time zone",
        a if a.starts_with("Timestamp") => "timestamp without time zone",
        other => other,
    }
}

/// Wrap a Tarn error so it can travel through DataFusion unchanged.
pub fn to_df(err: TarnError) -> DataFusionError {
    DataFusionError::External(Box::new(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_not_found_is_42p01() {
        let e = classify_datafusion(DataFusionError::Plan("table 'tarn.public.nope' not found".into()));
        assert_eq!(e.code, sqlstate::UNDEFINED_TABLE);
        assert_eq!(e.message, "relation \"nope\" does not exist");
    }

    #[test]
    fn tarn_errors_pass_through_datafusion_unchanged() {
        let inner = TarnError::new(sqlstate::UNIQUE_VIOLATION, "dup");
        let e = classify_datafusion(to_df(inner));
        assert_eq!(e.code, sqlstate::UNIQUE_VIOLATION);
        assert_eq!(e.message, "dup");
        let nested = DataFusionError::Context("ctx".into(), Box::new(to_df(TarnError::new(sqlstate::NOT_NULL_VIOLATION, "n"))));
        assert_eq!(classify_datafusion(nested).code, sqlstate::NOT_NULL_VIOLATION);
    }

    /// A recursive query or a scalar subquery hands its error on shared, or
    /// inside an arrow error: the Tarn error in it still comes out whole.
    #[test]
    fn tarn_errors_pass_through_shared_and_arrow_wrappers() {
        let inner = || TarnError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "integer out of range");
        let shared = DataFusionError::Shared(std::sync::Arc::new(DataFusionError::Context("recursion".into(), Box::new(to_df(inner())))));
        let in_arrow = DataFusionError::ArrowError(
            Box::new(arrow::error::ArrowError::ExternalError(Box::new(to_df(inner())))),
            None,
        );
        for e in [shared, in_arrow] {
            let e = classify_datafusion(e);
            assert_eq!((e.code, e.message.as_str()), (sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "integer out of range"));
        }
    }

    #[test]
    fn cast_errors_are_invalid_text_representation() {
        let e = classify_arrow(&arrow::error::ArrowError::CastError("Cannot cast string 'abc' to value of Int64 type".into()));
        assert_eq!(e.code, sqlstate::INVALID_TEXT_REPRESENTATION);
    }

    #[test]
    fn integer_overflow_on_cast_is_out_of_range() {
        let e = classify_arrow(&arrow::error::ArrowError::CastError("Can't cast value 40000 to type Int16".into()));
        assert_eq!((e.code, e.message.as_str()), (sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "smallint out of range"));
    }

    #[test]
    fn bad_text_input_names_the_postgres_type_and_value() {
        let e = classify_arrow(&arrow::error::ArrowError::CastError("Cannot cast string 'x' to value of Int64 type".into()));
        assert_eq!((e.code, e.message.as_str()), (sqlstate::INVALID_TEXT_REPRESENTATION, "invalid input syntax for type bigint: \"x\""));
    }

    #[test]
    fn decimal_overflow_is_numeric_field_overflow() {
        let e = classify_arrow(&arrow::error::ArrowError::InvalidArgumentError(
            "99999999999.00 is too large to store in a Decimal128 of precision 10. Max is 99999999.99".into(),
        ));
        assert_eq!((e.code, e.message.as_str()), (sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "numeric field overflow"));
    }

    #[test]
    fn divide_by_zero() {
        assert_eq!(classify_arrow(&arrow::error::ArrowError::DivideByZero).code, sqlstate::DIVISION_BY_ZERO);
    }

    #[test]
    fn disk_full_has_its_own_code() {
        let e = TarnError::io("writing WAL", std::io::Error::from_raw_os_error(28));
        assert_eq!(e.code, sqlstate::DISK_FULL);
    }
}
