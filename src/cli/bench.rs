//! `strata bench write`: write throughput and head memory, measured.
//!
//! Every configuration runs for a fixed wall time against a fresh database
//! in a temporary directory (or `--dir`), then flushes, and reports
//! samples/s, bytes/sample on disk and the time to flush. The memory
//! figure comes from the process's resident set (Linux `/proc/self/statm`)
//! before and after filling many series, so it is a measurement, not an
//! estimate from struct sizes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use strata::{Db, Error, Options, SeriesKey, SeriesRef, SyncMode};

use super::inspect::dir_size;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchKind,
}

#[derive(clap::Subcommand)]
enum BenchKind {
    /// Write throughput per sync mode and API, and head memory per series.
    ///
    /// Without options runs the whole matrix: {1 writer with handles,
    /// 2 writers with handles, batches of --batch samples across --series
    /// series from 1 and 2 writers} x {never, interval, always}.
    Write(WriteArgs),
}

#[derive(clap::Args, Clone)]
struct WriteArgs {
    /// Series written to (each writer owns an equal share).
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// Samples per append_batch call in the batch runs.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Seconds each configuration runs.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Only this sync mode: never, interval (1 s) or always.
    #[arg(long)]
    sync: Option<String>,
    /// Series filled for the memory measurement.
    #[arg(long, default_value_t = 100_000)]
    memory_series: usize,
    /// Directory for the databases (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(args: &BenchArgs) -> Result<ExitCode, Error> {
    match &args.what {
        BenchKind::Write(write) => run_write(write),
    }
}

#[derive(Clone, Copy)]
enum Api {
    Handles,
    Batches,
}

fn parse_sync(name: &str) -> Result<SyncMode, Error> {
    match name {
        "never" => Ok(SyncMode::Never),
        "interval" => Ok(SyncMode::Interval(1000)),
        "always" => Ok(SyncMode::Always),
        other => Err(Error::Input(strata::InputError::FormatLimit(format!(
            "unknown sync mode {other:?}: use never, interval or always"
        )))),
    }
}

fn sync_name(sync: SyncMode) -> &'static str {
    match sync {
        SyncMode::Never => "never",
        SyncMode::Interval(_) => "interval",
        SyncMode::Always => "always",
    }
}

