//! The data directory defends itself: no silent data loss from a missing or
//! damaged manifest, replaced or missing segments, stray files, symbolic
//! links or a removed LOCK; option limits that match the formats; a head
//! memory budget; timestamps and file ids at the ends of their ranges.
//!
//! Each test names the finding of the robustness review (issue 7) it
//! guards; each failed on the code before the fix.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use strata::{
    Corruption, Db, Error, InputError, Manifest, Options, SegmentMeta, SeriesKey, SyncMode,
    TimeRange,
};

fn options() -> Options {
    Options {
        sync: SyncMode::Never,
        flush_complete_partitions: false,
        ..Options::default()
    }
}

fn key(i: usize) -> SeriesKey {
    SeriesKey::from_pairs("dir_test", &[("i", i.to_string())]).unwrap()
}

/// Every sample in the database, as bit patterns.
fn all(db: &Db) -> BTreeMap<String, Vec<(i64, u64)>> {
    db.select(&[], TimeRange::ALL)
        .unwrap()
        .into_iter()
        .map(|s| {
            let samples = s
                .samples
                .iter()
                .map(|x| (x.timestamp_ms, x.value.to_bits()))
                .collect();
            (s.key.to_string(), samples)
        })
        .collect()
}

/// A database with two flushed segments (two partitions) and samples left
/// in the WAL; returns what it holds.
fn populate(dir: &Path) -> BTreeMap<String, Vec<(i64, u64)>> {
    let db = Db::open(dir, options()).unwrap();
    let hour = 3_600_000;
    for start in [0, 3 * hour] {
        for i in 0..3 {
            for t in 0..50 {
                db.append(&key(i), start + t * 1000, (i * 100 + t as usize) as f64)
                    .unwrap();
            }
        }
    }
    db.flush().unwrap();
    for i in 0..3 {
        db.append(&key(i), 6 * hour, i as f64).unwrap();
    }
    db.sync_wal().unwrap();
    let data = all(&db);
    drop(db);
    data
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Finding 1: a missing MANIFEST was read as an empty database, and the
/// next writable open deleted every segment as an orphan.
#[test]
fn missing_manifest_is_an_error_and_repair_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = populate(dir.path());
    let segments = segment_files(dir.path());
    assert_eq!(segments.len(), 2);
    fs::remove_file(dir.path().join("MANIFEST")).unwrap();

    for attempt in 0..2 {
        let error = Db::open(dir.path(), options())
            .err()
            .expect("open must fail");
        assert!(
            matches!(
                error,
                Error::MissingManifest {
                    segment_files: 2,
                    wal_files: 1,
                    ..
                }
            ),
            "attempt {attempt}: {error}"
        );
        assert!(error.to_string().contains("strata repair"), "{error}");
        let read_only = Db::open_read_only(dir.path()).err().expect("must fail");
        assert!(matches!(read_only, Error::MissingManifest { .. }));
        assert_eq!(segment_files(dir.path()), segments, "nothing deleted");
    }

    let report = Db::repair(dir.path(), &options()).unwrap();
    assert_eq!(report.actions.len(), 1, "{report:?}");
    assert!(report.actions[0].contains("missing"));
    let db = Db::open(dir.path(), options()).unwrap();
    assert!(
        db.recovery_report().is_clean(),
        "{:?}",
        db.recovery_report()
    );
    assert_eq!(all(&db), data);
    drop(db);
    // A repaired directory needs no further repair.
    assert_eq!(
        Db::repair(dir.path(), &options()).unwrap(),
        Default::default()
    );
}

/// A new, empty directory is still a new database (the manifest is
/// written before anything else), and reopening it is clean.
#[test]
fn new_directory_gets_a_manifest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Db::open(&path, options()).unwrap();
    assert!(path.join("MANIFEST").is_file());
    db.append(&key(0), 1, 1.0).unwrap();
    drop(db);
    let db = Db::open(&path, options()).unwrap();
    assert_eq!(all(&db).len(), 1);
}

