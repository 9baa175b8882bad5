//! WAL damage, as a table of cases with the samples that must survive each
//! (in the manner of Prometheus' TestWALRepair_ReadingError): a damaged
//! frame costs that frame and nothing else, torn tails are truncated,
//! damaged files are quarantined and never deleted, unknown versions fail
//! the open without touching anything, and every recovery is repeatable.
//!
//! Before WAL version 2 a flipped byte in the middle of a file dropped the
//! rest of that file, a damaged header or an unknown version got the whole
//! file deleted, and label names over 65535 bytes were written truncated.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use strata::wal::record::{self, Record};
use strata::{Corruption, Db, Error, Options, RecoveryReport, SeriesKey, SyncMode, TimeRange};

const SAMPLES: i64 = 90;
const RARE_SAMPLES: i64 = 4;

fn options() -> Options {
    Options {
        sync: SyncMode::Always,
        flush_complete_partitions: false,
        wal_file_max_bytes: 1200,
        max_label_name_len: 100_000,
        ..Options::default()
    }
}

/// (series, timestamp): one sample.
type Id = (String, i64);

/// One v2 frame of a WAL file, as the test reads it.
#[derive(Debug, Clone)]
struct Frame {
    start: usize,
    end: usize,
    record: Record,
}

/// A directory with at least three WAL files of one writer session: series
/// `up{job="a"}` and `up{job="b"}` alternate through all of them, `rare`
/// has a few samples in the first file only.
struct Fixture {
    dir: tempfile::TempDir,
    files: Vec<PathBuf>,
    /// The frames of each file.
    frames: Vec<Vec<Frame>>,
    /// Series id in the WAL -> series text.
    keys: HashMap<u32, String>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), options()).unwrap();
        let a = db
            .series(&SeriesKey::new("up", &[("job", "a")]).unwrap())
            .unwrap();
        let b = db
            .series(&SeriesKey::new("up", &[("job", "b")]).unwrap())
            .unwrap();
        let rare = db
            .series(&SeriesKey::new("rare", &[("x", "y")]).unwrap())
            .unwrap();
        for i in 0..SAMPLES {
            let series = if i % 2 == 0 { &a } else { &b };
            db.append_ref(series, i * 1000, i as f64).unwrap();
            if i < RARE_SAMPLES {
                db.append_ref(&rare, i * 1000, -(i as f64)).unwrap();
            }
        }
        drop(db);
        let files = wal_files(dir.path());
        assert!(files.len() >= 3, "{files:?}");
        let frames: Vec<Vec<Frame>> = files.iter().map(|f| frames_of(f)).collect();
        let mut keys = HashMap::new();
        for frame in frames.iter().flatten() {
            if let Record::Series { series_id, key } = &frame.record {
                keys.insert(*series_id, key.to_string());
            }
        }
        Fixture {
            dir,
            files,
            frames,
            keys,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The samples in a frame.
    fn samples_in(&self, frame: &Frame) -> Vec<Id> {
        match &frame.record {
            Record::Samples(samples) => samples
                .iter()
                .map(|s| (self.keys[&s.series_id].clone(), s.timestamp_ms))
                .collect(),
            Record::Series { .. } => Vec::new(),
        }
    }

    /// Every sample written, minus those in the given (file, frame)s.
    fn all_but(&self, lost: &[(usize, usize)]) -> BTreeSet<Id> {
        let mut out = BTreeSet::new();
        for (f, frames) in self.frames.iter().enumerate() {
            for (i, frame) in frames.iter().enumerate() {
                if !lost.contains(&(f, i)) {
                    out.extend(self.samples_in(frame));
                }
            }
        }
        out
    }

    /// Index in file `f` of the first series frame defining `metric`.
    fn definition(&self, f: usize, metric: &str) -> usize {
        self.frames[f]
            .iter()
            .position(
                |fr| matches!(&fr.record, Record::Series { key, .. } if key.metric() == metric),
            )
            .unwrap()
    }

    /// Index in file `f` of a samples frame near the middle.
    fn middle_samples_frame(&self, f: usize) -> usize {
        let n = self.frames[f].len();
        (n / 2..n)
            .find(|&i| matches!(self.frames[f][i].record, Record::Samples(_)))
            .unwrap()
    }
}

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Parses the v2 frames of an undamaged file.
fn frames_of(path: &Path) -> Vec<Frame> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[0..8], b"STRATWAL");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2);
    let mut pos = 36;
    let mut frames = Vec::new();
    while pos < bytes.len() {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let end = pos + 16 + len;
        let record = record::decode(&bytes[pos + 16..end]).unwrap();
        frames.push(Frame {
            start: pos,
            end,
            record,
        });
        pos = end;
    }
    frames
}

