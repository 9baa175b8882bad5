//! Synthetic workloads for demos, benchmarks and testing pipelines.
//!
//! - [`CollectionPoint`]: the telemetry tools strata is built for (gateway,
//!   scheduler, agent sessions, spawn queue, inbox, heartbeats). Each owns a
//!   fixed list of series and produces one value for each at every tick, the
//!   way a real exporter would: counters only go up, histogram buckets are
//!   cumulative and consistent with `_count` and `_sum`.
//! - [`Devops`]: the Time Series Benchmark Suite's `cpu-only` use case: N
//!   hosts with TSBS's host tags, 10 cpu metrics each, every 10 s.
//! - [`Churn`]: high cardinality: a fixed number of pods run at any time,
//!   each exporting one series labelled with its own `pod` id; pods end
//!   after a random lifetime and new pods (new series) take their place.
//!
//! Everything is deterministic for a given seed.

use crate::{MetricMetadata, MetricType, SeriesKey, TimeRange};

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

/// The metric metadata of the collection points' families (what their
/// `# TYPE`, `# HELP` and `# UNIT` lines would say).
pub fn collection_point_metadata() -> Vec<(&'static str, MetricMetadata)> {
    use MetricType::{Counter, Gauge, Histogram};
    #[rustfmt::skip]
    let families = [
        ("gateway_requests_total", Counter, "Requests the gateway answered, by route and status code.", ""),
        ("gateway_request_duration_seconds", Histogram, "Gateway request latency.", "seconds"),
        ("scheduler_jobs_total", Counter, "Jobs the scheduler finished, by final state.", ""),
        ("scheduler_jobs_running", Gauge, "Jobs running now.", ""),
        ("agent_sessions_active", Gauge, "Agent sessions open now.", ""),
        ("agent_tokens_total", Counter, "Tokens agents exchanged, by direction.", ""),
        ("spawn_queue_depth", Gauge, "Spawn requests waiting.", ""),
        ("spawn_requests_total", Counter, "Spawn requests received.", ""),
        ("inbox_messages_total", Counter, "Messages filed, by folder.", ""),
        ("inbox_unread", Gauge, "Unread messages.", ""),
        ("heartbeat_up", Gauge, "1 when the service's last heartbeat is recent, else 0.", ""),
        ("heartbeat_last_seen_seconds", Gauge, "Unix time of the service's last heartbeat.", "seconds"),
    ];
    families
        .into_iter()
        .map(|(family, metric_type, help, unit)| {
            let metadata = MetricMetadata::new(metric_type)
                .with_help(help)
                .with_unit(unit);
            (family, metadata)
        })
        .collect()
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

/// Settings of a [`Churn`] workload.
#[derive(Debug, Clone, Copy)]
pub struct ChurnConfig {
    /// Pods (series) alive at any moment.
    pub live: usize,
    /// Mean lifetime of a pod. Each pod lives a uniformly random span
    /// between half and 1.5 times this (at least one interval); the pods
    /// running at the start have already lived part of theirs.
    pub mean_lifetime_ms: i64,
    pub start_ms: i64,
    /// Time between two samples of a pod. Default 10 s.
    pub interval_ms: i64,
    pub seed: u64,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        ChurnConfig {
            live: 1000,
            mean_lifetime_ms: 15 * 60 * 1000,
            start_ms: 1_700_000_000_000,
            interval_ms: 10_000,
            seed: 1,
        }
    }
}

/// Metric of every [`Churn`] series.
pub const CHURN_METRIC: &str = "container_cpu_usage_seconds_total";

const NAMESPACES: [&str; 5] = ["default", "web", "batch", "ml", "monitoring"];

