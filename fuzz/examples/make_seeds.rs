//! Writes valid seed inputs for the fuzz targets:
//! three segment files into `corpus/segment_open/` and three encoded chunks
//! into `corpus/codec_decode/` (paths relative to the fuzz crate).
//!
//! Not a fuzz target; run it with plain cargo from `fuzz/`:
//! `cargo run --example make_seeds`.

use std::fs;
use std::path::{Path, PathBuf};

use strata::codec::encode_chunk;
use strata::{Sample, SegmentWriter, SeriesKey};

type Series = (SeriesKey, Vec<Sample>);

fn key(metric: &str, labels: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(metric, labels).expect("valid key")
}

/// A small segment: one series, ten regular samples.
fn small() -> Vec<Series> {
    let samples = (0..10)
        .map(|i| Sample::new(1_700_000_000_000 + i * 15_000, i as f64))
        .collect();
    vec![(key("up", &[("job", "node")]), samples)]
}

/// Several series sharing labels; one spans two chunks.
fn labelled() -> Vec<Series> {
    let long = (0..1_100)
        .map(|i| Sample::new(1_700_000_000_000 + i * 1_000, 42.0))
        .collect();
    let jittery = (0..40)
        .map(|i: i64| {
            Sample::new(
                1_700_000_000_000 + i * 10_000 + (i * 7919) % 13,
                (i as f64 * 0.1).sin(),
            )
        })
        .collect();
    let counter = (0..30)
        .map(|i| Sample::new(1_700_000_000_000 + i * 30_000, (i * i) as f64))
        .collect();
    vec![
        (key("m0", &[("k", "v0")]), long),
        (key("m0", &[("k", "v1"), ("a", "x0")]), jittery),
        (
            key("http_requests_total", &[("code", "200"), ("k", "v1")]),
            counter,
        ),
        (key("m1", &[]), vec![Sample::new(5, -1.5)]),
    ]
}

/// Extremes: i64::MIN/MAX timestamps, huge deltas, special f64 patterns.
fn extremes() -> Vec<Series> {
    let specials = [
        f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001),
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::from_bits(1),
        f64::MAX,
        f64::MIN_POSITIVE,
    ];
    let timestamps = [
        i64::MIN,
        i64::MIN + 1,
        -1,
        0,
        1,
        1 << 40,
        i64::MAX - 1,
        i64::MAX,
    ];
    let samples = timestamps
        .iter()
        .zip(specials)
        .map(|(&t, v)| Sample::new(t, v))
        .collect();
    vec![
        (key("m7", &[("k", "v7")]), samples),
        (
            key("m2", &[("k", "v2")]),
            vec![Sample::new(i64::MIN, f64::NAN), Sample::new(i64::MAX, 0.0)],
        ),
    ]
}

fn write_segment(dir: &Path, name: &str, series: &[Series]) -> Vec<u8> {
    let path = dir.join(name);
    let mut writer = SegmentWriter::create(&path).expect("create segment");
    for (key, samples) in series {
        writer.add_series(key, samples).expect("add series");
    }
    writer.finish().expect("finish segment");
    fs::read(&path).expect("read segment back")
}

fn chunk(series: &[Sample]) -> Vec<u8> {
    let timestamps: Vec<i64> = series.iter().map(|s| s.timestamp_ms).collect();
    let values: Vec<f64> = series.iter().map(|s| s.value).collect();
    let mut out = Vec::new();
    encode_chunk(&timestamps, &values, &mut out).expect("encode chunk");
    out
}

fn save(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("create corpus dir");
    let path = dir.join(name);
    fs::write(&path, bytes).expect("write seed");
    println!("{} ({} bytes)", path.display(), bytes.len());
}

fn main() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let tmp = tempfile::tempdir().expect("temp dir");

    let sets = [
        ("small", small()),
        ("labelled", labelled()),
        ("extremes", extremes()),
    ];
    for (name, series) in &sets {
        let bytes = write_segment(tmp.path(), &format!("{name}.seg"), series);
        save(
            &corpus.join("segment_open"),
            &format!("seed-{name}.seg"),
            &bytes,
        );
    }

    let chunks = [
        ("small", chunk(&sets[0].1[0].1)),
        ("jittery", chunk(&sets[1].1[1].1)),
        ("extremes", chunk(&sets[2].1[0].1)),
    ];
    for (name, bytes) in &chunks {
        save(
            &corpus.join("codec_decode"),
            &format!("seed-{name}.chunk"),
            bytes,
        );
    }
}
