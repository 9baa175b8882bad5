//! Golden tests of the query engine: per function and operator of the
//! PromQL subset, small hand-built series and the values Prometheus 2.42's
//! documented semantics give, each expected number explained beside it.
//!
//! Conventions: sample times and query times are in seconds (the helpers
//! turn them into milliseconds); range windows `[t - range, t]` and the 5 m
//! lookback `[t - 5m, t]` are closed at both ends, as in Prometheus 2.42;
//! results are compared as sets of series (label text, see
//! tests/query_support) with values equal within 1e-12 relative, NaN equal
//! to NaN.
//!
//! The rate/increase/delta arithmetic referred to below (Prometheus
//! `extrapolatedRate`): over the samples in the window, `result = last -
//! first` (plus, for counters, the value before every drop); `sampled =
//! last.t - first.t`, `avg = sampled / (n - 1)`, `toStart = first.t -
//! windowStart`, `toEnd = windowEnd - last.t`; for a counter whose result
//! is > 0 and whose first value is >= 0, `toStart = min(toStart, sampled *
//! first / result)` (durationToZero); each of `toStart`/`toEnd` is added
//! to `sampled` if it is below `1.1 * avg`, otherwise `avg / 2` is added;
//! the result is scaled by `extended / sampled`, and `rate` divides by the
//! range in seconds. Fewer than two samples give no result.

mod query_support;

use query_support::{plain, same_f64, Plain, TestDb, STALE};
use strata::{
    instant_query, parse_expr, range_query, QueryError, QueryOptions, QueryValue, Sample,
    SegmentWriter, SeriesKey,
};

const REL: f64 = 1e-12;
const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;

/// `query` at `t` seconds must be the instant vector `expected` (label
/// text, value), every sample stamped with the evaluation time.
#[track_caller]
fn check(db: &TestDb, query: &str, t: i64, expected: &[(&str, f64)]) {
    let got = match db.instant_ms(query, t * 1000) {
        Ok(value) => plain(value),
        Err(e) => panic!("{query} @ {t}s failed: {e}"),
    };
    let Plain::Vector(got) = got else {
        panic!("{query} @ {t}s: expected an instant vector, got {got:?}");
    };
    let mut want: Vec<(&str, f64)> = expected.to_vec();
    want.sort_by(|a, b| a.0.cmp(b.0));
    let same = got.len() == want.len()
        && got
            .iter()
            .zip(&want)
            .all(|((gl, gt, gv), (wl, wv))| gl == wl && *gt == t * 1000 && same_f64(*gv, *wv, REL));
    assert!(
        same,
        "{query} @ {t}s\n  got:      {got:?}\n  expected: {want:?}"
    );
}

/// `query` at `t` seconds must be the scalar `expected`.
#[track_caller]
fn check_scalar(db: &TestDb, query: &str, t: i64, expected: f64) {
    match db.instant_ms(query, t * 1000).map(plain) {
        Ok(Plain::Scalar(ts, v)) => assert!(
            ts == t * 1000 && same_f64(v, expected, REL),
            "{query} @ {t}s: got {v} at {ts} ms, expected {expected}"
        ),
        other => panic!("{query} @ {t}s: expected a scalar, got {other:?}"),
    }
}

/// `query` as a range query from `start` to `end` every `step` seconds
/// must be `expected`: per series its label text and (seconds, value)
/// points.
#[track_caller]
fn check_range(
    db: &TestDb,
    query: &str,
    (start, end, step): (i64, i64, i64),
    expected: &[(&str, &[(i64, f64)])],
) {
    let got = match db.range_ms(query, start * 1000, end * 1000, step * 1000) {
        Ok(value) => plain(value),
        Err(e) => panic!("{query} over {start}..{end}s/{step}s failed: {e}"),
    };
    let Plain::Matrix(got) = got else {
        panic!("{query}: a range query returns a matrix, got {got:?}");
    };
    check_matrix(query, got, expected);
}

#[track_caller]
fn check_matrix(
    query: &str,
    got: Vec<(String, Vec<(i64, f64)>)>,
    expected: &[(&str, &[(i64, f64)])],
) {
    let mut want: Vec<(&str, Vec<(i64, f64)>)> = expected
        .iter()
        .map(|(l, pts)| (*l, pts.iter().map(|&(t, v)| (t * 1000, v)).collect()))
        .collect();
    want.sort_by(|a, b| a.0.cmp(b.0));
    let same = got.len() == want.len()
        && got.iter().zip(&want).all(|((gl, gp), (wl, wp))| {
            gl == wl
                && gp.len() == wp.len()
                && gp
                    .iter()
                    .zip(wp)
                    .all(|(g, w)| g.0 == w.0 && same_f64(g.1, w.1, REL))
        });
    assert!(same, "{query}\n  got:      {got:?}\n  expected: {want:?}");
}

/// `query` at `t` seconds must fail.
#[track_caller]
fn check_error(db: &TestDb, query: &str, t: i64) -> QueryError {
    match db.instant_ms(query, t * 1000) {
        Err(e) => e,
        Ok(v) => panic!("{query} @ {t}s should fail, got {:?}", plain(v)),
    }
}

// ---------------------------------------------------------------------
// Selectors: lookback, offset, @, staleness, NaN
// ---------------------------------------------------------------------

fn up_db() -> TestDb {
    TestDb::new(&[("up{job=\"a\"}", &[(0, 1.0), (60, 2.0), (120, 3.0)])])
}

#[test]
fn instant_selector_takes_the_latest_sample_of_a_closed_five_minute_lookback() {
    let db = up_db();
    // The newest sample at or before 30 s is the one at 0 s.
    check(&db, "up", 30, &[("up{job=\"a\"}", 1.0)]);
    // A sample exactly at the evaluation time counts.
    check(&db, "up", 120, &[("up{job=\"a\"}", 3.0)]);
    // 420 - 300 = 120: the lookback [120, 420] is closed, so the sample at
    // 120 s is still found (2.42).
    check(&db, "up", 420, &[("up{job=\"a\"}", 3.0)]);
    // One second later the window [121, 421] is empty.
    check(&db, "up", 421, &[]);
    // Matchers: =, !=, =~, !~ (anchored).
    check(&db, "up{job=\"a\"}", 60, &[("up{job=\"a\"}", 2.0)]);
    check(&db, "up{job!=\"a\"}", 60, &[]);
    check(&db, "up{job=~\"a|b\"}", 60, &[("up{job=\"a\"}", 2.0)]);
    check(&db, "up{job=~\"b|c\"}", 60, &[]);
    // Anchored: "" does not match "a" as a substring would.
    check(&db, "up{job!~\"\"}", 60, &[("up{job=\"a\"}", 2.0)]);
    check(&db, "{__name__=\"up\"}", 60, &[("up{job=\"a\"}", 2.0)]);
    // Steps 0, 120, 240, 360, 480: the last sample (120 s) stays visible
    // up to 420 s, so 480 has no point.
    check_range(
        &db,
        "up",
        (0, 480, 120),
        &[(
            "up{job=\"a\"}",
            &[(0, 1.0), (120, 3.0), (240, 3.0), (360, 3.0)],
        )],
    );
}

