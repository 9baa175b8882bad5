//! The values an expression evaluates to, over a grid of evaluation times.
//!
//! Every node of a query is evaluated once for all its evaluation times (a
//! range query's steps; an instant query is one step), so operators and
//! aggregations work column-wise: a vector is a list of series, each with
//! one slot per step.
//!
//! Invariants:
//! - `StepSeries::values.len() == StepSeries::present.len() == steps.count`;
//!   a slot whose `present` is false has no sample (its value is ignored);
//! - labels are sorted by name with unique names and no empty value; the
//!   metric name is the label `__name__` when the series still has one;
//! - within one vector no two series have the same labels at a step where
//!   both are present (Prometheus' "same labelset" rule; operations that
//!   could break it return [`QueryError::DuplicateLabelSet`]).

use std::fmt;

use crate::series::{Label, METRIC_NAME_LABEL};

/// A label set: sorted by name, unique names, no empty value.
pub type Labels = Vec<Label>;

/// The evaluation times: `start_ms + i * step_ms` for `i < count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    pub start_ms: i64,
    /// > 0 (1 for an instant query).
    pub step_ms: i64,
    /// ≥ 1.
    pub count: usize,
}

impl Steps {
    /// One evaluation at `time_ms`.
    pub fn instant(time_ms: i64) -> Self {
        Steps {
            start_ms: time_ms,
            step_ms: 1,
            count: 1,
        }
    }

    /// The `index`-th evaluation time.
    pub fn time(&self, index: usize) -> i64 {
        self.start_ms + index as i64 * self.step_ms
    }
}

/// One series of an instant vector, with a slot per step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSeries {
    pub labels: Labels,
    pub values: Vec<f64>,
    pub present: Vec<bool>,
}

impl StepSeries {
    /// A series with no sample at any of `count` steps.
    pub fn empty(labels: Labels, count: usize) -> Self {
        StepSeries {
            labels,
            values: vec![0.0; count],
            present: vec![false; count],
        }
    }

    /// True if the series has a sample at some step.
    pub fn any_present(&self) -> bool {
        self.present.iter().any(|&p| p)
    }
}

/// The value of an expression at every step.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// One number per step.
    Scalar(Vec<f64>),
    Vector(Vec<StepSeries>),
    String(String),
}

/// Removes the metric name, as functions and arithmetic do.
pub fn drop_metric_name(labels: &mut Labels) {
    labels.retain(|l| &*l.name != METRIC_NAME_LABEL);
}

/// The value of label `name`, if set.
pub fn label_value<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    labels
        .binary_search_by(|l| (*l.name).cmp(name))
        .ok()
        .map(|i| &*labels[i].value)
}

/// Prometheus' text form of a label set: `{a="1", b="2"}`.
pub struct FormatLabels<'a>(pub &'a [Label]);

impl fmt::Display for FormatLabels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, label) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", label.name, &*label.value)?;
        }
        f.write_str("}")
    }
}

/// Why a query failed. Storage errors keep their file/offset detail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error(transparent)]
    Storage(#[from] crate::Error),
    #[error("the query would hold more than {limit} samples in memory (QueryOptions::max_samples); narrow the selectors or the time range")]
    TooManySamples { limit: usize },
    #[error("a selector matched more than {limit} series (QueryOptions::max_series); add label matchers")]
    TooManySeries { limit: usize },
    #[error("a range query of {count} steps exceeds the limit of {limit} points per series; use a larger step")]
    TooManySteps { count: u64, limit: usize },
    #[error("the query ran past its deadline of {deadline_ms} ms")]
    DeadlineExceeded { deadline_ms: u64 },
    #[error("the query was cancelled")]
    Cancelled,
    #[error("invalid range query: {0}")]
    BadRange(String),
    /// Prometheus: "vector cannot contain metrics with the same labelset".
    #[error("{context}: the result would hold two series with the labels {labels}; remove the duplicate with an aggregation or label_replace")]
    DuplicateLabelSet { context: String, labels: String },
    /// Vector matching found several series where one was required.
    #[error("{0}")]
    Matching(String),
    /// A function or aggregation argument outside its domain.
    #[error("{0}")]
    BadArgument(String),
}

