//! Queries over a consistent snapshot of segments, frozen and live head
//! data. The snapshot is taken under the shared gate, so a concurrent flush
//! cannot move data between places while the reader looks: what it copies
//! is the current version's segment list (shared, immutable), and of every
//! matching head series the frozen and live partitions overlapping the
//! range (chunk bytes shared, out-of-order buffers copied). Everything
//! else, including all decoding, happens on the [`SeriesSet`] without a
//! lock.

use std::sync::Arc;

use super::{Db, Version};
use crate::error::Result;
use crate::index::{self, Matcher};
use crate::query::source::{HeadSeries, SegmentRef, SeriesColumns, SeriesSet};
use crate::query::SeriesSamples;
use crate::series::{Sample, SeriesKey, TimeRange};

impl Db {
    /// The series matching every matcher that may have samples in
    /// `range`, sorted by key, for streaming reads; see [`SeriesSet`].
    /// Takes the snapshot and selects without decoding anything (the same
    /// as [`crate::Queryable::select_series`]; it does not fail today).
    ///
    /// ```
    /// use strata::{Db, Matcher, Options, SeriesColumns, SeriesKey, TimeRange};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let key = SeriesKey::new("up", &[("job", "a")])?;
    /// for t in [1_000, 2_000, 3_000] {
    ///     db.append(&key, t, 1.0)?;
    /// }
    ///
    /// let set = db.select_series(&[Matcher::equal("job", "a")], TimeRange::new(2_000, 9_999))?;
    /// let mut columns = SeriesColumns::default();
    /// assert_eq!(set.len(), 1);
    /// set.read(0, &mut columns)?;
    /// assert_eq!(set.key(0), &key);
    /// assert_eq!(columns.timestamps_ms, [2_000, 3_000]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn select_series(&self, matchers: &[Matcher], range: TimeRange) -> Result<SeriesSet<'_>> {
        let (version, heads) = self.snapshot(matchers, range);
        Ok(raw_series_set(&version, heads, matchers, range))
    }

    /// The current version and, of every head series matching all
    /// `matchers`, its frozen and live partitions overlapping `range`,
    /// taken together under the gate: one consistent snapshot.
    pub(super) fn snapshot(
        &self,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> (Arc<Version>, Vec<HeadSeries>) {
        let inner = &self.inner;
        let partition_ms = inner.options.partition_duration_ms;
        let (version, live) = {
            let _gate = inner.gate.read();
            let version = inner.version.read().clone();
            let index = inner.head.index();
            let live: Vec<_> = index::select(&*index, matchers)
                .into_iter()
                .filter_map(|id| index.get(id))
                .map(|series| (Arc::clone(series), series.snapshot(range, partition_ms)))
                .collect();
            (version, live)
        };
        let overlaps =
            |start_ms: i64| range.overlaps(start_ms, start_ms.saturating_add(partition_ms - 1));
        let heads = live
            .into_iter()
            .filter_map(|(series, live_partitions)| {
                let mut partitions: Vec<_> = version
                    .frozen
                    .iter()
                    .flat_map(|frozen| frozen.partitions(series.series_id))
                    .filter(|p| overlaps(p.start_ms))
                    .cloned()
                    .collect();
                partitions.extend(live_partitions);
                (!partitions.is_empty()).then(|| HeadSeries {
                    key: Arc::clone(&series.key),
                    partitions,
                })
            })
            .collect();
        (version, heads)
    }

    /// For every series matching all `matchers` with samples in `range`,
    /// its samples in time order, merged across segments and head (a
    /// repeated timestamp keeps the last write). Sorted by series key.
    /// A convenience over [`Self::select_series`] that materialises
    /// everything; queries stream instead.
    ///
    /// Where retention has deleted the raw samples of part of `range`
    /// (before the manifest's `raw_retained_from_ms`), that part comes
    /// from the finest rollup tier: each bucket's `last` sample, i.e. the
    /// raw series decimated to one real sample (at its real timestamp)
    /// per bucket. [`Self::select_buckets`] reads a tier's full buckets.
    ///
    /// ```
    /// use strata::{Db, Matcher, Options, Sample, SeriesKey, TimeRange};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let key = SeriesKey::new("up", &[("job", "a")])?;
    /// db.append(&key, 1_000, 1.0)?;
    /// db.append(&key, 1_000, 0.0)?; // the same timestamp again: the last write wins
    ///
    /// let stored = db.select(&[Matcher::equal("__name__", "up")], TimeRange::ALL)?;
    /// assert_eq!(stored.len(), 1);
    /// assert_eq!(stored[0].key, key);
    /// assert_eq!(stored[0].samples, [Sample::new(1_000, 0.0)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn select(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<SeriesSamples>> {
        let raw = self.select_raw(matchers, range)?;
        let expired = self.expired_samples(matchers, range)?;
        if expired.is_empty() {
            return Ok(raw);
        }
        // Both sorted by key: merge, the tier's samples (all older than
        // the retained raw data) first.
        let mut out = Vec::with_capacity(raw.len().max(expired.len()));
        let mut raw = raw.into_iter().peekable();
        for mut old in expired {
            while let Some(newer) = raw.next_if(|r| r.key < old.key) {
                out.push(newer);
            }
            if let Some(newer) = raw.next_if(|r| r.key == old.key) {
                let first_raw_ms = newer.samples[0].timestamp_ms;
                old.samples.retain(|s| s.timestamp_ms < first_raw_ms);
                old.samples.extend(newer.samples);
            }
            out.push(old);
        }
        out.extend(raw);
        Ok(out)
    }

    /// [`Self::select`] of the raw data only.
    fn select_raw(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<SeriesSamples>> {
        let set = self.select_series(matchers, range)?;
        let mut columns = SeriesColumns::default();
        let mut out = Vec::with_capacity(set.len());
        for i in 0..set.len() {
            set.read(i, &mut columns)?;
            if columns.is_empty() {
                continue;
            }
            out.push(SeriesSamples {
                key: set.key(i).clone(),
                samples: columns
                    .timestamps_ms
                    .iter()
                    .zip(&columns.values)
                    .map(|(&t, &v)| Sample::new(t, v))
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Keys of every series matching all `matchers` in the raw segments
    /// and the head, sorted, whether or not they still have samples in a
    /// given range (a series created by [`Db::series`] and never written
    /// is forgotten once the head's garbage collection drops it).
    ///
    /// ```
    /// use strata::{Db, Matcher, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let a = db.series(&SeriesKey::new("up", &[("job", "a")])?)?;
    /// db.series(&SeriesKey::new("up", &[("job", "b")])?)?; // no samples yet
    ///
    /// let keys = db.find_series(&[Matcher::equal("__name__", "up")]);
    /// assert_eq!(keys.len(), 2);
    /// assert_eq!(&keys[0], a.key());
    /// # Ok(())
    /// # }
    /// ```
    pub fn find_series(&self, matchers: &[Matcher]) -> Vec<SeriesKey> {
        // Under the gate, like a snapshot: a flush publishing segments and
        // the head dropping the series it emptied cannot fall in between.
        let _gate = self.inner.gate.read();
        let version = self.inner.version.read().clone();
        let head: Vec<Arc<SeriesKey>> = {
            let index = self.inner.head.index();
            index::select(&*index, matchers)
                .into_iter()
                .filter_map(|id| index.get(id).map(|s| Arc::clone(&s.key)))
                .collect()
        };
        let mut keys: Vec<&SeriesKey> = head.iter().map(|k| &**k).collect();
        for live in &version.segments {
            let segment = &live.segment;
            let all = segment.series_keys();
            keys.extend(
                segment
                    .select(matchers)
                    .into_iter()
                    .map(|id| &all[id as usize]),
            );
        }
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter().cloned().collect()
    }

    /// Every label name, sorted.
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.append(&SeriesKey::new("up", &[("job", "a")])?, 1_000, 1.0)?;
    /// assert_eq!(db.label_names(), ["__name__", "job"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn label_names(&self) -> Vec<String> {
        let _gate = self.inner.gate.read();
        let version = self.inner.version.read().clone();
        let index = self.inner.head.index();
        let mut names: Vec<&str> = index.label_names().collect();
        for live in &version.segments {
            names.extend(live.segment.label_names());
        }
        sorted_unique(names)
    }

    /// Every value of label `name`, sorted.
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.append(&SeriesKey::new("up", &[("job", "b")])?, 1_000, 1.0)?;
    /// db.append(&SeriesKey::new("up", &[("job", "a")])?, 1_000, 1.0)?;
    /// assert_eq!(db.label_values("job"), ["a", "b"]);
    /// assert!(db.label_values("zone").is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let _gate = self.inner.gate.read();
        let version = self.inner.version.read().clone();
        let index = self.inner.head.index();
        let mut values: Vec<&str> = index.label_values(name).collect();
        for live in &version.segments {
            values.extend(live.segment.label_values(name));
        }
        sorted_unique(values)
    }
}

/// The raw samples of a snapshot ([`Db::snapshot`]) in `range`: its raw
/// segments and the head partitions taken (which may extend beyond
/// `range`: reads keep to it).
pub(super) fn raw_series_set(
    version: &Version,
    heads: Vec<HeadSeries>,
    matchers: &[Matcher],
    range: TimeRange,
) -> SeriesSet<'static> {
    let segments = version
        .segments
        .iter()
        .map(|live| SegmentRef::Shared(Arc::clone(&live.segment)))
        .collect();
    SeriesSet::select(range, matchers, segments, heads)
}

fn sorted_unique(mut strings: Vec<&str>) -> Vec<String> {
    strings.sort_unstable();
    strings.dedup();
    strings.into_iter().map(str::to_owned).collect()
}