#[test]
fn offset_and_at_move_the_evaluation_time() {
    let db = up_db();
    // offset 1m at 150 s looks at 90 s: the sample at 60 s. The metric
    // name stays.
    check(&db, "up offset 1m", 150, &[("up{job=\"a\"}", 2.0)]);
    // A negative offset looks ahead: 30 s + 60 s = 90 s.
    check(&db, "up offset -1m", 30, &[("up{job=\"a\"}", 2.0)]);
    // @ pins the time whatever the evaluation time is.
    check(&db, "up @ 60", 1000, &[("up{job=\"a\"}", 2.0)]);
    // @ first, then offset: 60 s - 60 s = 0 s.
    check(&db, "up @ 60 offset 1m", 1000, &[("up{job=\"a\"}", 1.0)]);
    // In a range query every step sees the same value.
    check_range(
        &db,
        "up @ 120",
        (0, 600, 300),
        &[("up{job=\"a\"}", &[(0, 3.0), (300, 3.0), (600, 3.0)])],
    );
    // start() is the first step (60 s: value 2), end() the last (180 s:
    // the sample at 120 s, value 3).
    check_range(
        &db,
        "up @ start()",
        (60, 180, 60),
        &[("up{job=\"a\"}", &[(60, 2.0), (120, 2.0), (180, 2.0)])],
    );
    check_range(
        &db,
        "up @ end()",
        (0, 180, 60),
        &[(
            "up{job=\"a\"}",
            &[(0, 3.0), (60, 3.0), (120, 3.0), (180, 3.0)],
        )],
    );
    // A range selector with @: the window [60, 120] holds two samples.
    check(
        &db,
        "count_over_time(up[1m] @ 120)",
        1000,
        &[("{job=\"a\"}", 2.0)],
    );
}

#[test]
fn staleness_marker_ends_a_series_until_the_next_sample() {
    let db = TestDb::new(&[("s", &[(0, 1.0), (60, 2.0), (90, STALE), (150, 5.0)])]);
    check(&db, "s", 89, &[("s{}", 2.0)]);
    // The newest sample at or before 90 s is the marker: no value.
    check(&db, "s", 90, &[]);
    // Still the marker at 120 s (the sample at 60 s is not looked at).
    check(&db, "s", 120, &[]);
    check(&db, "s", 150, &[("s{}", 5.0)]);
    check_range(
        &db,
        "s",
        (0, 180, 30),
        &[(
            "s{}",
            &[(0, 1.0), (30, 1.0), (60, 2.0), (150, 5.0), (180, 5.0)],
        )],
    );
    // Range windows drop markers: [0, 120] holds 0 s, 60 s (and the marker).
    check(&db, "count_over_time(s[2m])", 120, &[("{}", 2.0)]);
    // [60, 120]: only the sample at 60 s. last_over_time keeps the name
    // (in 2.42 it is the one range function that does: it acts like an
    // offset).
    check(&db, "last_over_time(s[1m])", 120, &[("s{}", 2.0)]);
    // absent() sees no sample at 120 s.
    check(&db, "absent(s)", 120, &[("{}", 1.0)]);
    check(&db, "absent(s)", 150, &[]);
}

#[test]
fn nan_is_an_ordinary_value() {
    let db = TestDb::new(&[("n", &[(0, 1.0), (60, NAN), (120, 3.0)])]);
    check(&db, "n", 60, &[("n{}", NAN)]);
    // Every comparison with NaN is false except != ...
    check(&db, "n > 0", 60, &[]);
    check(&db, "n == n", 60, &[]);
    check(&db, "n == bool n", 60, &[("{}", 0.0)]);
    // ... which keeps the (NaN) left-hand value.
    check(&db, "n != 1", 60, &[("n{}", NAN)]);
    check(&db, "n + 1", 60, &[("{}", NAN)]);
    // min/max replace a NaN by any number and never a number by NaN:
    // [0, 120] = 1, NaN, 3.
    check(&db, "max_over_time(n[2m])", 120, &[("{}", 3.0)]);
    check(&db, "min_over_time(n[2m])", 120, &[("{}", 1.0)]);
    // [30, 60] holds only the NaN.
    check(&db, "max_over_time(n[30s])", 60, &[("{}", NAN)]);
    // Sums and averages propagate NaN; counting does not look at values.
    check(&db, "sum_over_time(n[2m])", 120, &[("{}", NAN)]);
    check(&db, "avg_over_time(n[2m])", 120, &[("{}", NAN)]);
    check(&db, "count_over_time(n[2m])", 120, &[("{}", 3.0)]);
    // 1 -> NaN and NaN -> 3 are both changes (NaN -> NaN would not be).
    check(&db, "changes(n[2m])", 120, &[("{}", 2.0)]);
    check(&db, "max(n)", 60, &[("{}", NAN)]);
}

// ---------------------------------------------------------------------
// rate, increase, delta, irate, idelta, resets, changes, deriv
// ---------------------------------------------------------------------

#[test]
fn rate_increase_delta_extrapolate_to_the_window_edges() {
    let db = TestDb::new(&[
        ("c1", &[(5, 10.0), (20, 20.0), (35, 30.0), (50, 40.0)]),
        ("c2", &[(20, 2.0), (35, 12.0), (50, 22.0)]),
        ("c3", &[(30, 100.0), (40, 110.0), (50, 120.0)]),
    ]);
    // c1 at 60 s over [0, 60]: result 30, sampled 45, avg 15 (threshold
    // 16.5), toStart 5, toEnd 10, durationToZero 45 * 10/30 = 15 (not
    // below 5). Both edges are close: extended 45 + 5 + 10 = 60, so
    // increase = 30 * 60 / 45 = 40, rate = 40 / 60.
    check(&db, "increase(c1[1m])", 60, &[("{}", 40.0)]);
    check(&db, "rate(c1[1m])", 60, &[("{}", 40.0 / 60.0)]);
    // delta: the same arithmetic without counter rules.
    check(&db, "delta(c1[1m])", 60, &[("{}", 40.0)]);
    // c2 over [0, 60]: result 20, sampled 30, avg 15 (threshold 16.5),
    // toStart 20, toEnd 10. As a counter, durationToZero = 30 * 2/20 = 3
    // replaces toStart, which is then below the threshold: extended 30 + 3
    // + 10 = 43; increase = 20 * 43 / 30.
    check(&db, "increase(c2[1m])", 60, &[("{}", 20.0 * 43.0 / 30.0)]);
    check(
        &db,
        "rate(c2[1m])",
        60,
        &[("{}", 20.0 * 43.0 / 30.0 / 60.0)],
    );
    // delta has no zero clamp: toStart 20 >= 16.5 adds avg / 2 = 7.5:
    // extended 30 + 7.5 + 10 = 47.5; delta = 20 * 47.5 / 30.
    check(&db, "delta(c2[1m])", 60, &[("{}", 20.0 * 47.5 / 30.0)]);
    // c3 at 90 s over [30, 60+30]: result 20, sampled 20, avg 10
    // (threshold 11), toStart 0, toEnd 40 >= 11 adds avg / 2 = 5:
    // extended 25; increase = 20 * 25 / 20 = 25, rate 25 / 60.
    check(&db, "increase(c3[1m])", 90, &[("{}", 25.0)]);
    check(&db, "rate(c3[1m])", 90, &[("{}", 25.0 / 60.0)]);
    // [20, 90]: toStart 10 < 11 is added: extended 20 + 10 + 5 = 35.
    check(&db, "increase(c3[70s])", 90, &[("{}", 35.0)]);
    // [37, 42] holds one sample: no result. [140, 200] holds none.
    check(&db, "rate(c3[5s])", 42, &[]);
    check(&db, "increase(c3[1m])", 200, &[]);
    // Without the name, c1 and c2 would both be {}: an error.
    let e = check_error(&db, "increase({__name__=~\"c1|c2\"}[1m])", 60);
    assert!(matches!(e, QueryError::DuplicateLabelSet { .. }), "{e}");
}

