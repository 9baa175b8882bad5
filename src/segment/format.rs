//! The segment file layout: constants, header, footer, and a bounds-checked
//! little-endian cursor. docs/FORMAT.md is the prose version of this file;
//! change both together.
//!
//! ```text
//! [header 16][chunk records ...][strings][series][postings][footer 108]
//! ```
//!
//! Invariants a valid file satisfies (the reader checks all of them):
//! - header and footer magic, version and crc32 match;
//! - the regions are contiguous and in this order, ending exactly where the
//!   footer begins; each region's crc32 matches the footer;
//! - every chunk record lies inside the chunk area and ends with the crc32
//!   of its bytes;
//! - a compressed table is exactly one zstd frame that inflates to its
//!   stated length, at most [`MAX_REGION_EXPANSION`] times the frame.

use std::borrow::Cow;

use crate::codec::zstd_wrap::inflate_frame;
use crate::error::Corruption;

pub const SEGMENT_MAGIC: &[u8; 8] = b"STRATSEG";
pub const FOOTER_MAGIC: &[u8; 8] = b"STRATEND";
/// The version this build writes.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest version this build reads. Version 1 files (Gorilla chunks of
/// up to 1024 samples) are a subset of version 2 and read the same way.
pub const OLDEST_READABLE_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 16;
pub const FOOTER_LEN: usize = 108;
/// Bytes of the footer covered by its crc32.
const FOOTER_CRC_SPAN: usize = 96;
/// Each chunk record ends with the crc32 of the chunk bytes.
pub const CHUNK_CRC_LEN: usize = 4;
/// Size of one chunk reference in the series table.
pub const CHUNK_REF_LEN: usize = 32;

/// The 16-byte file header.
pub fn encode_header() -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0..8].copy_from_slice(SEGMENT_MAGIC);
    header[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    // bytes 10..12 are reserved and zero
    let crc = crc32fast::hash(&header[0..12]);
    header[12..16].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Checks magic, crc and version of the header at the start of `file`;
/// returns the version.
pub fn check_header(file: &[u8]) -> Result<u16, (u64, Corruption)> {
    let mut cursor = Cursor::new(file, 0, "header");
    let magic = cursor.bytes(8).map_err(|e| (0, e))?;
    if magic != SEGMENT_MAGIC {
        return Err((
            0,
            Corruption::BadMagic {
                what: "segment file",
                found: magic.to_vec(),
                expected: SEGMENT_MAGIC,
            },
        ));
    }
    let version = cursor.u16().map_err(|e| (8, e))?;
    let reserved = cursor.u16().map_err(|e| (10, e))?;
    let stored = cursor.u32().map_err(|e| (12, e))?;
    let computed = crc32fast::hash(&file[0..12]);
    if stored != computed {
        return Err((
            12,
            Corruption::ChecksumMismatch {
                region: "header",
                stored,
                computed,
            },
        ));
    }
    check_version(version).map_err(|e| (8, e))?;
    if reserved != 0 {
        return Err((
            10,
            Corruption::BadLayout(format!("reserved header field is {reserved}, not 0")),
        ));
    }
    Ok(version)
}

fn check_version(found: u16) -> Result<(), Corruption> {
    if (OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&found) {
        Ok(())
    } else {
        Err(Corruption::UnsupportedVersion {
            found,
            supported: FORMAT_VERSION,
        })
    }
}

/// Where a region lies and its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegionRef {
    pub offset: u64,
    pub len: u64,
    pub crc: u32,
}

impl RegionRef {
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// The fixed-size trailer that locates the regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub strings: RegionRef,
    pub series: RegionRef,
    pub postings: RegionRef,
    pub series_count: u32,
    pub chunk_count: u32,
    pub sample_count: u64,
    /// Smallest timestamp in the file; `i64::MAX` when it holds no series.
    pub min_time_ms: i64,
    /// Largest timestamp in the file; `i64::MIN` when it holds no series.
    pub max_time_ms: i64,
    /// Format version (written: [`FORMAT_VERSION`]).
    pub version: u16,
}