/// The labels that identify a series for vector matching or grouping:
/// with `keep` (`on`, `by`) only the labels named in `names`, the metric
/// name included if named; without it (`ignoring`, `without`) every label
/// except those named and the metric name. Sorted, as `labels` is.
pub fn label_subset(labels: &[Label], names: &[String], keep: bool) -> Labels {
    labels
        .iter()
        .filter(|l| {
            let named = names.iter().any(|n| **n == *l.name);
            if keep {
                named
            } else {
                !named && &*l.name != METRIC_NAME_LABEL
            }
        })
        .cloned()
        .collect()
}

/// Numbers the distinct keys in order of first appearance: returns each
/// item's number and the distinct keys in that order.
pub fn dense_ids<K: std::hash::Hash + Eq>(
    keys: impl IntoIterator<Item = K>,
) -> (Vec<usize>, Vec<K>) {
    let mut map: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
    let ids = keys
        .into_iter()
        .map(|key| {
            let next = map.len();
            *map.entry(key).or_insert(next)
        })
        .collect();
    let mut distinct: Vec<(K, usize)> = map.into_iter().collect();
    distinct.sort_unstable_by_key(|&(_, id)| id);
    (ids, distinct.into_iter().map(|(key, _)| key).collect())
}

/// Two series of one result with the same labels at the same step: what
/// Prometheus rejects with "vector cannot contain metrics with the same
/// labelset".
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSetClash {
    /// The first step where the two series are both present.
    pub step: usize,
    pub labels: Labels,
}

impl LabelSetClash {
    /// The query error, `context` naming the operation that made the clash.
    pub fn into_error(self, context: impl Into<String>) -> QueryError {
        QueryError::DuplicateLabelSet {
            context: context.into(),
            labels: FormatLabels(&self.labels).to_string(),
        }
    }
}

/// Merges the series that have the same labels into one (keeping the first
/// one's place) and drops series with no sample; series with the same
/// labels must not be present at the same step, else the clash at the
/// earliest such step is returned.
pub fn merge_same_labels(series: Vec<StepSeries>) -> Result<Vec<StepSeries>, LabelSetClash> {
    let series: Vec<StepSeries> = series.into_iter().filter(StepSeries::any_present).collect();
    let mut first: std::collections::HashMap<&Labels, usize> =
        std::collections::HashMap::with_capacity(series.len());
    // `into[i]`: the index of the first series with the labels of series `i`.
    let into: Vec<usize> = series
        .iter()
        .enumerate()
        .map(|(i, s)| *first.entry(&s.labels).or_insert(i))
        .collect();
    drop(first);
    if into.iter().enumerate().all(|(i, &j)| i == j) {
        return Ok(series);
    }
    let mut clash: Option<LabelSetClash> = None;
    let mut merged: Vec<Option<StepSeries>> = series.into_iter().map(Some).collect();
    for (i, &j) in into.iter().enumerate() {
        if i == j {
            continue;
        }
        let Some(src) = merged[i].take() else {
            continue;
        };
        let Some(dst) = merged[j].as_mut() else {
            continue;
        };
        for (t, &p) in src.present.iter().enumerate() {
            if !p {
                continue;
            }
            if dst.present[t] {
                if clash.as_ref().is_none_or(|c| t < c.step) {
                    clash = Some(LabelSetClash {
                        step: t,
                        labels: src.labels.clone(),
                    });
                }
            } else {
                dst.present[t] = true;
                dst.values[t] = src.values[t];
            }
        }
    }
    match clash {
        Some(clash) => Err(clash),
        None => Ok(merged.into_iter().flatten().collect()),
    }
}

/// Builders the evaluator's unit tests share.
#[cfg(test)]
pub(super) mod test_support {
    use super::{Labels, StepSeries};
    use crate::series::Label;

    /// A sorted label set from pairs.
    pub fn labels(pairs: &[(&str, &str)]) -> Labels {
        let mut l: Labels = pairs.iter().map(|&(n, v)| Label::new(n, v)).collect();
        l.sort();
        l
    }

    /// A series from per-step values, `None` for no sample.
    pub fn series(pairs: &[(&str, &str)], values: &[Option<f64>]) -> StepSeries {
        StepSeries {
            labels: labels(pairs),
            values: values.iter().map(|v| v.unwrap_or(0.0)).collect(),
            present: values.iter().map(Option::is_some).collect(),
        }
    }
}
