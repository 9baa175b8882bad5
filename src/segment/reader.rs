//! Opens a segment file and reads series and samples from it.
//!
//! Invariants:
//! - [`Segment::open`] validates the header, footer, region layout and the
//!   crc32 of every table before it returns, and checks every count and
//!   offset against the file, so later reads index only checked ranges;
//! - chunk bytes are checked (crc32, then decoded and compared with their
//!   reference) each time they are read; damage is an error naming the
//!   file, offset and series, never garbage samples;
//! - no allocation is sized from a count that was not first bounded by the
//!   bytes that must hold it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{
    check_header, decode_region, stored_footer_crc, Cursor, Footer, RegionRef, CHUNK_CRC_LEN,
    CHUNK_REF_LEN, FOOTER_LEN, HEADER_LEN,
};
use super::source::ByteSource;
use super::ChunkRef;
use crate::codec::{self, DecodedChunk, CHUNK_HEADER_LEN, MAX_CHUNK_SAMPLES};
use crate::error::{Corruption, CorruptionError, Error, Result};
use crate::index::{self, Matcher, Postings};
use crate::series::{Label, Sample, SeriesKey, TimeRange};

/// An open, validated segment file.
pub struct Segment {
    path: PathBuf,
    source: ByteSource,
    footer: Footer,
    /// The footer's stored crc32 (validated at open).
    footer_crc: u32,
    strings: Vec<Arc<str>>,
    keys: Vec<SeriesKey>,
    /// Series `i` owns `chunk_refs[chunk_starts[i]..chunk_starts[i + 1]]`.
    chunk_starts: Vec<usize>,
    chunk_refs: Vec<ChunkRef>,
    /// Sorted by (name, value); each names a range of `posting_ids`.
    postings: Vec<PostingsEntry>,
    posting_ids: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct PostingsEntry {
    name_id: u32,
    value_id: u32,
    start: usize,
    end: usize,
}

/// The result of reading every chunk of a segment.
#[derive(Debug)]
pub struct VerifyReport {
    pub series_count: usize,
    pub chunk_count: usize,
    pub sample_count: u64,
    /// Every damaged chunk found, with its location.
    pub damage: Vec<Error>,
}

impl Segment {
    /// Opens and validates a segment file, mapping it read-only.
    ///
    /// Only for files strata published: sealed, fsynced and never modified
    /// again. The length is checked against the footer at open (the
    /// footer's regions must end exactly where the footer starts), but a
    /// file truncated by another process *after* it was mapped makes the
    /// next read of a lost page raise SIGBUS, which no check can prevent.
    /// Tools reading single untrusted files use [`Self::open_in_memory`].
    pub fn open(path: impl AsRef<Path>) -> Result<Segment> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let source = ByteSource::map(&file).map_err(|e| Error::io("mmap", path, e))?;
        Self::parse(path.to_path_buf(), source)
    }

