//! The envelope of the small files a data directory holds next to its
//! segments (`MANIFEST`, `METADATA`): a versioned, checksummed frame around
//! a payload, and the durable whole-file replacement they are written with.
//!
//! Layout (little-endian): `[u8; 8]` magic, `u16` version, `u16` reserved
//! (0), `u32` payload length, the payload, `u32` crc32 of every byte before
//! it. Nothing may follow the checksum.
//!
//! Invariants:
//! - [`open`] returns a payload only when the magic, the version, the
//!   length and the checksum all agree; any other input is a
//!   [`CorruptionError`] naming the file and the offset of the first field
//!   at fault;
//! - [`replace_file`] leaves either the old file or the new one under the
//!   final name, never a mix: the bytes go to `<name>.tmp`, are fsynced,
//!   renamed over the final name, and the directory is fsynced.

use std::fs::{self, File};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::error::{Corruption, CorruptionError, Error, Result};
use crate::segment::format::Cursor;
use crate::segment::sync_parent_dir;

/// Bytes before the payload.
pub const HEADER_LEN: usize = 16;

/// `payload` framed as an envelope of `version` under `magic`.
pub fn seal(magic: &[u8; 8], version: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + HEADER_LEN + 4);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The version and payload of the envelope `bytes` read from `path`, a
/// strata `what` file (for messages) whose readable versions are
/// `versions`.
pub fn open<'a>(
    bytes: &'a [u8],
    path: &Path,
    magic: &'static [u8; 8],
    what: &'static str,
    versions: RangeInclusive<u16>,
) -> Result<(u16, &'a [u8])> {
    let corrupt = |offset: u64, kind: Corruption| CorruptionError::in_file(path, offset, kind);
    let mut c = Cursor::new(bytes, 0, what);
    let found = c.bytes(8).map_err(|e| corrupt(0, e))?;
    if found != magic {
        return Err(corrupt(
            0,
            Corruption::BadMagic {
                what,
                found: found.to_vec(),
                expected: magic,
            },
        ));
    }
    let version = c.u16().map_err(|e| corrupt(8, e))?;
    let _reserved = c.u16().map_err(|e| corrupt(10, e))?;
    let len = c.u32().map_err(|e| corrupt(12, e))? as usize;
    let payload = c.bytes(len).map_err(|e| corrupt(16, e))?;
    let crc_offset = c.file_offset();
    let stored = c.u32().map_err(|e| corrupt(crc_offset, e))?;
    let computed = crc32fast::hash(&bytes[..HEADER_LEN + len]);
    if stored != computed {
        return Err(corrupt(
            crc_offset,
            Corruption::ChecksumMismatch {
                region: what,
                stored,
                computed,
            },
        ));
    }
    if !versions.contains(&version) {
        return Err(corrupt(
            8,
            Corruption::UnsupportedVersion {
                found: version,
                supported: *versions.end(),
            },
        ));
    }
    if c.remaining() != 0 {
        return Err(corrupt(
            c.file_offset(),
            Corruption::BadLayout(format!("bytes after the {what} checksum")),
        ));
    }
    Ok((version, payload))
}

/// The fault points of one [`replace_file`] caller (see `crate::fault`).
pub struct ReplaceFaults {
    pub write: &'static str,
    pub fsync: &'static str,
    pub rename: &'static str,
}

/// The temporary file [`replace_file`] writes `dir/name` through; a
/// leftover is an interrupted replacement, safe to delete.
pub fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.tmp"))
}

/// Replaces `dir/name` with `bytes`, atomically and durably (see the module
/// documentation). On error the old file is intact and the temporary file
/// is removed (best effort).
pub fn replace_file(dir: &Path, name: &str, bytes: &[u8], faults: &ReplaceFaults) -> Result<()> {
    let path = dir.join(name);
    let temp = temp_path(dir, name);
    let written = (|| {
        let mut file = File::create(&temp).map_err(|e| Error::io("create", &temp, e))?;
        crate::fault::write_all(faults.write, &mut file, bytes)
            .map_err(|e| Error::io("write", &temp, e))?;
        crate::fault::check(faults.fsync)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("fsync", &temp, e))?;
        drop(file);
        crate::fault::check(faults.rename)
            .and_then(|()| fs::rename(&temp, &path))
            .map_err(|e| Error::io("rename into place", &path, e))
    })();
    if let Err(error) = written {
        // Never read; best effort (a leftover is removed at open).
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    sync_parent_dir(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: &[u8; 8] = b"STRATTST";

    #[test]
    fn round_trip_and_every_flip_and_cut_detected() {
        let path = Path::new("TEST");
        let sealed = seal(MAGIC, 2, b"payload bytes");
        let (version, payload) = open(&sealed, path, MAGIC, "test file", 1..=2).unwrap();
        assert_eq!((version, payload), (2, &b"payload bytes"[..]));
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut damaged = sealed.clone();
                damaged[i] ^= 1 << bit;
                assert!(
                    open(&damaged, path, MAGIC, "test file", 1..=2).is_err(),
                    "flip of bit {bit} of byte {i} not detected"
                );
            }
        }
        for len in 0..sealed.len() {
            assert!(open(&sealed[..len], path, MAGIC, "test file", 1..=2).is_err());
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(open(&longer, path, MAGIC, "test file", 1..=2).is_err());
        let newer = seal(MAGIC, 3, b"");
        let error = open(&newer, path, MAGIC, "test file", 1..=2).unwrap_err();
        assert!(
            error.to_string().contains("version 3 is not supported"),
            "{error}"
        );
    }
}
