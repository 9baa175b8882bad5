//! `strata bench`: the write benchmark suite, measured, never estimated.
//!
//! - `bench write` writes one workload (`devops`, `telemetry` or `churn`)
//!   into a fresh database as fast as it can from `--writers` threads, then
//!   closes and reopens it. It reports samples/s, the latency of every
//!   append call (log-bucketed histograms, ±3 %), bytes per sample on disk,
//!   head memory per series (the process's resident set from
//!   `/proc/self/statm`, read before the series exist and after the write
//!   phase, so it is a measurement, not an estimate from struct sizes), and
//!   the times to flush and to reopen. `--json` prints one object instead.
//! - `bench write --matrix` is the older fixed matrix (sync modes × APIs ×
//!   writers for a fixed wall time, and 100,000 series for the memory
//!   figure) that docs/PERFORMANCE.md shows.
//! - `bench query` writes a workload (or opens an existing directory) and
//!   times the read path three ways on the same data: `Db::select` (every
//!   series materialised), the streaming read (`select_series` and one
//!   reused column buffer, one thread) and PromQL through
//!   `strata::range_query` / `instant_query`: a full scan, the workload's
//!   dashboard queries (devops: TSBS-style aggregations; telemetry: the
//!   demo's KPI rules; churn: rates and active series) and raw samples of
//!   one series and one metric. Every query reports the stored samples it
//!   reads per second, and per core: select and read run on one thread,
//!   PromQL on every core unless its name says "1 core".

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use strata::rollup;
use strata::workload::{
    Churn, ChurnConfig, CollectionPoint, Devops, DevopsConfig, CHURN_METRIC, DEVOPS_CPU_FIELDS,
};
use strata::{
    instant_query, parse_expr, parse_selector, range_query, Db, Error, Options, QueryError,
    QueryOptions, QueryValue, SeriesColumns, SeriesKey, SeriesRef, SyncMode, TimeRange,
};
use strata::{CompactionReport, Manifest, SegmentMeta, SegmentWriter};

use super::inspect::dir_size;
use super::kpi;
use super::owned_dir;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchKind,
}

#[derive(clap::Subcommand)]
enum BenchKind {
    /// Write benchmark: samples/s, append latency, bytes/sample, head memory,
    /// flush and reopen times for one workload.
    ///
    /// Generates the workload's simulated time span (--duration) and writes
    /// it as fast as possible into a fresh database: --writers threads each
    /// own a share of the series and append round by round (one sample per
    /// series per interval), in append_batch calls of up to --batch samples
    /// through SeriesRef handles (--batch 1: one append_ref per sample). Then
    /// closes the database (flush to segments), measures the directory and
    /// reopens it, for writing and read-only.
    ///
    /// The head keeps every partition until close (as `strata import`
    /// does), so the flush time covers all the data and the head holds all
    /// of it at the end: simulated time runs thousands of times faster than
    /// the engine's once-a-second background check, so background flushes
    /// would depend on the run's speed (--background-flush allows them).
    ///
    /// Head memory is the growth of the process's resident set (Linux
    /// /proc/self/statm) from before the series are created to the end of
    /// the write phase, per series in the head; it includes the writers'
    /// batch buffers and thread stacks (and, with --background-flush,
    /// memory the allocator kept after flushes).
    ///
    /// With --matrix, runs the older fixed matrix instead: {1, 2 writers} x
    /// {append_ref, append_batch} x {never, interval, always}, each for
    /// --seconds of wall time, after a head memory measurement with
    /// --memory-series series.
    Write(WriteArgs),
    /// Read and query speed: select, streaming read and PromQL on the same
    /// data.
    ///
    /// Writes a workload (same options as `bench write`) into --dir or a
    /// temporary directory, closes it, opens it read-only and times each
    /// query --repeat times (the median is reported): a full scan as
    /// select, as streaming read and as PromQL sum_over_time (on one core
    /// and on all), then workload-specific PromQL queries over the data's
    /// span (devops: avg(avg_over_time(cpu_usage_guest[1m])) at 1m, max by
    /// (hostname) (max_over_time(cpu_usage_guest[1h])) at 1h, sum by
    /// (hostname) (rate(cpu_usage_user[5m])) at 1m; telemetry: the demo's
    /// KPI rules; churn: rates and active series) and raw samples of one
    /// series and one metric three ways. Samples/s count the stored
    /// samples each query's selectors read. With --dir pointing at an
    /// existing database, nothing is written: the queries run on what is
    /// there (the workload is recognized by its metrics unless --workload
    /// says otherwise).
    Query(QueryArgs),
    /// Compaction: bytes/sample before and after, throughput, and its
    /// effect on append latency; or (--year) the size of a year of 1 h
    /// rollups.
    ///
    /// Writes a workload (same options as `bench write`; use --duration 24h
    /// --background-flush for the documented figures) starting on a 2 h
    /// partition boundary, so that the data is in one segment per 2 h
    /// partition, with background compaction off. Reports the segments and
    /// bytes/sample, copies the directory, then runs Db::compact() on the
    /// original alone (timed: raw samples merged and rolled up per second,
    /// on one thread) and reports every tier's segments and size after it.
    /// On the copy, one writer thread appends the workload's next rounds
    /// (after the written data) while Db::compact() runs (at least 2000
    /// calls), then as many calls again with no compaction running: the
    /// latency of its calls with and without a concurrent compaction.
    /// (With --writers above 1 and --background-flush, a writer running
    /// ahead gets partitions flushed under the others, whose late samples
    /// are rejected: the report counts them.)
    ///
    /// With --year: no database; one year (--days) of 1 h rollup buckets
    /// of the demo's series (--instances instances of its collection
    /// points, its seed), made by rolling up one sample per series per
    /// minute, written through the rollup store into one segment file:
    /// its bytes, bytes per bucket and per series.
    Compact(CompactArgs),
    /// Remote-write load on a real `strata serve` (a child process):
    /// accepted samples/s, request latency, the server's peak RSS.
    Serve(super::bench_serve::ServeBenchArgs),
}

/// The data a benchmark writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum WorkloadKind {
    /// TSBS cpu-only: hosts x 10 cpu_* gauges (random walks in 0..100) every
    /// 10 s, with TSBS's host tags.
    Devops,
    /// The demo's collection points (gateway, scheduler, agents, spawn
    /// queue, inbox, heartbeats): counters, gauges, histograms every 1 s,
    /// 58 series per simulated instance.
    Telemetry,
    /// High cardinality: --series pods alive at once, each one series
    /// (container_cpu_usage_seconds_total{namespace, pod}) every 10 s; pods
    /// end after a random --lifetime and new pods (new series) replace them.
    Churn,
}

impl WorkloadKind {
    fn name(self) -> &'static str {
        match self {
            WorkloadKind::Devops => "devops",
            WorkloadKind::Telemetry => "telemetry",
            WorkloadKind::Churn => "churn",
        }
    }

    fn interval_ms(self) -> i64 {
        match self {
            WorkloadKind::Devops | WorkloadKind::Churn => 10_000,
            WorkloadKind::Telemetry => 1000,
        }
    }
}

/// WAL durability.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SyncArg {
    /// Sync the WAL only at flush and close.
    Never,
    /// Sync the WAL at most every 1 s (the engine's default).
    Interval,
    /// Sync the WAL before each append returns (concurrent appends share one
    /// fsync: group commit).
    Always,
}

impl SyncArg {
    fn mode(self) -> SyncMode {
        match self {
            SyncArg::Never => SyncMode::Never,
            SyncArg::Interval => SyncMode::Interval(1000),
            SyncArg::Always => SyncMode::Always,
        }
    }
}

/// Decimals of devops values: a number, or full precision.
#[derive(Clone, Copy, Debug)]
struct Decimals(Option<u32>);

fn parse_decimals(text: &str) -> Result<Decimals, String> {
    if text == "full" {
        return Ok(Decimals(None));
    }
    match text.parse::<u32>() {
        Ok(d) if d <= 15 => Ok(Decimals(Some(d))),
        _ => Err(format!(
            "{text:?} is not a number of decimals: use 0 to 15, or full"
        )),
    }
}

/// Parses `90s`, `30m`, `6h`, `2d`, `500ms` or `1.5h` into milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("duration {text:?} must be positive"));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_ms = match unit.trim() {
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        "" => {
            return Err(format!(
                "{text:?} has no unit: write e.g. 90s, 30m, 6h or 2d (units ms, s, m, h, d)"
            ))
        }
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m, h or d (e.g. 90s, 30m, 6h, 2d)"
            ))
        }
    };
    let value: f64 = number.parse().map_err(|_| {
        format!("{text:?} is not a duration: write a number and a unit, e.g. 90s, 30m, 6h or 2d")
    })?;
    let ms = (value * unit_ms).round();
    if ms.is_nan() || ms < 1.0 {
        return Err(format!("duration {text:?} must be positive"));
    }
    if ms > 100.0 * 365.0 * 86_400_000.0 {
        return Err(format!("duration {text:?} is over 100 years"));
    }
    Ok(ms as i64)
}

/// What to write: shared by `bench write` and `bench query`.
#[derive(clap::Args, Clone, Debug)]
struct WorkloadArgs {
    /// Workload to write [default: devops]. bench query on an existing
    /// --dir: which workload's queries to run (default: recognized by the
    /// metric names).
    #[arg(long, value_enum)]
    workload: Option<WorkloadKind>,
    /// Series written at once. devops: rounded up to whole hosts of 10
    /// series; telemetry: rounded up to whole instances of 58 series;
    /// churn: pods alive at any moment (many more series over the run).
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// Simulated time to write, e.g. 90s, 30m, 6h, 2d. Written as fast as
    /// possible: 6h of devops is 2160 samples per series.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    duration: i64,
    /// Writer threads; each owns an equal share of the series (whole hosts
    /// for devops, whole instances for telemetry).
    #[arg(long, default_value_t = 1)]
    writers: usize,
    /// Samples per append_batch call (at most one round of a writer's
    /// series: a scrape does not wait for the next one), 1 to 1048576.
    /// 1 = one append_ref call per sample.
    #[arg(long, default_value_t = 1000, value_parser = super::parse_batch)]
    batch: usize,
    /// WAL durability: never, interval (fsync every 1 s) or always (fsync
    /// per append, group commit) [default: interval; with --matrix: all
    /// three].
    #[arg(long, value_enum)]
    sync: Option<SyncArg>,
    /// devops only: round values to this many decimals, or `full` for full
    /// precision as TSBS writes them [default: 2].
    #[arg(long, value_parser = parse_decimals)]
    decimals: Option<Decimals>,
    /// churn only: mean lifetime of a pod (each lives uniformly between half
    /// and 1.5 times this), e.g. 15m [default: a quarter of --duration].
    #[arg(long, value_parser = parse_duration)]
    lifetime: Option<i64>,
    /// Seed of the workload generator (same seed, same data).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Let the engine flush complete 2 h partitions in the background while
    /// writing (its default; checked once per second of real time, so how
    /// many partitions get flushed depends on how long the run takes).
    /// Without it the head keeps everything until close.
    #[arg(long)]
    background_flush: bool,
}