fn reset_db() -> TestDb {
    TestDb::new(&[(
        "c4{job=\"x\"}",
        &[(0, 5.0), (10, 10.0), (20, 2.0), (30, 6.0), (40, 8.0)],
    )])
}

#[test]
fn counter_resets_add_the_value_before_the_drop() {
    let db = reset_db();
    // [0, 40] (closed: the sample at 0 s is in): 8 - 5 = 3, plus 10 for
    // the drop 10 -> 2: 13. sampled 40, toStart = toEnd = 0: factor 1.
    check(&db, "increase(c4[40s])", 40, &[("{job=\"x\"}", 13.0)]);
    check(&db, "rate(c4[40s])", 40, &[("{job=\"x\"}", 13.0 / 40.0)]);
    // delta ignores resets: 8 - 5.
    check(&db, "delta(c4[40s])", 40, &[("{job=\"x\"}", 3.0)]);
    check(&db, "resets(c4[40s])", 40, &[("{job=\"x\"}", 1.0)]);
    // 5 -> 10 -> 2 -> 6 -> 8: four changes.
    check(&db, "changes(c4[40s])", 40, &[("{job=\"x\"}", 4.0)]);
    // irate/idelta use the last two samples: (8 - 6) / 10 s.
    check(&db, "irate(c4[40s])", 40, &[("{job=\"x\"}", 0.2)]);
    check(&db, "idelta(c4[40s])", 40, &[("{job=\"x\"}", 2.0)]);
    // At 20 s the last two are 10 -> 2: irate takes a drop as a reset (the
    // counter restarted from 0, so it grew by 2 in 10 s); idelta does not.
    check(&db, "irate(c4[40s])", 20, &[("{job=\"x\"}", 0.2)]);
    check(&db, "idelta(c4[40s])", 20, &[("{job=\"x\"}", -8.0)]);
    // With offset 20s at 40 s the window is [0, 20]: 2 - 5 + 10 = 7,
    // sampled 20, factor 1.
    check(
        &db,
        "increase(c4[20s] offset 20s)",
        40,
        &[("{job=\"x\"}", 7.0)],
    );
    // @ pins the window to [0, 40].
    check(
        &db,
        "rate(c4[40s] @ 40)",
        1000,
        &[("{job=\"x\"}", 13.0 / 40.0)],
    );
    // Range query, [t - 20, t] per step:
    //   0 s: one sample, no point;
    //  10 s: 5 -> 10, result 5, sampled 10 (threshold 11), toStart 10 (zero
    //        point 10 * 5/5 = 10 is not below it) is added, toEnd 0:
    //        extended 20, increase 10, rate 10 / 20;
    //  20 s: 5, 10, 2: 2 - 5 + 10 = 7 over exactly 20 s: 7 / 20;
    //  30 s: 10, 2, 6: 6 - 10 + 10 = 6: 6 / 20;
    //  40 s: 2, 6, 8: 6 (zero point 20 * 2/6 is not below 0): 6 / 20.
    check_range(
        &db,
        "rate(c4[20s])",
        (0, 40, 10),
        &[(
            "{job=\"x\"}",
            &[(10, 0.5), (20, 0.35), (30, 0.3), (40, 0.3)],
        )],
    );
}

#[test]
fn deriv_is_the_least_squares_slope() {
    let db = TestDb::new(&[
        ("d1", &[(0, 1.0), (10, 3.0), (20, 5.0), (30, 7.0)]),
        ("d2", &[(0, 0.0), (10, 1.0), (20, 1.0), (30, 3.0)]),
    ]);
    // On a line: 2 per 10 s.
    check(&db, "deriv(d1[30s])", 30, &[("{}", 0.2)]);
    // x = 0, 10, 20, 30 s, y = 0, 1, 1, 3: cov(x, y) = 120 - 60*5/4 = 45,
    // var(x) = 1400 - 60*60/4 = 500, slope 45 / 500.
    check(&db, "deriv(d2[30s])", 30, &[("{}", 0.09)]);
    // One sample in [25, 30]: no result.
    check(&db, "deriv(d1[5s])", 30, &[]);
}

// ---------------------------------------------------------------------
// *_over_time, absent, absent_over_time
// ---------------------------------------------------------------------

fn gauge_db() -> TestDb {
    TestDb::new(&[(
        "g{job=\"x\"}",
        &[(0, 1.0), (10, 4.0), (20, 2.0), (30, 8.0), (40, 5.0)],
    )])
}

#[test]
fn over_time_functions_aggregate_the_closed_window() {
    let db = gauge_db();
    let l = "{job=\"x\"}";
    // [0, 40] holds all five samples 1, 4, 2, 8, 5 (both ends included).
    check(&db, "count_over_time(g[40s])", 40, &[(l, 5.0)]);
    // [1, 40] does not hold the sample at 0 s.
    check(&db, "count_over_time(g[39s])", 40, &[(l, 4.0)]);
    check(&db, "sum_over_time(g[40s])", 40, &[(l, 20.0)]);
    check(&db, "avg_over_time(g[40s])", 40, &[(l, 4.0)]);
    check(&db, "min_over_time(g[40s])", 40, &[(l, 1.0)]);
    check(&db, "max_over_time(g[40s])", 40, &[(l, 8.0)]);
    // last_over_time keeps the metric name.
    check(&db, "last_over_time(g[40s])", 40, &[("g{job=\"x\"}", 5.0)]);
    // [20, 35]: 2 and 8.
    check(&db, "last_over_time(g[15s])", 35, &[("g{job=\"x\"}", 8.0)]);
    // Population standard deviation: mean 4, squared deviations 9, 0, 4,
    // 16, 1 sum to 30; sqrt(30 / 5).
    check(&db, "stddev_over_time(g[40s])", 40, &[(l, 6f64.sqrt())]);
    // quantile_over_time: sorted 1, 2, 4, 5, 8; rank q * (n - 1) with
    // linear interpolation between neighbours.
    check(&db, "quantile_over_time(0.5, g[40s])", 40, &[(l, 4.0)]);
    // rank 1.2: 2 * 0.8 + 4 * 0.2.
    check(&db, "quantile_over_time(0.3, g[40s])", 40, &[(l, 2.4)]);
    check(&db, "quantile_over_time(0, g[40s])", 40, &[(l, 1.0)]);
    check(&db, "quantile_over_time(1, g[40s])", 40, &[(l, 8.0)]);
    check(&db, "quantile_over_time(2, g[40s])", 40, &[(l, INF)]);
    check(&db, "quantile_over_time(-1, g[40s])", 40, &[(l, -INF)]);
    // Range query: each step its own window [t - 20, t].
    //   0: 1; 20: 1, 4, 2 -> 4; 40: 2, 8, 5 -> 8; 60: 5 (sample at 40).
    check_range(
        &db,
        "max_over_time(g[20s])",
        (0, 60, 20),
        &[(l, &[(0, 1.0), (20, 4.0), (40, 8.0), (60, 5.0)])],
    );
}

