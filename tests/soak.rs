//! Soak: kill -9 a busy writer process again and again on one directory.
//!
//! Each cycle starts a child (this test binary running the ignored test
//! `soak_child`) with several writer threads (`append_ref` and
//! `append_batch`, `SyncMode::Always`), a reader thread checking its own
//! acknowledged writes through `select`/`find_series`, an explicit flusher,
//! and background flushes of small partitions, so that kills land in
//! appends, group commits and flushes alike. Meanwhile the parent opens the
//! directory read-only again and again. After a random short delay the
//! parent kills the child with SIGKILL, reopens the directory for writing
//! and checks: every acknowledged sample is there with its value, nothing
//! else is except the at most one write per writer thread in flight at the
//! kill, nothing rejected is there, and no sample is stored twice in the
//! segments. The next cycle continues on the same directory (a fresh one
//! every `STRATA_SOAK_CYCLES_PER_DIR` cycles, default 100).
//!
//! Not part of CI (it runs for minutes):
//! `STRATA_SOAK_CYCLES=1000 cargo test --release --all-features --test soak -- --ignored --nocapture --exact soak_kill9_writers_readers_and_flushes`
//! (default 50 cycles).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{env_var, ChildTest, Lcg};
use strata::{
    Db, Error, InputError, Manifest, Options, Segment, SegmentMeta, SeriesKey, SeriesRef, SyncMode,
    TimeRange,
};

const WRITERS: i64 = 4;
const SERIES_PER_WRITER: i64 = 4;
const SERIES: i64 = WRITERS * SERIES_PER_WRITER;
/// Longest a cycle lets the child run before the kill.
const MAX_RUN: Duration = Duration::from_millis(1_500);

fn key(s: i64) -> SeriesKey {
    SeriesKey::from_pairs("soak", &[("s", s.to_string())]).unwrap()
}

fn value_of(s: i64, ts: i64) -> f64 {
    (ts * 131 + s) as f64 / 11.0
}

fn options() -> Options {
    Options {
        sync: SyncMode::Always,
        // Timestamps come from a counter, one per sample: at thousands of
        // samples a second, partitions of 2000 complete every run, so
        // background flushes happen during kills, and there are not so
        // many segments (nothing compacts them yet) that opens crawl.
        partition_duration_ms: 2_000,
        out_of_order_window_ms: 1_000,
        flush_complete_partitions: true,
        ..Options::default()
    }
}

/// Writer `w` owns series `w * SERIES_PER_WRITER ..`; even writers use
/// `append_ref`, odd ones `append_batch` over all their series.
///
/// Protocol, one line each (stdout): `op <w> <n> <s>:<ts>...` before
/// writer `w`'s `n`th write, `ack <w> <n>` after it returned Ok, or
/// `ack <w> <n> rejected <i>...` (indices rejected as too old), `flush` /
/// `flushed` around explicit flushes, `bad <what>` before aborting on
/// anything unexpected.
#[test]
#[ignore = "child process of the soak test"]
fn soak_child() {
    let dir: String = env_var("STRATA_SOAK_DIR");
    let start: i64 = env_var("STRATA_SOAK_START");
    let seed: u64 = env_var("STRATA_SOAK_SEED");
    let db = Db::open(&dir, options()).unwrap_or_else(|e| bad(&format!("open: {e}")));
    let handles: Vec<SeriesRef> = (0..SERIES).map(|s| db.series(&key(s)).unwrap()).collect();
    // Per series: samples present (earlier runs plus acknowledged now) and
    // the newest acknowledged timestamp, for the reader's checks.
    let acked: Vec<Mutex<(u64, i64)>> = {
        let mut state = vec![(0u64, i64::MIN); SERIES as usize];
        for series in db.select(&[], TimeRange::ALL).unwrap() {
            let s: usize = series.key.get("s").unwrap().parse().unwrap();
            state[s] = (
                series.samples.len() as u64,
                series.samples.last().map_or(i64::MIN, |x| x.timestamp_ms),
            );
        }
        state.into_iter().map(Mutex::new).collect()
    };
    let clock = AtomicI64::new(start);
    println!("ready");
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let (db, handles, acked, clock) = (&db, &handles, &acked, &clock);
            scope.spawn(move || writer(db, w, handles, acked, clock));
        }
        scope.spawn(|| reader(&db, &acked));
        scope.spawn(|| {
            let mut rng = Lcg(seed);
            loop {
                std::thread::sleep(Duration::from_millis(50 + rng.below(500)));
                println!("flush");
                if let Err(e) = db.flush() {
                    bad(&format!("flush: {e}"));
                }
                println!("flushed");
            }
        });
    });
}