#[derive(clap::Args, Clone, Debug)]
struct WriteArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Directory for the database; must be empty or new, and is kept
    /// afterwards (for `bench query --dir`, `inspect`, ...). Default: a
    /// temporary directory, removed at the end. With --matrix: a directory
    /// (new or existing) in which each run creates a new subdirectory
    /// (memory, run-1, ...) and removes it when done; an existing
    /// subdirectory of that name is refused, never reused.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON object with every figure on stdout instead of the
    /// report.
    #[arg(long)]
    json: bool,
    /// Run the older fixed matrix (see above) instead of one workload.
    #[arg(long, conflicts_with_all = ["workload", "duration", "writers", "decimals", "lifetime", "seed", "background_flush", "json"])]
    matrix: bool,
    /// --matrix only: wall-clock seconds each configuration writes (more
    /// than 0, at most 3600).
    #[arg(long, default_value = "2", requires = "matrix", value_parser = parse_seconds)]
    seconds: f64,
    /// --matrix only: series filled (120 samples each) for the head memory
    /// measurement.
    #[arg(long, default_value_t = 100_000, requires = "matrix")]
    memory_series: usize,
}

#[derive(clap::Args, Clone, Debug)]
struct QueryArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Database to query. If it holds a database, nothing is written and the
    /// queries run on its data; if it is empty or new, the workload is
    /// written there and kept. Default: a temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Runs of each query; the median time is reported (and the best).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Print one JSON object with every figure on stdout instead of the
    /// report.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Clone, Debug)]
struct CompactArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Directory for the database; must be empty or new, and is kept
    /// afterwards (compacted). The copy for the latency run is made next
    /// to it and removed. Default: a temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Instead of compacting a workload: the disk size of one year of 1 h
    /// rollups of the demo's series.
    #[arg(long, conflicts_with_all = ["workload", "series", "duration", "writers", "batch", "sync", "decimals", "lifetime", "seed", "background_flush", "dir"])]
    year: bool,
    /// --year only: days of 1 h buckets (1 to 3660).
    #[arg(long, default_value_t = 365, requires = "year", value_parser = clap::value_parser!(u32).range(1..=3660))]
    days: u32,
    /// --year only: simulated instances of the demo (58 series each; the
    /// demo's default is 4), 1 to 1000.
    #[arg(long, default_value_t = 4, requires = "year", value_parser = clap::value_parser!(u32).range(1..=1000))]
    instances: u32,
}

pub fn run(args: &BenchArgs) -> Result<ExitCode, Error> {
    let result = match &args.what {
        BenchKind::Write(write) if write.matrix => run_matrix(write),
        BenchKind::Write(write) => run_write(write),
        BenchKind::Query(query) => run_query(query),
        BenchKind::Compact(compact) if compact.year => run_year_of_rollups(compact),
        BenchKind::Compact(compact) => run_compact(compact),
        BenchKind::Serve(serve) => return super::bench_serve::run(serve),
    };
    match result {
        Err(Failure::Usage(message)) => {
            errln!("strata bench: {message}");
            Ok(ExitCode::from(2))
        }
        Err(Failure::Engine(error)) => Err(error),
        Err(Failure::Query(message)) => {
            errln!("strata bench: query failed: {message}");
            Ok(ExitCode::from(1))
        }
        Ok(code) => Ok(code),
    }
}

/// A bad combination of options (exit 2), an engine error or a query
/// the engine refused (exit 1).
enum Failure {
    Usage(String),
    Engine(Error),
    Query(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Engine(error)
    }
}

type Outcome<T> = std::result::Result<T, Failure>;

// ---------------------------------------------------------------------------
// Plan: the options resolved into one concrete run.

const START_MS: i64 = 1_700_000_000_000;
const TELEMETRY_SERIES_PER_INSTANCE: usize = 58;

#[derive(Clone, Debug)]
struct Plan {
    kind: WorkloadKind,
    /// Series alive at once (hosts x 10, instances x 58, or churn slots).
    live_series: usize,
    /// Hosts (devops) or instances (telemetry); churn: pods alive at once.
    units: usize,
    interval_ms: i64,
    duration_ms: i64,
    rounds: u64,
    writers: usize,
    batch: usize,
    sync: SyncArg,
    decimals: Option<u32>,
    lifetime_ms: Option<i64>,
    seed: u64,
    background_flush: bool,
    /// The first round's timestamp.
    start_ms: i64,
    /// The engine's background compaction (its default: on).
    background_compaction: bool,
}

impl Plan {
    fn new(args: &WorkloadArgs) -> Outcome<Plan> {
        let usage = |m: String| Err(Failure::Usage(m));
        let kind = args.workload.unwrap_or(WorkloadKind::Devops);
        let max_series = Options::default().max_series;
        if args.series == 0 || args.series > max_series {
            return usage(format!(
                "--series must be between 1 and {max_series} (the engine's default series limit)"
            ));
        }
        if args.writers == 0 {
            return usage("--writers must be at least 1".into());
        }
        if args.decimals.is_some() && kind != WorkloadKind::Devops {
            return usage("--decimals applies to --workload devops only".into());
        }
        if args.lifetime.is_some() && kind != WorkloadKind::Churn {
            return usage("--lifetime applies to --workload churn only".into());
        }
        let interval_ms = kind.interval_ms();
        let rounds = (args.duration / interval_ms) as u64;
        if rounds == 0 {
            return usage(format!(
                "--duration {} is shorter than one interval ({}) of the {} workload",
                format_duration_ms(args.duration),
                format_duration_ms(interval_ms),
                kind.name()
            ));
        }
        let (units, live_series) = match kind {
            WorkloadKind::Devops => {
                let hosts = args.series.div_ceil(DEVOPS_CPU_FIELDS.len());
                (hosts, hosts * DEVOPS_CPU_FIELDS.len())
            }
            WorkloadKind::Telemetry => {
                let instances = args.series.div_ceil(TELEMETRY_SERIES_PER_INSTANCE);
                (instances, instances * TELEMETRY_SERIES_PER_INSTANCE)
            }
            WorkloadKind::Churn => (args.series, args.series),
        };
        let lifetime_ms = match kind {
            WorkloadKind::Churn => {
                Some(args.lifetime.unwrap_or(args.duration / 4).max(interval_ms))
            }
            _ => None,
        };
        Ok(Plan {
            kind,
            live_series,
            units,
            interval_ms,
            duration_ms: args.duration,
            rounds,
            writers: args.writers.min(units),
            batch: args.batch,
            sync: args.sync.unwrap_or(SyncArg::Interval),
            decimals: match kind {
                WorkloadKind::Devops => args.decimals.map_or(Some(2), |d| d.0),
                _ => None,
            },
            lifetime_ms,
            seed: args.seed,
            background_flush: args.background_flush,
            start_ms: START_MS,
            background_compaction: Options::default().background_compaction,
        })
    }

    fn options(&self) -> Options {
        Options {
            sync: self.sync.mode(),
            flush_complete_partitions: self.background_flush,
            background_compaction: self.background_compaction,
            ..Options::default()
        }
    }

    fn describe(&self) -> String {
        let what = match self.kind {
            WorkloadKind::Devops => format!(
                "{} series ({} hosts x 10 cpu metrics, {})",
                self.live_series,
                self.units,
                match self.decimals {
                    Some(d) => format!("values with {d} decimals"),
                    None => "full-precision values".into(),
                }
            ),
            WorkloadKind::Telemetry => format!(
                "{} series ({} instances x {TELEMETRY_SERIES_PER_INSTANCE} collection-point series)",
                self.live_series, self.units
            ),
            WorkloadKind::Churn => format!(
                "{} series alive at once, pods living {} on average",
                self.live_series,
                format_duration_ms(self.lifetime_ms.unwrap_or(0))
            ),
        };
        format!(
            "{}, {what}, {} at {} = {} rounds, {} writer{}, {}, sync {}, background flush {}",
            self.kind.name(),
            format_duration_ms(self.duration_ms),
            format_duration_ms(self.interval_ms),
            self.rounds,
            self.writers,
            if self.writers == 1 { "" } else { "s" },
            if self.batch == 1 {
                "append_ref per sample".to_owned()
            } else {
                format!("batches of up to {}", self.batch)
            },
            sync_label(self.sync.mode()),
            if self.background_flush { "on" } else { "off" },
        )
    }
}

fn sync_label(sync: SyncMode) -> &'static str {
    match sync {
        SyncMode::Never => "never",
        SyncMode::Interval(_) => "interval (1 s)",
        SyncMode::Always => "always",
    }
}

fn sync_name(sync: SyncMode) -> &'static str {
    match sync {
        SyncMode::Never => "never",
        SyncMode::Interval(_) => "interval",
        SyncMode::Always => "always",
    }
}

// ---------------------------------------------------------------------------
// Workload shares: what each writer generates.

/// One writer's generator: its values follow the order of its keys.
enum Source {
    Devops(Devops),
    Telemetry {
        points: Vec<CollectionPoint>,
        start_ms: i64,
        round: i64,
    },
    Churn(Churn),
}

impl Source {
    /// Fills `out` with one value per series of this share and returns the
    /// round's timestamp.
    fn next_round(&mut self, out: &mut Vec<f64>) -> i64 {
        out.clear();
        match self {
            Source::Devops(devops) => {
                let (ts, values) = devops.next_round();
                out.extend_from_slice(values);
                ts
            }
            Source::Telemetry {
                points,
                start_ms,
                round,
            } => {
                let ts = *start_ms + *round * 1000;
                *round += 1;
                for point in points.iter_mut() {
                    out.extend_from_slice(point.tick(ts));
                }
                ts
            }
            Source::Churn(churn) => {
                let (ts, values) = churn.next_round();
                out.extend_from_slice(values);
                ts
            }
        }
    }

