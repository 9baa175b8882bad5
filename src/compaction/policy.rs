//! The retention policy: how long raw samples and each rollup tier are
//! kept, with per-metric overrides, and the clock retention measures age
//! against; and the policy file, `strata.toml` in a data directory (see
//! docs/RETENTION.md for the file's documentation).
//!
//! Invariants (checked by [`RetentionPolicy::validate`]):
//! - tiers are sorted by strictly increasing `resolution_ms`, each a whole
//!   multiple of the previous one (a tier is rolled up from the next finer
//!   one) and of 1 s;
//! - every keep duration is positive (`None` keeps forever);
//! - an override names tiers the policy has, at most once each, and its
//!   pattern is a valid regex (anchored at both ends, like a PromQL `=~`
//!   matcher); each pattern is compiled once, when the override is built.
//!
//! The file is parsed into a TOML table and walked key by key: every error
//! names the file and the key (`retention.tier[1].keep`, indices from 0),
//! and a key the format does not know is an error, so that a typo never
//! leaves data kept forever (or deleted early) without a word.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::error::{Error, InputError, Result};
use crate::index::{MatchOp, Matcher};
use crate::series::METRIC_NAME_LABEL;

/// The policy file's name in a data directory.
pub const POLICY_FILE: &str = "strata.toml";

/// How long each tier of data is kept; see the module invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// How long raw samples are kept; `None`: forever.
    pub raw_keep_ms: Option<i64>,
    /// The rollup tiers, finest first.
    pub tiers: Vec<TierPolicy>,
    /// Per-metric exceptions; the first whose pattern matches a series'
    /// metric name applies.
    pub overrides: Vec<RetentionOverride>,
}

/// One rollup tier: buckets of `resolution_ms`, kept `keep_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierPolicy {
    pub resolution_ms: i64,
    /// `None`: forever.
    pub keep_ms: Option<i64>,
}

/// Keep durations for the series whose metric name matches `metric`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionOverride {
    /// A regex over the whole metric name, e.g. `debug_.*`.
    pub metric: MetricPattern,
    /// Replaces the policy's `raw_keep_ms` when `Some`.
    pub raw_keep_ms: Option<Option<i64>>,
    /// (tier resolution, keep) pairs replacing the policy's keep of that
    /// tier.
    pub tier_keep_ms: Vec<(i64, Option<i64>)>,
}

/// A regex over a whole metric name, compiled once when built. A pattern
/// that does not compile matches nothing and fails
/// [`RetentionPolicy::validate`]. Equal when the pattern texts are.
#[derive(Debug, Clone)]
pub struct MetricPattern {
    pattern: String,
    /// The compiled matcher, or why the pattern does not compile.
    compiled: std::result::Result<Matcher, String>,
}

impl MetricPattern {
    pub fn new(pattern: impl Into<String>) -> MetricPattern {
        let pattern = pattern.into();
        let compiled =
            Matcher::new(METRIC_NAME_LABEL, MatchOp::Regex, &pattern).map_err(|e| e.to_string());
        MetricPattern { pattern, compiled }
    }

    /// The pattern's text.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the whole `metric_name` matches (false for a pattern that
    /// does not compile).
    pub fn matches(&self, metric_name: &str) -> bool {
        self.compiled
            .as_ref()
            .is_ok_and(|matcher| matcher.matches(metric_name))
    }
}

impl PartialEq for MetricPattern {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for MetricPattern {}

impl From<&str> for MetricPattern {
    fn from(pattern: &str) -> Self {
        MetricPattern::new(pattern)
    }
}

impl From<String> for MetricPattern {
    fn from(pattern: String) -> Self {
        MetricPattern::new(pattern)
    }
}

impl fmt::Display for MetricPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

const SECOND_MS: i64 = 1_000;
const MINUTE_MS: i64 = 60 * SECOND_MS;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The units a duration is written with, largest first; PromQL's (a year
/// is 365 days), so a policy duration reads like a query range.
const DURATION_UNITS: [(&str, i64); 6] = [
    ("y", 365 * DAY_MS),
    ("w", 7 * DAY_MS),
    ("d", DAY_MS),
    ("h", HOUR_MS),
    ("m", MINUTE_MS),
    ("s", SECOND_MS),
];

/// The keep value that never deletes.
const FOREVER: &str = "forever";

impl Default for RetentionPolicy {
    /// Raw samples 15 days, 1-minute rollups 90 days, 1-hour rollups 2
    /// years (730 days): a month-long dashboard reads 1-minute buckets, a
    /// year-long one 1-hour buckets.
    fn default() -> Self {
        RetentionPolicy {
            raw_keep_ms: Some(15 * DAY_MS),
            tiers: vec![
                TierPolicy {
                    resolution_ms: MINUTE_MS,
                    keep_ms: Some(90 * DAY_MS),
                },
                TierPolicy {
                    resolution_ms: HOUR_MS,
                    keep_ms: Some(730 * DAY_MS),
                },
            ],
            overrides: Vec::new(),
        }
    }
}

/// What retention measures age against. Data is deleted when it is older
/// than its keep duration at `min(clock, newest sample)`: a writer that
/// stops does not lose its last days of data as the wall clock moves on,
/// and a database of old (imported) data keeps it.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// A clock tests (or an offline `strata compact --now`) set.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock reading `now_ms` until [`Clock::set`].
    pub fn manual(now_ms: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(now_ms)))
    }

    /// Moves a manual clock; does nothing to the system clock.
    pub fn set(&self, now_ms: i64) {
        if let Clock::Manual(now) = self {
            now.store(now_ms, Ordering::Relaxed);
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Clock::Manual(now) => now.load(Ordering::Relaxed),
        }
    }
}

