//! `strata query`: evaluates a PromQL expression on a data directory or a
//! segment file and prints the result as a table, CSV, the Prometheus
//! HTTP API's JSON, or a chart.
//!
//! Every time argument is resolved against one reading of the clock, so
//! `--start now-1h --end now` spans exactly one hour. Errors after the
//! arguments are parsed (a bad expression, a failed evaluation, unreadable
//! data) exit 1; with `--format json` they are printed as the Prometheus
//! error body on standard output, otherwise on standard error.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use strata::ast::{AggOp, BinOp, Function, ValueType};
use strata::{Error, Expr, QueryError, QueryOptions, QueryValue, TierChoice};

use super::plot::{self, Unit};
use super::render::{self, Format};
use super::source::Source;
use super::time::{describe_time, now_ms, parse_duration, parse_time_at, TimeError};

const EXAMPLES: &str = "\
Examples:
  strata query --db DIR 'up'
  strata query --db DIR 'sum by (route) (rate(gateway_requests_total[5m]))' --time 2026-12-01T01:00:00Z
  strata query --db DIR 'histogram_quantile(0.95, sum by (le) (rate(gateway_request_duration_seconds_bucket[5m])))' \\
      --start now-3h --end now --step 1m --plot
  strata query --db DIR 'max_over_time(spawn_queue_depth[1h])' --format json | jq .
  strata query --db DIR/segments/00000000000000000001.seg 'count by (__name__) ({__name__=~\".+\"})'

Times: RFC 3339 (2026-12-01T00:00:00Z, 2026-12-01T01:00:00+01:00), Unix seconds
(1796083200, fractions allowed), Unix milliseconds (1796083200000: a bare number of
10^11 or more is milliseconds; or give a unit: 1796083200000ms, 1796083200s), now,
now-1h, now+5m. Durations: 15s, 1m, 1h30m, 500ms, or seconds (15, 0.5).";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct QueryArgs {
    /// Data directory (opened read-only: works beside a running writer,
    /// seeing the data as of the open) or a single segment file (*.seg).
    #[arg(long)]
    db: PathBuf,
    /// The PromQL expression (it may start with `-`: '-x + 1').
    #[arg(allow_hyphen_values = true)]
    expr: String,
    /// Evaluation time of an instant query. Default: now (when the result
    /// is empty because the data is older, a hint says where it ends).
    #[arg(long, value_parser = check_time, conflicts_with_all = ["start", "end"])]
    time: Option<String>,
    /// Start of a range query: the result has a point every --step from
    /// here to --end.
    #[arg(long, value_parser = check_time)]
    start: Option<String>,
    /// End of a range query. Default: now.
    #[arg(long, value_parser = check_time, requires = "start")]
    end: Option<String>,
    /// Step of a range query. Default: the range divided by 250, rounded
    /// up to whole seconds (at least 1 s).
    #[arg(long, value_parser = parse_duration, requires = "start")]
    step: Option<i64>,
    /// Output format [default: table].
    #[arg(long, value_enum, conflicts_with = "plot")]
    format: Option<Format>,
    /// Draw the result as a chart in the terminal (width: $COLUMNS, else
    /// 100). Without --start, plots the hour before --time (or now).
    #[arg(long)]
    plot: bool,
    /// Give up after this long (a Prometheus duration or seconds).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    timeout: i64,
    /// Most samples the query may hold in memory at once.
    #[arg(long, default_value_t = 50_000_000)]
    max_samples: usize,
    /// How far back an instant selector looks for a sample (Prometheus'
    /// --query.lookback-delta).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    lookback: i64,
    /// Where range functions read samples: `auto` (the coarsest rollup
    /// tier that answers a call exactly, else raw data), `raw`, or a
    /// bucket resolution such as `1m` or `1h` (from that tier where it is
    /// stored, else computed from finer data). Only rate, increase,
    /// delta, *_over_time (count, sum, avg, min, max, last) and
    /// absent_over_time over a range selector whose range and every
    /// window end are multiples of the resolution use buckets.
    #[arg(long, default_value = "auto", value_parser = parse_tier)]
    tier: TierChoice,
}

