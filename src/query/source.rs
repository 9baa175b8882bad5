//! The streaming read path every query uses.
//!
//! A [`Queryable`] (a [`crate::Db`], live or read-only, or a single
//! [`crate::Segment`]) hands out a [`SeriesSet`]: the series matching a set
//! of matchers that may have samples in a time range, sorted by key, each
//! readable on its own into caller-owned, reused column buffers
//! ([`SeriesColumns`]). It also hands out the same series as rollup
//! buckets of a resolution ([`Queryable::select_buckets`], see
//! [`crate::query::buckets`]), for the calls a tier can answer.
//!
//! Selecting decodes nothing: it evaluates the matchers on each segment's
//! and the head's postings, drops segment series whose chunks all lie
//! outside the range (by the chunk index's min/max time), and records per
//! series where its data lives: (segment, series id) pairs, oldest segment
//! first, then the copied head partitions (frozen ones first, then live).
//! Reading a series decodes only the chunks that overlap the range,
//! straight into the output columns, and merges the sources by the
//! last-write-wins rule: sources are visited oldest first and each run of
//! samples is appended; a run that starts after everything read so far (the
//! common case: partitions do not overlap) is kept as is, otherwise the
//! overlapping tail is merged in place, a repeated timestamp keeping the
//! newer source's sample (`SeriesColumns::merge_run`). The cost of that
//! merge is the overlap, not the series.
//!
//! Invariants:
//! - a `SeriesSet` is a consistent snapshot: a concurrent flush or append
//!   never makes a sample appear twice or vanish from it (segments are
//!   immutable and shared, head partitions are copied under the gate);
//! - [`SeriesSet::read`] returns strictly increasing timestamps inside the
//!   set's range, values bit-exact as stored (NaN payloads such as
//!   Prometheus' staleness marker included);
//! - reading allocates nothing per sample: the output columns grow to the
//!   largest series read and are reused (only a head partition holding
//!   out-of-order samples in the range needs a buffer to sort them);
//! - `SeriesSet` is `Sync`: series may be read from several threads at once.

use std::sync::Arc;

use crate::error::Result;
use crate::head::PartitionSnapshot;
use crate::index::Matcher;
use crate::query::buckets::{sample_range, BucketSet};
use crate::segment::Segment;
use crate::series::{SeriesKey, TimeRange};

/// One series' samples as columns, in time order. Reused across reads: a
/// read clears it first and keeps its capacity.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SeriesColumns {
    pub timestamps_ms: Vec<i64>,
    pub values: Vec<f64>,
}

impl SeriesColumns {
    pub fn clear(&mut self) {
        self.timestamps_ms.clear();
        self.values.clear();
    }

    pub fn len(&self) -> usize {
        self.timestamps_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps_ms.is_empty()
    }

    /// Keeps, of the samples from index `start` on (one run, in time
    /// order), only those inside `range`.
    pub(crate) fn retain_run_in(&mut self, start: usize, range: TimeRange) {
        let run = &self.timestamps_ms[start..];
        let below = run.partition_point(|&t| t < range.min_time_ms);
        let inside = run.partition_point(|&t| t <= range.max_time_ms);
        self.timestamps_ms.truncate(start + inside);
        self.values.truncate(start + inside);
        if below > 0 {
            self.timestamps_ms.drain(start..start + below);
            self.values.drain(start..start + below);
        }
    }

