//! The write-ahead log: every write is a checksummed record, fsynced before
//! the client hears "done" (brief invariant 1), with group commit across
//! sessions — one writer thread gathers whatever requests are waiting and
//! makes them durable with one `fdatasync`.
//!
//! The log is a directory of segments, each named by the first LSN it may
//! hold (`000…0042.wal`). Segments whose records are all folded into Lance
//! are deleted at checkpoints. Recovery reads segments in order and stops at
//! a torn tail (brief invariant 5); only the newest segment may have one.

pub mod codec;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use tokio::sync::oneshot;
use tracing::{debug, info, warn};

pub use codec::{TableChange, WalEntry, WalRecord};

use crate::error::{Result, TarnError};

/// Start a new segment once the current one is this large.
const SEGMENT_BYTES: u64 = 64 << 20;

enum Request {
    Append { kind: u8, payload: Vec<u8>, reply: oneshot::Sender<Result<u64>> },
    /// Every record with LSN <= `upto` is durable elsewhere: drop whole
    /// segments that hold nothing newer.
    Checkpoint { upto: u64 },
}

/// Handle to the WAL writer thread.
pub struct Wal {
    tx: mpsc::Sender<Request>,
    durable_lsn: Arc<AtomicU64>,
    /// Held shared from "append" until the caller has applied the record to
    /// memory, and exclusively while a checkpoint decides what is safe to
    /// drop: so no record is ever both absent from memory and dropped.
    gate: tokio::sync::RwLock<()>,
}

/// What recovery found in the log.
pub struct Recovered {
    pub records: Vec<WalRecord>,
    /// The highest LSN seen (0 for an empty log).
    pub last_lsn: u64,
}

fn segment_path(dir: &Path, first_lsn: u64) -> PathBuf {
    dir.join(format!("{first_lsn:020}.wal"))
}

fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut segs = vec![];
    for entry in fs::read_dir(dir).map_err(|e| TarnError::io("reading WAL directory", e))? {
        let entry = entry.map_err(|e| TarnError::io("reading WAL directory", e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(".wal").and_then(|n| n.parse::<u64>().ok()) {
            segs.push((n, entry.path()));
        }
    }
    segs.sort();
    Ok(segs)
}

/// fsync a directory so a created, renamed or removed entry is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(|e| TarnError::io("syncing directory", e))
}

/// Read the log in `dir`, cutting off a torn tail of the newest segment.
pub fn recover(dir: &Path) -> Result<Recovered> {
    fs::create_dir_all(dir).map_err(|e| TarnError::io("creating WAL directory", e))?;
    let segments = list_segments(dir)?;
    let mut records = vec![];
    for (i, (_, path)) in segments.iter().enumerate() {
        let data = fs::read(path).map_err(|e| TarnError::io("reading WAL segment", e))?;
        let scan = codec::scan(&data)?;
        if scan.torn {
            if i + 1 != segments.len() {
                return Err(TarnError::internal(format!(
                    "WAL segment {} is damaged before its end and is not the newest segment; refusing to start rather than lose committed data",
                    path.display()
                )));
            }
            warn!(segment = %path.display(), kept_bytes = scan.valid_len, discarded_bytes = data.len() - scan.valid_len, "discarding torn WAL tail");
            let f = OpenOptions::new().write(true).open(path).map_err(|e| TarnError::io("opening WAL segment", e))?;
            f.set_len(scan.valid_len as u64).map_err(|e| TarnError::io("truncating torn WAL tail", e))?;
            f.sync_all().map_err(|e| TarnError::io("syncing WAL segment", e))?;
        }
        records.extend(scan.records);
    }
    let last_lsn = records.last().map(|r| r.lsn).unwrap_or(0);
    info!(segments = segments.len(), records = records.len(), last_lsn, "WAL read");
    Ok(Recovered { records, last_lsn })
}