#[test]
fn absent_returns_one_with_the_equality_matchers_labels() {
    let db = gauge_db();
    check(&db, "absent(g)", 40, &[]);
    // Labels of = matchers (not the name, not =~).
    check(
        &db,
        "absent(nope{job=\"x\", a=~\"y\"})",
        40,
        &[("{job=\"x\"}", 1.0)],
    );
    // Not a selector: no labels.
    check(&db, "absent(sum(nope))", 40, &[("{}", 1.0)]);
    // g's last sample (40 s) is seen up to 340 s; at 400 s it is absent.
    check_range(&db, "absent(g)", (0, 400, 100), &[("{}", &[(400, 1.0)])]);
    // absent_over_time: [95, 100] holds no sample.
    check(&db, "absent_over_time(g[5s])", 100, &[("{}", 1.0)]);
    check(&db, "absent_over_time(g[1m])", 40, &[]);
    check(
        &db,
        "absent_over_time(nope{job=\"x\"}[1m])",
        40,
        &[("{job=\"x\"}", 1.0)],
    );
}

/// Regression (found by this suite, fixed in the engine): Prometheus
/// 2.42's `absent` labels (`createLabelsForAbsentFunction`) leave out every
/// label that has any matcher besides its first `=` one: a second `=`, or
/// a `!=`, `=~` or `!~` on the same name. The engine used to keep the
/// first `=` value and answer `{foo="bar", job="x"}` for the first case.
#[test]
fn regression_absent_leaves_out_a_label_with_several_matchers() {
    let db = gauge_db();
    // Prometheus' own cases (promql/testdata/functions.test).
    check(
        &db,
        "absent(nope{job=\"x\", job=\"y\", foo=\"bar\"})",
        40,
        &[("{foo=\"bar\"}", 1.0)],
    );
    check(
        &db,
        "absent(nope{job=\"x\", job=~\"y\", foo=\"bar\"})",
        40,
        &[("{foo=\"bar\"}", 1.0)],
    );
    check(
        &db,
        "absent_over_time(nope{job=\"x\", job!=\"y\"}[1m])",
        40,
        &[("{}", 1.0)],
    );
}

// ---------------------------------------------------------------------
// histogram_quantile
// ---------------------------------------------------------------------

#[test]
fn histogram_quantile_interpolates_inside_the_bucket() {
    let b = |le: &'static str| -> String { format!("h_bucket{{le=\"{le}\"}}") };
    let (b1, b2, b3, b4) = (b("0.1"), b("0.5"), b("1"), b("+Inf"));
    let db = TestDb::new(&[
        (&b1, &[(0, 10.0)]),
        (&b2, &[(0, 30.0)]),
        (&b3, &[(0, 40.0)]),
        (&b4, &[(0, 50.0)]),
    ]);
    // 50 observations. q = 0.5: rank 25 falls in (0.1, 0.5] which holds
    // observations 10..30: 0.1 + 0.4 * (25 - 10) / 20. The result drops
    // the name and `le`.
    check(&db, "histogram_quantile(0.5, h_bucket)", 10, &[("{}", 0.4)]);
    // rank 5 is in the lowest bucket, interpolated from 0: 0.1 * 5 / 10.
    check(
        &db,
        "histogram_quantile(0.1, h_bucket)",
        10,
        &[("{}", 0.05)],
    );
    // rank 40 is exactly the top of (0.5, 1]: 1.
    check(&db, "histogram_quantile(0.8, h_bucket)", 10, &[("{}", 1.0)]);
    // rank 45 falls in the +Inf bucket: the highest finite bound.
    check(&db, "histogram_quantile(0.9, h_bucket)", 10, &[("{}", 1.0)]);
    // rank 0: the lowest bucket's lower end, 0.
    check(&db, "histogram_quantile(0, h_bucket)", 10, &[("{}", 0.0)]);
    check(&db, "histogram_quantile(1.5, h_bucket)", 10, &[("{}", INF)]);
    check(
        &db,
        "histogram_quantile(-0.5, h_bucket)",
        10,
        &[("{}", -INF)],
    );
}

#[test]
fn histogram_quantile_edge_cases() {
    let db = TestDb::new(&[
        // Only the +Inf bucket: fewer than two buckets -> NaN.
        ("hinf_bucket{le=\"+Inf\"}", &[(0, 10.0)]),
        // No observation at all -> NaN.
        ("hzero_bucket{le=\"1\"}", &[(0, 0.0)]),
        ("hzero_bucket{le=\"+Inf\"}", &[(0, 0.0)]),
        // No +Inf bucket -> NaN.
        ("hnoinf_bucket{le=\"1\"}", &[(0, 5.0)]),
        ("hnoinf_bucket{le=\"2\"}", &[(0, 10.0)]),
        // An empty bucket (1, 2] in the middle.
        ("hgap_bucket{le=\"1\"}", &[(0, 2.0)]),
        ("hgap_bucket{le=\"2\"}", &[(0, 2.0)]),
        ("hgap_bucket{le=\"4\"}", &[(0, 5.0)]),
        ("hgap_bucket{le=\"+Inf\"}", &[(0, 5.0)]),
        // A lowest bucket with a negative bound.
        ("hneg_bucket{le=\"-1\"}", &[(0, 5.0)]),
        ("hneg_bucket{le=\"1\"}", &[(0, 10.0)]),
        ("hneg_bucket{le=\"+Inf\"}", &[(0, 10.0)]),
        // Counts that decrease (a scrape race) are raised to the running
        // maximum: 10, 8 -> 10, 40, 50.
        ("hmono_bucket{le=\"0.1\"}", &[(0, 10.0)]),
        ("hmono_bucket{le=\"0.5\"}", &[(0, 8.0)]),
        ("hmono_bucket{le=\"1\"}", &[(0, 40.0)]),
        ("hmono_bucket{le=\"+Inf\"}", &[(0, 50.0)]),
        // Two histograms told apart by `svc`, and a bucket whose le does
        // not parse (skipped).
        ("hsvc_bucket{svc=\"a\", le=\"1\"}", &[(0, 1.0)]),
        ("hsvc_bucket{svc=\"a\", le=\"+Inf\"}", &[(0, 2.0)]),
        ("hsvc_bucket{svc=\"a\", le=\"x\"}", &[(0, 100.0)]),
        ("hsvc_bucket{svc=\"b\", le=\"1\"}", &[(0, 3.0)]),
        ("hsvc_bucket{svc=\"b\", le=\"+Inf\"}", &[(0, 3.0)]),
    ]);
    check(
        &db,
        "histogram_quantile(0.5, hinf_bucket)",
        10,
        &[("{}", NAN)],
    );
    check(
        &db,
        "histogram_quantile(0.5, hzero_bucket)",
        10,
        &[("{}", NAN)],
    );
    check(
        &db,
        "histogram_quantile(0.5, hnoinf_bucket)",
        10,
        &[("{}", NAN)],
    );
    // 5 observations, rank 2.5: the first bucket holding >= 2.5 is (2, 4]
    // (the empty (1, 2] holds none): 2 + 2 * (2.5 - 2) / (5 - 2).
    check(
        &db,
        "histogram_quantile(0.5, hgap_bucket)",
        10,
        &[("{}", 2.0 + 2.0 * 0.5 / 3.0)],
    );
    // rank 2 is reached by the lowest bucket already: 1 * 2 / 2.
    check(
        &db,
        "histogram_quantile(0.4, hgap_bucket)",
        10,
        &[("{}", 1.0)],
    );
    // rank 2.5 in a lowest bucket whose bound is <= 0: the bound itself.
    check(
        &db,
        "histogram_quantile(0.25, hneg_bucket)",
        10,
        &[("{}", -1.0)],
    );
    // rank 25 in (0.5, 1] holding 10..40: 0.5 + 0.5 * 15 / 30.
    check(
        &db,
        "histogram_quantile(0.5, hmono_bucket)",
        10,
        &[("{}", 0.75)],
    );
    // svc a: 2 observations, rank 1 = the top of [0, 1]: 1.
    // svc b: 3 observations, rank 1.5 in [0, 1] holding 3: 1.5 / 3.
    check(
        &db,
        "histogram_quantile(0.5, hsvc_bucket)",
        10,
        &[("{svc=\"a\"}", 1.0), ("{svc=\"b\"}", 0.5)],
    );
}