impl Footer {
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        for region in [self.strings, self.series, self.postings] {
            out.extend_from_slice(&region.offset.to_le_bytes());
            out.extend_from_slice(&region.len.to_le_bytes());
            out.extend_from_slice(&region.crc.to_le_bytes());
        }
        out.extend_from_slice(&self.series_count.to_le_bytes());
        out.extend_from_slice(&self.chunk_count.to_le_bytes());
        out.extend_from_slice(&self.sample_count.to_le_bytes());
        out.extend_from_slice(&self.min_time_ms.to_le_bytes());
        out.extend_from_slice(&self.max_time_ms.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(FOOTER_MAGIC);
        let mut footer = [0u8; FOOTER_LEN];
        footer.copy_from_slice(&out);
        footer
    }

    /// Parses the footer at the end of `file`; returns the offset of a
    /// damaged field with the error.
    pub fn decode(file: &[u8]) -> Result<Footer, (u64, Corruption)> {
        let min_len = (HEADER_LEN + FOOTER_LEN) as u64;
        let file_len = file.len() as u64;
        if file_len < min_len {
            return Err((0, Corruption::TooShort { file_len, min_len }));
        }
        let start = file.len() - FOOTER_LEN;
        let base = start as u64;
        let bytes = &file[start..];
        let at = |offset: usize, e: Corruption| (base + offset as u64, e);
        if &bytes[FOOTER_LEN - 8..] != FOOTER_MAGIC {
            return Err(at(
                FOOTER_LEN - 8,
                Corruption::BadMagic {
                    what: "segment footer (file truncated or not a segment)",
                    found: bytes[FOOTER_LEN - 8..].to_vec(),
                    expected: FOOTER_MAGIC,
                },
            ));
        }
        let mut cursor = Cursor::new(bytes, base, "footer");
        let mut regions = [RegionRef::default(); 3];
        for region in &mut regions {
            region.offset = cursor.u64().map_err(|e| at(0, e))?;
            region.len = cursor.u64().map_err(|e| at(0, e))?;
            region.crc = cursor.u32().map_err(|e| at(0, e))?;
        }
        let footer = Footer {
            strings: regions[0],
            series: regions[1],
            postings: regions[2],
            series_count: cursor.u32().map_err(|e| at(60, e))?,
            chunk_count: cursor.u32().map_err(|e| at(64, e))?,
            sample_count: cursor.u64().map_err(|e| at(68, e))?,
            min_time_ms: cursor.i64().map_err(|e| at(76, e))?,
            max_time_ms: cursor.i64().map_err(|e| at(84, e))?,
            version: cursor.u16().map_err(|e| at(92, e))?,
        };
        let version = footer.version;
        let reserved = cursor.u16().map_err(|e| at(94, e))?;
        let stored = cursor.u32().map_err(|e| at(96, e))?;
        let computed = crc32fast::hash(&bytes[..FOOTER_CRC_SPAN]);
        if stored != computed {
            return Err(at(
                FOOTER_CRC_SPAN,
                Corruption::ChecksumMismatch {
                    region: "footer",
                    stored,
                    computed,
                },
            ));
        }
        check_version(version).map_err(|e| at(92, e))?;
        if reserved != 0 {
            return Err(at(
                94,
                Corruption::BadLayout(format!("reserved footer field is {reserved}, not 0")),
            ));
        }
        Ok(footer)
    }
}

