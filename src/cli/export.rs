//! `strata export`: series from a database as text, sorted by series key
//! then time, with values printed so that they parse back to the same f64
//! bits. Works next to a running writer (opens read-only).
//!
//! Series order: by metric name (as the text `name{`, so `a_b` comes before
//! `a`), then by labels (see [`series_order`]), where the bucket bound `le`
//! is compared as a number: a classic histogram's `_bucket` series come out
//! 0.1, 0.5, 1, 10, +Inf, as Prometheus lists them, not in string order.
//!
//! Metric metadata: a Tsv export starts with the `# HELP`, `# TYPE` and
//! `# UNIT` lines of the families its series belong to, which `import`
//! stores again; Csv and Jsonl carry no metadata (Parquet keeps it in the
//! file's key-value metadata, see `strata::parquet`).

use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use strata::METRIC_NAME_LABEL;
use strata::{Db, Error, Label, Matcher, SeriesKey, TimeRange};

use super::discover::{parse_selector_arg, Selector};
use super::parquet::WithParquet;
use super::time::parse_time;

use strata::ingest::{
    csv_header, parse_value, write_families_metadata, write_sample, ExportFormat,
};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Data directory to read.
    #[arg(long)]
    db: PathBuf,
    /// Series selector in PromQL syntax, e.g. 'up' or
    /// 'http_requests_total{code=~"5..",job!="test"}'. Default: everything.
    #[arg(long = "match", value_parser = parse_selector_arg)]
    selector: Option<Selector>,
    /// First timestamp included: RFC 3339 (2026-12-01T00:00:00Z), Unix
    /// seconds, Unix milliseconds (a bare number of 10^11 or more, or with
    /// an ms suffix), or now-1h. A time that does not fit in i64 Unix
    /// milliseconds (about 292 million years either side of 1970) is
    /// refused.
    #[arg(long, value_parser = parse_time)]
    start: Option<i64>,
    /// Last timestamp included, same forms as --start.
    #[arg(long, value_parser = parse_time)]
    end: Option<i64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "tsv")]
    format: WithParquet<ExportFormat>,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn run(args: &ExportArgs) -> Result<ExitCode, Error> {
    let matchers = args.selector.as_ref().map_or(&[][..], |s| &s.0[..]);
    let range = TimeRange::new(args.start.unwrap_or(i64::MIN), args.end.unwrap_or(i64::MAX));
    let db = Db::open_read_only(&args.db)?;
    let format = match args.format {
        WithParquet::Text(format) => format,
        WithParquet::Parquet => {
            return super::parquet::export(&db, matchers, range, args.output.as_deref())
        }
    };
    let (sink, name): (Box<dyn Write>, String) = match &args.output {
        Some(path) => (
            Box::new(File::create(path).map_err(|e| Error::io("create", path, e))?),
            path.display().to_string(),
        ),
        None => (
            Box::new(std::io::stdout().lock()),
            "standard output".to_owned(),
        ),
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    // A closed pipe (`strata export | head`) ends the export quietly (see
    // `cli::run`).
    write_all(&db, matchers, range, format, &mut out)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("write", name, e))?;
    Ok(ExitCode::SUCCESS)
}

/// Exports metric by metric, so that memory holds one metric at a time.
fn write_all(
    db: &Db,
    matchers: &[Matcher],
    range: TimeRange,
    format: ExportFormat,
    out: &mut impl Write,
) -> std::io::Result<()> {
    if format == ExportFormat::Csv {
        out.write_all(csv_header().as_bytes())?;
    }
    // Metric by metric as text ("a_b{" sorts before "a{"), then by
    // `series_order` within one.
    let mut metrics: Vec<String> = db
        .find_series(matchers)
        .iter()
        .map(|k| k.metric().to_owned())
        .collect();
    metrics.sort_by_cached_key(|m| format!("{m}{{"));
    metrics.dedup();
    if format == ExportFormat::Tsv {
        let mut lines = String::new();
        write_families_metadata(
            &mut lines,
            &db.metadata(),
            metrics.iter().map(String::as_str),
        );
        out.write_all(lines.as_bytes())?;
    }
    for metric in metrics {
        let mut selected = matchers.to_vec();
        selected.push(Matcher::equal("__name__", &metric));
        let mut series = db.select(&selected, range).map_err(std::io::Error::other)?;
        series.sort_by(|a, b| series_order(&a.key, &b.key));
        for s in series {
            for sample in &s.samples {
                write_sample(format, &s.key, sample.timestamp_ms, sample.value, out)?;
            }
        }
    }
    Ok(())
}

