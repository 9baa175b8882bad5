//! `strata serve` (cargo feature `server`): a database behind HTTP, for
//! the tools people already run. Prometheus remote write 1.0 in
//! (`remote_write.rs`), remote read out (`remote_read.rs`), Influx line
//! protocol (`influx.rs`), the Prometheus HTTP query API for Grafana
//! (`query_api.rs`), strata's own metrics (`self_metrics.rs`), recording
//! and alerting rules (`rules/`), remote write forwarding (`forward.rs`).
//! docs/SERVER.md documents flags, endpoints and limits.
//!
//! This file holds what every endpoint shares: the configuration and its
//! limits, the state handlers see ([`AppState`]), the middleware (bearer
//! token, concurrency limit, request metrics), the two error body shapes
//! (plain text for the write endpoints, the Prometheus API's JSON for the
//! query API) and the life cycle ([`Server::bind`], [`Server::run`]).
//!
//! Invariants:
//! - every request gets a response; a bad request a 4xx with a message,
//!   never a panic or a dropped connection (handlers return errors, and
//!   blocking database work runs on the blocking pool);
//! - a write endpoint answers 2xx only after the database accepted the
//!   samples under its `SyncMode` (`strata serve` opens it with
//!   `SyncMode::Always` unless told otherwise), so an acknowledged sample
//!   survives a crash;
//! - [`Server::run`] returns after the shutdown signal once every
//!   in-flight request has been answered; the caller then closes the
//!   database, which flushes it.

pub mod forward;
pub mod proto;
pub mod rules;
mod wire;

mod influx;
mod params;
mod query_api;
mod remote_read;
mod remote_write;
mod self_metrics;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::Db;

pub use self_metrics::ServerMetrics;

/// What `strata serve` listens on and the limits it enforces.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free one ([`Server::local_addr`]).
    pub listen: SocketAddr,
    /// Largest request body in bytes (compressed, as sent); a larger one
    /// gets 413. Default 32 MiB.
    pub max_body_bytes: usize,
    /// Most samples one write request may carry once decoded; more is a
    /// 400 (the whole request refused, nothing written). Default 1,000,000.
    pub max_samples_per_request: usize,
    /// Requests handled at once; more get 429 with `Retry-After`. Default 64.
    pub max_concurrent_requests: usize,
    /// When set, every endpoint but `/-/healthy` and `/-/ready` requires
    /// `Authorization: Bearer <token>` (401 otherwise).
    pub bearer_token: Option<String>,
    /// Write endpoints answer 429 with `Retry-After` while the head's
    /// compressed samples ([`Db::head_sample_bytes`], measured at least once
    /// a second) exceed this fraction of
    /// `Options::max_head_bytes`.
    /// Default 0.9.
    pub backpressure_head_fraction: f64,
    /// Longest a query may run (the query API's `timeout` parameter may ask
    /// for less). Default 2 minutes, as Prometheus.
    pub query_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9201)),
            max_body_bytes: 32 << 20,
            max_samples_per_request: 1_000_000,
            max_concurrent_requests: 64,
            bearer_token: None,
            backpressure_head_fraction: 0.9,
            query_timeout: Duration::from_secs(120),
        }
    }
}

/// What every handler sees.
pub struct AppState {
    pub db: Arc<Db>,
    pub config: ServerConfig,
    pub metrics: ServerMetrics,
    /// Permits for [`ServerConfig::max_concurrent_requests`].
    requests: Semaphore,
    /// Remote write's series handles by label bytes.
    series_cache: remote_write::SeriesCache,
    pub started: Instant,
    /// The forwarder's statistics, when `strata serve --forward` runs one.
    pub forward: std::sync::OnceLock<Arc<parking_lot::Mutex<forward::ForwardStats>>>,
    /// The rules engine, once [`rules::RulesService::start`] (or
    /// [`rules::attach`]) set it; `/api/v1/rules` and `/api/v1/alerts`
    /// read it.
    pub rules: std::sync::OnceLock<rules::SharedEngine>,
}

