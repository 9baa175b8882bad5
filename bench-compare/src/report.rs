//! The results of one run: tables for people, JSON for machines, and the
//! issue's targets checked against the figures.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::dataset::{Dataset, DatasetKind};
use crate::measure::{FsyncProbe, WriteTiming};

#[derive(Serialize)]
pub struct Report {
    pub date_utc: String,
    pub machine: Machine,
    pub dataset: DatasetInfo,
    pub settings: Settings,
    /// strata, tsink, tsz.
    pub storage: Vec<SizeRow>,
    /// strata, tsink, tsz (empty with `--no-decode`).
    pub decode: Vec<DecodeRow>,
    pub decode_ratios: Option<DecodeRatios>,
    pub write: Vec<WriteRow>,
    /// `write 4 KiB + fdatasync` latency, probed before each writer count's runs.
    /// `(round, writers, probe)`.
    pub fsync_probes: Vec<(usize, usize, FsyncProbe)>,
    pub write_ratios: Vec<WriteRatio>,
    pub targets: Vec<Target>,
}

#[derive(Serialize)]
pub struct Machine {
    pub cores: usize,
    pub os: &'static str,
    pub arch: &'static str,
    pub cpu: Option<String>,
}

#[derive(Serialize)]
pub struct DatasetInfo {
    pub description: String,
    pub series: usize,
    pub samples: usize,
    pub duplicates_dropped: usize,
}

#[derive(Serialize)]
pub struct Settings {
    pub batch: usize,
    pub write_seconds: f64,
    pub writers: Vec<usize>,
    pub rounds: usize,
    pub repeat: usize,
}

#[derive(Serialize)]
pub struct SizeRow {
    pub engine: &'static str,
    pub setting: String,
    pub bytes: u64,
    pub files: usize,
    pub bytes_per_sample: f64,
    pub ratio_to_tsz: f64,
    /// Writing the dataset once (tsz: encoding it, best of `repeat`).
    pub write_seconds: f64,
    pub close_seconds: f64,
    /// Bytes under each top-level entry of the directory.
    pub breakdown: Vec<(String, u64)>,
}

#[derive(Serialize)]
pub struct DecodeRow {
    pub engine: &'static str,
    pub method: &'static str,
    pub samples: usize,
    /// Best of `repeat`, opening excluded.
    pub seconds: f64,
    pub samples_per_second: f64,
    pub open_seconds: f64,
}

impl DecodeRow {
    pub fn new(
        engine: &'static str,
        method: &'static str,
        samples: usize,
        seconds: f64,
        open_seconds: f64,
    ) -> Self {
        DecodeRow {
            engine,
            method,
            samples,
            seconds,
            samples_per_second: samples as f64 / seconds,
            open_seconds,
        }
    }
}

#[derive(Serialize)]
pub struct DecodeRatios {
    /// strata through `select` over tsz.
    pub strata_over_tsz: f64,
    /// strata's sealed-chunk decode over tsz.
    pub strata_chunks_over_tsz: Option<f64>,
    pub strata_over_tsink: f64,
    pub tsink_over_tsz: f64,
}

#[derive(Serialize)]
pub struct WriteRow {
    /// 1-based; every round runs each configuration once, strata and tsink alternating.
    pub round: usize,
    /// `fsync` or `no fsync`.
    pub durability: &'static str,
    pub engine: &'static str,
    pub setting: String,
    pub writers: usize,
    pub samples: u64,
    pub wall_seconds: f64,
    /// Samples over wall time (batch building included).
    pub samples_per_second: f64,
    /// Samples over the time spent inside the engine's write calls.
    pub engine_samples_per_second: f64,
    /// Process CPU seconds per wall second during the run (all threads).
    pub cpu_cores_busy: Option<f64>,
    pub close_seconds: f64,
    /// Samples over wall time plus `close`.
    pub samples_per_second_incl_close: f64,
    /// The run's directory after close.
    pub disk_bytes: u64,
}

