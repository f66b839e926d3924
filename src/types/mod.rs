//! The PostgreSQL type system as Tarn supports it, and its one-to-one mapping
//! onto Arrow types (see `docs/types.md`).
//!
//! A column's Postgres type is remembered in Arrow field metadata
//! (`tarn.pg_type`), so a value that passes through a query unchanged keeps its
//! exact Postgres type (for example `varchar(20)` or `numeric(10,2)`) in
//! RowDescription. Computed values are typed from their Arrow type.
//!
//! Submodules are pure codecs over bytes: `encode` turns Arrow columns into
//! wire cells, `decode` turns wire parameters into DataFusion scalars.

pub mod array;
pub mod copy;
pub mod copy_binary;
pub mod decimal_text;
pub mod decode;
pub mod encode;
pub mod float;
pub mod interval;
pub mod json;
pub mod numeric;
pub mod planner;
pub mod uuid;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::sql::sqlparser::ast::{self, ExactNumberInfo};
use pgwire::api::Type;

use crate::error::{Result, TarnError, sqlstate};

/// Field-metadata key that carries a column's Postgres type name.
pub const PG_TYPE_METADATA_KEY: &str = "tarn.pg_type";

/// Timezone Tarn stores `timestamptz` values in (the instant is what matters).
pub const STORAGE_TZ: &str = "UTC";

/// A Postgres type Tarn can store, compute with and put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `numeric(p, s)`; `None` when declared without a typmod.
    Numeric(Option<(u8, i8)>),
    Text,
    /// `varchar(n)`; `None` for plain `varchar`.
    Varchar(Option<u32>),
    /// `char(n)` (blank-padded).
    Bpchar(u32),
    Bytea,
    Date,
    /// `time` (without time zone), microseconds since midnight.
    Time,
    Timestamp,
    Timestamptz,
    /// Kept as canonical text (see `uuid.rs`).
    Uuid,
    /// Kept as the text written, once it parses.
    Json,
    /// Kept in `jsonb_out`'s printed form (see `json.rs`).
    Jsonb,
    /// `name`: text limited to 63 bytes.
    Name,
    /// `"char"`: one byte (the catalogs' `relkind`, `typtype` …).
    Char,
    /// `oid`: an unsigned 32-bit object identifier.
    Oid,
    /// `interval`: months, days, microseconds (see `interval.rs`).
    Interval,
    /// A one-dimensional array of the element type.
    Array(Box<PgType>),
}

