//! `strata bench compact` end to end on tiny workloads: the segments it
//! reports, the data it leaves (compacted, nothing lost) and the year of
//! rollups. No timing thresholds: only counts are checked.

mod cli_support;

use cli_support::{assert_usage_errors, strata};
use strata::{Db, MatchOp, Matcher, TimeRange};

/// The line of `out` starting (after indentation) with `prefix`, without
/// its indentation.
fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in\n{out}"))
}

#[test]
fn compact_reports_partition_segments_and_keeps_every_sample() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("db");
    let dir_arg = dir.to_str().unwrap();
    // 4 h of devops from a partition boundary: two 2 h segments.
    let (code, out, err) = strata(&[
        "bench",
        "compact",
        "--workload",
        "devops",
        "--series",
        "10",
        "--duration",
        "4h",
        "--background-flush",
        "--dir",
        dir_arg,
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let samples = 10 * 4 * 360;
    assert!(
        line(&out, "written").contains(&format!("{samples} samples of 10 series")),
        "{out}"
    );
    let before = &out[out.find("before").unwrap()..out.find("compact ").unwrap()];
    assert!(line(before, "raw").contains("2 segments"), "{before}");
    assert!(line(&out, "during compaction").contains("calls"), "{out}");
    assert!(line(&out, "no compaction").contains("calls"), "{out}");
    // Only the kept database is left: the copy for the latency run is gone.
    let left: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");

    // The kept, compacted database holds every sample written.
    let db = Db::open_read_only(&dir).unwrap();
    let series = db
        .select(
            &[Matcher::new("__name__", MatchOp::Regex, "cpu_.*").unwrap()],
            TimeRange::ALL,
        )
        .unwrap();
    assert_eq!(series.len(), 10);
    let stored: usize = series.iter().map(|s| s.samples.len()).sum();
    assert_eq!(stored, samples);
}

#[test]
fn year_of_rollups_counts_one_bucket_per_series_and_hour() {
    let (code, out, err) = strata(&[
        "bench",
        "compact",
        "--year",
        "--days",
        "2",
        "--instances",
        "1",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    // One instance of the demo: 58 series, 48 hours each.
    assert!(out.contains("(1 instances x 58 series = 58)"), "{out}");
    assert!(
        line(&out, "buckets").starts_with(&format!("buckets       {} (48 per series)", 58 * 48)),
        "{out}"
    );
    assert!(
        line(&out, "rollup segment").contains("bytes/bucket"),
        "{out}"
    );
}

#[test]
fn compact_refuses_mixed_options() {
    assert_usage_errors(&[
        (
            vec!["bench", "compact", "--year", "--workload", "devops"],
            "cannot be used with",
        ),
        (vec!["bench", "compact", "--days", "3"], "--year"),
        (vec!["bench", "compact", "--year", "--days", "0"], "--days"),
    ]);
}
