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
//!
//! Two threads: a parser thread reads lines with `ingest::CachingParser`
//! (a known series text costs one lookup), creates new series with
//! `Db::series` and sends `Batch`es of about `--batch` samples, each with
//! its lines' numbers and failures, through a channel of `PIPELINE_DEPTH`
//! batches; the calling thread appends them with `Db::append_batch`, keeps
//! the summary and sends emptied batches back for reuse. Failures are
//! reported in line order per batch, rejections at write time after them.
//! If writing fails the parser stops at its next send; if reading fails the
//! writer finishes what it was sent and the read error is returned.
//!
//! Lines imported otherwise than written (Influx names rewritten by the
//! shared rule, string fields left out) are warnings: listed in the summary,
//! not failures. When the first `GUESS_LINES` lines give no sample and some
//! fail, the summary names the format they look like (`guess_format`).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::parquet::WithParquet;
use strata::ingest::{
    guess_format, CachingParser, Format, IndexedSample, Limits, Line, LineParser, LineReader,
    ParseError, Precision, Warning, WarningKind, GUESS_LINES,
};
use strata::{Db, Error, MetricMetadata, Options, SeriesRef, SyncMode, MAX_BATCH_SAMPLES};

/// Flush to segments every this many imported samples (bounds memory).
const FLUSH_EVERY_SAMPLES: u64 = 20_000_000;
/// Batches in flight between the parser and the writer thread.
const PIPELINE_DEPTH: usize = 2;
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
    /// ms timestamps; influx is line protocol (timestamps in --precision);
    /// csv and jsonl read what `export --format csv|jsonl` writes (CSV
    /// `"series",timestamp_ms,value` under its header, RFC 4180 quotes;
    /// JSON objects {"metric","labels","timestamp_ms","value"}), bit-exact.
    /// Influx names become Prometheus names by one rule (shared with
    /// strata::sanitize_metric_name / sanitize_label_name): each
    /// character outside [a-zA-Z0-9_] (and ':' in metric names) becomes
    /// '_', a leading digit gets a '_' before it; the metric is
    /// <measurement>_<field>. Rewritten names are imported and listed in
    /// the summary. Boolean fields become 1 and 0; string fields cannot be
    /// samples: they are left out and their lines listed, the numeric
    /// fields of those lines kept.
    #[arg(long, value_enum, default_value = "tsv")]
    format: WithParquet<Format>,
    /// Unit of influx timestamps, as InfluxDB's precision: ns (the
    /// default), us, ms or s. Only with --format influx.
    #[arg(long, value_enum)]
    precision: Option<Precision>,
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
    /// Distinct names rewritten (the parser reports each once) and the first.
    renamed: usize,
    first_renamed: Option<String>,
    /// Lines with string fields left out, the first few listed.
    string_lines: usize,
    string_lines_shown: Vec<String>,
    /// Metric families whose `# TYPE`/`# HELP`/`# UNIT` lines were stored.
    metadata_families: BTreeSet<String>,
}

impl Summary {
    fn malformed(&mut self, message: String) {
        self.malformed += 1;
        if self.failures_shown.len() < SHOW_FAILURES {
            self.failures_shown.push(message);
        }
    }

