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
/// columns, then [`ROWID`]): one commit's, or several merged.
#[derive(Debug, Clone)]
pub struct DeltaEntry {
    /// The newest LSN of its rows.
    pub lsn: u64,
    /// Increases with every entry a table's delta gets (its position in
    /// `delta` changes as a flush drops older entries).
    pub seq: u64,
    pub batch: RecordBatch,
    /// For an entry merged from several commits: each commit's LSN and the
    /// row its rows end before, ascending. Empty: every row is `lsn`'s.
    commits: Vec<(u64, u32)>,
    /// How many merges made it; [`BIG`] for an entry never merged.
    level: u8,
}

/// Small entries at the delta's end are merged into one, this many at a
/// time. A one-row commit's batch costs ~800 bytes of arrays, buffers and
/// headers for a few dozen bytes of values, so a table taking single-row
/// inserts grew by that much per commit until its flush: fresh memory that
/// faulted in 2 MiB at a time and stalled a commit for ~5 ms every ~2,500
/// commits. A scan also paid per batch: 130,000 of them took 200 ms.
const MERGE_FANOUT: usize = 32;
/// Merged at most this often (level 2: 1,024 single-row commits a batch),
/// so each row is copied at most twice before its flush.
const MAX_MERGE_LEVEL: u8 = 2;
/// A merge is skipped when it would make a batch larger than this.
const MERGED_MAX_ROWS: usize = 64 * 1024;
/// The level of an entry that is large enough as it is.
const BIG: u8 = u8::MAX;

impl DeltaEntry {
    /// The oldest LSN of its rows.
    fn first_lsn(&self) -> u64 {
        self.commits.first().map_or(self.lsn, |&(lsn, _)| lsn)
    }

