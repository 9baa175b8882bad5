//! The data directory: its layout, the writer's lock, and the checks that
//! keep strata from following links, deleting what it did not write, or
//! reading damage as an empty database.
//!
//! Layout: `LOCK` (the writer's pid, for messages), `MANIFEST`,
//! `COMPACTION` (the compaction journal, see [`store_journal`]; only while
//! a compaction replaces files or left some behind), `wal/<id>.wal`,
//! `segments/<seq>.seg`, `quarantine/` (files strata could not use, moved
//! aside with a report, never deleted).
//!
//! Invariants:
//! - one writer per directory: the writer holds an exclusive `flock` on the
//!   directory itself (so removing `LOCK` does not unlock it) and on `LOCK`
//!   (so builds that only know `LOCK` are excluded too), plus an entry in a
//!   process-wide registry (a second open in the same process fails at
//!   once);
//! - `LOCK`, `MANIFEST`, `wal/`, `segments/` and `quarantine/` are never
//!   followed when they are symbolic links: opening fails instead;
//! - a manifest exists from the moment a directory holds a WAL file or a
//!   segment: a new database stores an empty manifest before anything else,
//!   so a missing manifest next to data is damage (`Error::MissingManifest`)
//!   until [`super::Db::repair`] rebuilds it. The one exception is what
//!   older builds left when they never flushed: WAL files from id 0 and no
//!   segment, which replay in full;
//! - the only files deleted without a report are `*.tmp` leftovers; segment
//!   files not in the manifest are deleted only when their sequence number
//!   proves they come from a flush that never committed (`seq >=
//!   next_segment_seq`; their data is still in the WAL) or the compaction
//!   journal names them (a compaction's input whose replacement was
//!   committed, or its output that never was: either way the data is in
//!   the segments the manifest lists); any other unlisted segment is moved
//!   to `quarantine/`.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::manifest::{Manifest, SegmentMeta, MANIFEST_FILE};
use super::{Quarantined, RecoveryReport};
use crate::error::{Error, Result};
use crate::segment::sync_parent_dir;

pub const LOCK_FILE: &str = "LOCK";
pub const WAL_DIR: &str = "wal";
pub const SEGMENT_DIR: &str = "segments";
pub const QUARANTINE_DIR: &str = "quarantine";
pub const JOURNAL_FILE: &str = "COMPACTION";
/// First line of the compaction journal; one segment `seq` per line
/// follows, then `crc32 <8 hex digits>` of every byte before that line.
const JOURNAL_HEADER: &str = "strata compaction journal v1";

/// How long an open waits for a lock that is held. A lock can be held for a
/// moment by a child process that another thread of the previous holder
/// forked (file descriptors are duplicated at fork and closed only at exec),
/// so a short wait tells that apart from a real second writer.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Directories (device, inode) this process holds the writer lock of.
static LOCKED_HERE: Mutex<BTreeSet<(u64, u64)>> = Mutex::new(BTreeSet::new());

/// The writer's hold on a directory; released on drop.
pub struct DirLock {
    _dir: File,
    _pid_file: File,
    id: (u64, u64),
}

impl Drop for DirLock {
    fn drop(&mut self) {
        release_registry(self.id);
    }
}

/// Fails if `path` exists and is a symbolic link.
fn refuse_symlink(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::BadDirectory {
            path: path.to_path_buf(),
            reason: "is a symbolic link; strata does not follow links inside a data directory \
                     (it could overwrite or delete another directory's files)"
                .into(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("inspect", path, e)),
    }
}

/// Checks the layout and, for a writer, takes the lock and creates the
/// subdirectories.
pub fn prepare(dir: &Path, read_only: bool) -> Result<Option<DirLock>> {
    if read_only {
        if !dir.is_dir() {
            return Err(Error::io(
                "open data directory",
                dir,
                std::io::Error::from(ErrorKind::NotFound),
            ));
        }
    } else {
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    for name in [
        LOCK_FILE,
        MANIFEST_FILE,
        super::metadata::METADATA_FILE,
        JOURNAL_FILE,
        WAL_DIR,
        SEGMENT_DIR,
        QUARANTINE_DIR,
    ] {
        refuse_symlink(&dir.join(name))?;
    }
    if read_only {
        return Ok(None);
    }
    let lock = acquire_lock(dir)?;
    for name in [WAL_DIR, SEGMENT_DIR] {
        let sub = dir.join(name);
        match fs::create_dir(&sub) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists && sub.is_dir() => {}
            Err(e) => return Err(Error::io("create directory", &sub, e)),
        }
    }
    Ok(Some(lock))
}

