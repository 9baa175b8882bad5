//! Time and duration arguments shared by every subcommand.
//!
//! A time is one of:
//! - `now`, `now-1h`, `now+5m` (a PromQL duration after the sign);
//! - RFC 3339: `2026-12-01T00:00:00Z`, `2026-12-01T01:00:00.250+01:00`;
//! - a Unix timestamp: seconds or milliseconds, told apart by size. A bare
//!   number below 10^11 in magnitude is seconds (fractions allowed:
//!   `1796083200.5`), anything larger is milliseconds (`1796083200000`):
//!   10^11 seconds is the year 5138 and 10^11 milliseconds is March 1973,
//!   so every time either unit can mean in practice is read right. The
//!   suffixes `s` and `ms` (`1000ms`, `5s`) force a unit.
//!
//! Digits below the millisecond (in fractions of seconds or RFC 3339) are
//! dropped, rounding towards the past, as Prometheus does.
//!
//! Invariant: every arithmetic step is checked; a time outside the i64
//! millisecond range is refused ([`TimeError::OutOfRange`]), never wrapped.
//!
//! A duration is a PromQL duration (`15s`, `1m`, `1h30m`, read by the
//! PromQL parser itself, so the units and their order are the language's)
//! or a number of seconds (`15`, `0.5`); it must be positive.

use super::inspect::format_utc;

/// Bare numbers at or above this magnitude are milliseconds.
const MILLIS_FROM: u128 = 100_000_000_000;

/// Why a time argument was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("{0:?} is not a time: expected RFC 3339 (2026-12-01T00:00:00Z), Unix seconds (1796083200, fractions allowed), Unix milliseconds (1796083200000, or any number with an ms suffix), or now, now-1h, now+5m")]
    Malformed(String),
    #[error("{0:?} is out of range: a time must fit in i64 Unix milliseconds (about 292 million years either side of 1970)")]
    OutOfRange(String),
}

/// Parses a time argument at wall-clock time `now_ms` (see the module doc).
pub fn parse_time_at(text: &str, now_ms: i64) -> Result<i64, TimeError> {
    let bad = || TimeError::Malformed(text.to_owned());
    let out_of_range = || TimeError::OutOfRange(text.to_owned());
    let trimmed = text.trim();
    if let Some(rest) = trimmed.strip_prefix("now") {
        let rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(now_ms);
        }
        let (sign, duration) = match rest.split_at(1) {
            ("-", d) => (-1, d),
            ("+", d) => (1, d),
            _ => return Err(bad()),
        };
        let duration = parse_promql_duration(duration.trim()).ok_or_else(bad)?;
        return now_ms.checked_add(sign * duration).ok_or_else(out_of_range);
    }
    if trimmed.contains(['T', 't']) {
        return parse_rfc3339(trimmed)
            .map_err(|overflow| if overflow { out_of_range() } else { bad() });
    }
    parse_unix(trimmed).map_err(|overflow| if overflow { out_of_range() } else { bad() })
}

/// Parses a time argument relative to the current wall-clock time.
pub fn parse_time(text: &str) -> Result<i64, TimeError> {
    parse_time_at(text, now_ms())
}

/// The current wall-clock time in Unix milliseconds (0 if the clock is
/// before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A time for messages: RFC 3339 and the milliseconds.
pub fn describe_time(time_ms: i64) -> String {
    format!("{} ({time_ms} ms)", format_utc(time_ms))
}

/// A positive duration: a PromQL duration or a number of seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let error = || {
        format!("{text:?} is not a duration: expected a positive PromQL duration like 15s, 1m, 1h30m, 500ms or a number of seconds like 15 or 0.5")
    };
    if let Some(ms) = parse_promql_duration(text) {
        return Ok(ms);
    }
    match parse_decimal(text) {
        Some(Decimal {
            negative: false,
            integer,
            fraction,
        }) => {
            let ms = integer
                .checked_mul(1000)
                .and_then(|ms| ms.checked_add(fraction_ms(&fraction)))
                .and_then(|ms| i64::try_from(ms).ok())
                .ok_or_else(error)?;
            if ms > 0 {
                Ok(ms)
            } else {
                Err(format!("{text:?} is shorter than a millisecond: durations are whole milliseconds above 0"))
            }
        }
        _ => Err(error()),
    }
}

/// A PromQL duration literal (`1h30m`), > 0, read by the PromQL parser:
/// `x[TEXT]` parses as a range selector exactly when TEXT is a valid range.
fn parse_promql_duration(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match strata::parse_expr(&format!("x[{text}]")) {
        Ok(strata::Expr::Matrix { range_ms, .. }) => Some(range_ms),
        _ => None,
    }
}

/// An unsigned decimal with an optional sign: the integer part and the
/// fraction digits.
struct Decimal {
    negative: bool,
    integer: u128,
    fraction: String,
}

