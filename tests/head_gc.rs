//! Head series garbage collection: series whose samples are all flushed
//! leave the head, handles of dropped series keep working, and nothing is
//! lost or doubled, through concurrent appends and WAL replay.
//!
//! Collection runs in the background thread after the flushes of complete
//! partitions; the tests wait for its counters (with a deadline that only
//! keeps a hung run from hanging the suite) and then check exact figures.

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use strata::{Db, DbStats, Error, Matcher, Options, SeriesKey, SyncMode, TimeRange};
use strata::{SeriesRef, HEAD_BYTES_PER_SERIES};

const PARTITION_MS: i64 = 1_000;

/// Background flushes of complete 1 s partitions, checked every
/// millisecond; no out-of-order slack beyond 100 ms.
fn options() -> Options {
    Options {
        sync: SyncMode::Interval(1),
        partition_duration_ms: PARTITION_MS,
        out_of_order_window_ms: 100,
        flush_complete_partitions: true,
        ..Options::default()
    }
}

fn pod(generation: usize, i: usize) -> SeriesKey {
    SeriesKey::new("churn", &[("pod", &format!("{generation}-{i}"))]).unwrap()
}

/// Waits until the background thread has brought the stats to `done`.
fn wait_for(db: &Db, what: &str, done: impl Fn(&DbStats) -> bool) -> DbStats {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = db.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "no {what} after 60 s: {stats:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every sample of the database, by series, as (timestamp, value bits).
fn all(db: &Db) -> BTreeMap<SeriesKey, Vec<(i64, u64)>> {
    let mut out = BTreeMap::new();
    for series in db.select(&[], TimeRange::ALL).unwrap() {
        let samples = series
            .samples
            .iter()
            .map(|s| (s.timestamp_ms, s.value.to_bits()))
            .collect();
        assert!(
            out.insert(series.key.clone(), samples).is_none(),
            "{} selected twice",
            series.key
        );
    }
    out
}

#[test]
fn churned_series_leave_the_head_and_their_budget() {
    const LIVE: usize = 10;
    const GENERATIONS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    // Room for 29 series' bookkeeping: two generations fit (and stay below
    // the 3/4 mark where flushes take everything), the third only if the
    // first one's bytes were given back.
    let per_series = HEAD_BYTES_PER_SERIES + pod(GENERATIONS, LIVE).byte_len();
    let options = Options {
        max_head_bytes: 29 * per_series,
        ..options()
    };
    let db = Db::open(dir.path(), options.clone()).unwrap();
    for generation in 0..GENERATIONS {
        let start_ms = generation as i64 * PARTITION_MS;
        let refs: Vec<SeriesRef> = (0..LIVE)
            .map(|i| db.series(&pod(generation, i)).unwrap())
            .collect();
        for (i, series) in refs.iter().enumerate() {
            for step in 0..10 {
                db.append_ref(
                    series,
                    start_ms + step * 100,
                    (generation * LIVE + i) as f64,
                )
                .unwrap();
            }
        }
        // Generation g's newest sample (g*1000 + 900) moves the flush
        // cutoff to g*1000: every earlier generation is flushed and idle.
        let dropped = (generation * LIVE) as u64;
        let stats = wait_for(&db, "collection", |s| s.head_series_dropped == dropped);
        assert_eq!(stats.head_series, LIVE, "{stats:?}");
    }
    let stats = db.stats();
    assert_eq!(stats.samples_appended, (GENERATIONS * LIVE * 10) as u64);
    assert_eq!(stats.last_background_error, None);

    let stored = all(&db);
    assert_eq!(stored.len(), GENERATIONS * LIVE);
    for generation in 0..GENERATIONS {
        for i in 0..LIVE {
            let value = ((generation * LIVE + i) as f64).to_bits();
            let expected: Vec<(i64, u64)> = (0..10)
                .map(|step| (generation as i64 * PARTITION_MS + step * 100, value))
                .collect();
            assert_eq!(stored[&pod(generation, i)], expected);
        }
    }
    // Every key is still found (in segments), once.
    let keys = db.find_series(&[Matcher::equal("__name__", "churn")]);
    assert_eq!(keys.len(), GENERATIONS * LIVE);
    drop(db);
    let db = Db::open(dir.path(), options).unwrap();
    assert_eq!(all(&db), stored);
}

#[test]
fn a_series_nobody_writes_is_dropped_after_the_flush_point_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let unused = db.series(&pod(0, 0)).unwrap();
    let clock = db.series(&pod(0, 1)).unwrap();
    // Its idle time counts from the first collection that sees it: it goes
    // at a later one, after the flush point has moved again.
    let mut partition = 0;
    while db.stats().head_series_dropped == 0 {
        assert!(partition < 20, "never dropped: {:?}", db.stats());
        let start_ms = partition * PARTITION_MS;
        for t in (start_ms..start_ms + PARTITION_MS).step_by(100) {
            db.append_ref(&clock, t, 1.0).unwrap();
        }
        // The flush of the partition before (and the collection after it).
        wait_for(&db, "flush", |s| s.segments as i64 == partition);
        partition += 1;
    }
    assert_eq!(db.stats().head_series_dropped, 1);
    assert_eq!(db.stats().head_series, 1);
    // Its handle still works and brings it back.
    let t = partition * PARTITION_MS - 50;
    db.append_ref(&unused, t, 5.0).unwrap();
    assert_eq!(db.stats().head_series, 2);
    let stored = all(&db);
    assert_eq!(stored[&pod(0, 0)], vec![(t, 5.0f64.to_bits())]);
}

