//! The evaluator: walks an expression once for all its evaluation times.
//!
//! [`Evaluator::eval`] evaluates a node for every step of a [`Steps`] grid
//! and returns a [`Value`] holding one slot per step. Selectors and range
//! functions are computed here and in [`super::selector`] and
//! [`super::range`]; operators, aggregations and the other functions are
//! handed to [`super::binary`], [`super::aggregate`] and
//! [`super::functions`].
//!
//! Invariants:
//! - every vector this module returns holds only series with at least one
//!   present slot, and no two of them share a label set at a step where
//!   both are present;
//! - `held` counts the slots of every live intermediate value plus the
//!   samples loaded for the series being processed; it never exceeds
//!   `QueryOptions::max_samples` by more than one node's output before the
//!   query fails with [`QueryError::TooManySamples`];
//! - cancellation and the deadline are checked before each node, between
//!   series and every million window samples within a series, so a query
//!   stops soon after either.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::value::{
    drop_metric_name, merge_same_labels, FormatLabels, Labels, QueryError, StepSeries, Steps, Value,
};
use super::{aggregate, binary, functions, range, selector, QueryOptions};
use crate::index::{MatchOp, Matcher};
use crate::query::ast::{At, Expr, Function};
use crate::query::buckets::BucketSet;
use crate::query::source::{Queryable, SeriesColumns, SeriesSet};
use crate::rollup::Buckets;
use crate::series::{Label, TimeRange, METRIC_NAME_LABEL};

pub(super) use crate::series::is_stale;

/// Series a worker thread takes at a time; small enough to balance a few
/// heavy series, large enough to keep the shared counter cold.
const SERIES_PER_CLAIM: usize = 4;

/// Below this many series per thread, extra threads cost more than they
/// save.
const MIN_SERIES_PER_THREAD: usize = 8;

/// The times at which a selector or range function is read: one per step,
/// `first_ms + i * step_ms`; `step_ms` is 0 when `@` pins them all to one
/// time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ends {
    pub first_ms: i64,
    pub step_ms: i64,
    pub count: usize,
}

impl Ends {
    pub fn at(&self, index: usize) -> i64 {
        self.first_ms
            .saturating_add((index as i64).saturating_mul(self.step_ms))
    }

    pub fn last_ms(&self) -> i64 {
        self.at(self.count.saturating_sub(1))
    }

    pub fn is_pinned(&self) -> bool {
        self.step_ms == 0
    }
}

/// Per-thread buffers reused from one series to the next.
#[derive(Default)]
pub(super) struct Scratch {
    pub columns: SeriesColumns,
    /// Free space for a function (quantile_over_time sorts here).
    pub values: Vec<f64>,
    /// One series' rollup buckets.
    pub buckets: Buckets,
}

/// One query's evaluation state.
pub(super) struct Evaluator<'a> {
    source: &'a dyn Queryable,
    pub options: &'a QueryOptions,
    /// The range query's start and end parameters (the instant query's
    /// time for both): what `@ start()` and `@ end()` mean. The end need
    /// not be a step.
    query_start_ms: i64,
    query_end_ms: i64,
    threads: usize,
    /// Milliseconds from the query's start to its deadline, for the error.
    deadline_ms: u64,
    held: AtomicUsize,
}

impl<'a> Evaluator<'a> {
    pub fn new(
        source: &'a dyn Queryable,
        options: &'a QueryOptions,
        query_start_ms: i64,
        query_end_ms: i64,
    ) -> Self {
        let threads = match options.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let deadline_ms = options.deadline.map_or(0, |deadline| {
            let left = deadline.saturating_duration_since(Instant::now());
            u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
        });
        Evaluator {
            source,
            options,
            query_start_ms,
            query_end_ms,
            threads,
            deadline_ms,
            held: AtomicUsize::new(0),
        }
    }

    /// Fails once the query is cancelled or past its deadline.
    pub fn check(&self) -> Result<(), QueryError> {
        if let Some(cancel) = &self.options.cancel {
            if cancel.load(Ordering::Relaxed) {
                return Err(QueryError::Cancelled);
            }
        }
        if let Some(deadline) = self.options.deadline {
            if Instant::now() >= deadline {
                return Err(QueryError::DeadlineExceeded {
                    deadline_ms: self.deadline_ms,
                });
            }
        }
        Ok(())
    }

