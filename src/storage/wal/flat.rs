//! A change's inserted rows written as their Arrow buffers, byte for byte,
//! after the IPC schema message: a pure codec over bytes.
//!
//! Why not the Arrow IPC stream the log first used for every change: a
//! record batch's IPC message is a flatbuffer (a node per column, an
//! offset and length per buffer) built anew per batch, and for a
//! single-row INSERT building it was ~3 µs — a tenth of the commit's CPU.
//! The buffers themselves are the same bytes IPC would write, cut to the
//! array's rows when it is a slice. Only arrays without child arrays (every
//! scalar type: integers, floats, decimals, text, binary, dates and times,
//! booleans) are written flat; a change holding anything else keeps the
//! IPC stream (`codec`). Reading validates every array as Arrow builds it, so a
//! damaged record is an error, never a malformed array.
//!
//! ```text
//! flat   := schema_len: u32, schema: IPC schema message, n: u32, batch*n
//! batch  := rows: u64, column * (fields of schema)
//! column := has_nulls: u8, [validity: ⌈rows/8⌉ bytes if has_nulls],
//!           nbuf: u32, (len: u64, bytes) * nbuf
//! ```

use std::sync::Arc;

use arrow::array::{Array, ArrayDataBuilder, ArrayRef, AsArray, RecordBatch, RecordBatchOptions, downcast_primitive_array, make_array};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, SchemaRef};

use super::codec::Reader;
use crate::error::{Result, TarnError};

/// Whether `batches` can be written flat: every array of a type without
/// child arrays. Slices are: their bytes are cut out as they are written.
/// (Decided from the arrays, not their `ArrayData`: making that per column
/// twice showed in the profile.)
pub fn writable(batches: &[RecordBatch]) -> bool {
    batches.iter().all(|b| b.columns().iter().all(|c| flat_type(c.data_type())))
}

/// A type whose arrays are buffers only, no child arrays.
fn flat_type(t: &DataType) -> bool {
    t.is_primitive()
        || matches!(
            t,
            DataType::Null
                | DataType::Boolean
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::FixedSizeBinary(_)
        )
}

/// Append `batches` (all of one schema, [`writable`]) to `out`;
/// `schema_message` is that schema's IPC message.
pub fn encode(batches: &[RecordBatch], schema_message: &[u8], out: &mut Vec<u8>) {
    // An estimate: a column's arrays may be slices of far larger buffers
    // (a row an UPDATE cut from a decoded fragment), so their memory size
    // says nothing of what is written; strings may need more.
    let bytes: usize = batches.iter().map(|b| 8 + b.num_columns() * (16 + 8 * b.num_rows())).sum();
    out.reserve(schema_message.len() + 8 + bytes);
    out.extend_from_slice(&(schema_message.len() as u32).to_be_bytes());
    out.extend_from_slice(schema_message);
    out.extend_from_slice(&(batches.len() as u32).to_be_bytes());
    for b in batches {
        let rows = b.num_rows();
        out.extend_from_slice(&(rows as u64).to_be_bytes());
        for c in b.columns() {
            match c.nulls() {
                Some(nulls) => {
                    out.push(1);
                    // Shifted to bit 0 (a copy) only for a slice that is not there.
                    out.extend_from_slice(&nulls.inner().sliced().as_slice()[..rows.div_ceil(8)]);
                }
                None => out.push(0),
            }
            write_buffers(c, out);
        }
    }
}