/// Parses `--tier`: auto, raw, or a resolution.
fn parse_tier(text: &str) -> Result<TierChoice, String> {
    match text {
        "auto" => Ok(TierChoice::Auto),
        "raw" => Ok(TierChoice::Raw),
        _ => match parse_duration(text) {
            Ok(ms) if ms > 0 => Ok(TierChoice::Resolution(ms)),
            Ok(_) => Err(format!(
                "the tier resolution must be positive, got {text:?}"
            )),
            Err(e) => Err(format!(
                "expected auto, raw or a resolution such as 1m: {e}"
            )),
        },
    }
}

/// Validates a time argument; it is resolved later against one clock
/// reading.
fn check_time(text: &str) -> Result<String, TimeError> {
    parse_time_at(text, now_ms()).map(|_| text.to_owned())
}

/// The times of one query, resolved.
#[derive(Debug, Clone, Copy)]
enum When {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

/// Why a query produced no result: Prometheus' error type and the text.
pub struct Failure {
    pub error_type: &'static str,
    pub message: String,
}

impl Failure {
    fn bad_data(message: String) -> Failure {
        Failure {
            error_type: "bad_data",
            message,
        }
    }
}

impl From<QueryError> for Failure {
    fn from(error: QueryError) -> Failure {
        let error_type = match &error {
            QueryError::Storage(_) => "internal",
            QueryError::DeadlineExceeded { .. } => "timeout",
            QueryError::Cancelled => "canceled",
            QueryError::BadRange(_) | QueryError::TooManySteps { .. } => "bad_data",
            _ => "execution",
        };
        Failure {
            error_type,
            message: error.to_string(),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            error_type: "internal",
            message: error.to_string(),
        }
    }
}

pub fn run(args: &QueryArgs) -> Result<ExitCode, Error> {
    let format = args.format.unwrap_or(Format::Table);
    let now = now_ms();
    let outcome = resolve(args, now).and_then(|when| {
        let expr = strata::parse_expr(&args.expr).map_err(|e| {
            Failure::bad_data(if format == Format::Json {
                // Prometheus's wording around our message.
                format!(
                    "invalid parameter \"query\": {}:{}: parse error: {}",
                    e.line, e.column, e.message
                )
            } else {
                format!("parse error at {e}{}", caret(&args.expr, e.line, e.column))
            })
        })?;
        let source = Source::open(&args.db)?;
        let options = QueryOptions {
            lookback_ms: args.lookback,
            max_samples: args.max_samples,
            deadline: Instant::now()
                .checked_add(Duration::from_millis(args.timeout.unsigned_abs())),
            tier: args.tier,
            ..QueryOptions::default()
        };
        let value = match when {
            When::Instant(time) => {
                strata::instant_query(source.queryable(), &expr, time, &options)?
            }
            When::Range { start, end, step } => {
                strata::range_query(source.queryable(), &expr, start, end, step, &options)?
            }
        };
        Ok((expr, source, when, value))
    });
    let (expr, source, when, value) = match outcome {
        Ok(done) => done,
        Err(failure) => {
            if format == Format::Json {
                let mut out = std::io::stdout().lock();
                strata::api::write_error(failure.error_type, &failure.message, &mut out)
                    .map_err(|e| Error::io("write", "standard output", e))?;
            } else {
                errln!("strata: {}", failure.message);
            }
            return Ok(ExitCode::FAILURE);
        }
    };

    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = if args.plot {
        let series = match &value {
            QueryValue::Matrix(series) => series.as_slice(),
            _ => &[],
        };
        let style = plot::Style {
            width: std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.trim().parse().ok())
                .unwrap_or(100),
            height: 20,
            color: stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        };
        out.write_all(plot::render(series, unit_of(&expr), style).as_bytes())
    } else {
        match format {
            Format::Table => render::write_table(&value, &mut out),
            Format::Csv => render::write_csv(&value, &mut out),
            Format::Json => strata::api::write_query_result(&value, &mut out),
        }
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("write", "standard output", e))?;
    if is_empty(&value) {
        hint_empty(&source, when, args.lookback)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves the time arguments against `now`.
fn resolve(args: &QueryArgs, now: i64) -> Result<When, Failure> {
    let time = |text: &Option<String>| -> Result<Option<i64>, Failure> {
        text.as_deref()
            .map(|t| parse_time_at(t, now))
            .transpose()
            .map_err(|e| Failure::bad_data(e.to_string()))
    };
    let (start, end) = match (time(&args.start)?, time(&args.end)?) {
        (Some(start), end) => (start, end.unwrap_or(now)),
        (None, _) if args.plot => {
            let end = time(&args.time)?.unwrap_or(now);
            (end.saturating_sub(3_600_000), end)
        }
        (None, _) => return Ok(When::Instant(time(&args.time)?.unwrap_or(now))),
    };
    if end < start {
        return Err(Failure::bad_data(format!(
            "the end {} is before the start {}",
            describe_time(end),
            describe_time(start)
        )));
    }
    let step = args.step.unwrap_or_else(|| {
        let per_point = (end as i128 - start as i128) / 250;
        let seconds = (per_point + 999) / 1000;
        i64::try_from(seconds.max(1) * 1000).unwrap_or(i64::MAX)
    });
    Ok(When::Range { start, end, step })
}

/// The query text with a caret under `line`:`column`.
fn caret(text: &str, line: usize, column: usize) -> String {
    let Some(source_line) = text.lines().nth(line.saturating_sub(1)) else {
        return String::new();
    };
    format!(
        "\n  {source_line}\n  {}^",
        " ".repeat(column.saturating_sub(1))
    )
}

fn is_empty(value: &QueryValue) -> bool {
    match value {
        QueryValue::Vector(series) | QueryValue::Matrix(series) => series.is_empty(),
        _ => false,
    }
}

/// Explains an empty result when the data ends before the evaluation
/// window: the usual surprise with a directory written some time ago.
fn hint_empty(source: &Source, when: When, lookback: i64) -> Result<(), Error> {
    let window_start = match when {
        When::Instant(time) => time.saturating_sub(lookback),
        When::Range { start, .. } => start.saturating_sub(lookback),
    };
    match source.newest_sample_ms()? {
        None => errln!("strata: empty result: the data holds no samples"),
        Some(newest) if newest < window_start => {
            let seconds = newest.div_euclid(1000);
            errln!(
                "strata: empty result: the newest sample is at {}, before the evaluation window; \
                 try --time {seconds} or --start {} --end {seconds}",
                describe_time(newest),
                seconds.saturating_sub(3600)
            );
        }
        Some(_) => {}
    }
    Ok(())
}

/// Whether the result of `expr` is in seconds: it keeps the value of
/// selectors whose metric names end in `_seconds`, or is a
/// `histogram_quantile` of `_seconds_bucket` series, or the mean
/// `…_seconds_sum / …_count`. Rates, counts, products and other ratios
/// are plain numbers.
pub fn unit_of(expr: &Expr) -> Unit {
    let all_end_with = |expr: &Expr, suffix: &str| {
        let mut names = Vec::new();
        metric_names(expr, &mut names);
        !names.is_empty() && names.iter().all(|n| n.ends_with(suffix))
    };
    let seconds_if = |yes: bool| if yes { Unit::Seconds } else { Unit::Plain };
    match expr {
        Expr::Vector(_) | Expr::Matrix { .. } => seconds_if(all_end_with(expr, "_seconds")),
        Expr::Subquery(subquery) => unit_of(&subquery.expr),
        Expr::Neg(inner) => unit_of(inner),
        Expr::Call { func, args } => match func {
            Function::HistogramQuantile => seconds_if(
                args.get(1)
                    .is_some_and(|b| all_end_with(b, "_seconds_bucket")),
            ),
            Function::AvgOverTime
            | Function::MinOverTime
            | Function::MaxOverTime
            | Function::SumOverTime
            | Function::LastOverTime
            | Function::QuantileOverTime
            | Function::StddevOverTime
            | Function::Delta
            | Function::Idelta
            | Function::Abs
            | Function::Ceil
            | Function::Floor
            | Function::Round
            | Function::Clamp
            | Function::ClampMin
            | Function::ClampMax
            | Function::LabelReplace => args
                .iter()
                .find(|a| matches!(a.value_type(), ValueType::Vector | ValueType::Matrix))
                .map_or(Unit::Plain, unit_of),
            _ => Unit::Plain,
        },
        Expr::Aggregate(aggregate) => match aggregate.op {
            AggOp::Count | AggOp::CountValues => Unit::Plain,
            _ => unit_of(&aggregate.expr),
        },
        Expr::Binary(binary) => {
            let (lhs, rhs) = (unit_of(&binary.lhs), unit_of(&binary.rhs));
            match binary.op {
                op if op.is_comparison() && !binary.return_bool => lhs,
                op if op.is_set_op() => lhs,
                BinOp::Add | BinOp::Sub
                    if lhs == rhs || binary.rhs.value_type() == ValueType::Scalar =>
                {
                    lhs
                }
                BinOp::Div => seconds_if(
                    all_end_with(&binary.lhs, "_seconds_sum")
                        && all_end_with(&binary.rhs, "_count"),
                ),
                _ => Unit::Plain,
            }
        }
        Expr::Number(_) | Expr::String(_) => Unit::Plain,
    }
}

/// The metric names of every selector in `expr` that names one.
fn metric_names<'a>(expr: &'a Expr, out: &mut Vec<&'a str>) {
    match expr {
        Expr::Vector(selector) | Expr::Matrix { selector, .. } => {
            out.extend(selector.name.as_deref());
        }
        Expr::Subquery(subquery) => metric_names(&subquery.expr, out),
        Expr::Neg(inner) => metric_names(inner, out),
        Expr::Call { args, .. } => args.iter().for_each(|a| metric_names(a, out)),
        Expr::Aggregate(aggregate) => metric_names(&aggregate.expr, out),
        Expr::Binary(binary) => {
            metric_names(&binary.lhs, out);
            metric_names(&binary.rhs, out);
        }
        Expr::Number(_) | Expr::String(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(text: &str) -> Unit {
        unit_of(&strata::parse_expr(text).unwrap())
    }

    #[test]
    fn units_follow_the_expression() {
        for seconds in [
            "request_duration_seconds",
            "max_over_time(request_duration_seconds[5m])",
            "avg by (a) (request_duration_seconds)",
            "histogram_quantile(0.95, sum by (le) (rate(x_seconds_bucket[5m])))",
            "request_duration_seconds > 0.5",
            "request_duration_seconds - 1",
            "rate(x_seconds_sum[5m]) / rate(x_seconds_count[5m])",
        ] {
            assert_eq!(unit(seconds), Unit::Seconds, "{seconds}");
        }
        for plain in [
            "up",
            "rate(request_duration_seconds[5m])",
            "count(request_duration_seconds)",
            "request_duration_seconds > bool 0.5",
            "request_duration_seconds * 1000",
            "histogram_quantile(0.95, rate(x_bytes_bucket[5m]))",
            "process_cpu_seconds_total",
            "rate(x_bytes_sum[5m]) / rate(x_seconds_count[5m])",
        ] {
            assert_eq!(unit(plain), Unit::Plain, "{plain}");
        }
    }

    #[test]
    fn carets_point_at_the_column() {
        assert_eq!(caret("rate(x]", 1, 7), "\n  rate(x]\n        ^");
        assert_eq!(caret("a +\n  b)", 2, 4), "\n    b)\n     ^");
        assert_eq!(caret("", 3, 1), "");
    }
}
