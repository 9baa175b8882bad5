//! `strata bench write` and `strata bench query` end to end, on tiny
//! workloads: the JSON carries every figure with consistent values. No
//! timing thresholds: only counts and orderings are checked.

mod cli_support;

use cli_support::{assert_usage_errors, strata};

/// Runs a bench command with `--json` and returns its single line.
fn bench_json(args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = strata(&all);
    assert_eq!(code, 0, "strata {all:?}\n{out}\n{err}");
    let out = out.trim();
    assert!(
        out.starts_with('{') && out.ends_with('}') && !out.contains('\n'),
        "one JSON object expected: {out}"
    );
    out.to_owned()
}

/// The raw text of field `key` in a flat JSON object (the first match).
fn raw<'a>(json: &'a str, key: &str) -> &'a str {
    let pattern = format!("\"{key}\":");
    let start = json
        .find(&pattern)
        .unwrap_or_else(|| panic!("no field {key} in {json}"))
        + pattern.len();
    let rest = &json[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find('"').expect("closing quote");
        return &quoted[..end];
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    &rest[..end]
}

fn num(json: &str, key: &str) -> f64 {
    let text = raw(json, key);
    text.parse()
        .unwrap_or_else(|_| panic!("field {key} = {text} is not a number in {json}"))
}

fn int(json: &str, key: &str) -> u64 {
    let text = raw(json, key);
    text.parse()
        .unwrap_or_else(|_| panic!("field {key} = {text} is not an integer in {json}"))
}

/// The figures every write run must report, consistent with each other.
fn check_write(json: &str, workload: &str) {
    assert_eq!(raw(json, "bench"), "write");
    assert_eq!(raw(json, "workload"), workload);
    let samples = int(json, "samples");
    assert_eq!(
        samples,
        int(json, "live_series") * int(json, "rounds"),
        "{json}"
    );
    assert_eq!(int(json, "rejected"), 0, "{json}");
    assert!(num(json, "write_seconds") > 0.0, "{json}");
    assert!(num(json, "samples_per_second") > 0.0, "{json}");
    // Appending takes part of the writers' time, never more than all of it
    // (clock reads aside).
    let append = num(json, "append_seconds");
    let busy = num(json, "write_seconds") * int(json, "writers") as f64;
    assert!(append > 0.0 && append <= busy * 1.05, "{json}");
    assert!(num(json, "generate_seconds") > 0.0, "{json}");
    assert!(num(json, "samples_per_append_second") >= num(json, "samples_per_second") * 0.95);
    assert!(int(json, "calls") > 0, "{json}");
    for prefix in ["latency_call", "latency_sample"] {
        let p50 = int(json, &format!("{prefix}_p50_ns"));
        let p99 = int(json, &format!("{prefix}_p99_ns"));
        let p999 = int(json, &format!("{prefix}_p999_ns"));
        let max = int(json, &format!("{prefix}_max_ns"));
        assert!(
            p50 > 0 && p50 <= p99 && p99 <= p999 && p999 <= max,
            "{json}"
        );
    }
    assert!(
        int(json, "disk_bytes") >= int(json, "segment_bytes"),
        "{json}"
    );
    assert!(int(json, "segment_bytes") > 0, "{json}");
    let bytes_per_sample = num(json, "bytes_per_sample");
    assert!(
        bytes_per_sample > 0.0 && bytes_per_sample < 16.0,
        "{bytes_per_sample}"
    );
    assert_eq!(int(json, "head_series"), int(json, "series"), "{json}");
    assert!(num(json, "head_data_bytes_per_series") > 0.0, "{json}");
    if cfg!(target_os = "linux") {
        assert!(num(json, "head_rss_bytes_per_series") >= 0.0, "{json}");
    }
    for key in ["flush_seconds", "reopen_seconds", "read_only_open_seconds"] {
        assert!(num(json, key) > 0.0, "{key}: {json}");
    }
    // close flushed everything: reopening replays nothing.
    assert_eq!(int(json, "reopen_samples_replayed"), 0, "{json}");
}