/// The order of two series of one metric: their labels other than
/// `__name__`, in name order, compared pair by pair, name then value
/// ([`label_value_order`]); a key whose labels are a prefix of the other's
/// comes first. A total order, as `sort_by` requires.
fn series_order(a: &SeriesKey, b: &SeriesKey) -> Ordering {
    let (mut a, mut b) = (labels_without_name(a), labels_without_name(b));
    loop {
        let (x, y) = match (a.next(), b.next()) {
            (Some(x), Some(y)) => (x, y),
            (x, y) => return x.is_some().cmp(&y.is_some()),
        };
        let order = x
            .name
            .cmp(&y.name)
            .then_with(|| label_value_order(&x.name, &x.value, &y.value));
        if order != Ordering::Equal {
            return order;
        }
    }
}

fn labels_without_name(key: &SeriesKey) -> impl Iterator<Item = &Label> {
    key.labels()
        .iter()
        .filter(|label| &*label.name != METRIC_NAME_LABEL)
}

/// The order of two values of label `name`: for `le`, values that parse as
/// numbers ([`parse_value`]: `0.5`, `1e3`, `+Inf`) first, in numeric order
/// (ties, such as `1` and `1.0`, by text), then the others by text; other
/// labels by text.
fn label_value_order(name: &str, a: &str, b: &str) -> Ordering {
    if name == "le" {
        match (parse_value(a), parse_value(b)) {
            (Ok(x), Ok(y)) => return x.total_cmp(&y).then_with(|| a.cmp(b)),
            (Ok(_), Err(_)) => return Ordering::Less,
            (Err(_), Ok(_)) => return Ordering::Greater,
            (Err(_), Err(_)) => {}
        }
    }
    a.cmp(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(labels: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new("h_bucket", labels).unwrap()
    }

    #[test]
    fn buckets_sort_by_numeric_le_within_their_series() {
        let mut keys = vec![
            key(&[("job", "b"), ("le", "0.1")]),
            key(&[("job", "a"), ("le", "+Inf")]),
            key(&[("job", "a"), ("le", "10")]),
            key(&[("job", "a"), ("le", "1")]),
            key(&[("job", "a"), ("le", "x")]),
            key(&[("job", "a"), ("le", "1.0")]),
            key(&[("job", "a"), ("le", "0.5")]),
            key(&[("job", "a"), ("le", "-Inf")]),
            key(&[("job", "a")]),
            key(&[("job", "a"), ("le", "0.1")]),
        ];
        keys.sort_by(series_order);
        let le: Vec<(&str, &str)> = keys
            .iter()
            .map(|k| (k.get("job").unwrap(), k.get("le").unwrap_or("-")))
            .collect();
        assert_eq!(
            le,
            [
                ("a", "-"),
                ("a", "-Inf"),
                ("a", "0.1"),
                ("a", "0.5"),
                ("a", "1"),
                ("a", "1.0"),
                ("a", "10"),
                ("a", "+Inf"),
                ("a", "x"),
                ("b", "0.1"),
            ]
        );
    }

    #[test]
    fn other_labels_sort_as_text() {
        let a = SeriesKey::new("m", &[("code", "10")]).unwrap();
        let b = SeriesKey::new("m", &[("code", "9")]).unwrap();
        assert_eq!(series_order(&a, &b), Ordering::Less);
    }
}
