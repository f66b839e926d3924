//! `ALTER TABLE` column changes: add, drop, rename, change type, defaults
//! and NOT NULL.
//!
//! The catalog decides (one atomic commit, brief invariant 6); the Lance
//! dataset then follows it ([`conform_lance`]). Before the catalog commit
//! the table's delta is folded into Lance under its write lock, so no WAL
//! record or in-memory row of the old shape outlives the change. A crash
//! after the catalog commit leaves Lance behind the catalog; opening the
//! table runs [`conform_lance`] again and finishes the change.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Schema};
use lance::Dataset;
use lance::dataset::{BatchUDF, ColumnAlteration, NewColumnTransform};
use tracing::info;

use super::Storage;
use super::catalog::{ColumnDef, TableDef};
use super::scan::read_columns;
use super::table::Table;
use super::version::ROWID;
use crate::error::{Result, TarnError, sqlstate};
use crate::sql::alter::AlterAction;
use crate::types::PgType;

/// A table definition after ALTER actions, and where each of its columns
/// came from (the old column index; None for an added column).
#[derive(Debug)]
pub struct Altered {
    pub def: TableDef,
    pub origins: Vec<Option<usize>>,
}

/// Apply `actions` to `def`, checking each as PostgreSQL does. `has_rows`
/// says whether the table holds any row (NOT NULL without a default).
pub fn apply_actions(def: &TableDef, actions: &[AlterAction], has_rows: bool) -> Result<Altered> {
    let mut columns: Vec<(ColumnDef, Option<usize>)> = def.columns.iter().cloned().zip((0..).map(Some)).collect();
    let mut key: Vec<String> = def.primary_key.iter().map(|&i| def.columns[i].name.clone()).collect();
    let mut indexes = def.indexes.clone();
    let find = |columns: &[(ColumnDef, Option<usize>)], name: &str| columns.iter().position(|(c, _)| c.name == name);
    let missing = |name: &str| TarnError::new(sqlstate::UNDEFINED_COLUMN, format!("column \"{name}\" of relation \"{}\" does not exist", def.name));
    for action in actions {
        match action {
            AlterAction::AddColumn { column, if_not_exists } => {
                if find(&columns, &column.name).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(TarnError::new(
                        sqlstate::DUPLICATE_COLUMN,
                        format!("column \"{}\" of relation \"{}\" already exists", column.name, def.name),
                    ));
                }
                if column.not_null && column.default.is_none() && has_rows {
                    return Err(TarnError::new(
                        sqlstate::NOT_NULL_VIOLATION,
                        format!("column \"{}\" of relation \"{}\" contains null values", column.name, def.name),
                    ));
                }
                columns.push((column.clone(), None));
            }
            AlterAction::DropColumn { name, if_exists } => {
                let Some(i) = find(&columns, name) else {
                    if *if_exists {
                        continue;
                    }
                    return Err(missing(name));
                };
                if columns.len() == 1 {
                    return Err(TarnError::not_supported("a table must keep at least one column"));
                }
                // PostgreSQL drops the primary key and indexes with one of
                // their columns.
                if key.contains(name) {
                    key.clear();
                }
                indexes.retain(|ix| ix.column != *name);
                columns.remove(i);
            }
            AlterAction::RenameColumn { from, to } => {
                let i = find(&columns, from).ok_or_else(|| missing(from))?;
                if find(&columns, to).is_some() {
                    return Err(TarnError::new(
                        sqlstate::DUPLICATE_COLUMN,
                        format!("column \"{to}\" of relation \"{}\" already exists", def.name),
                    ));
                }
                for k in key.iter_mut().filter(|k| *k == from) {
                    *k = to.clone();
                }
                for ix in indexes.iter_mut().filter(|ix| ix.column == *from) {
                    ix.column = to.clone();
                }
                columns[i].0.name = to.clone();
            }
            AlterAction::SetType { column, ty } => {
                let i = find(&columns, column).ok_or_else(|| missing(column))?;
                let from = columns[i].0.pg_type();
                if !is_safe_type_change(&from, ty) {
                    return Err(TarnError::not_supported(format!(
                        "ALTER COLUMN … TYPE from {} to {} is not supported (only changes that keep every value: wider integers and floats, longer varchar, text)",
                        from.name(),
                        ty.name()
                    )));
                }
                columns[i].0.type_name = ty.name();
            }
            AlterAction::SetDefault { column, default } => {
                let i = find(&columns, column).ok_or_else(|| missing(column))?;
                if columns[i].0.identity.is_some() && default.is_some() {
                    return Err(TarnError::syntax(format!("column \"{column}\" of relation \"{}\" is an identity column", def.name)));
                }
                columns[i].0.default = default.clone();
            }
            AlterAction::SetNotNull { column, not_null } => {
                let i = find(&columns, column).ok_or_else(|| missing(column))?;
                if !not_null && key.contains(column) {
                    return Err(TarnError::new(
                        sqlstate::INVALID_TABLE_DEFINITION,
                        format!("column \"{column}\" is in a primary key"),
                    ));
                }
                columns[i].0.not_null = *not_null;
            }
        }
    }
    let primary_key = key.iter().map(|k| find(&columns, k).expect("key columns are kept")).collect();
    let (cols, origins) = columns.into_iter().unzip();
    Ok(Altered { def: TableDef { columns: cols, primary_key, indexes, pending_renames: vec![], ..def.clone() }, origins })
}

