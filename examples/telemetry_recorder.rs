//! The demo's collection points (gateway, scheduler, agent sessions, spawn
//! queue, inbox, heartbeats: the series of `strata demo`) written by
//! instrumented code through the `metrics` macros into an embedded strata
//! database, then queried with PromQL.
//!
//! `cargo run --release --features metrics-recorder --example
//! telemetry_recorder [SECONDS]` runs the simulated services for SECONDS
//! (default 2) in a temporary directory, snapshots every 200 ms, and prints
//! the gateway's p95 latency per route, error ratio and job totals.
//! Latencies are `0.4 s * (route index + 1) * u^4` for uniform `u`, so the
//! true p95s are 0.326, 0.652 and 0.977 s; the bucket estimates land
//! within the buckets holding them (0.25–0.5, 0.5–1, 0.5–1).

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::recorder::metrics::{counter, describe_histogram, gauge, histogram, Unit};
use strata::recorder::StrataRecorder;
use strata::{instant_query, parse_expr, Db, Options, QueryOptions, QueryValue};

/// Histogram bucket upper bounds for request latency, in seconds (the demo's).
const LATENCY_BUCKETS: [f64; 8] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
const ROUTES: [&str; 3] = ["/v1/send", "/v1/status", "/healthz"];
const SERVICES: [&str; 4] = ["mailer", "indexer", "billing", "search"];
const INSTANCE: &str = "node-1";

/// A deterministic xorshift generator: the example needs no `rand`.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One request through the gateway: latency skewed towards fast, routes
/// of different speeds, 1 % errors.
fn gateway(rng: &mut Rng) {
    let r = (rng.unit() * ROUTES.len() as f64) as usize % ROUTES.len();
    let route = ROUTES[r];
    let latency = rng.unit().powi(4) * 0.4 * (r + 1) as f64;
    let code = if rng.unit() < 0.01 { "500" } else { "200" };
    counter!("gateway_requests_total", "instance" => INSTANCE, "route" => route, "code" => code)
        .increment(1);
    histogram!("gateway_request_duration_seconds", "instance" => INSTANCE, "route" => route)
        .record(latency);
}

/// A scheduler, agent, spawn queue and inbox tick.
fn background(rng: &mut Rng, running: &mut f64, queue: &mut f64) {
    let state = if rng.unit() < 0.05 {
        "failed"
    } else {
        "completed"
    };
    counter!("scheduler_jobs_total", "instance" => INSTANCE, "state" => state).increment(1);
    *running = (*running + rng.unit() * 2.0 - 1.0).clamp(0.0, 16.0);
    gauge!("scheduler_jobs_running", "instance" => INSTANCE).set(running.round());
    gauge!("agent_sessions_active", "instance" => INSTANCE).set((rng.unit() * 40.0).round());
    let tokens = (rng.unit() * 500.0) as u64;
    counter!("agent_tokens_total", "instance" => INSTANCE, "direction" => "in").increment(tokens);
    counter!("agent_tokens_total", "instance" => INSTANCE, "direction" => "out")
        .increment(tokens / 3);
    counter!("spawn_requests_total", "instance" => INSTANCE).increment(1);
    *queue = (*queue + rng.unit() * 3.0 - 1.4).max(0.0);
    gauge!("spawn_queue_depth", "instance" => INSTANCE).set(queue.floor());
    counter!("inbox_messages_total", "instance" => INSTANCE, "folder" => "inbox").increment(2);
    counter!("inbox_messages_total", "instance" => INSTANCE, "folder" => "archive").increment(1);
    gauge!("inbox_unread", "instance" => INSTANCE).increment(1.0);
    if rng.unit() < 0.4 {
        gauge!("inbox_unread", "instance" => INSTANCE).decrement(1.0);
    }
}

fn heartbeats(now_s: f64) {
    for service in SERVICES {
        gauge!("heartbeat_up", "instance" => INSTANCE, "service" => service).set(1.0);
        gauge!("heartbeat_last_seen_seconds", "instance" => INSTANCE, "service" => service)
            .set(now_s.floor());
    }
}

fn evaluate(db: &Db, query: &str, time_ms: i64) -> Result<QueryValue, Box<dyn std::error::Error>> {
    let expr = parse_expr(query)?;
    Ok(instant_query(db, &expr, time_ms, &QueryOptions::default())?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = std::env::args().nth(1).map_or(Ok(2.0), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let db = Arc::new(Db::open(dir.path(), Options::default())?);
    let handle = StrataRecorder::builder(Arc::clone(&db))
        .interval(Duration::from_millis(200))
        .buckets(&LATENCY_BUCKETS)
        .build()?
        .install()?;
    describe_histogram!(
        "gateway_request_duration_seconds",
        Unit::Seconds,
        "gateway request latency"
    );

    let start = Instant::now();
    let run_for = Duration::from_secs_f64(seconds);
    std::thread::scope(|scope| {
        // Two gateway workers and one thread for everything else, each
        // pacing itself so the example costs little CPU.
        for worker in 0..2u64 {
            scope.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (worker + 1));
                while start.elapsed() < run_for {
                    for _ in 0..200 {
                        gateway(&mut rng);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
        }
        scope.spawn(move || {
            let mut rng = Rng(42);
            let (mut running, mut queue) = (4.0, 0.0);
            while start.elapsed() < run_for {
                background(&mut rng, &mut running, &mut queue);
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                heartbeats(now.map_or(0.0, |d| d.as_secs_f64()));
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    });
    let last = handle.shutdown()?;
    let stats = handle.stats();
    println!(
        "{} metrics, {} snapshots, {} samples written ({} rejected) in {:.1} s",
        stats.metrics,
        stats.snapshots,
        stats.samples_written,
        stats.samples_rejected,
        start.elapsed().as_secs_f64()
    );
    for description in handle.descriptions() {
        println!(
            "described: {} ({:?}, {:?}): {}",
            description.name, description.kind, description.unit, description.description
        );
    }

    let window = format!("{}ms", run_for.as_millis() + 500);
    let queries = [
        format!(
            "histogram_quantile(0.95, sum by (le, route) \
             (rate(gateway_request_duration_seconds_bucket[{window}])))"
        ),
        format!(
            "sum(rate(gateway_requests_total{{code=\"500\"}}[{window}])) \
             / sum(rate(gateway_requests_total[{window}]))"
        ),
        "sum by (state) (scheduler_jobs_total)".to_owned(),
    ];
    for query in &queries {
        println!("\n{query}");
        match evaluate(&db, query, last.timestamp_ms)? {
            QueryValue::Vector(series) => {
                for s in series {
                    let value = s.samples.first().map_or(f64::NAN, |p| p.value);
                    let labels: Vec<String> = s
                        .labels
                        .iter()
                        .map(|l| format!("{}=\"{}\"", l.name, l.value))
                        .collect();
                    println!("  {{{}}} {value:.4}", labels.join(","));
                }
            }
            other => println!("  {other:?}"),
        }
    }
    Ok(())
}
