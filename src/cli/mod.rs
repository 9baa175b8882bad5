//! Command-line parsing and dispatch. Subcommands print what they did and
//! exit 0; on failure they print the error (which names the file, offset
//! and series) and exit 1; bad arguments exit 2.
//!
//! Standard output may be a pipe that closes early (`strata inspect DIR |
//! head`): every write goes through [`outln!`], which returns the error
//! instead of panicking, and a broken pipe ends the command quietly with
//! exit code 0, as if the reader had taken everything it wanted.

/// `println!` that returns an [`strata::Error`] instead of panicking when
/// standard output is closed.
macro_rules! outln {
    () => {
        outln!("")
    };
    ($($arg:tt)*) => {
        $crate::cli::write_line(&mut std::io::stdout().lock(), format_args!($($arg)*))
    };
}

/// `eprintln!` that cannot panic: a failed write to standard error has
/// nowhere to be reported, so it is ignored.
macro_rules! errln {
    ($($arg:tt)*) => {{
        let _ = $crate::cli::write_line(&mut std::io::stderr().lock(), format_args!($($arg)*));
    }};
}

mod bench;
mod bench_serve;
mod compact;
mod demo;
mod discover;
mod export;
mod import;
mod inspect;
mod kpi;
mod owned_dir;
mod parquet;
mod plot;
mod query;
mod render;
mod rules;
mod serve;
mod source;
mod time;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strata::POLICY_FILE;
use strata::{Error, Options, RetentionPolicy};

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Embedded time-series storage engine: query, inspect, verify and demo strata data",
    long_about = "strata stores metric samples in Gorilla-compressed, checksummed segment \
                  files. This tool queries them with PromQL and works offline on them: \
                  no running writer needed, and a running writer is not disturbed."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate telemetry collection points, store them, judge KPIs.
    ///
    /// Generates counters, gauges and histograms (gateway, scheduler, agent
    /// sessions, spawn queue, inbox, heartbeats) at 1 s resolution from
    /// several threads, writes them to a data directory, evaluates the KPIs
    /// (PromQL rules with thresholds, each OK or BREACH; see `strata kpis`)
    /// and prints them with the storage figures.
    Demo(demo::DemoArgs),
    /// Load samples from text (canonical TSV, Prometheus text, Influx line
    /// protocol) into a data directory.
    ///
    /// Prints a progress bar on a terminal and a summary at the end:
    /// samples, series, and the line numbers and reasons of malformed lines
    /// and rejected samples. Exits 1 if any line failed; the rest is kept.
    Import(import::ImportArgs),
    /// Write series as text (TSV, CSV, JSON lines), sorted by series then
    /// time; values parse back to the same f64 bits.
    Export(export::ExportArgs),
    /// Describe a data directory (tiers, segments, retention policy, WAL),
    /// a segment file, or a directory of segment files.
    ///
    /// Prints series, chunks, samples, bytes/sample, time range and the
    /// encodings in use; for a data directory, per tier (raw and each
    /// rollup resolution) its segments, blocks, bytes, samples (buckets for
    /// rollup tiers), how far it is rolled up and where retention cut it.
    Inspect {
        /// A segment file (*.seg) or a directory holding them.
        path: PathBuf,
        /// Also list every series with its sample count and time range.
        #[arg(long)]
        series: bool,
    },
    /// Merge segments into larger blocks, roll raw samples up into the
    /// rollup tiers, and delete what the retention policy no longer keeps.
    ///
    /// Opens the data directory for writing (no other process may have it
    /// open: stop the writer first), writes what is still in the WAL to
    /// segments, compacts, prints what it did and closes. The retention
    /// policy is DIR/strata.toml (or --retention FILE; the default keeps
    /// raw samples 15d, 1-minute rollups 90d, 1-hour rollups 2y; see
    /// docs/RETENTION.md). Age is measured against the newest sample or
    /// the wall clock (--now), whichever is earlier.
    ///
    /// Safe to interrupt at any point: every replacement is committed by
    /// one atomic manifest update, and files left over by an interrupted
    /// run are removed at the next open. No sample is lost or doubled.
    Compact(compact::CompactArgs),
    /// Evaluate a PromQL expression: an instant query (--time) or a range
    /// query (--start, --end, --step), as a table, CSV, Prometheus API
    /// JSON, or a chart (--plot).
    ///
    /// Reads a data directory (read-only, beside a running writer or not)
    /// or a single segment file.
    Query(query::QueryArgs),
    /// Evaluate the demo's KPIs (PromQL with thresholds) on any data:
    /// value, threshold and OK / BREACH for each.
    Kpis(kpi::KpisArgs),
    /// List label names, sorted.
    Labels(discover::LabelsArgs),
    /// List the values of one label, sorted.
    #[command(name = "label-values")]
    LabelValues(discover::LabelValuesArgs),
    /// List the series matching a selector, in Prometheus text form.
    Series(discover::SeriesArgs),
    /// List metric families' type, unit and help text (from # TYPE, # HELP
    /// and # UNIT lines, Parquet files or the metrics recorder).
    Metadata(discover::MetadataArgs),
    /// Serve the database over HTTP: Prometheus remote write and read,
    /// Influx line protocol, the Prometheus query API (Grafana), /metrics.
    Serve(serve::ServeArgs),
    /// Prometheus rule files: `strata rules check FILE...` validates them
    /// as `promtool check rules` does.
    Rules(rules::RulesArgs),
    /// Report series counts like `promtool tsdb analyze`: top metric
    /// names, labels by distinct values, label pairs by series.
    Cardinality(discover::CardinalityArgs),
    /// Benchmarks: write throughput, latency, bytes/sample and head memory
    /// (`write`), query speed (`query`).
    Bench(bench::BenchArgs),
    /// Check every checksum and decode every chunk.
    ///
    /// For a data directory, also checks each segment file against the
    /// manifest's pin and lists what opening it for writing would repair
    /// (RECOVERY lines). Exits 0 when everything is intact and nothing would
    /// change, 1 otherwise, naming the file, offset and series of each
    /// damaged part.
    Verify {
        /// A data directory, a segment file (*.seg) or a directory of them.
        path: PathBuf,
    },
    /// Make a damaged data directory open again: rebuild a missing or
    /// damaged MANIFEST from the segment files present, and drop entries
    /// whose segment file is missing or damaged.
    ///
    /// Nothing is deleted: damaged files are moved to DIR/quarantine/. A
    /// rebuilt manifest replays every WAL file from the start, so no sample
    /// still on disk is left out. Prints each action; a directory that
    /// needs nothing is left as it is. Takes the writer lock.
    Repair {
        /// The data directory.
        dir: PathBuf,
    },
}