fn acquire_lock(dir: &Path) -> Result<DirLock> {
    let dir_file = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    let meta = dir_file
        .metadata()
        .map_err(|e| Error::io("inspect", dir, e))?;
    let id = (meta.dev(), meta.ino());
    let pid_path = dir.join(LOCK_FILE);
    let mut pid_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&pid_path)
        .map_err(|e| Error::io("open", &pid_path, e))?;
    let locked = |pid_file: &mut File| {
        let mut text = String::new();
        let _ = pid_file.read_to_string(&mut text);
        Error::Locked {
            path: dir.to_path_buf(),
            pid: text.trim().parse().ok(),
        }
    };
    if !LOCKED_HERE.lock().insert(id) {
        return Err(Error::Locked {
            path: dir.to_path_buf(),
            pid: Some(std::process::id()),
        });
    }
    // From here on, a failure must take `id` out of the registry again
    // (`DirLock` does it once it exists).
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let attempt = dir_file.try_lock().and_then(|()| pid_file.try_lock());
        match attempt {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                let _ = dir_file.unlock();
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(fs::TryLockError::WouldBlock) => {
                release_registry(id);
                return Err(locked(&mut pid_file));
            }
            Err(fs::TryLockError::Error(e)) => {
                release_registry(id);
                return Err(Error::io("lock", dir, e));
            }
        }
    }
    let lock = DirLock {
        _dir: dir_file,
        _pid_file: pid_file,
        id,
    };
    let mut pid_file = &lock._pid_file;
    pid_file
        .set_len(0)
        .and_then(|()| pid_file.write_all(std::process::id().to_string().as_bytes()))
        .map_err(|e| Error::io("write", &pid_path, e))?;
    Ok(lock)
}

fn release_registry(id: (u64, u64)) {
    LOCKED_HERE.lock().remove(&id);
}

/// Sequence numbers of the segment files in `segments/`, and the other
/// files there (temporary files, foreign names).
struct SegmentDirListing {
    segments: Vec<(u64, PathBuf)>,
    temporary: Vec<PathBuf>,
}

fn list_segment_dir(dir: &Path) -> Result<SegmentDirListing> {
    let segment_dir = dir.join(SEGMENT_DIR);
    let mut listing = SegmentDirListing {
        segments: Vec::new(),
        temporary: Vec::new(),
    };
    let entries = match fs::read_dir(&segment_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(listing),
        Err(e) => return Err(Error::io("read directory", &segment_dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", &segment_dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = SegmentMeta::parse_file_name(name) {
            listing.segments.push((seq, entry.path()));
        } else if name.ends_with(".seg.tmp") {
            listing.temporary.push(entry.path());
        }
    }
    listing.segments.sort();
    Ok(listing)
}

/// The manifest of `dir`. A directory with no manifest and no data is a new
/// database: a writer stores an empty manifest for it. No manifest next to
/// segments, or next to WAL files that do not start at id 0 (some were
/// checkpointed into segments), is an error.
pub fn load_manifest(dir: &Path, read_only: bool) -> Result<Manifest> {
    if !read_only {
        // An interrupted store; the manifest it was replacing is intact.
        let temp = super::envelope::temp_path(dir, MANIFEST_FILE);
        match fs::remove_file(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &temp, e)),
        }
    }
    if let Some(manifest) = Manifest::load(dir)? {
        return Ok(manifest);
    }
    let segment_files = list_segment_dir(dir)?.segments.len();
    let wal = crate::wal::list_wal_files(&dir.join(WAL_DIR))?;
    let wal_files = wal.len();
    // Builds before manifest version 2 wrote the manifest at the first
    // flush: WAL files starting at id 0 and no segment are a database that
    // never flushed, and replaying them all loses nothing.
    let never_flushed = segment_files == 0 && wal.first().is_none_or(|(id, _)| *id == 0);
    if !never_flushed {
        return Err(Error::MissingManifest {
            dir: dir.to_path_buf(),
            segment_files,
            wal_files,
        });
    }
    let manifest = Manifest::default();
    if !read_only {
        manifest.store(dir)?;
    }
    Ok(manifest)
}

