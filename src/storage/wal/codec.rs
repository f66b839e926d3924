//! WAL record framing: a pure codec over bytes.
//!
//! ```text
//! record := len: u32 BE   -- length of `body`
//!           crc: u32 BE   -- CRC-32C of `body`
//!           body := lsn: u64 BE, kind: u8, payload
//! ```
//! A record whose length runs past the end of the data, or whose checksum does
//! not match, marks a torn tail: everything from there on is discarded.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

use crate::error::{Result, TarnError};

const HEADER: usize = 8;
const BODY_FIXED: usize = 9;
/// Refuse absurd lengths rather than allocate them (a torn length field).
/// The writer refuses to write anything this large, so a valid log never
/// contains one.
pub const MAX_RECORD: usize = 1 << 31;

/// What a WAL record says happened.
#[derive(Debug, Clone, PartialEq)]
pub enum WalEntry {
    /// Rows appended to a table by one statement (Arrow IPC stream payload).
    Insert { table_id: u64, batches: Vec<RecordBatch> },
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRecord {
    pub lsn: u64,
    pub entry: WalEntry,
}

const KIND_INSERT: u8 = 1;

/// Encode an entry's payload (without framing); the writer assigns the LSN.
pub fn encode_entry(entry: &WalEntry) -> Result<(u8, Vec<u8>)> {
    match entry {
        WalEntry::Insert { table_id, batches } => {
            let mut payload = table_id.to_be_bytes().to_vec();
            let schema = batches.first().map(|b| b.schema()).unwrap_or_else(|| Arc::new(Schema::empty()));
            let mut w = StreamWriter::try_new(&mut payload, &schema)?;
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            drop(w);
            Ok((KIND_INSERT, payload))
        }
    }
}

/// Whether a payload fits in one record.
pub fn fits(payload_len: usize) -> bool {
    BODY_FIXED + payload_len < MAX_RECORD
}

/// Frame one record with its LSN, appending to `out`.
pub fn frame(out: &mut Vec<u8>, lsn: u64, kind: u8, payload: &[u8]) {
    let body_len = BODY_FIXED + payload.len();
    let mut crc = crc32c::crc32c(&lsn.to_be_bytes());
    crc = crc32c::crc32c_append(crc, &[kind]);
    crc = crc32c::crc32c_append(crc, payload);
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&lsn.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

/// Result of scanning a WAL segment.
#[derive(Debug)]
pub struct Scan {
    pub records: Vec<WalRecord>,
    /// Bytes of `data` that hold whole, valid records.
    pub valid_len: usize,
    /// True if bytes after `valid_len` were discarded as a torn tail.
    pub torn: bool,
}

/// Decode every whole, checksummed record in `data`, stopping at a torn tail.
pub fn scan(data: &[u8]) -> Result<Scan> {
    let mut pos = 0;
    let mut records = vec![];
    while pos < data.len() {
        let Some(header) = data.get(pos..pos + HEADER) else { break };
        let len = u32::from_be_bytes(header[..4].try_into().unwrap()) as usize;
        let crc = u32::from_be_bytes(header[4..8].try_into().unwrap());
        if !(BODY_FIXED..MAX_RECORD).contains(&len) {
            break;
        }
        let Some(body) = data.get(pos + HEADER..pos + HEADER + len) else { break };
        if crc32c::crc32c(body) != crc {
            break;
        }
        let lsn = u64::from_be_bytes(body[..8].try_into().unwrap());
        let entry = decode_entry(body[8], &body[BODY_FIXED..])?;
        records.push(WalRecord { lsn, entry });
        pos += HEADER + len;
    }
    Ok(Scan { records, valid_len: pos, torn: pos < data.len() })
}

fn decode_entry(kind: u8, payload: &[u8]) -> Result<WalEntry> {
    match kind {
        KIND_INSERT => {
            let table_id = u64::from_be_bytes(
                payload.get(..8).ok_or_else(|| TarnError::internal("WAL insert record too short"))?.try_into().unwrap(),
            );
            let reader = StreamReader::try_new(Cursor::new(&payload[8..]), None)?;
            let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(WalEntry::Insert { table_id, batches })
        }
        other => Err(TarnError::internal(format!("WAL record of unknown kind {other}: written by a newer Tarn?"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(vec![n, n + 1])), Arc::new(StringArray::from(vec![Some("a"), None]))],
        )
        .unwrap()
    }

    fn encoded(lsns: &[u64]) -> Vec<u8> {
        let mut out = vec![];
        for &lsn in lsns {
            let (kind, payload) = encode_entry(&WalEntry::Insert { table_id: 7, batches: vec![batch(lsn as i64)] }).unwrap();
            frame(&mut out, lsn, kind, &payload);
        }
        out
    }

    #[test]
    fn round_trips_records() {
        let data = encoded(&[1, 2, 3]);
        let s = scan(&data).unwrap();
        assert!(!s.torn);
        assert_eq!(s.valid_len, data.len());
        assert_eq!(s.records.len(), 3);
        assert_eq!(s.records[2].lsn, 3);
        assert_eq!(s.records[1].entry, WalEntry::Insert { table_id: 7, batches: vec![batch(2)] });
    }

    #[test]
    fn every_truncation_point_is_a_clean_torn_tail() {
        let data = encoded(&[1, 2]);
        let first_len = encoded(&[1]).len();
        for cut in 0..data.len() {
            let s = scan(&data[..cut]).unwrap();
            let expect = if cut >= first_len { 1 } else { 0 };
            assert_eq!(s.records.len(), expect, "cut at {cut}");
            assert_eq!(s.torn, cut != 0 && cut != first_len);
        }
    }

    #[test]
    fn a_flipped_bit_ends_the_log_there() {
        let mut data = encoded(&[1, 2]);
        let n = data.len();
        data[n - 3] ^= 0x40;
        let s = scan(&data).unwrap();
        assert_eq!(s.records.len(), 1);
        assert!(s.torn);
    }

    #[test]
    fn garbage_never_panics() {
        for seed in 0..200u32 {
            let data: Vec<u8> = (0..seed * 7).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
            let _ = scan(&data);
        }
    }
}
