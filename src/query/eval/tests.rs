//! Engine tests on a real database: selectors, lookback, staleness,
//! offset, `@`, range functions through the engine, subquery alignment,
//! output shapes, limits and cancellation. Expected numbers are worked out
//! by hand in the comments.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::series::STALE_NAN_BITS;
use crate::series::{Label, SeriesKey};
use crate::{parse_expr, Db, Options};

const S: i64 = 1000;

fn stale() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// A database holding `series` (key text, samples).
fn db_with(series: &[(&str, Vec<(i64, f64)>)]) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for (key, samples) in series {
        let key = SeriesKey::parse(key).unwrap();
        for &(t, v) in samples {
            db.append(&key, t, v).unwrap();
        }
    }
    (dir, db)
}

/// `g`: a gauge whose value is its time in seconds, every 10 s from 0 to
/// 600 s.
fn gauge() -> (tempfile::TempDir, Db) {
    let samples = (0..=60).map(|i| (i * 10 * S, (i * 10) as f64)).collect();
    db_with(&[("g{job=\"a\"}", samples)])
}

fn instant(db: &Db, q: &str, t: i64) -> Result<QueryValue, QueryError> {
    instant_query(db, &parse_expr(q).unwrap(), t, &QueryOptions::default())
}

fn range(db: &Db, q: &str, start: i64, end: i64, step: i64) -> Result<QueryValue, QueryError> {
    range_query(
        db,
        &parse_expr(q).unwrap(),
        start,
        end,
        step,
        &QueryOptions::default(),
    )
}

/// The single value of an instant query's vector (None when empty).
fn one(db: &Db, q: &str, t: i64) -> Option<f64> {
    match instant(db, q, t).unwrap() {
        QueryValue::Vector(v) if v.is_empty() => None,
        QueryValue::Vector(v) => {
            assert_eq!(v.len(), 1, "{q}: {v:?}");
            assert_eq!(v[0].samples, vec![Sample::new(t, v[0].samples[0].value)]);
            Some(v[0].samples[0].value)
        }
        other => panic!("{q}: {other:?}"),
    }
}

