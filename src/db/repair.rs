//! Explicit repair of a data directory whose manifest is missing, damaged,
//! or lists segment files that are gone or damaged. Opening never does this
//! by itself: it refuses and names the damage, and the user decides.
//!
//! Invariants:
//! - nothing is deleted: damaged files (the old manifest, unreadable
//!   segments) are moved to `quarantine/`;
//! - a rebuilt manifest lists every readable segment and replays every WAL
//!   file from the start (`persisted_below_ms = i64::MIN`): samples that
//!   are both in a segment and in the WAL are read once (a repeated
//!   timestamp keeps one value), so no acknowledged sample that survives on
//!   disk is left out;
//! - a rebuilt manifest lists raw segments only: a segment holding rollup
//!   columns (series with the `__rollup__` label) belongs to a tier the
//!   segment file does not name, so it is quarantined; the next compaction
//!   rolls the tiers up again from the raw data still there.

use std::path::Path;

use super::dir::{self, Keep, SEGMENT_DIR, WAL_DIR};
use super::manifest::{Manifest, SegmentMeta, SegmentPin, MANIFEST_FILE};
use super::{Db, Options, RecoveryReport};
use crate::error::{Error, Result};
use crate::head::partition_start;
use crate::rollup::ROLLUP_LABEL;
use crate::segment::Segment;

/// What [`Db::repair`] did, one line per action, and the files it moved to
/// `quarantine/`. Both are empty for a directory that needed nothing.
///
/// ```
/// use strata::{Db, Options, SeriesKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = Db::open(dir.path(), Options::default())?;
/// db.append(&SeriesKey::new("up", &[])?, 1_000, 1.0)?;
/// db.close()?;
///
/// let report = Db::repair(dir.path(), &Options::default())?;
/// assert!(report.actions.is_empty() && report.quarantined.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RepairReport {
    pub actions: Vec<String>,
    pub quarantined: Vec<super::Quarantined>,
}

impl Db {
    /// Repairs `dir` so that it opens: rebuilds a missing or damaged
    /// manifest from the segment files present, and drops manifest entries
    /// whose segment is missing or damaged (moving damaged files to
    /// `quarantine/`). Takes the writer lock. A directory that needs
    /// nothing is left as it is (empty report).
    ///
    /// ```
    /// use strata::{Db, Matcher, Options, SeriesKey, TimeRange};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.append(&SeriesKey::new("up", &[])?, 1_000, 1.0)?;
    /// db.close()?;
    /// std::fs::remove_file(dir.path().join("MANIFEST"))?;
    ///
    /// let report = Db::repair(dir.path(), &Options::default())?;
    /// assert_eq!(report.actions.len(), 1); // "MANIFEST is missing: rebuilt ..."
    /// let db = Db::open(dir.path(), Options::default())?;
    /// assert_eq!(db.select(&[Matcher::equal("__name__", "up")], TimeRange::ALL)?.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn repair(dir: impl AsRef<Path>, options: &Options) -> Result<RepairReport> {
        let dir = dir.as_ref();
        options.validate()?;
        let _lock = dir::prepare(dir, false)?;
        let mut moved = RecoveryReport::default();
        let mut actions = Vec::new();
        let manifest = match Manifest::load(dir) {
            Ok(Some(manifest)) => Some(manifest),
            Ok(None) => {
                actions.push("MANIFEST is missing: rebuilt from the segment files".to_string());
                None
            }
            Err(Error::Corrupt(damage)) => {
                dir::quarantine(
                    dir,
                    &dir.join(MANIFEST_FILE),
                    damage.to_string(),
                    Keep::Move,
                    false,
                    &mut moved,
                )?;
                actions.push(format!(
                    "MANIFEST is damaged ({damage}): rebuilt from the segment files"
                ));
                None
            }
            Err(other) => return Err(other),
        };
        let rebuilt = manifest.is_none();
        let mut manifest = match manifest {
            Some(manifest) => manifest,
            None => rebuild(dir, options, &mut moved, &mut actions)?,
        };
        let segment_dir = dir.join(SEGMENT_DIR);
        let before = manifest.segments.len();
        let mut kept = Vec::with_capacity(before);
        for meta in std::mem::take(&mut manifest.segments) {
            let path = segment_dir.join(SegmentMeta::file_name(meta.seq));
            if !path.exists() {
                actions.push(format!(
                    "segment {} is listed but missing: dropped from the manifest ({} samples lost)",
                    meta.seq, meta.sample_count
                ));
                continue;
            }
            let checked = Segment::open(&path).and_then(|segment| match meta.pin {
                Some(pin) => pin.check_open(&segment).map(|()| pin),
                None => SegmentPin::of_file(&path, &segment),
            });
            match checked {
                Ok(pin) => kept.push(SegmentMeta {
                    pin: Some(pin),
                    ..meta
                }),
                Err(Error::Corrupt(damage)) => {
                    actions.push(format!(
                        "segment {} is damaged: moved to quarantine and dropped from the manifest ({} samples)",
                        meta.seq, meta.sample_count
                    ));
                    dir::quarantine(
                        dir,
                        &path,
                        damage.to_string(),
                        Keep::Move,
                        false,
                        &mut moved,
                    )?;
                }
                Err(other) => return Err(other),
            }
        }
        let dropped = before - kept.len();
        manifest.segments = kept;
        if rebuilt || dropped > 0 {
            manifest.store(dir)?;
        }
        Ok(RepairReport {
            actions,
            quarantined: moved.quarantined,
        })
    }
}

