//! `numeric` values: PostgreSQL's text and binary forms ↔ Arrow decimals.
//!
//! `numeric(p, s)` with p ≤ 38 is a Decimal128(p, s), with 38 < p ≤ 76 a
//! Decimal256(p, s), and `numeric` without a typmod a Decimal256 with
//! [`UNCONSTRAINED`] precision and scale: 56 digits before the point and 20
//! after (Arrow has no arbitrary-precision decimal; 20 is the scale
//! PostgreSQL's own division rounds to).
//!
//! Arrow decimals have no NaN, so NaN is the Decimal256 value `i256::MAX`
//! ([`NAN`]). No number of any precision reaches it (10^76 - 1 < i256::MAX),
//! it equals itself and sorts above every number, which is how PostgreSQL
//! orders NaN; Arrow's checked decimal arithmetic overflows on it (22003).
//!
//! Pure functions over bytes and digits, shared by Bind parameters, COPY and
//! the result encoders.

use arrow::datatypes::i256;
use datafusion::scalar::ScalarValue;

use crate::error::{Result, TarnError, sqlstate};

/// Precision and scale of `numeric` declared without a typmod.
pub const UNCONSTRAINED: (u8, i8) = (76, 20);

/// The Decimal256 value that stands for numeric NaN.
pub const NAN: i256 = i256::MAX;

/// Largest precision Tarn stores (Decimal256's).
pub const MAX_PRECISION: u8 = 76;

/// `numeric_send`'s sign word for NaN.
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_NEG: u16 = 0x4000;

/// The unconstrained NaN scalar.
pub fn nan_scalar() -> ScalarValue {
    ScalarValue::Decimal256(Some(NAN), UNCONSTRAINED.0, UNCONSTRAINED.1)
}

/// Whether `text` is PostgreSQL's NaN input (any case, blanks around it).
pub fn is_nan_text(text: &str) -> bool {
    text.trim().eq_ignore_ascii_case("nan")
}

/// A decimal's sign and the base-10 digits of its magnitude.
pub struct Digits {
    pub negative: bool,
    pub digits: String,
}

impl Digits {
    pub fn of_i128(v: i128) -> Self {
        Self { negative: v < 0, digits: v.unsigned_abs().to_string() }
    }

    pub fn of_i256(v: i256) -> Self {
        // |v| < 10^76 for every stored number, so wrapping_abs never wraps.
        Self { negative: v.is_negative(), digits: v.wrapping_abs().to_string() }
    }

    /// Drop trailing fractional zeros (for `numeric` without a declared
    /// scale, whose storage scale is not the value's own).
    pub fn trimmed(mut self, mut scale: u32) -> (Self, u32) {
        while scale > 0 && self.digits.len() > 1 && self.digits.ends_with('0') {
            self.digits.pop();
            scale -= 1;
        }
        if self.digits == "0" {
            scale = 0;
        }
        (self, scale)
    }
}

/// `numeric_out`: the value with exactly `scale` fractional digits.
pub fn write_text(out: &mut Vec<u8>, d: &Digits, scale: u32) {
    let digits = d.digits.as_bytes();
    if d.negative && digits.iter().any(|&c| c != b'0') {
        out.push(b'-');
    }
    let scale = scale as usize;
    if scale == 0 {
        out.extend_from_slice(digits);
    } else if digits.len() <= scale {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits);
    } else {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    }
}