    /// Reads a whole segment file into memory and validates it: no mmap,
    /// so a file changed or truncated by another process afterwards cannot
    /// fault the reader. Costs the file's size in heap.
    pub fn open_in_memory(path: impl AsRef<Path>) -> Result<Segment> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        Self::from_bytes(path, bytes)
    }

    /// Validates a segment held in memory; `path` names it in errors.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Segment> {
        Self::parse(path.into(), ByteSource::Heap(bytes))
    }

    fn parse(path: PathBuf, source: ByteSource) -> Result<Segment> {
        let corrupt = |(offset, kind): (u64, Corruption)| -> Error {
            CorruptionError {
                path: path.clone(),
                offset,
                series: None,
                kind,
            }
            .into()
        };
        let bytes = source.as_bytes();
        let footer = Footer::decode(bytes).map_err(corrupt)?;
        let version = check_header(bytes).map_err(corrupt)?;
        if version != footer.version {
            return Err(corrupt((
                0,
                Corruption::BadLayout(format!(
                    "header says version {version}, footer says {}",
                    footer.version
                )),
            )));
        }
        check_layout(&footer, bytes.len() as u64).map_err(corrupt)?;
        let region = |r: RegionRef, name: &'static str| {
            // check_layout proved the region lies inside the file.
            let slice = &bytes[r.offset as usize..r.end() as usize];
            let computed = crc32fast::hash(slice);
            if computed != r.crc {
                return Err((
                    r.offset,
                    Corruption::ChecksumMismatch {
                        region: name,
                        stored: r.crc,
                        computed,
                    },
                ));
            }
            decode_region(version, slice, r.offset, name)
        };
        // One table inflated at a time, each dropped once parsed, so at
        // most one raw table is in memory next to the parsed ones.
        let strings = {
            let raw = region(footer.strings, "string table").map_err(corrupt)?;
            parse_strings(&raw.bytes, raw.offset).map_err(corrupt)?
        };
        let tables = {
            let raw = region(footer.series, "series table").map_err(corrupt)?;
            parse_series(&raw.bytes, raw.offset, &footer, &strings).map_err(corrupt)?
        };
        let (postings, posting_ids) = {
            let raw = region(footer.postings, "postings").map_err(corrupt)?;
            parse_postings(&raw.bytes, raw.offset, &strings, &tables.keys).map_err(corrupt)?
        };
        let footer_crc = stored_footer_crc(bytes);
        Ok(Segment {
            path,
            footer,
            footer_crc,
            strings,
            keys: tables.keys,
            chunk_starts: tables.chunk_starts,
            chunk_refs: tables.chunk_refs,
            postings,
            posting_ids,
            source,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file in bytes (checked against the footer at open).
    pub fn file_len(&self) -> u64 {
        self.source.as_bytes().len() as u64
    }

    /// The crc32 stored in the footer (bytes 96..100 of the footer),
    /// validated at open. It covers the footer's region crc32s and totals,
    /// so it identifies the tables; with [`Self::file_len`] it pins a
    /// segment (also returned by [`super::SegmentWriter::finish`]).
    pub fn footer_crc(&self) -> u32 {
        self.footer_crc
    }

    /// Totals and time range recorded in the footer (validated at open).
    #[doc(hidden)]
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    pub fn series_count(&self) -> usize {
        self.keys.len()
    }

    /// The key of series `series_id` (ids are 0..series_count, in key order).
    pub fn series_key(&self, series_id: u32) -> Option<&SeriesKey> {
        self.keys.get(series_id as usize)
    }

    /// Every series key, indexed by series id (sorted).
    pub fn series_keys(&self) -> &[SeriesKey] {
        &self.keys
    }

    /// The id of a series, if the segment holds it.
    pub fn find_series(&self, key: &SeriesKey) -> Option<u32> {
        self.keys.binary_search(key).ok().map(|i| i as u32)
    }

    /// Ids of the series that satisfy every matcher, sorted.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<u32> {
        index::select(self, matchers)
    }

    /// Every label name, sorted.
    pub fn label_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .postings
            .iter()
            .map(|p| &*self.strings[p.name_id as usize])
            .collect();
        names.dedup();
        names
    }

    /// Every value of label `name`, sorted.
    pub fn label_values(&self, name: &str) -> Vec<&str> {
        self.entries_of(name)
            .iter()
            .map(|p| &*self.strings[p.value_id as usize])
            .collect()
    }

    /// The chunk references of a series, in time order.
    pub fn chunk_refs(&self, series_id: u32) -> &[ChunkRef] {
        let i = series_id as usize;
        match (self.chunk_starts.get(i), self.chunk_starts.get(i + 1)) {
            (Some(&start), Some(&end)) => &self.chunk_refs[start..end],
            _ => &[],
        }
    }

    /// Iterates a series' samples within `range` in time order, decoding
    /// only the chunks that overlap it.
    pub fn samples(&self, series_id: u32, range: TimeRange) -> SampleIter<'_> {
        let refs = self.chunk_refs(series_id);
        let first = refs.partition_point(|c| c.max_time_ms < range.min_time_ms);
        SampleIter {
            segment: self,
            series_id,
            chunks: &refs[first..],
            range,
            decoded: DecodedChunk::default(),
            pos: 0,
            end: 0,
        }
    }

    /// Collects [`Self::samples`].
    pub fn read_samples(&self, series_id: u32, range: TimeRange) -> Result<Vec<Sample>> {
        self.samples(series_id, range).collect()
    }

    /// Reads, checks and decodes one chunk of a series into `out`.
    #[doc(hidden)]
    pub fn read_chunk(
        &self,
        series_id: u32,
        chunk: &ChunkRef,
        out: &mut DecodedChunk,
    ) -> Result<()> {
        out.clear();
        self.read_chunk_append(series_id, chunk, &mut out.timestamps, &mut out.values)
    }

    /// Reads, checks and decodes one chunk of a series, appending its
    /// samples to two columns. On error the columns are left as they were.
    pub fn read_chunk_append(
        &self,
        series_id: u32,
        chunk: &ChunkRef,
        timestamps: &mut Vec<i64>,
        values: &mut Vec<f64>,
    ) -> Result<()> {
        let corrupt = |offset: u64, kind: Corruption| -> Error {
            CorruptionError {
                path: self.path.clone(),
                offset,
                series: self.series_key(series_id).map(ToString::to_string),
                kind,
            }
            .into()
        };
        let start = chunk.offset as usize;
        let end = start + chunk.len as usize;
        // Bounds were validated at open; `get` keeps a bad ref from panicking.
        let (Some(bytes), Some(crc)) = (
            self.source.as_bytes().get(start..end),
            self.source.as_bytes().get(end..end + CHUNK_CRC_LEN),
        ) else {
            return Err(corrupt(
                chunk.offset,
                Corruption::BadLayout("chunk reference outside the chunk area".into()),
            ));
        };
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let computed = crc32fast::hash(bytes);
        if stored != computed {
            return Err(corrupt(
                chunk.offset,
                Corruption::ChecksumMismatch {
                    region: "chunk",
                    stored,
                    computed,
                },
            ));
        }
        let (ts_start, value_start) = (timestamps.len(), values.len());
        let header = codec::decode_chunk_append(bytes, timestamps, values)
            .map_err(|e| corrupt(chunk.offset, e.into()))?;
        let matches_ref = header.sample_count == usize::from(chunk.sample_count)
            && header.timestamp_encoding == chunk.timestamp_encoding
            && header.value_encoding == chunk.value_encoding
            && timestamps.get(ts_start) == Some(&chunk.min_time_ms)
            && timestamps.last() == Some(&chunk.max_time_ms);
        if !matches_ref {
            timestamps.truncate(ts_start);
            values.truncate(value_start);
            return Err(corrupt(
                chunk.offset,
                Corruption::BadLayout(
                    "chunk contents disagree with its series-table reference".into(),
                ),
            ));
        }
        Ok(())
    }

    /// Reads every chunk, collecting all damage instead of stopping at the
    /// first.
    pub fn verify(&self) -> VerifyReport {
        let mut decoded = DecodedChunk::default();
        let mut damage = Vec::new();
        for series_id in 0..self.keys.len() as u32 {
            for chunk in self.chunk_refs(series_id) {
                if let Err(e) = self.read_chunk(series_id, chunk, &mut decoded) {
                    damage.push(e);
                }
            }
        }
        VerifyReport {
            series_count: self.keys.len(),
            chunk_count: self.chunk_refs.len(),
            sample_count: self.footer.sample_count,
            damage,
        }
    }

    fn entries_of(&self, name: &str) -> &[PostingsEntry] {
        let name_of = |p: &PostingsEntry| &*self.strings[p.name_id as usize];
        let start = self.postings.partition_point(|p| name_of(p) < name);
        let end = self.postings.partition_point(|p| name_of(p) <= name);
        &self.postings[start..end]
    }
}

