//! Range vectors: range selectors and subqueries read through sliding
//! windows.
//!
//! A range-vector argument is opened once for all steps ([`open`]): a
//! range selector becomes one `select_series` over
//! `[first_end - range, last_end]`, a subquery its inner result. Each
//! series is then read once into reused columns, staleness markers are
//! removed, and two pointers slide a closed window `[end - range, end]`
//! (Prometheus 2.42) over the samples from step to step; the function's
//! [`Kernel`] runs on each non-empty window. Pointers only move forward,
//! so locating the windows is linear in samples plus steps, and each
//! kernel reads only its window's samples (the work is the sum of the
//! window sizes: the sample count when the step is at least the range).
//! When `@` pins every window to the same interval the kernel runs once
//! and its value is repeated.
//!
//! Functions drop the metric name except `last_over_time` (as 2.42); two
//! results with the same labels are an error, whatever their steps, as
//! 2.42's check of the whole result.
//!
//! Everything a function sees of its argument goes through [`RangeArg`]
//! (labels, then one series' columns at a time).
//!
//! Rollup tiers: a call whose windows are aligned to a bucket resolution
//! (see [`super::TierChoice`]) reads one [`crate::query::buckets::BucketSet`]
//! instead, and a [`WindowCursor`] summarises each window from whole
//! buckets; the kernel's value follows from the summary
//! ([`Kernel::apply_summary`], which shares the raw path's rate
//! extrapolation). Its work is linear in buckets plus steps.

use super::engine::{
    absent_labels, absent_series, arg, ensure_unique_labels, is_stale, series_slots, Ends,
    Evaluator,
};
use super::subquery;
use super::value::{drop_metric_name, Labels, QueryError, StepSeries, Steps};
use super::window::{Kernel, Window};
use super::{QuerySeries, TierChoice};
use crate::query::ast::{Expr, Function, VectorSelector};
use crate::query::source::{SeriesColumns, SeriesSet};
use crate::rollup::window::WindowCursor;
use crate::series::{Sample, TimeRange};

/// True for the functions of a range vector.
pub(super) fn is_range_function(func: Function) -> bool {
    Kernel::of(func).is_some()
}

/// Where a range-vector argument's samples come from.
enum Source<'a> {
    Stored(SeriesSet<'a>),
    /// A subquery's inner series on its inner steps.
    Computed {
        series: Vec<StepSeries>,
        steps: Steps,
    },
}

/// An opened range-vector argument.
pub(super) struct RangeArg<'a> {
    source: Source<'a>,
    /// Each step's window end.
    ends: Ends,
    range_ms: i64,
}

impl RangeArg<'_> {
    fn len(&self) -> usize {
        match &self.source {
            Source::Stored(set) => set.len(),
            Source::Computed { series, .. } => series.len(),
        }
    }

    fn labels(&self, index: usize) -> Labels {
        match &self.source {
            Source::Stored(set) => set.key(index).labels().to_vec(),
            Source::Computed { series, .. } => series[index].labels.clone(),
        }
    }

    /// Reads series `index` into `out` without staleness markers.
    fn read(&self, index: usize, out: &mut SeriesColumns) -> Result<(), QueryError> {
        match &self.source {
            Source::Stored(set) => set.read(index, out)?,
            Source::Computed { series, steps } => {
                out.clear();
                let s = &series[index];
                for (i, (&v, &present)) in s.values.iter().zip(&s.present).enumerate() {
                    if present {
                        out.timestamps_ms.push(steps.time(i));
                        out.values.push(v);
                    }
                }
            }
        }
        remove_stale(out);
        Ok(())
    }

    /// The slots the argument itself holds (a subquery's inner result).
    fn held(&self) -> usize {
        match &self.source {
            Source::Stored(_) => 0,
            Source::Computed { series, .. } => series_slots(series),
        }
    }
}

