//! The range-vector functions, each computed over one window of samples.
//!
//! A [`Window`] is the samples of one series with timestamps in the closed
//! interval `[start_ms, end_ms]` (Prometheus 2.42's range selection),
//! staleness markers already removed, in time order, never empty. Each
//! [`Kernel`] reproduces Prometheus 2.42's arithmetic operation for
//! operation (the same order of floating-point operations, Kahan-Neumaier
//! compensation where 2.42 has it), so results agree with Prometheus to
//! the last bit or within a few ulps where the Go compiler's choices are
//! unknown. A kernel returns `None` where Prometheus returns no sample
//! (fewer samples than the function needs).

use super::aggregate::quantile;
use crate::query::ast::Function;
use crate::rollup::store::ColumnSet;
use crate::rollup::window::WindowSummary;
use crate::rollup::Column;

/// The samples of one series in one window; see the module invariants.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window<'w> {
    pub ts: &'w [i64],
    pub vs: &'w [f64],
    /// The window's bounds (inclusive) and length, in milliseconds.
    pub start_ms: i64,
    pub end_ms: i64,
    pub range_ms: i64,
}

/// A function of a window of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Resets,
    Changes,
    Deriv,
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
    /// `quantile_over_time`; its φ is the kernel's parameter.
    Quantile,
    Stddev,
    /// 1 for a non-empty window: the presence test of `absent_over_time`.
    Present,
}

impl Kernel {
    /// The kernel of a range-vector function, `None` for other functions.
    pub fn of(func: Function) -> Option<Kernel> {
        Some(match func {
            Function::Rate => Kernel::Rate,
            Function::Irate => Kernel::Irate,
            Function::Increase => Kernel::Increase,
            Function::Delta => Kernel::Delta,
            Function::Idelta => Kernel::Idelta,
            Function::Resets => Kernel::Resets,
            Function::Changes => Kernel::Changes,
            Function::Deriv => Kernel::Deriv,
            Function::AvgOverTime => Kernel::Avg,
            Function::MinOverTime => Kernel::Min,
            Function::MaxOverTime => Kernel::Max,
            Function::SumOverTime => Kernel::Sum,
            Function::CountOverTime => Kernel::Count,
            Function::LastOverTime => Kernel::Last,
            Function::QuantileOverTime => Kernel::Quantile,
            Function::StddevOverTime => Kernel::Stddev,
            Function::AbsentOverTime => Kernel::Present,
            _ => return None,
        })
    }

    /// The function's value over `w`; `param` is φ for `Quantile` (ignored
    /// otherwise); `scratch` is free space.
    #[inline(always)]
    pub fn apply(self, w: &Window<'_>, param: f64, scratch: &mut Vec<f64>) -> Option<f64> {
        let vs = w.vs;
        let last = *vs.last()?;
        Some(match self {
            Kernel::Rate => return extrapolated_rate(w, true, true),
            Kernel::Increase => return extrapolated_rate(w, true, false),
            Kernel::Delta => return extrapolated_rate(w, false, false),
            Kernel::Irate => return instant_value(w, true),
            Kernel::Idelta => return instant_value(w, false),
            Kernel::Deriv => return deriv(w),
            Kernel::Resets => count_pairs(vs, |prev, cur| cur < prev),
            Kernel::Changes => count_pairs(vs, |prev, cur| {
                cur != prev && !(cur.is_nan() && prev.is_nan())
            }),
            Kernel::Avg => avg(vs),
            Kernel::Min => extreme(vs, |v, m| v < m),
            Kernel::Max => extreme(vs, |v, m| v > m),
            Kernel::Sum => sum(vs),
            Kernel::Count => vs.len() as f64,
            Kernel::Last => last,
            Kernel::Quantile => {
                scratch.clear();
                scratch.extend_from_slice(vs);
                quantile(param, scratch)
            }
            Kernel::Stddev => stddev(vs),
            Kernel::Present => 1.0,
        })
    }
}

impl Kernel {
    /// True for the kernels [`Self::apply_summary`] computes: those whose
    /// value follows from a window's count, sum, min, max, first and last
    /// samples and counter increase.
    pub fn answers_from_buckets(self) -> bool {
        matches!(
            self,
            Kernel::Rate
                | Kernel::Increase
                | Kernel::Delta
                | Kernel::Avg
                | Kernel::Min
                | Kernel::Max
                | Kernel::Sum
                | Kernel::Count
                | Kernel::Last
                | Kernel::Present
        )
    }

