//! The durable catalog: which tables exist, their columns, types and keys.
//!
//! Stored as one JSON document, replaced atomically (write a temp file,
//! fsync, rename over the old one, fsync the directory), so a DDL statement
//! is either wholly on disk or not at all (brief invariant 6). Table ids are
//! never reused, so WAL records of a dropped table can never be mistaken for
//! a later table of the same name.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TarnError};
use crate::storage::wal::sync_dir;
use crate::types::PgType;

const FILE: &str = "catalog.json";
const FORMAT_VERSION: u32 = 1;

/// A column as declared.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    /// Postgres type name as `format_type` prints it (see [`PgType::name`]).
    #[serde(rename = "type")]
    pub type_name: String,
    pub not_null: bool,
}

impl ColumnDef {
    pub fn pg_type(&self) -> PgType {
        PgType::from_name(&self.type_name).expect("catalog holds only types Tarn wrote")
    }
}

/// A table as declared.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableDef {
    pub id: u64,
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    /// Column positions of the primary key, in key order (empty: no key).
    pub primary_key: Vec<usize>,
}

impl TableDef {
    /// The name PostgreSQL gives the primary-key constraint.
    pub fn pkey_name(&self) -> String {
        format!("{}_pkey", self.name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct CatalogFile {
    format_version: u32,
    next_table_id: u64,
    tables: Vec<TableDef>,
}

/// In-memory copy of the catalog plus where it lives on disk.
#[derive(Debug)]
pub struct Catalog {
    dir: PathBuf,
    file: CatalogFile,
}

impl Catalog {
    /// Load the catalog in `dir`, or start an empty one.
    pub fn open(dir: &Path) -> Result<Catalog> {
        let path = dir.join(FILE);
        let file = match fs::read(&path) {
            Ok(bytes) => {
                let f: CatalogFile = serde_json::from_slice(&bytes)
                    .map_err(|e| TarnError::internal(format!("catalog {} is unreadable: {e}", path.display())))?;
                if f.format_version > FORMAT_VERSION {
                    return Err(TarnError::internal(format!(
                        "catalog format {} is newer than this Tarn understands ({FORMAT_VERSION})",
                        f.format_version
                    )));
                }
                f
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                CatalogFile { format_version: FORMAT_VERSION, next_table_id: 1, tables: vec![] }
            }
            Err(e) => return Err(TarnError::io("reading catalog", e)),
        };
        Ok(Catalog { dir: dir.to_path_buf(), file })
    }

    pub fn tables(&self) -> &[TableDef] {
        &self.file.tables
    }

    pub fn find(&self, schema: &str, name: &str) -> Option<&TableDef> {
        self.file.tables.iter().find(|t| t.schema == schema && t.name == name)
    }

    /// Reserve a new table id (persisted with the next [`Catalog::save`]).
    pub fn allocate_id(&mut self) -> u64 {
        let id = self.file.next_table_id;
        self.file.next_table_id += 1;
        id
    }

    /// Apply a change and make it durable; on failure the in-memory catalog
    /// is left as it was.
    pub fn commit(&mut self, change: impl FnOnce(&mut Vec<TableDef>)) -> Result<()> {
        let mut next = self.file.clone();
        change(&mut next.tables);
        write_atomically(&self.dir, &next)?;
        self.file = next;
        Ok(())
    }
}

fn write_atomically(dir: &Path, file: &CatalogFile) -> Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| TarnError::internal(e.to_string()))?;
    let mut f = fs::File::create(&tmp).map_err(|e| TarnError::io("writing catalog", e))?;
    f.write_all(&bytes).and_then(|_| f.sync_all()).map_err(|e| TarnError::io("writing catalog", e))?;
    drop(f);
    fs::rename(&tmp, dir.join(FILE)).map_err(|e| TarnError::io("replacing catalog", e))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: u64, name: &str) -> TableDef {
        TableDef {
            id,
            schema: "public".into(),
            name: name.into(),
            columns: vec![ColumnDef { name: "id".into(), type_name: "bigint".into(), not_null: true }],
            primary_key: vec![0],
        }
    }

    #[test]
    fn commits_survive_reopen_and_ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(dir.path()).unwrap();
        let a = c.allocate_id();
        c.commit(|t| t.push(def(a, "a"))).unwrap();
        c.commit(|t| t.retain(|d| d.name != "a")).unwrap();
        let c2 = Catalog::open(dir.path()).unwrap();
        assert!(c2.find("public", "a").is_none());
        let mut c2 = c2;
        assert_ne!(c2.allocate_id(), a);
    }
}
