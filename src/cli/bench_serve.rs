//! `strata bench serve`: remote-write load on a real `strata serve`.
//!
//! Starts this executable's `serve` as a child process on 127.0.0.1 (a
//! free port) over a fresh temporary directory, then runs `--clients`
//! threads, each sending `--requests` remote-write requests of
//! `--samples` samples over one keep-alive connection, one request at a
//! time. The requests carry strata's telemetry workload
//! (`strata::workload::CollectionPoint`): every client owns its own
//! instances' series, and each request is the next tick(s) of them with
//! fresh timestamps (starting at the wall clock, one second per tick).
//!
//! The bodies are encoded (protobuf, snappy) before the clock starts, so
//! the figures are the server's: accepted samples per second over the
//! whole run (first request sent to last answer), the p50 / p99 / max
//! request latency (sorted, exact), and the server's peak resident set
//! (`VmHWM` of `/proc/<pid>/status`, read before it stops). The server is
//! stopped with SIGTERM (its graceful shutdown: answer in-flight requests,
//! close the database) and waited for, bounded; the directory is removed.
//!
//! Invariants: every loop is bounded (requests by count, waits by
//! [`WAIT_LIMIT`]); the load goes to the loopback address only; the
//! child is killed if anything fails before SIGTERM.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use strata::server::proto;
use strata::workload::CollectionPoint;
use strata::{Error, SeriesKey};

/// Longest wait for the server to become ready or to exit. Not a
/// performance bound: it turns a hang into an error.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Seed of the workload's values.
const SEED: u64 = 42;

#[derive(clap::Args)]
pub struct ServeBenchArgs {
    /// Client threads, each with its own connection and series.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    clients: u32,
    /// Requests each client sends, one after the other.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    requests: u32,
    /// Samples per request.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1_000..=5_000))]
    samples: u32,
    /// Samples of each series per request (consecutive seconds): 1 is how
    /// Prometheus sends when it keeps up (many series, one sample each);
    /// more is a sender catching up.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    samples_per_series: u32,
    /// The server's `--sync`: when a write is acknowledged.
    #[arg(long, default_value = "always", value_parser = ["always", "interval", "never"])]
    sync: String,
}

