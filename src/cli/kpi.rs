//! KPIs as PromQL with thresholds: what a telemetry user checks on the
//! gateway, scheduler, agents, spawn queue, inbox and heartbeats that
//! `strata demo` simulates. `strata demo` evaluates them on the data it
//! wrote; `strata kpis` on any directory or segment file.
//!
//! A [`KpiRule`] is an expression whose result is a scalar or a vector
//! (one line per series), a threshold and the side of it that is a
//! breach. A value exactly at the threshold is OK; NaN (a ratio of two
//! zero rates) and an empty result are NO DATA, neither OK nor a breach.

use std::path::PathBuf;
use std::process::ExitCode;

use strata::{Error, QueryOptions, QueryValue, Queryable};

use super::render::series_text;
use super::source::Source;
use super::time::{describe_time, parse_time};

/// Which side of the threshold is a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    Above,
    Below,
}

/// How a KPI's value (and threshold) is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KpiUnit {
    PerSecond,
    PerHour,
    /// A fraction, printed as a percentage.
    Ratio,
    /// Printed in ms below one second.
    Seconds,
    Count,
}

/// A KPI: a PromQL expression and the threshold it must not cross.
#[derive(Debug, Clone, Copy)]
pub struct KpiRule {
    pub name: &'static str,
    pub expr: &'static str,
    pub threshold: f64,
    pub breach: Breach,
    pub unit: KpiUnit,
}

/// The KPIs of the demo's telemetry: rates over 5 minutes, failures and
/// maxima over the last hour. Thresholds are per instance where the
/// value grows with the number of instances.
pub const DEMO_KPIS: &[KpiRule] = &[
    KpiRule {
        name: "gateway request rate",
        expr: "sum(rate(gateway_requests_total[5m]))",
        threshold: 1.0,
        breach: Breach::Below,
        unit: KpiUnit::PerSecond,
    },
    KpiRule {
        name: "gateway error ratio",
        expr: r#"sum(rate(gateway_requests_total{code=~"5.."}[5m])) / sum(rate(gateway_requests_total[5m]))"#,
        threshold: 0.05,
        breach: Breach::Above,
        unit: KpiUnit::Ratio,
    },
    KpiRule {
        name: "gateway latency p95",
        expr: "histogram_quantile(0.95, sum by (le) (rate(gateway_request_duration_seconds_bucket[5m])))",
        threshold: 0.25,
        breach: Breach::Above,
        unit: KpiUnit::Seconds,
    },
    KpiRule {
        name: "gateway latency p99",
        expr: "histogram_quantile(0.99, sum by (le) (rate(gateway_request_duration_seconds_bucket[5m])))",
        threshold: 1.0,
        breach: Breach::Above,
        unit: KpiUnit::Seconds,
    },
    KpiRule {
        name: "gateway mean latency",
        expr: "sum(rate(gateway_request_duration_seconds_sum[5m])) / sum(rate(gateway_request_duration_seconds_count[5m]))",
        threshold: 0.1,
        breach: Breach::Above,
        unit: KpiUnit::Seconds,
    },
    KpiRule {
        name: "scheduler failures/h, worst instance",
        expr: r#"max(increase(scheduler_jobs_total{state="failed"}[1h]))"#,
        threshold: 120.0,
        breach: Breach::Above,
        unit: KpiUnit::PerHour,
    },
    KpiRule {
        name: "scheduler failure ratio, 1h",
        expr: r#"sum(rate(scheduler_jobs_total{state="failed"}[1h])) / sum(rate(scheduler_jobs_total[1h]))"#,
        threshold: 0.02,
        breach: Breach::Above,
        unit: KpiUnit::Ratio,
    },
    KpiRule {
        name: "spawn queue depth, max 1h",
        expr: "max(max_over_time(spawn_queue_depth[1h]))",
        threshold: 100.0,
        breach: Breach::Above,
        unit: KpiUnit::Count,
    },
    KpiRule {
        name: "agent sessions, busiest instance",
        expr: "max(agent_sessions_active)",
        threshold: 100.0,
        breach: Breach::Above,
        unit: KpiUnit::Count,
    },
    KpiRule {
        name: "inbox unread, worst instance",
        expr: "max(inbox_unread)",
        threshold: 1000.0,
        breach: Breach::Above,
        unit: KpiUnit::Count,
    },
    KpiRule {
        name: "heartbeats stale over 30 s",
        expr: "count(time() - heartbeat_last_seen_seconds > 30) or vector(0)",
        threshold: 0.0,
        breach: Breach::Above,
        unit: KpiUnit::Count,
    },
    KpiRule {
        name: "heartbeat availability, 1h",
        expr: "avg(avg_over_time(heartbeat_up[1h]))",
        threshold: 0.99,
        breach: Breach::Below,
        unit: KpiUnit::Ratio,
    },
];