/// A policy file that cannot be used: the file, the key (`None` for a
/// file that is not TOML at all) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFileError {
    pub path: PathBuf,
    pub key: Option<String>,
    pub problem: String,
}

impl fmt::Display for PolicyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {key}: {}", self.path.display(), self.problem),
            None => write!(f, "{}: {}", self.path.display(), self.problem),
        }
    }
}

impl std::error::Error for PolicyFileError {}

impl From<PolicyFileError> for Error {
    fn from(error: PolicyFileError) -> Self {
        InputError::BadOption(format!("retention policy {error}")).into()
    }
}

/// A problem found by [`RetentionPolicy::check`]: the key in the policy
/// file's terms and what is wrong.
struct Problem {
    key: String,
    problem: String,
}

impl RetentionPolicy {
    /// Checks the module invariants; the message names the policy file key
    /// that is wrong (`retention.tier[1].resolution: ...`).
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.check()
            .map_err(|p| format!("{}: {}", p.key, p.problem))
    }

    fn check(&self) -> Walked<()> {
        let positive = |key: String, keep: Option<i64>| match keep {
            Some(ms) if ms <= 0 => problem(key, format!("must be positive, is {ms} ms")),
            _ => Ok(()),
        };
        positive("retention.raw".into(), self.raw_keep_ms)?;
        let mut finer: Option<i64> = None;
        for (index, tier) in self.tiers.iter().enumerate() {
            let key = format!("retention.tier[{index}].resolution");
            let resolution = tier.resolution_ms;
            if resolution <= 0 || resolution % SECOND_MS != 0 {
                return problem(
                    key,
                    format!("{resolution} ms is not a positive whole number of seconds"),
                );
            }
            if let Some(finer) = finer {
                if resolution <= finer {
                    return problem(
                        key,
                        format!(
                            "{} is not coarser than the tier before it, {}: tiers go from fine to coarse, each resolution once",
                            format_duration(resolution),
                            format_duration(finer)
                        ),
                    );
                }
                if resolution % finer != 0 {
                    return problem(
                        key,
                        format!(
                            "{} is not a whole multiple of the tier before it, {} (a tier is rolled up from the next finer one)",
                            format_duration(resolution),
                            format_duration(finer)
                        ),
                    );
                }
            }
            positive(format!("retention.tier[{index}].keep"), tier.keep_ms)?;
            finer = Some(resolution);
        }
        for (index, rule) in self.overrides.iter().enumerate() {
            let key = |field: &str| format!("retention.override[{index}].{field}");
            if let Err(reason) = &rule.metric.compiled {
                return problem(key("metric"), reason.clone());
            }
            if let Some(keep) = rule.raw_keep_ms {
                positive(key("raw"), keep)?;
            }
            for (position, &(resolution, keep)) in rule.tier_keep_ms.iter().enumerate() {
                let tier_key = key(&format!("keep.{}", format_duration(resolution)));
                if !self.tiers.iter().any(|t| t.resolution_ms == resolution) {
                    return problem(
                        tier_key,
                        format!(
                            "the policy has no {} tier (its tiers: {})",
                            format_duration(resolution),
                            self.tier_names()
                        ),
                    );
                }
                if rule.tier_keep_ms[..position]
                    .iter()
                    .any(|&(earlier, _)| earlier == resolution)
                {
                    return problem(tier_key, "is given twice");
                }
                positive(tier_key, keep)?;
            }
        }
        Ok(())
    }

    fn tier_names(&self) -> String {
        if self.tiers.is_empty() {
            return "none".into();
        }
        let names: Vec<String> = self
            .tiers
            .iter()
            .map(|t| format_duration(t.resolution_ms))
            .collect();
        names.join(", ")
    }

    /// How long the data of series `metric_name` at `resolution_ms` (0:
    /// raw samples) is kept; `None`: forever. The first override whose
    /// pattern matches the whole name decides what it sets; the rest comes
    /// from the policy. A resolution that is none of the policy's tiers is
    /// kept forever (`None`): the policy says nothing about it.
    pub fn keep_ms_for(&self, metric_name: &str, resolution_ms: i64) -> Option<i64> {
        let rule = self
            .overrides
            .iter()
            .find(|rule| rule.metric.matches(metric_name));
        self.keep_ms_under(rule, resolution_ms)
    }

    /// Every keep duration some series may get at `resolution_ms` (0: raw
    /// samples): the policy's own, then each override's.
    pub fn keeps_ms(&self, resolution_ms: i64) -> impl Iterator<Item = Option<i64>> + '_ {
        std::iter::once(None)
            .chain(self.overrides.iter().map(Some))
            .map(move |rule| self.keep_ms_under(rule, resolution_ms))
    }

    /// The keep at `resolution_ms` for series `rule` applies to (`None`:
    /// no override applies).
    fn keep_ms_under(&self, rule: Option<&RetentionOverride>, resolution_ms: i64) -> Option<i64> {
        if resolution_ms == 0 {
            return match rule.and_then(|rule| rule.raw_keep_ms) {
                Some(keep) => keep,
                None => self.raw_keep_ms,
            };
        }
        let overridden = rule.and_then(|rule| {
            rule.tier_keep_ms
                .iter()
                .find(|&&(resolution, _)| resolution == resolution_ms)
        });
        match overridden {
            Some(&(_, keep)) => keep,
            None => self
                .tiers
                .iter()
                .find(|tier| tier.resolution_ms == resolution_ms)
                .and_then(|tier| tier.keep_ms),
        }
    }

    /// Reads `dir/strata.toml`; `None` when there is none (the caller
    /// uses the default).
    pub fn load(dir: &Path) -> Result<Option<RetentionPolicy>> {
        let path = dir.join(POLICY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(Self::from_toml_str(&text, &path)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    /// Reads a policy file at `path` (which must exist).
    pub fn load_file(path: &Path) -> Result<RetentionPolicy> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        Ok(Self::from_toml_str(&text, path)?)
    }

    /// Parses a policy file's text; `path` is only named in errors. Keys
    /// left out take the default's values: `raw` 15d, `tier` the 1m and
    /// 1h tiers (`tier = []`: no rollup tiers); no overrides.
    pub fn from_toml_str(
        text: &str,
        path: &Path,
    ) -> std::result::Result<RetentionPolicy, PolicyFileError> {
        let fail = |key: Option<&str>, problem: String| PolicyFileError {
            path: path.to_path_buf(),
            key: key.map(str::to_owned),
            problem,
        };
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| fail(None, format!("not valid TOML: {e}")))?;
        let mut policy = RetentionPolicy::default();
        for (key, value) in &table {
            if key != "retention" {
                return Err(fail(Some(key), unknown_key(&["retention"])));
            }
            retention(value, &mut policy).map_err(|p| fail(Some(&p.key), p.problem))?;
        }
        policy.check().map_err(|p| fail(Some(&p.key), p.problem))?;
        Ok(policy)
    }

    /// The policy as a policy file that [`RetentionPolicy::from_toml_str`]
    /// reads back equal. Every key is written, so the file does not depend
    /// on the defaults.
    pub fn to_toml_string(&self) -> String {
        let mut out = String::from("[retention]\n");
        out.push_str(&format!("raw = \"{}\"\n", format_keep(self.raw_keep_ms)));
        if self.tiers.is_empty() {
            out.push_str("tier = []\n");
        }
        for tier in &self.tiers {
            out.push_str(&format!(
                "\n[[retention.tier]]\nresolution = \"{}\"\nkeep = \"{}\"\n",
                format_duration(tier.resolution_ms),
                format_keep(tier.keep_ms)
            ));
        }
        for rule in &self.overrides {
            out.push_str(&format!(
                "\n[[retention.override]]\nmetric = {}\n",
                toml::Value::String(rule.metric.as_str().to_owned())
            ));
            if let Some(keep) = rule.raw_keep_ms {
                out.push_str(&format!("raw = \"{}\"\n", format_keep(keep)));
            }
            if !rule.tier_keep_ms.is_empty() {
                let pairs: Vec<String> = rule
                    .tier_keep_ms
                    .iter()
                    .map(|&(resolution, keep)| {
                        format!(
                            "{} = \"{}\"",
                            format_duration(resolution),
                            format_keep(keep)
                        )
                    })
                    .collect();
                out.push_str(&format!("keep = {{ {} }}\n", pairs.join(", ")));
            }
        }
        out
    }
}