impl WriteRow {
    pub fn new(
        durability: &'static str,
        engine: &'static str,
        setting: String,
        writers: usize,
        timing: WriteTiming,
        close_seconds: f64,
        disk_bytes: u64,
    ) -> Self {
        let samples = timing.samples as f64;
        WriteRow {
            round: 0,
            durability,
            engine,
            setting,
            writers,
            samples: timing.samples,
            wall_seconds: timing.wall_seconds,
            samples_per_second: samples / timing.wall_seconds,
            engine_samples_per_second: samples / timing.engine_seconds,
            cpu_cores_busy: timing.cpu_seconds.map(|c| c / timing.wall_seconds),
            close_seconds,
            samples_per_second_incl_close: samples / (timing.wall_seconds + close_seconds),
            disk_bytes,
        }
    }
}

#[derive(Serialize)]
pub struct WriteRatio {
    /// The ratios are of the medians over this many rounds.
    pub rounds: usize,
    pub durability: &'static str,
    pub writers: usize,
    pub strata_setting: String,
    pub tsink_setting: String,
    pub strata_over_tsink: f64,
    pub strata_over_tsink_engine_only: f64,
    pub strata_over_tsink_incl_close: f64,
}

#[derive(Serialize)]
pub struct Target {
    pub what: String,
    pub measured: f64,
    pub holds: bool,
}

impl Report {
    pub fn new(data: &Dataset, settings: Settings) -> Self {
        Report {
            date_utc: today_utc(),
            machine: Machine {
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                os: std::env::consts::OS,
                arch: std::env::consts::ARCH,
                cpu: cpu_model(),
            },
            dataset: DatasetInfo {
                description: data.description.clone(),
                series: data.keys.len(),
                samples: data.samples(),
                duplicates_dropped: data.duplicates_dropped,
            },
            settings,
            storage: Vec::new(),
            decode: Vec::new(),
            decode_ratios: None,
            write: Vec::new(),
            fsync_probes: Vec::new(),
            write_ratios: Vec::new(),
            targets: Vec::new(),
        }
    }

    fn size(&self, engine: &str) -> Option<&SizeRow> {
        self.storage.iter().find(|r| r.engine == engine)
    }

    /// The first decode row of `engine` (strata: the `select` row).
    fn decode_rate(&self, engine: &str) -> Option<f64> {
        self.decode
            .iter()
            .find(|r| r.engine == engine)
            .map(|r| r.samples_per_second)
    }

    /// strata's sealed-chunk decode row, if measured.
    fn chunk_decode_rate(&self) -> Option<f64> {
        self.decode
            .iter()
            .find(|r| r.engine == "strata" && r.method.starts_with("sealed chunks"))
            .map(|r| r.samples_per_second)
    }

