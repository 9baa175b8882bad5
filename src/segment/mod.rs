//! Immutable, checksummed, columnar segment files.
//!
//! A segment holds the samples of a set of series over a time range:
//! chunk records (compressed by the internal `codec` module), a string table, a series table
//! (series key → chunk references), a label index (postings) and a footer
//! that locates the tables. [`SegmentWriter`] writes one; [`Segment`] opens
//! one through mmap and answers matcher and time-range reads. The byte
//! layout is in docs/FORMAT.md (and in the internal `format` module).
//!
//! mmap is for the files strata published itself (sealed, fsynced, never
//! written again): a file truncated by another process while mapped faults
//! the reader with SIGBUS, which no check can prevent. Single untrusted
//! files are read with [`Segment::open_in_memory`] or
//! [`Segment::from_bytes`]. Opening never allocates more than a fixed
//! multiple of the file's size: compressed tables may claim at most
//! `format::MAX_REGION_EXPANSION` times their stored size.

#[doc(hidden)]
pub mod format;
mod reader;
mod source;
mod writer;

pub use reader::{SampleIter, Segment, VerifyReport};
#[doc(hidden)]
pub use writer::sync_parent_dir;
pub use writer::{SegmentSummary, SegmentWriter};

use crate::codec::{TimestampEncoding, ValueEncoding};
use crate::error::Corruption;
use format::Cursor;

/// Where one chunk lies and what it holds; an entry of the series table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    /// File offset of the chunk bytes (its crc32 follows them).
    pub offset: u64,
    /// Length of the chunk bytes, excluding the crc32.
    pub len: u32,
    pub sample_count: u16,
    pub timestamp_encoding: TimestampEncoding,
    pub value_encoding: ValueEncoding,
}

impl ChunkRef {
    /// Appends the 32-byte on-disk form.
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.min_time_ms.to_le_bytes());
        out.extend_from_slice(&self.max_time_ms.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.sample_count.to_le_bytes());
        out.push(self.timestamp_encoding.id());
        out.push(self.value_encoding.id());
    }

    fn decode(cursor: &mut Cursor<'_>) -> Result<ChunkRef, Corruption> {
        Ok(ChunkRef {
            min_time_ms: cursor.i64()?,
            max_time_ms: cursor.i64()?,
            offset: cursor.u64()?,
            len: cursor.u32()?,
            sample_count: cursor.u16()?,
            timestamp_encoding: TimestampEncoding::from_id(cursor.u8()?)?,
            value_encoding: ValueEncoding::from_id(cursor.u8()?)?,
        })
    }
}
