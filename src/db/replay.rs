//! Recovery at open: replaying WAL files into the head, around damage.
//!
//! Files are replayed in id order. Series ids are unique within one writer
//! session, so a samples record is resolved against the definitions of its
//! whole session (files with the same session id in their header): a
//! sample whose definition frame was lost is held back until a definition
//! of its id turns up in any file of the session, and applied then (before
//! any later sample of that series, so last-write-wins order is kept). What
//! is still unresolved when the session's files end is counted in
//! `samples_without_series`. Version 1 files and files with a damaged
//! header are each a session of their own. Held-back samples stay in memory
//! until then: at most the samples of the series whose definitions were
//! lost.
//!
//! What is lost: the records of damaged frames and nothing else (version 2);
//! the samples of a series whose definition frame was lost only when no
//! other file of the session defines it; with version 1, everything after
//! the first bad frame of a file; the frames after a cut exactly at a frame
//! boundary of the newest file (indistinguishable from a crash). The
//! details, case by case, are in docs/FORMAT.md.
//!
//! What a writable open does with each finding (a read-only open only
//! reports it):
//! - unknown version (intact header): the open fails before anything on
//!   disk is changed;
//! - torn create (at most a header's 36 bytes without an intact header;
//!   nothing in it was acknowledged): removed;
//! - torn tail (damage to the end of the file, nothing valid after it, and
//!   no later file saying frames are missing): truncated;
//! - anything else (damaged header, damage in the middle, a tail that the
//!   next file's header proves was complete, a version 1 file bad before
//!   its end): the file is copied to `quarantine/` first (once: an existing
//!   copy is kept), then replayed around the damage and left as it is. The
//!   writer never appends to it; it is deleted once a flush checkpoints it.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use super::dir::{self, Keep};
use super::manifest::Manifest;
use super::RecoveryReport;
use crate::error::{Error, Result};
use crate::head::{Head, MemSeries};
use crate::wal::record::Record;
use crate::wal::{self, ClosedFile, HeaderState, WalDamage};

/// What WAL recovery leaves for the writer.
pub(super) struct WalRecovery {
    /// Replayed files still on disk, for the writer to delete once their
    /// samples are in segments.
    pub closed: Vec<ClosedFile>,
    /// The id of the writer's first file.
    pub next_file_id: u64,
    /// The last frame number of file `next_file_id - 1` (0 if none).
    pub prev_last_seq: u32,
    /// Newest sample timestamp seen in the WAL.
    pub max_time_ms: i64,
}