fn writer(db: &Db, w: i64, handles: &[SeriesRef], acked: &[Mutex<(u64, i64)>], clock: &AtomicI64) {
    let owned: Vec<i64> = (0..SERIES_PER_WRITER)
        .map(|j| w * SERIES_PER_WRITER + j)
        .collect();
    for n in 0u64.. {
        let samples: Vec<(i64, i64)> = if w % 2 == 0 {
            let s = owned[(n % SERIES_PER_WRITER as u64) as usize];
            vec![(s, clock.fetch_add(1, Ordering::Relaxed))]
        } else {
            owned
                .iter()
                .map(|&s| (s, clock.fetch_add(1, Ordering::Relaxed)))
                .collect()
        };
        let listed: Vec<String> = samples.iter().map(|(s, ts)| format!("{s}:{ts}")).collect();
        println!("op {w} {n} {}", listed.join(" "));
        let rejected: Vec<usize> = if let [(s, ts)] = samples[..] {
            match db.append_ref(&handles[s as usize], ts, value_of(s, ts)) {
                Ok(()) => vec![],
                Err(Error::Input(InputError::SampleTooOld { .. })) => vec![0],
                Err(e) => bad(&format!("writer {w}: append_ref: {e}")),
            }
        } else {
            let batch: Vec<_> = samples
                .iter()
                .map(|&(s, ts)| (&handles[s as usize], ts, value_of(s, ts)))
                .collect();
            match db.append_batch(&batch) {
                Ok(outcome) => outcome.rejected.iter().map(|(i, _)| *i).collect(),
                Err(e) => bad(&format!("writer {w}: append_batch: {e}")),
            }
        };
        for (i, &(s, ts)) in samples.iter().enumerate() {
            if !rejected.contains(&i) {
                let mut state = acked[s as usize].lock().unwrap();
                *state = (state.0 + 1, ts);
            }
        }
        if rejected.is_empty() {
            println!("ack {w} {n}");
        } else {
            let listed: Vec<String> = rejected.iter().map(|i| i.to_string()).collect();
            println!("ack {w} {n} rejected {}", listed.join(" "));
        }
    }
}

/// Reads while the writers write: every series is found, and `select`
/// returns, per series, exactly the samples acknowledged up to the newest
/// acknowledged one, with their values.
fn reader(db: &Db, acked: &[Mutex<(u64, i64)>]) {
    loop {
        let snapshot: Vec<(u64, i64)> = acked.iter().map(|m| *m.lock().unwrap()).collect();
        let found = db.find_series(&[]);
        if found.len() != SERIES as usize {
            bad(&format!("reader: find_series found {} series", found.len()));
        }
        for series in db.select(&[], TimeRange::ALL).unwrap() {
            let s: usize = series.key.get("s").unwrap().parse().unwrap();
            let (count, newest) = snapshot[s];
            let mut seen = 0u64;
            let mut previous = i64::MIN;
            for sample in &series.samples {
                let ts = sample.timestamp_ms;
                if ts <= previous || sample.value.to_bits() != value_of(s as i64, ts).to_bits() {
                    bad(&format!(
                        "reader: series {s} sample {sample:?} after {previous}"
                    ));
                }
                previous = ts;
                seen += u64::from(ts <= newest);
            }
            if seen != count {
                bad(&format!(
                    "reader: series {s} shows {seen} samples up to {newest}, {count} acknowledged"
                ));
            }
        }
    }
}

fn bad(what: &str) -> ! {
    println!("bad {what}");
    std::process::abort();
}

/// What the parent knows per series: acknowledged (or found durable)
/// timestamps, oldest first.
type Durable = Vec<Vec<i64>>;

