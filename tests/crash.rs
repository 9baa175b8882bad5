//! Crash safety: a child process appends with `SyncMode::Always` and is
//! killed with SIGKILL at random moments, also in the middle of flushes.
//! After every kill the directory must open, hold every sample whose append
//! returned Ok, and nothing that was never written.
//!
//! The child is this test binary itself, running the ignored test
//! `crash_child` with its instructions in environment variables.
//!
//! Also here: the writer lock must not outlive `Db` because another thread
//! of the process spawned a program at the wrong moment (regression test
//! for the flake these crash tests had when run in parallel).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use common::{env_var, ChildTest, Lcg};
use strata::{Db, Error, Options, SeriesKey, SyncMode, TimeRange};

/// The crash tests run in parallel with each other (read), the lock race
/// test alone (write): its spawning threads would make the crash tests'
/// reopen fail too while the race exists, hiding which test found it.
static PROCESS_SPAWNING: RwLock<()> = RwLock::new(());

const SERIES: i64 = 4;

fn series_key(s: i64) -> SeriesKey {
    SeriesKey::from_pairs("crash_test", &[("s", s.to_string())]).unwrap()
}

/// The value the child writes for (series, timestamp): checkable later.
fn value_of(s: i64, ts: i64) -> f64 {
    (ts * 31 + s) as f64 / 7.0
}

fn child_options() -> Options {
    Options {
        sync: SyncMode::Always,
        partition_duration_ms: 200,
        flush_complete_partitions: false,
        ..Options::default()
    }
}

/// Appends forever, printing `ack <series> <ts>` after each Ok append and
/// `flush` before each flush, until killed.
#[test]
#[ignore = "child process of the crash tests"]
fn crash_child() {
    let dir: String = env_var("STRATA_CRASH_DIR");
    let start: i64 = env_var("STRATA_CRASH_START");
    let flush_every: i64 = env_var("STRATA_CRASH_FLUSH_EVERY");
    let db = Db::open(&dir, child_options()).unwrap();
    let handles: Vec<_> = (0..SERIES)
        .map(|s| db.series(&series_key(s)).unwrap())
        .collect();
    println!("ready");
    for i in 0..10_000_000i64 {
        let ts = start + i;
        let s = i % SERIES;
        db.append_ref(&handles[s as usize], ts, value_of(s, ts))
            .unwrap();
        println!("ack {s} {ts}");
        if flush_every > 0 && i % flush_every == flush_every - 1 {
            println!("flush");
            db.flush().unwrap();
        }
    }
}

/// Runs the child until `kill_after` says so, kills it, returns the acks.
/// A child that dies on its own or falls silent fails the test with its
/// exit status and stderr.
fn run_and_kill(
    dir: &Path,
    start: i64,
    flush_every: i64,
    iteration: usize,
    kill_after: &mut dyn FnMut(&str) -> bool,
) -> Vec<(i64, i64)> {
    let mut child = ChildTest::spawn(
        "crash_child",
        &[
            ("STRATA_CRASH_DIR", dir.display().to_string()),
            ("STRATA_CRASH_START", start.to_string()),
            ("STRATA_CRASH_FLUSH_EVERY", flush_every.to_string()),
        ],
    );
    let context = format!("iteration {iteration}");
    let mut acks = Vec::new();
    loop {
        let line = child.next_line(&context);
        acks.extend(parse_ack(&line));
        if kill_after(&line) {
            break;
        }
    }
    let ended = child.kill();
    ended.assert_killed(&context);
    // Acks printed before the kill landed still count.
    acks.extend(ended.unread.iter().filter_map(|line| parse_ack(line)));
    acks
}

fn parse_ack(line: &str) -> Option<(i64, i64)> {
    let rest = line.strip_prefix("ack ")?;
    let (s, ts) = rest.split_once(' ')?;
    Some((s.parse().unwrap(), ts.parse().unwrap()))
}

/// Opens the directory and checks it against everything acknowledged (or
/// found durable by an earlier check). Returns what is present.
fn check(
    dir: &Path,
    acked: &BTreeMap<(i64, i64), f64>,
    iteration: usize,
) -> BTreeMap<(i64, i64), f64> {
    let db = Db::open(dir, child_options())
        .unwrap_or_else(|e| panic!("iteration {iteration}: reopen failed: {e}"));
    let report = db.recovery_report();
    eprintln!(
        "iteration {iteration}: replayed {} samples from {} WAL files, {} torn tails, {} orphan segments removed",
        report.samples_replayed,
        report.wal_files_replayed,
        report.wal_damage.len(),
        report.orphan_segments_removed.len()
    );
    let mut present = BTreeMap::new();
    for series in db.select(&[], TimeRange::ALL).unwrap() {
        let s: i64 = series.key.get("s").unwrap().parse().unwrap();
        for sample in series.samples {
            assert_eq!(
                sample.value.to_bits(),
                value_of(s, sample.timestamp_ms).to_bits(),
                "iteration {iteration}: series {s} ts {} holds a value never written",
                sample.timestamp_ms
            );
            present.insert((s, sample.timestamp_ms), sample.value);
        }
    }
    for key in acked.keys() {
        assert!(
            present.contains_key(key),
            "iteration {iteration}: acknowledged sample {key:?} lost; recovery: {:?}",
            db.recovery_report()
        );
    }
    let unacked = present.keys().filter(|k| !acked.contains_key(k)).count();
    // A single-threaded child has at most one append in flight when killed.
    assert!(
        unacked <= 1,
        "iteration {iteration}: {unacked} samples present that were never acknowledged"
    );
    present
}

/// Decides, line by line of the child's output, when to kill it.
type KillRule = Box<dyn FnMut(&str) -> bool>;

