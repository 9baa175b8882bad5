//! `strata serve` remote write and remote read over real sockets: requests
//! encoded here with prost and snap (a conformant sender), answers checked
//! against what the database holds, bit for bit.
#![cfg(feature = "server")]

mod server_support;

/// A hand-made encoder that writes every field, -0.0 included (prost, like
/// Prometheus's gogo-protobuf, leaves out a `double` that compares equal
/// to 0).
#[path = "prometheus/remote_write.rs"]
#[allow(dead_code)]
mod hand_encoded;

use std::collections::BTreeMap;

use proptest::prelude::*;
use prost::Message;
use server_support::{post, Reply, TestServer};
use strata::server::proto::{
    Label, LabelMatcher, MetricMetadata, Query, ReadRequest, ReadResponse, Sample, TimeSeries,
    WriteRequest,
};
use strata::server::ServerConfig;
use strata::{Matcher, MetricType, Options, TimeRange};

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

const HEADERS: [(&str, &str); 3] = [
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

fn snappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(bytes).unwrap()
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    let mut labels: Vec<Label> = labels
        .iter()
        .map(|(name, value)| Label {
            name: (*name).to_owned(),
            value: (*value).to_owned(),
        })
        .collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels,
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
    }
}

fn write_request(timeseries: Vec<TimeSeries>) -> WriteRequest {
    WriteRequest {
        timeseries,
        metadata: Vec::new(),
    }
}

fn send_write(server: &TestServer, request: &WriteRequest) -> Reply {
    post(
        &server.url("/api/v1/write"),
        &HEADERS,
        &snappy(&request.encode_to_vec()),
    )
}

fn send_read(server: &TestServer, request: &ReadRequest) -> Reply {
    post(
        &server.url("/api/v1/read"),
        &HEADERS,
        &snappy(&request.encode_to_vec()),
    )
}