/// An array's buffers, as its `ArrayData` lists them, cut to its rows: a
/// slice's buffers can hold a whole batch's values, and its offsets need
/// not start at 0 (they are written less their first). Primitive and text
/// arrays are read as they are: making an `ArrayData` per column was half
/// of encoding a single-row commit.
fn write_buffers(c: &ArrayRef, out: &mut Vec<u8>) {
    fn write(out: &mut Vec<u8>, buffers: &[&[u8]]) {
        out.extend_from_slice(&(buffers.len() as u32).to_be_bytes());
        for buf in buffers {
            out.extend_from_slice(&(buf.len() as u64).to_be_bytes());
            out.extend_from_slice(buf);
        }
    }
    fn write_bytes<T: arrow::array::types::ByteArrayType>(out: &mut Vec<u8>, a: &arrow::array::GenericByteArray<T>) {
        use arrow::datatypes::ArrowNativeType;
        let offsets = a.offsets();
        let (first, last) = (offsets[0], offsets[offsets.len() - 1]);
        let values = &a.values()[first.as_usize()..last.as_usize()];
        if first.as_usize() == 0 {
            return write(out, &[offsets.inner().inner().as_slice(), values]);
        }
        let rebased: arrow::buffer::ScalarBuffer<T::Offset> = offsets.iter().map(|&o| o - first).collect();
        write(out, &[rebased.inner().as_slice(), values]);
    }
    let rows = c.len();
    downcast_primitive_array!(
        c => write(out, &[c.values().inner().as_slice()]),
        DataType::Utf8 => write_bytes(out, c.as_string::<i32>()),
        DataType::LargeUtf8 => write_bytes(out, c.as_string::<i64>()),
        DataType::Binary => write_bytes(out, c.as_binary::<i32>()),
        DataType::LargeBinary => write_bytes(out, c.as_binary::<i64>()),
        DataType::Boolean => write(out, &[&c.as_boolean().values().sliced().as_slice()[..rows.div_ceil(8)]]),
        DataType::FixedSizeBinary(width) => {
            let width = usize::try_from(*width).unwrap_or(0);
            write(out, &[&c.as_fixed_size_binary().value_data()[..rows * width]])
        }
        _ => {
            let data = c.to_data();
            write(out, &data.buffers().iter().map(|b| b.as_slice()).collect::<Vec<_>>())
        }
    )
}

/// The batches [`encode`] wrote in `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    let mut r = Reader::new(bytes);
    let schema_len = r.u32()? as usize;
    let message = r.take(schema_len)?;
    // Arrow's schema reader panics on some malformed flatbuffers; the
    // record's checksum passed, but a damaged log is still an error here.
    let schema = std::panic::catch_unwind(|| arrow::ipc::convert::try_schema_from_ipc_buffer(message)).map_err(|_| damaged())??;
    let schema: SchemaRef = Arc::new(schema);
    let n = r.u32()? as usize;
    let mut batches = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let rows = usize::try_from(r.u64()?).map_err(|_| damaged())?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let validity = match r.take(1)?[0] {
                0 => None,
                1 => Some(Buffer::from_slice_ref(r.take(rows.div_ceil(8))?)),
                _ => return Err(damaged()),
            };
            let nbuf = r.u32()? as usize;
            let mut buffers = Vec::with_capacity(nbuf.min(16));
            for _ in 0..nbuf {
                let len = usize::try_from(r.u64()?).map_err(|_| damaged())?;
                // Copied: Arrow wants buffers aligned for their type.
                buffers.push(Buffer::from_slice_ref(r.take(len)?));
            }
            let data = ArrayDataBuilder::new(field.data_type().clone()).len(rows).null_bit_buffer(validity).buffers(buffers).build()?;
            columns.push(make_array(data));
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        batches.push(RecordBatch::try_new_with_options(schema.clone(), columns, &options)?);
    }
    if !r.at_end() {
        return Err(damaged());
    }
    Ok(batches)
}

