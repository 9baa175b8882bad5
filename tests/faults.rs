//! Injected I/O failures at every storage step (strata::fault): a failed
//! WAL write, fsync or file creation, a failed segment write, fsync or
//! rename, a failed manifest update, a failed WAL deletion after a
//! checkpoint. For each: the call returns a typed error, the still-open
//! database answers reads with exactly what was acknowledged, and after a
//! reopen every acknowledged sample is there exactly once, nothing never
//! written appears, and the directory is tidy (manifest decodes, listed
//! segments open, no temporary files, no WAL file the manifest no longer
//! needs).
//!
//! Two outcomes of a failure are expected, depending on whether what
//! reached the disk is still known:
//! - a WAL failure poisons the database: the first call gets `Error::Io`,
//!   every later write `Error::Poisoned` until reopened, because how much of
//!   the record reached the file is unknown;
//! - a flush failure (segment, manifest, WAL deletion) returns `Error::Io`
//!   and does not poison: the WAL was rotated and fsynced before any
//!   segment was written, so every sample is still in the WAL and in
//!   memory, and a later flush retries.
//!
//! The armed fault set is process-global: every test holds `SERIAL` through
//! a [`FaultScope`], which also disarms everything when the test ends or
//! fails.

#![cfg(feature = "fault-injection")]

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use strata::fault::{self, Fault};
use strata::{
    Db, Error, Manifest, MetricMetadata, MetricType, Options, RecoveryReport, Segment, SegmentMeta,
    SeriesKey, SeriesRef, SyncMode, TimeRange,
};

static SERIAL: Mutex<()> = Mutex::new(());

/// Exclusive use of the fault points; disarms them all when dropped.
struct FaultScope {
    _serial: MutexGuard<'static, ()>,
}

fn fault_scope() -> FaultScope {
    // A test that failed while holding the lock poisons it; the next test
    // still runs (and starts from a disarmed set).
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fault::clear();
    FaultScope { _serial: serial }
}

impl Drop for FaultScope {
    fn drop(&mut self) {
        fault::clear();
    }
}

const SERIES: i64 = 3;
const STEP_MS: i64 = 100;
const PARTITION_MS: i64 = 1_000;
/// Appended before each fault: 3 partitions, so a flush writes 3 segments.
const BEFORE: usize = 30;

fn key(s: i64) -> SeriesKey {
    SeriesKey::from_pairs("fault_test", &[("s", s.to_string())]).unwrap()
}

fn value_of(s: i64, ts: i64) -> f64 {
    (ts * 17 + s) as f64 / 3.0
}

fn options() -> Options {
    Options {
        sync: SyncMode::Always,
        partition_duration_ms: PARTITION_MS,
        // Flushes happen when the test says so: the background thread must
        // not reach an armed point first.
        flush_complete_partitions: false,
        ..Options::default()
    }
}

type Samples = BTreeMap<(i64, i64), f64>;