/// High-cardinality churn, as on a cluster that keeps rolling out pods:
/// `live` *slots* each run one pod at a time, and every pod exports one
/// counter, `container_cpu_usage_seconds_total{namespace, pod="<id>"}`, in
/// CPU seconds with 3 decimals. When a pod's lifetime is over, a new pod with
/// a new id (so a new series) takes over its slot in the same interval: the
/// number of series alive at once stays `live`, while the number of
/// distinct series grows with every interval.
///
/// Deterministic for a given config, and independent of sharding: slot `s`
/// draws from its own generator seeded by `seed` and `s`, and its k-th pod
/// has id `k * live + s` (unique over the whole run). [`Churn::shard`] runs
/// a subset of the slots, so several writers can each produce their share
/// of the same data set.
pub struct Churn {
    config: ChurnConfig,
    /// Rounds a pod lives on average (at least 1).
    lifetime_rounds: u64,
    /// Per local slot: the global slot number.
    slots: Vec<usize>,
    keys: Vec<SeriesKey>,
    /// Per local slot: the pod's counter in milli-CPU-seconds.
    millis: Vec<u64>,
    /// Per local slot: the pod's CPU use in milli-cores.
    cores_milli: Vec<u64>,
    /// Per local slot: how many pods it has run before the current one.
    generation: Vec<u64>,
    /// Per local slot: the round in which the current pod is replaced.
    ends_at: Vec<u64>,
    rngs: Vec<Rng>,
    output: Vec<f64>,
    born: Vec<usize>,
    round: u64,
    created: u64,
}

