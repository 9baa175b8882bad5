//! strata's own metrics, served in Prometheus text format at `GET
//! /metrics`: requests by route and status, samples ingested and rejected,
//! query latency, and the database's state.
//!
//! [`ServerMetrics`] is the collector every handler feeds; it only counts
//! (atomics and short critical sections), never blocks on I/O.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use parking_lot::Mutex;

use super::AppState;

/// Counters fed by the handlers.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    /// (route, status) → (count, total seconds).
    requests: Mutex<BTreeMap<(String, u16), (u64, f64)>>,
    /// (protocol, outcome) → samples: outcome `accepted` or a rejection
    /// reason (`out_of_order`, `too_old`, `invalid`, ...).
    samples: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// Query API endpoint (`query`, `query_range`) → (queries evaluated,
    /// total seconds), failed ones included.
    queries: Mutex<BTreeMap<&'static str, (u64, f64)>>,
}

impl ServerMetrics {
    /// One answered request.
    pub fn record_request(&self, route: &str, status: u16, took: Duration) {
        let mut requests = self.requests.lock();
        let entry = requests.entry((route.to_owned(), status)).or_default();
        entry.0 += 1;
        entry.1 += took.as_secs_f64();
    }

    /// `count` samples of `protocol` (`remote_write`, `influx`) with
    /// `outcome` (`accepted` or a rejection reason).
    pub fn record_samples(&self, protocol: &'static str, outcome: &str, count: u64) {
        if count == 0 {
            return;
        }
        *self
            .samples
            .lock()
            .entry((protocol, outcome.to_owned()))
            .or_default() += count;
    }

    /// Samples recorded for `protocol` with `outcome` so far.
    pub fn samples(&self, protocol: &'static str, outcome: &str) -> u64 {
        self.samples
            .lock()
            .get(&(protocol, outcome.to_owned()))
            .copied()
            .unwrap_or(0)
    }
}

impl ServerMetrics {
    /// One query evaluated by `endpoint` (`query`, `query_range`) in
    /// `took`, from the request's arrival to its rendered answer.
    pub fn record_query(&self, endpoint: &'static str, took: Duration) {
        let mut queries = self.queries.lock();
        let entry = queries.entry(endpoint).or_default();
        entry.0 += 1;
        entry.1 += took.as_secs_f64();
    }

    /// Queries recorded for `endpoint` so far and their total seconds.
    pub fn queries(&self, endpoint: &str) -> (u64, f64) {
        self.queries
            .lock()
            .get(endpoint)
            .copied()
            .unwrap_or_default()
    }
}

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
}
