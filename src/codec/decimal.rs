//! Value column, encoding id 3: exact decimals stored as scaled integers.
//!
//! Telemetry values are mostly integers (counters, bytes, counts) or
//! decimals with a few digits (2.5 s, 99.95 %). If every value of a chunk
//! equals `n / 10^d` for integers `n` with `|n| <= 2^53`, bit for bit
//! (checked by computing exactly what the decoder computes), the column is
//! stored as those integers: raw (order 0), as deltas (order 1) or as
//! deltas of deltas (order 2), whichever is smallest, bit-packed at one
//! width after subtracting the smallest residual (frame of reference) and
//! dividing by their greatest common divisor (counters of pages or blocks
//! grow in multiples of 4096; quarters scaled by 100 are multiples of 25).
//!
//! Layout (bytes, then bits): `u8 decimals` (0..=15), `u8 order` (0..=2,
//! less than the sample count), `u8 width` (0..=64); zigzag varints: the
//! first integer if order >= 1, the first delta if order == 2, then the
//! reference (smallest residual); a varint multiplier (>= 1); then
//! `count - order` fields of `width` bits, `(residual - reference) /
//! multiplier`, most significant bit first, zero-padded to a byte.
//!
//! Values this cannot represent exactly (NaN, infinities, -0.0, full
//! precision floats) make [`detect`] return `None`; the chooser then keeps
//! Gorilla XOR. Never approximate.

use super::bits::{BitReader, BitWriter};
use super::varint::{self, unzigzag, zigzag};
use super::{CodecError, Column};

/// Most decimals tried; 10^d must be exact in f64 (d <= 22).
const MAX_DECIMALS: usize = 12;
/// Decoders accept up to this many decimals.
const MAX_DECIMALS_DECODED: u8 = 15;
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
const MAX_ABS: f64 = 9_007_199_254_740_992.0; // 2^53

/// The fewest decimals that represent every value exactly, with the
/// integers; `None` if no count of decimals up to 12 does.
pub fn detect(values: &[f64]) -> Option<(u8, Vec<i64>)> {
    let mut ints = Vec::with_capacity(values.len());
    'decimals: for (decimals, &scale) in POW10.iter().enumerate().take(MAX_DECIMALS + 1) {
        ints.clear();
        for &v in values {
            let scaled = (v * scale).round();
            // NaN fails this test too.
            if scaled.is_nan() || scaled.abs() > MAX_ABS {
                continue 'decimals;
            }
            let n = scaled as i64;
            if ((n as f64) / scale).to_bits() != v.to_bits() {
                continue 'decimals;
            }
            ints.push(n);
        }
        return Some((decimals as u8, ints));
    }
    None
}

/// Residuals of `ints` at `order` (0, 1 or 2) and the header integers.
fn residuals(ints: &[i64], order: usize) -> (Vec<i64>, Vec<i64>) {
    let mut current = ints.to_vec();
    let mut heads = Vec::new();
    for _ in 0..order {
        heads.push(current[0]);
        current = current
            .windows(2)
            .map(|w| w[1].wrapping_sub(w[0]))
            .collect();
    }
    (heads, current)
}

