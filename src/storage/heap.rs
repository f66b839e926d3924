//! Heap tables (`CREATE TABLE … USING heap`): memory-resident and
//! WAL-durable, for small hot tables.
//!
//! A heap table's rows live in its [`super::version::TableVersion`] (the
//! `heap` rows as of the last checkpoint, plus the delta like any table);
//! its flush writes every live row to one Arrow IPC file (`rows.arrow`,
//! replaced atomically) whose schema metadata records the same properties a
//! Lance flush records (WAL position, row-id and identity counters), so
//! recovery is the same: load the file, replay the WAL above its position.
//! There are no fragments, versions or indexes to maintain.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;

use super::catalog::TableDef;
use super::version::ROWID;
use crate::error::{Result, TarnError};
use crate::storage::wal::sync_dir;

const ROWS_FILE: &str = "rows.arrow";

/// The rows and flush properties of a heap table's last checkpoint (None:
/// never checkpointed, everything is in the WAL).
pub fn load(dir: &Path) -> Result<Option<(Vec<RecordBatch>, HashMap<String, String>)>> {
    let path = dir.join(ROWS_FILE);
    let file = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TarnError::io("reading heap table", e)),
    };
    let reader = FileReader::try_new(std::io::BufReader::new(file), None)?;
    let properties = reader.schema().metadata().clone();
    let rows = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Some((rows, properties)))
}

/// Replace the checkpoint with `rows` (storage schema) and `properties`:
/// written to a temporary file, synced, renamed over the old one.
pub fn write(dir: &Path, schema: &SchemaRef, rows: &[RecordBatch], properties: HashMap<String, String>) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| TarnError::io("creating heap table directory", e))?;
    let tmp = dir.join(format!("{ROWS_FILE}.tmp"));
    let schema = Arc::new(Schema::new_with_metadata(schema.fields().clone(), properties));
    let mut file = fs::File::create(&tmp).map_err(|e| TarnError::io("writing heap table", e))?;
    {
        let mut writer = FileWriter::try_new(&mut file, &schema)?;
        for batch in rows {
            writer.write(&RecordBatch::try_new(schema.clone(), batch.columns().to_vec())?)?;
        }
        writer.finish()?;
    }
    file.flush().and_then(|_| file.sync_all()).map_err(|e| TarnError::io("writing heap table", e))?;
    fs::rename(&tmp, dir.join(ROWS_FILE)).map_err(|e| TarnError::io("replacing heap table", e))?;
    sync_dir(dir)
}

/// Give checkpointed rows the shape `def` declares (`schema`, its storage
/// schema), at startup: a checkpoint written before an ALTER TABLE the
/// server stopped in. Columns are found by name (`renames`: old name → new;
/// a name renamed away is a new column). Returns the rows and whether
/// anything changed.
pub fn conform(
    rows: Vec<RecordBatch>,
    schema: &SchemaRef,
    def: &TableDef,
    renames: &[(String, String)],
) -> Result<(Vec<RecordBatch>, bool)> {
    let Some(have) = rows.first().map(|b| b.schema()) else { return Ok((rows, false)) };
    if have.fields() == schema.fields() {
        return Ok((rows, false));
    }
    let origins: Vec<Option<usize>> = def
        .columns
        .iter()
        .map(|c| {
            let source = match renames.iter().find(|(_, to)| *to == c.name) {
                Some((from, _)) => Some(from.as_str()),
                None if renames.iter().any(|(from, _)| *from == c.name) => None,
                None => Some(c.name.as_str()),
            };
            source.and_then(|s| have.index_of(s).ok())
        })
        .collect();
    Ok((reshape(&rows, schema, def, &origins)?, true))
}

/// Rows in a new shape (ALTER TABLE): column `i` of `schema` comes from
/// column `origins[i]` of the old rows (cast where its type widened), or is
/// new and takes its DEFAULT (evaluated per batch) or NULL. Row ids are kept.
pub fn reshape(rows: &[RecordBatch], schema: &SchemaRef, def: &TableDef, origins: &[Option<usize>]) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::with_capacity(rows.len());
    for batch in rows {
        let n = batch.num_rows();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for (i, column) in def.columns.iter().enumerate() {
            let field = schema.field(i);
            columns.push(match origins.get(i).copied().flatten() {
                Some(o) if batch.column(o).data_type() == field.data_type() => batch.column(o).clone(),
                Some(o) => arrow::compute::cast(batch.column(o), field.data_type())?,
                None => match &column.default {
                    Some(sql) => super::alter::default_evaluator(sql, &column.pg_type())?(n)?,
                    None => new_null_array(field.data_type(), n),
                },
            });
        }
        let rowids = batch.column_by_name(ROWID).ok_or_else(|| TarnError::internal("heap rows without row ids"))?;
        columns.push(rowids.clone());
        out.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    Ok(out)
}