    /// Merges the samples from index `start` on, a strictly increasing run
    /// read from a newer source, into the strictly increasing samples
    /// before it: afterwards all are strictly increasing and a timestamp in
    /// both keeps the run's value (last write wins).
    ///
    /// A run that starts after the older samples end is left where it is.
    /// Otherwise only the older samples from the run's first timestamp on
    /// take part: they and the run are merged into the spare room after the
    /// run, and the result is moved down into place.
    pub(crate) fn merge_run(&mut self, start: usize) {
        let end = self.timestamps_ms.len();
        if start == 0 || start >= end || self.timestamps_ms[start - 1] < self.timestamps_ms[start] {
            return;
        }
        let ts = &mut self.timestamps_ms;
        let vs = &mut self.values;
        let first = ts[start];
        let low = ts[..start].partition_point(|&t| t < first);
        ts.reserve(end - low);
        vs.reserve(end - low);
        let (mut i, mut j) = (low, start);
        while i < start && j < end {
            let (older, newer) = (ts[i], ts[j]);
            if older < newer {
                ts.push(older);
                vs.push(vs[i]);
                i += 1;
            } else {
                if older == newer {
                    i += 1;
                }
                ts.push(newer);
                vs.push(vs[j]);
                j += 1;
            }
        }
        for k in (i..start).chain(j..end) {
            ts.push(ts[k]);
            vs.push(vs[k]);
        }
        let merged = ts.len() - end;
        ts.copy_within(end.., low);
        vs.copy_within(end.., low);
        ts.truncate(low + merged);
        vs.truncate(low + merged);
    }
}

/// Anything queries can read: a database or one segment file.
pub trait Queryable: Sync {
    /// The series matching every matcher that may have samples in `range`,
    /// sorted by key. A series in the set may turn out to have no sample in
    /// the range when read (its chunks only overlap the range's bounds).
    fn select_series(&self, matchers: &[Matcher], range: TimeRange) -> Result<SeriesSet<'_>>;

    /// The buckets of `resolution_ms` (> 0) of the series matching every
    /// matcher, for bucket starts in `starts` (multiples of
    /// `resolution_ms`), sorted by key; see [`BucketSet`]. Read from the
    /// stored rollup tiers where they cover, computed from raw samples
    /// elsewhere. The default, for a source without tiers, computes every
    /// bucket from [`Self::select_series`].
    fn select_buckets(
        &self,
        matchers: &[Matcher],
        starts: TimeRange,
        resolution_ms: i64,
    ) -> Result<BucketSet<'_>> {
        let raw = self.select_series(matchers, sample_range(starts, resolution_ms))?;
        Ok(BucketSet::select(
            resolution_ms,
            starts,
            matchers,
            Vec::new(),
            raw,
        ))
    }

    /// The resolutions of the stored rollup tiers, ascending. The default:
    /// none (a source without tiers).
    fn tier_resolutions(&self) -> Vec<i64> {
        Vec::new()
    }

    /// Every label name, sorted.
    fn label_names(&self) -> Result<Vec<String>>;

    /// Every value of label `name`, sorted.
    fn label_values(&self, name: &str) -> Result<Vec<String>>;

    /// The metric metadata (type, help, unit per family). The default:
    /// none (a segment file carries no metadata).
    fn metadata(&self) -> crate::Metadata {
        crate::Metadata::default()
    }
}

/// A segment a set reads: borrowed from a single-segment source, or shared
/// with the database's current version (so a flush that publishes a new
/// version does not pull it from under the set).
pub(crate) enum SegmentRef<'a> {
    Borrowed(&'a Segment),
    Shared(Arc<Segment>),
}

impl std::ops::Deref for SegmentRef<'_> {
    type Target = Segment;

    fn deref(&self) -> &Segment {
        match self {
            SegmentRef::Borrowed(segment) => segment,
            SegmentRef::Shared(segment) => segment,
        }
    }
}

/// A matching head series with copies of its partitions that overlap the
/// range, oldest source first: frozen partitions (being flushed), then the
/// live ones.
pub(crate) struct HeadSeries {
    pub key: Arc<SeriesKey>,
    pub partitions: Vec<PartitionSnapshot>,
}

/// Where one series of a set has data in one segment.
#[derive(Clone, Copy)]
struct SegmentPart {
    segment: u32,
    series_id: u32,
}

/// One series of a set: `parts[parts_start..parts_end]` (oldest segment
/// first) and optionally `heads[head]`.
#[derive(Clone, Copy)]
struct Entry {
    parts_start: u32,
    parts_end: u32,
    head: u32,
}

