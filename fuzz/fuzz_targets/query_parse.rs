//! Arbitrary text as a PromQL expression, parsed and then evaluated.
//!
//! `parse_expr` never panics and never hangs (the tree is at most
//! `MAX_DEPTH` deep, the work linear in the input). When the text parses,
//! the canonical form (`Display`) parses back to the same tree and prints
//! the same text again, and the error of a text that does not parse points
//! inside it (or just past its end).
//!
//! Every expression that parses is then evaluated as an instant query and
//! as a 16-step range query on a small fixed database (built once per
//! process: two counters, a gauge with a NaN and a staleness marker, and a
//! histogram's buckets, every 15 s over 15 minutes), with small limits on
//! samples, series and steps and a deadline, so that no input can hang or
//! exhaust memory. Evaluation may fail with any `QueryError`; it must not
//! panic, and a result must have the documented shape: an instant vector
//! has one sample per series at the query time, a matrix's samples are in
//! time order inside the queried range.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use strata::{
    instant_query, parse_expr, range_query, Db, Options, QueryOptions, QueryValue, SeriesKey,
    SyncMode,
};

/// Prometheus' staleness marker.
const STALE: f64 = f64::from_bits(0x7ff0_0000_0000_0002);
/// The fixed data covers 0..=900 s.
const END_MS: i64 = 900_000;
const STEP_MS: i64 = 60_000;

struct Fixture {
    db: Db,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = Options {
            sync: SyncMode::Never,
            flush_complete_partitions: false,
            ..Options::default()
        };
        let db = Db::open(dir.path(), options).expect("open the fixture database");
        let key = |text: &str| SeriesKey::parse(text).expect("fixture series key");
        let requests_ok = key("http_requests_total{code=\"200\", job=\"api\"}");
        let requests_err = key("http_requests_total{code=\"500\", job=\"api\"}");
        let queue = key("queue_depth{job=\"spawn\"}");
        let buckets: Vec<(SeriesKey, f64)> =
            [("0.1", 1.0), ("0.5", 3.0), ("1", 4.0), ("+Inf", 5.0)]
                .iter()
                .map(|(le, per_step)| {
                    let text = format!("latency_seconds_bucket{{job=\"api\", le=\"{le}\"}}");
                    (key(&text), *per_step)
                })
                .collect();
        for i in 0..=60i64 {
            let t = i * 15_000;
            let step = i as f64;
            // A counter reset halfway.
            let ok = if i < 30 {
                10.0 * step
            } else {
                10.0 * (step - 30.0)
            };
            db.append(&requests_ok, t, ok).expect("append");
            db.append(&requests_err, t, step).expect("append");
            let depth = match i {
                20 => f64::NAN,
                40 => STALE,
                _ => (i % 7) as f64,
            };
            db.append(&queue, t, depth).expect("append");
            for (bucket, per_step) in &buckets {
                db.append(bucket, t, per_step * step).expect("append");
            }
        }
        Fixture { db, _dir: dir }
    })
}

fn options() -> QueryOptions {
    QueryOptions {
        max_samples: 200_000,
        max_series: 1_000,
        max_steps: 1_000,
        deadline: Some(Instant::now() + Duration::from_secs(2)),
        threads: 1,
        ..QueryOptions::default()
    }
}

/// Checks the documented shape of a result.
fn check_shape(text: &str, value: &QueryValue, time_ms: Option<i64>, range: (i64, i64)) {
    match value {
        QueryValue::Vector(series) => {
            for s in series {
                assert_eq!(s.samples.len(), 1, "{text:?}: an instant vector series");
                if let Some(t) = time_ms {
                    assert_eq!(s.samples[0].timestamp_ms, t, "{text:?}");
                }
            }
        }
        QueryValue::Matrix(series) => {
            for s in series {
                assert!(
                    s.samples
                        .windows(2)
                        .all(|w| w[0].timestamp_ms < w[1].timestamp_ms),
                    "{text:?}: matrix samples out of order"
                );
                // A range vector reaches back before the query range, a
                // subquery even further; only a range query's own points
                // are bounded by it.
                if time_ms.is_none() {
                    assert!(
                        s.samples
                            .iter()
                            .all(|p| p.timestamp_ms >= range.0 && p.timestamp_ms <= range.1),
                        "{text:?}: a range query point outside the range"
                    );
                }
            }
        }
        QueryValue::Scalar(_) | QueryValue::String { .. } => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_expr(&text) {
        Ok(expr) => {
            let shown = expr.to_string();
            let again = match parse_expr(&shown) {
                Ok(again) => again,
                Err(e) => panic!("{text:?} printed as {shown:?}, which fails: {e}"),
            };
            assert_eq!(again, expr, "{text:?} printed as {shown:?}");
            assert_eq!(again.to_string(), shown);

            let db = &fixture().db;
            let at = END_MS * 2 / 3;
            if let Ok(value) = instant_query(db, &expr, at, &options()) {
                check_shape(&text, &value, Some(at), (at, at));
            }
            let start = END_MS / 4;
            if let Ok(value) = range_query(db, &expr, start, END_MS, STEP_MS, &options()) {
                assert!(
                    matches!(value, QueryValue::Matrix(_)),
                    "{text:?}: a range query returns a matrix"
                );
                check_shape(&text, &value, None, (start, END_MS));
            }
        }
        Err(e) => {
            assert!(e.position <= text.len(), "{text:?}: {e}");
            assert!(e.line >= 1 && e.column >= 1, "{text:?}: {e}");
        }
    }
});
