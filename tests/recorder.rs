//! The `metrics` recorder: values emitted through the macros from several
//! threads are read back from the database exactly, as series and through
//! PromQL. The recorder is used through `metrics::with_local_recorder`
//! (a global recorder can be installed once per process).
#![cfg(feature = "metrics-recorder")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use strata::recorder::metrics::{self, counter, gauge, histogram, Unit};
use strata::recorder::{MetricDescription, MetricKind, RecorderError, StrataRecorder};
use strata::{
    instant_query, parse_expr, Db, MatchOp, Matcher, MetricMetadata, MetricType, Options,
    QueryOptions, QueryValue, SeriesKey, TimeRange,
};

const THREADS: usize = 4;
const ROUNDS: usize = 1000;

fn open() -> (tempfile::TempDir, Arc<Db>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), Options::default()).unwrap());
    (dir, db)
}

/// A recorder whose thread never snapshots during a test: the tests take
/// snapshots themselves.
fn recorder(db: &Arc<Db>) -> StrataRecorder {
    StrataRecorder::builder(Arc::clone(db))
        .interval(Duration::from_secs(3600))
        .buckets(&[1.0, 2.0, 5.0])
        .build()
        .unwrap()
}

/// Every stored series (text form) and its samples' values.
fn stored(db: &Db) -> BTreeMap<String, Vec<f64>> {
    db.select(
        &[Matcher::new("__name__", MatchOp::Regex, ".+").unwrap()],
        TimeRange::ALL,
    )
    .unwrap()
    .into_iter()
    .map(|s| {
        (
            s.key.to_string(),
            s.samples.iter().map(|s| s.value).collect(),
        )
    })
    .collect()
}

fn last(stored: &BTreeMap<String, Vec<f64>>, series: &str) -> f64 {
    let values = stored
        .get(series)
        .unwrap_or_else(|| panic!("{series} not stored"));
    *values.last().unwrap()
}