/// Figures over the whole soak.
#[derive(Default, Debug)]
struct Figures {
    cycles: u64,
    acknowledged: u64,
    rejected: u64,
    in_flight_at_kill: u64,
    in_flight_survived: u64,
    kills_in_explicit_flush: u64,
    torn_tails: u64,
    other_wal_damage: u64,
    orphan_segments_removed: u64,
    quarantined: u64,
    samples_without_series: u64,
    read_only_opens: u64,
    segment_scans: u64,
}

/// One child run as the parent saw it.
#[derive(Default)]
struct Run {
    /// Writes begun and not yet answered, per writer.
    pending: BTreeMap<i64, (u64, Vec<(i64, i64)>)>,
    rejected: BTreeSet<(i64, i64)>,
    max_ts: i64,
    in_flush: bool,
}

impl Run {
    /// Applies one line of the child; returns acknowledged samples.
    fn line(&mut self, line: &str, context: &str) -> Vec<(i64, i64)> {
        let mut words = line.split(' ');
        match words.next() {
            Some("op") => {
                let w: i64 = words.next().unwrap().parse().unwrap();
                let n: u64 = words.next().unwrap().parse().unwrap();
                let samples: Vec<(i64, i64)> = words
                    .map(|p| {
                        let (s, ts) = p.split_once(':').unwrap();
                        (s.parse().unwrap(), ts.parse().unwrap())
                    })
                    .collect();
                self.max_ts = samples
                    .iter()
                    .map(|&(_, ts)| ts)
                    .fold(self.max_ts, i64::max);
                let earlier = self.pending.insert(w, (n, samples));
                assert!(
                    earlier.is_none(),
                    "{context}: writer {w} began {n} before answering"
                );
                vec![]
            }
            Some("ack") => {
                let w: i64 = words.next().unwrap().parse().unwrap();
                let n: u64 = words.next().unwrap().parse().unwrap();
                let (begun, samples) = self.pending.remove(&w).unwrap();
                assert_eq!(begun, n, "{context}: writer {w}");
                let rejected: Vec<usize> = match words.next() {
                    Some("rejected") => words.map(|i| i.parse().unwrap()).collect(),
                    _ => vec![],
                };
                let mut acked = Vec::new();
                for (i, sample) in samples.into_iter().enumerate() {
                    if rejected.contains(&i) {
                        self.rejected.insert(sample);
                    } else {
                        acked.push(sample);
                    }
                }
                acked
            }
            Some("flush") => {
                self.in_flush = true;
                vec![]
            }
            Some("flushed") => {
                self.in_flush = false;
                vec![]
            }
            Some("bad") => panic!("{context}: the child found: {line}"),
            _ => vec![],
        }
    }
}

fn record(durable: &Mutex<Durable>, samples: &[(i64, i64)]) {
    let mut durable = durable.lock().unwrap();
    for &(s, ts) in samples {
        let list = &mut durable[s as usize];
        // One writer per series and a shared increasing clock: a series'
        // acknowledgements arrive in timestamp order.
        assert!(
            list.last().is_none_or(|&last| last < ts),
            "series {s}: {ts} after {list:?}"
        );
        list.push(ts);
    }
}

/// Opens the directory read-only until told to stop: each view holds,
/// per series, exactly the samples acknowledged before the open began, up
/// to the newest of them.
fn read_only_opens(dir: &std::path::Path, durable: &Mutex<Durable>, stop: &AtomicBool) -> u64 {
    let mut opens = 0;
    while !stop.load(Ordering::Relaxed) {
        let before: Vec<(usize, i64)> = durable
            .lock()
            .unwrap()
            .iter()
            .map(|l| (l.len(), l.last().copied().unwrap_or(i64::MIN)))
            .collect();
        let db = Db::open_read_only(dir).unwrap_or_else(|e| panic!("read-only open: {e}"));
        opens += 1;
        for series in db.select(&[], TimeRange::ALL).unwrap() {
            let s: usize = series.key.get("s").unwrap().parse().unwrap();
            let (count, newest) = before[s];
            let mut seen = 0;
            for sample in &series.samples {
                assert_eq!(
                    sample.value.to_bits(),
                    value_of(s as i64, sample.timestamp_ms).to_bits(),
                    "read-only view: series {s} at {}",
                    sample.timestamp_ms
                );
                seen += usize::from(sample.timestamp_ms <= newest);
            }
            assert_eq!(
                seen,
                count,
                "read-only view: series {s} shows {seen} samples up to {newest}, {count} acknowledged before the open; recovery {:?}",
                db.recovery_report()
            );
        }
    }
    opens
}

