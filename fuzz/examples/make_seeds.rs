//! Writes valid seed inputs for the fuzz targets (paths relative to the
//! fuzz crate): three segment files into `corpus/segment_open/`, three
//! encoded chunks into `corpus/codec_decode/`, the default manifest into
//! `corpus/manifest_decode/` and a few lines of each text format into
//! `corpus/ingest_tsv/`, `corpus/ingest_prometheus/` and
//! `corpus/ingest_influx/`, and KPI-style expressions into
//! `corpus/query_parse/`.
//!
//! Not a fuzz target; run it with plain cargo from `fuzz/`:
//! `cargo run --example make_seeds`.

use std::fs;
use std::path::{Path, PathBuf};

use strata::codec::encode_chunk;
use strata::{Manifest, Sample, SegmentWriter, SeriesKey};

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

/// Lines of each import format: the shapes the parsers document.
const TSV_LINES: &str = "\
up{instance=\"a:9100\",job=\"node\"}\t1700000000000\t1
http_requests_total{code=\"500\",path=\"/a b\"}\t-5\tNaN:0x7ff0000000000002
x\t9223372036854775807\t-Inf
x{a=\"\\n\\\"q\"}\t0\t-0.0
";
const PROMETHEUS_LINES: &str = "\
# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000
msdos{path=\"C:\\\\DIR\",error=\"Cannot find:\\n\\\"F\\\"\"} 1.458255915e9
job:rpc_errors:rate5m{job=\"api\",} -Inf -5
{__name__=\"named\"} 1 2
stale{a=\"b\"}NaN
";
/// One expression per line: the shapes of the KPIs strata's users write.
const QUERY_LINES: &str = r#"sum by (route) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (route) (rate(http_requests_total[5m])) > 0.05
histogram_quantile(0.95, sum by (le) (rate(gateway_request_duration_seconds_bucket[5m])))
max_over_time(rate(x[5m])[1h:1m])
time() - heartbeat_last_seen_timestamp > 60
label_replace(up, "host", "$1", "instance", "(.*):.*")
topk(3, sum without (instance) (increase(jobs_failed_total[1h] offset 1d)))
avg(spawn_queue_depth @ end()) unless on (queue) absent(spawn_queue_depth)
-count_values("v", inbox_messages) ^ 2 % 7 and bool_metric{a!="b",c!~"d"}"#;

const INFLUX_LINES: &str = "\
cpu,host=server01,region=us-west usage_idle=92.5,usage_user=3i,count=7u,up=t 1465839830100400200
weather,location=us\\,midwest temperature=82,note=\"a, b = c \\\" d\" 1465839830100400200
temp value=-1.5e3
9lives,k=v\\q x-y=1
";

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

    // Only the default manifest: the manifest_decode target's framing pass
    // reaches the entries from any payload, and a literal SegmentMeta here
    // would break with every field the manifest gains.
    save(
        &corpus.join("manifest_decode"),
        "seed-empty",
        &Manifest::default().encode(),
    );

    for (target, lines) in [
        ("ingest_tsv", TSV_LINES),
        ("ingest_prometheus", PROMETHEUS_LINES),
        ("ingest_influx", INFLUX_LINES),
        ("query_parse", QUERY_LINES),
    ] {
        for (i, line) in lines.lines().enumerate() {
            save(&corpus.join(target), &format!("seed-{i}"), line.as_bytes());
        }
        save(&corpus.join(target), "seed-all", lines.as_bytes());
    }
}