impl PgType {
    /// The Arrow type a value of this Postgres type is stored and computed as.
    pub fn arrow_type(&self) -> DataType {
        match self {
            PgType::Bool => DataType::Boolean,
            PgType::Int2 => DataType::Int16,
            PgType::Int4 => DataType::Int32,
            PgType::Int8 => DataType::Int64,
            PgType::Float4 => DataType::Float32,
            PgType::Float8 => DataType::Float64,
            PgType::Numeric(Some((p, s))) if *p <= 38 => DataType::Decimal128(*p, *s),
            PgType::Numeric(Some((p, s))) => DataType::Decimal256(*p, *s),
            PgType::Numeric(None) => DataType::Decimal256(numeric::UNCONSTRAINED.0, numeric::UNCONSTRAINED.1),
            PgType::Text | PgType::Varchar(_) | PgType::Bpchar(_) => DataType::Utf8,
            PgType::Uuid | PgType::Json | PgType::Jsonb | PgType::Name | PgType::Char => DataType::Utf8,
            PgType::Bytea => DataType::Binary,
            PgType::Date => DataType::Date32,
            PgType::Time => DataType::Time64(TimeUnit::Microsecond),
            PgType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgType::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some(STORAGE_TZ.into())),
            PgType::Oid => DataType::UInt32,
            PgType::Interval => DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano),
            // The item field carries no metadata, so lists DataFusion computes
            // (`ARRAY[…]`) have the same Arrow type as stored ones.
            PgType::Array(elem) => DataType::List(Arc::new(Field::new("item", elem.arrow_type(), true))),
        }
    }

    /// Whether values are kept as Utf8 text.
    pub fn is_text_backed(&self) -> bool {
        matches!(
            self,
            PgType::Text | PgType::Varchar(_) | PgType::Bpchar(_) | PgType::Uuid | PgType::Json | PgType::Jsonb | PgType::Name | PgType::Char
        )
    }

    /// The wire type (OID) of this Postgres type.
    pub fn wire_type(&self) -> Type {
        match self {
            PgType::Bool => Type::BOOL,
            PgType::Int2 => Type::INT2,
            PgType::Int4 => Type::INT4,
            PgType::Int8 => Type::INT8,
            PgType::Float4 => Type::FLOAT4,
            PgType::Float8 => Type::FLOAT8,
            PgType::Numeric(_) => Type::NUMERIC,
            PgType::Text => Type::TEXT,
            PgType::Varchar(_) => Type::VARCHAR,
            PgType::Bpchar(_) => Type::BPCHAR,
            PgType::Bytea => Type::BYTEA,
            PgType::Date => Type::DATE,
            PgType::Time => Type::TIME,
            PgType::Timestamp => Type::TIMESTAMP,
            PgType::Timestamptz => Type::TIMESTAMPTZ,
            PgType::Uuid => Type::UUID,
            PgType::Json => Type::JSON,
            PgType::Jsonb => Type::JSONB,
            PgType::Name => Type::NAME,
            PgType::Char => Type::CHAR,
            PgType::Oid => Type::OID,
            PgType::Interval => Type::INTERVAL,
            PgType::Array(elem) => array::array_type(elem),
        }
    }

    /// `atttypmod` as PostgreSQL computes it (-1 when there is none).
    pub fn typmod(&self) -> i32 {
        match self {
            PgType::Numeric(Some((p, s))) => ((i32::from(*p) << 16) | (i32::from(*s) & 0xffff)) + 4,
            PgType::Varchar(Some(n)) | PgType::Bpchar(n) => *n as i32 + 4,
            PgType::Array(elem) => elem.typmod(),
            _ => -1,
        }
    }

    /// `typlen`: the fixed size in bytes, or -1 for variable-length types.
    pub fn type_size(&self) -> i16 {
        match self {
            PgType::Bool => 1,
            PgType::Int2 => 2,
            PgType::Int4 | PgType::Float4 | PgType::Date | PgType::Oid => 4,
            PgType::Int8 | PgType::Float8 | PgType::Time | PgType::Timestamp | PgType::Timestamptz => 8,
            PgType::Uuid | PgType::Interval => 16,
            PgType::Name => 64,
            PgType::Char => 1,
            _ => -1,
        }
    }

    /// The name `format_type()` prints, which is also how Tarn persists it.
    pub fn name(&self) -> String {
        match self {
            PgType::Bool => "boolean".into(),
            PgType::Int2 => "smallint".into(),
            PgType::Int4 => "integer".into(),
            PgType::Int8 => "bigint".into(),
            PgType::Float4 => "real".into(),
            PgType::Float8 => "double precision".into(),
            PgType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
            PgType::Numeric(None) => "numeric".into(),
            PgType::Text => "text".into(),
            PgType::Varchar(Some(n)) => format!("character varying({n})"),
            PgType::Varchar(None) => "character varying".into(),
            PgType::Bpchar(n) => format!("character({n})"),
            PgType::Bytea => "bytea".into(),
            PgType::Date => "date".into(),
            PgType::Time => "time without time zone".into(),
            PgType::Timestamp => "timestamp without time zone".into(),
            PgType::Timestamptz => "timestamp with time zone".into(),
            PgType::Uuid => "uuid".into(),
            PgType::Json => "json".into(),
            PgType::Jsonb => "jsonb".into(),
            PgType::Name => "name".into(),
            PgType::Char => "\"char\"".into(),
            PgType::Oid => "oid".into(),
            PgType::Interval => "interval".into(),
            PgType::Array(elem) => format!("{}[]", elem.name()),
        }
    }

    /// Parse a name produced by [`PgType::name`] (used for persisted catalogs
    /// and field metadata).
    pub fn from_name(name: &str) -> Option<PgType> {
        if let Some(elem) = name.strip_suffix("[]") {
            return match PgType::from_name(elem)? {
                PgType::Array(_) => None,
                elem => Some(PgType::Array(Box::new(elem))),
            };
        }
        let (base, args) = match name.find('(') {
            Some(i) => (&name[..i], Some(name[i + 1..].trim_end_matches(')'))),
            None => (name, None),
        };
        let nums: Vec<i64> = args
            .map(|a| a.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_default();
        Some(match (base, nums.as_slice()) {
            ("boolean", []) => PgType::Bool,
            ("smallint", []) => PgType::Int2,
            ("integer", []) => PgType::Int4,
            ("bigint", []) => PgType::Int8,
            ("real", []) => PgType::Float4,
            ("double precision", []) => PgType::Float8,
            ("numeric", []) => PgType::Numeric(None),
            ("numeric", [p, s]) => PgType::Numeric(Some((*p as u8, *s as i8))),
            ("text", []) => PgType::Text,
            ("character varying", []) => PgType::Varchar(None),
            ("character varying", [n]) => PgType::Varchar(Some(*n as u32)),
            ("character", [n]) => PgType::Bpchar(*n as u32),
            ("bytea", []) => PgType::Bytea,
            ("date", []) => PgType::Date,
            ("time without time zone", []) => PgType::Time,
            ("timestamp without time zone", []) => PgType::Timestamp,
            ("timestamp with time zone", []) => PgType::Timestamptz,
            ("uuid", []) => PgType::Uuid,
            ("json", []) => PgType::Json,
            ("jsonb", []) => PgType::Jsonb,
            ("name", []) => PgType::Name,
            ("\"char\"", []) => PgType::Char,
            ("oid", []) => PgType::Oid,
            ("interval", []) => PgType::Interval,
            _ => return None,
        })
    }

    /// The Postgres type of a column declared in SQL (`CREATE TABLE`).
    pub fn from_sql(dt: &ast::DataType) -> Result<PgType> {
        use ast::DataType as D;
        let unsupported = || {
            TarnError::new(sqlstate::UNDEFINED_OBJECT, format!("type \"{dt}\" is not supported by Tarn yet"))
                .with_hint("see docs/types.md for the supported types")
        };
        Ok(match dt {
            D::Bool | D::Boolean => PgType::Bool,
            D::SmallInt(_) | D::Int2(_) => PgType::Int2,
            D::Int(_) | D::Integer(_) | D::Int4(_) => PgType::Int4,
            D::BigInt(_) | D::Int8(_) => PgType::Int8,
            D::Real | D::Float4 => PgType::Float4,
            D::Float(info) => match info {
                ExactNumberInfo::Precision(p) if *p <= 24 => PgType::Float4,
                _ => PgType::Float8,
            },
            D::Double(_) | D::DoublePrecision | D::Float8 | D::Float64 => PgType::Float8,
            D::Numeric(info) | D::Decimal(info) | D::Dec(info) => numeric_from_info(info)?,
            D::Text | D::String(_) => PgType::Text,
            D::Varchar(len) | D::CharacterVarying(len) | D::CharVarying(len) => PgType::Varchar(char_len(len)?),
            D::Char(len) | D::Character(len) => PgType::Bpchar(char_len(len)?.unwrap_or(1)),
            D::Bytea => PgType::Bytea,
            D::Date => PgType::Date,
            D::Timestamp(_, tz) => match tz {
                ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz => PgType::Timestamptz,
                _ => PgType::Timestamp,
            },
            D::TimestampNtz(_) => PgType::Timestamp,
            D::Time(_, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => PgType::Time,
            D::Uuid => PgType::Uuid,
            D::Interval { fields: None, precision: None } => PgType::Interval,
            D::JSON => PgType::Json,
            D::JSONB => PgType::Jsonb,
            D::Array(ast::ArrayElemTypeDef::SquareBracket(elem, _) | ast::ArrayElemTypeDef::AngleBracket(elem)) => {
                match PgType::from_sql(elem)? {
                    PgType::Array(_) => {
                        return Err(TarnError::not_supported("multidimensional arrays are not supported yet"));
                    }
                    elem => PgType::Array(Box::new(elem)),
                }
            }
            D::Custom(name, args) if args.is_empty() => {
                match name.to_string().to_ascii_lowercase().trim_start_matches("pg_catalog.") {
                    "timestamptz" => PgType::Timestamptz,
                    "bpchar" => PgType::Bpchar(1),
                    "uuid" => PgType::Uuid,
                    "json" => PgType::Json,
                    "jsonb" => PgType::Jsonb,
                    "name" => PgType::Name,
                    "\"char\"" => PgType::Char,
                    "oid" => PgType::Oid,
                    "time" => PgType::Time,
                    "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" => {
                        return Err(TarnError::not_supported("serial columns are not supported yet")
                            .with_hint("declare the column as bigint and supply its value"));
                    }
                    _ => return Err(unsupported()),
                }
            }
            _ => return Err(unsupported()),
        })
    }

    /// The Postgres type of a computed Arrow column. Types outside Tarn's set
    /// are sent as `text` using Arrow's display form.
    pub fn from_arrow(dt: &DataType) -> PgType {
        match dt {
            DataType::Boolean => PgType::Bool,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgType::Int2,
            DataType::Int32 | DataType::UInt16 => PgType::Int4,
            DataType::Int64 => PgType::Int8,
            // Only oids are UInt32 in Tarn (an oid column, or an aggregate or
            // CASE over one that dropped its tag).
            DataType::UInt32 => PgType::Oid,
            DataType::UInt64 => PgType::Numeric(Some((20, 0))),
            DataType::Float16 | DataType::Float32 => PgType::Float4,
            DataType::Float64 => PgType::Float8,
            DataType::Decimal128(p, s) if *s >= 0 => PgType::Numeric(Some((*p, *s))),
            // Computed from unconstrained numeric (or a wide literal): the
            // Arrow scale is not the value's own, so print trimmed, untyped.
            DataType::Decimal256(_, s) if *s >= 0 => PgType::Numeric(None),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
                PgType::Bytea
            }
            DataType::Date32 | DataType::Date64 => PgType::Date,
            DataType::Time32(_) | DataType::Time64(_) => PgType::Time,
            DataType::Interval(_) | DataType::Duration(_) => PgType::Interval,
            DataType::Timestamp(_, None) => PgType::Timestamp,
            DataType::Timestamp(_, Some(_)) => PgType::Timestamptz,
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => match PgType::from_field(f) {
                // Nested lists have no one-dimensional PostgreSQL type: sent as text.
                PgType::Array(_) => PgType::Text,
                elem => PgType::Array(Box::new(elem)),
            },
            _ => PgType::Text,
        }
    }

    /// The Postgres type of a result field: its recorded type when the column
    /// came straight from a table, else the type its Arrow type maps to.
    pub fn from_field(field: &Field) -> PgType {
        field
            .metadata()
            .get(PG_TYPE_METADATA_KEY)
            .and_then(|n| PgType::from_name(n))
            .filter(|t| t.arrow_type() == *field.data_type())
            .unwrap_or_else(|| PgType::from_arrow(field.data_type()))
    }

    /// An Arrow field for a table column of this type.
    pub fn to_field(&self, name: &str, nullable: bool) -> Field {
        Field::new(name, self.arrow_type(), nullable)
            .with_metadata(HashMap::from([(PG_TYPE_METADATA_KEY.to_string(), self.name())]))
    }
}

