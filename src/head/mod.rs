//! The in-memory head: recent samples of every series, compressed as they
//! arrive, until a flush writes them to segment files.
//!
//! Each series ([`MemSeries`]) holds its data per time partition
//! (`[start, start + partition_ms)`): sealed chunks of up to
//! [`HEAD_CHUNK_SAMPLES`] samples, one open chunk fed by streaming Gorilla
//! encoders, and an out-of-order buffer for samples at or before the
//! partition's newest timestamp.
//!
//! Invariants:
//! - chunk samples of a partition are strictly increasing in time;
//!   everything else goes to the out-of-order buffer, in arrival order, and
//!   reads and flushes merge it in by [`SeriesColumns::merge_run`] (a
//!   repeated timestamp: the last write wins);
//! - [`MemSeries::insert`] never fails: validation happens before the WAL
//!   append, and replaying the WAL must rebuild exactly the same state;
//! - a series' data is only touched under its own lock, so a reader copies
//!   a consistent state of it, never a half-written chunk.
//!
//! Series garbage collection ([`Head::idle_series`], [`Head::drop_idle`],
//! then [`Head::forget`]): a series with no partition left and no sample
//! since a given time is removed from the key map and the label index.
//! Invariants:
//! - at most one live (not dropped) [`MemSeries`] per key, and it is the
//!   one in the key map;
//! - a series is marked dropped under its own lock, only while it holds no
//!   data, and nothing is ever inserted into a dropped series: a writer
//!   that finds the mark after locking goes back to the key map, which
//!   gives (or creates) the live series of the key;
//! - series ids are never reused within a head (they are unique per WAL
//!   writer session, which replay relies on); the id-to-series map holds
//!   only live series, so it follows the live series count.

mod index;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use index::HeadIndex;

use crate::codec::{
    self, ChunkHeader, ColumnEncoder, DeltaOfDeltaEncoder, TimestampEncoding, ValueEncoding,
    XorEncoder, HEAD_CHUNK_SAMPLES,
};
use crate::error::CorruptionError;
use crate::query::source::SeriesColumns;
use crate::series::{Sample, SeriesKey, TimeRange};

/// Marks a series not yet defined in any WAL file.
pub const NO_WAL_FILE: u64 = u64::MAX;

/// Distinguishes heads of different `Db` instances in series handles.
static NEXT_HEAD_ID: AtomicU64 = AtomicU64::new(1);

/// All series of the head and their label index.
pub struct Head {
    head_id: u64,
    partition_ms: i64,
    series: RwLock<HashMap<Arc<SeriesKey>, Arc<MemSeries>>>,
    index: RwLock<HeadIndex>,
    /// The id of the next series created; `u32::MAX` once every id has
    /// been used (ids are never reused, see the module invariants).
    next_series_id: AtomicU32,
}

/// One series in the head.
pub struct MemSeries {
    /// Unique in this head; also the series id in WAL records.
    pub series_id: u32,
    pub head_id: u64,
    /// Shared with the head's key map: one copy of the labels per series.
    pub key: Arc<SeriesKey>,
    /// The WAL file that holds this series' definition record.
    pub wal_file_id: AtomicU64,
    data: Mutex<SeriesData>,
}

#[derive(Default)]
struct SeriesData {
    /// Newest timestamp ever inserted (kept across flushes).
    max_time_ms: Option<i64>,
    /// Sorted by `start_ms`; usually one or two entries.
    partitions: Vec<Partition>,
    /// For a series that never got a sample: the `idle_before_ms` of the
    /// first collection that saw it, standing in for its newest sample.
    idle_since_ms: Option<i64>,
    /// Set (under this lock) when the series left the head; never cleared.
    dropped: bool,
}

impl SeriesData {
    /// Whether the series holds no data and its newest sample (see
    /// `idle_since_ms` for one that never had any) is before
    /// `idle_before_ms`.
    fn is_idle(&mut self, idle_before_ms: i64) -> bool {
        if !self.partitions.is_empty() {
            return false;
        }
        let newest_ms = match self.max_time_ms {
            Some(max_time_ms) => max_time_ms,
            None => *self.idle_since_ms.get_or_insert(idle_before_ms),
        };
        newest_ms < idle_before_ms
    }
}

/// One series' data in one time partition.
pub struct Partition {
    pub start_ms: i64,
    sealed: Vec<Arc<[u8]>>,
    open: OpenChunk,
    out_of_order: Vec<Sample>,
}