/// A database under test and what it was told.
struct Fixture {
    dir: tempfile::TempDir,
    options: Options,
    db: Option<Db>,
    handles: Vec<SeriesRef>,
    /// Appends that returned Ok (and samples a reopen found): present
    /// exactly once, always.
    acked: Samples,
    /// Appends that failed with an I/O error: not visible before a reopen
    /// (they never reached the head); after one they may be, since part or
    /// all of their record may have reached the WAL.
    unknown: Samples,
    /// Appends refused because the database was poisoned: never stored.
    refused: Samples,
    next: i64,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_options(options())
    }

    fn with_options(options: Options) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), options.clone()).unwrap();
        let handles = (0..SERIES).map(|s| db.series(&key(s)).unwrap()).collect();
        Fixture {
            dir,
            options,
            db: Some(db),
            handles,
            acked: Samples::new(),
            unknown: Samples::new(),
            refused: Samples::new(),
            next: 0,
        }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The next sample of a round robin over the series, time increasing.
    fn next_sample(&mut self) -> (i64, i64, f64) {
        let i = self.next;
        self.next += 1;
        let (s, ts) = (i % SERIES, i * STEP_MS);
        (s, ts, value_of(s, ts))
    }

    fn append_acked(&mut self, n: usize) {
        for _ in 0..n {
            self.append().unwrap();
        }
    }

    /// One `append_ref`, recorded by its outcome.
    fn append(&mut self) -> Result<(), Error> {
        let (s, ts, v) = self.next_sample();
        let result = self.db().append_ref(&self.handles[s as usize], ts, v);
        self.record(&[(s, ts, v)], &result);
        result
    }

    /// One `append_batch` of `n` samples, recorded by its outcome.
    fn append_batch(&mut self, n: usize) -> Result<(), Error> {
        let samples: Vec<_> = (0..n).map(|_| self.next_sample()).collect();
        let batch: Vec<_> = samples
            .iter()
            .map(|&(s, ts, v)| (&self.handles[s as usize], ts, v))
            .collect();
        let result = self.db().append_batch(&batch).map(|outcome| {
            assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
        });
        self.record(&samples, &result);
        result
    }

    fn record(&mut self, samples: &[(i64, i64, f64)], result: &Result<(), Error>) {
        let into = match result {
            Ok(()) => &mut self.acked,
            Err(Error::Poisoned(_)) => &mut self.refused,
            Err(_) => &mut self.unknown,
        };
        into.extend(samples.iter().map(|&(s, ts, v)| ((s, ts), v)));
    }

    /// Every write path refuses with `Poisoned` until reopened.
    fn assert_poisoned(&mut self) {
        let single = self.append();
        assert!(matches!(single, Err(Error::Poisoned(_))), "{single:?}");
        let batch = self.append_batch(SERIES as usize);
        assert!(matches!(batch, Err(Error::Poisoned(_))), "{batch:?}");
        let flush = self.db().flush();
        assert!(matches!(flush, Err(Error::Poisoned(_))), "{flush:?}");
    }

    /// The open database shows exactly the acknowledged samples.
    fn assert_reads_exact(&self, context: &str) {
        let present = read_all(self.db());
        assert_same(&present, &self.acked, context);
        let found = self.db().find_series(&[]);
        assert_eq!(found.len(), SERIES as usize, "{context}: {found:?}");
    }

    /// Drops the database, disarms every point, reopens; checks that what
    /// is there is everything acknowledged plus possibly failed appends,
    /// and that the directory is tidy. Failed appends found become
    /// acknowledged (they are durable now), the others are gone for good.
    fn reopen(&mut self, context: &str) -> RecoveryReport {
        self.handles.clear();
        self.db = None;
        fault::clear();
        let db = Db::open(self.path(), self.options.clone())
            .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
        let present = read_all(&db);
        for (k, v) in &self.acked {
            assert_eq!(
                present.get(k).map(|p| p.to_bits()),
                Some(v.to_bits()),
                "{context}: acknowledged sample {k:?} lost or changed; recovery {:?}",
                db.recovery_report()
            );
        }
        for (k, v) in &present {
            if !self.acked.contains_key(k) {
                let failed = self.unknown.get(k);
                assert_eq!(
                    failed.map(|f| f.to_bits()),
                    Some(v.to_bits()),
                    "{context}: sample {k:?} = {v} present but never acknowledged nor attempted \
                     (refused while poisoned: {})",
                    self.refused.contains_key(k)
                );
            }
        }
        self.acked = present;
        self.unknown.clear();
        self.refused.clear();
        self.handles = (0..SERIES).map(|s| db.series(&key(s)).unwrap()).collect();
        let report = db.recovery_report().clone();
        self.db = Some(db);
        check_directory(self.path(), context);
        report
    }

    /// Closes (flushing everything), then checks on disk that the segments
    /// hold each sample exactly once, and that the next open replays
    /// nothing and finds the same samples.
    fn assert_exactly_once_on_disk(&mut self, context: &str) {
        self.handles.clear();
        self.db.take().unwrap().close().unwrap();
        let manifest = Manifest::load(self.path()).unwrap().unwrap();
        let mut on_disk = Samples::new();
        let mut stored = 0u64;
        for meta in &manifest.segments {
            let segment = Segment::open(segment_path(self.path(), meta)).unwrap();
            for id in 0..segment.series_count() as u32 {
                let key = segment.series_key(id).unwrap();
                let s: i64 = key.get("s").unwrap().parse().unwrap();
                for sample in segment.read_samples(id, TimeRange::ALL).unwrap() {
                    stored += 1;
                    on_disk.insert((s, sample.timestamp_ms), sample.value);
                }
            }
        }
        assert_eq!(
            stored,
            on_disk.len() as u64,
            "{context}: segments hold {} samples for {} distinct ones: a flush was published \
             twice; manifest {manifest:?}",
            stored,
            on_disk.len()
        );
        assert_same(&on_disk, &self.acked, context);
        let db = Db::open(self.path(), self.options.clone()).unwrap();
        let report = db.recovery_report();
        assert!(report.is_clean(), "{context}: {report:?}");
        assert_eq!(report.samples_replayed, 0, "{context}: {report:?}");
        assert_same(&read_all(&db), &self.acked, context);
    }

    /// The WAL file appends currently go to, and its length.
    fn current_wal(&self) -> (PathBuf, u64) {
        let path = wal_files(self.path()).pop().unwrap().1;
        let len = std::fs::metadata(&path).unwrap().len();
        (path, len)
    }
}

