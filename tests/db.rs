//! The database API: writes, queries, out-of-order rules, flush, reopen,
//! concurrency.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use strata::{
    Db, Error, InputError, MatchOp, Matcher, Options, Sample, SeriesKey, SyncMode, TimeRange,
};

fn key(metric: &str, job: &str) -> SeriesKey {
    SeriesKey::new(metric, &[("job", job)]).unwrap()
}

fn options() -> Options {
    Options {
        sync: SyncMode::Never,
        flush_complete_partitions: false,
        ..Options::default()
    }
}

fn all(db: &Db) -> BTreeMap<SeriesKey, Vec<(i64, u64)>> {
    db.select(&[], TimeRange::ALL)
        .unwrap()
        .into_iter()
        .map(|s| {
            let bits = s
                .samples
                .iter()
                .map(|x| (x.timestamp_ms, x.value.to_bits()))
                .collect();
            (s.key, bits)
        })
        .collect()
}

#[test]
fn write_query_flush_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let a = db.series(&key("up", "a")).unwrap();
    let b = db.series(&key("up", "b")).unwrap();
    for t in 0..100 {
        db.append_ref(&a, t * 1000, t as f64).unwrap();
    }
    let outcome = db
        .append_batch(&[(&a, 100_000, 1.5), (&b, 5, f64::NAN), (&b, 6, -0.0)])
        .unwrap();
    assert_eq!(outcome.accepted, 3);
    db.append(&key("down", "c"), 1, 2.0).unwrap();

    let selected = db
        .select(
            &[Matcher::equal("__name__", "up")],
            TimeRange::new(0, 9_999),
        )
        .unwrap();
    assert_eq!(selected.len(), 2);
    assert_eq!(selected[0].key, key("up", "a"));
    assert_eq!(selected[0].samples.len(), 10);
    assert_eq!(selected[1].samples.len(), 2);
    assert!(selected[1].samples[0].value.is_nan());
    assert_eq!(db.label_values("job"), vec!["a", "b", "c"]);
    assert_eq!(db.label_names(), vec!["__name__", "job"]);
    let regex = Matcher::new("job", MatchOp::Regex, "a|c").unwrap();
    assert_eq!(
        db.find_series(&[regex]),
        vec![key("down", "c"), key("up", "a")]
    );

    let before = all(&db);
    let report = db.flush().unwrap();
    assert_eq!(report.samples_written, 104);
    assert_eq!(all(&db), before, "a flush does not change what queries see");
    db.append_ref(&a, 200_000, 7.0).unwrap();
    db.close().unwrap();

    let db = Db::open(dir.path(), options()).unwrap();
    let report = db.recovery_report();
    assert_eq!(
        report.samples_replayed, 0,
        "close leaves nothing to replay: {report:?}"
    );
    assert!(report.wal_damage.is_empty());
    let after = all(&db);
    assert_eq!(after[&key("up", "a")].len(), 102);
    assert_eq!(after.len(), 3);
}

#[test]
fn unflushed_data_is_replayed_from_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let a = db.series(&key("up", "a")).unwrap();
    for t in 0..1000 {
        db.append_ref(&a, t, (t * 3) as f64).unwrap();
    }
    let expected = all(&db);
    drop(db); // no close: the WAL holds everything

    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(db.recovery_report().samples_replayed, 1000);
    assert_eq!(all(&db), expected);
    drop(db);
    // Recovery is repeatable.
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(all(&db), expected);
}

