//! The manifest: which segment files make up the database and where WAL
//! replay starts. Rewritten whole and atomically (temporary file, fsync,
//! rename, directory fsync) at the end of every flush: that rename is the
//! commit point of a flush. A new database gets its (empty) manifest before
//! its first WAL file, so a data directory with segments or WAL files and
//! no manifest is damage, never an empty database.
//!
//! Layout (little-endian): magic `STRATMAN`, `u16` version, `u16` reserved,
//! `u32` payload length, payload, `u32` crc32 of all preceding bytes.
//! Payload: `u64 next_segment_seq`, `i64 persisted_below_ms`,
//! `u64 wal_replay_from`, `u32 segment_count`, then per segment
//! `u64 seq`, `i64 partition_start_ms`, `i64 min_time_ms`,
//! `i64 max_time_ms`, `u64 sample_count`, `u32 series_count` (44 bytes in
//! version 1), and from version 2 on the segment's pin: `u64 file_len`,
//! `u32 footer_crc`, `u32 file_crc` (60 bytes). Version 3 adds the tiers
//! (after `wal_replay_from`: `u32 tier_count`, then per tier
//! `i64 resolution_ms`, `i64 rolled_up_to_ms`, `i64 retained_from_ms`)
//! and per segment `i64 resolution_ms`, `i64 block_duration_ms` (76
//! bytes). docs/FORMAT.md has the full specification.
//!
//! Invariants (checked by [`Manifest::decode`]):
//! - segment entries are sorted by strictly increasing `seq`, and every
//!   `seq` is below `next_segment_seq`: a higher `seq` is a newer segment
//!   and wins on a repeated timestamp;
//! - `min_time_ms <= max_time_ms` for every entry;
//! - tiers are sorted by strictly increasing `resolution_ms`, all `> 0`
//!   (the raw tier is implicit), and every segment's `resolution_ms` is 0
//!   (raw) or one of theirs; versions 1 and 2 have no tiers and only raw
//!   segments (`block_duration_ms` 0: one flushed partition);
//! - a version-1 manifest has no pins (`SegmentMeta::pin` is `None`); a
//!   writable open computes them and the next store writes version 2.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use super::envelope::{self, HEADER_LEN};
use crate::error::{Corruption, CorruptionError, Error, Result};
use crate::segment::format::Cursor;
use crate::segment::{Segment, SegmentSummary};

pub const MANIFEST_FILE: &str = "MANIFEST";
const MAGIC: &[u8; 8] = b"STRATMAN";
/// Written by this build; version 1 is still read.
const VERSION: u16 = 3;
const ENTRY_LEN_V1: usize = 44;
const ENTRY_LEN_V2: usize = 60;
const ENTRY_LEN_V3: usize = 76;
const TIER_LEN: usize = 24;

/// What a manifest knows about a segment file's bytes, so that a file
/// replaced by another (valid) segment is noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentPin {
    /// Length of the file in bytes; checked at every open.
    pub file_len: u64,
    /// The crc32 stored in the file's footer (of footer bytes 0..96, which
    /// hold every table's crc32, the counts and the time range); checked at
    /// every open.
    pub footer_crc: u32,
    /// crc32 of the whole file; checked by `verify`.
    pub file_crc: u32,
}

impl SegmentPin {
    /// Computes the pin of the segment file at `path` (one sequential read).
    pub fn of_file(path: &Path, segment: &Segment) -> Result<SegmentPin> {
        let (file_len, file_crc) = file_crc32(path)?;
        Ok(SegmentPin {
            file_len,
            footer_crc: segment.footer_crc(),
            file_crc,
        })
    }

    /// Checks the cheap parts of the pin (length, footer) against an open
    /// segment.
    pub fn check_open(&self, segment: &Segment) -> Result<()> {
        let pinned = |what: String| -> Error {
            CorruptionError {
                path: segment.path().to_path_buf(),
                offset: 0,
                series: None,
                kind: Corruption::BadLayout(what),
            }
            .into()
        };
        if segment.file_len() != self.file_len {
            return Err(pinned(format!(
                "the manifest pins this segment at {} bytes, the file has {} (truncated, or replaced by another file)",
                self.file_len,
                segment.file_len()
            )));
        }
        let found = segment.footer_crc();
        if found != self.footer_crc {
            return Err(pinned(format!(
                "the manifest pins this segment's footer crc32 at {:#010x}, the file's is {found:#010x} (replaced by another segment?)",
                self.footer_crc
            )));
        }
        Ok(())
    }
}