impl fmt::Display for RetentionPolicy {
    /// One line: `raw 15d, 1m 90d, 1h 2y; override debug_.*: raw 1d`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raw {}", format_keep(self.raw_keep_ms))?;
        for tier in &self.tiers {
            write!(
                f,
                ", {} {}",
                format_duration(tier.resolution_ms),
                format_keep(tier.keep_ms)
            )?;
        }
        for (index, rule) in self.overrides.iter().enumerate() {
            f.write_str(if index == 0 { "; override " } else { "; " })?;
            write!(f, "{}:", rule.metric)?;
            let mut first = true;
            let raw = rule.raw_keep_ms.map(|keep| (0, keep));
            for (resolution, keep) in raw.into_iter().chain(rule.tier_keep_ms.iter().copied()) {
                let name = match resolution {
                    0 => "raw".to_owned(),
                    r => format_duration(r),
                };
                let separator = if first { " " } else { ", " };
                write!(f, "{separator}{name} {}", format_keep(keep))?;
                first = false;
            }
        }
        Ok(())
    }
}

type Walked<T> = std::result::Result<T, Problem>;

fn problem<T>(key: impl Into<String>, problem: impl Into<String>) -> Walked<T> {
    Err(Problem {
        key: key.into(),
        problem: problem.into(),
    })
}