    /// Positions whose series was replaced by a new one in the last round.
    fn born(&self) -> &[usize] {
        match self {
            Source::Churn(churn) => churn.born(),
            _ => &[],
        }
    }

    fn key(&self, position: usize) -> &SeriesKey {
        match self {
            Source::Churn(churn) => &churn.keys()[position],
            // Other workloads never replace series.
            _ => unreachable!("only churn replaces series"),
        }
    }

    fn series_created(&self) -> u64 {
        match self {
            Source::Churn(churn) => churn.series_created(),
            _ => 0,
        }
    }
}

struct Share {
    source: Source,
    /// The series at the start, in the order of the source's values.
    keys: Vec<SeriesKey>,
}

/// Splits the workload into one share per writer. Devops keys come from
/// one generator over all hosts (TSBS's tags); each writer draws the values
/// of its hosts from its own generator (the same when there is one writer).
/// The second part is that key generator: keep it until the memory has
/// been measured, so that its memory is not freed and reused by the head.
fn make_shares(plan: &Plan) -> (Vec<Share>, Option<Devops>) {
    let writers = plan.writers;
    match plan.kind {
        WorkloadKind::Devops => {
            let config = DevopsConfig {
                hosts: plan.units,
                start_ms: plan.start_ms,
                interval_ms: plan.interval_ms,
                decimals: plan.decimals,
                seed: plan.seed,
            };
            let all = Devops::new(config);
            let fields = DEVOPS_CPU_FIELDS.len();
            let shares = (0..writers)
                .map(|w| {
                    let first = w * plan.units / writers;
                    let end = (w + 1) * plan.units / writers;
                    let seed = if w == 0 {
                        plan.seed
                    } else {
                        plan.seed ^ (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    };
                    Share {
                        keys: all.keys()[first * fields..end * fields].to_vec(),
                        source: Source::Devops(Devops::new(DevopsConfig {
                            hosts: end - first,
                            seed,
                            ..config
                        })),
                    }
                })
                .collect();
            (shares, Some(all))
        }
        WorkloadKind::Telemetry => {
            let shares = (0..writers)
                .map(|w| {
                    let points: Vec<CollectionPoint> = (w..plan.units)
                        .step_by(writers)
                        .flat_map(|i| CollectionPoint::instance(i, plan.seed))
                        .collect();
                    Share {
                        keys: points.iter().flat_map(|p| p.keys().to_vec()).collect(),
                        source: Source::Telemetry {
                            points,
                            start_ms: plan.start_ms,
                            round: 0,
                        },
                    }
                })
                .collect();
            (shares, None)
        }
        WorkloadKind::Churn => {
            let config = ChurnConfig {
                live: plan.units,
                mean_lifetime_ms: plan.lifetime_ms.unwrap_or(plan.duration_ms / 4),
                start_ms: plan.start_ms,
                interval_ms: plan.interval_ms,
                seed: plan.seed,
            };
            let shares = (0..writers)
                .map(|w| {
                    let churn = Churn::shard(config, w, writers);
                    Share {
                        keys: churn.keys().to_vec(),
                        source: Source::Churn(churn),
                    }
                })
                .collect();
            (shares, None)
        }
    }
}

// ---------------------------------------------------------------------------
// Latency histogram.

/// Sub-buckets per power of two: values are kept within 1/32 (3.1 %).
const SUB_BITS: u32 = 5;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) << SUB_BITS;

/// A log-bucketed histogram of nanoseconds: fixed size, no allocation
/// while recording, so it neither slows the writers nor shows up in the
/// head memory figure.
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            max: 0,
        }
    }

    fn index(value: u64) -> usize {
        if value < (1 << SUB_BITS) {
            return value as usize;
        }
        let exponent = 63 - value.leading_zeros();
        let shift = exponent - SUB_BITS;
        let mantissa = ((value >> shift) as usize) & ((1 << SUB_BITS) - 1);
        ((shift as usize + 1) << SUB_BITS) + mantissa
    }

    /// The largest value that lands in bucket `index`.
    fn upper_bound(index: usize) -> u64 {
        if index < (1 << SUB_BITS) {
            return index as u64;
        }
        let shift = (index >> SUB_BITS) - 1;
        let mantissa = (index & ((1 << SUB_BITS) - 1)) as u64;
        let lower = ((1u64 << SUB_BITS) + mantissa) << shift;
        lower.saturating_add((1u64 << shift) - 1)
    }

    /// Records `count` occurrences of `value`.
    fn record(&mut self, value: u64, count: u64) {
        self.counts[Self::index(value)] += count;
        self.total += count;
        self.sum += value as u128 * count as u128;
        self.max = self.max.max(value);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (0..=1): the upper bound of the bucket
    /// holding that rank, never above the largest value recorded.
    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Self::upper_bound(index).min(self.max);
            }
        }
        self.max
    }

    fn mean(&self) -> f64 {
        self.sum as f64 / self.total.max(1) as f64
    }
}

// ---------------------------------------------------------------------------
// The write phase.

#[derive(Default)]
struct WriterResult {
    samples: u64,
    rejected: u64,
    calls: u64,
    series_created: u64,
    /// Time spent generating the workload's values and new series keys.
    generate_ns: u64,
}

/// Appends this writer's share round by round; times every call.
#[allow(clippy::too_many_arguments)]
fn writer_rounds(
    db: &Db,
    mut source: Source,
    mut refs: Vec<SeriesRef>,
    plan: &Plan,
    per_call: &mut Histogram,
    per_sample: &mut Histogram,
    progress: &AtomicU64,
    start: &Barrier,
) -> Result<(WriterResult, Instant, Instant), Error> {
    let mut values = Vec::with_capacity(refs.len());
    let mut result = WriterResult::default();
    let initial = source.series_created();
    start.wait();
    let started = Instant::now();
    for _ in 0..plan.rounds {
        let generating = Instant::now();
        let ts = source.next_round(&mut values);
        result.generate_ns += generating.elapsed().as_nanos() as u64;
        for &position in source.born() {
            refs[position] = db.series(source.key(position))?;
        }
        append_round(
            db,
            &refs,
            ts,
            &values,
            plan.batch,
            per_call,
            per_sample,
            &mut result,
        )?;
        progress.fetch_add(refs.len() as u64, Ordering::Relaxed);
    }
    result.series_created = source.series_created() - initial;
    Ok((result, started, Instant::now()))
}

/// Appends one round, `values[i]` at `ts` to `refs[i]`, in append_batch
/// calls of up to `batch` samples (1: one append_ref per sample), timing
/// every call.
#[allow(clippy::too_many_arguments)]
fn append_round(
    db: &Db,
    refs: &[SeriesRef],
    ts: i64,
    values: &[f64],
    batch_size: usize,
    per_call: &mut Histogram,
    per_sample: &mut Histogram,
    result: &mut WriterResult,
) -> Result<(), Error> {
    if batch_size == 1 {
        for (series, &value) in refs.iter().zip(values) {
            let started = Instant::now();
            db.append_ref(series, ts, value)?;
            let ns = started.elapsed().as_nanos() as u64;
            per_call.record(ns, 1);
            per_sample.record(ns, 1);
        }
        result.samples += refs.len() as u64;
        result.calls += refs.len() as u64;
        return Ok(());
    }
    // A new buffer per round: churn replaces handles between rounds.
    let mut batch = Vec::with_capacity(batch_size.min(refs.len()));
    for (series, values) in refs.chunks(batch_size).zip(values.chunks(batch_size)) {
        batch.clear();
        batch.extend(series.iter().zip(values).map(|(s, &v)| (s, ts, v)));
        let started = Instant::now();
        let outcome = db.append_batch(&batch)?;
        let ns = started.elapsed().as_nanos() as u64;
        let n = batch.len() as u64;
        per_call.record(ns, 1);
        per_sample.record(ns / n, n);
        result.samples += outcome.accepted as u64;
        result.rejected += outcome.rejected.len() as u64;
        result.calls += 1;
    }
    Ok(())
}

/// Every figure of one write run.
struct WriteReport {
    plan: Plan,
    samples: u64,
    rejected: u64,
    calls: u64,
    write_seconds: f64,
    /// Summed over the writers.
    generate_seconds: f64,
    per_call: Histogram,
    per_sample: Histogram,
    /// Distinct series written (churn: all pods).
    series: u64,
    series_setup_seconds: f64,
    rss_before: Option<u64>,
    rss_created: Option<u64>,
    rss_after: Option<u64>,
    head_series: usize,
    /// Series head garbage collection dropped during the write.
    head_series_dropped: u64,
    head_data_bytes: usize,
    background_flushes: u64,
    flush_seconds: f64,
    disk_bytes: u64,
    segment_bytes: u64,
    wal_bytes: u64,
    reopen_seconds: f64,
    reopen_samples_replayed: u64,
    read_only_open_seconds: f64,
}

impl WriteReport {
    /// Time inside append calls, summed over the writers.
    fn append_seconds(&self) -> f64 {
        self.per_call.sum as f64 / 1e9
    }

    /// Samples/s if generating the workload cost nothing: samples over the
    /// writers' average time inside append calls.
    fn samples_per_append_second(&self) -> f64 {
        self.samples as f64 / (self.append_seconds() / self.plan.writers as f64)
    }

    fn per_series(&self, bytes: u64) -> f64 {
        bytes as f64 / self.head_series.max(1) as f64
    }

    /// (total, creating the series, samples) resident growth per series.
    fn rss_per_series(&self) -> Option<(f64, f64, f64)> {
        let (before, created, after) = (self.rss_before?, self.rss_created?, self.rss_after?);
        Some((
            self.per_series(after.saturating_sub(before)),
            self.per_series(created.saturating_sub(before)),
            self.per_series(after.saturating_sub(created)),
        ))
    }
}

fn progress_bar(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{human_pos}}/{{human_len}} samples {{per_sec}} eta {{eta}} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

