//! Value column, encoding id 1: Gorilla XOR floats.
//!
//! Layout (bit stream, most significant bit first):
//! - the first value's IEEE-754 bits, 64 raw bits;
//! - for every later value, `x = bits(v[i]) ^ bits(v[i-1])`:
//!   - `0`: x is zero (the value repeats);
//!   - `10` + the window's meaningful bits: x fits the current window
//!     (at least as many leading and trailing zeros as the window leaves);
//!   - `11` + 5 bits leading-zero count (capped at 31) + 6 bits meaningful
//!     bit count (64 written as 0) + the meaningful bits: a new window.
//!
//! The window starts as all 64 bits. The encoder reuses the window only when
//! the bits it wastes are fewer than the 13 a new window header costs: that
//! keeps a noisy value from locking in a wide window.
//!
//! Invariant: every f64 bit pattern (NaN payloads, -0.0, infinities,
//! subnormals) round-trips exactly; values are handled as u64 bits only.

use super::bits::BitWriter;
use super::{CodecError, Column, ColumnEncoder};

/// Header cost of a new window beyond the reuse prefix: 5 + 6 bits + 1.
const NEW_WINDOW_EXTRA_BITS: u32 = 12;

/// Streaming XOR encoder; the head appends to it sample by sample.
#[derive(Debug, Default, Clone)]
pub struct XorEncoder {
    writer: BitWriter,
    count: usize,
    previous_bits: u64,
    /// The current window; (0, 0) is all 64 bits.
    leading: u32,
    trailing: u32,
}

impl ColumnEncoder for XorEncoder {
    type Item = f64;

    fn with_writer(writer: BitWriter) -> Self {
        XorEncoder {
            writer,
            ..Self::default()
        }
    }

    #[inline(always)]
    fn push(&mut self, value: f64) {
        let bits = value.to_bits();
        if self.count == 0 {
            self.writer.write_bits(bits, 64);
        } else {
            self.write_xor(bits ^ self.previous_bits);
        }
        self.previous_bits = bits;
        self.count += 1;
    }

    fn len(&self) -> usize {
        self.count
    }

    fn writer(&self) -> &BitWriter {
        &self.writer
    }

    fn into_writer(self) -> BitWriter {
        self.writer
    }
}

impl XorEncoder {
    #[inline(always)]
    fn write_xor(&mut self, xor: u64) {
        if xor == 0 {
            self.writer.write_bit(false);
            return;
        }
        let leading = xor.leading_zeros().min(31);
        let trailing = xor.trailing_zeros();
        let significant = 64 - leading - trailing;
        let window = 64 - self.leading - self.trailing;
        if leading >= self.leading
            && trailing >= self.trailing
            && window - significant <= NEW_WINDOW_EXTRA_BITS
        {
            self.writer.write_bits(0b10, 2);
            self.writer.write_bits(xor >> self.trailing, window);
        } else {
            // prefix `11`, 5 bits leading, 6 bits significant (64 -> 0)
            let header = (0b11 << 11) | (u64::from(leading) << 6) | u64::from(significant & 63);
            self.writer.write_bits(header, 13);
            self.writer.write_bits(xor >> trailing, significant);
            self.leading = leading;
            self.trailing = trailing;
        }
    }
}

/// Bytes a decoding step may read from its starting byte: a 13-bit new
/// window header, then 64 bits from there (at most 11 bytes in all).
const STEP_BYTES: usize = 16;

/// Decodes `count` values from `bytes`, appending them to `out`.
///
/// The stream is read by bit position: each step loads the 64 bits at the
/// position (an unaligned big-endian word and one more byte), so a value
/// costs two loads and no refill bookkeeping. While at least
/// `STEP_BYTES` (16) bytes remain the steps read `bytes` directly; the last
/// few bytes are copied into a zero-padded buffer and decoded by the same
/// steps, so no step reads out of bounds and a truncated stream is caught
/// by the final length check (or by running out of padding).
pub fn decode(bytes: &[u8], count: usize, out: &mut Vec<f64>) -> Result<(), CodecError> {
    if count == 0 {
        return check_consumed(0, bytes);
    }
    super::check_min_bits(bytes, count, Column::Values)?;
    let start = out.len();
    out.resize(start + count, 0.0);
    let decoded = decode_into(bytes, &mut out[start..]);
    if decoded.is_err() {
        out.truncate(start);
    }
    decoded
}

/// The decoder's state between steps.
#[derive(Clone, Copy)]
struct State {
    /// Bit position of the next step in the buffer being read.
    pos: usize,
    /// Bits of the previous value.
    bits: u64,
    /// The current window: zeros above it, its width, and a mask of its
    /// bits in place (a value's XOR is the window's bits, nothing else).
    leading: u32,
    width: u32,
    mask: u64,
    /// Values decoded so far.
    index: usize,
}