/// Opens `dir` and returns what it holds and its recovery report.
fn open(dir: &Path) -> (BTreeSet<Id>, RecoveryReport) {
    let db = Db::open(dir, options()).unwrap();
    let report = db.recovery_report().clone();
    let stored = stored(&db);
    (stored, report)
}

fn stored(db: &Db) -> BTreeSet<Id> {
    let mut out = BTreeSet::new();
    for series in db.select(&[], TimeRange::ALL).unwrap() {
        for sample in &series.samples {
            out.insert((series.key.to_string(), sample.timestamp_ms));
        }
    }
    out
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

fn quarantined(dir: &Path, file: &Path) -> Vec<u8> {
    let name = format!("wal-{}", file.file_name().unwrap().to_string_lossy());
    std::fs::read(dir.join("quarantine").join(name)).unwrap()
}

/// A damage case: what to do to the fixture, which (file, frame)s that
/// loses, and how many damage reports and quarantined files it gives.
struct Case {
    name: &'static str,
    damage: fn(&Fixture),
    lost: fn(&Fixture) -> Vec<(usize, usize)>,
    without_series: u64,
    damage_reports: usize,
    quarantined: usize,
}

#[test]
fn damage_cases_keep_every_frame_they_do_not_touch() {
    let cases = [
        Case {
            name: "flipped byte in a middle frame of file 1 of 3",
            damage: |fx| {
                let i = fx.middle_samples_frame(0);
                flip(&fx.files[0], fx.frames[0][i].start + 20);
            },
            lost: |fx| vec![(0, fx.middle_samples_frame(0))],
            without_series: 0,
            damage_reports: 1,
            quarantined: 1,
        },
        Case {
            name: "flipped byte in a frame header (length field) in file 2",
            damage: |fx| {
                let i = fx.middle_samples_frame(1);
                flip(&fx.files[1], fx.frames[1][i].start + 5);
            },
            lost: |fx| vec![(1, fx.middle_samples_frame(1))],
            without_series: 0,
            damage_reports: 1,
            quarantined: 1,
        },
        Case {
            name: "flipped frame magic in file 1",
            damage: |fx| {
                let i = fx.middle_samples_frame(0);
                flip(&fx.files[0], fx.frames[0][i].start);
            },
            lost: |fx| vec![(0, fx.middle_samples_frame(0))],
            without_series: 0,
            damage_reports: 1,
            quarantined: 1,
        },
        Case {
            name: "damage in two files",
            damage: |fx| {
                for f in [0, 2] {
                    let i = fx.middle_samples_frame(f);
                    flip(&fx.files[f], fx.frames[f][i].start + 30);
                }
            },
            lost: |fx| {
                vec![
                    (0, fx.middle_samples_frame(0)),
                    (2, fx.middle_samples_frame(2)),
                ]
            },
            without_series: 0,
            damage_reports: 2,
            quarantined: 2,
        },
        Case {
            name: "lost definition of a series that other files of the session define",
            damage: |fx| {
                let i = fx.definition(1, "up");
                flip(&fx.files[1], fx.frames[1][i].start + 20);
            },
            // The samples are resolved from the definitions in files 1 and 3.
            lost: |_| vec![],
            without_series: 0,
            damage_reports: 1,
            quarantined: 1,
        },
        Case {
            name: "lost definition of a series only that file holds",
            damage: |fx| {
                let i = fx.definition(0, "rare");
                flip(&fx.files[0], fx.frames[0][i].start + 20);
            },
            lost: |fx| {
                (0..fx.frames[0].len())
                    .filter(|&i| {
                        fx.samples_in(&fx.frames[0][i])
                            .iter()
                            .any(|(k, _)| k.starts_with("rare"))
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
                    .map(|i| (0, i))
                    .collect()
            },
            without_series: RARE_SAMPLES as u64,
            damage_reports: 1,
            quarantined: 1,
        },
        Case {
            name: "garbage between two frames of file 1",
            damage: |fx| {
                let mut bytes = std::fs::read(&fx.files[0]).unwrap();
                let at = fx.frames[0][3].start;
                let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
                bytes.splice(at..at, garbage);
                std::fs::write(&fx.files[0], bytes).unwrap();
            },
            lost: |_| vec![],
            without_series: 0,
            damage_reports: 1,
            quarantined: 1,
        },
        Case {
            name: "a frame of valid-looking garbage with a wrong sequence number",
            damage: |fx| {
                // A copy of frame 2 inserted after frame 5: magic and crc
                // are valid, its sequence number is not.
                let mut bytes = std::fs::read(&fx.files[0]).unwrap();
                let copy = bytes[fx.frames[0][2].start..fx.frames[0][2].end].to_vec();
                let at = fx.frames[0][5].end;
                bytes.splice(at..at, copy);
                std::fs::write(&fx.files[0], bytes).unwrap();
            },
            lost: |_| vec![],
            without_series: 0,
            damage_reports: 1,
            quarantined: 1,
        },
        Case {
            name: "damaged header (magic) of file 2",
            damage: |fx| flip(&fx.files[1], 3),
            // Frames are found by resynchronisation.
            lost: |_| vec![],
            without_series: 0,
            damage_reports: 1,
            quarantined: 1,
        },
        Case {
            name: "damaged header (checksum) of file 1",
            damage: |fx| flip(&fx.files[0], 33),
            lost: |_| vec![],
            without_series: 0,
            damage_reports: 1,
            quarantined: 1,
        },
        Case {
            name: "torn tail of the last file (cut mid-frame)",
            damage: |fx| {
                let f = fx.files.len() - 1;
                let last = fx.frames[f].last().unwrap();
                let bytes = std::fs::read(&fx.files[f]).unwrap();
                std::fs::write(&fx.files[f], &bytes[..last.start + 10]).unwrap();
            },
            lost: |fx| {
                let f = fx.files.len() - 1;
                vec![(f, fx.frames[f].len() - 1)]
            },
            without_series: 0,
            damage_reports: 1,
            quarantined: 0,
        },
        Case {
            name: "file 1 cut at a frame boundary (file 2 says how many frames it had)",
            damage: |fx| {
                let keep = fx.frames[0][fx.frames[0].len() - 3].start;
                let bytes = std::fs::read(&fx.files[0]).unwrap();
                std::fs::write(&fx.files[0], &bytes[..keep]).unwrap();
            },
            lost: |fx| {
                let n = fx.frames[0].len();
                vec![(0, n - 3), (0, n - 2), (0, n - 1)]
            },
            without_series: 0,
            damage_reports: 1,
            quarantined: 1,
        },
    ];
    for case in &cases {
        let fx = Fixture::new();
        (case.damage)(&fx);
        let damaged: Vec<Vec<u8>> = fx.files.iter().map(|f| std::fs::read(f).unwrap()).collect();
        let expected = fx.all_but(&(case.lost)(&fx));
        let (got, report) = open(fx.path());
        let name = case.name;
        assert_eq!(got, expected, "{name}: {report:?}");
        assert_eq!(report.samples_without_series, case.without_series, "{name}");
        assert_eq!(
            report.wal_damage.len(),
            case.damage_reports,
            "{name}: {report:?}"
        );
        assert_eq!(
            report.quarantined.len(),
            case.quarantined,
            "{name}: {report:?}"
        );
        for q in &report.quarantined {
            let f = fx.files.iter().position(|p| *p == q.from).unwrap();
            assert_eq!(
                quarantined(fx.path(), &q.from),
                damaged[f],
                "{name}: the copy holds the damaged bytes"
            );
        }
        for (f, path) in fx.files.iter().enumerate() {
            assert!(path.exists(), "{name}: a damaged file is never deleted");
            let now = std::fs::read(path).unwrap();
            let torn = report
                .wal_damage
                .iter()
                .any(|d| d.torn_tail && d.path == *path);
            if !torn {
                assert_eq!(now, damaged[f], "{name}: only torn tails are cut");
            }
        }
        // Recovery is repeatable: the same data and the same damage.
        for _ in 0..10 {
            let (again, again_report) = open(fx.path());
            assert_eq!(again, expected, "{name}");
            let untorn = |r: &RecoveryReport| {
                r.wal_damage
                    .iter()
                    .filter(|d| !d.torn_tail)
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(untorn(&again_report), untorn(&report), "{name}");
            assert!(again_report.wal_damage.iter().all(|d| !d.torn_tail));
            assert!(again_report.quarantined.is_empty(), "copied once");
        }
    }
}

#[test]
fn truncation_at_every_frame_boundary_and_inside_the_last_frame() {
    let fx = Fixture::new();
    let f = fx.files.len() - 1;
    let path = &fx.files[f];
    let original = std::fs::read(path).unwrap();
    let frames = &fx.frames[f];
    let last = frames.last().unwrap();
    let mut cuts: Vec<usize> = frames.iter().map(|fr| fr.start).collect();
    cuts.extend(last.start + 1..last.end);
    for cut in cuts {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(fx.path(), copy.path());
        let copy_path = copy.path().join("wal").join(path.file_name().unwrap());
        std::fs::write(&copy_path, &original[..cut]).unwrap();
        let whole = frames.iter().filter(|fr| fr.end <= cut).count();
        let lost: Vec<(usize, usize)> = (whole..frames.len()).map(|i| (f, i)).collect();
        let (got, report) = open(copy.path());
        assert_eq!(got, fx.all_but(&lost), "cut at {cut}");
        let boundary = frames.get(whole).map_or(original.len(), |fr| fr.start);
        if cut == boundary {
            // The newest file cut at a frame boundary looks exactly like a
            // crash before that frame was written.
            assert!(report.wal_damage.is_empty(), "cut at {cut}: {report:?}");
        } else {
            assert_eq!(report.wal_damage.len(), 1, "cut at {cut}: {report:?}");
            let damage = &report.wal_damage[0];
            assert!(damage.torn_tail);
            assert_eq!(damage.path, copy_path);
            assert_eq!(damage.offset, boundary as u64);
            assert_eq!(damage.dropped_bytes, (cut - boundary) as u64);
            assert!(damage.reason.contains("torn"), "{}", damage.reason);
            assert_eq!(
                std::fs::metadata(&copy_path).unwrap().len(),
                boundary as u64
            );
        }
        assert!(report.quarantined.is_empty());
        let (again, again_report) = open(copy.path());
        assert_eq!(again, got);
        assert!(again_report.is_clean(), "cut at {cut}: {again_report:?}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).unwrap();
        let target = to.join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.file_name().unwrap() != "LOCK" {
            out.push(path);
        }
    }
    out
}

#[test]
fn unknown_version_fails_the_open_and_touches_nothing() {
    let fx = Fixture::new();
    let path = &fx.files[1];
    let mut bytes = std::fs::read(path).unwrap();
    bytes[8..10].copy_from_slice(&3u16.to_le_bytes());
    let crc = crc32fast::hash(&bytes[0..32]);
    bytes[32..36].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, &bytes).unwrap();
    let before: BTreeMap<PathBuf, Vec<u8>> = walk(fx.path())
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    for read_only in [false, true] {
        let result = if read_only {
            Db::open_read_only(fx.path())
        } else {
            Db::open(fx.path(), options())
        };
        match result {
            Err(Error::Corrupt(e)) => {
                assert_eq!(e.path, *path);
                assert_eq!(e.offset, 8);
                assert_eq!(
                    e.kind,
                    Corruption::UnsupportedVersion {
                        found: 3,
                        supported: 2
                    }
                );
            }
            Err(other) => panic!("wrong error: {other}"),
            Ok(_) => panic!("an unknown WAL version must fail the open"),
        }
        let after: BTreeMap<PathBuf, Vec<u8>> = walk(fx.path())
            .into_iter()
            .map(|p| {
                let b = std::fs::read(&p).unwrap();
                (p, b)
            })
            .collect();
        assert_eq!(after, before, "nothing on disk changed");
    }
}

#[test]
fn a_torn_create_is_removed_and_reported() {
    let fx = Fixture::new();
    let next = fx
        .path()
        .join("wal")
        .join(format!("{:020}.wal", fx.files.len()));
    // Cut short, or header-sized but never written (zeros).
    for bytes in [&b"STRATWAL\x02\x00"[..], &[0u8; 36][..]] {
        std::fs::write(&next, bytes).unwrap();
        let (got, report) = open(fx.path());
        assert_eq!(got, fx.all_but(&[]));
        let damage = report
            .wal_damage
            .iter()
            .find(|d| d.path == next)
            .expect("reported");
        assert!(damage.torn_tail);
        assert!(damage.reason.contains("torn create"));
        assert!(report.quarantined.is_empty());
        assert!(!next.exists());
    }
}

#[test]
fn read_only_open_reports_and_changes_nothing() {
    let fx = Fixture::new();
    let i = fx.middle_samples_frame(0);
    flip(&fx.files[0], fx.frames[0][i].start + 20);
    let f = fx.files.len() - 1;
    let bytes = std::fs::read(&fx.files[f]).unwrap();
    std::fs::write(&fx.files[f], &bytes[..bytes.len() - 3]).unwrap();
    let before: Vec<Vec<u8>> = fx.files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let db = Db::open_read_only(fx.path()).unwrap();
    let report = db.recovery_report().clone();
    assert!(report.read_only);
    assert_eq!(report.wal_damage.len(), 2, "{report:?}");
    assert_eq!(report.quarantined.len(), 1);
    let expected = fx.all_but(&[(0, i), (f, fx.frames[f].len() - 1)]);
    assert_eq!(stored(&db), expected);
    drop(db);
    let after: Vec<Vec<u8>> = fx.files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert_eq!(after, before);
    assert!(!fx.path().join("quarantine").exists());
}

/// Builds a version 1 WAL file by hand: 24-byte header, frames of `u32 len`,
/// `u32 crc32(payload)`, payload, with version 1 series records (type 1).
fn v1_file(file_id: u64, samples: &[(u32, i64, f64)]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"STRATWAL");
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&0u16.to_le_bytes());
    bytes.extend_from_slice(&file_id.to_le_bytes());
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let mut starts = Vec::new();
    let mut push = |payload: Vec<u8>, bytes: &mut Vec<u8>| {
        starts.push(bytes.len());
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
    };
    for (id, job) in [(0u32, "a"), (1, "b")] {
        let mut p = vec![1u8];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&2u16.to_le_bytes());
        for (name, value) in [("__name__", "up"), ("job", job)] {
            p.extend_from_slice(&(name.len() as u16).to_le_bytes());
            p.extend_from_slice(name.as_bytes());
            p.extend_from_slice(&(value.len() as u32).to_le_bytes());
            p.extend_from_slice(value.as_bytes());
        }
        push(p, &mut bytes);
    }
    for &(id, ts, value) in samples {
        let mut p = vec![2u8];
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&ts.to_le_bytes());
        p.push(id as u8); // varint of a small id
        p.push(0); // zigzag(ts - base) = 0
        p.extend_from_slice(&value.to_bits().to_le_bytes());
        push(p, &mut bytes);
    }
    (bytes, starts)
}

