//! The query API's parameters, read as Prometheus 2.42 reads them.
//!
//! [`Params`] holds the request's parameters: those of an
//! `application/x-www-form-urlencoded` POST body first, then those of the
//! URL's query string (Go's `Request.FormValue` order: a body value wins,
//! and a repeated `match[]` lists the body's before the URL's). A body of
//! any other content type is ignored, as Go's `ParseForm` does.
//!
//! Times ([`parse_time`]) are Unix seconds with an optional fraction, or
//! RFC 3339 with optional fractional seconds, or the two strings Prometheus
//! uses for its minimum and maximum time; the result is Unix milliseconds
//! computed exactly as Prometheus does (fraction rounded to the
//! millisecond, then nanoseconds truncated). Durations ([`parse_duration`])
//! are float seconds or a Prometheus duration (`1h30m`, `5m`, `0`), in
//! nanoseconds as Go's `time.Duration`. Error messages are Prometheus's
//! (`cannot parse "x" to a valid timestamp`).
//!
//! Invariant: every arithmetic step is checked; an input outside the i64
//! range is refused with the parse error, never wrapped.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;

use super::ApiError;
use crate::calendar::{days_from_civil, days_in_month};

/// Prometheus's `minTime` formatted as RFC 3339 (Go's `time.Time` can
/// represent it; the RFC 3339 parser cannot read it back).
const MIN_TIME_TEXT: &str = "-292273086-05-16T16:47:06Z";
/// Prometheus's `maxTime` formatted as RFC 3339.
const MAX_TIME_TEXT: &str = "292277025-08-18T07:12:54.999999999Z";
/// Prometheus's `minTime` in Unix milliseconds: the default start of
/// `/api/v1/series` and `/api/v1/labels`.
pub(super) const MIN_TIME_MS: i64 = -9_223_309_901_257_974_000;
/// Prometheus's `maxTime` in Unix milliseconds.
pub(super) const MAX_TIME_MS: i64 = 9_223_309_901_257_974_999;

const NANOS_PER_MS: i128 = 1_000_000;
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// A request's parameters, in Go's `Request.Form` order (module doc).
#[derive(Debug, Default)]
pub(super) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The parameters of a form body (when there is one) and a query
    /// string (when there is one), in that order.
    pub(super) fn new(form_body: Option<&[u8]>, query: Option<&str>) -> Params {
        let pairs = form_body
            .into_iter()
            .chain(query.map(str::as_bytes))
            .flat_map(form_urlencoded::parse)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        Params { pairs }
    }

    /// The first value of `name`, or "" (Go's `FormValue`).
    pub(super) fn value(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub(super) fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Time parameter `name` in Unix milliseconds, `default_ms` when absent
    /// or empty (Prometheus's `parseTimeParam`, with its message).
    pub(super) fn time_or(&self, name: &str, default_ms: i64) -> Result<i64, ApiError> {
        match self.value(name) {
            "" => Ok(default_ms),
            text => parse_time(text).map_err(|reason| {
                invalid_parameter(name, format!("Invalid time value for '{name}': {reason}"))
            }),
        }
    }

    /// Time parameter `name`, required (Prometheus's `parseTime` on
    /// `FormValue`, as `query_range` reads `start` and `end`).
    pub(super) fn time(&self, name: &str) -> Result<i64, ApiError> {
        parse_time(self.value(name)).map_err(|reason| invalid_parameter(name, reason))
    }

    /// Duration parameter `name` in nanoseconds, required (Prometheus's
    /// `parseDuration` on `FormValue`).
    pub(super) fn duration(&self, name: &str) -> Result<i64, ApiError> {
        parse_duration(self.value(name)).map_err(|reason| invalid_parameter(name, reason))
    }
}

/// Prometheus's `invalidParamError`: 400 `bad_data`,
/// `invalid parameter "name": reason`.
pub(super) fn invalid_parameter(name: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::bad_data(format!("invalid parameter {name:?}: {reason}"))
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let query = request.uri().query().map(str::to_owned);
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let body = if is_form {
            Some(
                Bytes::from_request(request, state)
                    .await
                    .map_err(|rejection| ApiError {
                        status: rejection.status(),
                        error_type: "bad_data",
                        message: format!("error parsing form values: {}", rejection.body_text()),
                    })?,
            )
        } else {
            None
        };
        Ok(Params::new(body.as_deref(), query.as_deref()))
    }
}

