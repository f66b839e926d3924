//! PostgreSQL's COPY text and CSV formats, as pure functions over bytes.
//!
//! [`RowReader`] is a push parser for `COPY … FROM STDIN`: feed it the
//! CopyData payloads as they arrive (a row may span payloads, a CSV row may
//! span lines) and take complete rows out, each as one reused [`Fields`]
//! buffer, so parsing allocates nothing per field. [`write_text_field`] and
//! [`write_csv_field`] are the `COPY … TO STDOUT` side. No I/O happens here;
//! the session feeds bytes in and sends bytes out.
//!
//! The rules are PostgreSQL's (`copyfromparse.c`, `copyto.c`): in text
//! format a field is raw text with backslash escapes, the NULL string (`\N`)
//! is compared before de-escaping, and `\.` alone on a line ends the data;
//! in CSV a field may be quoted (`""` inside quotes is a quote, newlines may
//! be quoted), an unquoted NULL string (empty by default) is NULL and a
//! quoted one is not.

use crate::error::{Result, TarnError, sqlstate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
    Binary,
}

/// `COPY … WITH (…)` options, with PostgreSQL's defaults per format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    pub format: CopyFormat,
    pub delimiter: u8,
    pub null: String,
    pub header: bool,
    pub quote: u8,
    pub escape: u8,
}

impl CopyOptions {
    pub fn new(format: CopyFormat) -> CopyOptions {
        match format {
            CopyFormat::Csv => CopyOptions { format, delimiter: b',', null: String::new(), header: false, quote: b'"', escape: b'"' },
            _ => CopyOptions { format, delimiter: b'\t', null: "\\N".into(), header: false, quote: b'"', escape: b'"' },
        }
    }
}

/// One row's fields: the text of each (de-escaped) and whether it is NULL.
/// Reused from row to row.
#[derive(Debug, Default)]
pub struct Fields {
    data: Vec<u8>,
    /// (end offset in `data`, is NULL) per field.
    ends: Vec<(usize, bool)>,
}

