//! Compaction on a live database: merged segments answer every query as
//! the segments they replace did, with fewer files and fewer bytes per
//! sample; rollup segments hold exactly the buckets of the raw data; and
//! appends and queries running during compactions never fail, never see a
//! sample twice and never see a partial state.

mod compaction_support;

use std::sync::atomic::{AtomicBool, Ordering};

use compaction_support::*;
use strata::workload::{Devops, DevopsConfig};
use strata::{Db, Options, RetentionPolicy, SeriesKey, SyncMode, TierPolicy, TimeRange};

#[test]
fn merging_keeps_every_answer_with_fewer_files_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(keep_everything())).unwrap();
    write(&db, 3, 0, 40);
    let before = snapshot(&db);
    let answers = queries(&db, 0, 40 * MINUTE);
    let raw_before = segments_of(&manifest(dir.path()), 0);
    let bytes_before = bytes_of(&manifest(dir.path()), 0);
    // Two flushes per partition, plus the late samples' segments.
    assert!(raw_before.len() >= 80, "{} segments", raw_before.len());

    // A reader's snapshot taken before compaction.
    let held = db.select_series(&[], TimeRange::ALL).unwrap();

    let report = db.compact().unwrap();
    assert!(report.segments_merged > 0, "{report:?}");
    assert_eq!(snapshot(&db), before);
    // The reader still reads its snapshot, from files now deleted.
    assert_eq!(read_set(&held), before);
    drop(held);
    assert_eq!(queries(&db, 0, 40 * MINUTE), answers);

    let after = manifest(dir.path());
    let raw_after = segments_of(&after, 0);
    // 36-minute blocks: [0, 36 min) merged into one, the rest at 6 minutes.
    assert!(raw_after.len() < raw_before.len() / 4, "{raw_after:?}");
    assert!(raw_after
        .iter()
        .any(|s| s.block_duration_ms == 36 * MINUTE && s.partition_start_ms == 0));
    let samples = sample_count(&before) as f64;
    let (per_sample_before, per_sample_after) = (
        bytes_before as f64 / samples,
        bytes_of(&after, 0) as f64 / samples,
    );
    assert!(
        per_sample_after < per_sample_before,
        "{per_sample_before} -> {per_sample_after} bytes/sample"
    );

    // A second run finds nothing more to merge, and reopening sees the
    // same data.
    let again = db.compact().unwrap();
    assert_eq!(again.segments_merged, 0, "{again:?}");
    drop(db);
    let db = Db::open(dir.path(), options(keep_everything())).unwrap();
    assert!(db.recovery_report().is_clean());
    assert_eq!(snapshot(&db), before);
    assert_eq!(queries(&db, 0, 40 * MINUTE), answers);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn rollup_segments_hold_the_buckets_of_the_raw_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(keep_everything())).unwrap();
    write(&db, 2, 0, 30);
    let raw = snapshot(&db);
    let report = db.compact().unwrap();
    assert!(report.rollup_segments_written > 0, "{report:?}");

    let stored = manifest(dir.path());
    assert_eq!(stored.tiers.len(), 2);
    let (tier_1, tier_2) = (stored.tiers[0], stored.tiers[1]);
    assert_eq!(
        (tier_1.resolution_ms, tier_2.resolution_ms),
        (TIER_1_MS, TIER_2_MS)
    );
    // Everything before the last complete partition (the newest sample
    // minus the out-of-order window) is rolled up into both tiers.
    assert_eq!(tier_1.rolled_up_to_ms, 29 * MINUTE);
    assert_eq!(tier_2.rolled_up_to_ms, 29 * MINUTE);
    for tier in [tier_1, tier_2] {
        assert_buckets_agree(
            &stored_buckets(dir.path(), tier.resolution_ms),
            &expected_buckets(&raw, tier.resolution_ms, tier.rolled_up_to_ms),
        );
    }

    // More data: the tiers continue where they stopped, merged segments
    // included.
    write(&db, 2, 30 * MINUTE, 50);
    let raw = snapshot(&db);
    let _ = db.compact().unwrap();
    let stored = manifest(dir.path());
    assert_eq!(stored.tiers[0].rolled_up_to_ms, 79 * MINUTE);
    let tier_1_segments = segments_of(&stored, TIER_1_MS);
    assert!(
        tier_1_segments
            .iter()
            .any(|s| s.block_duration_ms == 12 * MINUTE),
        "tier 1 merged into 12-minute blocks: {tier_1_segments:?}"
    );
    for tier in &stored.tiers {
        assert_buckets_agree(
            &stored_buckets(dir.path(), tier.resolution_ms),
            &expected_buckets(&raw, tier.resolution_ms, tier.rolled_up_to_ms),
        );
    }
}

