//! One-dimensional arrays: the type OIDs, and the text (`{1,2,NULL}`) and
//! binary (`array_send`) wire forms, built from the element values' own
//! encodings. Pure functions over bytes.

use pgwire::api::Type;

use super::PgType;
use crate::error::{Result, TarnError, sqlstate};

/// The array type whose elements are `elem` (`integer` → `_int4`, OID 1007).
pub fn array_type(elem: &PgType) -> Type {
    match elem {
        PgType::Bool => Type::BOOL_ARRAY,
        PgType::Int2 => Type::INT2_ARRAY,
        PgType::Int4 => Type::INT4_ARRAY,
        PgType::Int8 => Type::INT8_ARRAY,
        PgType::Float4 => Type::FLOAT4_ARRAY,
        PgType::Float8 => Type::FLOAT8_ARRAY,
        PgType::Numeric(_) => Type::NUMERIC_ARRAY,
        PgType::Text => Type::TEXT_ARRAY,
        PgType::Varchar(_) => Type::VARCHAR_ARRAY,
        PgType::Bpchar(_) => Type::BPCHAR_ARRAY,
        PgType::Bytea => Type::BYTEA_ARRAY,
        PgType::Date => Type::DATE_ARRAY,
        PgType::Time => Type::TIME_ARRAY,
        PgType::Timestamp => Type::TIMESTAMP_ARRAY,
        PgType::Timestamptz => Type::TIMESTAMPTZ_ARRAY,
        PgType::Uuid => Type::UUID_ARRAY,
        PgType::Json => Type::JSON_ARRAY,
        PgType::Jsonb => Type::JSONB_ARRAY,
        PgType::Name => Type::NAME_ARRAY,
        PgType::Char => Type::CHAR_ARRAY,
        PgType::Oid => Type::OID_ARRAY,
        PgType::Interval => Type::INTERVAL_ARRAY,
        // Not a PostgreSQL type; never produced (from_sql/from_arrow refuse nesting).
        PgType::Array(_) => Type::TEXT_ARRAY,
    }
}

/// The element type of array type `ty` (`_int4` → `integer`), if Tarn has it.
/// Element types with a typmod come back without one.
pub fn element_of(ty: &Type) -> Option<PgType> {
    use PgType::*;
    [Bool, Int2, Int4, Int8, Float4, Float8, Numeric(None), Text, Varchar(None), Bpchar(1), Bytea, Date, Time, Timestamp, Timestamptz, Uuid, Json, Jsonb, Name, Oid, Interval]
        .into_iter()
        .find(|elem| array_type(elem) == *ty)
}

/// Whether an element's text must be double-quoted inside `{…}`.
fn needs_quotes(text: &[u8]) -> bool {
    text.is_empty()
        || text.eq_ignore_ascii_case(b"NULL")
        || text.iter().any(|c| matches!(c, b'{' | b'}' | b',' | b'"' | b'\\' | b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
}

/// `array_out`: `{a,"b c",NULL}` from the elements' text forms.
pub fn write_text<'a>(out: &mut Vec<u8>, elements: impl Iterator<Item = Option<&'a [u8]>>) {
    out.push(b'{');
    for (i, e) in elements.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match e {
            None => out.extend_from_slice(b"NULL"),
            Some(text) if needs_quotes(text) => {
                out.push(b'"');
                for &c in text {
                    if c == b'"' || c == b'\\' {
                        out.push(b'\\');
                    }
                    out.push(c);
                }
                out.push(b'"');
            }
            Some(text) => out.extend_from_slice(text),
        }
    }
    out.push(b'}');
}

/// `array_send`: ndim, has-null flag, element OID, then (size, lower bound)
/// and each element framed with its length (-1 for NULL). An empty array has
/// no dimensions.
pub fn write_binary<'a>(out: &mut Vec<u8>, elem: &Type, elements: impl ExactSizeIterator<Item = Option<&'a [u8]>> + Clone) {
    let n = elements.len();
    let has_null = elements.clone().any(|e| e.is_none());
    out.extend_from_slice(&(if n == 0 { 0i32 } else { 1 }).to_be_bytes());
    out.extend_from_slice(&(has_null as i32).to_be_bytes());
    out.extend_from_slice(&elem.oid().to_be_bytes());
    if n > 0 {
        out.extend_from_slice(&(n as i32).to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
    }
    for e in elements {
        match e {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v);
            }
        }
    }
}

fn malformed(text: &str, detail: &str) -> TarnError {
    TarnError::new(sqlstate::INVALID_TEXT_REPRESENTATION, format!("malformed array literal: \"{text}\"")).with_detail(detail.to_string())
}

