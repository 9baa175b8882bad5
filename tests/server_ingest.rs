//! `strata serve` ingest over real sockets: Influx line protocol on
//! `/write` and `/api/v2/write` (every precision, read back bit-exact),
//! its error answers, the shared limits (body size, samples per request,
//! concurrency, backpressure, bearer token), concurrent writers and
//! readers, graceful shutdown with every acknowledged sample kept, and
//! `/metrics` counting what was sent.
#![cfg(feature = "server")]

mod server_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use server_support::{get, post, Reply, TestServer};
use strata::ingest::{Format, LineParser, ParsedSample};
use strata::server::ServerConfig;
use strata::{Db, Matcher, Options, Sample, SyncMode, TimeRange};

/// Samples of the series named `metric` with the label `label`.
fn stored(db: &Db, metric: &str, label: (&str, &str)) -> Vec<Sample> {
    let matchers = [
        Matcher::equal("__name__", metric),
        Matcher::equal(label.0, label.1),
    ];
    let mut series = db.select(&matchers, TimeRange::ALL).unwrap();
    assert!(series.len() <= 1, "{series:?}");
    series.pop().map(|s| s.samples).unwrap_or_default()
}

fn bits(samples: &[Sample]) -> Vec<(i64, u64)> {
    samples
        .iter()
        .map(|s| (s.timestamp_ms, s.value.to_bits()))
        .collect()
}

fn influx_error(reply: &Reply) -> (String, String) {
    let json = reply.json();
    (
        json["code"].as_str().unwrap().to_owned(),
        json["message"].as_str().unwrap().to_owned(),
    )
}

/// Probes until a request is refused for the concurrency limit (of 1):
/// then the slow upload holds the only permit, i.e. it is in its handler.
/// Until the server has read the upload's headers a probe may still get
/// through.
fn wait_until_held(server: &TestServer) -> Reply {
    (0..10_000)
        .map(|_| get(&server.url("/metrics"), &[]))
        .find(|reply| reply.status == 429)
        .expect("the slow upload never held the permit")
}

/// Writes a request whose body is cut after `sent` (of `body`) on a raw
/// connection, so the server holds it open waiting for the rest.
fn start_slow_upload(addr: SocketAddr, body: &[u8], sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /write HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body[..sent]).unwrap();
    stream.flush().unwrap();
    stream
}

