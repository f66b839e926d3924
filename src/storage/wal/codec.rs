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
use arrow::datatypes::{DataType, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

use super::flat;
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
    /// One committed transaction: its changes to every table it wrote,
    /// applied all together or not at all (brief invariant 2).
    Commit { changes: Vec<TableChange> },
}

/// One transaction's changes to one table, applied in this order:
/// truncate (drop every row visible before), delete rows by row id, insert.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableChange {
    pub table_id: u64,
    pub truncate: bool,
    /// Row ids (`_tarn_rowid`) of rows deleted or replaced by an update.
    pub deletes: Vec<u64>,
    /// New rows in the table's storage schema (user columns + row id).
    pub inserts: Vec<RecordBatch>,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRecord {
    pub lsn: u64,
    pub entry: WalEntry,
}

/// A commit whose inserted rows are an Arrow IPC stream per change (logs
/// written before `KIND_COMMIT_FLAT`; still read).
const KIND_COMMIT: u8 = 2;
/// A commit whose changes say how their rows are written.
const KIND_COMMIT_FLAT: u8 = 3;

/// How a change's inserted rows are written.
const ROWS_IPC: u8 = 0;
const ROWS_FLAT: u8 = 1;

/// Encode an entry's payload (without framing); the writer assigns the LSN.
///
/// ```text
/// commit := n: u32, change*n
/// change := table_id: u64, truncate: u8, ndel: u64, rowid: u64 * ndel,
///           rows_format: u8 (KIND_COMMIT_FLAT only), rows_len: u64, rows
/// rows   := an Arrow IPC stream of the inserted rows (may be empty), or
///           them written flat (`flat`)
/// ```
pub fn encode_entry(entry: &WalEntry) -> Result<(u8, Vec<u8>)> {
    match entry {
        WalEntry::Commit { changes } => {
            let mut out = (changes.len() as u32).to_be_bytes().to_vec();
            for c in changes {
                out.extend_from_slice(&c.table_id.to_be_bytes());
                out.push(c.truncate as u8);
                out.extend_from_slice(&(c.deletes.len() as u64).to_be_bytes());
                for d in &c.deletes {
                    out.extend_from_slice(&d.to_be_bytes());
                }
                let flat = !c.inserts.is_empty() && flat::writable(&c.inserts);
                out.push(if flat { ROWS_FLAT } else { ROWS_IPC });
                let len_at = out.len();
                out.extend_from_slice(&0u64.to_be_bytes());
                if flat {
                    with_schema_message(&c.inserts[0].schema(), |message| flat::encode(&c.inserts, message, &mut out))?;
                } else {
                    ipc_stream(&c.inserts, &mut out)?;
                }
                let rows_len = (out.len() - len_at - 8) as u64;
                out[len_at..len_at + 8].copy_from_slice(&rows_len.to_be_bytes());
            }
            Ok((KIND_COMMIT_FLAT, out))
        }
    }
}

/// How the log writes Arrow IPC: buffers aligned to 8 bytes, the least
/// the format allows. Arrow's default of 64 padded each buffer of a
/// single-row commit to 64 bytes, most of a ~1 KB record; readers take
/// any alignment (they copy a buffer they need aligned), so records
/// written either way read back alike.
fn ipc_options() -> arrow::ipc::writer::IpcWriteOptions {
    arrow::ipc::writer::IpcWriteOptions::try_new(8, false, arrow::ipc::MetadataVersion::V5).expect("8 is a valid IPC alignment")
}

/// Append `batches` as an Arrow IPC stream to `out`, byte for byte what
/// `StreamWriter` writes with [`ipc_options`] (nothing for no batches).
/// Schemas with dictionary fields, whose messages depend on a tracker's
/// state, take `StreamWriter` itself.
fn ipc_stream(batches: &[RecordBatch], out: &mut Vec<u8>) -> Result<()> {
    use arrow::ipc::writer::{CompressionContext, DictionaryTracker, IpcDataGenerator, write_message};
    let Some(first) = batches.first() else { return Ok(()) };
    let schema = first.schema();
    let options = ipc_options();
    if has_dictionary_field(&schema) {
        let mut w = StreamWriter::try_new_with_options(&mut *out, &schema, options)?;
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
        return Ok(());
    }
    with_schema_message(&schema, |message| out.extend_from_slice(message))?;
    let generator = IpcDataGenerator::default();
    let mut tracker = DictionaryTracker::new(false);
    let mut compression = CompressionContext::default();
    for b in batches {
        let (_, message) = generator.encode(b, &mut tracker, &options, &mut compression)?;
        write_message(&mut *out, message, &options)?;
    }
    // The end-of-stream marker: continuation, then a zero length.
    out.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    Ok(())
}