#[test]
fn write_devops_reports_every_figure() {
    let json = bench_json(&[
        "bench",
        "write",
        "--workload",
        "devops",
        "--series",
        "20",
        "--duration",
        "10m",
    ]);
    check_write(&json, "devops");
    assert_eq!(int(&json, "series"), 20);
    assert_eq!(int(&json, "live_series"), 20);
    assert_eq!(int(&json, "rounds"), 60); // 10 min at 10 s
    assert_eq!(int(&json, "samples"), 1200);
    // Batches of up to 1000 samples, at most one round: one call per round.
    assert_eq!(int(&json, "calls"), 60);
    assert_eq!(int(&json, "decimals"), 2);
    assert_eq!(raw(&json, "sync"), "interval");
    assert_eq!(raw(&json, "background_flush"), "false");
    assert_eq!(int(&json, "background_flushes"), 0);
}

#[test]
fn write_devops_split_between_writers_in_small_batches() {
    let json = bench_json(&[
        "bench",
        "write",
        "--workload",
        "devops",
        "--series",
        "25", // rounded up to 3 hosts
        "--duration",
        "10m",
        "--writers",
        "2",
        "--batch",
        "7",
        "--sync",
        "never",
        "--decimals",
        "full",
        "--background-flush",
    ]);
    check_write(&json, "devops");
    assert_eq!(int(&json, "series"), 30);
    assert_eq!(int(&json, "writers"), 2);
    assert_eq!(int(&json, "samples"), 1800);
    // Writers own 1 and 2 hosts: 10 series = 2 calls, 20 series = 3 calls
    // per round.
    assert_eq!(int(&json, "calls"), 60 * 5);
    assert_eq!(raw(&json, "decimals"), "null");
    assert_eq!(raw(&json, "background_flush"), "true");
}

#[test]
fn write_telemetry_with_single_appends() {
    let json = bench_json(&[
        "bench",
        "write",
        "--workload",
        "telemetry",
        "--series",
        "58",
        "--duration",
        "10s",
        "--batch",
        "1",
        "--sync",
        "always",
    ]);
    check_write(&json, "telemetry");
    assert_eq!(int(&json, "series"), 58);
    assert_eq!(int(&json, "rounds"), 10); // 1 s resolution
    assert_eq!(int(&json, "samples"), 58 * 10);
    // append_ref: one call per sample (one fsync each), so both latency
    // views agree.
    assert_eq!(int(&json, "calls"), 58 * 10);
    assert_eq!(
        int(&json, "latency_call_p99_ns"),
        int(&json, "latency_sample_p99_ns")
    );
}

#[test]
fn write_churn_creates_more_series_than_are_alive() {
    let json = bench_json(&[
        "bench",
        "write",
        "--workload",
        "churn",
        "--series",
        "40",
        "--duration",
        "30m",
        "--lifetime",
        "3m",
        "--writers",
        "2",
        "--sync",
        "never",
    ]);
    check_write(&json, "churn");
    assert_eq!(int(&json, "live_series"), 40);
    assert_eq!(int(&json, "samples"), 40 * 180);
    assert_eq!(int(&json, "lifetime_ms"), 180_000);
    // 30 min of pods living about 3 min: several generations per slot.
    let series = int(&json, "series");
    assert!(series > 3 * 40, "{series} series: {json}");
}

/// The query results as (name, object text) pairs.
fn queries(json: &str) -> Vec<(String, String)> {
    let list = &json[json.find("\"queries\":[").expect("queries") + 11..];
    list.split("{\"name\":")
        .skip(1)
        .map(|q| {
            let object = format!("{{\"name\":{q}");
            (raw(&object, "name").to_owned(), object)
        })
        .collect()
}

/// The result of the query named `name`.
fn query<'a>(results: &'a [(String, String)], name: &str) -> &'a str {
    &results
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no query {name:?} in {results:?}"))
        .1
}