#[test]
fn merging_devops_partitions_lowers_bytes_per_sample() {
    let dir = tempfile::tempdir().unwrap();
    let hour = 60 * MINUTE;
    let options = Options {
        sync: SyncMode::Never,
        partition_duration_ms: hour,
        out_of_order_window_ms: 0,
        flush_complete_partitions: false,
        background_compaction: false,
        retention: RetentionPolicy {
            raw_keep_ms: None,
            tiers: Vec::new(),
            overrides: Vec::new(),
        },
        ..Options::default()
    };
    let db = Db::open(dir.path(), options).unwrap();
    let config = DevopsConfig {
        hosts: 4,
        start_ms: 0,
        ..DevopsConfig::default()
    };
    let mut devops = Devops::new(config);
    let keys: Vec<SeriesKey> = devops.keys().to_vec();
    // Seven hours, one segment per hour: the first six make a complete
    // 6-hour window.
    loop {
        let (t, values) = devops.next_round();
        if t >= 7 * hour {
            break;
        }
        for (key, &value) in keys.iter().zip(values) {
            db.append(key, t, value).unwrap();
        }
        if (t + 10_000) % hour == 0 {
            db.flush().unwrap();
        }
    }
    let before = snapshot(&db);
    let samples = sample_count(&before) as f64;
    let bytes_before = bytes_of(&manifest(dir.path()), 0) as f64;
    assert_eq!(segments_of(&manifest(dir.path()), 0).len(), 7);

    let report = db.compact().unwrap();
    assert_eq!(report.segments_merged, 6, "{report:?}");
    let after = manifest(dir.path());
    assert_eq!(segments_of(&after, 0).len(), 2);
    let bytes_after = bytes_of(&after, 0) as f64;
    assert!(
        bytes_after / samples < bytes_before / samples,
        "{} -> {} bytes/sample",
        bytes_before / samples,
        bytes_after / samples
    );
    assert_eq!(snapshot(&db), before);
}

