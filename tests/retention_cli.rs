//! `strata compact`, the retention policy file (`strata.toml`) as the
//! commands that write read it, and `strata inspect` showing tiers.

mod cli_support;

use std::path::{Path, PathBuf};

use cli_support::strata;
use strata::rollup::{store, Buckets};
use strata::{Db, Manifest, Options, SegmentMeta, SegmentPin, SegmentWriter, SeriesKey, TierMeta};

/// 2026-12-01T00:00:00Z.
const START_MS: i64 = 1_796_083_200_000;

/// A database of 3 series x 10 minutes at 10 s, imported and flushed.
fn imported_db(root: &Path) -> PathBuf {
    let db = root.join("db");
    let mut tsv = String::new();
    for job in ["a", "b", "c"] {
        for i in 0..60i64 {
            tsv.push_str(&format!(
                "requests_total{{job=\"{job}\"}}\t{}\t{}\n",
                START_MS + i * 10_000,
                i * 3
            ));
        }
    }
    let input = root.join("in.tsv");
    std::fs::write(&input, tsv).unwrap();
    let (code, out, err) = strata(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    db
}

const POLICY: &str = r#"
[retention]
raw = "30d"
[[retention.tier]]
resolution = "5m"
keep = "1y"
[[retention.override]]
metric = "debug_.*"
raw = "1d"
"#;

#[test]
fn compact_help_says_what_it_does() {
    let (code, out, err) = strata(&["compact", "--help"]);
    assert_eq!(code, 0, "{out}{err}");
    for text in [
        "roll raw samples up",
        "strata.toml",
        "--retention <FILE>",
        "--now <NOW>",
        "Safe to interrupt",
        "No sample is lost or doubled",
    ] {
        assert!(out.contains(text), "{text}: {out}");
    }
    cli_support::assert_usage_errors(&[
        (vec!["compact"], "--db <DIR>"),
        (
            vec!["compact", "--db", "x", "--now", "soon"],
            "is not a time",
        ),
    ]);
}

#[test]
fn compact_reports_and_the_directory_still_verifies() {
    let root = tempfile::tempdir().unwrap();
    let db = imported_db(root.path());
    let db_text = db.to_str().unwrap();
    std::fs::write(db.join("strata.toml"), POLICY).unwrap();

    let (code, out, err) = strata(&["compact", "--db", db_text, "--now", "2026-12-02T00:00:00Z"]);
    assert_eq!(code, 0, "{out}{err}");
    let policy_line = format!(
        "policy          raw 30d, 5m 1y; override debug_.*: raw 1d (from {})",
        db.join("strata.toml").display()
    );
    assert!(out.contains(&policy_line), "{out}");
    assert!(
        out.contains("clock           2026-12-02T00:00:00.000Z (1796169600000 ms) (--now)"),
        "{out}"
    );
    for text in [
        "merged          ",
        "rolled up       ",
        "segments deleted",
        "bytes written",
        "segment bytes   ",
    ] {
        assert!(out.contains(text), "{text}: {out}");
    }
    // The raw tier's row: its segments before and after, and its range.
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("raw ")
            && l.contains("2026-12-01T00:00:00.000Z .. 2026-12-01T00:09:50.000Z")),
        "{out}"
    );

    let (code, out, err) = strata(&["verify", db_text]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("intact") && !out.contains("RECOVERY"), "{out}");
    // Every sample is still there.
    let (code, out, err) = strata(&["inspect", db_text]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("segments total  180 samples"), "{out}");

    // --retention names another file; the directory's is not read then.
    let other = root.path().join("other.toml");
    std::fs::write(
        &other,
        "[retention]\nraw = \"forever\"\n[[retention.tier]]\nresolution = \"5m\"\nkeep = \"forever\"\n",
    )
    .unwrap();
    let (code, out, err) = strata(&[
        "compact",
        "--db",
        db_text,
        "--retention",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "policy          raw forever, 5m forever (from {})",
            other.display()
        )),
        "{out}"
    );
    assert!(out.contains("clock           the wall clock"), "{out}");
}