/// The verdict on one value.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Ok,
    Breach,
    NoData,
    /// The expression failed to parse or evaluate.
    Error(String),
}

/// One line of a KPI report.
#[derive(Debug, Clone)]
pub struct KpiResult {
    pub rule: KpiRule,
    /// The series' labels in text form; empty for a scalar or a series
    /// without labels.
    pub series: String,
    pub value: Option<f64>,
    pub status: Status,
}

impl KpiRule {
    /// The verdict on `value`.
    pub fn judge(&self, value: f64) -> Status {
        let breached = match self.breach {
            Breach::Above => value > self.threshold,
            Breach::Below => value < self.threshold,
        };
        if value.is_nan() {
            Status::NoData
        } else if breached {
            Status::Breach
        } else {
            Status::Ok
        }
    }

    /// Evaluates the rule at `time_ms`: one result per series (one for a
    /// scalar, one NO DATA for an empty vector).
    pub fn evaluate(&self, source: &dyn Queryable, time_ms: i64) -> Vec<KpiResult> {
        let result = |series: String, value: Option<f64>, status: Status| KpiResult {
            rule: *self,
            series,
            value,
            status,
        };
        let value = strata::parse_expr(self.expr)
            .map_err(|e| e.to_string())
            .and_then(|expr| {
                strata::instant_query(source, &expr, time_ms, &QueryOptions::default())
                    .map_err(|e| e.to_string())
            });
        let series = match value {
            Err(message) => return vec![result(String::new(), None, Status::Error(message))],
            Ok(QueryValue::Scalar(sample)) => {
                return vec![result(
                    String::new(),
                    Some(sample.value),
                    self.judge(sample.value),
                )]
            }
            Ok(QueryValue::Vector(series)) => series,
            Ok(_) => {
                return vec![result(
                    String::new(),
                    None,
                    Status::Error("the expression is not a number or an instant vector".to_owned()),
                )]
            }
        };
        if series.is_empty() {
            return vec![result(String::new(), None, Status::NoData)];
        }
        series
            .iter()
            .filter_map(|s| {
                let value = s.samples.first()?.value;
                let labels = if s.labels.is_empty() {
                    String::new()
                } else {
                    series_text(&s.labels, true, false)
                };
                Some(result(labels, Some(value), self.judge(value)))
            })
            .collect()
    }
}

/// `value` in the rule's unit.
pub fn format_kpi(value: f64, unit: KpiUnit) -> String {
    if !value.is_finite() {
        return strata::api::go_float(value);
    }
    match unit {
        KpiUnit::PerSecond => format!("{value:.1} /s"),
        KpiUnit::PerHour => format!("{value:.0} /h"),
        KpiUnit::Ratio => format!("{:.2} %", value * 100.0),
        KpiUnit::Seconds if value.abs() < 1.0 => format!("{:.1} ms", value * 1000.0),
        KpiUnit::Seconds => format!("{value:.2} s"),
        KpiUnit::Count => format!("{value:.0}"),
    }
}

