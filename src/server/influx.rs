//! InfluxDB line protocol over HTTP: `POST /write` (InfluxDB 1.x) and
//! `POST /api/v2/write` (InfluxDB 2.x), for Telegraf and the Influx client
//! libraries. The body is parsed by strata's own Influx parser
//! ([`CachingParser`] over [`LineParser`] with [`Format::Influx`]): every
//! numeric field of a line becomes a sample of `<measurement>_<field>` with
//! the tags as labels (grammar and naming in `strata::ingest`).
//!
//! Query parameters: `precision` (1.x: `n`/`ns`, `u`/`us`, `ms`, `s`, `m`,
//! `h`; 2.x: `ns`, `us`, `ms`, `s`; default nanoseconds). `db`, `rp`, `u`,
//! `p` (1.x) and `org`, `bucket` (2.x) are accepted and ignored: strata has
//! one database. Authentication is the server's bearer token (see
//! `limit_and_authorize` in `mod.rs`, which also takes `Token <token>` on
//! `/api/v2/write`, as Telegraf's `influxdb_v2` output sends it).
//!
//! Invariants:
//! - a request is all or nothing as far as its text goes: a malformed line,
//!   more than `max_samples_per_request` samples or a body that is not
//!   plain (a `Content-Encoding` other than `identity`: no gzip decoder is
//!   built in) refuses the whole request, and nothing of it is written;
//! - the database may still refuse single samples (too old, series
//!   limits): the others are written and the answer is a 400 "partial
//!   write" naming how many were dropped, why, and the first one;
//! - 204 means every sample of the request was written under the
//!   database's `SyncMode`; parser warnings (string fields left out,
//!   renamed names) ride along in the `X-Strata-Warnings` header;
//! - errors have InfluxDB's JSON body `{"code":...,"message":...}`; 429
//!   (backpressure) carries `Retry-After`; the backpressure check comes
//!   before the body is read.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::self_metrics::rejection_reason;
use super::{json_response, AppState, WriteError};
use crate::ingest::{
    push_json_string, CachingParser, Format, IndexedSample, LineParser, Precision, Warning,
};
use crate::{Db, Error, InputError, SeriesKey, MAX_BATCH_SAMPLES};

/// The protocol name in `strata_samples_*_total`.
const PROTOCOL: &str = "influx";

/// The response header carrying the parser's warnings.
const WARNINGS_HEADER: &str = "x-strata-warnings";

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/write", post(write_v1))
        .route("/api/v2/write", post(write_v2))
}

/// Which InfluxDB API a request came in through: they differ only in the
/// precisions they name.
#[derive(Debug, Clone, Copy)]
enum Api {
    V1,
    V2,
}

