//! Value column, encoding id 2: one value repeated. Layout: the value's 8
//! bytes, little-endian bits. Chosen for sealed chunks whose values all have
//! the same bit pattern.

use super::{CodecError, Column};

/// The shared bit pattern, if every value has it.
pub fn detect(values: &[f64]) -> Option<u64> {
    let bits = values.first()?.to_bits();
    values.iter().all(|v| v.to_bits() == bits).then_some(bits)
}

pub fn encode(bits: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&bits.to_le_bytes());
}

pub fn decode(bytes: &[u8], count: usize, out: &mut Vec<f64>) -> Result<(), CodecError> {
    let Ok(bits) = <[u8; 8]>::try_from(bytes) else {
        return Err(CodecError::BadEncoding {
            column: Column::Values,
            reason: format!("constant column is {} bytes, not 8", bytes.len()),
        });
    };
    out.extend(std::iter::repeat_n(
        f64::from_bits(u64::from_le_bytes(bits)),
        count,
    ));
    Ok(())
}
