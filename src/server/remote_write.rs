//! `POST /api/v1/write`: the Prometheus Remote-Write 1.0 receiver.
//!
//! The body is a [`proto::WriteRequest`] in the snappy block format. What
//! it answers (the specification's status classes):
//! - 204: every sample and metadata entry was stored;
//! - 400 (the sender must not retry): the body is not snappy or not a
//!   `WriteRequest`, it carries more than
//!   [`ServerConfig::max_samples_per_request`](super::ServerConfig)
//!   samples (counted before anything is written: nothing is stored), or
//!   some of its parts were refused: series with invalid labels, samples
//!   out of order or too old, metadata that fails validation. Those parts
//!   are refused alone: everything else in the request is stored before
//!   the 400 names the counts and the first few reasons;
//! - 415: a `Content-Encoding` other than snappy or a `Content-Type` other
//!   than `application/x-protobuf`. Both headers are optional (as in
//!   Prometheus's own receiver); only a header naming something else is
//!   refused;
//! - 429 with `Retry-After` (retry): the head is over the backpressure
//!   threshold or full;
//! - 500 (retry): the database failed.
//!
//! Invariants: a stale marker (and any NaN) is stored with its exact bits;
//! samples are appended with `Db::append_batch` on the blocking pool, in
//! chunks of at most [`MAX_BATCH_SAMPLES`]; every sample of the request is
//! counted once in `ServerMetrics` under `accepted` or its rejection
//! reason.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use parking_lot::Mutex;

use super::{proto, wire};
use super::{AppState, WriteError};
use crate::{
    Db, Error, InputError, Label, MetricMetadata, MetricType, SeriesKey, SeriesRef,
    MAX_BATCH_SAMPLES,
};

/// The protocol name in `ServerMetrics`.
const PROTOCOL: &str = "remote_write";

/// How many rejection reasons a 400 body quotes.
const REASONS_SHOWN: usize = 10;

/// Largest ratio of decoded to compressed length the snappy block format
/// can reach (a 3-byte copy element yields 64 bytes); a header claiming
/// more is refused before anything is allocated.
const MAX_SNAPPY_RATIO: usize = 22;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/write", post(write))
}

async fn write(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, WriteError> {
    check_headers(&headers, "application/x-protobuf")?;
    state.check_backpressure()?;
    let worker = Arc::clone(&state);
    let report = tokio::task::spawn_blocking(move || ingest(&worker, &body))
        .await
        .map_err(|e| WriteError::internal(format!("the write task failed: {e}")))??;
    report.record(&state);
    match report.problems() {
        None => Ok(StatusCode::NO_CONTENT),
        Some(message) => Err(WriteError::bad_request(message)),
    }
}

/// Refuses a `Content-Encoding` other than snappy and a `Content-Type`
/// other than `content_type` (parameters ignored); absent headers pass.
pub(super) fn check_headers(headers: &HeaderMap, content_type: &str) -> Result<(), WriteError> {
    let unsupported = |message: String| WriteError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        message,
    };
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING) {
        let encoding = encoding.to_str().unwrap_or("(not text)").trim();
        if !encoding.eq_ignore_ascii_case("snappy") {
            return Err(unsupported(format!(
                "Content-Encoding {encoding:?} is not supported: the body must be \
                 snappy-compressed (block format), Content-Encoding: snappy"
            )));
        }
    }
    if let Some(given) = headers.get(header::CONTENT_TYPE) {
        let given = given.to_str().unwrap_or("(not text)");
        let media_type = given.split(';').next().unwrap_or_default().trim();
        if !media_type.eq_ignore_ascii_case(content_type) {
            return Err(unsupported(format!(
                "Content-Type {given:?} is not supported: expected {content_type}"
            )));
        }
    }
    Ok(())
}