/// The (time, value) points of a range query's only series.
fn points(db: &Db, q: &str, start: i64, end: i64, step: i64) -> Vec<(i64, f64)> {
    match range(db, q, start, end, step).unwrap() {
        QueryValue::Matrix(m) if m.is_empty() => Vec::new(),
        QueryValue::Matrix(m) => {
            assert_eq!(m.len(), 1, "{q}: {m:?}");
            m[0].samples
                .iter()
                .map(|s| (s.timestamp_ms, s.value))
                .collect()
        }
        other => panic!("{q}: {other:?}"),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()
}

#[test]
fn lookback_is_closed_and_five_minutes() {
    let (_d, db) = db_with(&[("a", vec![(0, 1.0)])]);
    // The sample at 0 is seen up to exactly 300 s later, not after.
    assert_eq!(one(&db, "a", 300 * S), Some(1.0));
    assert_eq!(one(&db, "a", 300 * S + 1), None);
    assert_eq!(one(&db, "a", -1), None);
    // The selector keeps the metric name and every label.
    match instant(&db, "a", 0).unwrap() {
        QueryValue::Vector(v) => assert_eq!(v[0].labels, labels(&[("__name__", "a")])),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_staleness_marker_ends_the_series_until_the_next_sample() {
    let (_d, db) = db_with(&[(
        "a",
        vec![(0, 1.0), (60 * S, 2.0), (120 * S, stale()), (400 * S, 4.0)],
    )]);
    // Steps every 60 s: 0 → 1, 60 → 2, 120..=360 → the newest sample is
    // the marker (no value), 420..=660 → 4 (400 s + 300 s lookback = 700),
    // 720 → nothing.
    let got = points(&db, "a", 0, 720 * S, 60 * S);
    let want: Vec<(i64, f64)> = vec![(0, 1.0), (60 * S, 2.0)]
        .into_iter()
        .chain((7..=11).map(|i| (i * 60 * S, 4.0)))
        .collect();
    assert_eq!(got, want);
    // Range functions skip the marker: [60 s, 180 s] holds 2 and the
    // marker, so one sample.
    assert_eq!(one(&db, "count_over_time(a[2m])", 180 * S), Some(1.0));
    // Only the marker in [100 s, 160 s]: no sample, no result.
    assert_eq!(one(&db, "count_over_time(a[1m])", 160 * S), None);
}

#[test]
fn offset_and_at_move_the_read_time() {
    let (_d, db) = gauge();
    // At 200 s, offset 1m reads 140 s; a negative offset reads ahead.
    assert_eq!(one(&db, "g offset 1m", 200 * S), Some(140.0));
    assert_eq!(one(&db, "g offset -1m", 200 * S), Some(260.0));
    // Between samples the newest one before is taken: 205 s → 200.
    assert_eq!(one(&db, "g", 205 * S), Some(200.0));
    // `@` pins every step to one time, minus the offset.
    assert_eq!(
        points(&db, "g @ 100 offset 30s", 0, 120 * S, 60 * S),
        vec![(0, 70.0), (60 * S, 70.0), (120 * S, 70.0)]
    );
    // start() and end() are the range query's bounds.
    assert_eq!(
        points(&db, "g @ end()", 0, 120 * S, 60 * S),
        vec![(0, 120.0), (60 * S, 120.0), (120 * S, 120.0)]
    );
    assert_eq!(
        points(&db, "g @ start()", 30 * S, 90 * S, 60 * S),
        vec![(30 * S, 30.0), (90 * S, 30.0)]
    );
    // end() is the requested end even when no step falls on it: steps 0
    // and 60 s, end 100 s.
    assert_eq!(
        points(&db, "g @ end()", 0, 100 * S, 60 * S),
        vec![(0, 100.0), (60 * S, 100.0)]
    );
    // Range selectors too: the window [40 s, 100 s] whatever the step.
    assert_eq!(
        points(&db, "count_over_time(g[1m] @ 100)", 0, 600 * S, 300 * S),
        vec![(0, 7.0), (300 * S, 7.0), (600 * S, 7.0)]
    );
    assert_eq!(
        one(&db, "sum_over_time(g[20s] offset 1m)", 200 * S),
        Some(390.0)
    );
}

#[test]
fn range_windows_are_closed_at_both_ends() {
    let (_d, db) = gauge();
    // [60 s, 120 s] holds 60, 70, ..., 120: seven samples.
    assert_eq!(one(&db, "count_over_time(g[1m])", 120 * S), Some(7.0));
    // [60.001 s, 120.001 s]: 70..=120, six.
    assert_eq!(one(&db, "count_over_time(g[1m])", 120 * S + 1), Some(6.0));
    // An instant query of a range selector returns the raw points.
    match instant(&db, "g[30s]", 60 * S).unwrap() {
        QueryValue::Matrix(m) => {
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].labels, labels(&[("__name__", "g"), ("job", "a")]));
            let ts: Vec<i64> = m[0].samples.iter().map(|s| s.timestamp_ms).collect();
            assert_eq!(ts, vec![30 * S, 40 * S, 50 * S, 60 * S]);
        }
        other => panic!("{other:?}"),
    }
}

/// A counter every 15 s: 0, 10, 20, 30, then a reset to 5, 15, 25.
fn counter() -> (tempfile::TempDir, Db) {
    let values = [0.0, 10.0, 20.0, 30.0, 5.0, 15.0, 25.0];
    let samples = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 * 15 * S, v))
        .collect();
    db_with(&[("c_total{job=\"a\"}", samples)])
}

