//! Arrow → PostgreSQL value encoders, column at a time.
//!
//! Each Arrow column is encoded into one buffer of wire cells (a 4-byte
//! big-endian length, -1 for NULL, then the value), with the type and format
//! decided once per column, not per cell. The wire layer then assembles
//! DataRow messages by copying cell slices. Pure functions over memory: no
//! I/O, so they are unit-tested here against PostgreSQL's exact output.

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Decimal256Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, ListArray, StringArray, Time64MicrosecondArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use super::PgType;
use super::float::{write_f32, write_f64};
use super::numeric;
use crate::error::Result;

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;
/// Days between the Unix epoch and PostgreSQL's epoch.
pub const PG_EPOCH_OFFSET_DAYS: i32 = 10_957;

/// Wire format of a result column (Bind's result format codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Binary,
}

/// Session settings that change how values print.
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions {
    /// The session TimeZone as a fixed UTC offset in seconds (timestamptz
    /// output), when it is one.
    pub utc_offset_secs: i32,
    /// The session TimeZone when it is a named zone: the offset then
    /// depends on the instant (daylight saving time).
    pub zone: Option<chrono_tz::Tz>,
}

impl EncodeOptions {
    /// The session zone's offset from UTC at `micros` since the Unix epoch.
    pub fn offset_at(&self, micros: i64) -> i32 {
        use chrono::{Offset, TimeZone};
        match (self.zone, chrono::DateTime::from_timestamp_micros(micros)) {
            (Some(tz), Some(at)) => tz.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc(),
            _ => self.utc_offset_secs,
        }
    }
}

/// One column's cells, each already framed with its length prefix.
#[derive(Debug, Default)]
pub struct EncodedColumn {
    pub buf: Vec<u8>,
    /// `ends[i]` is where cell `i` ends in `buf`; cell 0 starts at 0.
    pub ends: Vec<usize>,
}

impl EncodedColumn {
    /// The framed bytes of cell `row`.
    pub fn cell(&self, row: usize) -> &[u8] {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.buf[start..self.ends[row]]
    }

    fn with_capacity(rows: usize, bytes_per_row: usize) -> Self {
        Self { buf: Vec::with_capacity(rows * (4 + bytes_per_row)), ends: Vec::with_capacity(rows) }
    }

    /// Frame every cell of `array`, calling `write` for each non-null value.
    fn fill(&mut self, array: &dyn Array, mut write: impl FnMut(usize, &mut Vec<u8>)) {
        for i in 0..array.len() {
            if array.is_null(i) {
                self.buf.extend_from_slice(&(-1i32).to_be_bytes());
            } else {
                let start = self.buf.len();
                self.buf.extend_from_slice(&[0; 4]);
                write(i, &mut self.buf);
                let len = (self.buf.len() - start - 4) as i32;
                self.buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
            }
            self.ends.push(self.buf.len());
        }
    }
}