#[derive(Default)]
struct OpenChunk {
    timestamps: DeltaOfDeltaEncoder,
    values: XorEncoder,
    last_ms: Option<i64>,
}

impl OpenChunk {
    /// The chunk bytes of what the encoders hold so far.
    fn assemble(&self) -> Option<Arc<[u8]>> {
        if self.timestamps.is_empty() {
            return None;
        }
        let mut ts_stream = Vec::with_capacity(self.timestamps.byte_len());
        self.timestamps.copy_to(&mut ts_stream);
        let mut value_stream = Vec::with_capacity(self.values.byte_len());
        self.values.copy_to(&mut value_stream);
        let header = ChunkHeader {
            timestamp_encoding: TimestampEncoding::DeltaOfDelta,
            value_encoding: ValueEncoding::GorillaXor,
            sample_count: self.timestamps.len(),
        };
        let mut out =
            Vec::with_capacity(codec::CHUNK_HEADER_LEN + ts_stream.len() + value_stream.len());
        // The count is 1..=HEAD_CHUNK_SAMPLES: chunks are cut there.
        codec::assemble_chunk(header, &ts_stream, &value_stream, &mut out).ok()?;
        Some(out.into())
    }
}

impl Partition {
    fn new(start_ms: i64) -> Self {
        Partition {
            start_ms,
            sealed: Vec::new(),
            open: OpenChunk::default(),
            out_of_order: Vec::new(),
        }
    }

    fn insert(&mut self, timestamp_ms: i64, value: f64) {
        if self.open.last_ms.is_some_and(|last| timestamp_ms <= last) {
            self.out_of_order.push(Sample::new(timestamp_ms, value));
            return;
        }
        if self.open.timestamps.len() == HEAD_CHUNK_SAMPLES {
            self.seal_open();
        }
        self.open.timestamps.push(timestamp_ms);
        self.open.values.push(value);
        self.open.last_ms = Some(timestamp_ms);
    }

    /// Turns the open chunk into an exactly sized sealed one (the encoders'
    /// buffers keep spare room while they grow).
    fn seal_open(&mut self) {
        if let Some(chunk) = self.open.assemble() {
            self.sealed.push(chunk);
        }
        let last_ms = self.open.last_ms;
        self.open = OpenChunk {
            last_ms,
            ..OpenChunk::default()
        };
    }

    /// A copy of this partition's data that can be decoded without a lock.
    fn snapshot(&self) -> PartitionSnapshot {
        let mut chunks = self.sealed.clone();
        chunks.extend(self.open.assemble());
        PartitionSnapshot {
            start_ms: self.start_ms,
            chunks,
            out_of_order: self.out_of_order.clone(),
        }
    }

    /// Approximate bytes of sample data held.
    fn data_bytes(&self) -> usize {
        self.sealed.iter().map(|c| c.len()).sum::<usize>()
            + self.open.timestamps.byte_len()
            + self.open.values.byte_len()
            + self.out_of_order.len() * std::mem::size_of::<Sample>()
    }
}

/// Immutable copy of a partition's data.
#[derive(Clone)]
pub struct PartitionSnapshot {
    pub start_ms: i64,
    chunks: Vec<Arc<[u8]>>,
    out_of_order: Vec<Sample>,
}

impl PartitionSnapshot {
    /// Appends this partition's samples inside `range` to `out` as a newer
    /// source than what `out` holds (see [`SeriesColumns::merge_run`]):
    /// the in-order chunks, then the out-of-order samples, which are newer
    /// than any chunk sample with the same timestamp. Chunks wholly outside
    /// the range are skipped by their first timestamps, without decoding.
    ///
    /// Head chunks were encoded by this process, so a decode failure is a
    /// bug; it is reported as corruption rather than hidden.
    pub fn read_into(
        &self,
        range: TimeRange,
        out: &mut SeriesColumns,
    ) -> Result<(), CorruptionError> {
        let corrupt = |e: codec::CodecError| CorruptionError {
            path: "(head)".into(),
            offset: 0,
            series: None,
            kind: e.into(),
        };
        let mut next_first = None;
        for (i, chunk) in self.chunks.iter().enumerate() {
            let first = match next_first.take() {
                Some(first) => first,
                None => codec::chunk_first_timestamp(chunk).map_err(corrupt)?,
            };
            if first > range.max_time_ms {
                break;
            }
            if let Some(next) = self.chunks.get(i + 1) {
                let next = codec::chunk_first_timestamp(next).map_err(corrupt)?;
                next_first = Some(next);
                // Every sample of this chunk is before the next one's first.
                if next <= range.min_time_ms {
                    continue;
                }
            }
            let start = out.len();
            codec::decode_chunk_append(chunk, &mut out.timestamps_ms, &mut out.values)
                .map_err(corrupt)?;
            out.retain_run_in(start, range);
            out.merge_run(start);
        }
        let mut late: Vec<Sample> = self
            .out_of_order
            .iter()
            .copied()
            .filter(|s| range.contains(s.timestamp_ms))
            .collect();
        if !late.is_empty() {
            // Stable: of equal timestamps the last written stays last.
            late.sort_by_key(|s| s.timestamp_ms);
            let start = out.len();
            for (i, sample) in late.iter().enumerate() {
                let overwritten = late
                    .get(i + 1)
                    .is_some_and(|next| next.timestamp_ms == sample.timestamp_ms);
                if !overwritten {
                    out.timestamps_ms.push(sample.timestamp_ms);
                    out.values.push(sample.value);
                }
            }
            out.merge_run(start);
        }
        Ok(())
    }