/// Reopens for writing after a kill and checks the directory against what
/// the parent knows; samples of writes in flight at the kill that survived
/// become durable.
fn verify(
    dir: &std::path::Path,
    durable: &Mutex<Durable>,
    run: &Run,
    figures: &mut Figures,
    context: &str,
) {
    let db = Db::open(
        dir,
        Options {
            flush_complete_partitions: false,
            ..options()
        },
    )
    .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
    let report = db.recovery_report().clone();
    for damage in &report.wal_damage {
        if damage.torn_tail {
            figures.torn_tails += 1;
        } else {
            figures.other_wal_damage += 1;
        }
    }
    figures.orphan_segments_removed += report.orphan_segments_removed.len() as u64;
    figures.quarantined += report.quarantined.len() as u64;
    figures.samples_without_series += report.samples_without_series;
    assert!(
        report.wal_damage.iter().all(|d| d.torn_tail) && report.quarantined.is_empty(),
        "{context}: a kill left more than a torn tail: {:?}",
        report.actions()
    );
    let mut present: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for series in db.select(&[], TimeRange::ALL).unwrap() {
        let s: i64 = series.key.get("s").unwrap().parse().unwrap();
        let list = present.entry(s).or_default();
        for sample in &series.samples {
            assert_eq!(
                sample.value.to_bits(),
                value_of(s, sample.timestamp_ms).to_bits(),
                "{context}: series {s} at {} holds a value never written",
                sample.timestamp_ms
            );
            list.push(sample.timestamp_ms);
        }
    }
    let in_flight: BTreeSet<(i64, i64)> = run
        .pending
        .values()
        .flat_map(|(_, samples)| samples.iter().copied())
        .collect();
    figures.in_flight_at_kill += in_flight.len() as u64;
    let mut durable = durable.lock().unwrap();
    for s in 0..SERIES {
        let have: BTreeSet<i64> = present.get(&s).into_iter().flatten().copied().collect();
        let known = &mut durable[s as usize];
        let lost: Vec<_> = known.iter().filter(|ts| !have.contains(ts)).collect();
        assert!(
            lost.is_empty(),
            "{context}: series {s} lost acknowledged samples {lost:?}; recovery {:?}",
            report.actions()
        );
        let known_set: BTreeSet<i64> = known.iter().copied().collect();
        for &ts in have.difference(&known_set) {
            assert!(
                in_flight.contains(&(s, ts)),
                "{context}: series {s} holds {ts}, never acknowledged nor in flight (rejected: {})",
                run.rejected.contains(&(s, ts))
            );
            figures.in_flight_survived += 1;
        }
        *known = have.into_iter().collect();
    }
}

/// Every (series, timestamp) in at most one listed segment: no flush was
/// published twice. (Each sample is written once, so this holds.)
fn assert_segments_disjoint(dir: &std::path::Path, context: &str) {
    let manifest = Manifest::load(dir).unwrap().unwrap_or_default();
    let mut seen: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for meta in &manifest.segments {
        let path = dir.join("segments").join(SegmentMeta::file_name(meta.seq));
        let segment = Segment::open(&path).unwrap();
        for id in 0..segment.series_count() as u32 {
            let s: i64 = segment
                .series_key(id)
                .unwrap()
                .get("s")
                .unwrap()
                .parse()
                .unwrap();
            for sample in segment.read_samples(id, TimeRange::ALL).unwrap() {
                if let Some(other) = seen.insert((s, sample.timestamp_ms), meta.seq) {
                    panic!(
                        "{context}: series {s} at {} is in segments {other} and {}",
                        sample.timestamp_ms, meta.seq
                    );
                }
            }
        }
    }
}

