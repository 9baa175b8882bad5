//! Sample compression: column encodings and the chunk that holds them.
//!
//! A chunk stores up to [`MAX_CHUNK_SAMPLES`] samples of one series as two
//! column streams, timestamps and values, each tagged with an encoding id so
//! that better encodings can be added without breaking old files. Encoding
//! ids are only ever appended, never reused.
//!
//! Two writers: [`encode_chunk`] (and the streaming encoders the head
//! uses) always writes Gorilla (delta-of-delta + XOR); sealed segments use
//! [`encode_chunk_sealed`], which tries every encoding on the complete
//! chunk and keeps the smallest per column (the faster decoder on a tie).
//!
//! Chunk layout (all integers little-endian):
//!
//! | offset | size | field                                   |
//! |--------|------|-----------------------------------------|
//! | 0      | 1    | timestamp encoding id                   |
//! | 1      | 1    | value encoding id                       |
//! | 2      | 2    | sample count, 1 ..= `MAX_CHUNK_SAMPLES` |
//! | 4      | 4    | timestamp stream length in bytes        |
//! | 8      | n    | timestamp stream                        |
//! | 8 + n  | rest | value stream                            |
//!
//! Invariants: timestamps in a chunk are strictly increasing; every stream
//! is consumed exactly (no bytes left over, none missing); a decoder never
//! allocates more than `MAX_CHUNK_SAMPLES` entries whatever the input says.

pub mod bits;
pub mod constant;
pub mod decimal;
pub mod regular;
pub mod timestamp;
pub mod varint;
pub mod xor;
pub mod zstd_wrap;

use bits::BitWriter;

pub use timestamp::DeltaOfDeltaEncoder;
pub use xor::XorEncoder;

use std::fmt;

/// Most samples a chunk may hold (the format's limit; decoders reject more
/// and never allocate beyond it).
pub const MAX_CHUNK_SAMPLES: usize = 16_384;
/// The head seals its open chunks at this many samples: small enough that
/// reading a live chunk stays cheap.
pub const HEAD_CHUNK_SAMPLES: usize = 1_024;
/// Segment writers cut a series into chunks of this many samples: a 2 h
/// partition at 1 s fits one chunk, so per-chunk costs (header, first
/// sample, index entry) are paid once per series and partition.
pub const SEALED_CHUNK_SAMPLES: usize = 8_192;

/// Bytes before the timestamp stream.
pub const CHUNK_HEADER_LEN: usize = 8;

/// How a chunk's timestamp column is encoded. Ids are stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimestampEncoding {
    /// Gorilla delta-of-delta (docs/FORMAT.md, timestamp encoding 1).
    DeltaOfDelta,
    /// A regular grid with exceptions (docs/FORMAT.md, timestamp encoding 2).
    Regular,
}

impl TimestampEncoding {
    pub fn id(self) -> u8 {
        match self {
            Self::DeltaOfDelta => 1,
            Self::Regular => 2,
        }
    }

    pub fn from_id(id: u8) -> Result<Self, CodecError> {
        match id {
            1 => Ok(Self::DeltaOfDelta),
            2 => Ok(Self::Regular),
            other => Err(CodecError::UnknownTimestampEncoding(other)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::DeltaOfDelta => "delta-of-delta",
            Self::Regular => "regular",
        }
    }
}

/// How a chunk's value column is encoded. Ids are stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueEncoding {
    /// Gorilla XOR (docs/FORMAT.md, value encoding 1).
    GorillaXor,
    /// One repeated value (docs/FORMAT.md, value encoding 2).
    Constant,
    /// Exact decimals as bit-packed scaled integers (docs/FORMAT.md, value
    /// encoding 3).
    Decimal,
    /// Another value encoding's stream compressed with zstd (docs/FORMAT.md,
    /// value encoding 4).
    Zstd,
}

