//! Rule evaluation and alert state: [`RuleEngine`] is a plain struct whose
//! [`RuleEngine::evaluate_group_at`] evaluates one group at a given time,
//! so tests drive the clock; the server's scheduler calls it with wall
//! time (`mod.rs`).
//!
//! Invariants (Prometheus's rule manager):
//! - a group's rules run in order, each rule's samples are written before
//!   the next runs (a rule may use the series of the one before it);
//! - a recording rule writes its result at `t` as series named `record`
//!   (rule labels applied; a scalar is one series); two results with the
//!   same label set, or more than the group's `limit`, fail the rule and
//!   write nothing;
//! - an alert is keyed by its label set (result labels without
//!   `__name__`, rule labels, `alertname`): new → pending, pending for
//!   `for` → firing (at once when `for` is 0), absent → deleted when
//!   pending, resolved (inactive) when firing, after `keep_firing_for`;
//!   resolved alerts are kept 15 minutes so the resolution is notified;
//! - each evaluation writes `ALERTS{alertstate}` = 1 and
//!   `ALERTS_FOR_STATE` = the active-since time (Unix seconds) for every
//!   pending and firing alert, and a stale marker for each series the rule
//!   wrote at its previous evaluation but not at this one;
//! - a failed evaluation (query error, duplicate labels, limit) changes no
//!   alert and sends nothing; the rule's health says why;
//! - firing alerts are (re)sent when not yet sent or `resend_delay` after
//!   the last send; a resolved alert when its resolution is not yet sent,
//!   then every `resend_delay` until it is forgotten. `endsAt` is the
//!   resolution time, or for a firing alert `t + 4 × max(resend_delay,
//!   interval)` (Alertmanager resolves it itself if strata goes away).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::file::{Rule, RuleGroup, RuleKind};
use crate::series::STALE_NAN_BITS;
use crate::{Db, Label, QueryOptions, QueryValue, SeriesKey, SeriesRef, METRIC_NAME_LABEL};

/// How long a resolved alert is kept (and re-notified), as Prometheus.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60_000;

/// Settings of the engine beyond the rule files.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Least time between two notifications of the same alert. Default
    /// 1 minute, as Prometheus's `--rules.alert.resend-delay`.
    pub resend_delay_ms: i64,
    /// The server's URL as users reach it, for alerts' `generatorURL`.
    pub external_url: String,
    /// Longest one rule's query may run.
    pub query_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            resend_delay_ms: 60_000,
            external_url: "http://localhost:9201".to_owned(),
            query_timeout: Duration::from_secs(120),
        }
    }
}

/// A rule's health after its last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    Ok,
    Err,
}

impl Health {
    /// The name in the Prometheus API.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    /// Resolved, kept for notification.
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    /// The name in the Prometheus API and in `ALERTS{alertstate}`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Sorted, with `alertname`.
    pub labels: Vec<Label>,
    pub annotations: Vec<(String, String)>,
    pub state: AlertState,
    /// The result's value at the last evaluation that had the alert.
    pub value: f64,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub last_sent_ms: Option<i64>,
    keep_firing_since_ms: Option<i64>,
}

/// An alert as sent to Alertmanager.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub labels: Vec<Label>,
    pub annotations: Vec<(String, String)>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub generator_url: String,
}

/// A rule and what its evaluations left.
#[derive(Debug)]
pub struct RuleState {
    pub rule: Rule,
    pub health: Health,
    pub last_error: Option<String>,
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_seconds: f64,
    /// Alerting rules: alerts by label set.
    pub alerts: BTreeMap<Vec<Label>, Alert>,
    /// Series written at the last evaluation (for stale markers).
    written: HashSet<SeriesKey>,
}

impl RuleState {
    /// The rule's state in the API: the highest of its alerts' states.
    pub fn alert_state(&self) -> AlertState {
        self.alerts
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }
}

/// A group and its rules' states.
#[derive(Debug)]
pub struct GroupState {
    pub name: String,
    pub file: std::path::PathBuf,
    pub interval_ms: i64,
    pub limit: usize,
    pub rules: Vec<RuleState>,
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_seconds: f64,
}

