//! `strata demo`: simulated collection points write into a database from
//! several threads; then KPIs are read back through the query API.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use strata::{Db, Error, Options};

use super::inspect::{dir_size, format_utc};
use super::kpi;
use super::owned_dir;
use strata::workload::{self, CollectionPoint};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Data directory for the demo: created if missing (or used if empty)
    /// and marked with a .strata-owned file. The next demo run replaces
    /// the data in a directory so marked; any other non-empty directory,
    /// or one open by a writer, is refused and left untouched.
    #[arg(long, default_value = "strata-demo")]
    dir: PathBuf,
    /// Simulated hours of telemetry at 1 s resolution (more than 0, at
    /// most 100 years).
    #[arg(long, default_value = "3", value_parser = parse_hours, allow_negative_numbers = true)]
    hours: f64,
    /// Simulated instances, each running every collection point (1 to
    /// 100000).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    instances: u64,
    /// Writer threads; each runs the collection points of some instances
    /// (1 to 1024).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: u64,
}

/// Longest simulated span: 100 years.
const MAX_HOURS: f64 = 100.0 * 365.25 * 24.0;

fn parse_hours(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(hours) if hours > 0.0 && hours <= MAX_HOURS => Ok(hours),
        _ => Err(format!(
            "expected a number of hours above 0 and at most {MAX_HOURS} (100 years)"
        )),
    }
}

/// 2026-12-01T00:00:00Z: a fixed start keeps runs comparable.
pub const START_MS: i64 = 1_796_083_200_000;

pub fn run(args: &DemoArgs) -> Result<ExitCode, Error> {
    let seconds = (args.hours * 3600.0).round().max(1.0) as i64;
    // Both bounded by their value parsers.
    let instances = args.instances as usize;
    let threads = args.threads.min(args.instances) as usize;
    // Read the directory's policy file before replacing anything.
    let options = super::writable_options(&args.dir, Options::default())?;
    if owned_dir::prepare(&args.dir, "strata demo")? {
        outln!("Replacing the previous demo data in {}", args.dir.display())?;
    }
    let db = Db::open(&args.dir, options)?;
    db.set_metadata(workload::collection_point_metadata())?;

    outln!(
        "Simulating {} instances x 6 collection points ({} series) for {:.1} h at 1 s, {threads} writer threads...",
        instances,
        instances * CollectionPoint::instance(0, 0).iter().map(|p| p.keys().len()).sum::<usize>(),
        seconds as f64 / 3600.0
    )?;
    let started = Instant::now();
    let written = simulate(&db, instances, threads, seconds)?;
    let write_secs = started.elapsed().as_secs_f64();
    let head_bytes = db.stats().head_data_bytes;
    let head_series = db.stats().head_series;
    let flush = db.flush()?;
    let stats = db.stats();

    outln!()?;
    // The newest sample: every KPI is judged as of the end of the data.
    let last_ms = START_MS + (seconds - 1) * 1000;
    outln!(
        "KPIs evaluated as PromQL on {} at the last sample, {}:",
        args.dir.display(),
        format_utc(last_ms)
    )?;
    let started = Instant::now();
    kpi::report(&db, kpi::DEMO_KPIS, last_ms)?;
    let query_secs = started.elapsed().as_secs_f64();
    db.close()?;

    let disk = dir_size(&args.dir)?;
    outln!()?;
    outln!("Storage:")?;
    outln!(
        "  written   {written} samples in {write_secs:.2} s = {:.2} M samples/s (WAL sync every 1 s, {} rejected)",
        written as f64 / write_secs / 1e6,
        stats.samples_rejected
    )?;
    outln!(
        "  head      {head_series} series, {:.0} bytes/series of compressed chunks before the last flush",
        head_bytes as f64 / head_series.max(1) as f64
    )?;
    outln!(
        "  segments  {} files after {} flushes (the last wrote {} segments, {} samples)",
        stats.segments,
        stats.flushes,
        flush.segments_written,
        flush.samples_written
    )?;
    outln!(
        "  on disk   {disk} bytes = {:.3} bytes/sample, index and WAL included (raw is 16)",
        disk as f64 / written.max(1) as f64
    )?;
    outln!("  queries   {query_secs:.3} s for the KPIs above")?;
    outln!()?;
    outln!("Next:")?;
    outln!("  strata kpis --db {}", args.dir.display())?;
    outln!(
        "  strata query --db {} 'sum by (route) (rate(gateway_requests_total[5m]))' --start {} --end {} --plot",
        args.dir.display(),
        START_MS / 1000,
        last_ms / 1000
    )?;
    outln!(
        "  strata cardinality --db {0}   strata inspect {0}   strata verify {0}",
        args.dir.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the collection points: each thread owns some instances and, every
/// simulated second, appends one batch with a sample of each of its series
/// through pre-resolved handles. Returns the samples written.
fn simulate(db: &Db, instances: usize, threads: usize, seconds: i64) -> Result<u64, Error> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> Result<u64, Error> {
                    let mut points: Vec<CollectionPoint> = (t..instances)
                        .step_by(threads)
                        .flat_map(|i| CollectionPoint::instance(i, 42))
                        .collect();
                    let refs = points
                        .iter()
                        .map(|p| p.keys().iter().map(|k| db.series(k)).collect())
                        .collect::<Result<Vec<Vec<_>>, Error>>()?;
                    let mut batch = Vec::new();
                    let mut written = 0u64;
                    for s in 0..seconds {
                        let time_ms = START_MS + s * 1000;
                        batch.clear();
                        for (point, refs) in points.iter_mut().zip(&refs) {
                            for (series, &value) in refs.iter().zip(point.tick(time_ms)) {
                                batch.push((series, time_ms, value));
                            }
                        }
                        written += db.append_batch(&batch)?.accepted as u64;
                    }
                    Ok(written)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .sum()
    })
}
