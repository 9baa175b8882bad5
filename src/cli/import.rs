//! `strata import`: text lines into a database, with a progress bar on a
//! terminal and a summary that names every rejected line's number and
//! reason (the first few of each kind).
//!
//! Decisions: the import opens the database with `SyncMode::Never`, no
//! background partition flushes and an unlimited out-of-order window (bulk
//! history arrives sorted by series, not by time), and makes everything
//! durable by flushing at the end (`--no-flush` syncs the WAL instead). It
//! also flushes every `FLUSH_EVERY_SAMPLES` to bound memory. Lines that
//! fail are reported and skipped; everything else is kept, and the exit
//! code is 1 if any line failed.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::parquet::WithParquet;
use strata::{Db, Error, Options, SeriesRef, SyncMode};

use strata::ingest::{Format, Limits, Line, LineParser, LineReader, ParseError, ParsedSample};

/// Flush to segments every this many imported samples (bounds memory).
const FLUSH_EVERY_SAMPLES: u64 = 20_000_000;
/// Failed lines listed in the summary, per kind.
const SHOW_FAILURES: usize = 10;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Data directory; created if missing. Must not be open by a writer.
    #[arg(long)]
    db: PathBuf,
    /// Input file; `-` or nothing reads standard input.
    input: Option<PathBuf>,
    /// Input format: tsv is `series<TAB>timestamp_ms<TAB>value` with series
    /// as `metric{k="v",...}`; prometheus is text exposition with optional
    /// ms timestamps; influx is line protocol with ns timestamps.
    #[arg(long, value_enum, default_value = "tsv")]
    format: WithParquet<Format>,
    /// Do not write segment files at the end; leave the data in the WAL.
    #[arg(long)]
    no_flush: bool,
    /// Samples per write batch, 1 to 1048576 (strata::MAX_BATCH_SAMPLES).
    #[arg(long, default_value_t = 10_000, value_parser = super::parse_batch, allow_negative_numbers = true)]
    batch: usize,
    /// Longest input line in bytes. A longer line is reported with its
    /// number and skipped without being held in memory; also bounds what
    /// one line may cost the parser.
    #[arg(long, default_value_t = Limits::default().max_line_bytes as u64,
          value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    max_line_bytes: u64,
    /// Timestamp (Unix ms) for prometheus/influx lines without one;
    /// default: the time the import starts.
    #[arg(long)]
    default_timestamp: Option<i64>,
}

/// Reads bytes and counts them for the progress bar.
struct Counting<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

#[derive(Default)]
struct Summary {
    lines: usize,
    samples: u64,
    malformed: usize,
    rejected: usize,
    failures_shown: Vec<String>,
    rejections_shown: Vec<String>,
}

impl Summary {
    fn malformed(&mut self, message: String) {
        self.malformed += 1;
        if self.failures_shown.len() < SHOW_FAILURES {
            self.failures_shown.push(message);
        }
    }

    fn rejected(&mut self, line: usize, error: &dyn std::fmt::Display) {
        self.rejected += 1;
        if self.rejections_shown.len() < SHOW_FAILURES {
            self.rejections_shown.push(format!("line {line}: {error}"));
        }
    }
}

