//! strata as a real Prometheus 2.42's remote-write target and remote-read
//! source.
//!
//! 1. A Prometheus scrapes itself every second and remote-writes to a
//!    `strata::server::Server` started in-process (one shard, so batches
//!    arrive in order). Once strata holds 60 s of `up`, the raw samples of
//!    `up`, `prometheus_tsdb_head_series` and the classic histogram
//!    `prometheus_http_request_duration_seconds_bucket` over a window that
//!    both hold whole (ending 2.5 s before the newest `up` strata has, so
//!    no batch is in flight for it; both ends between two scrapes) are
//!    compared: Prometheus's answer to the instant query `SELECTOR[RANGE]`
//!    at the window's end against `Db::select`: same series, timestamps
//!    and value bits (Prometheus's API leaves out staleness markers, so
//!    they are left out of strata's side too). The metadata Prometheus
//!    sends is checked for one gauge.
//! 2. A series written straight to strata by remote write is queried
//!    through a second Prometheus whose only data source is `remote_read`
//!    from strata (`read_recent: true`): the value and every sample of a
//!    range selector must be what was written.
//!
//! Without the `prometheus` binary the test says so and passes, except
//! under `CI=true`, where it fails (.ci/run installs it). Every wait is
//! bounded by a generous deadline that only turns a hang into a failure;
//! nothing here asserts on timing. It takes about 70 s.
#![cfg(feature = "server")]

mod server_support;

#[path = "prometheus/server.rs"]
#[allow(dead_code)]
mod server;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use prost::Message;
use server::{url_encode, Prometheus, Tools};
use server_support::{post, TestServer};
use strata::server::proto::{Label, Sample, TimeSeries, WriteRequest};
use strata::{parse_selector, MetricType, SeriesKey, TimeRange};

/// Longest wait for strata to hold the minute of data: only turns a hang
/// into a failure (it takes about 60 s).
const DATA_DEADLINE: Duration = Duration::from_secs(300);

/// How much of Prometheus's own data to collect before comparing.
const SPAN_MS: i64 = 60_000;

/// Series and samples: key text → (timestamp ms, value bits).
type Samples = BTreeMap<String, Vec<(i64, u64)>>;

#[test]
fn prometheus_remote_writes_to_strata_and_reads_from_it() {
    let Some(tools) = tools() else {
        return;
    };
    let strata = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let scraper_dir = work.path().join("scraper");
    std::fs::create_dir_all(scraper_dir.join("tsdb")).unwrap();
    let strata_url = strata.url("");
    let scraper =
        Prometheus::start_configured(&tools, &scraper_dir.join("tsdb"), &scraper_dir, &|port| {
            scraper_config(port, &strata_url)
        });

    let (first_ms, newest_ms) = wait_for_a_minute(&strata, &scraper);
    // Both ends between two scrapes (they come every second).
    let start_ms = first_ms + 500;
    let end_ms = newest_ms - 2_500;
    for selector in [
        "up",
        "prometheus_tsdb_head_series",
        "prometheus_http_request_duration_seconds_bucket",
    ] {
        let theirs = prometheus_samples(&scraper, selector, start_ms, end_ms);
        let ours = strata_samples(&strata, selector, start_ms, end_ms);
        assert!(!theirs.is_empty(), "Prometheus has no {selector}");
        let points: usize = theirs.values().map(Vec::len).sum();
        assert_eq!(
            ours, theirs,
            "{selector} over [{start_ms}, {end_ms}]: strata (left) and Prometheus (right) differ"
        );
        let _ = writeln!(
            std::io::stderr(),
            "prometheus_remote: {selector}: {} series, {points} samples identical",
            theirs.len()
        );
    }
    // The same PromQL over the same window, answered by both HTTP APIs.
    for expr in [
        "up",
        "max_over_time(prometheus_tsdb_head_series[15s])",
        "sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[10s]))",
        "histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[10s])))",
    ] {
        let query = format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=5",
            url_encode(expr),
            api_time(start_ms + 15_000),
            api_time(end_ms)
        );
        let (status, body) = scraper.get(&query).unwrap();
        assert_eq!(status, 200, "Prometheus, {expr}: {body}");
        let theirs = matrix(&body);
        let ours_reply = server_support::get(&strata.url(&query), &[]);
        assert_eq!(ours_reply.status, 200, "strata, {expr}: {}", ours_reply.text());
        let ours = matrix(&ours_reply.text());
        assert!(!theirs.is_empty(), "{expr}: Prometheus answered nothing");
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{expr}: the series differ"
        );
        for (series, points) in &theirs {
            let mine = &ours[series];
            assert_eq!(mine.len(), points.len(), "{expr} {series}: point count");
            for (&(t, v), &(u, w)) in mine.iter().zip(points) {
                assert_eq!(t, u, "{expr} {series}: timestamps");
                let close = v == w
                    || (v.is_nan() && w.is_nan())
                    || (v - w).abs() <= 1e-9 * v.abs().max(w.abs());
                assert!(close, "{expr} {series} at {t}: strata {v}, Prometheus {w}");
            }
        }
        let _ = writeln!(
            std::io::stderr(),
            "prometheus_remote: {expr}: {} series agree",
            theirs.len()
        );
    }
    let metadata = strata.db.metadata();
    let head_series = metadata
        .get("prometheus_tsdb_head_series")
        .unwrap_or_else(|| panic!("no metadata sent for prometheus_tsdb_head_series"));
    assert_eq!(head_series.metric_type, MetricType::Gauge);
    assert!(!head_series.help.is_empty());
    drop(scraper);

    read_through_prometheus(&tools, &strata, work.path());
}

