//! Recording and alerting rules for `strata serve`: Prometheus rule files
//! (`file.rs`, with the template subset in `template.rs`), evaluated on
//! the database by [`RuleEngine`] (`eval.rs`), alerts sent to Alertmanager
//! by [`Notifier`] (`notify.rs`), and `GET /api/v1/rules` and
//! `/api/v1/alerts` (`api.rs`).
//!
//! [`RulesService::start`] runs it: one std thread (the scheduler)
//! evaluates each group at the multiples of its interval (Unix time), so
//! evaluation never occupies a tokio worker, and hands the notifications
//! due to the notifier's thread. The engine sits behind a mutex in
//! [`AppState::rules`] for the API handlers, which read it on the
//! blocking pool.
//!
//! Invariants: a group is evaluated at most once per tick; when an
//! evaluation overruns its interval the missed ticks are skipped, not
//! caught up (as Prometheus); stopping the service ends both threads
//! after the evaluation in progress, and the queued notifications are
//! sent before the notifier's thread ends.

mod api;
mod eval;
mod file;
mod notify;
mod template;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};

pub use eval::{
    Alert, AlertState, EngineConfig, GroupState, Health, Notification, RuleEngine, RuleState,
    RESOLVED_RETENTION_MS,
};
pub use file::{
    load_file, load_files, parse_duration, parse_rule_file, Rule, RuleFileError, RuleGroup,
    RuleKind,
};
pub use notify::{alerts_json, Notifier, NotifierStats, MAX_BATCH, QUEUE_CAPACITY};
pub use template::Template;

pub(super) use api::routes;

use super::AppState;

/// The engine as shared between the scheduler and the API.
pub type SharedEngine = Arc<Mutex<RuleEngine>>;

/// What `strata serve --rules` runs with.
#[derive(Debug, Clone)]
pub struct RulesConfig {
    /// Alertmanager base URLs (`http://host:9093`); none sends nothing.
    pub alertmanagers: Vec<String>,
    pub engine: EngineConfig,
}

/// The running rules: the scheduler thread and the notifier.
pub struct RulesService {
    engine: SharedEngine,
    notifier: Arc<Mutex<Notifier>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    scheduler: Option<JoinHandle<()>>,
}

impl RulesService {
    /// Evaluates `groups` on `state`'s database from now on, serves them
    /// at `/api/v1/rules` and `/api/v1/alerts` and notifies the
    /// Alertmanagers. Fails when rules were already started on `state` or
    /// a thread cannot be started.
    pub fn start(
        state: &Arc<AppState>,
        groups: Vec<RuleGroup>,
        config: RulesConfig,
    ) -> std::io::Result<RulesService> {
        let engine = Arc::new(Mutex::new(RuleEngine::new(
            Arc::clone(&state.db),
            groups,
            config.engine,
        )));
        attach(state, Arc::clone(&engine))?;
        let notifier = Arc::new(Mutex::new(Notifier::start(
            config.alertmanagers,
            QUEUE_CAPACITY,
        )?));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let scheduler = {
            let (engine, notifier, stop) = (
                Arc::clone(&engine),
                Arc::clone(&notifier),
                Arc::clone(&stop),
            );
            std::thread::Builder::new()
                .name("strata-rules".to_owned())
                .spawn(move || schedule(&engine, &notifier, &stop))?
        };
        Ok(RulesService {
            engine,
            notifier,
            stop,
            scheduler: Some(scheduler),
        })
    }

    pub fn engine(&self) -> &SharedEngine {
        &self.engine
    }

    /// Sent, failed and dropped notifications so far.
    pub fn notifier_stats(&self) -> (u64, u64, u64) {
        let notifier = self.notifier.lock();
        let stats = notifier.stats();
        let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        (load(&stats.sent), load(&stats.errors), load(&stats.dropped))
    }

    /// Stops evaluating (after the evaluation in progress), sends the
    /// queued notifications and ends both threads.
    pub fn stop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(scheduler) = self.scheduler.take() {
            let _ = scheduler.join();
        }
        self.notifier.lock().stop();
    }
}

impl Drop for RulesService {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes `engine` the one `state`'s `/api/v1/rules` and `/api/v1/alerts`
/// show (for a server whose rules are evaluated by hand, as in tests).
pub fn attach(state: &AppState, engine: SharedEngine) -> std::io::Result<()> {
    state.rules.set(engine).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "rules were already started on this server",
        )
    })
}

/// Unix time in milliseconds.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The scheduler: each group at the multiples of its interval.
fn schedule(engine: &SharedEngine, notifier: &Mutex<Notifier>, stop: &(Mutex<bool>, Condvar)) {
    let intervals: Vec<i64> = engine
        .lock()
        .groups()
        .iter()
        .map(|g| g.interval_ms.max(1))
        .collect();
    // The first evaluation of each group at its latest tick, at once.
    let now = now_ms();
    let mut next: Vec<i64> = intervals.iter().map(|i| now - now.rem_euclid(*i)).collect();
    loop {
        let Some(&due) = next.iter().min() else {
            return;
        };
        {
            let mut stopped = stop.0.lock();
            loop {
                if *stopped {
                    return;
                }
                let wait = due - now_ms();
                if wait <= 0 {
                    break;
                }
                stop.1
                    .wait_for(&mut stopped, Duration::from_millis(wait as u64));
            }
        }
        let now = now_ms();
        for (index, interval) in intervals.iter().enumerate() {
            if next[index] > now {
                continue;
            }
            let tick = now - now.rem_euclid(*interval);
            let notifications = engine.lock().evaluate_group_at(index, tick);
            notifier.lock().enqueue(notifications);
            next[index] = tick + interval;
        }
    }
}

/// `2026-12-01T05:07:20.123Z` (milliseconds only when not zero), as Go's
/// `time.Time` marshals to JSON in UTC.
pub fn rfc3339(ms: i64) -> String {
    let ((year, month, day), h, m, s, millis) = crate::calendar::utc_parts(ms);
    let fraction = if millis == 0 {
        String::new()
    } else {
        format!(".{millis:03}").trim_end_matches('0').to_owned()
    };
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_500), "2000-02-29T00:00:00.5Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }
}
