//! PostgreSQL wire values → DataFusion scalars, for Bind parameters.
//!
//! Text-format parameters are parsed the way the target type parses text
//! (through Arrow's casts); binary-format parameters are decoded per type OID.
//! Pure functions over bytes.

use datafusion::scalar::ScalarValue;
use pgwire::api::Type;

use super::PgType;
use super::encode::{PG_EPOCH_OFFSET_DAYS, PG_EPOCH_OFFSET_MICROS};
use crate::error::{Result, TarnError, sqlstate};

/// Wire format of one parameter.
pub use super::encode::Format;

/// The Postgres type for a parameter type OID, if Tarn supports it.
pub fn pg_type_for_oid(ty: &Type) -> Option<PgType> {
    Some(match *ty {
        Type::BOOL => PgType::Bool,
        Type::INT2 => PgType::Int2,
        Type::INT4 => PgType::Int4,
        Type::INT8 => PgType::Int8,
        Type::FLOAT4 => PgType::Float4,
        Type::FLOAT8 => PgType::Float8,
        Type::NUMERIC => PgType::Numeric(None),
        Type::TEXT | Type::UNKNOWN => PgType::Text,
        Type::NAME => PgType::Name,
        Type::CHAR => PgType::Char,
        Type::VARCHAR => PgType::Varchar(None),
        Type::BPCHAR => PgType::Bpchar(1),
        Type::BYTEA => PgType::Bytea,
        Type::DATE => PgType::Date,
        Type::TIMESTAMP => PgType::Timestamp,
        Type::TIMESTAMPTZ => PgType::Timestamptz,
        Type::TIME => PgType::Time,
        Type::UUID => PgType::Uuid,
        Type::JSON => PgType::Json,
        Type::JSONB => PgType::Jsonb,
        Type::OID => PgType::Oid,
        Type::INTERVAL => PgType::Interval,
        _ => PgType::Array(Box::new(super::array::element_of(ty)?)),
    })
}

/// PostgreSQL's error for a binary value its type's receive function does
/// not take (22P03). Bind names the parameter in the message
/// ([`in_bind_parameter`]); what is wrong goes in the detail.
fn bad_binary(ty: &Type, why: &str) -> TarnError {
    TarnError::new(sqlstate::INVALID_BINARY_REPRESENTATION, "incorrect binary data format")
        .with_detail(format!("A binary {} value: {why}.", ty.name()))
}

/// A fixed-size binary value. Too few bytes is PostgreSQL's "insufficient
/// data left in message" (08P01: the receive function read past the end);
/// too many is 22P03 (it left bytes unread).
fn fixed<const N: usize>(bytes: &[u8], ty: &Type) -> Result<[u8; N]> {
    bytes.try_into().map_err(|_| {
        if bytes.len() < N {
            TarnError::new(sqlstate::PROTOCOL_VIOLATION, "insufficient data left in message")
        } else {
            bad_binary(ty, &format!("expected {N} bytes, got {}", bytes.len()))
        }
    })
}

/// A parameter's decoding error as Bind reports it: PostgreSQL names the
/// parameter (1-based) when a binary value has the wrong form.
pub fn in_bind_parameter(e: TarnError, index: usize) -> TarnError {
    if e.code == sqlstate::INVALID_BINARY_REPRESENTATION {
        TarnError { message: format!("incorrect binary data format in bind parameter {}", index + 1), ..e }
    } else {
        e
    }
}

/// The Tarn type a parameter of wire type `ty` decodes as, or 0A000 for a
/// PostgreSQL type Tarn does not have.
pub fn param_type(ty: &Type) -> Result<PgType> {
    pg_type_for_oid(ty).ok_or_else(|| {
        TarnError::new(sqlstate::FEATURE_NOT_SUPPORTED, format!("parameters of type {} (OID {}) are not supported yet", ty.name(), ty.oid()))
    })
}

/// Decode one Bind parameter of wire type `ty` into a scalar.
pub fn decode_param(bytes: Option<&[u8]>, ty: &Type, format: Format) -> Result<ScalarValue> {
    let pg = param_type(ty)?;
    let Some(bytes) = bytes else {
        return Ok(ScalarValue::try_from(&pg.arrow_type())?);
    };
    match format {
        Format::Text => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| TarnError::new("22021", "invalid byte sequence for encoding \"UTF8\""))?;
            decode_text(text, &pg)
        }
        Format::Binary => decode_binary(bytes, ty, &pg),
    }
}