/// Writes the planned workload into `dir` (which must not hold data),
/// closes, measures and reopens it.
fn write_workload(dir: &Path, plan: &Plan) -> Result<WriteReport, Error> {
    // Generators and buffers first, so that the resident set measured from
    // here on grows with the head only (and the writers' batch buffers).
    // Nothing allocated before the measurement is freed before its end.
    let (shares, _key_generator) = make_shares(plan);
    let mut histograms: Vec<(Histogram, Histogram)> = (0..shares.len())
        .map(|_| (Histogram::new(), Histogram::new()))
        .collect();
    let (sources, keys): (Vec<Source>, Vec<Vec<SeriesKey>>) =
        shares.into_iter().map(|s| (s.source, s.keys)).unzip();
    let db = Db::open(dir, super::writable_options(dir, plan.options())?)?;
    let rss_before = resident_bytes();
    let setup_started = Instant::now();
    let mut work = Vec::with_capacity(sources.len());
    for (source, keys) in sources.into_iter().zip(&keys) {
        let refs = keys
            .iter()
            .map(|k| db.series(k))
            .collect::<Result<Vec<_>, Error>>()?;
        work.push((source, refs));
    }
    let series_setup_seconds = setup_started.elapsed().as_secs_f64();
    let initial_series = db.stats().head_series as u64;
    let rss_created = resident_bytes();

    let total = plan.live_series as u64 * plan.rounds;
    let bar = progress_bar(total, "writing");
    let progress = AtomicU64::new(0);
    let barrier = Barrier::new(work.len() + 1);
    let (results, write_seconds) = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .into_iter()
            .zip(histograms.iter_mut())
            .map(|((source, refs), (per_call, per_sample))| {
                let (db, progress, barrier) = (&db, &progress, &barrier);
                scope.spawn(move || {
                    writer_rounds(
                        db, source, refs, plan, per_call, per_sample, progress, barrier,
                    )
                })
            })
            .collect();
        barrier.wait();
        while !bar.is_hidden() && !handles.iter().all(|h| h.is_finished()) {
            bar.set_position(progress.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(100));
        }
        // The write phase: from the first writer's start to the last one's
        // end, as the writers saw it.
        let mut results = Vec::new();
        let mut span: Option<(Instant, Instant)> = None;
        for handle in handles {
            let (result, started, finished) = handle
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            span = Some(span.map_or((started, finished), |(s, e)| {
                (s.min(started), e.max(finished))
            }));
            results.push(result);
        }
        let seconds = span.map_or(0.0, |(s, e)| e.duration_since(s).as_secs_f64());
        Ok::<_, Error>((results, seconds))
    })?;
    bar.set_position(total);
    let rss_after = resident_bytes();
    let stats = db.stats();
    drop(keys);

    bar.set_message("flushing (close)");
    let flush_started = Instant::now();
    db.close()?;
    let flush_seconds = flush_started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let disk_bytes = dir_size(dir)?;
    let segment_bytes = dir_size(&dir.join("segments"))?;
    let wal_bytes = dir_size(&dir.join("wal"))?;

    let reopen_started = Instant::now();
    let db = Db::open(dir, super::writable_options(dir, plan.options())?)?;
    let reopen_seconds = reopen_started.elapsed().as_secs_f64();
    let reopen_samples_replayed = db.recovery_report().samples_replayed;
    db.close()?;
    let read_only_started = Instant::now();
    let read_only = Db::open_read_only(dir)?;
    let read_only_open_seconds = read_only_started.elapsed().as_secs_f64();
    drop(read_only);

    let mut per_call = Histogram::new();
    let mut per_sample = Histogram::new();
    for (call, sample) in &histograms {
        per_call.merge(call);
        per_sample.merge(sample);
    }
    Ok(WriteReport {
        plan: plan.clone(),
        samples: results.iter().map(|r| r.samples).sum(),
        rejected: results.iter().map(|r| r.rejected).sum(),
        calls: results.iter().map(|r| r.calls).sum(),
        write_seconds,
        generate_seconds: results.iter().map(|r| r.generate_ns).sum::<u64>() as f64 / 1e9,
        per_call,
        per_sample,
        series: initial_series + results.iter().map(|r| r.series_created).sum::<u64>(),
        series_setup_seconds,
        rss_before,
        rss_created,
        rss_after,
        head_series: stats.head_series,
        head_series_dropped: stats.head_series_dropped,
        head_data_bytes: stats.head_data_bytes,
        background_flushes: stats.flushes,
        flush_seconds,
        disk_bytes,
        segment_bytes,
        wal_bytes,
        reopen_seconds,
        reopen_samples_replayed,
        read_only_open_seconds,
    })
}

/// A directory to write into: `--dir` (empty or new, kept) or a temporary
/// one (removed when the guard drops).
fn fresh_dir(dir: &Option<PathBuf>) -> Outcome<(PathBuf, Option<tempfile::TempDir>)> {
    match dir {
        Some(dir) => {
            if let Ok(mut entries) = std::fs::read_dir(dir) {
                if entries.next().is_some() {
                    return Err(Failure::Usage(format!(
                        "--dir {} is not empty: the benchmark writes into an empty or new directory",
                        dir.display()
                    )));
                }
            } else if dir.exists() {
                return Err(Failure::Usage(format!(
                    "--dir {} is not a directory",
                    dir.display()
                )));
            }
            Ok((dir.clone(), None))
        }
        None => {
            let temp =
                tempfile::tempdir().map_err(|e| Error::io("create", "temporary directory", e))?;
            Ok((temp.path().join("db"), Some(temp)))
        }
    }
}

fn run_write(args: &WriteArgs) -> Outcome<ExitCode> {
    let plan = Plan::new(&args.workload)?;
    let (dir, _temp) = fresh_dir(&args.dir)?;
    let report = write_workload(&dir, &plan)?;
    if args.json {
        outln!("{}", write_json(&report, &dir, args.dir.is_some()).render())?;
    } else {
        print_write(&report, &dir, args.dir.is_some())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn print_write(r: &WriteReport, dir: &Path, kept: bool) -> Result<(), Error> {
    let plan = &r.plan;
    outln!("strata bench write: {}", plan.describe())?;
    outln!(
        "  written       {} samples of {} series in {:.3} s = {:.3} M samples/s ({} rejected; {} cores)",
        r.samples,
        r.series,
        r.write_seconds,
        r.samples as f64 / r.write_seconds / 1e6,
        r.rejected,
        cores()
    )?;
    let busy = r.write_seconds * plan.writers as f64;
    outln!(
        "  writers' time {:.0} % in append calls, {:.0} % generating the workload: {:.3} M samples/s \
         counting the time in append calls only",
        100.0 * r.append_seconds() / busy,
        100.0 * r.generate_seconds / busy,
        r.samples_per_append_second() / 1e6
    )?;
    let calls = if plan.batch == 1 {
        "append_ref".to_owned()
    } else {
        format!(
            "append_batch of {:.0} samples on average",
            r.samples as f64 / r.calls.max(1) as f64
        )
    };
    outln!(
        "  latency/call  p50 {}  p99 {}  p99.9 {}  max {}  ({} calls, {calls})",
        format_ns(r.per_call.quantile(0.5)),
        format_ns(r.per_call.quantile(0.99)),
        format_ns(r.per_call.quantile(0.999)),
        format_ns(r.per_call.max),
        r.calls,
    )?;
    outln!(
        "  per sample    p50 {}  p99 {}  p99.9 {}  (a call's time / its samples, over samples)",
        format_ns(r.per_sample.quantile(0.5)),
        format_ns(r.per_sample.quantile(0.99)),
        format_ns(r.per_sample.quantile(0.999)),
    )?;
    outln!(
        "  on disk       {} bytes = {:.3} bytes/sample after close (segments {}, WAL {}, manifest and lock {})",
        r.disk_bytes,
        r.disk_bytes as f64 / r.samples.max(1) as f64,
        r.segment_bytes,
        r.wal_bytes,
        r.disk_bytes.saturating_sub(r.segment_bytes + r.wal_bytes),
    )?;
    let data = r.per_series(r.head_data_bytes as u64);
    match r.rss_per_series() {
        Some((total, created, samples)) => outln!(
            "  head memory   {total:.0} bytes/series resident ({created:.0} creating the series, \
             {samples:.0} while writing) for {} head series; {data:.0} bytes/series of compressed \
             samples in the head -> {:.0} bytes/series overhead",
            r.head_series,
            total - data
        )?,
        None => outln!(
            "  head memory   {data:.0} bytes/series of compressed samples for {} head series \
             (resident set unknown: no /proc/self/statm)",
            r.head_series
        )?,
    }
    if r.background_flushes > 0 {
        outln!(
            "                ({} background flushes during the write: the head held only the \
             unflushed partitions at the end; the resident figure includes memory the \
             allocator kept)",
            r.background_flushes
        )?;
    }
    outln!(
        "  flush         {:.3} s (close)   reopen {:.3} s ({} samples replayed)   read-only open {:.3} s   series setup {:.3} s",
        r.flush_seconds,
        r.reopen_seconds,
        r.reopen_samples_replayed,
        r.read_only_open_seconds,
        r.series_setup_seconds,
    )?;
    outln!(
        "  series        {} written, {} alive at once, {} in the head at the end ({} dropped from it after their flush)",
        r.series,
        plan.live_series,
        r.head_series,
        r.head_series_dropped
    )?;
    if kept {
        outln!("  data          kept in {}", dir.display())?;
    }
    Ok(())
}

fn write_json(r: &WriteReport, dir: &Path, kept: bool) -> Json {
    let plan = &r.plan;
    let mut json = Json::default();
    json.str("bench", "write")
        .str("workload", plan.kind.name())
        .int("series", r.series)
        .int("live_series", plan.live_series as u64)
        .int("rounds", plan.rounds)
        .int("interval_ms", plan.interval_ms as u64)
        .int("duration_ms", plan.duration_ms as u64)
        .int("writers", plan.writers as u64)
        .int("batch", plan.batch as u64)
        .str("sync", sync_name(plan.sync.mode()))
        .opt_int("decimals", plan.decimals.map(u64::from))
        .opt_int("lifetime_ms", plan.lifetime_ms.map(|l| l as u64))
        .int("seed", plan.seed)
        .bool("background_flush", plan.background_flush)
        .int("cores", cores() as u64)
        .int("samples", r.samples)
        .int("rejected", r.rejected)
        .num("write_seconds", r.write_seconds)
        .num("samples_per_second", r.samples as f64 / r.write_seconds)
        .num("append_seconds", r.append_seconds())
        .num("generate_seconds", r.generate_seconds)
        .num("samples_per_append_second", r.samples_per_append_second())
        .int("calls", r.calls);
    for (prefix, h) in [
        ("latency_call", &r.per_call),
        ("latency_sample", &r.per_sample),
    ] {
        json.int(&format!("{prefix}_p50_ns"), h.quantile(0.5))
            .int(&format!("{prefix}_p99_ns"), h.quantile(0.99))
            .int(&format!("{prefix}_p999_ns"), h.quantile(0.999))
            .int(&format!("{prefix}_max_ns"), h.max)
            .num(&format!("{prefix}_mean_ns"), h.mean());
    }
    json.int("disk_bytes", r.disk_bytes)
        .int("segment_bytes", r.segment_bytes)
        .int("wal_bytes", r.wal_bytes)
        .num(
            "bytes_per_sample",
            r.disk_bytes as f64 / r.samples.max(1) as f64,
        )
        .int("head_series", r.head_series as u64)
        .int("head_data_bytes", r.head_data_bytes as u64)
        .num(
            "head_data_bytes_per_series",
            r.per_series(r.head_data_bytes as u64),
        );
    match r.rss_per_series() {
        Some((total, created, samples)) => json
            .num("head_rss_bytes_per_series", total)
            .num("head_rss_series_bytes_per_series", created)
            .num("head_rss_samples_bytes_per_series", samples)
            .num(
                "head_overhead_bytes_per_series",
                total - r.per_series(r.head_data_bytes as u64),
            ),
        None => json
            .null("head_rss_bytes_per_series")
            .null("head_rss_series_bytes_per_series")
            .null("head_rss_samples_bytes_per_series")
            .null("head_overhead_bytes_per_series"),
    };
    json.int("background_flushes", r.background_flushes)
        .num("series_setup_seconds", r.series_setup_seconds)
        .num("flush_seconds", r.flush_seconds)
        .num("reopen_seconds", r.reopen_seconds)
        .int("reopen_samples_replayed", r.reopen_samples_replayed)
        .num("read_only_open_seconds", r.read_only_open_seconds);
    if kept {
        json.str("dir", &dir.display().to_string());
    } else {
        json.null("dir");
    }
    json
}

// ---------------------------------------------------------------------------
// `bench query`.

/// How a timed query reads the data.
enum QueryKind {
    /// `Db::select` of a selector: every matching series materialised.
    Select { selector: String, range: TimeRange },
    /// The streaming read path on one thread: `select_series`, then every
    /// series read into one reused column buffer and its values summed.
    Read { selector: String, range: TimeRange },
    /// A PromQL range query.
    Range {
        expr: String,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    },
    /// A PromQL instant query.
    Instant { expr: String, time_ms: i64 },
}

/// One timed query.
struct QuerySpec {
    name: String,
    kind: QueryKind,
    /// Threads the query may use: select and read use one; PromQL as
    /// given (0: all cores).
    threads: usize,
    /// The stored samples the query reads (selector and range), counted
    /// once before timing, so that every kind reports samples/s of data.
    reads: (String, TimeRange),
    range_label: String,
}

impl QuerySpec {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            QueryKind::Select { .. } => "select",
            QueryKind::Read { .. } => "read",
            QueryKind::Range { .. } => "promql range",
            QueryKind::Instant { .. } => "promql instant",
        }
    }

    fn text(&self) -> &str {
        match &self.kind {
            QueryKind::Select { selector, .. } | QueryKind::Read { selector, .. } => selector,
            QueryKind::Range { expr, .. } | QueryKind::Instant { expr, .. } => expr,
        }
    }

    fn step_ms(&self) -> Option<i64> {
        match self.kind {
            QueryKind::Range { step_ms, .. } => Some(step_ms),
            _ => None,
        }
    }

    /// Threads actually used: all cores for PromQL with 0.
    fn threads_used(&self) -> usize {
        match (&self.kind, self.threads) {
            (QueryKind::Range { .. } | QueryKind::Instant { .. }, 0) => cores(),
            (_, threads) => threads.max(1),
        }
    }
}

