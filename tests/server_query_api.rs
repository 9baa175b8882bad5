//! The Prometheus HTTP query API of `strata serve` over real sockets: every
//! answer equals the library's answer for the same parameters, byte for
//! byte; GET and POST (form body) agree; bad parameters are 400
//! `bad_data`, evaluation errors 422 `execution`, a passed deadline 503
//! `timeout`; readers get answers while a writer appends; Grafana's usual
//! calls succeed.
#![cfg(feature = "server")]

mod server_support;

use server_support::{get, post, Reply, TestServer};
use strata::api::{write_label_sets, write_query_result, write_string_list};
use strata::server::ServerConfig;
use strata::{
    instant_query, parse_expr, parse_selector, range_query, Db, MetricMetadata, MetricType,
    Options, QueryOptions, SeriesKey, TimeRange,
};

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200_000;
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn encode(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

fn get_api(server: &TestServer, path: &str, pairs: &[(&str, &str)]) -> Reply {
    get(&server.url(&format!("{path}?{}", encode(pairs))), &[])
}

fn post_api(server: &TestServer, path: &str, pairs: &[(&str, &str)]) -> Reply {
    post(&server.url(path), &[FORM], encode(pairs).as_bytes())
}

/// GET and POST with the same parameters; asserts they agree and returns
/// the answer.
fn call(server: &TestServer, path: &str, pairs: &[(&str, &str)]) -> Reply {
    let by_get = get_api(server, path, pairs);
    let by_post = post_api(server, path, pairs);
    assert_eq!(by_get.status, by_post.status, "{path} {pairs:?}");
    assert_eq!(by_get.text(), by_post.text(), "{path} {pairs:?}");
    assert_eq!(by_get.header("content-type"), Some("application/json"));
    by_get
}

fn seconds(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

fn key(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(name, labels).unwrap()
}

/// Three counters and a gauge, one sample every 15 s for 10 minutes from
/// T0; the first half flushed to a segment, the rest in the head.
fn load(db: &Db) {
    let series = [
        key("http_requests_total", &[("job", "api"), ("code", "200")]),
        key("http_requests_total", &[("job", "api"), ("code", "500")]),
        key("http_requests_total", &[("job", "web"), ("code", "200")]),
        key("temperature", &[("room", "hall <1>")]),
    ];
    for i in 0..40 {
        if i == 20 {
            db.flush().unwrap();
        }
        for (s, key) in series.iter().enumerate() {
            let value = (i * (s as i64 + 1)) as f64 + 0.25;
            db.append(key, T0 + i * 15_000, value).unwrap();
        }
    }
    // A series with samples only long before the others.
    db.append(&key("old_metric", &[("job", "api")]), T0 - 86_400_000, 1.0)
        .unwrap();
    db.set_metadata([
        (
            "http_requests_total",
            MetricMetadata::new(MetricType::Counter).with_help("Requests \"served\"."),
        ),
        (
            "temperature",
            MetricMetadata::new(MetricType::Gauge).with_unit("celsius"),
        ),
    ])
    .unwrap();
}

fn loaded_server() -> TestServer {
    let server = TestServer::start();
    load(&server.db);
    server
}

fn body(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    write(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn library_instant(db: &Db, query: &str, time_ms: i64) -> String {
    let expr = parse_expr(query).unwrap();
    let value = instant_query(db, &expr, time_ms, &QueryOptions::default()).unwrap();
    body(|out| write_query_result(&value, out))
}

fn library_range(db: &Db, query: &str, start_ms: i64, end_ms: i64, step_ms: i64) -> String {
    let expr = parse_expr(query).unwrap();
    let value = range_query(
        db,
        &expr,
        start_ms,
        end_ms,
        step_ms,
        &QueryOptions::default(),
    )
    .unwrap();
    body(|out| write_query_result(&value, out))
}

const QUERIES: [&str; 8] = [
    "http_requests_total",
    "sum by (job) (rate(http_requests_total[1m]))",
    "temperature > 10",
    "1+1",
    "scalar(sum(temperature))",
    "http_requests_total{code=\"500\"}[1m]",
    "\"a <string>\"",
    "absent(nothing)",
];

#[test]
fn instant_queries_answer_what_the_library_answers() {
    let server = loaded_server();
    let time_ms = T0 + 300_500;
    for query in QUERIES {
        let expected = library_instant(&server.db, query, time_ms);
        for time in [seconds(time_ms), "2026-12-01T00:05:00.500Z".to_owned()] {
            let reply = call(
                &server,
                "/api/v1/query",
                &[("query", query), ("time", &time)],
            );
            assert_eq!(reply.status, 200, "{query}: {}", reply.text());
            assert_eq!(reply.text(), expected, "{query} at {time}");
        }
    }
    let (count, _) = server.state.metrics.queries("query");
    assert_eq!(count, 2 * 2 * QUERIES.len() as u64);
}

#[test]
fn range_queries_answer_what_the_library_answers() {
    let server = loaded_server();
    let (start_ms, end_ms) = (T0 - 60_000, T0 + 660_000);
    for query in QUERIES
        .iter()
        .filter(|q| !q.contains('[') && !q.starts_with('"'))
    {
        for (step, step_ms) in [
            ("15s", 15_000),
            ("60", 60_000),
            ("0.5", 500),
            ("1m30s", 90_000),
        ] {
            let expected = library_range(&server.db, query, start_ms, end_ms, step_ms);
            let reply = call(
                &server,
                "/api/v1/query_range",
                &[
                    ("query", query),
                    ("start", &seconds(start_ms)),
                    ("end", "2026-12-01T00:11:00Z"),
                    ("step", step),
                ],
            );
            assert_eq!(reply.status, 200, "{query}: {}", reply.text());
            assert_eq!(reply.text(), expected, "{query} step {step}");
        }
    }
    assert!(server.state.metrics.queries("query_range").0 > 0);
}

#[test]
fn series_labels_and_values_answer_what_the_database_holds() {
    let server = loaded_server();
    let db = &server.db;
    let matchers = |text: &str| parse_selector(text).unwrap();
    let label_sets =
        |keys: &[SeriesKey]| body(|out| write_label_sets(keys.iter().map(SeriesKey::labels), out));
    let strings = |items: Vec<String>| body(|out| write_string_list(items, out));

    // All of time: the index (Db::find_series, label_names, label_values).
    let reply = call(
        &server,
        "/api/v1/series",
        &[("match[]", "http_requests_total")],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.text(),
        label_sets(&db.find_series(&matchers("http_requests_total")))
    );
    assert_eq!(reply.json()["data"].as_array().unwrap().len(), 3);
    let mut union = db.find_series(&matchers("temperature"));
    union.extend(db.find_series(&matchers("{job=\"api\"}")));
    union.sort();
    union.dedup();
    let reply = call(
        &server,
        "/api/v1/series",
        &[("match[]", "{job=\"api\"}"), ("match[]", "temperature")],
    );
    assert_eq!(reply.text(), label_sets(&union));
    let reply = call(&server, "/api/v1/labels", &[]);
    assert_eq!(reply.text(), strings(db.label_names()));
    let reply = get(&server.url("/api/v1/label/job/values"), &[]);
    assert_eq!(reply.text(), strings(db.label_values("job")));
    let reply = get(&server.url("/api/v1/label/__name__/values"), &[]);
    assert_eq!(
        reply.json()["data"],
        serde_json::json!(["http_requests_total", "old_metric", "temperature"])
    );

    // A range: only series with data in it (Db::select_series).
    let range = [
        ("start", seconds(T0)),
        ("end", "2026-12-01T01:00:00Z".to_owned()),
    ];
    let with_range = |extra: &[(&'static str, &'static str)]| {
        let mut pairs: Vec<(&str, &str)> = range.iter().map(|(n, v)| (*n, v.as_str())).collect();
        pairs.extend_from_slice(extra);
        pairs
    };
    let selected = db
        .select_series(
            &matchers("{job=\"api\"}"),
            TimeRange::new(T0, T0 + 3_600_000),
        )
        .unwrap();
    let in_range: Vec<SeriesKey> = (0..selected.len())
        .map(|i| selected.key(i).clone())
        .collect();
    assert_eq!(in_range.len(), 2, "old_metric is out of the range");
    let reply = call(
        &server,
        "/api/v1/series",
        &with_range(&[("match[]", "{job=\"api\"}")]),
    );
    assert_eq!(reply.text(), label_sets(&in_range));
    let reply = call(
        &server,
        "/api/v1/labels",
        &with_range(&[("match[]", "temperature")]),
    );
    assert_eq!(
        reply.json()["data"],
        serde_json::json!(["__name__", "room"])
    );
    let reply = get_api(&server, "/api/v1/label/__name__/values", &with_range(&[]));
    assert_eq!(
        reply.json()["data"],
        serde_json::json!(["http_requests_total", "temperature"])
    );
    let reply = get_api(
        &server,
        "/api/v1/label/code/values",
        &with_range(&[("match[]", "{job=\"api\"}")]),
    );
    assert_eq!(reply.json()["data"], serde_json::json!(["200", "500"]));
    let reply = get_api(&server, "/api/v1/label/room/values", &[]);
    assert_eq!(
        reply.text(),
        "{\"status\":\"success\",\"data\":[\"hall \\u003c1\\u003e\"]}\n"
    );
}

#[test]
fn metadata_buildinfo_and_exemplars_have_prometheus_shape() {
    let server = loaded_server();
    let reply = get(&server.url("/api/v1/metadata"), &[]);
    assert_eq!(
        reply.text(),
        concat!(
            r#"{"status":"success","data":{"http_requests_total":[{"type":"counter","help":"Requests \"served\".","unit":""}],"#,
            r#""temperature":[{"type":"gauge","help":"","unit":"celsius"}]}}"#,
            "\n"
        )
    );
    let reply = get_api(&server, "/api/v1/metadata", &[("metric", "temperature")]);
    assert_eq!(reply.json()["data"].as_object().unwrap().len(), 1);
    let reply = get_api(&server, "/api/v1/metadata", &[("limit", "1")]);
    let data = reply.json()["data"].clone();
    assert_eq!(
        data.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["http_requests_total"]
    );
    let reply = get_api(&server, "/api/v1/metadata", &[("limit", "-1")]);
    assert_eq!(reply.json()["data"].as_object().unwrap().len(), 2);
    let reply = get_api(&server, "/api/v1/metadata", &[("limit", "x")]);
    assert_bad_data(&reply, "limit must be a number");

    let reply = get(&server.url("/api/v1/status/buildinfo"), &[]);
    assert_eq!(reply.status, 200);
    let data = &reply.json()["data"];
    assert_eq!(data["version"], "2.42.0");
    assert_eq!(
        data["revision"],
        format!("strata-{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        data.get("application").is_none(),
        "Grafana would take it for Mimir"
    );

    let reply = call(
        &server,
        "/api/v1/query_exemplars",
        &[
            ("query", "http_requests_total"),
            ("start", "0"),
            ("end", "10"),
        ],
    );
    assert_eq!(reply.text(), "{\"status\":\"success\",\"data\":[]}\n");
    let reply = call(
        &server,
        "/api/v1/format_query",
        &[("query", "sum(rate(x[5m]))by(job)")],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        parse_expr(reply.json()["data"].as_str().unwrap()).unwrap(),
        parse_expr("sum by (job) (rate(x[5m]))").unwrap()
    );
}

fn assert_error(reply: &Reply, status: u16, error_type: &str, message: &str) {
    assert_eq!(reply.status, status, "{}", reply.text());
    let json = reply.json();
    assert_eq!(json["status"], "error", "{}", reply.text());
    assert_eq!(json["errorType"], error_type, "{}", reply.text());
    let error = json["error"].as_str().unwrap();
    assert!(error.contains(message), "{error:?} lacks {message:?}");
}

/// Request parameters, in order.
type Pairs = Vec<(&'static str, &'static str)>;

fn assert_bad_data(reply: &Reply, message: &str) {
    assert_error(reply, 400, "bad_data", message);
}

#[test]
fn bad_parameters_are_400_bad_data_with_prometheus_messages() {
    let server = loaded_server();
    let range = |start: &'static str, end: &'static str, step: &'static str| {
        vec![
            ("query", "up"),
            ("start", start),
            ("end", end),
            ("step", step),
        ]
    };
    let cases: Vec<(&str, Pairs, &str)> = vec![
        (
            "/api/v1/query",
            vec![("query", "up"), ("time", "yesterday")],
            r#"invalid parameter "time": Invalid time value for 'time': cannot parse "yesterday" to a valid timestamp"#,
        ),
        (
            "/api/v1/query",
            vec![("query", "sum(up")],
            r#"invalid parameter "query": 1:"#,
        ),
        ("/api/v1/query", vec![], r#"invalid parameter "query": "#),
        (
            "/api/v1/query",
            vec![("query", "up"), ("timeout", "soon")],
            r#"invalid parameter "timeout": cannot parse "soon" to a valid duration"#,
        ),
        (
            "/api/v1/query_range",
            range("x", "10", "1"),
            r#"invalid parameter "start": cannot parse "x" to a valid timestamp"#,
        ),
        (
            "/api/v1/query_range",
            vec![("query", "up"), ("start", "1")],
            r#"invalid parameter "end": cannot parse "" to a valid timestamp"#,
        ),
        (
            "/api/v1/query_range",
            range("10", "9", "1"),
            r#"invalid parameter "end": end timestamp must not be before start time"#,
        ),
        (
            "/api/v1/query_range",
            range("0", "10", "0"),
            r#"invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer"#,
        ),
        (
            "/api/v1/query_range",
            range("0", "10", "-5s"),
            r#"invalid parameter "step": cannot parse "-5s" to a valid duration"#,
        ),
        (
            "/api/v1/query_range",
            range("0", "11001", "1"),
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            "/api/v1/query_range",
            range("0", "10", "1h1h"),
            r#"invalid parameter "step": cannot parse "1h1h" to a valid duration"#,
        ),
        (
            "/api/v1/query_range",
            vec![("query", "up[5m]"), ("start", "0"), ("end", "10"), ("step", "1")],
            "range vector",
        ),
        ("/api/v1/series", vec![], "no match[] parameter provided"),
        (
            "/api/v1/series",
            vec![("match[]", "up{job=")],
            r#"invalid parameter "match[]": cannot parse series "up{job=""#,
        ),
        (
            "/api/v1/series",
            vec![("match[]", "{job=~\".*\"}")],
            "at least one matcher that rejects the empty string",
        ),
        (
            "/api/v1/series",
            vec![("match[]", "rate(up[5m])")],
            r#"invalid parameter "match[]": cannot parse series "rate(up[5m])""#,
        ),
        (
            "/api/v1/labels",
            vec![("match[]", "{}")],
            "match[] must contain at least one non-empty matcher",
        ),
        (
            "/api/v1/labels",
            vec![("start", "1h")],
            r#"invalid parameter "start": Invalid time value for 'start': cannot parse "1h" to a valid timestamp"#,
        ),
        (
            "/api/v1/query_exemplars",
            vec![("query", "up{")],
            r#"invalid parameter "query": "#,
        ),
    ];
    for (path, pairs, message) in &cases {
        let reply = call(&server, path, pairs);
        assert_bad_data(&reply, message);
    }
    // 11,000 intervals (11,001 points) are still allowed, as in Prometheus.
    let reply = call(&server, "/api/v1/query_range", &range("0", "11000", "1"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = get_api(&server, "/api/v1/label/job/values", &[("match[]", "x{")]);
    assert_bad_data(&reply, r#"invalid parameter "match[]""#);
    let reply = get(&server.url("/api/v1/label/a-b/values"), &[]);
    assert_bad_data(&reply, r#"invalid label name: "a-b""#);
    // Only that one and `up[5m]` (refused by the evaluator) reached the
    // evaluator, by GET and by POST.
    assert_eq!(server.state.metrics.queries("query").0, 0);
    assert_eq!(server.state.metrics.queries("query_range").0, 4);
}

#[test]
fn evaluation_errors_are_422_execution() {
    let server = loaded_server();
    let time = seconds(T0 + 300_000);
    for query in [
        // Many series on both sides matched on nothing.
        "http_requests_total + on() http_requests_total",
        // Two results with the same labels once the name is gone.
        "label_replace(rate(http_requests_total[1m]), \"code\", \"x\", \"\", \"\")",
    ] {
        let reply = call(
            &server,
            "/api/v1/query",
            &[("query", query), ("time", &time)],
        );
        assert_error(&reply, 422, "execution", "");
        let library = instant_query(
            &*server.db,
            &parse_expr(query).unwrap(),
            T0 + 300_000,
            &QueryOptions::default(),
        )
        .unwrap_err();
        assert_eq!(reply.json()["error"], library.to_string());
    }
}

#[test]
fn a_passed_deadline_is_503_timeout() {
    let server = loaded_server();
    let time = seconds(T0 + 300_000);
    for timeout in ["0s", "0", "-1"] {
        let reply = call(
            &server,
            "/api/v1/query",
            &[
                ("query", "http_requests_total"),
                ("time", &time),
                ("timeout", timeout),
            ],
        );
        assert_error(&reply, 503, "timeout", "deadline");
        let reply = call(
            &server,
            "/api/v1/query_range",
            &[
                ("query", "sum(http_requests_total)"),
                ("start", &time),
                ("end", &time),
                ("step", "15s"),
                ("timeout", timeout),
            ],
        );
        assert_error(&reply, 503, "timeout", "deadline");
    }
    // The server's own limit caps a longer timeout parameter.
    let config = ServerConfig {
        query_timeout: std::time::Duration::ZERO,
        ..ServerConfig::default()
    };
    let capped = TestServer::start_with(config, Options::default());
    load(&capped.db);
    let reply = call(
        &capped,
        "/api/v1/query",
        &[
            ("query", "http_requests_total"),
            ("time", &time),
            ("timeout", "1h"),
        ],
    );
    assert_error(&reply, 503, "timeout", "deadline");
}

#[test]
fn readers_get_answers_while_a_writer_appends() {
    let server = loaded_server();
    let writes = 400;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let key = key("live", &[("job", "writer")]);
            for i in 0..writes {
                server.db.append(&key, T0 + i * 1_000, i as f64).unwrap();
                if i == writes / 2 {
                    server.db.flush().unwrap();
                }
            }
        });
        for reader in 0..4 {
            let server = &server;
            scope.spawn(move || {
                for i in 0..25 {
                    let time = seconds(T0 + i * 15_000);
                    let end = seconds(T0 + 600_000);
                    let reply = match (reader + i) % 4 {
                        0 => get_api(
                            server,
                            "/api/v1/query",
                            &[
                                ("query", "sum(live) + count(http_requests_total)"),
                                ("time", &time),
                            ],
                        ),
                        1 => post_api(
                            server,
                            "/api/v1/query_range",
                            &[
                                ("query", "rate(live[1m])"),
                                ("start", &time),
                                ("end", &end),
                                ("step", "15"),
                            ],
                        ),
                        2 => get_api(
                            server,
                            "/api/v1/series",
                            &[("match[]", "live"), ("start", &time)],
                        ),
                        _ => get_api(server, "/api/v1/labels", &[("start", &time), ("end", &end)]),
                    };
                    assert_eq!(reply.status, 200, "{}", reply.text());
                    assert_eq!(reply.json()["status"], "success");
                }
            });
        }
    });
    let reply = get_api(
        &server,
        "/api/v1/query",
        &[
            ("query", "count_over_time(live[1h])"),
            ("time", &seconds(T0 + 3_600_000)),
        ],
    );
    assert_eq!(
        reply.json()["data"]["result"][0]["value"][1],
        writes.to_string()
    );
}

/// The calls Grafana's Prometheus data source makes, as it makes them.
#[test]
fn grafana_calls_succeed() {
    let server = loaded_server();
    let time = seconds(T0 + 300_000);
    let reply = get(
        &server.url(&format!("/api/v1/query?query=1%2B1&time={time}")),
        &[],
    );
    assert_eq!(
        reply.text(),
        format!("{{\"status\":\"success\",\"data\":{{\"resultType\":\"scalar\",\"result\":[{time},\"2\"]}}}}\n")
    );
    let reply = get(&server.url("/api/v1/labels"), &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["data"],
        serde_json::json!(["__name__", "code", "job", "room"])
    );
    let reply = get(&server.url("/api/v1/status/buildinfo"), &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "success");
    // Grafana posts a form with its own extra parameters.
    let form = format!(
        "query=sum+by+%28job%29+%28rate%28http_requests_total%5B1m%5D%29%29&start={}&end={}&step=30",
        T0 / 1000,
        T0 / 1000 + 600
    );
    let reply = post(
        &server.url("/api/v1/query_range"),
        &[(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )],
        form.as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.text(),
        library_range(
            &server.db,
            "sum by (job) (rate(http_requests_total[1m]))",
            T0,
            T0 + 600_000,
            30_000
        )
    );
    // Without `time`, an instant query is evaluated now.
    let reply = get_api(&server, "/api/v1/query", &[("query", "time()")]);
    let now: f64 = reply.json()["data"]["result"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(now > 1.7e9, "{}", reply.text());
}