impl Wal {
    /// Start the writer on a fresh segment whose first LSN is `next_lsn`.
    /// The caller makes `next_lsn` larger than every LSN already used,
    /// including those recorded only in tables (the log may be empty).
    pub fn start(dir: &Path, next_lsn: u64) -> Result<Wal> {
        let segments = list_segments(dir)?;
        let durable_lsn = Arc::new(AtomicU64::new(next_lsn - 1));
        let (tx, rx) = mpsc::channel();
        let mut writer = Writer::create(dir.to_path_buf(), next_lsn, segments, durable_lsn.clone())?;
        std::thread::Builder::new()
            .name("tarn-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| TarnError::io("starting WAL writer", e))?;
        Ok(Wal { tx, durable_lsn, gate: tokio::sync::RwLock::new(()) })
    }

    /// Recover and start in one step (tests and tools).
    pub fn open(dir: &Path, min_next_lsn: u64) -> Result<(Wal, Recovered)> {
        let rec = recover(dir)?;
        let wal = Wal::start(dir, (rec.last_lsn + 1).max(min_next_lsn))?;
        Ok((wal, rec))
    }

    /// The highest LSN known to be on disk.
    pub fn durable_lsn(&self) -> u64 {
        self.durable_lsn.load(Ordering::Acquire)
    }

    /// Append an entry; resolves with its LSN once it is on disk.
    pub async fn append(&self, entry: &WalEntry) -> Result<u64> {
        let (kind, payload) = codec::encode_entry(entry)?;
        if !codec::fits(payload.len()) {
            // Recovery would read a record this large as a torn length, so it
            // must never be acknowledged.
            return Err(TarnError::new(
                "54000",
                format!("one transaction may write at most {} MiB to the WAL; split it into smaller ones", codec::MAX_RECORD >> 20),
            ));
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Append { kind, payload, reply })
            .map_err(|_| TarnError::internal("WAL writer has stopped"))?;
        rx.await.map_err(|_| TarnError::internal("WAL writer has stopped"))?
    }

    /// Append an entry, then run `apply` with its LSN before any checkpoint
    /// can consider that LSN.
    pub async fn append_then<T>(&self, entry: &WalEntry, apply: impl FnOnce(u64) -> T) -> Result<T> {
        let _applying = self.gate.read().await;
        let lsn = self.append(entry).await?;
        Ok(apply(lsn))
    }

    /// Drop log segments made redundant by flushes. `oldest_unflushed` gives
    /// the oldest LSN still held only in memory (None if nothing is).
    pub async fn checkpoint_where(&self, oldest_unflushed: impl FnOnce() -> Option<u64>) {
        let _quiet = self.gate.write().await;
        let durable = self.durable_lsn();
        let upto = match oldest_unflushed() {
            Some(oldest) => (oldest - 1).min(durable),
            None => durable,
        };
        self.checkpoint(upto);
    }

    /// Tell the writer that everything up to `upto` is durable in tables.
    fn checkpoint(&self, upto: u64) {
        let _ = self.tx.send(Request::Checkpoint { upto });
    }
}

struct Writer {
    dir: PathBuf,
    file: File,
    file_len: u64,
    next_lsn: u64,
    /// Closed segments: (first LSN, path), oldest first.
    closed: Vec<(u64, PathBuf)>,
    /// First LSN of the open segment.
    current_first: u64,
    durable_lsn: Arc<AtomicU64>,
}

impl Writer {
    fn create(dir: PathBuf, next_lsn: u64, closed: Vec<(u64, PathBuf)>, durable_lsn: Arc<AtomicU64>) -> Result<Writer> {
        let path = segment_path(&dir, next_lsn);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TarnError::io("creating WAL segment", e))?;
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        sync_dir(&dir)?;
        let closed = closed.into_iter().filter(|(first, _)| *first != next_lsn).collect();
        Ok(Writer { dir, file, file_len, next_lsn, closed, current_first: next_lsn, durable_lsn })
    }

