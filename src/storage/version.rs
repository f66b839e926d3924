//! Immutable table versions: what one reader sees of a table.
//!
//! A [`TableVersion`] is a Lance dataset version plus the WAL-durable changes
//! not yet folded into it — inserted rows (the delta) and deleted row ids —
//! held in persistent collections (`imbl`), so taking a snapshot is a cheap
//! clone and a commit never copies the whole delta. [`DbState`] maps every
//! table to its version; a commit publishes a new `DbState` atomically, so a
//! statement that reads one `DbState` sees whole transactions only (brief
//! invariants 2 and 3).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::UInt64Type;
use lance::Dataset;

/// The hidden column every stored row carries: a per-table id that never
/// changes and is never reused, so deletes and updates can name rows in Lance
/// and in the delta alike (Lance's own row addresses move at compaction).
pub const ROWID: &str = "_tarn_rowid";

/// Rows committed to the WAL but not yet to Lance (storage schema: the user
/// columns, then [`ROWID`]).
#[derive(Debug, Clone)]
pub struct DeltaEntry {
    pub lsn: u64,
    /// Increases with every entry a table's delta gets (its position in
    /// `delta` changes as a flush drops older entries).
    pub seq: u64,
    pub batch: RecordBatch,
    pub at: Instant,
}

/// One table as a reader sees it.
#[derive(Debug, Clone, Default)]
pub struct TableVersion {
    pub dataset: Option<Arc<Dataset>>,
    /// A heap table's rows as of its last checkpoint (the role `dataset`
    /// plays for a Lance table).
    pub heap: Option<Arc<Vec<RecordBatch>>>,
    /// A TRUNCATE not yet flushed: every row of `dataset` is gone.
    pub dataset_truncated: bool,
    /// Shared entries: a commit's new version copies the vector's tail
    /// chunk (up to 64 entries), which for whole entries meant cloning as
    /// many record batches.
    pub delta: imbl::Vector<Arc<DeltaEntry>>,
    pub delta_rows: usize,
    delta_rows_at: RowIndex,
    next_delta_seq: u64,
    /// Deleted row ids (of `dataset` or `delta` rows) → LSN of the delete.
    pub deleted: imbl::HashMap<u64, u64>,
    /// Every change with LSN <= this is in `dataset`.
    pub flushed_lsn: u64,
    /// The newest LSN applied.
    pub last_lsn: u64,
    /// The oldest LSN applied but not yet in `dataset`.
    pub oldest_unflushed: Option<u64>,
    /// When the oldest unflushed change arrived (for the flush policy).
    pub unflushed_since: Option<Instant>,
    last_truncate_lsn: u64,
}

impl TableVersion {
    pub fn new(dataset: Option<Arc<Dataset>>, flushed_lsn: u64) -> TableVersion {
        TableVersion { dataset, flushed_lsn, last_lsn: flushed_lsn, ..Default::default() }
    }

    /// Apply one committed change. `inserts` are in the storage schema.
    /// Changes already folded into `dataset` (replayed at recovery) are skipped.
    pub fn apply(&mut self, lsn: u64, truncate: bool, deletes: &[u64], inserts: Vec<RecordBatch>) {
        if lsn <= self.flushed_lsn {
            return;
        }
        if truncate {
            self.dataset_truncated = self.dataset.is_some() || self.heap.is_some();
            self.delta.clear();
            self.delta_rows_at = RowIndex::default();
            self.delta_rows = 0;
            self.deleted.clear();
            self.last_truncate_lsn = lsn;
        }
        for &rowid in deletes {
            self.deleted.insert(rowid, lsn);
        }
        let at = Instant::now();
        for batch in inserts.into_iter().filter(|b| b.num_rows() > 0) {
            self.delta_rows += batch.num_rows();
            let seq = self.next_delta_seq;
            self.next_delta_seq += 1;
            self.delta_rows_at.add(seq, &batch);
            self.delta.push_back(Arc::new(DeltaEntry { lsn, seq, batch, at }));
        }
        self.oldest_unflushed.get_or_insert(lsn);
        self.unflushed_since.get_or_insert(at);
        self.last_lsn = self.last_lsn.max(lsn);
    }