/// Frame of reference for `residuals`: (reference, multiplier, width).
fn frame_of(residuals: &[i64]) -> (i64, u64, u32) {
    let reference = residuals.iter().copied().min().unwrap_or(0);
    let multiplier = residuals
        .iter()
        .fold(0u64, |g, &r| gcd(g, r.wrapping_sub(reference) as u64))
        .max(1);
    let max = residuals.iter().copied().max().unwrap_or(0);
    let span = max.wrapping_sub(reference) as u64 / multiplier;
    (reference, multiplier, 64 - span.leading_zeros())
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Encodes the integers from [`detect`] at the cheapest order.
pub fn encode(decimals: u8, ints: &[i64], out: &mut Vec<u8>) {
    let best = (0..3usize.min(ints.len()))
        .map(|order| {
            let (heads, residuals) = residuals(ints, order);
            let (reference, multiplier, width) = frame_of(&residuals);
            let bits = u64::from(width) * residuals.len() as u64 + 24 * (order as u64 + 1);
            (bits, order, heads, residuals, reference, multiplier, width)
        })
        .min_by_key(|candidate| (candidate.0, candidate.1));
    let Some((_, order, heads, residuals, reference, multiplier, width)) = best else {
        return;
    };
    out.push(decimals);
    out.push(order as u8);
    out.push(width as u8);
    for head in heads {
        varint::put(zigzag(head), out);
    }
    varint::put(zigzag(reference), out);
    varint::put(multiplier, out);
    let mut writer = BitWriter::from_vec(std::mem::take(out));
    for r in residuals {
        writer.write_bits(r.wrapping_sub(reference) as u64 / multiplier, width);
    }
    *out = writer.finish();
}

/// Decodes `count` values from `bytes` into `out`.
pub fn decode(bytes: &[u8], count: usize, out: &mut Vec<f64>) -> Result<(), CodecError> {
    let bad = |reason: String| CodecError::BadEncoding {
        column: Column::Values,
        reason,
    };
    let truncated = || CodecError::Truncated {
        column: Column::Values,
        needed_bits: 24,
        available_bits: bytes.len() as u64 * 8,
    };
    let [decimals, order, width] = match bytes.get(..3) {
        Some(&[d, o, w]) => [d, o, w],
        _ => return Err(truncated()),
    };
    let (order, width) = (usize::from(order), u32::from(width));
    if decimals > MAX_DECIMALS_DECODED || order > 2 || order >= count || width > 64 {
        return Err(bad(format!(
            "decimals {decimals}, order {order}, width {width} for {count} samples"
        )));
    }
    let mut pos = 3;
    let mut heads = [0i64; 2];
    for head in heads.iter_mut().take(order) {
        *head = unzigzag(super::read_varint(bytes, &mut pos, Column::Values)?);
    }
    let reference = unzigzag(super::read_varint(bytes, &mut pos, Column::Values)?);
    let multiplier = super::read_varint(bytes, &mut pos, Column::Values)?;
    if multiplier == 0 {
        return Err(bad("multiplier 0".into()));
    }
    let packed = &bytes[pos..];
    // Checked before allocating: the packed residuals fill exactly this
    // many bytes.
    let needed_bits = u64::from(width) * (count - order) as u64;
    let available_bits = packed.len() as u64 * 8;
    if needed_bits > available_bits {
        return Err(CodecError::Truncated {
            column: Column::Values,
            needed_bits,
            available_bits,
        });
    }
    if needed_bits.div_ceil(8) < packed.len() as u64 {
        return Err(CodecError::TrailingBytes {
            column: Column::Values,
            extra_bytes: packed.len() - needed_bits.div_ceil(8) as usize,
        });
    }
    let mut reader = BitReader::new(packed);
    let start = out.len();
    out.resize(start + count, 0.0);
    let slots = &mut out[start..];
    let scale = POW10[usize::from(decimals)];
    // Integrate the residuals back, `order` times, while filling the slots.
    let mut value = heads[0];
    let mut delta = heads[1];
    for (i, slot) in slots.iter_mut().enumerate() {
        if i >= order {
            let residual =
                (reader.read_bits(width).wrapping_mul(multiplier) as i64).wrapping_add(reference);
            match order {
                0 => value = residual,
                1 => value = value.wrapping_add(residual),
                _ => {
                    delta = delta.wrapping_add(residual);
                    value = value.wrapping_add(delta);
                }
            }
        } else if i == 1 {
            value = value.wrapping_add(delta);
        }
        *slot = value as f64 / scale;
    }
    super::check_stream_end(&reader, packed, Column::Values).inspect_err(|_| out.truncate(start))
}