fn decode_into(bytes: &[u8], slots: &mut [f64]) -> Result<(), CodecError> {
    let first = bytes
        .first_chunk::<8>()
        .map(|b| u64::from_be_bytes(*b))
        .unwrap_or_default();
    slots[0] = f64::from_bits(first);
    let mut state = State {
        pos: 64,
        bits: first,
        leading: 0,
        width: 64,
        mask: u64::MAX,
        index: 1,
    };
    steps(bytes, &mut state, slots)?;
    if state.index == slots.len() {
        return check_consumed(state.pos as u64, bytes);
    }
    // The tail: the bytes from the current one on, then zeros.
    let tail_start = state.pos / 8;
    let mut tail = [0u8; 2 * STEP_BYTES];
    let rest = bytes.get(tail_start..).unwrap_or_default();
    tail[..rest.len()].copy_from_slice(rest);
    state.pos -= tail_start * 8;
    steps(&tail, &mut state, slots)?;
    let consumed = (tail_start * 8 + state.pos) as u64;
    if state.index < slots.len() {
        return Err(CodecError::Truncated {
            column: Column::Values,
            needed_bits: consumed + 1,
            available_bits: bytes.len() as u64 * 8,
        });
    }
    check_consumed(consumed, bytes)
}

/// At least the 57 bits from bit `pos` of `data` (the top bits of the
/// result; the `pos % 8` lowest are zero); needs `pos / 8 + 8 <= data.len()`.
#[inline(always)]
fn peek57(data: &[u8], pos: usize) -> u64 {
    let byte = pos / 8;
    let mut word = [0u8; 8];
    word.copy_from_slice(&data[byte..byte + 8]);
    u64::from_be_bytes(word) << (pos % 8)
}

/// The 64 bits from bit `pos` of `data`; needs `pos / 8 + 9 <= data.len()`.
#[inline(always)]
fn peek64(data: &[u8], pos: usize) -> u64 {
    let next = u64::from(data[pos / 8 + 8]);
    // A shift of 8 (an aligned `pos`) clears `next`, as it must.
    peek57(data, pos) | (next >> (8 - pos % 8))
}

/// Decodes values while a whole step fits in `data`. Not inlined: on its
/// own the loop keeps its whole state in registers.
#[inline(never)]
fn steps(data: &[u8], state: &mut State, slots: &mut [f64]) -> Result<(), CodecError> {
    let State {
        mut pos,
        mut bits,
        mut leading,
        mut width,
        mut mask,
        mut index,
    } = *state;
    let count = slots.len();
    let end = data.len().saturating_sub(STEP_BYTES) * 8;
    while index < count && pos < end {
        let word = peek57(data, pos);
        // `aligned`: the stream from the window's first bit on, when
        // control and window fit the 57 bits of `word`.
        let (control, aligned) = if word >> 63 == 0 {
            // `0`: the value repeats.
            slots[index] = f64::from_bits(bits);
            pos += 1;
            index += 1;
            continue;
        } else if word & (1 << 62) == 0 {
            // `10`: the XOR fits the current window.
            (2, word << 2)
        } else {
            // `11`: a new window.
            let new_leading = ((word >> 57) & 31) as u32;
            let significant = match ((word >> 51) & 63) as u32 {
                0 => 64,
                n => n,
            };
            if new_leading + significant > 64 {
                return Err(CodecError::BadXorWindow {
                    index,
                    leading: new_leading,
                    significant,
                });
            }
            leading = new_leading;
            width = significant;
            // 1 <= width <= 64 - leading: the shifts stay below 64.
            mask = (u64::MAX >> (64 - width)) << (64 - leading - width);
            (13, word << 13)
        };
        let window = if control + width <= 57 {
            aligned
        } else {
            peek64(data, pos + control as usize)
        };
        // The window's bits moved to their place; what follows them in
        // the stream is masked off.
        bits ^= (window >> leading) & mask;
        slots[index] = f64::from_bits(bits);
        pos += (control + width) as usize;
        index += 1;
    }
    *state = State {
        pos,
        bits,
        leading,
        width,
        mask,
        index,
    };
    Ok(())
}

/// A stream must be consumed exactly: no missing and no extra bytes.
fn check_consumed(consumed_bits: u64, bytes: &[u8]) -> Result<(), CodecError> {
    let available_bits = bytes.len() as u64 * 8;
    if consumed_bits > available_bits {
        return Err(CodecError::Truncated {
            column: Column::Values,
            needed_bits: consumed_bits,
            available_bits,
        });
    }
    let used_bytes = consumed_bits.div_ceil(8) as usize;
    if used_bytes < bytes.len() {
        return Err(CodecError::TrailingBytes {
            column: Column::Values,
            extra_bytes: bytes.len() - used_bytes,
        });
    }
    Ok(())
}
