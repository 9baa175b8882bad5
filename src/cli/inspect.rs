//! `strata inspect` and `strata verify` on segment files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use strata::{Error, Segment};

/// The segment files `path` names: itself, or the `*.seg` files in it.
fn segment_files(path: &Path) -> Result<Vec<PathBuf>, Error> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| Error::io("read directory", path, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", path, e))?;
        let file = entry.path();
        if file.extension().is_some_and(|ext| ext == "seg") {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

pub fn inspect(path: &Path, list_series: bool) -> Result<ExitCode, Error> {
    let files = segment_files(path)?;
    if files.is_empty() {
        println!("{}: no segment files (*.seg)", path.display());
    }
    for file in files {
        let segment = Segment::open(&file)?;
        let footer = segment.footer();
        println!("segment {}", file.display());
        println!("  file size      {} bytes", segment.file_len());
        println!(
            "  series         {}   chunks {}   samples {}",
            footer.series_count, footer.chunk_count, footer.sample_count
        );
        if footer.sample_count > 0 {
            println!(
                "  bytes/sample   {:.3} (whole file, index included)",
                segment.file_len() as f64 / footer.sample_count as f64
            );
            println!(
                "  time range     {} .. {} ({} .. {} ms)",
                format_utc(footer.min_time_ms),
                format_utc(footer.max_time_ms),
                footer.min_time_ms,
                footer.max_time_ms
            );
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
        println!(
            "  chunk data     {chunk_bytes} bytes ({:.1} % of the file)",
            100.0 * chunk_bytes as f64 / segment.file_len().max(1) as f64
        );
        for ((ts, value), (chunks, samples)) in encodings {
            println!("  encoding       timestamps {ts}, values {value}: {chunks} chunks, {samples} samples");
        }
        println!("  label names    {}", segment.label_names().join(", "));
        if list_series {
            for id in 0..segment.series_count() as u32 {
                let refs = segment.chunk_refs(id);
                let samples: u64 = refs.iter().map(|c| u64::from(c.sample_count)).sum();
                let (first, last) = (refs.first(), refs.last());
                if let (Some(key), Some(first), Some(last)) = (segment.series_key(id), first, last)
                {
                    println!(
                        "    {key}  samples={samples} chunks={} range={}..{}",
                        refs.len(),
                        first.min_time_ms,
                        last.max_time_ms
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify(path: &Path) -> Result<ExitCode, Error> {
    let files = segment_files(path)?;
    let mut damaged = 0usize;
    for file in &files {
        match Segment::open(file) {
            Err(error) => {
                damaged += 1;
                println!("DAMAGED {error}");
            }
            Ok(segment) => {
                let report = segment.verify();
                if report.damage.is_empty() {
                    println!(
                        "ok {}: {} series, {} chunks, {} samples",
                        file.display(),
                        report.series_count,
                        report.chunk_count,
                        report.sample_count
                    );
                }
                for error in &report.damage {
                    damaged += 1;
                    println!("DAMAGED {error}");
                }
            }
        }
    }
    if damaged > 0 {
        println!(
            "{damaged} damaged part(s) in {} file(s) checked",
            files.len()
        );
        Ok(ExitCode::FAILURE)
    } else {
        println!("all {} file(s) intact", files.len());
        Ok(ExitCode::SUCCESS)
    }
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