#[test]
fn out_of_order_window_and_last_write_wins() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        out_of_order_window_ms: 1_000,
        ..options()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let s = db.series(&key("temp", "x")).unwrap();
    db.append_ref(&s, 10_000, 1.0).unwrap();
    db.append_ref(&s, 12_000, 2.0).unwrap();
    // inside the window: accepted and merged in order
    db.append_ref(&s, 11_500, 1.5).unwrap();
    db.append_ref(&s, 11_000, 1.2).unwrap();
    // duplicate timestamp: last write wins, also for an in-order one
    db.append_ref(&s, 12_000, 2.5).unwrap();
    db.append_ref(&s, 11_000, 1.3).unwrap();
    // older than newest (12 000) minus the window: rejected and counted
    let err = db.append_ref(&s, 10_999, 0.0).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Input(InputError::SampleTooOld {
                timestamp_ms: 10_999,
                min_accepted_ms: 11_000,
                ..
            })
        ),
        "{err}"
    );
    let batch = db.append_batch(&[(&s, 5, 0.0), (&s, 13_000, 3.0)]).unwrap();
    assert_eq!(batch.accepted, 1);
    assert_eq!(batch.rejected.len(), 1);
    assert_eq!(batch.rejected[0].0, 0);
    assert_eq!(db.stats().samples_rejected, 2);

    let expected = vec![
        Sample::new(10_000, 1.0),
        Sample::new(11_000, 1.3),
        Sample::new(11_500, 1.5),
        Sample::new(12_000, 2.5),
        Sample::new(13_000, 3.0),
    ];
    let read = |db: &Db| db.select(&[], TimeRange::ALL).unwrap()[0].samples.clone();
    assert_eq!(read(&db), expected);
    // the same after replay, and after flush
    drop(db);
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(read(&db), expected);
    db.flush().unwrap();
    assert_eq!(read(&db), expected);
    // a later duplicate overrides the flushed value
    let s = db.series(&key("temp", "x")).unwrap();
    db.append_ref(&s, 12_000, 9.0).unwrap();
    let mut newer = expected.clone();
    newer[3] = Sample::new(12_000, 9.0);
    assert_eq!(read(&db), newer);
    db.flush().unwrap();
    assert_eq!(read(&db), newer, "the newer segment wins");
}

#[test]
fn complete_partitions_are_flushed_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        partition_duration_ms: 1_000,
        out_of_order_window_ms: 100,
        flush_complete_partitions: true,
        sync: SyncMode::Interval(10),
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let s = db.series(&key("up", "a")).unwrap();
    for t in 0..3_500 {
        db.append_ref(&s, t, 1.0).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while db.stats().segments < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // partitions [0,1000), [1000,2000), [2000,3000) are complete
    assert_eq!(db.stats().segments, 3, "{:?}", db.stats());
    assert_eq!(
        db.select(&[], TimeRange::ALL).unwrap()[0].samples.len(),
        3_500
    );
    // a sample into a flushed partition is rejected
    assert!(db.append_ref(&s, 2_999, 1.0).is_err());
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    assert_eq!(
        db.select(&[], TimeRange::ALL).unwrap()[0].samples.len(),
        3_500
    );
    assert_eq!(
        db.recovery_report().samples_replayed,
        500,
        "only the unflushed partition is replayed: {:?}",
        db.recovery_report()
    );
}

#[test]
fn invalid_input_is_rejected_with_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        max_series: 2,
        max_labels_per_series: 2,
        ..options()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    db.series(&key("a", "1")).unwrap();
    let too_many_labels = SeriesKey::new("a", &[("x", "1"), ("y", "2")]).unwrap();
    assert!(matches!(
        db.series(&too_many_labels),
        Err(Error::Input(InputError::LimitExceeded {
            what: "label count",
            ..
        }))
    ));
    db.series(&key("a", "2")).unwrap();
    assert!(matches!(
        db.series(&key("a", "3")),
        Err(Error::Input(InputError::TooManySeries { limit: 2 }))
    ));

    let reserved = SeriesKey::new("a", &[("__rollup__", "min")]).unwrap();
    assert!(matches!(
        db.append(&reserved, 1, 1.0),
        Err(Error::Input(InputError::ReservedLabel {
            label: "__rollup__",
            ..
        }))
    ));

    let other_dir = tempfile::tempdir().unwrap();
    let other = Db::open(other_dir.path(), options()).unwrap();
    let foreign = other.series(&key("a", "1")).unwrap();
    assert!(matches!(
        db.append_ref(&foreign, 1, 1.0),
        Err(Error::Input(InputError::ForeignSeriesRef))
    ));
}