/// Drops staleness markers, keeping the order.
fn remove_stale(cols: &mut SeriesColumns) {
    let Some(first) = cols.values.iter().position(|&v| is_stale(v)) else {
        return;
    };
    let mut kept = first;
    for i in first..cols.values.len() {
        let v = cols.values[i];
        if !is_stale(v) {
            cols.values[kept] = v;
            cols.timestamps_ms[kept] = cols.timestamps_ms[i];
            kept += 1;
        }
    }
    cols.values.truncate(kept);
    cols.timestamps_ms.truncate(kept);
}

/// Opens a range-vector expression (a range selector or a subquery) for
/// `steps`.
pub(super) fn open<'a>(
    ev: &Evaluator<'a>,
    expr: &Expr,
    steps: &Steps,
) -> Result<RangeArg<'a>, QueryError> {
    match expr {
        Expr::Matrix { selector, range_ms } => {
            let ends = ev.ends(selector.at, selector.offset_ms, steps);
            let range = TimeRange::new(ends.first_ms.saturating_sub(*range_ms), ends.last_ms());
            Ok(RangeArg {
                source: Source::Stored(ev.select(&selector.matchers, range)?),
                ends,
                range_ms: *range_ms,
            })
        }
        Expr::Subquery(sq) => {
            let inner = subquery::eval(ev, sq, steps)?;
            Ok(RangeArg {
                source: Source::Computed {
                    series: inner.series,
                    steps: inner.steps,
                },
                ends: inner.ends,
                range_ms: sq.range_ms,
            })
        }
        _ => Err(QueryError::BadArgument(format!(
            "expected a range vector, got {expr}"
        ))),
    }
}

/// Evaluates a range-vector function call at every step.
pub(super) fn eval_call(
    ev: &Evaluator<'_>,
    func: Function,
    args: &[Expr],
    steps: &Steps,
) -> Result<Vec<StepSeries>, QueryError> {
    let kernel = Kernel::of(func).ok_or_else(|| {
        QueryError::BadArgument(format!("{} is not a range-vector function", func.name()))
    })?;
    let matrix = if kernel == Kernel::Quantile {
        arg(func, args, 1)?
    } else {
        arg(func, args, 0)?
    };
    let resolution = bucket_resolution(ev, kernel, matrix, steps);
    if let Some(report) = &ev.options.tier_report {
        report.record(format!("{}({matrix})", func.name()), resolution);
    }
    let series = match (resolution, matrix) {
        (Some(resolution_ms), Expr::Matrix { selector, range_ms }) => {
            from_buckets(ev, kernel, selector, *range_ms, resolution_ms, steps)?
        }
        _ => from_samples(ev, func, kernel, args, matrix, steps)?,
    };
    let keep_name = kernel == Kernel::Last;
    if kernel == Kernel::Present {
        let mut covered = vec![false; steps.count];
        for s in &series {
            covered
                .iter_mut()
                .zip(&s.present)
                .for_each(|(c, &p)| *c |= p);
        }
        ev.release(series_slots(&series));
        let labels = match matrix {
            Expr::Matrix { selector, .. } => absent_labels(&selector.matchers),
            _ => Labels::new(),
        };
        let out = absent_series(labels, &covered);
        ev.charge(series_slots(&out))?;
        return Ok(out);
    }
    if !keep_name {
        ensure_unique_labels(&series, func.name())?;
    }
    Ok(series)
}

/// A result series' labels: the input's, without the metric name except
/// for `last_over_time` (as 2.42).
fn result_labels(kernel: Kernel, mut labels: Labels) -> Labels {
    if kernel != Kernel::Last {
        drop_metric_name(&mut labels);
    }
    labels
}

