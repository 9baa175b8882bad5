//! `strata import` then `strata export` round-trips exactly; bad lines are
//! reported with their numbers and do not cost the good ones.

mod cli_support;

use std::path::Path;

use cli_support::{assert_usage_errors, strata};

/// `strata import --db db [options] file`.
fn import(db: &Path, file: &Path, options: &[&str]) -> (i32, String, String) {
    let mut args = vec!["import", "--db", db.to_str().unwrap()];
    args.extend_from_slice(options);
    args.push(file.to_str().unwrap());
    strata(&args)
}

fn round_trip(dir: &Path, input: &str) -> String {
    let file = dir.join("input.tsv");
    std::fs::write(&file, input).unwrap();
    let db = dir.join("db");
    let (code, out, err) = import(&db, &file, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("flushed to segments"), "{out}");
    let (code, exported, err) = strata(&["export", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    exported
}

#[test]
fn generated_edge_values_round_trip_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let values = [
        "NaN",
        "NaN:0x7ff0000000000002", // Prometheus stale marker
        "NaN:0xfff8deadbeef0001",
        "+Inf",
        "-Inf",
        "-0.0",
        "0.0",
        "5e-324",
        "1.7976931348623157e+308",
        "1.7274e-05",
        "0.1",
        "-123456.789",
        "1e+16",
    ];
    let mut input = String::new();
    for (s, series) in [
        r#"a_b{x="1"}"#,
        r#"a{k="quote \" and \\ and \n"}"#,
        r#"b{k="v"}"#,
    ]
    .iter()
    .enumerate()
    {
        for (i, value) in values.iter().enumerate() {
            let ts = -5_000_000_000_000i64 + (i as i64) * 997 + s as i64;
            input.push_str(&format!("{series}\t{ts}\t{value}\n"));
        }
    }
    assert_eq!(round_trip(dir.path(), &input), input);
}

#[test]
fn real_scraped_data_round_trips_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let input = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/node-exporter-slice.tsv"),
    )
    .unwrap();
    assert_eq!(round_trip(dir.path(), &input), input);
}

