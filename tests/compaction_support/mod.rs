//! Shared by the compaction, retention and compaction fault tests: a small
//! database written as several partitions with several segments per
//! partition, out-of-order samples and overwritten timestamps, and what
//! every query answers on it.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use strata::rollup::{store, Buckets};
use strata::{
    parse_expr, range_query, Db, Manifest, Options, QueryOptions, RetentionPolicy, Segment,
    SegmentMeta, SeriesColumns, SeriesKey, SeriesSet, SyncMode, TierPolicy, TimeRange,
};

pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;
/// Partitions of one minute: levels of 6 and 36 minutes.
pub const PARTITION_MS: i64 = MINUTE;
pub const STEP_MS: i64 = SECOND;
/// Rollup tiers of 10 s and 1 min.
pub const TIER_1_MS: i64 = 10 * SECOND;
pub const TIER_2_MS: i64 = MINUTE;

/// Two tiers kept forever, raw kept forever.
pub fn keep_everything() -> RetentionPolicy {
    tiers_forever(None)
}

/// Two tiers kept forever, raw kept `raw_keep_ms`.
pub fn tiers_forever(raw_keep_ms: Option<i64>) -> RetentionPolicy {
    RetentionPolicy {
        raw_keep_ms,
        tiers: vec![
            TierPolicy {
                resolution_ms: TIER_1_MS,
                keep_ms: None,
            },
            TierPolicy {
                resolution_ms: TIER_2_MS,
                keep_ms: None,
            },
        ],
        overrides: Vec::new(),
    }
}

/// Flushes and compactions happen when the test says so.
pub fn options(retention: RetentionPolicy) -> Options {
    Options {
        sync: SyncMode::Never,
        partition_duration_ms: PARTITION_MS,
        out_of_order_window_ms: 30 * SECOND,
        flush_complete_partitions: false,
        background_compaction: false,
        retention,
        ..Options::default()
    }
}

pub fn gauge(s: usize) -> SeriesKey {
    SeriesKey::from_pairs("temperature", &[("sensor", s.to_string())]).unwrap()
}

pub fn counter(s: usize) -> SeriesKey {
    SeriesKey::from_pairs("requests_total", &[("sensor", s.to_string())]).unwrap()
}

fn gauge_value(s: usize, t: i64) -> f64 {
    ((t / STEP_MS) as f64 * 0.37 + s as f64).sin() * 10.0 + 20.0
}

/// A counter that resets every 7 minutes.
fn counter_value(s: usize, t: i64) -> f64 {
    ((t % (7 * MINUTE)) / STEP_MS) as f64 * (s + 1) as f64
}

/// Writes `minutes` of data for `series` gauges and counters, one sample a
/// second, flushing every 30 s (two segments per partition); every 50th
/// sample arrives 20 s late, and every 97th timestamp is written twice,
/// the second value (in a later segment) winning.
pub fn write(db: &Db, series: usize, from_ms: i64, minutes: i64) {
    let end = from_ms + minutes * MINUTE;
    let mut late: Vec<i64> = Vec::new();
    let mut t = from_ms;
    while t < end {
        let index = (t - from_ms) / STEP_MS;
        if index % 50 == 49 {
            late.push(t);
        } else {
            append_all(db, series, t, 0.0);
        }
        if index % 97 == 96 && t >= from_ms + 20 * SECOND {
            // Again, later and with another value.
            late.push(-(t - 20 * SECOND));
        }
        for &pending in late.iter().filter(|&&p| p.abs() + 20 * SECOND <= t) {
            append_all(
                db,
                series,
                pending.abs(),
                if pending < 0 { 0.5 } else { 0.0 },
            );
        }
        late.retain(|&p| p.abs() + 20 * SECOND > t);
        t += STEP_MS;
        if (t - from_ms) % (30 * SECOND) == 0 {
            db.flush().unwrap();
        }
    }
    for pending in late {
        append_all(
            db,
            series,
            pending.abs(),
            if pending < 0 { 0.5 } else { 0.0 },
        );
    }
    db.flush().unwrap();
}

fn append_all(db: &Db, series: usize, t: i64, shift: f64) {
    for s in 0..series {
        db.append(&gauge(s), t, gauge_value(s, t) + shift).unwrap();
        db.append(&counter(s), t, counter_value(s, t) + shift)
            .unwrap();
    }
}

/// Every series' samples (values as bits, so NaN compares).
pub type Snapshot = BTreeMap<String, Vec<(i64, u64)>>;

/// The raw tier only: `Db::select` also returns the tiers' last samples
/// where retention deleted raw data.
pub fn snapshot(db: &Db) -> Snapshot {
    read_set(&db.select_series(&[], TimeRange::ALL).unwrap())
}

/// Every series of `set` with samples, read.
pub fn read_set(set: &SeriesSet<'_>) -> Snapshot {
    let mut columns = SeriesColumns::default();
    let mut out = Snapshot::new();
    for i in 0..set.len() {
        set.read(i, &mut columns).unwrap();
        if columns.is_empty() {
            continue;
        }
        let samples = columns
            .timestamps_ms
            .iter()
            .zip(&columns.values)
            .map(|(&t, v)| (t, v.to_bits()))
            .collect();
        out.insert(set.key(i).to_string(), samples);
    }
    out
}

