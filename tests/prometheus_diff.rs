//! Differential test: strata's PromQL engine against a real Prometheus 2.42.
//!
//! The same TSV data is imported into a strata [`Db`] and, converted to
//! OpenMetrics text, into a Prometheus TSDB with `promtool tsdb
//! create-blocks-from openmetrics`. Every expression of
//! tests/prometheus/expressions.txt is then run as a range query by both,
//! at each [`Run`] (15 s and 60 s steps from a whole second, 15 s steps
//! landing exactly on sample timestamps), and the answers must agree: the
//! same series (label sets), the same timestamps, values equal within
//! [`RELATIVE_TOLERANCE`] (NaN equals NaN, infinities equal themselves), or
//! both engines rejecting the query.
//!
//! Before the expressions, a raw check makes sure Prometheus holds exactly
//! the samples of the file (timestamps to the millisecond, values bit for
//! bit), so that a difference is the engines' and not the loading's.
//!
//! Data: `STRATA_PROMDIFF_DATA` names a TSV or TSV.zst file, or `slice` for
//! the committed tests/data/node-exporter-10min.tsv.zst; by default the
//! full 24-minute capture ../shared/data/node-exporter-24min.tsv.zst when it
//! exists, the slice otherwise. `STRATA_PROMDIFF_FILTER=text` runs only the
//! expressions containing `text`; `STRATA_PROMDIFF_KEEP=1` keeps the work
//! directory and prints how to start its Prometheus again.
//!
//! Without `prometheus`/`promtool` the test says so on stderr and passes,
//! except under `CI=true`, where it fails (.ci/run installs them). See
//! tests/prometheus/README.md for the design decisions.

#[path = "prometheus/server.rs"]
mod server;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use strata::ingest::{format_value, parse_value, Format, Line, LineParser, LineReader};
use strata::{Db, Options, QueryOptions, QueryValue, SeriesKey, SeriesRef, SyncMode};

use server::{url_encode, Prometheus, Tools};

const EXPRESSIONS: &str = include_str!("prometheus/expressions.txt");
const SLICE: &str = "tests/data/node-exporter-10min.tsv.zst";
const FULL: &str = "../shared/data/node-exporter-24min.tsv.zst";

/// Values agree when `|a - b| <= RELATIVE_TOLERANCE * max(|a|, |b|)`.
const RELATIVE_TOLERANCE: f64 = 1e-9;

/// Samples per `Db::append_batch` call while loading.
const BATCH: usize = 1 << 16;