fn numeric_from_info(info: &ExactNumberInfo) -> Result<PgType> {
    let check = |p: u64, s: i64| -> Result<PgType> {
        if p == 0 || p > u64::from(numeric::MAX_PRECISION) {
            return Err(TarnError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("NUMERIC precision {p} must be between 1 and {} in Tarn", numeric::MAX_PRECISION),
            ));
        }
        if s < 0 || s as u64 > p {
            return Err(TarnError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("NUMERIC scale {s} must be between 0 and precision {p}"),
            ));
        }
        Ok(PgType::Numeric(Some((p as u8, s as i8))))
    };
    match info {
        ExactNumberInfo::None => Ok(PgType::Numeric(None)),
        ExactNumberInfo::Precision(p) => check(*p, 0),
        ExactNumberInfo::PrecisionAndScale(p, s) => check(*p, *s),
    }
}

fn char_len(len: &Option<ast::CharacterLength>) -> Result<Option<u32>> {
    match len {
        None => Ok(None),
        Some(ast::CharacterLength::Max) => Ok(None),
        Some(ast::CharacterLength::IntegerLength { length, .. }) => {
            if *length == 0 || *length > 10_485_760 {
                Err(TarnError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!("length for type varchar cannot exceed 10485760 (got {length})"),
                ))
            } else {
                Ok(Some(*length as u32))
            }
        }
    }
}