#[test]
fn second_writer_is_locked_out_and_readers_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    db.append(&key("up", "a"), 1, 1.0).unwrap();
    db.sync_wal().unwrap();
    match Db::open(dir.path(), options()) {
        Err(Error::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("a second writer opened the directory"),
    }
    let reader = Db::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.select(&[], TimeRange::ALL).unwrap().len(), 1);
    assert!(matches!(
        reader.append(&key("up", "a"), 2, 1.0),
        Err(Error::ReadOnly)
    ));
    drop(db);
    Db::open(dir.path(), options()).unwrap();
}

#[test]
fn concurrent_writers_and_readers_see_ordered_series() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let writers = 3;
    let per_writer = 20_000;
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for w in 0..writers {
            let db = &db;
            scope.spawn(move || {
                let own = db.series(&key("counter", &format!("w{w}"))).unwrap();
                let shared = db.series(&key("shared", "all")).unwrap();
                for i in 0..per_writer {
                    let t = i * 10;
                    db.append_ref(&own, t, i as f64).unwrap();
                    let outcome = db.append_batch(&[(&shared, t * writers + w, 0.0)]).unwrap();
                    assert_eq!((outcome.accepted, outcome.rejected.len()), (1, 0));
                    if w == 0 && i % 5_000 == 4_999 {
                        db.flush().unwrap();
                    }
                }
            });
        }
        for _ in 0..2 {
            let db = &db;
            let done = &done;
            scope.spawn(move || {
                let mut checks = 0;
                while !done.load(Ordering::Relaxed) || checks == 0 {
                    for series in db.select(&[], TimeRange::ALL).unwrap() {
                        let ts: Vec<i64> = series.samples.iter().map(|s| s.timestamp_ms).collect();
                        assert!(
                            ts.windows(2).all(|w| w[0] < w[1]),
                            "{} out of order",
                            series.key
                        );
                        if series.key.metric() == "counter" {
                            // a counter written in order shows a prefix
                            for (i, s) in series.samples.iter().enumerate() {
                                assert_eq!(s.value, i as f64, "{} has a gap", series.key);
                            }
                        }
                    }
                    checks += 1;
                }
            });
        }
        // Writers finish first; then readers stop.
        std::thread::sleep(std::time::Duration::from_millis(50));
        while db.stats().samples_appended < (writers * per_writer * 2) as u64 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        done.store(true, Ordering::Relaxed);
    });
    let result = db.select(&[], TimeRange::ALL).unwrap();
    assert_eq!(result.len(), writers as usize + 1);
    for series in result {
        let expected = if series.key.metric() == "shared" {
            (writers * per_writer) as usize
        } else {
            per_writer as usize
        };
        assert_eq!(series.samples.len(), expected, "{}", series.key);
    }
}

#[test]
fn read_only_opens_next_to_a_flushing_writer_see_synced_data() {
    use std::sync::atomic::AtomicI64;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let synced = AtomicI64::new(-1);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let s = db.series(&key("up", "a")).unwrap();
            for i in 0..20_000i64 {
                db.append_ref(&s, i, i as f64).unwrap();
                if i % 500 == 499 {
                    db.sync_wal().unwrap();
                    synced.store(i, Ordering::SeqCst);
                }
                if i % 2_000 == 1_999 {
                    db.flush().unwrap();
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        let mut opens = 0;
        while !done.load(Ordering::SeqCst) || opens < 3 {
            let at_least = synced.load(Ordering::SeqCst);
            let reader = Db::open_read_only(dir.path()).unwrap();
            let series = reader.select(&[], TimeRange::ALL).unwrap();
            let samples = series.first().map_or(&[][..], |s| &s.samples[..]);
            assert!(
                samples.len() as i64 > at_least,
                "{} < {}",
                samples.len(),
                at_least + 1
            );
            for (i, sample) in samples.iter().enumerate() {
                assert_eq!(sample.timestamp_ms, i as i64, "gap or duplicate");
            }
            opens += 1;
        }
    });
}
