//! strata's own metrics, served in Prometheus text format 0.0.4 at `GET
//! /metrics`: requests by route and status, samples ingested and rejected,
//! query latency, and the database's state (head, segments, flushes, WAL).
//!
//! [`ServerMetrics`] is the collector every handler feeds; it only counts
//! (short critical sections), never blocks on I/O. [`ServerMetrics::render`]
//! writes the exposition from the counters and a [`DbStats`] snapshot.
//!
//! Invariants:
//! - every line written is `# HELP`, `# TYPE` or a sample whose label
//!   values are escaped (`\\`, `\"`, `\n`), so every line parses as the
//!   Prometheus text format (strata's own parser included);
//! - each family's `# HELP` and `# TYPE` come once, before its samples;
//! - counters only grow; histogram buckets are cumulative and the `+Inf`
//!   bucket equals `_count`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;

use super::forward::ForwardStats;
use super::AppState;
use crate::ingest::format_value;
use crate::{DbStats, InputError};

/// Upper bounds (seconds) of the query duration histogram's buckets, `+Inf`
/// left out.
const QUERY_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// The content type of the Prometheus text format 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counters fed by the handlers.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    /// (route, status) → (count, total seconds).
    requests: Mutex<BTreeMap<(String, u16), (u64, f64)>>,
    /// (protocol, outcome) → samples: outcome `accepted` or a rejection
    /// reason ([`rejection_reason`]'s, or a protocol's own such as
    /// `malformed` and `too_many_samples`).
    samples: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// Query API endpoint (`query`, `query_range`) → latency histogram of
    /// the queries it evaluated, failed ones included.
    queries: Mutex<BTreeMap<&'static str, Histogram>>,
}