    /// The bucket columns [`Self::apply_summary`] reads (besides `count`
    /// and `first`, which window summaries always need).
    pub fn bucket_columns(self) -> ColumnSet {
        ColumnSet::with(match self {
            Kernel::Rate | Kernel::Increase => &[Column::Last, Column::Increase],
            Kernel::Delta | Kernel::Last => &[Column::Last],
            Kernel::Avg | Kernel::Sum => &[Column::Sum],
            Kernel::Min => &[Column::Min],
            Kernel::Max => &[Column::Max],
            _ => &[],
        })
    }

    /// The function's value over the closed window `[end_ms - range_ms,
    /// end_ms]` whose samples `s` summarises (see
    /// [`crate::rollup::window`]); `None` for a kernel that does not
    /// [`answer from buckets`](Self::answers_from_buckets) and where
    /// Prometheus gives no sample. Equal to [`Self::apply`] on the samples
    /// up to float summation order (sum, avg, and the counter increase).
    pub fn apply_summary(self, s: &WindowSummary, end_ms: i64, range_ms: i64) -> Option<f64> {
        let bounds = (end_ms.saturating_sub(range_ms), end_ms, range_ms);
        let sampled = |change| Sampled {
            first_ms: s.first_ms,
            last_ms: s.last_ms,
            first: s.first,
            count: usize::try_from(s.count).unwrap_or(usize::MAX),
            change,
        };
        Some(match self {
            Kernel::Rate => return extrapolate(bounds, &sampled(s.increase), true, true),
            Kernel::Increase => return extrapolate(bounds, &sampled(s.increase), true, false),
            Kernel::Delta => return extrapolate(bounds, &sampled(s.last - s.first), false, false),
            Kernel::Avg => s.sum() / s.count as f64,
            Kernel::Min => s.min,
            Kernel::Max => s.max,
            Kernel::Sum => s.sum(),
            Kernel::Count => s.count as f64,
            Kernel::Last => s.last,
            Kernel::Present => 1.0,
            Kernel::Irate
            | Kernel::Idelta
            | Kernel::Resets
            | Kernel::Changes
            | Kernel::Deriv
            | Kernel::Quantile
            | Kernel::Stddev => return None,
        })
    }
}

/// Kahan-Neumaier summation step: adds `inc` to `sum` with compensation
/// `c`, returning the new pair.
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// `to - from` in milliseconds as a float, exact where the difference
/// fits an i64 (as Prometheus computes it) and without overflow beyond.
fn ms_between(from: i64, to: i64) -> f64 {
    match to.checked_sub(from) {
        Some(d) => d as f64,
        None => (i128::from(to) - i128::from(from)) as f64,
    }
}

/// Go's `time.Duration.Seconds()` of a millisecond count.
fn seconds(ms: i64) -> f64 {
    (ms / 1000) as f64 + ((ms % 1000) * 1_000_000) as f64 / 1e9
}

/// rate, increase and delta: the change over the window, corrected for
/// counter resets (counters), extrapolated towards the window's edges
/// ([`extrapolate`]).
fn extrapolated_rate(w: &Window<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    let (ts, vs) = (w.ts, w.vs);
    let n = vs.len();
    if n < 2 {
        return None;
    }
    let (first, last) = (vs[0], vs[n - 1]);
    let mut change = last - first;
    // A scan that vectorizes finds the windows without a reset (the rule
    // for real counters); only the others pay for the ordered additions.
    let drops = |(cur, prev): (&f64, &f64)| cur < prev;
    if is_counter && vs[1..].iter().zip(vs).fold(false, |any, p| any | drops(p)) {
        for (&cur, &prev) in vs[1..].iter().zip(vs) {
            // Adding -0.0 is the exact identity, so this branch-free form
            // equals adding `prev` only at drops, in the same order.
            change += if cur < prev { prev } else { -0.0 };
        }
    }
    extrapolate(
        (w.start_ms, w.end_ms, w.range_ms),
        &Sampled {
            first_ms: ts[0],
            last_ms: ts[n - 1],
            first,
            count: n,
            change,
        },
        is_counter,
        is_rate,
    )
}

/// What rate, increase and delta need of a window's samples.
pub(super) struct Sampled {
    pub first_ms: i64,
    pub last_ms: i64,
    /// The first sample's value.
    pub first: f64,
    pub count: usize,
    /// The last value minus the first, plus (counters) the value before
    /// each drop.
    pub change: f64,
}