#[test]
fn rate_and_increase_through_the_engine() {
    let (_d, db) = counter();
    // At 90 s, [30 s, 90 s] holds 20, 30, 5, 15, 25: 25 - 20 plus the 30
    // lost at the reset = 35, samples on both edges, no extrapolation.
    assert_eq!(one(&db, "increase(c_total[1m])", 90 * S), Some(35.0));
    assert_eq!(
        one(&db, "rate(c_total[1m])", 90 * S),
        Some(35.0 * (1.0 / 60.0))
    );
    // At 100 s, [40 s, 100 s] holds 30, 5, 15, 25 at 45..=90 s: 25 - 30
    // + 30 = 25 over 45 s; edges 5 s and 10 s away, under 1.1 × 15 s, so
    // extrapolated to 60 s: 25 × 60/45.
    assert_eq!(
        one(&db, "increase(c_total[1m])", 100 * S),
        Some(25.0 * (60.0 / 45.0))
    );
    assert_eq!(one(&db, "resets(c_total[1m])", 100 * S), Some(1.0));
    // irate: 15 → 25 over 15 s.
    assert_eq!(one(&db, "irate(c_total[1m])", 100 * S), Some(10.0 / 15.0));
    // One sample in [80 s, 100 s] (90 s): rate needs two.
    assert_eq!(one(&db, "rate(c_total[20s])", 100 * S), None);
    // The functions drop the metric name.
    match instant(&db, "rate(c_total[1m])", 90 * S).unwrap() {
        QueryValue::Vector(v) => assert_eq!(v[0].labels, labels(&[("job", "a")])),
        other => panic!("{other:?}"),
    }
    // quantile_over_time with a scalar φ: [30 s, 90 s] sorted 5, 15, 20,
    // 25, 30; φ = 0.5 → 20; φ = 0.25 → rank 1 → 15.
    assert_eq!(
        one(&db, "quantile_over_time(0.5, c_total[1m])", 90 * S),
        Some(20.0)
    );
    assert_eq!(
        one(&db, "quantile_over_time(0.25, c_total[1m])", 90 * S),
        Some(15.0)
    );
}

#[test]
fn range_functions_over_a_range_query() {
    let (_d, db) = gauge();
    // avg_over_time(g[20s]) at 100, 200, 300 s: means of three samples
    // ending at the step, 90, 190, 290.
    assert_eq!(
        points(&db, "avg_over_time(g[20s])", 100 * S, 300 * S, 100 * S),
        vec![(100 * S, 90.0), (200 * S, 190.0), (300 * S, 290.0)]
    );
    // deriv of a line rising 1 per second.
    let d = points(&db, "deriv(g[1m])", 100 * S, 100 * S, S);
    assert_eq!(d.len(), 1);
    assert!((d[0].1 - 1.0).abs() < 1e-12, "{d:?}");
    // Steps past the data: windows empty, no points (the last sample is
    // at 600 s; [640 s, 700 s] is empty).
    assert_eq!(
        points(&db, "max_over_time(g[1m])", 600 * S, 700 * S, 50 * S),
        vec![(600 * S, 600.0), (650 * S, 600.0)]
    );
}

#[test]
fn last_over_time_keeps_the_name_and_others_refuse_duplicates() {
    let (_d, db) = db_with(&[
        ("a{x=\"1\"}", vec![(0, 1.0), (10 * S, 2.0)]),
        ("b{x=\"1\"}", vec![(0, 5.0), (10 * S, 6.0)]),
    ]);
    match instant(&db, "last_over_time({x=\"1\"}[1m])", 10 * S).unwrap() {
        QueryValue::Vector(v) => {
            assert_eq!(v.len(), 2);
            assert_eq!(v[0].labels, labels(&[("__name__", "a"), ("x", "1")]));
            assert_eq!(v[1].samples[0].value, 6.0);
        }
        other => panic!("{other:?}"),
    }
    let err = instant(&db, "delta({x=\"1\"}[1m])", 10 * S).unwrap_err();
    assert!(matches!(err, QueryError::DuplicateLabelSet { .. }), "{err}");
    let err = instant(&db, "-{x=\"1\"}", 10 * S).unwrap_err();
    assert!(matches!(err, QueryError::DuplicateLabelSet { .. }), "{err}");
    // timestamp() checks per step: one series is enough to clash.
    assert!(instant(&db, "timestamp({x=\"1\"})", 10 * S).is_err());
    assert_eq!(one(&db, "timestamp(a)", 15 * S), Some(10.0));
}

