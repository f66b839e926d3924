//! Whole Lance fragments kept decoded for key probes, once they are probed
//! often: the row cache (`storage::row_cache`) only answers rows read
//! before, so a lookup workload over many keys paid a cold Lance read — its
//! I/O scheduler, a blocking read, a page decode, several thread hand-offs,
//! about 400 µs here — for most of its statements until most rows had been
//! read once. PostgreSQL answers those from shared buffers after reading a
//! page once; this is Tarn's equivalent at fragment grain.
//!
//! A fragment's rows never change in place: its data files are written once
//! (UPDATE writes new rows elsewhere, compaction writes new fragments with
//! new ids, deletes go in a deletion file), and ALTER TABLE replaces the
//! `Table` that holds this cache. So a fragment read whole, in physical
//! order, answers a row address by its offset for as long as the fragment
//! exists. Whether that row is live is never the cache's to say: the probe
//! asks the key set and the version's deletes first, and checks the row id
//! of what it read.
//!
//! A fragment is read whole after `LOAD_AFTER_MISSES` cold reads of it, in
//! a task of its own (the probe that triggers it is not delayed), and only
//! if it has at most `MAX_ROWS` rows and fits the budgets; fragments that
//! compaction removed are dropped when another is kept.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::RecordBatch;

/// Cold reads of a fragment (one projection) before it is read whole.
const LOAD_AFTER_MISSES: u32 = 16;

/// Fragments with more rows than this are never read whole.
pub const MAX_ROWS: usize = 1 << 20;

/// Bytes of whole fragments one table keeps at most.
const TABLE_BUDGET: usize = 256 << 20;

/// Bytes of whole fragments all tables keep at most.
const SERVER_BUDGET: usize = 1 << 30;

static SERVER_BYTES: AtomicUsize = AtomicUsize::new(0);

/// A fragment and the Lance columns read of it.
pub type FragmentKey = (u64, Vec<String>);

enum Entry {
    /// Cold reads so far.
    Missed(u32),
    /// Being read whole.
    Loading,
    Loaded(RecordBatch),
    /// Too large for the budgets: read row by row.
    Refused,
}

/// One table's whole fragments (see the module docs).
#[derive(Default)]
pub struct FragmentCache {
    entries: HashMap<FragmentKey, Entry>,
    bytes: usize,
}

impl FragmentCache {
    /// The row at `offset` of a fragment read whole, if it is.
    pub fn row(&self, key: &FragmentKey, offset: usize) -> Option<RecordBatch> {
        match self.entries.get(key)? {
            Entry::Loaded(batch) if offset < batch.num_rows() => Some(batch.slice(offset, 1)),
            _ => None,
        }
    }

    /// Note a cold read of `key`; true if the caller should now read the
    /// fragment whole and `keep` it (it is marked as loading).
    pub fn missed(&mut self, key: &FragmentKey, rows: usize) -> bool {
        if rows > MAX_ROWS || self.bytes >= TABLE_BUDGET || SERVER_BYTES.load(Ordering::Relaxed) >= SERVER_BUDGET {
            return false;
        }
        let entry = self.entries.entry(key.clone()).or_insert(Entry::Missed(0));
        match entry {
            Entry::Missed(n) if *n + 1 >= LOAD_AFTER_MISSES => {
                *entry = Entry::Loading;
                true
            }
            Entry::Missed(n) => {
                *n += 1;
                false
            }
            _ => false,
        }
    }

    /// Keep `batch`, fragment `key` read whole (or note that the read
    /// failed, with None, so a later miss may try again). `present` are the
    /// fragments the table has now: entries of any other are dropped.
    pub fn keep(&mut self, key: FragmentKey, batch: Option<RecordBatch>, present: &HashSet<u64>) {
        self.entries.retain(|(fragment, _), entry| {
            let keep = present.contains(fragment);
            if !keep {
                if let Entry::Loaded(b) = entry {
                    let size = b.get_array_memory_size();
                    self.bytes -= size;
                    SERVER_BYTES.fetch_sub(size, Ordering::Relaxed);
                }
            }
            keep
        });
        let entry = match batch {
            None => Entry::Missed(0),
            Some(batch) => {
                let size = batch.get_array_memory_size();
                if self.bytes + size > TABLE_BUDGET || SERVER_BYTES.load(Ordering::Relaxed) + size > SERVER_BUDGET {
                    Entry::Refused
                } else {
                    self.bytes += size;
                    SERVER_BYTES.fetch_add(size, Ordering::Relaxed);
                    Entry::Loaded(batch)
                }
            }
        };
        if present.contains(&key.0) {
            self.entries.insert(key, entry);
        }
    }
}

impl Drop for FragmentCache {
    fn drop(&mut self) {
        SERVER_BYTES.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use std::sync::Arc;

    fn batch(n: i64) -> RecordBatch {
        RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from_iter_values(0..n)) as _)]).unwrap()
    }

    #[test]
    fn a_fragment_is_read_whole_after_enough_misses_and_answers_by_offset() {
        let mut cache = FragmentCache::default();
        let key: FragmentKey = (3, vec!["v".into()]);
        let loads = (0..LOAD_AFTER_MISSES).filter(|_| cache.missed(&key, 100)).count();
        assert_eq!(loads, 1, "one load, on the last miss");
        assert!(!cache.missed(&key, 100), "no second load while loading");
        assert_eq!(cache.row(&key, 5), None);
        cache.keep(key.clone(), Some(batch(100)), &HashSet::from([3]));
        let row = cache.row(&key, 42).unwrap();
        assert_eq!(row.column(0).as_ref(), &Int64Array::from(vec![42]) as &dyn arrow::array::Array);
        assert_eq!(cache.row(&key, 100), None, "past the end");
        assert_eq!(cache.row(&(3, vec!["w".into()]), 42), None, "another projection");
        assert!(!cache.missed(&(9, vec![]), MAX_ROWS + 1), "too many rows");
    }

    #[test]
    fn fragments_gone_from_the_table_are_dropped_with_their_bytes() {
        let mut cache = FragmentCache::default();
        cache.keep((1, vec![]), Some(batch(1000)), &HashSet::from([1]));
        let one = cache.bytes;
        assert!(one > 0);
        cache.keep((2, vec![]), Some(batch(1000)), &HashSet::from([2]));
        assert_eq!(cache.bytes, one, "fragment 1 was compacted away");
        assert_eq!(cache.row(&(1, vec![]), 0), None);
        assert!(cache.row(&(2, vec![]), 0).is_some());
        // A failed read leaves the fragment to be tried again later.
        cache.keep((2, vec!["x".into()]), None, &HashSet::from([2]));
        assert!(!cache.missed(&(2, vec!["x".into()]), 10));
    }
}