async fn write_v1(State(state): State<Arc<AppState>>, request: Request) -> Response {
    write(state, request, Api::V1)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn write_v2(State(state): State<Arc<AppState>>, request: Request) -> Response {
    write(state, request, Api::V2)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// An error answered as InfluxDB does: a status and `{"code","message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InfluxError {
    status: StatusCode,
    message: String,
}

impl InfluxError {
    fn invalid(message: impl Into<String>) -> Self {
        InfluxError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// InfluxDB's `code` for the status.
    fn code(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "invalid",
            StatusCode::PAYLOAD_TOO_LARGE => "request too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
            StatusCode::TOO_MANY_REQUESTS => "too many requests",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal error",
        }
    }
}

impl From<WriteError> for InfluxError {
    fn from(error: WriteError) -> Self {
        InfluxError {
            status: error.status,
            message: error.message,
        }
    }
}

impl IntoResponse for InfluxError {
    fn into_response(self) -> Response {
        let mut body = String::from("{\"code\":");
        push_json_string(&mut body, self.code());
        body.push_str(",\"message\":");
        push_json_string(&mut body, &self.message);
        body.push('}');
        let mut response = json_response(self.status, body.into_bytes());
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// How the request's timestamps read: parsed in `precision`, then
/// multiplied by `factor_ms` (1, or a minute or an hour in milliseconds
/// for 1.x's `m` and `h`, parsed as plain integers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeUnit {
    precision: Precision,
    factor_ms: i64,
}

impl TimeUnit {
    /// The unit named by the `precision` parameter of `api`.
    fn parse(api: Api, name: &str) -> Result<TimeUnit, InfluxError> {
        let unit = |precision, factor_ms| {
            Ok(TimeUnit {
                precision,
                factor_ms,
            })
        };
        match (api, name) {
            (Api::V1, "n") | (_, "ns") => unit(Precision::Ns, 1),
            (Api::V1, "u") | (_, "us") => unit(Precision::Us, 1),
            (_, "ms") => unit(Precision::Ms, 1),
            (_, "s") => unit(Precision::S, 1),
            (Api::V1, "m") => unit(Precision::Ms, 60_000),
            (Api::V1, "h") => unit(Precision::Ms, 3_600_000),
            (Api::V1, _) => Err(InfluxError::invalid(format!(
                "precision {name:?}: expected one of n, ns, u, us, ms, s, m, h"
            ))),
            (Api::V2, _) => Err(InfluxError::invalid(format!(
                "precision {name:?}: expected one of ns, us, ms, s"
            ))),
        }
    }

    /// The unit of the request's query string (nanoseconds by default).
    fn of_query(api: Api, query: Option<&str>) -> Result<TimeUnit, InfluxError> {
        let precision = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .filter(|(name, _)| name == "precision")
            .last();
        match precision {
            Some((_, name)) => TimeUnit::parse(api, &name),
            None => TimeUnit::parse(api, "ns"),
        }
    }
}

/// What a request's body holds once parsed.
#[derive(Debug, Default)]
struct ParsedBody {
    /// Series keys by the index the parser gave them.
    keys: Vec<SeriesKey>,
    samples: Vec<IndexedSample>,
    warnings: Vec<Warning>,
}

/// What the database did with a parsed body.
#[derive(Debug, Default)]
struct Stored {
    accepted: u64,
    /// Reason → samples dropped.
    rejected: BTreeMap<&'static str, u64>,
    /// The first dropped sample's error.
    first_rejection: Option<String>,
}

impl Stored {
    fn reject(&mut self, error: &InputError) {
        *self.rejected.entry(rejection_reason(error)).or_default() += 1;
        self.first_rejection
            .get_or_insert_with(|| error.to_string());
    }
}

async fn write(state: Arc<AppState>, request: Request, api: Api) -> Result<Response, InfluxError> {
    let unit = TimeUnit::of_query(api, request.uri().query())?;
    check_plain_body(request.headers())?;
    state.check_backpressure()?;
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| InfluxError {
            status: rejection.status(),
            message: rejection.body_text(),
        })?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64);
    let limit = state.config.max_samples_per_request;
    let task_state = Arc::clone(&state);
    let (stored, warnings) = tokio::task::spawn_blocking(move || {
        let parsed = parse_body(&body, unit, now_ms, limit).inspect_err(|(_, refused)| {
            task_state
                .metrics
                .record_samples(PROTOCOL, refused.reason, refused.samples);
        });
        let parsed = parsed.map_err(|(error, _)| error)?;
        let stored = store(&task_state.db, &parsed)?;
        Ok::<_, InfluxError>((stored, parsed.warnings))
    })
    .await
    .map_err(|e| InfluxError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("the write task failed: {e}"),
    })??;
    let metrics = &state.metrics;
    metrics.record_samples(PROTOCOL, "accepted", stored.accepted);
    for (reason, count) in &stored.rejected {
        metrics.record_samples(PROTOCOL, reason, *count);
    }
    let mut response = match partial_write(&stored) {
        Some(error) => error.into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    };
    if let Some(value) = warnings_header(&warnings) {
        response.headers_mut().insert(WARNINGS_HEADER, value);
    }
    Ok(response)
}