#[test]
fn malformed_lines_are_reported_and_the_rest_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.tsv");
    std::fs::write(
        &file,
        "up{job=\"a\"}\t1000\t1\nup{job=\"a\"\t2000\t1\nup{job=\"a\"}\tlater\t1\n1bad{x=\"y\"}\t3000\t1\nup{job=\"a\"}\t4000\t4\n",
    )
    .unwrap();
    let db = dir.path().join("db");
    let (code, out, err) = import(&db, &file, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("imported 2 samples"), "{out}");
    assert!(out.contains("3 malformed lines"), "{out}");
    for line in ["line 2:", "line 3:", "line 4:"] {
        assert!(out.contains(line), "{line} missing in {out}");
    }
    let (code, exported, _) = strata(&["export", "--db", db.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(code, 0);
    assert_eq!(
        exported,
        "series,timestamp_ms,value\n\"up{job=\"\"a\"\"}\",1000,1.0\n\"up{job=\"\"a\"\"}\",4000,4.0\n"
    );
}

/// The parser and the writer run on two threads, handing over batches of
/// `--batch` samples: line numbers of failures must survive batches, and
/// a series seen before its batch was written keeps its samples.
#[test]
fn failures_keep_their_line_numbers_across_pipelined_batches() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.prom");
    let mut input: Vec<u8> = Vec::new();
    for i in 1..=12 {
        let line = match i {
            4 => "up{job=\"a\"} 1.5x 4000\n".to_owned(),
            7 => "up{job=\"a\"} 7 7000.5\n".to_owned(),
            11 => "up{job=\"b\",job=\"c\"} 11 11000\n".to_owned(),
            _ => format!(
                "up{{job=\"{}\"}} {i} {}\n",
                if i % 2 == 0 { "a" } else { "b" },
                i * 1000
            ),
        };
        input.extend_from_slice(line.as_bytes());
    }
    input.extend_from_slice(b"up{job=\"a\"} \xff 13000\n");
    std::fs::write(&file, &input).unwrap();
    let db = dir.path().join("db");
    let (code, out, err) = import(&db, &file, &["--format", "prometheus", "--batch", "2"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("imported 9 samples of 2 series from 13 lines"),
        "{out}"
    );
    assert!(out.contains("4 malformed lines skipped:"), "{out}");
    let numbers: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("line "))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(numbers, ["4", "7", "11", "13"], "{out}");
    assert!(out.contains("line 13: not valid UTF-8"), "{out}");
    let (code, exported, _) = strata(&["export", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(
        exported,
        "up{job=\"a\"}\t2000\t2.0\nup{job=\"a\"}\t6000\t6.0\nup{job=\"a\"}\t8000\t8.0\n\
         up{job=\"a\"}\t10000\t10.0\nup{job=\"a\"}\t12000\t12.0\n\
         up{job=\"b\"}\t1000\t1.0\nup{job=\"b\"}\t3000\t3.0\nup{job=\"b\"}\t5000\t5.0\n\
         up{job=\"b\"}\t9000\t9.0\n"
    );
}

#[test]
fn prometheus_and_influx_text_import_with_selection() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let prom = dir.path().join("scrape.prom");
    std::fs::write(
        &prom,
        "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} 10 1000\nhttp_requests_total{code=\"500\"} 1 1000\nhttp_requests_total{code=\"200\"} 15 2000\n",
    )
    .unwrap();
    let (code, out, err) = import(&db, &prom, &["--format", "prometheus"]);
    assert_eq!(code, 0, "{out}{err}");
    let influx = dir.path().join("cpu.lp");
    std::fs::write(&influx, "cpu,host=a usage=0.5,idle=99i 3000000000\n").unwrap();
    let (code, out, err) = import(&db, &influx, &["--format", "influx"]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, exported, err) = strata(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        "--match",
        r#"{__name__=~"http_.*",code!="500"}"#,
        "--start",
        "1970-01-01T00:00:01.5Z",
    ]);
    assert_eq!(code, 0, "{err}");
    // The metadata of the Prometheus text comes first (see
    // `prometheus_metadata_is_stored_exported_and_imported_back`).
    assert_eq!(
        exported,
        "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n\
         http_requests_total{code=\"200\"}\t2000\t15.0\n"
    );
    let (_, exported, _) = strata(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        "--match",
        "cpu_idle",
        "--format",
        "jsonl",
    ]);
    assert_eq!(
        exported,
        "{\"metric\":\"cpu_idle\",\"labels\":{\"host\":\"a\"},\"timestamp_ms\":3000,\"value\":\"99.0\"}\n"
    );
    // A bad selector is a usage error naming line and column.
    let (code, _, err) = strata(&["export", "--db", db.to_str().unwrap(), "--match", "up{"]);
    assert_eq!(code, 2);
    assert!(err.contains("1:4:"), "{err}");
}

/// Regression (issue 7): `--batch` with a huge value panicked (capacity
/// overflow) or aborted on allocation.
#[test]
fn batch_size_is_validated_by_the_argument_parser() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = ["18446744073709551615", "1048577", "0", "-1", "many"]
        .iter()
        .map(|batch| {
            (
                vec!["import", "--db", db, "--batch", batch],
                "from 1 to 1048576",
            )
        })
        .collect();
    assert_usage_errors(&cases);
    assert!(!dir.path().join("db").exists());
}

