//! Typed WAL records: what a frame's payload means.
//!
//! Payload layout (little-endian):
//! - byte 0: record type;
//! - type 3, **series** (written since WAL version 2): `u32 series_id`,
//!   `u32 label_count`, then per label `u32 name_len`, name bytes,
//!   `u32 value_len`, value bytes (UTF-8);
//! - type 1, **series** of WAL version 1 (still read): the same with a
//!   `u16 label_count` and `u16 name_len`;
//! - type 2, **samples**: `u32 count`, `i64 base_ms`, then per sample a
//!   LEB128 varint `series_id`, a LEB128 varint of the zigzag-encoded
//!   wrapping difference `timestamp_ms - base_ms`, and the value's 8 bytes.
//!
//! Invariants: the writer defines a series in a file before the first of
//! its samples there; a series id names one series for a whole writer
//! session; every length the encoder writes is the exact length (u32 fields,
//! and a series whose record would exceed the frame limit is rejected
//! before it is created, see [`series_record_len`]); a decoder checks every
//! length against the payload before reading.

use crate::codec::varint::{self, unzigzag, zigzag};
use crate::series::{Label, SeriesKey};

pub const RECORD_SERIES_V1: u8 = 1;
pub const RECORD_SAMPLES: u8 = 2;
pub const RECORD_SERIES: u8 = 3;

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Series { series_id: u32, key: SeriesKey },
    Samples(Vec<WalSample>),
}

/// One sample as the WAL stores it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WalSample {
    pub series_id: u32,
    pub timestamp_ms: i64,
    pub value: f64,
}

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("record ends early at payload byte {0}")]
    Truncated(usize),
    #[error("unknown record type {0}")]
    UnknownType(u8),
    #[error("invalid series record: {0}")]
    BadSeries(String),
    #[error("{0} unused bytes after the record")]
    TrailingBytes(usize),
}

/// Bytes of the series record of `key`. A series whose record would exceed
/// [`super::MAX_PAYLOAD_LEN`] must not be created: no frame could hold its
/// definition (every count and length then also fits in a u32).
#[cfg(any(test, feature = "internals"))]
pub fn series_record_len(key: &SeriesKey) -> usize {
    key.labels().iter().fold(9, |len, label| {
        len.saturating_add(8)
            .saturating_add(label.name.len())
            .saturating_add(label.value.len())
    })
}

/// Appends the series record of `key`, whose [`series_record_len`] is at
/// most [`super::MAX_PAYLOAD_LEN`].
pub fn encode_series(series_id: u32, key: &SeriesKey, out: &mut Vec<u8>) {
    out.push(RECORD_SERIES);
    out.extend_from_slice(&series_id.to_le_bytes());
    let labels = key.labels();
    out.extend_from_slice(&(labels.len() as u32).to_le_bytes());
    for label in labels {
        out.extend_from_slice(&(label.name.len() as u32).to_le_bytes());
        out.extend_from_slice(label.name.as_bytes());
        out.extend_from_slice(&(label.value.len() as u32).to_le_bytes());
        out.extend_from_slice(label.value.as_bytes());
    }
}

/// Incrementally encodes a samples record.
pub struct SamplesEncoder {
    count: u32,
    base_ms: i64,
}

