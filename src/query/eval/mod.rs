//! The PromQL evaluator: instant and range queries over a [`Queryable`].
//!
//! Every node of the expression is evaluated once for all the query's
//! evaluation times (a `value::Steps` grid; an instant query is a grid of
//! one), so a selector is one `select_series` and one read of each series
//! whatever the number of steps, and operators work on whole columns.
//! The semantics are Prometheus 2.42's (docs/QUERY.md, "Evaluation"):
//! a 5-minute lookback closed at both ends, closed range windows,
//! staleness markers, rate extrapolation, subqueries on absolute multiples
//! of their step.
//!
//! Invariants: a query never holds more than
//! [`QueryOptions::max_samples`] samples and result slots (beyond one
//! node's output) before failing with a typed error; it checks
//! cancellation and its deadline before every node and between series;
//! series of a result are sorted by labels.

mod aggregate;
mod binary;
mod engine;
mod functions;
mod range;
mod selector;
mod subquery;
#[cfg(test)]
mod tests;
mod value;
mod window;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::query::ast::Expr;
use crate::query::source::Queryable;
use crate::series::Sample;
use engine::Evaluator;
pub use value::QueryError;
use value::{Labels, Steps, Value};

/// Limits and knobs of one query.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// How far back an instant vector selector looks for a sample.
    /// Default 5 minutes, as Prometheus.
    pub lookback_ms: i64,
    /// Most samples the query may hold in memory at once (loaded samples
    /// plus result points). Default 50 million, as Prometheus.
    pub max_samples: usize,
    /// Most series one selector may match. Default 1 million.
    pub max_series: usize,
    /// Most intervals between the points of a range query,
    /// `(end - start) / step` (so at most `max_steps + 1` points). Default
    /// 11,000, as Prometheus.
    pub max_steps: usize,
    /// Fail with [`QueryError::DeadlineExceeded`] after this instant.
    pub deadline: Option<Instant>,
    /// Fail with [`QueryError::Cancelled`] once this is set.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Threads reading and computing series; 0 means all cores.
    pub threads: usize,
    /// The step of a subquery written without one (`x[1h:]`): Prometheus'
    /// global evaluation interval, 1 minute by default (Prometheus does
    /// not use the range query's step here).
    pub subquery_step_ms: i64,
    /// Where range functions read their samples: see [`TierChoice`].
    pub tier: TierChoice,
    /// When set, every range-function call records here which tier
    /// answered it.
    pub tier_report: Option<Arc<TierReport>>,
}

/// Where range-vector functions read their samples.
///
/// A call can be answered from rollup buckets of resolution `res` when
/// its function is rate, increase, delta, count/sum/avg/min/max/last
/// _over_time or absent_over_time, its argument is a range selector,
/// `res` divides the range, and every window end (each step's time after
/// `offset` and `@`) is a multiple of `res` (so the step is a multiple of
/// `res` too). Each window `[t - range, t]` is then made of whole buckets
/// plus the sample exactly at `t`, and the result equals the raw one:
/// exactly for count, min, max and last, up to float summation order for
/// sum, avg, rate, increase and delta (see docs/QUERY.md, "Rollup tiers").
/// Calls that cannot be answered from buckets read raw samples whatever
/// the choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TierChoice {
    /// The coarsest stored tier that can answer each call, raw samples
    /// when none can. Where retention has deleted the raw data only the
    /// tiers have it, so only calls a tier can answer see that time.
    #[default]
    Auto,
    /// Raw samples only: nothing where retention has deleted them.
    Raw,
    /// Buckets of this resolution (ms) for every call they can answer:
    /// from a stored tier where one covers, else computed from finer data.
    Resolution(i64),
}

/// Which tier answered each range-function call of a query (in the order
/// calls were evaluated); see [`QueryOptions::tier_report`].
#[derive(Debug, Default)]
pub struct TierReport {
    uses: parking_lot::Mutex<Vec<TierUse>>,
}

/// One range-function call and where its samples came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierUse {
    /// The call, e.g. `rate(x[1h])`.
    pub call: String,
    /// The bucket resolution that answered it; `None` for raw samples.
    pub resolution_ms: Option<i64>,
}

impl TierReport {
    pub fn uses(&self) -> Vec<TierUse> {
        self.uses.lock().clone()
    }

    fn record(&self, call: String, resolution_ms: Option<i64>) {
        self.uses.lock().push(TierUse {
            call,
            resolution_ms,
        });
    }
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            lookback_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            max_series: 1_000_000,
            max_steps: 11_000,
            deadline: None,
            cancel: None,
            threads: 0,
            subquery_step_ms: 60_000,
            tier: TierChoice::Auto,
            tier_report: None,
        }
    }
}