fn damaged() -> TarnError {
    TarnError::internal("WAL record's flat rows are damaged")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, Decimal128Array, Float64Array, Int32Array, StringArray, TimestampMicrosecondArray, UInt64Array};
    use arrow::datatypes::{Field, Schema, TimeUnit};

    fn schema_message(schema: &SchemaRef) -> Vec<u8> {
        let options = arrow::ipc::writer::IpcWriteOptions::default();
        let mut tracker = arrow::ipc::writer::DictionaryTracker::new(false);
        let encoded = arrow::ipc::writer::IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(schema, &mut tracker, &options);
        let mut out = vec![];
        arrow::ipc::writer::write_message(&mut out, encoded, &options).unwrap();
        out
    }

    fn batch(rows: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int32, true),
            Field::new("f", DataType::Float64, false),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("d", DataType::Decimal128(12, 2), true),
            Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("_tarn_rowid", DataType::UInt64, false),
        ]));
        let n = rows as i32;
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from_iter((0..n).map(|i| (i % 3 != 0).then_some(i)))),
                Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64 / 2.0))),
                Arc::new(StringArray::from_iter((0..n).map(|i| (i % 4 != 1).then(|| format!("row ✓ {i}"))))),
                Arc::new(BooleanArray::from_iter((0..n).map(|i| (i % 5 != 2).then_some(i % 2 == 0)))),
                Arc::new(Decimal128Array::from_iter((0..n).map(|i| (i != 1).then_some(i as i128 * 101))).with_precision_and_scale(12, 2).unwrap()),
                Arc::new(TimestampMicrosecondArray::from_iter_values((0..n).map(|i| i as i64 * 1_000_000)).with_timezone("UTC")),
                Arc::new(UInt64Array::from_iter_values((0..n).map(|i| i as u64 + 40))),
            ],
        )
        .unwrap()
    }

    fn encoded(batches: &[RecordBatch]) -> Vec<u8> {
        let mut out = vec![];
        encode(batches, &schema_message(&batches[0].schema()), &mut out);
        out
    }

    #[test]
    fn round_trips_every_scalar_type_with_and_without_nulls() {
        for rows in [0, 1, 7, 8, 9, 100] {
            let batches = [batch(rows), batch(rows / 2 + 1)];
            assert!(writable(&batches));
            assert_eq!(decode(&encoded(&batches)).unwrap(), batches, "{rows} rows");
        }
    }

    #[test]
    fn buffers_are_written_as_array_data_lists_them() {
        for c in batch(11).columns() {
            let (mut read, mut listed) = (vec![], vec![]);
            write_buffers(c, &mut read);
            let data = c.to_data();
            listed.extend_from_slice(&(data.buffers().len() as u32).to_be_bytes());
            for buf in data.buffers() {
                listed.extend_from_slice(&(buf.len() as u64).to_be_bytes());
                listed.extend_from_slice(buf.as_slice());
            }
            assert_eq!(read, listed, "{}", c.data_type());
        }
    }

    #[test]
    fn a_row_cut_from_a_large_batch_is_written_as_its_own_bytes() {
        // As an UPDATE's new row: columns passed through from a decoded
        // fragment are one-row slices of its buffers (at offset 0 for
        // primitives and text, whose slices move their buffers instead).
        let big = batch(10_000);
        let long: ArrayRef = Arc::new(StringArray::from_iter_values((0..10_000).map(|i| format!("{i:0>200}"))));
        let bin: ArrayRef = Arc::new(arrow::array::LargeBinaryArray::from_iter_values((0..10_000u32).map(|i| i.to_le_bytes())));
        for at in [0, 1, 4_321, 9_999] {
            let mut columns: Vec<ArrayRef> = big.columns().iter().map(|c| c.slice(at, 1)).collect();
            columns.extend([long.slice(at, 1), bin.slice(at, 1)]);
            let mut fields: Vec<Field> = big.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.extend([Field::new("long", DataType::Utf8, false), Field::new("bin", DataType::LargeBinary, false)]);
            let row = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
            assert!(writable(std::slice::from_ref(&row)), "row {at}");
            let bytes = encoded(std::slice::from_ref(&row));
            let schema_len = schema_message(&row.schema()).len();
            assert!(bytes.len() < schema_len + 600, "row {at}: {} bytes beside a {schema_len}-byte schema", bytes.len());
            assert_eq!(decode(&bytes).unwrap(), vec![row], "row {at}");
        }
    }

    #[test]
    fn slices_at_any_offset_round_trip_and_nested_arrays_are_not_writable() {
        let big = batch(100);
        for (at, len) in [(0, 100), (3, 4), (8, 9), (13, 1), (50, 50), (99, 1), (100, 0)] {
            let batches = [big.slice(at, len), big.slice(len.min(7), 2)];
            assert!(writable(&batches));
            assert_eq!(decode(&encoded(&batches)).unwrap(), batches, "slice {at}+{len}");
        }
        let list = arrow::array::ListArray::from_iter_primitive::<arrow::datatypes::Int32Type, _, _>([Some(vec![Some(1)])]);
        let nested = RecordBatch::try_from_iter([("l", Arc::new(list) as ArrayRef)]).unwrap();
        assert!(!writable(&[nested]));
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let bytes = encoded(&[batch(9)]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        // Flipped bytes: an error or batches Arrow accepts, never a panic.
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0xa5;
            let _ = decode(&flipped);
        }
    }
}