fn unknown_key(known: &[&str]) -> String {
    format!("unknown key (the keys here are: {})", known.join(", "))
}

fn type_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date-time",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

fn as_table<'a>(value: &'a toml::Value, key: &str) -> Walked<&'a toml::Table> {
    match value {
        toml::Value::Table(table) => Ok(table),
        other => problem(key, format!("must be a table, is {}", type_name(other))),
    }
}

fn as_str<'a>(value: &'a toml::Value, key: &str, expected: &str) -> Walked<&'a str> {
    match value {
        toml::Value::String(text) => Ok(text),
        other => problem(
            key,
            format!("must be a string ({expected}), is {}", type_name(other)),
        ),
    }
}

const DURATION_HELP: &str =
    "a PromQL duration such as \"30s\", \"15m\", \"12h\", \"15d\", \"2w\", \"2y\" (a year is 365 days)";

/// A duration value (`"15d"`); `forever_allowed` also takes `"forever"`
/// (`None`).
fn duration_value(value: &toml::Value, key: &str, forever_allowed: bool) -> Walked<Option<i64>> {
    let expected = if forever_allowed {
        format!("{DURATION_HELP}, or \"{FOREVER}\"")
    } else {
        DURATION_HELP.to_owned()
    };
    let text = as_str(value, key, &expected)?;
    if forever_allowed && text == FOREVER {
        return Ok(None);
    }
    match parse_duration(text) {
        Some(ms) if ms > 0 => Ok(Some(ms)),
        _ => problem(
            key,
            format!("{text:?} is not a positive duration: expected {expected}"),
        ),
    }
}

/// Walks the `retention` table of a policy file into `policy`.
fn retention(value: &toml::Value, policy: &mut RetentionPolicy) -> Walked<()> {
    const KEYS: [&str; 3] = ["raw", "tier", "override"];
    for (key, value) in as_table(value, "retention")? {
        let path = format!("retention.{key}");
        match key.as_str() {
            "raw" => policy.raw_keep_ms = duration_value(value, &path, true)?,
            "tier" => {
                policy.tiers = array_of_tables(value, &path)?
                    .enumerate()
                    .map(|(index, table)| tier(table?, &format!("{path}[{index}]")))
                    .collect::<Walked<_>>()?;
            }
            "override" => {
                policy.overrides = array_of_tables(value, &path)?
                    .enumerate()
                    .map(|(index, table)| override_rule(table?, &format!("{path}[{index}]")))
                    .collect::<Walked<_>>()?;
            }
            _ => return problem(path, unknown_key(&KEYS)),
        }
    }
    Ok(())
}

/// The tables of an array of tables (`[[retention.tier]]`, or
/// `tier = []`).
fn array_of_tables<'a>(
    value: &'a toml::Value,
    key: &str,
) -> Walked<impl Iterator<Item = Walked<&'a toml::Table>> + use<'a>> {
    let toml::Value::Array(items) = value else {
        return problem(
            key,
            format!(
                "must be an array of tables ([[{key}]] sections), is {}",
                type_name(value)
            ),
        );
    };
    let key = key.to_owned();
    Ok(items
        .iter()
        .enumerate()
        .map(move |(index, item)| as_table(item, &format!("{key}[{index}]"))))
}

fn tier(table: &toml::Table, key: &str) -> Walked<TierPolicy> {
    const KEYS: [&str; 2] = ["resolution", "keep"];
    let mut resolution_ms = None;
    let mut keep_ms = None;
    for (name, value) in table {
        let path = format!("{key}.{name}");
        match name.as_str() {
            "resolution" => resolution_ms = duration_value(value, &path, false)?,
            "keep" => keep_ms = Some(duration_value(value, &path, true)?),
            _ => return problem(path, unknown_key(&KEYS)),
        }
    }
    let Some(resolution_ms) = resolution_ms else {
        return problem(
            key,
            format!("missing key resolution (the bucket width: {DURATION_HELP})"),
        );
    };
    let Some(keep_ms) = keep_ms else {
        return problem(
            key,
            format!("missing key keep ({DURATION_HELP}, or \"{FOREVER}\")"),
        );
    };
    Ok(TierPolicy {
        resolution_ms,
        keep_ms,
    })
}