/// Type changes that keep every value and need no check of existing rows.
fn is_safe_type_change(from: &PgType, to: &PgType) -> bool {
    use PgType::*;
    match (from, to) {
        (a, b) if a == b => true,
        (Int2, Int4 | Int8) | (Int4, Int8) | (Float4, Float8) => true,
        (Varchar(_) | Text, Text) => true,
        (Varchar(Some(a)), Varchar(b)) => b.is_none_or(|b| b >= *a),
        (Text, Varchar(None)) => true,
        _ => false,
    }
}

/// Make a table's Lance dataset match its catalog definition: rename fields
/// (`renames`: Lance name → catalog name), drop fields the catalog no longer
/// has, add missing ones (filled with the column's DEFAULT, else NULL) and
/// cast changed types. Returns the new version, or None if nothing changed.
pub async fn conform_lance(ds: &Dataset, def: &TableDef, renames: &[(String, String)]) -> Result<Option<Dataset>> {
    let mut ds = ds.clone();
    let start = ds.version_id();
    let lance_names = |ds: &Dataset| -> Vec<String> { ds.schema().fields.iter().map(|f| f.name.clone()).collect() };
    let wanted: Vec<&str> = def.columns.iter().map(|c| c.name.as_str()).chain([ROWID]).collect();

    // Renames in two steps through temporary names, so swapping two names
    // works; each step looks at what Lance has, so re-running after a crash
    // between them finishes the job.
    let renames: Vec<&(String, String)> = renames.iter().filter(|(from, to)| from != to).collect();
    let temp = |i: usize| format!("__tarn_renaming_{i}");
    let have = lance_names(&ds);
    let step: Vec<_> = renames
        .iter()
        .enumerate()
        .filter(|(_, (from, _))| have.contains(from))
        .map(|(i, (from, _))| ColumnAlteration::new(from.clone()).rename(temp(i)))
        .collect();
    if !step.is_empty() {
        ds.alter_columns(&step).await?;
    }
    let have = lance_names(&ds);
    let step: Vec<_> = renames
        .iter()
        .enumerate()
        .filter(|(i, _)| have.contains(&temp(*i)))
        .map(|(i, (_, to))| ColumnAlteration::new(temp(i)).rename(to.clone()))
        .collect();
    if !step.is_empty() {
        ds.alter_columns(&step).await?;
    }

    let extra: Vec<String> = lance_names(&ds).into_iter().filter(|n| !wanted.contains(&n.as_str())).collect();
    if !extra.is_empty() {
        let names: Vec<&str> = extra.iter().map(String::as_str).collect();
        ds.drop_columns(&names).await?;
    }

    let present = lance_names(&ds);
    for column in def.columns.iter().filter(|c| !present.contains(&c.name)) {
        add_column(&mut ds, column).await?;
    }

    let arrow_schema = Schema::from(ds.schema());
    let casts: Vec<ColumnAlteration> = def
        .columns
        .iter()
        .filter_map(|c| {
            // Compared in Lance's own terms (an interval is a struct there).
            let want = super::lance_types::lance_type(&c.pg_type().arrow_type());
            let have = arrow_schema.field_with_name(&c.name).ok()?.data_type().clone();
            (have != want).then(|| ColumnAlteration::new(c.name.clone()).cast_to(want))
        })
        .collect();
    if !casts.is_empty() {
        ds.alter_columns(&casts).await?;
    }
    if ds.version_id() == start {
        return Ok(None);
    }
    info!(table = %def.name, from = start, to = ds.version_id(), "Lance schema now matches the catalog");
    Ok(Some(ds))
}

