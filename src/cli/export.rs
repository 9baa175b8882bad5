//! `strata export`: series from a database as text, sorted by series key
//! then time, with values printed so that they parse back to the same f64
//! bits. Works next to a running writer (opens read-only).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use strata::{Db, Error, Matcher, TimeRange};

use super::discover::{parse_selector_arg, Selector};
use super::parquet::WithParquet;
use super::time::parse_time;

use strata::ingest::{csv_header, write_sample, ExportFormat};

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
    // Sorted by the series' text form, like the canonical files: metric by
    // metric ("a_b{" sorts before "a{"), then by full text within one.
    let mut metrics: Vec<String> = db
        .find_series(matchers)
        .iter()
        .map(|k| k.metric().to_owned())
        .collect();
    metrics.sort_by_cached_key(|m| format!("{m}{{"));
    metrics.dedup();
    for metric in metrics {
        let mut selected = matchers.to_vec();
        selected.push(Matcher::equal("__name__", &metric));
        let mut series = db.select(&selected, range).map_err(std::io::Error::other)?;
        series.sort_by_cached_key(|s| s.key.to_string());
        for s in series {
            for sample in &s.samples {
                write_sample(format, &s.key, sample.timestamp_ms, sample.value, out)?;
            }
        }
    }
    Ok(())
}
