//! Property tests of rollups (`strata::rollup`) against the raw samples
//! they summarise.
//!
//! Random gauges (any `f64`: NaN, ±inf, ±0, subnormals, huge values and
//! staleness markers), counters with resets and classic histograms
//! (cumulative `_bucket{le}` counters with `_sum` and `_count`, resetting
//! together) at irregular timestamps with gaps longer than a bucket are
//! rolled up into 1 m and 1 h buckets, and 1 h also from the 1 m buckets
//! (`Buckets::roll_up`). For every bucket the test recomputes, from the
//! raw samples in `[b, b + res)`, what the bucket must hold:
//! - count, min, max (as `min_over_time`: NaN only if every value is),
//!   first and last (values bit for bit, with their timestamps): exact;
//! - sum: within the summation tolerance (a different summation order
//!   may round differently), NaN and infinities as IEEE says;
//! - counters: the increase over any bucket-aligned span, made of the
//!   buckets' in-bucket increases plus `counter_increase` between
//!   consecutive buckets, equals the raw reset-adjusted increase over the
//!   span (exactly for integer counts, within tolerance otherwise);
//! - histograms: where the raw per-`le` increases over a span are
//!   monotonic in `le`, so are the rollups' (so `histogram_quantile` over
//!   rollups works).
//!
//! And a rollup segment (`rollup::store::add_buckets`, then `select`,
//! `base_key`, `read`) gives back random buckets bit for bit.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use strata::rollup::{bucket_start, counter_increase, store, Buckets};
use strata::{Matcher, Segment, SegmentWriter, SeriesKey, TimeRange};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// Prometheus' staleness marker: not a sample for rollups.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

fn stale() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

fn is_stale(value: f64) -> bool {
    value.to_bits() == STALE_NAN_BITS
}

// ---------------------------------------------------------------------------
// Generators.

/// Gaps between samples: mostly scrape-like, sometimes minutes, sometimes
/// longer than an hour bucket.
fn gap() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 1..5_000i64,
        3 => 5_000..(3 * MINUTE),
        1 => (3 * MINUTE)..(3 * HOUR),
    ]
}

/// Strictly increasing timestamps from `start` (negative ones included, to
/// cover buckets before the epoch).
fn timestamps(start: i64, gaps: &[i64]) -> Vec<i64> {
    gaps.iter()
        .scan(start, |t, &gap| {
            *t += gap;
            Some(*t)
        })
        .collect()
}

fn start() -> impl Strategy<Value = i64> {
    -3 * HOUR..3 * HOUR
}

fn gauge_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -1e6..1e6f64,
        3 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(stale()),
        1 => prop::sample::select(vec![
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MAX,
            -f64::MAX,
            f64::MIN_POSITIVE / 4.0,
        ]),
    ]
}

/// A raw series: strictly increasing timestamps and their values.
#[derive(Debug, Clone)]
struct Raw {
    timestamps_ms: Vec<i64>,
    values: Vec<f64>,
}

fn gauge() -> impl Strategy<Value = Raw> {
    (start(), vec((gap(), gauge_value()), 1..250)).prop_map(|(start, points)| {
        let (gaps, values): (Vec<i64>, Vec<f64>) = points.into_iter().unzip();
        Raw {
            timestamps_ms: timestamps(start, &gaps),
            values,
        }
    })
}

/// What a counter does between two scrapes.
#[derive(Debug, Clone)]
enum Step {
    Add(f64),
    Same,
    /// The process restarted: the counter starts again from this.
    Reset(f64),
    /// A staleness marker (the counter's value is unchanged behind it).
    Stale,
}

fn step(integer: bool) -> impl Strategy<Value = Step> {
    let amount =
        move |max: f64| (0.0..max).prop_map(move |v: f64| if integer { v.floor() } else { v });
    prop_oneof![
        8 => amount(1e4).prop_map(Step::Add),
        2 => Just(Step::Same),
        1 => amount(50.0).prop_map(Step::Reset),
        1 => Just(Step::Stale),
    ]
}

fn counter(integer: bool) -> impl Strategy<Value = Raw> {
    (start(), vec((gap(), step(integer)), 1..250)).prop_map(|(start, points)| {
        let mut value = 0.0;
        let mut gaps = Vec::with_capacity(points.len());
        let mut values = Vec::with_capacity(points.len());
        for (gap, step) in points {
            gaps.push(gap);
            values.push(match step {
                Step::Add(amount) => {
                    value += amount;
                    value
                }
                Step::Same => value,
                Step::Reset(from) => {
                    value = from;
                    value
                }
                Step::Stale => stale(),
            });
        }
        Raw {
            timestamps_ms: timestamps(start, &gaps),
            values,
        }
    })
}