impl Postings for Segment {
    fn all_series(&self) -> Vec<u32> {
        (0..self.keys.len() as u32).collect()
    }

    fn postings(&self, name: &str, value: &str) -> Option<&[u32]> {
        let entries = self.entries_of(name);
        let i = entries
            .binary_search_by(|p| (*self.strings[p.value_id as usize]).cmp(value))
            .ok()?;
        Some(&self.posting_ids[entries[i].start..entries[i].end])
    }

    fn for_each_value(&self, name: &str, visit: &mut dyn FnMut(&str, &[u32])) {
        for entry in self.entries_of(name) {
            visit(
                &self.strings[entry.value_id as usize],
                &self.posting_ids[entry.start..entry.end],
            );
        }
    }
}

/// Samples of one series in a time range; see [`Segment::samples`].
pub struct SampleIter<'a> {
    segment: &'a Segment,
    series_id: u32,
    /// Chunks not yet decoded, starting with the first that may overlap.
    chunks: &'a [ChunkRef],
    range: TimeRange,
    decoded: DecodedChunk,
    pos: usize,
    end: usize,
}

impl Iterator for SampleIter<'_> {
    type Item = Result<Sample>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.pos < self.end {
                let sample = Sample::new(
                    self.decoded.timestamps[self.pos],
                    self.decoded.values[self.pos],
                );
                self.pos += 1;
                return Some(Ok(sample));
            }
            let (chunk, rest) = self.chunks.split_first()?;
            if chunk.min_time_ms > self.range.max_time_ms {
                self.chunks = &[];
                return None;
            }
            self.chunks = rest;
            if let Err(e) = self
                .segment
                .read_chunk(self.series_id, chunk, &mut self.decoded)
            {
                self.chunks = &[];
                return Some(Err(e));
            }
            let timestamps = &self.decoded.timestamps;
            self.pos = timestamps.partition_point(|&t| t < self.range.min_time_ms);
            self.end = timestamps.partition_point(|&t| t <= self.range.max_time_ms);
        }
    }
}

