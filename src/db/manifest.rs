//! The manifest: which segment files make up the database and where WAL
//! replay starts. Rewritten whole and atomically (temporary file, fsync,
//! rename, directory fsync) at the end of every flush: that rename is the
//! commit point of a flush.
//!
//! Layout (little-endian): magic `STRATMAN`, `u16` version, `u16` reserved,
//! `u32` payload length, payload, `u32` crc32 of all preceding bytes.
//! Payload: `u64 next_segment_seq`, `i64 persisted_below_ms`,
//! `u64 wal_replay_from`, `u32 segment_count`, then per segment
//! `u64 seq`, `i64 partition_start_ms`, `i64 min_time_ms`,
//! `i64 max_time_ms`, `u64 sample_count`, `u32 series_count` (44 bytes).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::error::{Corruption, CorruptionError, Error, Result};
use crate::segment::format::Cursor;
use crate::segment::sync_parent_dir;

pub const MANIFEST_FILE: &str = "MANIFEST";
const MAGIC: &[u8; 8] = b"STRATMAN";
const VERSION: u16 = 1;
const ENTRY_LEN: usize = 44;

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
}

impl SegmentMeta {
    pub fn file_name(seq: u64) -> String {
        format!("{seq:020}.seg")
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
    pub segments: Vec<SegmentMeta>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            next_segment_seq: 1,
            persisted_below_ms: i64::MIN,
            wal_replay_from: 0,
            segments: Vec::new(),
        }
    }
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(28 + ENTRY_LEN * self.segments.len());
        payload.extend_from_slice(&self.next_segment_seq.to_le_bytes());
        payload.extend_from_slice(&self.persisted_below_ms.to_le_bytes());
        payload.extend_from_slice(&self.wal_replay_from.to_le_bytes());
        payload.extend_from_slice(&(self.segments.len() as u32).to_le_bytes());
        for s in &self.segments {
            payload.extend_from_slice(&s.seq.to_le_bytes());
            payload.extend_from_slice(&s.partition_start_ms.to_le_bytes());
            payload.extend_from_slice(&s.min_time_ms.to_le_bytes());
            payload.extend_from_slice(&s.max_time_ms.to_le_bytes());
            payload.extend_from_slice(&s.sample_count.to_le_bytes());
            payload.extend_from_slice(&s.series_count.to_le_bytes());
        }
        let mut out = Vec::with_capacity(payload.len() + 20);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8], path: &Path) -> Result<Manifest> {
        let corrupt = |offset: u64, kind: Corruption| -> Error {
            CorruptionError {
                path: path.to_path_buf(),
                offset,
                series: None,
                kind,
            }
            .into()
        };
        let mut c = Cursor::new(bytes, 0, "manifest");
        let magic = c.bytes(8).map_err(|e| corrupt(0, e))?;
        if magic != MAGIC {
            return Err(corrupt(
                0,
                Corruption::BadMagic {
                    what: "manifest",
                    found: magic.to_vec(),
                    expected: MAGIC,
                },
            ));
        }
        let version = c.u16().map_err(|e| corrupt(8, e))?;
        let _reserved = c.u16().map_err(|e| corrupt(10, e))?;
        let len = c.u32().map_err(|e| corrupt(12, e))? as usize;
        let payload = c.bytes(len).map_err(|e| corrupt(16, e))?;
        let crc_offset = c.file_offset();
        let stored = c.u32().map_err(|e| corrupt(crc_offset, e))?;
        let computed = crc32fast::hash(&bytes[..16 + len]);
        if stored != computed {
            return Err(corrupt(
                crc_offset,
                Corruption::ChecksumMismatch {
                    region: "manifest",
                    stored,
                    computed,
                },
            ));
        }
        if version != VERSION {
            return Err(corrupt(
                8,
                Corruption::UnsupportedVersion {
                    found: version,
                    supported: VERSION,
                },
            ));
        }
        if c.remaining() != 0 {
            return Err(corrupt(
                c.file_offset(),
                Corruption::BadLayout("bytes after the manifest checksum".into()),
            ));
        }
        let mut p = Cursor::new(payload, 16, "manifest payload");
        let at = |e: Corruption| corrupt(16, e);
        let next_segment_seq = p.u64().map_err(at)?;
        let persisted_below_ms = p.i64().map_err(at)?;
        let wal_replay_from = p.u64().map_err(at)?;
        let count = p.u32().map_err(at)? as usize;
        if count.saturating_mul(ENTRY_LEN) != p.remaining() {
            return Err(corrupt(
                16,
                Corruption::BadLayout(format!(
                    "{count} segment entries do not fill the {} payload bytes left",
                    p.remaining()
                )),
            ));
        }
        let mut segments = Vec::with_capacity(count);
        for _ in 0..count {
            segments.push(SegmentMeta {
                seq: p.u64().map_err(at)?,
                partition_start_ms: p.i64().map_err(at)?,
                min_time_ms: p.i64().map_err(at)?,
                max_time_ms: p.i64().map_err(at)?,
                sample_count: p.u64().map_err(at)?,
                series_count: p.u32().map_err(at)?,
            });
        }
        Ok(Manifest {
            next_segment_seq,
            persisted_below_ms,
            wal_replay_from,
            segments,
        })
    }

    /// Reads `dir/MANIFEST`; a missing file is an empty database.
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
        let path = dir.join(MANIFEST_FILE);
        let temp: PathBuf = dir.join(format!("{MANIFEST_FILE}.tmp"));
        let mut file = File::create(&temp).map_err(|e| Error::io("create", &temp, e))?;
        crate::fault::write_all("manifest.write", &mut file, &self.encode())
            .map_err(|e| Error::io("write", &temp, e))?;
        crate::fault::check("manifest.fsync")
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("fsync", &temp, e))?;
        drop(file);
        crate::fault::check("manifest.rename")
            .and_then(|()| fs::rename(&temp, &path))
            .map_err(|e| Error::io("rename into place", &path, e))?;
        sync_parent_dir(&path)
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
            segments: vec![SegmentMeta {
                seq: 8,
                partition_start_ms: 0,
                min_time_ms: 1,
                max_time_ms: 2,
                sample_count: 3,
                series_count: 4,
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