/// Call `f` with `schema`'s IPC schema message (no dictionary fields), as
/// a stream writer writes it with [`ipc_options`]. It is encoded once per
/// schema and thread and copied after: for a single-row commit, encoding
/// it (flatbuffers for every field) cost more than the row.
fn with_schema_message<T>(schema: &SchemaRef, f: impl FnOnce(&[u8]) -> T) -> Result<T> {
    use arrow::ipc::writer::{DictionaryTracker, IpcDataGenerator, write_message};
    use std::cell::RefCell;
    thread_local! {
        static SCHEMA_MESSAGE: RefCell<Option<(SchemaRef, Vec<u8>)>> = const { RefCell::new(None) };
    }
    SCHEMA_MESSAGE.with_borrow_mut(|cached| {
        let message = match cached {
            Some((s, bytes)) if Arc::ptr_eq(s, schema) || **s == **schema => bytes,
            _ => {
                let options = ipc_options();
                let mut tracker = DictionaryTracker::new(false);
                let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(schema, &mut tracker, &options);
                let mut bytes = vec![];
                write_message(&mut bytes, encoded, &options)?;
                &mut cached.insert((schema.clone(), bytes)).1
            }
        };
        Ok(f(message))
    })
}

fn has_dictionary_field(schema: &SchemaRef) -> bool {
    schema.fields().iter().any(|f| has_dictionary(f.data_type()))
}

fn has_dictionary(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(..) => true,
        DataType::Struct(fields) => fields.iter().any(|f| has_dictionary(f.data_type())),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::Map(f, _) => has_dictionary(f.data_type()),
        _ => false,
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
    /// True if bytes after `valid_len`, not all zero, were discarded as a
    /// torn tail.
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
    // Zeros after the last record are space the writer reserved ahead
    // (or a write that never reached the disk): the log's clean end.
    let torn = data[pos..].iter().any(|&b| b != 0);
    Ok(Scan { records, valid_len: pos, torn })
}

/// Reads big-endian fields off a payload, failing cleanly when it is short.
pub(super) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| TarnError::internal("WAL record payload is shorter than its fields say"))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(super) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    pub(super) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos == self.data.len()
    }
}

