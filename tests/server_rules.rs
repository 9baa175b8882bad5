//! Recording and alerting rules of `strata serve`: rule file errors,
//! `strata rules check`, recording rules against the direct query, the
//! alert life cycle on a controlled clock with its `ALERTS` series,
//! `/api/v1/rules` and `/api/v1/alerts` over the socket, notifications to
//! a test HTTP receiver, the scheduler end to end, and (ignored, needs
//! `prometheus-alertmanager`) a real Alertmanager.
#![cfg(all(feature = "server", feature = "cli"))]

mod server_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use parking_lot::Mutex;
use server_support::{get, TestServer};
use strata::server::rules::{
    attach, parse_rule_file, AlertState, EngineConfig, Notification, Notifier, RuleEngine,
    RuleGroup, RulesConfig, RulesService, QUEUE_CAPACITY,
};
use strata::{Db, Options, QueryOptions, QueryValue, SeriesKey};

/// 2023-11-14T22:13:00Z, on a minute.
const T0: i64 = 1_699_999_980_000;
const MINUTE: i64 = 60_000;

fn parse(text: &str) -> Vec<RuleGroup> {
    parse_rule_file(text, Path::new("test.rules.yml"), MINUTE)
        .unwrap_or_else(|errors| panic!("{errors:?}"))
}

fn errors(text: &str) -> Vec<String> {
    match parse_rule_file(text, Path::new("bad.rules.yml"), MINUTE) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn open_db() -> (tempfile::TempDir, Arc<Db>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), Options::default()).unwrap());
    (dir, db)
}

fn write(db: &Db, series: &str, samples: &[(i64, f64)]) {
    let key = SeriesKey::parse(series).unwrap();
    for &(t, v) in samples {
        db.append(&key, t, v).unwrap();
    }
}

/// The instant query `expr` at `t` as (labels text, value) pairs.
fn query(db: &Db, expr: &str, t: i64) -> Vec<(String, f64)> {
    let expr = strata::parse_expr(expr).unwrap();
    match strata::instant_query(db, &expr, t, &QueryOptions::default()).unwrap() {
        QueryValue::Vector(series) => series
            .into_iter()
            .map(|s| {
                let labels = s
                    .labels
                    .iter()
                    .filter(|l| &*l.name != "__name__")
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect::<Vec<_>>()
                    .join(",");
                (labels, s.samples[0].value)
            })
            .collect(),
        QueryValue::Scalar(sample) => vec![(String::new(), sample.value)],
        other => panic!("{other:?}"),
    }
}