    /// Computes the ratios and checks the issue's targets.
    pub fn evaluate(&mut self, kind: DatasetKind) {
        if let Some(strata) = self.size("strata") {
            let (limit, data) = match kind {
                DatasetKind::DevopsDecimal => (0.2, "devops data rounded to decimals"),
                DatasetKind::Tsv => (0.5, "real scraped telemetry"),
                DatasetKind::DevopsFullPrecision => (1.0, "full-precision random walks"),
            };
            let measured = strata.ratio_to_tsz;
            self.targets.push(Target {
                what: format!("storage: strata bytes/sample <= {limit} x tsz on {data}"),
                measured,
                holds: measured <= limit,
            });
        }
        if let (Some(strata), Some(tsink), Some(tsz)) = (
            self.decode_rate("strata"),
            self.decode_rate("tsink"),
            self.decode_rate("tsz"),
        ) {
            let ratios = DecodeRatios {
                strata_over_tsz: strata / tsz,
                strata_chunks_over_tsz: self.chunk_decode_rate().map(|c| c / tsz),
                strata_over_tsink: strata / tsink,
                tsink_over_tsz: tsink / tsz,
            };
            self.targets.push(Target {
                what: "decode: strata samples/s >= 3 x tsz (select of everything)".to_owned(),
                measured: ratios.strata_over_tsz,
                holds: ratios.strata_over_tsz >= 3.0,
            });
            if let Some(chunks) = ratios.strata_chunks_over_tsz {
                self.targets.push(Target {
                    what: "decode: strata samples/s >= 3 x tsz (sealed chunks alone)".to_owned(),
                    measured: chunks,
                    holds: chunks >= 3.0,
                });
            }
            self.decode_ratios = Some(ratios);
        }
        // Medians over rounds of each configuration, in first-run order.
        let mut configs: Vec<(&'static str, &'static str, &str, usize)> = Vec::new();
        for r in &self.write {
            let config = (r.durability, r.engine, r.setting.as_str(), r.writers);
            if !configs.contains(&config) {
                configs.push(config);
            }
        }
        let medians: Vec<_> = configs
            .iter()
            .map(|&(durability, engine, setting, writers)| {
                let rows: Vec<&WriteRow> = self
                    .write
                    .iter()
                    .filter(|r| {
                        (r.durability, r.engine, r.setting.as_str(), r.writers)
                            == (durability, engine, setting, writers)
                    })
                    .collect();
                let med = |f: fn(&WriteRow) -> f64| median(rows.iter().map(|r| f(r)).collect());
                (
                    (durability, engine, setting.to_owned(), writers),
                    rows.len(),
                    med(|r| r.samples_per_second),
                    med(|r| r.engine_samples_per_second),
                    med(|r| r.samples_per_second_incl_close),
                )
            })
            .collect();
        let mut ratios = Vec::new();
        for strata in medians.iter().filter(|m| m.0 .1 == "strata") {
            for tsink in medians
                .iter()
                .filter(|m| m.0 .1 == "tsink" && m.0 .0 == strata.0 .0 && m.0 .3 == strata.0 .3)
            {
                ratios.push(WriteRatio {
                    rounds: strata.1.min(tsink.1),
                    durability: strata.0 .0,
                    writers: strata.0 .3,
                    strata_setting: strata.0 .2.clone(),
                    tsink_setting: tsink.0 .2.clone(),
                    strata_over_tsink: strata.2 / tsink.2,
                    strata_over_tsink_engine_only: strata.3 / tsink.3,
                    strata_over_tsink_incl_close: strata.4 / tsink.4,
                });
            }
        }
        // One target per (durability, writers): against tsink's fastest setting.
        let mut groups: Vec<(&'static str, usize)> =
            ratios.iter().map(|r| (r.durability, r.writers)).collect();
        groups.dedup();
        for (durability, writers) in groups {
            let worst = ratios
                .iter()
                .filter(|r| r.durability == durability && r.writers == writers)
                .map(|r| r.strata_over_tsink)
                .fold(f64::INFINITY, f64::min);
            self.targets.push(Target {
                what: format!(
                    "write ({durability}, {writers} writer{}): strata samples/s >= 20 x tsink{}",
                    if writers == 1 { "" } else { "s" },
                    if durability == "no fsync" {
                        " (its faster no-fsync setting)"
                    } else {
                        ""
                    }
                ),
                measured: worst,
                holds: worst >= 20.0,
            });
        }
        self.write_ratios = ratios;
    }

    pub fn print(&self) {
        let m = &self.machine;
        println!(
            "bench-compare, {} UTC, {} cores{}, {}/{}",
            self.date_utc,
            m.cores,
            m.cpu
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default(),
            m.os,
            m.arch
        );
        println!(
            "data: {}; {} samples{}",
            self.dataset.description,
            self.dataset.samples,
            if self.dataset.duplicates_dropped > 0 {
                format!(
                    " ({} repeated timestamps dropped)",
                    self.dataset.duplicates_dropped
                )
            } else {
                String::new()
            }
        );

        println!();
        println!("storage: whole directory after close (tsz: stream bytes, no index)");
        println!(
            "{:<7} {:<40} {:>12} {:>6} {:>9} {:>7} {:>8} {:>8}",
            "engine", "setting", "bytes", "files", "B/sample", "x tsz", "write s", "close s"
        );
        for r in &self.storage {
            println!(
                "{:<7} {:<40} {:>12} {:>6} {:>9.4} {:>7.3} {:>8.2} {:>8.2}",
                r.engine,
                r.setting,
                r.bytes,
                r.files,
                r.bytes_per_sample,
                r.ratio_to_tsz,
                r.write_seconds,
                r.close_seconds
            );
        }
        for r in self.storage.iter().filter(|r| !r.breakdown.is_empty()) {
            let parts: Vec<String> = r
                .breakdown
                .iter()
                .map(|(name, bytes)| format!("{name} {bytes}"))
                .collect();
            println!("  {} bytes by entry: {}", r.engine, parts.join(", "));
        }

        if !self.decode.is_empty() {
            println!();
            println!(
                "decode: every sample of every series, best of {}, verified bit-exact",
                self.settings.repeat
            );
            println!(
                "{:<7} {:<50} {:>10} {:>9} {:>12} {:>8}",
                "engine", "method", "samples", "seconds", "M samples/s", "open s"
            );
            for r in &self.decode {
                println!(
                    "{:<7} {:<50} {:>10} {:>9.4} {:>12.2} {:>8.3}",
                    r.engine,
                    r.method,
                    r.samples,
                    r.seconds,
                    r.samples_per_second / 1e6,
                    r.open_seconds
                );
            }
            if let Some(d) = &self.decode_ratios {
                println!(
                    "ratios: strata/tsz {:.2}x (sealed chunks alone {}), strata/tsink {:.2}x, tsink/tsz {:.3}x",
                    d.strata_over_tsz,
                    d.strata_chunks_over_tsz
                        .map_or_else(|| "-".to_owned(), |c| format!("{c:.2}x")),
                    d.strata_over_tsink,
                    d.tsink_over_tsz
                );
            }
        }

        if !self.write.is_empty() {
            println!();
            println!(
                "write: batches of {} samples, {} s wall per run (time-bound; the data repeats shifted in time), {} round{}",
                self.settings.batch,
                self.settings.write_seconds,
                self.settings.rounds,
                if self.settings.rounds == 1 { "" } else { "s" }
            );
            println!(
                "{:>2} {:<9} {:>3} {:<7} {:<34} {:>10} {:>8} {:>9} {:>5} {:>8} {:>8} {:>9}",
                "r",
                "sync",
                "thr",
                "engine",
                "setting",
                "samples",
                "M/s",
                "engine",
                "CPU",
                "close s",
                "+close",
                "B/sample",
            );
            for r in &self.write {
                println!(
                    "{:>2} {:<9} {:>3} {:<7} {:<34} {:>10} {:>8.3} {:>9.3} {:>5} {:>8.2} {:>8.3} {:>9.3}",
                    r.round,
                    r.durability,
                    r.writers,
                    r.engine,
                    r.setting,
                    r.samples,
                    r.samples_per_second / 1e6,
                    r.engine_samples_per_second / 1e6,
                    r.cpu_cores_busy
                        .map_or_else(|| "-".to_owned(), |c| format!("{c:.2}")),
                    r.close_seconds,
                    r.samples_per_second_incl_close / 1e6,
                    r.disk_bytes as f64 / r.samples.max(1) as f64,
                );
            }
            println!("  M/s: samples over wall time; engine: over time inside append_batch/insert_rows only;");
            println!("  CPU: process CPU seconds per wall second (all threads, background work included);");
            println!(
                "  +close: over wall time plus close; B/sample: the run's directory after close"
            );
            for (round, writers, p) in &self.fsync_probes {
                println!(
                    "  disk before round {round}, x{writers}: write 4 KiB + fdatasync median {:.2} ms, p99 {:.2} ms ({} syncs)",
                    p.median_ms, p.p99_ms, p.syncs
                );
            }
            for r in &self.write_ratios {
                println!(
                    "ratio strata/tsink (medians of {} round{}), {} x{}, vs {}: {:.1}x (engine only {:.1}x, incl. close {:.1}x)",
                    r.rounds,
                    if r.rounds == 1 { "" } else { "s" },
                    r.durability,
                    r.writers,
                    r.tsink_setting,
                    r.strata_over_tsink,
                    r.strata_over_tsink_engine_only,
                    r.strata_over_tsink_incl_close
                );
            }
        }

        if !self.targets.is_empty() {
            println!();
            println!("targets (issue 4):");
            for t in &self.targets {
                println!(
                    "  {:<8} {} -- measured {:.3}",
                    if t.holds { "HOLDS" } else { "MISSES" },
                    t.what,
                    t.measured
                );
            }
        }
    }
}

/// The median (mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The CPU model from `/proc/cpuinfo` (Linux), if any.
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_owned())
}

/// Today's date, `YYYY-MM-DD` in UTC (civil-from-days, H. Hinnant).
fn today_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