/// The current wall-clock time in Unix milliseconds (0 before 1970).
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A time parameter in Unix milliseconds (module doc).
pub(super) fn parse_time(text: &str) -> Result<i64, String> {
    let fail = || format!("cannot parse {text:?} to a valid timestamp");
    if let Ok(seconds) = text.parse::<f64>() {
        return float_seconds_ms(seconds).ok_or_else(fail);
    }
    match text {
        MIN_TIME_TEXT => Ok(MIN_TIME_MS),
        MAX_TIME_TEXT => Ok(MAX_TIME_MS),
        _ => rfc3339_ms(text).ok_or_else(fail),
    }
}

/// Prometheus's float seconds: whole seconds plus the fraction rounded to
/// the millisecond, as nanoseconds truncated from a float, then floored to
/// the millisecond (Go's `time.Unix` and `timestamp.FromTime`).
fn float_seconds_ms(seconds: f64) -> Option<i64> {
    if !seconds.is_finite() || seconds.abs() >= 9.2e15 {
        return None;
    }
    let whole = seconds.trunc();
    let fraction = (seconds.fract() * 1000.0).round() / 1000.0;
    // Both are finite and in range: `as` converts exactly / truncates.
    let nanos = whole as i128 * NANOS_PER_SECOND + (fraction * 1e9) as i128;
    i64::try_from(nanos.div_euclid(NANOS_PER_MS)).ok()
}

/// Go's `time.Parse(time.RFC3339Nano, text)` in Unix milliseconds:
/// `YYYY-MM-DDTHH:MM:SS[.digits](Z|±HH:MM)`, sub-millisecond digits
/// dropped towards the past.
fn rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    // ASCII only, so that every slice below falls on a char boundary.
    if !text.is_ascii()
        || bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b'T'
    {
        return None;
    }
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let year = digits(&text[0..4])?;
    let (month, day) = (digits(&text[5..7])?, digits(&text[8..10])?);
    let (hour, minute, second) = (
        digits(&text[11..13])?,
        digits(&text[14..16])?,
        digits(&text[17..19])?,
    );
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let count = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if count == 0 {
            return None;
        }
        millis = fraction[..count]
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0, |ms, digit| ms * 10 + i64::from(digit - b'0'));
        rest = &fraction[count..];
    }
    let offset_minutes = match rest.as_bytes() {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(&rest[1..3])?, digits(&rest[4..6])?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    // Years 0000-9999: far inside the i64 millisecond range.
    Some(seconds * 1000 + millis)
}