impl ValueEncoding {
    pub fn id(self) -> u8 {
        match self {
            Self::GorillaXor => 1,
            Self::Constant => 2,
            Self::Decimal => 3,
            Self::Zstd => 4,
        }
    }

    pub fn from_id(id: u8) -> Result<Self, CodecError> {
        match id {
            1 => Ok(Self::GorillaXor),
            2 => Ok(Self::Constant),
            3 => Ok(Self::Decimal),
            4 => Ok(Self::Zstd),
            other => Err(CodecError::UnknownValueEncoding(other)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::GorillaXor => "gorilla-xor",
            Self::Constant => "constant",
            Self::Decimal => "decimal",
            Self::Zstd => "zstd",
        }
    }
}

/// A streaming column encoder: the head pushes values one by one and can
/// read the stream at any time; sealed chunks encode a whole column.
pub trait ColumnEncoder: Sized {
    type Item: Copy;

    /// An encoder that appends its stream after `writer`'s bytes.
    fn with_writer(writer: BitWriter) -> Self;
    fn push(&mut self, item: Self::Item);
    /// Items pushed so far.
    fn len(&self) -> usize;
    fn writer(&self) -> &BitWriter;
    fn into_writer(self) -> BitWriter;

    #[cfg(any(test, feature = "internals"))]
    fn new() -> Self {
        Self::with_writer(BitWriter::new())
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the stream occupies so far.
    fn byte_len(&self) -> usize {
        self.writer().bit_len().div_ceil(8) as usize
    }

    /// Appends the stream so far (zero-padded to a byte) to `out`.
    fn copy_to(&self, out: &mut Vec<u8>) {
        self.writer().copy_to(out);
    }

    /// The finished stream.
    fn finish(self) -> Vec<u8> {
        self.into_writer().finish()
    }

    /// Encodes a whole column, appending its stream to `out` without an
    /// intermediate buffer.
    fn encode_into(items: &[Self::Item], out: &mut Vec<u8>) {
        let mut encoder = Self::with_writer(BitWriter::from_vec(std::mem::take(out)));
        for &item in items {
            encoder.push(item);
        }
        *out = encoder.finish();
    }
}

/// The two column streams of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Timestamps,
    Values,
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Column::Timestamps => "timestamp",
            Column::Values => "value",
        })
    }
}

/// Why chunk bytes could not be encoded or decoded.
///
/// `Truncated` means the bytes ran out (a torn write); every other variant
/// means the bytes are wrong (corruption or a caller error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("chunk is {len} bytes, shorter than its {CHUNK_HEADER_LEN}-byte header")]
    ShortHeader { len: usize },
    #[error("{column} stream ended early: decoding needed {needed_bits} bits, the stream holds {available_bits}")]
    Truncated {
        column: Column,
        needed_bits: u64,
        available_bits: u64,
    },
    #[error("{column} stream has {extra_bytes} bytes after its last sample")]
    TrailingBytes { column: Column, extra_bytes: usize },
    #[error("unknown timestamp encoding id {0}")]
    UnknownTimestampEncoding(u8),
    #[error("unknown value encoding id {0}")]
    UnknownValueEncoding(u8),
    #[error("sample count {0} is outside 1..={MAX_CHUNK_SAMPLES}")]
    BadSampleCount(usize),
    #[error("timestamp stream length {stream_len} exceeds the {body_len} bytes after the header")]
    BadStreamLength { stream_len: usize, body_len: usize },
    #[error(
        "timestamp {timestamp_ms} of sample {index} is not after the previous one, {previous_ms}"
    )]
    NotIncreasing {
        index: usize,
        previous_ms: i64,
        timestamp_ms: i64,
    },
    #[error("value {index}: XOR window of {leading} leading zeros and {significant} significant bits exceeds 64 bits")]
    BadXorWindow {
        index: usize,
        leading: u32,
        significant: u32,
    },
    #[error("{timestamps} timestamps but {values} values")]
    ColumnLengthMismatch { timestamps: usize, values: usize },
    #[error("{column} stream: {reason}")]
    BadEncoding { column: Column, reason: String },
}

