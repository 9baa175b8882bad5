//! Reading WAL files back: frames → records, with damage detection.

use std::fs;
use std::path::{Path, PathBuf};

use super::record::{self, Record};
use super::{FRAME_HEADER_LEN, MAX_PAYLOAD_LEN, WAL_HEADER_LEN, WAL_MAGIC, WAL_VERSION};
use crate::error::{Error, Result};

/// A damaged or torn region at the end of a WAL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalDamage {
    pub path: PathBuf,
    /// Offset of the first byte that could not be used.
    pub offset: u64,
    /// Bytes from `offset` that could not be used.
    pub dropped_bytes: u64,
    /// True when the damage runs to the end of the file and nothing valid
    /// follows it: the normal result of a crash mid-write, truncated.
    pub torn_tail: bool,
    pub reason: String,
}

impl std::fmt::Display for WalDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: dropped {} bytes from offset {}: {}",
            self.path.display(),
            self.dropped_bytes,
            self.offset,
            self.reason
        )
    }
}

/// The outcome of replaying one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReplay {
    pub records: u64,
    /// Length of the intact prefix; the file is truncated here on recovery.
    pub valid_len: u64,
    pub damage: Option<WalDamage>,
}

/// WAL files in `dir`, sorted by id. Other files are ignored.
pub fn list_wal_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        let name = entry.file_name();
        let id = name
            .to_str()
            .and_then(|n| n.strip_suffix(".wal"))
            .filter(|stem| stem.len() == 20)
            .and_then(|stem| stem.parse::<u64>().ok());
        if let Some(id) = id {
            files.push((id, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// Reads every intact record of a WAL file, in order, into `apply`.
/// A missing file is an I/O error; damage is reported, not an error.
pub fn replay_file(path: &Path, mut apply: impl FnMut(Record)) -> Result<FileReplay> {
    let bytes = fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let damage = |offset: usize, reason: String| WalDamage {
        path: path.to_path_buf(),
        offset: offset as u64,
        dropped_bytes: (bytes.len() - offset) as u64,
        torn_tail: true,
        reason,
    };
    if let Err(reason) = check_header(&bytes) {
        return Ok(FileReplay {
            records: 0,
            valid_len: 0,
            damage: Some(damage(0, reason)),
        });
    }
    let mut pos = WAL_HEADER_LEN;
    let mut records = 0;
    while pos < bytes.len() {
        match next_frame(&bytes, pos) {
            Ok((payload, next)) => match record::decode(payload) {
                Ok(record) => {
                    apply(record);
                    records += 1;
                    pos = next;
                }
                Err(e) => {
                    return Ok(FileReplay {
                        records,
                        valid_len: pos as u64,
                        damage: Some(damage(pos, format!("record does not decode: {e}"))),
                    })
                }
            },
            Err(reason) => {
                return Ok(FileReplay {
                    records,
                    valid_len: pos as u64,
                    damage: Some(damage(pos, reason)),
                })
            }
        }
    }
    Ok(FileReplay {
        records,
        valid_len: pos as u64,
        damage: None,
    })
}

fn check_header(bytes: &[u8]) -> Result<(), String> {
    let Some(header) = bytes.get(..WAL_HEADER_LEN) else {
        return Err(format!(
            "file is {} bytes, shorter than the {WAL_HEADER_LEN}-byte header (torn create)",
            bytes.len()
        ));
    };
    if &header[0..8] != WAL_MAGIC {
        return Err("bad magic: not a strata WAL file".into());
    }
    let stored = u32::from_le_bytes([header[20], header[21], header[22], header[23]]);
    let computed = crc32fast::hash(&header[0..20]);
    if stored != computed {
        return Err(format!(
            "header checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let version = u16::from_le_bytes([header[8], header[9]]);
    if version != WAL_VERSION {
        return Err(format!(
            "WAL format version {version} is not supported (this build reads {WAL_VERSION})"
        ));
    }
    Ok(())
}

/// The payload of the frame at `pos` and the offset after it.
fn next_frame(bytes: &[u8], pos: usize) -> Result<(&[u8], usize), String> {
    let Some(header) = bytes.get(pos..pos + FRAME_HEADER_LEN) else {
        return Err(format!(
            "torn frame header: {} of {FRAME_HEADER_LEN} bytes",
            bytes.len() - pos
        ));
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let stored = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_PAYLOAD_LEN {
        return Err(format!(
            "frame length {len} exceeds the {MAX_PAYLOAD_LEN}-byte limit"
        ));
    }
    let start = pos + FRAME_HEADER_LEN;
    let Some(payload) = bytes.get(start..start + len) else {
        return Err(format!(
            "torn frame: payload of {len} bytes, {} present",
            bytes.len() - start
        ));
    };
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(format!(
            "frame checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    Ok((payload, start + len))
}