/// A Prometheus scraping itself every second, remote-writing to strata.
fn scraper_config(port: u16, strata_url: &str) -> String {
    format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1m
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:{port}']
remote_write:
  - url: {strata_url}/api/v1/write
    queue_config:
      batch_send_deadline: 200ms
      min_shards: 1
      max_shards: 1
      min_backoff: 50ms
      max_backoff: 1s
    metadata_config:
      send_interval: 2s
"
    )
}

/// Waits until strata holds `SPAN_MS` of `up`: its first and newest
/// timestamps then.
fn wait_for_a_minute(strata: &TestServer, scraper: &Prometheus) -> (i64, i64) {
    let up = parse_selector("up").unwrap();
    let started = Instant::now();
    loop {
        let held = strata.db.select(&up, TimeRange::ALL).unwrap();
        if let Some(series) = held.first() {
            let first = series.samples[0].timestamp_ms;
            let newest = series.samples[series.samples.len() - 1].timestamp_ms;
            if newest - first >= SPAN_MS {
                return (first, newest);
            }
        }
        assert!(
            started.elapsed() < DATA_DEADLINE,
            "strata did not get a minute of `up` within {DATA_DEADLINE:?} (holds {held:?}); \
             Prometheus's log:\n{}",
            scraper.log_text()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Prometheus's raw samples of `selector` in `[start_ms, end_ms]`.
fn prometheus_samples(
    prometheus: &Prometheus,
    selector: &str,
    start_ms: i64,
    end_ms: i64,
) -> Samples {
    let query = format!("{selector}[{}ms]", end_ms - start_ms);
    let path = format!(
        "/api/v1/query?query={}&time={}.{:03}",
        url_encode(&query),
        end_ms / 1_000,
        end_ms % 1_000
    );
    let (status, body) = prometheus.get(&path).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["data"]["resultType"], "matrix", "{body}");
    answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| {
            let labels: Vec<(String, String)> = series["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
                .collect();
            let key = SeriesKey::from_labels(
                labels
                    .iter()
                    .map(|(n, v)| strata::Label::new(n.as_str(), v.as_str()))
                    .collect(),
            )
            .unwrap();
            let samples = series["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|point| {
                    let seconds = point[0].as_f64().unwrap();
                    let value: f64 = parse_go_float(point[1].as_str().unwrap());
                    ((seconds * 1_000.0).round() as i64, value.to_bits())
                })
                .collect();
            (key.to_string(), samples)
        })
        .collect()
}

/// A value as Prometheus's API writes it (Go's `strconv.FormatFloat`, and
/// `NaN`, `+Inf`, `-Inf`).
fn parse_go_float(text: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => text.parse().unwrap(),
    }
}

/// strata's raw samples of `selector` in `[start_ms, end_ms]`, without
/// staleness markers.
fn strata_samples(strata: &TestServer, selector: &str, start_ms: i64, end_ms: i64) -> Samples {
    const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
    let matchers = parse_selector(selector).unwrap();
    strata
        .db
        .select(&matchers, TimeRange::new(start_ms, end_ms))
        .unwrap()
        .into_iter()
        .map(|series| {
            let samples: Vec<(i64, u64)> = series
                .samples
                .iter()
                .map(|s| (s.timestamp_ms, s.value.to_bits()))
                .filter(|&(_, bits)| bits != STALE_NAN)
                .collect();
            (series.key.to_string(), samples)
        })
        .filter(|(_, samples)| !samples.is_empty())
        .collect()
}