#[test]
fn same_labels_merge_per_step_for_timestamp_but_not_for_range_functions() {
    let (_d, db) = db_with(&[
        ("a{x=\"1\"}", vec![(0, 1.0)]),
        ("b{x=\"1\"}", vec![(400 * S, 2.0)]),
    ]);
    // `a` is seen at 0 and 200 s, `b` at 400 and 600 s: without their
    // names they never meet at a step, so timestamp() merges them into
    // one series, as Prometheus' per-step evaluation does.
    assert_eq!(
        points(&db, "timestamp({x=\"1\"})", 0, 600 * S, 200 * S),
        vec![(0, 0.0), (200 * S, 0.0), (400 * S, 400.0), (600 * S, 400.0)]
    );
    // Range functions check the whole result (2.42): an error even so.
    assert!(matches!(
        range(&db, "count_over_time({x=\"1\"}[1m])", 0, 600 * S, 200 * S),
        Err(QueryError::DuplicateLabelSet { .. })
    ));
}

#[test]
fn subqueries_run_on_absolute_multiples_of_their_step() {
    let (_d, db) = gauge();
    // At 150 s, [30 s, 150 s] holds the multiples of 1 m 60 s and 120 s,
    // where g is 60 and 120.
    match instant(&db, "g[2m:1m]", 150 * S).unwrap() {
        QueryValue::Matrix(m) => {
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].labels, labels(&[("__name__", "g"), ("job", "a")]));
            assert_eq!(
                m[0].samples,
                vec![Sample::new(60 * S, 60.0), Sample::new(120 * S, 120.0)]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(one(&db, "sum_over_time(g[2m:1m])", 150 * S), Some(180.0));
    // The default step is QueryOptions::subquery_step_ms (1 m).
    assert_eq!(one(&db, "sum_over_time(g[2m:])", 150 * S), Some(180.0));
    // Offset 30 s: [0, 120 s] → 0, 60, 120 s.
    assert_eq!(
        one(&db, "sum_over_time(g[2m:1m] offset 30s)", 150 * S),
        Some(180.0)
    );
    assert_eq!(
        one(&db, "count_over_time(g[2m:1m] offset 30s)", 150 * S),
        Some(3.0)
    );
    // In a range query every outer window reads the same inner grid (30 s
    // multiples): at 100 s, [40 s, 100 s] → 60, 90 s, max 90; at 200 s →
    // 180; at 300 s → 300.
    assert_eq!(
        points(&db, "max_over_time(g[1m:30s])", 100 * S, 300 * S, 100 * S),
        vec![(100 * S, 90.0), (200 * S, 180.0), (300 * S, 300.0)]
    );
    // At 0, [-60 s, 0] → -60, -30, 0 s: only 0 has a value.
    assert_eq!(one(&db, "count_over_time(g[1m:30s])", 0), Some(1.0));
    // `@` pins the subquery: [40 s, 100 s] → 60 and 90 s at every step.
    assert_eq!(
        points(&db, "sum_over_time(g[1m:30s] @ 100)", 0, 600 * S, 300 * S),
        vec![(0, 150.0), (300 * S, 150.0), (600 * S, 150.0)]
    );
    match instant(&db, "g[1m:30s] @ 100", 500 * S).unwrap() {
        QueryValue::Matrix(m) => assert_eq!(
            m[0].samples,
            vec![Sample::new(60 * S, 60.0), Sample::new(90 * S, 90.0)]
        ),
        other => panic!("{other:?}"),
    }
    // The default step comes from the options: [90 s, 150 s] holds one
    // multiple of 60 s (120) but three of 30 s.
    let every_30s = QueryOptions {
        subquery_step_ms: 30 * S,
        ..QueryOptions::default()
    };
    let expr = parse_expr("count_over_time(g[1m:])").unwrap();
    let count = |opts: &QueryOptions| match instant_query(&db, &expr, 150 * S, opts).unwrap() {
        QueryValue::Vector(v) => v[0].samples[0].value,
        other => panic!("{other:?}"),
    };
    assert_eq!(count(&QueryOptions::default()), 1.0);
    assert_eq!(count(&every_30s), 3.0);
    // Nested: the max of 20 s rates sampled each 10 s (all 1 per second,
    // but a rate over [t-20 s, t] with samples at both ends is exactly 1).
    assert_eq!(
        one(&db, "max_over_time(rate(g[20s])[1m:10s])", 300 * S),
        Some(1.0)
    );
}

#[test]
fn absent_and_absent_over_time() {
    let (_d, db) = db_with(&[("a", vec![(0, 1.0)])]);
    assert_eq!(one(&db, "absent(a)", 0), None);
    // Only names with a single matcher, an equality: `job` has two, `env`
    // is a regex, `e` is empty.
    let q = "absent(nope{job=\"x\", env=~\"p.*\", job=\"y\", k=\"v\", e=\"\"})";
    match instant(&db, q, 0).unwrap() {
        QueryValue::Vector(v) => {
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].labels, labels(&[("k", "v")]));
            assert_eq!(v[0].samples[0].value, 1.0);
        }
        other => panic!("{other:?}"),
    }
    // In a range query: `a` is seen for 300 s after its sample.
    assert_eq!(
        points(&db, "absent(a)", 0, 600 * S, 200 * S),
        vec![(400 * S, 1.0), (600 * S, 1.0)]
    );
    // absent_over_time looks at the window only: [140 s, 200 s] has no
    // sample, [-60 s, 0] has one.
    assert_eq!(
        points(&db, "absent_over_time(a{k=\"v\"}[1m])", 0, 200 * S, 200 * S),
        vec![(0, 1.0), (200 * S, 1.0)]
    );
    assert_eq!(
        points(&db, "absent_over_time(a[1m])", 0, 200 * S, 200 * S),
        vec![(200 * S, 1.0)]
    );
    match instant(&db, "absent_over_time(nope{job=\"x\"}[1m])", 0).unwrap() {
        QueryValue::Vector(v) => assert_eq!(v[0].labels, labels(&[("job", "x")])),
        other => panic!("{other:?}"),
    }
}