/// The crc32 stored in the footer at the end of `file` (bytes 96..100 of
/// the footer); 0 when the file is shorter than a footer.
pub fn stored_footer_crc(file: &[u8]) -> u32 {
    let at = file.len().saturating_sub(FOOTER_LEN) + FOOTER_CRC_SPAN;
    file.get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads little-endian fields from a byte slice, failing (never panicking)
/// when the slice ends early.
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// File offset of `bytes[0]`, for error locations.
    base_offset: u64,
    region: &'static str,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8], base_offset: u64, region: &'static str) -> Self {
        Self {
            bytes,
            pos: 0,
            base_offset,
            region,
        }
    }

    /// File offset of the next byte to read.
    pub fn file_offset(&self) -> u64 {
        self.base_offset + self.pos as u64
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub fn bytes(&mut self, len: usize) -> Result<&'a [u8], Corruption> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(Corruption::Truncated {
                region: self.region,
                needed: self.pos as u64 + len as u64,
                available: self.bytes.len() as u64,
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Corruption> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, Corruption> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, Corruption> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, Corruption> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, Corruption> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, Corruption> {
        Ok(i64::from_le_bytes(self.array()?))
    }
}

/// How a version 2 region is stored: flag byte 0 = raw bytes follow; 1 = a
/// `u64` raw length, then one zstd frame of the raw bytes. Version 1
/// regions have no flag byte and are always raw.
const REGION_RAW: u8 = 0;
const REGION_ZSTD: u8 = 1;
/// zstd level for tables: written once per flush, read once per open.
const REGION_ZSTD_LEVEL: i32 = 9;
/// A compressed region may inflate to at most this many times its frame's
/// length; more is treated as damage, checked before anything is
/// allocated, so that opening a file never allocates more than a fixed
/// multiple of the file's own size for its tables. Real tables compress 2
/// to 25 times (measured on node_exporter, devops and churn segments); the
/// writer stores a table raw rather than exceed the ratio.
pub const MAX_REGION_EXPANSION: u64 = 64;
/// A compressed region inflates to at most this many bytes (the writer
/// stores larger tables raw: their size is then the file's own).
pub const MAX_REGION_RAW_LEN: u64 = 1 << 30;

/// Whether a reader accepts a compressed region of `frame_len` bytes that
/// claims `raw_len` bytes uncompressed.
fn region_expansion_ok(raw_len: u64, frame_len: u64) -> bool {
    raw_len <= MAX_REGION_RAW_LEN && raw_len <= frame_len.saturating_mul(MAX_REGION_EXPANSION)
}

/// The stored form of a region's raw bytes (version 2): zstd when smaller.
pub fn encode_region(raw: &[u8]) -> Vec<u8> {
    if let Ok(frame) = zstd::bulk::compress(raw, REGION_ZSTD_LEVEL) {
        if frame.len() + 9 < raw.len() + 1
            && region_expansion_ok(raw.len() as u64, frame.len() as u64)
        {
            let mut out = Vec::with_capacity(frame.len() + 9);
            out.push(REGION_ZSTD);
            out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
            out.extend_from_slice(&frame);
            return out;
        }
    }
    let mut out = Vec::with_capacity(raw.len() + 1);
    out.push(REGION_RAW);
    out.extend_from_slice(raw);
    out
}

/// A region's raw bytes, and the file offset errors in them are reported at
/// (the region's own offset when it was compressed).
pub struct RawRegion<'a> {
    pub bytes: Cow<'a, [u8]>,
    pub offset: u64,
}