    /// Accounts for `n` more samples held in memory.
    pub fn charge(&self, n: usize) -> Result<(), QueryError> {
        let held = self.held.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        if held > self.options.max_samples {
            return Err(QueryError::TooManySamples {
                limit: self.options.max_samples,
            });
        }
        Ok(())
    }

    /// Accounts for `n` samples no longer held.
    pub fn release(&self, n: usize) {
        // Saturating: a failed query may release what it never charged.
        let _ = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                Some(held.saturating_sub(n))
            });
    }

    /// The time an `@` modifier pins evaluation to.
    pub fn resolve_at(&self, at: At) -> i64 {
        match at {
            At::Timestamp(ms) => ms,
            At::Start => self.query_start_ms,
            At::End => self.query_end_ms,
        }
    }

    /// The read times of a selector or subquery with modifiers `at` and
    /// `offset_ms` evaluated at `steps`.
    pub fn ends(&self, at: Option<At>, offset_ms: i64, steps: &Steps) -> Ends {
        match at {
            Some(at) => Ends {
                first_ms: self.resolve_at(at).saturating_sub(offset_ms),
                step_ms: 0,
                count: steps.count,
            },
            None => Ends {
                first_ms: steps.start_ms.saturating_sub(offset_ms),
                step_ms: steps.step_ms,
                count: steps.count,
            },
        }
    }

    /// The series matching `matchers` with samples in `range`, within the
    /// series limit.
    pub fn select(
        &self,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<SeriesSet<'a>, QueryError> {
        self.check()?;
        let set = self.source.select_series(matchers, range)?;
        if set.len() > self.options.max_series {
            return Err(QueryError::TooManySeries {
                limit: self.options.max_series,
            });
        }
        Ok(set)
    }

    /// The buckets of `resolution_ms` of the series matching `matchers`
    /// for bucket starts in `starts`, within the series limit.
    pub fn select_buckets(
        &self,
        matchers: &[Matcher],
        starts: TimeRange,
        resolution_ms: i64,
    ) -> Result<BucketSet<'a>, QueryError> {
        self.check()?;
        let set = self
            .source
            .select_buckets(matchers, starts, resolution_ms)?;
        if set.len() > self.options.max_series {
            return Err(QueryError::TooManySeries {
                limit: self.options.max_series,
            });
        }
        Ok(set)
    }

    /// The source's stored tier resolutions, ascending.
    pub fn tier_resolutions(&self) -> Vec<i64> {
        self.source.tier_resolutions()
    }

    /// Runs `task` for series `0..count`, in parallel when there are
    /// enough of them, and returns the results it kept, in series order.
    /// Each thread has its own [`Scratch`].
    pub fn map_series<T, F>(&self, count: usize, task: F) -> Result<Vec<T>, QueryError>
    where
        T: Send,
        F: Fn(usize, &mut Scratch) -> Result<Option<T>, QueryError> + Sync,
    {
        let threads = self.threads.min(count / MIN_SERIES_PER_THREAD).max(1);
        if threads == 1 {
            let mut scratch = Scratch::default();
            let mut out = Vec::new();
            for index in 0..count {
                self.check()?;
                out.extend(task(index, &mut scratch)?);
            }
            return Ok(out);
        }
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let worker = || -> Result<Vec<(usize, T)>, QueryError> {
            let mut scratch = Scratch::default();
            let mut out = Vec::new();
            loop {
                let first = next.fetch_add(SERIES_PER_CLAIM, Ordering::Relaxed);
                if first >= count || failed.load(Ordering::Relaxed) {
                    return Ok(out);
                }
                for index in first..(first + SERIES_PER_CLAIM).min(count) {
                    let result = self.check().and_then(|()| task(index, &mut scratch));
                    match result {
                        Ok(Some(item)) => out.push((index, item)),
                        Ok(None) => {}
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                }
            }
        };
        let parts: Vec<Result<Vec<(usize, T)>, QueryError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
            handles
                .into_iter()
                .map(|handle| match handle.join() {
                    Ok(result) => result,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        });
        let mut all = Vec::new();
        for part in parts {
            all.extend(part?);
        }
        all.sort_unstable_by_key(|&(index, _)| index);
        Ok(all.into_iter().map(|(_, item)| item).collect())
    }

    /// Evaluates `expr` at every step of `steps`.
    pub fn eval(&self, expr: &Expr, steps: &Steps) -> Result<Value, QueryError> {
        self.check()?;
        match expr {
            Expr::Number(n) => {
                self.charge(steps.count)?;
                Ok(Value::Scalar(vec![*n; steps.count]))
            }
            Expr::String(s) => Ok(Value::String(s.clone())),
            Expr::Vector(sel) => Ok(Value::Vector(selector::eval(
                self,
                sel,
                steps,
                selector::Read::Value,
            )?)),
            Expr::Matrix { .. } | Expr::Subquery(_) => Err(QueryError::BadArgument(format!(
                "the range vector {expr} can only be an argument of a range function \
                 or the whole expression of an instant query"
            ))),
            Expr::Call { func, args } => self.call(*func, args, steps),
            Expr::Aggregate(agg) => {
                let param = agg
                    .param
                    .as_ref()
                    .map(|p| self.eval(p, steps))
                    .transpose()?;
                let input = self.eval_vector(&agg.expr, steps)?;
                let consumed = param.as_ref().map_or(0, slots) + series_slots(&input);
                let out =
                    aggregate::aggregate(agg.op, param.as_ref(), input, &agg.grouping, steps)?;
                self.settle(consumed, Value::Vector(out))
            }
            Expr::Neg(inner) => match self.eval(inner, steps)? {
                Value::Scalar(mut values) => {
                    values.iter_mut().for_each(|v| *v = -*v);
                    Ok(Value::Scalar(values))
                }
                Value::Vector(mut series) => {
                    for s in &mut series {
                        drop_metric_name(&mut s.labels);
                        s.values.iter_mut().for_each(|v| *v = -*v);
                    }
                    ensure_unique_labels(&series, "unary minus")?;
                    Ok(Value::Vector(series))
                }
                Value::String(_) => Err(type_error("unary minus", "a string")),
            },
            Expr::Binary(b) => {
                let lhs = self.eval(&b.lhs, steps)?;
                let rhs = self.eval(&b.rhs, steps)?;
                let consumed = slots(&lhs) + slots(&rhs);
                let out = binary::binary(b, lhs, rhs, steps)?;
                self.settle(consumed, out)
            }
        }
    }

    /// Evaluates an expression that must be an instant vector.
    pub fn eval_vector(&self, expr: &Expr, steps: &Steps) -> Result<Vec<StepSeries>, QueryError> {
        match self.eval(expr, steps)? {
            Value::Vector(series) => Ok(series),
            Value::Scalar(_) => Err(type_error(&expr.to_string(), "a scalar")),
            Value::String(_) => Err(type_error(&expr.to_string(), "a string")),
        }
    }

    /// Evaluates an expression that must be a scalar.
    pub fn eval_scalar(&self, expr: &Expr, steps: &Steps) -> Result<Vec<f64>, QueryError> {
        match self.eval(expr, steps)? {
            Value::Scalar(values) => Ok(values),
            Value::Vector(_) => Err(QueryError::BadArgument(format!(
                "expected a scalar, got the instant vector {expr}"
            ))),
            Value::String(_) => Err(QueryError::BadArgument(format!(
                "expected a scalar, got the string {expr}"
            ))),
        }
    }

    /// Swaps the accounting of consumed inputs for that of their result.
    fn settle(&self, consumed: usize, out: Value) -> Result<Value, QueryError> {
        self.release(consumed);
        self.charge(slots(&out))?;
        Ok(out)
    }

    fn call(&self, func: Function, args: &[Expr], steps: &Steps) -> Result<Value, QueryError> {
        if range::is_range_function(func) {
            return range::eval_call(self, func, args, steps).map(Value::Vector);
        }
        match func {
            Function::Timestamp => self.timestamp(arg(func, args, 0)?, steps),
            Function::Absent => self.absent(arg(func, args, 0)?, steps),
            _ => {
                let values = args
                    .iter()
                    .map(|a| self.eval(a, steps))
                    .collect::<Result<Vec<_>, _>>()?;
                let consumed = values.iter().map(slots).sum();
                let out = functions::call_instant(func, values, steps)?;
                self.settle(consumed, out)
            }
        }
    }

    /// `timestamp(v)`: on a plain selector, the time of each sample the
    /// selector picked (as Prometheus 2.42); on anything else, the step's
    /// time. The metric name is dropped.
    fn timestamp(&self, expr: &Expr, steps: &Steps) -> Result<Value, QueryError> {
        let mut series = match expr {
            Expr::Vector(sel) => selector::eval(self, sel, steps, selector::Read::Timestamp)?,
            _ => {
                let mut series = self.eval_vector(expr, steps)?;
                for s in &mut series {
                    for (i, v) in s.values.iter_mut().enumerate() {
                        *v = steps.time(i) as f64 / 1000.0;
                    }
                }
                series
            }
        };
        series
            .iter_mut()
            .for_each(|s| drop_metric_name(&mut s.labels));
        // Per step, as Prometheus' instant functions: series that now share
        // labels merge unless present at the same step.
        let series = merge_same_labels(series).map_err(|clash| clash.into_error("timestamp"))?;
        Ok(Value::Vector(series))
    }

    /// `absent(v)`: 1 at the steps where `v` has no series, labelled from
    /// the equality matchers of `v` when it is a selector.
    fn absent(&self, expr: &Expr, steps: &Steps) -> Result<Value, QueryError> {
        let input = self.eval_vector(expr, steps)?;
        let mut covered = vec![false; steps.count];
        for s in &input {
            covered
                .iter_mut()
                .zip(&s.present)
                .for_each(|(c, &p)| *c |= p);
        }
        self.release(series_slots(&input));
        let labels = match expr {
            Expr::Vector(sel) => absent_labels(&sel.matchers),
            _ => Labels::new(),
        };
        let out = absent_series(labels, &covered);
        self.charge(series_slots(&out))?;
        Ok(Value::Vector(out))
    }
}