    fn warning(&mut self, warning: &Warning) {
        match warning.kind {
            WarningKind::Renamed { .. } => {
                self.renamed += 1;
                self.first_renamed
                    .get_or_insert_with(|| warning.to_string());
            }
            WarningKind::StringFields { .. } => {
                self.string_lines += 1;
                if self.string_lines_shown.len() < SHOW_FAILURES {
                    self.string_lines_shown.push(warning.to_string());
                }
            }
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
    if args.precision.is_some() && !matches!(args.format, WithParquet::Text(Format::Influx)) {
        errln!("strata import: --precision applies to --format influx only");
        return Ok(ExitCode::from(2));
    }
    let format = match args.format {
        WithParquet::Text(format) => format,
        WithParquet::Parquet => {
            let open = || {
                Db::open(
                    &args.db,
                    super::writable_options(&args.db, bulk_load_options())?,
                )
            };
            return super::parquet::import(args.input.as_deref(), open, args.no_flush);
        }
    };
    let started = Instant::now();
    let (source, len): (Box<dyn Read + Send>, Option<u64>) = match &args.input {
        None => (Box::new(std::io::stdin()), None),
        Some(p) if p.as_os_str() == "-" => (Box::new(std::io::stdin()), None),
        Some(path) => {
            let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
            let len = file.metadata().ok().map(|m| m.len());
            (Box::new(file), len)
        }
    };
    let db = Db::open(
        &args.db,
        super::writable_options(&args.db, bulk_load_options())?,
    )?;
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
    let parser = LineParser::new(format, default_ts)
        .with_limits(Limits {
            max_line_bytes,
            ..Limits::default()
        })
        .with_precision(args.precision.unwrap_or_default());
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
    let (to_writer, from_parser) = mpsc::sync_channel::<Batch>(PIPELINE_DEPTH);
    let (to_parser, recycled) = mpsc::channel::<Batch>();
    let first_lines = std::thread::scope(|scope| -> Result<FirstLines, Error> {
        let parsing = scope.spawn(|| {
            parse_input(
                &db,
                &mut reader,
                CachingParser::new(parser),
                args.batch,
                to_writer,
                recycled,
            )
            .map_err(|e| Error::io("read", &input_name, e))
        });
        let written = write_batches(&db, &bar, &from_parser, &to_parser, &mut summary);
        // The parser stops when the writer has gone; its error (a read
        // failure) comes first since a write error may be its consequence.
        drop(from_parser);
        let parsed = parsing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        parsed.and_then(|first| written.map(|()| first))
    })?;
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
    if !summary.metadata_families.is_empty() {
        outln!(
            "stored the metadata (# TYPE, # HELP, # UNIT) of {} metric families",
            summary.metadata_families.len()
        )?;
    }
    if summary.malformed > 0 {
        outln!("{} malformed lines skipped:", summary.malformed)?;
        for message in &summary.failures_shown {
            outln!("  {message}")?;
        }
        if let Some(guess) = first_lines.guess(format) {
            let name = clap::ValueEnum::to_possible_value(&guess)
                .map_or_else(|| format!("{guess:?}"), |value| value.get_name().to_owned());
            outln!("this looks like {name}: try --format {name}")?;
        }
    }
    if let Some(first) = &summary.first_renamed {
        outln!(
            "{} names rewritten to valid Prometheus names (imported; rule in `strata import --help`), the first: {first}",
            summary.renamed
        )?;
    }
    if summary.string_lines > 0 {
        outln!(
            "{} lines with string fields, left out (their numeric fields were imported):",
            summary.string_lines
        )?;
        for message in &summary.string_lines_shown {
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

/// What the parser thread hands the writer: samples of consecutive lines,
/// the series first seen in them, and the lines that failed. Sent back
/// empty to be reused, so the pipeline allocates only while it fills up.
#[derive(Default)]
struct Batch {
    /// Series whose index is `known + i`, where `known` is the number of
    /// series of the batches before.
    new_series: Vec<SeriesRef>,
    samples: Vec<IndexedSample>,
    /// The line number of each sample.
    sample_lines: Vec<usize>,
    /// Malformed lines and refused series, in line order.
    failures: Vec<Failure>,
    /// Warnings of the batch's lines, in line order.
    warnings: Vec<Warning>,
    /// Metadata set or changed by the batch's lines.
    metadata: Vec<(String, MetricMetadata)>,
    /// Number of the last line read.
    last_line: usize,
}

enum Failure {
    Malformed(String),
    Rejected(usize, Error),
}

/// The first `GUESS_LINES` lines of the input and how they fared, for the
/// format hint.
#[derive(Default)]
struct FirstLines {
    /// Their text (lossy UTF-8); a line over --max-line-bytes is left out.
    lines: Vec<String>,
    samples: usize,
    malformed: usize,
}

impl FirstLines {
    /// The format the lines look like, when none gave a sample, some
    /// failed, and they look like another format than `asked`.
    fn guess(&self, asked: Format) -> Option<Format> {
        if self.samples > 0 || self.malformed == 0 {
            return None;
        }
        let lines: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        guess_format(&lines).filter(|&guess| guess != asked)
    }
}

/// The parser thread: reads lines, resolves series and sends batches of
/// about `batch_samples` samples until the input ends or the writer hangs
/// up; returns the first lines for the format hint.
fn parse_input<R: BufRead>(
    db: &Db,
    reader: &mut LineReader<R>,
    mut parser: CachingParser,
    batch_samples: usize,
    to_writer: SyncSender<Batch>,
    recycled: Receiver<Batch>,
) -> std::io::Result<FirstLines> {
    let max_line_bytes = reader.max_line_bytes();
    let mut batch = Batch::default();
    let mut first = FirstLines::default();
    while let Some((line_no, line)) = reader.next_line()? {
        batch.last_line = line_no;
        let is_first = line_no <= GUESS_LINES;
        let raw = match line {
            Line::Complete(raw) => raw,
            Line::TooLong { len } => {
                let error = ParseError::line_too_long(line_no, len, max_line_bytes);
                let message = format!("{error} (--max-line-bytes)");
                batch.failures.push(Failure::Malformed(message));
                first.malformed += usize::from(is_first);
                continue;
            }
        };
        if is_first {
            first.lines.push(String::from_utf8_lossy(raw).into_owned());
        }
        let before = batch.samples.len();
        let Batch {
            new_series,
            samples,
            failures,
            ..
        } = &mut batch;
        let parsed = parser.parse_line(
            line_no,
            raw,
            samples,
            |_, key| db.series(key).map(|series| new_series.push(series)),
            |e| failures.push(Failure::Rejected(line_no, e)),
        );
        if let Err(e) = parsed {
            batch.failures.push(Failure::Malformed(e.to_string()));
            first.malformed += usize::from(is_first);
        }
        batch.warnings.extend(parser.take_warnings());
        batch.metadata.extend(parser.take_metadata());
        let added = batch.samples.len() - before;
        if is_first {
            first.samples += added;
        }
        batch
            .sample_lines
            .extend(std::iter::repeat_n(line_no, added));
        if batch.samples.len() >= batch_samples {
            let next = recycled.try_recv().unwrap_or_default();
            if to_writer.send(std::mem::replace(&mut batch, next)).is_err() {
                return Ok(first);
            }
        }
    }
    // A closed channel means the writer failed; it reports why.
    let _ = to_writer.send(batch);
    Ok(first)
}

/// The writer: appends every batch, flushes every `FLUSH_EVERY_SAMPLES`
/// and fills in the summary; returns at the end of the input or on the
/// first write error.
fn write_batches(
    db: &Db,
    bar: &ProgressBar,
    batches: &Receiver<Batch>,
    recycle: &mpsc::Sender<Batch>,
    summary: &mut Summary,
) -> Result<(), Error> {
    let mut series: Vec<SeriesRef> = Vec::new();
    let mut since_flush = 0u64;
    for mut batch in batches {
        summary.lines = batch.last_line;
        series.append(&mut batch.new_series);
        for failure in batch.failures.drain(..) {
            match failure {
                Failure::Malformed(message) => summary.malformed(message),
                Failure::Rejected(line, error) => summary.rejected(line, &error),
            }
        }
        for warning in batch.warnings.drain(..) {
            summary.warning(&warning);
        }
        if !batch.metadata.is_empty() {
            summary
                .metadata_families
                .extend(batch.metadata.iter().map(|(family, _)| family.clone()));
            db.set_metadata(batch.metadata.drain(..))?;
        }
        for (samples, lines) in batch
            .samples
            .chunks(MAX_BATCH_SAMPLES)
            .zip(batch.sample_lines.chunks(MAX_BATCH_SAMPLES))
        {
            let refs: Vec<(&SeriesRef, i64, f64)> = samples
                .iter()
                .filter_map(|s| {
                    let series = series.get(s.series as usize)?;
                    Some((series, s.timestamp_ms, s.value))
                })
                .collect();
            let outcome = db.append_batch(&refs)?;
            for (index, error) in &outcome.rejected {
                summary.rejected(lines.get(*index).copied().unwrap_or(0), error);
            }
            summary.samples += outcome.accepted as u64;
            since_flush += outcome.accepted as u64;
        }
        batch.samples.clear();
        batch.sample_lines.clear();
        // The parser may have finished; then the batch is simply dropped.
        let _ = recycle.send(batch);
        if since_flush >= FLUSH_EVERY_SAMPLES {
            bar.set_message("flushing");
            db.flush()?;
            bar.set_message("");
            since_flush = 0;
        }
    }
    Ok(())
}

/// How an import opens the database (see the module doc).
fn bulk_load_options() -> Options {
    Options {
        sync: SyncMode::Never,
        flush_complete_partitions: false,
        out_of_order_window_ms: i64::MAX,
        // Nothing is immutable while any timestamp is accepted; `strata
        // compact` afterwards merges and rolls the import up.
        background_compaction: false,
        ..Options::default()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
