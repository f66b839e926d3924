//! Folding a table's delta into its stored form (brief invariant 4): one
//! Lance commit per flush that appends the live delta rows, extends the
//! deletion vectors of the rows deleted since, and records the WAL position
//! and the counters recovery resumes above — or, for a heap table, a new
//! checkpoint of every live row.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::UInt64Type;
use futures::TryStreamExt;
use lance::Dataset;
use lance::dataset::transaction::{Operation, TransactionBuilder, UpdateMode};
use lance::dataset::{CommitBuilder, InsertBuilder, WriteMode, WriteParams};
use tracing::info;

use super::{FLUSHED_LSN_PROPERTY, NEXT_ROWID_PROPERTY, Table, identity_property, path_str};
use crate::error::{Result, TarnError};
use crate::storage::catalog::TableKind;
use crate::storage::version::{ROWID, TableVersion};

/// What a flush produced: a Lance version (None when Lance needed no
/// change), or a heap table's checkpointed rows.
pub enum Folded {
    Lance(Option<Arc<Dataset>>),
    Heap(Arc<Vec<RecordBatch>>),
}

impl Table {
    /// Write `version`'s unflushed changes into Lance as one commit that
    /// records the newest LSN it folds. Returns the new dataset (None when
    /// Lance needs no change) and the rows appended.
    pub async fn fold(&self, version: &TableVersion) -> Result<(Folded, usize)> {
        if self.def.kind == TableKind::Heap {
            return self.checkpoint_heap(version);
        }
        let (props, written, rows) = self.write_delta(version).await?;
        Ok((Folded::Lance(written.map(|ds| self.committed(ds, props))), rows))
    }

    /// A heap table's flush: every live row, written as its new checkpoint.
    fn checkpoint_heap(&self, version: &TableVersion) -> Result<(Folded, usize)> {
        let mut rows: Vec<RecordBatch> = match version.heap.as_ref().filter(|_| !version.dataset_truncated) {
            Some(heap) => heap.iter().filter_map(|b| crate::storage::version::without_deleted(b, &version.deleted)).collect(),
            None => vec![],
        };
        let appended = version.delta_rows;
        rows.extend(version.live_delta());
        // The checkpoint is also what the table is read from until the next.
        let rows = crate::storage::version::coalesce(rows)?;
        self.write_heap(&rows, self.flush_props(version.last_lsn))?;
        Ok((Folded::Heap(Arc::new(rows)), appended))
    }

    /// Write a heap table's checkpoint (also after ALTER TABLE and at
    /// startup when its shape changed).
    pub fn write_heap(&self, rows: &[RecordBatch], props: HashMap<String, String>) -> Result<()> {
        crate::storage::heap::write(&self.dir, &self.storage_schema, rows, props.clone())?;
        *self.flushed.lock().unwrap() = (0, props);
        Ok(())
    }

    /// The properties a flush records with the data: the WAL position and
    /// the counters recovery must resume above.
    pub fn flush_props(&self, last_lsn: u64) -> HashMap<String, String> {
        let mut props = HashMap::from([
            (FLUSHED_LSN_PROPERTY.to_string(), last_lsn.to_string()),
            (NEXT_ROWID_PROPERTY.to_string(), self.next_rowid.load(Ordering::Relaxed).to_string()),
        ]);
        for (i, next) in self.identity_next.lock().unwrap().iter().enumerate() {
            if self.def.columns[i].identity.is_some() {
                props.insert(identity_property(i), next.to_string());
            }
        }
        props
    }

    /// A new Lance version that carries `props`: track it for cleanup.
    pub fn committed(&self, ds: Dataset, props: HashMap<String, String>) -> Arc<Dataset> {
        *self.flushed.lock().unwrap() = (ds.version_id(), props);
        self.pins.track(ds)
    }

    /// A same-rows Lance version recording this table's flush properties.
    /// After ALTER TABLE: Lance's schema operations carry no properties, and
    /// the identity counters are per column position, which the ALTER may
    /// have moved.
    pub async fn record_flush_props(&self, ds: &Dataset, last_lsn: u64) -> Result<Arc<Dataset>> {
        let props = self.flush_props(last_lsn);
        let operation = Operation::UpdateConfig {
            config_updates: None,
            table_metadata_updates: None,
            schema_metadata_updates: None,
            field_metadata_updates: HashMap::new(),
        };
        let tx = TransactionBuilder::new(ds.version_id(), operation).transaction_properties(Some(Arc::new(props.clone()))).build();
        let new_ds = CommitBuilder::new(Arc::new(ds.clone())).execute(tx).await?;
        Ok(self.committed(new_ds, props))
    }

    /// The properties of the newest flush, for a compaction commit to repeat.
    pub fn flush_properties(&self) -> (u64, HashMap<String, String>) {
        self.flushed.lock().unwrap().clone()
    }

