//! Times the PromQL engine on a devops database written by
//! `strata bench query --workload devops --series 1000 --duration 24h
//! --decimals full --dir DIR`.
//!
//! `cargo run --release --example query_engine -- DIR [REPEAT [FILTER]]`
//! runs each query (or those containing FILTER) REPEAT times (default 20) as a range query over the data's 24 h
//! and prints the median and best wall times, the CPU time per query
//! summed over all threads (from /proc/self/stat, so less sensitive to a
//! busy machine than wall time; Linux only, 10 ms ticks averaged over the
//! runs), and the time the read path alone takes to select and read the
//! same series on one thread (the floor the engine adds to).

use std::time::{Duration, Instant};

use strata::workload::DevopsConfig;
use strata::{
    parse_expr, parse_selector, range_query, Db, QueryOptions, QueryValue, SeriesColumns, TimeRange,
};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: query_engine DIR [REPEAT] (a devops database, see the module doc)")?;
    let repeat: usize = args.next().map_or(Ok(20), |r| r.parse())?;
    let filter = args.next().unwrap_or_default();
    let db = Db::open_read_only(&dir)?;
    let start = DevopsConfig::default().start_ms;
    let end = start + 24 * HOUR;
    let options = QueryOptions::default();
    println!(
        "{:<56} {:>5} {:>10} {:>10} {:>9} {:>10} {:>6}",
        "query", "step", "median", "best", "CPU", "read only", "series"
    );
    let cases: [(&str, &str, i64, i64); 6] = [
        (
            "avg(avg_over_time(cpu_usage_guest[1m]))",
            "cpu_usage_guest",
            MINUTE,
            MINUTE,
        ),
        (
            "max by (hostname) (max_over_time(cpu_usage_guest[1h]))",
            "cpu_usage_guest",
            HOUR,
            HOUR,
        ),
        (
            "sum by (hostname) (rate(cpu_usage_user[5m]))",
            "cpu_usage_user",
            MINUTE,
            5 * MINUTE,
        ),
        (
            "avg_over_time(cpu_usage_guest[1m])",
            "cpu_usage_guest",
            MINUTE,
            MINUTE,
        ),
        ("cpu_usage_guest", "cpu_usage_guest", MINUTE, 5 * MINUTE),
        (
            "sum_over_time(cpu_usage_user[1h])",
            "cpu_usage_user",
            HOUR,
            HOUR,
        ),
    ];
    for (query, selector, step, lookback) in cases {
        if !query.contains(&filter) {
            continue;
        }
        let expr = parse_expr(query)?;
        let mut times = Vec::with_capacity(repeat);
        let mut series = 0;
        let cpu_before = cpu_time();
        for _ in 0..repeat {
            let t0 = Instant::now();
            let value = range_query(&db, &expr, start, end, step, &options)?;
            times.push(t0.elapsed());
            if let QueryValue::Matrix(m) = value {
                series = m.len();
            }
        }
        let cpu = cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| (after - before) / repeat as u32);
        let read = read_only(&db, selector, TimeRange::new(start - lookback, end), repeat)?;
        times.sort();
        println!(
            "{:<56} {:>5} {:>10.3?} {:>10.3?} {:>9} {:>10.3?} {:>6}",
            query,
            format!("{}s", step / 1000),
            times[times.len() / 2],
            times[0],
            cpu.map_or("?".to_owned(), |c| format!("{:.1?}", c)),
            read,
            series
        );
    }
    Ok(())
}

/// Median time to select `selector` over `range` and read every series
/// once, on one thread.
fn read_only(
    db: &Db,
    selector: &str,
    range: TimeRange,
    repeat: usize,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let matchers = parse_selector(selector)?;
    let mut cols = SeriesColumns::default();
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t0 = Instant::now();
        let set = db.select_series(&matchers, range)?;
        for i in 0..set.len() {
            set.read(i, &mut cols)?;
        }
        times.push(t0.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// CPU time of the process so far, all threads (dead ones included).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th fields of the line, in clock ticks (100 per s).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}
