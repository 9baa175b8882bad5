//! Named I/O fault points, for tests that prove what survives a failed
//! write, fsync, rename or remove.
//!
//! Every storage step that touches the disk goes through `check` (before a
//! rename, fsync, remove, create) or `write_all` (writes, which can also
//! tear: only a prefix reaches the file before the error). Without the
//! `fault-injection` cargo feature both compile to the plain operation.
//! With it, a test arms a point by name with `inject`; the point fails on
//! its `nth` hit from then on (once, or every time after) and counts hits.
//!
//! Point names are `<component>.<step>`: `wal.write`, `wal.fsync`,
//! `wal.create`, `wal.remove`, `segment.write`, `segment.fsync`,
//! `segment.rename`, `manifest.write`, `manifest.fsync`, `manifest.rename`,
//! `dir.fsync`, `quarantine.rename`, `quarantine.copy`, and compaction's
//! `compaction.journal` (writing the journal of a step),
//! `compaction.write` (after a step's output is written, before its
//! commit), `compaction.commit` (just before the manifest store),
//! `compaction.remove` (after the commit, before deleting the replaced
//! files, then before each deletion). docs/RELIABILITY.md lists which test
//! arms which point.
//!
//! Invariant: the armed set is process-global (background threads must see
//! it too), so tests that arm points serialize themselves.

use std::io::{self, Write};

/// What an armed point does.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The operation fails with this error kind before doing anything
    /// (`StorageFull` for ENOSPC, `Other` for EIO).
    Fail(io::ErrorKind),
    /// A write lets this many bytes through, then fails with EIO. Other
    /// operations treat it as `Fail(Other)`.
    Tear { after_bytes: usize },
}

#[cfg(feature = "fault-injection")]
mod armed {
    use super::Fault;
    use parking_lot::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    pub(super) struct Armed {
        pub point: String,
        pub fault: Fault,
        /// Fires on hit number `nth` (1-based) and, if `repeat`, every hit
        /// after it.
        pub nth: u64,
        pub repeat: bool,
        pub hits: u64,
    }

    pub(super) static ANY: AtomicBool = AtomicBool::new(false);
    pub(super) static ARMED: Mutex<Vec<Armed>> = Mutex::new(Vec::new());

    /// The fault to apply at this hit of `point`, if any.
    pub(super) fn hit(point: &str) -> Option<Fault> {
        if !ANY.load(Ordering::Relaxed) {
            return None;
        }
        let mut armed = ARMED.lock();
        let entry = armed.iter_mut().find(|a| a.point == point)?;
        entry.hits += 1;
        let fires = entry.hits == entry.nth || (entry.repeat && entry.hits > entry.nth);
        fires.then_some(entry.fault)
    }
}

/// Arms `point`: it fails on its `nth` hit (1-based) from now, and on every
/// later hit too when `repeat`. Replaces an earlier arming of the point.
#[cfg(feature = "fault-injection")]
pub fn inject(point: &str, fault: Fault, nth: u64, repeat: bool) {
    let mut list = armed::ARMED.lock();
    list.retain(|a| a.point != point);
    list.push(armed::Armed {
        point: point.to_string(),
        fault,
        nth: nth.max(1),
        repeat,
        hits: 0,
    });
    armed::ANY.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// How often `point` was reached since it was armed (0 if not armed).
#[cfg(feature = "fault-injection")]
pub fn hits(point: &str) -> u64 {
    armed::ARMED
        .lock()
        .iter()
        .find(|a| a.point == point)
        .map_or(0, |a| a.hits)
}

/// Disarms every point.
#[cfg(feature = "fault-injection")]
pub fn clear() {
    armed::ARMED.lock().clear();
    armed::ANY.store(false, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(feature = "fault-injection")]
fn injected(point: &'static str) -> io::Error {
    io::Error::other(format!("injected fault at {point}"))
}

/// Fails if `point` is armed to fail now; otherwise does nothing.
#[inline]
pub(crate) fn check(point: &'static str) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if let Some(fault) = armed::hit(point) {
        return Err(match fault {
            Fault::Fail(kind) => io::Error::new(kind, injected(point)),
            Fault::Tear { .. } => injected(point),
        });
    }
    let _ = point;
    Ok(())
}

/// `out.write_all(bytes)`, unless `point` is armed: then it fails, possibly
/// after writing a prefix of `bytes` (a torn write).
#[inline]
pub(crate) fn write_all(point: &'static str, mut out: impl Write, bytes: &[u8]) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if let Some(fault) = armed::hit(point) {
        return match fault {
            Fault::Fail(kind) => Err(io::Error::new(kind, injected(point))),
            Fault::Tear { after_bytes } => {
                out.write_all(&bytes[..after_bytes.min(bytes.len())])?;
                Err(injected(point))
            }
        };
    }
    let _ = point;
    out.write_all(bytes)
}