#[test]
fn histogram_quantile_of_bucket_rates() {
    let db = TestDb::new(&[
        ("hr_bucket{le=\"0.1\"}", &[(0, 0.0), (30, 30.0), (60, 60.0)]),
        (
            "hr_bucket{le=\"0.2\"}",
            &[(0, 0.0), (30, 60.0), (60, 120.0)],
        ),
        (
            "hr_bucket{le=\"+Inf\"}",
            &[(0, 0.0), (30, 90.0), (60, 180.0)],
        ),
    ]);
    // rate over [0, 60] covers the samples exactly (factor 1; the zero
    // point is at the first sample): 1, 2 and 3 per second. rank 1.5 is in
    // (0.1, 0.2] holding 1..2: 0.1 + 0.1 * 0.5.
    check(
        &db,
        "histogram_quantile(0.5, rate(hr_bucket[1m]))",
        60,
        &[("{}", 0.15)],
    );
    check(
        &db,
        "histogram_quantile(0.5, sum by (le) (rate(hr_bucket[1m])))",
        60,
        &[("{}", 0.15)],
    );
}

// ---------------------------------------------------------------------
// Functions of instant vectors
// ---------------------------------------------------------------------

fn fn_db() -> TestDb {
    TestDb::new(&[
        ("fn{a=\"1\"}", &[(0, -2.5)]),
        ("fn{a=\"2\"}", &[(0, 2.5)]),
        ("fn{a=\"3\"}", &[(0, 1.25)]),
        ("ts", &[(30, 1.0), (95, 2.0)]),
    ])
}

const A1: &str = "{a=\"1\"}";
const A2: &str = "{a=\"2\"}";
const A3: &str = "{a=\"3\"}";

#[test]
fn math_functions_drop_the_metric_name() {
    let db = fn_db();
    check(&db, "abs(fn)", 10, &[(A1, 2.5), (A2, 2.5), (A3, 1.25)]);
    check(&db, "ceil(fn)", 10, &[(A1, -2.0), (A2, 3.0), (A3, 2.0)]);
    check(&db, "floor(fn)", 10, &[(A1, -3.0), (A2, 2.0), (A3, 1.0)]);
    // round: floor(v + 0.5), so halves go up: -2.5 -> -2, 2.5 -> 3.
    check(&db, "round(fn)", 10, &[(A1, -2.0), (A2, 3.0), (A3, 1.0)]);
    // To the nearest 0.5: floor(v * 2 + 0.5) / 2; 1.25 -> 1.5.
    check(
        &db,
        "round(fn, 0.5)",
        10,
        &[(A1, -2.5), (A2, 2.5), (A3, 1.5)],
    );
    check(
        &db,
        "clamp(fn, -1, 2)",
        10,
        &[(A1, -1.0), (A2, 2.0), (A3, 1.25)],
    );
    // min > max: empty result.
    check(&db, "clamp(fn, 2, 1)", 10, &[]);
    check(
        &db,
        "clamp_min(fn, 0)",
        10,
        &[(A1, 0.0), (A2, 2.5), (A3, 1.25)],
    );
    check(
        &db,
        "clamp_max(fn, 0)",
        10,
        &[(A1, -2.5), (A2, 0.0), (A3, 0.0)],
    );
    check(&db, "-fn", 10, &[(A1, 2.5), (A2, -2.5), (A3, -1.25)]);
}

#[test]
fn time_timestamp_vector_scalar() {
    let db = fn_db();
    check_scalar(&db, "time()", 10, 10.0);
    check(&db, "vector(time())", 10, &[("{}", 10.0)]);
    check(&db, "vector(1) + 1", 10, &[("{}", 2.0)]);
    // scalar() of one series is its value, of several NaN.
    check_scalar(&db, "scalar(fn{a=\"1\"})", 10, -2.5);
    check_scalar(&db, "scalar(fn)", 10, NAN);
    check_scalar(&db, "scalar(nope)", 10, NAN);
    check(
        &db,
        "fn * scalar(fn{a=\"2\"})",
        10,
        &[(A1, -6.25), (A2, 6.25), (A3, 3.125)],
    );
    // timestamp() is the time of the sample found, not the evaluation time.
    check(&db, "timestamp(ts)", 100, &[("{}", 95.0)]);
    // offset 10s at 100 s finds the sample at 30 s.
    check(&db, "timestamp(ts offset 10s)", 100, &[("{}", 30.0)]);
    check(&db, "timestamp(ts @ 40)", 100, &[("{}", 30.0)]);
    // The range form: every step its own time.
    check_range(
        &db,
        "time()",
        (0, 20, 10),
        &[("{}", &[(0, 0.0), (10, 10.0), (20, 20.0)])],
    );
}

#[test]
fn label_replace_keeps_the_name_and_rewrites_one_label() {
    let db = fn_db();
    check(
        &db,
        "label_replace(fn, \"b\", \"x-$1\", \"a\", \"(.*)\")",
        10,
        &[
            ("fn{a=\"1\", b=\"x-1\"}", -2.5),
            ("fn{a=\"2\", b=\"x-2\"}", 2.5),
            ("fn{a=\"3\", b=\"x-3\"}", 1.25),
        ],
    );
    // The regex is anchored: "(2)" matches only a="2"; the others are
    // unchanged.
    check(
        &db,
        "label_replace(fn, \"b\", \"$1\", \"a\", \"(2)\")",
        10,
        &[
            ("fn{a=\"1\"}", -2.5),
            ("fn{a=\"2\", b=\"2\"}", 2.5),
            ("fn{a=\"3\"}", 1.25),
        ],
    );
    // An empty replacement removes the label.
    check(
        &db,
        "label_replace(fn, \"a\", \"\", \"a\", \"1\")",
        10,
        &[("fn{}", -2.5), ("fn{a=\"2\"}", 2.5), ("fn{a=\"3\"}", 1.25)],
    );
    // A missing source label is the empty string; "(.*)" matches it and
    // the (empty) result sets nothing.
    check(
        &db,
        "label_replace(fn{a=\"1\"}, \"b\", \"$1\", \"nolabel\", \"(.*)\")",
        10,
        &[("fn{a=\"1\"}", -2.5)],
    );
    // Three series become fn{a="same"}: an error.
    let e = check_error(&db, "label_replace(fn, \"a\", \"same\", \"a\", \".*\")", 10);
    assert!(matches!(e, QueryError::DuplicateLabelSet { .. }), "{e}");
}