/// A run of ASCII digits as a number (at most four digits here).
fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A duration parameter in nanoseconds (Prometheus's `parseDuration`):
/// float seconds (negative allowed), else a Prometheus duration.
pub(super) fn parse_duration(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        let nanos = seconds * 1e9;
        // [-2^63, 2^63) as floats (NaN outside): Go's check also lets
        // exactly 2^63 through, then overflows; refusing it is saner.
        if !(i64::MIN as f64..i64::MAX as f64).contains(&nanos) {
            return Err(format!(
                "cannot parse {text:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(nanos as i64);
    }
    crate::query::lex::parse_duration_ms(text)
        .and_then(|ms| i64::try_from(i128::from(ms) * NANOS_PER_MS).ok())
        .ok_or_else(|| format!("cannot parse {text:?} to a valid duration"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::calendar::civil_from_days;

    /// `ms` as RFC 3339 in the zone `offset_minutes` east of UTC.
    fn rfc3339(ms: i64, offset_minutes: i64) -> String {
        let local = ms + offset_minutes * 60_000;
        let (days, ms_of_day) = (local.div_euclid(86_400_000), local.rem_euclid(86_400_000));
        let (year, month, day) = civil_from_days(days);
        let seconds = ms_of_day / 1000;
        let zone = match offset_minutes {
            0 => "Z".to_owned(),
            m => format!(
                "{}{:02}:{:02}",
                if m < 0 { '-' } else { '+' },
                m.abs() / 60,
                m.abs() % 60
            ),
        };
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}{zone}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60,
            ms_of_day % 1000
        )
    }

    proptest! {
        #[test]
        fn rfc3339_times_read_back(
            // 0001-01-02 to 9999-12-30: every offset keeps a 4-digit year.
            ms in -62_135_510_400_000i64..253_402_128_000_000,
            offset_minutes in -1_439i64..=1_439,
        ) {
            prop_assert_eq!(parse_time(&rfc3339(ms, offset_minutes)), Ok(ms));
        }

        #[test]
        fn unix_seconds_with_milliseconds_read_back(ms in -100_000_000_000_000i64..100_000_000_000_000) {
            let sign = if ms < 0 { "-" } else { "" };
            let text = format!("{sign}{}.{:03}", ms.unsigned_abs() / 1000, ms.unsigned_abs() % 1000);
            prop_assert_eq!(parse_time(&text), Ok(ms));
        }

        #[test]
        fn prometheus_durations_read_back(parts in proptest::collection::vec(proptest::option::of(0i64..1_000), 7)) {
            let units = [("y", 31_536_000_000i64), ("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
            let mut text = String::new();
            let mut ms: i128 = 0;
            for (part, (unit, scale)) in parts.iter().zip(units) {
                if let Some(count) = part {
                    text.push_str(&format!("{count}{unit}"));
                    ms += i128::from(count * scale);
                }
            }
            prop_assume!(!text.is_empty());
            // Past about 292 years the nanoseconds overflow Go's Duration.
            let expected = i64::try_from(ms * NANOS_PER_MS)
                .map_err(|_| format!("cannot parse {text:?} to a valid duration"));
            prop_assert_eq!(parse_duration(&text), expected);
        }
    }

    #[test]
    fn times_are_read_as_prometheus_reads_them() {
        assert_eq!(parse_time("1796083200"), Ok(1_796_083_200_000));
        assert_eq!(parse_time("1796083200.5"), Ok(1_796_083_200_500));
        assert_eq!(parse_time("1796083200.1234"), Ok(1_796_083_200_123));
        assert_eq!(parse_time("1796083200.9996"), Ok(1_796_083_201_000));
        assert_eq!(parse_time("-1.5"), Ok(-1_500));
        assert_eq!(parse_time("1e3"), Ok(1_000_000));
        assert_eq!(parse_time("2026-12-01T00:00:00Z"), Ok(1_796_083_200_000));
        assert_eq!(
            parse_time("2026-12-01T00:00:00.123456789Z"),
            Ok(1_796_083_200_123)
        );
        assert_eq!(
            parse_time("2026-12-01T01:30:00+01:30"),
            Ok(1_796_083_200_000)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00-00:01"), Ok(60_000));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
        assert_eq!(parse_time(MIN_TIME_TEXT), Ok(MIN_TIME_MS));
        assert_eq!(parse_time(MAX_TIME_TEXT), Ok(MAX_TIME_MS));
        for bad in [
            "",
            "x",
            "NaN",
            "inf",
            "1e300",
            "2026-12-01",
            "2026-12-01T00:00:00",
            "2026-12-01t00:00:00Z",
            "2026-12-01T00:00:00.Z",
            "2026-02-29T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T00:00:60Z",
            "2026-12-01T00:00:00+24:00",
            "2026-12-01T00:00:00+0100",
            "26-12-01T00:00:00Z",
            "2026-12-01T00:00:00é",
            "éé26-12-01T00:00:00Z",
        ] {
            assert_eq!(
                parse_time(bad),
                Err(format!("cannot parse {bad:?} to a valid timestamp")),
                "{bad}"
            );
        }
    }

    #[test]
    fn durations_are_read_as_prometheus_reads_them() {
        let s = 1_000_000_000;
        assert_eq!(parse_duration("15"), Ok(15 * s));
        assert_eq!(parse_duration("0.5"), Ok(s / 2));
        assert_eq!(parse_duration("-1"), Ok(-s));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("5m"), Ok(300 * s));
        assert_eq!(parse_duration("1h30m"), Ok(5_400 * s));
        assert_eq!(parse_duration("1m500ms"), Ok(60 * s + s / 2));
        assert_eq!(parse_duration("2w1d"), Ok(15 * 86_400 * s));
        assert_eq!(parse_duration("1y"), Ok(365 * 86_400 * s));
        for bad in ["", "5x", "1m1h", "1h1h", "m", "5m ", "-5m", "1.5h", "300y"] {
            assert_eq!(
                parse_duration(bad),
                Err(format!("cannot parse {bad:?} to a valid duration")),
                "{bad}"
            );
        }
        assert_eq!(
            parse_duration("1e10"),
            Err("cannot parse \"1e10\" to a valid duration. It overflows int64".to_owned())
        );
    }

    #[test]
    fn body_parameters_come_before_the_query_string() {
        let params = Params::new(
            Some(b"query=up&match%5B%5D=a".as_slice()),
            Some("query=down&match[]=b&time=5"),
        );
        assert_eq!(params.value("query"), "up");
        assert_eq!(params.value("time"), "5");
        assert_eq!(params.value("step"), "");
        assert_eq!(params.values("match[]").collect::<Vec<_>>(), ["a", "b"]);
    }
}