/// A damaged MANIFEST stops the open; repair moves it to quarantine and
/// rebuilds it.
#[test]
fn damaged_manifest_is_quarantined_by_repair() {
    let dir = tempfile::tempdir().unwrap();
    let data = populate(dir.path());
    let manifest = dir.path().join("MANIFEST");
    let mut bytes = fs::read(&manifest).unwrap();
    bytes[20] ^= 0x40;
    fs::write(&manifest, &bytes).unwrap();
    let error = Db::open(dir.path(), options()).err().expect("must fail");
    assert!(matches!(error, Error::Corrupt(_)), "{error}");
    let report = Db::repair(dir.path(), &options()).unwrap();
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(fs::read(&report.quarantined[0].to).unwrap(), bytes);
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(all(&db), data);
}

/// Finding 8: a listed segment replaced by another valid segment went
/// unnoticed (the manifest pinned neither size nor checksum).
#[test]
fn replaced_or_truncated_segment_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let segments = segment_files(dir.path());
    let original = fs::read(&segments[0]).unwrap();

    // Another valid segment of the same database in its place.
    fs::copy(&segments[1], &segments[0]).unwrap();
    let error = Db::open(dir.path(), options()).err().expect("must fail");
    assert!(error.to_string().contains("manifest pins"), "{error}");
    let error = Db::open_read_only(dir.path()).err().expect("must fail");
    assert!(error.to_string().contains("manifest pins"), "{error}");

    // The same file with bytes appended.
    let mut longer = original.clone();
    longer.extend_from_slice(&[0; 16]);
    fs::write(&segments[0], &longer).unwrap();
    assert!(Db::open(dir.path(), options()).is_err());

    fs::write(&segments[0], &original).unwrap();
    Db::open(dir.path(), options()).unwrap();
}

/// A listed segment that is missing is an error naming it, not an empty
/// partition; repair drops it and says how many samples are gone.
#[test]
fn missing_listed_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let segments = segment_files(dir.path());
    fs::remove_file(&segments[0]).unwrap();
    let error = Db::open(dir.path(), options()).err().expect("must fail");
    assert!(error.to_string().contains("missing"), "{error}");
    let report = Db::repair(dir.path(), &options()).unwrap();
    assert!(report.actions[0].contains("150 samples lost"), "{report:?}");
    Db::open(dir.path(), options()).unwrap();
}

/// Unlisted segments: one from an interrupted flush (seq at or past
/// `next_segment_seq`) is removed and reported; any other is quarantined,
/// never deleted.
#[test]
fn unlisted_segments_are_removed_only_when_provably_uncommitted() {
    let dir = tempfile::tempdir().unwrap();
    let data = populate(dir.path());
    let manifest = Manifest::load(dir.path()).unwrap().unwrap();
    let segments = segment_files(dir.path());
    let stray_old = dir.path().join("segments").join(SegmentMeta::file_name(0));
    let uncommitted = dir
        .path()
        .join("segments")
        .join(SegmentMeta::file_name(manifest.next_segment_seq));
    fs::copy(&segments[0], &stray_old).unwrap();
    fs::copy(&segments[0], &uncommitted).unwrap();
    let foreign = dir.path().join("segments").join("notes.txt");
    fs::write(&foreign, "mine").unwrap();

    let read_only = Db::open_read_only(dir.path()).unwrap();
    let report = read_only.recovery_report().clone();
    assert!(!report.is_clean());
    assert!(report
        .actions()
        .iter()
        .any(|l| l.starts_with("would quarantine")));
    assert!(
        stray_old.exists() && uncommitted.exists(),
        "read-only changes nothing"
    );
    drop(read_only);

    let db = Db::open(dir.path(), options()).unwrap();
    let report = db.recovery_report().clone();
    assert_eq!(report.orphan_segments_removed, vec![uncommitted.clone()]);
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.quarantined[0].from, stray_old);
    assert!(report.quarantined[0]
        .to
        .starts_with(dir.path().join("quarantine")));
    assert!(report.quarantined[0].to.exists());
    assert!(!uncommitted.exists() && !stray_old.exists());
    assert_eq!(
        fs::read_to_string(&foreign).unwrap(),
        "mine",
        "not ours: untouched"
    );
    assert_eq!(all(&db), data);
}

/// Finding 9: FORMAT.md says the higher `seq` wins; the decoder now
/// enforces the order that makes list order and seq order the same.
#[test]
fn manifest_entries_out_of_seq_order_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let mut manifest = Manifest::load(dir.path()).unwrap().unwrap();
    manifest.segments.swap(0, 1);
    let bytes = manifest.encode();
    let error = Manifest::decode(&bytes, Path::new("MANIFEST")).unwrap_err();
    assert!(error.to_string().contains("increasing seq"), "{error}");
}