#[test]
#[ignore = "soak: minutes of kill -9 cycles; STRATA_SOAK_CYCLES sets how many"]
fn soak_kill9_writers_readers_and_flushes() {
    let cycles: u64 = std::env::var("STRATA_SOAK_CYCLES")
        .map(|c| c.parse().expect("STRATA_SOAK_CYCLES"))
        .unwrap_or(50);
    // Every cycle re-reads the whole directory, and nothing compacts its
    // segments yet, so a cycle costs more the more came before it: a fresh
    // directory every this many cycles keeps 1,000 cycles within the hour.
    let cycles_per_dir: u64 = std::env::var("STRATA_SOAK_CYCLES_PER_DIR")
        .map(|c| c.parse().expect("STRATA_SOAK_CYCLES_PER_DIR"))
        .unwrap_or(100)
        .max(1);
    let mut dir = tempfile::tempdir().unwrap();
    let mut rng = Lcg::from_clock("soak");
    let durable = Mutex::new(vec![Vec::new(); SERIES as usize]);
    let mut figures = Figures::default();
    let mut verified_before = 0;
    let mut start = 0;
    for cycle in 0..cycles {
        if cycle > 0 && cycle % cycles_per_dir == 0 {
            assert_segments_disjoint(
                dir.path(),
                &format!("cycle {cycle}, before a new directory"),
            );
            verified_before += durable.lock().unwrap().iter().map(Vec::len).sum::<usize>();
            *durable.lock().unwrap() = vec![Vec::new(); SERIES as usize];
            dir = tempfile::tempdir().unwrap();
            start = 0;
        }
        let context = format!("cycle {cycle}");
        let mut child = ChildTest::spawn(
            "soak_child",
            &[
                ("STRATA_SOAK_DIR", dir.path().display().to_string()),
                ("STRATA_SOAK_START", start.to_string()),
                ("STRATA_SOAK_SEED", rng.below(u64::MAX).to_string()),
            ],
        );
        let mut run = Run {
            max_ts: start - 1,
            ..Run::default()
        };
        while !child.next_line(&context).contains("ready") {}
        let stop = AtomicBool::new(false);
        let kill_at = Instant::now() + MAX_RUN.mul_f64(rng.below(1_000) as f64 / 1_000.0);
        figures.read_only_opens += std::thread::scope(|scope| {
            let reading = scope.spawn(|| read_only_opens(dir.path(), &durable, &stop));
            while let Some(line) = child.next_line_until(kill_at, &context) {
                let acked = run.line(&line, &context);
                figures.acknowledged += acked.len() as u64;
                record(&durable, &acked);
            }
            let ended = child.kill();
            ended.assert_killed(&context);
            for line in &ended.unread {
                let acked = run.line(line, &context);
                figures.acknowledged += acked.len() as u64;
                record(&durable, &acked);
            }
            stop.store(true, Ordering::Relaxed);
            reading
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        figures.rejected += run.rejected.len() as u64;
        figures.kills_in_explicit_flush += u64::from(run.in_flush);
        verify(dir.path(), &durable, &run, &mut figures, &context);
        if cycle % 10 == 9 || cycle + 1 == cycles {
            assert_segments_disjoint(dir.path(), &context);
            figures.segment_scans += 1;
        }
        figures.cycles += 1;
        start = run.max_ts + 1;
        if cycle % 10 == 9 {
            eprintln!("soak: {context} done, {figures:?}");
        }
    }
    let verified: usize =
        verified_before + durable.lock().unwrap().iter().map(Vec::len).sum::<usize>();
    let lost = figures.acknowledged + figures.in_flight_survived - verified as u64;
    println!(
        "soak: {} cycles, {} samples acknowledged, {} verified present, {} lost, \
         {} rejected as too old (verified absent), {} samples in flight at the kills ({} survived), \
         {} kills during an explicit flush, recovery: {} torn WAL tails truncated, \
         {} other WAL damage, {} orphan segments removed, {} files quarantined, \
         {} samples without series; {} read-only opens raced the writer; \
         segments checked disjoint {} times",
        figures.cycles,
        figures.acknowledged,
        verified,
        lost,
        figures.rejected,
        figures.in_flight_at_kill,
        figures.in_flight_survived,
        figures.kills_in_explicit_flush,
        figures.torn_tails,
        figures.other_wal_damage,
        figures.orphan_segments_removed,
        figures.quarantined,
        figures.samples_without_series,
        figures.read_only_opens,
        figures.segment_scans,
    );
    assert_eq!(lost, 0);
}