/// The rules of every group over one database.
pub struct RuleEngine {
    db: Arc<Db>,
    config: EngineConfig,
    groups: Vec<GroupState>,
}

impl RuleEngine {
    pub fn new(db: Arc<Db>, groups: Vec<RuleGroup>, config: EngineConfig) -> RuleEngine {
        let groups = groups
            .into_iter()
            .map(|group| GroupState {
                name: group.name,
                file: group.file,
                interval_ms: group.interval_ms,
                limit: group.limit,
                rules: group
                    .rules
                    .into_iter()
                    .map(|rule| RuleState {
                        rule,
                        health: Health::Unknown,
                        last_error: None,
                        last_evaluation_ms: None,
                        evaluation_seconds: 0.0,
                        alerts: BTreeMap::new(),
                        written: HashSet::new(),
                    })
                    .collect(),
                last_evaluation_ms: None,
                evaluation_seconds: 0.0,
            })
            .collect();
        RuleEngine { db, config, groups }
    }

    pub fn groups(&self) -> &[GroupState] {
        &self.groups
    }

    /// Evaluates every group at `t_ms`; the notifications due.
    pub fn evaluate_at(&mut self, t_ms: i64) -> Vec<Notification> {
        (0..self.groups.len())
            .flat_map(|index| self.evaluate_group_at(index, t_ms))
            .collect()
    }

    /// Evaluates group `index` at `t_ms`; the notifications due.
    pub fn evaluate_group_at(&mut self, index: usize, t_ms: i64) -> Vec<Notification> {
        let started = Instant::now();
        let Some(group) = self.groups.get_mut(index) else {
            return Vec::new();
        };
        let mut due = Vec::new();
        let context = Context {
            db: &self.db,
            config: &self.config,
            interval_ms: group.interval_ms,
            limit: group.limit,
            t_ms,
        };
        for state in &mut group.rules {
            let rule_started = Instant::now();
            let outcome = match &state.rule.kind {
                RuleKind::Recording { record } => {
                    let record = record.clone();
                    context.record(state, &record).map(|()| Vec::new())
                }
                RuleKind::Alerting { .. } => context.alert(state),
            };
            match outcome {
                Ok(notifications) => {
                    state.health = Health::Ok;
                    state.last_error = None;
                    due.extend(notifications);
                }
                Err(message) => {
                    state.health = Health::Err;
                    state.last_error = Some(message);
                }
            }
            state.last_evaluation_ms = Some(t_ms);
            state.evaluation_seconds = rule_started.elapsed().as_secs_f64();
        }
        group.last_evaluation_ms = Some(t_ms);
        group.evaluation_seconds = started.elapsed().as_secs_f64();
        due
    }
}

/// What one group evaluation shares.
struct Context<'a> {
    db: &'a Db,
    config: &'a EngineConfig,
    interval_ms: i64,
    limit: usize,
    t_ms: i64,
}

/// One element of a rule's result: labels and value.
type Element = (Vec<Label>, f64);

