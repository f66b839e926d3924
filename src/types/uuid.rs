//! `uuid` text forms, as PostgreSQL's `uuid_in`/`uuid_out` read and write them.
//!
//! Tarn keeps a uuid as its canonical text (lowercase, hyphenated) in a Utf8
//! column tagged `uuid`, so text I/O and comparisons need no conversion; the
//! binary wire form is the 16 raw bytes. Pure functions.

use crate::error::{Result, TarnError, sqlstate};

/// Parse any form `uuid_in` accepts — hyphens between any 4-digit groups,
/// optional braces, either case — into the 16 bytes.
pub fn parse(text: &str) -> Result<[u8; 16]> {
    let bad = || TarnError::new(sqlstate::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax for type uuid: \"{text}\""));
    let inner = match text.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}').ok_or_else(bad)?,
        None => text,
    };
    let mut out = [0u8; 16];
    let mut n = 0usize; // hex digits read
    let mut after_group = false;
    for (i, c) in inner.bytes().enumerate() {
        if c == b'-' {
            // PostgreSQL allows a hyphen after any group of four digits, not first or last.
            if i == 0 || !after_group || n % 4 != 0 || n == 32 {
                return Err(bad());
            }
            after_group = false;
            continue;
        }
        let d = (c as char).to_digit(16).ok_or_else(bad)? as u8;
        if n == 32 {
            return Err(bad());
        }
        out[n / 2] |= if n % 2 == 0 { d << 4 } else { d };
        n += 1;
        after_group = n % 4 == 0;
    }
    if n != 32 || inner.ends_with('-') {
        return Err(bad());
    }
    Ok(out)
}

/// The canonical text form: `a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`.
pub fn format(bytes: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// `text` in canonical form, or 22P02.
pub fn canonical(text: &str) -> Result<String> {
    parse(text).map(|b| format(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_postgres_accepts() {
        let want = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        for input in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
        ] {
            assert_eq!(canonical(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn refuses_the_rest() {
        for input in ["", "x", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111", "-a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0eebc999c0b4ef8bb6d6bb9bd380a11-", "{a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0e-ebc999c0b4ef8bb6d6bb9bd380a11", "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11"] {
            let e = canonical(input).unwrap_err();
            assert_eq!(e.code, sqlstate::INVALID_TEXT_REPRESENTATION, "{input}");
        }
    }

    #[test]
    fn round_trips_bytes() {
        let b: [u8; 16] = std::array::from_fn(|i| (i * 17) as u8);
        assert_eq!(parse(&format(&b)).unwrap(), b);
    }
}