fn read_all(db: &Db) -> Samples {
    let mut out = Samples::new();
    for series in db.select(&[], TimeRange::ALL).unwrap() {
        let s: i64 = series.key.get("s").unwrap().parse().unwrap();
        for sample in series.samples {
            let previous = out.insert((s, sample.timestamp_ms), sample.value);
            assert!(
                previous.is_none(),
                "select returned ({s}, {sample:?}) twice"
            );
        }
    }
    out
}

fn assert_same(present: &Samples, expected: &Samples, context: &str) {
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !present.contains_key(k))
        .collect();
    let extra: Vec<_> = present
        .keys()
        .filter(|k| !expected.contains_key(k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{context}: missing {missing:?}, never acknowledged {extra:?}"
    );
    for (k, v) in expected {
        assert_eq!(
            present[k].to_bits(),
            v.to_bits(),
            "{context}: value of {k:?}"
        );
    }
}

fn segment_path(dir: &Path, meta: &SegmentMeta) -> PathBuf {
    dir.join("segments").join(SegmentMeta::file_name(meta.seq))
}

/// `wal/*.wal` by id.
fn wal_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    strata::wal::list_wal_files(&dir.join("wal")).unwrap()
}

/// Every file under `dir`, relative.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// After a writable open: the manifest decodes, every segment it lists
/// opens, no other segment file exists, no temporary file is left, and no
/// WAL file the manifest says is fully persisted remains.
fn check_directory(dir: &Path, context: &str) {
    let manifest = Manifest::load(dir)
        .unwrap_or_else(|e| panic!("{context}: MANIFEST does not decode: {e}"))
        .unwrap_or_default();
    for meta in &manifest.segments {
        let path = segment_path(dir, meta);
        let segment = Segment::open(&path)
            .unwrap_or_else(|e| panic!("{context}: listed segment does not open: {e}"));
        drop(segment);
    }
    let files = all_files(dir);
    let stray: Vec<_> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "tmp"))
        .collect();
    assert!(
        stray.is_empty(),
        "{context}: temporary files left after reopen: {stray:?}"
    );
    let unlisted: Vec<_> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "seg"))
        .filter(|f| {
            !manifest
                .segments
                .iter()
                .any(|m| Path::new("segments").join(SegmentMeta::file_name(m.seq)) == **f)
        })
        .collect();
    assert!(
        unlisted.is_empty(),
        "{context}: segments not in the manifest: {unlisted:?}"
    );
    let stale: Vec<_> = wal_files(dir)
        .into_iter()
        .filter(|(id, _)| *id < manifest.wal_replay_from)
        .collect();
    assert!(
        stale.is_empty(),
        "{context}: WAL files below wal_replay_from {}: {stale:?}",
        manifest.wal_replay_from
    );
}