impl SamplesEncoder {
    /// Starts a record in `out`; `base_ms` is any timestamp of the batch.
    pub fn begin(base_ms: i64, out: &mut Vec<u8>) -> Self {
        out.push(RECORD_SAMPLES);
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&base_ms.to_le_bytes());
        SamplesEncoder { count: 0, base_ms }
    }

    #[inline]
    pub fn push(&mut self, series_id: u32, timestamp_ms: i64, value: f64, out: &mut Vec<u8>) {
        varint::put(u64::from(series_id), out);
        varint::put(zigzag(timestamp_ms.wrapping_sub(self.base_ms)), out);
        out.extend_from_slice(&value.to_bits().to_le_bytes());
        self.count += 1;
    }

    /// Writes the count into the record that starts at `start` in `out`.
    pub fn finish(self, start: usize, out: &mut [u8]) {
        out[start + 1..start + 5].copy_from_slice(&self.count.to_le_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(RecordError::Truncated(self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, RecordError> {
        varint::get(self.bytes, &mut self.pos).ok_or(RecordError::Truncated(self.pos))
    }

    fn string(&mut self, len: usize) -> Result<String, RecordError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| RecordError::BadSeries("label is not UTF-8".into()))
    }
}

/// Decodes a payload. Sample vectors are sized by the bytes present, never
/// by the stored count alone.
pub fn decode(payload: &[u8]) -> Result<Record, RecordError> {
    let mut r = Reader {
        bytes: payload,
        pos: 0,
    };
    let record = match r.array::<1>()?[0] {
        kind @ (RECORD_SERIES | RECORD_SERIES_V1) => {
            let wide = kind == RECORD_SERIES;
            let series_id = u32::from_le_bytes(r.array()?);
            let label_count = if wide {
                u32::from_le_bytes(r.array()?) as usize
            } else {
                usize::from(u16::from_le_bytes(r.array()?))
            };
            // each label takes at least 6 bytes
            if label_count.saturating_mul(6) > payload.len() - r.pos {
                return Err(RecordError::Truncated(r.pos));
            }
            let mut labels = Vec::with_capacity(label_count);
            for _ in 0..label_count {
                let name_len = if wide {
                    u32::from_le_bytes(r.array()?) as usize
                } else {
                    usize::from(u16::from_le_bytes(r.array()?))
                };
                let name = r.string(name_len)?;
                let value_len = u32::from_le_bytes(r.array()?) as usize;
                let value = r.string(value_len)?;
                labels.push(Label::new(name, value));
            }
            let key = SeriesKey::from_labels(labels)
                .map_err(|e| RecordError::BadSeries(e.to_string()))?;
            Record::Series { series_id, key }
        }
        RECORD_SAMPLES => {
            let count = u32::from_le_bytes(r.array()?) as usize;
            let base_ms = i64::from_le_bytes(r.array()?);
            // each sample takes at least 10 bytes
            if count.saturating_mul(10) > payload.len() - r.pos {
                return Err(RecordError::Truncated(r.pos));
            }
            let mut samples = Vec::with_capacity(count);
            for _ in 0..count {
                let series_id = u32::try_from(r.varint()?)
                    .map_err(|_| RecordError::BadSeries("series id over u32".into()))?;
                let timestamp_ms = base_ms.wrapping_add(unzigzag(r.varint()?));
                let value = f64::from_bits(u64::from_le_bytes(r.array()?));
                samples.push(WalSample {
                    series_id,
                    timestamp_ms,
                    value,
                });
            }
            Record::Samples(samples)
        }
        other => return Err(RecordError::UnknownType(other)),
    };
    if r.pos != payload.len() {
        return Err(RecordError::TrailingBytes(payload.len() - r.pos));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn samples_round_trip(
            base in any::<i64>(),
            samples in proptest::collection::vec((any::<u32>(), any::<i64>(), any::<u64>()), 0..50)
        ) {
            let mut out = Vec::new();
            let mut encoder = SamplesEncoder::begin(base, &mut out);
            for &(id, ts, bits) in &samples {
                encoder.push(id, ts, f64::from_bits(bits), &mut out);
            }
            encoder.finish(0, &mut out);
            let Record::Samples(decoded) = decode(&out).unwrap() else { panic!("wrong type") };
            let decoded: Vec<(u32, i64, u64)> =
                decoded.iter().map(|s| (s.series_id, s.timestamp_ms, s.value.to_bits())).collect();
            prop_assert_eq!(decoded, samples);
            for len in 0..out.len() {
                prop_assert!(decode(&out[..len]).is_err());
            }
        }

        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn series_round_trip() {
        let key = SeriesKey::new("up", &[("job", "a\"b"), ("zone", "é")]).unwrap();
        let mut out = Vec::new();
        encode_series(7, &key, &mut out);
        assert_eq!(out.len(), series_record_len(&key));
        assert_eq!(
            decode(&out).unwrap(),
            Record::Series {
                series_id: 7,
                key: key.clone()
            }
        );
        out.push(0);
        assert_eq!(decode(&out), Err(RecordError::TrailingBytes(1)));
    }

    #[test]
    fn version_1_series_records_still_decode() {
        let key = SeriesKey::new("up", &[("job", "a")]).unwrap();
        let mut out = vec![RECORD_SERIES_V1];
        out.extend_from_slice(&9u32.to_le_bytes());
        out.extend_from_slice(&(key.labels().len() as u16).to_le_bytes());
        for label in key.labels() {
            out.extend_from_slice(&(label.name.len() as u16).to_le_bytes());
            out.extend_from_slice(label.name.as_bytes());
            out.extend_from_slice(&(label.value.len() as u32).to_le_bytes());
            out.extend_from_slice(label.value.as_bytes());
        }
        assert_eq!(decode(&out).unwrap(), Record::Series { series_id: 9, key });
    }

    #[test]
    fn long_label_names_are_not_truncated() {
        // A name longer than u16::MAX: the version 1 layout could not hold it.
        let name = format!("a{}", "b".repeat(70_000));
        let key = SeriesKey::new("up", &[(name.as_str(), "v")]).unwrap();
        let mut out = Vec::new();
        encode_series(1, &key, &mut out);
        assert_eq!(out.len(), series_record_len(&key));
        assert_eq!(decode(&out).unwrap(), Record::Series { series_id: 1, key });
    }
}
