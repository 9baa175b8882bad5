//! The bucket read path: the rollup buckets of matching series at one
//! resolution, for queries a tier can answer and for callers asking for a
//! tier ([`crate::Db::select_buckets`]).
//!
//! A [`BucketSet`] is built from *layers* and a raw [`SeriesSet`]: each
//! layer is the rollup segments of one stored tier whose resolution
//! divides the set's, used for the bucket starts (at the tier's own
//! resolution) in the layer's range; the raw set covers the times after
//! the last layer. Layer ranges are disjoint and in time order, and the
//! raw set starts where the last layer ends, so no sample is summarised
//! twice. Reading a series rolls each part up to the set's resolution in
//! time order ([`Buckets::roll_up`]); a bucket split between two parts
//! (the layers' boundaries need only be multiples of the finer tier's
//! resolution) is joined exactly as rolling up joins buckets.
//!
//! A single [`crate::Segment`] has no tiers: its set is the raw samples
//! bucketed on the fly ([`Buckets::push_raw`]), which is also what a
//! database does for the times no tier has rolled up yet.
//!
//! Invariants:
//! - entries are sorted by base series key, one per key, whichever
//!   layers or raw data hold it;
//! - [`BucketSet::read`] returns the non-empty buckets of the set's
//!   resolution starting in the set's range, in start order, each
//!   summarising exactly the samples a raw read of that bucket's time
//!   span would return (retention aside: deleted raw data is only in the
//!   tiers);
//! - like a [`SeriesSet`], a set is a consistent snapshot and `Sync`.

use std::sync::Arc;

use crate::error::Result;
use crate::index::Matcher;
use crate::query::source::{SeriesColumns, SeriesSet};
use crate::rollup::store::{self, ColumnIds, ColumnSet};
use crate::rollup::Buckets;
use crate::segment::Segment;
use crate::series::{SeriesKey, TimeRange};

/// The stored buckets of one tier used for a part of a set's time.
pub(crate) struct BucketLayer {
    /// The tier's resolution: divides the set's.
    pub resolution_ms: i64,
    /// The bucket starts (at `resolution_ms`) this layer provides.
    pub starts: TimeRange,
    /// The tier's rollup segments that may hold such buckets, in time
    /// order (a tier's segments hold disjoint bucket ranges).
    pub segments: Vec<Arc<Segment>>,
}

/// Where one series has buckets in one rollup segment.
#[derive(Clone, Copy)]
struct StoredPart {
    layer: u32,
    segment: u32,
    ids: ColumnIds,
}

/// One series: `parts[parts_start..parts_end]` in time order, then
/// optionally series `raw` of the raw set.
struct Entry {
    key: SeriesKey,
    parts_start: u32,
    parts_end: u32,
    raw: Option<usize>,
}

/// A snapshot of the buckets of matching series; see the module
/// invariants.
pub struct BucketSet<'a> {
    resolution_ms: i64,
    starts: TimeRange,
    layers: Vec<BucketLayer>,
    raw: SeriesSet<'a>,
    parts: Vec<StoredPart>,
    entries: Vec<Entry>,
    /// The stored columns reads decode (see [`Self::only_columns`]).
    columns: ColumnSet,
}