const NO_HEAD: u32 = u32::MAX;

/// A snapshot of matching series; see the module invariants.
pub struct SeriesSet<'a> {
    range: TimeRange,
    segments: Vec<SegmentRef<'a>>,
    heads: Vec<HeadSeries>,
    parts: Vec<SegmentPart>,
    entries: Vec<Entry>,
}

impl<'a> SeriesSet<'a> {
    /// Selects the series matching every matcher in `segments` (oldest
    /// first) and `heads` (which already match), without decoding
    /// anything: segment series whose chunks all lie outside `range` are
    /// left out, the rest grouped by key.
    pub(crate) fn select(
        range: TimeRange,
        matchers: &[Matcher],
        segments: Vec<SegmentRef<'a>>,
        mut heads: Vec<HeadSeries>,
    ) -> SeriesSet<'a> {
        let segments: Vec<SegmentRef<'a>> = segments
            .into_iter()
            .filter(|s| range.overlaps(s.footer().min_time_ms, s.footer().max_time_ms))
            .collect();
        // Per segment, its matching series with a chunk in the range, in
        // key order (as segment series ids are).
        let lists: Vec<Vec<SegmentPart>> = segments
            .iter()
            .enumerate()
            .map(|(index, segment)| {
                segment
                    .select(matchers)
                    .into_iter()
                    .filter(|&series_id| {
                        let refs = segment.chunk_refs(series_id);
                        match (refs.first(), refs.last()) {
                            (Some(first), Some(last)) => {
                                range.overlaps(first.min_time_ms, last.max_time_ms)
                            }
                            _ => false,
                        }
                    })
                    .map(|series_id| SegmentPart {
                        segment: index as u32,
                        series_id,
                    })
                    .collect()
            })
            .collect();
        heads.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let (parts, entries) = merge_by_key(&segments, &lists, &heads);
        SeriesSet {
            range,
            segments,
            heads,
            parts,
            entries,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The time range the set was selected for; reads return samples
    /// inside it only.
    pub fn range(&self) -> TimeRange {
        self.range
    }

    /// The key of series `index`. Panics unless `index < len()`.
    pub fn key(&self, index: usize) -> &SeriesKey {
        let entry = self.entries[index];
        if entry.head != NO_HEAD {
            return &self.heads[entry.head as usize].key;
        }
        self.part_key(self.parts[entry.parts_start as usize])
    }

    fn part_key(&self, part: SegmentPart) -> &SeriesKey {
        &self.segments[part.segment as usize].series_keys()[part.series_id as usize]
    }

    /// Reads series `index`'s samples inside the set's range into `out`
    /// (cleared first; its capacity is reused). An index past the end reads
    /// nothing. Damaged chunk bytes are an error naming file, offset and
    /// series; `out` then holds an unspecified part of the series.
    pub fn read(&self, index: usize, out: &mut SeriesColumns) -> Result<()> {
        out.clear();
        let Some(&entry) = self.entries.get(index) else {
            return Ok(());
        };
        let parts = &self.parts[entry.parts_start as usize..entry.parts_end as usize];
        let expected: usize = parts
            .iter()
            .map(|part| self.overlapping_chunks(*part))
            .flat_map(|chunks| chunks.iter().map(|c| usize::from(c.sample_count)))
            .sum();
        out.timestamps_ms.reserve(expected);
        out.values.reserve(expected);
        for &part in parts {
            let segment = &self.segments[part.segment as usize];
            for chunk in self.overlapping_chunks(part) {
                let start = out.len();
                segment.read_chunk_append(
                    part.series_id,
                    chunk,
                    &mut out.timestamps_ms,
                    &mut out.values,
                )?;
                if chunk.min_time_ms < self.range.min_time_ms
                    || chunk.max_time_ms > self.range.max_time_ms
                {
                    out.retain_run_in(start, self.range);
                }
                out.merge_run(start);
            }
        }
        if let Some(head) = self.heads.get(entry.head as usize) {
            for partition in &head.partitions {
                partition.read_into(self.range, out)?;
            }
        }
        Ok(())
    }

    /// The chunks of a segment part that overlap the range, in time order.
    fn overlapping_chunks(&self, part: SegmentPart) -> &[crate::segment::ChunkRef] {
        let refs = self.segments[part.segment as usize].chunk_refs(part.series_id);
        let first = refs.partition_point(|c| c.max_time_ms < self.range.min_time_ms);
        let end = refs.partition_point(|c| c.min_time_ms <= self.range.max_time_ms);
        &refs[first..end.max(first)]
    }
}

/// Merges the key-sorted series lists of the segments (oldest first) and
/// of the head into entries sorted by key, each entry's parts in segment
/// order. A k-way merge: each step compares the k list heads with the
/// smallest key so far, so a key found in every segment costs k - 1
/// comparisons, and nothing is sorted.
fn merge_by_key(
    segments: &[SegmentRef<'_>],
    lists: &[Vec<SegmentPart>],
    heads: &[HeadSeries],
) -> (Vec<SegmentPart>, Vec<Entry>) {
    let key_at = |list: usize, position: usize| -> Option<&SeriesKey> {
        match lists.get(list) {
            Some(parts) => parts.get(position).map(|part| {
                &segments[part.segment as usize].series_keys()[part.series_id as usize]
            }),
            None => heads.get(position).map(|head| &*head.key),
        }
    };
    let mut parts = Vec::with_capacity(lists.iter().map(Vec::len).sum());
    let mut entries = Vec::new();
    // One cursor per segment list, then the head's.
    let mut cursors = vec![0usize; lists.len() + 1];
    let mut holders: Vec<usize> = Vec::with_capacity(cursors.len());
    loop {
        let mut smallest: Option<&SeriesKey> = None;
        holders.clear();
        for (list, &position) in cursors.iter().enumerate() {
            let Some(key) = key_at(list, position) else {
                continue;
            };
            match smallest.map(|s| key.cmp(s)) {
                Some(std::cmp::Ordering::Greater) => {}
                Some(std::cmp::Ordering::Equal) => holders.push(list),
                _ => {
                    smallest = Some(key);
                    holders.clear();
                    holders.push(list);
                }
            }
        }
        if smallest.is_none() {
            break;
        }
        let mut entry = Entry {
            parts_start: parts.len() as u32,
            parts_end: parts.len() as u32,
            head: NO_HEAD,
        };
        for &list in &holders {
            let position = cursors[list];
            cursors[list] += 1;
            match lists.get(list) {
                Some(list_parts) => {
                    parts.push(list_parts[position]);
                    entry.parts_end = parts.len() as u32;
                }
                None => entry.head = position as u32,
            }
        }
        entries.push(entry);
    }
    (parts, entries)
}

impl Queryable for crate::Db {
    fn select_series(&self, matchers: &[Matcher], range: TimeRange) -> Result<SeriesSet<'_>> {
        crate::Db::select_series(self, matchers, range)
    }

    fn select_buckets(
        &self,
        matchers: &[Matcher],
        starts: TimeRange,
        resolution_ms: i64,
    ) -> Result<BucketSet<'_>> {
        crate::Db::select_bucket_set(self, matchers, starts, resolution_ms)
    }