/// A classic histogram: `_bucket` series in increasing `le` (the last is
/// `+Inf`), plus `_sum` and `_count`, scraped together.
#[derive(Debug, Clone)]
struct Histogram {
    buckets: Vec<Raw>,
    sum: Raw,
    count: Raw,
}

/// One scrape of a histogram: new observations per `le` region (counts
/// between one bound and the next), whether the exporter restarted before
/// it, and the observed values' sum per observation.
type Scrape = (i64, bool, Vec<u32>, f64);

fn histogram() -> impl Strategy<Value = Histogram> {
    let scrape = (
        gap(),
        prop::bool::weighted(0.06),
        vec(0..20u32, 6),
        0.001..2.0f64,
    );
    (start(), 2..6usize, vec(scrape, 1..150)).prop_map(|(start, les, scrapes)| {
        let scrapes: Vec<Scrape> = scrapes;
        let gaps: Vec<i64> = scrapes.iter().map(|s| s.0).collect();
        let timestamps_ms = timestamps(start, &gaps);
        let series = |values: Vec<f64>| Raw {
            timestamps_ms: timestamps_ms.clone(),
            values,
        };
        // Observations per region since the last restart, and their sum.
        let mut regions = vec![0u64; les];
        let mut observed_sum = 0.0;
        let mut bucket_values = vec![Vec::new(); les];
        let (mut sums, mut counts) = (Vec::new(), Vec::new());
        for (_, restart, new, mean) in &scrapes {
            if *restart {
                regions.iter_mut().for_each(|r| *r = 0);
                observed_sum = 0.0;
            }
            for (region, &n) in regions.iter_mut().zip(new) {
                *region += u64::from(n);
                observed_sum += f64::from(n) * mean;
            }
            let mut cumulative = 0;
            for (values, region) in bucket_values.iter_mut().zip(&regions) {
                cumulative += region;
                values.push(cumulative as f64);
            }
            sums.push(observed_sum);
            counts.push(cumulative as f64);
        }
        Histogram {
            buckets: bucket_values.into_iter().map(series).collect(),
            sum: series(sums),
            count: series(counts),
        }
    })
}

// ---------------------------------------------------------------------------
// The reference: what the raw samples say.

/// The non-stale raw samples of `raw` with `from <= t < to`.
fn samples_in(raw: &Raw, from: i64, to: i64) -> Vec<(i64, f64)> {
    raw.timestamps_ms
        .iter()
        .zip(&raw.values)
        .filter(|&(&t, &v)| from <= t && t < to && !is_stale(v))
        .map(|(&t, &v)| (t, v))
        .collect()
}

/// `min_over_time`: the first of the smallest non-NaN values, NaN only if
/// every value is NaN.
fn reference_min(values: &[f64]) -> f64 {
    values
        .iter()
        .copied()
        .reduce(|m, v| if v < m || m.is_nan() { v } else { m })
        .unwrap_or(f64::NAN)
}

fn reference_max(values: &[f64]) -> f64 {
    values
        .iter()
        .copied()
        .reduce(|m, v| if v > m || m.is_nan() { v } else { m })
        .unwrap_or(f64::NAN)
}

/// Equal as stored values: NaN matches NaN, everything else bit for bit
/// (so `-0.0` is not `0.0`).
fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// A sum of `values` (in any order) is `got`: NaN where IEEE makes it
/// NaN in every order, the infinity where one is summed, and otherwise
/// within the rounding error of `values.len()` additions. A finite sum
/// that overflows depends on the order and is not checked.
fn check_sum(got: f64, values: &[f64], what: &str) -> Result<(), TestCaseError> {
    let has_nan = values.iter().any(|v| v.is_nan());
    let pos_inf = values.contains(&f64::INFINITY);
    let neg_inf = values.contains(&f64::NEG_INFINITY);
    let magnitude: f64 = values
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| v.abs())
        .sum();
    if has_nan || (pos_inf && neg_inf) {
        prop_assert!(got.is_nan(), "{what}: sum {got}, expected NaN");
    } else if !magnitude.is_finite() {
        // Finite values whose sum overflows in some order.
    } else if pos_inf || neg_inf {
        let expected = if pos_inf {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        prop_assert_eq!(got, expected, "{}: sum", what);
    } else {
        let exact: f64 = values.iter().sum();
        let tolerance = 2.0 * values.len() as f64 * f64::EPSILON * magnitude;
        prop_assert!(
            (got - exact).abs() <= tolerance,
            "{what}: sum {got}, raw {exact} (tolerance {tolerance})"
        );
    }
    Ok(())
}