pub fn sample_count(snapshot: &Snapshot) -> usize {
    snapshot.values().map(Vec::len).sum()
}

/// PromQL answers (as text, so NaN compares) at a step finer than every
/// tier, over `[from_ms, to_ms]`.
pub fn queries(db: &Db, from_ms: i64, to_ms: i64) -> Vec<String> {
    [
        "temperature",
        "rate(requests_total[1m])",
        "sum by (sensor) (increase(requests_total[2m]))",
        "max_over_time(temperature[90s]) - min_over_time(temperature[90s])",
        "avg(temperature)",
    ]
    .iter()
    .map(|text| {
        let expr = parse_expr(text).unwrap();
        let value = range_query(
            db,
            &expr,
            from_ms,
            to_ms,
            7 * SECOND,
            &QueryOptions::default(),
        )
        .unwrap();
        format!("{text}: {value:?}")
    })
    .collect()
}

/// The manifest on disk.
pub fn manifest(dir: &Path) -> Manifest {
    Manifest::load(dir).unwrap().unwrap()
}

pub fn segments_of(manifest: &Manifest, resolution_ms: i64) -> Vec<SegmentMeta> {
    manifest
        .segments
        .iter()
        .filter(|s| s.resolution_ms == resolution_ms)
        .copied()
        .collect()
}

/// Total file bytes of a tier's segments.
pub fn bytes_of(manifest: &Manifest, resolution_ms: i64) -> u64 {
    segments_of(manifest, resolution_ms)
        .iter()
        .map(|s| s.pin.unwrap().file_len)
        .sum()
}

/// Every base series' buckets stored in a tier's segments, read with
/// `rollup::store`.
pub fn stored_buckets(dir: &Path, resolution_ms: i64) -> BTreeMap<String, Buckets> {
    let manifest = manifest(dir);
    let mut segments = segments_of(&manifest, resolution_ms);
    segments.sort_by_key(|s| s.min_time_ms);
    let mut out: BTreeMap<String, Buckets> = BTreeMap::new();
    for meta in segments {
        let segment =
            Segment::open(dir.join("segments").join(SegmentMeta::file_name(meta.seq))).unwrap();
        for ids in store::select(&segment, &[]) {
            let key = store::base_key(&segment, &ids).unwrap().to_string();
            let buckets = out.entry(key).or_default();
            store::read(&segment, &ids, TimeRange::ALL, resolution_ms, buckets).unwrap();
        }
    }
    out
}

/// The buckets `Buckets::push_raw` makes of the samples in `snapshot`
/// before `below_ms`.
pub fn expected_buckets(
    snapshot: &Snapshot,
    resolution_ms: i64,
    below_ms: i64,
) -> BTreeMap<String, Buckets> {
    snapshot
        .iter()
        .filter_map(|(key, samples)| {
            let (ts, vs): (Vec<i64>, Vec<f64>) = samples
                .iter()
                .filter(|(t, _)| *t < below_ms)
                .map(|&(t, v)| (t, f64::from_bits(v)))
                .unzip();
            let mut buckets = Buckets::default();
            buckets.push_raw(&ts, &vs, resolution_ms);
            (!buckets.is_empty()).then(|| (key.clone(), buckets))
        })
        .collect()
}

/// Asserts two bucket sets agree: count, min, max, first and last exactly,
/// sum and increase up to float summation order.
pub fn assert_buckets_agree(
    found: &BTreeMap<String, Buckets>,
    expected: &BTreeMap<String, Buckets>,
) {
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (key, want) in expected {
        let got = &found[key];
        assert_eq!(got.start_ms, want.start_ms, "{key}");
        assert_eq!(got.count, want.count, "{key}");
        assert_eq!(got.min, want.min, "{key}");
        assert_eq!(got.max, want.max, "{key}");
        assert_eq!(got.first_ms, want.first_ms, "{key}");
        assert_eq!(got.first, want.first, "{key}");
        assert_eq!(got.last_ms, want.last_ms, "{key}");
        assert_eq!(got.last, want.last, "{key}");
        for (column, (a, b)) in [
            ("sum", (&got.sum, &want.sum)),
            ("increase", (&got.increase, &want.increase)),
        ] {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                    "{key} {column} of bucket {i}: {x} vs {y}"
                );
            }
        }
    }
}

/// Files in `segments/`, and whether anything but listed segments is in
/// the directory (journal, temporary files, quarantine).
pub fn leftovers(dir: &Path) -> Vec<String> {
    let manifest = manifest(dir);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir.join("segments")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let listed = SegmentMeta::parse_file_name(&name)
            .is_some_and(|seq| manifest.segments.iter().any(|m| m.seq == seq));
        if !listed {
            found.push(format!("segments/{name}"));
        }
    }
    for name in ["COMPACTION", "COMPACTION.tmp", "MANIFEST.tmp"] {
        if dir.join(name).exists() {
            found.push(name.to_string());
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("quarantine")) {
        found.extend(entries.map(|e| format!("quarantine/{:?}", e.unwrap().file_name())));
    }
    found
}