/// Decodes a snappy-compressed (block format) protobuf message `what`.
pub(super) fn decode_snappy<M: prost::Message + Default>(
    body: &[u8],
    what: &str,
) -> Result<M, WriteError> {
    let decoded = decompress_snappy(body)?;
    M::decode(decoded.as_slice()).map_err(|e| not_a_message(what, e))
}

/// The 400 of a snappy-decoded body that is not a protobuf `what`.
fn not_a_message(what: &str, reason: impl std::fmt::Display) -> WriteError {
    WriteError::bad_request(format!(
        "the snappy-decoded body is not a protobuf {what}: {reason}"
    ))
}

/// Decompresses a snappy block-format body, refusing a header that claims
/// more than the body could hold before anything is allocated.
fn decompress_snappy(body: &[u8]) -> Result<Vec<u8>, WriteError> {
    let claimed = snap::raw::decompress_len(body).map_err(|e| {
        WriteError::bad_request(format!("the body is not snappy block format: {e}"))
    })?;
    let possible = body.len().saturating_mul(MAX_SNAPPY_RATIO);
    if claimed > possible {
        return Err(WriteError::bad_request(format!(
            "the body is not snappy block format: its header claims {claimed} decoded \
             bytes, more than {} compressed bytes can hold",
            body.len()
        )));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| WriteError::bad_request(format!("the body is not snappy block format: {e}")))
}

/// Handles of the series remote write has seen, by the bytes of their
/// label fields ([`wire::SeriesView::identity`]): a series sent again
/// costs one hash lookup, no decoding and no allocation. Bounded: emptied
/// when it reaches [`MAX_CACHED_SERIES`] entries (a handle of a series the
/// head dropped still appends correctly: it re-resolves by key).
#[derive(Default)]
pub struct SeriesCache {
    handles: Mutex<HashMap<Box<[u8]>, SeriesRef>>,
}

/// Most entries of a [`SeriesCache`].
const MAX_CACHED_SERIES: usize = 1 << 20;

/// What one request stored and refused.
#[derive(Debug, Default)]
struct Report {
    series: usize,
    samples: usize,
    accepted: usize,
    /// Samples refused, by `ServerMetrics` outcome.
    rejected: Vec<(&'static str, usize)>,
    rejected_series: usize,
    rejected_metadata: usize,
    metadata: usize,
    /// The first [`REASONS_SHOWN`] reasons.
    reasons: Vec<String>,
}

impl Report {
    fn reject(&mut self, outcome: &'static str, samples: usize, reason: impl FnOnce() -> String) {
        match self.rejected.iter_mut().find(|(o, _)| *o == outcome) {
            Some((_, count)) => *count += samples,
            None => self.rejected.push((outcome, samples)),
        }
        if self.reasons.len() < REASONS_SHOWN {
            self.reasons.push(reason());
        }
    }

    fn record(&self, state: &AppState) {
        let metrics = &state.metrics;
        metrics.record_samples(PROTOCOL, "accepted", self.accepted as u64);
        for &(outcome, count) in &self.rejected {
            metrics.record_samples(PROTOCOL, outcome, count as u64);
        }
    }