#[test]
fn rule_file_errors_name_the_file_group_rule_and_problem() {
    let found = errors(
        r#"
groups:
  - name: api
    interval: 1x
    rules:
      - record: "job rate"
        expr: sum(rate(x[5m])
      - alert: Down
        expr: up == 0
        for: 5m
        severity: page
        labels: {"bad-label": x, __name__: y}
        annotations: {summary: "{{ if $value }}x{{ end }}"}
      - record: ok:rec
        expr: up
        for: 1m
      - record: a
        alert: b
        expr: up
      - expr: up
  - name: api
    rules: []
"#,
    );
    let expect = [
        r#"bad.rules.yml: group "api": interval: "1x" is not a duration"#,
        r#"bad.rules.yml: group "api": rule 1 (job rate): expr: could not parse "sum(rate(x[5m])": 1:"#,
        r#"bad.rules.yml: group "api": rule 1 (job rate): record: "job rate" is not a valid metric name"#,
        r#"bad.rules.yml: group "api": rule 2 (Down): unknown key "severity" in a rule"#,
        r#"bad.rules.yml: group "api": rule 2 (Down): labels: "bad-label" is not a valid label name"#,
        r#"bad.rules.yml: group "api": rule 2 (Down): labels: "__name__" is not a valid label name"#,
        r#"bad.rules.yml: group "api": rule 2 (Down): annotations.summary: unsupported template action"#,
        r#"bad.rules.yml: group "api": rule 3 (ok:rec): for: only alerting rules have it"#,
        r#"bad.rules.yml: group "api": rule 4 (a): has both record and alert"#,
        r#"bad.rules.yml: group "api": rule 5: has neither record nor alert"#,
        r#"bad.rules.yml: group "api": group name "api" is repeated in the file"#,
    ];
    for want in expect {
        assert!(
            found.iter().any(|e| e.starts_with(want)),
            "no error starting {want:?} in:\n{}",
            found.join("\n")
        );
    }
    assert_eq!(found.len(), expect.len(), "{}", found.join("\n"));
    assert_eq!(
        errors("groups: [{name: g, rules: [{record: r, expr: up}]}]\nextra: 1"),
        [r#"bad.rules.yml: unknown key "extra" in the top level (expected one of: groups)"#]
    );
    assert!(errors("groups: [{name: g")[0].starts_with("bad.rules.yml: not valid YAML:"));
    // Empty files and empty lists are valid, as for promtool.
    assert!(parse("").is_empty());
    assert!(parse("groups:\n").is_empty());
    assert!(parse("groups: [{name: g, rules: }]")[0].rules.is_empty());
}

#[test]
fn rules_check_accepts_the_demo_rules_and_reports_errors() {
    let strata = env!("CARGO_BIN_EXE_strata");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rules/strata-demo.rules.yml");
    let out = std::process::Command::new(strata)
        .args(["rules", "check"])
        .arg(&demo)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, format!("{}: 25 rules found\n", demo.display()));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: rate(\n",
    )
    .unwrap();
    let out = std::process::Command::new(strata)
        .args(["rules", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "{}: group \"g\": rule 1 (r): expr: could not parse",
            bad.display()
        )),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_to_start_with_a_bad_rule_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups: [{name: g, rules: [{alert: A, expr: 'up', for: soon}]}]",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("db"))
        .arg("--rules")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        format!(
            "strata serve: {}: group \"g\": rule 1 (A): for: \"soon\" is not a duration (like 30s, 1m, 1h30m)\n",
            bad.display()
        )
    );
    assert!(
        !dir.path().join("db").exists(),
        "the database is not opened"
    );
}

#[test]
fn recording_rule_series_equal_the_query_at_each_evaluation() {
    let (_dir, db) = open_db();
    for (job, step) in [("api", 1.0), ("db", 3.0)] {
        for instance in ["a", "b"] {
            let samples: Vec<(i64, f64)> = (0..=40)
                .map(|i| (T0 + i * 15_000, i as f64 * step))
                .collect();
            write(
                &db,
                &format!("requests_total{{job=\"{job}\",instance=\"{instance}\"}}"),
                &samples,
            );
        }
    }
    let groups = parse(
        r#"
groups:
  - name: rates
    rules:
      - record: job:requests:rate1m
        expr: sum by (job) (rate(requests_total[1m]))
        labels: {source: rules}
      - record: job:requests:rate1m:doubled
        expr: job:requests:rate1m * 2
      - record: scalar:answer
        expr: scalar(sum(requests_total)) * 0 + 42
"#,
    );
    let mut engine = RuleEngine::new(Arc::clone(&db), groups, EngineConfig::default());
    for t in [T0 + 2 * MINUTE, T0 + 3 * MINUTE, T0 + 5 * MINUTE + 30_000] {
        assert!(engine.evaluate_at(t).is_empty());
        let direct = query(&db, "sum by (job) (rate(requests_total[1m]))", t);
        assert_eq!(direct.len(), 2);
        let recorded = query(&db, "job:requests:rate1m", t);
        let expected: Vec<(String, f64)> = direct
            .iter()
            .map(|(labels, v)| (format!("{labels},source=rules"), *v))
            .collect();
        assert_eq!(recorded, expected, "at {t}");
        // The second rule sees the first's samples of the same evaluation.
        let doubled = query(&db, "job:requests:rate1m:doubled", t);
        let want: Vec<(String, f64)> = expected.iter().map(|(l, v)| (l.clone(), v * 2.0)).collect();
        assert_eq!(doubled, want);
        assert_eq!(query(&db, "scalar:answer", t), [(String::new(), 42.0)]);
    }
    let health: Vec<_> = engine.groups()[0]
        .rules
        .iter()
        .map(|r| r.health.as_str())
        .collect();
    assert_eq!(health, ["ok", "ok", "ok"]);
}