/// The reset-adjusted increase between two consecutive samples, as
/// Prometheus' `rate` counts it: a drop is a restart from zero.
fn raw_increase(previous: f64, next: f64) -> f64 {
    if next < previous {
        next
    } else {
        next - previous
    }
}

/// The raw increase over `[from, to)` and the magnitude of its terms.
fn raw_span_increase(raw: &Raw, from: i64, to: i64) -> (f64, f64) {
    let samples = samples_in(raw, from, to);
    let terms: Vec<f64> = samples
        .windows(2)
        .map(|w| raw_increase(w[0].1, w[1].1))
        .collect();
    (terms.iter().sum(), terms.iter().map(|t| t.abs()).sum())
}

/// The increase over `[from, to)` from buckets alone: the in-bucket
/// increases plus the increase from each bucket's last sample to the next
/// bucket's first.
fn rollup_span_increase(b: &Buckets, from: i64, to: i64) -> f64 {
    let inside: Vec<usize> = (0..b.len())
        .filter(|&i| from <= b.start_ms[i] && b.start_ms[i] < to)
        .collect();
    let within: f64 = inside.iter().map(|&i| b.increase[i]).sum();
    let between: f64 = inside
        .windows(2)
        .map(|w| counter_increase(b.last[w[0]], b.first[w[1]]))
        .sum();
    within + between
}

// ---------------------------------------------------------------------------
// Checks.

/// Every bucket's count, min, max, first, last and sum against the raw
/// samples in it, and no raw sample outside a bucket.
fn check_buckets(raw: &Raw, b: &Buckets, resolution_ms: i64) -> Result<(), TestCaseError> {
    let columns = [
        b.count.len(),
        b.sum.len(),
        b.min.len(),
        b.max.len(),
        b.first_ms.len(),
        b.first.len(),
        b.last_ms.len(),
        b.last.len(),
        b.increase.len(),
    ];
    prop_assert!(columns.iter().all(|&n| n == b.len()), "columns {columns:?}");
    prop_assert!(b.start_ms.windows(2).all(|w| w[0] < w[1]), "bucket order");
    let mut covered = 0;
    for i in 0..b.len() {
        let start = b.start_ms[i];
        let what = format!("bucket {start} of {resolution_ms} ms");
        prop_assert_eq!(start.rem_euclid(resolution_ms), 0, "{} is aligned", &what);
        let samples = samples_in(raw, start, start + resolution_ms);
        prop_assert!(!samples.is_empty(), "{what} exists with no raw sample");
        covered += samples.len();
        let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
        let (first, last) = (samples[0], samples[samples.len() - 1]);
        prop_assert_eq!(b.count[i], samples.len() as u64, "{}: count", &what);
        prop_assert_eq!(b.first_ms[i], first.0, "{}: first_ms", &what);
        prop_assert_eq!(b.last_ms[i], last.0, "{}: last_ms", &what);
        prop_assert!(
            same_value(b.first[i], first.1),
            "{what}: first {} raw {}",
            b.first[i],
            first.1
        );
        prop_assert!(
            same_value(b.last[i], last.1),
            "{what}: last {} raw {}",
            b.last[i],
            last.1
        );
        let (min, max) = (reference_min(&values), reference_max(&values));
        prop_assert!(
            same_value(b.min[i], min),
            "{what}: min {} raw {min}",
            b.min[i]
        );
        prop_assert!(
            same_value(b.max[i], max),
            "{what}: max {} raw {max}",
            b.max[i]
        );
        check_sum(b.sum[i], &values, &what)?;
    }
    let raw_samples = raw.values.iter().filter(|v| !is_stale(**v)).count();
    prop_assert_eq!(covered, raw_samples, "raw samples outside every bucket");
    Ok(())
}

/// Bucket-aligned spans: every single bucket, the whole series and the
/// given spans (as fractions of the series' extent), each snapped to
/// bucket starts.
fn spans(raw: &Raw, resolution_ms: i64, fractions: &[(f64, f64)]) -> Vec<(i64, i64)> {
    let first = bucket_start(raw.timestamps_ms[0], resolution_ms);
    let end = bucket_start(
        raw.timestamps_ms[raw.timestamps_ms.len() - 1],
        resolution_ms,
    ) + resolution_ms;
    let buckets = (end - first) / resolution_ms;
    let mut spans = vec![(first, end)];
    spans.extend((0..buckets.min(500)).map(|i| {
        let start = first + i * resolution_ms;
        (start, start + resolution_ms)
    }));
    for &(a, b) in fractions {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let at = |f: f64| first + (f * buckets as f64) as i64 * resolution_ms;
        spans.push((at(lo), at(hi) + resolution_ms));
    }
    spans
}