/// Parse a text value as type `pg` (also used for text-format parameters).
pub fn decode_text(text: &str, pg: &PgType) -> Result<ScalarValue> {
    if let Some(v) = integer_text(text, pg) {
        return v;
    }
    let utf8 = ScalarValue::Utf8(Some(text.to_string()));
    match pg {
        PgType::Text | PgType::Varchar(_) | PgType::Bpchar(_) => Ok(utf8),
        PgType::Uuid => Ok(ScalarValue::Utf8(Some(super::uuid::canonical(text)?))),
        PgType::Json => super::json::validate(text, "json").map(|_| utf8),
        PgType::Jsonb => Ok(ScalarValue::Utf8(Some(super::json::normalize_jsonb(text)?))),
        PgType::Name => Ok(ScalarValue::Utf8(Some(truncate_name(text)))),
        // PostgreSQL's charin keeps the first byte.
        PgType::Char => Ok(ScalarValue::Utf8(Some(first_char(text)))),
        PgType::Interval => Ok(interval_scalar(super::interval::parse_text(text)?)),
        PgType::Array(elem) => {
            let values = super::array::parse_text(text)?
                .iter()
                .map(|e| match e {
                    None => Ok(ScalarValue::try_from(&elem.arrow_type())?),
                    Some(e) => decode_text(e, elem)?.cast_to(&elem.arrow_type()).map_err(Into::into),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(list_scalar(&values, elem))
        }
        PgType::Bytea => decode_bytea_text(text),
        // Keep the scale the client wrote, like PostgreSQL does.
        PgType::Numeric(None) => super::numeric::parse_text(text),
        _ => utf8.cast_to(&pg.arrow_type()).map_err(|_| invalid_text(text, pg)),
    }
}

/// An integer parameter in the form pgbench, node-pg and text-mode drivers
/// send it — optional sign, decimal digits, maybe blanks around (int4in
/// allows them) — parsed directly: going through a Utf8 scalar and Arrow's
/// cast cost more than the rest of binding. Digits that do not fit are
/// PostgreSQL's 22003; anything else that is not a number is left to the
/// cast, which says what is wrong with it.
fn integer_text(text: &str, pg: &PgType) -> Option<Result<ScalarValue>> {
    let digits = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let value = match pg {
        PgType::Int2 => digits.parse().ok().map(|v| ScalarValue::Int16(Some(v))),
        PgType::Int4 => digits.parse().ok().map(|v| ScalarValue::Int32(Some(v))),
        PgType::Int8 => digits.parse().ok().map(|v| ScalarValue::Int64(Some(v))),
        _ => return None,
    };
    if let Some(value) = value {
        return Some(Ok(value));
    }
    let unsigned = digits.strip_prefix(['-', '+']).unwrap_or(digits);
    let all_digits = !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit());
    all_digits.then(|| {
        Err(TarnError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, format!("value \"{text}\" is out of range for type {}", pg.name())))
    })
}

fn interval_scalar(iv: super::interval::Interval) -> ScalarValue {
    ScalarValue::IntervalMonthDayNano(Some(arrow::datatypes::IntervalMonthDayNano::new(iv.months, iv.days, iv.micros * 1000)))
}