/// Encode one Arrow column as Postgres values of type `ty` in `format`.
pub fn encode_column(array: &ArrayRef, ty: &PgType, format: Format, opts: &EncodeOptions) -> Result<EncodedColumn> {
    // Normalise to the canonical Arrow type of `ty` (e.g. UInt32 → Int64,
    // nanosecond timestamps → microseconds) so the loops below see one layout.
    let target = ty.arrow_type();
    let text_fallback = ty.is_text_backed() && !is_utf8(array.data_type());
    // Any decimal prints as unconstrained numeric at its own scale.
    let own_scale = matches!((ty, array.data_type()), (PgType::Numeric(None), DataType::Decimal128(..) | DataType::Decimal256(..)));
    let canonical = if array.data_type() == &target || text_fallback || own_scale {
        array.clone()
    } else {
        cast(array, &target)?
    };
    let a = canonical.as_ref();
    let mut col = EncodedColumn::with_capacity(a.len(), cell_bytes_estimate(ty, format, a));
    match (ty, format) {
        (PgType::Bool, _) => {
            let arr: &BooleanArray = a.as_boolean();
            col.fill(a, |i, out| {
                let v = arr.value(i);
                match format {
                    Format::Text => out.push(if v { b't' } else { b'f' }),
                    Format::Binary => out.push(v as u8),
                }
            })
        }
        (PgType::Int2, Format::Text) => int_text(&mut col, a.as_primitive::<arrow::datatypes::Int16Type>()),
        (PgType::Int4, Format::Text) => int_text(&mut col, a.as_primitive::<arrow::datatypes::Int32Type>()),
        (PgType::Int8, Format::Text) => int_text(&mut col, a.as_primitive::<arrow::datatypes::Int64Type>()),
        (PgType::Int2, Format::Binary) => {
            let arr: &Int16Array = a.as_primitive();
            col.fill(a, |i, out| out.extend_from_slice(&arr.value(i).to_be_bytes()))
        }
        (PgType::Int4, Format::Binary) => {
            let arr: &Int32Array = a.as_primitive();
            col.fill(a, |i, out| out.extend_from_slice(&arr.value(i).to_be_bytes()))
        }
        (PgType::Int8, Format::Binary) => {
            let arr: &Int64Array = a.as_primitive();
            col.fill(a, |i, out| out.extend_from_slice(&arr.value(i).to_be_bytes()))
        }
        (PgType::Float4, _) => {
            let arr: &Float32Array = a.as_primitive();
            col.fill(a, |i, out| match format {
                Format::Text => write_f32(out, arr.value(i)),
                Format::Binary => out.extend_from_slice(&arr.value(i).to_be_bytes()),
            })
        }
        (PgType::Float8, _) => {
            let arr: &Float64Array = a.as_primitive();
            col.fill(a, |i, out| match format {
                Format::Text => write_f64(out, arr.value(i)),
                Format::Binary => out.extend_from_slice(&arr.value(i).to_be_bytes()),
            })
        }
        (PgType::Numeric(typmod), _) => {
            // Without a typmod the storage scale is not the value's own: trim it.
            let trim = typmod.is_none();
            let put = |out: &mut Vec<u8>, d: numeric::Digits, scale: u32| {
                let (d, s) = if trim { d.trimmed(scale) } else { (d, scale) };
                match format {
                    Format::Text => numeric::write_text(out, &d, s),
                    Format::Binary => numeric::write_binary(out, &d, s),
                }
            };
            match a.data_type() {
                DataType::Decimal256(_, scale) => {
                    let arr: &Decimal256Array = a.as_primitive();
                    // Only a wrapped sum over NaN (DataFusion's decimal sum
                    // wraps) lies beyond 76 digits: refuse it, never print it.
                    if arr.iter().flatten().any(numeric::is_beyond_any_precision) {
                        return Err(crate::error::TarnError::new(
                            crate::error::sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                            "numeric value out of range (an aggregate over NaN)",
                        ));
                    }
                    let scale = (*scale).max(0) as u32;
                    col.fill(a, |i, out| match (arr.value(i), format) {
                        (numeric::NAN, Format::Text) => out.extend_from_slice(b"NaN"),
                        (numeric::NAN, Format::Binary) => numeric::write_nan_binary(out),
                        (v, _) => put(out, numeric::Digits::of_i256(v), scale),
                    })
                }
                _ => {
                    let arr: &Decimal128Array = a.as_primitive();
                    let scale = arr.scale().max(0) as u32;
                    col.fill(a, |i, out| put(out, numeric::Digits::of_i128(arr.value(i)), scale))
                }
            }
        }
        (PgType::Uuid, Format::Binary) if is_utf8(a.data_type()) => {
            let arr: &StringArray = a.as_string();
            let bytes = arr.iter().map(|v| v.map(super::uuid::parse).transpose()).collect::<Result<Vec<_>>>()?;
            col.fill(a, |i, out| out.extend_from_slice(bytes[i].as_ref().map(|b| &b[..]).unwrap_or_default()))
        }
        (PgType::Jsonb, _) if is_utf8(a.data_type()) => {
            // Normalised here too: a value cast in a query was never stored.
            let arr: &StringArray = a.as_string();
            let texts = arr.iter().map(|v| v.map(super::json::normalize_jsonb).transpose()).collect::<Result<Vec<_>>>()?;
            col.fill(a, |i, out| {
                if format == Format::Binary {
                    out.push(1); // jsonb_send's version byte
                }
                out.extend_from_slice(texts[i].as_deref().unwrap_or_default().as_bytes())
            })
        }
        (PgType::Char, Format::Binary) if is_utf8(a.data_type()) => {
            // charsend sends its one byte, and '' is the byte 0 (SQLAlchemy
            // tells "not generated" from `attgenerated` by b'\x00').
            let arr: &StringArray = a.as_string();
            col.fill(a, |i, out| match arr.value(i).as_bytes().first() {
                Some(b) => out.push(*b),
                None => out.push(0),
            })
        }
        (ty, _) if ty.is_text_backed() && is_utf8(a.data_type()) => {
            // Already cast to Utf8 above; text and binary forms are the same.
            let arr: &StringArray = a.as_string();
            col.fill(a, |i, out| out.extend_from_slice(arr.value(i).as_bytes()))
        }
        (PgType::Text | PgType::Varchar(_) | PgType::Bpchar(_) | PgType::Uuid | PgType::Json | PgType::Jsonb | PgType::Name | PgType::Char, _) => {
            // Types outside Tarn's set: Arrow's display form, sent as text.
            let formatter = ArrayFormatter::try_new(a, &FormatOptions::default())?;
            col.fill(a, |i, out| {
                use std::io::Write;
                let _ = write!(out, "{}", formatter.value(i));
            })
        }
        (PgType::Bytea, _) => {
            let arr: &BinaryArray = a.as_binary();
            col.fill(a, |i, out| match format {
                Format::Text => write_bytea_hex(out, arr.value(i)),
                Format::Binary => out.extend_from_slice(arr.value(i)),
            })
        }
        (PgType::Date, _) => {
            let arr: &Date32Array = a.as_primitive();
            col.fill(a, |i, out| match format {
                Format::Text => write_date_text(out, arr.value(i)),
                Format::Binary => out.extend_from_slice(&(arr.value(i) - PG_EPOCH_OFFSET_DAYS).to_be_bytes()),
            })
        }
        (PgType::Time, _) => {
            let arr: &Time64MicrosecondArray = a.as_primitive();
            col.fill(a, |i, out| match format {
                Format::Text => write_time_text(out, arr.value(i)),
                Format::Binary => out.extend_from_slice(&arr.value(i).to_be_bytes()),
            })
        }
        (PgType::Interval, _) => {
            let arr = a.as_primitive::<arrow::datatypes::IntervalMonthDayNanoType>();
            col.fill(a, |i, out| {
                let v = arr.value(i);
                // Sub-microsecond nanoseconds (only from arithmetic) are dropped, as PostgreSQL has none.
                let iv = super::interval::Interval { months: v.months, days: v.days, micros: v.nanoseconds.div_euclid(1000) };
                match format {
                    Format::Text => super::interval::write_text(out, iv),
                    Format::Binary => super::interval::write_binary(out, iv),
                }
            })
        }
        (PgType::Oid, Format::Text) => int_text(&mut col, a.as_primitive::<arrow::datatypes::UInt32Type>()),
        (PgType::Oid, Format::Binary) => {
            let arr: &UInt32Array = a.as_primitive();
            col.fill(a, |i, out| out.extend_from_slice(&arr.value(i).to_be_bytes()))
        }
        (PgType::Array(elem), _) => {
            let list: &ListArray = a.as_list();
            let values = encode_column(list.values(), elem, format, opts)?;
            let offsets = list.value_offsets();
            let elem_type = elem.wire_type();
            col.fill(a, |i, out| {
                let cells = (offsets[i] as usize..offsets[i + 1] as usize).map(|j| {
                    let cell = values.cell(j);
                    (cell[..4] != [0xff; 4]).then(|| &cell[4..])
                });
                match format {
                    Format::Text => super::array::write_text(out, cells),
                    Format::Binary => super::array::write_binary(out, &elem_type, cells),
                }
            })
        }
        (PgType::Timestamp | PgType::Timestamptz, _) => {
            let arr: &TimestampMicrosecondArray = a.as_primitive();
            let with_tz = *ty == PgType::Timestamptz;
            col.fill(a, |i, out| {
                let micros = arr.value(i);
                match format {
                    Format::Text if with_tz => write_timestamptz_text(out, micros, opts.offset_at(micros)),
                    Format::Text => write_timestamp_text(out, micros),
                    Format::Binary => out.extend_from_slice(&(micros - PG_EPOCH_OFFSET_MICROS).to_be_bytes()),
                }
            })
        }
    }
    Ok(col)
}