/// A manifest listing every raw segment file in `dir` that opens,
/// replaying every WAL file; rollup segments are quarantined.
fn rebuild(
    dir: &Path,
    options: &Options,
    moved: &mut RecoveryReport,
    actions: &mut Vec<String>,
) -> Result<Manifest> {
    let segment_dir = dir.join(SEGMENT_DIR);
    let mut manifest = Manifest::default();
    let mut seqs: Vec<(u64, std::path::PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&segment_dir) {
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read directory", &segment_dir, e))?;
            if let Some(seq) = entry
                .file_name()
                .to_str()
                .and_then(SegmentMeta::parse_file_name)
            {
                seqs.push((seq, entry.path()));
            }
        }
    }
    seqs.sort();
    for (seq, path) in seqs {
        let segment = match Segment::open(&path) {
            Ok(segment) => segment,
            Err(Error::Corrupt(damage)) => {
                dir::quarantine(dir, &path, damage.to_string(), Keep::Move, false, moved)?;
                continue;
            }
            Err(other) => return Err(other),
        };
        let footer = segment.footer();
        if footer.series_count == 0 {
            continue;
        }
        if segment.label_names().contains(&ROLLUP_LABEL) {
            let reason = format!(
                "segment {seq} holds rollup buckets ({ROLLUP_LABEL} series) of a tier the lost manifest named; not raw data, so not listed: the next compaction rolls the tiers up again from the raw data still there"
            );
            actions.push(format!("segment {seq}: moved to quarantine ({reason})"));
            dir::quarantine(dir, &path, reason, Keep::Move, false, moved)?;
            continue;
        }
        let partition_ms = options.partition_duration_ms;
        let partition_start_ms = partition_start(footer.min_time_ms, partition_ms);
        // A merged block spans several partitions: record the partitions
        // it covers (0: one partition, as a flush writes).
        let last_partition_ms = partition_start(footer.max_time_ms, partition_ms);
        let block_duration_ms = match last_partition_ms - partition_start_ms {
            0 => 0,
            span => span.saturating_add(partition_ms),
        };
        manifest.segments.push(SegmentMeta {
            seq,
            partition_start_ms,
            min_time_ms: footer.min_time_ms,
            max_time_ms: footer.max_time_ms,
            sample_count: footer.sample_count,
            series_count: footer.series_count,
            pin: Some(SegmentPin::of_file(&path, &segment)?),
            resolution_ms: 0,
            block_duration_ms,
        });
        manifest.next_segment_seq = manifest.next_segment_seq.max(seq.saturating_add(1));
    }
    manifest.wal_replay_from = crate::wal::list_wal_files(&dir.join(WAL_DIR))?
        .first()
        .map_or(0, |(id, _)| *id);
    Ok(manifest)
}