#[test]
fn version_1_files_still_replay() {
    let samples: Vec<(u32, i64, f64)> = (0..10).map(|i| (i % 2, i64::from(i) * 10, 0.5)).collect();
    let expected = |n: usize| -> BTreeSet<Id> {
        samples[..n]
            .iter()
            .map(|&(id, ts, _)| (format!("up{{job=\"{}\"}}", ["a", "b"][id as usize]), ts))
            .collect()
    };
    let (bytes, starts) = v1_file(0, &samples);

    // Intact.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("wal")).unwrap();
    let path = dir.path().join("wal").join(format!("{:020}.wal", 0));
    std::fs::write(&path, &bytes).unwrap();
    let (got, report) = open(dir.path());
    assert_eq!(got, expected(10));
    assert!(report.is_clean(), "{report:?}");

    // A torn tail is truncated.
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let (got, report) = open(dir.path());
    assert_eq!(got, expected(9));
    assert!(report.wal_damage[0].torn_tail);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), starts[11] as u64);

    // Damage in the middle: version 1 cannot resynchronise, so replay stops
    // there; the file is quarantined, never truncated or deleted.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("wal")).unwrap();
    let path = dir.path().join("wal").join(format!("{:020}.wal", 0));
    let mut damaged = bytes.clone();
    damaged[starts[6] + 12] ^= 1; // the 5th samples frame
    std::fs::write(&path, &damaged).unwrap();
    let (got, report) = open(dir.path());
    assert_eq!(got, expected(4));
    assert_eq!(report.wal_damage.len(), 1);
    assert!(!report.wal_damage[0].torn_tail);
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(std::fs::read(&path).unwrap(), damaged);
    let (again, _) = open(dir.path());
    assert_eq!(again, got);
}