    /// The Lance commit of [`Table::fold`]: its properties, the new dataset,
    /// the rows appended.
    async fn write_delta(&self, version: &TableVersion) -> Result<(HashMap<String, String>, Option<Dataset>, usize)> {
        let rows = crate::storage::version::coalesce(version.live_delta())?;
        let rows = rows.iter().map(crate::storage::lance_types::to_lance).collect::<Result<Vec<_>>>()?;
        let appended: usize = rows.iter().map(|b| b.num_rows()).sum();
        let props = self.flush_props(version.last_lsn);
        let params = WriteParams { skip_auto_cleanup: true, ..Default::default() };
        let Some(ds) = version.dataset.clone() else {
            if rows.is_empty() {
                return Ok((props, None, 0));
            }
            let params = WriteParams { mode: WriteMode::Create, ..params }.with_transaction_properties(props.clone());
            let uri = path_str(&self.dir)?.to_string();
            let ds = InsertBuilder::new(uri.as_str()).with_params(&params).execute(rows).await?;
            return Ok((props, Some(ds), appended));
        };
        let (updated, removed) = self.lance_deletions(version, &ds).await?;
        // Lance wants its own field order (ALTER TABLE ADD COLUMN appends
        // after the row id).
        let lance_schema = Arc::new(arrow::datatypes::Schema::from(ds.schema()));
        let rows = rows.iter().map(|b| crate::storage::lance_types::in_field_order(b, &lance_schema)).collect::<Result<Vec<_>>>()?;
        let new_fragments = if rows.is_empty() {
            vec![]
        } else {
            let params = WriteParams { mode: WriteMode::Append, ..params };
            match InsertBuilder::new(ds.clone()).with_params(&params).execute_uncommitted(rows).await?.operation {
                Operation::Append { fragments } => fragments,
                other => return Err(TarnError::internal(format!("Lance staged an unexpected {other:?}"))),
            }
        };
        if updated.is_empty() && removed.is_empty() && new_fragments.is_empty() {
            return Ok((props, None, 0));
        }
        let operation = if updated.is_empty() && removed.is_empty() {
            Operation::Append { fragments: new_fragments }
        } else {
            Operation::Update {
                removed_fragment_ids: removed,
                updated_fragments: updated,
                new_fragments,
                fields_modified: vec![],
                compacted_sstables: vec![],
                fields_for_preserving_frag_bitmap: ds.schema().fields_pre_order().map(|f| f.id as u32).collect(),
                update_mode: Some(UpdateMode::RewriteRows),
                inserted_rows_filter: None,
                updated_fragment_offsets: None,
            }
        };
        // The properties go on the transaction itself: Lance 14's
        // `CommitBuilder::with_transaction_properties` stores them but never
        // writes them.
        let tx = TransactionBuilder::new(ds.version_id(), operation)
            .transaction_properties(Some(Arc::new(props.clone())))
            .build();
        let new_ds = CommitBuilder::new(ds).execute(tx).await?;
        Ok((props, Some(new_ds), appended))
    }

    /// Deletion-vector updates for the rows `version` deletes from `ds`:
    /// (fragments with new deletion files, fragments now wholly deleted).
    async fn lance_deletions(
        &self,
        version: &TableVersion,
        ds: &Arc<Dataset>,
    ) -> Result<(Vec<lance::table::format::Fragment>, Vec<u64>)> {
        if version.dataset_truncated {
            return Ok((vec![], ds.get_fragments().iter().map(|f| f.id() as u64).collect()));
        }
        if version.deleted.is_empty() {
            return Ok((vec![], vec![]));
        }
        // Row ids are ours; Lance deletes by row address, found by one scan
        // of the row-id column.
        let mut by_fragment: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut scan = ds.scan();
        scan.project(&[ROWID])?;
        scan.with_row_address();
        let mut stream = scan.try_into_stream().await?;
        while let Some(batch) = stream.try_next().await? {
            let ids = batch.column(0).as_primitive::<UInt64Type>();
            let addrs = batch.column(1).as_primitive::<UInt64Type>();
            for (id, addr) in ids.values().iter().zip(addrs.values().iter()) {
                if version.deleted.contains_key(id) {
                    by_fragment.entry((addr >> 32) as u32).or_default().push(*addr as u32);
                }
            }
        }
        let (mut updated, mut removed) = (vec![], vec![]);
        for fragment in ds.get_fragments() {
            if let Some(offsets) = by_fragment.remove(&(fragment.id() as u32)) {
                let id = fragment.id() as u64;
                match fragment.extend_deletions(offsets).await? {
                    Some(f) => updated.push(f.metadata().clone()),
                    None => removed.push(id),
                }
            }
        }
        Ok((updated, removed))
    }

    pub fn log_flush(&self, rows: usize, last_lsn: u64, started: Instant) {
        info!(table = %self.def.name, rows, last_lsn, ms = started.elapsed().as_millis() as u64, "flushed delta into Lance");
    }
}