    /// The delta's row with id `rowid` (deleted or not), as a one-row batch.
    pub fn delta_row(&self, rowid: u64) -> Option<RecordBatch> {
        let (seq, row) = self.delta_rows_at.get(rowid)?;
        let at = self.delta.binary_search_by_key(&seq, |d| d.seq).ok()?;
        Some(self.delta[at].batch.slice(row as usize, 1))
    }

    /// Whether the reader must filter deleted rows out.
    pub fn has_deletes(&self) -> bool {
        !self.deleted.is_empty()
    }

    /// The delta's rows that are still live, in the storage schema.
    pub fn live_delta(&self) -> Vec<RecordBatch> {
        self.delta.iter().filter_map(|d| without_deleted(&d.batch, &self.deleted)).collect()
    }

    /// After a flush folded everything up to `last_lsn` into `dataset`:
    /// keep only what is newer.
    /// `dataset` is None when the flush needed no Lance change (everything
    /// it folded cancelled out).
    pub fn folded(&mut self, dataset: Option<Arc<Dataset>>, last_lsn: u64) {
        if let Some(ds) = dataset {
            self.dataset = Some(ds);
        }
        if self.last_truncate_lsn <= last_lsn {
            self.dataset_truncated = false;
        }
        self.delta.retain(|d| d.lsn > last_lsn);
        // What stays after a flush is what was committed during it: little.
        self.delta_rows_at = RowIndex::default();
        for d in &self.delta {
            self.delta_rows_at.add(d.seq, &d.batch);
        }
        self.deleted.retain(|_, lsn| *lsn > last_lsn);
        self.delta_rows = self.delta.iter().map(|d| d.batch.num_rows()).sum();
        self.flushed_lsn = last_lsn;
        let newer_truncate = (self.last_truncate_lsn > last_lsn).then_some(self.last_truncate_lsn);
        self.oldest_unflushed = self
            .delta
            .iter()
            .map(|d| d.lsn)
            .chain(self.deleted.values().copied())
            .chain(newer_truncate)
            .min();
        self.unflushed_since = self.oldest_unflushed.map(|_| Instant::now());
    }

    /// After a heap table's flush checkpointed `rows` (everything up to
    /// `last_lsn`).
    pub fn folded_heap(&mut self, rows: Arc<Vec<RecordBatch>>, last_lsn: u64) {
        self.heap = Some(rows);
        self.folded(None, last_lsn);
    }

    /// Rows waiting to be flushed (inserted or deleted).
    pub fn pending_rows(&self) -> usize {
        self.delta_rows + self.deleted.len()
    }
}

/// Where the delta's rows are, by row id: a key probe finds a row among
/// thousands of single-row entries without looking at each.
///
/// Most entries hold a run of consecutive fresh row ids above every id
/// indexed before (one statement's inserts, committed in the order their
/// ids were drawn). Those are kept as runs, in order, and found by binary
/// search: adding one copies a few words, where a persistent hash map copied
/// a path of nodes for every row. The rest — a commit that overtook one
/// whose ids were drawn earlier, or ids that are not consecutive — go to a
/// map.
#[derive(Debug, Clone, Default)]
struct RowIndex {
    /// (first row id, last row id, entry `seq`): ascending and disjoint.
    runs: imbl::Vector<(u64, u64, u64)>,
    /// Row id → (entry `seq`, row in it), for rows not in a run.
    others: imbl::HashMap<u64, (u64, u32)>,
}

