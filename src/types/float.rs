//! PostgreSQL's text form of `float4`/`float8` (with the default
//! `extra_float_digits = 1`): the shortest digits that round-trip, printed in
//! fixed notation when the decimal exponent is in `-4..15` (`-4..6` for
//! float4) and as `d.ddde±XX` otherwise — the thresholds of PostgreSQL's
//! `d2s.c`/`f2s.c`. The digits come from `ryu`, the algorithm `d2s.c` is
//! (so they are PostgreSQL's digits by construction); only the layout is
//! ours. Rust's own formatter found the same digits at a quarter of a
//! streaming `SELECT *` of floats, formatting each value twice.

/// Append the PostgreSQL text form of an `f64` to `out`.
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    if !write_special(out, v.is_nan(), v.is_infinite(), v.is_sign_negative()) {
        let mut buf = ryu::Buffer::new();
        lay_out(out, buf.format_finite(v).as_bytes(), 15);
    }
}

/// Append the PostgreSQL text form of an `f32` to `out`.
pub fn write_f32(out: &mut Vec<u8>, v: f32) {
    if !write_special(out, v.is_nan(), v.is_infinite(), v.is_sign_negative()) {
        let mut buf = ryu::Buffer::new();
        lay_out(out, buf.format_finite(v).as_bytes(), 6);
    }
}

fn write_special(out: &mut Vec<u8>, nan: bool, inf: bool, negative: bool) -> bool {
    if nan {
        out.extend_from_slice(b"NaN");
    } else if inf {
        out.extend_from_slice(if negative { b"-Infinity" } else { b"Infinity" });
    } else {
        return false;
    }
    true
}

/// Lay out a finite number written by `ryu` (`1.5`, `1e20`, `1.5e-7`,
/// `0.0001`, `-0.0`) the way PostgreSQL does: its significant digits in
/// fixed notation when the exponent is in `-4..max_fixed_exp`, else as
/// `d.ddde±XX`.
fn lay_out(out: &mut Vec<u8>, text: &[u8], max_fixed_exp: i32) {
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (mantissa, exp) = match text.iter().position(|&c| c == b'e') {
        Some(e) => (&text[..e], parse_exponent(&text[e + 1..])),
        None => (text, 0),
    };
    // The mantissa's digits without the point; `point` digits precede it.
    let mut digits = [0u8; 24];
    let mut len = 0;
    let mut point = mantissa.len();
    for (i, &c) in mantissa.iter().enumerate() {
        if c == b'.' {
            point = i;
        } else {
            digits[len] = c;
            len += 1;
        }
    }
    let mut digits = &digits[..len];
    let mut point = point as i32;
    while let [b'0', rest @ ..] = digits {
        digits = rest;
        point -= 1;
    }
    while let [rest @ .., b'0'] = digits {
        digits = rest;
    }
    if negative {
        out.push(b'-');
    }
    if digits.is_empty() {
        out.push(b'0');
        return;
    }
    // The exponent of the first significant digit.
    let exp = point + exp - 1;
    if (-4..max_fixed_exp).contains(&exp) {
        if exp < 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(digits);
        } else {
            let whole = exp as usize + 1;
            if digits.len() <= whole {
                out.extend_from_slice(digits);
                out.extend(std::iter::repeat_n(b'0', whole - digits.len()));
            } else {
                out.extend_from_slice(&digits[..whole]);
                out.push(b'.');
                out.extend_from_slice(&digits[whole..]);
            }
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        let mut tmp = [0u8; lexical_core::BUFFER_SIZE];
        out.extend_from_slice(lexical_core::write(e, &mut tmp));
    }
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e = digits.iter().fold(0i32, |e, &d| e * 10 + i32::from(d - b'0'));
    if negative { -e } else { e }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f8(v: f64) -> String {
        let mut o = vec![];
        write_f64(&mut o, v);
        String::from_utf8(o).unwrap()
    }
    fn f4(v: f32) -> String {
        let mut o = vec![];
        write_f32(&mut o, v);
        String::from_utf8(o).unwrap()
    }

    #[test]
    fn matches_postgres_float8out() {
        // Each expected string is what PostgreSQL 15 prints for SELECT <v>::float8.
        assert_eq!(f8(0.1), "0.1");
        assert_eq!(f8(1.0), "1");
        assert_eq!(f8(-0.0), "-0");
        assert_eq!(f8(123456789012345.0), "123456789012345");
        assert_eq!(f8(1e15), "1e+15");
        assert_eq!(f8(1e20), "1e+20");
        assert_eq!(f8(0.0001), "0.0001");
        assert_eq!(f8(0.00001), "1e-05");
        assert_eq!(f8(1.5e-7), "1.5e-07");
        assert_eq!(f8(1.7976931348623157e308), "1.7976931348623157e+308");
        assert_eq!(f8(f64::NAN), "NaN");
        assert_eq!(f8(f64::INFINITY), "Infinity");
        assert_eq!(f8(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(f8(3.14159), "3.14159");
    }

    #[test]
    fn matches_postgres_float4out() {
        assert_eq!(f4(0.1), "0.1");
        assert_eq!(f4(123456.0), "123456");
        assert_eq!(f4(1234567.0), "1.234567e+06");
        assert_eq!(f4(1.5), "1.5");
        // An exact tie of two shortest forms: Ryū (and PostgreSQL) round it
        // to even, Rust's formatter printed 312985.13.
        assert_eq!(f4(312985.125), "312985.12");
    }

    /// The layout Tarn had before `ryu`: Rust's formatter laid out by
    /// splitting its `{:e}` form. Its digits are as short, but on an exact
    /// tie between two shortest candidates it may take the other one.
    fn by_rust_formatter(sci: String, fixed: String, max_fixed_exp: i32) -> String {
        let (mantissa, exp) = sci.split_once('e').unwrap();
        let exp: i32 = exp.parse().unwrap();
        if (-4..max_fixed_exp).contains(&exp) { fixed } else { format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs()) }
    }

    /// `ours` is `theirs`, or another shortest form of the same value: both
    /// read back as `v` and are as long.
    fn same_or_tie<T: std::str::FromStr + PartialEq + std::fmt::Debug>(ours: &str, theirs: &str, v: T) {
        if ours != theirs {
            assert_eq!(ours.len(), theirs.len(), "{ours} vs {theirs}");
            assert_eq!(ours.parse::<T>().ok(), Some(v), "{ours} does not read back");
        }
    }

    #[test]
    fn agrees_with_rusts_shortest_digits_on_random_bit_patterns() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every third value is a "decimal-looking" one, like stored data.
            let v = if i % 3 == 0 { (x % 10_000_000) as f64 * 0.25 / 10f64.powi((x >> 60) as i32) } else { f64::from_bits(x) };
            if v.is_finite() {
                same_or_tie(&f8(v), &by_rust_formatter(format!("{v:e}"), format!("{v}"), 15), v);
            }
            let w = f32::from_bits(x as u32);
            if w.is_finite() {
                same_or_tie(&f4(w), &by_rust_formatter(format!("{w:e}"), format!("{w}"), 6), w);
            }
        }
    }
}