/// About how many bytes a cell of `a` takes, so a column's buffer is
/// allocated once rather than grown by doubling (each growth a copy of all
/// the cells so far, and fresh pages for the kernel to clear).
fn cell_bytes_estimate(ty: &PgType, format: Format, a: &dyn Array) -> usize {
    let rows = a.len().max(1);
    // The bytes between the first and last offset: a slice's own values,
    // not the whole buffer it was sliced from (a lookup's one row of a
    // cached fragment).
    let span = |offsets: &[i32]| match (offsets.first(), offsets.last()) {
        (Some(first), Some(last)) => (last - first) as usize,
        _ => 0,
    };
    match (ty, format, a.data_type()) {
        (_, _, DataType::Utf8) => span(a.as_string::<i32>().value_offsets()) / rows + 1,
        (_, _, DataType::Binary) if format == Format::Text => 2 + 2 * span(a.as_binary::<i32>().value_offsets()) / rows,
        (PgType::Timestamp | PgType::Timestamptz, Format::Text, _) => 26,
        (PgType::Float8 | PgType::Int8, Format::Text, _) => 16,
        (PgType::Date | PgType::Time, Format::Text, _) => 12,
        _ => 8,
    }
}

fn is_utf8(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn int_text<T>(col: &mut EncodedColumn, arr: &arrow::array::PrimitiveArray<T>)
where
    T: arrow::datatypes::ArrowPrimitiveType,
    T::Native: lexical_core::ToLexical,
{
    let mut tmp = [0u8; lexical_core::BUFFER_SIZE];
    col.fill(arr, |i, out| out.extend_from_slice(lexical_core::write(arr.value(i), &mut tmp)));
}

fn write_bytea_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 + bytes.len() * 2);
    out.extend_from_slice(b"\\x");
    for b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 0xf) as usize]);
    }
}