fn assert_io(result: &Result<impl std::fmt::Debug, Error>, kind: ErrorKind, context: &str) {
    match result {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), kind, "{context}: {source}"),
        other => panic!("{context}: expected an I/O error of kind {kind:?}, got {other:?}"),
    }
}

/// The two ways a storage device refuses a write.
const REFUSALS: [(ErrorKind, &str); 2] = [
    (ErrorKind::StorageFull, "ENOSPC"),
    (ErrorKind::Other, "EIO"),
];

// ---------------------------------------------------------------------------
// WAL append

/// Appends `BEFORE` acknowledged samples, arms `point` to fail with
/// `kind`, makes one more append (a batch if `batch`), checks the typed
/// error, the poisoning and the reads, and reopens. Returns the reopened
/// fixture and the samples of the failed append.
fn fail_an_append(point: &str, kind: ErrorKind, batch: bool, context: &str) -> (Fixture, Samples) {
    let mut fx = Fixture::new();
    fx.append_acked(BEFORE);
    fault::inject(point, Fault::Fail(kind), 1, false);
    let result = if batch {
        fx.append_batch(SERIES as usize)
    } else {
        fx.append()
    };
    assert_io(&result, kind, context);
    fx.assert_poisoned();
    fx.assert_reads_exact(context);
    let failed = fx.unknown.clone();
    let report = fx.reopen(context);
    assert!(report.is_clean(), "{context}: {report:?}");
    (fx, failed)
}

/// A WAL write that fails before any byte reaches the file: `Io` with the
/// device's error, then `Poisoned` (the writer cannot know that nothing was
/// written), reads unchanged, and after reopen the failed sample is absent.
#[test]
fn wal_write_failure_poisons_and_keeps_every_acknowledged_sample() {
    let _faults = fault_scope();
    for (kind, name) in REFUSALS {
        for batch in [false, true] {
            let context = format!("wal.write {name}, batch {batch}");
            let (mut fx, failed) = fail_an_append("wal.write", kind, batch, &context);
            assert!(
                failed.keys().all(|k| !fx.acked.contains_key(k)),
                "{context}: a write that reached no file was replayed"
            );
            fx.append_acked(3);
            fx.assert_exactly_once_on_disk(&context);
        }
    }
}

/// A failed WAL fsync: `Io`, then `Poisoned`. The record was written
/// before the fsync failed, so it is not visible now but may come back on
/// reopen: a failed append's outcome is unknown, not "not stored".
#[test]
fn wal_fsync_failure_poisons_and_keeps_every_acknowledged_sample() {
    let _faults = fault_scope();
    for (kind, name) in REFUSALS {
        for batch in [false, true] {
            let context = format!("wal.fsync {name}, batch {batch}");
            let (mut fx, failed) = fail_an_append("wal.fsync", kind, batch, &context);
            let resurrected = failed.keys().filter(|k| fx.acked.contains_key(k)).count();
            eprintln!(
                "{context}: {resurrected} of {} samples of the failed append are present after reopen",
                failed.len()
            );
            fx.append_acked(3);
            fx.assert_exactly_once_on_disk(&context);
        }
    }
}

