//! The streaming read path (`Queryable::select_series` and
//! `SeriesSet::read`) on a database whose series live in several segments,
//! frozen and live head data at once, and on single segment files.

use strata::{
    Db, Matcher, Options, Queryable, Sample, SegmentWriter, SeriesColumns, SeriesKey, SyncMode,
    TimeRange,
};

/// Prometheus' staleness marker: a NaN with a payload that must survive.
const STALE: u64 = 0x7ff0_0000_0000_0002;

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

/// Every series of the set read into (key, [(t, value bits)]).
fn read_all(
    source: &dyn Queryable,
    matchers: &[Matcher],
    range: TimeRange,
) -> Vec<(String, Vec<(i64, u64)>)> {
    let set = source.select_series(matchers, range).unwrap();
    let mut columns = SeriesColumns::default();
    (0..set.len())
        .map(|i| {
            set.read(i, &mut columns).unwrap();
            let bits = columns
                .timestamps_ms
                .iter()
                .zip(&columns.values)
                .map(|(&t, v)| (t, v.to_bits()))
                .collect();
            (set.key(i).to_string(), bits)
        })
        .collect()
}

fn b(v: f64) -> u64 {
    v.to_bits()
}

/// Writes series `a` into two segments with overlapping timestamps and
/// then into the head, overlapping both (see the expected values below).
fn layered_db(dir: &std::path::Path) -> Db {
    let db = Db::open(dir, options()).unwrap();
    let a = db.series(&key("m", "a")).unwrap();
    let z = db.series(&key("m", "z")).unwrap();
    for t in 1..=5 {
        let v = if t == 5 {
            f64::from_bits(STALE)
        } else {
            t as f64
        };
        db.append_ref(&a, t * 1000, v).unwrap();
    }
    db.append_ref(&z, 1000, 100.0).unwrap();
    db.flush().unwrap(); // segment 1: a = 1..4, 5000 stale; z = 1000
    for (t, v) in [(3000, 30.0), (4000, 40.0), (6000, 60.0)] {
        db.append_ref(&a, t, v).unwrap();
    }
    db.flush().unwrap(); // segment 2: a = 3000:30, 4000:40, 6000:60
                         // Head: 2000 starts the chunk, 7000 follows in order, 6000 and 2000
                         // again go to the out-of-order buffer (the second 2000 wins).
    for (t, v) in [(2000, 200.0), (7000, 7.0), (6000, 600.0), (2000, 201.0)] {
        db.append_ref(&a, t, v).unwrap();
    }
    db.append_ref(&a, 8000, f64::from_bits(STALE)).unwrap();
    db
}

/// a after last-write-wins: segment 1 < segment 2 < head.
fn expected_a() -> Vec<(i64, u64)> {
    vec![
        (1000, b(1.0)),
        (2000, b(201.0)), // head's out-of-order rewrite of its own 2000
        (3000, b(30.0)),  // segment 2 over segment 1
        (4000, b(40.0)),
        (5000, STALE),    // only in segment 1: the marker's bits kept
        (6000, b(600.0)), // head over segment 2
        (7000, b(7.0)),
        (8000, STALE),
    ]
}