/// The counter increase from the buckets equals the raw one over every
/// span: exactly when `exact` (integer counts), else within tolerance.
fn check_counter(
    raw: &Raw,
    b: &Buckets,
    resolution_ms: i64,
    fractions: &[(f64, f64)],
    exact: bool,
) -> Result<(), TestCaseError> {
    for (from, to) in spans(raw, resolution_ms, fractions) {
        let (expected, magnitude) = raw_span_increase(raw, from, to);
        let got = rollup_span_increase(b, from, to);
        let tolerance = if exact {
            0.0
        } else {
            4.0 * raw.values.len() as f64 * f64::EPSILON * magnitude
        };
        prop_assert!(
            (got - expected).abs() <= tolerance,
            "increase over [{from}, {to}) at {resolution_ms} ms: rollup {got}, raw {expected}"
        );
    }
    Ok(())
}

/// The 1 m and 1 h rollups of `raw` (1 h both from raw and from the 1 m
/// buckets), each checked against the raw samples; the two 1 h rollups
/// agree exactly except for sums and increases (summation order).
fn rollups_checked(raw: &Raw) -> Result<[Buckets; 3], TestCaseError> {
    let mut minute = Buckets::default();
    minute.push_raw(&raw.timestamps_ms, &raw.values, MINUTE);
    let mut hour = Buckets::default();
    hour.push_raw(&raw.timestamps_ms, &raw.values, HOUR);
    let mut hour_of_minutes = Buckets::default();
    minute.roll_up(HOUR, &mut hour_of_minutes);
    check_buckets(raw, &minute, MINUTE)?;
    check_buckets(raw, &hour, HOUR)?;
    check_buckets(raw, &hour_of_minutes, HOUR)?;
    Ok([minute, hour, hour_of_minutes])
}

fn check_counter_rollups(
    raw: &Raw,
    fractions: &[(f64, f64)],
    exact: bool,
) -> Result<[Buckets; 3], TestCaseError> {
    let rollups = rollups_checked(raw)?;
    let [minute, hour, hour_of_minutes] = &rollups;
    check_counter(raw, minute, MINUTE, fractions, exact)?;
    check_counter(raw, hour, HOUR, fractions, exact)?;
    check_counter(raw, hour_of_minutes, HOUR, fractions, exact)?;
    Ok(rollups)
}

// ---------------------------------------------------------------------------
// Rollup segments.

fn bucket_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<u64>().prop_map(f64::from_bits),
        1 => -1e3..1e3f64,
        1 => Just(stale()),
    ]
}

/// Random buckets satisfying the module invariants (values of any bits).
fn random_buckets(resolution_ms: i64) -> impl Strategy<Value = Buckets> {
    let bucket = (
        1..50i64,
        1..(1u64 << 53),
        (0..resolution_ms, 0..resolution_ms),
        proptest::array::uniform6(bucket_value()),
    );
    (-1000..1000i64, vec(bucket, 1..120)).prop_map(move |(first_index, buckets)| {
        let mut b = Buckets::default();
        let mut index = first_index;
        for (skip, count, (x, y), [sum, min, max, first, last, increase]) in buckets {
            let start = index * resolution_ms;
            index += skip;
            let (first_at, last_at) = if count == 1 {
                (x, x)
            } else {
                (x.min(y), x.max(y))
            };
            b.start_ms.push(start);
            b.count.push(count);
            b.sum.push(sum);
            b.min.push(min);
            b.max.push(max);
            b.first_ms.push(start + first_at);
            b.first.push(first);
            b.last_ms.push(start + last_at);
            b.last.push(last);
            b.increase.push(increase);
        }
        b
    })
}

/// The buckets as bits, for bit-exact comparison (NaN payloads included).
fn bucket_bits(b: &Buckets) -> Vec<[u64; 10]> {
    (0..b.len())
        .map(|i| {
            [
                b.start_ms[i] as u64,
                b.count[i],
                b.sum[i].to_bits(),
                b.min[i].to_bits(),
                b.max[i].to_bits(),
                b.first_ms[i] as u64,
                b.first[i].to_bits(),
                b.last_ms[i] as u64,
                b.last[i].to_bits(),
                b.increase[i].to_bits(),
            ]
        })
        .collect()
}

/// The buckets of `b` starting in `range`.
fn buckets_in(b: &Buckets, range: TimeRange) -> Buckets {
    let mut out = Buckets::default();
    for i in 0..b.len() {
        if range.contains(b.start_ms[i]) {
            out.push_from(b, i);
        }
    }
    out
}