// ---------------------------------------------------------------------
// Aggregations
// ---------------------------------------------------------------------

fn cpu_db() -> TestDb {
    TestDb::new(&[
        ("cpu{host=\"a\", mode=\"user\"}", &[(0, 1.0)]),
        ("cpu{host=\"a\", mode=\"sys\"}", &[(0, 2.0)]),
        ("cpu{host=\"b\", mode=\"user\"}", &[(0, 3.0)]),
        ("cpu{host=\"b\", mode=\"sys\"}", &[(0, 6.0)]),
    ])
}

const AU: &str = "{host=\"a\", mode=\"user\"}";
const AS: &str = "{host=\"a\", mode=\"sys\"}";
const BU: &str = "{host=\"b\", mode=\"user\"}";
const BS: &str = "{host=\"b\", mode=\"sys\"}";

#[test]
fn sum_avg_min_max_count_group_by_and_without() {
    let db = cpu_db();
    check(&db, "sum(cpu)", 10, &[("{}", 12.0)]);
    check(
        &db,
        "sum by (host) (cpu)",
        10,
        &[("{host=\"a\"}", 3.0), ("{host=\"b\"}", 9.0)],
    );
    // without drops the listed labels and the name.
    check(
        &db,
        "sum without (host) (cpu)",
        10,
        &[("{mode=\"sys\"}", 8.0), ("{mode=\"user\"}", 4.0)],
    );
    // A label no series has groups everything together.
    check(&db, "sum by (nolabel) (cpu)", 10, &[("{}", 12.0)]);
    check(&db, "avg(cpu)", 10, &[("{}", 3.0)]);
    check(
        &db,
        "avg without (host) (cpu)",
        10,
        &[("{mode=\"sys\"}", 4.0), ("{mode=\"user\"}", 2.0)],
    );
    check(&db, "min(cpu)", 10, &[("{}", 1.0)]);
    check(
        &db,
        "min by (mode) (cpu)",
        10,
        &[("{mode=\"sys\"}", 2.0), ("{mode=\"user\"}", 1.0)],
    );
    check(&db, "max(cpu)", 10, &[("{}", 6.0)]);
    check(&db, "count(cpu)", 10, &[("{}", 4.0)]);
    check(
        &db,
        "count by (host) (cpu)",
        10,
        &[("{host=\"a\"}", 2.0), ("{host=\"b\"}", 2.0)],
    );
    // Nothing to aggregate: no series.
    check(&db, "sum(nope)", 10, &[]);
    check_range(
        &db,
        "sum(cpu)",
        (0, 60, 30),
        &[("{}", &[(0, 12.0), (30, 12.0), (60, 12.0)])],
    );
}

#[test]
fn stddev_stdvar_quantile() {
    let db = cpu_db();
    // 1, 2, 3, 6: mean 3, squared deviations 4 + 1 + 0 + 9 = 14, / 4.
    check(&db, "stdvar(cpu)", 10, &[("{}", 3.5)]);
    check(&db, "stddev(cpu)", 10, &[("{}", 3.5f64.sqrt())]);
    // host a: 1, 2 -> variance 0.25; host b: 3, 6 -> 2.25.
    check(
        &db,
        "stddev by (host) (cpu)",
        10,
        &[("{host=\"a\"}", 0.5), ("{host=\"b\"}", 1.5)],
    );
    // rank q * (n - 1) over 1, 2, 3, 6: 0.5 -> 1.5: 2.5; 0.75 -> 2.25:
    // 3 * 0.75 + 6 * 0.25.
    check(&db, "quantile(0.5, cpu)", 10, &[("{}", 2.5)]);
    check(&db, "quantile(0.75, cpu)", 10, &[("{}", 3.75)]);
    check(
        &db,
        "quantile by (mode) (0.5, cpu)",
        10,
        &[("{mode=\"sys\"}", 4.0), ("{mode=\"user\"}", 2.0)],
    );
    check(&db, "quantile(2, cpu)", 10, &[("{}", INF)]);
}

#[test]
fn topk_bottomk_keep_the_series_labels() {
    let db = cpu_db();
    check(
        &db,
        "topk(2, cpu)",
        10,
        &[(&format!("cpu{BS}"), 6.0), (&format!("cpu{BU}"), 3.0)],
    );
    check(
        &db,
        "bottomk by (host) (1, cpu)",
        10,
        &[(&format!("cpu{AU}"), 1.0), (&format!("cpu{BU}"), 3.0)],
    );
    // k larger than the group: everything; k < 1: nothing.
    check(
        &db,
        "topk(10, cpu)",
        10,
        &[
            (&format!("cpu{AU}"), 1.0),
            (&format!("cpu{AS}"), 2.0),
            (&format!("cpu{BU}"), 3.0),
            (&format!("cpu{BS}"), 6.0),
        ],
    );
    check(&db, "topk(0, cpu)", 10, &[]);
    // The top series changes from step to step: at 0 s t1{a="2"} (3 > 1),
    // at 60 s t1{a="1"} (5 > 2).
    let db = TestDb::new(&[
        ("t1{a=\"1\"}", &[(0, 1.0), (60, 5.0)]),
        ("t1{a=\"2\"}", &[(0, 3.0), (60, 2.0)]),
    ]);
    check_range(
        &db,
        "topk(1, t1)",
        (0, 60, 60),
        &[("t1{a=\"1\"}", &[(60, 5.0)]), ("t1{a=\"2\"}", &[(0, 3.0)])],
    );
}

#[test]
fn count_values_counts_each_distinct_value() {
    let db = cpu_db();
    // cpu / 4 = 0.25, 0.5, 0.75, 1.5, printed as Go's shortest 'f' form.
    check(
        &db,
        "count_values(\"v\", cpu / 4)",
        10,
        &[
            ("{v=\"0.25\"}", 1.0),
            ("{v=\"0.5\"}", 1.0),
            ("{v=\"0.75\"}", 1.0),
            ("{v=\"1.5\"}", 1.0),
        ],
    );
    check(
        &db,
        "count_values(\"v\", cpu * 0 + 7)",
        10,
        &[("{v=\"7\"}", 4.0)],
    );
    check(
        &db,
        "count_values by (host) (\"v\", cpu > 1)",
        10,
        &[
            ("{host=\"a\", v=\"2\"}", 1.0),
            ("{host=\"b\", v=\"3\"}", 1.0),
            ("{host=\"b\", v=\"6\"}", 1.0),
        ],
    );
}

// ---------------------------------------------------------------------
// Binary operators
// ---------------------------------------------------------------------

