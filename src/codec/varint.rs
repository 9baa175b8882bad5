//! LEB128 varints and zigzag mapping, shared by the byte-oriented encodings
//! and the WAL records. Reads are bounds-checked and never panic.

/// Maps signed to unsigned so that small magnitudes stay small.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `v` as an unsigned LEB128 varint (1..=10 bytes).
#[inline]
pub fn put(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*pos`, advancing it; `None` if the bytes end first
/// or the varint is longer than 10 bytes.
#[inline]
pub fn get(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(values in proptest::collection::vec(any::<i64>(), 0..50)) {
            let mut out = Vec::new();
            for &v in &values {
                put(zigzag(v), &mut out);
            }
            let mut pos = 0;
            for &v in &values {
                prop_assert_eq!(get(&out, &mut pos).map(unzigzag), Some(v));
            }
            prop_assert_eq!(pos, out.len());
            prop_assert_eq!(get(&out, &mut pos), None);
        }
    }
}
