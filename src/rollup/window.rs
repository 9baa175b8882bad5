//! Closed windows `[end - range, end]` summarised from buckets instead of
//! samples.
//!
//! A window is *aligned* to a resolution `res` when `res` divides both its
//! length and its end. Such a window holds exactly the samples of the
//! whole buckets starting in `[end - range, end)` plus, because the window
//! is closed at its end (Prometheus 2.42), the sample at `end` itself: the
//! first sample of the bucket starting at `end` when that sample's
//! timestamp is `end`. So its count, sum, min, max, first and last sample
//! and reset-adjusted counter increase follow from the buckets
//! ([`WindowSummary`]): count, min, max, first and last exactly, sum and
//! increase up to float summation order. The increase is the buckets' own
//! increases plus, between consecutive non-empty parts, the counter
//! increase from the earlier part's last sample to the later one's first
//! ([`super::counter_increase`]), which sums to what Prometheus' `rate`
//! adds sample by sample.
//!
//! Invariants: [`WindowCursor::window`] is called with non-decreasing ends
//! and one range, every end and the range multiples of the buckets'
//! resolution; it then reads each bucket a bounded number of times beyond
//! the windows it belongs to (the cursor only moves forward).

use super::{counter_increase, max_of, min_of, Buckets};

/// What a window's samples add up to; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSummary {
    pub count: u64,
    /// Compensated (Kahan-Neumaier) running sum and its compensation.
    sum: f64,
    sum_compensation: f64,
    pub min: f64,
    pub max: f64,
    pub first_ms: i64,
    pub first: f64,
    pub last_ms: i64,
    pub last: f64,
    /// The counter increase from the first to the last sample, a drop
    /// counting as a reset to zero.
    pub increase: f64,
}

impl WindowSummary {
    /// A window of the one sample `value` at `timestamp_ms`.
    pub fn of_sample(timestamp_ms: i64, value: f64) -> WindowSummary {
        WindowSummary {
            count: 1,
            sum: value,
            sum_compensation: 0.0,
            min: value,
            max: value,
            first_ms: timestamp_ms,
            first: value,
            last_ms: timestamp_ms,
            last: value,
            increase: 0.0,
        }
    }

    /// A window of bucket `index` of `buckets`.
    pub fn of_bucket(buckets: &Buckets, index: usize) -> WindowSummary {
        WindowSummary {
            count: buckets.count[index],
            sum: buckets.sum[index],
            sum_compensation: 0.0,
            min: buckets.min[index],
            max: buckets.max[index],
            first_ms: buckets.first_ms[index],
            first: buckets.first[index],
            last_ms: buckets.last_ms[index],
            last: buckets.last[index],
            increase: buckets.increase[index],
        }
    }

    /// Extends the window by `later`, whose samples all come after this
    /// window's.
    pub fn extend(&mut self, later: &WindowSummary) {
        self.count += later.count;
        self.add_to_sum(later.sum);
        self.min = min_of(self.min, later.min);
        self.max = max_of(self.max, later.max);
        self.increase += counter_increase(self.last, later.first) + later.increase;
        self.last_ms = later.last_ms;
        self.last = later.last;
    }

    fn add_to_sum(&mut self, value: f64) {
        let total = self.sum + value;
        self.sum_compensation += if self.sum.abs() >= value.abs() {
            (self.sum - total) + value
        } else {
            (value - total) + self.sum
        };
        self.sum = total;
    }

    /// The sum of the window's values (compensated).
    pub fn sum(&self) -> f64 {
        if self.sum.is_infinite() {
            self.sum
        } else {
            self.sum + self.sum_compensation
        }
    }
}

/// Slides aligned windows forward over one series' buckets; see the
/// module invariants.
#[derive(Debug)]
pub struct WindowCursor<'b> {
    buckets: &'b Buckets,
    /// The first bucket starting at or after the current window's start.
    lo: usize,
    /// The first bucket starting at or after the current window's end.
    hi: usize,
}

impl<'b> WindowCursor<'b> {
    pub fn new(buckets: &'b Buckets) -> Self {
        WindowCursor {
            buckets,
            lo: 0,
            hi: 0,
        }
    }