#[test]
fn strata_answers_as_prometheus_does() {
    let tools = match Tools::find() {
        Ok(tools) => tools,
        Err(why) => {
            let missing = format!("Prometheus is not installed ({why})");
            assert!(
                !on_ci(),
                "prometheus_diff: {missing}; under CI=true it is required (.ci/run installs it)"
            );
            // Past the test harness' capture, so that the skip is seen.
            let _ = writeln!(
                std::io::stderr(),
                "prometheus_diff: SKIPPED, {missing}; `apt-get install prometheus` \
                 (Debian 12: 2.42) and run again"
            );
            return;
        }
    };
    assert_eq!(
        tools.major_version(),
        Some(2),
        "{}: this test targets Prometheus 2.x semantics (closed range selectors); \
         point PROMETHEUS and PROMTOOL at 2.42 binaries",
        tools.version
    );
    let data = DataChoice::from_env();
    let filter = std::env::var("STRATA_PROMDIFF_FILTER").ok();
    let work = tempfile::tempdir().unwrap();
    println!("{}", tools.version);
    println!("data: {}", data.path.display());

    let started = Instant::now();
    let om = work.path().join("data.om");
    let loaded = load(&data.path, &work.path().join("strata"), &om);
    println!(
        "loaded {} samples of {} series, {} .. {} ms, into strata in {:.1} s{}",
        loaded.samples,
        loaded.series,
        loaded.min_ms,
        loaded.max_ms,
        started.elapsed().as_secs_f64(),
        if loaded.dropped_non_canonical_nan > 0 {
            format!(
                "; {} samples with a non-canonical NaN (stale markers) left out of both: \
                 OpenMetrics cannot carry them",
                loaded.dropped_non_canonical_nan
            )
        } else {
            String::new()
        }
    );
    let started = Instant::now();
    let tsdb = work.path().join("prometheus-data");
    if let Err(e) = tools.create_blocks(&om, &tsdb) {
        panic!("{e}");
    }
    std::fs::remove_file(&om).unwrap();
    let prometheus = Prometheus::start(&tools, &tsdb, work.path());
    println!(
        "promtool blocks built and Prometheus ready on port {} in {:.1} s",
        prometheus.port,
        started.elapsed().as_secs_f64()
    );
    let keep = std::env::var_os("STRATA_PROMDIFF_KEEP").is_some();
    if keep {
        let kept = work.keep();
        let _ = writeln!(
            std::io::stderr(),
            "prometheus_diff: work directory kept: {}\n  start its Prometheus again with: {}",
            kept.display(),
            prometheus.command_line
        );
    }

    check_raw_samples(&prometheus, &loaded);

    let runs = Run::all(&loaded);
    let mut report = Report::default();
    for expression in expressions() {
        if filter.as_deref().is_some_and(|f| !expression.contains(f)) {
            continue;
        }
        let parsed = strata::parse_expr(expression);
        for run in &runs {
            let t = Instant::now();
            let theirs = prometheus_answer(&prometheus, expression, run);
            report.prometheus_time += t.elapsed();
            let t = Instant::now();
            let ours = match &parsed {
                Ok(expr) => strata_answer(&loaded.db, expr, run),
                Err(e) => Err(format!("strata cannot parse it: {e}")),
            };
            report.strata_time += t.elapsed();
            let verdict = compare(&theirs, &ours);
            report.record(expression, run, verdict);
        }
    }
    report.print(data.default_data && filter.is_none());
    drop(prometheus);
    let failed = report.failures(data.default_data && filter.is_none());
    let summary = format!(
        "prometheus_diff: {} of {} expression × run comparisons agree ({} expressions × {} runs)",
        report.total - failed,
        report.total,
        report.expressions(),
        runs.len()
    );
    let _ = writeln!(std::io::stderr(), "{summary}");
    assert_eq!(failed, 0, "{summary}; the differences are printed above");
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The expressions of tests/prometheus/expressions.txt.
fn expressions() -> impl Iterator<Item = &'static str> {
    EXPRESSIONS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Which data file the test loads.
struct DataChoice {
    path: PathBuf,
    /// The committed slice or the full capture: the expressions are known
    /// to return something on them, so an answer empty on both sides fails.
    default_data: bool,
}

impl DataChoice {
    fn from_env() -> DataChoice {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        match std::env::var_os("STRATA_PROMDIFF_DATA") {
            Some(v) if v == "slice" => DataChoice {
                path: root.join(SLICE),
                default_data: true,
            },
            Some(path) => DataChoice {
                path: PathBuf::from(path),
                default_data: false,
            },
            None => {
                let full = root.join(FULL);
                DataChoice {
                    path: if full.exists() {
                        full
                    } else {
                        root.join(SLICE)
                    },
                    default_data: true,
                }
            }
        }
    }
}

/// Everything loaded from the data file.
struct Loaded {
    db: Db,
    samples: usize,
    series: usize,
    min_ms: i64,
    max_ms: i64,
    dropped_non_canonical_nan: usize,
    /// The file's first series: its samples, kept for the raw check and to
    /// place steps exactly on sample timestamps.
    first_series: SeriesKey,
    /// Samples of the first series and of every `up` series, by
    /// [`label_text`].
    kept: BTreeMap<String, Vec<(i64, f64)>>,
}

/// Reads the canonical TSV `path` (zstd-compressed when it ends in `.zst`)
/// into a new strata database in `db_dir`, flushed to segments, and writes
/// the same samples as OpenMetrics text to `om`.
fn load(path: &Path, db_dir: &Path, om: &Path) -> Loaded {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let input: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "zst") {
        Box::new(BufReader::new(zstd::Decoder::new(file).unwrap()))
    } else {
        Box::new(BufReader::new(file))
    };
    let db = Db::open(
        db_dir,
        Options {
            sync: SyncMode::Never,
            flush_complete_partitions: false,
            out_of_order_window_ms: i64::MAX,
            ..Options::default()
        },
    )
    .unwrap();
    let mut out = BufWriter::new(File::create(om).unwrap());
    let parser = LineParser::new(Format::Tsv, 0);
    let mut reader = LineReader::new(input, 1 << 20);
    let mut parsed = Vec::new();
    let mut pending: Vec<(SeriesRef, i64, f64)> = Vec::with_capacity(BATCH);
    let mut first_series = None;
    let mut kept: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    // The series of the previous sample, its handle, its OpenMetrics text
    // and whether its samples are kept: the file is sorted by series, so
    // this saves a lookup and a formatting per sample.
    let mut current: Option<(SeriesKey, SeriesRef, String, bool)> = None;
    let (mut samples, mut dropped, mut min_ms, mut max_ms) = (0, 0, i64::MAX, i64::MIN);
    while let Some((line_no, line)) = reader.next_line().unwrap() {
        let Line::Complete(raw) = line else {
            panic!("{}: line {line_no} is too long", path.display());
        };
        let text = std::str::from_utf8(raw).unwrap();
        parsed.clear();
        parser
            .parse_line(line_no, text, &mut parsed)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for sample in parsed.drain(..) {
            let (key, ts, value) = (sample.key, sample.timestamp_ms, sample.value);
            if value.is_nan() && format_value(value) != "NaN" {
                dropped += 1;
                continue;
            }
            let (key, series, om_key, keep) = match &mut current {
                Some(same) if same.0 == key => same,
                slot => {
                    let first = first_series.get_or_insert_with(|| key.clone());
                    let keep = *first == key || key.metric() == "up";
                    let series = db.series(&key).unwrap();
                    let om_key = key.to_string();
                    slot.insert((key, series, om_key, keep))
                }
            };
            if *keep {
                kept.entry(label_text(
                    key.labels().iter().map(|l| (&*l.name, &*l.value)),
                ))
                .or_default()
                .push((ts, value));
            }
            writeln!(
                out,
                "{om_key} {} {}",
                format_value(value),
                openmetrics_time(ts)
            )
            .unwrap();
            pending.push((series.clone(), ts, value));
            if pending.len() == BATCH {
                append(&db, &mut pending);
            }
            samples += 1;
            min_ms = min_ms.min(ts);
            max_ms = max_ms.max(ts);
        }
    }
    append(&db, &mut pending);
    writeln!(out, "# EOF").unwrap();
    out.flush().unwrap();
    db.flush().unwrap();
    let series = db.stats().head_series;
    Loaded {
        db,
        samples,
        series,
        min_ms,
        max_ms,
        dropped_non_canonical_nan: dropped,
        first_series: first_series.unwrap_or_else(|| panic!("{}: no samples", path.display())),
        kept,
    }
}

