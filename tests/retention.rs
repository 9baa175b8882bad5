//! Retention with a clock the test sets (no sleeping): after a compaction,
//! raw samples and each tier's buckets older than their keep are gone and
//! nothing younger is; a per-metric override applies to its metric only;
//! a changed policy (reopening with other options) takes effect at the next
//! compaction: shorter keeps, a dropped tier, a new tier built from the
//! oldest data still there.

mod compaction_support;

use std::collections::BTreeMap;

use compaction_support::*;
use strata::Buckets;
use strata::{Clock, Db, RetentionOverride, RetentionPolicy, TierPolicy};

/// "Now" for retention: before the newest sample (so the clock, not the
/// data, decides), half a minute into a partition (so cutoffs cut files).
const NOW_MS: i64 = 80 * MINUTE + 30 * SECOND;

fn policy() -> RetentionPolicy {
    RetentionPolicy {
        raw_keep_ms: Some(10 * MINUTE),
        tiers: vec![
            TierPolicy {
                resolution_ms: TIER_1_MS,
                keep_ms: Some(30 * MINUTE),
            },
            TierPolicy {
                resolution_ms: TIER_2_MS,
                keep_ms: Some(60 * MINUTE),
            },
        ],
        overrides: vec![RetentionOverride {
            metric: "requests_.*".into(),
            raw_keep_ms: Some(Some(5 * MINUTE)),
            tier_keep_ms: vec![(TIER_2_MS, None)],
        }],
    }
}

/// `snapshot` without the samples before each series' cutoff.
fn kept(snapshot: &Snapshot, cutoff_of: impl Fn(&str) -> i64) -> Snapshot {
    snapshot
        .iter()
        .map(|(key, samples)| {
            let cutoff = cutoff_of(key);
            let kept = samples
                .iter()
                .filter(|(t, _)| *t >= cutoff)
                .copied()
                .collect();
            (key.clone(), kept)
        })
        .filter(|(_, samples): &(String, Vec<_>)| !samples.is_empty())
        .collect()
}

/// `buckets` without those starting before each series' cutoff.
fn kept_buckets(
    buckets: BTreeMap<String, Buckets>,
    cutoff_of: impl Fn(&str) -> i64,
) -> BTreeMap<String, Buckets> {
    buckets
        .into_iter()
        .filter_map(|(key, b)| {
            let cutoff = cutoff_of(&key);
            let mut out = Buckets::default();
            for i in 0..b.len() {
                if b.start_ms[i] >= cutoff {
                    out.push_from(&b, i);
                }
            }
            (!out.is_empty()).then_some((key, out))
        })
        .collect()
}

fn is_counter(key: &str) -> bool {
    key.starts_with("requests_total")
}