/// 415 for a compressed body: no decoder is built in.
fn check_plain_body(headers: &HeaderMap) -> Result<(), InfluxError> {
    let Some(encoding) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(());
    };
    if encoding.as_bytes().eq_ignore_ascii_case(b"identity") {
        return Ok(());
    }
    Err(InfluxError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        message: format!(
            "Content-Encoding {:?} is not supported: send the body uncompressed \
             (Telegraf: content_encoding = \"identity\")",
            String::from_utf8_lossy(encoding.as_bytes())
        ),
    })
}

/// Why a whole request was refused, for `strata_samples_rejected_total`:
/// the samples parsed before the refusal (none of them written).
#[derive(Debug, Clone, Copy)]
struct Refused {
    reason: &'static str,
    samples: u64,
}

/// Parses `body` line by line (numbered from 1). The first malformed line,
/// or more than `max_samples` samples, refuses the whole body.
fn parse_body(
    body: &[u8],
    unit: TimeUnit,
    now_ms: i64,
    max_samples: usize,
) -> Result<ParsedBody, (InfluxError, Refused)> {
    let default_timestamp = now_ms.div_euclid(unit.factor_ms);
    let parser = LineParser::new(Format::Influx, default_timestamp).with_precision(unit.precision);
    let mut parser = CachingParser::new(parser);
    let mut parsed = ParsedBody::default();
    let refuse = |parsed: &ParsedBody, reason, error: InfluxError| {
        let samples = parsed.samples.len() as u64;
        Err((error, Refused { reason, samples }))
    };
    for (index, line) in body.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let before = parsed.samples.len();
        let keys = &mut parsed.keys;
        let result = parser.parse_line(
            line_no,
            line,
            &mut parsed.samples,
            |_, key| {
                keys.push(key.clone());
                Ok::<(), Infallible>(())
            },
            |never| match never {},
        );
        let result = result
            .map_err(|e| e.to_string())
            .and_then(|()| scale(&mut parsed.samples[before..], unit, line_no));
        if let Err(message) = result {
            return refuse(&parsed, "malformed", InfluxError::invalid(message));
        }
        if parsed.samples.len() > max_samples {
            let message = format!(
                "more than {max_samples} samples in one request \
                 (max_samples_per_request); nothing was written: send smaller batches"
            );
            return refuse(&parsed, "too_many_samples", InfluxError::invalid(message));
        }
        parsed.warnings.extend(parser.take_warnings());
    }
    Ok(parsed)
}

/// Multiplies the timestamps of line `line_no`'s `samples` by the unit's
/// factor (1.x's `m` and `h`).
fn scale(samples: &mut [IndexedSample], unit: TimeUnit, line_no: usize) -> Result<(), String> {
    if unit.factor_ms == 1 {
        return Ok(());
    }
    for sample in samples {
        sample.timestamp_ms = sample
            .timestamp_ms
            .checked_mul(unit.factor_ms)
            .ok_or_else(|| {
                format!(
                    "line {line_no}: timestamp {} in units of {} ms is out of range",
                    sample.timestamp_ms, unit.factor_ms
                )
            })?;
    }
    Ok(())
}

/// Resolves the series and appends the samples (blocking). A series the
/// database refuses (limits) drops its samples; any other failure fails
/// the request.
fn store(db: &Db, parsed: &ParsedBody) -> Result<Stored, InfluxError> {
    let mut stored = Stored::default();
    let mut series = Vec::with_capacity(parsed.keys.len());
    for key in &parsed.keys {
        series.push(match db.series(key) {
            Ok(series) => Ok(series),
            Err(Error::Input(error)) => Err(error),
            Err(error) => return Err(database_error(error)),
        });
    }
    let mut batch = Vec::with_capacity(parsed.samples.len());
    for sample in &parsed.samples {
        match &series[sample.series as usize] {
            Ok(series) => batch.push((series, sample.timestamp_ms, sample.value)),
            Err(error) => stored.reject(error),
        }
    }
    for chunk in batch.chunks(MAX_BATCH_SAMPLES) {
        let outcome = db.append_batch(chunk).map_err(database_error)?;
        stored.accepted += outcome.accepted as u64;
        for (_, error) in &outcome.rejected {
            stored.reject(error);
        }
    }
    Ok(stored)
}