    /// The part of this entry committed after `lsn`, if any.
    fn after(self: &Arc<Self>, lsn: u64) -> Option<Arc<DeltaEntry>> {
        if self.lsn <= lsn {
            return None;
        }
        if self.first_lsn() > lsn {
            return Some(self.clone());
        }
        // Merged, with commits on both sides of `lsn` (commits ascend, and
        // the first is at or below it).
        let kept = self.commits.partition_point(|&(l, _)| l <= lsn);
        let start = self.commits[kept - 1].1;
        Some(Arc::new(DeltaEntry {
            lsn: self.lsn,
            seq: self.seq,
            batch: self.batch.slice(start as usize, self.batch.num_rows() - start as usize),
            commits: self.commits[kept..].iter().map(|&(l, end)| (l, end - start)).collect(),
            level: self.level,
        }))
    }
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
        for batch in inserts.into_iter().filter(|b| b.num_rows() > 0) {
            self.delta_rows += batch.num_rows();
            let level = if batch.num_rows() * MERGE_FANOUT > MERGED_MAX_ROWS { BIG } else { 0 };
            self.push_entry(DeltaEntry { lsn, seq: 0, batch, commits: vec![], level });
            self.merge_tail();
        }
        self.oldest_unflushed.get_or_insert(lsn);
        self.unflushed_since.get_or_insert_with(Instant::now);
        self.last_lsn = self.last_lsn.max(lsn);
    }

    /// Append `entry` to the delta under the next `seq`.
    fn push_entry(&mut self, mut entry: DeltaEntry) {
        entry.seq = self.next_delta_seq;
        self.next_delta_seq += 1;
        self.delta_rows_at.add(entry.seq, &entry.batch);
        self.delta.push_back(Arc::new(entry));
    }

    /// While the delta ends in [`MERGE_FANOUT`] entries of one level and
    /// schema, merge them into one entry of the next level.
    fn merge_tail(&mut self) {
        loop {
            let Some(last) = self.delta.last() else { return };
            if last.level >= MAX_MERGE_LEVEL || self.delta.len() < MERGE_FANOUT {
                return;
            }
            // The newest entry's LSN is the merged entry's.
            let (level, lsn, schema) = (last.level, last.lsn, last.batch.schema_ref().clone());
            let newest = || self.delta.iter().rev().take(MERGE_FANOUT);
            let one_kind = newest().all(|d| d.level == level && (Arc::ptr_eq(d.batch.schema_ref(), &schema) || *d.batch.schema_ref() == schema));
            if !one_kind || newest().map(|d| d.batch.num_rows()).sum::<usize>() > MERGED_MAX_ROWS {
                return;
            }
            let tail = self.delta.split_off(self.delta.len() - MERGE_FANOUT);
            let batch = match arrow::compute::concat_batches(&schema, tail.iter().map(|d| &d.batch)) {
                Ok(batch) => batch,
                Err(_) => {
                    // Not expected with one schema; the entries stay apart.
                    self.delta.append(tail);
                    return;
                }
            };
            let mut commits = Vec::with_capacity(tail.iter().map(|d| d.commits.len().max(1)).sum());
            let mut base = 0u32;
            for d in tail.iter() {
                let n = d.batch.num_rows() as u32;
                match d.commits.is_empty() {
                    true => commits.push((d.lsn, base + n)),
                    false => commits.extend(d.commits.iter().map(|&(l, end)| (l, base + end))),
                }
                base += n;
            }
            for d in tail.iter().rev() {
                self.delta_rows_at.remove(d.seq, &d.batch);
            }
            self.push_entry(DeltaEntry { lsn, seq: 0, batch, commits, level: level + 1 });
        }
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
        self.delta = self.delta.iter().filter_map(|d| d.after(last_lsn)).collect();
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
            .map(|d| d.first_lsn())
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
/// thousands of entries without looking at each.
///
/// Most rows come in runs of consecutive fresh row ids above every id
/// indexed before (one statement's inserts, committed in the order their
/// ids were drawn; a merged entry is mostly such runs end to end). Those are
/// kept as runs, in order, and found by binary search: adding one copies a
/// few words, where a persistent hash map copied a path of nodes for every
/// row. The rest — a commit that overtook one whose ids were drawn earlier,
/// or ids that are not consecutive — go to a map.
#[derive(Debug, Clone, Default)]
struct RowIndex {
    /// (first row id, last row id, entry `seq`, row of the first id in the
    /// entry): ascending and disjoint.
    runs: imbl::Vector<(u64, u64, u64, u32)>,
    /// Row id → (entry `seq`, row in it), for rows not in a run.
    others: imbl::HashMap<u64, (u64, u32)>,
}

impl RowIndex {
    /// The row ids of `batch` (the storage schema's last column).
    fn ids(batch: &RecordBatch) -> &[u64] {
        // By position: a lookup by name compared every column's name on each commit.
        debug_assert_eq!(batch.schema_ref().fields().last().map(|f| f.name().as_str()), Some(ROWID));
        batch.columns().last().and_then(|c| c.as_primitive_opt::<UInt64Type>()).map_or(&[], |ids| ids.values())
    }

    /// Note where each row of `batch` (delta entry `seq`) is.
    fn add(&mut self, seq: u64, batch: &RecordBatch) {
        let ids = Self::ids(batch);
        let mut start = 0;
        while start < ids.len() {
            // The run of consecutive ids from `start`.
            let mut end = start + 1;
            while end < ids.len() && ids[end - 1].checked_add(1) == Some(ids[end]) {
                end += 1;
            }
            let (first, last) = (ids[start], ids[end - 1]);
            if self.runs.last().is_none_or(|&(_, hi, _, _)| first > hi) {
                self.runs.push_back((first, last, seq, start as u32));
            } else {
                for (row, &id) in ids.iter().enumerate().take(end).skip(start) {
                    self.others.insert(id, (seq, row as u32));
                }
            }
            start = end;
        }
    }

    /// Forget the rows of entry `seq` (`batch`), the newest entry indexed.
    fn remove(&mut self, seq: u64, batch: &RecordBatch) {
        let mut in_runs = 0;
        while let Some(&(lo, hi, s, _)) = self.runs.last()
            && s == seq
        {
            in_runs += hi - lo + 1;
            self.runs.pop_back();
        }
        if in_runs < batch.num_rows() as u64 {
            for id in Self::ids(batch) {
                if self.others.get(id).is_some_and(|&(s, _)| s == seq) {
                    self.others.remove(id);
                }
            }
        }
    }

    /// (entry `seq`, row in it) of row id `id`.
    fn get(&self, id: u64) -> Option<(u64, u32)> {
        let at = match self.runs.binary_search_by(|&(lo, _, _, _)| lo.cmp(&id)) {
            Ok(i) => Some(i),
            Err(i) => i.checked_sub(1),
        };
        if let Some(&(lo, hi, seq, row)) = at.map(|i| &self.runs[i])
            && id <= hi
        {
            return Some((seq, row + (id - lo) as u32));
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
    // Most batches lose no row (an UPDATE's new row, a delta entry whose
    // rows no later statement deleted): no mask and no copy for those.
    if !ids.values().iter().any(|id| deleted.contains_key(id)) {
        return (batch.num_rows() > 0).then(|| batch.clone());
    }
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

    /// Every delta row id with its value column and the entry it is found in.
    fn check_every_row_is_found(v: &TableVersion, ids: &[u64]) {
        assert_eq!(live_ids(v), ids, "rows stay in commit order");
        assert_eq!(v.delta_rows, ids.len());
        for &id in ids {
            let row = v.delta_row(id).unwrap_or_else(|| panic!("row id {id} not found"));
            assert_eq!(row.column(1).as_primitive::<UInt64Type>().value(0), id);
            assert_eq!(row.column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0), id as i64 * 10);
        }
        assert!(v.delta_row(ids.iter().max().map_or(0, |m| m + 1)).is_none());
    }

    #[test]
    fn single_row_commits_are_merged_into_few_entries() {
        let mut v = TableVersion::new(None, 0);
        let ids: Vec<u64> = (1..=3000).collect();
        for &id in &ids {
            v.apply(id, false, &[], vec![rows(&[id])]);
        }
        // 2 × 1024-row entries, 29 × 32-row ones, then 24 single rows.
        let sizes: Vec<usize> = v.delta.iter().map(|d| d.batch.num_rows()).collect();
        assert_eq!(sizes.iter().filter(|&&n| n == 1024).count(), 2, "{sizes:?}");
        assert_eq!(v.delta.len(), 2 + 29 + 24, "{sizes:?}");
        check_every_row_is_found(&v, &ids);
        assert!(v.delta_rows_at.others.is_empty(), "consecutive ids stay runs when merged");
        assert_eq!(v.oldest_unflushed, Some(1));
    }

    #[test]
    fn a_flush_inside_a_merged_entry_keeps_exactly_the_later_commits() {
        let mut v = TableVersion::new(None, 0);
        for id in 1..=2000u64 {
            v.apply(id, false, &[], vec![rows(&[id])]);
        }
        // A reader's snapshot, taken before the flush, is not changed by it.
        let snapshot = v.clone();
        for last in [700u64, 1024, 1500, 1999] {
            let mut f = v.clone();
            f.folded(None, last);
            let later: Vec<u64> = (last + 1..=2000).collect();
            check_every_row_is_found(&f, &later);
            assert_eq!(f.oldest_unflushed, Some(last + 1));
            // Commits after the flush merge with what it left.
            for id in 2001..=2100u64 {
                f.apply(id, false, &[], vec![rows(&[id])]);
            }
            let all: Vec<u64> = (last + 1..=2100).collect();
            check_every_row_is_found(&f, &all);
            f.folded(None, 2050);
            check_every_row_is_found(&f, &(2051..=2100).collect::<Vec<_>>());
        }
        check_every_row_is_found(&snapshot, &(1..=2000).collect::<Vec<_>>());
    }

    #[test]
    fn merged_commits_that_overtook_each_other_are_all_found() {
        // As from concurrent sessions: ids drawn in one order, committed in
        // another, some commits of several rows, some deleted again.
        let mut v = TableVersion::new(None, 0);
        let mut order = vec![];
        let mut next = 1u64;
        for lsn in 1..=1500u64 {
            let ids: Vec<u64> = match lsn % 7 {
                0 => vec![next + 1, next],
                3 => vec![next, next + 1, next + 2],
                _ => vec![next],
            };
            next += ids.len() as u64;
            let batch = match lsn % 5 {
                // Swap with the next commit's ids: this one overtook it.
                1 => {
                    let later: Vec<u64> = (next..next + 1).collect();
                    next += 1;
                    order.extend(&later);
                    v.apply(lsn, false, &[], vec![rows(&later), rows(&ids)]);
                    order.extend(&ids);
                    continue;
                }
                _ => rows(&ids),
            };
            order.extend(&ids);
            v.apply(lsn, false, &[], vec![batch]);
        }
        assert!(v.delta.len() < 100, "merged: {} entries", v.delta.len());
        check_every_row_is_found(&v, &order);
        let deleted: Vec<u64> = order.iter().copied().filter(|id| id % 3 == 0).collect();
        v.apply(1501, false, &deleted, vec![]);
        let live: Vec<u64> = order.iter().copied().filter(|id| id % 3 != 0).collect();
        assert_eq!(live_ids(&v), live);
    }

    #[test]
    fn entries_of_another_schema_or_large_are_not_merged() {
        let other = Arc::new(Schema::new(vec![Field::new("w", DataType::Int64, true), Field::new(ROWID, DataType::UInt64, false)]));
        let mut v = TableVersion::new(None, 0);
        for id in 1..=20u64 {
            v.apply(id, false, &[], vec![rows(&[id])]);
        }
        for id in 21..=40u64 {
            let b = rows(&[id]);
            v.apply(id, false, &[], vec![RecordBatch::try_new(other.clone(), b.columns().to_vec()).unwrap()]);
        }
        assert_eq!(v.delta.len(), 40, "no 32 entries of one schema");
        let big: Vec<u64> = (41..41 + 4096).collect();
        v.apply(41, false, &[], vec![rows(&big)]);
        assert_eq!(v.delta.last().unwrap().level, BIG);
        assert_eq!(v.delta.len(), 41);
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
