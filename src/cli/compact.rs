//! `strata compact`: one compaction of a data directory no other process
//! has open: merge segments, roll up, apply the retention policy.
//!
//! Decisions: the directory must already be a strata database (compact
//! never creates one); whatever the WAL still holds is flushed to segments
//! first, so that all of the data can be compacted; background compaction
//! is off (this command is the compaction). A directory locked by another
//! process is refused with an error that says so: that writer compacts in
//! its own background thread.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use strata::{Clock, CompactionReport, Db, Error, Manifest, Options};

use super::inspect::{format_utc, tier_name, tier_totals, TierTotals};
use super::time::{describe_time, parse_time};

#[derive(clap::Args)]
pub struct CompactArgs {
    /// The data directory; it must be a strata database and no other
    /// process may have it open for writing.
    #[arg(long, value_name = "DIR")]
    db: PathBuf,
    /// Retention policy file to apply instead of DIR/strata.toml (see
    /// docs/RETENTION.md for its keys).
    #[arg(long, value_name = "FILE")]
    retention: Option<PathBuf>,
    /// The time retention measures age against instead of the wall clock:
    /// RFC 3339 (2026-12-01T00:00:00Z), Unix seconds or milliseconds, or
    /// now-1d. Age is measured from this or the newest sample, whichever is
    /// earlier.
    #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
    now: Option<i64>,
}

pub fn run(args: &CompactArgs) -> Result<ExitCode, Error> {
    let dir = &args.db;
    if !dir.join("MANIFEST").is_file() && !dir.join("wal").is_dir() {
        return Err(Error::BadDirectory {
            path: dir.clone(),
            reason: "not a strata database (no MANIFEST, no wal/): nothing to compact".into(),
        });
    }
    let (retention, source) = super::retention_policy(dir, args.retention.as_deref())?;
    let clock = args.now.map_or(Clock::System, Clock::manual);
    outln!("compacting {}", dir.display())?;
    outln!("  policy          {retention} ({source})")?;
    outln!(
        "  clock           {}",
        match args.now {
            Some(now_ms) => format!("{} (--now)", describe_time(now_ms)),
            None => "the wall clock".to_owned(),
        }
    )?;
    let options = Options {
        retention,
        clock,
        background_compaction: false,
        ..Options::default()
    };
    let db = Db::open(dir, options).map_err(|error| locked_by_another(dir, error))?;
    for action in db.recovery_report().actions() {
        outln!("  on open         {action}")?;
    }
    let flush = db.flush()?;
    if flush.samples_written > 0 {
        outln!(
            "  flushed         {} samples from the WAL into {} segments first",
            flush.samples_written,
            flush.segments_written
        )?;
    }
    let before = tiers_on_disk(dir)?;
    let report = db.compact()?;
    db.close()?;
    let after = tiers_on_disk(dir)?;
    print_report(&report)?;
    print_tiers(&before, &after)?;
    Ok(ExitCode::SUCCESS)
}

/// A lock held by another process gets an error that names the remedy for
/// this command.
fn locked_by_another(dir: &Path, error: Error) -> Error {
    match error {
        Error::Locked { pid, .. } => Error::BadDirectory {
            path: dir.to_path_buf(),
            reason: format!(
                "another process{} has it open for writing; strata compact needs the directory \
                 to itself: stop that process (a running writer compacts in the background)",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ),
        },
        other => other,
    }
}

fn print_report(report: &CompactionReport) -> Result<(), Error> {
    outln!(
        "  merged          {} segments into {}",
        report.segments_merged,
        report.merged_segments_written
    )?;
    outln!(
        "  rolled up       {} rollup segments written",
        report.rollup_segments_written
    )?;
    outln!(
        "  retention       {} segments deleted, {} rewritten, {} samples (or buckets) deleted",
        report.segments_deleted,
        report.segments_rewritten,
        report.samples_deleted
    )?;
    outln!(
        "  work            {} samples (or buckets) read, {} bytes written, {} bytes removed",
        report.samples_read,
        report.bytes_written,
        report.bytes_removed
    )
}

/// The manifest's tiers: the flushed state before compacting, the final
/// one after.
fn tiers_on_disk(dir: &Path) -> Result<Vec<TierTotals>, Error> {
    let manifest = Manifest::load(dir)?.unwrap_or_default();
    tier_totals(dir, &manifest)
}

fn print_tiers(before: &[TierTotals], after: &[TierTotals]) -> Result<(), Error> {
    outln!(
        "  {:<8}  {:>16}  {:>26}  time range after",
        "tier",
        "segments",
        "bytes"
    )?;
    let mut resolutions: Vec<i64> = before
        .iter()
        .chain(after)
        .map(|t| t.resolution_ms)
        .collect();
    resolutions.sort_unstable();
    resolutions.dedup();
    let find = |tiers: &[TierTotals], resolution_ms: i64| {
        tiers
            .iter()
            .find(|t| t.resolution_ms == resolution_ms)
            .cloned()
            .unwrap_or(TierTotals {
                resolution_ms,
                ..TierTotals::default()
            })
    };
    for resolution_ms in resolutions {
        let (b, a) = (find(before, resolution_ms), find(after, resolution_ms));
        let range = match a.time_range_ms {
            Some((min, max)) => format!("{} .. {}", format_utc(min), format_utc(max)),
            None => "(empty)".to_owned(),
        };
        outln!(
            "  {:<8}  {:>16}  {:>26}  {range}",
            tier_name(resolution_ms),
            format!("{} -> {}", b.segments, a.segments),
            format!("{} -> {}", b.bytes, a.bytes)
        )?;
    }
    let total = |tiers: &[TierTotals]| tiers.iter().map(|t| t.bytes).sum::<u64>();
    outln!(
        "  segment bytes   {} before, {} after",
        total(before),
        total(after)
    )
}