/// `array_in` for one dimension: the elements' texts (None for NULL).
pub fn parse_text(text: &str) -> Result<Vec<Option<String>>> {
    let t = text.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| malformed(text, "Array value must start with \"{\" or dimension information."))?;
    let mut out = Vec::new();
    if inner.trim().is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        let mut quoted = false;
        let mut any_quote = false;
        let mut raw_trailing_ws = 0usize;
        loop {
            match chars.peek().copied() {
                None | Some(',') if !quoted => break,
                None => return Err(malformed(text, "Unexpected end of input.")),
                Some('"') => {
                    chars.next();
                    quoted = !quoted;
                    any_quote = true;
                    raw_trailing_ws = 0;
                }
                Some('\\') => {
                    chars.next();
                    value.push(chars.next().ok_or_else(|| malformed(text, "Unexpected end of input."))?);
                    raw_trailing_ws = 0;
                }
                Some('{') | Some('}') if !quoted => {
                    return Err(malformed(text, "Multidimensional arrays are not supported by Tarn yet."));
                }
                Some(c) => {
                    chars.next();
                    value.push(c);
                    raw_trailing_ws = if !quoted && c.is_whitespace() { raw_trailing_ws + c.len_utf8() } else { 0 };
                }
            }
        }
        // Unquoted elements lose trailing blanks; an unquoted NULL is NULL.
        value.truncate(value.len() - raw_trailing_ws);
        if value.is_empty() && !any_quote {
            return Err(malformed(text, "Unexpected \",\" character."));
        }
        out.push(if !any_quote && value.eq_ignore_ascii_case("NULL") { None } else { Some(value) });
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(_) => return Err(malformed(text, "Unexpected array element.")),
        }
    }
    Ok(out)
}

/// The next `n` bytes at `*at`, moving past them.
fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8]> {
    let v = bytes
        .get(*at..at.saturating_add(n))
        .ok_or_else(|| TarnError::new(sqlstate::PROTOCOL_VIOLATION, "insufficient data left in message"))?;
    *at += n;
    Ok(v)
}

fn take_i32(bytes: &[u8], at: &mut usize) -> Result<i32> {
    let b = take(bytes, at, 4)?;
    Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// `array_recv` for one dimension: the element OID and each element's bytes.
pub fn parse_binary(bytes: &[u8]) -> Result<(u32, Vec<Option<&[u8]>>)> {
    let bad = |why: &str| {
        TarnError::new(sqlstate::INVALID_BINARY_REPRESENTATION, "incorrect binary data format").with_detail(format!("A binary array: {why}."))
    };
    let mut at = 0usize;
    let ndim = take_i32(bytes, &mut at)?;
    let _has_null = take_i32(bytes, &mut at)?;
    let elem = take_i32(bytes, &mut at)? as u32;
    let n = match ndim {
        0 => 0usize,
        1 => {
            let n = take_i32(bytes, &mut at)?;
            let _lower = take_i32(bytes, &mut at)?;
            usize::try_from(n).map_err(|_| bad("negative dimension"))?
        }
        _ => return Err(TarnError::not_supported("multidimensional arrays are not supported yet")),
    };
    let mut out = Vec::with_capacity(n.min(bytes.len() / 4));
    for _ in 0..n {
        let len = take_i32(bytes, &mut at)?;
        out.push(if len < 0 { None } else { Some(take(bytes, &mut at, len as usize)?) });
    }
    if at != bytes.len() {
        return Err(bad("trailing bytes"));
    }
    Ok((elem, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(elements: &[Option<&str>]) -> String {
        let mut out = vec![];
        write_text(&mut out, elements.iter().map(|e| e.map(str::as_bytes)));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_form_quotes_like_array_out() {
        assert_eq!(text(&[Some("1"), Some("2"), None]), "{1,2,NULL}");
        assert_eq!(text(&[Some("a"), Some("b c"), Some("quo\"te"), Some(""), Some("NULL"), Some("back\\")]), r#"{a,"b c","quo\"te","","NULL","back\\"}"#);
        assert_eq!(text(&[]), "{}");
    }

    #[test]
    fn text_form_parses_back() {
        let parsed = parse_text(r#"{a, "b c" ,"quo\"te","",NULL,"NULL",  x y  }"#).unwrap();
        let want: Vec<Option<String>> = vec![Some("a".into()), Some("b c".into()), Some("quo\"te".into()), Some("".into()), None, Some("NULL".into()), Some("x y".into())];
        assert_eq!(parsed, want);
        assert_eq!(parse_text("{}").unwrap(), Vec::<Option<String>>::new());
        for bad in ["", "1,2", "{1,2", "{{1},{2}}", "{\"a}"] {
            assert_eq!(parse_text(bad).unwrap_err().code, sqlstate::INVALID_TEXT_REPRESENTATION, "{bad}");
        }
    }

    #[test]
    fn binary_form_round_trips() {
        let elems: Vec<Option<&[u8]>> = vec![Some(&[0, 0, 0, 1]), None];
        let mut out = vec![];
        write_binary(&mut out, &Type::INT4, elems.clone().into_iter());
        assert_eq!(&out[..12], &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 23]);
        assert_eq!(parse_binary(&out).unwrap(), (23, elems));
        let mut empty = vec![];
        write_binary(&mut empty, &Type::TEXT, std::iter::empty());
        assert_eq!(parse_binary(&empty).unwrap(), (25, vec![]));
        assert!(parse_binary(&out[..out.len() - 1]).is_err());
        assert!(parse_binary(&[0, 0]).is_err());
    }
}