/// The resolution of the buckets that answer `kernel` over `matrix` at
/// `steps` under the query's [`TierChoice`], or `None` for raw samples;
/// see [`TierChoice`] for when buckets can answer.
fn bucket_resolution(
    ev: &Evaluator<'_>,
    kernel: Kernel,
    matrix: &Expr,
    steps: &Steps,
) -> Option<i64> {
    let Expr::Matrix { selector, range_ms } = matrix else {
        return None;
    };
    if !kernel.answers_from_buckets() {
        return None;
    }
    let ends = ev.ends(selector.at, selector.offset_ms, steps);
    let aligned = |resolution_ms: i64| {
        resolution_ms > 0
            && *range_ms >= resolution_ms
            && range_ms % resolution_ms == 0
            && ends.first_ms.rem_euclid(resolution_ms) == 0
            && (ends.count <= 1 || ends.step_ms % resolution_ms == 0)
    };
    match ev.options.tier {
        TierChoice::Raw => None,
        TierChoice::Resolution(resolution_ms) => aligned(resolution_ms).then_some(resolution_ms),
        TierChoice::Auto => ev
            .tier_resolutions()
            .into_iter()
            .rev()
            .find(|&resolution_ms| aligned(resolution_ms)),
    }
}

/// Evaluates `kernel` over `selector[range_ms]` at every step from buckets
/// of `resolution_ms`, which [`bucket_resolution`] chose: every window is
/// whole buckets plus the sample at its end
/// ([`crate::rollup::window`]).
fn from_buckets(
    ev: &Evaluator<'_>,
    kernel: Kernel,
    selector: &VectorSelector,
    range_ms: i64,
    resolution_ms: i64,
    steps: &Steps,
) -> Result<Vec<StepSeries>, QueryError> {
    let ends = ev.ends(selector.at, selector.offset_ms, steps);
    let starts = TimeRange::new(ends.first_ms.saturating_sub(range_ms), ends.last_ms());
    let set = ev
        .select_buckets(&selector.matchers, starts, resolution_ms)?
        .only_columns(kernel.bucket_columns());
    ev.map_series(set.len(), |index, scratch| {
        set.read(index, &mut scratch.buckets)?;
        // The loaded buckets and the result's slots, charged before the
        // slots are allocated.
        let held = scratch.buckets.len() + steps.count;
        ev.charge(held)?;
        let mut out = StepSeries::empty(Vec::new(), steps.count);
        let mut cursor = WindowCursor::new(&scratch.buckets);
        let mut any = false;
        // Pinned ends repeat one window: it is summarised once.
        let step_count = if ends.is_pinned() { 1 } else { ends.count };
        for step in 0..step_count {
            let end_ms = ends.at(step);
            let value = cursor
                .window(end_ms, range_ms)
                .and_then(|summary| kernel.apply_summary(&summary, end_ms, range_ms));
            if let Some(value) = value {
                out.values[step] = value;
                out.present[step] = true;
                any = true;
            }
        }
        if !any {
            ev.release(held);
            return Ok(None);
        }
        if ends.is_pinned() {
            let (value, present) = (out.values[0], out.present[0]);
            out.values.iter_mut().for_each(|v| *v = value);
            out.present.iter_mut().for_each(|p| *p = present);
        }
        ev.release(held - steps.count);
        out.labels = result_labels(kernel, set.key(index).labels().to_vec());
        Ok(Some(out))
    })
}

/// Evaluates `kernel` over the samples of `matrix` (a range selector or a
/// subquery) at every step.
fn from_samples(
    ev: &Evaluator<'_>,
    func: Function,
    kernel: Kernel,
    args: &[Expr],
    matrix: &Expr,
    steps: &Steps,
) -> Result<Vec<StepSeries>, QueryError> {
    let param = if kernel == Kernel::Quantile {
        Some(ev.eval_scalar(arg(func, args, 0)?, steps)?)
    } else {
        None
    };
    let input = open(ev, matrix, steps)?;
    let series = ev.map_series(input.len(), |index, scratch| {
        input.read(index, &mut scratch.columns)?;
        // The loaded samples and the result's slots, charged before the
        // slots are allocated.
        let held = scratch.columns.len() + steps.count;
        ev.charge(held)?;
        let mut out = StepSeries::empty(Vec::new(), steps.count);
        let any = slide(
            kernel,
            &scratch.columns,
            input.ends,
            input.range_ms,
            param.as_deref(),
            &mut scratch.values,
            &mut out,
            &|| ev.check(),
        )?;
        if !any {
            ev.release(held);
            return Ok(None);
        }
        ev.release(held - steps.count);
        out.labels = result_labels(kernel, input.labels(index));
        Ok(Some(out))
    })?;
    ev.release(input.held() + param.as_ref().map_or(0, Vec::len));
    Ok(series)
}