impl RowIndex {
    /// Note where each row of `batch` (delta entry `seq`) is.
    fn add(&mut self, seq: u64, batch: &RecordBatch) {
        // The storage schema's last column (a lookup by name compared
        // every column's name on each commit).
        let Some(ids) = batch.columns().last().and_then(|c| c.as_primitive_opt::<UInt64Type>()) else { return };
        debug_assert_eq!(batch.schema_ref().fields().last().map(|f| f.name().as_str()), Some(ROWID));
        let ids = ids.values();
        let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else { return };
        let consecutive = ids.windows(2).all(|w| w[0].checked_add(1) == Some(w[1]));
        let above = self.runs.last().is_none_or(|&(_, hi, _)| first > hi);
        if consecutive && above {
            self.runs.push_back((first, last, seq));
            return;
        }
        for (row, &id) in ids.iter().enumerate() {
            self.others.insert(id, (seq, row as u32));
        }
    }

    /// (entry `seq`, row in it) of row id `id`.
    fn get(&self, id: u64) -> Option<(u64, u32)> {
        let at = match self.runs.binary_search_by(|&(lo, _, _)| lo.cmp(&id)) {
            Ok(i) => Some(i),
            Err(i) => i.checked_sub(1),
        };
        if let Some(&(lo, hi, seq)) = at.map(|i| &self.runs[i])
            && id <= hi
        {
            return Some((seq, (id - lo) as u32));
        }
        self.others.get(&id).copied()
    }
}

/// `batch` without the rows whose row id (its last column) is in `deleted`;
/// None if no row is left.
pub fn without_deleted(batch: &RecordBatch, deleted: &imbl::HashMap<u64, u64>) -> Option<RecordBatch> {
    if deleted.is_empty() {
        return (batch.num_rows() > 0).then(|| batch.clone());
    }
    let ids = batch.column(batch.num_columns() - 1).as_primitive::<UInt64Type>();
    let keep: arrow::array::BooleanArray = ids.values().iter().map(|id| Some(!deleted.contains_key(id))).collect();
    let out = arrow::compute::filter_record_batch(batch, &keep).expect("filter with a mask of the batch's length");
    (out.num_rows() > 0).then_some(out)
}

/// Rows per batch that [`coalesce`] aims at.
const COALESCED_ROWS: usize = 64 * 1024;

/// `batches` merged into batches of up to [`COALESCED_ROWS`] rows (runs of
/// batches with the same schema only). The delta is mostly one-row batches,
/// one per commit; Lance's writer pays per batch, and writing 40,000 of them
/// one by one took seconds of CPU at a flush.
pub fn coalesce(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
    let mut out = vec![];
    let mut coalescer: Option<arrow::compute::BatchCoalescer> = None;
    for batch in batches {
        if coalescer.as_ref().is_some_and(|c| c.schema() != batch.schema()) {
            let mut done = coalescer.take().expect("checked above");
            done.finish_buffered_batch()?;
            out.extend(std::iter::from_fn(|| done.next_completed_batch()));
        }
        let c = coalescer.get_or_insert_with(|| arrow::compute::BatchCoalescer::new(batch.schema(), COALESCED_ROWS));
        c.push_batch(batch)?;
        out.extend(std::iter::from_fn(|| c.next_completed_batch()));
    }
    if let Some(mut done) = coalescer {
        done.finish_buffered_batch()?;
        out.extend(std::iter::from_fn(|| done.next_completed_batch()));
    }
    Ok(out)
}

/// Every table's version at one commit: what one statement reads.
#[derive(Debug, Clone, Default)]
pub struct DbState {
    /// Increases by one with every publish.
    pub seq: u64,
    pub tables: imbl::HashMap<u64, Arc<TableVersion>>,
}