#[test]
fn recording_rule_with_duplicate_series_fails_and_writes_nothing() {
    let (_dir, db) = open_db();
    write(&db, r#"up{job="a"}"#, &[(T0, 1.0)]);
    write(&db, r#"up{job="b"}"#, &[(T0, 1.0)]);
    let groups =
        parse("groups: [{name: g, rules: [{record: 'x', expr: 'up', labels: {job: same}}]}]");
    let mut engine = RuleEngine::new(Arc::clone(&db), groups, EngineConfig::default());
    engine.evaluate_at(T0);
    let rule = &engine.groups()[0].rules[0];
    assert_eq!(rule.health.as_str(), "err");
    assert!(
        rule.last_error.as_deref().unwrap().contains("two series"),
        "{:?}",
        rule.last_error
    );
    assert!(query(&db, "x", T0).is_empty());
}

const ALERT_RULES: &str = r#"
groups:
  - name: rooms
    rules:
      - alert: RoomHot
        expr: temperature_celsius > 30
        for: 2m
        labels: {severity: warning, room: "{{ $labels.room }}", service: hvac}
        annotations:
          summary: "{{ $labels.room }} is at {{ $value }} C"
          description: "{{ humanize $value }} degrees"
"#;

fn hot_room_engine(db: &Arc<Db>) -> RuleEngine {
    RuleEngine::new(
        Arc::clone(db),
        parse(ALERT_RULES),
        EngineConfig {
            external_url: "http://strata.test:9201".to_owned(),
            ..EngineConfig::default()
        },
    )
}

fn alert_states(engine: &RuleEngine) -> Vec<(String, AlertState)> {
    engine.groups()[0].rules[0]
        .alerts
        .values()
        .map(|a| {
            let room = a.labels.iter().find(|l| &*l.name == "room").unwrap();
            (room.value.to_string(), a.state)
        })
        .collect()
}

#[test]
fn alert_goes_pending_fires_after_for_and_resolves() {
    let (_dir, db) = open_db();
    // Lab is hot from T0 to T0+3m; office never.
    write(
        &db,
        r#"temperature_celsius{room="lab"}"#,
        &[(T0, 35.0), (T0 + 3 * MINUTE, 20.0)],
    );
    write(&db, r#"temperature_celsius{room="office"}"#, &[(T0, 21.0)]);
    let mut engine = hot_room_engine(&db);

    assert!(
        engine.evaluate_at(T0).is_empty(),
        "pending alerts are not sent"
    );
    assert_eq!(
        alert_states(&engine),
        [("lab".to_owned(), AlertState::Pending)]
    );
    assert!(engine.evaluate_at(T0 + MINUTE).is_empty());
    assert_eq!(
        alert_states(&engine),
        [("lab".to_owned(), AlertState::Pending)]
    );

    let fired = engine.evaluate_at(T0 + 2 * MINUTE);
    assert_eq!(
        alert_states(&engine),
        [("lab".to_owned(), AlertState::Firing)]
    );
    assert_eq!(fired.len(), 1);
    let labels: Vec<String> = fired[0]
        .labels
        .iter()
        .map(|l| format!("{}={}", l.name, l.value))
        .collect();
    assert_eq!(
        labels,
        [
            "alertname=RoomHot",
            "room=lab",
            "service=hvac",
            "severity=warning"
        ]
    );
    assert_eq!(
        fired[0].annotations,
        [
            ("description".to_owned(), "35 degrees".to_owned()),
            ("summary".to_owned(), "lab is at 35 C".to_owned())
        ]
    );
    assert_eq!(fired[0].starts_at_ms, T0 + 2 * MINUTE);
    assert_eq!(
        fired[0].ends_at_ms,
        T0 + 2 * MINUTE + 4 * MINUTE,
        "valid for 4 resend delays"
    );
    assert_eq!(
        fired[0].generator_url,
        "http://strata.test:9201/graph?g0.expr=temperature_celsius+%3E+30&g0.tab=1"
    );
    // Not re-sent before the resend delay.
    assert!(engine.evaluate_at(T0 + 2 * MINUTE + 30_000).is_empty());

    let resolved = engine.evaluate_at(T0 + 3 * MINUTE);
    assert_eq!(
        alert_states(&engine),
        [("lab".to_owned(), AlertState::Inactive)]
    );
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        resolved[0].ends_at_ms,
        T0 + 3 * MINUTE,
        "endsAt is the resolution"
    );
    assert_eq!(resolved[0].starts_at_ms, T0 + 2 * MINUTE);

    // The resolution is repeated every resend delay until forgotten after
    // 15 minutes.
    assert_eq!(engine.evaluate_at(T0 + 4 * MINUTE).len(), 1);
    assert_eq!(engine.evaluate_at(T0 + 18 * MINUTE).len(), 1);
    assert!(engine.evaluate_at(T0 + 18 * MINUTE + 1).is_empty());
    assert!(alert_states(&engine).is_empty());

    // ALERTS and ALERTS_FOR_STATE at each evaluation, stale once resolved.
    let alerts = |t| query(&db, "ALERTS", t);
    let lab = "alertname=RoomHot,alertstate={},room=lab,service=hvac,severity=warning";
    assert_eq!(alerts(T0), [(lab.replace("{}", "pending"), 1.0)]);
    assert_eq!(alerts(T0 + MINUTE), [(lab.replace("{}", "pending"), 1.0)]);
    assert_eq!(
        alerts(T0 + 2 * MINUTE),
        [(lab.replace("{}", "firing"), 1.0)]
    );
    assert!(
        alerts(T0 + 3 * MINUTE).is_empty(),
        "{:?}",
        alerts(T0 + 3 * MINUTE)
    );
    assert_eq!(
        query(&db, "ALERTS_FOR_STATE", T0 + 2 * MINUTE),
        [(
            "alertname=RoomHot,room=lab,service=hvac,severity=warning".to_owned(),
            T0 as f64 / 1000.0
        )]
    );
    assert!(query(&db, "ALERTS_FOR_STATE", T0 + 3 * MINUTE).is_empty());
}

#[test]
fn pending_alert_that_clears_is_never_sent() {
    let (_dir, db) = open_db();
    write(
        &db,
        r#"temperature_celsius{room="lab"}"#,
        &[(T0, 35.0), (T0 + MINUTE, 20.0)],
    );
    let mut engine = hot_room_engine(&db);
    assert!(engine.evaluate_at(T0).is_empty());
    assert!(engine.evaluate_at(T0 + MINUTE).is_empty());
    assert!(alert_states(&engine).is_empty());
    assert!(engine.evaluate_at(T0 + 3 * MINUTE).is_empty());
}

#[test]
fn rules_and_alerts_endpoints_have_prometheus_shapes() {
    let server = TestServer::start();
    write(
        &server.db,
        r#"temperature_celsius{room="lab"}"#,
        &[(T0, 35.0)],
    );
    write(
        &server.db,
        r#"temperature_celsius{room="hall"}"#,
        &[(T0, 31.5)],
    );
    let mut groups = parse(ALERT_RULES);
    groups.extend(parse(
        "groups: [{name: rec, interval: 30s, rules: [{record: 'room:temp:max', expr: 'max(temperature_celsius)'}, {record: 'broken', expr: 'temperature_celsius[5m]'}]}]",
    ));
    let engine = Arc::new(Mutex::new(RuleEngine::new(
        Arc::clone(&server.db),
        groups,
        EngineConfig::default(),
    )));

    // Before any rules: empty lists.
    let empty = get(&server.url("/api/v1/rules"), &[]).json();
    assert_eq!(
        empty,
        serde_json::json!({"status": "success", "data": {"groups": []}})
    );

    attach(&server.state, Arc::clone(&engine)).unwrap();
    let before = get(&server.url("/api/v1/rules"), &[]).json();
    assert_eq!(before["data"]["groups"][0]["rules"][0]["health"], "unknown");
    assert_eq!(
        before["data"]["groups"][0]["lastEvaluation"],
        "0001-01-01T00:00:00Z"
    );

    engine.lock().evaluate_at(T0);
    engine.lock().evaluate_at(T0 + 2 * MINUTE);

    let reply = get(&server.url("/api/v1/rules"), &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["status"], "success");
    let groups = body["data"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    let rooms = &groups[0];
    assert_eq!(rooms["name"], "rooms");
    assert_eq!(rooms["file"], "test.rules.yml");
    assert_eq!(rooms["interval"].as_f64(), Some(60.0));
    assert_eq!(rooms["limit"], 0);
    assert_eq!(rooms["lastEvaluation"], "2023-11-14T22:15:00Z");
    assert!(rooms["evaluationTime"].as_f64().unwrap() >= 0.0);
    let alerting = &rooms["rules"][0];
    assert_eq!(alerting["type"], "alerting");
    assert_eq!(alerting["name"], "RoomHot");
    assert_eq!(alerting["query"], "temperature_celsius > 30");
    assert_eq!(alerting["state"], "firing");
    assert_eq!(alerting["duration"].as_f64(), Some(120.0));
    assert_eq!(alerting["keepFiringFor"].as_f64(), Some(0.0));
    assert_eq!(alerting["health"], "ok");
    assert!(alerting.get("lastError").is_none());
    assert_eq!(alerting["labels"]["room"], "{{ $labels.room }}");
    assert_eq!(
        alerting["annotations"]["summary"],
        "{{ $labels.room }} is at {{ $value }} C"
    );
    let alerts = alerting["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["labels"]["room"], "hall");
    assert_eq!(alerts[0]["state"], "firing");
    assert_eq!(alerts[0]["activeAt"], "2023-11-14T22:13:00Z");
    assert_eq!(alerts[0]["value"], "3.15e+01");
    assert_eq!(alerts[0]["annotations"]["summary"], "hall is at 31.5 C");
    let recording = &groups[1]["rules"][0];
    assert_eq!(groups[1]["interval"].as_f64(), Some(30.0));
    assert_eq!(recording["type"], "recording");
    assert_eq!(recording["name"], "room:temp:max");
    assert_eq!(recording["health"], "ok");
    assert_eq!(recording["lastEvaluation"], "2023-11-14T22:15:00Z");
    let broken = &groups[1]["rules"][1];
    assert_eq!(broken["health"], "err");
    assert!(broken["lastError"]
        .as_str()
        .unwrap()
        .contains("range vector"));

    let only_alerts = get(&server.url("/api/v1/rules?type=alert"), &[]).json();
    assert_eq!(
        only_alerts["data"]["groups"][1]["rules"],
        serde_json::json!([])
    );
    let bad = get(&server.url("/api/v1/rules?type=nope"), &[]);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["errorType"], "bad_data");

    let alerts = get(&server.url("/api/v1/alerts"), &[]).json();
    assert_eq!(alerts["status"], "success");
    let list = alerts["data"]["alerts"].as_array().unwrap();
    let rooms: Vec<&str> = list
        .iter()
        .map(|a| a["labels"]["room"].as_str().unwrap())
        .collect();
    assert_eq!(rooms, ["hall", "lab"]);
    for alert in list {
        assert_eq!(alert["labels"]["alertname"], "RoomHot");
        assert_eq!(alert["state"], "firing");
        let keys: Vec<&str> = alert
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["activeAt", "annotations", "labels", "state", "value"]
        );
    }
}

/// A tiny HTTP server that answers 200 to every request and sends each
/// request's (path, body) to the channel.
fn receiver() -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || serve_connection(stream, &tx));
        }
    });
    (url, rx)
}