impl<'a> BucketSet<'a> {
    /// Selects the series matching `matchers` in `layers` and `raw` (whose
    /// range must start where the last layer ends), grouped by key.
    /// `starts` are the first and last bucket start wanted, multiples of
    /// `resolution_ms`.
    pub(crate) fn select(
        resolution_ms: i64,
        starts: TimeRange,
        matchers: &[Matcher],
        layers: Vec<BucketLayer>,
        raw: SeriesSet<'a>,
    ) -> BucketSet<'a> {
        let mut found: Vec<(SeriesKey, Option<StoredPart>, Option<usize>)> = Vec::new();
        for (layer_index, layer) in layers.iter().enumerate() {
            let span_end = layer
                .starts
                .max_time_ms
                .saturating_add(layer.resolution_ms - 1);
            for (segment_index, segment) in layer.segments.iter().enumerate() {
                let footer = segment.footer();
                if !TimeRange::new(layer.starts.min_time_ms, span_end)
                    .overlaps(footer.min_time_ms, footer.max_time_ms)
                {
                    continue;
                }
                for ids in store::select(segment, matchers) {
                    if let Some(key) = store::base_key(segment, &ids) {
                        let part = StoredPart {
                            layer: layer_index as u32,
                            segment: segment_index as u32,
                            ids,
                        };
                        found.push((key, Some(part), None));
                    }
                }
            }
        }
        for index in 0..raw.len() {
            found.push((raw.key(index).clone(), None, Some(index)));
        }
        // Stable: a key's parts stay in layer and segment (time) order.
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let mut parts = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        for (key, part, raw_index) in found {
            let start_new = entries.last().is_none_or(|e| e.key != key);
            if start_new {
                entries.push(Entry {
                    key,
                    parts_start: parts.len() as u32,
                    parts_end: parts.len() as u32,
                    raw: None,
                });
            }
            let Some(entry) = entries.last_mut() else {
                continue;
            };
            if let Some(part) = part {
                parts.push(part);
                entry.parts_end = parts.len() as u32;
            }
            if raw_index.is_some() {
                entry.raw = raw_index;
            }
        }
        BucketSet {
            resolution_ms,
            starts,
            layers,
            raw,
            parts,
            entries,
            columns: ColumnSet::ALL,
        }
    }

    /// Reads decode only `columns` of stored buckets (and `count` and
    /// `first`); the other columns of what [`Self::read`] returns are
    /// unspecified where buckets come from a tier. For a caller that
    /// uses only those columns (a query function), this saves decoding.
    pub(crate) fn only_columns(mut self, columns: ColumnSet) -> Self {
        self.columns = columns;
        self
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn resolution_ms(&self) -> i64 {
        self.resolution_ms
    }

    /// The first and last bucket start the set was selected for.
    pub fn starts(&self) -> TimeRange {
        self.starts
    }

    /// The base key of series `index`. Panics unless `index < len()`.
    pub fn key(&self, index: usize) -> &SeriesKey {
        &self.entries[index].key
    }

    /// Reads series `index`'s buckets into `out` (cleared first; an index
    /// past the end reads nothing). Damaged bytes or misaligned rollup
    /// columns are an error naming the file and series.
    pub fn read(&self, index: usize, out: &mut Buckets) -> Result<()> {
        out.clear();
        let Some(entry) = self.entries.get(index) else {
            return Ok(());
        };
        let mut part_buckets = Buckets::default();
        for part in &self.parts[entry.parts_start as usize..entry.parts_end as usize] {
            let layer = &self.layers[part.layer as usize];
            part_buckets.clear();
            store::read_columns(
                &layer.segments[part.segment as usize],
                &part.ids,
                layer.starts,
                layer.resolution_ms,
                self.columns,
                &mut part_buckets,
            )?;
            part_buckets.roll_up(self.resolution_ms, out);
        }
        if let Some(raw_index) = entry.raw {
            let mut columns = SeriesColumns::default();
            self.raw.read(raw_index, &mut columns)?;
            part_buckets.clear();
            part_buckets.push_raw(&columns.timestamps_ms, &columns.values, self.resolution_ms);
            part_buckets.roll_up(self.resolution_ms, out);
        }
        Ok(())
    }
}

/// The raw samples a bucket set of `resolution_ms` over bucket `starts`
/// reads: from the first start to the end of the last bucket.
pub(crate) fn sample_range(starts: TimeRange, resolution_ms: i64) -> TimeRange {
    TimeRange::new(
        starts.min_time_ms,
        starts
            .max_time_ms
            .saturating_add(resolution_ms.saturating_sub(1)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_sets_are_shared_between_threads() {
        fn sync<T: Sync + Send>() {}
        sync::<BucketSet<'static>>();
    }
}