impl Fields {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i`: None for NULL. Valid UTF-8 (checked when the row was read).
    pub fn get(&self, i: usize) -> Option<&str> {
        let (end, null) = self.ends[i];
        if null {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1].0 };
        let bytes = &self.data[start..end];
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: `data` only ever holds a row `RowReader::next_row` checked
        // to be UTF-8 as a whole (it clears the fields when the check fails),
        // and each field is cut at a delimiter or quote byte, which are ASCII
        // and never inside a multi-byte sequence. Checking again here was
        // 5% of a COPY.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    fn end_field(&mut self, null: bool) {
        self.ends.push((self.data.len(), null));
    }
}

/// Append `data` to a parse buffer whose first `pos` bytes are consumed,
/// dropping them first once they are half the buffer (so memory stays
/// bounded by the unparsed tail, however long the stream).
pub(crate) fn append_consumed_first(buf: &mut Vec<u8>, pos: &mut usize, data: &[u8]) {
    if *pos > 0 && *pos >= buf.len() / 2 {
        buf.drain(..*pos);
        *pos = 0;
    }
    buf.extend_from_slice(data);
}

/// Splits a COPY FROM data stream into rows.
pub struct RowReader {
    opts: CopyOptions,
    buf: Vec<u8>,
    /// Start of the first byte not yet consumed in `buf`.
    pos: usize,
    /// Lines consumed so far (1-based line of the next row is `line + 1`).
    line: u64,
    /// The line the last returned row started on.
    row_line: u64,
    header_pending: bool,
    /// `\.` seen: everything after it is ignored.
    ended: bool,
    /// `buf[..utf8_checked]` is known to be UTF-8 (checked a whole
    /// payload at a time, which is cheaper than row by row).
    utf8_checked: usize,
}

impl RowReader {
    pub fn new(opts: CopyOptions) -> RowReader {
        let header_pending = opts.header;
        RowReader { opts, buf: Vec::new(), pos: 0, line: 0, row_line: 0, header_pending, ended: false, utf8_checked: 0 }
    }

    /// The line number (1-based) the last row returned started on, for
    /// error context.
    pub fn line(&self) -> u64 {
        self.row_line
    }

    /// Append data from one CopyData message.
    pub fn push(&mut self, data: &[u8]) {
        if self.ended {
            return;
        }
        let consumed = self.pos;
        append_consumed_first(&mut self.buf, &mut self.pos, data);
        if self.pos == 0 {
            // The consumed bytes were dropped (they end at a row boundary).
            self.utf8_checked = self.utf8_checked.saturating_sub(consumed);
        }
        let from = self.utf8_checked.max(self.pos);
        // Up to the first invalid or incomplete sequence: a character split
        // between payloads is checked with the next one, and a row with a
        // bad byte is checked (and reported) on its own in `next_row`.
        self.utf8_checked = from + match std::str::from_utf8(&self.buf[from..]) {
            Ok(_) => self.buf.len() - from,
            Err(e) => e.valid_up_to(),
        };
    }

    /// The next complete row into `fields`: Ok(false) when more data is
    /// needed (or the data ended). `at_end`: no more data will come, so a
    /// last line without a newline is a row.
    pub fn next_row(&mut self, fields: &mut Fields, at_end: bool) -> Result<bool> {
        loop {
            if self.ended || self.pos >= self.buf.len() {
                return Ok(false);
            }
            let Some((record_end, next, lines)) = self.find_record_end(at_end)? else { return Ok(false) };
            let start = self.pos;
            self.row_line = self.line + 1;
            self.line += lines.max(1);
            self.pos = next;
            let mut record = &self.buf[start..record_end];
            if record.last() == Some(&b'\r') {
                record = &record[..record.len() - 1];
            }
            if record == b"\\." {
                self.ended = true;
                return Ok(false);
            }
            if self.header_pending {
                self.header_pending = false;
                continue;
            }
            fields.clear();
            match self.opts.format {
                CopyFormat::Csv => split_csv(record, &self.opts, fields),
                _ => split_text(record, &self.opts, fields)?,
            }
            // Text-format escapes can make any byte; CSV fields are cut
            // from input already checked, unless this row is past that.
            let checked = self.opts.format == CopyFormat::Csv && record_end <= self.utf8_checked;
            if !checked && std::str::from_utf8(&fields.data).is_err() {
                fields.clear();
                return Err(TarnError::new(sqlstate::CHARACTER_NOT_IN_REPERTOIRE, "invalid byte sequence for encoding \"UTF8\""));
            }
            return Ok(true);
        }
    }

    /// Where the record starting at `pos` ends (exclusive, before its
    /// newline), where the next one starts, and the lines it spans; None if
    /// incomplete.
    fn find_record_end(&self, at_end: bool) -> Result<Option<(usize, usize, u64)>> {
        let rest = &self.buf[self.pos..];
        if self.opts.format != CopyFormat::Csv {
            return Ok(match memchr::memchr(b'\n', rest) {
                Some(i) => Some((self.pos + i, self.pos + i + 1, 1)),
                None if at_end => Some((self.buf.len(), self.buf.len(), 1)),
                None => None,
            });
        }
        // CSV: a newline inside quotes is data.
        let (quote, escape) = (self.opts.quote, self.opts.escape);
        let mut in_quotes = false;
        // Newlines inside quotes: the record spans more lines.
        let mut quoted_newlines = 0;
        let mut i = 0;
        while i < rest.len() {
            if !in_quotes {
                // Outside quotes only a quote or the newline matters.
                match memchr::memchr2(quote, b'\n', &rest[i..]) {
                    Some(at) if rest[i + at] == b'\n' => {
                        return Ok(Some((self.pos + i + at, self.pos + i + at + 1, 1 + quoted_newlines)));
                    }
                    Some(at) => {
                        in_quotes = true;
                        i += at + 1;
                        continue;
                    }
                    None => break,
                }
            }
            let Some(at) = memchr::memchr3(quote, escape, b'\n', &rest[i..]) else { break };
            i += at;
            if rest[i] == b'\n' {
                quoted_newlines += 1;
                i += 1;
                continue;
            }
            if rest[i] == escape && escape != quote && rest.get(i + 1).is_some_and(|&n| n == quote || n == escape) {
                i += 2;
                continue;
            }
            if rest[i] == quote {
                in_quotes = false;
            }
            i += 1;
        }
        if !at_end {
            return Ok(None);
        }
        if in_quotes {
            return Err(TarnError::new(sqlstate::BAD_COPY_FILE_FORMAT, "unterminated CSV quoted field"));
        }
        Ok(Some((self.buf.len(), self.buf.len(), quoted_newlines.max(1))))
    }
}

/// Text format: split on the delimiter (a backslash escapes it), compare
/// each raw field with the NULL string, de-escape the rest.
fn split_text(record: &[u8], opts: &CopyOptions, fields: &mut Fields) -> Result<()> {
    let null = opts.null.as_bytes();
    let mut start = 0;
    let mut i = 0;
    loop {
        if i == record.len() || record[i] == opts.delimiter {
            let raw = &record[start..i];
            if raw == null {
                fields.end_field(true);
            } else {
                unescape_text(raw, &mut fields.data);
                fields.end_field(false);
            }
            if i == record.len() {
                return Ok(());
            }
            i += 1;
            start = i;
        } else if record[i] == b'\\' {
            i = (i + 2).min(record.len());
        } else {
            i += 1;
        }
    }
}

/// Backslash escapes of the text format: `\b \f \n \r \t \v`, octal `\123`,
/// hex `\x7f`; any other escaped character stands for itself.
fn unescape_text(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 == raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (c - b'0') as u32;
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
}

/// CSV: quoted sections may hold delimiters, newlines and (escaped)
/// quotes; an unquoted field equal to the NULL string is NULL.
fn split_csv(record: &[u8], opts: &CopyOptions, fields: &mut Fields) {
    let null = opts.null.as_bytes();
    let (quote, escape, delimiter) = (opts.quote, opts.escape, opts.delimiter);
    let mut i = 0;
    loop {
        let start_len = fields.data.len();
        let mut quoted = false;
        let raw_start = i;
        let mut in_quotes = false;
        while i < record.len() {
            if !in_quotes {
                // Copy plain bytes up to the next delimiter or quote at once.
                let at = memchr::memchr2(delimiter, quote, &record[i..]).unwrap_or(record.len() - i);
                fields.data.extend_from_slice(&record[i..i + at]);
                i += at;
                if i == record.len() || record[i] == delimiter {
                    break;
                }
            }
            let b = record[i];
            if in_quotes {
                if b == escape && record.get(i + 1).is_some_and(|&n| n == quote || (n == escape && escape != quote)) {
                    fields.data.push(record[i + 1]);
                    i += 2;
                    continue;
                }
                if b == quote {
                    in_quotes = false;
                } else {
                    fields.data.push(b);
                }
            } else if b == quote {
                in_quotes = true;
                quoted = true;
            } else if b == delimiter {
                break;
            } else {
                fields.data.push(b);
            }
            i += 1;
        }
        let is_null = !quoted && &record[raw_start..i] == null;
        if is_null {
            fields.data.truncate(start_len);
        }
        fields.end_field(is_null);
        if i >= record.len() {
            return;
        }
        i += 1; // the delimiter
    }
}

/// One field of `COPY … TO` in text format: backslash, delimiter, newline,
/// carriage return and tab escaped, as PostgreSQL writes them.
pub fn write_text_field(out: &mut Vec<u8>, value: &[u8], delimiter: u8) {
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' if delimiter == b'\t' => out.extend_from_slice(b"\\t"),
            8 => out.extend_from_slice(b"\\b"),
            12 => out.extend_from_slice(b"\\f"),
            11 => out.extend_from_slice(b"\\v"),
            b if b == delimiter => {
                out.push(b'\\');
                out.push(b);
            }
            b => out.push(b),
        }
    }
}

/// One field of `COPY … TO` in CSV: quoted when it holds the delimiter, a
/// quote, a newline, or would read back as NULL (PostgreSQL's rule).
pub fn write_csv_field(out: &mut Vec<u8>, value: &[u8], opts: &CopyOptions) {
    let needs_quotes = value == opts.null.as_bytes()
        || value == b"\\."
        || value.iter().any(|&b| b == opts.delimiter || b == opts.quote || b == b'\n' || b == b'\r');
    if !needs_quotes {
        out.extend_from_slice(value);
        return;
    }
    out.push(opts.quote);
    for &b in value {
        if b == opts.quote || b == opts.escape {
            out.push(opts.escape);
        }
        out.push(b);
    }
    out.push(opts.quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(opts: CopyOptions, chunks: &[&[u8]]) -> Result<Vec<Vec<Option<String>>>> {
        let mut reader = RowReader::new(opts);
        let mut fields = Fields::default();
        let mut out = vec![];
        for chunk in chunks {
            reader.push(chunk);
            while reader.next_row(&mut fields, false)? {
                out.push((0..fields.len()).map(|i| fields.get(i).map(str::to_string)).collect());
            }
        }
        while reader.next_row(&mut fields, true)? {
            out.push((0..fields.len()).map(|i| fields.get(i).map(str::to_string)).collect());
        }
        Ok(out)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn text_rows_split_on_tabs_across_chunks() {
        let text = CopyOptions::new(CopyFormat::Text);
        let got = rows(text, &[b"1\tal", b"ice\n2\t\\N\n3\t", b"tab\\there\\\\x\\.y\n\\.\nignored\n"]).unwrap();
        assert_eq!(got, vec![vec![s("1"), s("alice")], vec![s("2"), None], vec![s("3"), s("tab\there\\x.y")]]);
    }

    #[test]
    fn text_escapes_are_postgres_escapes() {
        let text = CopyOptions::new(CopyFormat::Text);
        let got = rows(text, &[b"a\\nb\\rc\\101\\x41\\q\\\ttail\r\n"]).unwrap();
        assert_eq!(got, vec![vec![s("a\nb\rcAAq\ttail")]]);
        // A last line without a newline is a row; an escaped delimiter is data.
        let mut opts = CopyOptions::new(CopyFormat::Text);
        opts.delimiter = b'|';
        assert_eq!(rows(opts, &[b"a\\|b|c"]).unwrap(), vec![vec![s("a|b"), s("c")]]);
        // The NULL string is matched before de-escaping.
        let mut opts = CopyOptions::new(CopyFormat::Text);
        opts.null = "NULL".into();
        assert_eq!(rows(opts, &[b"NULL\t\\N\t\n"]).unwrap(), vec![vec![None, s("N"), s("")]]);
    }

    #[test]
    fn csv_quotes_hold_delimiters_newlines_and_quotes() {
        let mut csv = CopyOptions::new(CopyFormat::Csv);
        csv.header = true;
        let got = rows(csv, &[b"id,name,note\n1,\"a, \"\"b\"\"\",\n2,\"multi\nline\",\"\"\n3,x,", b"y\r\n"]).unwrap();
        assert_eq!(
            got,
            vec![vec![s("1"), s("a, \"b\""), None], vec![s("2"), s("multi\nline"), s("")], vec![s("3"), s("x"), s("y")]]
        );
        let mut csv = CopyOptions::new(CopyFormat::Csv);
        csv.escape = b'\\';
        assert_eq!(rows(csv, &[b"\"a\\\"b\",c\n"]).unwrap(), vec![vec![s("a\"b"), s("c")]]);
        let unterminated = rows(CopyOptions::new(CopyFormat::Csv), &[b"1,\"open\n"]).unwrap_err();
        assert_eq!(unterminated.code, sqlstate::BAD_COPY_FILE_FORMAT);
    }

    #[test]
    fn invalid_utf8_is_22021() {
        assert_eq!(rows(CopyOptions::new(CopyFormat::Text), &[b"\xff\n"]).unwrap_err().code, sqlstate::CHARACTER_NOT_IN_REPERTOIRE);
    }

    #[test]
    fn line_numbers_count_quoted_newlines() {
        let mut reader = RowReader::new(CopyOptions::new(CopyFormat::Csv));
        let mut fields = Fields::default();
        reader.push(b"1,\"a\nb\"\n2,c\n");
        assert!(reader.next_row(&mut fields, false).unwrap());
        assert_eq!(reader.line(), 1);
        assert!(reader.next_row(&mut fields, false).unwrap());
        assert_eq!(reader.line(), 3);
    }

    #[test]
    fn written_fields_read_back() {
        let text = CopyOptions::new(CopyFormat::Text);
        let csv = CopyOptions::new(CopyFormat::Csv);
        for value in ["plain", "tab\there", "new\nline", "back\\slash", "", "\\.", "quote\"d, comma", "\\N"] {
            let mut line = vec![];
            write_text_field(&mut line, value.as_bytes(), b'\t');
            line.push(b'\n');
            assert_eq!(rows(text.clone(), &[&line]).unwrap(), vec![vec![s(value)]], "text {value:?}");
            let mut line = vec![];
            write_csv_field(&mut line, value.as_bytes(), &csv);
            line.push(b'\n');
            assert_eq!(rows(csv.clone(), &[&line]).unwrap(), vec![vec![s(value)]], "csv {value:?}");
        }
    }
}