/// How [`quarantine`] keeps a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Move it: strata stops using it.
    Move,
    /// Copy it, once: strata goes on reading around its damage, and the
    /// copy keeps the evidence after the original is checkpointed away. A
    /// copy already there (from an earlier open) is the older evidence and
    /// is kept as it is.
    Copy,
}

/// Keeps `path` under `quarantine/` (named after its path in the data
/// directory; a moved file gets `.N` added if the name is taken) and
/// records it. Read-only: records what would be done.
pub fn quarantine(
    dir: &Path,
    path: &Path,
    reason: String,
    keep: Keep,
    read_only: bool,
    recovery: &mut RecoveryReport,
) -> Result<()> {
    let quarantine_dir = dir.join(QUARANTINE_DIR);
    let base = quarantine_name(dir, path);
    let mut to = quarantine_dir.join(&base);
    if keep == Keep::Copy && to.exists() {
        return Ok(());
    }
    let mut n = 1;
    while to.exists() {
        to = quarantine_dir.join(format!("{base}.{n}"));
        n += 1;
    }
    if !read_only {
        match fs::create_dir(&quarantine_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists && quarantine_dir.is_dir() => {}
            Err(e) => return Err(Error::io("create directory", &quarantine_dir, e)),
        }
        match keep {
            Keep::Move => {
                crate::fault::check("quarantine.rename")
                    .and_then(|()| fs::rename(path, &to))
                    .map_err(|e| Error::io("move to quarantine", path, e))?;
                sync_parent_dir(path)?;
            }
            Keep::Copy => {
                let temp = quarantine_dir.join(format!("{base}.tmp"));
                crate::fault::check("quarantine.copy")
                    .and_then(|()| fs::copy(path, &temp))
                    .and_then(|_| File::open(&temp)?.sync_all())
                    .and_then(|()| fs::rename(&temp, &to))
                    .map_err(|e| Error::io("copy to quarantine", path, e))?;
            }
        }
        sync_parent_dir(&to)?;
    }
    recovery.quarantined.push(Quarantined {
        from: path.to_path_buf(),
        to,
        reason,
    });
    Ok(())
}

/// `segments-00000000000000000007.seg` for `dir/segments/0000…7.seg`.
fn quarantine_name(dir: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    relative
        .iter()
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join("-")
}

