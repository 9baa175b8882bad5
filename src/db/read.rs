//! Queries over a consistent snapshot of segments, frozen and live head
//! data. The snapshot is taken under the shared gate, so a concurrent flush
//! cannot move data between places while the reader looks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Db, Version};
use crate::error::Result;
use crate::head::{MemSeries, PartitionSnapshot};
use crate::index::{self, Matcher};
use crate::query::{merge_last_wins, SeriesSamples};
use crate::series::{Sample, SeriesKey, TimeRange};

/// Matching head series with copies of their partitions.
type HeadSnapshot = Vec<(Arc<MemSeries>, Vec<PartitionSnapshot>)>;

impl Db {
    /// For every series matching all `matchers` with samples in `range`,
    /// its samples in time order, merged across segments and head (a
    /// repeated timestamp keeps the last write). Sorted by series key.
    pub fn select(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<SeriesSamples>> {
        let (version, head) = self.snapshot(matchers, range);
        let mut runs: BTreeMap<SeriesKey, Vec<Vec<Sample>>> = BTreeMap::new();
        for live in &version.segments {
            if !range.overlaps(live.meta.min_time_ms, live.meta.max_time_ms) {
                continue;
            }
            let segment = &live.segment;
            for id in segment.select(matchers) {
                let samples = segment.read_samples(id, range)?;
                if let (Some(key), false) = (segment.series_key(id), samples.is_empty()) {
                    runs.entry(key.clone()).or_default().push(samples);
                }
            }
        }
        for (series, partitions) in &head {
            let entry = runs.entry(SeriesKey::clone(&series.key)).or_default();
            for frozen in &version.frozen {
                entry.push(frozen.read(series.series_id, range)?);
            }
            for partition in partitions {
                entry.push(partition.samples(range)?);
            }
        }
        Ok(runs
            .into_iter()
            .map(|(key, runs)| SeriesSamples {
                key,
                samples: merge_last_wins(runs),
            })
            .filter(|s| !s.samples.is_empty())
            .collect())
    }

    /// Keys of every series matching all `matchers`, sorted.
    pub fn find_series(&self, matchers: &[Matcher]) -> Vec<SeriesKey> {
        let (version, head) = self.snapshot(matchers, TimeRange::new(0, -1));
        let mut keys: BTreeSet<SeriesKey> = head
            .into_iter()
            .map(|(s, _)| SeriesKey::clone(&s.key))
            .collect();
        for live in &version.segments {
            let segment = &live.segment;
            keys.extend(
                segment
                    .select(matchers)
                    .into_iter()
                    .filter_map(|id| segment.series_key(id).cloned()),
            );
        }
        keys.into_iter().collect()
    }

    /// Every label name, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let version = self.inner.version.read().clone();
        let mut names: BTreeSet<String> = self
            .inner
            .head
            .index()
            .label_names()
            .map(str::to_owned)
            .collect();
        for live in &version.segments {
            names.extend(live.segment.label_names().into_iter().map(str::to_owned));
        }
        names.into_iter().collect()
    }

    /// Every value of label `name`, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let version = self.inner.version.read().clone();
        let mut values: BTreeSet<String> = self
            .inner
            .head
            .index()
            .label_values(name)
            .map(str::to_owned)
            .collect();
        for live in &version.segments {
            values.extend(
                live.segment
                    .label_values(name)
                    .into_iter()
                    .map(str::to_owned),
            );
        }
        values.into_iter().collect()
    }

    /// The current segments and frozen data, plus copies of the matching
    /// head series' partitions overlapping `range`.
    fn snapshot(&self, matchers: &[Matcher], range: TimeRange) -> (Arc<Version>, HeadSnapshot) {
        let inner = &self.inner;
        let partition_ms = inner.options.partition_duration_ms;
        let _gate = inner.gate.read();
        let version = inner.version.read().clone();
        let index = inner.head.index();
        let head = index::select(&*index, matchers)
            .into_iter()
            .filter_map(|id| index.get(id))
            .map(|series| (Arc::clone(series), series.snapshot(range, partition_ms)))
            .collect();
        (version, head)
    }
}