#[test]
fn scalar_arithmetic_and_comparisons() {
    let db = TestDb::new(&[]);
    check_scalar(&db, "1 + 2 * 3", 10, 7.0);
    // ^ is right-associative and binds tighter than unary minus.
    check_scalar(&db, "2 ^ 3 ^ 2", 10, 512.0);
    check_scalar(&db, "-2 ^ 2", 10, -4.0);
    // % takes the sign of the dividend (Go's math.Mod).
    check_scalar(&db, "5 % 3", 10, 2.0);
    check_scalar(&db, "-5 % 3", 10, -2.0);
    check_scalar(&db, "1 / 0", 10, INF);
    check_scalar(&db, "-1 / 0", 10, -INF);
    check_scalar(&db, "0 / 0", 10, NAN);
    check_scalar(&db, "1 atan2 1", 10, std::f64::consts::FRAC_PI_4);
    check_scalar(&db, "2 > bool 1", 10, 1.0);
    check_scalar(&db, "2 < bool 1", 10, 0.0);
    check_scalar(&db, "NaN == bool NaN", 10, 0.0);
}

#[test]
fn vector_scalar_operators() {
    let db = cpu_db();
    // Arithmetic drops the name.
    check(
        &db,
        "cpu * 2",
        10,
        &[(AU, 2.0), (AS, 4.0), (BU, 6.0), (BS, 12.0)],
    );
    check(
        &db,
        "10 - cpu",
        10,
        &[(AU, 9.0), (AS, 8.0), (BU, 7.0), (BS, 4.0)],
    );
    check(
        &db,
        "cpu % 4",
        10,
        &[(AU, 1.0), (AS, 2.0), (BU, 3.0), (BS, 2.0)],
    );
    check(
        &db,
        "cpu ^ 2",
        10,
        &[(AU, 1.0), (AS, 4.0), (BU, 9.0), (BS, 36.0)],
    );
    check(
        &db,
        "cpu / 0",
        10,
        &[(AU, INF), (AS, INF), (BU, INF), (BS, INF)],
    );
    // A comparison filters and keeps the name and the vector's value, on
    // either side.
    let (cbu, cbs) = (format!("cpu{BU}"), format!("cpu{BS}"));
    check(&db, "cpu > 2", 10, &[(&cbu, 3.0), (&cbs, 6.0)]);
    check(&db, "2 < cpu", 10, &[(&cbu, 3.0), (&cbs, 6.0)]);
    check(&db, "cpu == 2", 10, &[(&format!("cpu{AS}"), 2.0)]);
    // bool: 0 or 1 for every series, without the name.
    check(
        &db,
        "cpu > bool 2",
        10,
        &[(AU, 0.0), (AS, 0.0), (BU, 1.0), (BS, 1.0)],
    );
}

fn match_db() -> TestDb {
    TestDb::new(&[
        ("req{code=\"200\", job=\"api\"}", &[(0, 100.0)]),
        ("req{code=\"500\", job=\"api\"}", &[(0, 5.0)]),
        ("req{code=\"200\", job=\"web\"}", &[(0, 50.0)]),
        ("lim{job=\"api\", team=\"t1\"}", &[(0, 10.0)]),
        ("lim{job=\"web\", team=\"t2\"}", &[(0, 20.0)]),
        ("err{job=\"api\"}", &[(0, 5.0)]),
        ("tot{job=\"api\"}", &[(0, 100.0)]),
        ("tot{job=\"web\"}", &[(0, 50.0)]),
    ])
}

#[test]
fn one_to_one_matching_ignores_the_metric_name() {
    let db = match_db();
    // err{job="api"} matches tot{job="api"}: all labels but the name.
    check(&db, "err / tot", 10, &[("{job=\"api\"}", 0.05)]);
    check(&db, "err + tot", 10, &[("{job=\"api\"}", 105.0)]);
    // The KPI threshold form.
    check(&db, "err / tot > 0.04", 10, &[("{job=\"api\"}", 0.05)]);
    check(&db, "err / tot > 0.06", 10, &[]);
    check(&db, "err / tot > bool 0.06", 10, &[("{job=\"api\"}", 0.0)]);
    // on(job) one-to-one keeps only the `on` labels: 105 / 10, 50 / 20.
    check(
        &db,
        "sum by (job) (req) / on(job) lim",
        10,
        &[("{job=\"api\"}", 10.5), ("{job=\"web\"}", 2.5)],
    );
}

#[test]
fn group_left_and_group_right() {
    let db = match_db();
    let (a200, a500, w200) = (
        "{code=\"200\", job=\"api\"}",
        "{code=\"500\", job=\"api\"}",
        "{code=\"200\", job=\"web\"}",
    );
    // Many req per lim: 100 / 10, 5 / 10, 50 / 20; labels of the many side.
    check(
        &db,
        "req / on(job) group_left lim",
        10,
        &[(a200, 10.0), (a500, 0.5), (w200, 2.5)],
    );
    // group_left(team) copies team from the one side.
    check(
        &db,
        "req * on(job) group_left(team) lim",
        10,
        &[
            ("{code=\"200\", job=\"api\", team=\"t1\"}", 1000.0),
            ("{code=\"500\", job=\"api\", team=\"t1\"}", 50.0),
            ("{code=\"200\", job=\"web\", team=\"t2\"}", 1000.0),
        ],
    );
    // group_right: the many side is on the right; its labels are kept.
    check(
        &db,
        "lim * on(job) group_right req",
        10,
        &[(a200, 1000.0), (a500, 50.0), (w200, 1000.0)],
    );
    // A filtering comparison keeps the left side's name and value:
    // 100 > 10 and 50 > 20 pass, 5 > 10 does not.
    check(
        &db,
        "req > on(job) group_left lim",
        10,
        &[
            (&format!("req{a200}"), 100.0),
            (&format!("req{w200}"), 50.0),
        ],
    );
    check(
        &db,
        "req > bool on(job) group_left lim",
        10,
        &[(a200, 1.0), (a500, 0.0), (w200, 1.0)],
    );
}

#[test]
fn matching_errors() {
    let db = match_db();
    // Two req{job="api"} match one lim without group_left.
    let e = check_error(&db, "req + on(job) lim", 10);
    assert!(matches!(e, QueryError::Matching(_)), "{e}");
    // The "one" side (req) has two series for job="api".
    let e = check_error(&db, "lim + on(job) group_left req", 10);
    assert!(matches!(e, QueryError::Matching(_)), "{e}");
}

#[test]
fn and_or_unless() {
    let db = match_db();
    check(
        &db,
        "req and on(job) lim{job=\"web\"}",
        10,
        &[("req{code=\"200\", job=\"web\"}", 50.0)],
    );
    // Default matching (all labels but the name): err{job="api"} matches
    // tot{job="api"}; the left side's series is kept with its name.
    check(&db, "err and tot", 10, &[("err{job=\"api\"}", 5.0)]);
    check(&db, "tot unless err", 10, &[("tot{job=\"web\"}", 50.0)]);
    check(
        &db,
        "req and ignoring(code) err",
        10,
        &[
            ("req{code=\"200\", job=\"api\"}", 100.0),
            ("req{code=\"500\", job=\"api\"}", 5.0),
        ],
    );
    // or: the whole left side plus the right series whose labels (without
    // the name) are not on the left.
    check(
        &db,
        "req or lim",
        10,
        &[
            ("req{code=\"200\", job=\"api\"}", 100.0),
            ("req{code=\"500\", job=\"api\"}", 5.0),
            ("req{code=\"200\", job=\"web\"}", 50.0),
            ("lim{job=\"api\", team=\"t1\"}", 10.0),
            ("lim{job=\"web\", team=\"t2\"}", 20.0),
        ],
    );
    check(
        &db,
        "req{code=\"500\"} or on(job) lim",
        10,
        &[
            ("req{code=\"500\", job=\"api\"}", 5.0),
            ("lim{job=\"web\", team=\"t2\"}", 20.0),
        ],
    );
    check(
        &db,
        "req unless on(job) lim{job=\"api\"}",
        10,
        &[("req{code=\"200\", job=\"web\"}", 50.0)],
    );
}