/// `numeric_send`: ndigits, weight, sign, dscale, then base-10000 digits.
pub fn write_binary(out: &mut Vec<u8>, d: &Digits, scale: u32) {
    let scale_us = scale as usize;
    let digits = d.digits.as_bytes();
    // Split into integer and fraction digits, the integer part padded on the
    // left and the fraction on the right to whole base-10000 groups.
    let (int, frac): (&[u8], &[u8]) =
        if digits.len() > scale_us { digits.split_at(digits.len() - scale_us) } else { (&[], digits) };
    let mut padded = Vec::with_capacity(digits.len() + 8);
    padded.extend(std::iter::repeat_n(b'0', (4 - int.len() % 4) % 4));
    padded.extend_from_slice(int);
    let int_groups = padded.len() / 4;
    padded.extend(std::iter::repeat_n(b'0', scale_us - frac.len()));
    padded.extend_from_slice(frac);
    padded.extend(std::iter::repeat_n(b'0', (4 - scale_us % 4) % 4));
    let mut groups: Vec<i16> =
        padded.chunks(4).map(|c| c.iter().fold(0i16, |acc, &b| acc * 10 + i16::from(b - b'0'))).collect();
    let mut weight = int_groups as i16 - 1;
    let lead = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..lead);
    weight -= lead as i16;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let sign: u16 = if d.negative && !groups.is_empty() { NUMERIC_NEG } else { 0 };
    if groups.is_empty() {
        weight = 0;
    }
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(scale as u16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

/// `numeric_send` of NaN.
pub fn write_nan_binary(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&NUMERIC_NAN.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// Whether `v` is neither NaN nor a number of at most 76 digits.
pub fn is_beyond_any_precision(v: i256) -> bool {
    v != NAN && (v == i256::MIN || v.wrapping_abs() >= ten_pow(u32::from(MAX_PRECISION)))
}

fn out_of_range() -> TarnError {
    TarnError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "numeric value out of range")
}

/// A value scaled by 10^scale as the narrowest scalar that holds it:
/// Decimal128(38, scale) when it fits, else Decimal256(76, scale).
fn scalar(v: i256, scale: u32) -> Result<ScalarValue> {
    if scale > u32::from(MAX_PRECISION) || v.wrapping_abs() >= ten_pow(u32::from(MAX_PRECISION)) {
        return Err(out_of_range());
    }
    let limit_128 = ten_pow(38);
    Ok(match v.to_i128() {
        Some(small) if v.wrapping_abs() < limit_128 && scale <= 38 => ScalarValue::Decimal128(Some(small), 38, scale as i8),
        _ => ScalarValue::Decimal256(Some(v), MAX_PRECISION, scale as i8),
    })
}

fn ten_pow(n: u32) -> i256 {
    i256::from_i128(10).wrapping_pow(n)
}

/// `numeric_recv`: a binary parameter, with the scale the client sent.
pub fn parse_binary(bytes: &[u8]) -> std::result::Result<Result<ScalarValue>, &'static str> {
    if bytes.len() < 8 {
        return Err("numeric header is 8 bytes");
    }
    let rd = |i: usize| i16::from_be_bytes([bytes[i], bytes[i + 1]]);
    let ndigits = rd(0).max(0) as usize;
    let weight = i32::from(rd(2));
    let sign = rd(4) as u16;
    let dscale = rd(6).max(0) as u32;
    if bytes.len() != 8 + 2 * ndigits {
        return Err("digit count does not match length");
    }
    if sign == NUMERIC_NAN {
        return Ok(Ok(nan_scalar()));
    }
    if sign != 0 && sign != NUMERIC_NEG {
        return Err("invalid sign");
    }
    let mut acc = i256::ZERO;
    let base = i256::from_i128(10_000);
    for i in 0..ndigits {
        let d = rd(8 + 2 * i);
        if !(0..10000).contains(&d) {
            return Err("digit out of range");
        }
        let Some(next) = acc.checked_mul(base).and_then(|a| a.checked_add(i256::from(d))) else {
            return Ok(Err(out_of_range()));
        };
        acc = next;
    }
    // acc holds (ndigits - 1 - weight) base-10000 fractional groups.
    let shift = dscale as i32 - (ndigits as i32 - 1 - weight) * 4;
    let value = if shift >= 0 {
        u32::try_from(shift).ok().filter(|s| *s <= 76).and_then(|s| acc.checked_mul(ten_pow(s)))
    } else {
        Some(if -shift > 76 { i256::ZERO } else { acc.wrapping_div(ten_pow((-shift) as u32)) })
    };
    let Some(value) = value else { return Ok(Err(out_of_range())) };
    Ok(scalar(if sign == NUMERIC_NEG { value.wrapping_neg() } else { value }, dscale))
}

