//! Writes one immutable segment file.
//!
//! Invariants:
//! - the file appears under its final name only when complete: bytes go to
//!   `<name>.tmp`, which is fsynced, renamed, and the directory fsynced;
//!   dropping an unfinished writer removes the temporary file;
//! - chunk records stream to disk as series are added; only the series
//!   metadata (keys and chunk references) is held in memory until
//!   [`SegmentWriter::finish`] sorts it and writes the tables.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::format::{
    encode_header, encode_region, stored_footer_crc, Footer, RegionRef, FORMAT_VERSION, HEADER_LEN,
};
use super::ChunkRef;
use crate::codec::{self, ChunkHeader, SEALED_CHUNK_SAMPLES};
use crate::error::{Error, InputError, Result};
use crate::series::{Sample, SeriesKey};

/// Builds a segment file from series and their sorted samples.
pub struct SegmentWriter {
    final_path: PathBuf,
    temp_path: PathBuf,
    out: Option<BufWriter<File>>,
    /// File offset of the next byte written.
    offset: u64,
    /// crc32 of every byte written so far.
    file_crc: crc32fast::Hasher,
    series: Vec<PendingSeries>,
    chunk_bytes: Vec<u8>,
    timestamps: Vec<i64>,
    values: Vec<f64>,
}

struct PendingSeries {
    key: SeriesKey,
    chunks: Vec<ChunkRef>,
}

/// What a finished segment holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    pub path: PathBuf,
    /// With `footer_crc`, what a manifest pins: [`crate::Segment::file_len`]
    /// and [`crate::Segment::footer_crc`] of the file reopened.
    pub file_len: u64,
    /// The crc32 stored in the footer.
    pub footer_crc: u32,
    /// crc32 of the whole file, computed while writing it.
    pub file_crc: u32,
    pub series_count: u32,
    pub chunk_count: u32,
    pub sample_count: u64,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
}