/// A Gorilla stream (delta-of-delta or XOR) spends 64 bits on its first
/// sample and at least one on each later one; checked before a decoder
/// allocates room for `count` samples.
fn check_min_bits(bytes: &[u8], count: usize, column: Column) -> Result<(), CodecError> {
    let needed_bits = 63 + count as u64;
    let available_bits = bytes.len() as u64 * 8;
    if needed_bits > available_bits {
        return Err(CodecError::Truncated {
            column,
            needed_bits,
            available_bits,
        });
    }
    Ok(())
}

/// Reads a varint of a byte-oriented stream at `*pos`.
fn read_varint(bytes: &[u8], pos: &mut usize, column: Column) -> Result<u64, CodecError> {
    varint::read(bytes, pos).map_err(|e| match e {
        varint::VarintError::Truncated => CodecError::Truncated {
            column,
            needed_bits: (bytes.len() as u64 + 1) * 8,
            available_bits: bytes.len() as u64 * 8,
        },
        varint::VarintError::NonCanonical => CodecError::BadEncoding {
            column,
            reason: format!("varint at byte {pos} is not in its shortest form"),
        },
    })
}

/// A stream must be consumed exactly: no missing and no extra bytes.
fn check_stream_end(
    reader: &bits::BitReader<'_>,
    bytes: &[u8],
    column: Column,
) -> Result<(), CodecError> {
    let consumed_bits = reader.bits_consumed();
    let available_bits = bytes.len() as u64 * 8;
    if consumed_bits > available_bits {
        return Err(CodecError::Truncated {
            column,
            needed_bits: consumed_bits,
            available_bits,
        });
    }
    let used_bytes = consumed_bits.div_ceil(8) as usize;
    if used_bytes < bytes.len() {
        return Err(CodecError::TrailingBytes {
            column,
            extra_bytes: bytes.len() - used_bytes,
        });
    }
    Ok(())
}

/// Header fields of an encoded chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    pub timestamp_encoding: TimestampEncoding,
    pub value_encoding: ValueEncoding,
    pub sample_count: usize,
}

impl ChunkHeader {
    /// Parses and validates the header; returns it with the two streams.
    pub fn parse(chunk: &[u8]) -> Result<(ChunkHeader, &[u8], &[u8]), CodecError> {
        let Some((header, body)) = chunk.split_first_chunk::<CHUNK_HEADER_LEN>() else {
            return Err(CodecError::ShortHeader { len: chunk.len() });
        };
        let timestamp_encoding = TimestampEncoding::from_id(header[0])?;
        let value_encoding = ValueEncoding::from_id(header[1])?;
        let sample_count = usize::from(u16::from_le_bytes([header[2], header[3]]));
        if !(1..=MAX_CHUNK_SAMPLES).contains(&sample_count) {
            return Err(CodecError::BadSampleCount(sample_count));
        }
        let stream_len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if stream_len > body.len() {
            return Err(CodecError::BadStreamLength {
                stream_len,
                body_len: body.len(),
            });
        }
        let (timestamps, values) = body.split_at(stream_len);
        Ok((
            ChunkHeader {
                timestamp_encoding,
                value_encoding,
                sample_count,
            },
            timestamps,
            values,
        ))
    }
}

/// Writes a chunk from already-encoded column streams (the head's path).
pub fn assemble_chunk(
    header: ChunkHeader,
    timestamp_stream: &[u8],
    value_stream: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    if !(1..=MAX_CHUNK_SAMPLES).contains(&header.sample_count) {
        return Err(CodecError::BadSampleCount(header.sample_count));
    }
    out.push(header.timestamp_encoding.id());
    out.push(header.value_encoding.id());
    // sample_count <= MAX_CHUNK_SAMPLES < u16::MAX, checked above.
    out.extend_from_slice(&(header.sample_count as u16).to_le_bytes());
    let stream_len =
        u32::try_from(timestamp_stream.len()).map_err(|_| CodecError::BadStreamLength {
            stream_len: timestamp_stream.len(),
            body_len: timestamp_stream.len() + value_stream.len(),
        })?;
    out.extend_from_slice(&stream_len.to_le_bytes());
    out.extend_from_slice(timestamp_stream);
    out.extend_from_slice(value_stream);
    Ok(())
}