/// Observations per bucket (not cumulative), their count and sum.
#[derive(Debug, Default, Clone, Copy)]
struct Histogram {
    /// `in_bucket[i]`: observations in `(QUERY_BUCKETS[i-1], QUERY_BUCKETS[i]]`.
    in_bucket: [u64; QUERY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

impl ServerMetrics {
    /// One answered request.
    pub fn record_request(&self, route: &str, status: u16, took: Duration) {
        let mut requests = self.requests.lock();
        let entry = requests.entry((route.to_owned(), status)).or_default();
        entry.0 += 1;
        entry.1 += took.as_secs_f64();
    }

    /// `count` samples of `protocol` (`remote_write`, `influx`) with
    /// `outcome` (`accepted` or a rejection reason).
    pub fn record_samples(&self, protocol: &'static str, outcome: &str, count: u64) {
        if count == 0 {
            return;
        }
        *self
            .samples
            .lock()
            .entry((protocol, outcome.to_owned()))
            .or_default() += count;
    }

    /// Samples recorded for `protocol` with `outcome` so far.
    pub fn samples(&self, protocol: &'static str, outcome: &str) -> u64 {
        self.samples
            .lock()
            .get(&(protocol, outcome.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// One query evaluated by `endpoint` (`query`, `query_range`) in
    /// `took`, from the request's arrival to its rendered answer.
    pub fn record_query(&self, endpoint: &'static str, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut queries = self.queries.lock();
        let histogram = queries.entry(endpoint).or_default();
        if let Some(bucket) = QUERY_BUCKETS.iter().position(|&le| seconds <= le) {
            histogram.in_bucket[bucket] += 1;
        }
        histogram.count += 1;
        histogram.sum_seconds += seconds;
    }

    /// Queries recorded for `endpoint` so far and their total seconds.
    pub fn queries(&self, endpoint: &str) -> (u64, f64) {
        self.queries
            .lock()
            .get(endpoint)
            .map_or((0, 0.0), |h| (h.count, h.sum_seconds))
    }

    /// The exposition: these counters, `stats` of the database and the
    /// server's `uptime`.
    pub fn render(&self, stats: &DbStats, uptime: Duration) -> String {
        let mut out = Exposition::default();
        self.render_requests(&mut out);
        self.render_samples(&mut out);
        self.render_queries(&mut out);
        render_db(&mut out, stats);
        out.family(
            "strata_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
        );
        out.sample("strata_uptime_seconds", &[], uptime.as_secs_f64());
        out.family(
            "strata_build_info",
            "gauge",
            "Always 1; the label says which strata this is.",
        );
        out.sample(
            "strata_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        out.text
    }

    fn render_requests(&self, out: &mut Exposition) {
        let requests = self.requests.lock();
        out.family(
            "strata_http_requests_total",
            "counter",
            "HTTP requests answered, by route and status code.",
        );
        for ((route, code), (count, _)) in requests.iter() {
            let code = code.to_string();
            let labels = [("route", route.as_str()), ("code", code.as_str())];
            out.sample("strata_http_requests_total", &labels, *count as f64);
        }
        let mut by_route: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
        for ((route, _), (count, seconds)) in requests.iter() {
            let entry = by_route.entry(route).or_default();
            entry.0 += count;
            entry.1 += seconds;
        }
        out.family(
            "strata_http_request_duration_seconds",
            "summary",
            "Time spent answering HTTP requests, by route.",
        );
        for (route, (count, seconds)) in by_route {
            let labels = [("route", route)];
            out.sample("strata_http_request_duration_seconds_sum", &labels, seconds);
            out.sample(
                "strata_http_request_duration_seconds_count",
                &labels,
                count as f64,
            );
        }
    }

    fn render_samples(&self, out: &mut Exposition) {
        let samples = self.samples.lock();
        out.family(
            "strata_samples_ingested_total",
            "counter",
            "Samples written through the write endpoints, by protocol.",
        );
        let accepted = samples
            .iter()
            .filter(|((_, outcome), _)| outcome == "accepted");
        for ((protocol, _), count) in accepted {
            out.sample(
                "strata_samples_ingested_total",
                &[("protocol", protocol)],
                *count as f64,
            );
        }
        out.family(
            "strata_samples_rejected_total",
            "counter",
            "Samples the write endpoints did not write, by protocol and reason.",
        );
        let rejected = samples
            .iter()
            .filter(|((_, outcome), _)| outcome != "accepted");
        for ((protocol, reason), count) in rejected {
            let labels = [("protocol", *protocol), ("reason", reason.as_str())];
            out.sample("strata_samples_rejected_total", &labels, *count as f64);
        }
    }

    fn render_queries(&self, out: &mut Exposition) {
        let queries = self.queries.lock();
        out.family(
            "strata_query_duration_seconds",
            "histogram",
            "Time spent answering queries of the query API, by endpoint.",
        );
        for (endpoint, histogram) in queries.iter() {
            let mut cumulative = 0;
            for (le, in_bucket) in QUERY_BUCKETS.iter().zip(histogram.in_bucket) {
                cumulative += in_bucket;
                let le = format_value(*le);
                let labels = [("endpoint", *endpoint), ("le", le.as_str())];
                out.sample(
                    "strata_query_duration_seconds_bucket",
                    &labels,
                    cumulative as f64,
                );
            }
            let count = histogram.count as f64;
            let labels = [("endpoint", *endpoint), ("le", "+Inf")];
            out.sample("strata_query_duration_seconds_bucket", &labels, count);
            let labels = [("endpoint", *endpoint)];
            out.sample(
                "strata_query_duration_seconds_sum",
                &labels,
                histogram.sum_seconds,
            );
            out.sample("strata_query_duration_seconds_count", &labels, count);
        }
    }
}

/// The database's families, from `stats`.
fn render_db(out: &mut Exposition, stats: &DbStats) {
    let gauges: [(&str, &str, &str, f64); 9] = [
        (
            "strata_head_series",
            "gauge",
            "Series in the head.",
            stats.head_series as f64,
        ),
        (
            "strata_head_bytes",
            "gauge",
            "Compressed sample bytes in the head (what backpressure compares with max_head_bytes).",
            stats.head_data_bytes as f64,
        ),
        (
            "strata_segments",
            "gauge",
            "Raw segment files.",
            stats.segments as f64,
        ),
        (
            "strata_flushes_total",
            "counter",
            "Flushes of the head to segments since open.",
            stats.flushes as f64,
        ),
        (
            "strata_compactions_total",
            "counter",
            "Compaction runs (roll-ups, retention, merges) completed since open.",
            stats.compactions as f64,
        ),
        (
            "strata_head_series_dropped_total",
            "counter",
            "Idle series dropped from the head since open.",
            stats.head_series_dropped as f64,
        ),
        (
            "strata_db_samples_appended_total",
            "counter",
            "Samples the database stored since open, from every writer.",
            stats.samples_appended as f64,
        ),
        (
            "strata_wal_bytes",
            "gauge",
            "Bytes of the WAL files on disk.",
            stats.wal_bytes as f64,
        ),
        (
            "strata_wal_fsyncs_total",
            "counter",
            "Data fsyncs of the WAL since open.",
            stats.wal_fsyncs as f64,
        ),
    ];
    for (name, kind, help, value) in gauges {
        out.family(name, kind, help);
        out.sample(name, &[], value);
    }
    out.family(
        "strata_wal_fsync_seconds",
        "summary",
        "Time spent in WAL data fsyncs since open.",
    );
    out.sample(
        "strata_wal_fsync_seconds_sum",
        &[],
        stats.wal_fsync_time.as_secs_f64(),
    );
    out.sample(
        "strata_wal_fsync_seconds_count",
        &[],
        stats.wal_fsyncs as f64,
    );
}

/// The forwarder's families (`strata serve --forward`); the lag is the
/// newest sample stored minus the newest sample sent.
fn render_forward(stats: &ForwardStats, newest_stored_ms: i64) -> String {
    let mut out = Exposition::default();
    let counters = [
        (
            "strata_forward_samples_sent_total",
            "Samples the remote-write receiver accepted.",
            stats.samples_sent,
        ),
        (
            "strata_forward_samples_dropped_total",
            "Samples in batches the receiver refused with a 4xx (not retried).",
            stats.samples_dropped,
        ),
        (
            "strata_forward_retries_total",
            "Failed sends, each retried with backoff.",
            stats.retries,
        ),
        (
            "strata_forward_samples_unresolved_total",
            "Samples of damaged WAL records naming no series, skipped.",
            stats.samples_unresolved,
        ),
    ];
    for (name, help, value) in counters {
        out.family(name, "counter", help);
        out.sample(name, &[], value as f64);
    }
    let lag_seconds = if stats.newest_sent_ms == i64::MIN || newest_stored_ms == i64::MIN {
        0.0
    } else {
        newest_stored_ms.saturating_sub(stats.newest_sent_ms).max(0) as f64 / 1000.0
    };
    let gauges = [
        (
            "strata_forward_lag_seconds",
            "Newest sample stored minus newest sample forwarded.",
            lag_seconds,
        ),
        (
            "strata_forward_pending_wal_bytes",
            "Bytes of WAL files from the forwarder's position on (an upper bound of what is left).",
            stats.pending_wal_bytes as f64,
        ),
    ];
    for (name, help, value) in gauges {
        out.family(name, "gauge", help);
        out.sample(name, &[], value);
    }
    out.text
}

/// The text being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// `# HELP` and `# TYPE` of family `name` (`help` has no `\` or newline).
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample line, label values escaped.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, label_value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(label);
                self.text.push_str("=\"");
                push_escaped_label_value(&mut self.text, label_value);
                self.text.push('"');
            }
            self.text.push('}');
        }
        self.text.push(' ');
        self.text.push_str(&format_value(value));
        self.text.push('\n');
    }
}

/// `value` escaped as the text format wants a label value.
fn push_escaped_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The `reason` label of a sample the database refused with `error`.
pub(super) fn rejection_reason(error: &InputError) -> &'static str {
    match error {
        InputError::SampleTooOld { .. } => "too_old",
        InputError::TooManySeries { .. } => "too_many_series",
        InputError::LimitExceeded { .. } => "limit_exceeded",
        _ => "invalid",
    }
}

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/metrics", get(metrics))
}

