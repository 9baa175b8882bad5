//! The Alertmanager client: a bounded queue of [`Notification`]s drained by
//! one std thread that POSTs them as a JSON array to `URL/api/v2/alerts`
//! of every configured Alertmanager (blocking `ureq`, plain HTTP).
//!
//! Invariants: [`Notifier::enqueue`] never blocks on the network (rule
//! evaluation is never held up by an Alertmanager); when the queue is full
//! the oldest notifications are dropped and counted, as Prometheus's
//! notifier does; a failed POST is logged and counted, not retried (the
//! rule engine re-sends firing alerts every resend delay); stopping sends
//! what is queued, then ends the thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::eval::Notification;
use super::rfc3339;

/// Most notifications waiting; more drops the oldest. Prometheus's default.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Most alerts in one POST. Prometheus's default.
pub const MAX_BATCH: usize = 256;
/// Longest one POST may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What the notifier has done so far.
#[derive(Debug, Default)]
pub struct NotifierStats {
    /// Alerts delivered (counted once per Alertmanager that took them).
    pub sent: AtomicU64,
    /// POSTs that failed (connection error or non-2xx answer).
    pub errors: AtomicU64,
    /// Alerts dropped because the queue was full.
    pub dropped: AtomicU64,
}

struct Queue {
    pending: VecDeque<Notification>,
    stopping: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    stats: NotifierStats,
    capacity: usize,
}

/// Sends notifications to Alertmanagers from its own thread.
pub struct Notifier {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Notifier {
    /// A notifier for the Alertmanagers at `urls` (`http://host:9093`,
    /// with or without a path prefix) holding at most `capacity`
    /// notifications.
    pub fn start(urls: Vec<String>, capacity: usize) -> std::io::Result<Notifier> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                pending: VecDeque::new(),
                stopping: false,
            }),
            wake: Condvar::new(),
            stats: NotifierStats::default(),
            capacity: capacity.max(1),
        });
        let endpoints: Vec<String> = urls
            .iter()
            .map(|url| format!("{}/api/v2/alerts", url.trim_end_matches('/')))
            .collect();
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("strata-notifier".to_owned())
            .spawn(move || send_loop(&worker, &endpoints))?;
        Ok(Notifier {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `notifications`; drops the oldest beyond the capacity.
    pub fn enqueue(&self, notifications: Vec<Notification>) {
        if notifications.is_empty() {
            return;
        }
        let mut queue = self.shared.queue.lock();
        queue.pending.extend(notifications);
        let excess = queue.pending.len().saturating_sub(self.shared.capacity);
        if excess > 0 {
            queue.pending.drain(..excess);
            self.shared
                .stats
                .dropped
                .fetch_add(excess as u64, Ordering::Relaxed);
        }
        drop(queue);
        self.shared.wake.notify_one();
    }

    pub fn stats(&self) -> &NotifierStats {
        &self.shared.stats
    }

    /// Sends what is queued, then stops the thread.
    pub fn stop(&mut self) {
        self.shared.queue.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop();
    }
}

fn send_loop(shared: &Shared, endpoints: &[String]) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(SEND_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    loop {
        let batch: Vec<Notification> = {
            let mut queue = shared.queue.lock();
            while queue.pending.is_empty() && !queue.stopping {
                shared.wake.wait(&mut queue);
            }
            if queue.pending.is_empty() {
                return;
            }
            let take = queue.pending.len().min(MAX_BATCH);
            queue.pending.drain(..take).collect()
        };
        let body = alerts_json(&batch);
        for endpoint in endpoints {
            match post(&agent, endpoint, &body) {
                Ok(()) => {
                    shared
                        .stats
                        .sent
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(problem) => {
                    shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!(
                        "strata serve: sending {} alerts to {endpoint} failed: {problem}",
                        batch.len()
                    );
                }
            }
        }
    }
}

fn post(agent: &ureq::Agent, endpoint: &str, body: &str) -> Result<(), String> {
    let response = agent
        .post(endpoint)
        .header("Content-Type", "application/json")
        .send(body)
        .map_err(|e| e.to_string())?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response
        .into_body()
        .with_config()
        .limit(4096)
        .read_to_string()
        .unwrap_or_default();
    Err(format!("HTTP {}: {}", status.as_u16(), text.trim()))
}

/// The body of `POST /api/v2/alerts`: `[{"labels":{...},"annotations":
/// {...},"startsAt":...,"endsAt":...,"generatorURL":...}]`.
pub fn alerts_json(notifications: &[Notification]) -> String {
    let mut out = String::from("[");
    for (i, n) in notifications.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"labels\":");
        crate::api::push_metric(&mut out, &n.labels);
        out.push_str(",\"annotations\":");
        push_string_map(&mut out, &n.annotations);
        out.push_str(",\"startsAt\":\"");
        out.push_str(&rfc3339(n.starts_at_ms));
        out.push_str("\",\"endsAt\":\"");
        out.push_str(&rfc3339(n.ends_at_ms));
        out.push_str("\",\"generatorURL\":");
        crate::api::push_json_string(&mut out, &n.generator_url);
        out.push('}');
    }
    out.push(']');
    out
}

/// `{"name":"value",...}` in the given order.
pub fn push_string_map(out: &mut String, pairs: &[(String, String)]) {
    out.push('{');
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::api::push_json_string(out, name);
        out.push(':');
        crate::api::push_json_string(out, value);
    }
    out.push('}');
}