#[test]
fn compaction_deletes_exactly_what_each_tier_no_longer_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(NOW_MS);
    let open = |retention: RetentionPolicy| {
        let options = strata::Options {
            clock: clock.clone(),
            ..options(retention)
        };
        Db::open(dir.path(), options).unwrap()
    };
    let db = open(policy());
    write(&db, 2, 0, 90);
    let raw = snapshot(&db);

    let report = db.compact().unwrap();
    assert!(report.segments_deleted > 0, "{report:?}");
    assert!(report.segments_rewritten > 0, "{report:?}");
    assert!(report.samples_deleted > 0, "{report:?}");

    // Raw: 10 minutes, 5 for the counters (the override).
    let raw_cutoff = |key: &str| match is_counter(key) {
        true => NOW_MS - 5 * MINUTE,
        false => NOW_MS - 10 * MINUTE,
    };
    assert_eq!(snapshot(&db), kept(&raw, raw_cutoff));
    let stored = manifest(dir.path());
    assert_eq!(stored.raw_retained_from_ms, NOW_MS - 5 * MINUTE);

    // Tier 1: 30 minutes for all; tier 2: 60 minutes, forever for the
    // counters.
    let rolled_up_to_ms = stored.tiers[0].rolled_up_to_ms;
    assert_eq!(rolled_up_to_ms, 89 * MINUTE);
    assert_eq!(stored.tiers[0].retained_from_ms, NOW_MS - 30 * MINUTE);
    assert_eq!(stored.tiers[1].retained_from_ms, NOW_MS - 60 * MINUTE);
    assert_buckets_agree(
        &stored_buckets(dir.path(), TIER_1_MS),
        &kept_buckets(expected_buckets(&raw, TIER_1_MS, rolled_up_to_ms), |_| {
            NOW_MS - 30 * MINUTE
        }),
    );
    let tier_2_cutoff = |key: &str| match is_counter(key) {
        true => i64::MIN,
        false => NOW_MS - 60 * MINUTE,
    };
    assert_buckets_agree(
        &stored_buckets(dir.path(), TIER_2_MS),
        &kept_buckets(
            expected_buckets(&raw, TIER_2_MS, rolled_up_to_ms),
            tier_2_cutoff,
        ),
    );
    // Nothing more to delete at the same "now".
    let again = db.compact().unwrap();
    assert_eq!(
        (again.segments_deleted, again.segments_rewritten),
        (0, 0),
        "{again:?}"
    );

    // A new policy: raw 2 minutes for everything, tier 2 (1 min) dropped,
    // a 30 s tier added. Nothing changes until the next compaction.
    drop(db);
    let new_policy = RetentionPolicy {
        raw_keep_ms: Some(2 * MINUTE),
        tiers: vec![
            TierPolicy {
                resolution_ms: TIER_1_MS,
                keep_ms: Some(30 * MINUTE),
            },
            TierPolicy {
                resolution_ms: 30 * SECOND,
                keep_ms: None,
            },
        ],
        overrides: Vec::new(),
    };
    let db = open(new_policy);
    assert_eq!(snapshot(&db), kept(&raw, raw_cutoff));
    let report = db.compact().unwrap();
    assert_eq!(report.tiers_dropped, [TIER_2_MS]);
    assert_eq!(snapshot(&db), kept(&raw, |_| NOW_MS - 2 * MINUTE));
    let stored = manifest(dir.path());
    assert!(segments_of(&stored, TIER_2_MS).is_empty());
    assert_eq!(
        stored
            .tiers
            .iter()
            .map(|t| t.resolution_ms)
            .collect::<Vec<_>>(),
        [TIER_1_MS, 30 * SECOND]
    );
    // The new tier starts at the oldest tier-1 bucket still there.
    assert_buckets_agree(
        &stored_buckets(dir.path(), 30 * SECOND),
        &kept_buckets(
            expected_buckets(&raw, 30 * SECOND, stored.tiers[1].rolled_up_to_ms),
            |_| NOW_MS - 30 * MINUTE,
        ),
    );
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn raw_data_not_rolled_up_is_kept_whatever_its_age() {
    let dir = tempfile::tempdir().unwrap();
    // The clock is far past the data: by age everything raw would go, but
    // only what tier 1 holds may.
    let options = strata::Options {
        clock: Clock::manual(i64::MAX / 2),
        ..options(RetentionPolicy {
            raw_keep_ms: Some(SECOND),
            tiers: vec![TierPolicy {
                resolution_ms: TIER_1_MS,
                keep_ms: None,
            }],
            overrides: Vec::new(),
        })
    };
    let db = Db::open(dir.path(), options).unwrap();
    write(&db, 1, 0, 10);
    let raw = snapshot(&db);
    let _ = db.compact().unwrap();
    let stored = manifest(dir.path());
    let rolled_up_to_ms = stored.tiers[0].rolled_up_to_ms;
    assert_eq!(rolled_up_to_ms, 9 * MINUTE);
    // "Now" is the newest sample; raw keeps one second before it, but the
    // last partition is not persisted (nor rolled up), so all of it stays.
    assert_eq!(snapshot(&db), kept(&raw, |_| rolled_up_to_ms));
    assert_buckets_agree(
        &stored_buckets(dir.path(), TIER_1_MS),
        &expected_buckets(&raw, TIER_1_MS, rolled_up_to_ms),
    );
}