fn override_rule(table: &toml::Table, key: &str) -> Walked<RetentionOverride> {
    const KEYS: [&str; 3] = ["metric", "raw", "keep"];
    let mut metric = None;
    let mut raw_keep_ms = None;
    let mut tier_keep_ms = Vec::new();
    for (name, value) in table {
        let path = format!("{key}.{name}");
        match name.as_str() {
            "metric" => {
                metric = Some(MetricPattern::new(as_str(
                    value,
                    &path,
                    "a regex over the whole metric name",
                )?));
            }
            "raw" => raw_keep_ms = Some(duration_value(value, &path, true)?),
            "keep" => {
                let keeps = match value {
                    toml::Value::Table(keeps) => keeps,
                    other => {
                        return problem(
                            path,
                            format!(
                                "must be a table of tier resolution = keep, like {{ 1m = \"7d\" }}, is {}",
                                type_name(other)
                            ),
                        )
                    }
                };
                for (resolution, keep) in keeps {
                    let keep_path = format!("{path}.{resolution}");
                    let Some(resolution_ms) = parse_duration(resolution).filter(|&ms| ms > 0)
                    else {
                        return problem(
                            keep_path,
                            format!(
                                "{resolution:?} is not a tier resolution: expected {DURATION_HELP}"
                            ),
                        );
                    };
                    tier_keep_ms.push((resolution_ms, duration_value(keep, &keep_path, true)?));
                }
                tier_keep_ms.sort_by_key(|&(resolution_ms, _)| resolution_ms);
            }
            _ => return problem(path, unknown_key(&KEYS)),
        }
    }
    let Some(metric) = metric else {
        return problem(
            key,
            "missing key metric (a regex over the whole metric name, like \"debug_.*\")",
        );
    };
    if raw_keep_ms.is_none() && tier_keep_ms.is_empty() {
        return problem(key, "sets nothing: give raw, keep (per tier), or both");
    }
    Ok(RetentionOverride {
        metric,
        raw_keep_ms,
        tier_keep_ms,
    })
}

/// A PromQL duration (`15d`, `1h30m`) in milliseconds; `None` when it is
/// not one.
fn parse_duration(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match crate::parse_expr(&format!("x[{text}]")) {
        Ok(crate::Expr::Matrix { range_ms, .. }) => Some(range_ms),
        _ => None,
    }
}

/// A duration in its largest whole unit: `90d`, `2y`, `1m`, `1500ms`.
pub fn format_duration(ms: i64) -> String {
    DURATION_UNITS
        .iter()
        .find(|(_, unit_ms)| ms != 0 && ms % unit_ms == 0)
        .map_or_else(
            || format!("{ms}ms"),
            |(unit, unit_ms)| format!("{}{unit}", ms / unit_ms),
        )
}