struct QueryResult {
    name: String,
    kind: &'static str,
    text: String,
    range_label: String,
    step_ms: Option<i64>,
    threads: usize,
    /// Series in the answer.
    series: usize,
    /// Stored samples the query reads.
    samples: u64,
    median_seconds: f64,
    best_seconds: f64,
    /// select/read: the sum of every value read; PromQL: the last value
    /// of a one-series answer, else the number of points answered.
    result: f64,
    result_label: &'static str,
}

/// What one run of a query returned: series, and the figure reported.
struct Answer {
    series: usize,
    result: f64,
    result_label: &'static str,
}

/// What one streaming pass over a selector found.
struct Scan {
    series: usize,
    samples: u64,
    /// Of every value read.
    sum: f64,
    /// The oldest and newest timestamps read (0, 0 when nothing was).
    min_ms: i64,
    max_ms: i64,
}

/// Selects `selector` over `range` and reads every series once, on this
/// thread, into one reused column buffer.
fn stream(db: &Db, selector: &str, range: TimeRange) -> Outcome<Scan> {
    let matchers = parse_selector(selector).map_err(Error::from)?;
    let set = db.select_series(&matchers, range)?;
    let mut columns = SeriesColumns::default();
    let (mut samples, mut sum, mut bounds) = (0u64, 0.0, None::<(i64, i64)>);
    for i in 0..set.len() {
        set.read(i, &mut columns)?;
        samples += columns.len() as u64;
        sum += columns.values.iter().sum::<f64>();
        if let (Some(&first), Some(&last)) =
            (columns.timestamps_ms.first(), columns.timestamps_ms.last())
        {
            bounds = Some(bounds.map_or((first, last), |(lo, hi)| (lo.min(first), hi.max(last))));
        }
    }
    let (min_ms, max_ms) = bounds.unwrap_or((0, 0));
    Ok(Scan {
        series: set.len(),
        samples,
        sum,
        min_ms,
        max_ms,
    })
}

const ALL_SERIES: &str = r#"{__name__=~".+"}"#;

fn run_once(db: &Db, spec: &QuerySpec) -> Outcome<Answer> {
    let promql = |value: QueryValue| -> Answer {
        let series = match &value {
            QueryValue::Vector(s) | QueryValue::Matrix(s) => s.as_slice(),
            QueryValue::Scalar(_) | QueryValue::String { .. } => &[],
        };
        match (&value, series) {
            (QueryValue::Scalar(sample), _) => Answer {
                series: 1,
                result: sample.value,
                result_label: "value",
            },
            (_, [one]) => Answer {
                series: 1,
                result: one.samples.last().map_or(f64::NAN, |s| s.value),
                result_label: "last value",
            },
            _ => Answer {
                series: series.len(),
                result: series.iter().map(|s| s.samples.len()).sum::<usize>() as f64,
                result_label: "points",
            },
        }
    };
    let options = QueryOptions {
        threads: spec.threads,
        ..QueryOptions::default()
    };
    let failed = |e: QueryError| match e {
        QueryError::Storage(error) => Failure::Engine(error),
        other => Failure::Query(format!("{}: {other}", spec.text())),
    };
    let parse = |expr: &str| parse_expr(expr).map_err(|e| Failure::Query(format!("{expr}: {e}")));
    Ok(match &spec.kind {
        QueryKind::Select { selector, range } => {
            let matchers = parse_selector(selector).map_err(Error::from)?;
            let selected = db.select(&matchers, *range)?;
            Answer {
                series: selected.len(),
                result: selected
                    .iter()
                    .flat_map(|s| s.samples.iter().map(|x| x.value))
                    .sum(),
                result_label: "sum",
            }
        }
        QueryKind::Read { selector, range } => {
            let scan = stream(db, selector, *range)?;
            Answer {
                series: scan.series,
                result: scan.sum,
                result_label: "sum",
            }
        }
        QueryKind::Range {
            expr,
            start_ms,
            end_ms,
            step_ms,
        } => promql(
            range_query(db, &parse(expr)?, *start_ms, *end_ms, *step_ms, &options)
                .map_err(failed)?,
        ),
        QueryKind::Instant { expr, time_ms } => {
            promql(instant_query(db, &parse(expr)?, *time_ms, &options).map_err(failed)?)
        }
    })
}

fn time_query(db: &Db, spec: &QuerySpec, repeat: usize) -> Outcome<QueryResult> {
    let samples = stream(db, &spec.reads.0, spec.reads.1)?.samples;
    let mut times = Vec::with_capacity(repeat);
    let mut answer = None;
    for _ in 0..repeat {
        let started = Instant::now();
        let this = run_once(db, spec)?;
        times.push(started.elapsed().as_secs_f64());
        answer = Some(this);
    }
    times.sort_by(f64::total_cmp);
    let answer = answer.unwrap_or(Answer {
        series: 0,
        result: f64::NAN,
        result_label: "",
    });
    Ok(QueryResult {
        name: spec.name.clone(),
        kind: spec.kind_name(),
        text: spec.text().to_owned(),
        range_label: spec.range_label.clone(),
        step_ms: spec.step_ms(),
        threads: spec.threads_used(),
        series: answer.series,
        samples,
        median_seconds: times[times.len() / 2],
        best_seconds: times[0],
        result: answer.result,
        result_label: answer.result_label,
    })
}

/// The full scan three ways: today's `select`, the streaming read and a
/// PromQL `sum_over_time` of everything, on one thread (samples/s per
/// core) and on every core.
///
/// Applied to every series at once, `sum_over_time` drops the metric
/// names, and series that differ only by name (devops: ten metrics per
/// host) would collide, which Prometheus (and strata) refuse. So the
/// PromQL form sums per metric and adds the sums:
/// `sum(sum_over_time(m1[R])) + sum(sum_over_time(m2[R])) + …`, R the
/// data's span, evaluated at its newest sample: one query reading every
/// sample once.
fn full_scan_queries(db: &Db, data: &Scan) -> Vec<QuerySpec> {
    let all = (ALL_SERIES.to_owned(), TimeRange::ALL);
    let span_ms = (data.max_ms - data.min_ms).max(1);
    let expr = db
        .label_values("__name__")
        .iter()
        .map(|metric| {
            format!(
                "sum(sum_over_time({metric}[{}]))",
                format_duration_ms(span_ms)
            )
        })
        .collect::<Vec<_>>()
        .join(" + ");
    let scan = |name: &str, kind: QueryKind, threads: usize| QuerySpec {
        name: name.to_owned(),
        kind,
        threads,
        reads: all.clone(),
        range_label: "all".to_owned(),
    };
    let promql = || QueryKind::Instant {
        expr: expr.clone(),
        time_ms: data.max_ms,
    };
    vec![
        scan(
            "full scan, select",
            QueryKind::Select {
                selector: ALL_SERIES.to_owned(),
                range: TimeRange::ALL,
            },
            1,
        ),
        scan(
            "full scan, read",
            QueryKind::Read {
                selector: ALL_SERIES.to_owned(),
                range: TimeRange::ALL,
            },
            1,
        ),
        scan("full scan, sum_over_time, 1 core", promql(), 1),
        scan("full scan, sum_over_time", promql(), 0),
    ]
}