/// Samples the window loop reads between two calls of its `check`.
const SAMPLES_PER_CHECK: usize = 1 << 20;

/// Runs `kernel` over the window of every step, writing `out`'s slots;
/// true if any step has a value. `check` (cancellation, deadline) runs
/// every [`SAMPLES_PER_CHECK`] window samples, so one series with huge
/// overlapping windows cannot hold a query past its deadline.
#[allow(clippy::too_many_arguments)]
fn slide(
    kernel: Kernel,
    cols: &SeriesColumns,
    ends: Ends,
    range_ms: i64,
    param: Option<&[f64]>,
    scratch: &mut Vec<f64>,
    out: &mut StepSeries,
    check: &dyn Fn() -> Result<(), QueryError>,
) -> Result<bool, QueryError> {
    // One copy of the loop per kernel, so that the kernel is inlined into
    // it rather than called and dispatched per window.
    macro_rules! per_kernel {
        ($($k:ident),*) => {
            match kernel {
                $(Kernel::$k => slide_with(
                    |w, p, s| Kernel::$k.apply(w, p, s),
                    cols, ends, range_ms, param, scratch, out, check,
                ),)*
            }
        };
    }
    per_kernel!(
        Rate, Increase, Delta, Irate, Idelta, Resets, Changes, Deriv, Avg, Min, Max, Sum, Count,
        Last, Quantile, Stddev, Present
    )
}

