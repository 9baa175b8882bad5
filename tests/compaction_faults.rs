//! Compaction interrupted at every step (strata::fault): writing the
//! journal, after writing an output (renamed into place, not committed),
//! before and during the manifest store, after the commit before deleting
//! the replaced files, and during that deletion. For every step of a run
//! (rollups, retention, merges) and each point: the still-open database
//! answers every query as before, a reopen (the crash) answers the same,
//! and after the next successful compaction nothing is left over: the
//! segment directory holds exactly the listed segments, no journal, no
//! quarantine.
//!
//! The armed fault set is process-global: every test holds `SERIAL`.

#![cfg(feature = "fault-injection")]

mod compaction_support;

use std::io::ErrorKind;
use std::sync::Mutex;

use compaction_support::*;
use strata::fault::{self, Fault};
use strata::{Clock, Db, Options};

static SERIAL: Mutex<()> = Mutex::new(());

const MINUTES: i64 = 14;

/// Raw kept 8 minutes (retention cuts at 5:45, inside a segment),
/// tiers kept forever: a run rolls up, deletes, rewrites and merges.
fn faulty_options() -> Options {
    Options {
        clock: Clock::manual(13 * MINUTE + 45 * SECOND),
        ..options(tiers_forever(Some(8 * MINUTE)))
    }
}

/// The database before compaction, and what it answers then.
struct Before {
    dir: tempfile::TempDir,
    snapshot: Snapshot,
    answers: Vec<String>,
}

/// The database is written once (as `TEMPLATE`) and copied for each run.
fn setup() -> Before {
    static TEMPLATE: std::sync::OnceLock<(tempfile::TempDir, Snapshot, Vec<String>)> =
        std::sync::OnceLock::new();
    let (template, snapshot, answers) = TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), faulty_options()).unwrap();
        write(&db, 2, 0, MINUTES);
        let snapshot = snapshot(&db);
        let answers = queries(&db, 0, MINUTES * MINUTE);
        drop(db);
        (dir, snapshot, answers)
    });
    let dir = tempfile::tempdir().unwrap();
    for sub in ["wal", "segments"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(template.path().join(sub)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name())).unwrap();
        }
    }
    std::fs::copy(
        template.path().join("MANIFEST"),
        dir.path().join("MANIFEST"),
    )
    .unwrap();
    Before {
        dir,
        snapshot: snapshot.clone(),
        answers: answers.clone(),
    }
}

/// Samples at or after the raw cutoff (13:45 - 8 min): what a completed
/// compaction keeps, and what an interrupted one keeps at least.
fn after_retention(snapshot: &Snapshot) -> Snapshot {
    let cutoff = 5 * MINUTE + 45 * SECOND;
    snapshot
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                s.iter().filter(|(t, _)| *t >= cutoff).copied().collect(),
            )
        })
        .collect()
}

/// Every sample at or after the cutoff is there exactly as before; before
/// it, a sample is either there as before or deleted.
fn assert_consistent(found: &Snapshot, before: &Snapshot, context: &str) {
    assert_eq!(
        after_retention(found),
        after_retention(before),
        "{context}: data retention keeps changed"
    );
    for (key, samples) in found {
        for sample in samples {
            assert!(
                before[key].contains(sample),
                "{context}: {key} has {sample:?}, which was never written"
            );
        }
    }
}

/// Answers over the range retention does not touch: from 8 minutes on,
/// the widest range (90 s) reaches back to 6:30, after the cutoff.
fn kept_answers(db: &Db) -> Vec<String> {
    queries(db, 8 * MINUTE, MINUTES * MINUTE)
}

