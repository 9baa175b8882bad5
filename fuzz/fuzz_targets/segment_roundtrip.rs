//! Structure-aware round trip through a real segment file.
//!
//! The input is read as a recipe for a few series: metric names `m0`..`m7`,
//! optional labels `k` = `v0`..`v7` and `a` = `x0`..`x3` (always valid
//! Prometheus names), strictly increasing timestamps anywhere in the i64
//! range (extremes and deltas that overflow i64 included) and arbitrary f64
//! bit patterns (NaN payloads, -0.0, infinities, subnormals), with series
//! long enough to span several chunks. They are written with
//! `SegmentWriter` into a temporary directory (tmpfs when available, so
//! the writer's fsyncs are cheap), reopened with `Segment::open`, and every
//! series must read back bit-exact; range reads, label selection, the
//! footer totals and `verify` are checked against the model as well.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use strata::codec::SEALED_CHUNK_SAMPLES;
use strata::{Matcher, Sample, Segment, SegmentWriter, SeriesKey, TimeRange};

const MAX_SERIES: u8 = 6;
/// Up to three chunks per series.
const MAX_SAMPLES: u16 = (2 * SEALED_CHUNK_SAMPLES + 100) as u16;

fn first_timestamp(u: &mut Unstructured<'_>) -> Result<i64> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => 1_700_000_000_000 + i64::from(u.arbitrary::<u32>()?),
        1 => i64::MIN + i64::from(u.arbitrary::<u16>()?),
        2 => i64::MAX - i64::from(u.arbitrary::<u16>()?),
        3 => -i64::from(u.arbitrary::<u16>()?),
        _ => u.arbitrary::<i64>()?,
    })
}

fn special_value(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 => 0.0f64.to_bits(),
        1 => (-0.0f64).to_bits(),
        2 => f64::INFINITY.to_bits(),
        3 => f64::NEG_INFINITY.to_bits(),
        4 => f64::NAN.to_bits(),
        5 => 0x7ff0_0000_0000_0001, // signalling NaN
        6 => 0xfff8_dead_beef_0001, // negative NaN with payload
        7 => 1,                     // smallest subnormal
        8 => f64::MAX.to_bits(),
        _ => u64::MAX,
    })
}

/// Strictly increasing samples; stops early rather than overflow i64.
fn samples(u: &mut Unstructured<'_>) -> Result<Vec<Sample>> {
    let count = u.int_in_range(1..=MAX_SAMPLES)?;
    let mut ts = first_timestamp(u)?;
    let mut bits = u.arbitrary::<u64>()?;
    // A regular scrape interval, 1 ms ..= ~65 s.
    let step = i64::from(u.arbitrary::<u16>()?) + 1;
    let mut out = Vec::with_capacity(usize::from(count));
    out.push(Sample::new(ts, f64::from_bits(bits)));
    for _ in 1..count {
        // One byte steers both columns; an exhausted input gives 0: a
        // regular step and a repeated value, so long series stay cheap.
        let mode = u.arbitrary::<u8>()?;
        let delta: i128 = match mode & 0x0f {
            0..=7 => i128::from(step),
            8 | 9 => i128::from(step) + i128::from(u.arbitrary::<i8>()?),
            10 => i128::from(step) + i128::from(u.arbitrary::<i32>()?),
            11 => 1,
            12 | 13 => i128::from(u.arbitrary::<u64>()?),
            14 => i128::from(u.arbitrary::<u32>()?) + 1,
            _ => i128::from(i64::MAX) + 1 + i128::from(u.arbitrary::<u32>()?),
        };
        let next = i128::from(ts) + delta;
        if delta <= 0 || next > i128::from(i64::MAX) {
            break;
        }
        ts = next as i64;
        bits = match mode >> 4 {
            0..=5 => bits,
            6 | 7 => u.arbitrary::<u64>()?,
            8 | 9 => bits ^ (u64::from(u.arbitrary::<u8>()?) << u.int_in_range(0..=56u32)?),
            10 | 11 => (f64::from_bits(bits) + 1.0).to_bits(),
            12 => bits ^ (1 << 63),
            13 | 14 => special_value(u)?,
            _ => bits.wrapping_add(1),
        };
        out.push(Sample::new(ts, f64::from_bits(bits)));
    }
    Ok(out)
}

fn key(u: &mut Unstructured<'_>) -> Result<SeriesKey> {
    let metric = format!("m{}", u.int_in_range(0..=7u8)?);
    let mut labels = Vec::new();
    if u.arbitrary::<bool>()? {
        labels.push(("k", format!("v{}", u.int_in_range(0..=7u8)?)));
    }
    if u.ratio(1u8, 4u8)? {
        labels.push(("a", format!("x{}", u.int_in_range(0..=3u8)?)));
    }
    Ok(SeriesKey::from_pairs(&metric, &labels).expect("names from a valid alphabet"))
}