fn serve_connection(stream: std::net::TcpStream, tx: &mpsc::Sender<(String, String)>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        if tx.send((path, String::from_utf8(body).unwrap())).is_err() {
            return;
        }
    }
}

fn next_post(rx: &mpsc::Receiver<(String, String)>) -> (String, serde_json::Value) {
    let (path, body) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("no POST arrived");
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (path, json)
}

#[test]
fn notifications_reach_the_receiver_firing_then_resolved() {
    let (url, rx) = receiver();
    let (_dir, db) = open_db();
    write(
        &db,
        r#"temperature_celsius{room="lab"}"#,
        &[(T0, 35.0), (T0 + 3 * MINUTE, 20.0)],
    );
    let mut engine = hot_room_engine(&db);
    let mut notifier = Notifier::start(vec![format!("{url}/")], QUEUE_CAPACITY).unwrap();
    for t in [T0, T0 + MINUTE, T0 + 2 * MINUTE] {
        notifier.enqueue(engine.evaluate_at(t));
    }
    let (path, firing) = next_post(&rx);
    assert_eq!(path, "/api/v2/alerts");
    assert_eq!(
        firing,
        serde_json::json!([{
            "labels": {"alertname": "RoomHot", "room": "lab", "service": "hvac", "severity": "warning"},
            "annotations": {"description": "35 degrees", "summary": "lab is at 35 C"},
            "startsAt": "2023-11-14T22:15:00Z",
            "endsAt": "2023-11-14T22:19:00Z",
            "generatorURL": "http://strata.test:9201/graph?g0.expr=temperature_celsius+%3E+30&g0.tab=1"
        }])
    );
    notifier.enqueue(engine.evaluate_at(T0 + 3 * MINUTE));
    let (_, resolved) = next_post(&rx);
    assert_eq!(resolved[0]["endsAt"], "2023-11-14T22:16:00Z");
    assert_eq!(resolved[0]["startsAt"], "2023-11-14T22:15:00Z");
    notifier.stop();
    let stats = notifier.stats();
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(
        (
            stats.sent.load(Relaxed),
            stats.errors.load(Relaxed),
            stats.dropped.load(Relaxed)
        ),
        (2, 0, 0)
    );
}