    /// The summary of the closed window `[end_ms - range_ms, end_ms]`, or
    /// `None` when it holds no sample.
    pub fn window(&mut self, end_ms: i64, range_ms: i64) -> Option<WindowSummary> {
        let starts = &self.buckets.start_ms;
        let start_ms = end_ms.saturating_sub(range_ms);
        while self.lo < starts.len() && starts[self.lo] < start_ms {
            self.lo += 1;
        }
        self.hi = self.hi.max(self.lo);
        while self.hi < starts.len() && starts[self.hi] < end_ms {
            self.hi += 1;
        }
        let mut summary: Option<WindowSummary> = None;
        let mut add = |part: WindowSummary| match &mut summary {
            Some(s) => s.extend(&part),
            None => summary = Some(part),
        };
        for index in self.lo..self.hi {
            add(WindowSummary::of_bucket(self.buckets, index));
        }
        let b = self.buckets;
        if self.hi < starts.len() && starts[self.hi] == end_ms && b.first_ms[self.hi] == end_ms {
            add(WindowSummary::of_sample(end_ms, b.first[self.hi]));
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The summary computed sample by sample, as the definition says.
    fn direct(ts: &[i64], vs: &[f64], start_ms: i64, end_ms: i64) -> Option<WindowSummary> {
        let mut summary: Option<WindowSummary> = None;
        for (&t, &v) in ts.iter().zip(vs) {
            if t < start_ms || t > end_ms {
                continue;
            }
            let sample = WindowSummary::of_sample(t, v);
            match &mut summary {
                Some(s) => s.extend(&sample),
                None => summary = Some(sample),
            }
        }
        summary
    }

    fn close(a: f64, b: f64, scale: f64) -> bool {
        (a - b).abs() <= 1e-12 * scale.max(1.0)
    }

    #[test]
    fn the_sample_at_the_end_belongs_to_the_window() {
        // Buckets of 10: [0,10) holds 0 and 5, [10,20) holds 10 and 15.
        let mut b = Buckets::default();
        b.push_raw(&[0, 5, 10, 15], &[1.0, 2.0, 3.0, 4.0], 10);
        let mut cursor = WindowCursor::new(&b);
        let w = cursor.window(10, 10).unwrap();
        // [0, 10] closed: 0, 5 and 10.
        assert_eq!((w.count, w.first_ms, w.last_ms, w.last), (3, 0, 10, 3.0));
        assert_eq!(w.sum(), 6.0);
        // [10, 20]: 10 and 15 (no bucket starts at 20).
        let w = cursor.window(20, 10).unwrap();
        assert_eq!((w.count, w.first_ms, w.last_ms), (2, 10, 15));
        assert_eq!(cursor.window(40, 10), None);
    }

    #[test]
    fn increase_spans_resets_inside_and_between_buckets() {
        // 5, 8 | 2 (reset: +2) , 4 | 1 (reset: +1) at the window's end.
        let mut b = Buckets::default();
        b.push_raw(&[0, 5, 10, 15, 20], &[5.0, 8.0, 2.0, 4.0, 1.0], 10);
        let w = WindowCursor::new(&b).window(20, 20).unwrap();
        assert_eq!(w.increase, 3.0 + 2.0 + 2.0 + 1.0);
        assert_eq!((w.min, w.max, w.count), (1.0, 8.0, 5));
    }

    proptest! {
        #[test]
        fn aligned_windows_equal_the_samples_they_close_over(
            raw in proptest::collection::btree_map(-50i64..400, -100.0f64..100.0, 0..120),
            res_index in 0usize..3,
            range_buckets in 1i64..6,
            step_buckets in 1i64..4,
        ) {
            let res = [1i64, 10, 30][res_index];
            let (ts, vs): (Vec<i64>, Vec<f64>) = raw.into_iter().unzip();
            let mut b = Buckets::default();
            b.push_raw(&ts, &vs, res);
            let range = range_buckets * res;
            let mut cursor = WindowCursor::new(&b);
            let mut end = -60;
            while end <= 420 {
                let got = cursor.window(end, range);
                let want = direct(&ts, &vs, end - range, end);
                match (got, want) {
                    (Some(g), Some(w)) => {
                        prop_assert_eq!(
                            (g.count, g.min, g.max, g.first_ms, g.first, g.last_ms, g.last),
                            (w.count, w.min, w.max, w.first_ms, w.first, w.last_ms, w.last)
                        );
                        let scale = vs.iter().map(|v| v.abs()).sum::<f64>();
                        prop_assert!(close(g.sum(), w.sum(), scale));
                        prop_assert!(close(g.increase, w.increase, scale));
                    }
                    (g, w) => prop_assert_eq!(g, w),
                }
                end += step_buckets * res;
            }
        }
    }
}