/// The workload's queries after the full scans, over the data's time span.
fn workload_queries(kind: Option<WorkloadKind>, db: &Db, data: &Scan) -> Vec<QuerySpec> {
    let (start_ms, end_ms) = (data.min_ms, data.max_ms);
    let span_label = "all".to_owned();
    // A range query over the whole span; `reads` is what its selector
    // covers, `window_ms` back from the first step included.
    let range = |name: &str, expr: &str, step_ms: i64, reads: &str, window_ms: i64| QuerySpec {
        name: name.to_owned(),
        kind: QueryKind::Range {
            expr: expr.to_owned(),
            start_ms,
            end_ms,
            step_ms,
        },
        threads: 0,
        reads: (
            reads.to_owned(),
            TimeRange::new(start_ms.saturating_sub(window_ms), end_ms),
        ),
        range_label: span_label.clone(),
    };
    // An instant query at the newest sample reading `window_ms` back.
    let instant = |name: &str, expr: &str, reads: &str, window_ms: i64| QuerySpec {
        name: name.to_owned(),
        kind: QueryKind::Instant {
            expr: expr.to_owned(),
            time_ms: end_ms,
        },
        threads: 0,
        reads: (
            reads.to_owned(),
            TimeRange::new(end_ms.saturating_sub(window_ms), end_ms),
        ),
        range_label: format!("last {}", format_duration_ms(window_ms)),
    };
    // One selector three ways: select, read and PromQL's raw samples.
    let raw = |name: &str, selector: &str| {
        let all = (selector.to_owned(), TimeRange::ALL);
        let spec = |suffix: &str, kind: QueryKind, range_label: String| QuerySpec {
            name: format!("{name}, {suffix}"),
            kind,
            threads: 1,
            reads: all.clone(),
            range_label,
        };
        let window_ms = end_ms - start_ms;
        vec![
            spec(
                "select",
                QueryKind::Select {
                    selector: selector.to_owned(),
                    range: TimeRange::ALL,
                },
                "all".to_owned(),
            ),
            spec(
                "read",
                QueryKind::Read {
                    selector: selector.to_owned(),
                    range: TimeRange::ALL,
                },
                "all".to_owned(),
            ),
            spec(
                "promql",
                QueryKind::Instant {
                    expr: format!("{selector}[{}]", format_duration_ms(window_ms.max(1))),
                    time_ms: end_ms,
                },
                span_label.clone(),
            ),
        ]
    };
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    match kind {
        Some(WorkloadKind::Devops) => {
            let mut specs = vec![
                range(
                    "avg of avg_over_time 1m",
                    "avg(avg_over_time(cpu_usage_guest[1m]))",
                    MINUTE,
                    "cpu_usage_guest",
                    MINUTE,
                ),
                range(
                    "max by host of max_over_time 1h",
                    "max by (hostname) (max_over_time(cpu_usage_guest[1h]))",
                    HOUR,
                    "cpu_usage_guest",
                    HOUR,
                ),
                range(
                    "rate by host",
                    "sum by (hostname) (rate(cpu_usage_user[5m]))",
                    MINUTE,
                    "cpu_usage_user",
                    5 * MINUTE,
                ),
            ];
            specs.extend(raw("one series", r#"cpu_usage_user{hostname="host_0"}"#));
            specs.extend(raw("one metric", "cpu_usage_guest"));
            specs
        }
        Some(WorkloadKind::Telemetry) => {
            let mut specs: Vec<QuerySpec> = kpi::DEMO_KPIS
                .iter()
                .map(|rule| instant(rule.name, rule.expr, "{__name__=~\".+\"}", HOUR))
                .collect();
            specs.push(range(
                "requests/s by route",
                "sum by (route) (rate(gateway_requests_total[5m]))",
                MINUTE,
                "gateway_requests_total",
                5 * MINUTE,
            ));
            specs.extend(raw("one metric", "gateway_requests_total"));
            specs
        }
        Some(WorkloadKind::Churn) => {
            let mut specs = vec![
                range(
                    "cpu/s by namespace",
                    &format!("sum by (namespace) (rate({CHURN_METRIC}[5m]))"),
                    MINUTE,
                    CHURN_METRIC,
                    5 * MINUTE,
                ),
                instant(
                    "active series, last 10 min",
                    &format!("count(last_over_time({CHURN_METRIC}[10m]))"),
                    CHURN_METRIC,
                    10 * MINUTE,
                ),
            ];
            specs.extend(raw("one pod", &format!(r#"{CHURN_METRIC}{{pod="0"}}"#)));
            specs
        }
        None => match db.label_values("__name__").into_iter().next() {
            Some(metric) => raw("one metric", &metric),
            None => Vec::new(),
        },
    }
}

/// Which workload wrote the data in `db`, judging by its metric names.
fn recognize(db: &Db) -> Option<WorkloadKind> {
    let metrics = db.label_values("__name__");
    let has = |m: &str| metrics.iter().any(|x| x == m);
    if has("cpu_usage_user") {
        Some(WorkloadKind::Devops)
    } else if has("gateway_requests_total") {
        Some(WorkloadKind::Telemetry)
    } else if has(CHURN_METRIC) {
        Some(WorkloadKind::Churn)
    } else {
        None
    }
}

fn run_query(args: &QueryArgs) -> Outcome<ExitCode> {
    if args.repeat == 0 {
        return Err(Failure::Usage("--repeat must be at least 1".into()));
    }
    let existing = args
        .dir
        .as_ref()
        .filter(|d| d.join("MANIFEST").exists() || d.join("wal").is_dir());
    let (dir, _temp, written) = match existing {
        Some(dir) => (dir.clone(), None, None),
        None => {
            let plan = Plan::new(&args.workload)?;
            let (dir, temp) = fresh_dir(&args.dir)?;
            if !args.json {
                outln!("strata bench query: writing {}", plan.describe())?;
            }
            let report = write_workload(&dir, &plan)?;
            (dir, temp, Some(report))
        }
    };
    let open_started = Instant::now();
    let db = Db::open_read_only(&dir)?;
    let open_seconds = open_started.elapsed().as_secs_f64();
    let kind = match (&written, args.workload.workload) {
        (_, Some(kind)) => Some(kind),
        (Some(report), None) => Some(report.plan.kind),
        (None, None) => recognize(&db),
    };

    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.enable_steady_tick(Duration::from_millis(100));
    bar.set_message("counting");
    let data = stream(&db, ALL_SERIES, TimeRange::ALL)?;
    let mut specs = full_scan_queries(&db, &data);
    specs.extend(workload_queries(kind, &db, &data));
    let mut results = Vec::with_capacity(specs.len());
    for spec in &specs {
        bar.set_message(spec.name.clone());
        results.push(time_query(&db, spec, args.repeat)?);
    }
    bar.finish_and_clear();

    if args.json {
        let mut json = Json::default();
        json.str("bench", "query")
            .str("workload", kind.map_or("unknown", WorkloadKind::name))
            .bool("written", written.is_some());
        match &written {
            Some(report) => json
                .int("samples_written", report.samples)
                .int("series_written", report.series)
                .num(
                    "write_samples_per_second",
                    report.samples as f64 / report.write_seconds,
                ),
            None => json
                .null("samples_written")
                .null("series_written")
                .null("write_samples_per_second"),
        };
        json.num("open_read_only_seconds", open_seconds)
            .int("series", data.series as u64)
            .int("samples", data.samples)
            .int("repeat", args.repeat as u64)
            .int("cores", cores() as u64);
        let queries = results
            .iter()
            .map(|q| {
                let mut o = Json::default();
                o.str("name", &q.name)
                    .str("kind", q.kind)
                    .str("query", &q.text)
                    .str("range", &q.range_label)
                    .opt_int("step_ms", q.step_ms.map(|s| s as u64))
                    .int("threads", q.threads as u64)
                    .int("series", q.series as u64)
                    .int("samples", q.samples)
                    .num("seconds", q.median_seconds)
                    .num("best_seconds", q.best_seconds)
                    .num("samples_per_second", q.samples as f64 / q.median_seconds)
                    .num(
                        "samples_per_second_per_core",
                        q.samples as f64 / q.median_seconds / q.threads as f64,
                    )
                    .num("result", q.result)
                    .str("result_unit", q.result_label);
                o
            })
            .collect();
        json.array("queries", queries);
        outln!("{}", json.render())?;
        return Ok(ExitCode::SUCCESS);
    }

    match &written {
        Some(report) => outln!(
            "  written       {} samples of {} series in {:.3} s ({:.3} M samples/s), closed",
            report.samples,
            report.series,
            report.write_seconds,
            report.samples as f64 / report.write_seconds / 1e6
        )?,
        None => outln!(
            "strata bench query: {} ({} data)",
            dir.display(),
            kind.map_or("unrecognized", WorkloadKind::name)
        )?,
    }
    outln!(
        "  opened read-only in {:.3} s: {} series, {} samples; each query {} times, median time ({} cores)",
        open_seconds,
        data.series,
        data.samples,
        args.repeat,
        cores()
    )?;
    outln!(
        "  {:<36} {:<14} {:>9} {:>5} {:>7} {:>7} {:>10} {:>10} {:>11} {:>11}  result",
        "query",
        "kind",
        "range",
        "step",
        "threads",
        "series",
        "samples",
        "ms",
        "M samples/s",
        "M/s/core",
    )?;
    for q in &results {
        outln!(
            "  {:<36} {:<14} {:>9} {:>5} {:>7} {:>7} {:>10} {:>10.3} {:>11.2} {:>11.2}  {} {}",
            q.name,
            q.kind,
            q.range_label,
            q.step_ms.map_or("-".to_owned(), format_duration_ms),
            q.threads,
            q.series,
            q.samples,
            q.median_seconds * 1e3,
            q.samples as f64 / q.median_seconds / 1e6,
            q.samples as f64 / q.median_seconds / 1e6 / q.threads as f64,
            format_figure(q.result),
            q.result_label
        )?;
    }
    outln!("  queries:")?;
    for q in &results {
        outln!("    {:<36} {}", q.name, q.text)?;
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// bench compact.

/// A writer's calls that must overlap a compaction at least.
const MIN_LATENCY_CALLS: u64 = 2000;

/// The size of one tier of a database, from its manifest.
#[derive(Debug, Default, Clone, Copy)]
struct TierSize {
    /// 0 for raw samples.
    resolution_ms: i64,
    segments: usize,
    bytes: u64,
    /// Samples stored: raw samples, or for a rollup tier its column
    /// samples (seven per bucket).
    samples: u64,
}

impl TierSize {
    /// Buckets of a rollup tier (each stored as seven column samples).
    fn buckets(&self) -> u64 {
        self.samples / rollup::Column::ALL.len() as u64
    }
}

/// Every tier of the database in `dir` (raw first, then by resolution).
fn tier_sizes(dir: &Path) -> Result<Vec<TierSize>, Error> {
    let manifest = Manifest::load(dir)?.unwrap_or_default();
    let mut tiers: Vec<TierSize> = Vec::new();
    for meta in &manifest.segments {
        let path = dir.join("segments").join(SegmentMeta::file_name(meta.seq));
        let bytes = std::fs::metadata(&path)
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        let position = match tiers
            .iter()
            .position(|t| t.resolution_ms == meta.resolution_ms)
        {
            Some(position) => position,
            None => {
                tiers.push(TierSize {
                    resolution_ms: meta.resolution_ms,
                    ..TierSize::default()
                });
                tiers.len() - 1
            }
        };
        let tier = &mut tiers[position];
        tier.segments += 1;
        tier.bytes += bytes;
        tier.samples += meta.sample_count;
    }
    tiers.sort_by_key(|t| t.resolution_ms);
    Ok(tiers)
}

/// Copies the database in `from` (closed) into the empty directory `to`,
/// all but its lock file.
fn copy_db(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(to).map_err(|e| Error::io("create", to, e))?;
    let entries = std::fs::read_dir(from).map_err(|e| Error::io("read directory", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", from, e))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(|e| Error::io("stat", &source, e))?;
        if kind.is_dir() {
            copy_db(&source, &target)?;
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(&source, &target).map_err(|e| Error::io("copy", &source, e))?;
        }
    }
    Ok(())
}

/// One writer thread's appends for the latency figures: the workload's
/// rounds after the written data, one share holding every series.
struct LatencyWriter {
    source: Source,
    refs: Vec<SeriesRef>,
    values: Vec<f64>,
    batch: usize,
}

impl LatencyWriter {
    fn new(db: &Db, plan: &Plan) -> Result<LatencyWriter, Error> {
        let next = Plan {
            writers: 1,
            start_ms: plan.start_ms + plan.rounds as i64 * plan.interval_ms,
            ..plan.clone()
        };
        let (mut shares, _) = make_shares(&next);
        let share = shares.swap_remove(0);
        let refs = share
            .keys
            .iter()
            .map(|k| db.series(k))
            .collect::<Result<_, Error>>()?;
        Ok(LatencyWriter {
            source: share.source,
            refs,
            values: Vec::new(),
            batch: plan.batch,
        })
    }

    /// Appends rounds while `keep_going(calls so far)`; the latency of
    /// each call, and the seconds taken.
    fn run(
        &mut self,
        db: &Db,
        keep_going: impl Fn(u64) -> bool,
    ) -> Result<(Histogram, f64), Error> {
        let mut per_call = Histogram::new();
        let mut per_sample = Histogram::new();
        let mut result = WriterResult::default();
        let started = Instant::now();
        while keep_going(result.calls) {
            let ts = self.source.next_round(&mut self.values);
            for &position in self.source.born() {
                self.refs[position] = db.series(self.source.key(position))?;
            }
            append_round(
                db,
                &self.refs,
                ts,
                &self.values,
                self.batch,
                &mut per_call,
                &mut per_sample,
                &mut result,
            )?;
        }
        Ok((per_call, started.elapsed().as_secs_f64()))
    }
}

/// The latency run on the database in `dir`: appends during a
/// `Db::compact()` (at least [`MIN_LATENCY_CALLS`] calls), then as many
/// calls with nothing else running.
struct LatencyRun {
    compaction: CompactionReport,
    compaction_seconds: f64,
    during: Histogram,
    during_seconds: f64,
    alone: Histogram,
    alone_seconds: f64,
}

fn latency_run(dir: &Path, plan: &Plan) -> Result<LatencyRun, Error> {
    let db = Db::open(dir, plan.options())?;
    let mut writer = LatencyWriter::new(&db, plan)?;
    let compacted = AtomicBool::new(false);
    let (compaction, during) = std::thread::scope(|scope| {
        let compaction = scope.spawn(|| {
            let started = Instant::now();
            let report = db.compact();
            compacted.store(true, Ordering::Release);
            report.map(|r| (r, started.elapsed().as_secs_f64()))
        });
        let during = writer.run(&db, |calls| {
            calls < MIN_LATENCY_CALLS || !compacted.load(Ordering::Acquire)
        });
        let compaction = compaction
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (compaction, during)
    });
    let (compaction, compaction_seconds) = compaction?;
    let (during, during_seconds) = during?;
    let calls = during.total;
    let (alone, alone_seconds) = writer.run(&db, |done| done < calls)?;
    db.close()?;
    Ok(LatencyRun {
        compaction,
        compaction_seconds,
        during,
        during_seconds,
        alone,
        alone_seconds,
    })
}

fn run_compact(args: &CompactArgs) -> Outcome<ExitCode> {
    let mut plan = Plan::new(&args.workload)?;
    let partition_ms = Options::default().partition_duration_ms;
    plan.start_ms = rollup::bucket_start(START_MS, partition_ms);
    plan.background_compaction = false;
    let (dir, _temp) = fresh_dir(&args.dir)?;
    let written = write_workload(&dir, &plan)?;
    let before = tier_sizes(&dir)?;

    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let copy =
        tempfile::tempdir_in(parent).map_err(|e| Error::io("create", "temporary directory", e))?;
    copy_db(&dir, copy.path())?;

    let db = Db::open(&dir, plan.options())?;
    let started = Instant::now();
    let report = db.compact()?;
    let compact_seconds = started.elapsed().as_secs_f64();
    db.close()?;
    let after = tier_sizes(&dir)?;
    let latency = latency_run(copy.path(), &plan)?;
    drop(copy);

    print_compact(
        &written,
        &before,
        &report,
        compact_seconds,
        &after,
        &latency,
        args.dir.as_deref(),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn tier_name(resolution_ms: i64) -> String {
    match resolution_ms {
        0 => "raw".to_owned(),
        ms => format_duration_ms(ms),
    }
}

fn print_tiers(tiers: &[TierSize], raw_samples: u64) -> Result<(), Error> {
    for tier in tiers {
        let name = tier_name(tier.resolution_ms);
        if tier.resolution_ms == 0 {
            outln!(
                "    {name:<5} {:>4} segments {:>12} bytes  {} samples = {:.3} bytes/sample",
                tier.segments,
                tier.bytes,
                tier.samples,
                tier.bytes as f64 / tier.samples.max(1) as f64
            )?;
        } else {
            outln!(
                "    {name:<5} {:>4} segments {:>12} bytes  {} buckets = {:.3} bytes/bucket, \
                 {:.4} bytes per raw sample written",
                tier.segments,
                tier.bytes,
                tier.buckets(),
                tier.bytes as f64 / tier.buckets().max(1) as f64,
                tier.bytes as f64 / raw_samples.max(1) as f64
            )?;
        }
    }
    Ok(())
}

fn print_latency(label: &str, h: &Histogram, seconds: f64) -> Result<(), Error> {
    outln!(
        "    {label:<17} p50 {}  p99 {}  p99.9 {}  max {}  ({} calls in {seconds:.3} s)",
        format_ns(h.quantile(0.5)),
        format_ns(h.quantile(0.99)),
        format_ns(h.quantile(0.999)),
        format_ns(h.max),
        h.total
    )
}

#[allow(clippy::too_many_arguments)]
fn print_compact(
    written: &WriteReport,
    before: &[TierSize],
    report: &CompactionReport,
    compact_seconds: f64,
    after: &[TierSize],
    latency: &LatencyRun,
    kept: Option<&Path>,
) -> Result<(), Error> {
    let plan = &written.plan;
    outln!("strata bench compact: {}", plan.describe())?;
    outln!(
        "  written       {} samples of {} series in {:.3} s ({} rejected), from {} (a 2 h \
         partition boundary), background compaction off",
        written.samples,
        written.series,
        written.write_seconds,
        written.rejected,
        super::inspect::format_utc(plan.start_ms)
    )?;
    outln!("  before        (segments as flushed)")?;
    print_tiers(before, written.samples)?;
    outln!(
        "  compact       Db::compact() in {compact_seconds:.3} s = {:.3} M raw samples/s \
         (one thread; {} samples read): {} segments merged into {}, {} rollup segments \
         written, {} deleted and {} rewritten by retention, {} bytes written, {} removed",
        written.samples as f64 / compact_seconds / 1e6,
        report.samples_read,
        report.segments_merged,
        report.merged_segments_written,
        report.rollup_segments_written,
        report.segments_deleted,
        report.segments_rewritten,
        report.bytes_written,
        report.bytes_removed,
    )?;
    outln!("  after")?;
    print_tiers(after, written.samples)?;
    let bytes_per_sample = |tiers: &[TierSize]| {
        tiers
            .iter()
            .find(|t| t.resolution_ms == 0)
            .map_or(0.0, |t| t.bytes as f64 / t.samples.max(1) as f64)
    };
    let (raw_before, raw_after) = (bytes_per_sample(before), bytes_per_sample(after));
    outln!(
        "  raw tier      {raw_before:.3} -> {raw_after:.3} bytes/sample ({:+.1} %)",
        100.0 * (raw_after - raw_before) / raw_before.max(f64::MIN_POSITIVE)
    )?;
    outln!(
        "  append latency per call, one writer thread appending the next rounds (copy of the \
         database; the compaction there took {:.3} s, {} segments merged)",
        latency.compaction_seconds,
        latency.compaction.segments_merged
    )?;
    print_latency("during compaction", &latency.during, latency.during_seconds)?;
    print_latency("no compaction", &latency.alone, latency.alone_seconds)?;
    if let Some(dir) = kept {
        outln!("  data          kept in {} (compacted)", dir.display())?;
    }
    Ok(())
}

/// The demo's seed for its collection points (src/cli/demo.rs).
const DEMO_SEED: u64 = 42;

/// `bench compact --year`: one year of 1 h rollups of the demo's series in
/// one rollup segment.
fn run_year_of_rollups(args: &CompactArgs) -> Outcome<ExitCode> {
    const HOUR_MS: i64 = 3_600_000;
    const MINUTE_MS: i64 = 60_000;
    let mut points: Vec<CollectionPoint> = (0..args.instances as usize)
        .flat_map(|i| CollectionPoint::instance(i, DEMO_SEED))
        .collect();
    let keys: Vec<SeriesKey> = points.iter().flat_map(|p| p.keys().to_vec()).collect();
    let mut buckets = vec![rollup::Buckets::default(); keys.len()];
    let minutes = i64::from(args.days) * 24 * 60;
    let started = Instant::now();
    for minute in 0..minutes {
        let ts = super::demo::START_MS + minute * MINUTE_MS;
        let values = points.iter_mut().flat_map(|p| p.tick(ts).to_vec());
        for (b, value) in buckets.iter_mut().zip(values) {
            b.push_raw(&[ts], &[value], HOUR_MS);
        }
    }
    let generate_seconds = started.elapsed().as_secs_f64();

    let temp = tempfile::tempdir().map_err(|e| Error::io("create", "temporary directory", e))?;
    let path = temp.path().join("year.seg");
    let started = Instant::now();
    let mut writer = SegmentWriter::create(&path)?;
    for (key, b) in keys.iter().zip(&buckets) {
        rollup::store::add_buckets(&mut writer, key, b)?;
    }
    writer.finish()?;
    let write_seconds = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path)
        .map_err(|e| Error::io("stat", &path, e))?
        .len();
    let bucket_count: u64 = buckets.iter().map(|b| b.len() as u64).sum();
    outln!(
        "strata bench compact --year: {} days of 1 h rollups of the demo's series ({} instances x \
         {TELEMETRY_SERIES_PER_INSTANCE} series = {}), each bucket rolled up from one sample per \
         minute of the demo's collection points",
        args.days,
        args.instances,
        keys.len()
    )?;
    outln!(
        "  buckets       {bucket_count} ({} per series), 7 columns each, generated in {generate_seconds:.3} s",
        bucket_count / keys.len().max(1) as u64
    )?;
    outln!(
        "  rollup segment {bytes} bytes = {:.3} MB: {:.3} bytes/bucket, {:.1} KB per series, \
         written in {write_seconds:.3} s",
        bytes as f64 / 1e6,
        bytes as f64 / bucket_count.max(1) as f64,
        bytes as f64 / keys.len().max(1) as f64 / 1e3,
    )?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// Formatting and JSON.

fn format_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1000..=999_999 => format!("{:.1} us", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

fn format_figure(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

fn format_duration_ms(ms: i64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= size && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A JSON object built field by field (no serde in this crate).
#[derive(Default)]
struct Json {
    fields: Vec<(String, String)>,
}

impl Json {
    fn raw(&mut self, key: &str, value: String) -> &mut Self {
        self.fields.push((json_string(key), value));
        self
    }

    fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.raw(key, json_string(value))
    }

    fn int(&mut self, key: &str, value: u64) -> &mut Self {
        self.raw(key, value.to_string())
    }

    fn opt_int(&mut self, key: &str, value: Option<u64>) -> &mut Self {
        match value {
            Some(v) => self.int(key, v),
            None => self.null(key),
        }
    }

    /// Non-finite numbers become null.
    fn num(&mut self, key: &str, value: f64) -> &mut Self {
        if value.is_finite() {
            self.raw(key, format!("{value}"))
        } else {
            self.null(key)
        }
    }

    fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.raw(key, value.to_string())
    }

    fn null(&mut self, key: &str) -> &mut Self {
        self.raw(key, "null".into())
    }

    fn array(&mut self, key: &str, items: Vec<Json>) -> &mut Self {
        let items: Vec<String> = items.iter().map(Json::render).collect();
        self.raw(key, format!("[{}]", items.join(",")))
    }

    fn render(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    strata::ingest::push_json_string(&mut out, text);
    out
}

// ---------------------------------------------------------------------------
// `bench write --matrix`: the fixed matrix of docs/PERFORMANCE.md.

#[derive(Clone, Copy)]
enum Api {
    Handles,
    Batches,
}

/// The command named in the marker of the directories --matrix creates.
const MATRIX: &str = "strata bench write --matrix";

/// Longest --seconds of a --matrix run: an hour.
const MAX_MATRIX_SECONDS: f64 = 3600.0;

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= MAX_MATRIX_SECONDS => Ok(seconds),
        _ => Err(format!(
            "expected a number of seconds above 0 and at most {MAX_MATRIX_SECONDS}"
        )),
    }
}

fn run_matrix(args: &WriteArgs) -> Outcome<ExitCode> {
    let series = args.workload.series;
    let batch = args.workload.batch;
    let max_series = Options::default().max_series;
    if series == 0 || series > max_series || args.memory_series > max_series {
        return Err(Failure::Usage(format!(
            "--series and --memory-series must be between 1 and {max_series}"
        )));
    }
    let temp;
    let base = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp =
                tempfile::tempdir().map_err(|e| Error::io("create", "temporary directory", e))?;
            temp.path().to_path_buf()
        }
    };
    let syncs = match args.workload.sync {
        Some(sync) => vec![sync.mode()],
        None => vec![SyncMode::Never, SyncMode::Interval(1000), SyncMode::Always],
    };
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    // First, while the allocator holds no freed memory to hide growth.
    memory_run(&base.join("memory"), args.memory_series)?;
    outln!(
        "strata bench write --matrix: {series} series, batches of {batch}, {:.1} s per run, {} cores",
        args.seconds,
        cores()
    )?;
    outln!(
        "{:<9} {:<8} {:>7} {:>14} {:>12} {:>10} {:>9}",
        "sync",
        "api",
        "writers",
        "samples",
        "M samples/s",
        "B/sample",
        "flush s"
    )?;
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
            owned_dir::create_new(&dir, MATRIX)?;
            let result = matrix_run(&dir, sync, api, writers, series, batch, args.seconds)?;
            outln!(
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
            )?;
            owned_dir::remove(&dir, MATRIX)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

struct MatrixResult {
    samples: u64,
    seconds: f64,
    disk_bytes: u64,
    flush_seconds: f64,
}

fn bench_key(i: usize) -> Result<SeriesKey, Error> {
    Ok(SeriesKey::from_pairs(
        "bench_requests_total",
        &[
            ("instance", format!("host-{:04}", i / 10)),
            ("shard", (i % 10).to_string()),
        ],
    )?)
}

fn matrix_run(
    dir: &PathBuf,
    sync: SyncMode,
    api: Api,
    writers: usize,
    series: usize,
    batch: usize,
    seconds: f64,
) -> Result<MatrixResult, Error> {
    let db = Db::open(
        dir,
        Options {
            sync,
            flush_complete_partitions: false,
            ..Options::default()
        },
    )?;
    let refs: Vec<SeriesRef> = (0..series)
        .map(|i| db.series(&bench_key(i)?))
        .collect::<Result<_, Error>>()?;
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let samples: u64 = std::thread::scope(|scope| -> Result<u64, Error> {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (db, refs, stop) = (&db, &refs, &stop);
                scope.spawn(move || matrix_writer(db, refs, w, writers, api, batch, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds));
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
    Ok(MatrixResult {
        samples,
        seconds,
        disk_bytes: dir_size(dir)?,
        flush_seconds,
    })
}

/// Appends to this writer's share of the series, one round (a sample for
/// each series, 1 s apart) after another, until told to stop.
fn matrix_writer(
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
fn memory_run(dir: &Path, count: usize) -> Result<(), Error> {
    owned_dir::create_new(dir, MATRIX)?;
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
            // Every timestamp is new, so a rejection is a bug worth stopping for.
            let outcome = db.append_batch(&batch)?;
            if let Some((_, reason)) = outcome.rejected.into_iter().next() {
                return Err(reason.into());
            }
        }
    }
    let after = resident_bytes();
    let data = db.stats().head_data_bytes;
    match (before, created, after) {
        (Some(before), Some(created), Some(after)) => {
            let per = |bytes: u64| bytes as f64 / count.max(1) as f64;
            let per_series = per(after.saturating_sub(before));
            let data_per_series = data as f64 / count.max(1) as f64;
            outln!(
                "head memory: {count} series x 120 samples: {per_series:.0} bytes/series resident \
                 ({:.0} for the empty series and index, {:.0} after samples arrive), \
                 of which {data_per_series:.0} compressed sample bytes -> {:.0} bytes/series overhead",
                per(created.saturating_sub(before)),
                per(after.saturating_sub(created)),
                per_series - data_per_series
            )?;
        }
        _ => outln!("head memory: /proc/self/statm not available on this system")?,
    }
    drop(db);
    owned_dir::remove(dir, MATRIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_reject_clearly() {
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("30m"), Ok(1_800_000));
        assert_eq!(parse_duration("6h"), Ok(21_600_000));
        assert_eq!(parse_duration("2d"), Ok(172_800_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000));
        assert_eq!(parse_duration("500ms"), Ok(500));
        for bad in ["", "6", "6x", "h", "-1h", "0s", "1..2h", "1e9d", "6 hours"] {
            let error = parse_duration(bad).unwrap_err();
            assert!(!error.is_empty(), "{bad}");
        }
        assert!(parse_duration("6x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("6").unwrap_err().contains("no unit"));
    }

    #[test]
    fn histogram_quantiles_are_close_and_ordered() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v, 1);
        }
        for (q, exact) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - exact).abs() / exact < 0.035, "q {q}: {got}");
        }
        assert_eq!(h.quantile(1.0), 100_000);
        assert!(h.quantile(0.5) <= h.quantile(0.99));
        for v in [0, 1, 31, 32, 33, 1000, u64::MAX / 3, u64::MAX] {
            let i = Histogram::index(v);
            assert!(i < BUCKETS);
            assert!(Histogram::upper_bound(i) >= v, "{v}");
            if i > 0 {
                assert!(Histogram::upper_bound(i - 1) < v, "{v}");
            }
        }
    }

    #[test]
    fn json_escapes_and_nulls() {
        let mut json = Json::default();
        json.str("a\"", "x\\\n").num("n", f64::NAN).int("i", 3);
        assert_eq!(json.render(), r#"{"a\"":"x\\\n","n":null,"i":3}"#);
    }
}