fn append(db: &Db, pending: &mut Vec<(SeriesRef, i64, f64)>) {
    let batch: Vec<(&SeriesRef, i64, f64)> = pending.iter().map(|(s, t, v)| (s, *t, *v)).collect();
    let outcome = db.append_batch(&batch).unwrap();
    assert!(
        outcome.rejected.is_empty(),
        "strata rejected samples: {:?}",
        outcome.rejected.first()
    );
    pending.clear();
}

/// A Unix-millisecond time as OpenMetrics seconds that promtool reads back
/// as exactly `ms`: its parser computes `int64(seconds * 1000)`, which
/// truncates, so `1.001` would come back as 1000 ms. A quarter millisecond
/// more, away from zero, survives both the binary rounding of the seconds
/// and the truncation toward zero.
fn openmetrics_time(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    let text = format!("{sign}{}.{:03}25", abs / 1000, abs % 1000);
    let seconds: f64 = text.parse().unwrap();
    assert_eq!((seconds * 1000.0) as i64, ms, "{text} would not read back");
    text
}

/// A time for Prometheus' HTTP API: seconds, to the millisecond.
fn api_time(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

/// A label set as text, sorted by name, the same for both engines:
/// `{__name__="up", job="node"}`.
fn label_text<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut sorted: Vec<_> = labels.into_iter().collect();
    sorted.sort();
    let mut text = String::from("{");
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        write!(text, "{name}={value:?}").unwrap();
    }
    text.push('}');
    text
}