/// Length and crc32 of a whole file, read in 1 MiB pieces.
pub fn file_crc32(path: &Path) -> Result<(u64, u32)> {
    let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", path, e)),
        };
        hasher.update(&buffer[..n]);
        len += n as u64;
    }
    Ok((len, hasher.finalize()))
}

/// One published segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentMeta {
    /// Sequence number: the file is `segments/<seq>.seg`; a higher number
    /// is newer and wins on repeated timestamps.
    pub seq: u64,
    pub partition_start_ms: i64,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    pub sample_count: u64,
    pub series_count: u32,
    /// `None` only for entries read from a version-1 manifest.
    pub pin: Option<SegmentPin>,
    /// 0 for raw samples; else the bucket width of the rollup tier whose
    /// buckets the segment holds (see `crate::rollup`).
    pub resolution_ms: i64,
    /// Width of the aligned time window `[partition_start_ms,
    /// partition_start_ms + block_duration_ms)` the segment covers: its
    /// compaction level. 0 for a segment written by a flush (one partition,
    /// or any data of a partition not yet complete).
    pub block_duration_ms: i64,
}

/// What the manifest records of one rollup tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierMeta {
    /// Bucket width, > 0.
    pub resolution_ms: i64,
    /// Every raw sample before this is rolled up into this tier's segments
    /// (its buckets starting before it are complete); `i64::MIN` when
    /// nothing is. A multiple of `resolution_ms` (or `i64::MIN`).
    pub rolled_up_to_ms: i64,
    /// Retention has deleted this tier's buckets starting before this;
    /// `i64::MIN` when it never deleted anything.
    pub retained_from_ms: i64,
}

impl SegmentMeta {
    /// The entry of a segment just written and pinned by its summary.
    pub fn written(
        seq: u64,
        partition_start_ms: i64,
        summary: &SegmentSummary,
        resolution_ms: i64,
        block_duration_ms: i64,
    ) -> SegmentMeta {
        SegmentMeta {
            seq,
            partition_start_ms,
            min_time_ms: summary.min_time_ms,
            max_time_ms: summary.max_time_ms,
            sample_count: summary.sample_count,
            series_count: summary.series_count,
            pin: Some(SegmentPin {
                file_len: summary.file_len,
                footer_crc: summary.footer_crc,
                file_crc: summary.file_crc,
            }),
            resolution_ms,
            block_duration_ms,
        }
    }

    pub fn file_name(seq: u64) -> String {
        format!("{seq:020}.seg")
    }

    /// The sequence number in a segment file name, if it is one.
    pub fn parse_file_name(name: &str) -> Option<u64> {
        name.strip_suffix(".seg")
            .filter(|stem| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|stem| stem.parse().ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub next_segment_seq: u64,
    /// Every acknowledged sample older than this is in segments; WAL
    /// samples older than this are skipped on replay.
    pub persisted_below_ms: i64,
    /// WAL files with lower ids are fully persisted and may be deleted.
    pub wal_replay_from: u64,
    /// Retention has deleted raw samples before this; `i64::MIN` when it
    /// never deleted anything. Stored as the raw tier's
    /// `retained_from_ms` (version 3).
    pub raw_retained_from_ms: i64,
    /// The rollup tiers, by increasing resolution.
    pub tiers: Vec<TierMeta>,
    /// Every tier's segments, sorted by `seq`, oldest first.
    pub segments: Vec<SegmentMeta>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            next_segment_seq: 1,
            persisted_below_ms: i64::MIN,
            wal_replay_from: 0,
            raw_retained_from_ms: i64::MIN,
            tiers: Vec::new(),
            segments: Vec::new(),
        }
    }
}

