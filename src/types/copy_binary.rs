//! COPY's binary format, sans-IO: the file header and trailer, tuples out,
//! and a push parser for tuples in. Field values are PostgreSQL's binary
//! send/recv forms, the same bytes as binary parameters and results, so the
//! value codecs are `encode`'s and `decode`'s.
//!
//! Layout: the 11-byte signature `PGCOPY\n\377\r\n\0`, a 32-bit flags word,
//! a 32-bit header-extension length and that many bytes; then per tuple a
//! 16-bit field count and per field a 32-bit length (-1: NULL) and the bytes;
//! then the trailer, a field count of -1.

use crate::error::{Result, TarnError, sqlstate};

pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// The trailer: a tuple with field count -1.
pub const TRAILER: [u8; 2] = [0xff, 0xff];

/// The file header (no OIDs, no extension).
pub fn header() -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    out
}

/// Append one tuple: `cells` are already framed (length prefix, -1 for NULL),
/// as `encode::EncodedColumn::cell` gives them.
pub fn write_tuple<'a>(out: &mut Vec<u8>, cells: impl ExactSizeIterator<Item = &'a [u8]>) {
    out.extend_from_slice(&(cells.len() as i16).to_be_bytes());
    for c in cells {
        out.extend_from_slice(c);
    }
}

fn malformed(what: &str) -> TarnError {
    TarnError::new(sqlstate::BAD_COPY_FILE_FORMAT, format!("invalid COPY file format: {what}"))
}

/// One tuple's fields: byte ranges into the reader's buffer (None: NULL).
#[derive(Debug, Default)]
pub struct BinaryFields {
    data: Vec<u8>,
    fields: Vec<Option<(usize, usize)>>,
}

impl BinaryFields {
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.fields[i].map(|(s, e)| &self.data[s..e])
    }
}

/// Splits a binary COPY FROM stream into tuples.
#[derive(Debug, Default)]
pub struct BinaryRowReader {
    buf: Vec<u8>,
    pos: usize,
    header_done: bool,
    ended: bool,
    /// Tuples returned so far (the 1-based "line" of the last is this).
    tuples: u64,
}

impl BinaryRowReader {
    pub fn new() -> BinaryRowReader {
        BinaryRowReader::default()
    }

    /// The 1-based number of the last tuple returned (COPY's "line").
    pub fn line(&self) -> u64 {
        self.tuples
    }

    pub fn push(&mut self, data: &[u8]) {
        if !self.ended {
            super::copy::append_consumed_first(&mut self.buf, &mut self.pos, data);
        }
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// The next tuple into `fields`: Ok(false) when more data is needed or the
    /// trailer was read. `at_end`: no more data will come, so a partial tuple
    /// or a missing header is an error.
    pub fn next_row(&mut self, fields: &mut BinaryFields, at_end: bool) -> Result<bool> {
        if self.ended {
            return Ok(false);
        }
        if !self.header_done {
            let avail = self.available();
            if avail.len() < 19 {
                if at_end {
                    return Err(malformed(if avail.is_empty() { "missing header" } else { "truncated header" }));
                }
                return Ok(false);
            }
            if &avail[..11] != SIGNATURE {
                return Err(malformed("COPY file signature not recognized"));
            }
            let flags = i32::from_be_bytes(avail[11..15].try_into().expect("4 bytes"));
            if flags & (1 << 16) != 0 {
                return Err(malformed("COPY files with OIDs are not supported"));
            }
            let ext = i32::from_be_bytes(avail[15..19].try_into().expect("4 bytes"));
            if ext < 0 {
                return Err(malformed("invalid header extension length"));
            }
            if avail.len() < 19 + ext as usize {
                return if at_end { Err(malformed("truncated header")) } else { Ok(false) };
            }
            self.pos += 19 + ext as usize;
            self.header_done = true;
        }
        let avail = self.available();
        if avail.len() < 2 {
            if at_end && !avail.is_empty() {
                return Err(malformed("truncated tuple"));
            }
            if at_end {
                return Err(malformed("missing trailer"));
            }
            return Ok(false);
        }
        let count = i16::from_be_bytes([avail[0], avail[1]]);
        if count == -1 {
            self.ended = true;
            self.pos += 2;
            return Ok(false);
        }
        if count < 0 {
            return Err(malformed("invalid field count"));
        }
        // Find the whole tuple before taking any of it.
        let mut at = 2usize;
        let mut ranges = Vec::with_capacity(count as usize);
        for _ in 0..count {
            if avail.len() < at + 4 {
                return if at_end { Err(malformed("truncated tuple")) } else { Ok(false) };
            }
            let len = i32::from_be_bytes(avail[at..at + 4].try_into().expect("4 bytes"));
            at += 4;
            if len == -1 {
                ranges.push(None);
                continue;
            }
            if len < 0 {
                return Err(malformed("invalid field length"));
            }
            let len = len as usize;
            if avail.len() < at + len {
                return if at_end { Err(malformed("truncated tuple")) } else { Ok(false) };
            }
            ranges.push(Some((at, at + len)));
            at += len;
        }
        fields.data.clear();
        fields.data.extend_from_slice(&avail[..at]);
        fields.fields = ranges;
        self.pos += at;
        self.tuples += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(v: Option<&[u8]>) -> Vec<u8> {
        match v {
            None => (-1i32).to_be_bytes().to_vec(),
            Some(b) => {
                let mut out = (b.len() as i32).to_be_bytes().to_vec();
                out.extend_from_slice(b);
                out
            }
        }
    }

    fn file(tuples: &[Vec<Option<&[u8]>>]) -> Vec<u8> {
        let mut out = header();
        for t in tuples {
            let cells: Vec<Vec<u8>> = t.iter().map(|v| cell(*v)).collect();
            write_tuple(&mut out, cells.iter().map(|c| c.as_slice()));
        }
        out.extend_from_slice(&TRAILER);
        out
    }

    #[test]
    fn round_trips_in_any_chunking() {
        let data = file(&[vec![Some(&[0, 0, 0, 1]), None], vec![Some(b"abc"), Some(b"")]]);
        for chunk in [1, 3, 7, data.len()] {
            let mut r = BinaryRowReader::new();
            let mut f = BinaryFields::default();
            let mut got = vec![];
            for piece in data.chunks(chunk) {
                r.push(piece);
                while r.next_row(&mut f, false).unwrap() {
                    got.push((0..f.len()).map(|i| f.get(i).map(|b| b.to_vec())).collect::<Vec<_>>());
                }
            }
            assert!(!r.next_row(&mut f, true).unwrap());
            assert_eq!(got, vec![vec![Some(vec![0, 0, 0, 1]), None], vec![Some(b"abc".to_vec()), Some(vec![])]], "chunk {chunk}");
        }
    }

    #[test]
    fn bad_signature_truncation_and_missing_trailer_are_errors() {
        let mut f = BinaryFields::default();
        let mut r = BinaryRowReader::new();
        r.push(b"PGCOPX\n\xff\r\n\0\0\0\0\0\0\0\0\0");
        assert_eq!(r.next_row(&mut f, false).unwrap_err().code, sqlstate::BAD_COPY_FILE_FORMAT);

        let data = file(&[vec![Some(b"abc")]]);
        let mut r = BinaryRowReader::new();
        r.push(&data[..data.len() - 4]);
        assert!(r.next_row(&mut f, true).is_err());

        let mut r = BinaryRowReader::new();
        r.push(&data[..data.len() - 2]);
        assert!(r.next_row(&mut f, true).unwrap());
        assert!(r.next_row(&mut f, true).is_err(), "no trailer");
    }
}