/// Extrapolates a window's sampled change to its edges (2.42): the
/// sampled interval is extended to each edge if the edge is closer than
/// 1.1 average sample intervals, else by half an interval; for counters
/// the start is extended at most to where the counter would reach zero
/// (computed before the 1.1 test, as 2.42 does). `None` under two
/// samples. `bounds` are the window's start, end and length. The one
/// extrapolation of both raw windows and windows summed from rollup
/// buckets.
pub(super) fn extrapolate(
    (start_ms, end_ms, range_ms): (i64, i64, i64),
    s: &Sampled,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if s.count < 2 {
        return None;
    }
    let result = s.change;
    let mut to_start = ms_between(start_ms, s.first_ms) / 1000.0;
    let to_end = ms_between(s.last_ms, end_ms) / 1000.0;
    let sampled = ms_between(s.first_ms, s.last_ms) / 1000.0;
    let average = sampled / (s.count - 1) as f64;
    if is_counter && result > 0.0 && s.first >= 0.0 {
        let to_zero = sampled * (s.first / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= seconds(range_ms);
    }
    Some(result * factor)
}

/// irate and idelta: from the last two samples; irate treats a decrease
/// as a counter reset (the increase is then the last value).
fn instant_value(w: &Window<'_>, is_rate: bool) -> Option<f64> {
    let n = w.vs.len();
    if n < 2 {
        return None;
    }
    let (prev, last) = (w.vs[n - 2], w.vs[n - 1]);
    let mut result = if is_rate && last < prev {
        last
    } else {
        last - prev
    };
    let interval = ms_between(w.ts[n - 2], w.ts[n - 1]);
    if interval == 0.0 {
        return None;
    }
    if is_rate {
        result /= interval / 1000.0;
    }
    Some(result)
}

/// deriv: the least-squares slope per second, with times taken relative
/// to the window's first sample (2.42, for precision); a constant series
/// has slope 0 (NaN if the constant is infinite).
fn deriv(w: &Window<'_>) -> Option<f64> {
    let (ts, vs) = (w.ts, w.vs);
    if vs.len() < 2 {
        return None;
    }
    let origin = ts[0];
    let first = vs[0];
    let mut constant = true;
    let mut n = 0.0;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    for (i, (&t, &v)) in ts.iter().zip(vs).enumerate() {
        if constant && i > 0 && v != first {
            constant = false;
        }
        n += 1.0;
        let x = ms_between(origin, t) / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if constant {
        return Some(if first.is_infinite() { f64::NAN } else { 0.0 });
    }
    let (sum_x, sum_y) = (sum_x + c_x, sum_y + c_y);
    let (sum_xy, sum_x2) = (sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    Some(cov_xy / var_x)
}

/// How many consecutive pairs `(prev, cur)` satisfy `hit`.
fn count_pairs(vs: &[f64], hit: impl Fn(f64, f64) -> bool) -> f64 {
    vs.windows(2).filter(|p| hit(p[0], p[1])).count() as f64
}

/// How far apart (relative) the fast mean and 2.42's incremental mean may
/// be, at most: see [`avg`].
const AVG_AGREEMENT: f64 = 1e-11;

/// avg_over_time, agreeing with 2.42's incremental mean to
/// [`AVG_AGREEMENT`] relative, and identical to it where that cannot be
/// guaranteed.
///
/// 2.42 updates `mean += v/k - mean/k` (compensated) for k = 1..n; a
/// division sits in the loop's dependency chain, so it costs ~8 ns per
/// sample. Each update rounds by at most 4ε·M/k (M = max |v|, ε = 2⁻⁵³),
/// and the recurrence does not amplify earlier errors, so 2.42's result is
/// within 4ε·M·(1 + ln n) of the exact mean. A plain sum (two interleaved
/// partial sums) divided by n is within (n + 1)·ε·M of it. Where
/// `M · (4·(1 + log₂ n) + n + 1) · ε ≤ AVG_AGREEMENT · |mean|`, the two
/// are within AVG_AGREEMENT·|mean| of each other and the sum is returned;
/// otherwise (values cancelling to a mean near 0, large windows of widely
/// spread values, infinities, NaN) 2.42's loop runs.
fn avg(vs: &[f64]) -> f64 {
    let (mut even, mut odd, mut max_abs) = (0.0f64, 0.0f64, 0.0f64);
    let mut pairs = vs.chunks_exact(2);
    for pair in &mut pairs {
        even += pair[0];
        odd += pair[1];
        max_abs = max_abs.max(pair[0].abs()).max(pair[1].abs());
    }
    for &v in pairs.remainder() {
        even += v;
        max_abs = max_abs.max(v.abs());
    }
    let n = vs.len();
    let mean = (even + odd) / n as f64;
    // 1 + log₂ n rounded up bounds 1 + ln n.
    let log_bound = f64::from(1 + usize::BITS - n.leading_zeros());
    let error_bound = max_abs * (4.0 * log_bound + n as f64 + 1.0) * (f64::EPSILON / 2.0);
    if mean.is_finite() && error_bound <= AVG_AGREEMENT * mean.abs() {
        return mean;
    }
    incremental_avg(vs)
}

/// 2.42's avg_over_time as written: an incremental mean with Kahan
/// compensation that keeps an infinite mean once reached (unless a NaN or
/// an opposite infinity arrives).
fn incremental_avg(vs: &[f64]) -> f64 {
    let (mut mean, mut c, mut count) = (0.0f64, 0.0, 0.0);
    for &v in vs {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + c
    }
}

/// sum_over_time: compensated sum.
fn sum(vs: &[f64]) -> f64 {
    let (mut total, mut c) = (0.0f64, 0.0);
    for &v in vs {
        (total, c) = kahan_inc(v, total, c);
    }
    if total.is_infinite() {
        total
    } else {
        total + c
    }
}

/// stddev_over_time: Welford's algorithm with compensated sums, population
/// standard deviation.
fn stddev(vs: &[f64]) -> f64 {
    let mut count = 0.0;
    let (mut mean, mut c_mean) = (0.0, 0.0);
    let (mut aux, mut c_aux) = (0.0, 0.0);
    for &v in vs {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    ((aux + c_aux) / count).sqrt()
}

/// min/max_over_time as 2.42: start from the first value and take any
/// `better` one, a NaN being replaced by whatever follows. So leading NaNs
/// are skipped, later NaNs never win, and all-NaN gives the last NaN;
/// written that way the loop carries no NaN test.
fn extreme(vs: &[f64], better: impl Fn(f64, f64) -> bool) -> f64 {
    let Some(first) = vs.iter().position(|v| !v.is_nan()) else {
        return vs[vs.len() - 1];
    };
    let mut m = vs[first];
    for &v in &vs[first + 1..] {
        if better(v, m) {
            m = v;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window<'w>(ts: &'w [i64], vs: &'w [f64], start_ms: i64, end_ms: i64) -> Window<'w> {
        Window {
            ts,
            vs,
            start_ms,
            end_ms,
            range_ms: end_ms - start_ms,
        }
    }

    fn apply(kernel: Kernel, w: &Window<'_>) -> Option<f64> {
        kernel.apply(w, 0.0, &mut Vec::new())
    }

    #[test]
    fn rate_extrapolates_to_close_edges() {
        // Samples every 10 s at 10..=50 s in the window [0, 60 s]: the
        // counter grows 10 per sample, 40 over the sampled 40 s. Both edges
        // are 10 s away, under 1.1 × 10 s, so the 40 s stretch to 60 s.
        // Zero point: 40 s × 10/40 = 10 s, not shorter than 10 s.
        // increase = 40 × 60/40 = 60; rate = 60 / 60 s = 1.
        let ts = [10_000, 20_000, 30_000, 40_000, 50_000];
        let vs = [10.0, 20.0, 30.0, 40.0, 50.0];
        let w = window(&ts, &vs, 0, 60_000);
        assert_eq!(apply(Kernel::Increase, &w), Some(60.0));
        assert_eq!(apply(Kernel::Rate, &w), Some(1.0));
        assert_eq!(apply(Kernel::Delta, &w), Some(60.0));
    }

    #[test]
    fn rate_stops_at_the_counters_zero_point_and_far_edges() {
        // Counter 5 → 15 → 25 at 30, 40, 50 s in [0, 60 s]: average
        // interval 10 s, threshold 11 s. Start: 30 s away, but the zero
        // point is 20 s × 5/20 = 5 s back, which is < 11 s, so +5 s. End:
        // 10 s away, < 11 s, so +10 s. increase = 20 × (20+5+10)/20 = 35.
        let ts = [30_000, 40_000, 50_000];
        let vs = [5.0, 15.0, 25.0];
        let w = window(&ts, &vs, 0, 60_000);
        assert_eq!(apply(Kernel::Increase, &w), Some(35.0));
        // delta has no zero point: start 30 s ≥ 11 s, so only +5 s (half
        // an interval): 20 × (20+5+10)/20 = 35 as well; with the end far
        // too (window to 90 s): 20 × (20+5+5)/20 = 30.
        assert_eq!(apply(Kernel::Delta, &w), Some(35.0));
        let far = window(&ts, &vs, 0, 90_000);
        assert_eq!(apply(Kernel::Delta, &far), Some(30.0));
    }

    #[test]
    fn counter_resets_add_the_value_before_the_drop() {
        // 10, 20, 5, 15 at 0,10,20,30 s in [0, 30 s]: the drop 20 → 5
        // adds 20, so the increase is 15 - 10 + 20 = 25 with both edges
        // on samples (no extrapolation; zero point 30 × 10/25 = 12 s is
        // longer than the 0 s to the start).
        let ts = [0, 10_000, 20_000, 30_000];
        let vs = [10.0, 20.0, 5.0, 15.0];
        let w = window(&ts, &vs, 0, 30_000);
        assert_eq!(apply(Kernel::Increase, &w), Some(25.0));
        assert_eq!(apply(Kernel::Resets, &w), Some(1.0));
        assert_eq!(apply(Kernel::Changes, &w), Some(3.0));
        // delta ignores the reset: 15 - 10.
        assert_eq!(apply(Kernel::Delta, &w), Some(5.0));
        // irate after a drop-free last pair: (15 - 5) / 10 s.
        assert_eq!(apply(Kernel::Irate, &w), Some(1.0));
        assert_eq!(apply(Kernel::Idelta, &w), Some(10.0));
    }

    #[test]
    fn irate_treats_a_final_drop_as_a_reset() {
        // Last pair 20 → 4 over 2 s: the increase is 4, so 2 per second;
        // idelta is plainly -16.
        let ts = [0, 2_000];
        let vs = [20.0, 4.0];
        let w = window(&ts, &vs, 0, 2_000);
        assert_eq!(apply(Kernel::Irate, &w), Some(2.0));
        assert_eq!(apply(Kernel::Idelta, &w), Some(-16.0));
    }

    #[test]
    fn two_sample_functions_need_two_samples() {
        let w = window(&[5_000], &[1.0], 0, 10_000);
        for kernel in [
            Kernel::Rate,
            Kernel::Increase,
            Kernel::Delta,
            Kernel::Irate,
            Kernel::Idelta,
            Kernel::Deriv,
        ] {
            assert_eq!(apply(kernel, &w), None, "{kernel:?}");
        }
        assert_eq!(apply(Kernel::Resets, &w), Some(0.0));
        assert_eq!(apply(Kernel::Changes, &w), Some(0.0));
        assert_eq!(apply(Kernel::Stddev, &w), Some(0.0));
        assert_eq!(apply(Kernel::Count, &w), Some(1.0));
    }

    #[test]
    fn deriv_is_the_least_squares_slope() {
        // Points (0 s, 1), (10 s, 3), (20 s, 2): x̄ = 10, ȳ = 2,
        // Σ(x-x̄)(y-ȳ) = (-10)(-1) + 0 + (10)(0) = 10, Σ(x-x̄)² = 200,
        // slope = 0.05 per second.
        let ts = [0, 10_000, 20_000];
        let vs = [1.0, 3.0, 2.0];
        let w = window(&ts, &vs, 0, 20_000);
        let slope = apply(Kernel::Deriv, &w).unwrap();
        assert!((slope - 0.05).abs() < 1e-15, "{slope}");
        // Constant series: exactly 0; constant infinity: NaN.
        let flat = window(&ts, &[7.0; 3], 0, 20_000);
        assert_eq!(apply(Kernel::Deriv, &flat), Some(0.0));
        let inf = [f64::INFINITY; 3];
        let inf = window(&ts, &inf, 0, 20_000);
        assert!(apply(Kernel::Deriv, &inf).unwrap().is_nan());
    }

    #[test]
    fn over_time_aggregates() {
        let ts = [0, 1, 2, 3];
        let vs = [2.0, 4.0, 4.0, 6.0];
        let w = window(&ts, &vs, 0, 3);
        assert_eq!(apply(Kernel::Avg, &w), Some(4.0));
        assert_eq!(apply(Kernel::Sum, &w), Some(16.0));
        assert_eq!(apply(Kernel::Min, &w), Some(2.0));
        assert_eq!(apply(Kernel::Max, &w), Some(6.0));
        assert_eq!(apply(Kernel::Count, &w), Some(4.0));
        assert_eq!(apply(Kernel::Last, &w), Some(6.0));
        // Population variance: ((-2)² + 0 + 0 + 2²) / 4 = 2.
        assert_eq!(apply(Kernel::Stddev, &w), Some(2f64.sqrt()));
    }

    #[test]
    fn nan_and_infinity_follow_prometheus() {
        let ts = [0, 1, 2];
        // min/max skip a leading NaN but keep a NaN-free comparison after.
        let vs = [f64::NAN, 3.0, 1.0];
        let w = window(&ts, &vs, 0, 2);
        assert_eq!(apply(Kernel::Min, &w), Some(1.0));
        assert_eq!(apply(Kernel::Max, &w), Some(3.0));
        // An infinite mean stays infinite through finite values.
        let vs = [1.0, f64::INFINITY, 5.0];
        let w = window(&ts, &vs, 0, 2);
        assert_eq!(apply(Kernel::Avg, &w), Some(f64::INFINITY));
        // Opposite infinities give NaN.
        let vs = [f64::INFINITY, f64::NEG_INFINITY, 5.0];
        let w = window(&ts, &vs, 0, 2);
        assert!(apply(Kernel::Avg, &w).unwrap().is_nan());
        // NaN == NaN is no change.
        let vs = [f64::NAN, f64::NAN, 1.0];
        let w = window(&ts, &vs, 0, 2);
        assert_eq!(apply(Kernel::Changes, &w), Some(1.0));
    }

    #[test]
    fn avg_matches_the_incremental_formula_on_large_values() {
        // Values near f64::MAX would overflow a plain sum; the incremental
        // mean stays finite: (MAX + MAX/2) / 2 = 0.75 × MAX.
        let vs = [f64::MAX, f64::MAX / 2.0];
        let w = window(&[0, 1], &vs, 0, 1);
        assert_eq!(apply(Kernel::Avg, &w), Some(f64::MAX * 0.75));
    }

    #[test]
    fn fast_avg_agrees_with_the_incremental_mean() {
        // Same-sign values: the fast path, within 1e-11 of 2.42's loop.
        let vs: Vec<f64> = (0..5000)
            .map(|i| 50.0 + ((i * 7919) % 1000) as f64 / 37.0)
            .collect();
        let (fast, slow) = (avg(&vs), incremental_avg(&vs));
        assert!(((fast - slow) / slow).abs() < 1e-11, "{fast} {slow}");
        // Values cancelling to a mean near 0: 2.42's loop, bit for bit.
        let vs = [1e10, 1.0, -1e10, 2.0];
        assert_eq!(avg(&vs).to_bits(), incremental_avg(&vs).to_bits());
        // min/max: ties keep the first, NaN only when all are NaN.
        let w = window(&[0, 1], &[f64::NAN, f64::NAN], 0, 1);
        assert!(apply(Kernel::Max, &w).unwrap().is_nan());
        let zeros = [0.0, -0.0];
        let w = window(&[0, 1], &zeros, 0, 1);
        assert!(apply(Kernel::Max, &w).unwrap().is_sign_positive());
    }

    #[test]
    fn quantile_over_time_interpolates_between_ranks() {
        let ts = [0, 1, 2, 3];
        let vs = [4.0, 1.0, 3.0, 2.0];
        let w = window(&ts, &vs, 0, 3);
        let q = |phi: f64| Kernel::Quantile.apply(&w, phi, &mut Vec::new()).unwrap();
        // Sorted 1,2,3,4; φ = 0.5: rank 1.5 → 2.5. φ = 0.9: rank 2.7 →
        // 3 × 0.3 + 4 × 0.7 = 3.7.
        assert_eq!(q(0.5), 2.5);
        assert!((q(0.9) - 3.7).abs() < 1e-15);
        assert_eq!(q(0.0), 1.0);
        assert_eq!(q(1.0), 4.0);
        assert_eq!(q(-0.1), f64::NEG_INFINITY);
        assert_eq!(q(1.1), f64::INFINITY);
        assert!(q(f64::NAN).is_nan());
    }

    #[test]
    fn rate_divides_by_the_range_in_go_seconds() {
        assert_eq!(seconds(300_000), 300.0);
        assert_eq!(seconds(1_500), 1.5);
        assert_eq!(seconds(-2_500), -2.5);
    }
}