#[test]
fn a_bad_policy_file_is_an_error_naming_the_file_and_key() {
    let root = tempfile::tempdir().unwrap();
    let db = imported_db(root.path());
    let db_text = db.to_str().unwrap();
    let file = db.join("strata.toml");
    std::fs::write(
        &file,
        "[retention]\nraw = \"15d\"\n[[retention.tier]]\nresolution = \"1m\"\nkepe = \"90d\"\n",
    )
    .unwrap();
    let expected = format!(
        "{}: retention.tier[0].kepe: unknown key (the keys here are: resolution, keep)",
        file.display()
    );
    // Every command that opens the directory for writing reads the file.
    let input = root.path().join("in.tsv");
    for args in [
        vec!["compact", "--db", db_text],
        vec!["import", "--db", db_text, input.to_str().unwrap()],
    ] {
        let (code, out, err) = strata(&args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains(&expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Inspect still describes the directory, and says what is wrong.
    let (code, out, err) = strata(&["inspect", db_text]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("retention       unusable policy file"),
        "{out}"
    );
    assert!(out.contains(&expected), "{out}");

    std::fs::write(&file, "[retention]\nraw = \"15 days\"\n").unwrap();
    let (code, out, err) = strata(&["compact", "--db", db_text]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("retention.raw: \"15 days\" is not a positive duration"),
        "{err}"
    );
    std::fs::write(&file, "[retention\n").unwrap();
    let (code, out, err) = strata(&["compact", "--db", db_text]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("strata.toml: not valid TOML"), "{err}");
}

#[test]
fn compact_refuses_a_locked_directory_and_one_that_is_no_database() {
    let root = tempfile::tempdir().unwrap();
    let db = imported_db(root.path());
    let writer = Db::open(&db, Options::default()).unwrap();
    let (code, out, err) = strata(&["compact", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("another process") && err.contains("has it open for writing"),
        "{err}"
    );
    writer.close().unwrap();

    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for dir in [empty.clone(), root.path().join("missing")] {
        let (code, out, err) = strata(&["compact", "--db", dir.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(err.contains("not a strata database"), "{err}");
    }
    // Nothing was created.
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    assert!(!root.path().join("missing").exists());
}

#[test]
fn inspect_shows_tiers_and_the_policy() {
    let root = tempfile::tempdir().unwrap();
    let db = imported_db(root.path());
    let db_text = db.to_str().unwrap();
    let (code, out, err) = strata(&["inspect", db_text]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("retention       raw 15d, 1m 90d, 1h 2y (the default: no strata.toml)"),
        "{out}"
    );
    assert!(
        out.contains("tier raw        1 segment(s), ") && out.contains(" 180 samples, "),
        "{out}"
    );
    assert!(out.contains("blocks 1 x flush"), "{out}");
    assert!(
        out.contains("time range 2026-12-01T00:00:00.000Z .. 2026-12-01T00:09:50.000Z"),
        "{out}"
    );
    assert!(
        out.contains("retained from the start (nothing deleted)"),
        "{out}"
    );
    assert!(
        out.contains("tier 1m         in the policy, no segments yet"),
        "{out}"
    );
    std::fs::write(db.join("strata.toml"), POLICY).unwrap();
    let (code, out, err) = strata(&["inspect", db_text]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("retention       raw 30d, 5m 1y; override debug_.*: raw 1d (from "),
        "{out}"
    );
    assert!(out.contains("tier 5m         in the policy"), "{out}");
}

/// Writes a rollup segment of 1 m buckets (5 buckets of `requests_total`)
/// at `path`.
fn write_rollup_segment(path: &Path) -> strata::SegmentSummary {
    let key = SeriesKey::new("requests_total", &[("job", "a")]).unwrap();
    let mut buckets = Buckets::default();
    let times: Vec<i64> = (0..30).map(|i| START_MS + i * 10_000).collect();
    let values: Vec<f64> = (0..30).map(f64::from).collect();
    buckets.push_raw(&times, &values, 60_000);
    assert_eq!(buckets.len(), 5);
    let mut writer = SegmentWriter::create(path).unwrap();
    store::add_buckets(&mut writer, &key, &buckets).unwrap();
    writer.finish().unwrap()
}

/// A directory whose manifest lists a 1 m tier with one rollup segment (as
/// compaction leaves it): inspect shows the tier's buckets, block, rolled-up
/// and retained bounds; verify accepts it.
#[test]
fn inspect_shows_a_rollup_tier_from_the_manifest() {
    let root = tempfile::tempdir().unwrap();
    let db = imported_db(root.path());
    let mut manifest = Manifest::load(&db).unwrap().unwrap();
    let seq = manifest.next_segment_seq;
    let path = db.join("segments").join(SegmentMeta::file_name(seq));
    let summary = write_rollup_segment(&path);
    let segment = strata::Segment::open(&path).unwrap();
    manifest.tiers.push(TierMeta {
        resolution_ms: 60_000,
        rolled_up_to_ms: START_MS + 5 * 60_000,
        retained_from_ms: START_MS,
    });
    manifest.segments.push(SegmentMeta {
        seq,
        partition_start_ms: START_MS,
        min_time_ms: summary.min_time_ms,
        max_time_ms: summary.max_time_ms,
        sample_count: summary.sample_count,
        series_count: summary.series_count,
        pin: Some(SegmentPin::of_file(&path, &segment).unwrap()),
        resolution_ms: 60_000,
        block_duration_ms: 86_400_000,
    });
    manifest.next_segment_seq = seq + 1;
    manifest.store(&db).unwrap();

    let db_text = db.to_str().unwrap();
    let (code, out, err) = strata(&["inspect", db_text]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "tier 1m         1 segment(s), {} bytes, 5 buckets, ",
            summary.file_len
        )),
        "{out}"
    );
    assert!(out.contains("blocks 1 x 1d"), "{out}");
    assert!(
        out.contains("time range 2026-12-01T00:00:00.000Z .. 2026-12-01T00:04:50.000Z"),
        "{out}"
    );
    assert!(
        out.contains(
            "rolled up to 2026-12-01T00:05:00.000Z; retained from 2026-12-01T00:00:00.000Z"
        ),
        "{out}"
    );
    // The segments table names each segment's tier and block.
    assert!(
        out.lines()
            .any(|l| l.contains("    1m  2026-12-01T00:00:00.000Z     1d")),
        "{out}"
    );
    // The raw tier is still what was imported; the 1h tier is still to come.
    assert!(out.contains("segments total  180 samples"), "{out}");
    assert!(
        out.contains("tier 1h         in the policy, no segments yet"),
        "{out}"
    );
    let (code, out, err) = strata(&["verify", db_text]);
    assert_eq!(code, 0, "{out}{err}");
}

/// A rollup segment file: its columns are shown as one base series with
/// its bucket count.
#[test]
fn inspect_shows_a_rollup_segment_by_base_series() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("rollup.seg");
    write_rollup_segment(&path);

    let (code, out, err) = strata(&["inspect", path.to_str().unwrap(), "--series"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "rollup         1 base series x 7 columns (count, sum, min, max, first, last, increase), 5 buckets"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "requests_total{{job=\"a\"}}  buckets=5 range={START_MS}..{} (bucket starts; 7 rollup columns)",
            START_MS + 4 * 60_000
        )),
        "{out}"
    );
    assert!(!out.contains("__rollup__=\"sum\""), "{out}");
}

/// The demo keeps a policy file in its directory when it replaces its
/// data, and reads it.
#[test]
fn demo_keeps_and_reads_the_policy_file() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("demo");
    let dir_text = dir.to_str().unwrap();
    let demo = [
        "demo",
        "--dir",
        dir_text,
        "--hours",
        "0.01",
        "--instances",
        "1",
    ];
    let (code, out, err) = strata(&demo);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(dir.join("strata.toml"), POLICY).unwrap();
    let (code, out, err) = strata(&demo);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("strata.toml")).unwrap(),
        POLICY
    );
    std::fs::write(dir.join("strata.toml"), "[retention]\nraw = 5\n").unwrap();
    let (code, out, err) = strata(&demo);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("retention.raw: must be a string"), "{err}");
}