/// Replays the WAL files of `dir` that the manifest still needs into
/// `head`, reporting into `recovery`; a writable open also deletes
/// checkpointed files, removes torn creates, truncates torn tails and
/// quarantines damaged files.
pub(super) fn recover_wal(
    head: &Head,
    dir: &Path,
    wal_dir: &Path,
    manifest: &Manifest,
    keep_wal_from: u64,
    read_only: bool,
    recovery: &mut RecoveryReport,
) -> Result<WalRecovery> {
    let mut next_file_id = manifest.wal_replay_from;
    let mut live = Vec::new();
    let mut held = Vec::new();
    for (file_id, path) in wal::list_wal_files(wal_dir)? {
        // list_wal_files guarantees file_id <= MAX_FILE_ID < u64::MAX.
        next_file_id = next_file_id.max(file_id + 1);
        if file_id < manifest.wal_replay_from {
            if file_id >= keep_wal_from {
                // Persisted, but a WAL reader still needs it: not replayed,
                // deleted by a checkpoint once the hold moves past it.
                held.push(ClosedFile {
                    file_id,
                    max_time_ms: i64::MIN,
                });
            } else if !read_only {
                // Fully persisted; a crash came before its deletion.
                fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            }
            continue;
        }
        live.push((file_id, path));
    }
    // Every header first: an unknown version fails the open before any
    // file is changed.
    let headers = live
        .iter()
        .map(|(_, path)| wal::read_header(path))
        .collect::<Result<Vec<_>>>()?;

    let mut resolver = Resolver::new(head, manifest.persisted_below_ms);
    let mut closed = held;
    let mut max_time_ms = i64::MIN;
    let mut prev_last_seq = 0;
    for (i, (file_id, path)) in live.iter().enumerate() {
        let session = match &headers[i] {
            HeaderState::Valid(h) => h.session_id,
            _ => None,
        };
        resolver.start_file(session);
        let replay = wal::replay_file(path, |record| resolver.apply(record))?;
        max_time_ms = max_time_ms.max(resolver.file_max_ms);
        recovery.wal_files_replayed += 1;
        recovery.wal_records_replayed += replay.records;

        let mut damage = replay.skipped.clone();
        let mut tail = replay.damage.clone();
        // The writer creates file n + 1 only after file n is complete and
        // fsynced, and records n's frame count in n + 1's header: frames
        // missing from n are damage, not a crash.
        let promised = match (live.get(i + 1), headers.get(i + 1)) {
            (Some((next_id, _)), Some(HeaderState::Valid(next))) if *next_id == file_id + 1 => {
                next.prev_last_seq
            }
            _ => 0,
        };
        if promised > replay.last_seq {
            let missing = format!(
                "frames {}..={promised} are missing (the next file's header says this file had {promised})",
                replay.last_seq + 1
            );
            damage.push(match tail.take() {
                Some(t) => WalDamage {
                    torn_tail: false,
                    reason: format!("{}; {missing}", t.reason),
                    ..t
                },
                None => WalDamage {
                    path: path.clone(),
                    offset: replay.valid_len,
                    dropped_bytes: 0,
                    torn_tail: false,
                    reason: format!("the file ends early: {missing}"),
                },
            });
        }
        if let Some(first) = damage.first() {
            dir::quarantine(
                dir,
                path,
                first.reason.clone(),
                Keep::Copy,
                read_only,
                recovery,
            )?;
        }
        let mut removed = false;
        if let (Some(_), false) = (&tail, read_only) {
            if matches!(replay.header, HeaderState::TornCreate { .. }) {
                fs::remove_file(path).map_err(|e| Error::io("remove", path, e))?;
                removed = true;
            } else {
                truncate(path, replay.valid_len)?;
            }
        }
        recovery.wal_damage.extend(damage);
        recovery.wal_damage.extend(tail);
        prev_last_seq = replay.last_seq;
        if !removed {
            closed.push(ClosedFile {
                file_id: *file_id,
                max_time_ms: resolver.file_max_ms,
            });
        }
    }
    resolver.finish_session();
    recovery.samples_replayed += resolver.replayed;
    recovery.samples_already_persisted += resolver.already_persisted;
    recovery.samples_without_series += resolver.without_series;
    if live.last().map(|(id, _)| id + 1) != Some(next_file_id) {
        prev_last_seq = 0;
    }
    Ok(WalRecovery {
        closed,
        next_file_id,
        prev_last_seq,
        max_time_ms,
    })
}

/// Applies records to the head, resolving series ids per writer session.
struct Resolver<'h> {
    head: &'h Head,
    persisted_below_ms: i64,
    /// The session of the files being read; `None`: one file on its own.
    session: Option<u64>,
    by_id: HashMap<u32, Arc<MemSeries>>,
    /// Samples whose series id has no definition yet in this session, in
    /// WAL order.
    pending: HashMap<u32, Vec<(i64, f64)>>,
    /// Newest sample timestamp in the current file.
    file_max_ms: i64,
    replayed: u64,
    already_persisted: u64,
    without_series: u64,
}

impl<'h> Resolver<'h> {
    fn new(head: &'h Head, persisted_below_ms: i64) -> Self {
        Resolver {
            head,
            persisted_below_ms,
            session: None,
            by_id: HashMap::new(),
            pending: HashMap::new(),
            file_max_ms: i64::MIN,
            replayed: 0,
            already_persisted: 0,
            without_series: 0,
        }
    }

    /// Starts a file of `session`; a different session (or none) ends the
    /// one before.
    fn start_file(&mut self, session: Option<u64>) {
        if session.is_none() || session != self.session {
            self.finish_session();
            self.session = session;
        }
        self.file_max_ms = i64::MIN;
    }

    /// Samples still without a definition are lost.
    fn finish_session(&mut self) {
        self.without_series += self.pending.values().map(|p| p.len() as u64).sum::<u64>();
        self.pending.clear();
        self.by_id.clear();
    }