impl SegmentWriter {
    /// Starts a segment that will be published at `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let final_path = path.as_ref().to_path_buf();
        let mut temp_name = final_path.as_os_str().to_owned();
        temp_name.push(".tmp");
        let temp_path = PathBuf::from(temp_name);
        let file = File::create(&temp_path).map_err(|e| Error::io("create", &temp_path, e))?;
        let mut writer = Self {
            final_path,
            temp_path,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            offset: 0,
            file_crc: crc32fast::Hasher::new(),
            series: Vec::new(),
            chunk_bytes: Vec::new(),
            timestamps: Vec::new(),
            values: Vec::new(),
        };
        writer.write(&encode_header())?;
        Ok(writer)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let out = self.out.as_mut().ok_or_else(|| {
            Error::io(
                "write",
                &self.temp_path,
                std::io::Error::other("segment writer already finished"),
            )
        })?;
        crate::fault::write_all("segment.write", out, bytes)
            .map_err(|e| Error::io("write", &self.temp_path, e))?;
        self.offset += bytes.len() as u64;
        self.file_crc.update(bytes);
        Ok(())
    }

    /// Adds a series with its samples, which must be non-empty and strictly
    /// increasing in time. Each series may be added once.
    pub fn add_series(&mut self, key: &SeriesKey, samples: &[Sample]) -> Result<()> {
        if samples.is_empty() {
            return Err(InputError::EmptySeries {
                series: key.to_string(),
            }
            .into());
        }
        if let Some(index) = samples
            .windows(2)
            .position(|pair| pair[1].timestamp_ms <= pair[0].timestamp_ms)
        {
            return Err(InputError::UnsortedSamples {
                series: key.to_string(),
                index: index + 1,
                previous_ms: samples[index].timestamp_ms,
                timestamp_ms: samples[index + 1].timestamp_ms,
            }
            .into());
        }
        let mut chunks = Vec::with_capacity(samples.len().div_ceil(SEALED_CHUNK_SAMPLES));
        for part in samples.chunks(SEALED_CHUNK_SAMPLES) {
            self.timestamps.clear();
            self.values.clear();
            self.timestamps.extend(part.iter().map(|s| s.timestamp_ms));
            self.values.extend(part.iter().map(|s| s.value));
            self.chunk_bytes.clear();
            // Sorted, non-empty and bounded: checked above.
            let header =
                codec::encode_chunk_sealed(&self.timestamps, &self.values, &mut self.chunk_bytes)
                    .map_err(|e| InputError::FormatLimit(format!("series {key}: {e}")))?;
            let chunk = std::mem::take(&mut self.chunk_bytes);
            let result = self.write_chunk(&chunk, header, part);
            self.chunk_bytes = chunk;
            chunks.push(result?);
        }
        self.series.push(PendingSeries {
            key: key.clone(),
            chunks,
        });
        Ok(())
    }

    fn write_chunk(
        &mut self,
        chunk: &[u8],
        header: ChunkHeader,
        samples: &[Sample],
    ) -> Result<ChunkRef> {
        let len = u32::try_from(chunk.len())
            .map_err(|_| InputError::FormatLimit("chunk larger than 4 GiB".into()))?;
        let chunk_ref = ChunkRef {
            min_time_ms: samples[0].timestamp_ms,
            max_time_ms: samples[samples.len() - 1].timestamp_ms,
            offset: self.offset,
            len,
            sample_count: header.sample_count as u16,
            timestamp_encoding: header.timestamp_encoding,
            value_encoding: header.value_encoding,
        };
        self.write(chunk)?;
        self.write(&crc32fast::hash(chunk).to_le_bytes())?;
        Ok(chunk_ref)
    }

    /// Writes the tables and footer, makes the file durable and publishes
    /// it under its final name.
    pub fn finish(mut self) -> Result<SegmentSummary> {
        let mut series = std::mem::take(&mut self.series);
        series.sort_by(|a, b| a.key.cmp(&b.key));
        if let Some(pair) = series.windows(2).find(|pair| pair[0].key == pair[1].key) {
            return Err(InputError::DuplicateSeries {
                series: pair[0].key.to_string(),
            }
            .into());
        }
        let limit = |what: &str| InputError::FormatLimit(what.to_owned());
        let series_count = u32::try_from(series.len()).map_err(|_| limit("over 2^32 series"))?;
        let chunk_count = u32::try_from(series.iter().map(|s| s.chunks.len()).sum::<usize>())
            .map_err(|_| limit("over 2^32 chunks"))?;

        // String table: every label name and value, sorted and unique, so a
        // string id order is the string order.
        let strings: Vec<&str> = series
            .iter()
            .flat_map(|s| s.key.labels())
            .flat_map(|l| [&*l.name, &*l.value])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let string_id = |s: &str| -> u32 {
            // Every label string is in `strings`, so the search succeeds.
            strings.binary_search(&s).unwrap_or_default() as u32
        };
        let mut strings_region = Vec::new();
        strings_region.extend_from_slice(
            &u32::try_from(strings.len())
                .map_err(|_| limit("over 2^32 strings"))?
                .to_le_bytes(),
        );
        let mut end = 0u64;
        for s in &strings {
            end += s.len() as u64;
            let end32 = u32::try_from(end).map_err(|_| limit("string table over 4 GiB"))?;
            strings_region.extend_from_slice(&end32.to_le_bytes());
        }
        for s in &strings {
            strings_region.extend_from_slice(s.as_bytes());
        }

        // Series table and postings.
        let mut series_region = Vec::new();
        series_region.extend_from_slice(&series_count.to_le_bytes());
        let mut postings: BTreeMap<(u32, u32), Vec<u32>> = BTreeMap::new();
        let mut sample_count = 0u64;
        let mut min_time_ms = i64::MAX;
        let mut max_time_ms = i64::MIN;
        for (series_id, entry) in series.iter().enumerate() {
            let labels = entry.key.labels();
            let label_count =
                u16::try_from(labels.len()).map_err(|_| limit("over 65535 labels in a series"))?;
            series_region.extend_from_slice(&label_count.to_le_bytes());
            for label in labels {
                let pair = (string_id(&label.name), string_id(&label.value));
                series_region.extend_from_slice(&pair.0.to_le_bytes());
                series_region.extend_from_slice(&pair.1.to_le_bytes());
                postings.entry(pair).or_default().push(series_id as u32);
            }
            series_region.extend_from_slice(&(entry.chunks.len() as u32).to_le_bytes());
            for chunk in &entry.chunks {
                chunk.encode(&mut series_region);
                sample_count += u64::from(chunk.sample_count);
                min_time_ms = min_time_ms.min(chunk.min_time_ms);
                max_time_ms = max_time_ms.max(chunk.max_time_ms);
            }
        }
        let mut postings_region = Vec::new();
        postings_region.extend_from_slice(&(postings.len() as u32).to_le_bytes());
        for ((name_id, value_id), ids) in &postings {
            postings_region.extend_from_slice(&name_id.to_le_bytes());
            postings_region.extend_from_slice(&value_id.to_le_bytes());
            postings_region.extend_from_slice(&(ids.len() as u32).to_le_bytes());
            for id in ids {
                postings_region.extend_from_slice(&id.to_le_bytes());
            }
        }

        let strings_ref = self.write_region(&strings_region)?;
        let series_ref = self.write_region(&series_region)?;
        let postings_ref = self.write_region(&postings_region)?;
        let footer = Footer {
            strings: strings_ref,
            series: series_ref,
            postings: postings_ref,
            series_count,
            chunk_count,
            sample_count,
            min_time_ms,
            max_time_ms,
            version: FORMAT_VERSION,
        };
        let footer_bytes = footer.encode();
        self.write(&footer_bytes)?;
        self.publish()?;
        debug_assert!(self.offset >= HEADER_LEN as u64);
        Ok(SegmentSummary {
            path: self.final_path.clone(),
            file_len: self.offset,
            footer_crc: stored_footer_crc(&footer_bytes),
            file_crc: self.file_crc.clone().finalize(),
            series_count,
            chunk_count,
            sample_count,
            min_time_ms,
            max_time_ms,
        })
    }

    fn write_region(&mut self, raw: &[u8]) -> Result<RegionRef> {
        let stored = encode_region(raw);
        let region = RegionRef {
            offset: self.offset,
            len: stored.len() as u64,
            crc: crc32fast::hash(&stored),
        };
        self.write(&stored)?;
        Ok(region)
    }

    /// fsync the file, rename it into place, fsync the directory.
    fn publish(&mut self) -> Result<()> {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let renamed = out
            .into_inner()
            .map_err(|e| Error::io("write", &self.temp_path, e.into_error()))
            .and_then(|file| {
                crate::fault::check("segment.fsync")
                    .and_then(|()| file.sync_all())
                    .map_err(|e| Error::io("fsync", &self.temp_path, e))
            })
            .and_then(|()| {
                crate::fault::check("segment.rename")
                    .and_then(|()| fs::rename(&self.temp_path, &self.final_path))
                    .map_err(|e| Error::io("rename into place", &self.final_path, e))
            });
        if let Err(error) = renamed {
            // Never read; best effort (a leftover is removed at open).
            let _ = fs::remove_file(&self.temp_path);
            return Err(error);
        }
        sync_parent_dir(&self.final_path)
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            // Unfinished: the temporary file must not linger. Best effort;
            // a leftover *.tmp is never read as a segment.
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

/// fsync a file's directory so that a rename in it is durable.
pub fn sync_parent_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let handle = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    crate::fault::check("dir.fsync")
        .and_then(|()| handle.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}