pub fn run(args: &ServeBenchArgs) -> Result<ExitCode, Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("create", "a temporary directory", e))?;
    let started_encoding = Instant::now();
    let plan = Plan::new(args);
    let bodies: Vec<Vec<Vec<u8>>> = (0..args.clients)
        .map(|client| plan.bodies(client as usize, args.requests as usize))
        .collect();
    let encoding = started_encoding.elapsed();
    let body_bytes: usize = bodies.iter().flatten().map(Vec::len).sum();
    let mut server = ServerProcess::start(dir.path(), &args.sync)?;
    let measured = load(server.addr, &bodies, plan.samples_per_request() as u64);
    let peak_rss_kib = server.peak_rss_kib();
    server.stop()?;
    let run = measured?;
    report(args, &plan, &run, encoding, body_bytes, peak_rss_kib)?;
    Ok(if run.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Which series each request carries.
struct Plan {
    samples_per_series: usize,
    /// Series per request (and per client).
    series_per_client: usize,
    /// Instances (of `CollectionPoint::instance`) per client.
    instances_per_client: usize,
    start_ms: i64,
}

impl Plan {
    fn new(args: &ServeBenchArgs) -> Plan {
        let samples_per_series = args.samples_per_series as usize;
        let series_per_client = (args.samples as usize).div_ceil(samples_per_series);
        let per_instance: usize = CollectionPoint::instance(0, SEED)
            .iter()
            .map(|p| p.keys().len())
            .sum();
        let start_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Plan {
            samples_per_series,
            series_per_client,
            instances_per_client: series_per_client.div_ceil(per_instance),
            start_ms: start_ms - start_ms % 1_000,
        }
    }

    /// Samples in every request.
    fn samples_per_request(&self) -> usize {
        self.series_per_client * self.samples_per_series
    }

    /// The request bodies of one client, in sending order.
    fn bodies(&self, client: usize, requests: usize) -> Vec<Vec<u8>> {
        let first = client * self.instances_per_client;
        let mut points: Vec<CollectionPoint> = (first..first + self.instances_per_client)
            .flat_map(|instance| CollectionPoint::instance(instance, SEED))
            .collect();
        let keys: Vec<SeriesKey> = points
            .iter()
            .flat_map(|p| p.keys().iter().cloned())
            .take(self.series_per_client)
            .collect();
        let mut timeseries: Vec<proto::TimeSeries> = keys
            .iter()
            .map(|key| proto::TimeSeries {
                labels: proto::labels_of(key),
                samples: Vec::with_capacity(self.samples_per_series),
            })
            .collect();
        let mut encoder = snap::raw::Encoder::new();
        let mut tick_ms = self.start_ms;
        let mut bodies = Vec::with_capacity(requests);
        for _ in 0..requests {
            timeseries.iter_mut().for_each(|s| s.samples.clear());
            for _ in 0..self.samples_per_series {
                let values = points.iter_mut().flat_map(|p| p.tick(tick_ms).to_vec());
                for (series, value) in timeseries.iter_mut().zip(values) {
                    series.samples.push(proto::Sample {
                        value,
                        timestamp: tick_ms,
                    });
                }
                tick_ms += 1_000;
            }
            let request = proto::WriteRequest {
                timeseries: timeseries.clone(),
                metadata: Vec::new(),
            };
            // Compressing into a Vec cannot fail for inputs under 4 GiB.
            let body = encoder
                .compress_vec(&request.encode_to_vec())
                .unwrap_or_default();
            bodies.push(body);
        }
        bodies
    }
}

/// What the clients measured.
struct Run {
    wall: Duration,
    /// Every request's latency, sorted.
    latencies: Vec<Duration>,
    accepted_samples: u64,
    /// Requests answered other than 204: status and body.
    failures: Vec<(u16, String)>,
}

/// Sends every client's bodies from its own thread, all starting together.
fn load(addr: SocketAddr, bodies: &[Vec<Vec<u8>>], samples_per_request: u64) -> Result<Run, Error> {
    let url = format!("http://{addr}/api/v1/write");
    let barrier = Barrier::new(bodies.len() + 1);
    let (wall, results) = std::thread::scope(|scope| {
        let workers: Vec<_> = bodies
            .iter()
            .map(|client_bodies| {
                let (url, barrier) = (&url, &barrier);
                scope.spawn(move || send_all(url, client_bodies, samples_per_request, barrier))
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        (started.elapsed(), results)
    });
    let mut run = Run {
        wall,
        latencies: Vec::new(),
        accepted_samples: 0,
        failures: Vec::new(),
    };
    for result in results {
        let client = result.map_err(|_| {
            Error::io(
                "run",
                "a client thread",
                std::io::Error::other("it panicked"),
            )
        })??;
        run.latencies.extend(client.latencies);
        run.accepted_samples += client.accepted_samples;
        run.failures.extend(client.failures);
    }
    run.latencies.sort_unstable();
    Ok(run)
}

/// What one client measured.
struct ClientRun {
    latencies: Vec<Duration>,
    accepted_samples: u64,
    failures: Vec<(u16, String)>,
}

fn send_all(
    url: &str,
    bodies: &[Vec<u8>],
    samples_per_request: u64,
    barrier: &Barrier,
) -> Result<ClientRun, Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(WAIT_LIMIT))
        .build()
        .into();
    let mut run = ClientRun {
        latencies: Vec::with_capacity(bodies.len()),
        accepted_samples: 0,
        failures: Vec::new(),
    };
    barrier.wait();
    for body in bodies {
        let sent = Instant::now();
        let response = agent
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .send(body.as_slice())
            .map_err(|e| Error::io("send to", url, std::io::Error::other(e)))?;
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().unwrap_or_default();
        run.latencies.push(sent.elapsed());
        if status == 204 {
            run.accepted_samples += samples_per_request;
        } else {
            run.failures.push((status, text));
        }
    }
    Ok(run)
}

/// A `strata serve` child process; killed when dropped unless stopped.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(dir: &Path, sync: &str) -> Result<ServerProcess, Error> {
        let exe =
            std::env::current_exe().map_err(|e| Error::io("find", "the strata executable", e))?;
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::io("find a free port on", "127.0.0.1", e))?;
        let child = Command::new(&exe)
            .arg("serve")
            .arg("--db")
            .arg(dir)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--sync")
            .arg(sync)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::io("start", exe.display().to_string(), e))?;
        let mut server = ServerProcess { child, addr };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), Error> {
        let url = format!("http://{}/-/ready", self.addr);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(1)))
            .build()
            .into();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(not_serving(format!("strata serve exited early ({status})")));
            }
            if agent.get(&url).call().is_ok() {
                return Ok(());
            }
            if started.elapsed() > WAIT_LIMIT {
                return Err(not_serving(format!(
                    "strata serve not ready at {url} after {WAIT_LIMIT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `VmHWM` of the process, in KiB, if Linux reports it.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// SIGTERM (through `kill`: this crate has no unsafe code), then waits
    /// for the graceful shutdown, bounded.
    fn stop(&mut self) -> Result<(), Error> {
        let pid = self.child.id().to_string();
        let signalled = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| Error::io("run", "kill -TERM", e))?;
        if !signalled.success() {
            return Err(not_serving(format!(
                "kill -TERM {pid} failed ({signalled})"
            )));
        }
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(not_serving(format!("strata serve exited with {status}")))
                }
                Ok(None) if started.elapsed() > WAIT_LIMIT => {
                    return Err(not_serving(format!(
                        "strata serve still running {WAIT_LIMIT:?} after SIGTERM"
                    )))
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(Error::io("wait for", "strata serve", e)),
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn not_serving(message: String) -> Error {
    Error::io(
        "serve",
        "the benchmark's server",
        std::io::Error::other(message),
    )
}

fn report(
    args: &ServeBenchArgs,
    plan: &Plan,
    run: &Run,
    encoding: Duration,
    body_bytes: usize,
    peak_rss_kib: Option<u64>,
) -> Result<(), Error> {
    let requests = run.latencies.len();
    let percentile = |p: f64| {
        let index = ((requests as f64 * p).ceil() as usize).clamp(1, requests.max(1)) - 1;
        run.latencies
            .get(index)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    outln!(
        "strata bench serve: {} clients x {} requests x {} samples ({} series per client, {} \
         sample(s) each), strata serve --sync {}",
        args.clients,
        args.requests,
        plan.samples_per_request(),
        plan.series_per_client,
        plan.samples_per_series,
        args.sync
    )?;
    outln!(
        "  bodies: {requests} requests, mean {:.1} KiB snappy-compressed, encoded in {:.2} s \
         before the clock started",
        body_bytes as f64 / requests.max(1) as f64 / 1024.0,
        encoding.as_secs_f64()
    )?;
    outln!(
        "  accepted: {} samples in {:.3} s = {:.0} samples/s ({} requests failed)",
        run.accepted_samples,
        run.wall.as_secs_f64(),
        run.accepted_samples as f64 / run.wall.as_secs_f64(),
        run.failures.len()
    )?;
    outln!(
        "  request latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(0.50),
        percentile(0.99),
        percentile(1.0)
    )?;
    match peak_rss_kib {
        Some(kib) => outln!("  server peak RSS (VmHWM): {:.1} MiB", kib as f64 / 1024.0)?,
        None => outln!("  server peak RSS: not available (no /proc/<pid>/status)")?,
    }
    for (status, text) in run.failures.iter().take(3) {
        errln!(
            "strata bench serve: a request got {status}: {}",
            text.trim()
        );
    }
    Ok(())
}