/// The full scan, three ways, reads every sample and agrees on the sum.
fn check_full_scans(results: &[(String, String)], series: u64, samples: u64) {
    let select = query(results, "full scan, select");
    assert_eq!(results[0].0, "full scan, select");
    let sum = num(select, "result");
    for name in [
        "full scan, select",
        "full scan, read",
        "full scan, sum_over_time, 1 core",
        "full scan, sum_over_time",
    ] {
        let q = query(results, name);
        assert_eq!(int(q, "samples"), samples, "{name}: {q}");
        // PromQL adds in another order: equal within rounding.
        let result = num(q, "result");
        assert!(
            (result - sum).abs() <= 1e-9 * sum.abs(),
            "{name}: {result} vs {sum}"
        );
    }
    assert_eq!(int(select, "series"), series);
    assert_eq!(int(query(results, "full scan, read"), "series"), series);
    assert_eq!(int(query(results, "full scan, read"), "threads"), 1);
    assert_eq!(
        int(
            query(results, "full scan, sum_over_time, 1 core"),
            "threads"
        ),
        1
    );
    assert_eq!(raw(select, "kind"), "select");
    assert_eq!(
        raw(query(results, "full scan, sum_over_time"), "kind"),
        "promql instant"
    );
}

#[test]
fn query_scans_everything_written_and_runs_the_kpis() {
    let json = bench_json(&[
        "bench",
        "query",
        "--workload",
        "telemetry",
        "--series",
        "58",
        "--duration",
        "5m",
        "--repeat",
        "2",
    ]);
    assert_eq!(raw(&json, "bench"), "query");
    assert_eq!(raw(&json, "workload"), "telemetry");
    assert_eq!(int(&json, "samples_written"), 58 * 300);
    assert_eq!(int(&json, "samples"), 58 * 300);
    let results = queries(&json);
    check_full_scans(&results, 58, 58 * 300);
    for (name, q) in &results {
        assert!(int(q, "samples") > 0, "{name}: {q}");
        assert!(num(q, "seconds") >= num(q, "best_seconds"), "{name}: {q}");
        assert!(num(q, "samples_per_second") > 0.0, "{name}: {q}");
    }
    // The demo's KPIs as PromQL: 3 routes x 2 codes of one instance,
    // about 165 requests/s in all.
    let rate = query(&results, "gateway request rate");
    assert_eq!(raw(rate, "kind"), "promql instant");
    assert_eq!(int(rate, "series"), 1);
    let requests = num(rate, "result");
    assert!(requests > 50.0 && requests < 500.0, "{rate}");
    // The same counters as a range query: one series per route.
    let by_route = query(&results, "requests/s by route");
    assert_eq!(raw(by_route, "kind"), "promql range");
    assert_eq!(int(by_route, "step_ms"), 60_000);
    assert_eq!(int(by_route, "series"), 3);
    // One metric three ways: the same series and samples.
    let select = query(&results, "one metric, select");
    for name in ["one metric, read", "one metric, promql"] {
        let q = query(&results, name);
        assert_eq!(int(q, "series"), 6, "{name}: {q}");
        assert_eq!(int(q, "samples"), int(select, "samples"), "{name}: {q}");
    }
    assert_eq!(int(select, "samples"), 6 * 300);
}