    /// The merged samples inside `range` (the flush path's form).
    pub fn samples(&self, range: TimeRange) -> Result<Vec<Sample>, CorruptionError> {
        let mut columns = SeriesColumns::default();
        self.read_into(range, &mut columns)?;
        Ok(columns
            .timestamps_ms
            .iter()
            .zip(&columns.values)
            .map(|(&t, &v)| Sample::new(t, v))
            .collect())
    }
}

/// A locked series: check and insert under one lock, so that an append can
/// validate, log to the WAL and insert without another writer of the same
/// series in between.
pub struct SeriesGuard<'a>(parking_lot::MutexGuard<'a, SeriesData>);

impl SeriesGuard<'_> {
    /// Whether the series left the head (see the module invariants):
    /// nothing may be inserted; resolve its key again.
    pub fn is_dropped(&self) -> bool {
        self.0.dropped
    }

    /// Checks that a sample may be accepted: not older than the series'
    /// newest sample minus `ooo_window_ms`, and not below `min_time_ms`
    /// (data there is already in segments). Returns the oldest acceptable
    /// timestamp and the reason on rejection.
    pub fn check(
        &self,
        timestamp_ms: i64,
        min_time_ms: i64,
        ooo_window_ms: i64,
    ) -> Result<(), (i64, &'static str)> {
        if timestamp_ms < min_time_ms {
            return Err((
                min_time_ms,
                "its time partition is already flushed to segments",
            ));
        }
        match self.0.max_time_ms {
            Some(max) if timestamp_ms < max.saturating_sub(ooo_window_ms) => Err((
                max.saturating_sub(ooo_window_ms),
                "older than the series' newest sample minus the out-of-order window",
            )),
            _ => Ok(()),
        }
    }

    /// Stores a sample. Never fails; see the module invariants. The series
    /// must not be dropped ([`Self::is_dropped`]).
    pub fn insert(&mut self, timestamp_ms: i64, value: f64, partition_ms: i64) {
        debug_assert!(!self.0.dropped, "insert into a dropped series");
        let start_ms = partition_start(timestamp_ms, partition_ms);
        let data = &mut *self.0;
        data.max_time_ms = Some(
            data.max_time_ms
                .map_or(timestamp_ms, |m| m.max(timestamp_ms)),
        );
        let index = match data.partitions.iter().rposition(|p| p.start_ms <= start_ms) {
            Some(i) if data.partitions[i].start_ms == start_ms => i,
            found => {
                let at = found.map_or(0, |i| i + 1);
                // A series usually has one partition: do not let the
                // vector's growth policy allocate room for four.
                data.partitions.reserve_exact(1);
                data.partitions.insert(at, Partition::new(start_ms));
                if at + 1 == data.partitions.len() {
                    // A newer partition started: the older ones now only get
                    // out-of-order samples, so their open chunks are final.
                    for older in &mut data.partitions[..at] {
                        older.seal_open();
                    }
                }
                at
            }
        };
        data.partitions[index].insert(timestamp_ms, value);
    }
}