/// Regions must be contiguous, in order, between header and footer.
fn check_layout(footer: &Footer, file_len: u64) -> Result<(), (u64, Corruption)> {
    let footer_start = file_len - FOOTER_LEN as u64;
    let layout_ok = footer.strings.offset >= HEADER_LEN as u64
        && footer.series.offset == footer.strings.end()
        && footer.postings.offset == footer.series.end()
        && footer.postings.end() == footer_start;
    if layout_ok {
        Ok(())
    } else {
        Err((
            footer_start,
            Corruption::BadLayout(format!(
                "footer regions strings {:?}, series {:?}, postings {:?} do not tile the file ({} bytes)",
                footer.strings, footer.series, footer.postings, file_len
            )),
        ))
    }
}

fn bad(offset: u64, message: String) -> (u64, Corruption) {
    (offset, Corruption::BadLayout(message))
}

/// Reads a u32 count whose entries need at least `min_entry_len` bytes
/// each, rejecting counts the remaining bytes cannot hold.
fn bounded_count(
    cursor: &mut Cursor<'_>,
    min_entry_len: usize,
) -> Result<usize, (u64, Corruption)> {
    let offset = cursor.file_offset();
    let count = cursor.u32().map_err(|e| (offset, e))? as usize;
    if count.saturating_mul(min_entry_len) > cursor.remaining() {
        return Err(bad(
            offset,
            format!(
                "count {count} needs at least {} bytes, {} remain",
                count.saturating_mul(min_entry_len),
                cursor.remaining()
            ),
        ));
    }
    Ok(count)
}

fn parse_strings(bytes: &[u8], base: u64) -> Result<Vec<Arc<str>>, (u64, Corruption)> {
    let mut cursor = Cursor::new(bytes, base, "string table");
    let count = bounded_count(&mut cursor, 4)?;
    let ends_offset = cursor.file_offset();
    // bounded_count proved the end offsets are present.
    let ends = cursor.bytes(count * 4).map_err(|e| (ends_offset, e))?;
    let data_offset = cursor.file_offset();
    let data = cursor
        .bytes(cursor.remaining())
        .map_err(|e| (data_offset, e))?;
    let mut strings: Vec<Arc<str>> = Vec::with_capacity(count);
    let mut start = 0;
    for (i, end) in ends.chunks_exact(4).enumerate() {
        let end = u32::from_le_bytes([end[0], end[1], end[2], end[3]]) as usize;
        let offset = data_offset + start as u64;
        let raw = data.get(start..end).ok_or_else(|| {
            bad(
                offset,
                format!("string {i} ends at {end}, outside the table"),
            )
        })?;
        let s = std::str::from_utf8(raw)
            .map_err(|_| bad(offset, format!("string {i} is not valid UTF-8")))?;
        if strings.last().is_some_and(|previous| &**previous >= s) {
            return Err(bad(offset, format!("string {i} is out of order")));
        }
        strings.push(Arc::from(s));
        start = end;
    }
    if start != data.len() {
        return Err(bad(data_offset, "string table has unused bytes".into()));
    }
    Ok(strings)
}

