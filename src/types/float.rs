//! PostgreSQL's text form of `float4`/`float8` (with the default
//! `extra_float_digits = 1`): the shortest digits that round-trip, printed in
//! fixed notation when the decimal exponent is in `-4..15` (`-4..6` for
//! float4) and as `d.ddde±XX` otherwise — the thresholds of PostgreSQL's
//! `d2s.c`/`f2s.c`. Rust's formatter already finds the shortest digits (it is
//! Ryū-class too); only the layout differs, which is what this module fixes.

/// Append the PostgreSQL text form of an `f64` to `out`.
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    write_float(out, v.is_nan(), v.is_infinite(), v.is_sign_negative(), || format!("{v:e}"), || format!("{v}"), 15)
}

/// Append the PostgreSQL text form of an `f32` to `out`.
pub fn write_f32(out: &mut Vec<u8>, v: f32) {
    write_float(out, v.is_nan(), v.is_infinite(), v.is_sign_negative(), || format!("{v:e}"), || format!("{v}"), 6)
}

fn write_float(
    out: &mut Vec<u8>,
    nan: bool,
    inf: bool,
    negative: bool,
    sci: impl FnOnce() -> String,
    fixed: impl FnOnce() -> String,
    max_fixed_exp: i32,
) {
    if nan {
        out.extend_from_slice(b"NaN");
        return;
    }
    if inf {
        out.extend_from_slice(if negative { b"-Infinity" } else { b"Infinity" });
        return;
    }
    let s = sci();
    let (mantissa, exp) = s.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    if (-4..max_fixed_exp).contains(&exp) {
        out.extend_from_slice(fixed().as_bytes());
    } else {
        out.extend_from_slice(mantissa.as_bytes());
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(e.to_string().as_bytes());
    }
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
    }
}