/// A version-1 manifest (no pins) still opens; the writer pins its
/// segments and stores version 2.
#[test]
fn version_1_manifest_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let data = populate(dir.path());
    // The current (version-3) bytes without the tiers, and each entry
    // without its pin and tier fields: the first 44 bytes.
    let v3 = fs::read(dir.path().join("MANIFEST")).unwrap();
    assert_eq!(v3[8], 3);
    let body = &v3[16..v3.len() - 4];
    let tier_count = u32::from_le_bytes(body[24..28].try_into().unwrap()) as usize;
    let segments_at = 28 + 24 * tier_count;
    let mut payload = body[..24].to_vec();
    payload.extend_from_slice(&body[segments_at..segments_at + 4]);
    for entry in body[segments_at + 4..].chunks(76) {
        payload.extend_from_slice(&entry[..44]);
    }
    let mut v1 = b"STRATMAN".to_vec();
    v1.extend_from_slice(&1u16.to_le_bytes());
    v1.extend_from_slice(&0u16.to_le_bytes());
    v1.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v1.extend_from_slice(&payload);
    let crc = crc32(&v1);
    v1.extend_from_slice(&crc.to_le_bytes());
    fs::write(dir.path().join("MANIFEST"), &v1).unwrap();

    let read_only = Db::open_read_only(dir.path()).unwrap();
    assert_eq!(all(&read_only), data);
    drop(read_only);
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(all(&db), data);
    let upgraded = Manifest::load(dir.path()).unwrap().unwrap();
    assert!(upgraded.segments.iter().all(|s| s.pin.is_some()));
    assert_eq!(fs::read(dir.path().join("MANIFEST")).unwrap()[8], 3);
}

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE), independent of the crate's implementation.
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Finding 4: removing LOCK while a writer runs let a second writer in.
#[test]
fn removing_lock_file_does_not_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    fs::remove_file(dir.path().join("LOCK")).unwrap();
    let error = Db::open(dir.path(), options()).err().expect("must fail");
    assert!(
        matches!(error, Error::Locked { pid: Some(pid), .. } if pid == std::process::id()),
        "{error}"
    );
    db.append(&key(0), 1, 1.0).unwrap();
    drop(db);
    Db::open(dir.path(), options()).unwrap();
}

/// Finding 4: LOCK, `segments/` or `wal/` as symbolic links made strata
/// overwrite or delete another directory's files.
#[test]
fn symlinks_inside_the_directory_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let victim_dir = outside.path().join("victim_dir");
    fs::create_dir(&victim_dir).unwrap();
    fs::write(victim_dir.join("00000000000000000005.seg"), "not a segment").unwrap();
    fs::write(victim_dir.join("x.seg.tmp"), "keep").unwrap();

    for (name, target) in [
        ("LOCK", &victim),
        ("segments", &victim_dir),
        ("wal", &victim_dir),
        ("MANIFEST", &victim),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(target, dir.path().join(name)).unwrap();
        let error = Db::open(dir.path(), options()).err().expect("must fail");
        assert!(
            matches!(error, Error::BadDirectory { .. }),
            "{name}: {error}"
        );
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert!(Db::open_read_only(dir.path()).is_err());
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(fs::read_dir(&victim_dir).unwrap().count(), 2);
}

/// Finding 6: limits past what the WAL encoding holds wrote records that
/// replay dropped. Options are now checked against the formats.
#[test]
fn options_beyond_the_format_are_rejected() {
    let cases = [
        Options {
            max_label_name_len: 70_000,
            max_labels_per_series: 1_000,
            ..options()
        },
        Options {
            max_labels_per_series: 70_000,
            ..options()
        },
        Options {
            max_label_value_len: 64 << 20,
            ..options()
        },
        Options {
            max_series: usize::MAX,
            ..options()
        },
        Options {
            partition_duration_ms: 0,
            ..options()
        },
        Options {
            max_head_bytes: 1,
            ..options()
        },
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let error = Db::open(dir.path(), case).err().expect("must fail");
        assert!(
            matches!(error, Error::Input(InputError::BadOption(_))),
            "case {i}: {error}"
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "case {i}");
    }
    // The largest limits the formats hold are accepted, and a series at
    // them survives a reopen.
    let big = Options {
        max_label_name_len: 65_535,
        max_label_value_len: 1 << 20,
        max_labels_per_series: 8,
        ..options()
    };
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), big.clone()).unwrap();
    let long_name = format!("l{}", "x".repeat(65_534));
    let long_value = "v".repeat(1 << 20);
    let series = SeriesKey::new("wide", &[(long_name.as_str(), long_value.as_str())]).unwrap();
    db.append(&series, 7, 7.5).unwrap();
    drop(db);
    let db = Db::open(dir.path(), big).unwrap();
    let read = db.select(&[], TimeRange::ALL).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].key, series);
}