/// Evaluates `rules` at `time_ms` and prints an aligned report. Returns
/// whether every KPI is OK or NO DATA.
pub fn report(source: &dyn Queryable, rules: &[KpiRule], time_ms: i64) -> Result<bool, Error> {
    let results: Vec<KpiResult> = rules
        .iter()
        .flat_map(|rule| rule.evaluate(source, time_ms))
        .collect();
    let rows: Vec<[String; 4]> = results
        .iter()
        .map(|r| {
            let name = if r.series.is_empty() {
                r.rule.name.to_owned()
            } else {
                format!("{} {}", r.rule.name, r.series)
            };
            let value = r
                .value
                .map_or("-".to_owned(), |v| format_kpi(v, r.rule.unit));
            let side = match r.rule.breach {
                Breach::Above => ">",
                Breach::Below => "<",
            };
            let threshold = format!("{side} {}", format_kpi(r.rule.threshold, r.rule.unit));
            let status = match &r.status {
                Status::Ok => "OK".to_owned(),
                Status::Breach => "BREACH".to_owned(),
                Status::NoData => "NO DATA".to_owned(),
                Status::Error(message) => format!("ERROR: {message}"),
            };
            [name, value, threshold, status]
        })
        .collect();
    let width = |i: usize, title: &str| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let (w0, w1, w2) = (width(0, "KPI"), width(1, "VALUE"), width(2, "BREACH IF"));
    outln!(
        "  {:<w0$}  {:>w1$}  {:<w2$}  STATUS",
        "KPI",
        "VALUE",
        "BREACH IF"
    )?;
    for [name, value, threshold, status] in &rows {
        outln!("  {name:<w0$}  {value:>w1$}  {threshold:<w2$}  {status}")?;
    }
    Ok(results
        .iter()
        .all(|r| matches!(r.status, Status::Ok | Status::NoData)))
}

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  strata kpis --db strata-demo
  strata kpis --db DIR --time 2026-12-01T02:00:00Z

Exit code: 0 when every KPI is OK (or has no data), 1 when one is breached or
an expression fails. The expressions are listed in docs/QUERY.md; each is an
ordinary `strata query`.")]
pub struct KpisArgs {
    /// Data directory (opened read-only) or a segment file (*.seg).
    #[arg(long)]
    db: PathBuf,
    /// Evaluation time. Default: the time of the newest sample, so that a
    /// copy of old data is judged as of its end.
    #[arg(long, value_parser = parse_time)]
    time: Option<i64>,
}

/// `strata kpis`: the demo's KPI set on any data.
pub fn run(args: &KpisArgs) -> Result<ExitCode, Error> {
    let source = Source::open(&args.db)?;
    let time = match args.time {
        Some(time) => time,
        None => match source.newest_sample_ms()? {
            Some(newest) => newest,
            None => {
                errln!("strata: {} holds no samples", args.db.display());
                return Ok(ExitCode::FAILURE);
            }
        },
    };
    outln!("KPIs at {}:", describe_time(time))?;
    let healthy = report(source.queryable(), DEMO_KPIS, time)?;
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_kpis_parse() {
        for rule in DEMO_KPIS {
            assert!(strata::parse_expr(rule.expr).is_ok(), "{}", rule.expr);
        }
    }

    #[test]
    fn thresholds_judge_values() {
        let above = DEMO_KPIS[1]; // error ratio > 5 %
        assert_eq!(above.judge(0.01), Status::Ok);
        assert_eq!(above.judge(0.05), Status::Ok);
        assert_eq!(above.judge(0.0501), Status::Breach);
        assert_eq!(above.judge(f64::NAN), Status::NoData);
        let below = DEMO_KPIS[0]; // request rate < 1/s
        assert_eq!(below.judge(0.5), Status::Breach);
        assert_eq!(below.judge(1.0), Status::Ok);
    }

    #[test]
    fn values_print_in_their_units() {
        assert_eq!(format_kpi(0.0123, KpiUnit::Ratio), "1.23 %");
        assert_eq!(format_kpi(0.2051, KpiUnit::Seconds), "205.1 ms");
        assert_eq!(format_kpi(1.5, KpiUnit::Seconds), "1.50 s");
        assert_eq!(format_kpi(657.25, KpiUnit::PerSecond), "657.2 /s");
        assert_eq!(format_kpi(72.4, KpiUnit::PerHour), "72 /h");
        assert_eq!(format_kpi(f64::INFINITY, KpiUnit::Count), "+Inf");
    }
}
