//! Secondary indexes: `CREATE INDEX` / `DROP INDEX` as Lance scalar indexes
//! (BTree or bitmap) on one column.
//!
//! The catalog decides which indexes exist; the Lance dataset follows
//! ([`sync_indexes`]) right after the DDL, after every flush and at startup,
//! so an index declared on a table with no Lance data yet, or interrupted by
//! a crash, is built as soon as there is something to index. Lance's scanner
//! uses a scalar index for the filters a scan pushes down, and scans the
//! fragments added since (and the in-memory delta) directly; compaction
//! remaps the index, and `VACUUM` folds new fragments into it.

use std::sync::Arc;

use lance::Dataset;
use lance::index::DatasetIndexExt;
use lance_index::IndexType;
use lance_index::optimize::OptimizeOptions;
use lance_index::scalar::{BuiltinIndexType, ScalarIndexParams};
use tracing::{info, warn};

use super::Storage;
use super::catalog::{IndexDef, IndexMethod, TableDef};
use crate::error::{Result, TarnError, sqlstate};

/// Create the catalog's indexes Lance lacks and drop the ones it no longer
/// names; with `refresh`, also fold fragments added since into existing
/// indexes. Returns the new version, or None if nothing changed.
pub async fn sync_indexes(ds: &Dataset, def: &TableDef, refresh: bool) -> Result<Option<Dataset>> {
    let mut ds = ds.clone();
    let start = ds.version_id();
    // An index with fragments folded in since it was built has several
    // segments under one name.
    let mut present: Vec<String> = ds.load_indices().await?.iter().map(|i| i.name.clone()).collect();
    present.sort();
    present.dedup();
    for name in present.iter().filter(|n| !def.indexes.iter().any(|i| &i.name == *n)) {
        ds.drop_index(name).await?;
    }
    for index in def.indexes.iter().filter(|i| !present.contains(&i.name)) {
        let (index_type, builtin) = match index.method {
            IndexMethod::Btree => (IndexType::BTree, BuiltinIndexType::BTree),
            IndexMethod::Bitmap => (IndexType::Bitmap, BuiltinIndexType::Bitmap),
        };
        let params = ScalarIndexParams::for_builtin(builtin);
        ds.create_index(&[index.column.as_str()], index_type, Some(index.name.clone()), &params, true).await?;
        info!(table = %def.name, index = %index.name, column = %index.column, "index built");
    }
    let kept = def.indexes.iter().any(|i| present.contains(&i.name));
    if refresh && kept {
        // One segment per index: Lance's compaction only merges fragments
        // that the same index segments cover.
        ds.optimize_indices(&OptimizeOptions::merge(usize::MAX)).await?;
    }
    Ok((ds.version_id() != start).then_some(ds))
}

impl Storage {
    /// `CREATE INDEX [IF NOT EXISTS] [name] ON table [USING btree|bitmap] (column)`.
    /// Returns false when it existed and `if_not_exists`.
    pub async fn create_index(
        &self,
        schema: &str,
        table_name: &str,
        name: Option<String>,
        column: &str,
        method: IndexMethod,
        if_not_exists: bool,
    ) -> Result<bool> {
        let mut catalog = self.catalog.lock().await;
        let Some(def) = catalog.find(schema, table_name).cloned() else {
            if catalog.find_view(schema, table_name).is_some() {
                return Err(TarnError::new(sqlstate::WRONG_OBJECT_TYPE, format!("\"{table_name}\" is not a table")));
            }
            return Err(TarnError::undefined_table(table_name));
        };
        if def.kind == super::catalog::TableKind::Heap {
            return Err(TarnError::not_supported(format!(
                "\"{table_name}\" is a heap table: indexes are built in Lance, so only tables USING lance can have them"
            )));
        }
        if !def.columns.iter().any(|c| c.name == column) {
            return Err(TarnError::new(sqlstate::UNDEFINED_COLUMN, format!("column \"{column}\" does not exist")));
        }
        let name = match name {
            Some(n) => n,
            // PostgreSQL's choice: table_column_idx, numbered if taken.
            None => (0..)
                .map(|i| if i == 0 { format!("{table_name}_{column}_idx") } else { format!("{table_name}_{column}_idx{i}") })
                .find(|n| catalog.check_name_free(schema, n).is_ok())
                .expect("some suffix is free"),
        };
        if let Err(e) = catalog.check_name_free(schema, &name) {
            return if if_not_exists { Ok(false) } else { Err(e) };
        }
        let table = self.table(schema, table_name).ok_or_else(|| TarnError::undefined_table(table_name))?;
        let mut new_def = def.clone();
        new_def.indexes.push(IndexDef { name: name.clone(), column: column.to_string(), method });
        self.redefine_table(&mut catalog, &table, new_def).await?;
        drop(catalog);
        // Build it now over everything committed so far.
        let table = self.table(schema, table_name).ok_or_else(|| TarnError::undefined_table(table_name))?;
        self.flush_table(&table).await?;
        self.sync_table_indexes(&table, false).await;
        Ok(true)
    }

    /// `DROP INDEX [IF EXISTS] name`. Returns false when absent and `if_exists`.
    pub async fn drop_index(&self, schema: &str, name: &str, if_exists: bool) -> Result<bool> {
        let mut catalog = self.catalog.lock().await;
        let Some((def, _)) = catalog.find_index(schema, name) else {
            if if_exists {
                return Ok(false);
            }
            return Err(TarnError::new(sqlstate::UNDEFINED_OBJECT, format!("index \"{name}\" does not exist")));
        };
        let mut new_def = def.clone();
        new_def.indexes.retain(|i| i.name != name);
        let table = self.table(schema, &def.name).ok_or_else(|| TarnError::undefined_table(&def.name))?;
        self.redefine_table(&mut catalog, &table, new_def).await?;
        drop(catalog);
        if let Some(table) = self.table_by_id(table.def.id) {
            self.sync_table_indexes(&table, false).await;
        }
        Ok(true)
    }

    /// Bring the table's Lance indexes in line with its definition (errors
    /// are logged: the catalog has decided, and the next flush retries).
    pub(super) async fn sync_table_indexes(&self, table: &super::table::Table, refresh: bool) {
        let _flushing = table.flush_lock.lock().await;
        if let Err(e) = self.sync_indexes_locked(table, refresh).await {
            warn!(table = %table.def.name, error = %e, "could not bring Lance indexes up to date; will retry after the next flush");
        }
    }

    /// [`sync_indexes`] and publish; the caller holds the flush lock.
    pub(super) async fn sync_indexes_locked(&self, table: &super::table::Table, refresh: bool) -> Result<()> {
        let Some(ds) = self.snapshot().table(table.def.id).and_then(|v| v.dataset.clone()) else { return Ok(()) };
        if let Some(new) = sync_indexes(&ds, &table.def, refresh).await? {
            let new: Arc<Dataset> = table.pins.track(new);
            self.publish_dataset(table.def.id, new);
        }
        Ok(())
    }
}
