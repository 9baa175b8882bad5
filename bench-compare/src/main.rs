//! `bench-compare`: the same data through strata, tsink and tsz (Gorilla)
//! in one run, and the ratios between them.
//!
//! Three measurements (see README.md for the method and recorded results):
//!
//! 1. **storage**: bytes per sample of the whole directory on disk after
//!    writing the dataset once and closing (strata, tsink), and of the
//!    encoded Gorilla streams, one per series (tsz, no index);
//! 2. **decode**: samples/s reading every series back (strata
//!    `open_read_only` + `select(&[], ALL)`, tsink `list_metrics` +
//!    `select`, tsz stream decode), every result checked bit-exact;
//! 3. **write**: samples/s for a fixed wall time with the same batches
//!    (`--batch` samples per call) and writer threads, once with per-write
//!    fsync (strata `SyncMode::Always`, tsink `WalSyncMode::PerAppend`) and
//!    once without (strata `SyncMode::Never`, tsink `Periodic(1h)` and WAL
//!    off).
//!
//! Data: `--tsv FILE` (canonical `series<TAB>timestamp_ms<TAB>value`) or
//! generated TSBS cpu-only devops data (`--hosts`, `--duration`,
//! `--decimals`). strata is reached only through its public API, so a
//! rerun measures whatever strata's code does at the time.

mod dataset;
mod measure;
mod report;
mod strata_engine;
mod tsink_engine;
mod tsz_codec;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use strata::SyncMode;

use dataset::{parse_decimals, parse_duration_ms, Dataset, Decimals};
use measure::{dir_breakdown, dir_size};
use report::{DecodeRow, Report, Settings, SizeRow, WriteRow};
use tsink_engine::WalSetting;

/// Runs the same data through strata, tsink and tsz and prints the ratios:
/// bytes/sample on disk, decode speed, write throughput.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Read this TSV file (`series<TAB>timestamp_ms<TAB>value`) instead of
    /// generating devops data.
    #[arg(long, value_name = "FILE")]
    tsv: Option<PathBuf>,
    /// devops: hosts (10 cpu metrics each; 10 hosts = 100 series).
    #[arg(long, default_value_t = 10)]
    hosts: usize,
    /// devops: time span at 10 s intervals, e.g. 6h, 30m, 1d.
    #[arg(long, default_value = "6h", value_parser = parse_duration_ms)]
    duration: i64,
    /// devops: round values to this many decimals, or `full`.
    #[arg(long, default_value = "2", value_parser = parse_decimals)]
    decimals: Decimals,
    /// devops: generator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Ingestion order in every phase: `time` (a scrape at a time: one
    /// sample of each series, then the next timestamp) or `series` (all of
    /// one series, then the next; the canonical TSV file's order).
    #[arg(long, default_value = "time", value_parser = ["time", "series"])]
    order: String,
    /// Samples per write call (strata `append_batch`, tsink `insert_rows`),
    /// in every phase.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Wall-clock seconds of each write run.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Writer thread counts to run, e.g. `1,2`.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    writers: Vec<usize>,
    /// Rounds of the write runs: each round runs every configuration once,
    /// strata and tsink alternating; the ratios use the medians.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Repetitions of each decode (and tsz encode); the best time is kept.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Skip the write-throughput runs.
    #[arg(long)]
    no_write: bool,
    /// Skip reading back (decode speed).
    #[arg(long)]
    no_decode: bool,
    /// Parent directory for the databases (default: the system temp dir).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the strata and tsink directories of the storage phase.
    #[arg(long)]
    keep: bool,
    /// Print the results as JSON instead of tables; with a FILE, write the
    /// JSON there and still print the tables.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench-compare: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Progress goes to stderr so `--json` output stays clean.
macro_rules! progress {
    ($($arg:tt)*) => { eprintln!("[bench-compare] {}", format!($($arg)*)) };
}