/// The raw bytes of a stored region.
pub fn decode_region<'a>(
    version: u16,
    stored: &'a [u8],
    region_offset: u64,
    name: &'static str,
) -> Result<RawRegion<'a>, (u64, Corruption)> {
    let raw = |bytes, offset| Ok(RawRegion { bytes, offset });
    if version == 1 {
        return raw(Cow::Borrowed(stored), region_offset);
    }
    let bad = |reason: String| {
        (
            region_offset,
            Corruption::BadLayout(format!("{name}: {reason}")),
        )
    };
    match stored.split_first() {
        Some((&REGION_RAW, bytes)) => raw(Cow::Borrowed(bytes), region_offset + 1),
        Some((&REGION_ZSTD, rest)) if rest.len() >= 8 => {
            let (len, frame) = rest.split_at(8);
            let mut len_bytes = [0u8; 8];
            len_bytes.copy_from_slice(len);
            let raw_len = u64::from_le_bytes(len_bytes);
            if !region_expansion_ok(raw_len, frame.len() as u64) {
                return Err(bad(format!(
                    "claims {raw_len} bytes uncompressed from a {}-byte zstd frame, over \
                     {MAX_REGION_EXPANSION} times its size or {MAX_REGION_RAW_LEN} bytes",
                    frame.len()
                )));
            }
            // region_expansion_ok bounds raw_len by 1 GiB: it fits usize.
            let raw = inflate_frame(frame, raw_len as usize).map_err(bad)?;
            if raw.len() as u64 != raw_len {
                return Err(bad(format!(
                    "inflates to {} bytes, not {raw_len}",
                    raw.len()
                )));
            }
            Ok(RawRegion {
                bytes: Cow::Owned(raw),
                offset: region_offset,
            })
        }
        Some((&flag, _)) => Err(bad(format!("unknown storage flag {flag}"))),
        None => Err(bad("empty region".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table-like bytes: compress well, but less than 64 times.
    fn table_like() -> Vec<u8> {
        (0..10_000u32)
            .flat_map(|i| (i.wrapping_mul(2_654_435_761) % 1000).to_le_bytes())
            .collect()
    }

    #[test]
    fn regions_round_trip_and_hostile_ones_are_refused() {
        let raw = table_like();
        let stored = encode_region(&raw);
        assert_eq!(stored[0], REGION_ZSTD, "table-like bytes compress");
        assert!(stored.len() < raw.len() / 2);
        let region = decode_region(2, &stored, 100, "t").unwrap();
        assert_eq!(&*region.bytes, &raw[..]);
        let incompressible: Vec<u8> = (0..64u8).collect();
        assert_eq!(encode_region(&incompressible)[0], REGION_RAW);
        // version 1 regions are raw, no flag byte
        assert_eq!(&*decode_region(1, &raw, 0, "t").unwrap().bytes, &raw[..]);

        let refused = |bytes: &[u8]| decode_region(2, bytes, 7, "t").err().map(|(at, _)| at);
        assert_eq!(refused(&[]), Some(7));
        assert_eq!(refused(&[9, 1, 2]), Some(7), "unknown flag");
        let mut lying = stored.clone();
        lying[1..9].copy_from_slice(&(raw.len() as u64 + 1).to_le_bytes());
        assert_eq!(refused(&lying), Some(7), "length does not match");
        lying[1..9].copy_from_slice(&(raw.len() as u64 - 1).to_le_bytes());
        assert_eq!(refused(&lying), Some(7), "inflates past the stated length");
        lying[1..9].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(refused(&lying), Some(7), "claims too much");
        let mut garbage = stored.clone();
        garbage.truncate(20);
        assert_eq!(refused(&garbage), Some(7), "truncated frame");
        let mut padded = stored.clone();
        padded.push(0);
        assert_eq!(refused(&padded), Some(7), "bytes after the frame");
        let mut two_frames = stored.clone();
        two_frames.extend_from_slice(&stored[9..]);
        assert_eq!(refused(&two_frames), Some(7), "a second frame");
    }

    #[test]
    fn tables_that_compress_beyond_the_reader_limit_are_stored_raw() {
        // 1 MiB of one repeated byte pattern compresses thousands of times.
        let raw: Vec<u8> = (0..1u32 << 18)
            .flat_map(|i| (i % 7).to_le_bytes())
            .collect();
        let stored = encode_region(&raw);
        assert_eq!(stored[0], REGION_RAW);
        assert_eq!(&*decode_region(2, &stored, 0, "t").unwrap().bytes, &raw[..]);

        // The same table compressed anyway (an older writer, or a hostile
        // one) is refused before it is inflated.
        let frame = zstd::bulk::compress(&raw, 1).unwrap();
        let mut hostile = vec![REGION_ZSTD];
        hostile.extend_from_slice(&(raw.len() as u64).to_le_bytes());
        hostile.extend_from_slice(&frame);
        let (at, kind) = decode_region(2, &hostile, 5, "t").err().unwrap();
        assert_eq!(at, 5);
        assert!(kind.to_string().contains("over 64 times"), "{kind}");
    }
}
