//! Reading the rollup tiers: bucket sets over one snapshot of the
//! database ([`Db::select_bucket_set`]), and the samples `select` gives
//! where retention has deleted the raw data.
//!
//! Which data answers which bucket, for a set of resolution `res`
//! (see [`crate::query::buckets`]): the stored tiers whose resolution
//! divides `res`, coarsest first, each for the bucket starts from where
//! the previous one stopped up to its `rolled_up_to_ms` (every raw sample
//! before that is in its segments); raw segments and head after the last.
//! Tier `k` is rolled up from tier `k - 1`, so coarser tiers are never
//! rolled up further than finer ones and a coarse tier is preferred
//! wherever it covers.
//!
//! Invariant: the version (segments, rollups, tiers, retention) and the
//! head partitions are taken once, together, under the gate, so a set
//! never sees a compaction or flush half done.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::read::raw_series_set;
use super::{Db, Version};
use crate::error::{InputError, Result};
use crate::index::Matcher;
use crate::query::buckets::{sample_range, BucketLayer, BucketSet};
use crate::query::source::SeriesSet;
use crate::query::SeriesSamples;
use crate::rollup::{bucket_start, Buckets};
use crate::series::{Sample, SeriesKey, TimeRange};

impl Db {
    /// The resolutions of the stored rollup tiers, ascending.
    ///
    /// ```
    /// use strata::{Db, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// assert!(db.tier_resolutions().is_empty()); // nothing compacted yet
    /// # Ok(())
    /// # }
    /// ```
    pub fn tier_resolutions(&self) -> Vec<i64> {
        let version = self.inner.version.read().clone();
        let mut resolutions: Vec<i64> = version.tiers.iter().map(|t| t.resolution_ms).collect();
        resolutions.sort_unstable();
        resolutions.dedup();
        resolutions
    }