/// Add one column to every Lance row: its DEFAULT evaluated per batch (so a
/// volatile default differs per row, as in PostgreSQL), else NULL.
async fn add_column(ds: &mut Dataset, column: &ColumnDef) -> Result<()> {
    let ty = column.pg_type();
    let field = Arc::new(Schema::new(vec![super::lance_types::lance_field(&ty.to_field(&column.name, true))]));
    let default = match &column.default {
        Some(sql) => Some(default_evaluator(sql, &ty)?),
        None => None,
    };
    let Some(evaluate) = default else {
        ds.add_columns(NewColumnTransform::AllNulls(field), None, None).await?;
        return Ok(());
    };
    let output_schema = field.clone();
    let mapper = move |batch: &RecordBatch| -> lance::Result<RecordBatch> {
        let values = evaluate(batch.num_rows()).map_err(|e| lance::Error::invalid_input(e.message))?;
        let values = super::lance_types::to_lance_column(&values);
        RecordBatch::try_new(output_schema.clone(), vec![values]).map_err(|e| lance::Error::invalid_input(e.to_string()))
    };
    let udf = BatchUDF { mapper: Box::new(mapper), output_schema: field, result_checkpoint: None };
    ds.add_columns(NewColumnTransform::BatchUDF(udf), Some(vec![ROWID.to_string()]), None).await?;
    Ok(())
}

/// A function giving `n` values of a DEFAULT expression.
pub fn default_evaluator(sql: &str, ty: &PgType) -> Result<impl Fn(usize) -> Result<ArrayRef> + Send + Sync + 'static> {
    let expr = crate::engine::plan_default(sql, ty)?;
    let physical = datafusion::physical_expr::create_physical_expr(
        &expr,
        &datafusion::common::DFSchema::empty(),
        &datafusion::execution::context::ExecutionProps::new(),
    )?;
    let field_type: DataType = ty.arrow_type();
    Ok(move |n: usize| -> Result<ArrayRef> {
        let empty = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &RecordBatchOptions::new().with_row_count(Some(n)))?;
        let values = physical.evaluate(&empty)?.into_array(n)?;
        Ok(if values.data_type() == &field_type { values } else { arrow::compute::cast(&values, &field_type)? })
    })
}

impl Storage {
    /// A heap table's ALTER: its rows rewritten in the new shape, checkpointed
    /// (with the new table's counters) and published.
    fn reshape_heap(&self, table: &Table, rows: &[RecordBatch], altered: &Altered, last_lsn: u64) -> Result<()> {
        let rows: Arc<Vec<RecordBatch>> = Arc::new(super::heap::reshape(rows, &table.storage_schema, &altered.def, &altered.origins)?);
        table.write_heap(&rows, table.flush_props(last_lsn))?;
        self.publish_table_version(table.def.id, |v| v.heap = Some(rows));
        Ok(())
    }

