//! Appending to the WAL with group commit.
//!
//! Appenders copy framed records into a shared buffer under a short lock.
//! Whoever needs the buffer on disk (an `Always` appender, a full buffer,
//! the interval syncer, a rotation) becomes the one writer of the moment:
//! it takes the whole buffer, releases the lock, writes (and fsyncs), and
//! wakes everyone whose records that write covered. Appenders that arrive
//! meanwhile fill a fresh buffer, which the next writer takes in one go, so
//! one fsync acknowledges many appends.
//!
//! Invariants:
//! - bytes reach the file in buffer order, by one writer at a time
//!   (`io_busy`);
//! - a buffer's records were encoded for the file id current when they were
//!   appended, and are written to that file: a rotation switches the id in
//!   the same critical section that takes the buffer;
//! - after an I/O error the writer is poisoned: every later append fails,
//!   because what reached the disk is unknown.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::{encode_header, file_name};
use crate::error::{Error, Result};
use crate::segment::sync_parent_dir;

/// When an append is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `append` returns after its record is fsynced (group commit).
    Always,
    /// A background thread writes and fsyncs every this many milliseconds;
    /// a crash loses at most that window.
    Interval(u64),
    /// No fsync until flush or close; the buffer reaches the OS when full.
    /// A process crash loses the unwritten buffer (at most 1 MiB).
    Never,
}

/// Buffered bytes that trigger a write in `Interval` and `Never` modes.
const BUFFER_LIMIT: usize = 1 << 20;

/// A file that was rotated away from, with the newest sample it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedFile {
    pub file_id: u64,
    pub max_time_ms: i64,
}

pub struct WalWriter {
    dir: PathBuf,
    sync: SyncMode,
    max_file_len: u64,
    state: Mutex<State>,
    io_done: Condvar,
}

struct State {
    file: Arc<File>,
    file_id: u64,
    file_len: u64,
    /// Newest sample timestamp appended to the current file.
    file_max_ms: i64,
    closed: Vec<ClosedFile>,
    buffer: Vec<u8>,
    spare: Vec<u8>,
    /// Bytes appended / written / fsynced since open (logical positions).
    appended: u64,
    written: u64,
    durable: u64,
    io_busy: bool,
    failed: Option<String>,
}

