//! WAL damage: a torn or corrupted tail is detected, reported with what was
//! dropped, truncated, and everything before it is recovered — the same on
//! every reopen.

use std::path::{Path, PathBuf};

use strata::{Db, Options, SeriesKey, SyncMode, TimeRange};

const SAMPLES: i64 = 20;

fn options() -> Options {
    Options {
        sync: SyncMode::Always,
        flush_complete_partitions: false,
        ..Options::default()
    }
}

/// A directory whose WAL holds one series record and `SAMPLES` sample
/// records (one per append). Returns the WAL file and its frame offsets.
fn build() -> (tempfile::TempDir, PathBuf, Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let key = SeriesKey::new("up", &[("job", "a")]).unwrap();
    let series = db.series(&key).unwrap();
    for t in 0..SAMPLES {
        db.append_ref(&series, t * 1000, t as f64).unwrap();
    }
    drop(db);
    let wal = dir.path().join("wal").join(format!("{:020}.wal", 0));
    let bytes = std::fs::read(&wal).unwrap();
    let mut offsets = Vec::new();
    let mut pos = 24; // file header
    while pos < bytes.len() {
        offsets.push(pos);
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 8 + len;
    }
    assert_eq!(pos, bytes.len());
    assert_eq!(
        offsets.len() as i64,
        SAMPLES + 1,
        "one series record, then samples"
    );
    (dir, wal, offsets)
}

fn timestamps(dir: &Path) -> Vec<i64> {
    let db = Db::open(dir, options()).unwrap();
    db.select(&[], TimeRange::ALL)
        .unwrap()
        .first()
        .map(|s| s.samples.iter().map(|x| x.timestamp_ms).collect())
        .unwrap_or_default()
}

#[test]
fn truncation_at_every_offset_of_the_last_record() {
    let (dir, wal, offsets) = build();
    let original = std::fs::read(&wal).unwrap();
    let last = *offsets.last().unwrap();
    for cut in last..original.len() {
        std::fs::write(&wal, &original[..cut]).unwrap();
        let db = Db::open(dir.path(), options()).unwrap();
        let report = db.recovery_report().clone();
        let samples = db.select(&[], TimeRange::ALL).unwrap()[0].samples.len() as i64;
        drop(db);
        assert_eq!(samples, SAMPLES - 1, "cut at {cut}");
        if cut == last {
            assert!(
                report.wal_damage.is_empty(),
                "a clean record boundary is no damage"
            );
        } else {
            assert_eq!(report.wal_damage.len(), 1, "cut at {cut}: {report:?}");
            let damage = &report.wal_damage[0];
            assert_eq!(damage.path, wal);
            assert_eq!(damage.offset, last as u64);
            assert_eq!(damage.dropped_bytes, (cut - last) as u64);
            assert!(damage.reason.contains("torn"), "{}", damage.reason);
        }
        // The tail was truncated: reopening again reports nothing new.
        let again = Db::open(dir.path(), options()).unwrap();
        assert!(
            again.recovery_report().wal_damage.is_empty(),
            "cut at {cut}"
        );
        drop(again);
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), last as u64);
        // Remove the WAL files later opens created, to restart clean.
        for entry in std::fs::read_dir(dir.path().join("wal")).unwrap() {
            let path = entry.unwrap().path();
            if path != wal {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
}

#[test]
fn flipped_byte_in_a_middle_record_keeps_everything_before_it() {
    let (dir, wal, offsets) = build();
    let mut bytes = std::fs::read(&wal).unwrap();
    let file_len = bytes.len();
    let damaged_record = 10; // the 10th sample record
    let at = offsets[damaged_record];
    bytes[at + 12] ^= 0x01; // inside the payload
    std::fs::write(&wal, &bytes).unwrap();

    let db = Db::open(dir.path(), options()).unwrap();
    let report = db.recovery_report().clone();
    drop(db);
    assert_eq!(report.wal_damage.len(), 1);
    let damage = &report.wal_damage[0];
    assert_eq!(damage.offset, at as u64);
    assert_eq!(damage.dropped_bytes, (file_len - at) as u64);
    assert!(
        damage.reason.contains("checksum mismatch"),
        "{}",
        damage.reason
    );
    let expected: Vec<i64> = (0..damaged_record as i64 - 1).map(|t| t * 1000).collect();
    assert_eq!(timestamps(dir.path()), expected);
    // Recovery is repeatable: the same data, no new damage.
    for _ in 0..3 {
        let db = Db::open(dir.path(), options()).unwrap();
        assert!(db.recovery_report().wal_damage.is_empty());
        drop(db);
        assert_eq!(timestamps(dir.path()), expected);
    }
}

#[test]
fn damaged_header_and_garbage_files_are_reported() {
    let (dir, wal, _) = build();
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[3] ^= 0xff; // magic
    std::fs::write(&wal, &bytes).unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let report = db.recovery_report();
    assert_eq!(report.wal_damage.len(), 1);
    assert_eq!(report.wal_damage[0].offset, 0);
    assert!(report.wal_damage[0].reason.contains("magic"));
    assert!(db.select(&[], TimeRange::ALL).unwrap().is_empty());
}