#[test]
fn a_clean_run_keeps_every_answer_in_the_kept_range() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fault::clear();
    let before = setup();
    let db = Db::open(before.dir.path(), faulty_options()).unwrap();
    let expected = kept_answers(&db);
    let report = db.compact().unwrap();
    assert!(
        report.segments_merged > 0 && report.segments_deleted > 0,
        "{report:?}"
    );
    assert!(
        report.segments_rewritten > 0 && report.rollup_segments_written > 0,
        "{report:?}"
    );
    assert_eq!(snapshot(&db), after_retention(&before.snapshot));
    assert_eq!(kept_answers(&db), expected);
    assert_ne!(
        before.answers,
        queries(&db, 0, MINUTES * MINUTE),
        "retention changed nothing"
    );
    assert!(leftovers(before.dir.path()).is_empty());
}

/// Arms `point` at hit `nth` (every later hit too when `repeat`), runs a
/// compaction, "crashes" (drops the database), reopens and checks; returns
/// whether the point was reached `nth` times (false: the run is over).
fn interrupt(point: &str, nth: u64, repeat: bool) -> bool {
    let before = setup();
    let path = before.dir.path();
    let context = format!("{point} at hit {nth}");
    let db = Db::open(path, faulty_options()).unwrap();
    let expected = kept_answers(&db);
    fault::inject(point, Fault::Fail(ErrorKind::Other), nth, repeat);
    let outcome = db.compact();
    let reached = fault::hits(point) >= nth;
    fault::clear();
    if reached && !point.starts_with("compaction.remove") {
        assert!(outcome.is_err(), "{context}: {outcome:?}");
    }
    if let Ok(report) = &outcome {
        if reached {
            assert!(report.cleanup_error.is_some(), "{context}: {report:?}");
        }
    }
    // The open database.
    assert_consistent(&snapshot(&db), &before.snapshot, &context);
    assert_eq!(kept_answers(&db), expected, "{context}: open database");
    drop(db);

    // The crash: reopen.
    let db = Db::open(path, faulty_options()).unwrap();
    assert_consistent(&snapshot(&db), &before.snapshot, &context);
    assert_eq!(kept_answers(&db), expected, "{context}: reopened");
    assert!(
        db.recovery_report().quarantined.is_empty(),
        "{context}: {:?}",
        db.recovery_report()
    );
    // The next compaction completes the work and leaves nothing behind.
    let _ = db.compact().unwrap();
    assert_eq!(
        snapshot(&db),
        after_retention(&before.snapshot),
        "{context}: after the next compaction"
    );
    assert_eq!(kept_answers(&db), expected, "{context}: compacted again");
    drop(db);
    let db = Db::open(path, faulty_options()).unwrap();
    assert!(
        db.recovery_report().is_clean(),
        "{context}: {:?}",
        db.recovery_report()
    );
    assert_eq!(leftovers(path), Vec::<String>::new(), "{context}");
    reached
}

/// Interrupts a run at every hit of `point` until one run completes
/// without reaching it; returns how many steps were interrupted.
fn interrupt_every_hit(point: &str, first: u64, repeat: bool) -> u64 {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fault::clear();
    let mut nth = first;
    while interrupt(point, nth, repeat) {
        nth += 1;
    }
    nth - first
}

#[test]
fn interrupted_while_writing_the_journal() {
    assert!(interrupt_every_hit("compaction.journal", 1, false) >= 5);
}

#[test]
fn interrupted_after_writing_an_output() {
    assert!(interrupt_every_hit("compaction.write", 1, false) >= 5);
}

#[test]
fn interrupted_before_the_manifest_store() {
    assert!(interrupt_every_hit("compaction.commit", 1, false) >= 5);
}

#[test]
fn interrupted_during_the_manifest_store() {
    // Hit 1 is the flush that starts the run.
    assert!(interrupt_every_hit("manifest.rename", 2, false) >= 5);
}

#[test]
fn interrupted_after_the_commit_and_while_deleting() {
    // From then on every deletion fails, as if the process had died: hit 1
    // is right after the first commit, later hits are between deletions.
    assert!(interrupt_every_hit("compaction.remove", 1, true) > 3);
}