/// Regression (issue 7): lines were buffered whole without a limit (a
/// 100 MB line took 415 MB) and errors echoed the whole line.
#[test]
fn long_lines_are_skipped_with_their_number_and_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("input.prom");
    let long_value = "7".repeat(5_000);
    let long_line = format!("up{{job=\"{}\"}} 1 1000", "x".repeat(20_000));
    std::fs::write(
        &file,
        format!("up 1 1000\n{long_line}\nup {long_value}x 2000\nup 3 3000\n"),
    )
    .unwrap();
    let options = ["--format", "prometheus", "--max-line-bytes", "10000"];
    let (code, out, err) = import(&db, &file, &options);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("imported 2 samples"), "{out}");
    assert!(
        out.contains(
            "line 2: the line is 20017 bytes long, over the limit of 10000 bytes (--max-line-bytes)"
        ),
        "{out}"
    );
    assert!(
        out.contains("line 3: column 4: invalid value \"7777"),
        "{out}"
    );
    assert!(out.len() < 1_000, "errors quote little of the input: {out}");
}

/// Regression (issue 7): `--start` far in the future wrapped around and
/// exported everything.
#[test]
fn out_of_range_times_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("input.tsv");
    std::fs::write(&file, "up\t1000\t1\n").unwrap();
    let (code, out, err) = import(&db, &file, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let db = db.to_str().unwrap();
    assert_usage_errors(&[
        (
            vec!["export", "--db", db, "--start", "300000000-01-01T00:00:00Z"],
            "is out of range",
        ),
        (
            vec![
                "export",
                "--db",
                db,
                "--end",
                "9223372036854775807-01-01T00:00:00Z",
            ],
            "is out of range",
        ),
        (
            vec!["export", "--db", db, "--start", "99999999999999999999"],
            "is out of range",
        ),
    ]);
    let (code, out, _) = strata(&[
        "export",
        "--db",
        db,
        "--start",
        "292278994-08-17T07:12:55.807Z",
    ]);
    assert_eq!((code, out.as_str()), (0, ""));
}

// CSV and JSON lines

/// `strata export --db db --format format`, which must succeed.
fn export(db: &Path, format: &str) -> String {
    let (code, out, err) = strata(&["export", "--db", db.to_str().unwrap(), "--format", format]);
    assert_eq!(code, 0, "{err}");
    out
}

/// What `export --format csv` and `--format jsonl` write imports back with
/// `--format csv` / `--format jsonl` to the same series, timestamps and value
/// bits: NaN payloads (the staleness marker), ±Inf, -0.0, label values with
/// commas, quotes, backslashes and newlines, and a scrape with histograms.
#[test]
fn csv_and_jsonl_exports_import_back_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::new();
    let values = [
        "NaN",
        "NaN:0x7ff0000000000002",
        "NaN:0xfff8deadbeef0001",
        "+Inf",
        "-Inf",
        "-0.0",
        "5e-324",
        "1.7976931348623157e+308",
        "0.1",
    ];
    let series = [
        r#"a{k="comma, \"quote\" and \\ and \n",z="é"}"#,
        r#"b{k="v",x="1,2"}"#,
    ];
    for (s, series) in series.iter().enumerate() {
        for (i, value) in values.iter().enumerate() {
            let ts = i64::MIN + (i as i64) * 997 + s as i64;
            input.push_str(&format!("{series}\t{ts}\t{value}\n"));
        }
    }
    let slice = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/node-exporter-slice.tsv");
    for (name, tsv) in [
        ("edge", input),
        ("slice", std::fs::read_to_string(slice).unwrap()),
    ] {
        let original = dir.path().join(name);
        let file = dir.path().join(format!("{name}.tsv"));
        std::fs::write(&file, &tsv).unwrap();
        let (code, out, err) = import(&original, &file, &[]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(export(&original, "tsv"), tsv);
        for format in ["csv", "jsonl"] {
            let text = export(&original, format);
            let file = dir.path().join(format!("{name}.{format}"));
            std::fs::write(&file, &text).unwrap();
            let copy = dir.path().join(format!("{name}-{format}"));
            let (code, out, err) = import(&copy, &file, &["--format", format]);
            assert_eq!(code, 0, "{format}: {out}{err}");
            assert_eq!(export(&copy, "tsv"), tsv, "{format}");
            assert_eq!(export(&copy, format), text, "{format}");
        }
    }
}