#[test]
fn timestamp_reads_the_sample_time_of_a_selector() {
    let (_d, db) = gauge();
    // At 155 s the newest sample is at 150 s.
    assert_eq!(one(&db, "timestamp(g)", 155 * S), Some(150.0));
    assert_eq!(one(&db, "timestamp(g offset 1m)", 155 * S), Some(90.0));
    // On anything but a selector it is the step's time.
    assert_eq!(
        one(&db, "timestamp(last_over_time(g[1m]))", 155 * S),
        Some(155.0)
    );
}

#[test]
fn result_shapes() {
    let (_d, db) = db_with(&[
        ("m{k=\"2\"}", vec![(0, 2.0)]),
        ("m{k=\"1\"}", vec![(60 * S, 1.0)]),
    ]);
    assert_eq!(
        instant(&db, "1.5", 7).unwrap(),
        QueryValue::Scalar(Sample::new(7, 1.5))
    );
    assert_eq!(
        instant(&db, "\"hi\"", 7).unwrap(),
        QueryValue::String {
            time_ms: 7,
            value: "hi".into()
        }
    );
    // A scalar range query is one series without labels, every step.
    assert_eq!(
        range(&db, "-2", 0, 20, 10).unwrap(),
        QueryValue::Matrix(vec![QuerySeries {
            labels: vec![],
            samples: vec![
                Sample::new(0, -2.0),
                Sample::new(10, -2.0),
                Sample::new(20, -2.0)
            ],
        }])
    );
    // Vectors: sorted by labels, one sample per present step.
    match range(&db, "m", 0, 60 * S, 60 * S).unwrap() {
        QueryValue::Matrix(m) => {
            assert_eq!(m.len(), 2);
            assert_eq!(m[0].labels, labels(&[("__name__", "m"), ("k", "1")]));
            assert_eq!(m[0].samples, vec![Sample::new(60 * S, 1.0)]);
            assert_eq!(
                m[1].samples,
                vec![Sample::new(0, 2.0), Sample::new(60 * S, 2.0)]
            );
        }
        other => panic!("{other:?}"),
    }
    // Unary minus drops the name.
    match instant(&db, "-m{k=\"2\"}", 0).unwrap() {
        QueryValue::Vector(v) => {
            assert_eq!(v[0].labels, labels(&[("k", "2")]));
            assert_eq!(v[0].samples[0].value, -2.0);
        }
        other => panic!("{other:?}"),
    }
    // A range vector or a string is no range query result.
    assert!(matches!(
        range(&db, "m[1m]", 0, 10, 10),
        Err(QueryError::BadRange(_))
    ));
    assert!(matches!(
        range(&db, "\"s\"", 0, 10, 10),
        Err(QueryError::BadRange(_))
    ));
}