impl MemSeries {
    pub fn lock(&self) -> SeriesGuard<'_> {
        SeriesGuard(self.data.lock())
    }

    /// Copies the partitions that overlap `range`.
    pub fn snapshot(&self, range: TimeRange, partition_ms: i64) -> Vec<PartitionSnapshot> {
        let data = self.data.lock();
        data.partitions
            .iter()
            .filter(|p| range.overlaps(p.start_ms, p.start_ms.saturating_add(partition_ms - 1)))
            .map(Partition::snapshot)
            .collect()
    }

    /// Removes and returns the partitions `take` selects.
    fn take_partitions(&self, take: &dyn Fn(i64) -> bool) -> Vec<Partition> {
        let mut data = self.data.lock();
        let (taken, kept) = std::mem::take(&mut data.partitions)
            .into_iter()
            .partition(|p| take(p.start_ms));
        data.partitions = kept;
        taken
    }

    /// Bytes of sample data in the head for this series.
    pub fn data_bytes(&self) -> usize {
        self.data
            .lock()
            .partitions
            .iter()
            .map(Partition::data_bytes)
            .sum()
    }
}

/// Start of the partition holding `timestamp_ms`: the largest multiple of
/// `partition_ms` not after it. Where that multiple is below `i64::MIN`
/// (timestamps within one partition of `i64::MIN`) the partition starts at
/// `i64::MIN`, so every timestamp has a partition and no arithmetic wraps.
pub fn partition_start(timestamp_ms: i64, partition_ms: i64) -> i64 {
    timestamp_ms
        .checked_sub(timestamp_ms.rem_euclid(partition_ms))
        .unwrap_or(i64::MIN)
}
/// Series with their samples, as a segment writer takes them.
pub type SeriesBatch = Vec<(SeriesKey, Vec<Sample>)>;

/// Head data taken out for a flush: readable until its segments are
/// published.
pub struct FrozenHead {
    /// Series id → its frozen partitions.
    series: BTreeMap<u32, (Arc<MemSeries>, Vec<PartitionSnapshot>)>,
}

impl FrozenHead {
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The frozen partitions of one series, oldest first.
    pub fn partitions(&self, series_id: u32) -> &[PartitionSnapshot] {
        self.series
            .get(&series_id)
            .map_or(&[], |(_, partitions)| partitions.as_slice())
    }

    /// The frozen data grouped by partition start: for each, every series
    /// with its merged samples, ready for a segment writer.
    pub fn by_partition(&self) -> Result<BTreeMap<i64, SeriesBatch>, CorruptionError> {
        let mut out: BTreeMap<i64, SeriesBatch> = BTreeMap::new();
        for (series, partitions) in self.series.values() {
            for partition in partitions {
                let samples = partition.samples(TimeRange::ALL)?;
                if !samples.is_empty() {
                    out.entry(partition.start_ms)
                        .or_default()
                        .push((SeriesKey::clone(&series.key), samples));
                }
            }
        }
        Ok(out)
    }
}

impl Head {
    pub fn new(partition_ms: i64) -> Self {
        Head {
            head_id: NEXT_HEAD_ID.fetch_add(1, Ordering::Relaxed),
            partition_ms,
            series: RwLock::new(HashMap::new()),
            index: RwLock::new(HeadIndex::default()),
            next_series_id: AtomicU32::new(0),
        }
    }

    pub fn head_id(&self) -> u64 {
        self.head_id
    }

    pub fn partition_ms(&self) -> i64 {
        self.partition_ms
    }

    pub fn series_count(&self) -> usize {
        self.series.read().len()
    }

    pub fn get(&self, key: &SeriesKey) -> Option<Arc<MemSeries>> {
        self.series.read().get(key).cloned()
    }

    /// The series for `key` and whether this call created it. `None` when
    /// creating it would exceed `max_series`, or when all 2^32 - 1 series
    /// ids of this head have been used (a reopen starts a new head).
    pub fn get_or_create(
        &self,
        key: &SeriesKey,
        max_series: usize,
    ) -> Option<(Arc<MemSeries>, bool)> {
        if let Some(series) = self.get(key) {
            return Some((series, false));
        }
        let mut map = self.series.write();
        if let Some(series) = map.get(key) {
            return Some((Arc::clone(series), false));
        }
        if map.len() >= max_series {
            return None;
        }
        // Under the map's write lock: no other creation runs.
        let series_id = self.next_series_id.load(Ordering::Relaxed);
        if series_id == u32::MAX {
            return None;
        }
        self.next_series_id.store(series_id + 1, Ordering::Relaxed);
        let mut index = self.index.write();
        let key = Arc::new(index.intern(key));
        let series = Arc::new(MemSeries {
            series_id,
            head_id: self.head_id,
            key: Arc::clone(&key),
            wal_file_id: AtomicU64::new(NO_WAL_FILE),
            data: Mutex::new(SeriesData::default()),
        });
        index.add(Arc::clone(&series));
        map.insert(key, Arc::clone(&series));
        Some((series, true))
    }

