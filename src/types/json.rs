//! `json` and `jsonb` text forms.
//!
//! `json` keeps the text exactly as written once it parses; `jsonb` is stored
//! in the form PostgreSQL's `jsonb_out` prints: one space after `:` and `,`,
//! object keys ordered by length and then bytes with the last duplicate
//! winning, strings re-escaped, numbers printed as `numeric` prints them
//! (`1e2` → `100`). Both are Utf8 columns tagged with their type, so queries
//! treat them as text. Hand-written rather than serde_json because jsonb must
//! keep each number's exact digits (serde_json would round them to f64 unless
//! its `arbitrary_precision` feature, which changes every crate's serde_json,
//! were on). Pure functions.

use crate::error::{Result, TarnError, sqlstate};

/// Nesting deeper than this is refused (54001) rather than risk the stack of
/// the task parsing it (the parser recurses once per level).
const MAX_DEPTH: usize = 256;

enum Value {
    Null,
    Bool(bool),
    /// The number's text, already in `numeric` form.
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// 22P02 unless `text` is one JSON value.
pub fn validate(text: &str, type_name: &str) -> Result<()> {
    parse(text, type_name).map(|_| ())
}

/// `text` in jsonb's printed form.
pub fn normalize_jsonb(text: &str) -> Result<String> {
    let mut value = parse(text, "json")?;
    sort_objects(&mut value);
    let mut out = String::with_capacity(text.len());
    write(&value, &mut out);
    Ok(out)
}

fn parse(text: &str, type_name: &str) -> Result<Value> {
    let mut p = Parser { s: text.as_bytes(), i: 0, text, type_name };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.error("Expected end of input"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
    type_name: &'a str,
}

impl Parser<'_> {
    fn error(&self, detail: &str) -> TarnError {
        TarnError::new(sqlstate::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax for type {}", self.type_name))
            .with_detail(format!("{detail}, at offset {} of \"{}\".", self.i, truncate(self.text)))
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.error("Token is invalid"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(TarnError::new("54001", "stack depth limit exceeded"));
        }
        match self.s.get(self.i) {
            None => Err(self.error("The input string ended unexpectedly")),
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.eat(b'}') {
                    return Ok(Value::Object(members));
                }
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'"') {
                        return Err(self.error("Expected string"));
                    }
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(b':') {
                        return Err(self.error("Expected \":\""));
                    }
                    self.ws();
                    members.push((key, self.value(depth + 1)?));
                    self.ws();
                    if self.eat(b'}') {
                        return Ok(Value::Object(members));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("Expected \",\" or \"}\""));
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat(b']') {
                    return Ok(Value::Array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(b']') {
                        return Ok(Value::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("Expected \",\" or \"]\""));
                    }
                }
            }
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("Token is invalid")),
        }
    }

    fn string(&mut self) -> Result<String> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.s.get(self.i) {
                None => return Err(self.error("The input string ended unexpectedly")),
                Some(b'"') => break,
                Some(b'\\') => self.i += 2,
                Some(c) if *c < 0x20 => return Err(self.error("Character with value 0x00 must be escaped")),
                Some(_) => self.i += 1,
            }
        }
        self.i += 1;
        // The slice is a complete JSON string literal: serde_json decodes its escapes.
        serde_json::from_str::<String>(&self.text[start..self.i]).map_err(|_| self.error("Escape sequence is invalid"))
    }

    fn number(&mut self) -> Result<Value> {
        let start = self.i;
        self.eat(b'-');
        let digits = |p: &mut Self| {
            let from = p.i;
            while p.i < p.s.len() && p.s[p.i].is_ascii_digit() {
                p.i += 1;
            }
            p.i - from
        };
        let int_start = self.i;
        if digits(self) == 0 || (self.s[int_start] == b'0' && self.i - int_start > 1) {
            return Err(self.error("Token is invalid"));
        }
        let int_end = self.i;
        let mut frac = (0, 0);
        if self.eat(b'.') {
            let f = self.i;
            if digits(self) == 0 {
                return Err(self.error("Token is invalid"));
            }
            frac = (f, self.i);
        }
        let mut exp = 0i64;
        if self.eat(b'e') || self.eat(b'E') {
            let negative = self.eat(b'-');
            if !negative {
                self.eat(b'+');
            }
            let e = self.i;
            if digits(self) == 0 {
                return Err(self.error("Token is invalid"));
            }
            exp = self.text[e..self.i].parse::<i64>().unwrap_or(i64::MAX).min(100_000);
            if negative {
                exp = -exp;
            }
        }
        let negative = self.s[start] == b'-';
        let int = &self.text[int_start..int_end];
        let frac = &self.text[frac.0..frac.1];
        Ok(Value::Number(numeric_text(negative, int, frac, exp)))
    }
}