fn run(args: Args) -> Result<()> {
    if args.batch == 0 || args.writers.contains(&0) || args.seconds <= 0.0 || args.rounds == 0 {
        bail!("--batch, --writers, --seconds and --rounds must be positive");
    }
    let started = Instant::now();
    let mut data = match &args.tsv {
        Some(path) => {
            progress!("loading {}", path.display());
            Dataset::from_tsv(path)?
        }
        None => Dataset::devops(args.hosts, args.duration, args.decimals.0, args.seed)?,
    };
    if args.order == "series" {
        data.use_series_order();
        data.description.push_str("; ingested series by series");
    } else {
        data.description
            .push_str("; ingested in time order (one sample of each series per timestamp)");
    }
    progress!(
        "{} ({} samples) ready in {:.1} s",
        data.description,
        data.samples(),
        started.elapsed().as_secs_f64()
    );
    for &writers in &args.writers {
        if writers > data.keys.len() {
            bail!(
                "--writers {writers} exceeds the {} series (each writer owns whole series)",
                data.keys.len()
            );
        }
    }

    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent).with_context(|| format!("create {}", parent.display()))?;
    let base = tempfile::Builder::new()
        .prefix("bench-compare-")
        .tempdir_in(&parent)
        .with_context(|| format!("create a directory in {}", parent.display()))?;
    let mut report = Report::new(
        &data,
        Settings {
            batch: args.batch,
            write_seconds: args.seconds,
            writers: args.writers.clone(),
            rounds: args.rounds,
            repeat: args.repeat,
        },
    );

    // 1. storage, and the directories the decode phase reads
    let strata_dir = base.path().join("strata");
    let tsink_dir = base.path().join("tsink");
    // 2. decode, reading those directories back (inside storage_phase)
    let storage = storage_phase(&data, &args, &strata_dir, &tsink_dir, &mut report)?;
    report.storage = storage;

    // 3. write throughput, each run in a fresh directory
    if !args.no_write {
        for round in 1..=args.rounds {
            for &writers in &args.writers {
                write_phase(&data, &args, base.path(), writers, round, &mut report)?;
            }
        }
    }

    report.evaluate(data.kind);
    match &args.json {
        Some(path) if path.as_os_str() != "-" => {
            let json = serde_json::to_string_pretty(&report).context("serialize the report")?;
            std::fs::write(path, json + "\n")
                .with_context(|| format!("write {}", path.display()))?;
            report.print();
        }
        Some(_) => println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serialize the report")?
        ),
        None => report.print(),
    }
    if args.keep {
        let kept = base.keep();
        progress!("kept {}", kept.display());
    }
    Ok(())
}

/// A storage row for an engine whose data lives in `dir`:
/// (write, close) seconds from its load.
fn dir_size_row(
    engine: &'static str,
    setting: String,
    dir: &Path,
    samples: f64,
    (write_seconds, close_seconds): (f64, f64),
) -> Result<SizeRow> {
    let size = dir_size(dir)?;
    Ok(SizeRow {
        engine,
        setting,
        bytes: size.bytes,
        files: size.files,
        bytes_per_sample: size.bytes as f64 / samples,
        ratio_to_tsz: 0.0,
        write_seconds,
        close_seconds,
        breakdown: dir_breakdown(dir)?,
    })
}

