//! Timestamp column, encoding id 1: Gorilla delta-of-delta.
//!
//! Layout (bit stream, most significant bit first):
//! - the first timestamp as 64 raw bits;
//! - for every later sample, `dod = (t[i] - t[i-1]) - (t[i-1] - t[i-2])`
//!   (the delta before the second sample counts as 0), computed with
//!   wrapping i64 arithmetic so that any two i64 timestamps round-trip, in
//!   the first bucket that holds it:
//!
//! | prefix  | payload                  | dod range                |
//! |---------|--------------------------|--------------------------|
//! | `0`     | none                     | 0                        |
//! | `10`    | 5-bit two's complement   | -16 ..= 15               |
//! | `110`   | 9-bit two's complement   | -256 ..= 255             |
//! | `1110`  | 14-bit two's complement  | -8192 ..= 8191           |
//! | `11110` | 24-bit two's complement  | -8388608 ..= 8388607     |
//! | `11111` | 64 raw bits              | any                      |
//!
//! The buckets suit millisecond clocks: scrape jitter of a few milliseconds
//! costs 7 bits, a missed scrape of up to 8 s 18 bits, a gap of up to 2.3 h
//! 29 bits.
//!
//! Invariant: decoded timestamps are strictly increasing; a stream that
//! decodes otherwise is reported as corrupt.

use super::bits::{sign_extend, BitReader, BitWriter};
use super::{CodecError, Column, ColumnEncoder};

/// (prefix bits, prefix width, payload width) for the bounded buckets; the
/// bucket after the last one is `11111` + 64 bits.
const BUCKETS: [(u64, u32, u32); 4] = [
    (0b10, 2, 5),
    (0b110, 3, 9),
    (0b1110, 4, 14),
    (0b11110, 5, 24),
];
const RAW_PREFIX: (u64, u32) = (0b11111, 5);

/// Streaming delta-of-delta encoder; the head appends to it sample by sample.
#[derive(Debug, Default, Clone)]
pub struct DeltaOfDeltaEncoder {
    writer: BitWriter,
    count: usize,
    previous_ms: i64,
    previous_delta: i64,
}

impl ColumnEncoder for DeltaOfDeltaEncoder {
    type Item = i64;

    fn with_writer(writer: BitWriter) -> Self {
        DeltaOfDeltaEncoder {
            writer,
            ..Self::default()
        }
    }

    /// Appends one timestamp. The caller guarantees it is greater than the
    /// previous one.
    #[inline(always)]
    fn push(&mut self, timestamp_ms: i64) {
        if self.count == 0 {
            self.writer.write_bits(timestamp_ms as u64, 64);
        } else {
            let delta = timestamp_ms.wrapping_sub(self.previous_ms);
            let dod = delta.wrapping_sub(self.previous_delta);
            self.write_dod(dod);
            self.previous_delta = delta;
        }
        self.previous_ms = timestamp_ms;
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

impl DeltaOfDeltaEncoder {
    #[inline(always)]
    fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.writer.write_bit(false);
            return;
        }
        for &(prefix, prefix_width, payload_width) in &BUCKETS {
            let half = 1i64 << (payload_width - 1);
            if (-half..half).contains(&dod) {
                self.writer.write_bits(
                    (prefix << payload_width) | (dod as u64 & ((1u64 << payload_width) - 1)),
                    prefix_width + payload_width,
                );
                return;
            }
        }
        self.writer.write_bits(RAW_PREFIX.0, RAW_PREFIX.1);
        self.writer.write_bits(dod as u64, 64);
    }
}

/// Decodes `count` timestamps from `bytes`, appending them to `out`.
pub fn decode(bytes: &[u8], count: usize, out: &mut Vec<i64>) -> Result<(), CodecError> {
    let mut reader = BitReader::new(bytes);
    if count == 0 {
        return super::check_stream_end(&reader, bytes, Column::Timestamps);
    }
    super::check_min_bits(bytes, count, Column::Timestamps)?;
    let start = out.len();
    out.resize(start + count, 0);
    let slots = &mut out[start..];
    let first = reader.read_bits(64) as i64;
    slots[0] = first;
    let mut previous_ms = first;
    let mut previous_delta = 0i64;
    let mut index = 1;
    while index < count {
        reader.ensure(5);
        // Fast path: a run of `0` codes (a steady interval) fills many
        // slots at once.
        if reader.peek_register() >> 63 == 0 && previous_delta > 0 {
            let run = reader.zero_run((count - index).min(63) as u32) as i64;
            let run_end = run
                .checked_mul(previous_delta)
                .and_then(|span| previous_ms.checked_add(span));
            if let Some(run_end) = run_end {
                for (k, slot) in (1..).zip(&mut slots[index..index + run as usize]) {
                    *slot = previous_ms + k * previous_delta;
                }
                reader.consume(run as u32);
                previous_ms = run_end;
                index += run as usize;
                continue;
            }
        }
        reader.ensure(57);
        let register = reader.peek_register();
        let ones = (!register).leading_zeros();
        let dod = match ones {
            0 => {
                reader.consume(1);
                0
            }
            1..=4 => {
                // prefix + payload <= 29 bits: all in the register.
                let payload_width = BUCKETS[ones as usize - 1].2;
                let payload = (register << (ones + 1)) >> (64 - payload_width);
                reader.consume(ones + 1 + payload_width);
                sign_extend(payload, payload_width)
            }
            _ => {
                reader.consume(RAW_PREFIX.1);
                reader.read_bits(64) as i64
            }
        };
        let delta = previous_delta.wrapping_add(dod);
        let timestamp_ms = previous_ms.wrapping_add(delta);
        if timestamp_ms <= previous_ms {
            out.truncate(start + index);
            if reader.overrun() {
                break;
            }
            return Err(CodecError::NotIncreasing {
                index,
                previous_ms,
                timestamp_ms,
            });
        }
        slots[index] = timestamp_ms;
        previous_ms = timestamp_ms;
        previous_delta = delta;
        index += 1;
    }
    super::check_stream_end(&reader, bytes, Column::Timestamps)
}