/// splitmix64's finalizer: independent generator seeds for nearby inputs.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Churn {
    /// Every slot of the workload.
    pub fn new(config: ChurnConfig) -> Self {
        Self::shard(config, 0, 1)
    }

    /// The slots `shard, shard + shards, shard + 2 * shards, ...`: one of
    /// `shards` disjoint parts that together make up [`Churn::new`]'s data.
    ///
    /// # Panics
    /// If `shards` is 0 or `shard >= shards`.
    pub fn shard(config: ChurnConfig, shard: usize, shards: usize) -> Self {
        assert!(shard < shards, "shard {shard} of {shards}");
        let interval = config.interval_ms.max(1);
        let lifetime_rounds = (config.mean_lifetime_ms / interval).max(1) as u64;
        let slots: Vec<usize> = (shard..config.live).step_by(shards).collect();
        let mut churn = Churn {
            config,
            lifetime_rounds,
            keys: Vec::with_capacity(slots.len()),
            millis: vec![0; slots.len()],
            cores_milli: vec![0; slots.len()],
            generation: vec![0; slots.len()],
            ends_at: vec![0; slots.len()],
            rngs: slots
                .iter()
                .map(|&s| Rng::new(mix(config.seed ^ mix(s as u64))))
                .collect(),
            output: vec![0.0; slots.len()],
            born: Vec::new(),
            round: 0,
            created: 0,
            slots,
        };
        for local in 0..churn.slots.len() {
            let key = churn.start_pod(local);
            churn.keys.push(key);
            // Already running: the remaining lifetime is uniform in
            // [1, longest lifetime], so that endings are spread out.
            let longest = churn.lifetime_rounds + churn.lifetime_rounds / 2;
            churn.ends_at[local] = 1 + churn.rngs[local].next_u64() % longest.max(1);
        }
        churn
    }

    /// Picks the current pod's namespace, size and starting counter and
    /// returns its key; advances the slot's id.
    fn start_pod(&mut self, local: usize) -> SeriesKey {
        let slot = self.slots[local];
        let id = self.generation[local] * self.config.live as u64 + slot as u64;
        let rng = &mut self.rngs[local];
        let namespace = NAMESPACES[(rng.next_u64() % NAMESPACES.len() as u64) as usize];
        // 50 to 2000 milli-cores, skewed small.
        self.cores_milli[local] = 50 + (1950.0 * rng.unit() * rng.unit()) as u64;
        self.millis[local] = rng.next_u64() % 1000;
        self.created += 1;
        key(
            CHURN_METRIC,
            &[("namespace", namespace), ("pod", &id.to_string())],
        )
    }

    /// The current series of every local slot (the slots of this shard, in
    /// order). Valid from construction on; slots listed by
    /// [`Churn::born`] change with each round.
    pub fn keys(&self) -> &[SeriesKey] {
        &self.keys
    }

    /// Local slots whose pod was replaced by a new one (a new series) in the
    /// last [`Churn::next_round`]. The pods running at construction are not
    /// listed: take them from [`Churn::keys`] before the first round.
    pub fn born(&self) -> &[usize] {
        &self.born
    }

    /// Distinct series this generator has produced so far (the pods it
    /// started, those running at construction included).
    pub fn series_created(&self) -> u64 {
        self.created
    }

    /// Series alive at any moment in this shard.
    pub fn live(&self) -> usize {
        self.slots.len()
    }

    /// The next interval: replaces the pods whose time is up (see
    /// [`Churn::born`]), then returns the timestamp and one value per local
    /// slot, in the order of [`Churn::keys`].
    pub fn next_round(&mut self) -> (i64, &[f64]) {
        let round = self.round;
        self.round += 1;
        let time_ms = self.config.start_ms + round as i64 * self.config.interval_ms;
        let interval_s = self.config.interval_ms as f64 / 1000.0;
        let half = self.lifetime_rounds / 2;
        self.born.clear();
        for local in 0..self.slots.len() {
            if round > 0 && round >= self.ends_at[local] {
                self.generation[local] += 1;
                self.keys[local] = self.start_pod(local);
                let span = half + self.rngs[local].next_u64() % (self.lifetime_rounds + 1);
                self.ends_at[local] = round + span.max(1);
                self.born.push(local);
            }
            // Use varies by ±20 % around the pod's size.
            let rng = &mut self.rngs[local];
            let used = self.cores_milli[local] as f64 * interval_s * (0.8 + 0.4 * rng.unit());
            self.millis[local] += used.round() as u64;
            self.output[local] = self.millis[local] as f64 / 1000.0;
        }
        (time_ms, &self.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(churn: &mut Churn, rounds: usize) -> Vec<(String, i64, u64)> {
        let mut out = Vec::new();
        for _ in 0..rounds {
            let (ts, values) = churn.next_round();
            let values = values.to_vec();
            for (key, value) in churn.keys().iter().zip(values) {
                out.push((key.to_string(), ts, value.to_bits()));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn churn_keeps_live_count_renews_series_and_shards_consistently() {
        let config = ChurnConfig {
            live: 7,
            mean_lifetime_ms: 50_000,
            ..ChurnConfig::default()
        };
        let mut whole = Churn::new(config);
        assert_eq!(whole.keys().len(), 7);
        let all = run(&mut whole, 100);
        assert_eq!(all.len(), 700);
        // 100 rounds with a mean lifetime of 5 rounds: many pods per slot.
        assert!(whole.series_created() > 50, "{}", whole.series_created());
        let distinct: std::collections::BTreeSet<&str> =
            all.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(distinct.len() as u64, whole.series_created());
        assert!(all.iter().all(|(k, _, _)| k.contains("pod=\"")));

        let mut parts = Vec::new();
        let mut created = 0;
        for shard in 0..3 {
            let mut churn = Churn::shard(config, shard, 3);
            parts.extend(run(&mut churn, 100));
            created += churn.series_created();
        }
        parts.sort();
        assert_eq!(parts, all);
        assert_eq!(created, whole.series_created());
        assert_eq!(run(&mut Churn::new(config), 100), all, "deterministic");
    }

    #[test]
    fn churn_counters_only_go_up_within_a_pod() {
        let mut churn = Churn::new(ChurnConfig {
            live: 5,
            mean_lifetime_ms: 30_000,
            ..ChurnConfig::default()
        });
        let mut last: std::collections::HashMap<String, f64> = Default::default();
        for _ in 0..200 {
            let (_, values) = churn.next_round();
            let values = values.to_vec();
            for (key, value) in churn.keys().iter().zip(values) {
                let previous = last.insert(key.to_string(), value);
                assert!(previous.is_none_or(|p| p < value), "{key}");
                assert_eq!(value, (value * 1000.0).round() / 1000.0);
            }
        }
    }
}