fn run_write(args: &WriteArgs) -> Result<ExitCode, Error> {
    let temp;
    let base = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp =
                tempfile::tempdir().map_err(|e| Error::io("create", "temporary directory", e))?;
            temp.path().to_path_buf()
        }
    };
    let syncs = match &args.sync {
        Some(name) => vec![parse_sync(name)?],
        None => vec![SyncMode::Never, SyncMode::Interval(1000), SyncMode::Always],
    };
    // First, while the allocator holds no freed memory to hide growth.
    memory_run(&base.join("memory"), args.memory_series)?;
    println!(
        "strata bench write: {} series, batches of {}, {:.1} s per run, {} cores",
        args.series,
        args.batch,
        args.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<9} {:<8} {:>7} {:>14} {:>12} {:>10} {:>9}",
        "sync", "api", "writers", "samples", "M samples/s", "B/sample", "flush s"
    );
    let mut run_id = 0;
    for &sync in &syncs {
        for (api, writers) in [
            (Api::Handles, 1),
            (Api::Handles, 2),
            (Api::Batches, 1),
            (Api::Batches, 2),
        ] {
            run_id += 1;
            let dir = base.join(format!("run-{run_id}"));
            let result = write_run(&dir, sync, api, writers, args)?;
            println!(
                "{:<9} {:<8} {:>7} {:>14} {:>12.2} {:>10.3} {:>9.3}",
                sync_name(sync),
                match api {
                    Api::Handles => "handles",
                    Api::Batches => "batches",
                },
                writers,
                result.samples,
                result.samples as f64 / result.seconds / 1e6,
                result.disk_bytes as f64 / result.samples.max(1) as f64,
                result.flush_seconds,
            );
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove", &dir, e))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

struct RunResult {
    samples: u64,
    seconds: f64,
    disk_bytes: u64,
    flush_seconds: f64,
}

fn bench_key(i: usize) -> Result<SeriesKey, Error> {
    Ok(SeriesKey::new(
        "bench_requests_total",
        &[
            ("instance", format!("host-{:04}", i / 10)),
            ("shard", (i % 10).to_string()),
        ],
    )?)
}

fn write_run(
    dir: &PathBuf,
    sync: SyncMode,
    api: Api,
    writers: usize,
    args: &WriteArgs,
) -> Result<RunResult, Error> {
    let db = Db::open(
        dir,
        Options {
            sync,
            flush_complete_partitions: false,
            ..Options::default()
        },
    )?;
    let refs: Vec<SeriesRef> = (0..args.series)
        .map(|i| db.series(&bench_key(i)?))
        .collect::<Result<_, Error>>()?;
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let samples: u64 = std::thread::scope(|scope| -> Result<u64, Error> {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (db, refs, stop) = (&db, &refs, &stop);
                scope.spawn(move || writer_loop(db, refs, w, writers, api, args.batch, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(args.seconds));
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .sum()
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let flush_started = Instant::now();
    db.close()?;
    let flush_seconds = flush_started.elapsed().as_secs_f64();
    Ok(RunResult {
        samples,
        seconds,
        disk_bytes: dir_size(dir)?,
        flush_seconds,
    })
}

/// Appends to this writer's share of the series, one round (a sample for
/// each series, 1 s apart) after another, until told to stop.
fn writer_loop(
    db: &Db,
    refs: &[SeriesRef],
    writer: usize,
    writers: usize,
    api: Api,
    batch_size: usize,
    stop: &AtomicBool,
) -> Result<u64, Error> {
    let mine: Vec<&SeriesRef> = refs.iter().skip(writer).step_by(writers).collect();
    let mut written = 0u64;
    let mut round = 0i64;
    let mut batch: Vec<(&SeriesRef, i64, f64)> = Vec::with_capacity(batch_size);
    let mut value = 0.0f64;
    while !stop.load(Ordering::Relaxed) {
        let ts = 1_700_000_000_000 + round * 1000;
        for &series in &mine {
            value += 1.0;
            match api {
                Api::Handles => {
                    db.append_ref(series, ts, value)?;
                    written += 1;
                }
                Api::Batches => {
                    batch.push((series, ts, value));
                    if batch.len() == batch_size {
                        written += db.append_batch(&batch)?.accepted as u64;
                        batch.clear();
                    }
                }
            }
        }
        round += 1;
    }
    if !batch.is_empty() {
        written += db.append_batch(&batch)?.accepted as u64;
    }
    Ok(written)
}

/// Resident memory of this process in bytes (Linux), if known.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Fills `count` series with 120 samples each (one open chunk, as in a
/// live head) and reports resident memory per series.
fn memory_run(dir: &PathBuf, count: usize) -> Result<(), Error> {
    let db = Db::open(
        dir,
        Options {
            sync: SyncMode::Never,
            flush_complete_partitions: false,
            ..Options::default()
        },
    )?;
    let before = resident_bytes();
    let refs: Vec<SeriesRef> = (0..count)
        .map(|i| db.series(&bench_key(i)?))
        .collect::<Result<_, Error>>()?;
    let created = resident_bytes();
    // Batches of 1,000, as a scrape loop would write them: larger batches
    // would count the batch buffers as head memory.
    let mut batch = Vec::with_capacity(1000);
    for round in 0..120i64 {
        for (start, chunk) in refs.chunks(1000).enumerate() {
            batch.clear();
            batch.extend(chunk.iter().enumerate().map(|(i, s)| {
                (
                    s,
                    round * 15_000,
                    (round * (start * 1000 + i) as i64) as f64,
                )
            }));
            db.append_batch(&batch)?;
        }
    }
    let after = resident_bytes();
    let data = db.stats().head_data_bytes;
    match (before, created, after) {
        (Some(before), Some(created), Some(after)) => {
            let per = |bytes: u64| bytes as f64 / count as f64;
            let per_series = per(after.saturating_sub(before));
            let data_per_series = data as f64 / count as f64;
            println!(
                "head memory: {count} series x 120 samples: {per_series:.0} bytes/series resident \
                 ({:.0} for the empty series and index, {:.0} after samples arrive), \
                 of which {data_per_series:.0} compressed sample bytes -> {:.0} bytes/series overhead",
                per(created.saturating_sub(before)),
                per(after.saturating_sub(created)),
                per_series - data_per_series
            );
        }
        _ => println!("head memory: /proc/self/statm not available on this system"),
    }
    drop(db);
    std::fs::remove_dir_all(dir).map_err(|e| Error::io("remove", dir, e))
}