    /// The buckets of `resolution_ms` of the series matching every
    /// matcher, for bucket starts in `starts` (rounded down to multiples of
    /// `resolution_ms`), for streaming reads; see [`BucketSet`]. Stored
    /// tiers answer where they have rolled up (a tier whose resolution
    /// divides `resolution_ms`, coarsest first), raw samples elsewhere. The
    /// same as [`crate::Queryable::select_buckets`].
    ///
    /// ```
    /// use strata::{Db, Matcher, Options, SeriesKey, TimeRange};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let key = SeriesKey::new("up", &[("job", "a")])?;
    /// for i in 0..12 {
    ///     db.append(&key, i * 10_000, i as f64)?; // every 10 s for 2 minutes
    /// }
    ///
    /// let job_a = [Matcher::equal("job", "a")];
    /// let set = db.select_bucket_set(&job_a, TimeRange::new(0, 119_999), 60_000)?;
    /// assert_eq!(set.starts(), TimeRange::new(0, 60_000)); // rounded down to bucket starts
    /// assert_eq!((set.len(), set.key(0)), (1, &key));
    /// let mut buckets = Default::default(); // a `Buckets`, filled by `read`
    /// set.read(0, &mut buckets)?;
    /// assert_eq!(buckets.count, [6, 6]);
    /// assert_eq!(buckets.max, [5.0, 11.0]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn select_bucket_set(
        &self,
        matchers: &[Matcher],
        starts: TimeRange,
        resolution_ms: i64,
    ) -> Result<BucketSet<'_>> {
        if resolution_ms <= 0 {
            return Err(InputError::BadOption(format!(
                "a bucket resolution must be positive, got {resolution_ms} ms"
            ))
            .into());
        }
        let starts = TimeRange::new(
            bucket_start(starts.min_time_ms, resolution_ms),
            bucket_start(starts.max_time_ms, resolution_ms),
        );
        let samples = sample_range(starts, resolution_ms);
        let (version, heads) = self.snapshot(matchers, samples);
        let (layers, raw_from_ms) = layers(&version, samples, resolution_ms);
        let raw_range = TimeRange::new(raw_from_ms, samples.max_time_ms);
        let raw = if raw_from_ms <= samples.max_time_ms {
            raw_series_set(&version, heads, matchers, raw_range)
        } else {
            // The tiers cover everything.
            SeriesSet::select(samples, matchers, Vec::new(), Vec::new())
        };
        Ok(BucketSet::select(
            resolution_ms,
            starts,
            matchers,
            layers,
            raw,
        ))
    }

    /// For every series matching all `matchers` with samples in `range`,
    /// its buckets of `resolution_ms` (all of them, with their whole
    /// content, for the buckets that overlap `range`), sorted by series
    /// key: a caller's way to read one tier. A materialising convenience
    /// over [`Self::select_bucket_set`].
    ///
    /// ```
    /// use strata::{Db, Matcher, Options, SeriesKey, TimeRange};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let key = SeriesKey::new("requests_total", &[("job", "a")])?;
    /// // A counter every 10 s for 2 minutes, reset to 0 at 70 s.
    /// for i in 0..12 {
    ///     let value = if i < 7 { i * 5 } else { (i - 7) * 5 };
    ///     db.append(&key, i * 10_000, value as f64)?;
    /// }
    ///
    /// let minutes = db.select_buckets(&[Matcher::equal("job", "a")], TimeRange::ALL, 60_000)?;
    /// let (series, buckets) = &minutes[0];
    /// assert_eq!(series, &key);
    /// assert_eq!(buckets.start_ms, [0, 60_000]);
    /// assert_eq!(buckets.count, [6, 6]);
    /// assert_eq!((buckets.min[1], buckets.max[1]), (0.0, 30.0));
    /// // 30 → 0 is a reset: the minute's increase is 0 + 5 + … + 5.
    /// assert_eq!(buckets.increase, [25.0, 20.0]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn select_buckets(
        &self,
        matchers: &[Matcher],
        range: TimeRange,
        resolution_ms: i64,
    ) -> Result<Vec<(SeriesKey, Buckets)>> {
        // The buckets holding the range's ends, and all between.
        let set = self.select_bucket_set(matchers, range, resolution_ms)?;
        let mut out = Vec::with_capacity(set.len());
        for index in 0..set.len() {
            let mut buckets = Buckets::default();
            set.read(index, &mut buckets)?;
            if !buckets.is_empty() {
                out.push((set.key(index).clone(), buckets));
            }
        }
        Ok(out)
    }

    /// Where retention has deleted raw samples in `range`: every matching
    /// series' `last` samples of the finest tier that still holds each
    /// part of it (the raw series decimated to its last sample per bucket,
    /// real samples at their real timestamps), sorted by key. Empty when
    /// nothing in `range` has expired or no tier is kept.
    pub(super) fn expired_samples(
        &self,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesSamples>> {
        let version = self.inner.version.read().clone();
        if version.raw_retained_from_ms <= range.min_time_ms {
            return Ok(Vec::new());
        }
        let mut tiers = version.tiers.clone();
        tiers.sort_unstable_by_key(|t| t.resolution_ms);
        // Walking back in time from the cut, finest tier first: each tier
        // answers from where its own retention cut up to where a finer one
        // took over.
        let mut parts = Vec::new();
        let mut end_ms = range.max_time_ms.min(version.raw_retained_from_ms - 1);
        for tier in tiers {
            let from_ms = range.min_time_ms.max(tier.retained_from_ms);
            if from_ms > end_ms {
                continue;
            }
            let part = TimeRange::new(from_ms, end_ms);
            parts.push((
                part,
                self.select_buckets(matchers, part, tier.resolution_ms)?,
            ));
            if from_ms == i64::MIN {
                break;
            }
            end_ms = from_ms - 1;
        }
        // Oldest part first.
        let mut by_key: BTreeMap<SeriesKey, Vec<Sample>> = BTreeMap::new();
        for (part, series) in parts.into_iter().rev() {
            for (key, buckets) in series {
                let samples = by_key.entry(key).or_default();
                samples.extend(
                    buckets
                        .last_ms
                        .iter()
                        .zip(&buckets.last)
                        .filter(|(&t, _)| part.contains(t))
                        .map(|(&t, &v)| Sample::new(t, v)),
                );
            }
        }
        Ok(by_key
            .into_iter()
            .filter(|(_, samples)| !samples.is_empty())
            .map(|(key, samples)| SeriesSamples { key, samples })
            .collect())
    }
}

/// The stored layers a bucket set of `resolution_ms` reads for the samples
/// in `samples` (see the module docs), and where raw data takes over.
fn layers(version: &Version, samples: TimeRange, resolution_ms: i64) -> (Vec<BucketLayer>, i64) {
    let mut tiers: Vec<_> = version
        .tiers
        .iter()
        .filter(|t| t.resolution_ms > 0 && resolution_ms % t.resolution_ms == 0)
        .collect();
    tiers.sort_unstable_by_key(|t| std::cmp::Reverse(t.resolution_ms));
    let mut cursor_ms = samples.min_time_ms;
    let mut layers = Vec::new();
    for tier in tiers {
        let end_ms = tier
            .rolled_up_to_ms
            .min(samples.max_time_ms.saturating_add(1));
        if end_ms <= cursor_ms {
            continue;
        }
        // `end_ms` is a multiple of the tier's resolution (its
        // `rolled_up_to_ms`, or the end of a bucket of the set's), so its
        // last bucket starts one resolution before.
        let starts = TimeRange::new(cursor_ms, end_ms - tier.resolution_ms);
        let mut segments: Vec<_> = version
            .rollups
            .iter()
            .filter(|live| live.meta.resolution_ms == tier.resolution_ms)
            .filter(|live| starts.overlaps(live.meta.min_time_ms, live.meta.max_time_ms))
            .collect();
        segments.sort_by_key(|live| live.meta.min_time_ms);
        layers.push(BucketLayer {
            resolution_ms: tier.resolution_ms,
            starts,
            segments: segments
                .into_iter()
                .map(|live| Arc::clone(&live.segment))
                .collect(),
        });
        cursor_ms = end_ms;
    }
    (layers, cursor_ms)
}