impl DbState {
    pub fn table(&self, id: u64) -> Option<Arc<TableVersion>> {
        self.tables.get(&id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn coalesce_merges_runs_of_one_schema_and_keeps_row_order() {
        let other = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let mut batches: Vec<RecordBatch> = (0..100u64).map(|i| rows(&[i])).collect();
        batches.push(RecordBatch::try_new(other.clone(), vec![Arc::new(Int64Array::from(vec![7]))]).unwrap());
        batches.extend((100..103u64).map(|i| rows(&[i])));
        let out = coalesce(batches).unwrap();
        assert_eq!(out.iter().map(|b| b.num_rows()).collect::<Vec<_>>(), vec![100, 1, 3]);
        assert_eq!(out[1].schema(), other);
        let ids: Vec<u64> = [&out[0], &out[2]]
            .iter()
            .flat_map(|b| b.column(1).as_primitive::<UInt64Type>().values().to_vec())
            .collect();
        assert_eq!(ids, (0..103).collect::<Vec<_>>());
        assert!(coalesce(vec![]).unwrap().is_empty());
    }

    fn rows(ids: &[u64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true), Field::new(ROWID, DataType::UInt64, false)]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.iter().map(|&i| i as i64 * 10).collect::<Vec<_>>())),
                Arc::new(UInt64Array::from(ids.to_vec())),
            ],
        )
        .unwrap()
    }

    fn live_ids(v: &TableVersion) -> Vec<u64> {
        v.live_delta().iter().flat_map(|b| b.column(1).as_primitive::<UInt64Type>().values().to_vec()).collect()
    }

    #[test]
    fn deletes_and_truncates_apply_in_lsn_order() {
        let mut v = TableVersion::new(None, 0);
        v.apply(1, false, &[], vec![rows(&[1, 2, 3])]);
        v.apply(2, false, &[2], vec![rows(&[4])]);
        assert_eq!(live_ids(&v), vec![1, 3, 4]);
        assert_eq!(v.oldest_unflushed, Some(1));
        v.apply(3, true, &[], vec![rows(&[5])]);
        assert_eq!(live_ids(&v), vec![5]);
        assert!(!v.has_deletes());
    }

    #[test]
    fn delta_rows_are_found_by_row_id_across_flushes() {
        let mut v = TableVersion::new(None, 0);
        v.apply(1, false, &[], vec![rows(&[1, 2, 3])]);
        v.apply(2, false, &[2], vec![rows(&[4]), rows(&[5, 6])]);
        let found = |v: &TableVersion, id| v.delta_row(id).map(|b| b.column(1).as_primitive::<UInt64Type>().value(0));
        assert_eq!((found(&v, 2), found(&v, 6), found(&v, 7)), (Some(2), Some(6), None));
        v.folded(None, 1);
        assert_eq!((found(&v, 1), found(&v, 4), found(&v, 6)), (None, Some(4), Some(6)));
        v.apply(3, true, &[], vec![rows(&[8])]);
        assert_eq!((found(&v, 4), found(&v, 8)), (None, Some(8)));
    }

    #[test]
    fn rows_out_of_order_or_not_consecutive_are_found_too() {
        // Commits that overtook each other, gaps, a descending batch and a
        // run below every earlier one: every id is found in the
        // entry that holds it, and only there.
        let entries: Vec<Vec<u64>> =
            vec![vec![10, 11, 12], vec![20], vec![15], vec![13, 14], vec![30, 32], vec![41, 40], vec![21, 22], vec![50], vec![9]];
        let mut v = TableVersion::new(None, 0);
        let mut expected = std::collections::HashMap::new();
        for (lsn, ids) in entries.iter().enumerate() {
            v.apply(lsn as u64 + 1, false, &[], vec![rows(ids)]);
            for (row, &id) in ids.iter().enumerate() {
                expected.insert(id, (lsn as u64, row as u32));
            }
        }
        for id in 0..60u64 {
            assert_eq!(v.delta_rows_at.get(id), expected.get(&id).copied(), "row id {id}");
        }
        assert!(v.delta_rows_at.runs.len() >= 3, "in-order entries are kept as runs");
    }

    #[test]
    fn changes_already_flushed_are_not_replayed() {
        let mut v = TableVersion::new(None, 5);
        v.apply(4, false, &[], vec![rows(&[1])]);
        assert_eq!(v.delta_rows, 0);
        assert_eq!(v.oldest_unflushed, None);
        v.apply(6, false, &[9], vec![]);
        assert_eq!(v.oldest_unflushed, Some(6));
    }
}