fn model(u: &mut Unstructured<'_>) -> Result<BTreeMap<SeriesKey, Vec<Sample>>> {
    let n = u.int_in_range(0..=MAX_SERIES)?;
    let mut series = BTreeMap::new();
    for _ in 0..n {
        let key = key(u)?;
        let samples = samples(u)?;
        // Each series may be added once: keep the first of duplicates.
        series.entry(key).or_insert(samples);
    }
    Ok(series)
}

fn base_dir() -> &'static Path {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        Path::new("/tmp")
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(series) = model(&mut u) else {
        return;
    };
    // Whatever input is left chooses a range to read.
    let range_a = u.arbitrary::<i64>().unwrap_or(i64::MIN);
    let range_b = u.arbitrary::<i64>().unwrap_or(i64::MAX);
    let range = TimeRange::new(range_a.min(range_b), range_a.max(range_b));

    let dir = tempfile::Builder::new()
        .prefix("strata-fuzz-")
        .tempdir_in(base_dir())
        .expect("temp dir");
    let path = dir.path().join("roundtrip.seg");

    // Add in an input-dependent order: the writer must sort the keys.
    let mut order: Vec<(&SeriesKey, &Vec<Sample>)> = series.iter().collect();
    if data.first().is_some_and(|b| b & 1 == 1) {
        order.reverse();
    }
    let mut writer = SegmentWriter::create(&path).expect("create");
    for (key, samples) in order {
        writer
            .add_series(key, samples)
            .unwrap_or_else(|e| panic!("add_series {key}: {e}"));
    }
    let summary = writer.finish().expect("finish");

    let total: u64 = series.values().map(|s| s.len() as u64).sum();
    assert_eq!(summary.series_count as usize, series.len());
    assert_eq!(summary.sample_count, total);

    let segment = Segment::open(&path).unwrap_or_else(|e| panic!("reopen: {e}"));
    assert_eq!(segment.series_count(), series.len());
    let footer = segment.footer();
    assert_eq!(footer.sample_count, total);
    let min = series
        .values()
        .map(|s| s[0].timestamp_ms)
        .min()
        .unwrap_or(i64::MAX);
    let max = series
        .values()
        .map(|s| s[s.len() - 1].timestamp_ms)
        .max()
        .unwrap_or(i64::MIN);
    assert_eq!((footer.min_time_ms, footer.max_time_ms), (min, max));

    for (expected_id, (key, expected)) in series.iter().enumerate() {
        let id = segment
            .find_series(key)
            .unwrap_or_else(|| panic!("series {key} missing after reopen"));
        // Ids are assigned in key order, and the model is a sorted map.
        assert_eq!(id as usize, expected_id, "series {key} id");
        assert_eq!(segment.series_key(id), Some(key));
        assert_eq!(
            segment.chunk_refs(id).len(),
            expected.len().div_ceil(SEALED_CHUNK_SAMPLES),
            "series {key} chunk count"
        );

        let read = segment
            .read_samples(id, TimeRange::ALL)
            .unwrap_or_else(|e| panic!("read {key}: {e}"));
        assert_eq!(read.len(), expected.len(), "series {key} length");
        for (i, (got, want)) in read.iter().zip(expected).enumerate() {
            assert!(
                got.bit_eq(want),
                "series {key} sample {i}: read {:?} ({:#018x}), wrote {:?} ({:#018x})",
                got,
                got.value.to_bits(),
                want,
                want.value.to_bits()
            );
        }

        let ranged = segment
            .read_samples(id, range)
            .unwrap_or_else(|e| panic!("range read {key}: {e}"));
        let want: Vec<&Sample> = expected
            .iter()
            .filter(|s| range.contains(s.timestamp_ms))
            .collect();
        assert_eq!(
            ranged.len(),
            want.len(),
            "series {key} range {range:?} length"
        );
        for (got, want) in ranged.iter().zip(want) {
            assert!(
                got.bit_eq(want),
                "series {key} range {range:?}: {got:?} vs {want:?}"
            );
        }
    }

    for v in 0..8 {
        let value = format!("v{v}");
        let want: Vec<u32> = series
            .keys()
            .enumerate()
            .filter(|(_, k)| k.get("k") == Some(value.as_str()))
            .map(|(i, _)| i as u32)
            .collect();
        assert_eq!(
            segment.select(&[Matcher::equal("k", &value)]),
            want,
            "select k={value}"
        );
    }

    let report = segment.verify();
    assert!(
        report.damage.is_empty(),
        "verify found damage: {:?}",
        report.damage
    );
    assert_eq!(report.series_count, series.len());
    drop(segment);
    drop(dir);
});