#[test]
fn label_names_longer_than_u16_survive_replay() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("n{}", "x".repeat(70_000));
    let key = SeriesKey::new("up", &[(name.as_str(), "v")]).unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    db.append(&key, 1, 1.0).unwrap();
    drop(db);
    let db = Db::open(dir.path(), options()).unwrap();
    assert!(db.recovery_report().is_clean());
    let selected = db.select(&[], TimeRange::ALL).unwrap();
    assert_eq!(selected.len(), 1);
    assert_eq!(selected[0].key, key);
}

#[test]
fn wal_ids_at_the_top_of_the_range_are_typed_errors() {
    for id in [u64::MAX, u64::MAX - 1] {
        let dir = tempfile::tempdir().unwrap();
        drop(Db::open(dir.path(), options()).unwrap());
        let path = dir.path().join("wal").join(format!("{id:020}.wal"));
        let mut header = [0u8; 36];
        header[0..8].copy_from_slice(b"STRATWAL");
        header[8..10].copy_from_slice(&2u16.to_le_bytes());
        header[10..12].copy_from_slice(&36u16.to_le_bytes());
        header[12..20].copy_from_slice(&id.to_le_bytes());
        header[20..28].copy_from_slice(&id.to_le_bytes());
        let crc = crc32fast::hash(&header[0..32]);
        header[32..36].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, header).unwrap();
        match Db::open(dir.path(), options()) {
            Err(Error::Corrupt(e)) => assert!(e.to_string().contains("no id"), "{e}"),
            Err(other) => panic!("wrong error: {other}"),
            Ok(_) => panic!("file id {id} leaves no room for the next file"),
        }
    }
}