    /// `ALTER TABLE … ADD/DROP/RENAME COLUMN, ALTER COLUMN …`.
    pub async fn alter_table(&self, schema: &str, name: &str, if_exists: bool, actions: &[AlterAction]) -> Result<()> {
        let mut catalog = self.catalog.lock().await;
        let Some(def) = catalog.find(schema, name).cloned() else {
            if catalog.find_view(schema, name).is_some() {
                return Err(TarnError::new(sqlstate::WRONG_OBJECT_TYPE, format!("\"{name}\" is not a table")));
            }
            return if if_exists { Ok(()) } else { Err(TarnError::undefined_table(name)) };
        };
        let table = self.table(schema, name).ok_or_else(|| TarnError::undefined_table(name))?;
        let changes_columns = actions.iter().any(|a| !matches!(a, AlterAction::SetDefault { .. } | AlterAction::SetNotNull { .. }));
        if changes_columns {
            super::ddl::check_no_dependent_views(catalog.views(), schema, name, &format!("alter table {name}"))?;
        }
        // No commit to the table from here on; fold its delta so every row
        // is in Lance, in the old shape.
        let _writing = table.write_lock.clone().lock_owned().await;
        self.settle().await;
        self.flush_table(&table).await?;
        let _flushing = table.flush_lock.lock().await;
        let version = self.snapshot().table(def.id).unwrap_or_default();
        let has_rows = match (&version.dataset, &version.heap) {
            (Some(ds), _) => ds.count_rows(None).await? > 0,
            (None, Some(rows)) => rows.iter().any(|b| b.num_rows() > 0),
            (None, None) => false,
        };
        let altered = apply_actions(&def, actions, has_rows)?;
        for (i, column) in altered.def.columns.iter().enumerate() {
            if let Some(sql) = column.default.as_ref().filter(|_| def.columns.get(i).is_none_or(|c| c.default != column.default)) {
                crate::engine::plan_default(sql, &column.pg_type())?;
            }
            let was_nullable = altered.origins[i].is_none_or(|o| !def.columns[o].not_null);
            if column.not_null && was_nullable && has_rows {
                if let Some(origin) = altered.origins[i] {
                    let batches = read_columns(&version, &table.storage_schema, &[origin]).await?;
                    if batches.iter().any(|b| b.column(0).null_count() > 0) {
                        return Err(TarnError::new(
                            sqlstate::NOT_NULL_VIOLATION,
                            format!("column \"{}\" of relation \"{name}\" contains null values", column.name),
                        ));
                    }
                }
            }
        }
        let mut new_def = altered.def.clone();
        new_def.pending_renames = altered
            .origins
            .iter()
            .zip(&altered.def.columns)
            .filter_map(|(o, c)| o.map(|o| (def.columns[o].name.clone(), c.name.clone())))
            .filter(|(from, to)| from != to)
            .collect();
        let new_table = Arc::new(table.redefine(altered.def.clone(), &altered.origins)?);
        // The catalog decides, with the renames Lance must follow (startup
        // finishes them if the server stops before Lance has).
        catalog.commit(|o| o.replace_table(new_def.clone()))?;
        let conformed = match (&version.dataset, &version.heap) {
            (Some(ds), _) => conform_lance(ds, &new_def, &new_def.pending_renames).await,
            (None, Some(rows)) => self.reshape_heap(&new_table, rows, &altered, version.last_lsn).map(|()| None),
            (None, None) => Ok(None),
        };
        let conformed = match conformed {
            // Record the counters of the new shape with the data.
            Ok(ds) => match ds.as_ref().or(version.dataset.as_deref()) {
                Some(base) => new_table.record_flush_props(base, version.last_lsn).await.map(Some),
                None => Ok(None),
            },
            Err(e) => Err(e),
        };
        let dataset = match conformed {
            Ok(ds) => ds,
            Err(e) => {
                // Committed, but Lance lags: install the new definition (the
                // catalog is the truth) and let startup finish Lance's part.
                self.tables.write().unwrap().insert((schema.to_string(), name.to_string()), new_table);
                return Err(TarnError::internal(format!(
                    "ALTER TABLE is committed, but changing the Lance dataset failed ({}); restart the server to finish it",
                    e.message
                )));
            }
        };
        if !new_def.pending_renames.is_empty() {
            catalog.commit(|o| o.replace_table(altered.def.clone()))?;
        }
        if let Some(ds) = dataset {
            self.publish_dataset(def.id, ds);
        }
        self.tables.write().unwrap().insert((schema.to_string(), name.to_string()), new_table);
        info!(table = name, "table altered");
        Ok(())
    }
}
