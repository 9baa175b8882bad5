//! Tier selection: queries answered from rollup buckets agree with the
//! raw answer, `TierChoice::Auto` picks a tier exactly when one can answer,
//! and data whose raw samples retention deleted is answered from a tier.
//!
//! The rollup segments are written here the way compaction writes them
//! (1 m buckets from raw samples, 1 h buckets rolled up from the stored
//! 1 m ones, each tier rolled up to its own boundary) and published in
//! the manifest of a closed database, so these tests exercise the read
//! side on its own.

mod cli_support;

use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;
use strata::rollup::{self, store, Buckets};
use strata::{
    parse_expr, range_query, Db, Manifest, Matcher, Options, QueryOptions, QueryValue, SegmentMeta,
    SegmentWriter, SeriesColumns, SeriesKey, SyncMode, TierChoice, TierMeta, TierReport, TimeRange,
};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Where the generated data starts: a day boundary.
const T0: i64 = 20_000 * DAY;

/// Tiers are published by hand ([`publish_tiers`]); a background
/// compaction would roll up and apply the default retention on its own.
fn options() -> Options {
    Options {
        sync: SyncMode::Never,
        background_compaction: false,
        ..Options::default()
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes `hours` of random data from [`T0`]: gauges, counters with
/// resets, and a classic histogram (`h_bucket{le}` counters), scraped at
/// jittered 5 s multiples (so many samples sit exactly on bucket
/// boundaries) with occasional gaps; flushes it into segments.
fn write_random(dir: &Path, seed: u64, hours: i64) {
    let mut rng = Rng(seed | 1);
    let db = Db::open(dir, options()).unwrap();
    let end = T0 + hours * HOUR;
    for g in 0..3 {
        let key = SeriesKey::new("gauge", &[("i", &g.to_string())]).unwrap();
        let mut t = T0 + rng.below(60) as i64 * 5 * SECOND;
        while t < end {
            db.append(&key, t, rng.below(1_000_000) as f64 / 997.0)
                .unwrap();
            t += next_gap(&mut rng);
        }
    }
    for c in 0..2 {
        let key = SeriesKey::new("counter_total", &[("i", &c.to_string())]).unwrap();
        let mut t = T0 + rng.below(60) as i64 * 5 * SECOND;
        let mut value = rng.below(100) as f64;
        while t < end {
            db.append(&key, t, value).unwrap();
            value = if rng.below(150) == 0 {
                rng.below(10) as f64
            } else {
                value + rng.below(50) as f64
            };
            t += next_gap(&mut rng);
        }
    }
    let bounds = ["0.1", "0.5", "1", "+Inf"];
    let keys: Vec<SeriesKey> = bounds
        .iter()
        .map(|le| SeriesKey::new("h_bucket", &[("le", le)]).unwrap())
        .collect();
    let mut cumulative = [0.0f64; 4];
    let mut t = T0;
    while t < end {
        if rng.below(400) == 0 {
            cumulative = [0.0; 4]; // a restart resets every bucket
        }
        for _ in 0..rng.below(20) {
            let bucket = rng.below(4) as usize;
            for count in &mut cumulative[bucket..] {
                *count += 1.0;
            }
        }
        for (key, &count) in keys.iter().zip(&cumulative) {
            db.append(key, t, count).unwrap();
        }
        t += next_gap(&mut rng);
    }
    db.flush().unwrap();
    db.close().unwrap();
}

/// 5 to 25 s, now and then a gap of 10 to 70 minutes.
fn next_gap(rng: &mut Rng) -> i64 {
    if rng.below(300) == 0 {
        (10 + rng.below(60) as i64) * MINUTE
    } else {
        (1 + rng.below(5) as i64) * 5 * SECOND
    }
}

/// Rolls the closed database in `dir` up as compaction does and
/// publishes the tiers: 1 m buckets of every raw sample before
/// `minute_to_ms`, 1 h buckets (from the 1 m buckets) before
/// `hour_to_ms`. With `raw_expired_below_ms`, the raw segments entirely
/// before it are dropped as retention would.
fn publish_tiers(
    dir: &Path,
    minute_to_ms: i64,
    hour_to_ms: i64,
    raw_expired_below_ms: Option<i64>,
) {
    let db = Db::open(dir, options()).unwrap();
    let all = [Matcher::new("__name__", strata::MatchOp::Regex, ".+").unwrap()];
    let set = db
        .select_series(&all, TimeRange::new(i64::MIN, minute_to_ms - 1))
        .unwrap();
    let mut columns = SeriesColumns::default();
    let mut minutes: Vec<(SeriesKey, Buckets)> = Vec::new();
    let mut hours: Vec<(SeriesKey, Buckets)> = Vec::new();
    for index in 0..set.len() {
        set.read(index, &mut columns).unwrap();
        let mut minute = Buckets::default();
        minute.push_raw(&columns.timestamps_ms, &columns.values, MINUTE);
        let mut early = Buckets::default();
        for i in 0..minute.len() {
            if minute.start_ms[i] < hour_to_ms {
                early.push_from(&minute, i);
            }
        }
        let mut hour = Buckets::default();
        early.roll_up(HOUR, &mut hour);
        if !minute.is_empty() {
            minutes.push((set.key(index).clone(), minute));
        }
        if !hour.is_empty() {
            hours.push((set.key(index).clone(), hour));
        }
    }
    drop(set);
    db.close().unwrap();

    let mut manifest = Manifest::load(dir).unwrap().unwrap();
    for (resolution_ms, rolled_up_to_ms, series) in
        [(MINUTE, minute_to_ms, &minutes), (HOUR, hour_to_ms, &hours)]
    {
        if !series.is_empty() {
            let seq = manifest.next_segment_seq;
            manifest.next_segment_seq += 1;
            let path = dir.join("segments").join(SegmentMeta::file_name(seq));
            let mut writer = SegmentWriter::create(&path).unwrap();
            for (key, buckets) in series {
                store::add_buckets(&mut writer, key, buckets).unwrap();
            }
            let summary = writer.finish().unwrap();
            manifest.segments.push(SegmentMeta::written(
                seq,
                rollup::bucket_start(summary.min_time_ms, resolution_ms),
                &summary,
                resolution_ms,
                0,
            ));
        }
        manifest.tiers.push(TierMeta {
            resolution_ms,
            rolled_up_to_ms,
            retained_from_ms: i64::MIN,
        });
    }
    if let Some(cut_ms) = raw_expired_below_ms {
        manifest
            .segments
            .retain(|s| s.resolution_ms != 0 || s.max_time_ms >= cut_ms);
        manifest.raw_retained_from_ms = cut_ms;
    }
    manifest.store(dir).unwrap();
}

fn query(db: &Db, expr: &str, start: i64, end: i64, step: i64, tier: TierChoice) -> QueryValue {
    let options = QueryOptions {
        tier,
        threads: 1,
        ..QueryOptions::default()
    };
    range_query(db, &parse_expr(expr).unwrap(), start, end, step, &options)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// The resolution each range-function call of `expr` was answered at.
fn tiers_used(db: &Db, expr: &str, start: i64, end: i64, step: i64) -> Vec<Option<i64>> {
    let report = std::sync::Arc::new(TierReport::default());
    let options = QueryOptions {
        tier_report: Some(report.clone()),
        ..QueryOptions::default()
    };
    range_query(db, &parse_expr(expr).unwrap(), start, end, step, &options).unwrap();
    report.uses().into_iter().map(|u| u.resolution_ms).collect()
}

/// Equal series, steps and values: bit for bit when `exact`, else within
/// 1e-9 relative; and not empty (an empty answer proves nothing).
fn assert_agree(raw: &QueryValue, tier: &QueryValue, exact: bool, what: &str) {
    assert!(
        agree_or_both_empty(raw, tier, exact, what),
        "{what}: an empty answer proves nothing"
    );
}

/// [`assert_agree`], except that both answers may be empty (a random
/// query may select nothing): returns whether they held anything.
fn agree_or_both_empty(raw: &QueryValue, tier: &QueryValue, exact: bool, what: &str) -> bool {
    let (QueryValue::Matrix(raw), QueryValue::Matrix(tier)) = (raw, tier) else {
        panic!("{what}: not matrices");
    };
    assert_eq!(raw.len(), tier.len(), "{what}: series count");
    if raw.is_empty() {
        return false;
    }
    for (r, t) in raw.iter().zip(tier) {
        assert_eq!(r.labels, t.labels, "{what}");
        let times =
            |s: &strata::QuerySeries| s.samples.iter().map(|x| x.timestamp_ms).collect::<Vec<_>>();
        assert_eq!(times(r), times(t), "{what} {:?}: steps", r.labels);
        for (a, b) in r.samples.iter().zip(&t.samples) {
            let (a, b) = (a.value, b.value);
            let agree = if exact {
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
            } else {
                a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) || (a.is_nan() && b.is_nan())
            };
            assert!(agree, "{what} {:?}: raw {a} vs tier {b}", r.labels);
        }
    }
    true
}

/// The functions buckets answer, and whether their answer is exact.
const FUNCTIONS: [(&str, bool); 10] = [
    ("rate(counter_total[R])", false),
    ("increase(counter_total[R])", false),
    ("delta(gauge[R])", true),
    ("count_over_time(gauge[R])", true),
    ("sum_over_time(gauge[R])", false),
    ("avg_over_time(gauge[R])", false),
    ("min_over_time(gauge[R])", true),
    ("max_over_time(gauge[R])", true),
    ("last_over_time(counter_total[R])", true),
    (
        "histogram_quantile(0.9, sum by (le) (rate(h_bucket[R])))",
        false,
    ),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn rollups_answer_as_raw_data_does(
        seed in any::<u64>(),
        minute_to in 60i64..480,
        hour_back in 0i64..4,
        range_index in 0usize..4,
        step_index in 0usize..3,
        start_steps in 0i64..4,
        offset_hours in 0i64..2,
        end_hours in 3i64..10,
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_random(dir.path(), seed, 8);
        // The 1 h tier stops before the 1 m tier, both inside the data, so
        // a query reads all three layers (1 h, 1 m rolled up, raw).
        let minute_to_ms = T0 + minute_to * MINUTE;
        let hour_to_ms = (rollup::bucket_start(minute_to_ms, HOUR) - hour_back * HOUR).max(T0);
        publish_tiers(dir.path(), minute_to_ms, hour_to_ms, None);
        let db = Db::open(dir.path(), options()).unwrap();
        prop_assert_eq!(db.tier_resolutions(), vec![MINUTE, HOUR]);

        let range = ["1m", "5m", "1h", "2h"][range_index];
        let step = [MINUTE, 5 * MINUTE, HOUR][step_index];
        let start = T0 + start_steps * step;
        let end = T0 + end_hours * HOUR;
        // Random windows may select nothing for one function (a 1 m
        // window between sparse samples); not for all of them.
        let mut answered = 0;
        for (template, exact) in FUNCTIONS {
            let mut expr = template.replace("[R]", &format!("[{range}]"));
            if offset_hours > 0 {
                expr = expr.replace(']', &format!("] offset {offset_hours}h"));
            }
            let raw = query(&db, &expr, start, end, step, TierChoice::Raw);
            let auto = query(&db, &expr, start, end, step, TierChoice::Auto);
            let what = format!("auto: {expr} step {step}");
            answered += usize::from(agree_or_both_empty(&raw, &auto, exact, &what));
            let minute = query(&db, &expr, start, end, step, TierChoice::Resolution(MINUTE));
            agree_or_both_empty(&raw, &minute, exact, &format!("1m: {expr} step {step}"));
            let used = tiers_used(&db, &expr, start, end, step);
            let want = if range != "1m" && range != "5m" && step == HOUR { HOUR } else { MINUTE };
            prop_assert_eq!(used, vec![Some(want)], "{}", expr);
        }
        prop_assert!(answered > 0, "every function answered nothing");
    }
}

#[test]
fn auto_reads_a_tier_only_where_one_answers_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write_random(dir.path(), 7, 4);
    publish_tiers(dir.path(), T0 + 3 * HOUR, T0 + 2 * HOUR, None);
    let db = Db::open(dir.path(), options()).unwrap();
    let (start, end) = (T0 + HOUR, T0 + 4 * HOUR);
    let cases = [
        // Aligned to 1 h: the coarsest tier.
        ("sum(rate(counter_total[1h]))", HOUR, vec![Some(HOUR)]),
        ("max_over_time(gauge[2h] offset 1h)", HOUR, vec![Some(HOUR)]),
        // Aligned to 1 m only.
        ("rate(counter_total[5m])", MINUTE, vec![Some(MINUTE)]),
        ("rate(counter_total[1h])", 5 * MINUTE, vec![Some(MINUTE)]),
        // Not aligned: raw samples.
        ("rate(counter_total[90s])", MINUTE, vec![None]),
        ("rate(counter_total[1h])", 90 * SECOND, vec![None]),
        ("rate(counter_total[1h] offset 30s)", HOUR, vec![None]),
        // Functions buckets cannot answer: raw samples.
        ("irate(counter_total[1h])", HOUR, vec![None]),
        ("stddev_over_time(gauge[1h])", HOUR, vec![None]),
        ("quantile_over_time(0.5, gauge[1h])", HOUR, vec![None]),
        (
            "max_over_time(rate(counter_total[5m])[1h:5m])",
            HOUR,
            vec![None, Some(MINUTE)],
        ),
        // Both calls of a binary operation choose on their own.
        (
            "rate(counter_total[1h]) / rate(counter_total[90s])",
            HOUR,
            vec![Some(HOUR), None],
        ),
    ];
    for (expr, step, want) in cases {
        assert_eq!(
            tiers_used(&db, expr, start, end, step),
            want,
            "{expr} step {step}"
        );
    }
    // An instant query at a whole hour is aligned too.
    let report = std::sync::Arc::new(TierReport::default());
    let options = QueryOptions {
        tier_report: Some(report.clone()),
        ..QueryOptions::default()
    };
    let expr = parse_expr("increase(counter_total[1h])").unwrap();
    strata::instant_query(&db, &expr, T0 + 2 * HOUR, &options).unwrap();
    assert_eq!(report.uses()[0].resolution_ms, Some(HOUR));
    // Raw is raw; an explicit resolution is used where it is aligned.
    let raw = QueryOptions {
        tier: TierChoice::Raw,
        tier_report: Some(std::sync::Arc::new(TierReport::default())),
        ..QueryOptions::default()
    };
    range_query(&db, &expr, start, end, HOUR, &raw).unwrap();
    assert_eq!(raw.tier_report.unwrap().uses()[0].resolution_ms, None);
}

#[test]
fn expired_raw_data_is_answered_from_the_tiers() {
    let dir = tempfile::tempdir().unwrap();
    write_random(dir.path(), 11, 8);
    let (start, end) = (T0 + HOUR, T0 + 8 * HOUR);
    let exprs = [
        "sum(rate(counter_total[1h]))",
        "max_over_time(gauge[1h])",
        "count_over_time(gauge[2h])",
    ];
    let before: Vec<QueryValue> = {
        let db = Db::open(dir.path(), options()).unwrap();
        let answers = exprs
            .iter()
            .map(|e| query(&db, e, start, end, HOUR, TierChoice::Raw))
            .collect();
        db.close().unwrap();
        answers
    };
    let raw_minutes = {
        let db = Db::open(dir.path(), options()).unwrap();
        db.select_buckets(
            &[Matcher::equal("i", "0")],
            TimeRange::new(T0, T0 + 4 * HOUR - 1),
            MINUTE,
        )
        .unwrap()
    };
    // Everything is rolled up to 6 h; raw data before 4 h is deleted.
    publish_tiers(
        dir.path(),
        T0 + 6 * HOUR,
        T0 + 6 * HOUR,
        Some(T0 + 4 * HOUR),
    );
    let db = Db::open(dir.path(), options()).unwrap();
    let all = [Matcher::new("__name__", strata::MatchOp::Regex, ".+").unwrap()];
    let raw_left = db
        .select_series(&all, TimeRange::new(T0, T0 + 4 * HOUR - 1))
        .unwrap();
    let mut columns = SeriesColumns::default();
    for index in 0..raw_left.len() {
        raw_left.read(index, &mut columns).unwrap();
        assert!(columns.is_empty(), "raw data before the cut is gone");
    }
    for (expr, before) in exprs.iter().zip(&before) {
        let now = query(&db, expr, start, end, HOUR, TierChoice::Auto);
        assert_agree(before, &now, false, expr);
        // Raw only: nothing before the cut.
        let QueryValue::Matrix(raw) = query(&db, expr, start, end, HOUR, TierChoice::Raw) else {
            panic!("{expr}: not a matrix");
        };
        assert!(
            raw.iter()
                .all(|s| s.samples[0].timestamp_ms >= T0 + 4 * HOUR),
            "{expr}"
        );
    }
    // select: the last sample of each minute before the cut, every sample
    // after it; buckets read back unchanged.
    let selected = db
        .select(
            &[
                Matcher::equal("__name__", "gauge"),
                Matcher::equal("i", "0"),
            ],
            TimeRange::new(T0, T0 + 5 * HOUR),
        )
        .unwrap();
    let samples = &selected[0].samples;
    let (old, new): (Vec<&strata::Sample>, Vec<&strata::Sample>) =
        samples.iter().partition(|s| s.timestamp_ms < T0 + 4 * HOUR);
    let gauge_minutes = &raw_minutes
        .iter()
        .find(|(key, _)| key.metric() == "gauge")
        .unwrap()
        .1;
    let want: Vec<(i64, f64)> = gauge_minutes
        .last_ms
        .iter()
        .copied()
        .zip(gauge_minutes.last.iter().copied())
        .collect();
    let got: Vec<(i64, f64)> = old.iter().map(|s| (s.timestamp_ms, s.value)).collect();
    assert_eq!(got, want);
    assert!(new.iter().all(|s| s.timestamp_ms <= T0 + 5 * HOUR));
    assert!(new.len() > 60, "raw samples after the cut");
    let now_minutes = db
        .select_buckets(
            &[Matcher::equal("i", "0")],
            TimeRange::new(T0, T0 + 4 * HOUR - 1),
            MINUTE,
        )
        .unwrap();
    assert_eq!(now_minutes, raw_minutes);
    drop(db);

    // Once the 1 m tier's retention cuts at 2 h, select reads the 1 h
    // tier's last samples before that.
    let mut manifest = Manifest::load(dir.path()).unwrap().unwrap();
    for tier in &mut manifest.tiers {
        if tier.resolution_ms == MINUTE {
            tier.retained_from_ms = T0 + 2 * HOUR;
        }
    }
    manifest.store(dir.path()).unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let selected = db
        .select(
            &[
                Matcher::equal("__name__", "gauge"),
                Matcher::equal("i", "0"),
            ],
            TimeRange::new(T0, T0 + 4 * HOUR - 1),
        )
        .unwrap();
    let mut hours = Buckets::default();
    gauge_minutes.roll_up(HOUR, &mut hours);
    let last_of = |b: &Buckets, from: i64, to: i64| -> Vec<(i64, f64)> {
        (0..b.len())
            .filter(|&i| from <= b.last_ms[i] && b.last_ms[i] < to)
            .map(|i| (b.last_ms[i], b.last[i]))
            .collect()
    };
    let mut want = last_of(&hours, T0, T0 + 2 * HOUR);
    want.extend(last_of(gauge_minutes, T0 + 2 * HOUR, T0 + 4 * HOUR));
    let got: Vec<(i64, f64)> = selected[0]
        .samples
        .iter()
        .map(|s| (s.timestamp_ms, s.value))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_segment_file_computes_buckets_from_its_samples() {
    let dir = tempfile::tempdir().unwrap();
    write_random(dir.path(), 3, 6);
    let db = Db::open_read_only(dir.path()).unwrap();
    let all = [Matcher::new("__name__", strata::MatchOp::Regex, ".+").unwrap()];
    let path = dir.path().join("one.seg");
    let mut writer = SegmentWriter::create(&path).unwrap();
    for series in db.select(&all, TimeRange::ALL).unwrap() {
        writer.add_series(&series.key, &series.samples).unwrap();
    }
    writer.finish().unwrap();
    let segment = strata::Segment::open(&path).unwrap();
    assert!(strata::Queryable::tier_resolutions(&segment).is_empty());
    let (start, end) = (T0 + HOUR, T0 + 6 * HOUR);
    for (template, exact) in FUNCTIONS {
        let expr = parse_expr(&template.replace("[R]", "[1h]")).unwrap();
        let run = |tier| {
            let options = QueryOptions {
                tier,
                ..QueryOptions::default()
            };
            range_query(&segment, &expr, start, end, HOUR, &options).unwrap()
        };
        let raw = run(TierChoice::Raw);
        // Auto: a segment has no tiers, so this is raw too.
        assert_eq!(run(TierChoice::Auto), raw, "{expr}");
        assert_agree(
            &raw,
            &run(TierChoice::Resolution(HOUR)),
            exact,
            &expr.to_string(),
        );
        assert_agree(
            &raw,
            &run(TierChoice::Resolution(20 * MINUTE)),
            exact,
            &expr.to_string(),
        );
    }
}

#[test]
fn the_cli_reads_the_tier_it_is_told_to() {
    let dir = tempfile::tempdir().unwrap();
    write_random(dir.path(), 5, 4);
    publish_tiers(dir.path(), T0 + 3 * HOUR, T0 + 2 * HOUR, None);
    let db = dir.path().to_str().unwrap();
    let (start, end) = (
        ((T0 + HOUR) / 1000).to_string(),
        ((T0 + 4 * HOUR) / 1000).to_string(),
    );
    let run = |tier: &str| {
        let args = [
            "query",
            "--db",
            db,
            "sum(increase(counter_total[1h]))",
            "--start",
            &start,
            "--end",
            &end,
            "--step",
            "1h",
            "--format",
            "json",
            "--tier",
            tier,
        ];
        let (code, stdout, stderr) = cli_support::strata(&args);
        assert_eq!(code, 0, "{stderr}");
        let body: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        body["data"]["result"][0]["values"].clone()
    };
    let raw = run("raw");
    assert_eq!(raw.as_array().map(Vec::len), Some(4));
    for tier in ["auto", "1h", "1m", "20m"] {
        let values = run(tier);
        for (a, b) in raw
            .as_array()
            .unwrap()
            .iter()
            .zip(values.as_array().unwrap())
        {
            assert_eq!(a[0], b[0], "--tier {tier}");
            let (a, b): (f64, f64) = (
                a[1].as_str().unwrap().parse().unwrap(),
                b[1].as_str().unwrap().parse().unwrap(),
            );
            assert!((a - b).abs() <= 1e-9 * a.abs(), "--tier {tier}: {a} vs {b}");
        }
    }
    cli_support::assert_usage_errors(&[
        (vec!["query", "--db", db, "up", "--tier", "0s"], "--tier"),
        (vec!["query", "--db", db, "up", "--tier", "fast"], "--tier"),
    ]);
}

/// Runs of each query in the timing harness.
const RUNS: usize = 20;

/// Not a test: the measurement. A 30-day range query at a 1 h
/// step over 100 series scraped every 10 s (50 counters, 50 gauges), then
/// over 100 series scraped every second, answered from raw
/// data and from the 1 h / 1 m tiers in the same process. Run with `cargo test --release --test tier_query --
/// --ignored --nocapture thirty_days`; prints the best of [`RUNS`] runs of
/// each (the machine may be shared: the best run is the least disturbed).
#[test]
#[ignore = "timing harness, run by hand (see the doc comment)"]
fn thirty_days_at_one_hour_from_rollups_vs_raw() {
    for (series, interval_ms) in [(100, 10 * SECOND), (100, SECOND)] {
        thirty_days(series, interval_ms);
    }
}

fn thirty_days(series: usize, interval_ms: i64) {
    let dir = tempfile::tempdir().unwrap();
    let days = 30;
    let end = T0 + days * DAY;
    let t0 = Instant::now();
    {
        let db = Db::open(dir.path(), options()).unwrap();
        let half = series / 2;
        let keys: Vec<_> = (0..series)
            .map(|i| {
                let (name, id) = if i < half {
                    ("x_total", i)
                } else {
                    ("y", i - half)
                };
                db.series(&SeriesKey::new(name, &[("i", &id.to_string())]).unwrap())
                    .unwrap()
            })
            .collect();
        let mut rng = Rng(42);
        let mut values = vec![0.0f64; keys.len()];
        let mut batch = Vec::with_capacity(keys.len());
        let mut t = T0;
        while t < end {
            batch.clear();
            for (i, key) in keys.iter().enumerate() {
                values[i] = if i < half {
                    values[i] + rng.below(100) as f64
                } else {
                    rng.below(10_000) as f64 / 10.0
                };
                batch.push((key, t, values[i]));
            }
            let outcome = db.append_batch(&batch).unwrap();
            assert!(outcome.rejected.is_empty());
            t += interval_ms;
        }
        db.flush().unwrap();
        db.close().unwrap();
    }
    println!(
        "wrote {series} series x {days} days at {interval_ms} ms in {:.1?}",
        t0.elapsed()
    );
    let t0 = Instant::now();
    // The last 3 hours are not rolled up yet (as on a live database, where
    // compaction only rolls up flushed partitions): the query reads 1 h
    // buckets, then raw samples.
    publish_tiers(dir.path(), end - 3 * HOUR, end - 3 * HOUR, None);
    println!("rolled up in {:.1?}", t0.elapsed());
    let db = Db::open(dir.path(), options()).unwrap();
    // Ending now (the last 3 h from raw data), and ending where the tiers
    // end (a 30-day dashboard of the past: rollups only).
    let ranges = [("to the end", end), ("to 3 h before", end - 3 * HOUR)];
    for ((label, stop), expr) in ranges
        .into_iter()
        .flat_map(|r| ["sum(rate(x_total[1h]))", "max_over_time(y[1h])"].map(|e| (r, e)))
    {
        let start = stop - days * DAY + HOUR;
        let best = |tier| {
            let options = QueryOptions {
                tier,
                ..QueryOptions::default()
            };
            let parsed = parse_expr(expr).unwrap();
            let mut best = std::time::Duration::MAX;
            let mut value = None;
            for _ in 0..RUNS {
                let t0 = Instant::now();
                value = Some(range_query(&db, &parsed, start, stop, HOUR, &options).unwrap());
                best = best.min(t0.elapsed());
            }
            (best, value.unwrap())
        };
        let (raw_time, raw) = best(TierChoice::Raw);
        let (tier_time, tier) = best(TierChoice::Auto);
        assert_eq!(tiers_used(&db, expr, start, stop, HOUR), [Some(HOUR)]);
        assert_agree(&raw, &tier, false, expr);
        println!(
            "{label:<13} {expr:<26} raw {raw_time:>10.3?}  rollups {tier_time:>10.3?}  {:.0}x",
            raw_time.as_secs_f64() / tier_time.as_secs_f64()
        );
    }
}