/// Prometheus must hold exactly the samples of the file: checked for the
/// file's first series and the `up` series, read back raw with a range
/// selector covering the whole data.
fn check_raw_samples(prometheus: &Prometheus, loaded: &Loaded) {
    let span = loaded.max_ms - loaded.min_ms + 1;
    let mut answer = BTreeMap::new();
    for selector in [loaded.first_series.to_string(), "up".to_owned()] {
        let query = format!("{selector}[{span}ms]");
        let path = format!(
            "/api/v1/query?query={}&time={}",
            url_encode(&query),
            api_time(loaded.max_ms)
        );
        match parse_prometheus(prometheus, &path) {
            Ok(series) => answer.extend(series),
            Err(e) => panic!("raw check {query}: {e}"),
        }
    }
    let answer = Answer { series: answer };
    let kept = Answer {
        series: loaded.kept.clone(),
    };
    if let Verdict::Differ(why) = compare(&Ok(answer), &Ok(kept)) {
        panic!(
            "Prometheus does not hold the file's samples (left: Prometheus, right: the file); \
             the OpenMetrics conversion is wrong:\n{why}"
        );
    }
}

/// One setting of a range query's steps.
struct Run {
    name: &'static str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
}

impl Run {
    /// 15 s and 60 s steps from the first whole second of the data to its
    /// last; and 15 s steps starting on a sample of the first series (every
    /// series of its target is scraped at the same offset, so steps meet
    /// samples exactly: the closed ends of lookback and range windows).
    fn all(loaded: &Loaded) -> Vec<Run> {
        let start_ms = loaded.min_ms.div_euclid(1000) * 1000 + 1000;
        let end_ms = loaded.max_ms.div_euclid(1000) * 1000;
        let first = label_text(
            loaded
                .first_series
                .labels()
                .iter()
                .map(|l| (&*l.name, &*l.value)),
        );
        let on_sample = loaded.kept[&first]
            .iter()
            .map(|&(t, _)| t)
            .find(|&t| t >= start_ms && t < end_ms)
            .unwrap_or(start_ms);
        vec![
            Run {
                name: "15s",
                start_ms,
                end_ms,
                step_ms: 15_000,
            },
            Run {
                name: "60s",
                start_ms,
                end_ms,
                step_ms: 60_000,
            },
            Run {
                name: "15s@sample",
                start_ms: on_sample,
                end_ms,
                step_ms: 15_000,
            },
        ]
    }
}

/// A range query's answer: points by series.
struct Answer {
    series: BTreeMap<String, Vec<(i64, f64)>>,
}

fn prometheus_answer(
    prometheus: &Prometheus,
    expression: &str,
    run: &Run,
) -> Result<Answer, String> {
    let path = format!(
        "/api/v1/query_range?query={}&start={}&end={}&step={}",
        url_encode(expression),
        api_time(run.start_ms),
        api_time(run.end_ms),
        api_time(run.step_ms)
    );
    parse_prometheus(prometheus, &path).map(|series| Answer { series })
}