impl Context<'_> {
    /// The rule's expression at `t`, as elements.
    fn query(&self, rule: &Rule) -> Result<Vec<Element>, String> {
        let options = QueryOptions {
            deadline: Some(Instant::now() + self.config.query_timeout),
            ..QueryOptions::default()
        };
        let value = crate::instant_query(self.db, &rule.expr, self.t_ms, &options)
            .map_err(|e| e.to_string())?;
        match value {
            QueryValue::Vector(series) => Ok(series
                .into_iter()
                .map(|s| {
                    let value = s.samples.first().map_or(f64::NAN, |sample| sample.value);
                    (s.labels, value)
                })
                .collect()),
            QueryValue::Scalar(sample) => Ok(vec![(Vec::new(), sample.value)]),
            QueryValue::String { .. } | QueryValue::Matrix(_) => Err(
                "the expression gives a string or a range vector; a rule needs an instant \
                 vector or a scalar"
                    .to_owned(),
            ),
        }
    }

    fn check_limit(&self, count: usize, what: &str) -> Result<(), String> {
        if self.limit > 0 && count > self.limit {
            return Err(format!(
                "exceeded the group's limit of {} with {count} {what}",
                self.limit
            ));
        }
        Ok(())
    }

    fn record(&self, state: &mut RuleState, record: &str) -> Result<(), String> {
        let elements = self.query(&state.rule)?;
        self.check_limit(elements.len(), "series")?;
        let mut samples = Vec::with_capacity(elements.len());
        let mut seen = HashSet::with_capacity(elements.len());
        for (labels, value) in elements {
            let mut labels = without_name(labels);
            for (name, template) in &state.rule.labels {
                set_label(&mut labels, name, template.expand(&[], value));
            }
            set_label(&mut labels, METRIC_NAME_LABEL, record.to_owned());
            let key = SeriesKey::from_labels(labels).map_err(|e| e.to_string())?;
            if !seen.insert(key.clone()) {
                return Err(format!(
                    "the result has two series with the labels {key} once the rule's labels \
                     are applied"
                ));
            }
            samples.push((key, value));
        }
        self.write(state, samples)
    }

    fn alert(&self, state: &mut RuleState) -> Result<Vec<Notification>, String> {
        let RuleKind::Alerting {
            for_ms,
            keep_firing_for_ms,
            ..
        } = state.rule.kind
        else {
            return Ok(Vec::new());
        };
        let elements = self.query(&state.rule)?;
        self.check_limit(elements.len(), "alerts")?;
        let current = found_alerts(&state.rule, elements)?;
        let t = self.t_ms;
        for (labels, found) in &current {
            match state.alerts.get_mut(labels) {
                Some(alert) if alert.state != AlertState::Inactive => {
                    alert.value = found.value;
                    alert.annotations.clone_from(&found.annotations);
                    alert.keep_firing_since_ms = None;
                }
                _ => {
                    let alert = Alert {
                        labels: labels.clone(),
                        annotations: found.annotations.clone(),
                        state: AlertState::Pending,
                        value: found.value,
                        active_at_ms: t,
                        fired_at_ms: None,
                        resolved_at_ms: None,
                        last_sent_ms: None,
                        keep_firing_since_ms: None,
                    };
                    state.alerts.insert(labels.clone(), alert);
                }
            }
        }
        state.alerts.retain(|labels, alert| {
            let present = current.contains_key(labels);
            advance(alert, present, t, for_ms, keep_firing_for_ms)
        });
        let samples = alert_series(state.alerts.values())?;
        self.write(state, samples)?;
        Ok(self.due_notifications(state))
    }

    /// Marks the alerts due for sending as sent; their notifications.
    fn due_notifications(&self, state: &mut RuleState) -> Vec<Notification> {
        let t = self.t_ms;
        let resend = self.config.resend_delay_ms;
        let valid_for = 4 * resend.max(self.interval_ms);
        let generator_url = format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            self.config.external_url.trim_end_matches('/'),
            form_urlencoded::byte_serialize(state.rule.expr_text.as_bytes()).collect::<String>()
        );
        let mut due = Vec::new();
        for alert in state.alerts.values_mut() {
            if !needs_sending(alert, t, resend) {
                continue;
            }
            alert.last_sent_ms = Some(t);
            due.push(Notification {
                labels: alert.labels.clone(),
                annotations: alert.annotations.clone(),
                starts_at_ms: alert.fired_at_ms.unwrap_or(alert.active_at_ms),
                ends_at_ms: alert.resolved_at_ms.unwrap_or(t + valid_for),
                generator_url: generator_url.clone(),
            });
        }
        due
    }

    /// Writes `samples` at `t`, and stale markers for the series written
    /// last time but not now. Rejected samples (out of order, too old) are
    /// logged, as Prometheus does; they do not fail the rule.
    fn write(&self, state: &mut RuleState, samples: Vec<(SeriesKey, f64)>) -> Result<(), String> {
        let now: HashSet<SeriesKey> = samples.iter().map(|(key, _)| key.clone()).collect();
        let stale = f64::from_bits(STALE_NAN_BITS);
        let gone = state
            .written
            .iter()
            .filter(|key| !now.contains(*key))
            .map(|key| (key.clone(), stale));
        let all: Vec<(SeriesKey, f64)> = samples.into_iter().chain(gone).collect();
        let refs = all
            .iter()
            .map(|(key, value)| Ok((self.db.series(key)?, *value)))
            .collect::<Result<Vec<(SeriesRef, f64)>, crate::Error>>()
            .map_err(|e| format!("cannot write the result: {e}"))?;
        let batch: Vec<(&SeriesRef, i64, f64)> = refs
            .iter()
            .map(|(series, value)| (series, self.t_ms, *value))
            .collect();
        for chunk in batch.chunks(crate::MAX_BATCH_SAMPLES) {
            let outcome = self
                .db
                .append_batch(chunk)
                .map_err(|e| format!("cannot write the result: {e}"))?;
            if let Some((index, reason)) = outcome.rejected.first() {
                eprintln!(
                    "strata serve: rule {}: {} of its samples at {} rejected, first {}: {reason}",
                    state.rule.name(),
                    outcome.rejected.len(),
                    self.t_ms,
                    chunk[*index].0.key()
                );
            }
        }
        state.written = now;
        Ok(())
    }
}

