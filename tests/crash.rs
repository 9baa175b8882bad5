//! Crash safety: a child process appends with `SyncMode::Always` and is
//! killed with SIGKILL at random moments, also in the middle of flushes.
//! After every kill the directory must open, hold every sample whose append
//! returned Ok, and nothing that was never written.
//!
//! The child is this test binary itself, running the ignored test
//! `crash_child` with its instructions in environment variables.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use strata::{Db, Options, SeriesKey, SyncMode, TimeRange};

const SERIES: i64 = 4;

fn series_key(s: i64) -> SeriesKey {
    SeriesKey::new("crash_test", &[("s", s.to_string())]).unwrap()
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
    let dir = std::env::var("STRATA_CRASH_DIR").expect("STRATA_CRASH_DIR");
    let start: i64 = std::env::var("STRATA_CRASH_START")
        .unwrap()
        .parse()
        .unwrap();
    let flush_every: i64 = std::env::var("STRATA_CRASH_FLUSH_EVERY")
        .unwrap()
        .parse()
        .unwrap();
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

struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Runs the child until `kill_after` says so, kills it, returns the acks.
fn run_and_kill(
    dir: &std::path::Path,
    start: i64,
    flush_every: i64,
    kill_after: &mut dyn FnMut(&str) -> bool,
) -> Vec<(i64, i64)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("STRATA_CRASH_DIR", dir)
        .env("STRATA_CRASH_START", start.to_string())
        .env("STRATA_CRASH_FLUSH_EVERY", flush_every.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("child stopped talking");
        if let Some(rest) = line.strip_prefix("ack ") {
            let mut parts = rest.split(' ').map(|p| p.parse::<i64>().unwrap());
            acks.push((parts.next().unwrap(), parts.next().unwrap()));
        }
        if kill_after(&line) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    // Acks printed before the kill landed still count.
    for line in rx.try_iter() {
        if let Some(rest) = line.strip_prefix("ack ") {
            let mut parts = rest.split(' ').map(|p| p.parse::<i64>().unwrap());
            acks.push((parts.next().unwrap(), parts.next().unwrap()));
        }
    }
    acks
}

/// Opens the directory and checks it against everything acknowledged (or
/// found durable by an earlier check). Returns what is present.
fn check(
    dir: &std::path::Path,
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
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let mut rng = Lcg(seed);
    let mut acked = BTreeMap::new();
    let mut start = 0;
    for iteration in 0..22 {
        let mut kill_after = kill_rule(&mut rng);
        for (s, ts) in run_and_kill(dir.path(), start, flush_every, &mut *kill_after) {
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