/// GETs a query from Prometheus' API: its matrix or scalar result, or the
/// error it reports. Failing to reach it at all fails the test.
fn parse_prometheus(
    prometheus: &Prometheus,
    path: &str,
) -> Result<BTreeMap<String, Vec<(i64, f64)>>, String> {
    let (status, body) = prometheus.get(path).unwrap_or_else(|e| {
        panic!(
            "GET {path} from Prometheus failed: {e}; its log:\n{}",
            prometheus.log_text()
        )
    });
    let json: Json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {path}: HTTP {status}, not JSON ({e}): {body}"));
    if json["status"] != "success" {
        return Err(format!(
            "{}: {}",
            json["errorType"].as_str().unwrap_or("?"),
            json["error"].as_str().unwrap_or("?")
        ));
    }
    let data = &json["data"];
    let point = |p: &Json| -> (i64, f64) {
        let t = p[0].as_f64().unwrap_or_else(|| panic!("bad point {p}"));
        let v = p[1].as_str().unwrap_or_else(|| panic!("bad point {p}"));
        ((t * 1000.0).round() as i64, parse_value(v).unwrap())
    };
    let mut out = BTreeMap::new();
    match data["resultType"].as_str() {
        Some("matrix") => {
            for series in data["result"].as_array().unwrap() {
                let labels = series["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str().unwrap()));
                let points = series["values"].as_array().unwrap().iter().map(point);
                out.insert(label_text(labels), points.collect());
            }
        }
        Some("scalar") => {
            out.insert(label_text([]), vec![point(&data["result"])]);
        }
        other => panic!("GET {path}: unexpected result type {other:?}"),
    }
    Ok(out)
}

/// strata's answer to `expr` over `run`, or its error; a panic of the
/// engine is an error too, so that one bad expression does not hide the
/// others' results.
fn strata_answer(db: &Db, expr: &strata::Expr, run: &Run) -> Result<Answer, String> {
    // The panic's message and place, kept by a quiet hook (the default one
    // would print it, with a backtrace, for every failing expression).
    static PANIC: Mutex<Option<String>> = Mutex::new(None);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        *PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.to_string());
    }));
    let evaluated = catch_unwind(AssertUnwindSafe(|| {
        strata::range_query(
            db,
            expr,
            run.start_ms,
            run.end_ms,
            run.step_ms,
            &QueryOptions::default(),
        )
    }));
    std::panic::set_hook(default_hook);
    let value = match evaluated {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => {
            let message = PANIC.lock().unwrap_or_else(|e| e.into_inner()).take();
            return Err(format!(
                "strata PANICKED {}",
                message.unwrap_or_default().replace('\n', " ")
            ));
        }
    };
    let QueryValue::Matrix(result) = value else {
        return Err(format!("strata answered a range query with {value:?}"));
    };
    let mut series = BTreeMap::new();
    for s in result {
        let labels = label_text(s.labels.iter().map(|l| (&*l.name, &*l.value)));
        let points = s
            .samples
            .iter()
            .map(|p| (p.timestamp_ms, p.value))
            .collect();
        if series.insert(labels.clone(), points).is_some() {
            return Err(format!(
                "strata answered two series with the labels {labels}"
            ));
        }
    }
    Ok(Answer { series })
}

/// How one expression × run came out.
enum Verdict {
    Agree {
        series: usize,
        points: usize,
        /// Points equal within the tolerance but not bit for bit.
        inexact: usize,
    },
    /// Both answers are empty: true, but it tests nothing.
    BothEmpty,
    BothRejected {
        prometheus: String,
        strata: String,
    },
    Differ(String),
}

fn same_value(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    a.is_finite() && b.is_finite() && (a - b).abs() <= RELATIVE_TOLERANCE * a.abs().max(b.abs())
}