fn write_year_month_day(out: &mut Vec<u8>, date: NaiveDate) -> bool {
    // PostgreSQL has no year 0: chrono's year 0 is 1 BC.
    let (year, bc) = if date.year() <= 0 { (1 - date.year(), true) } else { (date.year(), false) };
    push_padded(out, year.unsigned_abs(), 4);
    out.push(b'-');
    push_padded(out, date.month(), 2);
    out.push(b'-');
    push_padded(out, date.day(), 2);
    bc
}

/// `v` in decimal, zero-padded to at least `width` digits. Date and time
/// text is built digit by digit: `write!` costs several times as much per
/// cell, and a result stream formats millions of them.
fn push_padded(out: &mut Vec<u8>, v: u32, width: usize) {
    // Right to left into a fixed buffer, then one copy: `extend` of an
    // iterator pushed byte by byte, a twentieth of a timestamp column.
    let mut digits = [b'0'; 10];
    let mut n = 0;
    let mut rest = v;
    loop {
        digits[9 - n] = b'0' + (rest % 10) as u8;
        n += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[10 - n.max(width.min(10))..]);
}

/// `hh:mm:ss` and, if not whole, `.` and the microseconds without trailing zeros.
fn push_clock(out: &mut Vec<u8>, hours: u32, minutes: u32, seconds: u32, micros: u32) {
    push_padded(out, hours, 2);
    out.push(b':');
    push_padded(out, minutes, 2);
    out.push(b':');
    push_padded(out, seconds, 2);
    if micros != 0 {
        let mut frac = [0u8; 6];
        let mut rest = micros;
        for d in frac.iter_mut().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let len = frac.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
        out.push(b'.');
        out.extend_from_slice(&frac[..len]);
    }
}