    /// The series that hold no data and whose newest sample is before
    /// `idle_before_ms`: candidates for [`Self::drop_idle`]. A series that
    /// never got a sample counts from the first call that sees it (so it
    /// is a candidate once `idle_before_ms` has moved on since).
    pub fn idle_series(&self, idle_before_ms: i64) -> Vec<Arc<MemSeries>> {
        // Checked after the map's lock is released: creating series waits
        // only for the copy.
        let all: Vec<Arc<MemSeries>> = self.series.read().values().cloned().collect();
        all.into_iter()
            .filter(|series| series.data.lock().is_idle(idle_before_ms))
            .collect()
    }

    /// Drops from the key map and the index's id map each of `candidates`
    /// that is still idle (checked again under its lock, where it is also
    /// marked dropped) and that `keep` does not name by series id.
    /// Returns the series dropped, for [`Self::forget`]. Cheap per series:
    /// the database runs it with appends held off.
    pub fn drop_idle(
        &self,
        candidates: &[Arc<MemSeries>],
        idle_before_ms: i64,
        keep: &dyn Fn(u32) -> bool,
    ) -> Vec<Arc<MemSeries>> {
        let mut map = self.series.write();
        let mut index = self.index.write();
        let mut dropped = Vec::new();
        for series in candidates {
            if keep(series.series_id) {
                continue;
            }
            let mut data = series.data.lock();
            if data.dropped || !data.is_idle(idle_before_ms) {
                continue;
            }
            data.dropped = true;
            drop(data);
            // The live series of its key is the one in the map.
            map.remove(&*series.key);
            index.unlist(series.series_id);
            dropped.push(Arc::clone(series));
        }
        dropped
    }

    /// Removes what [`Self::drop_idle`] returned from the postings lists
    /// and gives back the memory the maps no longer need (so that memory
    /// follows the live series, not the most there ever were).
    pub fn forget(&self, dropped: &[Arc<MemSeries>]) {
        if dropped.is_empty() {
            return;
        }
        self.index.write().remove_postings(dropped);
        let mut map = self.series.write();
        if map.capacity() > 4 * map.len().max(64) {
            let live = map.len();
            map.shrink_to(2 * live);
        }
    }