    /// The 400 body when anything was refused.
    fn problems(&self) -> Option<String> {
        let refused: usize = self.rejected.iter().map(|(_, n)| n).sum();
        if refused == 0 && self.rejected_series == 0 && self.rejected_metadata == 0 {
            return None;
        }
        let mut message = format!(
            "remote write: refused {refused} of {} samples ({}), {} of {} series and {} of {} \
             metadata entries; the rest ({} samples) was stored. First reasons:",
            self.samples,
            self.rejected
                .iter()
                .map(|(outcome, n)| format!("{outcome}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.rejected_series,
            self.series,
            self.rejected_metadata,
            self.metadata,
            self.accepted,
        );
        for reason in &self.reasons {
            let _ = write!(message, "\n  {reason}");
        }
        Some(message)
    }
}

/// Decodes, validates and stores one request (on the blocking pool).
fn ingest(state: &AppState, body: &[u8]) -> Result<Report, WriteError> {
    let decoded = decompress_snappy(body)?;
    let request =
        wire::read_write_request(&decoded).map_err(|e| not_a_message("WriteRequest", e))?;
    let samples = request.samples.len();
    let limit = state.config.max_samples_per_request;
    if samples > limit {
        state
            .metrics
            .record_samples(PROTOCOL, "too_many_samples", samples as u64);
        return Err(WriteError::bad_request(format!(
            "remote write: the request carries {samples} samples, over the limit of {limit} \
             (--max-samples-per-request); nothing was stored: send smaller batches \
             (Prometheus: queue_config.max_samples_per_send)"
        )));
    }
    let mut report = Report {
        series: request.series.len(),
        samples,
        metadata: request.metadata.len(),
        ..Report::default()
    };
    store_metadata(&state.db, &request.metadata, &mut report)?;
    let resolved = resolve_series(state, &request.series, &mut report)?;
    append_samples(&state.db, &resolved, &request.samples, &mut report)?;
    Ok(report)
}

/// The database error of a write as a status: a full head is
/// backpressure (429), input errors the sender's fault (400), anything
/// else a server failure (500).
fn db_error(error: Error) -> WriteError {
    match error {
        Error::HeadFull { .. } => WriteError::too_many_requests(error.to_string()),
        Error::Input(_) => WriteError::bad_request(error.to_string()),
        _ => WriteError::internal(format!("the database failed: {error}")),
    }
}

/// The metadata entries that validate, stored in one `set_metadata`.
fn store_metadata(
    db: &Db,
    entries: &[proto::MetricMetadata],
    report: &mut Report,
) -> Result<(), WriteError> {
    let mut valid = Vec::with_capacity(entries.len());
    for entry in entries {
        match metadata_entry(entry) {
            Ok(family) => valid.push(family),
            Err(reason) => {
                report.rejected_metadata += 1;
                if report.reasons.len() < REASONS_SHOWN {
                    report.reasons.push(format!(
                        "metadata of {:?}: {reason}",
                        entry.metric_family_name
                    ));
                }
            }
        }
    }
    if valid.is_empty() {
        return Ok(());
    }
    db.set_metadata(valid).map(drop).map_err(db_error)
}

/// One metadata entry as strata's, or why not.
fn metadata_entry(entry: &proto::MetricMetadata) -> Result<(String, MetricMetadata), String> {
    let metric_type = match entry.r#type {
        0 => MetricType::Unknown,
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        other => return Err(format!("unknown metric type code {other}")),
    };
    let metadata = MetricMetadata::new(metric_type)
        .with_help(entry.help.as_str())
        .with_unit(entry.unit.as_str());
    let family = entry.metric_family_name.clone();
    metadata.validate(&family).map_err(|e| e.to_string())?;
    Ok((family, metadata))
}

/// The request's valid series, each with its samples.
#[derive(Default)]
struct Resolved {
    /// In request order, with the range of their samples in the request's
    /// samples; a series sent twice in one request has two entries with
    /// handles on the same series.
    series: Vec<(SeriesRef, Range<usize>)>,
}

/// The handle of every series whose labels are valid, from the cache or
/// resolved (and cached); the others are reported with all their samples.
fn resolve_series(
    state: &AppState,
    series: &[wire::SeriesView<'_>],
    report: &mut Report,
) -> Result<Resolved, WriteError> {
    let mut resolved = Resolved::default();
    resolved.series.reserve(series.len());
    let mut cache = state.series_cache.handles.lock();
    for view in series {
        if let Some(handle) = cache.get(&*view.identity) {
            resolved.series.push((handle.clone(), view.samples.clone()));
            continue;
        }
        let pairs = match wire::label_pairs(&view.identity) {
            Ok(pairs) => pairs,
            Err(reason) => {
                report.rejected_series += 1;
                report.reject("invalid", view.samples.len(), || {
                    format!("series with malformed labels: {reason}")
                });
                continue;
            }
        };
        let handle = series_key(&pairs)
            .map_err(Error::Input)
            .and_then(|key| state.db.series(&key));
        match handle {
            Ok(handle) => {
                if cache.len() >= MAX_CACHED_SERIES {
                    cache.clear();
                }
                cache.insert(view.identity.as_ref().into(), handle.clone());
                resolved.series.push((handle, view.samples.clone()));
            }
            Err(Error::Input(reason)) => {
                report.rejected_series += 1;
                report.reject("invalid", view.samples.len(), || {
                    format!("series {}: {reason}", labels_text(&pairs))
                });
            }
            Err(error) => return Err(db_error(error)),
        }
    }
    Ok(resolved)
}

/// The key of a series' labels: valid names, none empty or repeated,
/// `__name__` among them (labels with an empty value are dropped, as an
/// empty value means an absent label).
fn series_key(labels: &[(&str, &str)]) -> Result<SeriesKey, InputError> {
    if labels.iter().any(|(name, _)| name.is_empty()) {
        return Err(InputError::BadLabelName(String::new()));
    }
    SeriesKey::from_labels(
        labels
            .iter()
            .map(|&(name, value)| Label::new(name, value))
            .collect(),
    )
}

/// The labels as sent, in the text form, for messages.
fn labels_text(labels: &[(&str, &str)]) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// Appends every sample of the resolved series, in chunks of at most
/// [`MAX_BATCH_SAMPLES`]; refused samples go into the report.
///
/// The engine checks a sample against what the series held before the
/// batch; a sample more than the out-of-order window behind an earlier
/// sample of its series in the same request is refused here, as it would
/// be had the samples come one request at a time.
fn append_samples(
    db: &Db,
    resolved: &Resolved,
    samples: &[(i64, f64)],
    report: &mut Report,
) -> Result<(), WriteError> {
    let window_ms = db.options().out_of_order_window_ms;
    // Newest timestamp so far by series. Handles on one series share its
    // key, so the key's address identifies the series (a series repeated
    // in the request is checked as one).
    let mut newest_ms: HashMap<*const SeriesKey, i64> =
        HashMap::with_capacity(resolved.series.len());
    let mut batch: Vec<(&SeriesRef, i64, f64)> = Vec::with_capacity(report.samples);
    for (handle, range) in &resolved.series {
        let newest = newest_ms.entry(handle.key()).or_insert(i64::MIN);
        for &(timestamp_ms, value) in samples.get(range.clone()).unwrap_or_default() {
            if timestamp_ms < newest.saturating_sub(window_ms) {
                let newest = *newest;
                report.reject("out_of_order", 1, || {
                    format!(
                        "series {}: sample at {} is out of order: behind the sample at {newest} \
                         earlier in this request by more than the out-of-order window of \
                         {window_ms} ms",
                        handle.key(),
                        timestamp_ms
                    )
                });
                continue;
            }
            *newest = (*newest).max(timestamp_ms);
            batch.push((handle, timestamp_ms, value));
        }
    }
    for chunk in batch.chunks(MAX_BATCH_SAMPLES) {
        let outcome = db.append_batch(chunk).map_err(db_error)?;
        report.accepted += outcome.accepted;
        for (_, reason) in outcome.rejected {
            report.reject(rejection_outcome(&reason), 1, || reason.to_string());
        }
    }
    Ok(())
}

/// The `ServerMetrics` outcome of a refused sample.
fn rejection_outcome(reason: &InputError) -> &'static str {
    match reason {
        // The engine's two reasons: below the flushed partitions, or
        // behind the series' newest sample by more than the window.
        InputError::SampleTooOld { reason, .. } if reason.contains("flushed") => "too_old",
        InputError::SampleTooOld { .. } => "out_of_order",
        _ => "invalid",
    }
}