/// A WAL write torn after `k` bytes, for `k` from nothing to everything:
/// `Io`, then `Poisoned`; on reopen a partial record is reported as a torn
/// tail at the exact offset and truncated, a complete one is replayed, and
/// every record before it is intact. A torn batch is all or nothing.
#[test]
fn torn_wal_write_drops_only_the_torn_record() {
    let _faults = fault_scope();
    // Size of one single-sample record of an already defined series.
    let record_len = {
        let mut fx = Fixture::new();
        fx.append_acked(BEFORE);
        let (_, before) = fx.current_wal();
        fx.append_acked(1);
        fx.current_wal().1 - before
    };
    let batch_len = {
        let mut fx = Fixture::new();
        fx.append_acked(BEFORE);
        let (_, before) = fx.current_wal();
        fx.append_batch(SERIES as usize).unwrap();
        fx.current_wal().1 - before
    };
    let mut cases: Vec<(bool, u64)> = [0, 1, 4, 8, 9, record_len / 2, record_len - 1, record_len]
        .into_iter()
        .map(|k| (false, k))
        .collect();
    cases.extend([1, batch_len / 2, batch_len - 8, batch_len - 1, batch_len].map(|k| (true, k)));
    for (batch, k) in cases {
        let len = if batch { batch_len } else { record_len };
        let context = format!("wal.write torn after {k} of {len} bytes, batch {batch}");
        let mut fx = Fixture::new();
        fx.append_acked(BEFORE);
        let (wal, valid_len) = fx.current_wal();
        fault::inject(
            "wal.write",
            Fault::Tear {
                after_bytes: k as usize,
            },
            1,
            false,
        );
        let result = if batch {
            fx.append_batch(SERIES as usize)
        } else {
            fx.append()
        };
        assert_io(&result, ErrorKind::Other, &context);
        assert_eq!(
            std::fs::metadata(&wal).unwrap().len(),
            valid_len + k,
            "{context}: bytes that reached the WAL"
        );
        fx.assert_poisoned();
        fx.assert_reads_exact(&context);
        let failed = fx.unknown.clone();
        let report = fx.reopen(&context);
        let complete = k == len;
        if k == 0 || complete {
            assert!(report.is_clean(), "{context}: {report:?}");
        } else {
            assert_eq!(report.wal_damage.len(), 1, "{context}: {report:?}");
            let damage = &report.wal_damage[0];
            assert!(damage.torn_tail, "{context}: {damage:?}");
            assert_eq!(damage.path, wal, "{context}: {damage:?}");
            assert_eq!(damage.offset, valid_len, "{context}: {damage:?}");
            assert_eq!(damage.dropped_bytes, k, "{context}: {damage:?}");
            assert_eq!(
                std::fs::metadata(&wal).unwrap().len(),
                valid_len,
                "{context}: torn tail not truncated"
            );
        }
        let replayed = failed.keys().filter(|k| fx.acked.contains_key(k)).count();
        assert_eq!(
            replayed,
            if complete { failed.len() } else { 0 },
            "{context}: samples of the torn record replayed"
        );
        fx.append_acked(3);
        fx.assert_exactly_once_on_disk(&context);
    }
}

// ---------------------------------------------------------------------------
// WAL rotation

/// The flush's WAL rotation cannot create the next file: `Io`, then
/// `Poisoned` (the writer has no file to append to). The rotation comes
/// before anything is frozen, so the head still holds everything.
#[test]
fn wal_rotation_failure_in_flush_poisons_and_loses_nothing() {
    let _faults = fault_scope();
    for (kind, name) in REFUSALS {
        let context = format!("wal.create {name} in flush");
        let mut fx = Fixture::new();
        fx.append_acked(BEFORE);
        fault::inject("wal.create", Fault::Fail(kind), 1, false);
        let result = fx.db().flush();
        assert_io(&result, kind, &context);
        fx.assert_poisoned();
        fx.assert_reads_exact(&context);
        assert_eq!(fx.db().stats().segments, 0, "{context}");
        let report = fx.reopen(&context);
        assert!(report.is_clean(), "{context}: {report:?}");
        fx.assert_exactly_once_on_disk(&context);
    }
}

/// An append that fills the WAL file rotates it; the next file cannot be
/// created. The append's record was written and fsynced to the old file
/// first, so the append fails (`Io`) with its sample durable: it is
/// replayed after reopen.
#[test]
fn wal_rotation_failure_on_a_full_file_poisons_and_loses_nothing() {
    let _faults = fault_scope();
    let mut fx = Fixture::with_options(Options {
        wal_file_max_bytes: 1_000,
        ..options()
    });
    fx.append_acked(BEFORE);
    assert!(wal_files(fx.path()).len() > 1, "no size rotation happened");
    fault::inject("wal.create", Fault::Fail(ErrorKind::StorageFull), 1, false);
    let mut appends = 0;
    let result = loop {
        appends += 1;
        assert!(appends < 1_000, "no rotation within 1000 appends");
        let result = fx.append();
        if result.is_err() {
            break result;
        }
    };
    let context = "wal.create on size rotation";
    assert_io(&result, ErrorKind::StorageFull, context);
    fx.assert_poisoned();
    fx.assert_reads_exact(context);
    let failed = fx.unknown.clone();
    let report = fx.reopen(context);
    assert!(report.is_clean(), "{context}: {report:?}");
    assert!(
        failed.keys().all(|k| fx.acked.contains_key(k)),
        "{context}: the fsynced record of the failed append was not replayed"
    );
    fx.assert_exactly_once_on_disk(context);
}

