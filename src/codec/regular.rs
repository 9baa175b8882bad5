//! Timestamp column, encoding id 2: a regular grid with exceptions.
//!
//! Layout (bytes): zigzag varint `first`, zigzag varint `step`, varint
//! `exception_count`, then per exception a varint index gap (from the
//! previous exception's index, or from 0) and a zigzag varint offset. Sample
//! `i` is `first + i * step` (wrapping) plus its exception's offset, if any.
//!
//! A fixed scrape interval costs a few bytes per chunk whatever its length;
//! each jittered sample costs one exception (2–4 bytes). The step is the
//! most common interval in the chunk. Sealed chunks only: the chooser in
//! [`super::encode_chunk_sealed`] keeps delta-of-delta when that is smaller.
//!
//! Invariant: decoded timestamps are strictly increasing (checked).

use super::varint::{self, unzigzag, zigzag};
use super::{CodecError, Column};

/// Encodes `timestamps` (strictly increasing, non-empty) into `out`.
pub fn encode(timestamps: &[i64], out: &mut Vec<u8>) {
    let first = timestamps[0];
    let step = most_common_step(timestamps);
    varint::put(zigzag(first), out);
    varint::put(zigzag(step), out);
    let exceptions: Vec<(usize, i64)> = timestamps
        .iter()
        .enumerate()
        .filter_map(|(i, &t)| {
            let offset = t.wrapping_sub(grid(first, step, i));
            (offset != 0).then_some((i, offset))
        })
        .collect();
    varint::put(exceptions.len() as u64, out);
    let mut previous = 0;
    for (index, offset) in exceptions {
        varint::put((index - previous) as u64, out);
        varint::put(zigzag(offset), out);
        previous = index;
    }
}

#[inline]
fn grid(first: i64, step: i64, index: usize) -> i64 {
    first.wrapping_add(step.wrapping_mul(index as i64))
}

fn most_common_step(timestamps: &[i64]) -> i64 {
    let mut deltas: Vec<i64> = timestamps
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]))
        .collect();
    if deltas.is_empty() {
        return 0;
    }
    deltas.sort_unstable();
    let mut best = (0usize, deltas[0]);
    let mut run_start = 0;
    for i in 1..=deltas.len() {
        if i == deltas.len() || deltas[i] != deltas[run_start] {
            if i - run_start > best.0 {
                best = (i - run_start, deltas[run_start]);
            }
            run_start = i;
        }
    }
    best.1
}

/// Decodes `count` timestamps from `bytes` into `out`.
pub fn decode(bytes: &[u8], count: usize, out: &mut Vec<i64>) -> Result<(), CodecError> {
    let mut pos = 0;
    let next = |pos: &mut usize| super::read_varint(bytes, pos, Column::Timestamps);
    let first = unzigzag(next(&mut pos)?);
    let step = unzigzag(next(&mut pos)?);
    let exception_count = next(&mut pos)?;
    if exception_count > count as u64 {
        return Err(CodecError::BadEncoding {
            column: Column::Timestamps,
            reason: format!("{exception_count} exceptions for {count} samples"),
        });
    }
    let start = out.len();
    // A running sum: the same values as `grid`, cheaper than a multiply.
    let mut next_grid = first;
    out.extend((0..count).map(|_| {
        let timestamp = next_grid;
        next_grid = next_grid.wrapping_add(step);
        timestamp
    }));
    let slots = &mut out[start..];
    // A grid with a positive step that does not wrap is increasing by
    // construction; only exceptions (or any other grid) need the check.
    let grid_increasing = step > 0
        && i64::try_from(count.saturating_sub(1))
            .ok()
            .and_then(|n| step.checked_mul(n))
            .and_then(|span| first.checked_add(span))
            .is_some();
    let mut index = 0usize;
    for _ in 0..exception_count {
        let gap = next(&mut pos)?;
        let offset = unzigzag(next(&mut pos)?);
        index = index
            .checked_add(usize::try_from(gap).unwrap_or(usize::MAX))
            .filter(|&i| i < count)
            .ok_or_else(|| CodecError::BadEncoding {
                column: Column::Timestamps,
                reason: format!("exception index beyond {count} samples"),
            })?;
        slots[index] = slots[index].wrapping_add(offset);
    }
    if pos != bytes.len() {
        out.truncate(start);
        return Err(CodecError::TrailingBytes {
            column: Column::Timestamps,
            extra_bytes: bytes.len() - pos,
        });
    }
    let unordered = if grid_increasing && exception_count == 0 {
        None
    } else {
        slots.windows(2).position(|w| w[1] <= w[0])
    };
    if let Some(i) = unordered {
        let (previous_ms, timestamp_ms) = (slots[i], slots[i + 1]);
        out.truncate(start);
        return Err(CodecError::NotIncreasing {
            index: i + 1,
            previous_ms,
            timestamp_ms,
        });
    }
    Ok(())
}