fn crash_loop(flush_every: i64, kill_rule: fn(&mut Lcg) -> KillRule) {
    let _shared = PROCESS_SPAWNING.read().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Lcg::from_clock("crash test");
    let mut acked = BTreeMap::new();
    let mut start = 0;
    for iteration in 0..22 {
        let mut kill_after = kill_rule(&mut rng);
        for (s, ts) in run_and_kill(dir.path(), start, flush_every, iteration, &mut *kill_after) {
            acked.insert((s, ts), value_of(s, ts));
        }
        let present = check(dir.path(), &acked, iteration);
        start = present
            .keys()
            .map(|&(_, ts)| ts + 1)
            .max()
            .unwrap_or(0)
            .max(start);
        // What survived a crash must survive every later one too.
        acked.extend(present);
    }
    assert!(
        acked.len() > 22,
        "the children acknowledged only {} samples",
        acked.len()
    );
}

#[test]
fn sigkill_during_appends_loses_no_acknowledged_sample() {
    crash_loop(0, |rng| {
        let kill_at_ack = 1 + rng.below(300);
        let mut seen = 0;
        Box::new(move |line: &str| {
            if line.starts_with("ack ") {
                seen += 1;
            }
            seen >= kill_at_ack
        })
    });
}

#[test]
fn sigkill_during_flush_loses_no_acknowledged_sample() {
    crash_loop(40, |rng| {
        let kill_at_flush = 1 + rng.below(3);
        // 0 = kill right as the flush starts; otherwise a few acks later,
        // which with a flush every 40 appends often lands in the next one.
        let extra_acks = rng.below(3) * rng.below(30);
        // and when killing at a flush, after 0..2 ms into it
        let delay_us = rng.below(2_000);
        let mut flushes = 0;
        let mut acks_after = 0;
        Box::new(move |line: &str| {
            if line == "flush" {
                flushes += 1;
                if flushes >= kill_at_flush && extra_acks == 0 {
                    std::thread::sleep(Duration::from_micros(delay_us));
                }
            } else if flushes >= kill_at_flush && line.starts_with("ack ") {
                acks_after += 1;
            }
            flushes >= kill_at_flush && acks_after >= extra_acks
        })
    });
}

/// Opens `STRATA_LOCK_DIR` for writing, appends one sample, prints
/// `outcome: opened` or `outcome: failed: <error>`, and exits. (The test
/// harness prints its `test lock_child ... ` before it on the same line.)
#[test]
#[ignore = "child process of the lock race test"]
fn lock_child() {
    let dir: String = env_var("STRATA_LOCK_DIR");
    let ts: i64 = env_var("STRATA_LOCK_TS");
    match Db::open(&dir, child_options()) {
        Ok(db) => {
            db.append(&series_key(1), ts, value_of(1, ts)).unwrap();
            println!("outcome: opened");
        }
        Err(e) => println!("outcome: failed: {e:?}"),
    }
}

/// Sets the flag when dropped, also while a panic unwinds.
struct SetOnDrop<'a>(&'a AtomicBool);
impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Once a `Db` is dropped, its directory must open again, in this process
/// and in a child, even while other threads keep spawning programs.
///
/// Regression test for: the LOCK file's flock belongs to the open file
/// description, which every process forked while the `Db` is open shares
/// until it execs (or exits). A program spawned by another thread at that
/// moment kept the lock alive past `drop(db)`, and the next open failed with
/// `Locked { pid: <this very process> }` ("child stopped talking" in the
/// crash tests). Repeats open/drop/reopen so that the window is hit.
#[test]
fn dropped_db_is_not_kept_locked_by_concurrently_spawned_programs() {
    let _exclusive = PROCESS_SPAWNING.write().unwrap_or_else(|e| e.into_inner());
    const ROUNDS: i64 = 150;
    let dir = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    let mut in_process_locked = Vec::new();
    let mut child_locked = Vec::new();
    std::thread::scope(|scope| {
        let _stop_spawners = SetOnDrop(&stop);
        for _ in 0..2 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let status = Command::new("/bin/true").status().unwrap();
                    assert!(status.success());
                }
            });
        }
        let mut ts = 0;
        for round in 0..ROUNDS {
            let db = match Db::open(dir.path(), child_options()) {
                Ok(db) => db,
                Err(Error::Locked { pid, .. }) => {
                    in_process_locked.push((round, pid));
                    continue;
                }
                Err(e) => panic!("round {round}: open failed: {e}"),
            };
            ts += 1;
            db.append(&series_key(0), ts, value_of(0, ts)).unwrap();
            drop(db);
            ts += 1;
            let mut child = ChildTest::spawn(
                "lock_child",
                &[
                    ("STRATA_LOCK_DIR", dir.path().display().to_string()),
                    ("STRATA_LOCK_TS", ts.to_string()),
                ],
            );
            let context = format!("round {round}");
            let answer = loop {
                let line = child.next_line(&context);
                if let Some((_, outcome)) = line.split_once("outcome: ") {
                    break outcome.to_string();
                }
            };
            let ended = child.wait();
            assert!(ended.status.success(), "{context}: {}", ended.describe());
            match answer.as_str() {
                "opened" => {}
                failed if failed.contains("Locked") => child_locked.push((round, answer)),
                failed => panic!("{context}: the child could not open the directory: {failed}"),
            }
        }
    });
    assert!(
        in_process_locked.is_empty() && child_locked.is_empty(),
        "of {ROUNDS} rounds, the directory was still locked after drop(db) for {} reopens in \
         this process (pid {}; first: {:?}) and for {} children (first: {:?})",
        in_process_locked.len(),
        std::process::id(),
        in_process_locked.first(),
        child_locked.len(),
        child_locked.first(),
    );
}
