//! Decoded rows of Lance kept in memory for key probes: Tarn's buffer cache.
//!
//! A row id names one immutable row version (an UPDATE writes a new row
//! with a new id; compaction moves a row to a new address but keeps its id
//! and values), so a row read once by its id may be answered from memory
//! for as long as the table keeps its definition — the cache lives in the
//! `Table`, which an ALTER TABLE replaces. Whether the row is still live is
//! never the cache's to say: a probe asks the key set and the version's
//! deletes first, as without the cache.
//!
//! Reading one row through Lance (its I/O scheduler, a blocking read, a
//! page decode) costs several thread hand-offs, about a third of a point
//! query's time; PostgreSQL answers the same from its shared buffers.
//!
//! Eviction is by generations: entries go into the current generation, and
//! when it holds its share of the budget it becomes the previous one and
//! the one before is dropped; a hit in the previous generation moves the
//! row back into the current one. Rows read recently stay, at O(1) a step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::{RecordBatch, UInt32Array};

/// Bytes of cached rows one table keeps at most (two generations).
const TABLE_BUDGET: usize = 64 << 20;

/// Bytes of cached rows all tables keep at most: beyond it, rows read are
/// not kept until some are dropped.
const SERVER_BUDGET: usize = 512 << 20;

static SERVER_BYTES: AtomicUsize = AtomicUsize::new(0);

/// One generation: rows by (projection, row id).
#[derive(Default)]
struct Generation {
    rows: HashMap<(Vec<usize>, u64), RecordBatch>,
    bytes: usize,
}

impl Drop for Generation {
    fn drop(&mut self) {
        SERVER_BYTES.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// One table's cached rows (see the module docs).
#[derive(Default)]
pub struct RowCache {
    current: Generation,
    previous: Generation,
}

impl RowCache {
    /// Row `rowid` with the storage columns `wanted`, if cached.
    pub fn get(&mut self, wanted: &[usize], rowid: u64) -> Option<RecordBatch> {
        let key = (wanted.to_vec(), rowid);
        if let Some(row) = self.current.rows.get(&key) {
            return Some(row.clone());
        }
        let row = self.previous.rows.remove(&key)?;
        let size = row.get_array_memory_size();
        self.previous.bytes -= size;
        SERVER_BYTES.fetch_sub(size, Ordering::Relaxed);
        self.put(wanted, rowid, row.clone());
        Some(row)
    }

    /// Keep `row` (one row of `wanted`, read for row id `rowid`). Its
    /// columns are copied out first: a row read from Lance may be a slice
    /// of a whole decoded page.
    pub fn keep(&mut self, wanted: &[usize], rowid: u64, row: &RecordBatch) {
        if row.num_rows() != 1 || SERVER_BYTES.load(Ordering::Relaxed) >= SERVER_BUDGET {
            return;
        }
        let Ok(compact) = arrow::compute::take_record_batch(row, &UInt32Array::from(vec![0])) else { return };
        self.put(wanted, rowid, compact);
    }

    fn put(&mut self, wanted: &[usize], rowid: u64, row: RecordBatch) {
        if self.current.bytes >= TABLE_BUDGET / 2 {
            self.previous = std::mem::take(&mut self.current);
        }
        let size = row.get_array_memory_size();
        self.current.bytes += size;
        SERVER_BYTES.fetch_add(size, Ordering::Relaxed);
        if let Some(old) = self.current.rows.insert((wanted.to_vec(), rowid), row) {
            let old = old.get_array_memory_size();
            self.current.bytes -= old;
            SERVER_BYTES.fetch_sub(old, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use std::sync::Arc;

    fn row(v: i64) -> RecordBatch {
        RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(vec![v])) as _)]).unwrap()
    }

    #[test]
    fn rows_are_kept_per_projection_and_recent_ones_survive_a_generation() {
        let mut cache = RowCache::default();
        cache.keep(&[0], 1, &row(10));
        assert_eq!(cache.get(&[0], 1), Some(row(10)));
        assert_eq!(cache.get(&[0, 1], 1), None);
        assert_eq!(cache.get(&[0], 2), None);
        // Age row 1 into the previous generation; a hit brings it back.
        cache.previous = std::mem::take(&mut cache.current);
        assert_eq!(cache.get(&[0], 1), Some(row(10)));
        assert!(cache.current.rows.contains_key(&(vec![0], 1)) && cache.previous.rows.is_empty());
    }

    #[test]
    fn a_slice_is_kept_compact() {
        let big = RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from_iter_values(0..100_000)) as _)]).unwrap();
        let mut cache = RowCache::default();
        cache.keep(&[0], 7, &big.slice(7, 1));
        assert!(cache.current.bytes < 1024, "{} bytes kept for one row", cache.current.bytes);
        assert_eq!(cache.get(&[0], 7), Some(row(7)));
    }
}