/// One labelled series of a query result.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySeries {
    pub labels: Labels,
    /// In time order.
    pub samples: Vec<Sample>,
}

/// A query result, shaped as the Prometheus HTTP API's `data`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Scalar(Sample),
    String {
        time_ms: i64,
        value: String,
    },
    /// An instant query's vector: each series has exactly one sample.
    Vector(Vec<QuerySeries>),
    /// A range query's result, or an instant query of a range vector.
    /// Series sorted by labels.
    Matrix(Vec<QuerySeries>),
}

/// Evaluates `expr` at `time_ms`.
pub fn instant_query(
    source: &dyn Queryable,
    expr: &Expr,
    time_ms: i64,
    options: &QueryOptions,
) -> Result<QueryValue, QueryError> {
    let ev = Evaluator::new(source, options, time_ms, time_ms);
    if matches!(expr, Expr::Matrix { .. } | Expr::Subquery(_)) {
        let mut series = range::raw_points(&ev, expr, time_ms)?;
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        return Ok(QueryValue::Matrix(series));
    }
    Ok(match ev.eval(expr, &Steps::instant(time_ms))? {
        Value::Scalar(values) => QueryValue::Scalar(Sample::new(
            time_ms,
            values.first().copied().unwrap_or(f64::NAN),
        )),
        Value::String(value) => QueryValue::String { time_ms, value },
        Value::Vector(series) => QueryValue::Vector(to_query_series(series, |_| time_ms)),
    })
}

/// Evaluates `expr` at `start_ms`, `start_ms + step_ms`, … up to `end_ms`;
/// always a [`QueryValue::Matrix`] (a scalar result is one series without
/// labels), as Prometheus' `query_range`.
pub fn range_query(
    source: &dyn Queryable,
    expr: &Expr,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    options: &QueryOptions,
) -> Result<QueryValue, QueryError> {
    if step_ms <= 0 {
        return Err(QueryError::BadRange(format!(
            "the step must be positive, got {step_ms} ms"
        )));
    }
    if end_ms < start_ms {
        return Err(QueryError::BadRange(format!(
            "the end ({end_ms} ms) is before the start ({start_ms} ms)"
        )));
    }
    let span = end_ms as i128 - start_ms as i128;
    if span > i64::MAX as i128 {
        return Err(QueryError::BadRange(format!(
            "the range from {start_ms} ms to {end_ms} ms is too wide"
        )));
    }
    let intervals = span / step_ms as i128;
    if intervals > options.max_steps as i128 {
        return Err(QueryError::TooManySteps {
            count: u64::try_from(intervals + 1).unwrap_or(u64::MAX),
            limit: options.max_steps,
        });
    }
    // `intervals` ≤ max_steps, a usize.
    let steps = Steps {
        start_ms,
        step_ms,
        count: intervals as usize + 1,
    };
    if let Expr::Matrix { .. } | Expr::Subquery(_) | Expr::String(_) = expr {
        return Err(QueryError::BadRange(format!(
            "a range query needs a scalar or an instant vector, and {expr} is a {}",
            expr.value_type()
        )));
    }
    // `@ end()` is the requested end, even off the step grid (as Prometheus).
    let ev = Evaluator::new(source, options, start_ms, end_ms);
    let series = match ev.eval(expr, &steps)? {
        Value::Scalar(values) => vec![value::StepSeries {
            labels: Labels::new(),
            present: vec![true; values.len()],
            values,
        }],
        Value::Vector(series) => series,
        Value::String(_) => {
            return Err(QueryError::BadRange(format!(
                "a range query needs a scalar or an instant vector, and {expr} is a string"
            )))
        }
    };
    Ok(QueryValue::Matrix(to_query_series(series, |i| {
        steps.time(i)
    })))
}

/// Result series from step series: one sample per present slot, at the
/// slot's time; series without samples left out; sorted by labels.
fn to_query_series(
    series: Vec<value::StepSeries>,
    time_of: impl Fn(usize) -> i64,
) -> Vec<QuerySeries> {
    let mut out: Vec<QuerySeries> = series
        .into_iter()
        .filter_map(|s| {
            let samples: Vec<Sample> = s
                .values
                .iter()
                .zip(&s.present)
                .enumerate()
                .filter(|(_, (_, &present))| present)
                .map(|(i, (&v, _))| Sample::new(time_of(i), v))
                .collect();
            (!samples.is_empty()).then_some(QuerySeries {
                labels: s.labels,
                samples,
            })
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}