/// `date` text form in DateStyle ISO: `2026-01-02`, `0044-03-15 BC`.
pub fn write_date_text(out: &mut Vec<u8>, days_since_unix_epoch: i32) {
    match NaiveDate::from_num_days_from_ce_opt(days_since_unix_epoch + 719_163) {
        Some(d) => {
            if write_year_month_day(out, d) {
                out.extend_from_slice(b" BC");
            }
        }
        None => out.extend_from_slice(days_since_unix_epoch.to_string().as_bytes()),
    }
}

fn write_time_of_day(out: &mut Vec<u8>, dt: &NaiveDateTime) {
    out.push(b' ');
    push_clock(out, dt.hour(), dt.minute(), dt.second(), dt.nanosecond() / 1000);
}

/// `time` text form: `03:04:05`, `03:04:05.25`.
pub fn write_time_text(out: &mut Vec<u8>, micros_since_midnight: i64) {
    let secs = micros_since_midnight.div_euclid(1_000_000);
    let micros = micros_since_midnight.rem_euclid(1_000_000) as u32;
    // `time` is at most 24:00:00; anything else stored prints as it is.
    let hours = u32::try_from(secs / 3600).unwrap_or(u32::MAX);
    push_clock(out, hours, ((secs / 60) % 60) as u32, (secs % 60) as u32, micros);
}

fn datetime_from_micros(micros: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
}

/// `timestamp` text form: `2026-01-02 03:04:05.123`.
pub fn write_timestamp_text(out: &mut Vec<u8>, micros: i64) {
    match datetime_from_micros(micros) {
        Some(dt) => {
            let bc = write_year_month_day(out, dt.date());
            write_time_of_day(out, &dt);
            if bc {
                out.extend_from_slice(b" BC");
            }
        }
        None => out.extend_from_slice(micros.to_string().as_bytes()),
    }
}

