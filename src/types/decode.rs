//! PostgreSQL wire values → DataFusion scalars, for Bind parameters.
//!
//! Text-format parameters are parsed the way the target type parses text
//! (through Arrow's casts); binary-format parameters are decoded per type OID.
//! Pure functions over bytes.

use arrow::datatypes::DataType;
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
        Type::TEXT | Type::NAME | Type::UNKNOWN => PgType::Text,
        Type::VARCHAR => PgType::Varchar(None),
        Type::BPCHAR => PgType::Bpchar(1),
        Type::BYTEA => PgType::Bytea,
        Type::DATE => PgType::Date,
        Type::TIMESTAMP => PgType::Timestamp,
        Type::TIMESTAMPTZ => PgType::Timestamptz,
        _ => return None,
    })
}

fn bad_binary(ty: &Type, why: &str) -> TarnError {
    TarnError::new(
        sqlstate::PROTOCOL_VIOLATION,
        format!("incorrect binary data format in bind parameter of type {}: {why}", ty.name()),
    )
}

fn fixed<const N: usize>(bytes: &[u8], ty: &Type) -> Result<[u8; N]> {
    bytes.try_into().map_err(|_| bad_binary(ty, &format!("expected {N} bytes, got {}", bytes.len())))
}

/// Decode one Bind parameter of wire type `ty` into a scalar.
pub fn decode_param(bytes: Option<&[u8]>, ty: &Type, format: Format) -> Result<ScalarValue> {
    let pg = pg_type_for_oid(ty).ok_or_else(|| {
        TarnError::new(sqlstate::FEATURE_NOT_SUPPORTED, format!("parameters of type {} (OID {}) are not supported yet", ty.name(), ty.oid()))
    })?;
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
    let utf8 = ScalarValue::Utf8(Some(text.to_string()));
    match pg {
        PgType::Text | PgType::Varchar(_) | PgType::Bpchar(_) => Ok(utf8),
        PgType::Bytea => decode_bytea_text(text),
        PgType::Numeric(None) => {
            // Keep the scale the client wrote, like PostgreSQL does.
            let scale = text.split_once('.').map(|(_, f)| f.trim().len()).unwrap_or(0).min(38) as i8;
            let prec = 38u8;
            utf8.cast_to(&DataType::Decimal128(prec, scale)).map_err(|_| invalid_text(text, pg))
        }
        _ => utf8.cast_to(&pg.arrow_type()).map_err(|_| invalid_text(text, pg)),
    }
}

fn invalid_text(text: &str, pg: &PgType) -> TarnError {
    TarnError::new(sqlstate::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax for type {}: \"{text}\"", pg.name()))
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
        PgType::Text | PgType::Varchar(_) | PgType::Bpchar(_) => ScalarValue::Utf8(Some(
            String::from_utf8(bytes.to_vec()).map_err(|_| TarnError::new("22021", "invalid byte sequence for encoding \"UTF8\""))?,
        )),
        PgType::Bytea => ScalarValue::Binary(Some(bytes.to_vec())),
        PgType::Date => ScalarValue::Date32(Some(i32::from_be_bytes(fixed(bytes, ty)?) + PG_EPOCH_OFFSET_DAYS)),
        PgType::Timestamp => ScalarValue::TimestampMicrosecond(Some(i64::from_be_bytes(fixed(bytes, ty)?) + PG_EPOCH_OFFSET_MICROS), None),
        PgType::Timestamptz => ScalarValue::TimestampMicrosecond(
            Some(i64::from_be_bytes(fixed(bytes, ty)?) + PG_EPOCH_OFFSET_MICROS),
            Some(super::STORAGE_TZ.into()),
        ),
        PgType::Numeric(_) => decode_numeric_binary(bytes, ty)?,
    })
}

/// Decode `numeric_send` output into a Decimal128 with the value's own scale.
pub fn decode_numeric_binary(bytes: &[u8], ty: &Type) -> Result<ScalarValue> {
    if bytes.len() < 8 {
        return Err(bad_binary(ty, "numeric header is 8 bytes"));
    }
    let rd = |i: usize| i16::from_be_bytes([bytes[i], bytes[i + 1]]);
    let ndigits = rd(0).max(0) as usize;
    let weight = rd(2) as i32;
    let sign = rd(4) as u16;
    let dscale = rd(6).max(0) as u32;
    if sign == 0xC000 {
        return Err(TarnError::new(sqlstate::FEATURE_NOT_SUPPORTED, "numeric NaN is not supported yet"));
    }
    if bytes.len() != 8 + 2 * ndigits {
        return Err(bad_binary(ty, "digit count does not match length"));
    }
    if dscale > 38 {
        return Err(TarnError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "numeric scale exceeds 38"));
    }
    // value = sum(d_i * 10000^(weight - i)); scaled by 10^dscale.
    let mut acc: i128 = 0;
    let overflow = || TarnError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "numeric value out of range");
    for i in 0..ndigits {
        let d = rd(8 + 2 * i);
        if !(0..10000).contains(&d) {
            return Err(bad_binary(ty, "digit out of range"));
        }
        acc = acc.checked_mul(10000).and_then(|a| a.checked_add(i128::from(d))).ok_or_else(overflow)?;
    }
    // acc currently has (ndigits - 1 - weight) base-10000 fractional groups.
    let frac_digits = (ndigits as i32 - 1 - weight) * 4;
    let shift = dscale as i32 - frac_digits;
    let pow = |n: u32| 10i128.checked_pow(n).ok_or_else(overflow);
    acc = if shift >= 0 { acc.checked_mul(pow(shift as u32)?).ok_or_else(overflow)? } else { acc / pow((-shift) as u32)? };
    if sign == 0x4000 {
        acc = -acc;
    }
    Ok(ScalarValue::Decimal128(Some(acc), 38, dscale as i8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::encode::write_numeric_binary;

    #[test]
    fn numeric_binary_round_trips() {
        for (v, s) in [(1250i128, 2u32), (5, 2), (-123456, 0), (0, 3), (99_999_999_999_999, 4)] {
            let mut buf = vec![];
            write_numeric_binary(&mut buf, v, s);
            assert_eq!(decode_numeric_binary(&buf, &Type::NUMERIC).unwrap(), ScalarValue::Decimal128(Some(v), 38, s as i8));
        }
    }

    #[test]
    fn binary_ints_and_wrong_sizes() {
        assert_eq!(decode_param(Some(&[0, 7]), &Type::INT2, Format::Binary).unwrap(), ScalarValue::Int16(Some(7)));
        let err = decode_param(Some(&[0, 7]), &Type::INT8, Format::Binary).unwrap_err();
        assert_eq!(err.code, sqlstate::PROTOCOL_VIOLATION);
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
    fn unknown_oids_are_refused_not_crashed() {
        assert!(decode_param(Some(b"x"), &Type::POINT, Format::Text).is_err());
    }
}