/// How `numeric_out` prints sign, digits and a decimal exponent.
fn numeric_text(negative: bool, int: &str, frac: &str, exp: i64) -> String {
    let digits: String = format!("{int}{frac}");
    let point = int.len() as i64 + exp; // digits before the point
    let scale = (frac.len() as i64 - exp).max(0) as usize;
    let (mut whole, mut fraction) = if point <= 0 {
        (String::new(), format!("{}{}", "0".repeat((-point) as usize), digits))
    } else if point as usize >= digits.len() {
        (format!("{digits}{}", "0".repeat(point as usize - digits.len())), String::new())
    } else {
        (digits[..point as usize].to_string(), digits[point as usize..].to_string())
    };
    whole = whole.trim_start_matches('0').to_string();
    if whole.is_empty() {
        whole.push('0');
    }
    fraction.truncate(scale);
    while fraction.len() < scale {
        fraction.push('0');
    }
    let zero = whole == "0" && fraction.bytes().all(|b| b == b'0');
    let mut out = String::new();
    if negative && !zero {
        out.push('-');
    }
    out.push_str(&whole);
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(&fraction);
    }
    out
}

fn sort_objects(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(sort_objects),
        Value::Object(members) => {
            // Last duplicate wins: a stable sort keeps input order among equal
            // keys, then keep the last of each run.
            members.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes())));
            let mut kept: Vec<(String, Value)> = Vec::with_capacity(members.len());
            for (k, val) in members.drain(..) {
                if kept.last().is_some_and(|(last, _)| *last == k) {
                    kept.pop();
                }
                kept.push((k, val));
            }
            for (_, val) in kept.iter_mut() {
                sort_objects(val);
            }
            *members = kept;
        }
        _ => {}
    }
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(n),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, val)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(k, out);
                out.push_str(": ");
                write(val, out);
            }
            out.push('}');
        }
    }
}

/// PostgreSQL's `escape_json`.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonb_prints_like_postgres() {
        // SELECT '…'::jsonb on PostgreSQL 15
        for (input, want) in [
            (r#"{"b":1,"a":[true,null,"x"],"aa":{}}"#, r#"{"a": [true, null, "x"], "b": 1, "aa": {}}"#),
            (r#"{"a":1,"a":2}"#, r#"{"a": 2}"#),
            ("[1e2, 1.50, -0, 0.5e1, 12E-3, -1.5e-1]", "[100, 1.50, 0, 5, 0.012, -0.15]"),
            (r#" "tab\there\u00e9" "#, "\"tab\\there\u{e9}\""),
            ("[]", "[]"),
            ("  null ", "null"),
            (r#"{"long key":1,"k":2,"kk":3}"#, r#"{"k": 2, "kk": 3, "long key": 1}"#),
        ] {
            assert_eq!(normalize_jsonb(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn bad_json_is_22p02() {
        for input in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "tru", "\"a\"x", "{1: 2}", "\"\u{1}\""] {
            let e = validate(input, "json").unwrap_err();
            assert_eq!(e.code, sqlstate::INVALID_TEXT_REPRESENTATION, "{input:?}");
            assert_eq!(e.message, "invalid input syntax for type json");
        }
        let deep = "[".repeat(5000);
        assert_eq!(validate(&deep, "json").unwrap_err().code, "54001");
    }
}