/// Checks the columns a chunk is made of: equal lengths, 1 ..=
/// [`MAX_CHUNK_SAMPLES`] samples, strictly increasing timestamps.
fn check_columns(timestamps: &[i64], values: &[f64]) -> Result<(), CodecError> {
    if timestamps.len() != values.len() {
        return Err(CodecError::ColumnLengthMismatch {
            timestamps: timestamps.len(),
            values: values.len(),
        });
    }
    if !(1..=MAX_CHUNK_SAMPLES).contains(&timestamps.len()) {
        return Err(CodecError::BadSampleCount(timestamps.len()));
    }
    if let Some(index) = timestamps.windows(2).position(|pair| pair[1] <= pair[0]) {
        return Err(CodecError::NotIncreasing {
            index: index + 1,
            previous_ms: timestamps[index],
            timestamp_ms: timestamps[index + 1],
        });
    }
    Ok(())
}

/// Encodes one chunk with Gorilla (delta-of-delta + XOR), appending it to
/// `out`. Timestamps must be strictly increasing and the two columns of
/// equal length, 1 ..= [`MAX_CHUNK_SAMPLES`].
#[cfg(any(test, feature = "internals"))]
pub fn encode_chunk(
    timestamps: &[i64],
    values: &[f64],
    out: &mut Vec<u8>,
) -> Result<ChunkHeader, CodecError> {
    check_columns(timestamps, values)?;
    let header = ChunkHeader {
        timestamp_encoding: TimestampEncoding::DeltaOfDelta,
        value_encoding: ValueEncoding::GorillaXor,
        sample_count: timestamps.len(),
    };
    let start = out.len();
    assemble_chunk(header, &[], &[], out)?;
    DeltaOfDeltaEncoder::encode_into(timestamps, out);
    let stream_len = (out.len() - start - CHUNK_HEADER_LEN) as u32;
    out[start + 4..start + 8].copy_from_slice(&stream_len.to_le_bytes());
    XorEncoder::encode_into(values, out);
    Ok(header)
}

/// Encodes one chunk for a sealed segment: every timestamp and value
/// encoding is tried on the complete columns and the smallest kept per
/// column; on a tie the one that decodes faster (regular before
/// delta-of-delta; constant, decimal before XOR), then zstd over the value
/// stream where that is smaller still. Same input rules as
/// [`encode_chunk`].
pub fn encode_chunk_sealed(
    timestamps: &[i64],
    values: &[f64],
    out: &mut Vec<u8>,
) -> Result<ChunkHeader, CodecError> {
    check_columns(timestamps, values)?;
    let mut regular_stream = Vec::new();
    regular::encode(timestamps, &mut regular_stream);
    let mut dod_stream = Vec::new();
    DeltaOfDeltaEncoder::encode_into(timestamps, &mut dod_stream);
    let (timestamp_encoding, ts_stream) = if regular_stream.len() <= dod_stream.len() {
        (TimestampEncoding::Regular, regular_stream)
    } else {
        (TimestampEncoding::DeltaOfDelta, dod_stream)
    };

    let (value_encoding, value_stream) = if let Some(bits) = constant::detect(values) {
        let mut stream = Vec::with_capacity(8);
        constant::encode(bits, &mut stream);
        (ValueEncoding::Constant, stream)
    } else {
        let mut xor_stream = Vec::new();
        XorEncoder::encode_into(values, &mut xor_stream);
        let decimal_stream = decimal::detect(values).map(|(decimals, ints)| {
            let mut stream = Vec::new();
            decimal::encode(decimals, &ints, &mut stream);
            stream
        });
        let best = match decimal_stream {
            Some(stream) if stream.len() <= xor_stream.len() => (ValueEncoding::Decimal, stream),
            _ => (ValueEncoding::GorillaXor, xor_stream),
        };
        match zstd_wrap::compress(best.0, &best.1) {
            Some(compressed) => (ValueEncoding::Zstd, compressed),
            None => best,
        }
    };
    let header = ChunkHeader {
        timestamp_encoding,
        value_encoding,
        sample_count: timestamps.len(),
    };
    assemble_chunk(header, &ts_stream, &value_stream, out)?;
    Ok(header)
}