#[test]
fn sources_merge_last_write_wins_with_payloads_intact() {
    let dir = tempfile::tempdir().unwrap();
    let db = layered_db(dir.path());
    let all = read_all(&db, &[], TimeRange::ALL);
    assert_eq!(
        all,
        vec![
            (r#"m{job="a"}"#.to_owned(), expected_a()),
            (r#"m{job="z"}"#.to_owned(), vec![(1000, b(100.0))]),
        ]
    );
    // A range cuts every source at the same bounds (inclusive).
    let a = [Matcher::equal("job", "a")];
    let middle = read_all(&db, &a, TimeRange::new(2500, 6000));
    let want: Vec<_> = expected_a()
        .into_iter()
        .filter(|&(t, _)| (2500..=6000).contains(&t))
        .collect();
    assert_eq!(middle, vec![(r#"m{job="a"}"#.to_owned(), want)]);

    // select is the same read, materialised.
    let selected = db.select(&a, TimeRange::ALL).unwrap();
    let bits: Vec<_> = selected[0]
        .samples
        .iter()
        .map(|s| (s.timestamp_ms, s.value.to_bits()))
        .collect();
    assert_eq!(bits, expected_a());

    // After a reopen the head comes back from the WAL: same answer, also
    // read-only.
    drop(db);
    let ro = Db::open_read_only(dir.path()).unwrap();
    assert_eq!(read_all(&ro, &a, TimeRange::ALL)[0].1, expected_a());
    drop(ro);
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(read_all(&db, &a, TimeRange::ALL)[0].1, expected_a());
    // Everything flushed into a third segment: still the same.
    db.flush().unwrap();
    assert_eq!(read_all(&db, &a, TimeRange::ALL)[0].1, expected_a());
}

#[test]
fn series_outside_the_range_are_skipped_or_read_empty() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    // a: two samples far apart (one chunk spanning the gap); b: late only.
    db.append(&key("m", "a"), 0, 1.0).unwrap();
    db.append(&key("m", "a"), 10_000, 2.0).unwrap();
    db.append(&key("m", "b"), 9_000, 3.0).unwrap();
    db.flush().unwrap();
    let range = TimeRange::new(1_000, 2_000);
    // b's only chunk ends before the range: not listed. a's chunk spans
    // it: listed, but no sample falls inside.
    let set = db.select_series(&[], range).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.key(0), &key("m", "a"));
    let mut columns = SeriesColumns::default();
    set.read(0, &mut columns).unwrap();
    assert!(columns.is_empty());
    // select leaves empty series out.
    assert!(db.select(&[], range).unwrap().is_empty());
    // Reading past the end reads nothing and clears the buffer.
    columns.timestamps_ms.push(1);
    columns.values.push(1.0);
    set.read(5, &mut columns).unwrap();
    assert!(columns.is_empty());
}

#[test]
fn one_set_read_from_several_threads() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let jobs: Vec<String> = (0..40).map(|i| format!("{i:02}")).collect();
    for (i, job) in jobs.iter().enumerate() {
        let s = db.series(&key("m", job)).unwrap();
        for t in 0..300i64 {
            db.append_ref(&s, t * 10_000, (i as i64 * 1000 + t) as f64)
                .unwrap();
        }
        if i == 20 {
            db.flush().unwrap(); // half of the series end up in a segment
        }
    }
    let set = db.select_series(&[], TimeRange::ALL).unwrap();
    assert_eq!(set.len(), 40);
    let sums: Vec<f64> = std::thread::scope(|scope| {
        let set = &set;
        let handles: Vec<_> = (0..2)
            .map(|half| {
                scope.spawn(move || {
                    let mut columns = SeriesColumns::default();
                    (half * 20..half * 20 + 20)
                        .map(|i| {
                            set.read(i, &mut columns).unwrap();
                            assert_eq!(columns.len(), 300);
                            columns.values.iter().sum::<f64>()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    // Series i holds i*1000 + 0..300: the sum is 300*i*1000 + 44850.
    for (i, sum) in sums.into_iter().enumerate() {
        assert_eq!(sum, 300.0 * i as f64 * 1000.0 + 44_850.0, "series {i}");
    }
}

#[test]
fn a_segment_file_is_queryable_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.seg");
    let mut writer = SegmentWriter::create(&path).unwrap();
    let samples: Vec<Sample> = (0..20_000)
        .map(|i| Sample::new(i * 1000, i as f64))
        .collect();
    writer.add_series(&key("m", "a"), &samples).unwrap();
    writer
        .add_series(&key("m", "b"), &[Sample::new(5, f64::from_bits(STALE))])
        .unwrap();
    writer.finish().unwrap();
    let segment = strata::Segment::open(&path).unwrap();
    // 20,000 samples make three chunks; the range starts in the second.
    assert!(segment.chunk_refs(0).len() >= 3);
    let range = TimeRange::new(10_000_000, 10_004_000);
    let read = read_all(&segment, &[Matcher::equal("job", "a")], range);
    let want: Vec<_> = (10_000..=10_004).map(|i| (i * 1000, b(i as f64))).collect();
    assert_eq!(read, vec![(r#"m{job="a"}"#.to_owned(), want)]);
    let stale = read_all(&segment, &[Matcher::equal("job", "b")], TimeRange::ALL);
    assert_eq!(stale[0].1, vec![(5, STALE)]);
    assert_eq!(
        Queryable::label_values(&segment, "job").unwrap(),
        vec!["a", "b"]
    );
}

#[test]
fn a_read_only_db_refreshes_to_see_a_live_writer() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Db::open(dir.path(), options()).unwrap();
    let s = writer.series(&key("m", "a")).unwrap();
    writer.append_ref(&s, 1_000, 1.0).unwrap();
    writer.flush().unwrap(); // segment 1
    writer.append_ref(&s, 2_000, 2.0).unwrap();
    writer.sync_wal().unwrap();
    let count = |db: &Db| -> usize {
        db.select(&[], TimeRange::ALL)
            .unwrap()
            .iter()
            .map(|s| s.samples.len())
            .sum()
    };
    let mut reader = Db::open_read_only(dir.path()).unwrap();
    assert_eq!(count(&reader), 2);

    // New WAL records and a new series: invisible until refreshed.
    writer.append_ref(&s, 3_000, 3.0).unwrap();
    writer.append(&key("m", "b"), 3_000, 30.0).unwrap();
    writer.sync_wal().unwrap();
    assert_eq!(count(&reader), 2);
    reader.refresh().unwrap();
    assert_eq!(count(&reader), 4);
    assert_eq!(reader.label_values("job"), vec!["a", "b"]);

    // A flush moves everything into a second segment and drops the WAL
    // files: after a refresh every sample is there exactly once.
    writer.flush().unwrap();
    writer.append_ref(&s, 4_000, 4.0).unwrap();
    writer.sync_wal().unwrap();
    reader.refresh().unwrap();
    let a = reader
        .select(&[Matcher::equal("job", "a")], TimeRange::ALL)
        .unwrap();
    let times: Vec<i64> = a[0].samples.iter().map(|s| s.timestamp_ms).collect();
    assert_eq!(times, vec![1_000, 2_000, 3_000, 4_000]);
    assert_eq!(reader.stats().segments, 2);
    assert_eq!(count(&reader), 5);

    // Refreshing the writer itself changes nothing.
    let mut writer = writer;
    writer.refresh().unwrap();
    assert_eq!(count(&writer), 5);
}
