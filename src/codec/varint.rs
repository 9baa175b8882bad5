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

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The bytes end inside the varint.
    Truncated,
    /// Not the shortest encoding of its value (a last byte of 0 after
    /// others), or more than 64 bits (an 11th byte, or a 10th byte above
    /// 1). [`put`] never writes either, so they are damage.
    NonCanonical,
}

/// Reads a canonical varint at `*pos`, advancing `*pos` past it on success.
#[inline]
pub fn read(bytes: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    let mut value = 0u64;
    let mut at = *pos;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(at).ok_or(VarintError::Truncated)?;
        at += 1;
        if shift == 63 && byte > 1 {
            return Err(VarintError::NonCanonical);
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            if byte == 0 && shift > 0 {
                return Err(VarintError::NonCanonical);
            }
            *pos = at;
            return Ok(value);
        }
    }
    Err(VarintError::NonCanonical)
}

/// [`read`] without the reason: `None` when the bytes end first or the
/// varint is not canonical.
#[inline]
pub fn get(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    read(bytes, pos).ok()
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

    #[test]
    fn only_canonical_forms_are_read() {
        let read_all = |bytes: &[u8]| {
            let mut pos = 0;
            read(bytes, &mut pos).map(|v| (v, pos))
        };
        assert_eq!(read_all(&[0]), Ok((0, 1)));
        assert_eq!(read_all(&[0x7f]), Ok((127, 1)));
        assert_eq!(read_all(&[0x80, 0x01]), Ok((128, 2)));
        let mut max = Vec::new();
        put(u64::MAX, &mut max);
        assert_eq!(max.len(), 10);
        assert_eq!(read_all(&max), Ok((u64::MAX, 10)));

        // zero written in two bytes; 1 padded with a zero byte
        assert_eq!(read_all(&[0x80, 0x00]), Err(VarintError::NonCanonical));
        assert_eq!(
            read_all(&[0x81, 0x80, 0x00]),
            Err(VarintError::NonCanonical)
        );
        // a 10th byte above 1 overflows 64 bits; an 11th byte is too long
        let mut overflow = max.clone();
        overflow[9] = 0x02;
        assert_eq!(read_all(&overflow), Err(VarintError::NonCanonical));
        let mut eleven = max.clone();
        eleven[9] = 0x81;
        eleven.push(0x01);
        assert_eq!(read_all(&eleven), Err(VarintError::NonCanonical));
        // running out of bytes is not damage of the varint itself
        assert_eq!(read_all(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(read_all(&[]), Err(VarintError::Truncated));
        let mut pos = 0;
        assert_eq!(get(&[0x80, 0x00], &mut pos), None);
        assert_eq!(pos, 0, "a failed read does not advance");
    }
}