/// Opening cannot create the new WAL file: the open fails with `Io` and
/// changes nothing that a later open needs.
#[test]
fn wal_creation_failure_at_open_fails_the_open_only() {
    let _faults = fault_scope();
    let mut fx = Fixture::new();
    fx.append_acked(BEFORE);
    fx.handles.clear();
    fx.db = None;
    fault::inject("wal.create", Fault::Fail(ErrorKind::StorageFull), 1, false);
    let result = Db::open(fx.path(), options()).map(drop);
    assert_io(&result, ErrorKind::StorageFull, "wal.create at open");
    let report = fx.reopen("reopen after the failed open");
    assert!(report.is_clean(), "{report:?}");
    fx.assert_exactly_once_on_disk("wal.create at open");
}

// ---------------------------------------------------------------------------
// Flush: segments, manifest, WAL deletion

/// One fault on the flush path. `nth` counts hits of the point within the
/// flush; a flush of `BEFORE` samples writes 3 segments, and `dir.fsync`
/// is hit by the new WAL file (1), each segment (2..=4), the manifest (5).
struct FlushFault {
    point: &'static str,
    fault: Fault,
    nth: u64,
    /// The manifest rename happened before the failure.
    committed: bool,
}

const EIO: Fault = Fault::Fail(ErrorKind::Other);
const ENOSPC: Fault = Fault::Fail(ErrorKind::StorageFull);

fn flush_faults() -> Vec<FlushFault> {
    let f = |point, fault, nth, committed| FlushFault {
        point,
        fault,
        nth,
        committed,
    };
    vec![
        f("segment.write", ENOSPC, 1, false),
        f("segment.write", EIO, 4, false),
        f("segment.write", Fault::Tear { after_bytes: 10 }, 1, false),
        f("segment.fsync", EIO, 1, false),
        f("segment.fsync", EIO, 3, false),
        f("segment.rename", EIO, 1, false),
        f("segment.rename", EIO, 2, false),
        f("dir.fsync", EIO, 2, false),
        f("dir.fsync", EIO, 4, false),
        f("manifest.write", ENOSPC, 1, false),
        f("manifest.write", Fault::Tear { after_bytes: 20 }, 1, false),
        f("manifest.fsync", EIO, 1, false),
        f("manifest.rename", EIO, 1, false),
        f("dir.fsync", EIO, 5, true),
    ]
}

impl FlushFault {
    fn name(&self) -> String {
        format!("{} {:?} at hit {}", self.point, self.fault, self.nth)
    }

    /// Appends, arms the fault, flushes: the flush fails with `Io` and
    /// does not poison; reads still show exactly what was acknowledged.
    fn fail_a_flush(&self) -> (Fixture, Manifest) {
        let context = self.name();
        let mut fx = Fixture::new();
        fx.append_acked(BEFORE);
        let before = Manifest::load(fx.path()).unwrap().unwrap_or_default();
        fault::inject(self.point, self.fault, self.nth, false);
        let result = fx.db().flush();
        assert!(
            matches!(&result, Err(Error::Io { .. })),
            "{context}: expected Io, got {result:?}"
        );
        assert_eq!(
            fault::hits(self.point),
            self.nth,
            "{context}: point hit count"
        );
        fault::clear();
        let temporary: Vec<_> = all_files(fx.path())
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "tmp"))
            .collect();
        assert!(
            temporary.is_empty(),
            "{context}: the failed flush left {temporary:?} behind"
        );
        let after = Manifest::load(fx.path()).unwrap().unwrap_or_default();
        if self.committed {
            assert_eq!(after.segments.len(), 3, "{context}: {after:?}");
        } else {
            assert_eq!(after, before, "{context}: the manifest changed");
        }
        fx.assert_reads_exact(&context);
        // Not poisoned: the data is in the WAL and in memory.
        fx.append_acked(5);
        fx.assert_reads_exact(&context);
        (fx, after)
    }
}