#[test]
fn a_handle_kept_across_a_drop_appends_to_one_series() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let kept = db.series(&pod(0, 0)).unwrap();
    let clock = db.series(&pod(0, 1)).unwrap();
    for t in (0..1_000).step_by(100) {
        db.append_ref(&kept, t, t as f64).unwrap();
    }
    let mut expected: Vec<(i64, u64)> = (0..1_000)
        .step_by(100)
        .map(|t| (t, (t as f64).to_bits()))
        .collect();
    let mut clock_ms = 0;
    let mut tick = |db: &Db, until_ms: i64| {
        while clock_ms < until_ms {
            db.append_ref(&clock, clock_ms, 0.0).unwrap();
            clock_ms += 100;
        }
    };
    tick(&db, 2_000);
    wait_for(&db, "collection", |s| s.head_series_dropped == 1);
    assert_eq!(db.stats().head_series, 1);

    // Below the flushed time: rejected, exactly as before the drop.
    assert!(matches!(
        db.append_ref(&kept, 950, 1.0),
        Err(Error::Input(_))
    ));
    // Through the old handle: the series comes back with a new WAL
    // definition.
    db.append_ref(&kept, 1_950, 1.5).unwrap();
    expected.push((1_950, 1.5f64.to_bits()));
    assert_eq!(db.stats().head_series, 2);

    // Dropped again; this time the old handle goes through a batch, twice
    // in it, next to a live series.
    tick(&db, 4_000);
    wait_for(&db, "collection", |s| s.head_series_dropped == 2);
    let outcome = db
        .append_batch(&[
            (&kept, 3_910, 2.0),
            (&clock, 3_990, 0.0),
            (&kept, 3_920, 3.0),
        ])
        .unwrap();
    assert_eq!((outcome.accepted, outcome.rejected.len()), (3, 0));
    expected.extend([(3_910, 2.0f64.to_bits()), (3_920, 3.0f64.to_bits())]);
    assert_eq!(db.stats().head_series, 2);
    // A fresh handle is the same series as the old one resolves to.
    let fresh = db.series(&pod(0, 0)).unwrap();
    db.append_ref(&fresh, 3_930, 4.0).unwrap();
    db.append_ref(&kept, 3_940, 5.0).unwrap();
    expected.extend([(3_930, 4.0f64.to_bits()), (3_940, 5.0f64.to_bits())]);
    assert_eq!(db.stats().head_series, 2);

    let stored = all(&db);
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[&pod(0, 0)], expected);
    let keys = db.find_series(&[Matcher::equal("pod", "0-0")]);
    assert_eq!(keys, [pod(0, 0)]);

    // Replay of WAL files holding the definitions of the key under its
    // first and its later series ids rebuilds one series.
    drop(db);
    let db = Db::open(dir.path(), options()).unwrap();
    assert!(
        db.recovery_report().is_clean(),
        "{:?}",
        db.recovery_report()
    );
    assert!(db.recovery_report().samples_replayed > 0);
    assert_eq!(db.stats().head_series, 2);
    assert_eq!(all(&db), stored);
}

/// Whether series `s` is written in partition `p`: off one partition in
/// three, at a different phase per series; every series is on in the
/// first partition.
fn on(s: usize, p: usize) -> bool {
    p == 0 || (p + s) % 3 != 2
}

