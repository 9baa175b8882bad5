//! `strata query`, the discovery commands and `strata kpis` end to end, on a
//! small imported dataset whose every expected value is worked out by hand
//! in the comments.
//!
//! The data: 11 samples per series, one a minute from T0 =
//! 2021-01-01T00:00:00Z (Unix 1609459200) to T0+10m:
//! - `http_requests_total{code="200",job="api"}` = 10 * minute (0, 10 … 100)
//! - `http_requests_total{code="500",job="api"}` = minute (0, 1 … 10)
//! - `temperature_celsius{room="a"}` = 20 + minute / 2 (20, 20.5 … 25)
//! - `temperature_celsius{room="b"}` = 18
//!
//! The rates below need no extrapolation: a 5 m window ending on a minute
//! holds samples exactly at both of its (closed, as in Prometheus 2.42)
//! ends, so `rate` is (last - first) / 300 s.

mod cli_support;

use std::path::PathBuf;

use cli_support::{assert_usage_errors, strata};
use serde_json::{json, Value};

const T0: i64 = 1_609_459_200; // seconds
const T10: &str = "1609459800"; // T0 + 10 m, seconds

struct Data {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

impl Data {
    fn db(&self) -> &str {
        self.db.to_str().unwrap()
    }

    fn segment(&self) -> String {
        let segments = self.db.join("segments");
        let mut files: Vec<_> = std::fs::read_dir(&segments)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].to_str().unwrap().to_owned()
    }
}

