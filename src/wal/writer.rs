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
//! - frames get their sequence numbers under the buffer lock, in buffer
//!   order, so each file's frames are numbered 1, 2, 3, ... in file order;
//!   a rotation restarts the count and records the old file's last number
//!   in the new file's header;
//! - file ids never exceed [`MAX_FILE_ID`]: a writer that would need a
//!   larger one fails with a typed error instead of wrapping;
//! - after an I/O error the writer is poisoned: every later append fails,
//!   because what reached the disk is unknown;
//! - [`WalWriter::stats`] counts, never blocks on I/O: the bytes of the
//!   WAL files on disk (closed files measured when they are adopted or
//!   closed, the current one by what was written to it) and the data
//!   fsyncs of `write_out` with the time they took.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::{
    encode_header, file_name, seal_frame, FRAME_HEADER_LEN, FRAME_MAGIC, MAX_FILE_ID,
    WAL_HEADER_LEN,
};
use crate::error::{Corruption, CorruptionError, Error, Result};
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

/// A file whose next sequence number reaches this is rotated before the
/// next append, so sequence numbers never wrap: one append's frames are all
/// in memory and cannot number 2^31.
const ROTATE_AT_SEQ: u32 = 1 << 31;

/// The WAL buffer as an appender sees it: frames are encoded in place and
/// numbered in buffer order.
pub struct Frames<'a> {
    buf: &'a mut Vec<u8>,
    next_seq: &'a mut u32,
}

/// Where a frame started by [`Frames::begin`] starts in the buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameStart(usize);

impl Frames<'_> {
    /// Starts a frame whose payload is written next into [`Frames::payload`].
    pub fn begin(&mut self) -> FrameStart {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; FRAME_HEADER_LEN]);
        FrameStart(start)
    }

    /// The buffer, for writing the payload of the frame begun last.
    pub fn payload(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    /// Numbers and seals the frame begun at `start`: its payload is
    /// everything written since.
    pub fn end(&mut self, start: FrameStart) {
        seal_frame(self.buf, start.0, *self.next_seq);
        *self.next_seq += 1;
    }

    /// Appends a whole frame holding `payload`, whose crc32 was computed
    /// before the buffer lock was taken: only the 8 bytes of length and
    /// sequence number are hashed here, and combined with it.
    pub fn push(&mut self, payload: &Payload<'_>) {
        let mut header = [0u8; FRAME_HEADER_LEN];
        header[0..4].copy_from_slice(&FRAME_MAGIC);
        header[4..8].copy_from_slice(&(payload.bytes.len() as u32).to_le_bytes());
        header[8..12].copy_from_slice(&self.next_seq.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header[4..12]);
        crc.combine(&payload.crc);
        header[12..16].copy_from_slice(&crc.finalize().to_le_bytes());
        self.buf.extend_from_slice(&header);
        self.buf.extend_from_slice(payload.bytes);
        *self.next_seq += 1;
    }
}

/// A whole record with its crc32 computed ahead, outside the WAL lock, for
/// [`Frames::push`]. At most [`super::MAX_PAYLOAD_LEN`] bytes.
pub struct Payload<'a> {
    bytes: &'a [u8],
    crc: crc32fast::Hasher,
}

impl<'a> Payload<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        debug_assert!(bytes.len() <= super::MAX_PAYLOAD_LEN);
        let mut crc = crc32fast::Hasher::new();
        crc.update(bytes);
        Payload { bytes, crc }
    }
}

/// A file that was rotated away from, with the newest sample it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedFile {
    pub file_id: u64,
    pub max_time_ms: i64,
}

/// What the WAL holds on disk and what its fsyncs cost, since open.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalStats {
    /// Bytes of the WAL files on disk (closed and current).
    pub bytes: u64,
    /// Data fsyncs of the WAL files.
    pub fsyncs: u64,
    /// Time those fsyncs took, in total.
    pub fsync_time: Duration,
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
    /// Id of the first file this writer created; in every file's header.
    session_id: u64,
    /// Sequence number of the next frame in the current file.
    next_seq: u32,
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
    /// Bytes of the closed files still on disk.
    closed_bytes: u64,
    fsyncs: u64,
    fsync_time: Duration,
}