#[test]
fn query_an_existing_directory_written_by_bench_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("churn-db");
    let db = db.to_str().unwrap();
    let write = bench_json(&[
        "bench",
        "write",
        "--workload",
        "churn",
        "--series",
        "30",
        "--duration",
        "20m",
        "--dir",
        db,
    ]);
    check_write(&write, "churn");
    assert_eq!(raw(&write, "dir"), db);

    let json = bench_json(&["bench", "query", "--dir", db, "--repeat", "1"]);
    assert_eq!(raw(&json, "workload"), "churn", "recognized: {json}");
    assert_eq!(raw(&json, "written"), "false");
    let results = queries(&json);
    check_full_scans(&results, int(&write, "series"), int(&write, "samples"));
    let names: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    for name in ["one pod, select", "one pod, read", "one pod, promql"] {
        assert!(names.contains(&name), "{name}: {names:?}");
    }
    // 30 pods alive at any moment, each sampled in the last 10 minutes.
    let active = query(&results, "active series, last 10 min");
    assert!(num(active, "result") >= 30.0, "{active}");

    // The human report too.
    let (code, out, err) = strata(&["bench", "query", "--dir", db, "--repeat", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    for figure in ["full scan, read", "churn data", "M samples/s", "ms"] {
        assert!(out.contains(figure), "{figure}: {out}");
    }

    // A directory with data is never written into.
    let (code, out, err) = strata(&["bench", "write", "--dir", db]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("not empty"), "{err}");
}

#[test]
fn human_report_names_every_figure() {
    let (code, out, err) = strata(&[
        "bench",
        "write",
        "--workload",
        "devops",
        "--series",
        "10",
        "--duration",
        "5m",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    for figure in [
        "samples/s",
        "latency/call",
        "p99.9",
        "bytes/sample",
        "head memory",
        "flush",
        "reopen",
        "read-only open",
    ] {
        assert!(out.contains(figure), "{figure}: {out}");
    }
}

#[test]
fn bad_options_fail_clearly_without_panicking() {
    assert_usage_errors(&[
        (vec!["bench", "write", "--duration", "6x"], "unknown unit"),
        (vec!["bench", "write", "--duration", "90"], "no unit"),
        (vec!["bench", "write", "--duration=-1h"], "must be positive"),
        (
            vec!["bench", "write", "--duration", "5s"],
            "shorter than one interval",
        ),
        (
            vec!["bench", "write", "--workload", "tsbs"],
            "possible values",
        ),
        (
            vec!["bench", "write", "--sync", "sometimes"],
            "possible values",
        ),
        (vec!["bench", "write", "--series", "0"], "--series"),
        (vec!["bench", "write", "--lifetime", "5m"], "churn only"),
        (vec!["bench", "query", "--duration", "1y"], "unknown unit"),
        (
            vec!["bench", "write", "--matrix", "--workload", "churn"],
            "cannot be used",
        ),
        // Regression (issue 7): `--seconds 1e300` panicked in
        // Duration::from_secs_f64; --batch and --series past the engine's
        // limits were accepted.
        (
            vec!["bench", "write", "--matrix", "--seconds", "1e300"],
            "--seconds",
        ),
        (
            vec!["bench", "write", "--matrix", "--seconds=-1"],
            "--seconds",
        ),
        (
            vec!["bench", "write", "--batch", "1048577"],
            "from 1 to 1048576",
        ),
        (vec!["bench", "query", "--batch", "0"], "from 1 to 1048576"),
        (
            vec!["bench", "write", "--series", "18446744073709551615"],
            "--series",
        ),
        (
            vec!["bench", "write", "--duration", "99999999999999999999h"],
            "over 100 years",
        ),
    ]);
}

#[test]
fn help_explains_every_subcommand_and_option() {
    let (code, out, _) = strata(&["bench", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("write") && out.contains("query"), "{out}");
    for sub in ["write", "query"] {
        let (code, out, _) = strata(&["bench", sub, "--help"]);
        assert_eq!(code, 0);
        for option in [
            "--workload",
            "--series",
            "--duration",
            "--writers",
            "--batch",
            "--sync",
            "--dir",
            "--json",
            "devops",
            "telemetry",
            "churn",
        ] {
            assert!(out.contains(option), "bench {sub} --help lacks {option}");
        }
    }
}

/// Regression (issue 7): `bench write --matrix --dir D` opened and then
/// deleted D/memory and D/run-N whatever they held.
#[test]
fn matrix_never_reuses_or_removes_existing_folders() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    std::fs::create_dir(base.join("memory")).unwrap();
    std::fs::write(base.join("memory").join("precious.txt"), b"keep").unwrap();
    std::fs::write(base.join("keep.txt"), b"keep").unwrap();
    let args = [
        "bench",
        "write",
        "--matrix",
        "--dir",
        base.to_str().unwrap(),
        "--series",
        "10",
        "--memory-series",
        "10",
        "--seconds",
        "0.01",
        "--sync",
        "never",
    ];
    let (code, out, err) = strata(&args);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("already exists"), "{err}");
    assert!(
        err.contains("pick another --dir or remove it yourself"),
        "{err}"
    );
    assert!(base.join("memory").join("precious.txt").exists());

    std::fs::remove_dir_all(base.join("memory")).unwrap();
    let (code, out, err) = strata(&args);
    assert_eq!(code, 0, "{out}{err}");
    let left: Vec<_> = std::fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["keep.txt"], "the runs remove exactly what they made");
}
