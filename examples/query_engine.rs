//! Times the PromQL engine on a devops database written by
//! `strata bench query --workload devops --series 1000 --duration 24h
//! --decimals full --dir DIR`.
//!
//! `cargo run --release --example query_engine -- DIR [REPEAT]` runs each
//! query REPEAT times (default 20) as a range query over the data's 24 h
//! and prints the median and best times, next to the time the read path
//! alone takes to select and read the same series (the floor the engine
//! adds to).

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
    let db = Db::open_read_only(&dir)?;
    let start = DevopsConfig::default().start_ms;
    let end = start + 24 * HOUR;
    let options = QueryOptions::default();
    println!(
        "{:<62} {:>6} {:>10} {:>10} {:>10} {:>8}",
        "query", "step", "median", "best", "read only", "series"
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
            "sum_over_time({__name__=~\"cpu_.+\"}[1h])",
            "{__name__=~\"cpu_.+\"}",
            HOUR,
            HOUR,
        ),
    ];
    for (query, selector, step, lookback) in cases {
        let expr = parse_expr(query)?;
        let mut times = Vec::with_capacity(repeat);
        let mut series = 0;
        for _ in 0..repeat {
            let t0 = Instant::now();
            let value = range_query(&db, &expr, start, end, step, &options)?;
            times.push(t0.elapsed());
            if let QueryValue::Matrix(m) = value {
                series = m.len();
            }
        }
        let read = read_only(&db, selector, TimeRange::new(start - lookback, end), repeat)?;
        times.sort();
        println!(
            "{:<62} {:>6} {:>10.3?} {:>10.3?} {:>10.3?} {:>8}",
            query,
            format!("{}s", step / 1000),
            times[times.len() / 2],
            times[0],
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