impl AppState {
    /// `Err` (429 with `Retry-After`) while the head is over the
    /// backpressure threshold: writers should slow down until a flush
    /// frees memory.
    pub fn check_backpressure(&self) -> Result<(), WriteError> {
        let limit =
            self.db.options().max_head_bytes as f64 * self.config.backpressure_head_fraction;
        let used = self.db.head_sample_bytes() as f64;
        if used > limit {
            return Err(WriteError::too_many_requests(format!(
                "the database's head holds {used:.0} bytes, over {limit:.0} \
                 ({} of max_head_bytes): retry after the next flush",
                self.config.backpressure_head_fraction
            )));
        }
        Ok(())
    }
}

/// An error of a write endpoint: a status and a plain-text message (what
/// Prometheus's remote write receiver answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError {
    pub status: StatusCode,
    pub message: String,
}

impl WriteError {
    /// 400: the data is bad; the sender must not retry it.
    pub fn bad_request(message: impl Into<String>) -> Self {
        WriteError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 429: retry later (the response carries `Retry-After`).
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        WriteError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: message.into(),
        }
    }

    /// 500: the database failed; the sender may retry.
    pub fn internal(message: impl Into<String>) -> Self {
        WriteError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl IntoResponse for WriteError {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// An error of the query API: a status and the Prometheus API's JSON error
/// body (`{"status":"error","errorType":...,"error":...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// One of Prometheus's: `bad_data`, `execution`, `timeout`, `canceled`,
    /// `internal`, `not_found`, `unavailable`.
    pub error_type: &'static str,
    pub message: String,
}

impl ApiError {
    /// 400 `bad_data`.
    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error_type: "bad_data",
            message: message.into(),
        }
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_type: "internal",
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = crate::api::write_error(self.error_type, &self.message, &mut body);
        json_response(self.status, body)
    }
}

/// A JSON response with `status` and `body`.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A listening server, not yet serving.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
}

impl Server {
    /// Binds `config.listen` for `db`.
    pub async fn bind(db: Arc<Db>, config: ServerConfig) -> io::Result<Server> {
        let listener = TcpListener::bind(config.listen).await?;
        let state = Arc::new(AppState {
            db,
            requests: Semaphore::new(config.max_concurrent_requests),
            config,
            metrics: ServerMetrics::default(),
            series_cache: remote_write::SeriesCache::default(),
            started: Instant::now(),
            forward: std::sync::OnceLock::new(),
            rules: std::sync::OnceLock::new(),
        });
        Ok(Server { listener, state })
    }

    /// The address it listens on (the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (for the rules engine and the forwarder).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting and returns
    /// once every in-flight request has been answered.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let router = router(Arc::clone(&self.state));
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Every route, with the shared middleware.
fn router(state: Arc<AppState>) -> Router {
    let max_body_bytes = state.config.max_body_bytes;
    let guarded = Router::new()
        .merge(remote_write::routes())
        .merge(remote_read::routes())
        .merge(influx::routes())
        .merge(query_api::routes())
        .merge(self_metrics::routes())
        .merge(rules::routes())
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            limit_and_authorize,
        ));
    Router::new()
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/-/ready", get(|| async { "Ready.\n" }))
        .merge(guarded)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// Bearer token check and the concurrency limit.
async fn limit_and_authorize(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.config.bearer_token {
        if !authorized(&request, token) {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer <token>)\n",
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    let Ok(_permit) = state.requests.try_acquire() else {
        return WriteError::too_many_requests(format!(
            "more than {} requests at once",
            state.config.max_concurrent_requests
        ))
        .into_response();
    };
    next.run(request).await
}

/// Whether `request` carries `Authorization: Bearer <token>`, or (on
/// `/api/v2/write`, for InfluxDB 2.x clients such as Telegraf's
/// `influxdb_v2` output) `Authorization: Token <token>`.
fn authorized(request: &Request, token: &str) -> bool {
    let Some(given) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let influx_v2 = request.uri().path() == "/api/v2/write";
    match given.split_once(' ') {
        Some(("Bearer", given)) => given == token,
        Some(("Token", given)) => influx_v2 && given == token,
        _ => false,
    }
}

/// Counts every request by route and status for `/metrics`.
async fn count_requests(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |path| path.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .record_request(&route, response.status().as_u16(), started.elapsed());
    response
}