/// `numeric_in` for a value of unconstrained `numeric`: NaN, or a decimal
/// (with an optional exponent) kept at the scale it was written with.
pub fn parse_text(text: &str) -> Result<ScalarValue> {
    if is_nan_text(text) {
        return Ok(nan_scalar());
    }
    let invalid = || TarnError::new(sqlstate::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax for type numeric: \"{text}\""));
    let t = text.trim();
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i32>().map_err(|_| invalid())?),
        None => (rest, 0),
    };
    // PostgreSQL's own bound; it also keeps the scale arithmetic below in range.
    if exponent.unsigned_abs() > 1000 {
        return Err(out_of_range());
    }
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return Err(invalid());
    }
    // digits × 10^(exponent - frac.len()); the scale is what is left after the point.
    let scale = (frac.len() as i32 - exponent).max(0) as u32;
    let mut value = i256::ZERO;
    let ten = i256::from_i128(10);
    for c in int.bytes().chain(frac.bytes()).skip_while(|c| *c == b'0') {
        value = value.checked_mul(ten).and_then(|v| v.checked_add(i256::from(i32::from(c - b'0')))).ok_or_else(out_of_range)?;
    }
    let zeros = scale as i32 - (frac.len() as i32 - exponent);
    if zeros > 0 {
        value = (zeros <= 76).then(|| value.checked_mul(ten_pow(zeros as u32))).flatten().ok_or_else(out_of_range)?;
    }
    scalar(if negative { value.wrapping_neg() } else { value }, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: Digits, scale: u32) -> String {
        let mut out = vec![];
        write_text(&mut out, &d, scale);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_output_has_the_scale_digits() {
        assert_eq!(text(Digits::of_i128(1250), 2), "12.50");
        assert_eq!(text(Digits::of_i128(-5), 2), "-0.05");
        assert_eq!(text(Digits::of_i128(0), 2), "0.00");
        let (d, s) = Digits::of_i128(125_000_000_000).trimmed(10);
        assert_eq!(text(d, s), "12.5");
        let (d, s) = Digits::of_i128(0).trimmed(20);
        assert_eq!(text(d, s), "0");
    }

    #[test]
    fn binary_matches_postgres_numeric_send() {
        let bin = |v: i128, s: u32| {
            let mut out = vec![];
            write_binary(&mut out, &Digits::of_i128(v), s);
            out
        };
        // numeric_send(12.50::numeric(10,2)): ndigits 2, weight 0, sign 0, dscale 2, digits [12, 5000]
        assert_eq!(bin(1250, 2), [0, 2, 0, 0, 0, 0, 0, 2, 0, 12, 0x13, 0x88]);
        // 0.05: ndigits 1, weight -1, dscale 2, digits [500]
        assert_eq!(bin(5, 2), [0, 1, 0xff, 0xff, 0, 0, 0, 2, 0x01, 0xf4]);
        // -123456: weight 1, digits [12, 3456], negative
        assert_eq!(bin(-123456, 0), [0, 2, 0, 1, 0x40, 0, 0, 0, 0, 12, 0x0d, 0x80]);
        assert_eq!(bin(0, 2), [0, 0, 0, 0, 0, 0, 0, 2]);
        let mut nan = vec![];
        write_nan_binary(&mut nan);
        assert_eq!(nan, [0, 0, 0, 0, 0xc0, 0, 0, 0]);
    }

    #[test]
    fn binary_round_trips_beyond_38_digits() {
        let big = i256::from_string("123456789012345678901234567890123456789012").unwrap();
        for (v, s) in [(i256::from_i128(1250), 2u32), (i256::from_i128(-123456), 0), (big, 9), (big.wrapping_neg(), 30)] {
            let mut buf = vec![];
            write_binary(&mut buf, &Digits::of_i256(v), s);
            let back = parse_binary(&buf).unwrap().unwrap();
            let got = match back {
                ScalarValue::Decimal128(Some(x), _, sc) => (i256::from_i128(x), sc),
                ScalarValue::Decimal256(Some(x), _, sc) => (x, sc),
                other => panic!("{other:?}"),
            };
            assert_eq!(got, (v, s as i8));
        }
        let mut nan = vec![];
        write_nan_binary(&mut nan);
        assert_eq!(parse_binary(&nan).unwrap().unwrap(), nan_scalar());
        assert!(parse_binary(&[0, 1, 0, 0]).is_err());
        assert!(parse_binary(&[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10]).is_err(), "digit 10000");
    }

    #[test]
    fn text_input_keeps_the_written_scale() {
        assert_eq!(parse_text("12.50").unwrap(), ScalarValue::Decimal128(Some(1250), 38, 2));
        assert_eq!(parse_text(" -3 ").unwrap(), ScalarValue::Decimal128(Some(-3), 38, 0));
        assert_eq!(parse_text("1.5e3").unwrap(), ScalarValue::Decimal128(Some(1500), 38, 0));
        assert_eq!(parse_text("15e-3").unwrap(), ScalarValue::Decimal128(Some(15), 38, 3));
        assert_eq!(parse_text(".5").unwrap(), ScalarValue::Decimal128(Some(5), 38, 1));
        assert_eq!(parse_text("NaN").unwrap(), nan_scalar());
        assert_eq!(parse_text("nan").unwrap(), nan_scalar());
        let wide = parse_text("123456789012345678901234567890.123456789").unwrap();
        assert_eq!(wide, ScalarValue::Decimal256(Some(i256::from_string("123456789012345678901234567890123456789").unwrap()), 76, 9));
        for bad in ["", "abc", "1.2.3", "--1", "1e", "."] {
            assert_eq!(parse_text(bad).unwrap_err().code, sqlstate::INVALID_TEXT_REPRESENTATION, "{bad:?}");
        }
        assert_eq!(parse_text(&"9".repeat(80)).unwrap_err().code, sqlstate::NUMERIC_VALUE_OUT_OF_RANGE);
        for huge in ["1e-2147483648", "1e2147483647", "1e1001", &format!("0.{}1", "0".repeat(100_000))] {
            assert_eq!(parse_text(huge).unwrap_err().code, sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "{huge:.20}");
        }
    }
}
