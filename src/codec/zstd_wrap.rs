//! Value column, encoding id 4: another value encoding's stream, compressed
//! with zstd. Chosen for sealed chunks only when it is smaller than the best
//! uncompressed candidate.
//!
//! Layout: `u8` inner value encoding id (1, 2 or 3; never 4), then exactly
//! one zstd frame holding the inner stream. A decoder refuses to inflate
//! beyond the longest stream the inner encoding can need for the chunk's
//! sample count ([`max_inner_len`]), so a hostile frame cannot make it
//! allocate more than that.

use std::cell::RefCell;

use super::{CodecError, Column, ValueEncoding};

thread_local! {
    /// One compression context per thread: creating one per chunk costs
    /// more than compressing a small chunk (zstd probes the CPU each time).
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    /// Likewise one decompression context per thread: creating one per
    /// frame dominated reading small zstd chunks (rollup columns).
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// zstd level for sealed chunks: flush-time cost stays small.
const LEVEL: i32 = 9;

/// Magic number that opens a zstd frame. Skippable frames (magic
/// 0x184D2A5?) carry no data and are refused.
const FRAME_MAGIC: u32 = 0xFD2F_B528;

/// The longest stream `inner` can need for `count` values: constant 8
/// bytes; Gorilla XOR 64 bits, then at most 2 + 11 + 64 = 77 bits a value;
/// decimal 3 header bytes, at most 4 varints of 10 bytes, then at most 64
/// bits a value. `None` for zstd, which never nests.
pub fn max_inner_len(inner: ValueEncoding, count: usize) -> Option<usize> {
    match inner {
        ValueEncoding::Constant => Some(8),
        ValueEncoding::GorillaXor => Some((64 + count.saturating_sub(1) * 77).div_ceil(8)),
        ValueEncoding::Decimal => Some(3 + 4 * 10 + count * 8),
        ValueEncoding::Zstd => None,
    }
}

/// Inflates `frame`, which must be exactly one zstd frame (no skippable
/// frame, nothing before or after it), refusing output longer than
/// `limit` bytes. The output buffer is allocated once: at the frame's
/// declared content size when it has one (refused when over `limit`,
/// before anything is allocated), otherwise at `limit`.
pub fn inflate_frame(frame: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let magic = frame
        .first_chunk::<4>()
        .map(|m| u32::from_le_bytes(*m))
        .ok_or_else(|| format!("{} bytes cannot hold a zstd frame", frame.len()))?;
    if magic != FRAME_MAGIC {
        return Err(format!("not a zstd frame (magic {magic:#010x})"));
    }
    match zstd::zstd_safe::find_frame_compressed_size(frame) {
        Ok(len) if len == frame.len() => {}
        Ok(len) => {
            return Err(format!(
                "{} bytes follow the zstd frame; exactly one frame is allowed",
                frame.len() - len
            ))
        }
        Err(code) => {
            return Err(format!(
                "zstd frame is damaged or truncated: {}",
                zstd::zstd_safe::get_error_name(code)
            ))
        }
    }
    let capacity = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(declared)) if declared > limit as u64 => {
            return Err(format!(
                "zstd frame declares {declared} bytes, over the {limit}-byte limit"
            ))
        }
        Ok(Some(declared)) => declared as usize,
        Ok(None) => limit,
        Err(_) => return Err("zstd frame header is damaged".into()),
    };
    let mut out = Vec::with_capacity(capacity);
    DECOMPRESSOR
        .with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new()?);
            }
            match slot.as_mut() {
                Some(decompressor) => decompressor.decompress_to_buffer(frame, &mut out),
                None => Err(std::io::Error::other("no zstd decompression context")),
            }
        })
        .map_err(|e| format!("zstd frame does not inflate within {capacity} bytes: {e}"))?;
    Ok(out)
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
    let limit = max_inner_len(inner, count)
        .ok_or_else(|| bad("zstd stream wraps another zstd stream".into()))?;
    let stream = inflate_frame(frame, limit).map_err(bad)?;
    Ok((inner, stream))
}
