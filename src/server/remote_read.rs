//! `POST /api/v1/read`: Prometheus remote read, the sampled response type.
//!
//! The body is a [`proto::ReadRequest`] in the snappy block format; the
//! answer a [`proto::ReadResponse`] the same way (`Content-Type:
//! application/x-protobuf`, `Content-Encoding: snappy`): one result per
//! query, in request order, each series with its labels sorted by name
//! and its raw samples inside the query's inclusive `[start, end]`, in
//! time order. Series without samples there are left out. Values keep
//! their bits (NaN payloads, the staleness marker) except -0.0, which
//! arrives as 0.0: proto3 leaves out a `double` equal to 0 (prost here,
//! gogo-protobuf in Prometheus alike).
//!
//! Only `SAMPLES` is served: a request whose `accepted_response_types`
//! lists only `STREAMED_XOR_CHUNKS` gets 400 (an empty list means
//! `SAMPLES`, as in Prometheus). Other 400s: a body that is not snappy or
//! not a `ReadRequest`, an unknown matcher type, a bad regular expression,
//! and an answer over [`ServerConfig::max_samples_per_request`]
//! (super::ServerConfig) samples (counted over all queries; reading stops
//! at the limit). 500: the database failed to read.
//!
//! Reads come from the raw data (`Db::select_series`): where retention has
//! already removed raw samples, remote read has nothing (rollup tiers are
//! served by the query API). Reading runs on the blocking pool.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prost::Message as _;

use super::proto::{self, ReadRequest, ReadResponse};
use super::remote_write::{check_headers, decode_snappy};
use super::{AppState, WriteError};
use crate::{Db, MatchOp, Matcher, SeriesColumns, TimeRange};

/// `ReadRequest.ResponseType.SAMPLES`.
const SAMPLES: i32 = 0;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/read", post(read))
}

async fn read(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WriteError> {
    check_headers(&headers, "application/x-protobuf")?;
    let worker = Arc::clone(&state);
    let response = tokio::task::spawn_blocking(move || answer(&worker, &body))
        .await
        .map_err(|e| WriteError::internal(format!("the read task failed: {e}")))??;
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&response.encode_to_vec())
        .map_err(|e| WriteError::internal(format!("cannot snappy-compress the answer: {e}")))?;
    let mut response = (StatusCode::OK, Body::from(compressed)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    Ok(response)
}

/// Decodes the request and reads every query (on the blocking pool).
fn answer(state: &AppState, body: &[u8]) -> Result<ReadResponse, WriteError> {
    let request: ReadRequest = decode_snappy(body, "ReadRequest")?;
    let types = &request.accepted_response_types;
    if !types.is_empty() && !types.contains(&SAMPLES) {
        return Err(WriteError::bad_request(format!(
            "remote read: the request accepts only response types {types:?}; strata answers \
             SAMPLES (0) only, not STREAMED_XOR_CHUNKS (1)"
        )));
    }
    let mut budget = Budget {
        left: state.config.max_samples_per_request,
        limit: state.config.max_samples_per_request,
    };
    let mut results = Vec::with_capacity(request.queries.len());
    for (index, query) in request.queries.iter().enumerate() {
        let matchers = matchers(query)
            .map_err(|e| WriteError::bad_request(format!("remote read, query {index}: {e}")))?;
        let range = TimeRange::new(query.start_timestamp_ms, query.end_timestamp_ms);
        results.push(read_query(&state.db, &matchers, range, &mut budget)?);
    }
    Ok(ReadResponse { results })
}

/// A query's matchers as strata's.
fn matchers(query: &proto::Query) -> Result<Vec<Matcher>, String> {
    query
        .matchers
        .iter()
        .map(|m| {
            let op = match m.r#type {
                0 => MatchOp::Equal,
                1 => MatchOp::NotEqual,
                2 => MatchOp::Regex,
                3 => MatchOp::NotRegex,
                other => {
                    return Err(format!(
                        "matcher on {:?} has unknown type {other} (EQ 0, NEQ 1, RE 2, NRE 3)",
                        m.name
                    ))
                }
            };
            Matcher::new(&m.name, op, &m.value).map_err(|e| e.to_string())
        })
        .collect()
}

/// Samples an answer may still hold.
struct Budget {
    left: usize,
    limit: usize,
}

impl Budget {
    /// Takes `samples`, or 400 when fewer are left.
    fn take(&mut self, samples: usize) -> Result<(), WriteError> {
        self.left = self.left.checked_sub(samples).ok_or_else(|| {
            WriteError::bad_request(format!(
                "remote read: the answer would hold more than {} samples \
                 (--max-samples-per-request); ask for a shorter range or fewer series",
                self.limit
            ))
        })?;
        Ok(())
    }
}

/// The series of one query with their samples in `range`, taken from
/// `budget`.
fn read_query(
    db: &Db,
    matchers: &[Matcher],
    range: TimeRange,
    budget: &mut Budget,
) -> Result<proto::QueryResult, WriteError> {
    let failed = |e: crate::Error| WriteError::internal(format!("remote read failed: {e}"));
    let set = db.select_series(matchers, range).map_err(failed)?;
    let mut columns = SeriesColumns::default();
    let mut timeseries = Vec::new();
    for index in 0..set.len() {
        set.read(index, &mut columns).map_err(failed)?;
        if columns.is_empty() {
            continue;
        }
        budget.take(columns.len())?;
        timeseries.push(proto::TimeSeries {
            // A key's labels are sorted by name.
            labels: proto::labels_of(set.key(index)),
            samples: columns
                .timestamps_ms
                .iter()
                .zip(&columns.values)
                .map(|(&timestamp, &value)| proto::Sample { value, timestamp })
                .collect(),
        });
    }
    Ok(proto::QueryResult { timeseries })
}