impl WalWriter {
    /// Starts a new WAL file `file_id` in `dir`, the first of a new writer
    /// session. `prev_last_seq` is the last frame number of file
    /// `file_id - 1` as replayed (0 when there is none); `closed` lists the
    /// older files still on disk (their samples are not all in segments
    /// yet).
    pub fn create(
        dir: &Path,
        file_id: u64,
        prev_last_seq: u32,
        sync: SyncMode,
        max_file_len: u64,
        closed: Vec<ClosedFile>,
    ) -> Result<WalWriter> {
        let file = create_file(dir, file_id, file_id, prev_last_seq)?;
        let closed_bytes = closed.iter().map(|c| file_len(dir, c.file_id)).sum();
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            sync,
            max_file_len,
            state: Mutex::new(State {
                file: Arc::new(file),
                file_id,
                session_id: file_id,
                next_seq: 1,
                file_len: WAL_HEADER_LEN as u64,
                file_max_ms: i64::MIN,
                closed,
                buffer: Vec::with_capacity(BUFFER_LIMIT),
                spare: Vec::with_capacity(BUFFER_LIMIT),
                appended: 0,
                written: 0,
                durable: 0,
                io_busy: false,
                failed: None,
                closed_bytes,
                fsyncs: 0,
                fsync_time: Duration::ZERO,
            }),
            io_done: Condvar::new(),
        })
    }

    #[cfg(feature = "internals")]
    pub fn sync_mode(&self) -> SyncMode {
        self.sync
    }

    /// Appends records. `encode` receives the current file id and the
    /// buffer, and must append whole frames through [`Frames`].
    /// Returns when the records are as durable as the sync mode promises.
    pub fn append(
        &self,
        max_time_ms: i64,
        encode: impl FnOnce(u64, &mut Frames<'_>),
    ) -> Result<()> {
        let mut st = self.state.lock();
        check_failed(&st)?;
        if st.next_seq >= ROTATE_AT_SEQ {
            self.write_out(&mut st, true, true)?;
        }
        let before = st.buffer.len();
        let state = &mut *st;
        encode(
            state.file_id,
            &mut Frames {
                buf: &mut state.buffer,
                next_seq: &mut state.next_seq,
            },
        );
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

    /// Bytes on disk and fsyncs so far.
    pub fn stats(&self) -> WalStats {
        let st = self.state.lock();
        WalStats {
            bytes: st.closed_bytes + st.file_len,
            fsyncs: st.fsyncs,
            fsync_time: st.fsync_time,
        }
    }

    /// Files rotated away from and not yet removed.
    pub fn closed_files(&self) -> Vec<ClosedFile> {
        self.state.lock().closed.clone()
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn current_file_id(&self) -> u64 {
        self.state.lock().file_id
    }

    /// Deletes closed files with ids below `file_id`.
    pub fn remove_files_before(&self, file_id: u64) -> Result<()> {
        let doomed: Vec<u64> = {
            let st = self.state.lock();
            st.closed
                .iter()
                .filter(|c| c.file_id < file_id)
                .map(|c| c.file_id)
                .collect()
        };
        // A file is forgotten only once it is gone, so that a failed
        // deletion is retried by the next checkpoint.
        for id in doomed {
            let path = self.dir.join(file_name(id));
            let len = file_len(&self.dir, id);
            match crate::fault::check("wal.remove").and_then(|()| std::fs::remove_file(&path)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
            let mut st = self.state.lock();
            st.closed.retain(|c| c.file_id != id);
            st.closed_bytes = st.closed_bytes.saturating_sub(len);
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
        let rotate_to = if rotate {
            Some(next_file_id(&self.dir, st.file_id)?)
        } else {
            None
        };
        st.io_busy = true;
        let spare = std::mem::take(&mut st.spare);
        let buffer = std::mem::replace(&mut st.buffer, spare);
        let end = st.appended;
        let file = Arc::clone(&st.file);
        let path = self.dir.join(file_name(st.file_id));
        let new_file = rotate_to.map(|id| {
            let closed = ClosedFile {
                file_id: st.file_id,
                max_time_ms: st.file_max_ms,
            };
            st.closed.push(closed);
            st.file_id = id;
            st.file_max_ms = i64::MIN;
            let prev_last_seq = st.next_seq - 1;
            st.next_seq = 1;
            (id, prev_last_seq)
        });
        let session_id = st.session_id;
        let dir = &self.dir;
        let mut fsync_took = None;
        let result = MutexGuard::unlocked(st, || -> Result<Option<File>> {
            crate::fault::write_all("wal.write", &*file, &buffer)
                .map_err(|e| Error::io("write WAL", &path, e))?;
            if fsync || rotate {
                let started = Instant::now();
                crate::fault::check("wal.fsync")
                    .and_then(|()| file.sync_data())
                    .map_err(|e| Error::io("fsync WAL", &path, e))?;
                fsync_took = Some(started.elapsed());
            }
            new_file
                .map(|(id, prev_last_seq)| create_file(dir, id, session_id, prev_last_seq))
                .transpose()
        });
        if let Some(took) = fsync_took {
            st.fsyncs += 1;
            st.fsync_time += took;
        }
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
                    st.closed_bytes += st.file_len;
                    st.file = Arc::new(new_file);
                    st.file_len = WAL_HEADER_LEN as u64;
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

/// The length of WAL file `file_id` in `dir`; 0 when it cannot be read
/// (it only feeds [`WalStats::bytes`]).
fn file_len(dir: &Path, file_id: u64) -> u64 {
    std::fs::metadata(dir.join(file_name(file_id))).map_or(0, |m| m.len())
}

fn check_failed(st: &State) -> Result<()> {
    match &st.failed {
        Some(reason) => Err(Error::Poisoned(reason.clone())),
        None => Ok(()),
    }
}

/// The id after `file_id`, or a typed error when there is none.
fn next_file_id(dir: &Path, file_id: u64) -> Result<u64> {
    file_id
        .checked_add(1)
        .filter(|&id| id <= MAX_FILE_ID)
        .ok_or_else(|| ids_exhausted(dir, file_id))
}

/// The error for a WAL file id past [`MAX_FILE_ID`].
pub(super) fn ids_exhausted(dir: &Path, file_id: u64) -> Error {
    CorruptionError {
        path: dir.join(file_name(file_id)),
        offset: 0,
        series: None,
        kind: Corruption::BadLayout(format!(
            "WAL file id {file_id} leaves no id for a next file (the largest is {MAX_FILE_ID})"
        )),
    }
    .into()
}

/// Creates WAL file `file_id` with its header, durable with its directory
/// entry.
fn create_file(dir: &Path, file_id: u64, session_id: u64, prev_last_seq: u32) -> Result<File> {
    if file_id > MAX_FILE_ID {
        return Err(ids_exhausted(dir, file_id));
    }
    let path = dir.join(file_name(file_id));
    crate::fault::check("wal.create").map_err(|e| Error::io("create WAL file", &path, e))?;
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io("create WAL file", &path, e))?;
    file.write_all(&encode_header(file_id, session_id, prev_last_seq))
        .map_err(|e| Error::io("write WAL header", &path, e))?;
    file.sync_all()
        .map_err(|e| Error::io("fsync WAL file", &path, e))?;
    sync_parent_dir(&path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::{replay_file, HeaderState};

    #[test]
    fn sequence_numbers_never_wrap() {
        let dir = tempfile::tempdir().unwrap();
        let wal =
            WalWriter::create(dir.path(), 3, 0, SyncMode::Always, 1 << 30, Vec::new()).unwrap();
        wal.append(0, |_, frames| frames.push(&Payload::new(b"x")))
            .unwrap();
        wal.state.lock().next_seq = ROTATE_AT_SEQ;
        wal.append(0, |_, frames| frames.push(&Payload::new(b"y")))
            .unwrap();
        assert_eq!(wal.current_file_id(), 4);
        drop(wal);
        let replay = replay_file(&dir.path().join(file_name(4)), |_| {}).unwrap();
        let HeaderState::Valid(header) = replay.header else {
            panic!("{replay:?}")
        };
        assert_eq!(header.session_id, Some(3));
        assert_eq!(header.prev_last_seq, ROTATE_AT_SEQ - 1);
        // The frame numbered 1 in the new file holds "y" (not a record, so
        // replay reports it as damage; its number is what matters here).
        let bytes = std::fs::read(dir.path().join(file_name(4))).unwrap();
        assert_eq!(
            &bytes[WAL_HEADER_LEN + 8..WAL_HEADER_LEN + 12],
            &1u32.to_le_bytes()
        );
        assert_eq!(bytes[WAL_HEADER_LEN + FRAME_HEADER_LEN], b'y');
    }

    #[test]
    fn file_ids_never_wrap() {
        let dir = tempfile::tempdir().unwrap();
        let too_large = WalWriter::create(dir.path(), u64::MAX, 0, SyncMode::Never, 1, Vec::new());
        assert!(matches!(too_large, Err(Error::Corrupt(_))));
        let wal = WalWriter::create(
            dir.path(),
            MAX_FILE_ID,
            0,
            SyncMode::Never,
            1 << 30,
            Vec::new(),
        )
        .unwrap();
        wal.append(0, |_, frames| frames.push(&Payload::new(b"x")))
            .unwrap();
        assert!(matches!(wal.rotate(), Err(Error::Corrupt(_))));
        // Nothing was lost or poisoned: the buffer still reaches the file.
        wal.sync().unwrap();
        assert_eq!(wal.current_file_id(), MAX_FILE_ID);
    }

    #[test]
    fn stats_follow_the_files_on_disk_and_count_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let on_disk = |ids: &[u64]| -> u64 { ids.iter().map(|&id| file_len(dir.path(), id)).sum() };
        let wal =
            WalWriter::create(dir.path(), 1, 0, SyncMode::Always, 1 << 30, Vec::new()).unwrap();
        wal.append(0, |_, frames| frames.push(&Payload::new(b"x")))
            .unwrap();
        let stats = wal.stats();
        assert_eq!((stats.bytes, stats.fsyncs), (on_disk(&[1]), 1));
        assert_eq!(wal.rotate().unwrap(), 2);
        wal.append(0, |_, frames| frames.push(&Payload::new(b"yz")))
            .unwrap();
        assert_eq!(wal.stats().bytes, on_disk(&[1, 2]));
        wal.remove_files_before(2).unwrap();
        assert_eq!(wal.stats().bytes, on_disk(&[2]));
        assert_eq!(wal.stats().fsyncs, 3);
        drop(wal);
        // A new writer adopting the closed file 2 counts it.
        let closed = vec![ClosedFile {
            file_id: 2,
            max_time_ms: 0,
        }];
        let wal = WalWriter::create(dir.path(), 3, 1, SyncMode::Always, 1 << 30, closed).unwrap();
        assert_eq!(wal.stats().bytes, on_disk(&[2, 3]));
        assert_eq!(wal.stats().fsyncs, 0);
    }

    #[test]
    fn every_way_of_building_a_frame_gives_the_same_bytes() {
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut expected = Vec::new();
        super::super::frame(&payload, 5, &mut expected);
        super::super::frame(&payload, 6, &mut expected);
        super::super::frame(&payload[..3], 7, &mut expected);

        let mut buf = Vec::new();
        let mut next_seq = 5;
        let mut frames = Frames {
            buf: &mut buf,
            next_seq: &mut next_seq,
        };
        frames.push(&Payload::new(&payload));
        let start = frames.begin();
        frames.payload().extend_from_slice(&payload);
        frames.end(start);
        frames.push(&Payload::new(&payload[..3]));
        assert_eq!(buf, expected);
        assert_eq!(next_seq, 8);
    }
}
