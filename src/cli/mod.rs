//! Command-line parsing and dispatch. Subcommands print what they did and
//! exit 0; on failure they print the error (which names the file, offset
//! and series) and exit 1.

mod bench;
mod demo;
mod export;
mod import;
mod inspect;
mod kpi;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Embedded time-series storage engine: inspect, verify and demo strata data",
    long_about = "strata stores metric samples in Gorilla-compressed, checksummed segment \
                  files. This tool works offline on those files: no running writer needed."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate telemetry collection points, store them, read KPIs back.
    ///
    /// Generates counters, gauges and histograms (gateway, scheduler, agent
    /// sessions, spawn queue, inbox, heartbeats) at 1 s resolution from
    /// several threads, writes them to a segment file, reopens it and
    /// prints a few KPIs with the storage figures.
    Demo(demo::DemoArgs),
    /// Load samples from text (canonical TSV, Prometheus text, Influx line
    /// protocol) into a data directory.
    ///
    /// Prints a progress bar on a terminal and a summary at the end:
    /// samples, series, and the line numbers and reasons of malformed lines
    /// and rejected samples. Exits 1 if any line failed; the rest is kept.
    Import(import::ImportArgs),
    /// Write series as text (TSV, CSV, JSON lines), sorted by series then
    /// time; values parse back to the same f64 bits.
    Export(export::ExportArgs),
    /// Describe a data directory (partitions, WAL), a segment file, or a
    /// directory of segment files.
    ///
    /// Prints series, chunks, samples, bytes/sample, time range and the
    /// encodings in use.
    Inspect {
        /// A segment file (*.seg) or a directory holding them.
        path: PathBuf,
        /// Also list every series with its sample count and time range.
        #[arg(long)]
        series: bool,
    },
    /// Benchmarks: write throughput, latency, bytes/sample and head memory
    /// (`write`), query speed (`query`).
    Bench(bench::BenchArgs),
    /// Check every checksum and decode every chunk.
    ///
    /// Exits 0 when everything is intact, 1 with the file, offset and
    /// series of each damaged part otherwise.
    Verify {
        /// A segment file (*.seg) or a directory holding them.
        path: PathBuf,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Inspect { path, series } => inspect::inspect(&path, series),
        Command::Verify { path } => inspect::verify(&path),
        Command::Bench(args) => bench::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Export(args) => export::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("strata: {error}");
            ExitCode::FAILURE
        }
    }
}
