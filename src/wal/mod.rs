//! Write-ahead log: every acknowledged write is a framed, checksummed record
//! in a WAL file before it reaches the head.
//!
//! Files are `wal/<id>.wal` (20-digit zero-padded id, increasing). Each
//! starts with a 24-byte header (magic `STRATWAL`, version, file id, crc32)
//! and holds frames: `u32 payload_len`, `u32 crc32(payload)`, payload (see
//! [`record`]). docs/FORMAT.md has the byte layout.
//!
//! Invariants:
//! - frames are only appended; a file is never rewritten, only truncated at
//!   a damaged tail on recovery or deleted once all its samples are in
//!   segments;
//! - each file is self-contained: the series records a file's samples name
//!   are in the same file (writers re-emit a series definition lazily in
//!   every new file);
//! - replay stops at the first frame that is short, oversized, fails its
//!   crc32 or does not decode; that frame and everything after it in that
//!   file are reported as dropped.

pub mod record;
mod replay;
mod writer;

pub use replay::{list_wal_files, replay_file, FileReplay, WalDamage};
pub use writer::{ClosedFile, SyncMode, WalWriter};

pub const WAL_MAGIC: &[u8; 8] = b"STRATWAL";
pub const WAL_VERSION: u16 = 1;
pub const WAL_HEADER_LEN: usize = 24;
pub const FRAME_HEADER_LEN: usize = 8;
/// Largest payload a frame may carry; larger lengths are damage.
pub const MAX_PAYLOAD_LEN: usize = 64 << 20;

/// `wal/<id>.wal` name of a WAL file.
pub fn file_name(file_id: u64) -> String {
    format!("{file_id:020}.wal")
}

/// The 24-byte header of WAL file `file_id`.
pub fn encode_header(file_id: u64) -> [u8; WAL_HEADER_LEN] {
    let mut header = [0u8; WAL_HEADER_LEN];
    header[0..8].copy_from_slice(WAL_MAGIC);
    header[8..10].copy_from_slice(&WAL_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&file_id.to_le_bytes());
    let crc = crc32fast::hash(&header[0..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Appends a frame holding `payload` to `out`.
pub fn frame(payload: &[u8], out: &mut Vec<u8>) {
    let start = begin_frame(out);
    out.extend_from_slice(payload);
    end_frame(out, start);
}

/// Starts a frame in `out` whose payload is written next, in place;
/// returns the frame's start for [`end_frame`].
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    start
}

/// Fills in the length and crc32 of the frame started at `start`, whose
/// payload is everything after its header.
pub fn end_frame(out: &mut [u8], start: usize) {
    let (header, payload) = out[start..].split_at_mut(FRAME_HEADER_LEN);
    header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..8].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
}