    pub fn index(&self) -> parking_lot::RwLockReadGuard<'_, HeadIndex> {
        self.index.read()
    }

    /// Takes the partitions `take` selects (by start) out of every series.
    pub fn freeze(&self, take: &dyn Fn(i64) -> bool) -> FrozenHead {
        let all: Vec<Arc<MemSeries>> = self.series.read().values().cloned().collect();
        let mut series = BTreeMap::new();
        for s in all {
            let partitions = s.take_partitions(take);
            if !partitions.is_empty() {
                let snapshots = partitions.iter().map(Partition::snapshot).collect();
                series.insert(s.series_id, (s, snapshots));
            }
        }
        FrozenHead { series }
    }

    /// Bytes of sample data held in the head.
    pub fn data_bytes(&self) -> usize {
        self.series.read().values().map(|s| s.data_bytes()).sum()
    }

    /// `per_series` plus the key bytes, summed over every series.
    pub fn series_key_bytes(&self, per_series: usize) -> usize {
        self.series
            .read()
            .keys()
            .map(|key| per_series + key.byte_len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(head: &Head) -> Arc<MemSeries> {
        head.get_or_create(&SeriesKey::new("up", &[("job", "x")]).unwrap(), 10)
            .unwrap()
            .0
    }

    #[test]
    fn out_of_order_and_duplicates_merge_last_wins() {
        let head = Head::new(1_000);
        let s = series(&head);
        for (t, v) in [
            (10, 1.0),
            (20, 2.0),
            (15, 1.5),
            (20, 2.5),
            (30, 3.0),
            (1_005, 9.0),
        ] {
            s.lock().insert(t, v, 1_000);
        }
        let parts = s.snapshot(TimeRange::ALL, 1_000);
        assert_eq!(parts.len(), 2);
        let first = parts[0].samples(TimeRange::ALL).unwrap();
        let expected = [(10, 1.0), (15, 1.5), (20, 2.5), (30, 3.0)];
        assert_eq!(first, expected.map(|(t, v)| Sample::new(t, v)));
        assert_eq!(
            parts[1].samples(TimeRange::ALL).unwrap(),
            vec![Sample::new(1_005, 9.0)]
        );
        assert_eq!(
            s.lock().check(1_005 - 60, i64::MIN, 50),
            Err((
                955,
                "older than the series' newest sample minus the out-of-order window"
            ))
        );
        assert!(s.lock().check(1_005 - 40, i64::MIN, 50).is_ok());
        assert!(s.lock().check(2_000, 2_001, 50).is_err());
    }

    #[test]
    fn chunks_are_cut_at_the_maximum_and_read_back() {
        let head = Head::new(1 << 40);
        let s = series(&head);
        let n = HEAD_CHUNK_SAMPLES as i64 * 2 + 10;
        for t in 0..n {
            s.lock().insert(t, t as f64, 1 << 40);
        }
        let parts = s.snapshot(TimeRange::new(5, n - 5), 1 << 40);
        assert_eq!(parts[0].chunks.len(), 3);
        let read = parts[0].samples(TimeRange::new(5, n - 5)).unwrap();
        assert_eq!(read.len() as i64, n - 9);
        assert_eq!(read[0], Sample::new(5, 5.0));
    }

    #[test]
    fn dropped_series_leave_the_map_and_the_index() {
        use crate::index::Postings;
        let head = Head::new(100);
        let key = |job: &str| SeriesKey::new("up", &[("job", job)]).unwrap();
        let created = |job| head.get_or_create(&key(job), 10).unwrap().0;
        let (a, b, c) = (created("a"), created("b"), created("c"));
        a.lock().insert(5, 1.0, 100);
        b.lock().insert(150, 1.0, 100);
        c.lock().insert(50, 1.0, 100);
        let frozen = head.freeze(&|start| start < 100);
        assert_eq!(frozen.by_partition().unwrap()[&0].len(), 2);
        let candidates = head.idle_series(100);
        assert_eq!(candidates.len(), 2, "a and c, not b");
        // Kept by the caller (frozen data not yet published, say).
        assert!(head.drop_idle(&candidates, 100, &|_| true).is_empty());
        // Written again between the scan and the drop: it stays.
        c.lock().insert(120, 1.0, 100);
        let dropped = head.drop_idle(&candidates, 100, &|_| false);
        assert_eq!(dropped.len(), 1);
        // Unlisted: not found by id even before its postings go.
        assert!(head.index().get(a.series_id).is_none());
        assert_eq!(head.index().postings("job", "a"), Some(&[a.series_id][..]));
        head.forget(&dropped);
        assert!(Arc::ptr_eq(&dropped[0], &a));
        assert!(a.lock().is_dropped() && !c.lock().is_dropped());
        assert_eq!(head.series_count(), 2);
        {
            let index = head.index();
            assert_eq!(index.label_values("job").collect::<Vec<_>>(), ["b", "c"]);
            assert_eq!(index.all_series(), [b.series_id, c.series_id]);
            assert!(index.get(a.series_id).is_none());
            assert_eq!(
                index.postings("__name__", "up"),
                Some(&[b.series_id, c.series_id][..])
            );
        }
        // The key comes back as a new series with a new id.
        let (again, new) = head.get_or_create(&key("a"), 10).unwrap();
        assert!(new && again.series_id > c.series_id);
        assert_eq!(
            head.index().postings("job", "a"),
            Some(&[again.series_id][..])
        );
        // A series never written counts as idle from the first scan that
        // sees it.
        assert!(head
            .idle_series(200)
            .iter()
            .all(|s| s.series_id != again.series_id));
        let later = head.idle_series(300);
        assert!(later.iter().any(|s| s.series_id == again.series_id));
        head.forget(&head.drop_idle(&later, 300, &|_| false));
        assert_eq!(head.index().postings("job", "a"), None);
    }

    #[test]
    fn freeze_takes_selected_partitions_only() {
        let head = Head::new(100);
        let s = series(&head);
        for t in [5, 150, 250] {
            s.lock().insert(t, 1.0, 100);
        }
        let frozen = head.freeze(&|start| start < 200);
        let grouped = frozen.by_partition().unwrap();
        assert_eq!(grouped.keys().copied().collect::<Vec<_>>(), vec![0, 100]);
        let left = s.snapshot(TimeRange::ALL, 100);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].start_ms, 200);
    }
}
