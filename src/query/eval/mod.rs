//! The PromQL evaluator: instant and range queries over a [`Queryable`].
//!
//! (Module doc to be completed by the engine's author: evaluation model,
//! Prometheus semantics kept, invariants.)

mod aggregate;
mod binary;
mod functions;
pub mod value;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::query::ast::Expr;
use crate::query::source::Queryable;
use crate::series::Sample;
use value::Labels;
pub use value::QueryError;

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
    /// Most steps of a range query. Default 11,000, as Prometheus.
    pub max_steps: usize,
    /// Fail with [`QueryError::DeadlineExceeded`] after this instant.
    pub deadline: Option<Instant>,
    /// Fail with [`QueryError::Cancelled`] once this is set.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Threads reading and computing series; 0 means all cores.
    pub threads: usize,
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
    let _ = (source, expr, time_ms, options);
    todo!("engine")
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
    let _ = (source, expr, start_ms, end_ms, step_ms, options);
    todo!("engine")
}
