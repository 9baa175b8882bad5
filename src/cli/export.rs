//! `strata export`: series from a database as text, sorted by series key
//! then time, with values printed so that they parse back to the same f64
//! bits. Works next to a running writer (opens read-only).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use strata::{parse_selector, Db, Error, Matcher, TimeRange};

use strata::ingest::{csv_header, write_sample, ExportFormat};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Data directory to read.
    #[arg(long)]
    db: PathBuf,
    /// Series selector in PromQL syntax, e.g. 'up' or
    /// 'http_requests_total{code=~"5..",job!="test"}'. Default: everything.
    #[arg(long = "match", default_value = "")]
    selector: String,
    /// First timestamp included: Unix ms or RFC 3339 UTC
    /// (2026-12-01T00:00:00Z). A time that does not fit in i64 Unix
    /// milliseconds (about 292 million years either side of 1970) is
    /// refused.
    #[arg(long, value_parser = parse_time)]
    start: Option<i64>,
    /// Last timestamp included, same forms as --start.
    #[arg(long, value_parser = parse_time)]
    end: Option<i64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "tsv")]
    format: ExportFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn run(args: &ExportArgs) -> Result<ExitCode, Error> {
    let matchers = parse_selector(&args.selector)?;
    let range = TimeRange::new(args.start.unwrap_or(i64::MIN), args.end.unwrap_or(i64::MAX));
    let db = Db::open_read_only(&args.db)?;
    let (sink, name): (Box<dyn Write>, String) = match &args.output {
        Some(path) => (
            Box::new(File::create(path).map_err(|e| Error::io("create", path, e))?),
            path.display().to_string(),
        ),
        None => (
            Box::new(std::io::stdout().lock()),
            "standard output".to_owned(),
        ),
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    // A closed pipe (`strata export | head`) ends the export quietly (see
    // `cli::run`).
    write_all(&db, &matchers, range, args.format, &mut out)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("write", name, e))?;
    Ok(ExitCode::SUCCESS)
}

/// Exports metric by metric, so that memory holds one metric at a time.
fn write_all(
    db: &Db,
    matchers: &[Matcher],
    range: TimeRange,
    format: ExportFormat,
    out: &mut impl Write,
) -> std::io::Result<()> {
    if format == ExportFormat::Csv {
        out.write_all(csv_header().as_bytes())?;
    }
    // Sorted by the series' text form, like the canonical files: metric by
    // metric ("a_b{" sorts before "a{"), then by full text within one.
    let mut metrics: Vec<String> = db
        .find_series(matchers)
        .iter()
        .map(|k| k.metric().to_owned())
        .collect();
    metrics.sort_by_cached_key(|m| format!("{m}{{"));
    metrics.dedup();
    for metric in metrics {
        let mut selected = matchers.to_vec();
        selected.push(Matcher::equal("__name__", &metric));
        let mut series = db.select(&selected, range).map_err(std::io::Error::other)?;
        series.sort_by_cached_key(|s| s.key.to_string());
        for s in series {
            for sample in &s.samples {
                write_sample(format, &s.key, sample.timestamp_ms, sample.value, out)?;
            }
        }
    }
    Ok(())
}

/// Why a time argument was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("{0:?} is not a time: expected Unix milliseconds or an RFC 3339 UTC time like 2026-12-01T00:00:00Z")]
    Malformed(String),
    #[error("{0:?} is out of range: a time must fit in i64 Unix milliseconds (about 292 million years either side of 1970)")]
    OutOfRange(String),
}

/// Unix milliseconds, or RFC 3339 in UTC: `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
/// Checked arithmetic throughout: a time beyond the i64 range is refused,
/// never wrapped.
pub fn parse_time(text: &str) -> Result<i64, TimeError> {
    let bad = || TimeError::Malformed(text.to_owned());
    let out_of_range = || TimeError::OutOfRange(text.to_owned());
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().map_err(|_| out_of_range());
    }
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = body.split_once('T').ok_or_else(bad)?;
    let number = |part: &str| {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| out_of_range())
    };
    let date: Vec<i64> = date.split('-').map(number).collect::<Result<_, _>>()?;
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let hms: Vec<i64> = hms.split(':').map(number).collect::<Result<_, _>>()?;
    let [year, month, day] = date[..] else {
        return Err(bad());
    };
    let [hour, minute, second] = hms[..] else {
        return Err(bad());
    };
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid || fraction.len() > 3 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let millis = if fraction.is_empty() {
        0
    } else {
        number(&format!("{fraction:0<3}"))?
    };
    // Howard Hinnant's days-from-civil algorithm; only the era product and
    // the final sums can leave the i64 range.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let ms_of_day = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    era.checked_mul(146_097)
        .and_then(|days| days.checked_add(doe - 719_468))
        .and_then(|days| days.checked_mul(86_400_000))
        .and_then(|ms| ms.checked_add(ms_of_day))
        .ok_or_else(out_of_range)
}

#[cfg(test)]
mod tests {
    use super::{parse_time, TimeError};
    use crate::cli::inspect::format_utc;

    #[test]
    fn times_parse_and_match_the_formatter() {
        assert_eq!(parse_time("-5").unwrap(), -5);
        for ms in [
            0,
            1_796_083_200_000,
            951_782_400_123,
            -86_400_000,
            253_402_300_799_999,
        ] {
            assert_eq!(
                parse_time(&format_utc(ms)).unwrap(),
                ms,
                "{}",
                format_utc(ms)
            );
        }
        assert_eq!(
            parse_time("2026-12-01T00:00:00Z").unwrap(),
            1_796_083_200_000
        );
        assert_eq!(
            parse_time("2026-12-01T00:00:00.5Z").unwrap(),
            1_796_083_200_500
        );
        let malformed: fn(String) -> TimeError = TimeError::Malformed;
        // Regression (issue 7): far-future times wrapped around to the past.
        let out_of_range: fn(String) -> TimeError = TimeError::OutOfRange;
        for (bad, error) in [
            ("yesterday", malformed),
            ("2026-12-01", malformed),
            ("2026-13-01T00:00:00Z", malformed),
            ("2026-12-01T00:00:00.1234Z", malformed),
            ("2026-12-01T00:00:+1Z", malformed),
            ("", malformed),
            ("-", malformed),
            ("292278994-08-17T07:12:55.808Z", out_of_range),
            ("300000000-01-01T00:00:00Z", out_of_range),
            ("9223372036854775807-01-01T00:00:00Z", out_of_range),
            ("99999999999999999999-01-01T00:00:00Z", out_of_range),
            ("9223372036854775808", out_of_range),
            ("-9223372036854775809", out_of_range),
        ] {
            assert_eq!(parse_time(bad), Err(error(bad.to_owned())), "{bad}");
        }
        assert_eq!(parse_time("292278994-08-17T07:12:55.807Z"), Ok(i64::MAX));
        assert_eq!(parse_time("-9223372036854775808"), Ok(i64::MIN));
    }
}