    fn run(&mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while let Ok(more) = rx.try_recv() {
                group.push(more);
            }
            let mut buf = vec![];
            let mut waiting = vec![];
            for req in group {
                match req {
                    Request::Append { kind, payload, reply } => {
                        let lsn = self.next_lsn;
                        self.next_lsn += 1;
                        codec::frame(&mut buf, lsn, kind, &payload);
                        waiting.push((lsn, reply));
                    }
                    Request::Checkpoint { upto } => self.checkpoint(upto),
                }
            }
            if waiting.is_empty() {
                continue;
            }
            let result = self.write_durably(&buf);
            if result.is_ok() {
                self.durable_lsn.store(self.next_lsn - 1, Ordering::Release);
            }
            debug!(records = waiting.len(), bytes = buf.len(), "WAL group commit");
            for (lsn, reply) in waiting {
                let _ = reply.send(result.clone().map(|_| lsn));
            }
            if result.is_ok() && self.file_len >= SEGMENT_BYTES {
                if let Err(e) = self.rotate() {
                    warn!(error = %e, "WAL segment rotation failed; continuing in the current segment");
                }
            }
        }
    }

    fn write_durably(&mut self, buf: &[u8]) -> Result<()> {
        let res = self.file.write_all(buf).and_then(|_| self.file.sync_data());
        match res {
            Ok(()) => {
                self.file_len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut off whatever part of the group reached the file, so a
                // later group does not follow garbage (recovery would stop
                // there). The failed group was never acknowledged.
                let _ = self.file.set_len(self.file_len);
                let _ = self.file.sync_data();
                Err(TarnError::io("writing WAL", e))
            }
        }
    }

    fn rotate(&mut self) -> Result<()> {
        let path = segment_path(&self.dir, self.next_lsn);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| TarnError::io("creating WAL segment", e))?;
        sync_dir(&self.dir)?;
        let old_first = std::mem::replace(&mut self.current_first, self.next_lsn);
        self.closed.push((old_first, segment_path(&self.dir, old_first)));
        self.file = file;
        self.file_len = 0;
        Ok(())
    }

    fn checkpoint(&mut self, upto: u64) {
        // A closed segment holds LSNs [first, next segment's first).
        let mut removed = 0;
        while !self.closed.is_empty() {
            let next_first = self.closed.get(1).map(|s| s.0).unwrap_or(self.current_first);
            if next_first.saturating_sub(1) > upto {
                break;
            }
            let (_, path) = self.closed.remove(0);
            if let Err(e) = fs::remove_file(&path) {
                warn!(segment = %path.display(), error = %e, "could not remove WAL segment");
            }
            removed += 1;
        }
        // The open segment can be emptied when everything in it is durable
        // elsewhere and nothing has been appended since.
        if self.file_len > 0 && self.next_lsn.saturating_sub(1) <= upto {
            let path = segment_path(&self.dir, self.next_lsn);
            match OpenOptions::new().create(true).append(true).open(&path) {
                Ok(file) => {
                    let old = segment_path(&self.dir, self.current_first);
                    self.file = file;
                    self.file_len = 0;
                    self.current_first = self.next_lsn;
                    let _ = sync_dir(&self.dir);
                    if fs::remove_file(&old).is_ok() {
                        removed += 1;
                    }
                }
                Err(e) => warn!(error = %e, "could not start a new WAL segment at checkpoint"),
            }
        }
        if removed > 0 {
            let _ = sync_dir(&self.dir);
            debug!(removed, upto, "WAL checkpoint removed segments");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn insert(v: i64) -> WalEntry {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        WalEntry::Commit {
            changes: vec![codec::TableChange {
                table_id: 1,
                inserts: vec![RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![v]))]).unwrap()],
                ..Default::default()
            }],
        }
    }

    #[tokio::test]
    async fn appends_survive_reopen_and_checkpoint_drops_old_records() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (wal, rec) = Wal::open(dir.path(), 1).unwrap();
            assert!(rec.records.is_empty());
            assert_eq!(wal.append(&insert(1)).await.unwrap(), 1);
            assert_eq!(wal.append(&insert(2)).await.unwrap(), 2);
        }
        let (wal, rec) = Wal::open(dir.path(), 1).unwrap();
        assert_eq!(rec.records.iter().map(|r| r.lsn).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(wal.append(&insert(3)).await.unwrap(), 3);
        wal.checkpoint_where(|| None).await;
        // The checkpoint is processed in order with later appends.
        assert_eq!(wal.append(&insert(4)).await.unwrap(), 4);
        drop(wal);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (_wal, rec) = Wal::open(dir.path(), 1).unwrap();
        assert_eq!(rec.records.iter().map(|r| r.lsn).collect::<Vec<_>>(), vec![4]);
    }

    #[tokio::test]
    async fn torn_tail_is_cut_and_lsns_continue() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (wal, _) = Wal::open(dir.path(), 1).unwrap();
            wal.append(&insert(1)).await.unwrap();
        }
        let seg = list_segments(dir.path()).unwrap().pop().unwrap().1;
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[0, 0, 1, 0, 9, 9]).unwrap(); // half a header
        drop(f);
        let (wal, rec) = Wal::open(dir.path(), 1).unwrap();
        assert_eq!(rec.records.len(), 1);
        assert_eq!(wal.append(&insert(2)).await.unwrap(), 2);
    }
}