// ---------------------------------------------------------------------
// Subqueries
// ---------------------------------------------------------------------

/// g2 = t / 10 every 10 s from 0 to 300 s; sq a counter growing by 1 per
/// 10 s up to 150 s (value 15), then by 3 per 10 s (60 at 300 s).
fn subquery_db() -> TestDb {
    let g2: Vec<(i64, f64)> = (0..=30).map(|i| (i * 10, i as f64)).collect();
    let sq: Vec<(i64, f64)> = (0..=30)
        .map(|i| {
            let v = if i <= 15 { i } else { 15 + 3 * (i - 15) };
            (i * 10, v as f64)
        })
        .collect();
    TestDb::new(&[("g2", &g2), ("sq", &sq)])
}

#[test]
fn subquery_steps_are_aligned_to_the_step_and_closed() {
    let db = subquery_db();
    // At 305 s, [1m:20s] evaluates g2 at the multiples of 20 s in
    // [245, 305]: 260, 280, 300 -> 26 + 28 + 30.
    check(&db, "sum_over_time(g2[1m:20s])", 305, &[("{}", 84.0)]);
    // At 300 s the window [240, 300] is closed: 240, 260, 280, 300.
    check(&db, "count_over_time(g2[1m:20s])", 300, &[("{}", 4.0)]);
    // offset 30s: [215, 275] -> 220, 240, 260 -> 22 + 24 + 26.
    check(
        &db,
        "sum_over_time(g2[1m:20s] offset 30s)",
        305,
        &[("{}", 72.0)],
    );
    // @ 305 pins it: the same 84 at any evaluation time.
    check(
        &db,
        "sum_over_time(g2[1m:20s] @ 305)",
        1000,
        &[("{}", 84.0)],
    );
    // An instant query of a subquery is a matrix; the inner selector keeps
    // the name.
    match db.instant_ms("g2[1m:20s]", 300_000).map(plain) {
        Ok(Plain::Matrix(got)) => check_matrix(
            "g2[1m:20s]",
            got,
            &[(
                "g2{}",
                &[(240, 24.0), (260, 26.0), (280, 28.0), (300, 30.0)],
            )],
        ),
        other => panic!("g2[1m:20s]: expected a matrix, got {other:?}"),
    }
    // Range query: at 100, 150, 200 s the windows' newest inner steps are
    // 100, 150, 200 s.
    check_range(
        &db,
        "max_over_time(g2[30s:10s])",
        (100, 200, 50),
        &[("{}", &[(100, 10.0), (150, 15.0), (200, 20.0)])],
    );
}

#[test]
fn subquery_of_a_rate() {
    let db = subquery_db();
    // Inner steps at 300 s: 180, 240, 300 (multiples of 60 in [180, 300]).
    // rate(sq[1m]) at 180 over [120, 180]: 12 -> 24, 12 per 60 s = 0.2
    // (samples at both edges: factor 1); at 240: 24 -> 42, 0.3; at 300:
    // 42 -> 60, 0.3.
    check(
        &db,
        "max_over_time(rate(sq[1m])[2m:1m])",
        300,
        &[("{}", 0.3)],
    );
    check(
        &db,
        "min_over_time(rate(sq[1m])[2m:1m])",
        300,
        &[("{}", 0.2)],
    );
}

// ---------------------------------------------------------------------
// Query shapes, limits, other sources
// ---------------------------------------------------------------------

#[test]
fn instant_query_of_a_range_selector_is_a_matrix() {
    let db = gauge_db();
    // [0, 40] closed: all five samples, with the name.
    match db.instant_ms("g[40s]", 40_000).map(plain) {
        Ok(Plain::Matrix(got)) => check_matrix(
            "g[40s]",
            got,
            &[(
                "g{job=\"x\"}",
                &[(0, 1.0), (10, 4.0), (20, 2.0), (30, 8.0), (40, 5.0)],
            )],
        ),
        other => panic!("g[40s]: expected a matrix, got {other:?}"),
    }
}

fn options() -> QueryOptions {
    QueryOptions::default()
}

#[test]
fn limits_and_cancellation_are_typed_errors() {
    let db = cpu_db();
    let expr = parse_expr("sum(cpu)").unwrap();
    let run = |opts: QueryOptions| instant_query(&db.db, &expr, 10_000, &opts);
    let e = run(QueryOptions {
        max_series: 3,
        ..options()
    })
    .unwrap_err();
    assert!(matches!(e, QueryError::TooManySeries { limit: 3 }), "{e}");
    let e = run(QueryOptions {
        max_samples: 2,
        ..options()
    })
    .unwrap_err();
    assert!(matches!(e, QueryError::TooManySamples { limit: 2 }), "{e}");
    let e = run(QueryOptions {
        deadline: Some(std::time::Instant::now()),
        ..options()
    })
    .unwrap_err();
    assert!(matches!(e, QueryError::DeadlineExceeded { .. }), "{e}");
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let e = run(QueryOptions {
        cancel: Some(cancel),
        ..options()
    })
    .unwrap_err();
    assert!(matches!(e, QueryError::Cancelled), "{e}");
    // max_steps bounds (end - start) / step, as Prometheus' 11,000 points
    // "resolution" limit: 0..=1001 s every 1 s is 1001 intervals.
    let e = range_query(
        &db.db,
        &expr,
        0,
        1_001_000,
        1_000,
        &QueryOptions {
            max_steps: 1000,
            ..options()
        },
    )
    .unwrap_err();
    assert!(matches!(e, QueryError::TooManySteps { .. }), "{e}");
    // The end before the start, a step of 0.
    for (start, end, step) in [(10_000, 0, 1_000), (0, 10_000, 0)] {
        let e = range_query(&db.db, &expr, start, end, step, &options()).unwrap_err();
        assert!(matches!(e, QueryError::BadRange(_)), "{e}");
    }
}

#[test]
fn a_segment_file_is_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.seg");
    let mut writer = SegmentWriter::create(&path).unwrap();
    let key = SeriesKey::parse("c4{job=\"x\"}").unwrap();
    let samples: Vec<Sample> = [(0, 5.0), (10, 10.0), (20, 2.0), (30, 6.0), (40, 8.0)]
        .iter()
        .map(|&(t, v)| Sample::new(t * 1000, v))
        .collect();
    writer.add_series(&key, &samples).unwrap();
    writer.finish().unwrap();
    let segment = strata::Segment::open(&path).unwrap();
    // The same counter as counter_resets_add_the_value_before_the_drop.
    let expr = parse_expr("increase(c4[40s])").unwrap();
    let got = plain(instant_query(&segment, &expr, 40_000, &options()).unwrap());
    assert_eq!(
        got,
        Plain::Vector(vec![("{job=\"x\"}".to_owned(), 40_000, 13.0)])
    );
    let value = range_query(&segment, &expr, 40_000, 40_000, 1_000, &options()).unwrap();
    assert!(
        matches!(value, QueryValue::Matrix(ref m) if m.len() == 1),
        "{value:?}"
    );
}
