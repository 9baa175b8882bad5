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

use super::bits::{BitReader, BitWriter};
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

/// Decodes `count` values from `bytes`, appending them to `out`.
pub fn decode(bytes: &[u8], count: usize, out: &mut Vec<f64>) -> Result<(), CodecError> {
    let mut reader = BitReader::new(bytes);
    if count == 0 {
        return super::check_stream_end(&reader, bytes, Column::Values);
    }
    super::check_min_bits(bytes, count, Column::Values)?;
    let start = out.len();
    out.resize(start + count, 0.0);
    let slots = &mut out[start..];
    let mut bits = reader.read_bits(64);
    slots[0] = f64::from_bits(bits);
    let mut leading = 0u32;
    let mut trailing = 0u32;
    let mut index = 1;
    while index < count {
        // One refill per value: 57 bits cover the control bits and, except
        // for windows wider than 44 bits, the payload too.
        reader.ensure(57);
        let register = reader.peek_register();
        if register >> 63 == 0 {
            // A run of `0` codes: the value repeats.
            let run = reader.zero_run((count - index).min(63) as u32) as usize;
            slots[index..index + run].fill(f64::from_bits(bits));
            reader.consume(run as u32);
            index += run;
            continue;
        }
        let control_width = if register >> 62 == 0b11 {
            let header = register >> 51;
            let new_leading = ((header >> 6) & 31) as u32;
            let significant = match (header & 63) as u32 {
                0 => 64,
                n => n,
            };
            if new_leading + significant > 64 {
                out.truncate(start + index);
                return Err(CodecError::BadXorWindow {
                    index,
                    leading: new_leading,
                    significant,
                });
            }
            leading = new_leading;
            trailing = 64 - leading - significant;
            13
        } else {
            2
        };
        let width = 64 - leading - trailing;
        let meaningful = if control_width + width <= 57 {
            // width >= 1, so the shift is at most 63.
            let payload = (register << control_width) >> (64 - width);
            reader.consume(control_width + width);
            payload
        } else {
            reader.consume(control_width);
            reader.read_bits(width)
        };
        // leading + significant <= 64 and significant >= 1, so trailing
        // <= 63 and the shift is in range.
        bits ^= meaningful << trailing;
        slots[index] = f64::from_bits(bits);
        index += 1;
    }
    super::check_stream_end(&reader, bytes, Column::Values)
}