/// A decoded chunk: two equally long columns.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DecodedChunk {
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
}

impl DecodedChunk {
    pub fn clear(&mut self) {
        self.timestamps.clear();
        self.values.clear();
    }

    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }
}

/// The first timestamp of a chunk, read without decoding the rest.
pub fn chunk_first_timestamp(chunk: &[u8]) -> Result<i64, CodecError> {
    let (header, stream, _) = ChunkHeader::parse(chunk)?;
    match header.timestamp_encoding {
        TimestampEncoding::DeltaOfDelta => match stream.first_chunk::<8>() {
            Some(first) => Ok(i64::from_be_bytes(*first)),
            None => Err(CodecError::Truncated {
                column: Column::Timestamps,
                needed_bits: 64,
                available_bits: stream.len() as u64 * 8,
            }),
        },
        TimestampEncoding::Regular => {
            read_varint(stream, &mut 0, Column::Timestamps).map(varint::unzigzag)
        }
    }
}

/// Decodes a chunk into `out` (cleared first) and returns its header.
#[cfg(any(test, feature = "internals"))]
pub fn decode_chunk(chunk: &[u8], out: &mut DecodedChunk) -> Result<ChunkHeader, CodecError> {
    out.clear();
    decode_chunk_append(chunk, &mut out.timestamps, &mut out.values)
}

/// Decodes a chunk, appending its samples to two columns (the read path
/// decodes straight into its output this way). On error both columns are
/// left as they were.
pub fn decode_chunk_append(
    chunk: &[u8],
    timestamps: &mut Vec<i64>,
    values: &mut Vec<f64>,
) -> Result<ChunkHeader, CodecError> {
    let (ts_start, value_start) = (timestamps.len(), values.len());
    let decoded = decode_columns(chunk, timestamps, values);
    if decoded.is_err() {
        timestamps.truncate(ts_start);
        values.truncate(value_start);
    }
    decoded
}

fn decode_columns(
    chunk: &[u8],
    timestamps: &mut Vec<i64>,
    values: &mut Vec<f64>,
) -> Result<ChunkHeader, CodecError> {
    let (header, timestamp_stream, value_stream) = ChunkHeader::parse(chunk)?;
    let count = header.sample_count;
    match header.timestamp_encoding {
        TimestampEncoding::DeltaOfDelta => timestamp::decode(timestamp_stream, count, timestamps)?,
        TimestampEncoding::Regular => regular::decode(timestamp_stream, count, timestamps)?,
    }
    let inflated;
    let (value_encoding, value_stream) = match header.value_encoding {
        ValueEncoding::Zstd => {
            let (inner, stream) = zstd_wrap::decompress(value_stream, count)?;
            inflated = stream;
            (inner, inflated.as_slice())
        }
        other => (other, value_stream),
    };
    match value_encoding {
        ValueEncoding::GorillaXor => xor::decode(value_stream, count, values)?,
        ValueEncoding::Constant => constant::decode(value_stream, count, values)?,
        ValueEncoding::Decimal => decimal::decode(value_stream, count, values)?,
        // decompress never returns Zstd as the inner encoding
        ValueEncoding::Zstd => {
            return Err(CodecError::BadEncoding {
                column: Column::Values,
                reason: "nested zstd".into(),
            })
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests;