    fn insert(&mut self, series: &MemSeries, timestamp_ms: i64, value: f64) {
        series
            .lock()
            .insert(timestamp_ms, value, self.head.partition_ms());
        self.replayed += 1;
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::Series { series_id, key } => {
                // By key: the definitions of one key under different ids
                // (a series garbage collection dropped and a later append
                // re-created) rebuild one series.
                let Some((series, _)) = self.head.get_or_create(&key, usize::MAX) else {
                    return;
                };
                for (timestamp_ms, value) in self.pending.remove(&series_id).unwrap_or_default() {
                    self.insert(&series, timestamp_ms, value);
                }
                self.by_id.insert(series_id, series);
            }
            Record::Samples(samples) => {
                for sample in samples {
                    self.file_max_ms = self.file_max_ms.max(sample.timestamp_ms);
                    if sample.timestamp_ms < self.persisted_below_ms {
                        self.already_persisted += 1;
                    } else if let Some(series) = self.by_id.get(&sample.series_id).cloned() {
                        self.insert(&series, sample.timestamp_ms, sample.value);
                    } else {
                        self.pending
                            .entry(sample.series_id)
                            .or_default()
                            .push((sample.timestamp_ms, sample.value));
                    }
                }
            }
        }
    }
}

/// Cuts a torn tail off a WAL file.
fn truncate(path: &Path, valid_len: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    file.set_len(valid_len)
        .map_err(|e| Error::io("truncate torn WAL tail of", path, e))?;
    file.sync_all().map_err(|e| Error::io("fsync", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::{SeriesKey, TimeRange};
    use crate::wal::record::{encode_series, SamplesEncoder};
    use crate::wal::{SyncMode, WalWriter};

    /// Appends the definition of `key` as `series_id` and one sample of it.
    fn define_and_append(wal: &WalWriter, series_id: u32, key: &SeriesKey, t: i64) {
        wal.append(t, |_, frames| {
            let frame = frames.begin();
            encode_series(series_id, key, frames.payload());
            frames.end(frame);
            let frame = frames.begin();
            let out = frames.payload();
            let record = out.len();
            let mut encoder = SamplesEncoder::begin(t, out);
            encoder.push(series_id, t, t as f64, out);
            encoder.finish(record, out);
            frames.end(frame);
        })
        .unwrap();
    }

    /// A key dropped by head garbage collection and re-created has two
    /// definitions under two ids in one writer session: they rebuild one
    /// series with the samples of both.
    #[test]
    fn definitions_of_one_key_under_two_ids_rebuild_one_series() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        fs::create_dir(&wal_dir).unwrap();
        let key = SeriesKey::new("up", &[("pod", "a")]).unwrap();
        let other = SeriesKey::new("up", &[("pod", "b")]).unwrap();
        let wal = WalWriter::create(&wal_dir, 1, 0, SyncMode::Never, 1 << 20, Vec::new()).unwrap();
        define_and_append(&wal, 0, &key, 1_000);
        define_and_append(&wal, 1, &other, 1_500);
        wal.rotate().unwrap();
        // The same id's definition again in the new file, then the key
        // under its new id, in the same file.
        define_and_append(&wal, 1, &other, 2_000);
        define_and_append(&wal, 2, &key, 2_500);
        wal.sync().unwrap();
        drop(wal);

        let head = Head::new(10_000);
        let mut recovery = RecoveryReport::default();
        let manifest = Manifest::default();
        recover_wal(
            &head,
            dir.path(),
            &wal_dir,
            &manifest,
            u64::MAX,
            true,
            &mut recovery,
        )
        .unwrap();
        assert_eq!(recovery.samples_replayed, 4);
        assert_eq!(recovery.samples_without_series, 0);
        assert_eq!(head.series_count(), 2);
        let series = head.get(&key).unwrap();
        let samples: Vec<i64> = series
            .snapshot(TimeRange::ALL, 10_000)
            .iter()
            .flat_map(|p| p.samples(TimeRange::ALL).unwrap())
            .map(|s| s.timestamp_ms)
            .collect();
        assert_eq!(samples, [1_000, 2_500]);
    }
}