/// Every segment and manifest step of a flush fails once; the flush is
/// retried on the same database. The retry publishes every frozen sample
/// exactly once, the head's newer samples too, and a reopen agrees.
#[test]
fn failed_flush_retried_publishes_everything_once() {
    let _faults = fault_scope();
    for case in flush_faults() {
        let context = format!("{}, then retried", case.name());
        let (mut fx, _) = case.fail_a_flush();
        let report = fx.db().flush().unwrap();
        assert_eq!(
            report.samples_written,
            fx.acked.len() as u64,
            "{context}: the retry wrote {report:?}"
        );
        fx.assert_reads_exact(&context);
        let manifest = Manifest::load(fx.path()).unwrap().unwrap();
        let listed: u64 = manifest.segments.iter().map(|m| m.sample_count).sum();
        assert_eq!(listed, fx.acked.len() as u64, "{context}: {manifest:?}");
        assert_eq!(
            fx.db().stats().segments,
            manifest.segments.len(),
            "{context}: segments readers see"
        );
        let report = fx.reopen(&context);
        assert_eq!(report.samples_replayed, 0, "{context}: {report:?}");
        fx.assert_exactly_once_on_disk(&context);
    }
}

/// Every segment and manifest step of a flush fails once; the database is
/// dropped without a retry. The reopen recovers every sample (from the WAL,
/// or from the segments of a flush whose manifest did commit) and removes
/// what the failed flush left behind.
#[test]
fn failed_flush_then_reopen_recovers_everything_once() {
    let _faults = fault_scope();
    for case in flush_faults() {
        let context = format!("{}, then reopened", case.name());
        let (mut fx, _) = case.fail_a_flush();
        let report = fx.reopen(&context);
        assert!(report.wal_damage.is_empty(), "{context}: {report:?}");
        fx.assert_exactly_once_on_disk(&context);
    }
}

/// A manifest store that fails before its rename leaves `MANIFEST.tmp`
/// (partial when the write tore); a reopen must not leave it behind.
#[test]
fn failed_manifest_store_leaves_no_temporary_file() {
    let _faults = fault_scope();
    for case in flush_faults()
        .into_iter()
        .filter(|c| c.point.starts_with("manifest."))
    {
        let context = format!("{}, then reopened", case.name());
        let (mut fx, _) = case.fail_a_flush();
        fx.reopen(&context);
    }
}

/// The flush commits, then deleting a WAL file it made obsolete fails.
/// Nothing is lost and nothing poisoned; the next checkpoint deletes the
/// file.
#[test]
fn wal_deletion_failure_after_checkpoint_loses_nothing() {
    let _faults = fault_scope();
    let context = "wal.remove EIO after the manifest commit";
    let mut fx = Fixture::new();
    fx.append_acked(BEFORE);
    let obsolete = wal_files(fx.path());
    fault::inject("wal.remove", EIO, 1, false);
    let result = fx.db().flush();
    // The flush committed (its manifest is on disk, readers see its
    // segments): it succeeds, and the failed clean-up shows in the stats.
    assert!(result.is_ok(), "{context}: {result:?}");
    let noted = fx.db().stats().last_background_error.unwrap_or_default();
    assert!(
        noted.contains("cleanup after a committed flush"),
        "{context}: {noted}"
    );
    let manifest = Manifest::load(fx.path()).unwrap().unwrap();
    assert_eq!(manifest.segments.len(), 3, "{context}: {manifest:?}");
    assert_eq!(fx.db().stats().segments, 3, "{context}");
    fx.assert_reads_exact(context);
    assert!(obsolete.iter().all(|(_, p)| p.exists()), "{context}");
    fx.append_acked(5);
    fx.db().flush().unwrap();
    // The next checkpoint retries the deletion.
    assert!(obsolete.iter().all(|(_, p)| !p.exists()), "{context}");
    fx.assert_reads_exact(context);
    let report = fx.reopen(context);
    assert!(report.is_clean(), "{context}: {report:?}");
    assert!(obsolete.iter().all(|(_, p)| !p.exists()), "{context}");
    fx.assert_exactly_once_on_disk(context);
}

