//! The Prometheus HTTP query API (the part Grafana's Prometheus data
//! source calls), answering as Prometheus 2.42 does:
//!
//! - `GET|POST /api/v1/query` (`query`, `time`, `timeout`) and
//!   `GET|POST /api/v1/query_range` (`query`, `start`, `end`, `step`,
//!   `timeout`): PromQL evaluated by [`crate::instant_query`] and
//!   [`crate::range_query`], the body written by
//!   [`crate::api::write_query_result`];
//! - `GET|POST /api/v1/series` (`match[]` at least once, `start`, `end`),
//!   `GET|POST /api/v1/labels` and `GET /api/v1/label/<name>/values`
//!   (optional `match[]`, `start`, `end`);
//! - `GET /api/v1/metadata` (`metric`, `limit`) from [`crate::Db::metadata`];
//! - `GET /api/v1/status/buildinfo`, `GET|POST /api/v1/query_exemplars`
//!   (always empty: strata stores no exemplars) and
//!   `GET|POST /api/v1/format_query`.
//!
//! Parameters are read by `params.rs` (a form body's before the query
//! string's, Prometheus's time and duration syntax and messages).
//!
//! Invariants:
//! - errors have Prometheus's status, `errorType` and message: 400
//!   `bad_data` for a bad parameter, a PromQL parse error or a bad
//!   selector; 422 `execution` for an evaluation error; 503 `timeout` when
//!   the deadline passes (the `timeout` parameter, capped by
//!   `ServerConfig::query_timeout`) and 503 `canceled` when the client
//!   went away; 500 `internal` for a storage failure;
//! - database work and body rendering run on the blocking pool; a query
//!   whose client disconnects is cancelled (its handler future is dropped,
//!   which sets the query's cancel flag);
//! - every evaluated query (success or evaluation error) is counted with
//!   its latency in `ServerMetrics::record_query`.

use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::params::{invalid_parameter, now_ms, Params, MAX_TIME_MS, MIN_TIME_MS};
use super::{json_response, ApiError, AppState};
use crate::api::{push_json_string, write_label_sets, write_query_result, write_string_list};
use crate::{Db, Expr, Matcher, QueryError, QueryOptions, QueryValue, SeriesKey, TimeRange};

/// Most intervals `(end - start) / step` of a range query: Prometheus's
/// "11,000 points per timeseries" check (so at most 11,001 points).
const MAX_STEP_INTERVALS: i128 = 11_000;

/// The Prometheus version `/api/v1/status/buildinfo` reports: the one
/// whose HTTP API strata answers as (see [`build_info`]).
const PROMETHEUS_VERSION: &str = "2.42.0";

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/status/buildinfo", get(build_info))
        .route(
            "/api/v1/query_exemplars",
            get(query_exemplars).post(query_exemplars),
        )
        .route("/api/v1/format_query", get(format_query).post(format_query))
}

/// `/api/v1/query`: `time` defaults to now.
async fn query(State(state): State<Arc<AppState>>, params: Params) -> Result<Response, ApiError> {
    let started = Instant::now();
    let time_ms = params.time_or("time", now_ms())?;
    let deadline = deadline(&state, &params, started)?;
    let expr = parse_query(&params)?;
    let answer = evaluate(&state, deadline, move |db, options| {
        crate::instant_query(db, &expr, time_ms, options)
    })
    .await;
    state.metrics.record_query("query", started.elapsed());
    answer
}

