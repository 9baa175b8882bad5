//! Value column, encoding id 4: another value encoding's stream, compressed
//! with zstd. Chosen for sealed chunks only when it is smaller than the best
//! uncompressed candidate.
//!
//! Layout: `u8` inner value encoding id (1, 2 or 3; never 4), then one zstd
//! frame holding the inner stream. A decoder refuses to inflate beyond
//! [`max_inner_len`] bytes, so a hostile frame cannot allocate without
//! bound.

use std::cell::RefCell;

use super::{CodecError, Column, ValueEncoding};

thread_local! {
    /// One compression context per thread: creating one per chunk costs
    /// more than compressing a small chunk (zstd probes the CPU each time).
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// zstd level for sealed chunks: flush-time cost stays small.
const LEVEL: i32 = 9;

/// The largest inner stream `count` values can need: a Gorilla value with
/// a new window costs at most 2 + 11 + 64 = 77 bits.
pub fn max_inner_len(count: usize) -> usize {
    count * 10 + 16
}

/// The compressed form of `inner` (encoded as `inner_encoding`), if zstd
/// makes it smaller.
pub fn compress(inner_encoding: ValueEncoding, inner: &[u8]) -> Option<Vec<u8>> {
    let frame = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = zstd::bulk::Compressor::new(LEVEL).ok();
        }
        slot.as_mut()?.compress(inner).ok()
    })?;
    (frame.len() + 1 < inner.len()).then(|| {
        let mut out = Vec::with_capacity(frame.len() + 1);
        out.push(inner_encoding.id());
        out.extend_from_slice(&frame);
        out
    })
}

/// The inner encoding and the decompressed inner stream.
pub fn decompress(bytes: &[u8], count: usize) -> Result<(ValueEncoding, Vec<u8>), CodecError> {
    let bad = |reason: String| CodecError::BadEncoding {
        column: Column::Values,
        reason,
    };
    let Some((&inner_id, frame)) = bytes.split_first() else {
        return Err(bad("empty zstd stream".into()));
    };
    let inner = ValueEncoding::from_id(inner_id)?;
    if inner == ValueEncoding::Zstd {
        return Err(bad("zstd stream wraps another zstd stream".into()));
    }
    let limit = max_inner_len(count);
    let stream = zstd::bulk::decompress(frame, limit).map_err(|e| {
        bad(format!(
            "zstd frame does not inflate within {limit} bytes: {e}"
        ))
    })?;
    Ok((inner, stream))
}
