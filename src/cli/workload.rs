//! Simulated telemetry collection points for the demo (and benchmarks).
//!
//! Each collection point owns a fixed list of series and produces one value
//! for each at every tick, the way a real exporter would: counters only go
//! up, histogram buckets are cumulative and consistent with `_count` and
//! `_sum`. Everything is deterministic for a given seed.

use strata::{SeriesKey, TimeRange};

/// Histogram bucket upper bounds for request latency, in seconds.
pub const LATENCY_BUCKETS: [f64; 8] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// A small, fast, deterministic PRNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A Poisson-ish count with the given mean (normal approximation).
    pub fn count(&mut self, mean: f64) -> u64 {
        let noise = (self.unit() + self.unit() + self.unit() - 1.5) * 2.0;
        (mean + noise * mean.sqrt()).round().max(0.0) as u64
    }
}

/// The kinds of simulated tools.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Gateway,
    Scheduler,
    Agents,
    SpawnQueue,
    Inbox,
    Heartbeat,
}

/// One collection point: its series and its evolving state.
pub struct CollectionPoint {
    kind: Kind,
    keys: Vec<SeriesKey>,
    values: Vec<f64>,
    rng: Rng,
}

const ROUTES: [&str; 3] = ["/v1/send", "/v1/status", "/healthz"];
const SERVICES: [&str; 4] = ["mailer", "indexer", "billing", "search"];

fn key(metric: &str, labels: &[(&str, &str)]) -> SeriesKey {
    // Names here are fixed literals that satisfy the naming rules.
    SeriesKey::new(metric, labels).unwrap_or_else(|e| panic!("demo series {metric}: {e}"))
}

impl CollectionPoint {
    /// Every collection point of one simulated instance.
    pub fn instance(instance: usize, seed: u64) -> Vec<CollectionPoint> {
        let inst = format!("host-{instance:03}");
        let kinds = [
            Kind::Gateway,
            Kind::Scheduler,
            Kind::Agents,
            Kind::SpawnQueue,
            Kind::Inbox,
            Kind::Heartbeat,
        ];
        kinds
            .iter()
            .enumerate()
            .map(|(i, &kind)| {
                let keys = keys_for(kind, &inst);
                CollectionPoint {
                    kind,
                    values: vec![0.0; keys.len()],
                    keys,
                    rng: Rng::new(seed ^ ((instance as u64) << 8) ^ i as u64),
                }
            })
            .collect()
    }

    pub fn keys(&self) -> &[SeriesKey] {
        &self.keys
    }

    /// Advances one second and returns the value of every series.
    pub fn tick(&mut self, time_ms: i64) -> &[f64] {
        let rng = &mut self.rng;
        let v = &mut self.values;
        // Slow daily-ish wave so gauges and rates move.
        let wave = ((time_ms as f64 / 1000.0) / 1800.0).sin();
        match self.kind {
            Kind::Gateway => {
                // per route: ok, error, 8 buckets, +Inf, sum, count = 13
                for (r, _) in ROUTES.iter().enumerate() {
                    let base = r * 13;
                    let rate = [120.0, 40.0, 5.0][r] * (1.0 + 0.3 * wave);
                    let requests = rng.count(rate);
                    let errors = (0..requests).filter(|_| rng.unit() < 0.01).count() as u64;
                    v[base] += (requests - errors) as f64;
                    v[base + 1] += errors as f64;
                    let mut sum = 0.0;
                    for _ in 0..requests {
                        // log-uniform latency between 2 ms and 1.5 s, skewed fast
                        let latency = 0.002 * (750f64).powf(rng.unit() * rng.unit());
                        sum += latency;
                        for (b, &le) in LATENCY_BUCKETS.iter().enumerate() {
                            if latency <= le {
                                v[base + 2 + b] += 1.0;
                            }
                        }
                    }
                    v[base + 10] += requests as f64; // le="+Inf"
                    v[base + 11] += sum;
                    v[base + 12] += requests as f64;
                }
            }
            Kind::Scheduler => {
                let done = rng.count(3.0);
                v[0] += done as f64;
                v[1] += rng.count(0.05) as f64;
                v[2] = (20.0 + 10.0 * wave + rng.unit() * 4.0).round();
            }
            Kind::Agents => {
                v[0] = (50.0 + 30.0 * wave + rng.unit() * 5.0).round();
                v[1] += rng.count(v[0] * 40.0) as f64;
                v[2] += rng.count(v[0] * 4.0) as f64;
            }
            Kind::SpawnQueue => {
                let arrivals = rng.count(8.0 + 4.0 * wave) as f64;
                // service speeds up as the queue grows, so depth stays bounded
                let served = rng.count(8.0 + v[0] * 0.1) as f64;
                v[0] = (v[0] + arrivals - served).max(0.0);
                v[1] += arrivals;
            }
            Kind::Inbox => {
                let incoming = rng.count(2.0) as f64;
                v[0] += incoming;
                v[1] += rng.count(1.0) as f64;
                v[2] = (v[2] + incoming - rng.count(2.0) as f64).max(0.0);
            }
            Kind::Heartbeat => {
                for s in 0..SERVICES.len() {
                    let up = rng.unit() > 0.002;
                    v[s * 2] = if up { 1.0 } else { 0.0 };
                    if up {
                        v[s * 2 + 1] = (time_ms / 1000) as f64;
                    }
                }
            }
        }
        &self.values
    }
}