/// Compares Prometheus' answer (`theirs`) with strata's (`ours`).
fn compare(theirs: &Result<Answer, String>, ours: &Result<Answer, String>) -> Verdict {
    let (theirs, ours) = match (theirs, ours) {
        (Ok(t), Ok(o)) => (t, o),
        (Err(t), Err(o)) => {
            return Verdict::BothRejected {
                prometheus: t.clone(),
                strata: o.clone(),
            }
        }
        (Err(t), Ok(o)) => {
            return Verdict::Differ(format!(
                "Prometheus rejects it ({t}); strata answers {} series",
                o.series.len()
            ))
        }
        (Ok(t), Err(o)) => {
            return Verdict::Differ(format!(
                "strata fails ({o}); Prometheus answers {} series",
                t.series.len()
            ))
        }
    };
    let mut why = String::new();
    let only = |a: &Answer, b: &Answer| -> Vec<String> {
        a.series
            .iter()
            .filter(|(k, _)| !b.series.contains_key(*k))
            .map(|(k, v)| format!("{k} ({} points)", v.len()))
            .collect()
    };
    for (side, missing) in [
        ("only Prometheus", only(theirs, ours)),
        ("only strata", only(ours, theirs)),
    ] {
        if !missing.is_empty() {
            writeln!(why, "{} series {side} answers, e.g.:", missing.len()).unwrap();
            for m in missing.iter().take(3) {
                writeln!(why, "    {m}").unwrap();
            }
        }
    }
    let (mut differing, mut first) = (0, None);
    for (labels, t_points) in &theirs.series {
        let Some(o_points) = ours.series.get(labels) else {
            continue;
        };
        if let Some(diff) = first_difference(t_points, o_points) {
            differing += 1;
            first.get_or_insert_with(|| format!("    {labels}: {diff}"));
        }
    }
    if let Some(first) = first {
        writeln!(why, "{differing} common series differ; the first:\n{first}").unwrap();
    }
    if !why.is_empty() {
        return Verdict::Differ(why.trim_end().to_owned());
    }
    let points: usize = theirs.series.values().map(Vec::len).sum();
    if points == 0 {
        return Verdict::BothEmpty;
    }
    let inexact = theirs
        .series
        .iter()
        .flat_map(|(labels, t_points)| t_points.iter().zip(&ours.series[labels]))
        .filter(|((_, t), (_, o))| t != o && !(t.is_nan() && o.is_nan()))
        .count();
    Verdict::Agree {
        series: theirs.series.len(),
        points,
        inexact,
    }
}

/// The first point where two series differ, described.
fn first_difference(theirs: &[(i64, f64)], ours: &[(i64, f64)]) -> Option<String> {
    for i in 0..theirs.len().max(ours.len()) {
        match (theirs.get(i), ours.get(i)) {
            (Some(&(tt, tv)), Some(&(ot, ov))) if tt == ot && same_value(tv, ov) => continue,
            (Some(&(tt, tv)), Some(&(ot, ov))) if tt == ot => {
                return Some(format!(
                    "at {tt} ms (point {i}) Prometheus {tv:?}, strata {ov:?} (relative difference {:.3e})",
                    (tv - ov).abs() / tv.abs().max(ov.abs())
                ))
            }
            (t, o) => {
                return Some(format!(
                    "point {i}: Prometheus {}, strata {} ({} vs {} points)",
                    describe(t),
                    describe(o),
                    theirs.len(),
                    ours.len()
                ))
            }
        }
    }
    None
}

fn describe(point: Option<&(i64, f64)>) -> String {
    point.map_or_else(|| "none".to_owned(), |(t, v)| format!("{v:?} at {t} ms"))
}

/// The verdicts, printed as a table and counted.
#[derive(Default)]
struct Report {
    lines: Vec<(String, &'static str, Verdict)>,
    total: usize,
    prometheus_time: Duration,
    strata_time: Duration,
}

impl Report {
    fn record(&mut self, expression: &str, run: &Run, verdict: Verdict) {
        self.total += 1;
        self.lines.push((expression.to_owned(), run.name, verdict));
    }

