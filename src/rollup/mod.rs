//! Rollups: raw samples downsampled into fixed-width time buckets, and
//! buckets rolled up into wider ones.
//!
//! A bucket of resolution `res` starting at `b` (a multiple of `res`)
//! summarises one series' samples with `b <= t < b + res`: their count,
//! sum, min and max, the first and the last sample with their timestamps,
//! and the counter increase from the first to the last sample with counter
//! resets accounted as Prometheus' `rate` does (a drop means the counter
//! restarted from zero: the sample's whole value is increase). The
//! increase *between* two buckets is not stored: it follows from the
//! earlier bucket's last and the later one's first sample, so every
//! window made of whole buckets has its exact `rate`, `increase` and
//! `*_over_time` (see [`Buckets`]).
//!
//! Invariants:
//! - only non-empty buckets exist: `count >= 1`, and
//!   `start <= first_ms <= last_ms < start + res`;
//! - buckets are in strictly increasing start order;
//! - Prometheus staleness markers are not samples here: they are skipped
//!   (a rolled-up series shows no staleness);
//! - rolling buckets up into a coarser resolution gives the buckets that
//!   rolling the raw samples up directly would give: count, min, max,
//!   first and last exactly, sum and increase up to float summation order.

pub mod store;
pub mod window;

use crate::series::is_stale;

/// The label that names a rollup column in a rollup segment (see
/// docs/FORMAT.md, "Rollup segments"); appends refuse it.
pub const ROLLUP_LABEL: &str = "__rollup__";

/// One column of a rollup, stored as its own series in a rollup segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    Count,
    Sum,
    Min,
    Max,
    /// At the first sample's own timestamp.
    First,
    /// At the last sample's own timestamp.
    Last,
    /// The reset-adjusted increase from first to last.
    Increase,
}

impl Column {
    pub const ALL: [Column; 7] = [
        Column::Count,
        Column::Sum,
        Column::Min,
        Column::Max,
        Column::First,
        Column::Last,
        Column::Increase,
    ];

    /// The value of [`ROLLUP_LABEL`] for this column.
    pub fn label_value(self) -> &'static str {
        match self {
            Column::Count => "count",
            Column::Sum => "sum",
            Column::Min => "min",
            Column::Max => "max",
            Column::First => "first",
            Column::Last => "last",
            Column::Increase => "increase",
        }
    }

    pub fn from_label_value(value: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.label_value() == value)
    }
}

/// One series' buckets at one resolution, as columns of equal length, in
/// increasing start order; see the module invariants.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Buckets {
    pub start_ms: Vec<i64>,
    pub count: Vec<u64>,
    pub sum: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    pub first_ms: Vec<i64>,
    pub first: Vec<f64>,
    pub last_ms: Vec<i64>,
    pub last: Vec<f64>,
    pub increase: Vec<f64>,
}

/// The start of the bucket of resolution `resolution_ms` holding
/// `timestamp_ms`: the largest multiple of `resolution_ms` not after it
/// (`i64::MIN` where that multiple would be below it).
pub fn bucket_start(timestamp_ms: i64, resolution_ms: i64) -> i64 {
    crate::head::partition_start(timestamp_ms, resolution_ms)
}

/// The increase of a counter going from `previous` to `next`: a drop is a
/// reset to zero, so the whole of `next` is increase.
pub fn counter_increase(previous: f64, next: f64) -> f64 {
    if next < previous {
        next
    } else {
        next - previous
    }
}

/// Min as Prometheus' `min_over_time`: NaN only when every value is NaN.
fn min_of(a: f64, b: f64) -> f64 {
    if b < a || a.is_nan() {
        b
    } else {
        a
    }
}

/// Max as Prometheus' `max_over_time`.
fn max_of(a: f64, b: f64) -> f64 {
    if b > a || a.is_nan() {
        b
    } else {
        a
    }
}

impl Buckets {
    pub fn clear(&mut self) {
        self.start_ms.clear();
        self.count.clear();
        self.sum.clear();
        self.min.clear();
        self.max.clear();
        self.first_ms.clear();
        self.first.clear();
        self.last_ms.clear();
        self.last.clear();
        self.increase.clear();
    }

    pub fn len(&self) -> usize {
        self.start_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.start_ms.is_empty()
    }

    /// Total samples summarised.
    pub fn sample_count(&self) -> u64 {
        self.count.iter().sum()
    }

    /// Appends a bucket starting at `start_ms` holding one sample.
    fn push_sample(&mut self, start_ms: i64, timestamp_ms: i64, value: f64) {
        self.start_ms.push(start_ms);
        self.count.push(1);
        self.sum.push(value);
        self.min.push(value);
        self.max.push(value);
        self.first_ms.push(timestamp_ms);
        self.first.push(value);
        self.last_ms.push(timestamp_ms);
        self.last.push(value);
        self.increase.push(0.0);
    }