/// A keep duration, or `forever`.
pub fn format_keep(keep_ms: Option<i64>) -> String {
    keep_ms.map_or_else(|| FOREVER.to_owned(), format_duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PATH: &str = "/data/strata.toml";

    fn parse(text: &str) -> std::result::Result<RetentionPolicy, PolicyFileError> {
        RetentionPolicy::from_toml_str(text, Path::new(PATH))
    }

    /// The error's `file: key: problem` text.
    fn error(text: &str) -> String {
        match parse(text) {
            Ok(policy) => panic!("accepted {text:?} as {policy:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn units_are_promql_units() {
        for (unit, ms) in DURATION_UNITS {
            assert_eq!(parse_duration(&format!("1{unit}")), Some(ms), "{unit}");
        }
        assert_eq!(parse_duration("1h30m"), Some(90 * MINUTE_MS));
        assert_eq!(parse_duration("500ms"), Some(500));
        for bad in ["", "15", "d", "1x", "-1d", "1d ", "1 d", "1m1h", "x[1d]"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        assert_eq!(format_duration(90 * DAY_MS), "90d");
        assert_eq!(format_duration(730 * DAY_MS), "2y");
        assert_eq!(format_duration(14 * DAY_MS), "2w");
        assert_eq!(format_duration(90 * MINUTE_MS), "90m");
        assert_eq!(format_duration(1500), "1500ms");
        assert_eq!(format_keep(None), "forever");
    }

    #[test]
    fn parses_the_documented_example() {
        let policy = parse(
            r#"
            [retention]
            raw = "15d"
            [[retention.tier]]
            resolution = "1m"
            keep = "90d"
            [[retention.tier]]
            resolution = "1h"
            keep = "2y"
            [[retention.override]]
            metric = "debug_.*"
            raw = "1d"
            [[retention.override]]
            metric = "slo_.*|sla_.*"
            raw = "forever"
            keep = { 1h = "forever", 1m = "1y" }
            "#,
        )
        .unwrap();
        assert_eq!(policy.raw_keep_ms, Some(15 * DAY_MS));
        assert_eq!(policy.tiers, RetentionPolicy::default().tiers);
        assert_eq!(policy.overrides.len(), 2);
        assert_eq!(policy.overrides[0].metric.as_str(), "debug_.*");
        assert_eq!(policy.overrides[0].raw_keep_ms, Some(Some(DAY_MS)));
        assert!(policy.overrides[0].tier_keep_ms.is_empty());
        assert_eq!(policy.overrides[1].raw_keep_ms, Some(None));
        // Sorted by resolution, whatever the file's order.
        assert_eq!(
            policy.overrides[1].tier_keep_ms,
            [(MINUTE_MS, Some(365 * DAY_MS)), (HOUR_MS, None)]
        );
        assert_eq!(
            policy.to_string(),
            "raw 15d, 1m 90d, 1h 2y; override debug_.*: raw 1d; slo_.*|sla_.*: raw forever, 1m 1y, 1h forever"
        );
    }

    #[test]
    fn left_out_keys_take_the_default() {
        assert_eq!(parse("").unwrap(), RetentionPolicy::default());
        assert_eq!(parse("[retention]").unwrap(), RetentionPolicy::default());
        let policy = parse("[retention]\nraw = \"forever\"").unwrap();
        assert_eq!(policy.raw_keep_ms, None);
        assert_eq!(policy.tiers, RetentionPolicy::default().tiers);
        let policy = parse("[retention]\ntier = []").unwrap();
        assert!(policy.tiers.is_empty());
        assert_eq!(policy.raw_keep_ms, Some(15 * DAY_MS));
    }

    #[test]
    fn every_error_names_the_file_the_key_and_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("[retention", "/data/strata.toml: not valid TOML"),
            ("retension = 1", "strata.toml: retension: unknown key (the keys here are: retention)"),
            ("retention = 5", "retention: must be a table, is an integer"),
            ("[retention]\nraw_keep = \"1d\"", "retention.raw_keep: unknown key (the keys here are: raw, tier, override)"),
            ("[retention]\nraw = 15", "retention.raw: must be a string (a PromQL duration"),
            ("[retention]\nraw = \"15 days\"", "retention.raw: \"15 days\" is not a positive duration: expected a PromQL duration such as"),
            ("[retention]\nraw = \"0d\"", "retention.raw: \"0d\" is not a positive duration"),
            ("[retention]\nraw = \"999999999y\"", "retention.raw: \"999999999y\" is not a positive duration"),
            ("[retention]\ntier = 3", "retention.tier: must be an array of tables ([[retention.tier]] sections), is an integer"),
            ("[retention]\ntier = [3]", "retention.tier[0]: must be a table, is an integer"),
            ("[[retention.tier]]\nkeep = \"1d\"", "retention.tier[0]: missing key resolution"),
            ("[[retention.tier]]\nresolution = \"1m\"", "retention.tier[0]: missing key keep"),
            ("[[retention.tier]]\nresolution = \"1m\"\nkeep = \"1d\"\nkepe = \"1d\"", "retention.tier[0].kepe: unknown key (the keys here are: resolution, keep)"),
            ("[[retention.tier]]\nresolution = \"forever\"\nkeep = \"1d\"", "retention.tier[0].resolution: \"forever\" is not a positive duration"),
            ("[[retention.tier]]\nresolution = \"1500ms\"\nkeep = \"1d\"", "retention.tier[0].resolution: 1500 ms is not a positive whole number of seconds"),
            (
                "[[retention.tier]]\nresolution = \"1m\"\nkeep = \"1d\"\n[[retention.tier]]\nresolution = \"60s\"\nkeep = \"2d\"",
                "retention.tier[1].resolution: 1m is not coarser than the tier before it, 1m",
            ),
            (
                "[[retention.tier]]\nresolution = \"1h\"\nkeep = \"1d\"\n[[retention.tier]]\nresolution = \"1m\"\nkeep = \"2d\"",
                "retention.tier[1].resolution: 1m is not coarser than the tier before it, 1h",
            ),
            (
                "[[retention.tier]]\nresolution = \"1m\"\nkeep = \"1d\"\n[[retention.tier]]\nresolution = \"90s\"\nkeep = \"2d\"",
                "retention.tier[1].resolution: 90s is not a whole multiple of the tier before it, 1m",
            ),
            ("[[retention.override]]\nraw = \"1d\"", "retention.override[0]: missing key metric"),
            ("[[retention.override]]\nmetric = \"x\"", "retention.override[0]: sets nothing"),
            ("[[retention.override]]\nmetric = 1\nraw = \"1d\"", "retention.override[0].metric: must be a string (a regex over the whole metric name), is an integer"),
            ("[[retention.override]]\nmetric = \"debug_(\"\nraw = \"1d\"", "retention.override[0].metric: invalid regular expression \"debug_(\""),
            ("[[retention.override]]\nmetric = \"x\"\nraw = \"soon\"", "retention.override[0].raw: \"soon\" is not a positive duration"),
            ("[[retention.override]]\nmetric = \"x\"\nkeep = \"1d\"", "retention.override[0].keep: must be a table of tier resolution = keep"),
            ("[[retention.override]]\nmetric = \"x\"\nkeep = { 5m = \"1d\" }", "retention.override[0].keep.5m: the policy has no 5m tier (its tiers: 1m, 1h)"),
            ("[[retention.override]]\nmetric = \"x\"\nkeep = { \"1 m\" = \"1d\" }", "retention.override[0].keep.1 m: \"1 m\" is not a tier resolution"),
            ("[[retention.override]]\nmetric = \"x\"\nkeep = { 1m = \"1d\", 60s = \"2d\" }", "retention.override[0].keep.1m: is given twice"),
            ("[[retention.override]]\nmetric = \"x\"\nkeep = { 1m = \"never\" }", "retention.override[0].keep.1m: \"never\" is not a positive duration"),
            ("[[retention.override]]\nmetric = \"x\"\nraw = \"1d\"\nname = \"y\"", "retention.override[0].name: unknown key (the keys here are: metric, raw, keep)"),
            ("[retention]\ntier = []\n[[retention.override]]\nmetric = \"x\"\nkeep = { 1m = \"1d\" }", "the policy has no 1m tier (its tiers: none)"),
        ];
        for (text, expected) in cases {
            let message = error(text);
            assert!(message.starts_with(PATH), "{text:?}: {message}");
            assert!(message.contains(expected), "{text:?}: {message}");
        }
        // Through the crate's error type.
        let error: Error = parse("[retention]\nraw = 15").unwrap_err().into();
        assert!(
            error
                .to_string()
                .contains("/data/strata.toml: retention.raw: must be a string"),
            "{error}"
        );
    }

    #[test]
    fn validate_checks_policies_built_in_code() {
        let tier = |resolution_ms, keep_ms| TierPolicy {
            resolution_ms,
            keep_ms,
        };
        let with_tiers = |tiers: Vec<TierPolicy>| RetentionPolicy {
            tiers,
            ..RetentionPolicy::default()
        };
        assert_eq!(RetentionPolicy::default().validate(), Ok(()));
        // Two 1 s tiers: the skeleton's check let them through.
        let twice = with_tiers(vec![tier(1_000, None), tier(1_000, None)]);
        assert!(twice.validate().unwrap_err().contains("not coarser"));
        let twice = with_tiers(vec![tier(MINUTE_MS, None), tier(MINUTE_MS, None)]);
        assert!(twice.validate().unwrap_err().contains("not coarser"));
        assert!(with_tiers(vec![tier(0, None)]).validate().is_err());
        assert!(with_tiers(vec![tier(-60_000, None)]).validate().is_err());
        assert!(with_tiers(vec![tier(MINUTE_MS, Some(0))])
            .validate()
            .unwrap_err()
            .starts_with("retention.tier[0].keep: must be positive"));
        let negative_raw = RetentionPolicy {
            raw_keep_ms: Some(-1),
            ..RetentionPolicy::default()
        };
        assert!(negative_raw.validate().is_err());
        let bad_override = RetentionPolicy {
            overrides: vec![RetentionOverride {
                metric: "ok".into(),
                raw_keep_ms: Some(Some(0)),
                tier_keep_ms: Vec::new(),
            }],
            ..RetentionPolicy::default()
        };
        assert!(bad_override
            .validate()
            .unwrap_err()
            .starts_with("retention.override[0].raw: must be positive"));
    }

    #[test]
    fn first_matching_override_decides_anchored() {
        let policy = parse(
            r#"
            [[retention.override]]
            metric = "debug_.*"
            raw = "1d"
            [[retention.override]]
            metric = "debug_keep|slo"
            raw = "forever"
            keep = { 1h = "forever" }
            [[retention.override]]
            metric = "slo"
            keep = { 1m = "7d" }
            "#,
        )
        .unwrap();
        let default = RetentionPolicy::default();
        // Not matching: the policy's values, at every tier; an unknown
        // resolution is kept forever.
        for name in ["http_requests_total", "xdebug_a", "slo_total"] {
            for resolution in [0, MINUTE_MS, HOUR_MS, 5 * MINUTE_MS] {
                assert_eq!(
                    policy.keep_ms_for(name, resolution),
                    default.keep_ms_for(name, resolution),
                    "{name} {resolution}"
                );
            }
        }
        assert_eq!(default.keep_ms_for("x", 0), Some(15 * DAY_MS));
        assert_eq!(default.keep_ms_for("x", HOUR_MS), Some(730 * DAY_MS));
        assert_eq!(default.keep_ms_for("x", 5 * MINUTE_MS), None);
        // The first match decides what it sets; the rest is the policy's.
        assert_eq!(policy.keep_ms_for("debug_x", 0), Some(DAY_MS));
        assert_eq!(policy.keep_ms_for("debug_x", MINUTE_MS), Some(90 * DAY_MS));
        assert_eq!(policy.keep_ms_for("debug_keep", 0), Some(DAY_MS));
        assert_eq!(
            policy.keep_ms_for("debug_keep", HOUR_MS),
            Some(730 * DAY_MS)
        );
        assert_eq!(policy.keep_ms_for("slo", 0), None);
        assert_eq!(policy.keep_ms_for("slo", HOUR_MS), None);
        // The third rule never applies to "slo": the second matched first.
        assert_eq!(policy.keep_ms_for("slo", MINUTE_MS), Some(90 * DAY_MS));
    }

    #[test]
    fn load_reads_the_data_directory_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(RetentionPolicy::load(dir.path()).unwrap(), None);
        let path = dir.path().join(POLICY_FILE);
        std::fs::write(&path, "[retention]\nraw = \"2d\"\n").unwrap();
        let policy = RetentionPolicy::load(dir.path()).unwrap().unwrap();
        assert_eq!(policy.raw_keep_ms, Some(2 * DAY_MS));
        assert_eq!(RetentionPolicy::load_file(&path).unwrap(), policy);
        std::fs::write(&path, "[retention]\nraw = \"2\"\n").unwrap();
        let error = RetentionPolicy::load(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains(&format!("{}: retention.raw:", path.display())),
            "{error}"
        );
        assert!(RetentionPolicy::load_file(&dir.path().join("missing.toml")).is_err());
    }

    #[test]
    fn the_default_round_trips() {
        let default = RetentionPolicy::default();
        let text = default.to_toml_string();
        assert_eq!(
            text,
            "[retention]\nraw = \"15d\"\n\n[[retention.tier]]\nresolution = \"1m\"\nkeep = \"90d\"\n\n[[retention.tier]]\nresolution = \"1h\"\nkeep = \"2y\"\n"
        );
        assert_eq!(parse(&text).unwrap(), default);
    }

    fn keep() -> impl Strategy<Value = Option<i64>> {
        prop_oneof![
            Just(None),
            (1i64..=1_000_000_000_000).prop_map(Some),
            (1i64..=50, 0usize..DURATION_UNITS.len())
                .prop_map(|(n, unit)| Some(n * DURATION_UNITS[unit].1)),
        ]
    }

    /// Valid policies: tiers from multiplying factors, overrides naming
    /// some of them, patterns with characters TOML must escape.
    fn policy() -> impl Strategy<Value = RetentionPolicy> {
        let tiers = (
            1i64..=120,
            proptest::collection::vec((2i64..=30, keep()), 0..4),
            keep(),
        )
            .prop_map(|(first_s, factors, first_keep)| {
                let mut resolution = first_s * SECOND_MS;
                let mut tiers = vec![TierPolicy {
                    resolution_ms: resolution,
                    keep_ms: first_keep,
                }];
                for (factor, keep_ms) in factors {
                    resolution *= factor;
                    tiers.push(TierPolicy {
                        resolution_ms: resolution,
                        keep_ms,
                    });
                }
                tiers
            });
        let with_no_tiers = prop_oneof![Just(false), Just(true)];
        (keep(), tiers, with_no_tiers)
            .prop_flat_map(|(raw_keep_ms, tiers, no_tiers)| {
                let tiers = if no_tiers { Vec::new() } else { tiers };
                let resolutions: Vec<i64> = tiers.iter().map(|t| t.resolution_ms).collect();
                let rule = (
                    "[a-z_\"'\\\\.]{1,8}(\\.\\*)?",
                    proptest::option::of(keep()),
                    proptest::sample::subsequence(resolutions.clone(), 0..=resolutions.len()),
                    proptest::collection::vec(keep(), resolutions.len()),
                )
                    .prop_filter_map(
                        "sets something",
                        |(pattern, raw, chosen, keeps)| {
                            let pattern = pattern.replace('\\', "\\\\");
                            let tier_keep_ms: Vec<(i64, Option<i64>)> =
                                chosen.into_iter().zip(keeps).collect();
                            (raw.is_some() || !tier_keep_ms.is_empty()).then(|| RetentionOverride {
                                metric: pattern.into(),
                                raw_keep_ms: raw,
                                tier_keep_ms,
                            })
                        },
                    );
                (
                    Just(raw_keep_ms),
                    Just(tiers),
                    proptest::collection::vec(rule, 0..3),
                )
            })
            .prop_map(|(raw_keep_ms, tiers, overrides)| RetentionPolicy {
                raw_keep_ms,
                tiers,
                overrides,
            })
    }

    proptest! {
        #[test]
        fn random_policies_round_trip(policy in policy()) {
            prop_assert_eq!(policy.validate(), Ok(()));
            let text = policy.to_toml_string();
            let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            // Reading sorts an override's keep table by resolution.
            let mut expected = policy.clone();
            for rule in &mut expected.overrides {
                rule.tier_keep_ms.sort_by_key(|&(resolution_ms, _)| resolution_ms);
            }
            prop_assert_eq!(parsed, expected, "{}", text);
        }
    }
}