/// A result element as an alert: its value and expanded annotations.
struct Found {
    value: f64,
    annotations: Vec<(String, String)>,
}

/// The alerts of alerting `rule`'s result `elements`, by label set (rule
/// labels and `alertname` applied); an error when two share a label set.
fn found_alerts(
    rule: &Rule,
    elements: Vec<Element>,
) -> Result<BTreeMap<Vec<Label>, Found>, String> {
    let RuleKind::Alerting {
        alert, annotations, ..
    } = &rule.kind
    else {
        return Ok(BTreeMap::new());
    };
    let mut found = BTreeMap::new();
    for (result_labels, value) in elements {
        let mut labels = without_name(result_labels.clone());
        for (name, template) in &rule.labels {
            set_label(&mut labels, name, template.expand(&result_labels, value));
        }
        set_label(&mut labels, "alertname", alert.clone());
        let annotations = annotations
            .iter()
            .map(|(name, template)| (name.clone(), template.expand(&result_labels, value)))
            .collect();
        if found
            .insert(labels.clone(), Found { value, annotations })
            .is_some()
        {
            return Err(format!(
                "the result has two elements with the labels {} once the alert's labels are \
                 applied",
                SeriesKey::from_labels(labels).map_or_else(|e| e.to_string(), |k| k.to_string())
            ));
        }
    }
    Ok(found)
}

/// Moves `alert` on at `t` (`present`: in this evaluation's result);
/// false when it is to be forgotten.
fn advance(alert: &mut Alert, present: bool, t: i64, for_ms: i64, keep_firing_for_ms: i64) -> bool {
    if !present {
        let expired = alert
            .resolved_at_ms
            .is_some_and(|resolved| t - resolved > RESOLVED_RETENTION_MS);
        if alert.state == AlertState::Pending || expired {
            return false;
        }
        if alert.state == AlertState::Firing {
            let since = *alert.keep_firing_since_ms.get_or_insert(t);
            if keep_firing_for_ms > 0 && t - since < keep_firing_for_ms {
                return true;
            }
            alert.state = AlertState::Inactive;
            alert.resolved_at_ms = Some(t);
        }
        return true;
    }
    if alert.state == AlertState::Pending && t - alert.active_at_ms >= for_ms {
        alert.state = AlertState::Firing;
        alert.fired_at_ms = Some(t);
    }
    true
}

fn needs_sending(alert: &Alert, t: i64, resend_delay_ms: i64) -> bool {
    if alert.state == AlertState::Pending {
        return false;
    }
    let Some(last_sent) = alert.last_sent_ms else {
        return true;
    };
    if alert
        .resolved_at_ms
        .is_some_and(|resolved| resolved > last_sent)
    {
        return true;
    }
    last_sent + resend_delay_ms <= t
}