/// `[+-]digits[.digits]` (or `.digits`); `None` for anything else. The
/// integer part is limited to 30 digits (far beyond any i64 time).
fn parse_decimal(text: &str) -> Option<Decimal> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (integer, fraction) = body.split_once('.').unwrap_or((body, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (integer.is_empty() && fraction.is_empty())
        || !all_digits(integer)
        || !all_digits(fraction)
        || (body.contains('.') && fraction.is_empty())
    {
        return None;
    }
    let integer = integer.trim_start_matches('0');
    if integer.len() > 30 {
        // Out of range for sure; report it as such through a huge value.
        return Some(Decimal {
            negative,
            integer: u128::MAX / 2,
            fraction: String::new(),
        });
    }
    Some(Decimal {
        negative,
        integer: if integer.is_empty() {
            0
        } else {
            integer.parse().ok()?
        },
        fraction: fraction.to_owned(),
    })
}

/// The first three fraction digits as milliseconds (`"5"` is 500).
fn fraction_ms(fraction: &str) -> u128 {
    fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |ms, digit| ms * 10 + u128::from(digit - b'0'))
}

/// Whether any digit after the third is nonzero (sub-millisecond).
fn below_ms(fraction: &str) -> bool {
    fraction.bytes().skip(3).any(|b| b != b'0')
}

/// A Unix timestamp in seconds or milliseconds (module doc). `Err(true)`
/// when out of range, `Err(false)` when malformed.
fn parse_unix(text: &str) -> Result<i64, bool> {
    let (body, unit) = if let Some(body) = text.strip_suffix("ms") {
        (body, Some(1))
    } else if let Some(body) = text.strip_suffix('s') {
        (body, Some(1000))
    } else {
        (text, None)
    };
    let decimal = parse_decimal(body).ok_or(false)?;
    let unit = unit.unwrap_or(if decimal.integer >= MILLIS_FROM {
        1
    } else {
        1000
    });
    // In milliseconds and thousandths of a millisecond: floor towards the
    // past for negative times too.
    let (whole, sub_ms_nonzero) = if unit == 1 {
        let nonzero = decimal.fraction.bytes().any(|b| b != b'0');
        (decimal.integer, nonzero)
    } else {
        let ms = decimal
            .integer
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(fraction_ms(&decimal.fraction)))
            .ok_or(true)?;
        (ms, below_ms(&decimal.fraction))
    };
    let whole = i128::try_from(whole).map_err(|_| true)?;
    let signed = if decimal.negative {
        -whole - i128::from(sub_ms_nonzero)
    } else {
        whole
    };
    i64::try_from(signed).map_err(|_| true)
}

/// RFC 3339: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`. `Err(true)` when
/// out of range, `Err(false)` when malformed.
fn parse_rfc3339(text: &str) -> Result<i64, bool> {
    let (date, time) = text.split_once(['T', 't']).ok_or(false)?;
    let (clock, offset_ms) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-']).ok_or(false)?;
        let (clock, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':').ok_or(false)?;
        let (h, m) = (two_digits(h)?, two_digits(m)?);
        if h > 23 || m > 59 {
            return Err(false);
        }
        (clock, sign * (h * 60 + m) * 60_000)
    };
    let date: Vec<&str> = date.split('-').collect();
    // A leading '-' (years before 1 BC) is not RFC 3339; years may be
    // longer than four digits so that the whole i64 range is reachable.
    let [year, month, day] = date[..] else {
        return Err(false);
    };
    if year.len() < 4 || month.len() != 2 || day.len() != 2 {
        return Err(false);
    }
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let hms: Vec<&str> = hms.split(':').collect();
    let [hour, minute, second] = hms[..] else {
        return Err(false);
    };
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || (clock.contains('.') && fraction.is_empty())
    {
        return Err(false);
    }
    let year: i64 = match parse_decimal(year) {
        Some(d) if !d.negative && !year.starts_with('+') && !year.contains('.') => {
            i64::try_from(d.integer).map_err(|_| true)?
        }
        _ => return Err(false),
    };
    let (month, day) = (two_digits(month)?, two_digits(day)?);
    let (hour, minute, second) = (two_digits(hour)?, two_digits(minute)?, two_digits(second)?);
    let valid = (1..=12).contains(&month)
        && (1..=strata::calendar::days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return Err(false);
    }
    // fraction_ms of at most 3 digits fits in i64.
    let millis = fraction_ms(fraction) as i64;
    let ms_of_day = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    strata::calendar::days_from_civil(year, month, day)
        .and_then(|days| days.checked_mul(86_400_000))
        .and_then(|ms| ms.checked_add(ms_of_day))
        .and_then(|ms| ms.checked_sub(offset_ms))
        .ok_or(true)
}