#[test]
fn unreachable_alertmanager_is_counted_and_a_full_queue_drops_the_oldest() {
    // A port nothing listens on: bind, read the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut notifier = Notifier::start(vec![format!("http://127.0.0.1:{port}")], 2).unwrap();
    let notification = |i: i64| Notification {
        labels: vec![strata::Label::new("alertname", format!("A{i}"))],
        annotations: Vec::new(),
        starts_at_ms: T0,
        ends_at_ms: T0 + i,
        generator_url: String::new(),
    };
    notifier.enqueue((0..5).map(notification).collect());
    notifier.stop();
    use std::sync::atomic::Ordering::Relaxed;
    let stats = notifier.stats();
    assert_eq!(stats.dropped.load(Relaxed), 3);
    assert_eq!(stats.sent.load(Relaxed), 0);
    assert_eq!(stats.errors.load(Relaxed), 1, "one POST of the two left");
}

#[test]
fn rules_service_evaluates_on_its_schedule_and_notifies() {
    let (url, rx) = receiver();
    let server = TestServer::start();
    let groups = parse(
        r#"
groups:
  - name: always
    interval: 1s
    rules:
      - record: answer
        expr: vector(42)
      - alert: AlwaysFiring
        expr: answer > 0
        labels: {severity: critical}
        annotations: {summary: "value {{ $value }}"}
"#,
    );
    let config = RulesConfig {
        alertmanagers: vec![url],
        engine: EngineConfig::default(),
    };
    let mut service = RulesService::start(&server.state, groups, config).unwrap();
    let (_, posted) = next_post(&rx);
    assert_eq!(posted[0]["labels"]["alertname"], "AlwaysFiring");
    assert_eq!(posted[0]["annotations"]["summary"], "value 42");
    let alerts = get(&server.url("/api/v1/alerts"), &[]).json();
    assert_eq!(alerts["data"]["alerts"][0]["state"], "firing");
    // A second start on the same server is refused.
    let again = RulesService::start(
        &server.state,
        Vec::new(),
        RulesConfig {
            alertmanagers: Vec::new(),
            engine: EngineConfig::default(),
        },
    );
    assert!(again.is_err());
    service.stop();
    let (sent, errors, dropped) = service.notifier_stats();
    assert!(sent >= 1);
    assert_eq!((errors, dropped), (0, 0));
}