#[test]
fn concurrent_appenders_through_old_handles_lose_and_double_nothing() {
    const SERIES: usize = 12;
    const WRITERS: usize = 3;
    const PARTITIONS: usize = 15;
    const ROUNDS: i64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    // Created once; every writer appends to every series through them.
    let refs: Vec<SeriesRef> = (0..SERIES)
        .map(|s| db.series(&pod(0, s)).unwrap())
        .collect();
    // A series switched off in partition p is dropped once p - 1 is
    // flushed, which the writers' samples of partition p bring about.
    let drops_until = |p: usize| -> u64 {
        (1..=p)
            .flat_map(|q| (0..SERIES).filter(move |&s| on(s, q - 1) && !on(s, q)))
            .count() as u64
    };
    // Writers go round by round together (so that no sample is behind a
    // series' newest by more than the out-of-order window) and partition
    // by partition with the test, which waits for each partition's drops.
    let round_done = Barrier::new(WRITERS);
    let phase = Barrier::new(WRITERS + 1);
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let (db, refs, round_done, phase) = (&db, &refs, &round_done, &phase);
            scope.spawn(move || {
                for p in 0..PARTITIONS {
                    for round in 0..ROUNDS {
                        // Writers have their own timestamps in each round.
                        let t = p as i64 * PARTITION_MS + round * 20 + writer as i64;
                        let live: Vec<(&SeriesRef, i64, f64)> = (0..SERIES)
                            .filter(|&s| on(s, p))
                            .map(|s| (&refs[s], t, (s * 1_000 + writer) as f64))
                            .collect();
                        if writer == 0 {
                            for (series, t, value) in live {
                                db.append_ref(series, t, value).unwrap();
                            }
                        } else {
                            let outcome = db.append_batch(&live).unwrap();
                            assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
                        }
                        round_done.wait();
                    }
                    phase.wait(); // partition p written
                    phase.wait(); // its drops collected
                }
            });
        }
        for p in 0..PARTITIONS {
            phase.wait();
            let dropped = drops_until(p);
            wait_for(&db, "collection", |s| s.head_series_dropped == dropped);
            phase.wait();
        }
    });
    let stats = db.stats();
    assert!(stats.head_series_dropped >= SERIES as u64, "{stats:?}");
    assert_eq!(stats.samples_rejected, 0);
    // One head series per key still written: the dropped ones came back
    // into one series each.
    let last = PARTITIONS - 1;
    let written_last = (0..SERIES).filter(|&s| on(s, last)).count();
    assert_eq!(stats.head_series, written_last, "{stats:?}");

    let mut expected_samples = 0;
    let stored = all(&db);
    assert_eq!(stored.len(), SERIES);
    for s in 0..SERIES {
        let mut expected = Vec::new();
        for p in (0..PARTITIONS).filter(|&p| on(s, p)) {
            for round in 0..ROUNDS {
                for writer in 0..WRITERS {
                    let t = p as i64 * PARTITION_MS + round * 20 + writer as i64;
                    expected.push((t, ((s * 1_000 + writer) as f64).to_bits()));
                }
            }
        }
        expected_samples += expected.len() as u64;
        assert_eq!(stored[&pod(0, s)], expected, "series {s}");
    }
    assert_eq!(stats.samples_appended, expected_samples);

    // Reopen without a flush: the WAL replays onto the segments.
    drop(db);
    let db = Db::open(dir.path(), options()).unwrap();
    assert!(
        db.recovery_report().is_clean(),
        "{:?}",
        db.recovery_report()
    );
    assert_eq!(all(&db), stored);
}

#[test]
fn an_idle_time_keeps_paused_series_for_longer() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        head_series_idle_ms: 2 * PARTITION_MS,
        ..options()
    };
    let db = Db::open(dir.path(), options).unwrap();
    let early = db.series(&pod(0, 0)).unwrap();
    let paused = db.series(&pod(0, 1)).unwrap();
    let clock = db.series(&pod(0, 2)).unwrap();
    db.append_ref(&early, 0, 1.0).unwrap();
    let mut clock_ms = 0;
    let mut tick = |until_ms: i64| {
        while clock_ms < until_ms {
            db.append_ref(&clock, clock_ms, 0.0).unwrap();
            clock_ms += 100;
        }
    };
    tick(1_500);
    db.append_ref(&paused, 1_500, 1.0).unwrap();
    // Flushed below 3 000: only what is older than 1 000 is idle long
    // enough. Without the idle time both would go (newest below 2 000).
    tick(4_000);
    let stats = wait_for(&db, "collection", |s| s.head_series_dropped >= 1);
    assert_eq!((stats.head_series_dropped, stats.head_series), (1, 2));
    // Flushed below 4 000: now the paused one goes too.
    tick(5_000);
    let stats = wait_for(&db, "collection", |s| s.head_series_dropped >= 2);
    assert_eq!((stats.head_series_dropped, stats.head_series), (2, 1));
    assert_eq!(all(&db).len(), 3);
}

#[test]
fn a_negative_idle_time_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        head_series_idle_ms: -1,
        ..options()
    };
    assert!(matches!(
        Db::open(dir.path(), options),
        Err(Error::Input(strata::InputError::BadOption(_)))
    ));
}