impl Manifest {
    /// Encodes as the current version. Entries without a pin are written
    /// with zeros, which never match a real file: callers pin every
    /// segment before storing (a writable open does).
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(
            40 + TIER_LEN * (self.tiers.len() + 1) + ENTRY_LEN_V3 * self.segments.len(),
        );
        payload.extend_from_slice(&self.next_segment_seq.to_le_bytes());
        payload.extend_from_slice(&self.persisted_below_ms.to_le_bytes());
        payload.extend_from_slice(&self.wal_replay_from.to_le_bytes());
        // The raw tier first (resolution 0), then the rollup tiers.
        payload.extend_from_slice(&(self.tiers.len() as u32 + 1).to_le_bytes());
        let raw = TierMeta {
            resolution_ms: 0,
            rolled_up_to_ms: i64::MIN,
            retained_from_ms: self.raw_retained_from_ms,
        };
        for tier in std::iter::once(&raw).chain(&self.tiers) {
            payload.extend_from_slice(&tier.resolution_ms.to_le_bytes());
            payload.extend_from_slice(&tier.rolled_up_to_ms.to_le_bytes());
            payload.extend_from_slice(&tier.retained_from_ms.to_le_bytes());
        }
        payload.extend_from_slice(&(self.segments.len() as u32).to_le_bytes());
        for s in &self.segments {
            payload.extend_from_slice(&s.seq.to_le_bytes());
            payload.extend_from_slice(&s.partition_start_ms.to_le_bytes());
            payload.extend_from_slice(&s.min_time_ms.to_le_bytes());
            payload.extend_from_slice(&s.max_time_ms.to_le_bytes());
            payload.extend_from_slice(&s.sample_count.to_le_bytes());
            payload.extend_from_slice(&s.series_count.to_le_bytes());
            let pin = s.pin.unwrap_or(SegmentPin {
                file_len: 0,
                footer_crc: 0,
                file_crc: 0,
            });
            payload.extend_from_slice(&pin.file_len.to_le_bytes());
            payload.extend_from_slice(&pin.footer_crc.to_le_bytes());
            payload.extend_from_slice(&pin.file_crc.to_le_bytes());
            payload.extend_from_slice(&s.resolution_ms.to_le_bytes());
            payload.extend_from_slice(&s.block_duration_ms.to_le_bytes());
        }
        envelope::seal(MAGIC, VERSION, &payload)
    }

    pub fn decode(bytes: &[u8], path: &Path) -> Result<Manifest> {
        let corrupt = |offset: u64, kind: Corruption| CorruptionError::in_file(path, offset, kind);
        let (version, payload) = envelope::open(bytes, path, MAGIC, "manifest", 1..=VERSION)?;
        let entry_len = match version {
            1 => ENTRY_LEN_V1,
            2 => ENTRY_LEN_V2,
            _ => ENTRY_LEN_V3,
        };
        let mut p = Cursor::new(payload, HEADER_LEN as u64, "manifest payload");
        let at = |e: Corruption| corrupt(HEADER_LEN as u64, e);
        let next_segment_seq = p.u64().map_err(at)?;
        let persisted_below_ms = p.i64().map_err(at)?;
        let wal_replay_from = p.u64().map_err(at)?;
        let mut raw_retained_from_ms = i64::MIN;
        let mut tiers: Vec<TierMeta> = Vec::new();
        if version >= 3 {
            let tier_count = p.u32().map_err(at)? as usize;
            if tier_count == 0 || tier_count.saturating_mul(TIER_LEN) > p.remaining() {
                return Err(corrupt(
                    HEADER_LEN as u64,
                    Corruption::BadLayout(format!(
                        "{tier_count} tiers do not fit the {} payload bytes left (the raw tier is always listed)",
                        p.remaining()
                    )),
                ));
            }
            for index in 0..tier_count {
                let offset = p.file_offset();
                let tier = TierMeta {
                    resolution_ms: p.i64().map_err(at)?,
                    rolled_up_to_ms: p.i64().map_err(at)?,
                    retained_from_ms: p.i64().map_err(at)?,
                };
                let problem = match (index, tiers.last()) {
                    (0, _) if tier.resolution_ms != 0 => Some(format!(
                        "the first tier must be the raw tier (resolution 0), has resolution {}",
                        tier.resolution_ms
                    )),
                    (0, _) => None,
                    (_, Some(prev)) if tier.resolution_ms <= prev.resolution_ms => Some(format!(
                        "tier resolutions are not increasing ({} after {})",
                        tier.resolution_ms, prev.resolution_ms
                    )),
                    _ if tier.resolution_ms <= 0 => Some(format!(
                        "rollup tier resolution {} is not positive",
                        tier.resolution_ms
                    )),
                    _ => None,
                };
                if let Some(problem) = problem {
                    return Err(corrupt(
                        offset,
                        Corruption::BadLayout(format!("tier entry {index}: {problem}")),
                    ));
                }
                if index == 0 {
                    raw_retained_from_ms = tier.retained_from_ms;
                } else {
                    tiers.push(tier);
                }
            }
        }
        let count = p.u32().map_err(at)? as usize;
        if count.saturating_mul(entry_len) != p.remaining() {
            return Err(corrupt(
                HEADER_LEN as u64,
                Corruption::BadLayout(format!(
                    "{count} segment entries do not fill the {} payload bytes left",
                    p.remaining()
                )),
            ));
        }
        let mut segments: Vec<SegmentMeta> = Vec::with_capacity(count);
        for index in 0..count {
            let offset = p.file_offset();
            let mut meta = SegmentMeta {
                seq: p.u64().map_err(at)?,
                partition_start_ms: p.i64().map_err(at)?,
                min_time_ms: p.i64().map_err(at)?,
                max_time_ms: p.i64().map_err(at)?,
                sample_count: p.u64().map_err(at)?,
                series_count: p.u32().map_err(at)?,
                pin: None,
                resolution_ms: 0,
                block_duration_ms: 0,
            };
            if version >= 2 {
                meta.pin = Some(SegmentPin {
                    file_len: p.u64().map_err(at)?,
                    footer_crc: p.u32().map_err(at)?,
                    file_crc: p.u32().map_err(at)?,
                });
            }
            if version >= 3 {
                meta.resolution_ms = p.i64().map_err(at)?;
                meta.block_duration_ms = p.i64().map_err(at)?;
            }
            let known_resolution = meta.resolution_ms == 0
                || tiers.iter().any(|t| t.resolution_ms == meta.resolution_ms);
            let out_of_order = segments.last().is_some_and(|prev| prev.seq >= meta.seq);
            let problem = if out_of_order {
                Some("segment entries are not in increasing seq order".to_string())
            } else if meta.seq >= next_segment_seq {
                Some(format!(
                    "segment seq {} is not below next_segment_seq {next_segment_seq}",
                    meta.seq
                ))
            } else if meta.min_time_ms > meta.max_time_ms {
                Some(format!(
                    "segment seq {} has min_time_ms {} after max_time_ms {}",
                    meta.seq, meta.min_time_ms, meta.max_time_ms
                ))
            } else if !known_resolution {
                Some(format!(
                    "segment seq {} has resolution {} ms, which is no tier's",
                    meta.seq, meta.resolution_ms
                ))
            } else if meta.block_duration_ms < 0 {
                Some(format!(
                    "segment seq {} has a negative block duration {}",
                    meta.seq, meta.block_duration_ms
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(corrupt(
                    offset,
                    Corruption::BadLayout(format!("segment entry {index}: {problem}")),
                ));
            }
            segments.push(meta);
        }
        Ok(Manifest {
            next_segment_seq,
            persisted_below_ms,
            wal_replay_from,
            raw_retained_from_ms,
            tiers,
            segments,
        })
    }

    /// Reads `dir/MANIFEST`; `None` if there is none (a directory strata
    /// never initialised, or damage: the caller decides which).
    pub fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST_FILE);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(Self::decode(&bytes, &path)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    /// Writes `dir/MANIFEST` atomically and durably.
    pub fn store(&self, dir: &Path) -> Result<()> {
        let faults = envelope::ReplaceFaults {
            write: "manifest.write",
            fsync: "manifest.fsync",
            rename: "manifest.rename",
        };
        envelope::replace_file(dir, MANIFEST_FILE, &self.encode(), &faults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flip_detected() {
        let manifest = Manifest {
            next_segment_seq: 9,
            persisted_below_ms: -5,
            wal_replay_from: 3,
            raw_retained_from_ms: -7,
            tiers: vec![TierMeta {
                resolution_ms: 60_000,
                rolled_up_to_ms: 120_000,
                retained_from_ms: i64::MIN,
            }],
            segments: vec![SegmentMeta {
                seq: 8,
                partition_start_ms: 0,
                min_time_ms: 1,
                max_time_ms: 2,
                sample_count: 3,
                series_count: 4,
                pin: Some(SegmentPin {
                    file_len: 5,
                    footer_crc: 6,
                    file_crc: 7,
                }),
                resolution_ms: 60_000,
                block_duration_ms: 7_200_000,
            }],
        };
        let bytes = manifest.encode();
        let path = Path::new("MANIFEST");
        assert_eq!(Manifest::decode(&bytes, path).unwrap(), manifest);
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x20;
            assert!(Manifest::decode(&damaged, path).is_err(), "flip at {i}");
            assert!(
                Manifest::decode(&bytes[..i], path).is_err(),
                "truncated to {i}"
            );
        }
    }
}