/// `GET /metrics`.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let stats = state.db.stats();
    let mut text = state.metrics.render(&stats, state.started.elapsed());
    if let Some(forward) = state.forward.get() {
        text.push_str(&render_forward(&forward.lock(), stats.newest_sample_ms));
    }
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Format, LineParser};

    /// Every line of `text` parses as the Prometheus text format.
    fn parse_all(text: &str) -> Vec<crate::ingest::ParsedSample> {
        let parser = LineParser::new(Format::Prometheus, 0);
        let mut samples = Vec::new();
        for (i, line) in text.lines().enumerate() {
            parser
                .parse_line(i + 1, line, &mut samples)
                .unwrap_or_else(|e| panic!("{e}: {line:?}"));
        }
        samples
    }

    fn value_of(samples: &[crate::ingest::ParsedSample], series: &str) -> f64 {
        samples
            .iter()
            .find(|s| s.key.to_string() == series)
            .unwrap_or_else(|| panic!("no {series}"))
            .value
    }

    #[test]
    fn label_values_are_escaped_and_every_line_parses() {
        let metrics = ServerMetrics::default();
        metrics.record_request("/a\"b\\c\nd", 200, Duration::from_millis(3));
        metrics.record_samples("influx", "accepted", 7);
        metrics.record_samples("influx", "too_old", 2);
        let samples = parse_all(&metrics.render(&DbStats::default(), Duration::ZERO));
        let series = r#"strata_http_requests_total{code="200",route="/a\"b\\c\nd"}"#;
        assert_eq!(value_of(&samples, series), 1.0);
        let ingested = r#"strata_samples_ingested_total{protocol="influx"}"#;
        assert_eq!(value_of(&samples, ingested), 7.0);
        let rejected = r#"strata_samples_rejected_total{protocol="influx",reason="too_old"}"#;
        assert_eq!(value_of(&samples, rejected), 2.0);
    }

    proptest::proptest! {
        #[test]
        fn any_route_survives_the_exposition(route in "(?s).{1,40}", count in 1u64..1000) {
            let metrics = ServerMetrics::default();
            for _ in 0..count {
                metrics.record_request(&route, 204, Duration::from_millis(1));
            }
            let samples = parse_all(&metrics.render(&DbStats::default(), Duration::ZERO));
            let requests = samples
                .iter()
                .find(|s| s.key.metric() == "strata_http_requests_total")
                .unwrap();
            proptest::prop_assert_eq!(requests.key.get("route"), Some(route.as_str()));
            proptest::prop_assert_eq!(requests.value, count as f64);
        }
    }

    #[test]
    fn query_histogram_buckets_are_cumulative() {
        let metrics = ServerMetrics::default();
        for millis in [0, 3, 3, 700, 500_000] {
            metrics.record_query("query", Duration::from_millis(millis));
        }
        let samples = parse_all(&metrics.render(&DbStats::default(), Duration::ZERO));
        let bucket = |le: &str| {
            value_of(
                &samples,
                &format!(r#"strata_query_duration_seconds_bucket{{endpoint="query",le="{le}"}}"#),
            )
        };
        assert_eq!(bucket("0.001"), 1.0);
        assert_eq!(bucket("0.005"), 3.0);
        assert_eq!(bucket("1.0"), 4.0);
        assert_eq!(bucket("120.0"), 4.0);
        assert_eq!(bucket("+Inf"), 5.0);
        assert_eq!(
            value_of(
                &samples,
                r#"strata_query_duration_seconds_count{endpoint="query"}"#
            ),
            5.0
        );
    }

    #[test]
    fn forward_families_parse_and_the_lag_is_stored_minus_sent() {
        let stats = ForwardStats {
            samples_sent: 7,
            newest_sent_ms: 10_000,
            pending_wal_bytes: 4096,
            ..ForwardStats::default()
        };
        let samples = parse_all(&render_forward(&stats, 12_500));
        assert_eq!(
            value_of(&samples, "strata_forward_samples_sent_total{}"),
            7.0
        );
        assert_eq!(value_of(&samples, "strata_forward_lag_seconds{}"), 2.5);
        assert_eq!(
            value_of(&samples, "strata_forward_pending_wal_bytes{}"),
            4096.0
        );
        let nothing_sent = ForwardStats {
            newest_sent_ms: i64::MIN,
            ..stats
        };
        let samples = parse_all(&render_forward(&nothing_sent, 12_500));
        assert_eq!(value_of(&samples, "strata_forward_lag_seconds{}"), 0.0);
    }
}
