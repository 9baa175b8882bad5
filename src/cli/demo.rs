//! `strata demo`: simulated collection points → segment file → KPIs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use strata::{Error, Matcher, Sample, Segment, SegmentWriter, SeriesKey, TimeRange};

use super::workload::{one_second_range, CollectionPoint};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo's data; created if missing.
    #[arg(long, default_value = "strata-demo")]
    dir: PathBuf,
    /// Simulated hours of telemetry at 1 s resolution.
    #[arg(long, default_value_t = 3.0)]
    hours: f64,
    /// Simulated instances, each running every collection point.
    #[arg(long, default_value_t = 4)]
    instances: usize,
    /// Threads that run the collection points.
    #[arg(long, default_value_t = 4)]
    threads: usize,
}

/// 2026-11-30T00:00:00Z: a fixed start keeps runs comparable.
const START_MS: i64 = 1_796_083_200_000;

type SeriesData = Vec<(SeriesKey, Vec<Sample>)>;

pub fn run(args: &DemoArgs) -> Result<ExitCode, Error> {
    let seconds = (args.hours * 3600.0).round().max(1.0) as i64;
    let threads = args.threads.clamp(1, args.instances.max(1));
    std::fs::create_dir_all(&args.dir).map_err(|e| Error::io("create directory", &args.dir, e))?;
    let path = args.dir.join("demo.seg");

    println!(
        "Simulating {} instances x 6 collection points for {:.1} h at 1 s on {threads} threads...",
        args.instances,
        seconds as f64 / 3600.0
    );
    let started = Instant::now();
    let data = simulate(args.instances, threads, seconds);
    let simulate_secs = started.elapsed().as_secs_f64();
    let sample_count: usize = data.iter().map(|(_, s)| s.len()).sum();

    let started = Instant::now();
    let mut writer = SegmentWriter::create(&path)?;
    for (key, samples) in &data {
        writer.add_series(key, samples)?;
    }
    let summary = writer.finish()?;
    let write_secs = started.elapsed().as_secs_f64();
    drop(data);

    let started = Instant::now();
    let segment = Segment::open(&path)?;
    let mut scanned = 0usize;
    for id in 0..segment.series_count() as u32 {
        for sample in segment.samples(id, TimeRange::ALL) {
            sample?;
            scanned += 1;
        }
    }
    let scan_secs = started.elapsed().as_secs_f64();

    println!();
    println!("KPIs read back from {}:", path.display());
    print_kpis(&segment, seconds)?;
    println!();
    println!("Storage:");
    println!(
        "  series {:>10}   samples {:>12}   chunks {:>8}",
        summary.series_count, sample_count, summary.chunk_count
    );
    println!(
        "  file   {:>10} bytes = {:.3} bytes/sample (Gorilla alone would be ~1.37 on Facebook's data; raw is 16)",
        summary.file_len,
        summary.file_len as f64 / sample_count as f64
    );
    println!(
        "  simulate {:>8.2} s   encode+write+fsync {:>6.2} s = {:>6.1} M samples/s   scan {:>6.2} s = {:>6.1} M samples/s ({scanned} samples)",
        simulate_secs,
        write_secs,
        sample_count as f64 / write_secs / 1e6,
        scan_secs,
        scanned as f64 / scan_secs / 1e6,
    );
    println!();
    println!(
        "Next: strata inspect {}   strata verify {}",
        path.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs every instance's collection points, spread over `threads`.
fn simulate(instances: usize, threads: usize, seconds: i64) -> SeriesData {
    let per_thread: Vec<SeriesData> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut out = SeriesData::new();
                    for instance in (t..instances).step_by(threads) {
                        for mut point in CollectionPoint::instance(instance, 42) {
                            let mut columns: Vec<Vec<Sample>> =
                                vec![Vec::with_capacity(seconds as usize); point.keys().len()];
                            for s in 0..seconds {
                                let time_ms = START_MS + s * 1000;
                                for (column, &value) in columns.iter_mut().zip(point.tick(time_ms))
                                {
                                    column.push(Sample::new(time_ms, value));
                                }
                            }
                            out.extend(point.keys().iter().cloned().zip(columns));
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    per_thread.into_iter().flatten().collect()
}

/// All samples of the series selected by `matchers`.
fn select(segment: &Segment, matchers: &[Matcher]) -> Result<Vec<(SeriesKey, Vec<Sample>)>, Error> {
    segment
        .select(matchers)
        .into_iter()
        .filter_map(|id| segment.series_key(id).map(|key| (id, key.clone())))
        .map(|(id, key)| Ok((key, segment.read_samples(id, TimeRange::ALL)?)))
        .collect()
}

fn metric(name: &str) -> Matcher {
    Matcher::equal("__name__", name)
}

/// Counter increase over the whole range (the simulation has no resets).
fn increase(samples: &[Sample]) -> f64 {
    match (samples.first(), samples.last()) {
        (Some(first), Some(last)) => last.value - first.value,
        _ => 0.0,
    }
}

fn print_kpis(segment: &Segment, seconds: i64) -> Result<(), Error> {
    let range = one_second_range(START_MS, seconds);
    let span_s = (range.max_time_ms - range.min_time_ms) as f64 / 1000.0;

    let requests = select(segment, &[metric("gateway_requests_total")])?;
    let total: f64 = requests.iter().map(|(_, s)| increase(s)).sum();
    let errors: f64 = requests
        .iter()
        .filter(|(k, _)| k.get("code") == Some("500"))
        .map(|(_, s)| increase(s))
        .sum();
    println!("  gateway requests/s           {:>10.1}", total / span_s);
    println!(
        "  gateway error ratio          {:>10.3} %",
        100.0 * errors / total.max(1.0)
    );

    let mut buckets: BTreeMap<u64, f64> = BTreeMap::new();
    for (key, samples) in select(
        segment,
        &[metric("gateway_request_duration_seconds_bucket")],
    )? {
        let le = match key.get("le") {
            Some("+Inf") => f64::INFINITY,
            Some(le) => le.parse().unwrap_or(f64::INFINITY),
            None => continue,
        };
        *buckets.entry(le.to_bits()).or_default() += increase(&samples);
    }
    let cumulative: Vec<(f64, f64)> = buckets
        .into_iter()
        .map(|(le, count)| (f64::from_bits(le), count))
        .collect();
    for q in [0.5, 0.99] {
        println!(
            "  gateway latency p{:<2}          {:>10.1} ms",
            (q * 100.0) as u32,
            1000.0 * histogram_quantile(q, &cumulative)
        );
    }

    let depth = select(segment, &[metric("spawn_queue_depth")])?;
    let max_depth = depth
        .iter()
        .flat_map(|(_, s)| s.iter().map(|s| s.value))
        .fold(0.0, f64::max);
    println!("  spawn queue depth, max       {max_depth:>10.0}");

    let sessions = select(segment, &[metric("agent_sessions_active")])?;
    let (sum, n) = sessions
        .iter()
        .flat_map(|(_, s)| s.iter())
        .fold((0.0, 0usize), |(sum, n), s| (sum + s.value, n + 1));
    println!(
        "  agent sessions, mean         {:>10.1}",
        sum / n.max(1) as f64
    );

    let jobs = select(segment, &[metric("scheduler_jobs_total")])?;
    let jobs_done: f64 = jobs.iter().map(|(_, s)| increase(s)).sum();
    println!(
        "  scheduler jobs/min           {:>10.1}",
        60.0 * jobs_done / span_s
    );

    let up = select(segment, &[metric("heartbeat_up")])?;
    let (ups, beats) = up
        .iter()
        .flat_map(|(_, s)| s.iter())
        .fold((0.0, 0usize), |(ups, n), s| (ups + s.value, n + 1));
    println!(
        "  heartbeat availability       {:>10.3} %",
        100.0 * ups / beats.max(1) as f64
    );
    Ok(())
}

/// Prometheus-style quantile from cumulative (upper bound, count) buckets:
/// linear interpolation inside the bucket that holds the rank.
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return f64::NAN;
    };
    let rank = q * total;
    let mut lower = 0.0;
    let mut below = 0.0;
    for &(upper, count) in buckets {
        if count >= rank {
            if upper.is_infinite() {
                return lower;
            }
            let inside = count - below;
            return lower
                + (upper - lower)
                    * if inside > 0.0 {
                        (rank - below) / inside
                    } else {
                        0.0
                    };
        }
        lower = upper;
        below = count;
    }
    lower
}
