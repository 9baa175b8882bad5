//! `strata inspect` and `strata verify`: a data directory, a directory of
//! segment files, or one segment file, without a running writer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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

fn inspect_data_dir(dir: &Path, list_series: bool) -> Result<(), Error> {
    let manifest = Manifest::load(dir)?.unwrap_or_default();
    outln!("database {}", dir.display())?;
    outln!(
        "  manifest        {} segments; samples before {} are all in segments; WAL replay from file {}",
        manifest.segments.len(),
        if manifest.persisted_below_ms == i64::MIN {
            "(none yet)".to_owned()
        } else {
            format_utc(manifest.persisted_below_ms)
        },
        manifest.wal_replay_from
    )?;
    let mut segment_bytes = 0u64;
    let mut segment_samples = 0u64;
    if !manifest.segments.is_empty() {
        outln!("  partitions:")?;
        outln!(
            "    {:>6}  {:<24}  {:>8}  {:>11}  {:>11}  {:>8}",
            "seq",
            "partition start (UTC)",
            "series",
            "samples",
            "bytes",
            "B/sample"
        )?;
    }
    for meta in &manifest.segments {
        let path = dir.join("segments").join(SegmentMeta::file_name(meta.seq));
        let len = std::fs::metadata(&path)
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        segment_bytes += len;
        segment_samples += meta.sample_count;
        outln!(
            "    {:>6}  {:<24}  {:>8}  {:>11}  {:>11}  {:>8.3}",
            meta.seq,
            format_utc(meta.partition_start_ms),
            meta.series_count,
            meta.sample_count,
            len,
            len as f64 / meta.sample_count.max(1) as f64
        )?;
    }
    if let (Some(min), Some(max)) = (
        manifest.segments.iter().map(|m| m.min_time_ms).min(),
        manifest.segments.iter().map(|m| m.max_time_ms).max(),
    ) {
        outln!(
            "  segment range   {} .. {}",
            format_utc(min),
            format_utc(max)
        )?;
    }
    outln!(
        "  segments total  {segment_samples} samples in {segment_bytes} bytes = {:.3} bytes/sample",
        segment_bytes as f64 / segment_samples.max(1) as f64
    )?;
    let mut encodings: BTreeMap<(&'static str, &'static str), u64> = BTreeMap::new();
    for meta in &manifest.segments {
        let segment = Segment::open(dir.join("segments").join(SegmentMeta::file_name(meta.seq)))?;
        for id in 0..segment.series_count() as u32 {
            for chunk in segment.chunk_refs(id) {
                *encodings
                    .entry((chunk.timestamp_encoding.name(), chunk.value_encoding.name()))
                    .or_default() += u64::from(chunk.sample_count);
            }
        }
        if list_series {
            list_segment_series(&segment)?;
        }
    }
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
    if list_series {
        list_segment_series(segment)?;
    }
    Ok(())
}

fn list_segment_series(segment: &Segment) -> Result<(), Error> {
    for id in 0..segment.series_count() as u32 {
        let refs = segment.chunk_refs(id);
        let samples: u64 = refs.iter().map(|c| u64::from(c.sample_count)).sum();
        if let (Some(key), Some(first), Some(last)) =
            (segment.series_key(id), refs.first(), refs.last())
        {
            outln!(
                "    {key}  samples={samples} chunks={} range={}..{}",
                refs.len(),
                first.min_time_ms,
                last.max_time_ms
            )?;
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
    let days = time_ms.div_euclid(86_400_000);
    let ms_of_day = time_ms.rem_euclid(86_400_000);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
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