fn decode_entry(kind: u8, payload: &[u8]) -> Result<WalEntry> {
    if kind != KIND_COMMIT && kind != KIND_COMMIT_FLAT {
        return Err(TarnError::internal(format!("WAL record of unknown kind {kind}: written by a newer Tarn?")));
    }
    let mut r = Reader::new(payload);
    let n = r.u32()? as usize;
    let mut changes = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let table_id = r.u64()?;
        let truncate = r.take(1)?[0] != 0;
        let ndel = r.u64()? as usize;
        let bytes = r.take(ndel.checked_mul(8).ok_or_else(|| TarnError::internal("WAL delete count overflows"))?)?;
        let deletes = bytes.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().unwrap())).collect();
        let format = if kind == KIND_COMMIT_FLAT { r.take(1)?[0] } else { ROWS_IPC };
        let rows_len = r.u64()? as usize;
        let rows = r.take(rows_len)?;
        let inserts = match format {
            _ if rows.is_empty() => vec![],
            ROWS_IPC => StreamReader::try_new(Cursor::new(rows), None)?.collect::<std::result::Result<Vec<_>, _>>()?,
            ROWS_FLAT => flat::decode(rows)?,
            other => return Err(TarnError::internal(format!("WAL change with rows in unknown format {other}"))),
        };
        changes.push(TableChange { table_id, truncate, deletes, inserts });
    }
    Ok(WalEntry::Commit { changes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(vec![n, n + 1])), Arc::new(StringArray::from(vec![Some("a"), None]))],
        )
        .unwrap()
    }

    fn commit(n: i64) -> WalEntry {
        WalEntry::Commit {
            changes: vec![
                TableChange { table_id: 7, truncate: false, deletes: vec![3, 9], inserts: vec![batch(n)] },
                TableChange { table_id: 8, truncate: true, deletes: vec![], inserts: vec![] },
            ],
        }
    }

    fn encoded(lsns: &[u64]) -> Vec<u8> {
        let mut out = vec![];
        for &lsn in lsns {
            let (kind, payload) = encode_entry(&commit(lsn as i64)).unwrap();
            frame(&mut out, lsn, kind, &payload);
        }
        out
    }

    fn ipc(batches: &[RecordBatch]) -> Vec<u8> {
        let mut out = vec![];
        ipc_stream(batches, &mut out).unwrap();
        out
    }

    #[test]
    fn ipc_bytes_are_stream_writers() {
        let streamed = |batches: &[RecordBatch]| {
            let mut out = vec![];
            let mut w = StreamWriter::try_new_with_options(&mut out, &batches[0].schema(), ipc_options()).unwrap();
            for b in batches {
                w.write(b).unwrap();
            }
            w.finish().unwrap();
            out
        };
        // Twice: the second time the schema message comes from the cache.
        for _ in 0..2 {
            assert_eq!(ipc(&[batch(3), batch(1)]), streamed(&[batch(3), batch(1)]));
        }
        let other = RecordBatch::try_from_iter([("s", Arc::new(arrow::array::StringArray::from(vec!["x"])) as _)]).unwrap();
        assert_eq!(ipc(std::slice::from_ref(&other)), streamed(std::slice::from_ref(&other)));
        assert!(ipc(&[]).is_empty());
    }

    #[test]
    fn rows_are_written_flat_unless_an_array_is_nested() {
        let (kind, flat) = encode_entry(&commit(4)).unwrap();
        assert_eq!(kind, KIND_COMMIT_FLAT);
        assert_eq!(decode_entry(kind, &flat).unwrap(), commit(4));
        // The same commit with its rows as an IPC stream: bigger.
        let mut as_ipc = 1u32.to_be_bytes().to_vec();
        as_ipc.extend_from_slice(&7u64.to_be_bytes());
        as_ipc.push(0);
        as_ipc.extend_from_slice(&0u64.to_be_bytes());
        as_ipc.push(ROWS_IPC);
        let rows = ipc(&[batch(4)]);
        as_ipc.extend_from_slice(&(rows.len() as u64).to_be_bytes());
        as_ipc.extend_from_slice(&rows);
        let WalEntry::Commit { changes } = decode_entry(KIND_COMMIT_FLAT, &as_ipc).unwrap();
        assert_eq!(changes[0].inserts, vec![batch(4)]);
        assert!(flat.len() < as_ipc.len(), "{} >= {}", flat.len(), as_ipc.len());
        // Nested rows take the IPC stream, sliced ones are written flat;
        // both read back alike.
        let list = arrow::array::ListArray::from_iter_primitive::<arrow::datatypes::Int32Type, _, _>([Some(vec![Some(1), None])]);
        let nested = RecordBatch::try_from_iter([("l", Arc::new(list) as arrow::array::ArrayRef)]).unwrap();
        for (inserts, how) in [(vec![nested], ROWS_IPC), (vec![batch(9).slice(1, 1)], ROWS_FLAT)] {
            let entry = WalEntry::Commit { changes: vec![TableChange { table_id: 1, truncate: false, deletes: vec![], inserts }] };
            let (kind, payload) = encode_entry(&entry).unwrap();
            assert_eq!(payload[4 + 8 + 1 + 8], how);
            assert_eq!(decode_entry(kind, &payload).unwrap(), entry);
        }
    }

    #[test]
    fn records_written_with_arrows_default_alignment_still_read_and_new_ones_are_smaller() {
        // A commit as logs written before the 8-byte alignment hold it.
        let b = batch(5);
        let mut old = vec![];
        let mut w = StreamWriter::try_new(&mut old, &b.schema()).unwrap();
        w.write(&b).unwrap();
        w.finish().unwrap();
        let mut payload = 1u32.to_be_bytes().to_vec();
        payload.extend_from_slice(&7u64.to_be_bytes());
        payload.push(0);
        payload.extend_from_slice(&0u64.to_be_bytes());
        payload.extend_from_slice(&(old.len() as u64).to_be_bytes());
        payload.extend_from_slice(&old);
        let WalEntry::Commit { changes } = decode_entry(KIND_COMMIT, &payload).unwrap();
        assert_eq!(changes[0].inserts, vec![b.clone()]);
        let new = ipc(std::slice::from_ref(&b));
        assert!(new.len() < old.len(), "{} >= {}", new.len(), old.len());
    }

    #[test]
    fn round_trips_records() {
        let data = encoded(&[1, 2, 3]);
        let s = scan(&data).unwrap();
        assert!(!s.torn);
        assert_eq!(s.valid_len, data.len());
        assert_eq!(s.records.len(), 3);
        assert_eq!(s.records[2].lsn, 3);
        assert_eq!(s.records[1].entry, commit(2));
    }

    #[test]
    fn every_truncation_point_is_a_clean_torn_tail() {
        let data = encoded(&[1, 2]);
        let first_len = encoded(&[1]).len();
        for cut in 0..data.len() {
            let s = scan(&data[..cut]).unwrap();
            let expect = if cut >= first_len { 1 } else { 0 };
            assert_eq!(s.records.len(), expect, "cut at {cut}");
            // A cut inside the leading zero bytes of a length is as if the
            // write never started.
            let kept = if cut >= first_len { first_len } else { 0 };
            assert_eq!(s.torn, data[kept..cut].iter().any(|&b| b != 0), "cut at {cut}");
        }
    }

    #[test]
    fn reserved_zeros_end_the_log_cleanly_but_garbage_after_them_is_torn() {
        let mut data = encoded(&[1, 2]);
        let records = data.len();
        data.resize(records + 4096, 0);
        let s = scan(&data).unwrap();
        assert_eq!((s.records.len(), s.valid_len, s.torn), (2, records, false));
        data.push(7);
        let s = scan(&data).unwrap();
        assert_eq!((s.records.len(), s.valid_len, s.torn), (2, records, true));
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
    fn short_payloads_are_errors_not_panics() {
        let (kind, payload) = encode_entry(&commit(1)).unwrap();
        for cut in 0..payload.len() {
            let _ = decode_entry(kind, &payload[..cut]);
        }
        assert!(decode_entry(kind, &payload[..12]).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        for seed in 0..200u32 {
            let data: Vec<u8> = (0..seed * 7).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
            let _ = scan(&data);
        }
    }
}
