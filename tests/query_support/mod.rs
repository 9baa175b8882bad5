//! Plumbing shared by the query tests (tests/query_golden.rs,
//! tests/query_reference.rs): a temporary database filled with hand-made
//! series, queries run through the public API (`parse_expr`,
//! `instant_query`, `range_query`), results turned into label strings and
//! (timestamp, value) points, and a float comparison in which NaN equals
//! NaN.
//!
//! Label sets are printed in one canonical text form so that expected
//! results can be written by hand: `name{a="1", b="2"}` with the labels in
//! name order, `{a="1"}` once the metric name is dropped, `{}` for no label.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use strata::{
    instant_query, parse_expr, range_query, Db, Label, Options, QueryError, QueryOptions,
    QueryValue, SeriesKey, SyncMode,
};

/// Prometheus' staleness marker: the NaN with this exact bit pattern.
pub const STALE: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// A temporary database for one test.
pub struct TestDb {
    pub db: Db,
    _dir: tempfile::TempDir,
}

impl TestDb {
    /// A database holding `series`: series text (`m{a="1"}`) and samples
    /// as (Unix seconds, value).
    pub fn new(series: &[(&str, &[(i64, f64)])]) -> TestDb {
        let keyed: Vec<(SeriesKey, Vec<(i64, f64)>)> = series
            .iter()
            .map(|(text, samples)| {
                let key = SeriesKey::parse(text).unwrap();
                (key, samples.iter().map(|&(t, v)| (t * 1000, v)).collect())
            })
            .collect();
        TestDb::from_ms(&keyed, false)
    }

    /// A database holding `series` with timestamps in milliseconds; with
    /// `flush`, everything is written to segment files before querying.
    pub fn from_ms(series: &[(SeriesKey, Vec<(i64, f64)>)], flush: bool) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            sync: SyncMode::Never,
            flush_complete_partitions: false,
            ..Options::default()
        };
        let db = Db::open(dir.path(), options).unwrap();
        for (key, samples) in series {
            for &(t, v) in samples {
                db.append(key, t, v).unwrap();
            }
        }
        if flush {
            db.flush().unwrap();
        }
        TestDb { db, _dir: dir }
    }

    /// `query` as an instant query at `time_ms`.
    pub fn instant_ms(&self, query: &str, time_ms: i64) -> Result<QueryValue, QueryError> {
        let expr = parse_expr(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        instant_query(&self.db, &expr, time_ms, &QueryOptions::default())
    }

    /// `query` as a range query; times in milliseconds.
    pub fn range_ms(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryValue, QueryError> {
        let expr = parse_expr(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        range_query(
            &self.db,
            &expr,
            start_ms,
            end_ms,
            step_ms,
            &QueryOptions::default(),
        )
    }
}

/// The canonical text of a label set (see the module doc).
pub fn format_labels(labels: &[Label]) -> String {
    let mut name = "";
    let mut rest = Vec::new();
    for label in labels {
        if &*label.name == "__name__" {
            name = &label.value;
        } else {
            rest.push(format!("{}={:?}", label.name, &*label.value));
        }
    }
    rest.sort();
    format!("{name}{{{}}}", rest.join(", "))
}

/// A query result as plain data: label text and (ms, value) points,
/// series sorted by label text. A scalar is one series labelled `scalar`.
#[derive(Debug, Clone, PartialEq)]
pub enum Plain {
    Scalar(i64, f64),
    /// An instant vector: one point per series.
    Vector(Vec<(String, i64, f64)>),
    Matrix(Vec<(String, Vec<(i64, f64)>)>),
    String(String),
}

/// Turns a result into [`Plain`] data, series sorted by their label text.
pub fn plain(value: QueryValue) -> Plain {
    match value {
        QueryValue::Scalar(s) => Plain::Scalar(s.timestamp_ms, s.value),
        QueryValue::String { value, .. } => Plain::String(value),
        QueryValue::Vector(series) => {
            let mut out: Vec<(String, i64, f64)> = series
                .into_iter()
                .map(|s| {
                    assert_eq!(
                        s.samples.len(),
                        1,
                        "an instant vector series has one sample"
                    );
                    (
                        format_labels(&s.labels),
                        s.samples[0].timestamp_ms,
                        s.samples[0].value,
                    )
                })
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Plain::Vector(out)
        }
        QueryValue::Matrix(series) => {
            let mut out: Vec<(String, Vec<(i64, f64)>)> = series
                .into_iter()
                .map(|s| {
                    let points = s
                        .samples
                        .iter()
                        .map(|p| (p.timestamp_ms, p.value))
                        .collect();
                    (format_labels(&s.labels), points)
                })
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Plain::Matrix(out)
        }
    }
}

/// True if `a` and `b` are equal within `rel` relative tolerance (an
/// absolute `rel` near zero), NaN equal to NaN, infinities exactly equal.
pub fn same_f64(a: f64, b: f64, rel: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    let diff = (a - b).abs();
    diff <= rel * a.abs().max(b.abs()) || diff <= rel * 1e-3
}