    fn expressions(&self) -> usize {
        let mut names: Vec<_> = self.lines.iter().map(|(e, _, _)| e).collect();
        names.dedup();
        names.len()
    }

    fn is_failure(verdict: &Verdict, empty_fails: bool) -> bool {
        match verdict {
            Verdict::Differ(_) => true,
            Verdict::BothEmpty => empty_fails,
            Verdict::Agree { .. } | Verdict::BothRejected { .. } => false,
        }
    }

    fn failures(&self, empty_fails: bool) -> usize {
        self.lines
            .iter()
            .filter(|(_, _, v)| Self::is_failure(v, empty_fails))
            .count()
    }

    fn print(&self, empty_fails: bool) {
        for (expression, run, verdict) in &self.lines {
            let mark = if Self::is_failure(verdict, empty_fails) {
                "DIFF"
            } else {
                "ok"
            };
            let what = match verdict {
                Verdict::Agree {
                    series,
                    points,
                    inexact: 0,
                } => format!("{series} series, {points} points"),
                Verdict::Agree {
                    series,
                    points,
                    inexact,
                } => format!("{series} series, {points} points ({inexact} within tolerance)"),
                Verdict::BothEmpty if empty_fails => "both empty: tests nothing".to_owned(),
                Verdict::BothEmpty => "both empty".to_owned(),
                Verdict::BothRejected { .. } => "both reject it".to_owned(),
                Verdict::Differ(_) => "differ".to_owned(),
            };
            println!("{mark:4} {run:10} {what:26} {expression}");
            match verdict {
                Verdict::Differ(why) => println!("    {why}"),
                Verdict::BothRejected { prometheus, strata } => {
                    println!("    Prometheus: {prometheus}\n    strata: {strata}")
                }
                _ => {}
            }
        }
        let (points, inexact) = self
            .lines
            .iter()
            .filter_map(|(_, _, v)| match v {
                Verdict::Agree {
                    points, inexact, ..
                } => Some((*points, *inexact)),
                _ => None,
            })
            .fold((0, 0), |(p, i), (vp, vi)| (p + vp, i + vi));
        println!(
            "{points} points agree, {inexact} of them within the tolerance but not bit for bit; \
             Prometheus answered in {:.2} s (HTTP and JSON included), strata in {:.2} s",
            self.prometheus_time.as_secs_f64(),
            self.strata_time.as_secs_f64()
        );
    }
}

/// The harness' own pieces, checked without Prometheus.
mod harness {
    use super::*;

    fn answer(series: &[(&str, &[(i64, f64)])]) -> Result<Answer, String> {
        Ok(Answer {
            series: series
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        })
    }

    #[test]
    fn values_agree_within_the_relative_tolerance_only() {
        assert!(same_value(f64::NAN, f64::NAN));
        assert!(same_value(f64::INFINITY, f64::INFINITY));
        assert!(same_value(0.0, -0.0));
        assert!(same_value(1.0, 1.0 + 0.5e-9));
        assert!(!same_value(1.0, 1.0 + 2e-9));
        // A relative bound: at 1e6 an absolute 1e-4 is 1e-10 relative.
        assert!(same_value(1e6, 1e6 + 1e-4));
        assert!(!same_value(f64::NAN, 0.0));
        assert!(!same_value(f64::INFINITY, f64::NEG_INFINITY));
        // Infinity is not "within tolerance" of a finite number, although
        // inf - x <= 1e-9 * inf holds.
        assert!(!same_value(f64::INFINITY, 1e300));
        // No absolute slack at zero: float noise is reported.
        assert!(!same_value(0.0, 1e-17));
    }