fn repair(dir: &std::path::Path) -> Result<ExitCode, strata::Error> {
    let report = strata::Db::repair(dir, &strata::Options::default())?;
    if report.actions.is_empty() {
        outln!("{}: nothing to repair", dir.display())?;
    }
    for action in &report.actions {
        outln!("repaired: {action}")?;
    }
    for q in &report.quarantined {
        outln!(
            "moved {} -> {}: {}",
            q.from.display(),
            q.to.display(),
            q.reason
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Inspect { path, series } => inspect::inspect(&path, series),
        Command::Compact(args) => compact::run(&args),
        Command::Verify { path } => inspect::verify(&path),
        Command::Repair { dir } => repair(&dir),
        Command::Bench(args) => bench::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Query(args) => query::run(&args),
        Command::Kpis(args) => kpi::run(&args),
        Command::Labels(args) => discover::labels(&args),
        Command::LabelValues(args) => discover::label_values(&args),
        Command::Series(args) => discover::series(&args),
        Command::Cardinality(args) => discover::cardinality_report(&args),
        Command::Metadata(args) => discover::metadata(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Rules(args) => rules::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            errln!("strata: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Writes one line for [`outln!`] (standard output) and [`errln!`].
pub fn write_line(out: &mut impl Write, args: std::fmt::Arguments<'_>) -> Result<(), Error> {
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| Error::io("write", "standard output", e))
}

/// Whether `error` is a write to a pipe whose reader has gone.
fn is_broken_pipe(error: &Error) -> bool {
    matches!(error, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Where the retention policy in effect for a data directory comes from.
pub enum PolicySource {
    /// A policy file: DIR/strata.toml, or one named on the command line.
    File(PathBuf),
    /// No DIR/strata.toml: [`RetentionPolicy::default`].
    Default,
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicySource::File(path) => write!(f, "from {}", path.display()),
            PolicySource::Default => write!(f, "the default: no {POLICY_FILE}"),
        }
    }
}

/// The retention policy for data directory `dir`: from `file` when given,
/// else from `dir/strata.toml`, else the default.
pub fn retention_policy(
    dir: &Path,
    file: Option<&Path>,
) -> Result<(RetentionPolicy, PolicySource), Error> {
    if let Some(file) = file {
        return Ok((
            RetentionPolicy::load_file(file)?,
            PolicySource::File(file.to_path_buf()),
        ));
    }
    Ok(match RetentionPolicy::load(dir)? {
        Some(policy) => (policy, PolicySource::File(dir.join(POLICY_FILE))),
        None => (RetentionPolicy::default(), PolicySource::Default),
    })
}

/// `base` with the retention policy of `dir/strata.toml` (the default when
/// there is none): every subcommand that opens a data directory for
/// writing builds its options here, so that the directory's policy is the
/// one its compactions apply.
pub fn writable_options(dir: &Path, base: Options) -> Result<Options, Error> {
    let (retention, _) = retention_policy(dir, None)?;
    Ok(Options { retention, ..base })
}

/// `--batch`: 1 to [`strata::MAX_BATCH_SAMPLES`] samples.
pub fn parse_batch(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=strata::MAX_BATCH_SAMPLES).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of samples from 1 to {} (strata::MAX_BATCH_SAMPLES, the most one \
             write batch may carry)",
            strata::MAX_BATCH_SAMPLES
        )),
    }
}