#[test]
fn values_emitted_from_several_threads_are_read_back_exactly() {
    let (_dir, db) = open();
    let recorder = recorder(&db);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let recorder = &recorder;
            scope.spawn(move || {
                metrics::with_local_recorder(recorder, || {
                    let worker = thread.to_string();
                    for i in 0..ROUNDS {
                        counter!("requests.total", "code" => "200").increment(1);
                        if i % 10 == 0 {
                            counter!("requests.total", "code" => "500").increment(2);
                        }
                        gauge!("queue_depth", "worker" => worker.clone()).set(i as f64);
                        gauge!("inflight").increment(1.0);
                        if i % 5 < 2 {
                            gauge!("inflight").decrement(1.0);
                        }
                        let latency = [0.5, 1.0, 1.5, 3.0, 10.0][i % 5];
                        histogram!("latency_seconds", "route" => "/a").record(latency);
                    }
                });
            });
        }
    });
    let report = recorder.handle().shutdown().unwrap();
    // 2 counters + 4 + 1 gauges + (4 buckets + sum + count).
    assert_eq!((report.accepted, report.rejected), (13, 0));
    let stored = stored(&db);
    assert_eq!(stored.len(), 13, "{stored:?}");
    assert_eq!(last(&stored, r#"requests_total{code="200"}"#), 4000.0);
    assert_eq!(last(&stored, r#"requests_total{code="500"}"#), 800.0);
    for worker in 0..THREADS {
        let series = format!(r#"queue_depth{{worker="{worker}"}}"#);
        assert_eq!(last(&stored, &series), 999.0);
    }
    // +1 per round, -1 in 2 rounds of 5: 4 threads * 600.
    assert_eq!(last(&stored, "inflight{}"), 2400.0);
    // Per thread 200 of each of 0.5, 1, 1.5, 3, 10; bounds 1, 2, 5.
    let bucket = |le: &str| {
        last(
            &stored,
            &format!(r#"latency_seconds_bucket{{le="{le}",route="/a"}}"#),
        )
    };
    assert_eq!(bucket("1"), 1600.0);
    assert_eq!(bucket("2"), 2400.0);
    assert_eq!(bucket("5"), 3200.0);
    assert_eq!(bucket("+Inf"), 4000.0);
    assert_eq!(last(&stored, r#"latency_seconds_sum{route="/a"}"#), 12800.0);
    assert_eq!(
        last(&stored, r#"latency_seconds_count{route="/a"}"#),
        4000.0
    );

    // The median's rank 2000 falls in (1, 2], 400 of its 800 in: 1.5.
    let expr = parse_expr("histogram_quantile(0.5, latency_seconds_bucket)").unwrap();
    let value = instant_query(&*db, &expr, report.timestamp_ms, &QueryOptions::default()).unwrap();
    let QueryValue::Vector(series) = value else {
        panic!("expected a vector, got {value:?}");
    };
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].samples[0].value, 1.5);
}

#[test]
fn each_snapshot_writes_every_metric_at_a_later_timestamp() {
    let (_dir, db) = open();
    let recorder = recorder(&db);
    let handle = recorder.handle();
    let jobs = metrics::with_local_recorder(&recorder, || counter!("jobs_total"));
    jobs.increment(5);
    let first = handle.snapshot().unwrap();
    let second = handle.snapshot().unwrap();
    jobs.increment(2);
    drop(recorder); // the final snapshot
    let samples = &db
        .select(&[Matcher::equal("__name__", "jobs_total")], TimeRange::ALL)
        .unwrap()[0]
        .samples;
    let values: Vec<f64> = samples.iter().map(|s| s.value).collect();
    assert_eq!(values, [5.0, 5.0, 7.0]);
    assert!(first.timestamp_ms < second.timestamp_ms);
    assert_eq!(samples[1].timestamp_ms, second.timestamp_ms);
    assert!(samples[1].timestamp_ms < samples[2].timestamp_ms);
    let stats = handle.stats();
    assert_eq!((stats.snapshots, stats.samples_written), (3, 3));
}

#[test]
fn names_and_labels_are_sanitised_and_clashes_rejected_without_panics() {
    let (_dir, db) = open();
    let recorder = recorder(&db);
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        counter!("http.requests", "http-method" => "GET", "__name__" => "x", "empty" => "")
            .increment(1);
        // Sanitises to the series above: a no-op handle.
        counter!("http_requests", "http_method" => "GET", "_name__" => "x").increment(100);
        // A gauge of a counter's name and labels: also rejected.
        gauge!("http.requests", "http-method" => "GET", "__name__" => "x").set(7.0);
        histogram!("9s", "le" => "mine").record(0.5);
    });
    // The refusals happen at registration; the snapshot writes the 7 series.
    let report = handle.shutdown().unwrap();
    assert_eq!((report.accepted, report.rejected), (7, 0));
    let stored = stored(&db);
    assert_eq!(
        last(&stored, r#"http_requests{_name__="x",http_method="GET"}"#),
        1.0
    );
    assert_eq!(
        last(&stored, r#"_9s_bucket{exported_le="mine",le="1"}"#),
        1.0
    );
    assert_eq!(last(&stored, r#"_9s_count{exported_le="mine"}"#), 1.0);
    assert_eq!(stored.len(), 1 + 4 + 2);
    let stats = handle.stats();
    assert_eq!((stats.metrics, stats.rejected_registrations), (2, 2));
    let error = stats.last_error.unwrap();
    assert!(
        error.contains("already written by another metric"),
        "{error}"
    );
}

#[test]
fn a_refused_series_gives_a_no_op_handle() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        max_series: 1,
        ..Options::default()
    };
    let db = Arc::new(Db::open(dir.path(), options).unwrap());
    let recorder = recorder(&db);
    metrics::with_local_recorder(&recorder, || {
        counter!("a_total").increment(1);
        counter!("b_total").increment(1);
    });
    let handle = recorder.handle();
    assert_eq!(handle.shutdown().unwrap().accepted, 1);
    assert_eq!(handle.stats().rejected_registrations, 1);
    let key = SeriesKey::new("a_total", &[]).unwrap();
    assert_eq!(stored(&db).keys().collect::<Vec<_>>(), [&key.to_string()]);
}

#[test]
fn descriptions_are_kept_by_name_and_kind() {
    let (_dir, db) = open();
    let recorder = recorder(&db);
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_histogram!("latency.seconds", Unit::Seconds, "request latency");
        metrics::describe_counter!("jobs_total", "jobs run");
        metrics::describe_counter!("jobs_total", "jobs finished");
    });
    let descriptions = recorder.handle().descriptions();
    assert_eq!(
        descriptions,
        [
            MetricDescription {
                name: "jobs_total".into(),
                kind: MetricKind::Counter,
                unit: None,
                description: "jobs finished".into(),
            },
            MetricDescription {
                name: "latency_seconds".into(),
                kind: MetricKind::Histogram,
                unit: Some(Unit::Seconds),
                description: "request latency".into(),
            },
        ]
    );
    // The next snapshot stores them as the database's metric metadata, and
    // the histogram's series find their family.
    assert!(db.metadata().is_empty());
    let report = recorder.handle().snapshot().unwrap();
    assert_eq!(report.rejected, 0);
    let metadata = db.metadata();
    assert_eq!(
        metadata.get("jobs_total"),
        Some(&MetricMetadata::new(MetricType::Counter).with_help("jobs finished"))
    );
    let latency = MetricMetadata::new(MetricType::Histogram)
        .with_help("request latency")
        .with_unit("seconds");
    assert_eq!(
        metadata.of_metric("latency_seconds_bucket"),
        Some(("latency_seconds", &latency))
    );
    assert_eq!(metadata.len(), 2);
}

#[test]
fn bad_configurations_are_refused() {
    let (_dir, db) = open();
    let build = |bounds: &[f64], interval| {
        StrataRecorder::builder(Arc::clone(&db))
            .buckets(bounds)
            .interval(interval)
            .build()
    };
    let second = Duration::from_secs(1);
    assert!(matches!(
        build(&[1.0, 1.0], second),
        Err(RecorderError::BadBuckets { .. })
    ));
    assert!(matches!(
        build(&[2.0, 1.0], second),
        Err(RecorderError::BadBuckets { .. })
    ));
    assert!(matches!(
        build(&[f64::NAN], second),
        Err(RecorderError::BadBuckets { .. })
    ));
    assert!(matches!(
        build(&[f64::INFINITY], second),
        Err(RecorderError::BadBuckets { .. })
    ));
    assert!(matches!(
        build(&[1.0], Duration::ZERO),
        Err(RecorderError::ZeroInterval)
    ));
    // No finite bound is allowed: everything is in +Inf.
    let recorder = build(&[], second).unwrap();
    metrics::with_local_recorder(&recorder, || histogram!("h").record(f64::NAN));
    assert_eq!(recorder.handle().shutdown().unwrap().accepted, 3);
}

#[test]
fn a_failed_write_is_reported_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    Db::open(dir.path(), Options::default())
        .unwrap()
        .close()
        .unwrap();
    let db = Arc::new(Db::open_read_only(dir.path()).unwrap());
    let recorder = recorder(&db);
    metrics::with_local_recorder(&recorder, || counter!("a_total").increment(1));
    let handle = recorder.handle();
    let error = handle.snapshot().unwrap_err();
    assert!(
        matches!(error, RecorderError::Write { samples: 1, .. }),
        "{error}"
    );
    let stats = handle.stats();
    assert_eq!((stats.snapshots, stats.failed_snapshots), (0, 1));
    assert_eq!(stats.last_error, Some(error.to_string()));
}

#[test]
fn the_background_thread_writes_snapshots_on_its_own() {
    let (_dir, db) = open();
    let recorder = StrataRecorder::builder(Arc::clone(&db))
        .interval(Duration::from_millis(5))
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || gauge!("up").set(1.0));
    let handle = recorder.handle();
    // Waits for two periodic snapshots (a liveness bound, not a timing
    // assertion: a loaded machine only makes this slower).
    let patience = std::time::Instant::now() + Duration::from_secs(60);
    while handle.stats().snapshots < 2 {
        assert!(
            std::time::Instant::now() < patience,
            "no periodic snapshots"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let last = handle.shutdown().unwrap();
    let samples = &db
        .select(&[Matcher::equal("__name__", "up")], TimeRange::ALL)
        .unwrap()[0]
        .samples;
    assert!(samples.len() >= 3, "two periodic and the final snapshot");
    assert!(samples.iter().all(|s| s.value == 1.0));
    assert_eq!(samples.last().unwrap().timestamp_ms, last.timestamp_ms);
    // After shutdown the thread is gone: only explicit snapshots write.
    let written = handle.stats().snapshots;
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(handle.stats().snapshots, written);
}