#[test]
fn bad_ranges_and_limits_are_typed_errors() {
    let (_d, db) = db_with(&[
        ("m{k=\"1\"}", (0..100).map(|i| (i * S, 1.0)).collect()),
        ("m{k=\"2\"}", (0..100).map(|i| (i * S, 2.0)).collect()),
    ]);
    let expr = parse_expr("m").unwrap();
    let opts = QueryOptions::default();
    assert!(matches!(
        range_query(&db, &expr, 0, 10, 0, &opts),
        Err(QueryError::BadRange(_))
    ));
    assert!(matches!(
        range_query(&db, &expr, 10, 0, 1, &opts),
        Err(QueryError::BadRange(_))
    ));
    // 11,000 intervals are allowed (11,001 points), 11,001 are not.
    assert!(range_query(&db, &expr, 0, 11_000, 1, &opts).is_ok());
    assert!(matches!(
        range_query(&db, &expr, 0, 11_001, 1, &opts),
        Err(QueryError::TooManySteps {
            count: 11_002,
            limit: 11_000
        })
    ));
    let few_series = QueryOptions {
        max_series: 1,
        ..QueryOptions::default()
    };
    assert!(matches!(
        instant_query(&db, &expr, 50 * S, &few_series),
        Err(QueryError::TooManySeries { limit: 1 })
    ));
    // 100 samples per series loaded for sum_over_time over everything.
    let few_samples = QueryOptions {
        max_samples: 50,
        ..QueryOptions::default()
    };
    let sum = parse_expr("sum_over_time(m[200s])").unwrap();
    assert!(matches!(
        instant_query(&db, &sum, 100 * S, &few_samples),
        Err(QueryError::TooManySamples { limit: 50 })
    ));
    // Result slots count too: 2 series × 101 steps > 150.
    let few_slots = QueryOptions {
        max_samples: 150,
        ..QueryOptions::default()
    };
    assert!(matches!(
        range_query(&db, &expr, 0, 100 * S, S, &few_slots),
        Err(QueryError::TooManySamples { limit: 150 })
    ));
    assert!(instant_query(&db, &sum, 100 * S, &few_slots).is_ok());
}