/// Malformed CSV and JSON lines are reported with their numbers and the
/// other lines kept; the CSV header is skipped wherever it is.
#[test]
fn malformed_csv_and_jsonl_lines_are_reported_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    std::fs::write(
        &csv,
        "series,timestamp_ms,value\n\"up{job=\"\"a\"\"}\",1000,1\n\"up{job=\"a\"}\",2000,2\n\
         \"up\",3000\nseries,timestamp_ms,value\n\"up{job=\"\"a\"\"}\",4000,4\n\"up{job=\"\"a\"\"}\",5000,x\n",
    )
    .unwrap();
    let db = dir.path().join("csv");
    let (code, out, err) = import(&db, &csv, &["--format", "csv"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("imported 2 samples"), "{out}");
    assert!(out.contains("3 malformed lines"), "{out}");
    assert!(
        out.contains("line 3: column 10 (series): expected ','"),
        "{out}"
    );
    assert!(
        out.contains("line 4: expected 3 comma-separated fields"),
        "{out}"
    );
    assert!(
        out.contains("line 7: column 22 (value): invalid value \"x\""),
        "{out}"
    );
    assert_eq!(
        export(&db, "tsv"),
        "up{job=\"a\"}\t1000\t1.0\nup{job=\"a\"}\t4000\t4.0\n"
    );

    let jsonl = dir.path().join("in.jsonl");
    std::fs::write(
        &jsonl,
        "{\"metric\":\"up\",\"labels\":{\"job\":\"a\"},\"timestamp_ms\":1000,\"value\":\"1\"}\n\
         {\"metric\":\"up\",\"timestamp_ms\":2000}\n\
         {\"metric\":\"up\",\"labels\":{\"job\":\"a\"},\"timestamp_ms\":3000,\"value\":3,}\n\
         \n{\"value\":\"NaN:0x7ff0000000000002\",\"timestamp_ms\":4000,\"metric\":\"up\",\"labels\":{\"job\":\"a\"}}\n",
    )
    .unwrap();
    let db = dir.path().join("jsonl");
    let (code, out, err) = import(&db, &jsonl, &["--format", "jsonl"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("imported 2 samples"), "{out}");
    assert!(
        out.contains("line 2: column 36: member value is missing"),
        "{out}"
    );
    assert!(
        out.contains("line 3: column 67: expected a member name, found \"}\""),
        "{out}"
    );
    assert_eq!(
        export(&db, "tsv"),
        "up{job=\"a\"}\t1000\t1.0\nup{job=\"a\"}\t4000\tNaN:0x7ff0000000000002\n"
    );
}

/// Regression (issue 9): export listed a histogram's buckets in string
/// order (le="+Inf", "0.1", "1", "10", "2.5"); Prometheus lists them by
/// bound. Every format uses the same order.
#[test]
fn export_lists_buckets_by_numeric_le() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.tsv");
    let mut input = String::new();
    for le in ["10", "+Inf", "0.1", "1", "2.5"] {
        for job in ["b", "a"] {
            input.push_str(&format!("h_bucket{{job=\"{job}\",le=\"{le}\"}}\t1000\t1\n"));
        }
    }
    input.push_str("h_count{job=\"a\"}\t1000\t1\n");
    std::fs::write(&file, input).unwrap();
    let db = dir.path().join("db");
    let (code, out, err) = import(&db, &file, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let series: Vec<String> = export(&db, "tsv")
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    let mut expected: Vec<String> = Vec::new();
    for job in ["a", "b"] {
        for le in ["0.1", "1", "2.5", "10", "+Inf"] {
            expected.push(format!("h_bucket{{job=\"{job}\",le=\"{le}\"}}"));
        }
    }
    expected.push("h_count{job=\"a\"}".to_owned());
    assert_eq!(series, expected);
    let jsonl_les: Vec<String> = export(&db, "jsonl")
        .lines()
        .filter_map(|l| l.split("\"le\":\"").nth(1))
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        jsonl_les,
        ["0.1", "1", "2.5", "10", "+Inf", "0.1", "1", "2.5", "10", "+Inf"]
    );
}