fn storage_phase(
    data: &Dataset,
    args: &Args,
    strata_dir: &Path,
    tsink_dir: &Path,
    report: &mut Report,
) -> Result<Vec<SizeRow>> {
    let samples = data.samples() as f64;
    let tsink_wal = WalSetting::NoSync;

    progress!("storage: strata writes the dataset once and closes");
    let load = strata_engine::load(strata_dir, data, args.batch)?;
    let strata_row = dir_size_row(
        "strata",
        strata_engine::sync_name(SyncMode::Never).to_owned(),
        strata_dir,
        samples,
        (load.write_seconds, load.close_seconds),
    )?;

    progress!("storage: tsink writes the dataset once and closes");
    let load = tsink_engine::load(tsink_dir, data, args.batch, tsink_wal)?;
    let tsink_row = dir_size_row(
        "tsink",
        tsink_wal.name().to_owned(),
        tsink_dir,
        samples,
        (load.write_seconds, load.close_seconds),
    )?;

    progress!("storage: tsz encodes one stream per series");
    let encoded = tsz_codec::encode_all(data, args.repeat)?;
    let tsz_row = SizeRow {
        engine: "tsz",
        setting: "one Gorilla stream per series, no index".to_owned(),
        bytes: encoded.bytes,
        files: 0,
        bytes_per_sample: encoded.bytes as f64 / samples,
        ratio_to_tsz: 1.0,
        write_seconds: encoded.encode_seconds,
        close_seconds: 0.0,
        breakdown: Vec::new(),
    };
    let mut rows = vec![strata_row, tsink_row, tsz_row];
    let tsz_bytes = encoded.bytes.max(1) as f64;
    for row in &mut rows {
        row.ratio_to_tsz = row.bytes as f64 / tsz_bytes;
    }

    if !args.no_decode {
        progress!("decode: strata reads everything back");
        let read = strata_engine::read_all(strata_dir, data, args.repeat)?;
        report.decode.push(DecodeRow::new(
            "strata",
            "open_read_only + select(&[], TimeRange::ALL)",
            read.samples,
            read.select_seconds,
            read.open_seconds,
        ));
        progress!("decode: strata decodes every sealed chunk");
        let (seconds, samples) = strata_engine::decode_chunks(strata_dir, data, args.repeat)?;
        report.decode.push(DecodeRow::new(
            "strata",
            "sealed chunks: Segment::read_chunk, reused buffer",
            samples,
            seconds,
            0.0,
        ));
        progress!("decode: tsink reads everything back");
        let read = tsink_engine::read_all(tsink_dir, data, tsink_wal, args.repeat)?;
        report.decode.push(DecodeRow::new(
            "tsink",
            "reopen; list_metrics + select per series",
            read.samples,
            read.select_seconds,
            read.open_seconds,
        ));
        progress!("decode: tsz decodes every stream");
        let (seconds, samples) = tsz_codec::decode_all(&encoded, data, args.repeat)?;
        report.decode.push(DecodeRow::new(
            "tsz",
            "StdDecoder per stream",
            samples,
            seconds,
            0.0,
        ));
    }
    Ok(rows)
}

fn write_phase(
    data: &Dataset,
    args: &Args,
    base: &Path,
    writers: usize,
    round: usize,
    report: &mut Report,
) -> Result<()> {
    let runs: [(&str, Option<SyncMode>, Option<WalSetting>); 5] = [
        ("fsync", Some(SyncMode::Always), None),
        ("fsync", None, Some(WalSetting::PerAppend)),
        ("no fsync", Some(SyncMode::Never), None),
        ("no fsync", None, Some(WalSetting::NoSync)),
        ("no fsync", None, Some(WalSetting::Off)),
    ];
    progress!("write round {round}: probing fsync latency for 1 s");
    let probe = measure::fsync_probe(base, 1.0)?;
    report.fsync_probes.push((round, writers, probe));
    for (i, (durability, strata_sync, tsink_wal)) in runs.into_iter().enumerate() {
        let dir = base.join(format!("write-{round}-{writers}-{i}"));
        let (engine, setting, (timing, close_seconds)) = match (strata_sync, tsink_wal) {
            (Some(sync), _) => {
                progress!(
                    "write: strata {} x{writers} for {} s",
                    strata_engine::sync_name(sync),
                    args.seconds
                );
                let result =
                    strata_engine::write_run(&dir, data, sync, writers, args.batch, args.seconds)?;
                ("strata", strata_engine::sync_name(sync), result)
            }
            (None, Some(wal)) => {
                progress!(
                    "write: tsink {} x{writers} for {} s",
                    wal.name(),
                    args.seconds
                );
                let result =
                    tsink_engine::write_run(&dir, data, wal, writers, args.batch, args.seconds)?;
                ("tsink", wal.name().to_owned(), result)
            }
            (None, None) => unreachable!("every run names one engine"),
        };
        let disk = dir_size(&dir)?;
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
        let mut row = WriteRow::new(
            durability,
            engine,
            setting,
            writers,
            timing,
            close_seconds,
            disk.bytes,
        );
        row.round = round;
        report.write.push(row);
    }
    Ok(())
}