    fn tier_resolutions(&self) -> Vec<i64> {
        crate::Db::tier_resolutions(self)
    }

    fn label_names(&self) -> Result<Vec<String>> {
        Ok(crate::Db::label_names(self))
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(crate::Db::label_values(self, name))
    }

    fn metadata(&self) -> crate::Metadata {
        crate::Db::metadata(self)
    }
}

impl Queryable for Segment {
    fn select_series(&self, matchers: &[Matcher], range: TimeRange) -> Result<SeriesSet<'_>> {
        Ok(SeriesSet::select(
            range,
            matchers,
            vec![SegmentRef::Borrowed(self)],
            Vec::new(),
        ))
    }

    fn label_names(&self) -> Result<Vec<String>> {
        Ok(Segment::label_names(self)
            .into_iter()
            .map(str::to_owned)
            .collect())
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(Segment::label_values(self, name)
            .into_iter()
            .map(str::to_owned)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The merge rule in its plainest form: all runs, oldest first, sorted
    /// stably by timestamp; of equal timestamps the last (newest) stays.
    fn reference_merge(runs: &[Vec<(i64, u64)>]) -> Vec<(i64, u64)> {
        let mut all: Vec<(i64, u64)> = runs.iter().flatten().copied().collect();
        all.sort_by_key(|s| s.0);
        let mut out: Vec<(i64, u64)> = Vec::new();
        for sample in all {
            match out.last_mut() {
                Some(last) if last.0 == sample.0 => *last = sample,
                _ => out.push(sample),
            }
        }
        out
    }

    fn merged(runs: &[Vec<(i64, u64)>]) -> Vec<(i64, u64)> {
        let mut columns = SeriesColumns::default();
        for run in runs {
            let start = columns.len();
            for &(t, bits) in run {
                columns.timestamps_ms.push(t);
                columns.values.push(f64::from_bits(bits));
            }
            columns.merge_run(start);
        }
        columns
            .timestamps_ms
            .iter()
            .zip(&columns.values)
            .map(|(&t, v)| (t, v.to_bits()))
            .collect()
    }

    /// A strictly increasing run of timestamps from a small domain (so runs
    /// collide), each value tagged with its run so the winner is visible.
    fn runs() -> impl Strategy<Value = Vec<Vec<(i64, u64)>>> {
        proptest::collection::vec(proptest::collection::btree_set(0i64..60, 0..20), 0..6).prop_map(
            |sets| {
                sets.into_iter()
                    .enumerate()
                    .map(|(run, set)| set.into_iter().map(|t| (t, run as u64)).collect())
                    .collect()
            },
        )
    }

    proptest! {
        #[test]
        fn merging_runs_in_place_keeps_the_newest(runs in runs()) {
            prop_assert_eq!(merged(&runs), reference_merge(&runs));
        }
    }

    #[test]
    fn newest_source_wins_on_equal_timestamps() {
        // Run 1 overlaps the end of run 0, run 2 lies before both and
        // repeats 4; run 3 comes after everything (appended as is).
        let runs = vec![
            vec![(1, 10), (2, 10), (4, 10)],
            vec![(2, 20), (3, 20)],
            vec![(0, 30), (4, 30)],
            vec![(9, 40)],
        ];
        assert_eq!(
            merged(&runs),
            vec![(0, 30), (1, 10), (2, 20), (3, 20), (4, 30), (9, 40)]
        );
    }

    #[test]
    fn nan_payloads_survive_a_merge() {
        let stale = 0x7ff0_0000_0000_0002;
        let runs = vec![vec![(1, stale), (3, 1)], vec![(2, stale), (3, stale)]];
        assert_eq!(merged(&runs), vec![(1, stale), (2, stale), (3, stale)]);
    }

    #[test]
    fn a_run_is_trimmed_to_the_range() {
        let mut columns = SeriesColumns {
            timestamps_ms: vec![1, 10, 11, 12, 13, 14],
            values: vec![1.0, 10.0, 11.0, 12.0, 13.0, 14.0],
        };
        columns.retain_run_in(1, TimeRange::new(12, 13));
        assert_eq!(columns.timestamps_ms, vec![1, 12, 13]);
        assert_eq!(columns.values, vec![1.0, 12.0, 13.0]);
        columns.retain_run_in(1, TimeRange::new(20, 30));
        assert_eq!(columns.timestamps_ms, vec![1]);
        assert_eq!(columns.values, vec![1.0]);
    }

    #[test]
    fn series_sets_are_shared_between_threads() {
        fn sync<T: Sync + Send>() {}
        sync::<SeriesSet<'static>>();
    }
}