    /// Rolls raw samples up into buckets of `resolution_ms`, appending
    /// them. `timestamps_ms` must be strictly increasing and start after
    /// the last bucket already held ends (callers feed a series in time
    /// order, one run after another); staleness markers are skipped.
    pub fn push_raw(&mut self, timestamps_ms: &[i64], values: &[f64], resolution_ms: i64) {
        for (&t, &v) in timestamps_ms.iter().zip(values) {
            if is_stale(v) {
                continue;
            }
            let start = bucket_start(t, resolution_ms);
            let last = self.len().wrapping_sub(1);
            if self.start_ms.last() != Some(&start) {
                self.push_sample(start, t, v);
                continue;
            }
            self.count[last] += 1;
            self.sum[last] += v;
            self.min[last] = min_of(self.min[last], v);
            self.max[last] = max_of(self.max[last], v);
            self.increase[last] += counter_increase(self.last[last], v);
            self.last_ms[last] = t;
            self.last[last] = v;
        }
    }

    /// Rolls these buckets up into buckets of `resolution_ms` (a multiple
    /// of theirs), appending them to `out`.
    pub fn roll_up(&self, resolution_ms: i64, out: &mut Buckets) {
        for i in 0..self.len() {
            let start = bucket_start(self.start_ms[i], resolution_ms);
            if out.start_ms.last() != Some(&start) {
                out.start_ms.push(start);
                out.count.push(self.count[i]);
                out.sum.push(self.sum[i]);
                out.min.push(self.min[i]);
                out.max.push(self.max[i]);
                out.first_ms.push(self.first_ms[i]);
                out.first.push(self.first[i]);
                out.last_ms.push(self.last_ms[i]);
                out.last.push(self.last[i]);
                out.increase.push(self.increase[i]);
                continue;
            }
            let last = out.len() - 1;
            out.count[last] += self.count[i];
            out.sum[last] += self.sum[i];
            out.min[last] = min_of(out.min[last], self.min[i]);
            out.max[last] = max_of(out.max[last], self.max[i]);
            out.increase[last] +=
                counter_increase(out.last[last], self.first[i]) + self.increase[i];
            out.last_ms[last] = self.last_ms[i];
            out.last[last] = self.last[i];
        }
    }

    /// Appends bucket `index` of `other`.
    pub fn push_from(&mut self, other: &Buckets, index: usize) {
        self.start_ms.push(other.start_ms[index]);
        self.count.push(other.count[index]);
        self.sum.push(other.sum[index]);
        self.min.push(other.min[index]);
        self.max.push(other.max[index]);
        self.first_ms.push(other.first_ms[index]);
        self.first.push(other.first[index]);
        self.last_ms.push(other.last_ms[index]);
        self.last.push(other.last[index]);
        self.increase.push(other.increase[index]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_samples_fill_buckets_and_resets_count_as_increase() {
        let mut b = Buckets::default();
        // Bucket [0, 10): a counter 1, 3, reset to 2; bucket [10, 20): 5.
        b.push_raw(&[0, 4, 9, 12], &[1.0, 3.0, 2.0, 5.0], 10);
        assert_eq!(b.start_ms, [0, 10]);
        assert_eq!(b.count, [3, 1]);
        assert_eq!(b.sum, [6.0, 5.0]);
        assert_eq!((b.min[0], b.max[0]), (1.0, 3.0));
        assert_eq!((b.first_ms[0], b.first[0]), (0, 1.0));
        assert_eq!((b.last_ms[0], b.last[0]), (9, 2.0));
        assert_eq!(b.increase, [2.0 + 2.0, 0.0]);
    }

    #[test]
    fn rolling_up_equals_rolling_raw_directly() {
        let ts: Vec<i64> = (0..200).map(|i| i * 7 - 300).collect();
        let vs: Vec<f64> = (0..200).map(|i| ((i * 37) % 23) as f64).collect();
        let mut fine = Buckets::default();
        fine.push_raw(&ts, &vs, 10);
        let mut coarse = Buckets::default();
        fine.roll_up(60, &mut coarse);
        let mut direct = Buckets::default();
        direct.push_raw(&ts, &vs, 60);
        assert_eq!(coarse, direct);
    }

    #[test]
    fn staleness_markers_are_skipped_and_nan_loses_min_max() {
        let stale = f64::from_bits(crate::series::STALE_NAN_BITS);
        let mut b = Buckets::default();
        b.push_raw(&[1, 2, 3], &[f64::NAN, stale, 4.0], 10);
        assert_eq!(b.count, [2]);
        assert_eq!((b.min[0], b.max[0]), (4.0, 4.0));
    }
}