/// `timestamptz` text form in the session's zone: `2026-01-02 03:04:05+00`.
pub fn write_timestamptz_text(out: &mut Vec<u8>, micros: i64, utc_offset_secs: i32) {
    match datetime_from_micros(micros + i64::from(utc_offset_secs) * 1_000_000) {
        Some(dt) => {
            let bc = write_year_month_day(out, dt.date());
            write_time_of_day(out, &dt);
            out.push(if utc_offset_secs < 0 { b'-' } else { b'+' });
            let off = utc_offset_secs.unsigned_abs();
            push_padded(out, off / 3600, 2);
            if off % 3600 != 0 {
                out.push(b':');
                push_padded(out, (off % 3600) / 60, 2);
                if off % 60 != 0 {
                    out.push(b':');
                    push_padded(out, off % 60, 2);
                }
            }
            if bc {
                out.extend_from_slice(b" BC");
            }
        }
        None => out.extend_from_slice(micros.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    #[test]
    fn clock_and_padding_digits() {
        let text = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut out = vec![];
            f(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text(&|o| super::push_padded(o, 7, 4)), "0007");
        assert_eq!(text(&|o| super::push_padded(o, 12345, 4)), "12345");
        assert_eq!(text(&|o| super::push_padded(o, 0, 2)), "00");
        assert_eq!(text(&|o| super::push_clock(o, 3, 4, 5, 0)), "03:04:05");
        assert_eq!(text(&|o| super::push_clock(o, 23, 59, 59, 120_000)), "23:59:59.12");
        assert_eq!(text(&|o| super::push_clock(o, 0, 0, 0, 1)), "00:00:00.000001");
        assert_eq!(text(&|o| super::write_time_text(o, 24 * 3_600_000_000)), "24:00:00");
        assert_eq!(text(&|o| super::write_timestamptz_text(o, 0, -(9 * 3600 + 30 * 60))), "1969-12-31 14:30:00-09:30");
        assert_eq!(text(&|o| super::write_timestamp_text(o, -62_167_219_200_000_000)), "0001-01-01 00:00:00 BC");
        assert_eq!(text(&|o| super::write_timestamp_text(o, -62_167_219_200_000_000 - 86_400_000_000)), "0002-12-31 00:00:00 BC");
    }

    use super::*;

    fn text_cells(array: ArrayRef, ty: PgType) -> Vec<Option<String>> {
        let col = encode_column(&array, &ty, Format::Text, &EncodeOptions::default()).unwrap();
        (0..array.len())
            .map(|i| {
                let cell = col.cell(i);
                let len = i32::from_be_bytes(cell[..4].try_into().unwrap());
                (len >= 0).then(|| String::from_utf8(cell[4..].to_vec()).unwrap())
            })
            .collect()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn a_slice_is_sized_by_its_own_values_not_its_buffer() {
        let big: Vec<String> = (0..10_000).map(|i| format!("value number {i}")).collect();
        let whole = StringArray::from(big);
        let one = whole.slice(5_000, 1);
        assert_eq!(cell_bytes_estimate(&PgType::Text, Format::Text, &one), "value number 5000".len() + 1);
        let col = encode_column(&(Arc::new(one) as ArrayRef), &PgType::Text, Format::Text, &EncodeOptions::default()).unwrap();
        assert!(col.buf.capacity() < 64, "one short cell, {} bytes allocated", col.buf.capacity());
        assert_eq!(&col.cell(0)[4..], b"value number 5000");
    }

    #[test]
    fn bools_and_nulls() {
        let a: ArrayRef = Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)]));
        assert_eq!(text_cells(a, PgType::Bool), vec![s("t"), None, s("f")]);
    }

    #[test]
    fn numeric_keeps_its_scale() {
        let a: ArrayRef = Arc::new(Decimal128Array::from(vec![1250, 800, -5, 0]).with_precision_and_scale(10, 2).unwrap());
        assert_eq!(
            text_cells(a, PgType::Numeric(Some((10, 2)))),
            vec![s("12.50"), s("8.00"), s("-0.05"), s("0.00")]
        );
    }

    #[test]
    fn unconstrained_numeric_trims_storage_zeros() {
        let a: ArrayRef = Arc::new(Decimal128Array::from(vec![125_000_000_000i128]).with_precision_and_scale(38, 10).unwrap());
        assert_eq!(text_cells(a, PgType::Numeric(None)), vec![s("12.5")]);
    }

    #[test]
    fn unconstrained_numeric_holds_76_digits_and_nan() {
        let big = arrow::datatypes::i256::from_string("123456789012345678901234567890123456789000000000000").unwrap();
        let a: ArrayRef = Arc::new(
            Decimal256Array::from(vec![big, super::numeric::NAN, big.wrapping_neg()]).with_precision_and_scale(76, 20).unwrap(),
        );
        assert_eq!(
            text_cells(a.clone(), PgType::Numeric(None)),
            vec![s("1234567890123456789012345678901.23456789"), s("NaN"), s("-1234567890123456789012345678901.23456789")]
        );
        let bin = encode_column(&a, &PgType::Numeric(None), Format::Binary, &EncodeOptions::default()).unwrap();
        assert_eq!(&bin.cell(1)[4..], [0, 0, 0, 0, 0xc0, 0, 0, 0]);
    }

    #[test]
    fn dates_and_timestamps_print_like_postgres() {
        let d: ArrayRef = Arc::new(Date32Array::from(vec![20455, -719_528 - 365]));
        let cells = text_cells(d, PgType::Date);
        assert_eq!(cells[0], s("2026-01-02"));
        assert!(cells[1].as_ref().unwrap().ends_with(" BC"));

        let ts = 1_767_323_045_000_000i64; // 2026-01-02 03:04:05 UTC
        let a: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![ts, ts + 123_000]));
        assert_eq!(text_cells(a.clone(), PgType::Timestamp), vec![s("2026-01-02 03:04:05"), s("2026-01-02 03:04:05.123")]);
        let tz: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![ts]).with_timezone("UTC"));
        assert_eq!(text_cells(tz.clone(), PgType::Timestamptz), vec![s("2026-01-02 03:04:05+00")]);
        let col = encode_column(&tz, &PgType::Timestamptz, Format::Text, &EncodeOptions { utc_offset_secs: 19800, zone: None }).unwrap();
        assert_eq!(&col.cell(0)[4..], b"2026-01-02 08:34:05+05:30");
        // A named zone's offset follows daylight saving time, per value.
        let summer = 1_782_900_000_000_000i64; // 2026-07-01 10:00:00 UTC
        let both: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![ts, summer]).with_timezone("UTC"));
        let oslo = EncodeOptions { utc_offset_secs: 0, zone: Some(chrono_tz::Europe::Oslo) };
        let col = encode_column(&both, &PgType::Timestamptz, Format::Text, &oslo).unwrap();
        assert_eq!(&col.cell(0)[4..], b"2026-01-02 04:04:05+01");
        assert_eq!(&col.cell(1)[4..], b"2026-07-01 12:00:00+02");
    }

    #[test]
    fn char_binary_is_one_byte_and_empty_is_zero() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![Some("r"), Some(""), None]));
        let col = encode_column(&a, &PgType::Char, Format::Binary, &EncodeOptions::default()).unwrap();
        assert_eq!(&col.cell(0)[4..], b"r");
        assert_eq!(&col.cell(1)[4..], b"\0");
        assert_eq!(col.cell(2), (-1i32).to_be_bytes());
    }

    #[test]
    fn new_types_print_like_postgres() {
        let t: ArrayRef = Arc::new(Time64MicrosecondArray::from(vec![11_045_250_000, 0, 86_399_999_999]));
        assert_eq!(text_cells(t, PgType::Time), vec![s("03:04:05.25"), s("00:00:00"), s("23:59:59.999999")]);
        let j: ArrayRef = Arc::new(StringArray::from(vec![r#"{"b":1,"a":[1e2]}"#]));
        assert_eq!(text_cells(j.clone(), PgType::Jsonb), vec![s(r#"{"a": [100], "b": 1}"#)]);
        assert_eq!(text_cells(j, PgType::Json), vec![s(r#"{"b":1,"a":[1e2]}"#)]);
        let u: ArrayRef = Arc::new(StringArray::from(vec!["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]));
        let col = encode_column(&u, &PgType::Uuid, Format::Binary, &EncodeOptions::default()).unwrap();
        assert_eq!(&col.cell(0)[..6], &[0, 0, 0, 16, 0xa0, 0xee]);
        let bad: ArrayRef = Arc::new(StringArray::from(vec!["nope"]));
        assert!(encode_column(&bad, &PgType::Uuid, Format::Binary, &EncodeOptions::default()).is_err());
    }

    #[test]
    fn arrays_print_like_postgres() {
        let list = ListArray::from_iter_primitive::<arrow::datatypes::Int32Type, _, _>(vec![
            Some(vec![Some(1), None, Some(3)]),
            None,
            Some(vec![]),
        ]);
        let a: ArrayRef = Arc::new(list);
        let ty = PgType::Array(Box::new(PgType::Int4));
        assert_eq!(text_cells(a.clone(), ty.clone()), vec![s("{1,NULL,3}"), None, s("{}")]);
        let col = encode_column(&a, &ty, Format::Binary, &EncodeOptions::default()).unwrap();
        // array_send('{1,NULL,3}'::int4[])
        let want: Vec<u8> = [&[0, 0, 0, 40][..], &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 23, 0, 0, 0, 3, 0, 0, 0, 1], &[0, 0, 0, 4, 0, 0, 0, 1], &[0xff; 4], &[0, 0, 0, 4, 0, 0, 0, 3]].concat();
        assert_eq!(col.cell(0), &want[..]);
    }

    #[test]
    fn bytea_is_hex() {
        let a: ArrayRef = Arc::new(BinaryArray::from(vec![&b"\x00\xffA"[..]]));
        assert_eq!(text_cells(a, PgType::Bytea), vec![s("\\x00ff41")]);
    }

    #[test]
    fn computed_types_are_cast_to_their_pg_type() {
        let a: ArrayRef = Arc::new(UInt32Array::from(vec![7]));
        assert_eq!(text_cells(a, PgType::Int8), vec![s("7")]);
        let a: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
        let col = encode_column(&a, &PgType::Int4, Format::Binary, &EncodeOptions::default()).unwrap();
        assert_eq!(col.cell(1), &[0, 0, 0, 4, 0, 0, 0, 2]);
    }
}