struct SeriesTables {
    keys: Vec<SeriesKey>,
    chunk_starts: Vec<usize>,
    chunk_refs: Vec<ChunkRef>,
}

fn parse_series(
    bytes: &[u8],
    base: u64,
    footer: &Footer,
    strings: &[Arc<str>],
) -> Result<SeriesTables, (u64, Corruption)> {
    let mut cursor = Cursor::new(bytes, base, "series table");
    // Smallest series entry: label count, one label, chunk count, one ref.
    let count = bounded_count(&mut cursor, 2 + 8 + 4 + CHUNK_REF_LEN)?;
    if count != footer.series_count as usize {
        return Err(bad(
            footer.series.offset,
            format!(
                "series table holds {count} series, footer says {}",
                footer.series_count
            ),
        ));
    }
    let chunk_area_end = footer.strings.offset;
    let string = |id: u32, offset: u64| {
        strings
            .get(id as usize)
            .ok_or_else(|| bad(offset, format!("string id {id} out of range")))
    };
    let mut keys: Vec<SeriesKey> = Vec::with_capacity(count);
    let mut chunk_starts = Vec::with_capacity(count + 1);
    let mut chunk_refs = Vec::new();
    let mut sample_count = 0u64;
    let mut min_time_ms = i64::MAX;
    let mut max_time_ms = i64::MIN;
    chunk_starts.push(0);
    for series_id in 0..count {
        let entry_offset = cursor.file_offset();
        let at = |e: Corruption| (entry_offset, e);
        let label_count = usize::from(cursor.u16().map_err(at)?);
        if label_count.saturating_mul(8) > cursor.remaining() {
            return Err(bad(
                entry_offset,
                format!("label count {label_count} overruns the table"),
            ));
        }
        let mut labels = Vec::with_capacity(label_count);
        for _ in 0..label_count {
            let name = string(cursor.u32().map_err(at)?, entry_offset)?;
            let value = string(cursor.u32().map_err(at)?, entry_offset)?;
            labels.push(Label {
                name: Arc::clone(name),
                value: Arc::clone(value),
            });
        }
        let key = SeriesKey::from_labels(labels.clone()).map_err(|e| {
            bad(
                entry_offset,
                format!("series {series_id} has an invalid label set: {e}"),
            )
        })?;
        if key.labels() != labels.as_slice() {
            return Err(bad(
                entry_offset,
                format!("series {series_id} labels are not in canonical order"),
            ));
        }
        if keys.last().is_some_and(|previous| previous >= &key) {
            return Err(bad(
                entry_offset,
                format!("series {series_id} ({key}) is out of order"),
            ));
        }
        let chunks_offset = cursor.file_offset();
        let chunk_count = cursor.u32().map_err(|e| (chunks_offset, e))? as usize;
        if chunk_count == 0 || chunk_count.saturating_mul(CHUNK_REF_LEN) > cursor.remaining() {
            return Err(bad(
                chunks_offset,
                format!("series {key}: bad chunk count {chunk_count}"),
            ));
        }
        let mut previous_max: Option<i64> = None;
        for _ in 0..chunk_count {
            let ref_offset = cursor.file_offset();
            let chunk = ChunkRef::decode(&mut cursor).map_err(|e| (ref_offset, e))?;
            let in_area = chunk.offset >= HEADER_LEN as u64
                && chunk.len as usize >= CHUNK_HEADER_LEN
                && chunk
                    .offset
                    .saturating_add(u64::from(chunk.len) + CHUNK_CRC_LEN as u64)
                    <= chunk_area_end;
            let count_ok = (1..=MAX_CHUNK_SAMPLES).contains(&usize::from(chunk.sample_count));
            let times_ok = chunk.min_time_ms <= chunk.max_time_ms
                && (chunk.sample_count != 1 || chunk.min_time_ms == chunk.max_time_ms)
                && previous_max.is_none_or(|max| max < chunk.min_time_ms);
            if !(in_area && count_ok && times_ok) {
                return Err(bad(
                    ref_offset,
                    format!("series {key}: invalid chunk reference {chunk:?}"),
                ));
            }
            previous_max = Some(chunk.max_time_ms);
            sample_count += u64::from(chunk.sample_count);
            min_time_ms = min_time_ms.min(chunk.min_time_ms);
            max_time_ms = max_time_ms.max(chunk.max_time_ms);
            chunk_refs.push(chunk);
        }
        chunk_starts.push(chunk_refs.len());
        keys.push(key);
    }
    let totals_ok = chunk_refs.len() == footer.chunk_count as usize
        && sample_count == footer.sample_count
        && min_time_ms == footer.min_time_ms
        && max_time_ms == footer.max_time_ms;
    if !totals_ok {
        return Err(bad(
            footer.series.offset,
            "series table totals (chunks, samples, time range) disagree with the footer".into(),
        ));
    }
    if cursor.remaining() != 0 {
        return Err(bad(
            cursor.file_offset(),
            "series table has unused bytes".into(),
        ));
    }
    Ok(SeriesTables {
        keys,
        chunk_starts,
        chunk_refs,
    })
}