/// A whole text column parsed as `pg`, value by value (for the types Arrow's
/// casts do not parse as PostgreSQL does). A failure names the row.
pub fn text_column(values: &arrow::array::StringArray, pg: &PgType) -> std::result::Result<arrow::array::ArrayRef, (usize, TarnError)> {
    let target = pg.arrow_type();
    if arrow::array::Array::is_empty(values) {
        return Ok(arrow::array::new_empty_array(&target));
    }
    let scalars = values
        .iter()
        .enumerate()
        .map(|(row, v)| {
            let value = match v {
                None => ScalarValue::try_from(&target).map_err(TarnError::from),
                Some(v) => decode_text(v, pg).and_then(|s| if s.data_type() == target { Ok(s) } else { Ok(s.cast_to(&target)?) }),
            };
            value.map_err(|e| (row, e))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    ScalarValue::iter_to_array(scalars).map_err(|e| (0, e.into()))
}

/// Whether text becomes `pg` through [`text_column`] rather than an Arrow cast.
pub fn parsed_from_text_by_tarn(pg: &PgType) -> bool {
    matches!(pg, PgType::Numeric(None) | PgType::Interval | PgType::Array(_) | PgType::Bytea | PgType::Uuid | PgType::Json | PgType::Jsonb | PgType::Name | PgType::Char)
}

/// A one-dimensional list scalar of `elem` values.
fn list_scalar(values: &[ScalarValue], elem: &PgType) -> ScalarValue {
    ScalarValue::List(ScalarValue::new_list_nullable(values, &elem.arrow_type()))
}

/// `"char"` keeps one character.
fn first_char(text: &str) -> String {
    text.chars().next().map(String::from).unwrap_or_default()
}

/// `name` keeps at most 63 bytes (NAMEDATALEN - 1), cut at a character boundary.
pub fn truncate_name(text: &str) -> String {
    let mut end = text.len().min(63);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// PostgreSQL's error for text its type's input function does not take:
/// 22007 for the date and time types (their parser's own code), 22P02 for
/// the rest, naming the type as the input function does.
fn invalid_text(text: &str, pg: &PgType) -> TarnError {
    let (code, name) = match pg {
        PgType::Date => (sqlstate::INVALID_DATETIME_FORMAT, "date".to_string()),
        PgType::Time => (sqlstate::INVALID_DATETIME_FORMAT, "time".to_string()),
        PgType::Timestamp => (sqlstate::INVALID_DATETIME_FORMAT, "timestamp".to_string()),
        PgType::Timestamptz => (sqlstate::INVALID_DATETIME_FORMAT, "timestamp with time zone".to_string()),
        PgType::Numeric(_) => (sqlstate::INVALID_TEXT_REPRESENTATION, "numeric".to_string()),
        _ => (sqlstate::INVALID_TEXT_REPRESENTATION, pg.name()),
    };
    TarnError::new(code, format!("invalid input syntax for type {name}: \"{text}\""))
}

fn decode_bytea_text(text: &str) -> Result<ScalarValue> {
    let Some(hex) = text.strip_prefix("\\x") else {
        return Ok(ScalarValue::Binary(Some(text.as_bytes().to_vec())));
    };
    let digit = |c: u8| -> Result<u8> {
        (c as char)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or_else(|| TarnError::new(sqlstate::INVALID_TEXT_REPRESENTATION, format!("invalid hexadecimal digit: \"{}\"", c as char)))
    };
    let b = hex.as_bytes();
    if b.len() % 2 != 0 {
        return Err(TarnError::new(sqlstate::INVALID_TEXT_REPRESENTATION, "invalid hexadecimal data: odd number of digits"));
    }
    let out = b.chunks(2).map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?)).collect::<Result<Vec<u8>>>()?;
    Ok(ScalarValue::Binary(Some(out)))
}

fn decode_binary(bytes: &[u8], ty: &Type, pg: &PgType) -> Result<ScalarValue> {
    Ok(match pg {
        PgType::Bool => ScalarValue::Boolean(Some(fixed::<1>(bytes, ty)?[0] != 0)),
        PgType::Int2 => ScalarValue::Int16(Some(i16::from_be_bytes(fixed(bytes, ty)?))),
        PgType::Int4 => ScalarValue::Int32(Some(i32::from_be_bytes(fixed(bytes, ty)?))),
        PgType::Int8 => ScalarValue::Int64(Some(i64::from_be_bytes(fixed(bytes, ty)?))),
        PgType::Float4 => ScalarValue::Float32(Some(f32::from_be_bytes(fixed(bytes, ty)?))),
        PgType::Float8 => ScalarValue::Float64(Some(f64::from_be_bytes(fixed(bytes, ty)?))),
        PgType::Text | PgType::Varchar(_) | PgType::Bpchar(_) | PgType::Json => ScalarValue::Utf8(Some(utf8_of(bytes)?)),
        PgType::Name => ScalarValue::Utf8(Some(truncate_name(&utf8_of(bytes)?))),
        PgType::Char => ScalarValue::Utf8(Some(if bytes == [0] { String::new() } else { first_char(&utf8_of(bytes)?) })),
        PgType::Jsonb => match bytes.split_first() {
            Some((1, text)) => ScalarValue::Utf8(Some(super::json::normalize_jsonb(&utf8_of(text)?)?)),
            _ => return Err(bad_binary(ty, "unsupported jsonb version number")),
        },
        PgType::Uuid => ScalarValue::Utf8(Some(super::uuid::format(&fixed::<16>(bytes, ty)?))),
        PgType::Oid => ScalarValue::UInt32(Some(u32::from_be_bytes(fixed(bytes, ty)?))),
        PgType::Time => ScalarValue::Time64Microsecond(Some(i64::from_be_bytes(fixed(bytes, ty)?))),
        PgType::Interval => {
            interval_scalar(super::interval::parse_binary(bytes).ok_or_else(|| bad_binary(ty, "expected 16 bytes"))?)
        }
        PgType::Array(elem) => {
            let (elem_oid, cells) = super::array::parse_binary(bytes)?;
            let elem_ty = elem.wire_type();
            if elem_oid != elem_ty.oid() && pg_type_for_oid(&Type::from_oid(elem_oid).unwrap_or(Type::UNKNOWN)).as_ref() != Some(elem.as_ref()) {
                return Err(bad_binary(ty, &format!("wrong element type {elem_oid}")));
            }
            let values = cells
                .iter()
                .map(|c| match c {
                    None => Ok(ScalarValue::try_from(&elem.arrow_type())?),
                    Some(c) => decode_binary(c, &elem_ty, elem)?.cast_to(&elem.arrow_type()).map_err(Into::into),
                })
                .collect::<Result<Vec<_>>>()?;
            list_scalar(&values, elem)
        }
        PgType::Bytea => ScalarValue::Binary(Some(bytes.to_vec())),
        PgType::Date => ScalarValue::Date32(Some(i32::from_be_bytes(fixed(bytes, ty)?) + PG_EPOCH_OFFSET_DAYS)),
        PgType::Timestamp => ScalarValue::TimestampMicrosecond(Some(i64::from_be_bytes(fixed(bytes, ty)?) + PG_EPOCH_OFFSET_MICROS), None),
        PgType::Timestamptz => ScalarValue::TimestampMicrosecond(
            Some(i64::from_be_bytes(fixed(bytes, ty)?) + PG_EPOCH_OFFSET_MICROS),
            Some(super::STORAGE_TZ.into()),
        ),
        PgType::Numeric(_) => super::numeric::parse_binary(bytes).map_err(|why| bad_binary(ty, why))??,
    })
}

fn utf8_of(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| TarnError::new(sqlstate::CHARACTER_NOT_IN_REPERTOIRE, "invalid byte sequence for encoding \"UTF8\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_ints_and_wrong_sizes() {
        assert_eq!(decode_param(Some(&[0, 7]), &Type::INT2, Format::Binary).unwrap(), ScalarValue::Int16(Some(7)));
        // Too short: the receive function reads past the end (08P01); too
        // long: it leaves bytes unread (22P03), and Bind names the parameter.
        let err = decode_param(Some(&[0, 7]), &Type::INT8, Format::Binary).unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (sqlstate::PROTOCOL_VIOLATION, "insufficient data left in message"));
        let err = decode_param(Some(&[0, 0, 0, 0, 7]), &Type::INT4, Format::Binary).unwrap_err();
        assert_eq!(err.code, sqlstate::INVALID_BINARY_REPRESENTATION);
        let err = in_bind_parameter(err, 1);
        assert_eq!(err.message, "incorrect binary data format in bind parameter 2");
        let untouched = in_bind_parameter(TarnError::new(sqlstate::PROTOCOL_VIOLATION, "insufficient data left in message"), 0);
        assert_eq!(untouched.message, "insufficient data left in message");
    }

    #[test]
    fn text_errors_carry_the_input_functions_codes() {
        let err = decode_param(Some(b"99999"), &Type::INT2, Format::Text).unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "value \"99999\" is out of range for type smallint"));
        let err = decode_param(Some(b"-9223372036854775809"), &Type::INT8, Format::Text).unwrap_err();
        assert_eq!(err.code, sqlstate::NUMERIC_VALUE_OUT_OF_RANGE);
        let err = decode_param(Some(b"12a"), &Type::INT4, Format::Text).unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (sqlstate::INVALID_TEXT_REPRESENTATION, "invalid input syntax for type integer: \"12a\""));
        let err = decode_param(Some(b"notatime"), &Type::TIMESTAMP, Format::Text).unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (sqlstate::INVALID_DATETIME_FORMAT, "invalid input syntax for type timestamp: \"notatime\""));
        let err = decode_param(Some(b"x"), &Type::TIMESTAMPTZ, Format::Text).unwrap_err();
        assert_eq!(err.message, "invalid input syntax for type timestamp with time zone: \"x\"");
    }

    #[test]
    fn text_params_parse_per_type() {
        assert_eq!(decode_param(Some(b"42"), &Type::INT4, Format::Text).unwrap(), ScalarValue::Int32(Some(42)));
        assert_eq!(decode_param(Some(b"t"), &Type::BOOL, Format::Text).unwrap(), ScalarValue::Boolean(Some(true)));
        assert_eq!(decode_param(Some(b"12.50"), &Type::NUMERIC, Format::Text).unwrap(), ScalarValue::Decimal128(Some(1250), 38, 2));
        let err = decode_param(Some(b"abc"), &Type::INT4, Format::Text).unwrap_err();
        assert_eq!(err.code, sqlstate::INVALID_TEXT_REPRESENTATION);
        assert_eq!(decode_param(None, &Type::INT4, Format::Text).unwrap(), ScalarValue::Int32(None));
    }

    #[test]
    fn new_types_decode() {
        let u = decode_param(Some(b"A0EEBC999C0B4EF8BB6D6BB9BD380A11"), &Type::UUID, Format::Text).unwrap();
        assert_eq!(u, ScalarValue::Utf8(Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())));
        let raw: Vec<u8> = (0..16).collect();
        assert_eq!(decode_param(Some(&raw), &Type::UUID, Format::Binary).unwrap(), ScalarValue::Utf8(Some("00010203-0405-0607-0809-0a0b0c0d0e0f".into())));
        assert!(decode_param(Some(&raw[..15]), &Type::UUID, Format::Binary).is_err());
        assert_eq!(decode_param(Some(b"\x01{\"b\":1,\"a\":2}"), &Type::JSONB, Format::Binary).unwrap(), ScalarValue::Utf8(Some(r#"{"a": 2, "b": 1}"#.into())));
        assert!(decode_param(Some(b"\x02{}"), &Type::JSONB, Format::Binary).is_err());
        assert_eq!(decode_param(Some(b"{not json"), &Type::JSON, Format::Text).unwrap_err().code, sqlstate::INVALID_TEXT_REPRESENTATION);
        assert_eq!(decode_param(Some(b"03:04:05.25"), &Type::TIME, Format::Text).unwrap(), ScalarValue::Time64Microsecond(Some(11_045_250_000)));
        let arr = decode_param(Some(b"{1,NULL,3}"), &Type::INT4_ARRAY, Format::Text).unwrap();
        let want = ScalarValue::List(ScalarValue::new_list_nullable(&[ScalarValue::Int32(Some(1)), ScalarValue::Int32(None), ScalarValue::Int32(Some(3))], &arrow::datatypes::DataType::Int32));
        assert_eq!(arr, want);
        let mut bin = vec![];
        crate::types::array::write_binary(&mut bin, &Type::INT4, vec![Some(&[0u8, 0, 0, 1][..]), None, Some(&[0, 0, 0, 3][..])].into_iter());
        assert_eq!(decode_param(Some(&bin), &Type::INT4_ARRAY, Format::Binary).unwrap(), want);
        assert!(decode_param(Some(&bin), &Type::TEXT_ARRAY, Format::Binary).is_err());
    }

    #[test]
    fn text_integers_parse_as_int4in_does() {
        assert_eq!(decode_param(Some(b" +42 "), &Type::INT4, Format::Text).unwrap(), ScalarValue::Int32(Some(42)));
        assert_eq!(decode_param(Some(b"-32768"), &Type::INT2, Format::Text).unwrap(), ScalarValue::Int16(Some(-32768)));
        assert_eq!(decode_param(Some(b"9223372036854775807"), &Type::INT8, Format::Text).unwrap(), ScalarValue::Int64(Some(i64::MAX)));
        for bad in [&b"32768"[..], b"", b"+", b"1 2", b"0x10"] {
            assert!(decode_param(Some(bad), &Type::INT2, Format::Text).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_oids_are_refused_not_crashed() {
        assert!(decode_param(Some(b"x"), &Type::POINT, Format::Text).is_err());
    }
}