/// Writes a series only strata has, then reads it through a Prometheus
/// whose one source is strata's remote read.
fn read_through_prometheus(tools: &Tools, strata: &TestServer, work: &std::path::Path) {
    let newest_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let written: Vec<(i64, f64)> = (0..5)
        .map(|i| (newest_ms - (4 - i) * 5_000, 1.5 + i as f64 * 10.25))
        .collect();
    let request = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".to_owned(),
                    value: "strata_only_total".to_owned(),
                },
                Label {
                    name: "source".to_owned(),
                    value: "direct".to_owned(),
                },
            ],
            samples: written
                .iter()
                .map(|&(timestamp, value)| Sample { value, timestamp })
                .collect(),
        }],
        metadata: Vec::new(),
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap();
    let reply = post(
        &strata.url("/api/v1/write"),
        &[("Content-Encoding", "snappy")],
        &body,
    );
    assert_eq!(reply.status, 204, "{}", reply.text());

    let reader_dir = work.join("reader");
    std::fs::create_dir_all(reader_dir.join("tsdb")).unwrap();
    let strata_url = strata.url("");
    let reader = Prometheus::start_configured(
        tools,
        &reader_dir.join("tsdb"),
        &reader_dir,
        &|_| {
            format!(
            "global:\n  evaluation_interval: 1m\nremote_read:\n  - url: {strata_url}/api/v1/read\n    read_recent: true\n"
        )
        },
    );
    let time = format!("{}.{:03}", newest_ms / 1_000, newest_ms % 1_000);
    let instant = format!(
        "/api/v1/query?query={}&time={time}",
        url_encode("strata_only_total")
    );
    let (status, body) = reader.get(&instant).unwrap();
    assert_eq!(status, 200, "{body}\n{}", reader.log_text());
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let result = &answer["data"]["result"];
    assert_eq!(result.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(result[0]["metric"]["source"], "direct", "{body}");
    let value = parse_go_float(result[0]["value"][1].as_str().unwrap());
    assert_eq!(value.to_bits(), written[4].1.to_bits(), "{body}");

    let range = reader
        .get(&format!(
            "/api/v1/query?query={}&time={time}",
            url_encode("strata_only_total[30s]")
        ))
        .unwrap();
    assert_eq!(range.0, 200, "{}", range.1);
    let answer: serde_json::Value = serde_json::from_str(&range.1).unwrap();
    let points: Vec<(i64, u64)> = answer["data"]["result"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                (p[0].as_f64().unwrap() * 1_000.0).round() as i64,
                parse_go_float(p[1].as_str().unwrap()).to_bits(),
            )
        })
        .collect();
    let expected: Vec<(i64, u64)> = written.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    assert_eq!(points, expected, "{}", range.1);
    let _ = writeln!(
        std::io::stderr(),
        "prometheus_remote: remote read through Prometheus: {} samples identical",
        points.len()
    );
}

/// The tools, or `None` (the test passes) when they are missing outside
/// CI.
fn tools() -> Option<Tools> {
    match Tools::find() {
        Ok(tools) => Some(tools),
        Err(why) => {
            let missing = format!("Prometheus is not installed ({why})");
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "prometheus_remote: {missing}; under CI=true it is required (.ci/run installs it)"
            );
            let _ = writeln!(
                std::io::stderr(),
                "prometheus_remote: SKIPPED, {missing}; `apt-get install prometheus` and run again"
            );
            None
        }
    }
}

/// Unix seconds with milliseconds, as the API takes them.
fn api_time(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1_000), ms.rem_euclid(1_000))
}

/// A query_range answer: series (label text) → (timestamp ms, value).
fn matrix(body: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    let answer: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(answer["data"]["resultType"], "matrix", "{body}");
    answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| {
            let points = series["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|point| {
                    let seconds = point[0].as_f64().unwrap();
                    let value = parse_go_float(point[1].as_str().unwrap());
                    ((seconds * 1_000.0).round() as i64, value)
                })
                .collect();
            (series["metric"].to_string(), points)
        })
        .collect()
}