/// The answer to a failed `append_batch`: 429 when the head is full (retry
/// after the flush), 400 for bad input, 500 otherwise.
fn database_error(error: Error) -> InfluxError {
    let status = match error {
        Error::HeadFull { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Input(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    InfluxError {
        status,
        message: error.to_string(),
    }
}

/// The 400 answering a write of which the database dropped samples.
fn partial_write(stored: &Stored) -> Option<InfluxError> {
    let first = stored.first_rejection.as_ref()?;
    let dropped: u64 = stored.rejected.values().sum();
    let reasons: Vec<String> = stored
        .rejected
        .iter()
        .map(|(reason, count)| format!("{reason}: {count}"))
        .collect();
    Some(InfluxError::invalid(format!(
        "partial write: {dropped} of {} samples dropped ({}), the others written; \
         the first: {first}",
        stored.accepted + dropped,
        reasons.join(", ")
    )))
}

/// `X-Strata-Warnings`: how many warnings and the first, in visible ASCII
/// (other characters become `?`); `None` without warnings.
fn warnings_header(warnings: &[Warning]) -> Option<HeaderValue> {
    let first = warnings.first()?;
    let text = format!("{} warning(s); the first: {first}", warnings.len());
    let ascii: String = text
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    HeaderValue::from_str(&ascii).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions_of_each_api() {
        let v1 = |name| TimeUnit::parse(Api::V1, name).map(|u| (u.precision, u.factor_ms));
        let v2 = |name| TimeUnit::parse(Api::V2, name).map(|u| (u.precision, u.factor_ms));
        assert_eq!(v1("n"), Ok((Precision::Ns, 1)));
        assert_eq!(v1("u"), Ok((Precision::Us, 1)));
        assert_eq!(v1("h"), Ok((Precision::Ms, 3_600_000)));
        assert_eq!(v2("s"), Ok((Precision::S, 1)));
        assert_eq!(v2("m").map_err(|e| e.status), Err(StatusCode::BAD_REQUEST));
        assert_eq!(v2("n").map_err(|e| e.status), Err(StatusCode::BAD_REQUEST));
        let default = TimeUnit::of_query(Api::V2, Some("org=x&bucket=y")).unwrap();
        assert_eq!(default.precision, Precision::Ns);
    }

    #[test]
    fn minutes_scale_and_overflow_is_an_error() {
        let minutes = TimeUnit::parse(Api::V1, "m").unwrap();
        let parsed = parse_body(b"cpu v=1 2\n", minutes, 0, 10).unwrap();
        assert_eq!(parsed.samples[0].timestamp_ms, 120_000);
        let huge = format!("cpu v=1 {}", i64::MAX / 2);
        let (error, refused) = parse_body(huge.as_bytes(), minutes, 0, 10).unwrap_err();
        assert!(error.message.starts_with("line 1: "), "{}", error.message);
        assert_eq!(refused.reason, "malformed");
    }

    #[test]
    fn error_body_is_influx_json() {
        let response = InfluxError::invalid("line 2: \"bad\"").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let warning = Warning {
            line: 3,
            kind: crate::ingest::WarningKind::Renamed {
                from: "é-x".to_owned(),
                to: "__x".to_owned(),
            },
        };
        let header = warnings_header(&[warning]).unwrap();
        assert!(header
            .to_str()
            .unwrap()
            .starts_with("1 warning(s); the first: line 3: "));
    }
}