fn resolution() -> impl Strategy<Value = i64> {
    prop_oneof![Just(MINUTE), Just(HOUR), 1..100_000i64]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn gauge_rollups_match_the_raw_samples(raw in gauge()) {
        let [_, hour, hour_of_minutes] = rollups_checked(&raw)?;
        prop_assert_eq!(&hour.start_ms, &hour_of_minutes.start_ms);
        prop_assert_eq!(&hour.count, &hour_of_minutes.count);
        prop_assert_eq!(&hour.first_ms, &hour_of_minutes.first_ms);
        prop_assert_eq!(&hour.last_ms, &hour_of_minutes.last_ms);
    }

    #[test]
    fn float_counter_increase_from_rollups_matches_raw(
        raw in counter(false),
        fractions in vec((0.0..1.0f64, 0.0..1.0f64), 8),
    ) {
        check_counter_rollups(&raw, &fractions, false)?;
    }

    #[test]
    fn integer_counter_increase_from_rollups_is_exact(
        raw in counter(true),
        fractions in vec((0.0..1.0f64, 0.0..1.0f64), 8),
    ) {
        check_counter_rollups(&raw, &fractions, true)?;
    }

    #[test]
    fn histogram_rollups_keep_bucket_increases_monotonic_in_le(
        histogram in histogram(),
        fractions in vec((0.0..1.0f64, 0.0..1.0f64), 8),
    ) {
        // Integer counts: increases are exact, so monotonicity is exact.
        let rollups: Vec<[Buckets; 3]> = histogram
            .buckets
            .iter()
            .map(|raw| check_counter_rollups(raw, &fractions, true))
            .collect::<Result<_, _>>()?;
        check_counter_rollups(&histogram.sum, &fractions, false)?;
        let count = check_counter_rollups(&histogram.count, &fractions, true)?;
        let infinite = &histogram.buckets[histogram.buckets.len() - 1];
        for (tier, resolution_ms) in [(0, MINUTE), (1, HOUR), (2, HOUR)] {
            // `_count` is the `+Inf` bucket, in its rollups too.
            prop_assert_eq!(&count[tier], &rollups[rollups.len() - 1][tier]);
            for (from, to) in spans(infinite, resolution_ms, &fractions) {
                let raw: Vec<f64> = histogram
                    .buckets
                    .iter()
                    .map(|raw| raw_span_increase(raw, from, to).0)
                    .collect();
                let rolled: Vec<f64> = rollups
                    .iter()
                    .map(|r| rollup_span_increase(&r[tier], from, to))
                    .collect();
                if raw.windows(2).all(|w| w[0] <= w[1]) {
                    prop_assert!(
                        rolled.windows(2).all(|w| w[0] <= w[1]),
                        "[{from}, {to}) at {resolution_ms} ms: rollup increases by le \
                         {rolled:?}, raw {raw:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn rollup_segment_round_trip_is_bit_exact(
        (resolution_ms, series, range) in resolution().prop_flat_map(|res| (
            Just(res),
            vec(random_buckets(res), 1..4),
            (-2000..2000i64, 0..3000i64),
        )),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollup.seg");
        let keys: Vec<SeriesKey> = (0..series.len())
            .map(|i| SeriesKey::new("m", &[("id", &format!("{i:02}"))]).unwrap())
            .collect();
        let mut writer = SegmentWriter::create(&path).unwrap();
        // Insertion order must not matter: write in reverse.
        for (key, b) in keys.iter().zip(&series).rev() {
            store::add_buckets(&mut writer, key, b).unwrap();
        }
        writer.finish().unwrap();

        let segment = Segment::open(&path).unwrap();
        let selected = store::select(&segment, &[Matcher::equal("__name__", "m")]);
        prop_assert_eq!(selected.len(), series.len());
        // Any range, aligned or not: the buckets whose start lies in it.
        let (from, length) = range;
        let range = TimeRange::new(
            from * resolution_ms / 7,
            from * resolution_ms / 7 + length * resolution_ms / 5,
        );
        for ((ids, key), b) in selected.iter().zip(&keys).zip(&series) {
            prop_assert_eq!(store::base_key(&segment, ids), Some(key.clone()));
            let mut read = Buckets::default();
            store::read(&segment, ids, TimeRange::ALL, resolution_ms, &mut read)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(bucket_bits(&read), bucket_bits(b));
            read.clear();
            store::read(&segment, ids, range, resolution_ms, &mut read).map_err(|e| {
                TestCaseError::fail(format!("reading {range:?}: {e}"))
            })?;
            prop_assert_eq!(bucket_bits(&read), bucket_bits(&buckets_in(b, range)));
        }
    }
}