/// The argument `index` of a call, or an error for a hand-built tree with
/// too few.
pub(super) fn arg(func: Function, args: &[Expr], index: usize) -> Result<&Expr, QueryError> {
    args.get(index).ok_or_else(|| {
        QueryError::BadArgument(format!(
            "{} expects {} arguments, got {}",
            func.name(),
            func.signature().args.len(),
            args.len()
        ))
    })
}

fn type_error(what: &str, got: &str) -> QueryError {
    QueryError::BadArgument(format!("expected an instant vector in {what}, got {got}"))
}

/// The slots a value holds.
pub(super) fn slots(value: &Value) -> usize {
    match value {
        Value::Scalar(values) => values.len(),
        Value::Vector(series) => series_slots(series),
        Value::String(_) => 0,
    }
}

pub(super) fn series_slots(series: &[StepSeries]) -> usize {
    series.iter().map(|s| s.values.len()).sum()
}

/// The labels `absent` and `absent_over_time` give their result, as
/// Prometheus 2.42: a label for each name (not the metric name) whose only
/// matcher is an equality with a non-empty value; a name with any other
/// matcher, or two, is left out.
pub(super) fn absent_labels(matchers: &[Matcher]) -> Labels {
    let mut labels: Labels = matchers
        .iter()
        .filter(|m| {
            m.op() == MatchOp::Equal
                && m.name() != METRIC_NAME_LABEL
                && !m.value().is_empty()
                && matchers.iter().filter(|o| o.name() == m.name()).count() == 1
        })
        .map(|m| Label::new(m.name(), m.value()))
        .collect();
    labels.sort();
    labels
}

/// One series valued 1 at every step not `covered`, or nothing when all
/// are.
pub(super) fn absent_series(labels: Labels, covered: &[bool]) -> Vec<StepSeries> {
    if covered.iter().all(|&c| c) {
        return Vec::new();
    }
    vec![StepSeries {
        labels,
        values: vec![1.0; covered.len()],
        present: covered.iter().map(|&c| !c).collect(),
    }]
}

/// Fails with [`QueryError::DuplicateLabelSet`] when two series have the
/// same labels, whatever their steps: Prometheus 2.42 checks the whole
/// result of range functions and unary minus this way.
pub(super) fn ensure_unique_labels(series: &[StepSeries], context: &str) -> Result<(), QueryError> {
    let mut order: Vec<&Labels> = series.iter().map(|s| &s.labels).collect();
    order.sort_unstable();
    match order.windows(2).find(|pair| pair[0] == pair[1]) {
        Some(pair) => Err(QueryError::DuplicateLabelSet {
            context: context.to_owned(),
            labels: FormatLabels(pair[0]).to_string(),
        }),
        None => Ok(()),
    }
}
