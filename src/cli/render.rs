//! Query results as text: an aligned table for people, CSV for
//! spreadsheets, and the Prometheus HTTP API's JSON response body for
//! programs that already read Prometheus.
//!
//! The JSON body is written by `strata::api` (shared with `strata serve`).
//!
//! CSV has the columns of `strata export --format csv`: `series` (the
//! series in Prometheus text form, `name{a="x",b="y"}`, quoted),
//! `timestamp_ms` and `value` (Go formatting), one row per point.

use std::io::{self, Write};

use strata::api::go_float;
use strata::{Label, QuerySeries, QueryValue};

use super::inspect::format_utc;

/// How `strata query` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for reading.
    Table,
    /// series,timestamp_ms,value: one row per point.
    Csv,
    /// The Prometheus HTTP API response body.
    Json,
}

/// A label set in Prometheus text form: `name{a="x", b="y"}` (`, ` between
/// labels when `spaced`, `,` otherwise), `{a="x"}` without a name. With
/// `braces_always` false, a name alone prints without `{}`.
pub fn series_text(labels: &[Label], spaced: bool, braces_always: bool) -> String {
    let mut text = String::new();
    let mut rest = Vec::with_capacity(labels.len());
    for label in labels {
        if &*label.name == strata::METRIC_NAME_LABEL {
            text.push_str(&label.value);
        } else {
            rest.push(label);
        }
    }
    if rest.is_empty() && !braces_always && !text.is_empty() {
        return text;
    }
    text.push('{');
    for (i, label) in rest.iter().enumerate() {
        if i > 0 {
            text.push_str(if spaced { ", " } else { "," });
        }
        text.push_str(&label.name);
        text.push_str("=\"");
        for c in label.value.chars() {
            match c {
                '\\' => text.push_str("\\\\"),
                '"' => text.push_str("\\\""),
                '\n' => text.push_str("\\n"),
                c => text.push(c),
            }
        }
        text.push('"');
    }
    text.push('}');
    text
}

/// Writes the header and one row per point.
pub fn write_csv(value: &QueryValue, out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"series,timestamp_ms,value\n")?;
    let quoted = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    match value {
        QueryValue::Scalar(sample) => writeln!(
            out,
            "\"\",{},{}",
            sample.timestamp_ms,
            go_float(sample.value)
        ),
        QueryValue::String { time_ms, value } => {
            writeln!(out, "\"\",{time_ms},{}", quoted(value))
        }
        QueryValue::Vector(series) | QueryValue::Matrix(series) => {
            for s in series {
                let name = quoted(&series_text(&s.labels, false, true));
                for sample in &s.samples {
                    writeln!(
                        out,
                        "{name},{},{}",
                        sample.timestamp_ms,
                        go_float(sample.value)
                    )?;
                }
            }
            Ok(())
        }
    }
}

/// Writes an aligned table: for a vector, one row per series (`SERIES`,
/// `VALUE`); for a matrix, each series' name on its own line followed by
/// its points (time in RFC 3339, value); a scalar or string alone.
pub fn write_table(value: &QueryValue, out: &mut impl Write) -> io::Result<()> {
    match value {
        QueryValue::Scalar(sample) => writeln!(out, "{}", go_float(sample.value)),
        QueryValue::String { value, .. } => writeln!(out, "{value}"),
        QueryValue::Vector(series) => {
            let rows: Vec<(String, String)> = series
                .iter()
                .map(|s| {
                    let value = s
                        .samples
                        .first()
                        .map_or(String::new(), |x| go_float(x.value));
                    (series_text(&s.labels, true, false), value)
                })
                .collect();
            let width = rows
                .iter()
                .map(|(name, _)| name.chars().count())
                .max()
                .unwrap_or(0)
                .max("SERIES".len());
            let value_width = rows
                .iter()
                .map(|(_, value)| value.len())
                .max()
                .unwrap_or(0)
                .max("VALUE".len());
            writeln!(out, "{:<width$}  {:>value_width$}", "SERIES", "VALUE")?;
            for (name, value) in rows {
                writeln!(out, "{name:<width$}  {value:>value_width$}")?;
            }
            Ok(())
        }
        QueryValue::Matrix(series) => {
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                write_series_block(s, out)?;
            }
            Ok(())
        }
    }
}

fn write_series_block(series: &QuerySeries, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{}", series_text(&series.labels, true, false))?;
    let values: Vec<String> = series.samples.iter().map(|s| go_float(s.value)).collect();
    let width = values.iter().map(String::len).max().unwrap_or(0);
    for (sample, value) in series.samples.iter().zip(&values) {
        writeln!(
            out,
            "  {}  {value:>width$}",
            format_utc(sample.timestamp_ms)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
        pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()
    }

    #[test]
    fn series_text_forms() {
        let both = labels(&[("__name__", "up"), ("a", "x\"y"), ("b", "z")]);
        assert_eq!(series_text(&both, true, false), r#"up{a="x\"y", b="z"}"#);
        assert_eq!(series_text(&both, false, true), r#"up{a="x\"y",b="z"}"#);
        let name = labels(&[("__name__", "up")]);
        assert_eq!(series_text(&name, true, false), "up");
        assert_eq!(series_text(&name, false, true), "up{}");
        assert_eq!(
            series_text(&labels(&[("a", "1")]), true, false),
            r#"{a="1"}"#
        );
        assert_eq!(series_text(&[], true, false), "{}");
    }
}
