//! Timestamp column, encoding id 1: Gorilla delta-of-delta.
//!
//! Layout (bit stream, most significant bit first):
//! - the first timestamp as 64 raw bits;
//! - for every later sample, `dod = (t[i] - t[i-1]) - (t[i-1] - t[i-2])`
//!   (the delta before the second sample counts as 0), computed with
//!   wrapping i64 arithmetic so that any two i64 timestamps round-trip, in
//!   the first bucket that holds it:
//!
//! | prefix | payload                  | dod range            |
//! |--------|--------------------------|----------------------|
//! | `0`    | none                     | 0                    |
//! | `10`   | 7-bit two's complement   | -64 ..= 63           |
//! | `110`  | 12-bit two's complement  | -2048 ..= 2047       |
//! | `1110` | 20-bit two's complement  | -524288 ..= 524287   |
//! | `1111` | 64 raw bits              | any                  |
//!
//! The buckets are sized for millisecond timestamps: scrape jitter of a few
//! milliseconds fits the 7-bit bucket, a missed scrape of a few seconds the
//! 12- or 20-bit one.
//!
//! Invariant: decoded timestamps are strictly increasing; a stream that
//! decodes otherwise is reported as corrupt.

use super::bits::{sign_extend, BitReader, BitWriter};
use super::{CodecError, Column};

/// (prefix bits, prefix width, payload width) for the bounded buckets.
const BUCKETS: [(u64, u32, u32); 3] = [(0b10, 2, 7), (0b110, 3, 12), (0b1110, 4, 20)];

/// Streaming delta-of-delta encoder; the head appends to it sample by sample.
#[derive(Debug, Default, Clone)]
pub struct DeltaOfDeltaEncoder {
    writer: BitWriter,
    count: usize,
    previous_ms: i64,
    previous_delta: i64,
}

impl DeltaOfDeltaEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one timestamp. The caller guarantees it is greater than the
    /// previous one.
    #[inline]
    pub fn push(&mut self, timestamp_ms: i64) {
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

    #[inline]
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
        self.writer.write_bits(0b1111, 4);
        self.writer.write_bits(dod as u64, 64);
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the stream occupies so far.
    pub fn byte_len(&self) -> usize {
        self.writer.bit_len().div_ceil(8) as usize
    }

    pub fn copy_to(&self, out: &mut Vec<u8>) {
        self.writer.copy_to(out);
    }

    pub fn finish(self) -> Vec<u8> {
        self.writer.finish()
    }
}

/// Encodes a whole column.
pub fn encode(timestamps: &[i64], out: &mut Vec<u8>) {
    let mut encoder = DeltaOfDeltaEncoder::new();
    for &timestamp_ms in timestamps {
        encoder.push(timestamp_ms);
    }
    encoder.copy_to(out);
}

/// Decodes `count` timestamps from `bytes`, appending them to `out`.
pub fn decode(bytes: &[u8], count: usize, out: &mut Vec<i64>) -> Result<(), CodecError> {
    out.reserve(count);
    let mut reader = BitReader::new(bytes);
    if count == 0 {
        return super::check_stream_end(&reader, bytes, Column::Timestamps);
    }
    let first = reader.read_bits(64) as i64;
    out.push(first);
    let mut previous_ms = first;
    let mut previous_delta = 0i64;
    for index in 1..count {
        reader.ensure(4);
        let ones = (!reader.peek_register()).leading_zeros().min(4);
        let dod = match ones {
            0 => {
                reader.consume(1);
                0
            }
            1..=3 => {
                let payload_width = BUCKETS[ones as usize - 1].2;
                reader.consume(ones + 1);
                sign_extend(reader.read_bits(payload_width), payload_width)
            }
            _ => {
                reader.consume(4);
                reader.read_bits(64) as i64
            }
        };
        let delta = previous_delta.wrapping_add(dod);
        let timestamp_ms = previous_ms.wrapping_add(delta);
        if timestamp_ms <= previous_ms {
            if reader.overrun() {
                break;
            }
            return Err(CodecError::NotIncreasing {
                index,
                previous_ms,
                timestamp_ms,
            });
        }
        out.push(timestamp_ms);
        previous_ms = timestamp_ms;
        previous_delta = delta;
    }
    super::check_stream_end(&reader, bytes, Column::Timestamps)
}
