//! The streaming read path every query uses.
//!
//! A [`Queryable`] (a [`crate::Db`], live or read-only, or a single
//! [`crate::Segment`]) hands out a [`SeriesSet`]: the series matching a set
//! of matchers that may have samples in a time range, sorted by key, each
//! readable on its own into caller-owned, reused column buffers
//! ([`SeriesColumns`]). Reading one series merges every place its samples
//! live (segments by sequence number, frozen head data, the live head) by
//! the last-write-wins rule of [`super::merge_last_wins`].
//!
//! Invariants:
//! - a `SeriesSet` is a consistent snapshot: a concurrent flush or append
//!   never makes a sample appear twice or vanish from it;
//! - [`SeriesSet::read`] returns strictly increasing timestamps inside the
//!   set's range, values bit-exact as stored (NaN payloads such as
//!   Prometheus' staleness marker included);
//! - `SeriesSet` is `Sync`: series may be read from several threads at once.

use crate::error::Result;
use crate::index::Matcher;
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
}

/// Anything queries can read: a database or one segment file.
pub trait Queryable: Sync {
    /// The series matching every matcher that may have samples in `range`,
    /// sorted by key. A series in the set may turn out to have no sample in
    /// the range when read (its chunks only overlap the range's bounds).
    fn select_series(&self, matchers: &[Matcher], range: TimeRange) -> Result<SeriesSet<'_>>;

    /// Every label name, sorted.
    fn label_names(&self) -> Result<Vec<String>>;

    /// Every value of label `name`, sorted.
    fn label_values(&self, name: &str) -> Result<Vec<String>>;
}

/// A snapshot of matching series; see the module invariants.
///
/// Provisional implementation: materialises the samples at select time
/// through `select`; the streaming read path replaces it.
pub struct SeriesSet<'a> {
    _source: std::marker::PhantomData<&'a ()>,
    series: Vec<crate::query::SeriesSamples>,
}

impl SeriesSet<'_> {
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The key of series `index` (`index < len()`).
    pub fn key(&self, index: usize) -> &SeriesKey {
        &self.series[index].key
    }

    /// Reads series `index`'s samples inside the set's range into `out`
    /// (cleared first).
    pub fn read(&self, index: usize, out: &mut SeriesColumns) -> Result<()> {
        out.clear();
        if let Some(series) = self.series.get(index) {
            for s in &series.samples {
                out.timestamps_ms.push(s.timestamp_ms);
                out.values.push(s.value);
            }
        }
        Ok(())
    }
}

impl Queryable for crate::Db {
    fn select_series(&self, matchers: &[Matcher], range: TimeRange) -> Result<SeriesSet<'_>> {
        Ok(SeriesSet {
            _source: std::marker::PhantomData,
            series: self.select(matchers, range)?,
        })
    }

    fn label_names(&self) -> Result<Vec<String>> {
        Ok(crate::Db::label_names(self))
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(crate::Db::label_values(self, name))
    }
}

impl Queryable for crate::Segment {
    fn select_series(&self, matchers: &[Matcher], range: TimeRange) -> Result<SeriesSet<'_>> {
        let mut series = Vec::new();
        for id in self.select(matchers) {
            let samples = self.read_samples(id, range)?;
            if let (Some(key), false) = (self.series_key(id), samples.is_empty()) {
                series.push(crate::query::SeriesSamples {
                    key: key.clone(),
                    samples,
                });
            }
        }
        Ok(SeriesSet {
            _source: std::marker::PhantomData,
            series,
        })
    }

    fn label_names(&self) -> Result<Vec<String>> {
        Ok(crate::Segment::label_names(self)
            .into_iter()
            .map(str::to_owned)
            .collect())
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(crate::Segment::label_values(self, name)
            .into_iter()
            .map(str::to_owned)
            .collect())
    }
}