impl WalWriter {
    /// Starts a new WAL file `file_id` in `dir`. `closed` lists the older
    /// files still on disk (their samples are not all in segments yet).
    pub fn create(
        dir: &Path,
        file_id: u64,
        sync: SyncMode,
        max_file_len: u64,
        closed: Vec<ClosedFile>,
    ) -> Result<WalWriter> {
        let file = create_file(dir, file_id)?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            sync,
            max_file_len,
            state: Mutex::new(State {
                file: Arc::new(file),
                file_id,
                file_len: super::WAL_HEADER_LEN as u64,
                file_max_ms: i64::MIN,
                closed,
                buffer: Vec::with_capacity(BUFFER_LIMIT),
                spare: Vec::with_capacity(BUFFER_LIMIT),
                appended: 0,
                written: 0,
                durable: 0,
                io_busy: false,
                failed: None,
            }),
            io_done: Condvar::new(),
        })
    }

    pub fn sync_mode(&self) -> SyncMode {
        self.sync
    }

    /// Appends records. `encode` receives the current file id and the
    /// buffer, and must append whole frames (see [`super::frame`]).
    /// Returns when the records are as durable as the sync mode promises.
    pub fn append(&self, max_time_ms: i64, encode: impl FnOnce(u64, &mut Vec<u8>)) -> Result<()> {
        let mut st = self.state.lock();
        check_failed(&st)?;
        let before = st.buffer.len();
        let file_id = st.file_id;
        encode(file_id, &mut st.buffer);
        st.appended += (st.buffer.len() - before) as u64;
        st.file_max_ms = st.file_max_ms.max(max_time_ms);
        let end = st.appended;
        match self.sync {
            SyncMode::Always => {
                while st.durable < end {
                    check_failed(&st)?;
                    if st.io_busy {
                        self.io_done.wait(&mut st);
                    } else {
                        self.write_out(&mut st, true, false)?;
                    }
                }
            }
            SyncMode::Interval(_) | SyncMode::Never => {
                if st.buffer.len() >= BUFFER_LIMIT {
                    self.write_out(&mut st, false, false)?;
                }
            }
        }
        Ok(())
    }

    /// Writes and fsyncs everything appended so far.
    pub fn sync(&self) -> Result<()> {
        let mut st = self.state.lock();
        self.write_out(&mut st, true, false)
    }

    /// Closes the current file (written and fsynced) and starts the next.
    /// Returns the id of the new file.
    pub fn rotate(&self) -> Result<u64> {
        let mut st = self.state.lock();
        self.write_out(&mut st, true, true)?;
        Ok(st.file_id)
    }

    /// Files rotated away from and not yet removed.
    pub fn closed_files(&self) -> Vec<ClosedFile> {
        self.state.lock().closed.clone()
    }

    pub fn current_file_id(&self) -> u64 {
        self.state.lock().file_id
    }

    /// Deletes closed files with ids below `file_id`.
    pub fn remove_files_before(&self, file_id: u64) -> Result<()> {
        let doomed: Vec<ClosedFile> = {
            let mut st = self.state.lock();
            let (doomed, kept) = st.closed.iter().partition(|c| c.file_id < file_id);
            st.closed = kept;
            doomed
        };
        for closed in doomed {
            let path = self.dir.join(file_name(closed.file_id));
            match crate::fault::check("wal.remove").and_then(|()| std::fs::remove_file(&path)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
        }
        Ok(())
    }

    /// Takes the buffer and writes it (optionally fsyncs, optionally
    /// rotates) with the lock released. One writer at a time.
    fn write_out(&self, st: &mut MutexGuard<'_, State>, fsync: bool, rotate: bool) -> Result<()> {
        while st.io_busy {
            self.io_done.wait(st);
        }
        check_failed(st)?;
        let rotate = rotate || st.file_len + st.buffer.len() as u64 > self.max_file_len;
        let nothing_to_do = st.buffer.is_empty() && (!fsync || st.durable == st.appended);
        if nothing_to_do && !rotate {
            return Ok(());
        }
        st.io_busy = true;
        let spare = std::mem::take(&mut st.spare);
        let buffer = std::mem::replace(&mut st.buffer, spare);
        let end = st.appended;
        let file = Arc::clone(&st.file);
        let path = self.dir.join(file_name(st.file_id));
        let new_file_id = if rotate {
            let closed = ClosedFile {
                file_id: st.file_id,
                max_time_ms: st.file_max_ms,
            };
            st.closed.push(closed);
            st.file_id += 1;
            st.file_max_ms = i64::MIN;
            Some(st.file_id)
        } else {
            None
        };
        let dir = &self.dir;
        let result = MutexGuard::unlocked(st, || -> Result<Option<File>> {
            crate::fault::write_all("wal.write", &*file, &buffer)
                .map_err(|e| Error::io("write WAL", &path, e))?;
            if fsync || rotate {
                crate::fault::check("wal.fsync")
                    .and_then(|()| file.sync_data())
                    .map_err(|e| Error::io("fsync WAL", &path, e))?;
            }
            new_file_id.map(|id| create_file(dir, id)).transpose()
        });
        st.io_busy = false;
        self.io_done.notify_all();
        let mut buffer = buffer;
        match result {
            Ok(new_file) => {
                st.written = end;
                st.file_len += buffer.len() as u64;
                if fsync || rotate {
                    st.durable = end;
                }
                if let Some(new_file) = new_file {
                    st.file = Arc::new(new_file);
                    st.file_len = super::WAL_HEADER_LEN as u64;
                }
                buffer.clear();
                st.spare = buffer;
                Ok(())
            }
            Err(e) => {
                st.failed = Some(e.to_string());
                Err(e)
            }
        }
    }
}

impl Drop for WalWriter {
    fn drop(&mut self) {
        // Best effort: what was appended reaches the disk even without an
        // explicit close. Errors here have nobody to go to.
        let mut st = self.state.lock();
        let _ = self.write_out(&mut st, true, false);
    }
}

fn check_failed(st: &State) -> Result<()> {
    match &st.failed {
        Some(reason) => Err(Error::Poisoned(reason.clone())),
        None => Ok(()),
    }
}

/// Creates WAL file `file_id` with its header, durable with its directory
/// entry.
fn create_file(dir: &Path, file_id: u64) -> Result<File> {
    let path = dir.join(file_name(file_id));
    crate::fault::check("wal.create").map_err(|e| Error::io("create WAL file", &path, e))?;
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io("create WAL file", &path, e))?;
    file.write_all(&encode_header(file_id))
        .map_err(|e| Error::io("write WAL header", &path, e))?;
    file.sync_all()
        .map_err(|e| Error::io("fsync WAL file", &path, e))?;
    sync_parent_dir(&path)?;
    Ok(file)
}