/// Issue 9: Influx names that are not Prometheus names are rewritten by the
/// shared rule and imported, and the summary says so; booleans are 1 and 0;
/// string fields are reported by line, the line's numeric fields kept;
/// `--precision` sets the timestamp unit.
#[test]
fn influx_renames_string_fields_booleans_and_precision() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("http.lp");
    std::fs::write(
        &file,
        "http-requests,http-method=GET count=3i,ok=t,msg=\"slow, retried\" 1700000000\n\
         http-requests,http-method=POST count=1i,ok=false 1700000001\n\
         log msg=\"only text\",level=\"warn\" 1700000002\n",
    )
    .unwrap();
    let (code, out, err) = import(&db, &file, &["--format", "influx", "--precision", "s"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("imported 4 samples of 4 series from 3 lines"),
        "{out}"
    );
    assert!(
        out.contains(
            "3 names rewritten to valid Prometheus names (imported; rule in `strata import \
             --help`), the first: line 1: \"http-method\" imported as http_method\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "2 lines with string fields, left out (their numeric fields were imported):\n  \
             line 1: string field \"msg\" left out (a string cannot be a sample)\n  \
             line 3: 2 string fields left out, the first \"msg\" (a string cannot be a sample)\n"
        ),
        "{out}"
    );
    let (code, exported, err) = strata(&["export", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        exported,
        "http_requests_count{http_method=\"GET\"}\t1700000000000\t3.0\n\
         http_requests_count{http_method=\"POST\"}\t1700000001000\t1.0\n\
         http_requests_ok{http_method=\"GET\"}\t1700000000000\t1.0\n\
         http_requests_ok{http_method=\"POST\"}\t1700000001000\t0.0\n"
    );

    // The default precision is nanoseconds, as InfluxDB's.
    let ns = dir.path().join("ns.lp");
    std::fs::write(&ns, "m f=1 1700000000123456789\n").unwrap();
    let ns_db = dir.path().join("ns-db");
    let (code, out, err) = import(&ns_db, &ns, &["--format", "influx"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !out.contains("rewritten") && !out.contains("string"),
        "{out}"
    );
    let (_, exported, _) = strata(&["export", "--db", ns_db.to_str().unwrap()]);
    assert_eq!(exported, "m_f{}\t1700000000123\t1.0\n");

    let missing = dir.path().join("none");
    let missing = missing.to_str().unwrap();
    let input = file.to_str().unwrap();
    assert_usage_errors(&[
        (
            vec![
                "import",
                "--db",
                missing,
                "--format",
                "influx",
                "--precision",
                "m",
                input,
            ],
            "invalid value 'm' for '--precision <PRECISION>'",
        ),
        (
            vec!["import", "--db", missing, "--precision", "ms", input],
            "--precision applies to --format influx only",
        ),
        (
            vec![
                "import",
                "--db",
                missing,
                "--format",
                "parquet",
                "--precision",
                "s",
                input,
            ],
            "--precision applies to --format influx only",
        ),
    ]);
    assert!(!dir.path().join("none").exists());
}

/// Issue 9: a file whose first lines all fail in the `--format` asked for
/// gets a hint naming the format they look like.
#[test]
fn a_file_in_another_format_gets_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "# HELP up Up.\n# TYPE up gauge\nup{job=\"a\"} 1 1000\nup{job=\"b\"} 0 1000\n",
            "tsv",
            Some("prometheus"),
        ),
        (
            "cpu,host=a usage=0.5 1700000000000000000\n",
            "prometheus",
            Some("influx"),
        ),
        ("up{job=\"a\"}\t1000\t1\n", "influx", Some("tsv")),
        (
            "series,timestamp_ms,value\n\"up{job=\"\"a\"\"}\",1000,1\n",
            "tsv",
            Some("csv"),
        ),
        (
            "{\"metric\":\"up\",\"timestamp_ms\":1000,\"value\":\"1\"}\n",
            "prometheus",
            Some("jsonl"),
        ),
        ("<html>\n<body>\n", "tsv", None),
        // The first line imports: the later failures are just bad lines.
        ("up\t1000\t1\nup 1 2\n", "tsv", None),
    ];
    for (i, (content, format, hint)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("input{i}"));
        std::fs::write(&file, content).unwrap();
        let db = dir.path().join(format!("db{i}"));
        let (code, out, err) = import(&db, &file, &["--format", format]);
        assert_eq!(code, 1, "{content:?}: {out}{err}");
        match hint {
            Some(guess) => assert!(
                out.contains(&format!("this looks like {guess}: try --format {guess}\n")),
                "{content:?}: {out}"
            ),
            None => assert!(!out.contains("looks like"), "{content:?}: {out}"),
        }
    }
}