/// `ALERTS` and `ALERTS_FOR_STATE` of every pending and firing alert.
fn alert_series<'a>(
    alerts: impl Iterator<Item = &'a Alert>,
) -> Result<Vec<(SeriesKey, f64)>, String> {
    let mut samples = Vec::new();
    for alert in alerts.filter(|a| a.state != AlertState::Inactive) {
        let mut labels = alert.labels.clone();
        set_label(
            &mut labels,
            METRIC_NAME_LABEL,
            "ALERTS_FOR_STATE".to_owned(),
        );
        let for_state = SeriesKey::from_labels(labels.clone()).map_err(|e| e.to_string())?;
        set_label(&mut labels, METRIC_NAME_LABEL, "ALERTS".to_owned());
        set_label(&mut labels, "alertstate", alert.state.as_str().to_owned());
        let alerts = SeriesKey::from_labels(labels).map_err(|e| e.to_string())?;
        samples.push((alerts, 1.0));
        samples.push((for_state, alert.active_at_ms as f64 / 1000.0));
    }
    Ok(samples)
}

fn without_name(mut labels: Vec<Label>) -> Vec<Label> {
    labels.retain(|label| &*label.name != METRIC_NAME_LABEL);
    labels
}

/// Sets `name` to `value` in sorted `labels`; an empty value removes it.
fn set_label(labels: &mut Vec<Label>, name: &str, value: String) {
    match labels.binary_search_by(|label| (*label.name).cmp(name)) {
        Ok(at) if value.is_empty() => {
            labels.remove(at);
        }
        Ok(at) => labels[at].value = value.into(),
        Err(_) if value.is_empty() => {}
        Err(at) => labels.insert(at, Label::new(name, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(state: AlertState) -> Alert {
        Alert {
            labels: Vec::new(),
            annotations: Vec::new(),
            state,
            value: 1.0,
            active_at_ms: 0,
            fired_at_ms: None,
            resolved_at_ms: None,
            last_sent_ms: None,
            keep_firing_since_ms: None,
        }
    }

    #[test]
    fn pending_fires_after_for_and_resolves_when_absent() {
        let mut a = alert(AlertState::Pending);
        assert!(advance(&mut a, true, 59_000, 60_000, 0));
        assert_eq!(a.state, AlertState::Pending);
        assert!(advance(&mut a, true, 60_000, 60_000, 0));
        assert_eq!((a.state, a.fired_at_ms), (AlertState::Firing, Some(60_000)));
        assert!(advance(&mut a, false, 120_000, 60_000, 0));
        assert_eq!(
            (a.state, a.resolved_at_ms),
            (AlertState::Inactive, Some(120_000))
        );
        assert!(advance(
            &mut a,
            false,
            120_000 + RESOLVED_RETENTION_MS,
            60_000,
            0
        ));
        assert!(!advance(
            &mut a,
            false,
            120_001 + RESOLVED_RETENTION_MS,
            60_000,
            0
        ));
    }

    #[test]
    fn absent_pending_alert_is_forgotten() {
        let mut a = alert(AlertState::Pending);
        assert!(!advance(&mut a, false, 1_000, 60_000, 0));
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert() {
        let mut a = alert(AlertState::Firing);
        assert!(advance(&mut a, false, 10_000, 0, 30_000));
        assert!(advance(&mut a, false, 39_999, 0, 30_000));
        assert_eq!(a.state, AlertState::Firing);
        assert!(advance(&mut a, false, 40_000, 0, 30_000));
        assert_eq!(a.state, AlertState::Inactive);
    }

    #[test]
    fn resends_after_the_delay_and_sends_resolution_once_due() {
        let mut a = alert(AlertState::Firing);
        assert!(needs_sending(&a, 0, 60_000));
        a.last_sent_ms = Some(0);
        assert!(!needs_sending(&a, 59_999, 60_000));
        assert!(needs_sending(&a, 60_000, 60_000));
        a.state = AlertState::Inactive;
        a.resolved_at_ms = Some(10_000);
        assert!(needs_sending(&a, 10_000, 60_000));
        assert!(!needs_sending(&alert(AlertState::Pending), 0, 60_000));
    }

    #[test]
    fn set_label_keeps_order_and_removes_empty() {
        let mut labels = vec![Label::new("a", "1"), Label::new("c", "3")];
        set_label(&mut labels, "b", "2".to_owned());
        set_label(&mut labels, "c", String::new());
        set_label(&mut labels, "a", "x".to_owned());
        assert_eq!(labels, vec![Label::new("a", "x"), Label::new("b", "2")]);
    }
}
