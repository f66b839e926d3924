//! A fast path for `numeric(p, s)` text in plain decimal notation
//! (`[+-]digits[.digits]`), the form COPY data nearly always has.
//!
//! Arrow's string → decimal cast formats a string per value (a tenth of a
//! bulk COPY of TPC-H lineitem went there). Anything else — an exponent,
//! spaces, `NaN`, too many digits for the precision — makes
//! [`plain_decimals`] return None and the caller takes the general path,
//! which also produces PostgreSQL's errors. Rounding is PostgreSQL's: half
//! away from zero at the column's scale.

use arrow::array::{Array, ArrayRef, PrimitiveArray, StringArray};
use arrow::datatypes::{ArrowNativeType, ArrowNativeTypeOp, DataType, Decimal128Type, Decimal256Type, DecimalType};
use std::sync::Arc;

/// `text` as a decimal column of type `target` (Decimal128 or Decimal256),
/// or None if some value is not plain decimal notation or does not fit.
pub fn plain_decimal_column(text: &StringArray, target: &DataType) -> Option<ArrayRef> {
    Some(match *target {
        DataType::Decimal128(p, s) => Arc::new(plain_decimals::<Decimal128Type>(text, p, s)?),
        DataType::Decimal256(p, s) => Arc::new(plain_decimals::<Decimal256Type>(text, p, s)?),
        _ => return None,
    })
}

/// `text` as `numeric(precision, scale)`, or None if some value is not plain
/// decimal notation or does not fit.
pub fn plain_decimals<T: DecimalType>(text: &StringArray, precision: u8, scale: i8) -> Option<PrimitiveArray<T>> {
    if scale < 0 || precision == 0 || precision > T::MAX_PRECISION || scale as u8 > precision {
        return None;
    }
    let limit = T::Native::usize_as(10).pow_checked(u32::from(precision)).ok()?;
    let mut values = Vec::with_capacity(text.len());
    for i in 0..text.len() {
        values.push(if text.is_null(i) { T::Native::ZERO } else { parse_plain::<T::Native>(text.value(i).as_bytes(), scale as u32, limit)? });
    }
    PrimitiveArray::<T>::new(values.into(), text.nulls().cloned()).with_precision_and_scale(precision, scale).ok()
}

/// One value scaled by 10^scale, if plain and its magnitude is below `limit`.
fn parse_plain<N: ArrowNativeTypeOp>(bytes: &[u8], scale: u32, limit: N) -> Option<N> {
    let ten = N::usize_as(10);
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let (mut value, mut fraction_digits, mut point, mut any, mut round_up) = (N::ZERO, 0u32, false, false, false);
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' if point && fraction_digits == scale => {
                // The first digit past the scale decides the rounding; the
                // rest must still be digits.
                round_up = c >= b'5';
                if !digits[i + 1..].iter().all(u8::is_ascii_digit) {
                    return None;
                }
                any = true;
                break;
            }
            b'0'..=b'9' => {
                value = value.mul_checked(ten).ok()?.add_checked(N::usize_as(usize::from(c - b'0'))).ok()?;
                fraction_digits += u32::from(point);
                any = true;
            }
            b'.' if !point => point = true,
            _ => return None,
        }
    }
    if !any {
        return None;
    }
    value = value.mul_checked(ten.pow_checked(scale - fraction_digits).ok()?).ok()?;
    if round_up {
        value = value.add_checked(N::ONE).ok()?;
    }
    value.is_lt(limit).then(|| if negative { value.neg_wrapping() } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[Option<&str>], p: u8, s: i8) -> Option<Vec<Option<String>>> {
        let array = plain_decimals::<Decimal128Type>(&StringArray::from(values.to_vec()), p, s)?;
        Some((0..array.len()).map(|i| array.is_valid(i).then(|| array.value_as_string(i))).collect())
    }

    #[test]
    fn plain_values_scale_and_round_half_away_from_zero() {
        let got = parse(&[Some("1.5"), Some("-2"), None, Some("+.25"), Some("7."), Some("1.235"), Some("-1.235"), Some("0.004"), Some("-0.00")], 15, 2);
        let want = ["1.50", "-2.00", "", "0.25", "7.00", "1.24", "-1.24", "0.00", "0.00"];
        let want: Vec<Option<String>> = want.iter().map(|w| (!w.is_empty()).then(|| w.to_string())).collect();
        assert_eq!(got, Some(want));
        assert_eq!(parse(&[Some("00012.3456789")], 38, 10), Some(vec![Some("12.3456789000".into())]));
    }

    #[test]
    fn anything_else_takes_the_general_path() {
        for v in ["", "-", ".", "1e5", " 1", "1 ", "NaN", "1.2.3", "1.23x", "1,5", "--1", "0x10"] {
            assert_eq!(parse(&[Some(v)], 15, 2), None, "{v:?}");
        }
        // Too many integer digits for the precision, also after rounding.
        assert_eq!(parse(&[Some("1000")], 5, 2), None);
        assert_eq!(parse(&[Some("999.995")], 5, 2), None);
        assert_eq!(parse(&[Some("999.994")], 5, 2), Some(vec![Some("999.99".into())]));
        assert_eq!(parse(&[Some("123456789012345678901234567890123456789")], 38, 0), None);
    }

    #[test]
    fn unconstrained_numeric_takes_76_digits() {
        let text = StringArray::from(vec![Some("123456789012345678901234567890.123456789"), None, Some("-0.5")]);
        let col = plain_decimal_column(&text, &DataType::Decimal256(76, 20)).unwrap();
        let col = col.as_any().downcast_ref::<arrow::array::Decimal256Array>().unwrap();
        assert_eq!(col.value_as_string(0), "123456789012345678901234567890.12345678900000000000");
        assert!(col.is_null(1));
        assert_eq!(col.value_as_string(2), "-0.50000000000000000000");
        assert!(plain_decimal_column(&StringArray::from(vec!["NaN"]), &DataType::Decimal256(76, 20)).is_none());
    }
}