// Metric metadata

/// `# TYPE`, `# HELP` and `# UNIT` lines of Prometheus text are stored as
/// the families' metadata (`_created` and `_total` series find their
/// counter family), shown by `strata metadata`, written at the head of a
/// Tsv export and read back from it; a malformed `# TYPE` line is reported
/// with its number and the rest kept.
#[test]
fn prometheus_metadata_is_stored_exported_and_imported_back() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scrape.prom");
    std::fs::write(
        &input,
        "# HELP http_requests Requests served.\\nBy code \\\\ method.\n\
         # TYPE http_requests counter\n\
         http_requests_total{code=\"200\"} 1027 1395066363000\n\
         http_requests_created{code=\"200\"} 1395066000 1395066363000\n\
         # TYPE rpc_seconds histogram\n\
         # UNIT rpc_seconds seconds\n\
         rpc_seconds_bucket{le=\"+Inf\"} 3 1395066363000\n\
         # TYPE broken counters\n\
         # some other comment\n\
         up 1 1395066363000\n",
    )
    .unwrap();
    let db = dir.path().join("db");
    let (code, out, _) = import(&db, &input, &["--format", "prometheus"]);
    assert_eq!(code, 1, "one malformed line: {out}");
    assert!(out.contains("imported 4 samples"), "{out}");
    assert!(
        out.contains("metadata (# TYPE, # HELP, # UNIT) of 2 metric families"),
        "{out}"
    );
    assert!(
        out.contains("line 8: # TYPE \"broken\": unknown metric type \"counters\""),
        "{out}"
    );

    let db_arg = db.to_str().unwrap();
    let listing = "http_requests\tcounter\t\tRequests served.\\nBy code \\\\ method.\n\
                   rpc_seconds\thistogram\tseconds\t\n";
    let (code, out, err) = strata(&["metadata", "--db", db_arg]);
    assert_eq!((code, out.as_str()), (0, listing), "{err}");
    let (code, out, err) = strata(&["metadata", "--db", db_arg, "http_requests_created", "nope"]);
    assert_eq!(code, 1);
    assert!(out.starts_with("http_requests\tcounter"), "{out}");
    assert!(err.contains("no metadata for nope"), "{err}");

    let exported = export(&db, "tsv");
    assert!(
        exported.starts_with(
            "# HELP http_requests Requests served.\\nBy code \\\\ method.\n\
             # TYPE http_requests counter\n\
             # TYPE rpc_seconds histogram\n\
             # UNIT rpc_seconds seconds\n\
             http_requests_created{code=\"200\"}\t"
        ),
        "{exported}"
    );
    // Only the families of the exported series.
    let (code, only_up, _) = strata(&["export", "--db", db_arg, "--match", "up"]);
    assert_eq!(code, 0);
    assert!(!only_up.contains('#'), "{only_up}");

    let tsv = dir.path().join("export.tsv");
    std::fs::write(&tsv, &exported).unwrap();
    let again = dir.path().join("again");
    let (code, out, err) = import(&again, &tsv, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, listed, _) = strata(&["metadata", "--db", again.to_str().unwrap()]);
    assert_eq!(listed, listing);
    assert_eq!(export(&again, "tsv"), exported);
}