fn parse_postings(
    bytes: &[u8],
    base: u64,
    strings: &[Arc<str>],
    keys: &[SeriesKey],
) -> Result<(Vec<PostingsEntry>, Vec<u32>), (u64, Corruption)> {
    let mut cursor = Cursor::new(bytes, base, "postings");
    let count = bounded_count(&mut cursor, 16)?;
    let mut entries: Vec<PostingsEntry> = Vec::with_capacity(count);
    let mut ids = Vec::new();
    for _ in 0..count {
        let offset = cursor.file_offset();
        let at = |e: Corruption| (offset, e);
        let name_id = cursor.u32().map_err(at)?;
        let value_id = cursor.u32().map_err(at)?;
        let (Some(name), Some(value)) = (
            strings.get(name_id as usize),
            strings.get(value_id as usize),
        ) else {
            return Err(bad(
                offset,
                "postings entry names a string id out of range".into(),
            ));
        };
        if entries
            .last()
            .is_some_and(|p| (p.name_id, p.value_id) >= (name_id, value_id))
        {
            return Err(bad(
                offset,
                format!("postings entry {name}={value:?} is out of order"),
            ));
        }
        let n = cursor.u32().map_err(at)? as usize;
        if n == 0 || n.saturating_mul(4) > cursor.remaining() {
            return Err(bad(
                offset,
                format!("postings {name}={value:?}: bad length {n}"),
            ));
        }
        let start = ids.len();
        for _ in 0..n {
            let id = cursor.u32().map_err(at)?;
            let holds_label = keys.get(id as usize).and_then(|k| k.get(name)) == Some(&**value);
            if !holds_label || ids[start..].last().is_some_and(|&previous| previous >= id) {
                return Err(bad(
                    offset,
                    format!("postings {name}={value:?}: series id {id} is out of order or lacks the label"),
                ));
            }
            ids.push(id);
        }
        entries.push(PostingsEntry {
            name_id,
            value_id,
            start,
            end: ids.len(),
        });
    }
    let label_total: usize = keys.iter().map(|k| k.labels().len()).sum();
    if ids.len() != label_total || cursor.remaining() != 0 {
        return Err(bad(
            base,
            format!(
                "postings hold {} series ids for {label_total} labels",
                ids.len()
            ),
        ));
    }
    Ok((entries, ids))
}
