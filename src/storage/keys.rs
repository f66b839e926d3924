//! Primary-key values encoded for the key set: one byte string per row,
//! equal exactly when the rows' key values are.

use arrow::array::{ArrayRef, AsArray};
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};

use crate::error::Result;

/// An encoded primary-key value (Arrow's row format, or an integer's bytes:
/// see [`encode`]).
pub type Key = Box<[u8]>;

/// The keys of the rows of `key_columns` (the key's columns, in key order).
/// Every key of a table is made here, so the two encodings never meet for
/// one table: a key's column types fix which one it gets.
pub fn encode(key_columns: &[ArrayRef]) -> Result<Vec<Key>> {
    if let [column] = key_columns
        && let Some(keys) = integer_keys(column)
    {
        return Ok(keys);
    }
    let fields = key_columns.iter().map(|c| SortField::new(c.data_type().clone())).collect();
    let converter = RowConverter::new(fields)?;
    Ok(converter.convert_columns(key_columns)?.iter().map(|r| Key::from(r.as_ref())).collect())
}

/// A single integer key column's keys, without the row format (building a
/// `RowConverter` per statement cost more than the rest of the key check):
/// each value's big-endian bytes, a null (which no stored key is) none.
/// Keys only have to be equal exactly when the values are.
fn integer_keys(column: &ArrayRef) -> Option<Vec<Key>> {
    use arrow::datatypes::{Int16Type, Int32Type, Int64Type};
    fn bytes<const N: usize>(value: Option<[u8; N]>) -> Key {
        value.map_or_else(Key::default, Key::from)
    }
    Some(match column.data_type() {
        DataType::Int64 => column.as_primitive::<Int64Type>().iter().map(|v| bytes(v.map(i64::to_be_bytes))).collect(),
        DataType::Int32 => column.as_primitive::<Int32Type>().iter().map(|v| bytes(v.map(i32::to_be_bytes))).collect(),
        DataType::Int16 => column.as_primitive::<Int16Type>().iter().map(|v| bytes(v.map(i16::to_be_bytes))).collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, Int64Array, StringArray};

    use super::*;

    #[test]
    fn keys_are_equal_exactly_when_values_are() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(-1), Some(256), Some(1), None]));
        let keys = encode(&[ints]).unwrap();
        assert_eq!(keys[0], keys[3]);
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert!(keys[..4].iter().all(|k| *k != keys[4]), "a null is no value's key");
        let narrow: ArrayRef = Arc::new(Int32Array::from(vec![7, 7, 8]));
        let keys = encode(&[narrow]).unwrap();
        assert_eq!((keys[0] == keys[1], keys[1] == keys[2]), (true, false));
        // Other types and composite keys take the row format.
        let text: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "a"]));
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![1, 1, 1]));
        let keys = encode(&[text, ids]).unwrap();
        assert_eq!((keys[0] == keys[2], keys[0] == keys[1]), (true, false));
    }
}