/// Sends the rest of a slow upload and returns the response's status.
fn finish_slow_upload(mut stream: TcpStream, body: &[u8], sent: usize) -> u16 {
    stream.write_all(&body[sent..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// Every line of a `/metrics` answer, parsed with strata's Prometheus
/// text parser (a line that does not parse fails the test).
fn scrape(server: &TestServer, headers: &[(&str, &str)]) -> Vec<ParsedSample> {
    let reply = get(&server.url("/metrics"), headers);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let parser = LineParser::new(Format::Prometheus, 0);
    let mut samples = Vec::new();
    for (i, line) in reply.text().lines().enumerate() {
        parser
            .parse_line(i + 1, line, &mut samples)
            .unwrap_or_else(|e| panic!("{e}: {line:?}"));
    }
    samples
}

fn metric(samples: &[ParsedSample], series: &str) -> f64 {
    samples
        .iter()
        .find(|s| s.key.to_string() == series)
        .unwrap_or_else(|| panic!("no {series} in the scrape"))
        .value
}

#[test]
fn every_precision_of_both_apis_reads_back_bit_exact() {
    let server = TestServer::start();
    // (api, path, precision, first timestamp in that unit, it in ms, one unit in ms)
    let cases: [(&str, &str, &str, i64, i64, i64); 12] = [
        (
            "v1",
            "/write",
            "n",
            1_700_000_000_123_456_789,
            1_700_000_000_123,
            0,
        ),
        (
            "v1",
            "/write",
            "ns",
            1_700_000_000_123_456_789,
            1_700_000_000_123,
            0,
        ),
        (
            "v1",
            "/write",
            "u",
            1_700_000_000_123_456,
            1_700_000_000_123,
            0,
        ),
        (
            "v1",
            "/write",
            "us",
            1_700_000_000_123_456,
            1_700_000_000_123,
            0,
        ),
        (
            "v1",
            "/write",
            "ms",
            1_700_000_000_123,
            1_700_000_000_123,
            1,
        ),
        ("v1", "/write", "s", 1_700_000_000, 1_700_000_000_000, 1_000),
        ("v1", "/write", "m", 28_333_333, 1_699_999_980_000, 60_000),
        ("v1", "/write", "h", 472_222, 1_699_999_200_000, 3_600_000),
        (
            "v2",
            "/api/v2/write",
            "ns",
            1_700_000_000_123_456_789,
            1_700_000_000_123,
            0,
        ),
        (
            "v2",
            "/api/v2/write",
            "us",
            1_700_000_000_123_456,
            1_700_000_000_123,
            0,
        ),
        (
            "v2",
            "/api/v2/write",
            "ms",
            1_700_000_000_123,
            1_700_000_000_123,
            1,
        ),
        (
            "v2",
            "/api/v2/write",
            "s",
            1_700_000_000,
            1_700_000_000_000,
            1_000,
        ),
    ];
    for (api, path, precision, first, first_ms, unit_ms) in cases {
        // Sub-millisecond units: the second line is one millisecond later.
        let step = if unit_ms == 0 {
            if precision.starts_with('n') {
                1_000_000
            } else {
                1_000
            }
        } else {
            1
        };
        let step_ms = unit_ms.max(1);
        let body = format!(
            "p_{precision},api={api} v=0.1,i=-42i,u=7u,b=true {first}\n\
             p_{precision},api={api} v=-0,i=9007199254740993i,u=0u,b=F {}\n",
            first + step
        );
        let query = format!("{path}?precision={precision}&db=x&rp=y&org=o&bucket=b");
        let reply = post(&server.url(&query), &[], body.as_bytes());
        assert_eq!(reply.status, 204, "{precision} {api}: {}", reply.text());
        let label = ("api", api);
        let field = |name: &str| stored(&server.db, &format!("p_{precision}_{name}"), label);
        let times = [first_ms, first_ms + step_ms];
        let expect = |values: [f64; 2]| -> Vec<(i64, u64)> {
            times
                .iter()
                .zip(values)
                .map(|(&t, v)| (t, v.to_bits()))
                .collect()
        };
        assert_eq!(bits(&field("v")), expect([0.1, -0.0]), "{precision} {api}");
        assert_eq!(bits(&field("i")), expect([-42.0, 9007199254740992.0]));
        assert_eq!(bits(&field("u")), expect([7.0, 0.0]));
        assert_eq!(bits(&field("b")), expect([1.0, 0.0]));
    }
    assert_eq!(server.state.metrics.samples("influx", "accepted"), 12 * 8);
}

#[test]
fn unknown_precisions_are_refused() {
    let server = TestServer::start();
    for (path, precision) in [
        ("/write", "d"),
        ("/api/v2/write", "m"),
        ("/api/v2/write", "n"),
    ] {
        let reply = post(
            &server.url(&format!("{path}?precision={precision}")),
            &[],
            b"cpu v=1 1\n",
        );
        assert_eq!(reply.status, 400, "{path} {precision}");
        let (code, message) = influx_error(&reply);
        assert_eq!(code, "invalid");
        assert!(
            message.contains(&format!("precision \"{precision}\"")),
            "{message}"
        );
    }
    assert_eq!(server.db.stats().samples_appended, 0);
}

#[test]
fn a_malformed_line_refuses_the_whole_request_naming_the_line() {
    let server = TestServer::start();
    let body = b"cpu,host=a v=1 1000000000\n# a comment\ncpu,host=a v=oops 2000000000\ncpu,host=b v=3 3000000000\n";
    for path in ["/write", "/api/v2/write"] {
        let reply = post(&server.url(path), &[], body);
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let (code, message) = influx_error(&reply);
        assert_eq!(code, "invalid");
        assert!(message.starts_with("line 3: "), "{message}");
    }
    assert_eq!(server.db.stats().samples_appended, 0);
    assert_eq!(server.db.stats().head_series, 0);
    assert_eq!(server.state.metrics.samples("influx", "malformed"), 2);
}

#[test]
fn samples_the_database_refuses_make_a_partial_write() {
    let server = TestServer::start();
    let hour_ns = 3_600_000_000_000_i64;
    let reply = post(
        &server.url("/write"),
        &[],
        format!("old v=1 {hour_ns}\n").as_bytes(),
    );
    assert_eq!(reply.status, 204);
    // An hour behind the series' newest sample: beyond the out-of-order window.
    let body = format!("old v=2 0\nfresh v=3 {hour_ns}\n");
    let reply = post(&server.url("/write"), &[], body.as_bytes());
    assert_eq!(reply.status, 400);
    let (code, message) = influx_error(&reply);
    assert_eq!(code, "invalid");
    assert!(
        message.starts_with("partial write: 1 of 2 samples dropped (too_old: 1)"),
        "{message}"
    );
    assert_eq!(
        bits(&stored(&server.db, "fresh_v", ("__name__", "fresh_v"))),
        [(3_600_000, 3f64.to_bits())]
    );
    assert_eq!(stored(&server.db, "old_v", ("__name__", "old_v")).len(), 1);
    assert_eq!(server.state.metrics.samples("influx", "too_old"), 1);
}

#[test]
fn series_over_the_database_limit_are_dropped_and_the_rest_written() {
    let options = Options {
        max_series: 1,
        ..Options::default()
    };
    let server = TestServer::start_with(ServerConfig::default(), options);
    let reply = post(
        &server.url("/write?precision=s"),
        &[],
        b"cpu,host=a v=1 1
cpu,host=b v=2 1
",
    );
    assert_eq!(reply.status, 400);
    let (_, message) = influx_error(&reply);
    assert!(
        message.starts_with("partial write: 1 of 2 samples dropped (too_many_series: 1)"),
        "{message}"
    );
    assert_eq!(
        bits(&stored(&server.db, "cpu_v", ("host", "a"))),
        [(1_000, 1f64.to_bits())]
    );
    assert_eq!(server.state.metrics.samples("influx", "too_many_series"), 1);
}

#[test]
fn parser_warnings_ride_in_a_header() {
    let server = TestServer::start();
    let reply = post(
        &server.url("/write"),
        &[],
        b"log,host=a msg=\"hello\",level=3 1000000000\n",
    );
    assert_eq!(reply.status, 204);
    let warnings = reply.header("x-strata-warnings").unwrap();
    assert!(
        warnings.starts_with("1 warning(s); the first: line 1: string field"),
        "{warnings}"
    );
    assert_eq!(stored(&server.db, "log_level", ("host", "a")).len(), 1);
    let clean = post(
        &server.url("/write"),
        &[],
        b"log,host=a level=4 2000000000\n",
    );
    assert_eq!(clean.header("x-strata-warnings"), None);
}

#[test]
fn compressed_bodies_are_unsupported_media() {
    let server = TestServer::start();
    let reply = post(
        &server.url("/api/v2/write"),
        &[("Content-Encoding", "gzip")],
        b"\x1f\x8b",
    );
    assert_eq!(reply.status, 415);
    let (code, message) = influx_error(&reply);
    assert_eq!(code, "unsupported media type");
    assert!(message.contains("identity"), "{message}");
    let plain = post(
        &server.url("/write"),
        &[("Content-Encoding", "identity")],
        b"cpu v=1 1\n",
    );
    assert_eq!(plain.status, 204);
}

#[test]
fn an_oversized_body_is_413() {
    let config = ServerConfig {
        max_body_bytes: 64,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Options::default());
    let body = "cpu v=1 1\n".repeat(10);
    let reply = post(&server.url("/write"), &[], body.as_bytes());
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(influx_error(&reply).0, "request too large");
    assert_eq!(server.db.stats().samples_appended, 0);
    let small = post(&server.url("/write"), &[], b"cpu v=1 1\n");
    assert_eq!(small.status, 204);
}

#[test]
fn too_many_samples_refuse_the_request_and_write_nothing() {
    let config = ServerConfig {
        max_samples_per_request: 3,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Options::default());
    let reply = post(
        &server.url("/write"),
        &[],
        b"cpu a=1,b=2 1\ncpu a=3,b=4 2\n",
    );
    assert_eq!(reply.status, 400);
    let (code, message) = influx_error(&reply);
    assert_eq!(code, "invalid");
    assert!(message.contains("more than 3 samples"), "{message}");
    assert_eq!(server.db.stats().samples_appended, 0);
    assert_eq!(server.db.stats().head_series, 0);
    let fits = post(&server.url("/write"), &[], b"cpu a=1,b=2 1\ncpu a=3 2\n");
    assert_eq!(fits.status, 204);
    assert_eq!(server.db.stats().samples_appended, 3);
}

#[test]
fn one_request_over_the_concurrency_limit_gets_429() {
    let config = ServerConfig {
        max_concurrent_requests: 1,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Options::default());
    let body = b"slow v=1 1000000000\n";
    let upload = start_slow_upload(server.addr, body, 5);
    let refused = wait_until_held(&server);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(finish_slow_upload(upload, body, 5), 204);
    assert_eq!(get(&server.url("/metrics"), &[]).status, 200);
    assert_eq!(
        stored(&server.db, "slow_v", ("__name__", "slow_v")).len(),
        1
    );
}

#[test]
fn a_full_head_gets_429_before_the_body_is_read() {
    let config = ServerConfig {
        backpressure_head_fraction: 1e-9,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Options::default());
    let first = post(
        &server.url("/write"),
        &[],
        b"cpu v=1 1000000000\ncpu v=2 2000000000\n",
    );
    assert_eq!(first.status, 204);
    assert!(server.db.stats().head_data_bytes > 0);
    // The server reads the head's size as the background thread last
    // measured it (each tick, at most 1 s): wait for that measurement.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.db.head_sample_bytes() == 0 {
        assert!(std::time::Instant::now() < deadline, "never measured");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let reply = post(&server.url("/api/v2/write"), &[], b"cpu v=3 3000000000\n");
    assert_eq!(reply.status, 429, "{}", reply.text());
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(influx_error(&reply).0, "too many requests");
    server.db.flush().unwrap();
    let after_flush = post(&server.url("/api/v2/write"), &[], b"cpu v=3 3000000000\n");
    assert_eq!(after_flush.status, 204, "{}", after_flush.text());
}

#[test]
fn writes_need_the_bearer_token_and_v2_takes_it_as_token() {
    let config = ServerConfig {
        bearer_token: Some("s3cret".to_owned()),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Options::default());
    let line = b"cpu v=1 1000000000\n";
    let answers = [
        ("/write", None, 401),
        ("/write", Some("Bearer nope"), 401),
        ("/write", Some("Token s3cret"), 401),
        ("/write", Some("Bearer s3cret"), 204),
        ("/api/v2/write", None, 401),
        ("/api/v2/write", Some("Token nope"), 401),
        ("/api/v2/write", Some("Token s3cret"), 204),
        ("/api/v2/write", Some("Bearer s3cret"), 204),
    ];
    for (path, authorization, status) in answers {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        let reply = post(&server.url(path), &headers, line);
        assert_eq!(
            reply.status,
            status,
            "{path} {authorization:?}: {}",
            reply.text()
        );
    }
    assert_eq!(server.db.stats().samples_appended, 3);
}

#[test]
fn concurrent_writers_and_readers_store_every_sample_once() {
    const WRITERS: usize = 4;
    const REQUESTS: i64 = 20;
    const LINES: i64 = 50;
    let server = TestServer::start();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut last_seen = 0;
                    while !done.load(Ordering::Relaxed) {
                        let all = server
                            .db
                            .select(&[Matcher::equal("__name__", "conc_v")], TimeRange::ALL)
                            .unwrap();
                        let seen: usize = all.iter().map(|s| s.samples.len()).sum();
                        assert!(seen >= last_seen, "{seen} samples after {last_seen}");
                        last_seen = seen;
                        scrape(&server, &[]);
                    }
                })
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let server = &server;
                scope.spawn(move || {
                    for request in 0..REQUESTS {
                        let body: String = (0..LINES)
                            .map(|line| {
                                let n = request * LINES + line;
                                format!("conc,writer=w{writer} v={n} {}\n", 1_000 + n)
                            })
                            .collect();
                        let reply = post(&server.url("/write?precision=ms"), &[], body.as_bytes());
                        assert_eq!(reply.status, 204, "{}", reply.text());
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        for reader in readers {
            reader.join().unwrap();
        }
    });
    let expected: Vec<(i64, u64)> = (0..REQUESTS * LINES)
        .map(|n| (1_000 + n, (n as f64).to_bits()))
        .collect();
    for writer in 0..WRITERS {
        let label = format!("w{writer}");
        assert_eq!(
            bits(&stored(&server.db, "conc_v", ("writer", &label))),
            expected
        );
    }
    let total = (WRITERS as i64 * REQUESTS * LINES) as u64;
    assert_eq!(server.db.stats().samples_appended, total);
    assert_eq!(server.state.metrics.samples("influx", "accepted"), total);
}

#[test]
fn graceful_shutdown_answers_requests_in_flight_and_keeps_every_acknowledged_sample() {
    let options = Options {
        sync: SyncMode::Always,
        ..Options::default()
    };
    let config = ServerConfig {
        max_concurrent_requests: 1,
        ..ServerConfig::default()
    };
    let mut server = TestServer::start_with(config, options.clone());
    let mut acknowledged = Vec::new();
    for n in 0..10_i64 {
        let line = format!("acked,n=n{n} v={n} {}\n", n * 1_000_000);
        assert_eq!(
            post(&server.url("/write"), &[], line.as_bytes()).status,
            204
        );
        acknowledged.push(n);
    }
    let body = b"inflight v=42 5000000000\n";
    let upload = start_slow_upload(server.addr, body, 7);
    wait_until_held(&server);
    let addr = server.addr;
    let stopper = std::thread::spawn(move || {
        server.stop();
        server
    });
    // The listener is closed once the shutdown has begun.
    while TcpStream::connect(addr).is_ok() {
        std::thread::yield_now();
    }
    assert_eq!(finish_slow_upload(upload, body, 7), 204);
    let mut server = stopper.join().unwrap();

    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    let db = Arc::clone(&server.db);
    drop(server);
    let db = Arc::try_unwrap(db).unwrap_or_else(|_| panic!("the server still holds the database"));
    db.close().unwrap();
    let db = Db::open(dir.path(), options).unwrap();
    for n in acknowledged {
        let label = format!("n{n}");
        assert_eq!(
            bits(&stored(&db, "acked_v", ("n", &label))),
            [(n, (n as f64).to_bits())]
        );
    }
    assert_eq!(
        bits(&stored(&db, "inflight_v", ("__name__", "inflight_v"))),
        [(5_000, 42f64.to_bits())]
    );
}

#[test]
fn metrics_count_what_was_sent_and_every_line_parses() {
    let options = Options {
        sync: SyncMode::Always,
        ..Options::default()
    };
    let config = ServerConfig {
        max_samples_per_request: 4,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, options);
    let good = b"cpu,host=a user=1,sys=2 1000000000\ncpu,host=b user=3,sys=4 1000000000\n";
    assert_eq!(post(&server.url("/write"), &[], good).status, 204);
    assert_eq!(
        post(
            &server.url("/api/v2/write"),
            &[],
            b"mem used=5 1000000000\n"
        )
        .status,
        204
    );
    let too_many = b"cpu a=1,b=2,c=3 1\ncpu d=1,e=2 2\n";
    assert_eq!(post(&server.url("/write"), &[], too_many).status, 400);
    // One query, recorded as the query API does.
    server
        .state
        .metrics
        .record_query("query", std::time::Duration::from_millis(2));

    let samples = scrape(&server, &[]);
    let value = |series: &str| metric(&samples, series);
    assert_eq!(
        value(r#"strata_samples_ingested_total{protocol="influx"}"#),
        5.0
    );
    assert_eq!(
        value(r#"strata_samples_rejected_total{protocol="influx",reason="too_many_samples"}"#),
        5.0
    );
    assert_eq!(
        value(r#"strata_http_requests_total{code="204",route="/write"}"#),
        1.0
    );
    assert_eq!(
        value(r#"strata_http_requests_total{code="204",route="/api/v2/write"}"#),
        1.0
    );
    assert_eq!(
        value(r#"strata_http_requests_total{code="400",route="/write"}"#),
        1.0
    );
    assert_eq!(
        value(r#"strata_http_request_duration_seconds_count{route="/write"}"#),
        2.0
    );
    assert_eq!(value("strata_head_series{}"), 5.0);
    assert_eq!(value("strata_db_samples_appended_total{}"), 5.0);
    assert_eq!(value("strata_segments{}"), 0.0);
    assert_eq!(value("strata_flushes_total{}"), 0.0);
    assert!(value("strata_head_bytes{}") > 0.0);
    assert!(value("strata_wal_bytes{}") > 0.0);
    let fsyncs = value("strata_wal_fsyncs_total{}");
    assert!(
        fsyncs >= 2.0,
        "SyncMode::Always fsyncs each acknowledged write: {fsyncs}"
    );
    assert_eq!(value("strata_wal_fsync_seconds_count{}"), fsyncs);
    assert_eq!(
        value(r#"strata_query_duration_seconds_bucket{endpoint="query",le="+Inf"}"#),
        1.0
    );
    assert_eq!(
        value(r#"strata_query_duration_seconds_count{endpoint="query"}"#),
        1.0
    );
    assert!(value("strata_uptime_seconds{}") >= 0.0);
    let version = format!(
        r#"strata_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&version), 1.0);

    // A second scrape counts the first.
    let again = scrape(&server, &[]);
    assert_eq!(
        metric(
            &again,
            r#"strata_http_requests_total{code="200",route="/metrics"}"#
        ),
        1.0
    );
}
