//! `GET /api/v1/rules` and `GET /api/v1/alerts` in the Prometheus HTTP
//! API's shapes (what Grafana's alerting view and `amtool`-style tools
//! read).
//!
//! Invariants: the engine is read under its lock on the blocking pool
//! (an evaluation in progress holds it); a server without rules answers
//! an empty list; `type` other than `alert` or `record` is a 400
//! `bad_data`. Times are RFC 3339 in UTC (`0001-01-01T00:00:00Z` before
//! the first evaluation, as Prometheus), durations in seconds, alert
//! values as Go's `%e` (`1e+00`), label and annotation maps sorted by
//! name.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::eval::{Alert, AlertState, GroupState, RuleEngine, RuleState};
use super::file::RuleKind;
use super::notify::push_string_map;
use super::template::go_e;
use super::{rfc3339, SharedEngine};
use crate::api::{push_json_string, push_metric};
use crate::server::{json_response, ApiError, AppState};

pub(in crate::server) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
}

/// Which rules `/api/v1/rules?type=` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleFilter {
    All,
    Alerting,
    Recording,
}

fn rule_filter(query: Option<&str>) -> Result<RuleFilter, ApiError> {
    let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes());
    let mut filter = RuleFilter::All;
    for (name, value) in pairs {
        if name == "type" {
            filter = match &*value {
                "alert" => RuleFilter::Alerting,
                "record" => RuleFilter::Recording,
                other => {
                    return Err(ApiError::bad_data(format!(
                        "type: {other:?} is not a rule type (alert or record)"
                    )))
                }
            };
        }
    }
    Ok(filter)
}

async fn rules(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let filter = rule_filter(query.as_deref())?;
    render(&state, move |engine| rules_json(engine, filter)).await
}

async fn alerts(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    render(&state, alerts_json).await
}

/// Renders the engine's state (or an empty engine's) on the blocking pool.
async fn render(
    state: &AppState,
    body: impl FnOnce(Option<&RuleEngine>) -> String + Send + 'static,
) -> Result<Response, ApiError> {
    let engine: Option<SharedEngine> = state.rules.get().cloned();
    let text = tokio::task::spawn_blocking(move || match engine {
        Some(engine) => body(Some(&engine.lock())),
        None => body(None),
    })
    .await
    .map_err(|e| ApiError::internal(format!("rendering the rules failed: {e}")))?;
    Ok(json_response(StatusCode::OK, text.into_bytes()))
}

fn groups(engine: Option<&RuleEngine>) -> &[GroupState] {
    engine.map_or(&[], RuleEngine::groups)
}

fn rules_json(engine: Option<&RuleEngine>, filter: RuleFilter) -> String {
    let mut out = String::from(r#"{"status":"success","data":{"groups":["#);
    for (i, group) in groups(engine).iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_group(&mut out, group, filter);
    }
    out.push_str("]}}");
    out
}

fn push_group(out: &mut String, group: &GroupState, filter: RuleFilter) {
    out.push_str(r#"{"name":"#);
    push_json_string(out, &group.name);
    out.push_str(r#","file":"#);
    push_json_string(out, &group.file.to_string_lossy());
    out.push_str(r#","rules":["#);
    let shown = group.rules.iter().filter(|state| {
        let alerting = matches!(state.rule.kind, RuleKind::Alerting { .. });
        match filter {
            RuleFilter::All => true,
            RuleFilter::Alerting => alerting,
            RuleFilter::Recording => !alerting,
        }
    });
    for (i, state) in shown.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_rule(out, state);
    }
    out.push_str(&format!(
        r#"],"interval":{},"limit":{},"evaluationTime":{},"lastEvaluation":"{}"}}"#,
        seconds(group.interval_ms),
        group.limit,
        group.evaluation_seconds,
        last_evaluation(group.last_evaluation_ms)
    ));
}

fn push_rule(out: &mut String, state: &RuleState) {
    let rule = &state.rule;
    out.push('{');
    if let RuleKind::Alerting {
        for_ms,
        keep_firing_for_ms,
        annotations,
        ..
    } = &rule.kind
    {
        out.push_str(&format!(
            r#""state":"{}","name":"#,
            state.alert_state().as_str()
        ));
        push_json_string(out, rule.name());
        out.push_str(r#","query":"#);
        push_json_string(out, &rule.expr_text);
        out.push_str(&format!(
            r#","duration":{},"keepFiringFor":{},"labels":"#,
            seconds(*for_ms),
            seconds(*keep_firing_for_ms)
        ));
        push_template_map(out, &rule.labels);
        out.push_str(r#","annotations":"#);
        push_template_map(out, annotations);
        out.push_str(r#","alerts":["#);
        push_alerts(out, state.alerts.values());
        out.push(']');
    } else {
        out.push_str(r#""name":"#);
        push_json_string(out, rule.name());
        out.push_str(r#","query":"#);
        push_json_string(out, &rule.expr_text);
        out.push_str(r#","labels":"#);
        push_template_map(out, &rule.labels);
    }
    out.push_str(&format!(r#","health":"{}""#, state.health.as_str()));
    if let Some(error) = &state.last_error {
        out.push_str(r#","lastError":"#);
        push_json_string(out, error);
    }
    let kind = match rule.kind {
        RuleKind::Alerting { .. } => "alerting",
        RuleKind::Recording { .. } => "recording",
    };
    out.push_str(&format!(
        r#","evaluationTime":{},"lastEvaluation":"{}","type":"{kind}"}}"#,
        state.evaluation_seconds,
        last_evaluation(state.last_evaluation_ms)
    ));
}

fn push_template_map(out: &mut String, pairs: &[(String, super::Template)]) {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(name, template)| (name.clone(), template.source().to_owned()))
        .collect();
    push_string_map(out, &pairs);
}

/// The pending and firing alerts among `alerts`.
fn push_alerts<'a>(out: &mut String, alerts: impl Iterator<Item = &'a Alert>) {
    let active = alerts.filter(|a| a.state != AlertState::Inactive);
    for (i, alert) in active.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"labels":"#);
        push_metric(out, &alert.labels);
        out.push_str(r#","annotations":"#);
        push_string_map(out, &alert.annotations);
        out.push_str(&format!(
            r#","state":"{}","activeAt":"{}","value":"{}"}}"#,
            alert.state.as_str(),
            rfc3339(alert.active_at_ms),
            go_e(alert.value, None)
        ));
    }
}

fn alerts_json(engine: Option<&RuleEngine>) -> String {
    let mut out = String::from(r#"{"status":"success","data":{"alerts":["#);
    let all = groups(engine)
        .iter()
        .flat_map(|group| &group.rules)
        .flat_map(|state| state.alerts.values());
    push_alerts(&mut out, all);
    out.push_str("]}}");
    out
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// A last evaluation time, Go's zero time before the first.
fn last_evaluation(ms: Option<i64>) -> String {
    ms.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), rfc3339)
}
