//! Compaction and old-version cleanup of a table's Lance dataset.
//!
//! Every flush adds at most one fragment, so a table written in small
//! commits would collect fragments (and versions) without bound. After a
//! flush, the flusher asks [`needs_compaction`]; if so, Lance's own
//! `compact_files` merges fragments and materialises deletion vectors. Which
//! fragments take part is chosen size-tiered ([`excluded_fragments`]): an
//! old large fragment is only rewritten once the newer ones add up to about
//! its size, so a growing table is not rewritten after every flush.
//!
//! Every compaction commit carries the table's flush properties (WAL
//! position, row-id and identity counters), so the newest version always
//! says what it holds. Cleanup (Lance's `cleanup_with_policy`) then removes
//! versions older than both the oldest version a reader still holds
//! ([`VersionPins`]) and the newest version carrying flush properties —
//! a running query never loses the files it reads (brief invariant 4).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use lance::Dataset;
use lance::dataset::cleanup::{CleanupPolicy, RemovalStats};
use lance::dataset::optimize::{CompactionMetrics, CompactionOptions, compact_files};

use crate::error::Result;

/// When and how the flusher compacts.
#[derive(Debug, Clone)]
pub struct CompactionPolicy {
    /// Compact once a table has this many fragments smaller than
    /// `target_rows_per_fragment` (or a fragment with many deletions).
    pub max_small_fragments: usize,
    /// Fragments this large are left alone.
    pub target_rows_per_fragment: usize,
    /// A fragment with more than this fraction of its rows deleted is
    /// rewritten without them.
    pub deleted_fraction: f32,
    /// Clean up old versions once this many versions were committed since
    /// the last cleanup.
    pub cleanup_every_versions: u64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            max_small_fragments: 8,
            target_rows_per_fragment: 1_000_000,
            deleted_fraction: 0.1,
            cleanup_every_versions: 8,
        }
    }
}

/// The dataset versions readers may still hold. Every `Arc<Dataset>` a table
/// hands out is tracked weakly; a version is pinned while any scan, snapshot
/// or transaction keeps its `Arc` alive.
#[derive(Debug, Default)]
pub struct VersionPins {
    pins: Mutex<Vec<Weak<Dataset>>>,
}

impl VersionPins {
    pub fn track(&self, ds: Dataset) -> Arc<Dataset> {
        let ds = Arc::new(ds);
        self.pins.lock().unwrap().push(Arc::downgrade(&ds));
        ds
    }

    /// The oldest version still held by anyone.
    pub fn oldest(&self) -> Option<u64> {
        let mut pins = self.pins.lock().unwrap();
        pins.retain(|w| w.strong_count() > 0);
        pins.iter().filter_map(|w| w.upgrade()).map(|ds| ds.version_id()).min()
    }
}

/// What compaction needs to know of one fragment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FragmentSize {
    pub id: u32,
    pub physical_rows: usize,
    pub deleted_rows: usize,
}

impl FragmentSize {
    fn live_rows(&self) -> usize {
        self.physical_rows.saturating_sub(self.deleted_rows)
    }

    fn mostly_deleted(&self, policy: &CompactionPolicy) -> bool {
        self.physical_rows > 0 && self.deleted_rows as f32 / self.physical_rows as f32 > policy.deleted_fraction
    }
}

pub fn fragment_sizes(ds: &Dataset) -> Vec<FragmentSize> {
    ds.get_fragments()
        .iter()
        .map(|f| {
            let m = f.metadata();
            FragmentSize {
                id: m.id as u32,
                physical_rows: m.physical_rows.unwrap_or(0),
                deleted_rows: m.deletion_file.as_ref().and_then(|d| d.num_deleted_rows).unwrap_or(0),
            }
        })
        .collect()
}

/// Whether the flusher should compact a dataset with these fragments.
/// `full` (VACUUM): whenever two small fragments or any deletion exist.
pub fn needs_compaction(fragments: &[FragmentSize], policy: &CompactionPolicy, full: bool) -> bool {
    let small = fragments.iter().filter(|f| f.live_rows() < policy.target_rows_per_fragment).count();
    if full {
        return small >= 2 || fragments.iter().any(|f| f.deleted_rows > 0);
    }
    small >= policy.max_small_fragments || fragments.iter().any(|f| f.mostly_deleted(policy))
}