    #[test]
    fn comparison_names_the_first_differing_point_and_missing_series() {
        let a = [(0, 1.0), (15_000, 2.0)];
        let agree = compare(&answer(&[("{a}", &a)]), &answer(&[("{a}", &a)]));
        assert!(matches!(
            agree,
            Verdict::Agree {
                series: 1,
                points: 2,
                inexact: 0
            }
        ));
        let close = [(0, 1.0), (15_000, 2.0 + 1e-12)];
        let agree = compare(&answer(&[("{a}", &a)]), &answer(&[("{a}", &close)]));
        assert!(matches!(
            agree,
            Verdict::Agree {
                series: 1,
                points: 2,
                inexact: 1
            }
        ));

        let b = [(0, 1.0), (15_000, 2.5)];
        let Verdict::Differ(why) = compare(&answer(&[("{a}", &a)]), &answer(&[("{a}", &b)])) else {
            panic!("a different value must differ");
        };
        assert!(
            why.contains("at 15000 ms (point 1) Prometheus 2.0, strata 2.5"),
            "{why}"
        );

        let c = [(0, 1.0)];
        let Verdict::Differ(why) = compare(&answer(&[("{a}", &a)]), &answer(&[("{a}", &c)])) else {
            panic!("a missing point must differ");
        };
        assert!(
            why.contains("point 1: Prometheus 2.0 at 15000 ms, strata none"),
            "{why}"
        );

        let Verdict::Differ(why) = compare(
            &answer(&[("{a}", &a), ("{b}", &a)]),
            &answer(&[("{a}", &a), ("{c}", &a)]),
        ) else {
            panic!("different series must differ");
        };
        assert!(why.contains("1 series only Prometheus answers"), "{why}");
        assert!(why.contains("{b} (2 points)"), "{why}");
        assert!(why.contains("1 series only strata answers"), "{why}");

        assert!(matches!(
            compare(&answer(&[]), &answer(&[])),
            Verdict::BothEmpty
        ));
        assert!(matches!(
            compare(&Err("bad".into()), &Err("worse".into())),
            Verdict::BothRejected { .. }
        ));
        assert!(matches!(
            compare(&Err("bad".into()), &answer(&[])),
            Verdict::Differ(_)
        ));
    }

    #[test]
    fn openmetrics_times_read_back_as_the_same_millisecond() {
        // 1001 ms: 1.001 * 1000 is 1000.9999999999999 in binary floating
        // point, which truncates to 1000; the quarter millisecond keeps it
        // on 1001.
        assert_eq!(openmetrics_time(1_001), "1.00125");
        assert_eq!(openmetrics_time(1_796_021_460_996), "1796021460.99625");
        assert_eq!(openmetrics_time(0), "0.00025");
        assert_eq!(openmetrics_time(-1), "-0.00125");
        assert_eq!(openmetrics_time(-1_500), "-1.50025");
        // Every millisecond of a small range, where binary rounding bites
        // (the function asserts the read-back itself).
        for ms in -5_000..5_000 {
            openmetrics_time(ms);
        }
    }

    #[test]
    fn label_sets_print_sorted_and_quoted() {
        assert_eq!(
            label_text([("job", "a\"b"), ("__name__", "up")]),
            r#"{__name__="up", job="a\"b"}"#
        );
        assert_eq!(label_text([]), "{}");
        assert_eq!(
            url_encode("up{a=\"b c\"}[5m]"),
            "up%7Ba%3D%22b%20c%22%7D%5B5m%5D"
        );
        assert_eq!(api_time(1_796_022_018_509), "1796022018.509");
        assert_eq!(api_time(15_000), "15");
    }

    #[test]
    fn the_expression_file_has_at_least_forty_expressions_that_strata_parses() {
        let all: Vec<_> = expressions().collect();
        assert!(all.len() >= 40, "{} expressions", all.len());
        for expression in all {
            if let Err(e) = strata::parse_expr(expression) {
                panic!("{expression}: {e}");
            }
        }
    }
}
