//! Synthetic workloads for demos, benchmarks and testing pipelines.
//!
//! - [`CollectionPoint`]: the telemetry tools strata is built for (gateway,
//!   scheduler, agent sessions, spawn queue, inbox, heartbeats). Each owns a
//!   fixed list of series and produces one value for each at every tick, the
//!   way a real exporter would: counters only go up, histogram buckets are
//!   cumulative and consistent with `_count` and `_sum`.
//! - [`Devops`]: the Time Series Benchmark Suite's `cpu-only` use case: N
//!   hosts with TSBS's host tags, 10 cpu metrics each, every 10 s.
//!
//! Everything is deterministic for a given seed.

use crate::{SeriesKey, TimeRange};

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
    SeriesKey::new(metric, labels).unwrap_or_else(|e| panic!("workload series {metric}: {e}"))
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

/// The 10 metrics of TSBS's `cpu` measurement, in TSBS's order.
pub const DEVOPS_CPU_FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

const REGIONS: [(&str, [&str; 3]); 3] = [
    ("us-east-1", ["us-east-1a", "us-east-1b", "us-east-1c"]),
    ("eu-west-1", ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    (
        "ap-southeast-1",
        ["ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"],
    ),
];
const OSES: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCHES: [&str; 2] = ["x64", "x86"];
const TEAMS: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const ENVIRONMENTS: [&str; 3] = ["production", "staging", "test"];

/// Settings of a [`Devops`] workload.
#[derive(Debug, Clone, Copy)]
pub struct DevopsConfig {
    pub hosts: usize,
    pub start_ms: i64,
    /// TSBS uses 10 s.
    pub interval_ms: i64,
    /// Round values to this many decimals (TSBS writes full precision).
    pub decimals: Option<u32>,
    pub seed: u64,
}

impl Default for DevopsConfig {
    fn default() -> Self {
        DevopsConfig {
            hosts: 10,
            start_ms: 1_700_000_000_000,
            interval_ms: 10_000,
            decimals: None,
            seed: 1,
        }
    }
}

/// TSBS `cpu-only`: `cpu_<field>{hostname, region, datacenter, rack, os,
/// arch, team, service, service_version, service_environment}`; each value
/// is a random walk clamped to 0..=100, stepping by up to ±1 per interval,
/// as TSBS's cpu simulator does.
pub struct Devops {
    config: DevopsConfig,
    keys: Vec<SeriesKey>,
    values: Vec<f64>,
    output: Vec<f64>,
    rng: Rng,
    round: i64,
}

impl Devops {
    pub fn new(config: DevopsConfig) -> Self {
        let mut rng = Rng::new(config.seed);
        let mut keys = Vec::with_capacity(config.hosts * DEVOPS_CPU_FIELDS.len());
        for host in 0..config.hosts {
            let pick = |rng: &mut Rng, n: usize| (rng.next_u64() % n as u64) as usize;
            let (region, zones) = REGIONS[pick(&mut rng, REGIONS.len())];
            let tags = [
                ("hostname", format!("host_{host}")),
                ("region", region.to_owned()),
                ("datacenter", zones[pick(&mut rng, 3)].to_owned()),
                ("rack", pick(&mut rng, 100).to_string()),
                ("os", OSES[pick(&mut rng, OSES.len())].to_owned()),
                ("arch", ARCHES[pick(&mut rng, ARCHES.len())].to_owned()),
                ("team", TEAMS[pick(&mut rng, TEAMS.len())].to_owned()),
                ("service", pick(&mut rng, 20).to_string()),
                ("service_version", pick(&mut rng, 2).to_string()),
                (
                    "service_environment",
                    ENVIRONMENTS[pick(&mut rng, 3)].to_owned(),
                ),
            ];
            for field in DEVOPS_CPU_FIELDS {
                let metric = format!("cpu_{field}");
                let labels: Vec<(&str, &str)> =
                    tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
                keys.push(key(&metric, &labels));
            }
        }
        let values = (0..keys.len()).map(|_| rng.unit() * 100.0).collect();
        Devops {
            output: vec![0.0; keys.len()],
            config,
            keys,
            values,
            rng,
            round: 0,
        }
    }

    /// Every series, hosts in order, 10 fields per host.
    pub fn keys(&self) -> &[SeriesKey] {
        &self.keys
    }

    /// The next interval: its timestamp and one value per key.
    pub fn next_round(&mut self) -> (i64, &[f64]) {
        let time_ms = self.config.start_ms + self.round * self.config.interval_ms;
        self.round += 1;
        let scale = self.config.decimals.map(|d| 10f64.powi(d as i32));
        for (value, out) in self.values.iter_mut().zip(&mut self.output) {
            *value = (*value + (self.rng.unit() * 2.0 - 1.0)).clamp(0.0, 100.0);
            *out = match scale {
                Some(scale) => (*value * scale).round() / scale,
                None => *value,
            };
        }
        (time_ms, &self.output)
    }
}