/// The head memory budget: past it, appends and new series fail with a
/// typed error instead of growing without bound; a flush frees room.
#[test]
fn head_budget_rejects_then_recovers_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 64 * 1024;
    let db = Db::open(
        dir.path(),
        Options {
            max_head_bytes: budget,
            ..options()
        },
    )
    .unwrap();
    let mut created = 0;
    let error = loop {
        match db.series(&key(created)) {
            Ok(_) => created += 1,
            Err(error) => break error,
        }
        assert!(created < 1000, "the budget never stopped series creation");
    };
    assert!(
        matches!(error, Error::HeadFull { limit, .. } if limit == budget),
        "{error}"
    );
    assert!(created >= 32, "only {created} series fit in {budget} bytes");
    // Existing series still take samples while the budget allows.
    db.append(&key(0), 1, 1.0).unwrap();
    assert_eq!(all(&db).len(), 1);
}

/// Finding 7: timestamps near i64::MIN overflowed the partition start.
#[test]
fn extreme_timestamps_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            out_of_order_window_ms: i64::MAX,
            ..options()
        },
    )
    .unwrap();
    let times = [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX];
    for (i, &t) in times.iter().enumerate() {
        db.append(&key(0), t, i as f64).unwrap();
    }
    let expect: Vec<(i64, u64)> = times
        .iter()
        .enumerate()
        .map(|(i, &t)| (t, (i as f64).to_bits()))
        .collect();
    assert_eq!(all(&db)[&key(0).to_string()], expect);
    db.flush().unwrap();
    assert_eq!(all(&db)[&key(0).to_string()], expect);
    drop(db);
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(all(&db)[&key(0).to_string()], expect);
}

/// The corruption error for a pin mismatch names the file.
#[test]
fn pin_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let segments = segment_files(dir.path());
    let mut bytes = fs::read(&segments[1]).unwrap();
    bytes.truncate(bytes.len() - 1);
    fs::write(&segments[1], &bytes).unwrap();
    match Db::open(dir.path(), options()) {
        Err(Error::Corrupt(e)) => {
            assert_eq!(e.path, segments[1]);
            assert!(
                matches!(
                    e.kind,
                    Corruption::TooShort { .. }
                        | Corruption::BadMagic { .. }
                        | Corruption::Truncated { .. }
                        | Corruption::BadLayout(_)
                        | Corruption::ChecksumMismatch { .. }
                ),
                "{e}"
            );
        }
        other => panic!("expected a corruption error, got {:?}", other.err()),
    }
}

/// `verify_segments` reads whole files: a flipped byte in a chunk, which
/// opening does not read, shows as chunk damage and as a pin mismatch.
#[test]
fn verify_segments_checks_whole_files_against_pins() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let db = Db::open_read_only(dir.path()).unwrap();
    let checks = db.verify_segments();
    assert_eq!(checks.len(), 2);
    assert!(checks.iter().all(|c| c.is_intact()), "{checks:?}");
    drop(db);

    let segments = segment_files(dir.path());
    let mut bytes = fs::read(&segments[0]).unwrap();
    bytes[40] ^= 0x01; // inside the first chunk record (header is 16 bytes)
    fs::write(&segments[0], &bytes).unwrap();
    let db = Db::open_read_only(dir.path()).unwrap();
    let checks = db.verify_segments();
    assert!(!checks[0].is_intact());
    assert!(checks[0]
        .pin_problem
        .as_deref()
        .unwrap_or("")
        .contains("crc32"));
    assert!(!checks[0].report.damage.is_empty());
    assert!(checks[1].is_intact());
}