/// Polls `condition` (the library offers nothing to wait on) until it
/// holds; the limit only keeps a broken build from hanging.
fn await_condition(what: &str, mut condition: impl FnMut() -> bool) {
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !condition() {
        assert!(
            std::time::Instant::now() < limit,
            "still waiting for {what} after 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A background flush of complete partitions fails at its first segment:
/// the error is kept in `stats().last_background_error`, writes go on (not
/// poisoned), reads stay exact, and a later background flush publishes the
/// frozen partitions with the new ones, each sample once.
#[test]
fn failed_background_flush_is_published_once_by_a_later_one() {
    let _faults = fault_scope();
    let context = "segment.write EIO in a background flush";
    let mut fx = Fixture::with_options(Options {
        flush_complete_partitions: true,
        out_of_order_window_ms: 0,
        ..options()
    });
    fault::inject("segment.write", EIO, 1, false);
    // Partitions 0..=2 complete once a sample of partition 3 arrives.
    fx.append_acked(BEFORE + 1);
    await_condition("the background flush to fail", || {
        fx.db().stats().last_background_error.is_some()
    });
    assert_eq!(fault::hits("segment.write"), 1, "{context}");
    assert_eq!(fx.db().stats().segments, 0, "{context}");
    fx.assert_reads_exact(context);
    // Two more partitions complete: the next background flush takes them
    // and the ones the failed flush froze.
    fx.append_acked(20);
    await_condition("a background flush to succeed", || {
        fx.db().stats().flushes >= 1
    });
    fx.assert_reads_exact(context);
    let manifest = Manifest::load(fx.path()).unwrap().unwrap();
    let listed: u64 = manifest.segments.iter().map(|m| m.sample_count).sum();
    let complete = fx
        .acked
        .keys()
        .filter(|&&(_, ts)| ts < manifest.persisted_below_ms)
        .count();
    assert_eq!(listed, complete as u64, "{context}: {manifest:?}");
    // At least the three partitions the failed flush froze, and the next.
    assert!(
        manifest.persisted_below_ms >= 4 * PARTITION_MS,
        "{context}: {manifest:?}"
    );
    let report = fx.reopen(context);
    assert!(report.is_clean(), "{context}: {report:?}");
    fx.assert_exactly_once_on_disk(context);
}

// --- Metric metadata ----------------------------------------------------

fn expected_metadata() -> strata::Metadata {
    strata::Metadata::from_families([(
        "http_requests".to_owned(),
        MetricMetadata::new(MetricType::Counter).with_help("Requests."),
    )])
}

fn store_metadata(dir: &Path) {
    let db = Db::open(dir, Options::default()).unwrap();
    let entries = expected_metadata();
    let entries = entries.iter().map(|(family, m)| (family, m.clone()));
    assert!(db.set_metadata(entries).unwrap());
    db.close().unwrap();
}

#[test]
fn a_failed_metadata_store_leaves_the_old_metadata() {
    let _scope = fault_scope();
    for point in ["metadata.write", "metadata.fsync", "metadata.rename"] {
        let dir = tempfile::tempdir().unwrap();
        store_metadata(dir.path());
        let db = Db::open(dir.path(), Options::default()).unwrap();
        fault::inject(point, Fault::Fail(ErrorKind::Other), 1, false);
        let result = db.set_metadata([("http_requests", MetricMetadata::default())]);
        let reached = fault::hits(point) >= 1;
        fault::clear();
        assert!(reached, "{point} not reached");
        assert!(
            matches!(result, Err(Error::Io { .. })),
            "{point}: {result:?}"
        );
        assert_eq!(
            db.metadata(),
            expected_metadata(),
            "{point}: memory unchanged"
        );
        drop(db);
        let db = Db::open(dir.path(), Options::default()).unwrap();
        assert_eq!(
            db.metadata(),
            expected_metadata(),
            "{point}: disk unchanged"
        );
        assert!(db.recovery_report().is_clean());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{point}: {leftovers:?}");
    }
}
