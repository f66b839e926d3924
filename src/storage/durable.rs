//! Making table files durable.
//!
//! Lance writes through `object_store`'s `LocalFileSystem`, which does not
//! fsync (Lance 14 never asks it to: on object stores a finished PUT is
//! durable). Tarn fsyncs a table's directory tree itself before it relies on
//! new Lance files surviving a power loss: before a flush is published (the
//! WAL then drops what it folded), before cleanup removes the files
//! compaction replaced, and before a bulk load is acknowledged.
//!
//! Written by hand because no maintained crate fsyncs a directory tree; it
//! is a short walk with `File::sync_all`.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{Result, TarnError};

/// fsync every file and directory under `dir` (which may not exist yet), on
/// a blocking thread. A file already clean costs one cheap syscall.
pub async fn sync_tree(dir: PathBuf) -> Result<()> {
    tokio::task::spawn_blocking(move || sync_tree_blocking(&dir))
        .await
        .map_err(|e| TarnError::internal(format!("syncing table files: {e}")))?
}

fn sync_tree_blocking(dir: &Path) -> Result<()> {
    let io = |e: std::io::Error| TarnError::io("syncing table files", e);
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io)?;
        let kind = entry.file_type().map_err(io)?;
        let path = entry.path();
        if kind.is_dir() {
            sync_tree_blocking(&path)?;
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        match File::open(&path).and_then(|f| f.sync_all()) {
            // Lance renames temporary files into place as it goes.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            other => other.map_err(io)?,
        }
    }
    File::open(dir).and_then(|f| f.sync_all()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn syncs_nested_files_and_tolerates_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("data/sub")).unwrap();
        fs::write(dir.path().join("data/sub/a.lance"), b"x").unwrap();
        fs::write(dir.path().join("b.manifest"), b"y").unwrap();
        sync_tree(dir.path().to_path_buf()).await.unwrap();
        sync_tree(dir.path().join("absent")).await.unwrap();
        assert_eq!(fs::read(dir.path().join("data/sub/a.lance")).unwrap(), b"x");
    }
}