/// `/api/v1/query_range`, with Prometheus's checks of the range and step.
async fn query_range(
    State(state): State<Arc<AppState>>,
    params: Params,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let start_ms = params.time("start")?;
    let end_ms = params.time("end")?;
    if end_ms < start_ms {
        return Err(invalid_parameter(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step_ms = step_ms(&params, start_ms, end_ms)?;
    let deadline = deadline(&state, &params, started)?;
    let expr = parse_query(&params)?;
    let answer = evaluate(&state, deadline, move |db, options| {
        crate::range_query(db, &expr, start_ms, end_ms, step_ms, options)
    })
    .await;
    state.metrics.record_query("query_range", started.elapsed());
    answer
}

/// The `step` parameter in milliseconds: positive, and at most 11,000
/// points per series between `start_ms` and `end_ms` (Prometheus's
/// messages). A step under a millisecond counts as zero: strata's times
/// are whole milliseconds.
fn step_ms(params: &Params, start_ms: i64, end_ms: i64) -> Result<i64, ApiError> {
    let step_ns = params.duration("step")?;
    let step_ms = step_ns / 1_000_000;
    if step_ms <= 0 {
        return Err(invalid_parameter(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    let span_ns = (i128::from(end_ms) - i128::from(start_ms)) * 1_000_000;
    if span_ns / i128::from(step_ns) > MAX_STEP_INTERVALS {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    Ok(step_ms)
}

/// When the query must be done: `started` plus the `timeout` parameter
/// (zero or negative: already passed), at most `ServerConfig::query_timeout`.
/// `None` when that instant is not representable (no deadline).
fn deadline(
    state: &AppState,
    params: &Params,
    started: Instant,
) -> Result<Option<Instant>, ApiError> {
    let limit = state.config.query_timeout;
    let timeout = if params.value("timeout").is_empty() {
        limit
    } else {
        let nanos = params.duration("timeout")?;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)).min(limit)
    };
    Ok(started.checked_add(timeout))
}

/// The `query` parameter as PromQL; a parse error is Prometheus's
/// `invalid parameter "query": 1:5: parse error: ...`.
fn parse_query(params: &Params) -> Result<Expr, ApiError> {
    crate::parse_expr(params.value("query")).map_err(|error| {
        invalid_parameter(
            "query",
            format!(
                "{}:{}: parse error: {}",
                error.line, error.column, error.message
            ),
        )
    })
}

/// Sets a query's cancel flag when dropped: when the handler's future is
/// dropped because the client went away, the evaluation stops soon after.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `run` on the blocking pool with the query options (deadline and
/// cancel flag) and answers its value as Prometheus's result body.
async fn evaluate<F>(
    state: &AppState,
    deadline: Option<Instant>,
    run: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(&Db, &QueryOptions) -> Result<QueryValue, QueryError> + Send + 'static,
{
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let options = QueryOptions {
        deadline,
        cancel: Some(Arc::clone(&cancel.0)),
        ..QueryOptions::default()
    };
    let answer = on_blocking_pool(state, move |db| {
        let value = run(db, &options).map_err(query_error)?;
        render(|out| write_query_result(&value, out))
    })
    .await;
    // Dropped only now: the query has finished, the flag is moot.
    drop(cancel);
    answer
}

/// The API error for a failed query, with Prometheus's type and status.
fn query_error(error: QueryError) -> ApiError {
    let (status, error_type) = match &error {
        QueryError::DeadlineExceeded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        QueryError::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, "canceled"),
        QueryError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        // What Prometheus refuses before evaluating (an expression of the
        // wrong type for a range query).
        QueryError::BadRange(_) | QueryError::TooManySteps { .. } => {
            (StatusCode::BAD_REQUEST, "bad_data")
        }
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "execution"),
    };
    ApiError {
        status,
        error_type,
        message: error.to_string(),
    }
}

/// Runs `work` (database reads and rendering) on the blocking pool and
/// answers its body with 200.
async fn on_blocking_pool<F>(state: &AppState, work: F) -> Result<Response, ApiError>
where
    F: FnOnce(&Db) -> Result<Vec<u8>, ApiError> + Send + 'static,
{
    let db = Arc::clone(&state.db);
    let body = tokio::task::spawn_blocking(move || work(&db))
        .await
        .map_err(|error| ApiError::internal(format!("the request's task failed: {error}")))??;
    Ok(json_response(StatusCode::OK, body))
}

/// A body written by `write` into memory.
fn render(write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    write(&mut body)
        .map_err(|error| ApiError::internal(format!("rendering the answer: {error}")))?;
    Ok(body)
}

/// `/api/v1/series`: the label sets of the series matching any `match[]`.
async fn series(State(state): State<Arc<AppState>>, params: Params) -> Result<Response, ApiError> {
    if params.values("match[]").next().is_none() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let range = time_range(&params)?;
    let sets = matcher_sets(&params)?;
    on_blocking_pool(&state, move |db| {
        let keys = matching_keys(db, &sets, range)?;
        render(|out| write_label_sets(keys.iter().map(SeriesKey::labels), out))
    })
    .await
}

/// `/api/v1/labels`: the label names of the series matching any
/// `match[]` (every series without one), sorted.
async fn labels(State(state): State<Arc<AppState>>, params: Params) -> Result<Response, ApiError> {
    let range = time_range(&params)?;
    let sets = matcher_sets(&params)?;
    on_blocking_pool(&state, move |db| {
        if sets.is_empty() && range.is_none() {
            return render(|out| write_string_list(db.label_names(), out));
        }
        let keys = matching_keys(db, &sets, range)?;
        let names: BTreeSet<&str> = keys
            .iter()
            .flat_map(|key| key.labels().iter().map(|label| &*label.name))
            .collect();
        render(|out| write_string_list(names, out))
    })
    .await
}

/// `/api/v1/label/<name>/values`: the values of label `name` in the
/// series matching any `match[]` (every series without one), sorted.
async fn label_values(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    if !is_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let range = time_range(&params)?;
    let sets = matcher_sets(&params)?;
    on_blocking_pool(&state, move |db| {
        if sets.is_empty() && range.is_none() {
            return render(|out| write_string_list(db.label_values(&name), out));
        }
        let keys = matching_keys(db, &sets, range)?;
        let values: BTreeSet<&str> = keys.iter().filter_map(|key| key.get(&name)).collect();
        render(|out| write_string_list(values, out))
    })
    .await
}

/// Prometheus's label name syntax, `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `start` and `end` (defaults: Prometheus's minimum and maximum time);
/// `None` when they are the defaults, i.e. all of time.
fn time_range(params: &Params) -> Result<Option<TimeRange>, ApiError> {
    let start_ms = params.time_or("start", MIN_TIME_MS)?;
    let end_ms = params.time_or("end", MAX_TIME_MS)?;
    Ok(
        (start_ms != MIN_TIME_MS || end_ms != MAX_TIME_MS)
            .then(|| TimeRange::new(start_ms, end_ms)),
    )
}

/// Every `match[]` as matchers. Each must parse as a series selector and,
/// as in Prometheus, hold a matcher that rejects the empty string (else it
/// would select every series by accident).
fn matcher_sets(params: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    params
        .values("match[]")
        .map(|text| {
            let matchers =
                crate::parse_selector(text).map_err(|error| invalid_parameter("match[]", error))?;
            if matchers.iter().all(|matcher| matcher.matches("")) {
                return Err(invalid_parameter(
                    "match[]",
                    format!("{text:?}: match[] must contain at least one non-empty matcher"),
                ));
            }
            Ok(matchers)
        })
        .collect()
}

/// The keys of the series matching any of `sets` (every series when there
/// is none), sorted: every indexed series over all of time (`range`
/// `None`: [`Db::find_series`]), else those with data in `range`
/// ([`Db::select_series`], at chunk and head-partition granularity).
fn matching_keys(
    db: &Db,
    sets: &[Vec<Matcher>],
    range: Option<TimeRange>,
) -> Result<Vec<SeriesKey>, ApiError> {
    let every_series = [Vec::new()];
    let sets = if sets.is_empty() {
        &every_series[..]
    } else {
        sets
    };
    let mut keys = Vec::new();
    for matchers in sets {
        match range {
            None => keys.extend(db.find_series(matchers)),
            Some(range) => {
                let selected = db
                    .select_series(matchers, range)
                    .map_err(|error| ApiError::internal(error.to_string()))?;
                keys.extend((0..selected.len()).map(|i| selected.key(i).clone()));
            }
        }
    }
    if sets.len() > 1 {
        keys.sort_unstable();
        keys.dedup();
    }
    Ok(keys)
}

/// `/api/v1/metadata`: `{"family":[{"type":...,"help":...,"unit":...}]}`
/// for every family (or the one named by `metric`), at most `limit`
/// families (a negative limit: no limit), in name order.
async fn metadata(
    State(state): State<Arc<AppState>>,
    params: Params,
) -> Result<Response, ApiError> {
    let limit = match params.value("limit") {
        "" => usize::MAX,
        text => match text.parse::<i64>() {
            Ok(limit) => usize::try_from(limit).unwrap_or(usize::MAX),
            Err(_) => return Err(ApiError::bad_data("limit must be a number")),
        },
    };
    let metric = params.value("metric");
    let metadata = state.db.metadata();
    let mut text = String::from(r#"{"status":"success","data":{"#);
    let families = metadata
        .iter()
        .filter(|(family, _)| metric.is_empty() || *family == metric)
        .take(limit);
    for (i, (family, found)) in families.enumerate() {
        if i > 0 {
            text.push(',');
        }
        push_json_string(&mut text, family);
        text.push_str(r#":[{"type":"#);
        push_json_string(&mut text, found.metric_type.as_str());
        text.push_str(r#","help":"#);
        push_json_string(&mut text, &found.help);
        text.push_str(r#","unit":"#);
        push_json_string(&mut text, &found.unit);
        text.push_str("}]");
    }
    text.push_str("}}\n");
    Ok(json_response(StatusCode::OK, text.into_bytes()))
}

/// `/api/v1/status/buildinfo`: Prometheus's six fields. `version` is the
/// Prometheus version whose API strata follows (Grafana reads it as a
/// semantic version to pick the query features it uses, and takes a body
/// without Mimir's `application` field for Prometheus); strata's own
/// version is in `revision`.
async fn build_info() -> Response {
    let body = format!(
        concat!(
            r#"{{"status":"success","data":{{"version":"{}","revision":"strata-{}","#,
            r#""branch":"","buildUser":"","buildDate":"","goVersion":""}}}}"#,
            "\n"
        ),
        PROMETHEUS_VERSION,
        env!("CARGO_PKG_VERSION")
    );
    json_response(StatusCode::OK, body.into_bytes())
}

/// `/api/v1/query_exemplars`: the parameters checked as Prometheus does,
/// then no exemplars (strata stores none).
async fn query_exemplars(params: Params) -> Result<Response, ApiError> {
    params.time_or("start", MIN_TIME_MS)?;
    params.time_or("end", MAX_TIME_MS)?;
    parse_query(&params)?;
    Ok(json_response(
        StatusCode::OK,
        b"{\"status\":\"success\",\"data\":[]}\n".to_vec(),
    ))
}

/// `/api/v1/format_query`: the query in strata's canonical one-line form.
async fn format_query(params: Params) -> Result<Response, ApiError> {
    let expr = parse_query(&params)?;
    let mut text = String::from(r#"{"status":"success","data":"#);
    push_json_string(&mut text, &expr.to_string());
    text.push_str("}\n");
    Ok(json_response(StatusCode::OK, text.into_bytes()))
}