/// Fragments (in dataset order, oldest first) to keep out of this
/// compaction: walking from the newest, a fragment joins while it is at
/// most twice the live rows of the newer ones already taken; the first that
/// is larger, and everything older, waits for a later round. Fragments with
/// many deletions always take part, so their deletions are materialised.
pub fn excluded_fragments(fragments: &[FragmentSize], policy: &CompactionPolicy) -> Vec<u32> {
    let mut newer_rows = 0usize;
    let mut excluded = vec![];
    let mut cut = false;
    for f in fragments.iter().rev() {
        if !cut && newer_rows > 0 && f.live_rows() > 2 * newer_rows {
            cut = true;
        }
        if cut && !f.mostly_deleted(policy) {
            excluded.push(f.id);
        } else {
            newer_rows += f.live_rows();
        }
    }
    excluded.reverse();
    excluded
}

/// Compact `ds` (a new version carrying `properties`), or None when Lance
/// found nothing worth rewriting. `full` (VACUUM) merges every small
/// fragment and removes every deleted row.
pub async fn compact(
    ds: &Dataset,
    policy: &CompactionPolicy,
    full: bool,
    properties: HashMap<String, String>,
) -> Result<Option<(Dataset, CompactionMetrics)>> {
    let fragments = fragment_sizes(ds);
    let options = CompactionOptions {
        target_rows_per_fragment: policy.target_rows_per_fragment,
        materialize_deletions: true,
        materialize_deletions_threshold: if full { 0.0 } else { policy.deleted_fraction },
        excluded_fragment_ids: if full { vec![] } else { excluded_fragments(&fragments, policy) },
        ..Default::default()
    }
    .transaction_properties(properties);
    let mut compacted = ds.clone();
    let metrics = compact_files(&mut compacted, options, None).await?;
    if compacted.version_id() == ds.version_id() {
        return Ok(None);
    }
    Ok(Some((compacted, metrics)))
}

/// Remove every version older than `keep_from` and the files only they use.
pub async fn cleanup(ds: &Dataset, keep_from: u64) -> Result<RemovalStats> {
    let policy = CleanupPolicy { before_version: Some(keep_from), error_if_tagged_old_versions: false, ..Default::default() };
    Ok(ds.cleanup_with_policy(policy).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frags(rows: &[usize]) -> Vec<FragmentSize> {
        rows.iter().enumerate().map(|(i, &r)| FragmentSize { id: i as u32, physical_rows: r, deleted_rows: 0 }).collect()
    }

    #[test]
    fn equal_small_fragments_all_compact() {
        let policy = CompactionPolicy::default();
        let f = frags(&[100; 8]);
        assert!(needs_compaction(&f, &policy, false));
        assert!(!needs_compaction(&f[..7], &policy, false));
        assert!(excluded_fragments(&f, &policy).is_empty());
    }

    #[test]
    fn a_large_old_fragment_waits_until_newer_ones_catch_up() {
        let policy = CompactionPolicy::default();
        // 800 rows against 7 × 100 newer: 800 <= 2 × 700, so it joins.
        assert!(excluded_fragments(&frags(&[800, 100, 100, 100, 100, 100, 100, 100]), &policy).is_empty());
        // 5000 rows against 700: it and anything older wait.
        assert_eq!(excluded_fragments(&frags(&[9000, 5000, 100, 100, 100, 100, 100, 100, 100]), &policy), vec![0, 1]);
    }

    #[test]
    fn fragments_with_many_deletions_always_take_part() {
        let policy = CompactionPolicy::default();
        let mut f = frags(&[5000, 100, 100]);
        assert!(!needs_compaction(&f, &policy, false));
        f[0].deleted_rows = 1000;
        assert!(needs_compaction(&f, &policy, false));
        assert!(excluded_fragments(&f, &policy).is_empty());
    }

    #[test]
    fn fragment_count_stays_logarithmic_under_equal_flushes() {
        // Simulate 2000 flushes of 100 rows with the policy's choices.
        let policy = CompactionPolicy::default();
        let mut fragments: Vec<usize> = vec![];
        let mut rewritten = 0usize;
        for _ in 0..2000 {
            fragments.push(100);
            let f = frags(&fragments);
            if needs_compaction(&f, &policy, false) {
                let excluded = excluded_fragments(&f, &policy);
                let (keep, merge): (Vec<&FragmentSize>, Vec<&FragmentSize>) = f.iter().partition(|x| excluded.contains(&x.id));
                rewritten += merge.iter().map(|x| x.physical_rows).sum::<usize>();
                fragments = keep.iter().map(|x| x.physical_rows).collect();
                fragments.push(merge.iter().map(|x| x.physical_rows).sum());
            }
            assert!(fragments.len() <= 24, "{fragments:?}");
        }
        // Each row is rewritten a logarithmic number of times, not once per flush.
        assert!(rewritten < 200_000 * 12, "rewrote {rewritten} rows");
    }
}