fn dataset() -> Data {
    let dir = tempfile::tempdir().unwrap();
    let mut tsv = String::new();
    for minute in 0..=10i64 {
        let ms = (T0 + minute * 60) * 1000;
        for (series, value) in [
            (
                r#"http_requests_total{code="200",job="api"}"#,
                10.0 * minute as f64,
            ),
            (
                r#"http_requests_total{code="500",job="api"}"#,
                minute as f64,
            ),
            (
                r#"temperature_celsius{room="a"}"#,
                20.0 + minute as f64 / 2.0,
            ),
            (r#"temperature_celsius{room="b"}"#, 18.0),
        ] {
            tsv.push_str(&format!("{series}\t{ms}\t{value}\n"));
        }
    }
    let file = dir.path().join("data.tsv");
    std::fs::write(&file, tsv).unwrap();
    let db = dir.path().join("db");
    let (code, out, err) = strata(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    Data { _dir: dir, db }
}

/// Runs `strata query` on `target`: exit code, stdout, stderr.
fn query(target: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["query", "--db", target];
    all.extend_from_slice(args);
    strata(&all)
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The result of a json query, series sorted by their labels.
fn sorted_result(body: &Value) -> Vec<Value> {
    let mut result = body["data"]["result"].as_array().unwrap().clone();
    result.sort_by_key(|s| s["metric"].to_string());
    result
}

#[test]
fn instant_queries_in_every_format() {
    let data = dataset();
    let db = data.db();

    // At T0+10m room a reads 20 + 10 / 2 = 25 and room b 18.
    let (code, out, err) = query(
        db,
        &["temperature_celsius", "--time", T10, "--format", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let body = json_of(&out);
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "vector");
    assert_eq!(
        sorted_result(&body),
        [
            json!({"metric": {"__name__": "temperature_celsius", "room": "a"}, "value": [1609459800, "25"]}),
            json!({"metric": {"__name__": "temperature_celsius", "room": "b"}, "value": [1609459800, "18"]}),
        ]
    );

    // Error ratio: (10 - 5) / 300 over (100 - 50 + 10 - 5) / 300 = 5 / 55
    // = 1 / 11; functions drop the metric name, so the series has no labels.
    // The digits are Prometheus 2.42's on the same data: rates are
    // increase * (1 / 300), 0.016666666666666666 / 0.18333333333333335.
    let ratio =
        r#"sum(rate(http_requests_total{code="500"}[5m])) / sum(rate(http_requests_total[5m]))"#;
    let (code, out, err) = query(db, &[ratio, "--time", T10, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1609459800,\"0.0909090909090909\"]}]}}\n"
    );

    // A scalar, at a time with milliseconds: Prometheus 2.42 writes a
    // scalar's time as the shortest float (a vector's as 1609459800.500).
    let (code, out, err) = query(
        db,
        &["1 / 4", "--time", "1609459800500", "--format", "json"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1609459800.5,\"0.25\"]}}\n"
    );

    // Table: aligned columns, series in Prometheus text form.
    let (code, out, err) = query(db, &["sort(temperature_celsius)", "--time", T10]);
    // `sort` is not in the subset: a parse error, pointed at.
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("parse error at 1:1") && err.contains("\n  ^"),
        "{err}"
    );
    let (code, out, err) = query(db, &["temperature_celsius", "--time", T10]);
    assert_eq!(code, 0, "{err}");
    let mut lines: Vec<&str> = out.lines().collect();
    lines[1..].sort();
    assert_eq!(
        lines,
        [
            "SERIES                         VALUE",
            r#"temperature_celsius{room="a"}     25"#,
            r#"temperature_celsius{room="b"}     18"#,
        ]
    );

    // An expression may start with '-' (not taken for an option); the
    // negation drops the metric name.
    let (code, out, err) = query(db, &["-temperature_celsius{room=\"b\"}", "--time", T10]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "SERIES      VALUE\n{room=\"b\"}    -18\n");

    // CSV: the columns of `strata export --format csv`.
    let (code, out, err) = query(
        db,
        &[
            r#"temperature_celsius{room="a"}"#,
            "--time",
            T10,
            "--format",
            "csv",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "series,timestamp_ms,value\n\"temperature_celsius{room=\"\"a\"\"}\",1609459800000,25\n"
    );
}

#[test]
fn range_queries_in_every_format() {
    let data = dataset();
    let db = data.db();
    let range = [
        "--start",
        "2021-01-01T00:05:00Z",
        "--end",
        T10,
        "--step",
        "1m",
    ];

    // Every step from T0+5m to T0+10m: 50 / 300 + 5 / 300 = 55 / 300.
    // Prometheus 2.42 computes a rate as increase * (1 / 300), whose
    // rounding gives ...669 for 50 / 300 and so ...335 for the sum (checked
    // against Prometheus 2.42 on the same data).
    let mut args = vec!["sum(rate(http_requests_total[5m]))", "--format", "json"];
    args.extend_from_slice(&range);
    let (code, out, err) = query(db, &args);
    assert_eq!(code, 0, "{err}");
    let body = json_of(&out);
    assert_eq!(body["data"]["resultType"], "matrix");
    let values: Vec<Value> = (5..=10)
        .map(|m| json!([T0 + m * 60, "0.18333333333333335"]))
        .collect();
    assert_eq!(
        body["data"]["result"],
        json!([{"metric": {}, "values": values}])
    );

    // CSV: one row per point.
    let (code, out, err) = query(
        db,
        &[
            r#"temperature_celsius{room="a"}"#,
            "--start",
            "1609459200",
            "--end",
            "1609459320",
            "--step",
            "60",
            "--format",
            "csv",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "series,timestamp_ms,value\n\
         \"temperature_celsius{room=\"\"a\"\"}\",1609459200000,20\n\
         \"temperature_celsius{room=\"\"a\"\"}\",1609459260000,20.5\n\
         \"temperature_celsius{room=\"\"a\"\"}\",1609459320000,21\n"
    );

    // Table: each series, then its points.
    let mut args = vec![r#"temperature_celsius{room="b"}"#];
    args.extend_from_slice(&range);
    let (code, out, err) = query(db, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().next(), Some(r#"temperature_celsius{room="b"}"#));
    assert_eq!(out.lines().count(), 7, "{out}");
    assert!(out.contains("  2021-01-01T00:05:00.000Z  18\n"), "{out}");
    assert!(out.contains("  2021-01-01T00:10:00.000Z  18\n"), "{out}");
}

#[test]
fn a_segment_file_answers_like_its_directory() {
    let data = dataset();
    let segment = data.segment();
    for target in [data.db(), segment.as_str()] {
        let (code, out, err) = query(
            target,
            &[
                "max(temperature_celsius)",
                "--time",
                T10,
                "--format",
                "json",
            ],
        );
        assert_eq!(code, 0, "{target}: {err}");
        assert_eq!(
            json_of(&out)["data"]["result"],
            json!([{"metric": {}, "value": [1609459800, "25"]}]),
            "{target}"
        );
    }
}

#[test]
fn errors_have_the_prometheus_error_shape() {
    let data = dataset();
    let db = data.db();
    let (code, out, _) = query(db, &["rate(x[5m]", "--format", "json"]);
    assert_eq!(code, 1);
    let body = json_of(&out);
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "bad_data");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid parameter \"query\": 1:11: parse error: "),
        "{out}"
    );
    // The end before the start.
    let (code, out, _) = query(
        db,
        &[
            "up", "--start", "now", "--end", "now-1h", "--format", "json",
        ],
    );
    assert_eq!(code, 1);
    let body = json_of(&out);
    assert_eq!(body["errorType"], "bad_data");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains(" ms) is before the start "));
    // Unreadable data.
    let (code, out, _) = query("/nonexistent/strata", &["up", "--format", "json"]);
    assert_eq!(code, 1);
    assert_eq!(json_of(&out)["errorType"], "internal");

    assert_usage_errors(&[
        (
            vec!["query", "--db", db, "up", "--time", "yesterday"],
            "is not a time",
        ),
        (vec!["query", "--db", db, "up", "--step", "1m"], "--start"),
        (
            vec!["query", "--db", db, "up", "--time", "now", "--start", "now"],
            "cannot be used with",
        ),
        (
            vec!["query", "--db", db, "up", "--plot", "--format", "csv"],
            "cannot be used with",
        ),
        (
            vec![
                "query", "--db", db, "up", "--start", "now-1h", "--step", "0s",
            ],
            "not a duration",
        ),
    ]);
}

#[test]
fn an_empty_result_on_old_data_says_where_the_data_ends() {
    let data = dataset();
    // Default time: now, years after the data.
    let (code, out, err) = query(data.db(), &["temperature_celsius"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "SERIES  VALUE\n");
    assert!(
        err.contains("the newest sample is at 2021-01-01T00:10:00.000Z (1609459800000 ms)")
            && err.contains("try --time 1609459800"),
        "{err}"
    );
}

#[test]
fn plots_draw_one_line_per_series_with_a_legend() {
    let data = dataset();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "query",
            "--db",
            data.db(),
            "temperature_celsius",
            "--start",
            "1609459200",
            "--end",
            T10,
            "--step",
            "1m",
            "--plot",
        ])
        .env("COLUMNS", "72")
        .output()
        .unwrap();
    assert!(output.status.success());
    let chart = String::from_utf8(output.stdout).unwrap();
    assert!(chart.lines().all(|l| l.chars().count() <= 72), "{chart}");
    // 20 rows of plot, then the axis, its labels, the caption, the legend.
    let rows: Vec<&str> = chart.lines().take(20).collect();
    assert!(
        rows.iter().all(|r| r.contains('┤') || r.contains('│')),
        "{chart}"
    );
    assert!(chart.lines().nth(20).unwrap().contains('└'), "{chart}");
    // Values 18 to 25 on ticks of 2: the axis runs from 18 to 26.
    assert!(rows[0].trim_start().starts_with("26 ┤"), "{chart}");
    assert!(rows[19].trim_start().starts_with("18 ┤"), "{chart}");
    // Room b (second series, '+') is flat at 18: the bottom row; room a
    // ('*') rises from 20 to 25, so its first point is left of its last
    // and lower.
    assert!(rows[19].matches('+').count() > 50, "{chart}");
    let first_star = rows.iter().rposition(|r| r.contains('*')).unwrap();
    let last_star = rows.iter().position(|r| r.contains('*')).unwrap();
    assert!(first_star > last_star, "{chart}");
    assert!(
        chart.contains("00:00") && chart.contains("00:10"),
        "{chart}"
    );
    assert!(
        chart.contains(r#"  * temperature_celsius{room="a"}"#),
        "{chart}"
    );
    assert!(
        chart.contains(r#"  + temperature_celsius{room="b"}"#),
        "{chart}"
    );
    assert!(!chart.contains('\x1b'), "no colours into a pipe");
}

#[test]
fn discovery_lists_labels_values_series_and_cardinality() {
    let data = dataset();
    let segment = data.segment();
    for target in [data.db(), segment.as_str()] {
        let run = |args: &[&str]| {
            let (code, out, err) = strata(args);
            assert_eq!(code, 0, "{args:?}: {err}");
            out
        };
        assert_eq!(
            run(&["labels", "--db", target]),
            "__name__\ncode\njob\nroom\n"
        );
        assert_eq!(
            run(&["labels", "--db", target, "--match", "temperature_celsius"]),
            "__name__\nroom\n"
        );
        assert_eq!(run(&["label-values", "--db", target, "room"]), "a\nb\n");
        assert_eq!(
            run(&["label-values", "--db", target, "__name__"]),
            "http_requests_total\ntemperature_celsius\n"
        );
        assert_eq!(
            run(&[
                "series",
                "--db",
                target,
                r#"{__name__=~"http.*",code!="200"}"#
            ]),
            "http_requests_total{code=\"500\",job=\"api\"}\n"
        );
        assert_eq!(run(&["series", "--db", target]).lines().count(), 4);
        assert_eq!(
            run(&["series", "--db", target, "--start", "2022-01-01T00:00:00Z"]),
            ""
        );
        let report = run(&["cardinality", "--db", target, "--top", "2"]);
        assert!(
            report.starts_with("Series: 4   Metric names: 2   Label names: 3   Label pairs: 5\n"),
            "{report}"
        );
        // Two series each; room has 2 values, code 2, job 1; job=api is on
        // two series.
        assert!(
            report.contains("  2  http_requests_total\n  2  temperature_celsius\n"),
            "{report}"
        );
        assert!(
            report.contains("  2  code\n  2  room\n  ... 1 more (--top)\n"),
            "{report}"
        );
        assert!(
            report.contains("Most common label pairs (series):\n  2  job=api\n"),
            "{report}"
        );
    }
}

#[test]
fn selector_errors_explain_themselves() {
    let data = dataset();
    let db = data.db();
    assert_usage_errors(&[
        (
            vec!["series", "--db", db, "rate(http_requests_total[5m])"],
            "rate(...) is a function call, not a series selector; functions, operators and ranges need `strata query`",
        ),
        (
            vec!["series", "--db", db, "sum(x"],
            "need `strata query`",
        ),
        (vec!["series", "--db", db, "up{a=b}"], "1:6:"),
        (
            vec!["labels", "--db", db, "--match", r#"up{job=~"(api"}"#],
            r#""(api""#,
        ),
        (
            vec!["export", "--db", db, "--match", "a / b"],
            "need `strata query`",
        ),
        (
            vec!["series", "--db", db, "--start", "now", "--end", "2021-01-01T00:00:00Z"],
            "--end 2021-01-01T00:00:00.000Z (1609459200000 ms) is before --start",
        ),
    ]);
}

#[test]
fn every_new_subcommand_explains_itself_with_examples() {
    for command in [
        "query",
        "labels",
        "label-values",
        "series",
        "cardinality",
        "kpis",
    ] {
        let (code, out, _) = strata(&[command, "--help"]);
        assert_eq!(code, 0, "{command}");
        assert!(
            out.contains("Examples:") && out.contains(&format!("strata {command} ")),
            "{command}: {out}"
        );
    }
}

/// `strata kpis` on a directory without the demo's metrics: every KPI
/// that needs them has no data, and the stale-heartbeat count is 0.
#[test]
fn kpis_on_foreign_data_have_no_data() {
    let data = dataset();
    let (code, out, err) = strata(&["kpis", "--db", data.db()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("KPIs at 2021-01-01T00:10:00.000Z (1609459800000 ms):\n"),
        "{out}"
    );
    assert!(out.contains("gateway error ratio"), "{out}");
    assert!(out.contains("NO DATA"), "{out}");
    assert!(!out.contains("BREACH\n") && !out.contains("ERROR"), "{out}");
}

/// `strata kpis` judges hand-built gateway and heartbeat data. From T0,
/// one sample a minute for 10 minutes:
/// - `gateway_requests_total{code="200"}` = 540 * minute (9 requests/s),
///   `{code="500"}` = 60 * minute (1/s): at T0+10m the 5 m rates are
///   (5400 - 2700) / 300 = 9 and (600 - 300) / 300 = 1, so 10 requests/s
///   (OK: the breach is below 1/s) with an error ratio of 1 / 10 = 10 %
///   (BREACH: above 5 %);
/// - `heartbeat_last_seen_seconds` stays at T0, so at T0+10m it is 600 s
///   old: one stale heartbeat (BREACH: above 0).
#[test]
fn kpis_judge_hand_built_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut tsv = String::new();
    for minute in 0..=10i64 {
        let ms = (T0 + minute * 60) * 1000;
        for (series, value) in [
            (
                r#"gateway_requests_total{code="200",instance="a"}"#,
                540 * minute,
            ),
            (
                r#"gateway_requests_total{code="500",instance="a"}"#,
                60 * minute,
            ),
            (
                r#"heartbeat_last_seen_seconds{instance="a",service="x"}"#,
                T0,
            ),
        ] {
            tsv.push_str(&format!("{series}\t{ms}\t{value}\n"));
        }
    }
    let file = dir.path().join("kpi.tsv");
    std::fs::write(&file, tsv).unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let (code, out, err) = strata(&["import", "--db", db, file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, err) = strata(&["kpis", "--db", db]);
    assert_eq!(code, 1, "a breach exits 1: {out}{err}");
    let row = |name: &str| -> Vec<String> {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {out}"));
        line[name.len() + 2..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        row("gateway request rate"),
        ["10.0", "/s", "<", "1.0", "/s", "OK"]
    );
    assert_eq!(
        row("gateway error ratio"),
        ["10.00", "%", ">", "5.00", "%", "BREACH"]
    );
    assert_eq!(row("heartbeats stale over 30 s"), ["1", ">", "0", "BREACH"]);
    assert_eq!(
        row("gateway latency p95"),
        ["-", ">", "250.0", "ms", "NO", "DATA"]
    );

    // At T0 a rate has one sample to work with: no data; the heartbeat is
    // 0 s old: fresh. Nothing is breached.
    let (code, out, err) = strata(&["kpis", "--db", db, "--time", "1609459200"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("BREACH\n"), "{out}");
}