fn two_digits(text: &str) -> Result<i64, bool> {
    match text.as_bytes() {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Ok(i64::from(a - b'0') * 10 + i64::from(b - b'0'))
        }
        _ => Err(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_083_200_000; // 2026-12-01T00:00:00Z

    fn at(text: &str) -> Result<i64, TimeError> {
        parse_time_at(text, NOW)
    }

    #[test]
    fn relative_times() {
        assert_eq!(at("now"), Ok(NOW));
        assert_eq!(at("now-1h"), Ok(NOW - 3_600_000));
        assert_eq!(at("now+5m"), Ok(NOW + 300_000));
        assert_eq!(at("now - 1h30m"), Ok(NOW - 5_400_000));
        assert_eq!(at(" now "), Ok(NOW));
        for bad in ["now-", "now-1", "now*2", "now-1x", "nowish", "now-5m]+x[1m"] {
            assert_eq!(at(bad), Err(TimeError::Malformed(bad.to_owned())), "{bad}");
        }
        assert_eq!(
            parse_time_at("now+1y", i64::MAX - 1),
            Err(TimeError::OutOfRange("now+1y".to_owned()))
        );
    }

    #[test]
    fn unix_seconds_and_milliseconds_are_told_apart_by_size() {
        // Seconds below 10^11, milliseconds from there on.
        assert_eq!(at("1796083200"), Ok(NOW));
        assert_eq!(at("1796083200000"), Ok(NOW));
        assert_eq!(at("1796083200.5"), Ok(NOW + 500));
        assert_eq!(at("1796083200.123456"), Ok(NOW + 123));
        assert_eq!(at("99999999999"), Ok(99_999_999_999_000));
        assert_eq!(at("100000000000"), Ok(100_000_000_000));
        assert_eq!(at("0"), Ok(0));
        assert_eq!(at("5"), Ok(5000));
        assert_eq!(at("-5"), Ok(-5000));
        assert_eq!(at(".5"), Ok(500));
        // Floor towards the past: -0.0005 s is -1 ms.
        assert_eq!(at("-0.0005"), Ok(-1));
        // Explicit units.
        assert_eq!(at("5ms"), Ok(5));
        assert_eq!(at("-5ms"), Ok(-5));
        assert_eq!(at("5s"), Ok(5000));
        assert_eq!(at("1796083200000ms"), Ok(NOW));
        assert_eq!(at("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(at("-9223372036854775808"), Ok(i64::MIN));
        for bad in [
            "", "-", ".", "1.", "1e9", "0x10", "1..2", "1,5", "--1", "5 s", "ms",
        ] {
            assert_eq!(at(bad), Err(TimeError::Malformed(bad.to_owned())), "{bad}");
        }
        for huge in [
            "9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "9999999999999999999999999999999999999999",
            "9223372036854775.808s",
        ] {
            assert_eq!(
                at(huge),
                Err(TimeError::OutOfRange(huge.to_owned())),
                "{huge}"
            );
        }
    }

    #[test]
    fn rfc3339_rejects_days_past_the_end_of_the_month() {
        assert!(parse_rfc3339("2026-02-31T00:00:00Z").is_err());
        assert!(parse_rfc3339("2026-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2026-04-31T00:00:00Z").is_err());
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_rfc3339("2000-02-29T00:00:00Z").is_ok());
        assert!(parse_rfc3339("1900-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2026-12-31T23:59:59Z").is_ok());
    }

    #[test]
    fn rfc3339_matches_the_formatter() {
        for ms in [0, NOW, 951_782_400_123, -86_400_000, 253_402_300_799_999] {
            assert_eq!(at(&format_utc(ms)), Ok(ms), "{}", format_utc(ms));
        }
        assert_eq!(at("2026-12-01T00:00:00Z"), Ok(NOW));
        assert_eq!(at("2026-12-01t00:00:00z"), Ok(NOW));
        assert_eq!(at("2026-12-01T00:00:00.5Z"), Ok(NOW + 500));
        assert_eq!(at("2026-12-01T00:00:00.123456789Z"), Ok(NOW + 123));
        assert_eq!(at("2026-12-01T01:00:00+01:00"), Ok(NOW));
        assert_eq!(at("2026-11-30T19:30:00-04:30"), Ok(NOW));
        assert_eq!(at("292278994-08-17T07:12:55.807Z"), Ok(i64::MAX));
        for bad in [
            "2026-12-01",
            "2026-13-01T00:00:00Z",
            "2026-12-01T00:00:00",
            "2026-12-01T00:00:00.Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T00:00:+1Z",
            "2026-12-01T00:00:00+1:00",
            "2026-12-01T00:00:00+25:00",
            "26-12-01T00:00:00Z",
            "-2026-12-01T00:00:00Z",
            "yesterday",
        ] {
            assert_eq!(at(bad), Err(TimeError::Malformed(bad.to_owned())), "{bad}");
        }
        for huge in [
            "292278994-08-17T07:12:55.808Z",
            "300000000-01-01T00:00:00Z",
            "99999999999999999999-01-01T00:00:00Z",
        ] {
            assert_eq!(
                at(huge),
                Err(TimeError::OutOfRange(huge.to_owned())),
                "{huge}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(15_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("15"), Ok(15_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        for bad in [
            "0", "0s", "-1", "-1m", "0.0001", "1m1h", "1x", "", "1e3", "5m]",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("0.0001")
            .unwrap_err()
            .contains("millisecond"));
    }

    #[test]
    fn messages_show_rfc3339_and_milliseconds() {
        assert_eq!(
            describe_time(NOW),
            "2026-12-01T00:00:00.000Z (1796083200000 ms)"
        );
    }
}