fn keys_for(kind: Kind, inst: &str) -> Vec<SeriesKey> {
    let mut keys = Vec::new();
    match kind {
        Kind::Gateway => {
            for route in ROUTES {
                let requests = "gateway_requests_total";
                keys.push(key(
                    requests,
                    &[("instance", inst), ("route", route), ("code", "200")],
                ));
                keys.push(key(
                    requests,
                    &[("instance", inst), ("route", route), ("code", "500")],
                ));
                let bucket = "gateway_request_duration_seconds_bucket";
                for le in LATENCY_BUCKETS.iter().map(|b| b.to_string()) {
                    keys.push(key(
                        bucket,
                        &[("instance", inst), ("route", route), ("le", &le)],
                    ));
                }
                keys.push(key(
                    bucket,
                    &[("instance", inst), ("route", route), ("le", "+Inf")],
                ));
                let labels = [("instance", inst), ("route", route)];
                keys.push(key("gateway_request_duration_seconds_sum", &labels));
                keys.push(key("gateway_request_duration_seconds_count", &labels));
            }
        }
        Kind::Scheduler => {
            keys.push(key(
                "scheduler_jobs_total",
                &[("instance", inst), ("state", "completed")],
            ));
            keys.push(key(
                "scheduler_jobs_total",
                &[("instance", inst), ("state", "failed")],
            ));
            keys.push(key("scheduler_jobs_running", &[("instance", inst)]));
        }
        Kind::Agents => {
            keys.push(key("agent_sessions_active", &[("instance", inst)]));
            keys.push(key(
                "agent_tokens_total",
                &[("instance", inst), ("direction", "in")],
            ));
            keys.push(key(
                "agent_tokens_total",
                &[("instance", inst), ("direction", "out")],
            ));
        }
        Kind::SpawnQueue => {
            keys.push(key("spawn_queue_depth", &[("instance", inst)]));
            keys.push(key("spawn_requests_total", &[("instance", inst)]));
        }
        Kind::Inbox => {
            keys.push(key(
                "inbox_messages_total",
                &[("instance", inst), ("folder", "inbox")],
            ));
            keys.push(key(
                "inbox_messages_total",
                &[("instance", inst), ("folder", "archive")],
            ));
            keys.push(key("inbox_unread", &[("instance", inst)]));
        }
        Kind::Heartbeat => {
            for service in SERVICES {
                keys.push(key(
                    "heartbeat_up",
                    &[("instance", inst), ("service", service)],
                ));
                keys.push(key(
                    "heartbeat_last_seen_seconds",
                    &[("instance", inst), ("service", service)],
                ));
            }
        }
    }
    keys
}

/// The time range `[start, start + seconds)` at 1 s resolution.
pub fn one_second_range(start_ms: i64, seconds: i64) -> TimeRange {
    TimeRange::new(start_ms, start_ms + (seconds - 1) * 1000)
}
