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

use super::engine::{
    absent_labels, absent_series, arg, ensure_distinct, is_stale, series_slots, Distinct, Ends,
    Evaluator,
};
use super::subquery;
use super::value::{drop_metric_name, Labels, QueryError, StepSeries, Steps};
use super::window::{Kernel, Window};
use super::QuerySeries;
use crate::query::ast::{Expr, Function};
use crate::query::source::{SeriesColumns, SeriesSet};
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
    let (param, matrix) = if kernel == Kernel::Quantile {
        let phi = ev.eval_scalar(arg(func, args, 0)?, steps)?;
        (Some(phi), arg(func, args, 1)?)
    } else {
        (None, arg(func, args, 0)?)
    };
    let input = open(ev, matrix, steps)?;
    let keep_name = kernel == Kernel::Last;
    let series = ev.map_series(input.len(), |index, scratch| {
        input.read(index, &mut scratch.columns)?;
        let loaded = scratch.columns.len();
        ev.charge(loaded)?;
        let mut out = StepSeries::empty(Vec::new(), steps.count);
        let any = slide(
            kernel,
            &scratch.columns,
            input.ends,
            input.range_ms,
            param.as_deref(),
            &mut scratch.values,
            &mut out,
        );
        ev.release(loaded);
        if !any {
            return Ok(None);
        }
        ev.charge(steps.count)?;
        out.labels = input.labels(index);
        if !keep_name {
            drop_metric_name(&mut out.labels);
        }
        Ok(Some(out))
    })?;
    ev.release(input.held() + param.as_ref().map_or(0, Vec::len));
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
        ensure_distinct(&series, Distinct::Overall, func.name())?;
    }
    Ok(series)
}

/// Runs `kernel` over the window of every step, writing `out`'s slots;
/// true if any step has a value.
fn slide(
    kernel: Kernel,
    cols: &SeriesColumns,
    ends: Ends,
    range_ms: i64,
    param: Option<&[f64]>,
    scratch: &mut Vec<f64>,
    out: &mut StepSeries,
) -> bool {
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
            return false;
        }
        let Some(value) = kernel.apply(&window(lo, hi, end_ms), param_at(0), scratch) else {
            return false;
        };
        out.values.iter_mut().for_each(|v| *v = value);
        out.present.iter_mut().for_each(|p| *p = true);
        return true;
    }
    let (mut lo, mut hi) = (0, 0);
    let mut any = false;
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
        if let Some(value) = kernel.apply(&window(lo, hi, end_ms), param_at(step), scratch) {
            out.values[step] = value;
            out.present[step] = true;
            any = true;
        }
    }
    any
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