/// `tests/data/wal-v1.wal` was written by the version 1 writer (strata
/// before WAL version 2): `up{job="a"}` at 1_700_000_000_000 + i s for i in
/// 0..10 with value i, then one batch of five `temp_celsius{room="é",zone="1"}`
/// samples 15 s apart (20.5 + i/4), then `up{job="a"}` at +10 s with NaN.
#[test]
fn a_version_1_file_from_the_version_1_writer_replays() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("wal")).unwrap();
    let path = dir.path().join("wal").join(format!("{:020}.wal", 0));
    std::fs::copy("tests/data/wal-v1.wal", &path).unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    assert!(
        db.recovery_report().is_clean(),
        "{:?}",
        db.recovery_report()
    );
    assert_eq!(db.recovery_report().samples_replayed, 16);
    let selected = db.select(&[], TimeRange::ALL).unwrap();
    let t0 = 1_700_000_000_000;
    let temp = SeriesKey::new("temp_celsius", &[("room", "é"), ("zone", "1")]).unwrap();
    let up = SeriesKey::new("up", &[("job", "a")]).unwrap();
    assert_eq!(selected.len(), 2);
    assert_eq!(selected[0].key, temp);
    let temps: Vec<(i64, f64)> = selected[0]
        .samples
        .iter()
        .map(|s| (s.timestamp_ms, s.value))
        .collect();
    let expected: Vec<(i64, f64)> = (0..5)
        .map(|i| (t0 + i * 15_000, 20.5 + i as f64 / 4.0))
        .collect();
    assert_eq!(temps, expected);
    assert_eq!(selected[1].key, up);
    let ups = &selected[1].samples;
    assert_eq!(ups.len(), 11);
    for (i, s) in ups.iter().take(10).enumerate() {
        assert_eq!((s.timestamp_ms, s.value), (t0 + i as i64 * 1000, i as f64));
    }
    assert_eq!(ups[10].timestamp_ms, t0 + 10_000);
    assert!(ups[10].value.is_nan());
    drop(db);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read("tests/data/wal-v1.wal").unwrap(),
        "replay never rewrites a file"
    );
}