/// Convenience: an Arrow schema from (name, type, nullable) triples.
pub fn schema_of(columns: &[(String, PgType, bool)]) -> Arc<arrow::datatypes::Schema> {
    Arc::new(arrow::datatypes::Schema::new(
        columns.iter().map(|(n, t, null)| t.to_field(n, *null)).collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in [
            PgType::Bool,
            PgType::Int2,
            PgType::Int4,
            PgType::Int8,
            PgType::Float4,
            PgType::Float8,
            PgType::Numeric(None),
            PgType::Numeric(Some((10, 2))),
            PgType::Text,
            PgType::Varchar(None),
            PgType::Varchar(Some(20)),
            PgType::Bpchar(3),
            PgType::Bytea,
            PgType::Date,
            PgType::Time,
            PgType::Timestamp,
            PgType::Timestamptz,
            PgType::Uuid,
            PgType::Json,
            PgType::Jsonb,
            PgType::Name,
            PgType::Char,
            PgType::Oid,
            PgType::Interval,
            PgType::Array(Box::new(PgType::Int4)),
            PgType::Array(Box::new(PgType::Varchar(Some(10)))),
        ] {
            assert_eq!(PgType::from_name(&t.name()), Some(t.clone()), "{t:?}");
            assert_eq!(PgType::from_field(&t.to_field("c", true)), t);
        }
    }

    #[test]
    fn typmods_match_postgres() {
        // SELECT atttypmod FROM pg_attribute for numeric(10,2), varchar(20), char(3)
        assert_eq!(PgType::Numeric(Some((10, 2))).typmod(), 655366);
        assert_eq!(PgType::Varchar(Some(20)).typmod(), 24);
        assert_eq!(PgType::Bpchar(3).typmod(), 7);
        assert_eq!(PgType::Int8.typmod(), -1);
    }

    #[test]
    fn metadata_is_ignored_when_the_arrow_type_changed() {
        let f = PgType::Int4.to_field("c", true).with_data_type(DataType::Int64);
        assert_eq!(PgType::from_field(&f), PgType::Int8);
    }
}