/// Writers append to their own series in time order (value = timestamp), so
/// any consistent view holds, per series, exactly the timestamps 0, 100,
/// 200, ... up to some point: a gap is a lost sample or a partial state, a
/// repeat a doubled one. Writers stay within 100 samples (10 s) of each
/// other, inside the out-of-order window, so background flushes never
/// reject a slower writer's samples.
#[test]
fn appends_and_queries_during_compactions_see_consistent_data() {
    const WRITERS: usize = 3;
    const SERIES_PER_WRITER: usize = 2;
    const SAMPLES: i64 = 12_000;
    const STEP: i64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        sync: SyncMode::Never,
        partition_duration_ms: 10 * SECOND,
        out_of_order_window_ms: 20 * SECOND,
        flush_complete_partitions: true,
        background_compaction: true,
        compaction_write_bytes_per_s: None,
        retention: RetentionPolicy {
            raw_keep_ms: None,
            tiers: vec![
                TierPolicy {
                    resolution_ms: SECOND,
                    keep_ms: None,
                },
                TierPolicy {
                    resolution_ms: 10 * SECOND,
                    keep_ms: None,
                },
            ],
            overrides: Vec::new(),
        },
        ..Options::default()
    };
    let db = Db::open(dir.path(), options).unwrap();
    let key = |w: usize, s: usize| {
        SeriesKey::from_pairs("load", &[("writer", w.to_string()), ("s", s.to_string())]).unwrap()
    };
    let done = AtomicBool::new(false);
    let lockstep = std::sync::Barrier::new(WRITERS);
    let check = |db: &Db| {
        let all = db.select(&[], TimeRange::ALL).unwrap();
        for series in &all {
            for (i, sample) in series.samples.iter().enumerate() {
                assert_eq!(
                    sample.timestamp_ms,
                    i as i64 * STEP,
                    "{}: sample {i} of {}",
                    series.key,
                    series.samples.len()
                );
                assert_eq!(sample.value, sample.timestamp_ms as f64);
            }
        }
        all.iter().map(|s| s.samples.len()).sum::<usize>()
    };
    let compactions = std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let (db, lockstep) = (&db, &lockstep);
            scope.spawn(move || {
                for i in 0..SAMPLES {
                    if i % 100 == 0 {
                        lockstep.wait();
                    }
                    let t = i * STEP;
                    for s in 0..SERIES_PER_WRITER {
                        db.append(&key(w, s), t, t as f64).unwrap();
                    }
                }
            });
        }
        for _ in 0..2 {
            scope.spawn(|| {
                let mut seen = 0;
                while !done.load(Ordering::Relaxed) {
                    let count = check(&db);
                    assert!(count >= seen, "{count} samples after {seen}");
                    seen = count;
                }
            });
        }
        let compactor = scope.spawn(|| {
            let mut runs = 0;
            while !done.load(Ordering::Relaxed) {
                let _ = db.compact().unwrap();
                runs += 1;
            }
            runs
        });
        // Writers finish first; then let compaction catch up.
        while db.stats().samples_appended < (WRITERS * SERIES_PER_WRITER) as u64 * SAMPLES as u64 {
            std::thread::yield_now();
        }
        let _ = db.compact().unwrap();
        done.store(true, Ordering::Relaxed);
        compactor.join().unwrap()
    });
    assert!(compactions > 0);
    assert_eq!(check(&db), WRITERS * SERIES_PER_WRITER * SAMPLES as usize);
    let stored = manifest(dir.path());
    assert!(stored.segments.iter().any(|s| s.block_duration_ms > 0));
    assert!(stored.tiers.iter().all(|t| t.rolled_up_to_ms > 0));
    assert_eq!(db.stats().last_background_error, None);
    let reopen = Options {
        background_compaction: false,
        ..db.options().clone()
    };
    db.close().unwrap();
    let db = Db::open(dir.path(), reopen).unwrap();
    assert_eq!(check(&db), WRITERS * SERIES_PER_WRITER * SAMPLES as usize);
}

/// `repair` rebuilding a lost manifest lists raw segments only: rollup
/// segments are quarantined with the reason, the raw data (merged blocks
/// included) is all there, and the next compaction rolls the tiers up
/// again.
#[test]
fn a_rebuilt_manifest_quarantines_rollups_and_compaction_rebuilds_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(keep_everything())).unwrap();
    write(&db, 2, 0, 20);
    let _ = db.compact().unwrap();
    let raw = snapshot(&db);
    let rollups = segments_of(&manifest(dir.path()), TIER_1_MS).len()
        + segments_of(&manifest(dir.path()), TIER_2_MS).len();
    assert!(rollups > 0);
    db.close().unwrap();

    std::fs::remove_file(dir.path().join("MANIFEST")).unwrap();
    let report = Db::repair(dir.path(), &options(keep_everything())).unwrap();
    assert_eq!(report.quarantined.len(), rollups, "{report:?}");
    assert!(report
        .quarantined
        .iter()
        .all(|q| q.reason.contains("rollup buckets")));
    let db = Db::open(dir.path(), options(keep_everything())).unwrap();
    assert_eq!(snapshot(&db), raw);
    assert!(manifest(dir.path()).tiers.is_empty());
    let report = db.compact().unwrap();
    assert!(report.rollup_segments_written > 0, "{report:?}");
    let stored = manifest(dir.path());
    for tier in &stored.tiers {
        assert_buckets_agree(
            &stored_buckets(dir.path(), tier.resolution_ms),
            &expected_buckets(&raw, tier.resolution_ms, tier.rolled_up_to_ms),
        );
    }
}