/// A real Alertmanager (`apt-get install prometheus-alertmanager`):
/// `cargo test --all-features --test server_rules -- --ignored`.
#[test]
#[ignore = "needs /usr/bin/prometheus-alertmanager"]
fn a_real_alertmanager_receives_the_firing_alert() {
    let binary = std::env::var("ALERTMANAGER")
        .unwrap_or_else(|_| "/usr/bin/prometheus-alertmanager".to_owned());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route: {receiver: 'null'}\nreceivers: [{name: 'null'}]\n",
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let ready = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && get(&format!("{url}/-/ready"), &[]).status == 200
    });
    assert!(ready, "alertmanager did not become ready");

    // Wall-clock times (Alertmanager treats an alert whose endsAt has
    // passed as resolved): the alert fires two minutes ago and resolves
    // one minute ago.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (fired_at, resolved_at) = (now - 2 * MINUTE, now - MINUTE);
    let (_db_dir, db) = open_db();
    write(
        &db,
        r#"temperature_celsius{room="lab"}"#,
        &[(fired_at, 35.0), (resolved_at, 20.0)],
    );
    let mut engine = RuleEngine::new(
        Arc::clone(&db),
        parse(&ALERT_RULES.replace("for: 2m", "for: 0s")),
        EngineConfig::default(),
    );
    // Stopping a notifier sends what it holds first.
    let send = |notifications: Vec<Notification>| {
        let mut notifier = Notifier::start(vec![url.clone()], QUEUE_CAPACITY).unwrap();
        notifier.enqueue(notifications);
        notifier.stop();
        use std::sync::atomic::Ordering::Relaxed;
        assert_eq!(notifier.stats().sent.load(Relaxed), 1);
        assert_eq!(notifier.stats().errors.load(Relaxed), 0);
    };
    send(engine.evaluate_at(fired_at));
    let alerts = get(&format!("{url}/api/v2/alerts"), &[]).json();
    let list = alerts.as_array().unwrap();
    assert_eq!(list.len(), 1, "{alerts}");
    assert_eq!(list[0]["labels"]["alertname"], "RoomHot");
    assert_eq!(list[0]["labels"]["room"], "lab");
    assert_eq!(list[0]["annotations"]["summary"], "lab is at 35 C");
    assert_eq!(list[0]["status"]["state"], "active");
    eprintln!("alertmanager holds: {alerts}");

    send(engine.evaluate_at(resolved_at));
    let after = get(&format!("{url}/api/v2/alerts"), &[]).json();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        after,
        serde_json::json!([]),
        "the resolved alert is no longer active"
    );
}