#[test]
fn cancellation_and_deadline_stop_the_query() {
    let (_d, db) = gauge();
    let expr = parse_expr("rate(g[1m])").unwrap();
    let cancelled = QueryOptions {
        cancel: Some(Arc::new(AtomicBool::new(true))),
        ..QueryOptions::default()
    };
    assert!(matches!(
        instant_query(&db, &expr, 0, &cancelled),
        Err(QueryError::Cancelled)
    ));
    let late = QueryOptions {
        deadline: Some(Instant::now() - Duration::from_millis(1)),
        ..QueryOptions::default()
    };
    assert!(matches!(
        range_query(&db, &expr, 0, 600 * S, S, &late),
        Err(QueryError::DeadlineExceeded { .. })
    ));
    // A deadline stops even one series whose windows are huge: the outer
    // subquery has 3.6 M steps of 1 ms, each taking the max over up to
    // 900 K inner points; without the check inside the window loop this
    // runs for hours.
    let heavy = parse_expr("max_over_time(max_over_time(g[1h:1ms])[1h:1ms])").unwrap();
    let soon = QueryOptions {
        deadline: Some(Instant::now() + Duration::from_millis(200)),
        ..QueryOptions::default()
    };
    assert!(matches!(
        instant_query(&db, &heavy, 600 * S, &soon),
        Err(QueryError::DeadlineExceeded { .. })
    ));
    let not_yet = QueryOptions {
        cancel: Some(Arc::new(AtomicBool::new(false))),
        deadline: Some(Instant::now() + Duration::from_secs(3600)),
        ..QueryOptions::default()
    };
    assert!(instant_query(&db, &expr, 60 * S, &not_yet).is_ok());
}

#[test]
fn threads_give_the_same_answer_in_the_same_order() {
    let series: Vec<(String, Vec<(i64, f64)>)> = (0..57)
        .map(|i| {
            let samples = (0..40).map(|j| (j * 15 * S, (i * j % 13) as f64)).collect();
            (format!("w{{i=\"{i:02}\"}}"), samples)
        })
        .collect();
    let refs: Vec<(&str, Vec<(i64, f64)>)> = series
        .iter()
        .map(|(k, s)| (k.as_str(), s.clone()))
        .collect();
    let (_d, db) = db_with(&refs);
    for q in ["w", "rate(w[1m])", "changes(w[2m:30s])"] {
        let expr = parse_expr(q).unwrap();
        let run = |threads| {
            let opts = QueryOptions {
                threads,
                ..QueryOptions::default()
            };
            range_query(&db, &expr, 0, 600 * S, 20 * S, &opts).unwrap()
        };
        let one_thread = run(1);
        match &one_thread {
            QueryValue::Matrix(m) => assert_eq!(m.len(), 57, "{q}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(one_thread, run(4), "{q}");
    }
}

#[test]
fn extreme_times_are_errors_or_answers_never_overflows() {
    let (_d, db) = gauge();
    let huge = "292000000y";
    let queries = [
        format!("rate(g[{huge}])"),
        format!("rate(g[{huge}] offset -{huge})"),
        format!("deriv(g[{huge}] offset {huge})"),
        format!("g offset {huge}"),
        format!("g offset -{huge}"),
        format!("sum_over_time(g[{huge}:{huge}])"),
        format!("max_over_time(g[1m:{huge}] offset -{huge})"),
        format!("count_over_time(g[{huge}:1ms])"),
        format!("irate(g[{huge}] @ 2251799813685)"),
        format!("absent_over_time(g[{huge}] @ -2251799813685)"),
        format!("timestamp(g offset -{huge})"),
    ];
    for q in &queries {
        let expr = parse_expr(q).unwrap();
        for t in [i64::MIN, -1, 0, 300 * S, i64::MAX] {
            let _ = instant_query(&db, &expr, t, &QueryOptions::default());
        }
        for (start, end, step) in [
            (i64::MIN, i64::MAX, i64::MAX),
            (i64::MIN, i64::MIN + 10, 1),
            (i64::MAX - 10, i64::MAX, 3),
            (0, 600 * S, 100 * S),
        ] {
            let _ = range_query(&db, &expr, start, end, step, &QueryOptions::default());
        }
    }
    // A finite answer still comes out where the numbers allow: the whole
    // gauge (0..=600 at 10 s) over a huge range: 61 samples.
    assert_eq!(
        one(&db, &format!("count_over_time(g[{huge}])"), 600 * S),
        Some(61.0)
    );
    assert!(matches!(
        range(&db, "g", i64::MIN, i64::MAX, i64::MAX),
        Err(QueryError::BadRange(_))
    ));
}