pub fn run(args: &ImportArgs) -> Result<ExitCode, Error> {
    let format = match args.format {
        WithParquet::Text(format) => format,
        WithParquet::Parquet => {
            let open = || Db::open(&args.db, bulk_load_options());
            return super::parquet::import(args.input.as_deref(), open, args.no_flush);
        }
    };
    let started = Instant::now();
    let (source, len): (Box<dyn Read>, Option<u64>) = match &args.input {
        None => (Box::new(std::io::stdin()), None),
        Some(p) if p.as_os_str() == "-" => (Box::new(std::io::stdin()), None),
        Some(path) => {
            let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
            let len = file.metadata().ok().map(|m| m.len());
            (Box::new(file), len)
        }
    };
    let db = Db::open(&args.db, bulk_load_options())?;
    for action in db.recovery_report().actions() {
        errln!("strata import: on open, {action}");
    }
    let bar = if std::io::stderr().is_terminal() {
        match len {
            Some(len) => ProgressBar::new(len).with_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner(),
        }
    } else {
        ProgressBar::hidden()
    };
    let default_ts = args.default_timestamp.unwrap_or_else(now_ms);
    // Bounded by its value parser.
    let max_line_bytes = args.max_line_bytes as usize;
    let parser = LineParser::new(format, default_ts).with_limits(Limits {
        max_line_bytes,
        ..Limits::default()
    });
    let mut reader = LineReader::new(
        BufReader::with_capacity(
            1 << 20,
            Counting {
                inner: source,
                bar: bar.clone(),
            },
        ),
        max_line_bytes,
    );
    let input_name = args
        .input
        .as_ref()
        .map_or_else(|| "standard input".to_owned(), |p| p.display().to_string());

    let mut summary = Summary::default();
    let mut parsed: Vec<ParsedSample> = Vec::new();
    let mut pending: Vec<(SeriesRef, i64, f64)> = Vec::with_capacity(args.batch);
    let mut pending_lines: Vec<usize> = Vec::with_capacity(args.batch);
    let mut since_flush = 0u64;
    while let Some((line_no, line)) = reader
        .next_line()
        .map_err(|e| Error::io("read", &input_name, e))?
    {
        summary.lines = line_no;
        let raw = match line {
            Line::Complete(raw) => raw,
            Line::TooLong { len } => {
                let error = ParseError::line_too_long(line_no, len, max_line_bytes);
                summary.malformed(format!("{error} (--max-line-bytes)"));
                continue;
            }
        };
        let Ok(line) = std::str::from_utf8(raw) else {
            summary.malformed(format!("line {line_no}: not valid UTF-8"));
            continue;
        };
        parsed.clear();
        if let Err(e) = parser.parse_line(line_no, line, &mut parsed) {
            summary.malformed(e.to_string());
            continue;
        }
        for sample in parsed.drain(..) {
            match db.series(&sample.key) {
                Ok(series) => {
                    pending.push((series, sample.timestamp_ms, sample.value));
                    pending_lines.push(line_no);
                }
                Err(e) => summary.rejected(line_no, &e),
            }
        }
        if pending.len() >= args.batch {
            since_flush += write_batch(&db, &mut pending, &mut pending_lines, &mut summary)?;
            if since_flush >= FLUSH_EVERY_SAMPLES {
                bar.set_message("flushing");
                db.flush()?;
                bar.set_message("");
                since_flush = 0;
            }
        }
    }
    write_batch(&db, &mut pending, &mut pending_lines, &mut summary)?;
    bar.finish_and_clear();
    let series = db.stats().head_series;
    if args.no_flush {
        db.sync_wal()?;
    } else {
        db.close()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    outln!(
        "imported {} samples of {series} series from {} lines of {input_name} in {seconds:.2} s ({:.2} M samples/s){}",
        summary.samples,
        summary.lines,
        summary.samples as f64 / seconds.max(1e-9) / 1e6,
        if args.no_flush { "; left in the WAL (--no-flush)" } else { "; flushed to segments" }
    )?;
    if summary.malformed > 0 {
        outln!("{} malformed lines skipped:", summary.malformed)?;
        for message in &summary.failures_shown {
            outln!("  {message}")?;
        }
    }
    if summary.rejected > 0 {
        outln!("{} samples rejected:", summary.rejected)?;
        for message in &summary.rejections_shown {
            outln!("  {message}")?;
        }
    }
    Ok(if summary.malformed + summary.rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Appends the pending samples; returns how many were accepted.
fn write_batch(
    db: &Db,
    pending: &mut Vec<(SeriesRef, i64, f64)>,
    lines: &mut Vec<usize>,
    summary: &mut Summary,
) -> Result<u64, Error> {
    if pending.is_empty() {
        return Ok(0);
    }
    let batch: Vec<(&SeriesRef, i64, f64)> = pending.iter().map(|(s, t, v)| (s, *t, *v)).collect();
    let outcome = db.append_batch(&batch)?;
    for (index, error) in &outcome.rejected {
        summary.rejected(lines[*index], error);
    }
    summary.samples += outcome.accepted as u64;
    pending.clear();
    lines.clear();
    Ok(outcome.accepted as u64)
}

/// How an import opens the database (see the module doc).
fn bulk_load_options() -> Options {
    Options {
        sync: SyncMode::Never,
        flush_complete_partitions: false,
        out_of_order_window_ms: i64::MAX,
        ..Options::default()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