/// Remote read of one query; panics unless it answers 200.
fn read_one(server: &TestServer, query: Query) -> Vec<TimeSeries> {
    let reply = send_read(
        server,
        &ReadRequest {
            queries: vec![query],
            accepted_response_types: vec![0],
        },
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(reply.header("content-encoding"), Some("snappy"));
    let decoded = snap::raw::Decoder::new()
        .decompress_vec(&reply.body)
        .unwrap();
    let mut response = ReadResponse::decode(decoded.as_slice()).unwrap();
    assert_eq!(response.results.len(), 1);
    response.results.remove(0).timeseries
}

fn matcher(kind: i32, name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: kind,
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

fn query(start: i64, end: i64, matchers: Vec<LabelMatcher>) -> Query {
    Query {
        start_timestamp_ms: start,
        end_timestamp_ms: end,
        matchers,
        hints: None,
    }
}

/// What the database holds for `matchers`: text key → (timestamp, bits).
fn stored(server: &TestServer, matchers: &[Matcher]) -> BTreeMap<String, Vec<(i64, u64)>> {
    server
        .db
        .select(matchers, TimeRange::ALL)
        .unwrap()
        .into_iter()
        .map(|s| {
            let samples = s
                .samples
                .iter()
                .map(|x| (x.timestamp_ms, x.value.to_bits()))
                .collect();
            (s.key.to_string(), samples)
        })
        .collect()
}

/// Remote-read series as text key → (timestamp, bits), checking that
/// labels are sorted by name.
fn as_map(timeseries: &[TimeSeries]) -> BTreeMap<String, Vec<(i64, u64)>> {
    timeseries
        .iter()
        .map(|s| {
            assert!(s.labels.windows(2).all(|w| w[0].name < w[1].name), "{s:?}");
            let key = strata::SeriesKey::from_labels(
                s.labels
                    .iter()
                    .map(|l| strata::Label::new(l.name.as_str(), l.value.as_str()))
                    .collect(),
            )
            .unwrap();
            let samples = s
                .samples
                .iter()
                .map(|x| (x.timestamp, x.value.to_bits()))
                .collect();
            (key.to_string(), samples)
        })
        .collect()
}

#[test]
fn special_values_are_stored_bit_exact() {
    let server = TestServer::start();
    let bits = [
        STALE_NAN,
        0x7ff8_0000_0000_0000,
        0x7ff8_dead_beef_0001,
        0xfff8_0000_0000_0042,
        f64::INFINITY.to_bits(),
        f64::NEG_INFINITY.to_bits(),
        (-0.0f64).to_bits(),
        0.0f64.to_bits(),
        1u64, // the smallest subnormal
        f64::MAX.to_bits(),
        f64::MIN.to_bits(),
        1.5f64.to_bits(),
    ];
    let samples: Vec<(i64, f64)> = bits
        .iter()
        .enumerate()
        .map(|(i, &b)| (1_000 * (i as i64 + 1), f64::from_bits(b)))
        .collect();
    let body = hand_encoded::body(&[hand_encoded::TimeSeries {
        labels: vec![("__name__", "edge"), ("job", "bits")],
        samples: &samples,
    }]);
    let reply = post(&server.url("/api/v1/write"), &hand_encoded::HEADERS, &body);
    assert_eq!(reply.status, 204, "{}", reply.text());
    let held = stored(&server, &[Matcher::equal("__name__", "edge")]);
    let expected: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    assert_eq!(held[r#"edge{job="bits"}"#], expected);
    assert_eq!(
        server.state.metrics.samples("remote_write", "accepted"),
        bits.len() as u64
    );
    // And back out through remote read, where -0.0 comes out as 0.0: a
    // proto3 `double` equal to 0 is not encoded (prost and gogo-protobuf).
    let read = read_one(&server, query(0, 100_000, vec![matcher(0, "job", "bits")]));
    let mut expected = held;
    for samples in expected.values_mut() {
        for (_, bits) in samples.iter_mut() {
            if *bits == (-0.0f64).to_bits() {
                *bits = 0;
            }
        }
    }
    assert_eq!(as_map(&read), expected);
}

#[test]
fn bad_parts_are_refused_with_400_and_the_rest_is_stored() {
    let server = TestServer::start();
    let hour = 3_600_000;
    let request = write_request(vec![
        series(&[("__name__", "good"), ("job", "a")], &[(hour, 1.0)]),
        // The second sample is an hour behind the first: out of order.
        series(
            &[("__name__", "late"), ("job", "a")],
            &[(hour, 1.0), (0, 2.0), (hour + 1_000, 3.0)],
        ),
        series(&[("job", "nameless")], &[(hour, 1.0)]),
        series(&[("__name__", "bad"), ("bad-name", "x")], &[(hour, 1.0)]),
        series(
            &[("__name__", "dup"), ("a", "1"), ("a", "2")],
            &[(hour, 1.0)],
        ),
        series(&[("__name__", "empty"), ("", "x")], &[(hour, 1.0)]),
        series(&[("__name__", "good"), ("job", "b")], &[(hour, 2.0)]),
    ]);
    let reply = send_write(&server, &request);
    assert_eq!(reply.status, 400, "{}", reply.text());
    let text = reply.text();
    for expected in [
        "refused 5 of 9 samples",
        "out_of_order: 1",
        "invalid: 4",
        "4 of 7 series",
        "the rest (4 samples) was stored",
        r#"series {job="nameless"}: series has no metric name"#,
        r#"series {__name__="bad",bad-name="x"}: invalid label name"#,
        r#"label "a" appears twice"#,
        r#"series {="x",__name__="empty"}: invalid label name """#,
        "late{job=\"a\"}: sample at 0 is out of order",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    let held = stored(&server, &[]);
    assert_eq!(held.len(), 3, "{held:?}");
    assert_eq!(held[r#"good{job="a"}"#], [(hour, 1f64.to_bits())]);
    assert_eq!(held[r#"good{job="b"}"#], [(hour, 2f64.to_bits())]);
    assert_eq!(
        held[r#"late{job="a"}"#],
        [(hour, 1f64.to_bits()), (hour + 1_000, 3f64.to_bits())]
    );
    let metrics = &server.state.metrics;
    assert_eq!(metrics.samples("remote_write", "accepted"), 4);
    assert_eq!(metrics.samples("remote_write", "out_of_order"), 1);
    assert_eq!(metrics.samples("remote_write", "invalid"), 4);
}

#[test]
fn undecodable_bodies_are_400_and_store_nothing() {
    let server = TestServer::start();
    let url = server.url("/api/v1/write");
    let garbage = post(&url, &HEADERS, b"\xff\xff\xff\xff\xff\xff not snappy");
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    assert!(garbage.text().contains("not snappy"), "{}", garbage.text());
    // Valid snappy whose content is not a WriteRequest (a truncated varint
    // length and a wrong wire type).
    let not_protobuf = post(&url, &HEADERS, &snappy(b"\x0a\xff\xff\xff\xff\xff\x0f\x0b"));
    assert_eq!(not_protobuf.status, 400, "{}", not_protobuf.text());
    assert!(
        not_protobuf.text().contains("not a protobuf WriteRequest"),
        "{}",
        not_protobuf.text()
    );
    // A snappy header claiming 4 GiB from a few bytes.
    let lying = post(&url, &HEADERS, b"\x80\x80\x80\x80\x10\x00");
    assert_eq!(lying.status, 400, "{}", lying.text());
    let wrong_encoding = post(
        &url,
        &[("Content-Encoding", "gzip")],
        &snappy(&write_request(vec![]).encode_to_vec()),
    );
    assert_eq!(wrong_encoding.status, 415, "{}", wrong_encoding.text());
    // Without the headers (Prometheus's receiver never required them).
    let bare = post(
        &url,
        &[],
        &snappy(&write_request(vec![series(&[("__name__", "bare")], &[(1, 1.0)])]).encode_to_vec()),
    );
    assert_eq!(bare.status, 204, "{}", bare.text());
    assert_eq!(stored(&server, &[]).len(), 1);
}

#[test]
fn an_oversized_body_is_413() {
    let config = ServerConfig {
        max_body_bytes: 1024,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Options::default());
    let reply = post(&server.url("/api/v1/write"), &HEADERS, &[0u8; 4096]);
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert!(stored(&server, &[]).is_empty());
}

#[test]
fn too_many_samples_are_400_and_nothing_is_written() {
    let config = ServerConfig {
        max_samples_per_request: 10,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Options::default());
    let six: Vec<(i64, f64)> = (1..=6).map(|t| (t * 1_000, t as f64)).collect();
    let request = WriteRequest {
        timeseries: vec![
            series(&[("__name__", "a")], &six),
            series(&[("__name__", "b")], &six[..5]),
        ],
        metadata: vec![MetricMetadata {
            r#type: 2,
            metric_family_name: "a".to_owned(),
            help: "A gauge.".to_owned(),
            unit: String::new(),
        }],
    };
    let reply = send_write(&server, &request);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.text().contains("11 samples, over the limit of 10"),
        "{}",
        reply.text()
    );
    assert!(stored(&server, &[]).is_empty());
    assert!(server.db.find_series(&[]).is_empty(), "no series created");
    assert!(server.db.metadata().is_empty(), "no metadata stored");
    // Ten is within the limit.
    let request = write_request(vec![
        series(&[("__name__", "a")], &six[..5]),
        series(&[("__name__", "b")], &six[..5]),
    ]);
    assert_eq!(send_write(&server, &request).status, 204);
}

#[test]
fn metadata_is_stored_and_bad_entries_are_reported() {
    let server = TestServer::start();
    let entry = |kind: i32, family: &str, help: &str, unit: &str| MetricMetadata {
        r#type: kind,
        metric_family_name: family.to_owned(),
        help: help.to_owned(),
        unit: unit.to_owned(),
    };
    let good = WriteRequest {
        timeseries: Vec::new(),
        metadata: vec![
            entry(1, "http_requests", "Requests served.", ""),
            entry(3, "request_duration_seconds", "Latency.", "seconds"),
            entry(7, "feature", "", ""),
        ],
    };
    let reply = send_write(&server, &good);
    assert_eq!(reply.status, 204, "{}", reply.text());
    let metadata = server.db.metadata();
    let requests = metadata.get("http_requests").unwrap();
    assert_eq!(requests.metric_type, MetricType::Counter);
    assert_eq!(requests.help, "Requests served.");
    let latency = metadata.get("request_duration_seconds").unwrap();
    assert_eq!(latency.metric_type, MetricType::Histogram);
    assert_eq!(latency.unit, "seconds");
    assert_eq!(
        metadata.get("feature").unwrap().metric_type,
        MetricType::StateSet
    );

    let mixed = WriteRequest {
        timeseries: vec![series(&[("__name__", "up")], &[(1_000, 1.0)])],
        metadata: vec![
            entry(2, "up", "1 when the target answered.", ""),
            entry(2, "not-a-name", "", ""),
            entry(42, "weird", "", ""),
        ],
    };
    let reply = send_write(&server, &mixed);
    assert_eq!(reply.status, 400, "{}", reply.text());
    let text = reply.text();
    assert!(text.contains("2 of 3 metadata entries"), "{text}");
    assert!(text.contains(r#"metadata of "not-a-name""#), "{text}");
    assert!(text.contains("unknown metric type code 42"), "{text}");
    assert_eq!(
        server.db.metadata().get("up").unwrap().metric_type,
        MetricType::Gauge
    );
    assert!(server.db.metadata().get("weird").is_none());
    assert_eq!(stored(&server, &[]).len(), 1, "the sample was stored");
}

/// Six series of two metrics over 0..=59 s.
fn write_fixture(server: &TestServer) {
    let samples: Vec<(i64, f64)> = (0..60).map(|s| (s * 1_000, s as f64 * 0.5)).collect();
    let mut timeseries = Vec::new();
    for metric in ["cpu_seconds_total", "mem_bytes"] {
        for host in ["alpha", "beta", "gamma"] {
            timeseries.push(series(&[("__name__", metric), ("host", host)], &samples));
        }
    }
    // One request per series: within a small max_samples_per_request.
    for one in timeseries {
        let reply = send_write(server, &write_request(vec![one]));
        assert_eq!(reply.status, 204, "{}", reply.text());
    }
}

#[test]
fn remote_read_answers_what_was_written_for_every_matcher_type() {
    let server = TestServer::start();
    write_fixture(&server);
    let cases: Vec<(Vec<LabelMatcher>, Vec<Matcher>)> = vec![
        (
            vec![matcher(0, "__name__", "mem_bytes")],
            vec![Matcher::equal("__name__", "mem_bytes")],
        ),
        (
            vec![matcher(1, "host", "beta")],
            vec![Matcher::new("host", strata::MatchOp::NotEqual, "beta").unwrap()],
        ),
        (
            vec![matcher(2, "host", "al.*|gam+a")],
            vec![Matcher::new("host", strata::MatchOp::Regex, "al.*|gam+a").unwrap()],
        ),
        (
            vec![
                matcher(0, "__name__", "cpu_seconds_total"),
                matcher(3, "host", "a.*"),
            ],
            vec![
                Matcher::equal("__name__", "cpu_seconds_total"),
                Matcher::new("host", strata::MatchOp::NotRegex, "a.*").unwrap(),
            ],
        ),
    ];
    for (sent, local) in cases {
        let read = as_map(&read_one(&server, query(0, 59_000, sent.clone())));
        let held = stored(&server, &local);
        assert!(!held.is_empty());
        assert_eq!(read, held, "{sent:?}");
    }
    // A sub-range, inclusive at both ends.
    let read = read_one(
        &server,
        query(10_000, 12_000, vec![matcher(0, "host", "beta")]),
    );
    assert_eq!(read.len(), 2);
    for s in &read {
        let times: Vec<i64> = s.samples.iter().map(|x| x.timestamp).collect();
        assert_eq!(times, [10_000, 11_000, 12_000]);
    }
    // Nothing in range: no series.
    assert!(read_one(&server, query(100_000, 200_000, vec![])).is_empty());
}

#[test]
fn remote_read_refuses_what_it_cannot_answer() {
    let config = ServerConfig {
        max_samples_per_request: 100,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Options::default());
    write_fixture(&server);
    let request = |queries: Vec<Query>, types: Vec<i32>| ReadRequest {
        queries,
        accepted_response_types: types,
    };
    let one_series = || {
        query(
            0,
            59_000,
            vec![
                matcher(0, "host", "beta"),
                matcher(0, "__name__", "mem_bytes"),
            ],
        )
    };
    let streamed = send_read(&server, &request(vec![one_series()], vec![1]));
    assert_eq!(streamed.status, 400, "{}", streamed.text());
    assert!(streamed.text().contains("SAMPLES"), "{}", streamed.text());
    // Both listed, or none: samples.
    assert_eq!(
        send_read(&server, &request(vec![one_series()], vec![1, 0])).status,
        200
    );
    assert_eq!(
        send_read(&server, &request(vec![one_series()], vec![])).status,
        200
    );
    let bad_regex = send_read(
        &server,
        &request(vec![query(0, 1, vec![matcher(2, "host", "(")])], vec![0]),
    );
    assert_eq!(bad_regex.status, 400, "{}", bad_regex.text());
    assert!(bad_regex.text().contains("query 0"), "{}", bad_regex.text());
    let bad_type = send_read(
        &server,
        &request(vec![query(0, 1, vec![matcher(9, "host", "x")])], vec![0]),
    );
    assert_eq!(bad_type.status, 400, "{}", bad_type.text());
    // 60 samples fit, 120 do not (over two queries too).
    let too_many = send_read(&server, &request(vec![one_series(), one_series()], vec![0]));
    assert_eq!(too_many.status, 400, "{}", too_many.text());
    assert!(
        too_many.text().contains("more than 100 samples"),
        "{}",
        too_many.text()
    );
    let garbage = post(&server.url("/api/v1/read"), &HEADERS, b"nope");
    assert_eq!(garbage.status, 400, "{}", garbage.text());
}

#[test]
fn concurrent_writers_store_every_sample_exactly_once() {
    let server = TestServer::start();
    let writers = 4;
    let requests = 25;
    std::thread::scope(|scope| {
        for writer in 0..writers {
            let server = &server;
            scope.spawn(move || {
                let name = format!("w{writer}");
                for r in 0..requests {
                    let timeseries = (0..4)
                        .map(|s| {
                            let samples: Vec<(i64, f64)> = (0..10)
                                .map(|i| {
                                    let t = (r * 10 + i) * 1_000;
                                    (t, (writer * 1_000_000 + t) as f64)
                                })
                                .collect();
                            series(
                                &[
                                    ("__name__", "load"),
                                    ("writer", &name),
                                    ("s", &s.to_string()),
                                ],
                                &samples,
                            )
                        })
                        .collect();
                    let reply = send_write(server, &write_request(timeseries));
                    assert_eq!(reply.status, 204, "{}", reply.text());
                }
            });
        }
    });
    let held = stored(&server, &[Matcher::equal("__name__", "load")]);
    assert_eq!(held.len(), writers as usize * 4);
    for (key, samples) in &held {
        let writer: i64 = key.split("writer=\"w").nth(1).unwrap()[..1]
            .parse()
            .unwrap();
        let expected: Vec<(i64, u64)> = (0..requests * 10)
            .map(|i| {
                (
                    i * 1_000,
                    ((writer * 1_000_000 + i * 1_000) as f64).to_bits(),
                )
            })
            .collect();
        assert_eq!(samples, &expected, "{key}");
    }
    assert_eq!(
        server.state.metrics.samples("remote_write", "accepted"),
        (writers * requests * 40) as u64
    );
}

/// Series (a label value from a small set, so that some requests repeat a
/// series) with increasing timestamps and arbitrary value bits.
fn arbitrary_series() -> impl Strategy<Value = Vec<(String, Vec<(i64, u64)>)>> {
    let samples = prop::collection::vec((1i64..5_000, any::<u64>()), 1..40).prop_map(|steps| {
        let mut t = 0;
        steps
            .into_iter()
            .map(|(step, bits)| {
                t += step;
                (t, bits)
            })
            .collect::<Vec<_>>()
    });
    prop::collection::btree_map("[a-e]{1,3}", samples, 1..8)
        .prop_map(|map| map.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn remote_write_then_remote_read_round_trips(all in arbitrary_series()) {
        let server = TestServer::start();
        let timeseries = all
            .iter()
            .map(|(id, samples)| {
                let samples: Vec<(i64, f64)> =
                    samples.iter().map(|&(t, b)| (t, f64::from_bits(b))).collect();
                series(&[("__name__", "prop"), ("id", id)], &samples)
            })
            .collect();
        let reply = send_write(&server, &write_request(timeseries));
        prop_assert_eq!(reply.status, 204, "{}", reply.text());
        let read = read_one(&server, query(i64::MIN, i64::MAX, vec![matcher(0, "__name__", "prop")]));
        let expected: BTreeMap<String, Vec<(i64, u64)>> = all
            .into_iter()
            .map(|(id, samples)| (format!("prop{{id={id:?}}}"), samples))
            .collect();
        prop_assert_eq!(as_map(&read), expected);
    }
}

#[test]
fn a_sample_behind_stored_data_is_refused_by_the_engine() {
    let server = TestServer::start();
    let hour = 3_600_000;
    let up = |t: i64| write_request(vec![series(&[("__name__", "up")], &[(t, 1.0)])]);
    assert_eq!(send_write(&server, &up(hour)).status, 204);
    // Within the 10-minute out-of-order window: accepted.
    assert_eq!(send_write(&server, &up(hour - 60_000)).status, 204);
    let late = send_write(&server, &up(0));
    assert_eq!(late.status, 400, "{}", late.text());
    assert!(late.text().contains("out_of_order: 1"), "{}", late.text());
    assert!(
        late.text().contains("sample at 0 is too old"),
        "{}",
        late.text()
    );
    let held = stored(&server, &[]);
    assert_eq!(
        held.values().map(Vec::len).collect::<Vec<_>>(),
        [2],
        "{held:?}"
    );
}

#[test]
fn backpressure_is_429_with_retry_after() {
    let config = ServerConfig {
        backpressure_head_fraction: 0.0,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Options::default());
    let request = write_request(vec![series(&[("__name__", "up")], &[(1_000, 1.0)])]);
    // The empty head is not over 0 bytes; once it holds data, it is (as
    // the background thread measures it, at least once a second).
    assert_eq!(send_write(&server, &request).status, 204);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.db.head_sample_bytes() == 0 {
        assert!(std::time::Instant::now() < deadline, "never measured");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let refused = send_write(&server, &request);
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
}

/// `strata bench serve` end to end, small: it starts `strata serve`, sends
/// its requests, reports and stops the server with SIGTERM.
#[cfg(feature = "cli")]
#[test]
fn bench_serve_runs_a_small_load_and_stops_the_server() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["bench", "serve", "--clients", "2", "--requests", "3"])
        .args([
            "--samples",
            "1000",
            "--samples-per-series",
            "4",
            "--sync",
            "never",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{out}{err}");
    for expected in [
        "2 clients x 3 requests x 1000 samples (250 series per client, 4 sample(s) each)",
        "accepted: 6000 samples in",
        "(0 requests failed)",
        "request latency: p50",
        "server peak RSS (VmHWM):",
    ] {
        assert!(out.contains(expected), "{expected:?} not in:\n{out}{err}");
    }
}