/// [`slide`] with the kernel as a closure.
#[allow(clippy::too_many_arguments)]
fn slide_with(
    apply: impl Fn(&Window<'_>, f64, &mut Vec<f64>) -> Option<f64>,
    cols: &SeriesColumns,
    ends: Ends,
    range_ms: i64,
    param: Option<&[f64]>,
    scratch: &mut Vec<f64>,
    out: &mut StepSeries,
    check: &dyn Fn() -> Result<(), QueryError>,
) -> Result<bool, QueryError> {
    let (ts, vs) = (&cols.timestamps_ms[..], &cols.values[..]);
    let param_at = |step: usize| param.and_then(|p| p.get(step)).copied().unwrap_or(0.0);
    let window = |lo: usize, hi: usize, end_ms: i64| Window {
        ts: &ts[lo..hi],
        vs: &vs[lo..hi],
        start_ms: end_ms.saturating_sub(range_ms),
        end_ms,
        range_ms,
    };
    let constant_param = param.is_none_or(|p| p.iter().all(|x| x.to_bits() == p[0].to_bits()));
    if ends.is_pinned() && constant_param {
        // Every step reads the same window: compute it once.
        let end_ms = ends.first_ms;
        let lo = ts.partition_point(|&t| t < end_ms.saturating_sub(range_ms));
        let hi = ts.partition_point(|&t| t <= end_ms);
        if lo == hi {
            return Ok(false);
        }
        let Some(value) = apply(&window(lo, hi, end_ms), param_at(0), scratch) else {
            return Ok(false);
        };
        out.values.iter_mut().for_each(|v| *v = value);
        out.present.iter_mut().for_each(|p| *p = true);
        return Ok(true);
    }
    let (mut lo, mut hi) = (0, 0);
    let mut any = false;
    let mut unchecked = 0;
    for step in 0..ends.count {
        let end_ms = ends.at(step);
        let start_ms = end_ms.saturating_sub(range_ms);
        while lo < ts.len() && ts[lo] < start_ms {
            lo += 1;
        }
        hi = hi.max(lo);
        while hi < ts.len() && ts[hi] <= end_ms {
            hi += 1;
        }
        if lo == hi {
            continue;
        }
        unchecked += hi - lo;
        if unchecked >= SAMPLES_PER_CHECK {
            check()?;
            unchecked = 0;
        }
        if let Some(value) = apply(&window(lo, hi, end_ms), param_at(step), scratch) {
            out.values[step] = value;
            out.present[step] = true;
            any = true;
        }
    }
    Ok(any)
}

/// The raw samples of a range vector at `time_ms` (an instant query of
/// `x[5m]` or of a subquery): each series' samples in the closed window,
/// labels kept whole.
pub(super) fn raw_points(
    ev: &Evaluator<'_>,
    expr: &Expr,
    time_ms: i64,
) -> Result<Vec<QuerySeries>, QueryError> {
    let steps = Steps::instant(time_ms);
    let input = open(ev, expr, &steps)?;
    let end_ms = input.ends.first_ms;
    let start_ms = end_ms.saturating_sub(input.range_ms);
    ev.map_series(input.len(), |index, scratch| {
        input.read(index, &mut scratch.columns)?;
        let cols = &scratch.columns;
        let samples: Vec<Sample> = cols
            .timestamps_ms
            .iter()
            .zip(&cols.values)
            .filter(|(&t, _)| start_ms <= t && t <= end_ms)
            .map(|(&t, &v)| Sample::new(t, v))
            .collect();
        if samples.is_empty() {
            return Ok(None);
        }
        ev.charge(samples.len())?;
        Ok(Some(QuerySeries {
            labels: input.labels(index),
            samples,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Not a test: the kernels' cost on the devops shape (100 series ×
    /// 8,640 samples at 10 s, 24 h), reads excluded. Run with
    /// `cargo test --release --lib range::tests::kernel_speed -- --ignored
    /// --nocapture`; prints the best of 20 runs.
    #[test]
    #[ignore = "timing harness, run by hand (see the doc comment)"]
    fn kernel_speed() {
        let n = 8640;
        let timestamps_ms: Vec<i64> = (0..n).map(|i| i as i64 * 10_000).collect();
        // A gauge jumping up and down, and a counter (no resets).
        let gauge = SeriesColumns {
            timestamps_ms: timestamps_ms.clone(),
            values: (0..n)
                .map(|i| 50.0 + ((i * 7919) % 1000) as f64 / 37.0)
                .collect(),
        };
        let counter = SeriesColumns {
            timestamps_ms,
            values: (0..n).map(|i| (i * 10 + i % 7) as f64).collect(),
        };
        let cases = [
            ("avg_over_time[1m] @1m", Kernel::Avg, 60_000, 60_000, &gauge),
            (
                "max_over_time[1h] @1h",
                Kernel::Max,
                3_600_000,
                3_600_000,
                &gauge,
            ),
            ("rate[5m] @1m, gauge", Kernel::Rate, 300_000, 60_000, &gauge),
            (
                "rate[5m] @1m, counter",
                Kernel::Rate,
                300_000,
                60_000,
                &counter,
            ),
            (
                "sum_over_time[1h] @1h",
                Kernel::Sum,
                3_600_000,
                3_600_000,
                &gauge,
            ),
        ];
        for (name, kernel, range_ms, step_ms, cols) in cases {
            let ends = Ends {
                first_ms: 0,
                step_ms,
                count: (86_400_000 / step_ms) as usize + 1,
            };
            let mut out = StepSeries::empty(Vec::new(), ends.count);
            let mut scratch = Vec::new();
            let mut best = std::time::Duration::MAX;
            for _ in 0..20 {
                let t0 = std::time::Instant::now();
                for _ in 0..100 {
                    slide(
                        kernel,
                        cols,
                        ends,
                        range_ms,
                        None,
                        &mut scratch,
                        &mut out,
                        &|| Ok(()),
                    )
                    .unwrap();
                }
                best = best.min(t0.elapsed());
            }
            println!(
                "{name:<24} 100 series: {best:>10.3?}  {:.2} ns/sample",
                best.as_nanos() as f64 / (100 * n) as f64
            );
        }
    }
}