/// Deals with files in `segments/` that the manifest does not list: removes
/// `*.tmp` and segments of uncommitted flushes, quarantines the rest.
pub fn sweep_segments(
    dir: &Path,
    manifest: &Manifest,
    read_only: bool,
    recovery: &mut RecoveryReport,
) -> Result<()> {
    let listing = list_segment_dir(dir)?;
    for path in listing.temporary {
        if !read_only {
            fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
    }
    for (seq, path) in listing.segments {
        if manifest.segments.iter().any(|m| m.seq == seq) {
            continue;
        }
        if seq >= manifest.next_segment_seq {
            if !read_only {
                fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            }
            recovery.orphan_segments_removed.push(path);
        } else {
            let reason = format!(
                "segment {seq} is not in the manifest, which has already numbered segments up to {}: not a leftover of an interrupted flush",
                manifest.next_segment_seq - 1
            );
            quarantine(dir, &path, reason, Keep::Move, read_only, recovery)?;
        }
    }
    Ok(())
}

/// Records, durably and atomically (temporary file, fsync, rename,
/// directory fsync), the segment files a compaction step may leave
/// unlisted: its inputs (unlisted once the step commits) and its outputs
/// (unlisted until it does), plus leftovers of earlier steps. Every file it
/// names holds data that is also in the segments the manifest lists, so an
/// open deletes the ones the manifest does not list
/// ([`sweep_compaction_journal`]).
pub fn store_journal(dir: &Path, seqs: &BTreeSet<u64>) -> Result<()> {
    let path = dir.join(JOURNAL_FILE);
    let temp = dir.join(format!("{JOURNAL_FILE}.tmp"));
    let mut text = String::from(JOURNAL_HEADER);
    text.push('\n');
    for seq in seqs {
        text.push_str(&seq.to_string());
        text.push('\n');
    }
    let crc = crc32fast::hash(text.as_bytes());
    text.push_str(&format!("crc32 {crc:08x}\n"));
    let written = (|| {
        let mut file = File::create(&temp)?;
        crate::fault::write_all("compaction.journal", &mut file, text.as_bytes())?;
        file.sync_all()?;
        crate::fault::check("compaction.journal")?;
        fs::rename(&temp, &path)
    })();
    written.map_err(|e| Error::io("write compaction journal", &path, e))?;
    sync_parent_dir(&path)
}

/// Deletes the compaction journal (its files are all dealt with).
pub fn remove_journal(dir: &Path) -> Result<()> {
    let path = dir.join(JOURNAL_FILE);
    match fs::remove_file(&path) {
        Ok(()) => sync_parent_dir(&path),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", &path, e)),
    }
}

/// The segment numbers the journal names; `None` when there is no journal
/// or it is unreadable (then nothing is deleted on its word: unlisted
/// segments are quarantined as usual).
fn load_journal(dir: &Path) -> Result<Option<BTreeSet<u64>>> {
    let path = dir.join(JOURNAL_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == ErrorKind::InvalidData => return Ok(None),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    // The last line is the crc32 of every byte before it: a torn or
    // damaged journal names nothing.
    let Some(body_len) = text.trim_end_matches('\n').rfind('\n').map(|i| i + 1) else {
        return Ok(None);
    };
    let (body, crc_line) = text.split_at(body_len);
    let stored = crc_line
        .strip_prefix("crc32 ")
        .and_then(|hex| hex.strip_suffix('\n'))
        .and_then(|hex| u32::from_str_radix(hex, 16).ok());
    if stored != Some(crc32fast::hash(body.as_bytes())) {
        return Ok(None);
    }
    let mut lines = body.lines();
    if lines.next() != Some(JOURNAL_HEADER) {
        return Ok(None);
    }
    let seqs: Option<BTreeSet<u64>> = lines.map(|line| line.parse().ok()).collect();
    Ok(seqs)
}

/// Deletes the segment files the compaction journal names and the manifest
/// does not list (see [`store_journal`]), then the journal. Runs before
/// [`sweep_segments`], which would quarantine them. Read-only: reports.
pub fn sweep_compaction_journal(
    dir: &Path,
    manifest: &Manifest,
    read_only: bool,
    recovery: &mut RecoveryReport,
) -> Result<()> {
    if !read_only {
        let temp = dir.join(format!("{JOURNAL_FILE}.tmp"));
        match fs::remove_file(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &temp, e)),
        }
    }
    let Some(seqs) = load_journal(dir)? else {
        return Ok(());
    };
    let segment_dir = dir.join(SEGMENT_DIR);
    for seq in seqs {
        if manifest.segments.iter().any(|m| m.seq == seq) {
            continue;
        }
        let path = segment_dir.join(SegmentMeta::file_name(seq));
        if !path.exists() {
            continue;
        }
        if !read_only {
            fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
        recovery.compaction_leftovers_removed.push(path);
    }
    if !read_only {
        remove_journal(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trips_and_any_damage_makes_it_name_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let seqs: BTreeSet<u64> = [3, 17, 400].into_iter().collect();
        store_journal(dir.path(), &seqs).unwrap();
        assert_eq!(load_journal(dir.path()).unwrap(), Some(seqs));
        let path = dir.path().join(JOURNAL_FILE);
        let bytes = fs::read(&path).unwrap();
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            fs::write(&path, &damaged).unwrap();
            assert_eq!(load_journal(dir.path()).unwrap(), None, "flip at {i}");
            fs::write(&path, &bytes[..i]).unwrap();
            assert_eq!(load_journal(dir.path()).unwrap(), None, "cut at {i}");
        }
    }
}
