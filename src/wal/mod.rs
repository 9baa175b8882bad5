//! Write-ahead log: every acknowledged write is a framed, checksummed record
//! in a WAL file before it reaches the head.
//!
//! Files are `wal/<id>.wal` (20-digit zero-padded id, increasing). A version
//! 2 file starts with a 36-byte header (magic `STRATWAL`, version, header
//! length, file id, writer session id, the frame count of the previous file,
//! crc32) and holds frames: frame magic `F5 57 41 4C`, `u32 payload_len`,
//! `u32 seq`, `u32 crc32(len, seq, payload)`, payload (see [`record`]).
//! Version 1 files (24-byte header, frames `u32 len`, `u32 crc32(payload)`)
//! are still read. docs/FORMAT.md has the byte layout.
//!
//! Invariants:
//! - frames are only appended; a file is never rewritten, only truncated at
//!   a torn tail on recovery or deleted once all its samples are in
//!   segments (a damaged file is first copied to `quarantine/`);
//! - the frames of a version 2 file are numbered 1, 2, 3, ... in file
//!   order; the header is fsynced before the first frame is written;
//! - a file's series records come before its samples that name them
//!   (writers re-emit a series definition lazily in every new file); series
//!   ids are unique within one writer session, which every header names, so
//!   a lost definition can be found in another file of the same session;
//! - replay accepts a frame only with the frame magic, a length within the
//!   file and `MAX_PAYLOAD_LEN`, a valid crc32, the next plausible sequence
//!   number and a payload that decodes: damaged bytes are never data.

pub mod record;
mod replay;
mod writer;

pub use replay::{list_wal_files, read_header, replay_file, HeaderState, WalDamage};
#[cfg(feature = "internals")]
pub use replay::{FileReplay, WalHeader};
#[cfg(feature = "internals")]
pub use writer::FrameStart;
pub use writer::{ClosedFile, Frames, Payload, SyncMode, WalWriter};

pub const WAL_MAGIC: &[u8; 8] = b"STRATWAL";
/// The version this build writes.
pub const WAL_VERSION: u16 = 2;
/// The first version, still read.
pub const WAL_VERSION_1: u16 = 1;
/// Header length of version 2 files.
pub const WAL_HEADER_LEN: usize = 36;
/// Header length of version 1 files.
pub const WAL_HEADER_LEN_V1: usize = 24;
/// First bytes of every version 2 frame. 0xF5 never occurs in UTF-8, so no
/// label string inside a record can contain a frame magic.
pub const FRAME_MAGIC: [u8; 4] = [0xF5, b'W', b'A', b'L'];
/// Version 2 frame header: magic, payload length, sequence number, crc32.
pub const FRAME_HEADER_LEN: usize = 16;
/// Version 1 frame header: payload length, crc32.
pub const FRAME_HEADER_LEN_V1: usize = 8;
/// Largest payload a frame may carry; larger lengths are damage.
pub const MAX_PAYLOAD_LEN: usize = 64 << 20;
/// Largest file id a writer uses: `u64::MAX` means "no file" in the head.
pub const MAX_FILE_ID: u64 = u64::MAX - 1;

/// `wal/<id>.wal` name of a WAL file.
pub fn file_name(file_id: u64) -> String {
    format!("{file_id:020}.wal")
}

/// The version 2 header of WAL file `file_id`, written by the writer
/// session `session_id` (the id of the first file that session created);
/// `prev_last_seq` is the sequence number of the last frame of file
/// `file_id - 1` when this file was created (0: none, or not known).
pub fn encode_header(file_id: u64, session_id: u64, prev_last_seq: u32) -> [u8; WAL_HEADER_LEN] {
    let mut header = [0u8; WAL_HEADER_LEN];
    header[0..8].copy_from_slice(WAL_MAGIC);
    header[8..10].copy_from_slice(&WAL_VERSION.to_le_bytes());
    header[10..12].copy_from_slice(&(WAL_HEADER_LEN as u16).to_le_bytes());
    header[12..20].copy_from_slice(&file_id.to_le_bytes());
    header[20..28].copy_from_slice(&session_id.to_le_bytes());
    header[28..32].copy_from_slice(&prev_last_seq.to_le_bytes());
    let crc = crc32fast::hash(&header[0..32]);
    header[32..36].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Appends a version 2 frame with sequence number `seq` holding `payload`
/// to `out`. The payload is at most [`MAX_PAYLOAD_LEN`] bytes (callers
/// bound their records so).
#[cfg(any(test, feature = "internals"))]
pub fn frame(payload: &[u8], seq: u32, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    out.extend_from_slice(payload);
    seal_frame(out, start, seq);
}

/// Fills in the header of the frame starting at `start`, whose payload is
/// everything after its 16 header bytes.
fn seal_frame(out: &mut [u8], start: usize, seq: u32) {
    let (header, payload) = out[start..].split_at_mut(FRAME_HEADER_LEN);
    debug_assert!(payload.len() <= MAX_PAYLOAD_LEN);
    header[0..4].copy_from_slice(&FRAME_MAGIC);
    header[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[8..12].copy_from_slice(&seq.to_le_bytes());
    let crc = frame_crc(&header[4..12], payload);
    header[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// crc32 of a version 2 frame: its length and sequence fields, then its
/// payload.
fn frame_crc(len_and_seq: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len_and_seq);
    hasher.update(payload);
    hasher.finalize()
}
