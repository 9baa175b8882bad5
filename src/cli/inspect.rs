//! `strata inspect` and `strata verify`: a data directory, a directory of
//! segment files, or one segment file, without a running writer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use strata::compaction::policy::format_duration;
use strata::rollup::store::split_key;
use strata::rollup::Column;
use strata::wal::{self, record::Record};
use strata::{Db, Error, Manifest, Segment, SegmentMeta};

/// What a path given on the command line is.
enum Target {
    SegmentFile(PathBuf),
    /// A database directory (MANIFEST, wal/, segments/).
    DataDir(PathBuf),
    /// Any other directory: its `*.seg` files.
    SegmentDir(PathBuf),
}

fn classify(path: &Path) -> Target {
    if !path.is_dir() {
        Target::SegmentFile(path.to_path_buf())
    } else if path.join("MANIFEST").exists() || path.join("wal").is_dir() {
        Target::DataDir(path.to_path_buf())
    } else {
        Target::SegmentDir(path.to_path_buf())
    }
}

/// Total size of the files under `path`.
pub fn dir_size(path: &Path) -> Result<u64, Error> {
    let mut total = 0;
    let entries = std::fs::read_dir(path).map_err(|e| Error::io("read directory", path, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", path, e))?;
        let meta = entry
            .metadata()
            .map_err(|e| Error::io("stat", entry.path(), e))?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

fn seg_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| Error::io("read directory", dir, e))?
            .path();
        if path.extension().is_some_and(|ext| ext == "seg") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

pub fn inspect(path: &Path, list_series: bool) -> Result<ExitCode, Error> {
    match classify(path) {
        Target::SegmentFile(file) => {
            describe_segment(&Segment::open_in_memory(&file)?, list_series)?
        }
        Target::SegmentDir(dir) => {
            let files = seg_files(&dir)?;
            if files.is_empty() {
                outln!(
                    "{}: no segment files (*.seg) and not a strata database",
                    dir.display()
                )?;
            }
            for file in files {
                describe_segment(&Segment::open_in_memory(&file)?, list_series)?;
            }
        }
        Target::DataDir(dir) => inspect_data_dir(&dir, list_series)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// What one tier (raw, or a rollup resolution) of a data directory holds,
/// from its manifest and the files' sizes.
#[derive(Debug, Clone, Default)]
pub struct TierTotals {
    /// 0 for raw samples.
    pub resolution_ms: i64,
    pub segments: usize,
    pub bytes: u64,
    /// The manifest's sample counts: raw samples, or for a rollup tier the
    /// samples of all seven columns.
    pub samples: u64,
    /// Segments per block duration (0: one flushed partition).
    pub blocks: BTreeMap<i64, usize>,
    /// Smallest `min_time_ms` and largest `max_time_ms` of its segments.
    pub time_range_ms: Option<(i64, i64)>,
}

/// `raw`, or a rollup tier's resolution (`1m`).
pub fn tier_name(resolution_ms: i64) -> String {
    if resolution_ms == 0 {
        "raw".to_owned()
    } else {
        format_duration(resolution_ms)
    }
}

/// The size of a listed segment file: its pin, or the file's length for a
/// version-1 manifest entry.
fn segment_bytes(dir: &Path, meta: &SegmentMeta) -> Result<u64, Error> {
    if let Some(pin) = meta.pin {
        return Ok(pin.file_len);
    }
    let path = dir.join("segments").join(SegmentMeta::file_name(meta.seq));
    Ok(std::fs::metadata(&path)
        .map_err(|e| Error::io("stat", &path, e))?
        .len())
}

/// Totals of the raw tier and each of the manifest's rollup tiers (also
/// those with no segments), raw first.
pub fn tier_totals(dir: &Path, manifest: &Manifest) -> Result<Vec<TierTotals>, Error> {
    let mut tiers: Vec<TierTotals> = std::iter::once(0)
        .chain(manifest.tiers.iter().map(|t| t.resolution_ms))
        .map(|resolution_ms| TierTotals {
            resolution_ms,
            ..TierTotals::default()
        })
        .collect();
    for meta in &manifest.segments {
        // The manifest's decoder checked that every resolution is a tier's.
        let Some(tier) = tiers
            .iter_mut()
            .find(|t| t.resolution_ms == meta.resolution_ms)
        else {
            continue;
        };
        tier.segments += 1;
        tier.bytes += segment_bytes(dir, meta)?;
        tier.samples += meta.sample_count;
        *tier.blocks.entry(meta.block_duration_ms).or_default() += 1;
        tier.time_range_ms = Some(match tier.time_range_ms {
            None => (meta.min_time_ms, meta.max_time_ms),
            Some((min, max)) => (min.min(meta.min_time_ms), max.max(meta.max_time_ms)),
        });
    }
    Ok(tiers)
}

/// A block duration: `2h`, or `flush` for one flushed partition.
fn block_name(block_duration_ms: i64) -> String {
    if block_duration_ms == 0 {
        "flush".to_owned()
    } else {
        format_duration(block_duration_ms)
    }
}

/// A manifest time bound: `i64::MIN` means the bound was never set.
fn format_bound(time_ms: i64, unset: &str) -> String {
    if time_ms == i64::MIN {
        unset.to_owned()
    } else {
        format_utc(time_ms)
    }
}

fn inspect_data_dir(dir: &Path, list_series: bool) -> Result<(), Error> {
    let manifest = Manifest::load(dir)?.unwrap_or_default();
    outln!("database {}", dir.display())?;
    outln!(
        "  manifest        {} segments; samples before {} are all in segments; WAL replay from file {}",
        manifest.segments.len(),
        format_bound(manifest.persisted_below_ms, "(none yet)"),
        manifest.wal_replay_from
    )?;
    let policy = match super::retention_policy(dir, None) {
        Ok((policy, source)) => {
            outln!("  retention       {policy} ({source})")?;
            Some(policy)
        }
        Err(error) => {
            outln!("  retention       unusable policy file: {error}")?;
            None
        }
    };
    let segment_dir = dir.join("segments");
    let tiers = tier_totals(dir, &manifest)?;
    // Buckets per rollup tier: the count column's samples.
    let mut buckets: BTreeMap<i64, u64> = BTreeMap::new();
    let mut encodings: BTreeMap<(&'static str, &'static str), u64> = BTreeMap::new();
    if !manifest.segments.is_empty() {
        outln!("  segments:")?;
        outln!(
            "    {:>6}  {:>5}  {:<24}  {:>5}  {:>8}  {:>11}  {:>11}  {:>8}",
            "seq",
            "tier",
            "block start (UTC)",
            "block",
            "series",
            "samples",
            "bytes",
            "B/sample"
        )?;
    }
    for meta in &manifest.segments {
        let len = segment_bytes(dir, meta)?;
        outln!(
            "    {:>6}  {:>5}  {:<24}  {:>5}  {:>8}  {:>11}  {:>11}  {:>8.3}",
            meta.seq,
            tier_name(meta.resolution_ms),
            format_utc(meta.partition_start_ms),
            block_name(meta.block_duration_ms),
            meta.series_count,
            meta.sample_count,
            len,
            len as f64 / meta.sample_count.max(1) as f64
        )?;
        let segment = Segment::open(segment_dir.join(SegmentMeta::file_name(meta.seq)))?;
        for id in 0..segment.series_count() as u32 {
            for chunk in segment.chunk_refs(id) {
                *encodings
                    .entry((chunk.timestamp_encoding.name(), chunk.value_encoding.name()))
                    .or_default() += u64::from(chunk.sample_count);
            }
        }
        if meta.resolution_ms != 0 {
            *buckets.entry(meta.resolution_ms).or_default() += rollup_counts(&segment).1;
        }
        if list_series {
            list_segment_series(&segment)?;
        }
    }
    for tier in &tiers {
        print_tier(&manifest, tier, buckets.get(&tier.resolution_ms).copied())?;
    }
    let planned = policy.iter().flat_map(|p| &p.tiers);
    for tier in planned.filter(|p| !tiers.iter().any(|t| t.resolution_ms == p.resolution_ms)) {
        outln!(
            "  {:<15} in the policy, no segments yet (the next compaction rolls up into it)",
            format!("tier {}", tier_name(tier.resolution_ms))
        )?;
    }
    let raw = &tiers[0];
    outln!(
        "  segments total  {} samples in {} bytes = {:.3} bytes/sample (raw tier)",
        raw.samples,
        raw.bytes,
        raw.bytes as f64 / raw.samples.max(1) as f64
    )?;
    for ((ts, value), samples) in encodings {
        outln!("  encoding        timestamps {ts}, values {value}: {samples} samples")?;
    }
    outln!("  WAL:")?;
    let files = wal::list_wal_files(&dir.join("wal"))?;
    if files.is_empty() {
        outln!("    (no WAL files)")?;
    }
    for (file_id, path) in files {
        let (records, samples, replay) = scan_wal(&path)?;
        let len = std::fs::metadata(&path)
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        let note = if file_id < manifest.wal_replay_from {
            " (already persisted; removed at next open)"
        } else {
            ""
        };
        outln!(
            "    {:020}.wal  {len:>10} bytes  {records:>8} records  {samples:>10} samples{note}",
            file_id
        )?;
        for damage in replay.all_damage() {
            if damage.torn_tail {
                outln!("      damaged tail (a running writer may be mid-append): {damage}")?;
            } else {
                outln!("      damaged region, skipped by replay: {damage}")?;
            }
        }
    }
    outln!("  on disk         {} bytes", dir_size(dir)?)?;
    match Db::open_read_only(dir) {
        Ok(db) if db.recovery_report().is_clean() => {
            outln!("  recovery        none needed: opening for writing changes nothing")?;
        }
        Ok(db) => {
            for action in db.recovery_report().actions() {
                outln!("  recovery        {action}")?;
            }
        }
        Err(error) => outln!("  recovery        unknown: a read-only open fails: {error}")?,
    }
    Ok(())
}

/// One tier's lines: segments, bytes, samples (buckets for a rollup
/// tier), blocks, time range, and how far it is rolled up and retained.
fn print_tier(manifest: &Manifest, tier: &TierTotals, buckets: Option<u64>) -> Result<(), Error> {
    let name = format!("tier {}", tier_name(tier.resolution_ms));
    let (count, unit) = if tier.resolution_ms == 0 {
        (tier.samples, "sample")
    } else {
        (buckets.unwrap_or(0), "bucket")
    };
    outln!(
        "  {name:<15} {} segment(s), {} bytes, {count} {unit}s, {:.3} bytes/{unit}",
        tier.segments,
        tier.bytes,
        tier.bytes as f64 / count.max(1) as f64
    )?;
    if !tier.blocks.is_empty() {
        let blocks: Vec<String> = tier
            .blocks
            .iter()
            .map(|(&duration, &n)| format!("{n} x {}", block_name(duration)))
            .collect();
        outln!("                  blocks {}", blocks.join(", "))?;
    }
    if let Some((min, max)) = tier.time_range_ms {
        outln!(
            "                  time range {} .. {}",
            format_utc(min),
            format_utc(max)
        )?;
    }
    let meta = manifest
        .tiers
        .iter()
        .find(|t| t.resolution_ms == tier.resolution_ms);
    let retained_from = match meta {
        Some(meta) => meta.retained_from_ms,
        None => manifest.raw_retained_from_ms,
    };
    let retained = format!(
        "retained from {}",
        format_bound(retained_from, "the start (nothing deleted)")
    );
    match meta {
        Some(meta) => outln!(
            "                  rolled up to {}; {retained}",
            format_bound(meta.rolled_up_to_ms, "(nothing yet)")
        ),
        None => outln!("                  {retained}"),
    }
}

/// Counts records and samples of a WAL file without changing it.
fn scan_wal(path: &Path) -> Result<(u64, u64, wal::FileReplay), Error> {
    let mut samples = 0u64;
    let replay = wal::replay_file(path, |record| {
        if let Record::Samples(s) = record {
            samples += s.len() as u64;
        }
    })?;
    Ok((replay.records, samples, replay))
}

fn describe_segment(segment: &Segment, list_series: bool) -> Result<(), Error> {
    let footer = segment.footer();
    outln!("segment {}", segment.path().display())?;
    outln!("  file size      {} bytes", segment.file_len())?;
    outln!(
        "  series         {}   chunks {}   samples {}",
        footer.series_count,
        footer.chunk_count,
        footer.sample_count
    )?;
    if footer.sample_count > 0 {
        outln!(
            "  bytes/sample   {:.3} (whole file, index included)",
            segment.file_len() as f64 / footer.sample_count as f64
        )?;
        outln!(
            "  time range     {} .. {} ({} .. {} ms)",
            format_utc(footer.min_time_ms),
            format_utc(footer.max_time_ms),
            footer.min_time_ms,
            footer.max_time_ms
        )?;
    }
    let mut encodings: BTreeMap<(&str, &str), (usize, u64)> = BTreeMap::new();
    let mut chunk_bytes = 0u64;
    for id in 0..segment.series_count() as u32 {
        for chunk in segment.chunk_refs(id) {
            let entry = encodings
                .entry((chunk.timestamp_encoding.name(), chunk.value_encoding.name()))
                .or_default();
            entry.0 += 1;
            entry.1 += u64::from(chunk.sample_count);
            chunk_bytes += u64::from(chunk.len);
        }
    }
    outln!(
        "  chunk data     {chunk_bytes} bytes ({:.1} % of the file)",
        100.0 * chunk_bytes as f64 / segment.file_len().max(1) as f64
    )?;
    for ((ts, value), (chunks, samples)) in encodings {
        outln!(
            "  encoding       timestamps {ts}, values {value}: {chunks} chunks, {samples} samples"
        )?;
    }
    outln!("  label names    {}", segment.label_names().join(", "))?;
    let (base_series, buckets) = rollup_counts(segment);
    if base_series > 0 {
        outln!(
            "  rollup         {base_series} base series x {} columns ({}), {buckets} buckets",
            Column::ALL.len(),
            Column::ALL.map(Column::label_value).join(", ")
        )?;
    }
    if list_series {
        list_segment_series(segment)?;
    }
    Ok(())
}

/// The rollup column of series `id` (`None` for a raw series).
fn rollup_column(segment: &Segment, id: u32) -> Option<(strata::SeriesKey, Column)> {
    segment.series_key(id).and_then(split_key)
}

/// A rollup segment's base series and buckets (its count columns and
/// their samples); zeros for a raw segment.
fn rollup_counts(segment: &Segment) -> (usize, u64) {
    let mut base_series = 0;
    let mut buckets = 0;
    for id in 0..segment.series_count() as u32 {
        if rollup_column(segment, id).is_some_and(|(_, column)| column == Column::Count) {
            base_series += 1;
            buckets += segment
                .chunk_refs(id)
                .iter()
                .map(|c| u64::from(c.sample_count))
                .sum::<u64>();
        }
    }
    (base_series, buckets)
}

/// One line per series; a rollup segment's seven columns of a base series
/// as one line with its bucket count (the count column's samples).
fn list_segment_series(segment: &Segment) -> Result<(), Error> {
    for id in 0..segment.series_count() as u32 {
        let refs = segment.chunk_refs(id);
        let samples: u64 = refs.iter().map(|c| u64::from(c.sample_count)).sum();
        let (Some(key), Some(first), Some(last)) =
            (segment.series_key(id), refs.first(), refs.last())
        else {
            continue;
        };
        match rollup_column(segment, id) {
            None => outln!(
                "    {key}  samples={samples} chunks={} range={}..{}",
                refs.len(),
                first.min_time_ms,
                last.max_time_ms
            )?,
            Some((base, Column::Count)) => outln!(
                "    {base}  buckets={samples} range={}..{} (bucket starts; {} rollup columns)",
                first.min_time_ms,
                last.max_time_ms,
                Column::ALL.len()
            )?,
            Some(_) => {}
        }
    }
    Ok(())
}

pub fn verify(path: &Path) -> Result<ExitCode, Error> {
    let mut problems: Vec<String> = Vec::new();
    let mut checked = 0usize;
    let mut recovery_needed = false;
    match classify(path) {
        Target::SegmentFile(file) => verify_segment_files(&[file], &mut problems, &mut checked)?,
        Target::SegmentDir(dir) => {
            verify_segment_files(&seg_files(&dir)?, &mut problems, &mut checked)?
        }
        Target::DataDir(dir) => {
            recovery_needed = verify_data_dir(&dir, &mut problems, &mut checked)?;
        }
    }
    for problem in &problems {
        outln!("DAMAGED {problem}")?;
    }
    if problems.is_empty() && !recovery_needed {
        outln!("all {checked} file(s) intact")?;
        Ok(ExitCode::SUCCESS)
    } else {
        outln!(
            "{} damaged part(s) in {checked} file(s) checked{}",
            problems.len(),
            if recovery_needed {
                "; opening for writing would change the directory (RECOVERY lines)"
            } else {
                ""
            }
        )?;
        Ok(ExitCode::FAILURE)
    }
}

/// Checks loose segment files: every chunk decoded and checksummed. Each
/// is read into memory, not mapped: a file strata did not publish may be
/// truncated by someone else while it is read (see docs/RELIABILITY.md).
fn verify_segment_files(
    files: &[PathBuf],
    problems: &mut Vec<String>,
    checked: &mut usize,
) -> Result<(), Error> {
    for file in files {
        *checked += 1;
        match Segment::open_in_memory(file) {
            Err(error) => problems.push(error.to_string()),
            Ok(segment) => {
                let report = segment.verify();
                if report.damage.is_empty() {
                    outln!(
                        "ok {}: {} series, {} chunks, {} samples",
                        file.display(),
                        report.series_count,
                        report.chunk_count,
                        report.sample_count
                    )?;
                }
                problems.extend(report.damage.iter().map(ToString::to_string));
            }
        }
    }
    Ok(())
}

/// Checks a data directory through a read-only open (which changes
/// nothing): the manifest, every listed segment against its pin and chunk
/// by chunk, every WAL file; prints what a writable open would do. Returns
/// whether that open would change anything.
fn verify_data_dir(
    dir: &Path,
    problems: &mut Vec<String>,
    checked: &mut usize,
) -> Result<bool, Error> {
    let db = match Db::open_read_only(dir) {
        Ok(db) => db,
        Err(error) => {
            problems.push(format!("the directory does not open: {error}"));
            return Ok(true);
        }
    };
    for (_, wal_path) in wal::list_wal_files(&dir.join("wal"))? {
        *checked += 1;
        let (records, _, replay) = scan_wal(&wal_path)?;
        if replay.all_damage().next().is_none() {
            outln!("ok {}: {records} records", wal_path.display())?;
        }
    }
    for check in db.verify_segments() {
        *checked += 1;
        if check.is_intact() {
            outln!(
                "ok {}: {} series, {} chunks, {} samples",
                check.path.display(),
                check.report.series_count,
                check.report.chunk_count,
                check.report.sample_count
            )?;
        }
        problems.extend(check.pin_problem);
        problems.extend(check.report.damage.iter().map(ToString::to_string));
    }
    let report = db.recovery_report();
    for action in report.actions() {
        outln!("RECOVERY {action}")?;
    }
    Ok(!report.is_clean())
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic
/// Gregorian, UTC), without a date library.
pub fn format_utc(time_ms: i64) -> String {
    let ((year, month, day), h, m, s, millis) = strata::calendar::utc_parts(time_ms);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc(1_796_083_200_000), "2026-12-01T00:00:00.000Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }
}
