//! Prometheus rule files (YAML) parsed into [`RuleGroup`]s: `yaml-rust2`
//! gives a tree that is walked by hand so that every error names the file,
//! the group, the rule (index and name) and the problem.
//!
//! Invariants (promtool's checks): unknown keys are errors; group names
//! are unique within a file; a rule is a recording rule (`record`) or an
//! alerting rule (`alert`), never both; `record` is a valid metric name;
//! label and annotation names are valid label names; `expr` parses
//! ([`crate::parse_expr`]'s message is kept); `for`, `keep_firing_for` and
//! `annotations` belong to alerting rules only; alert labels and
//! annotations are templates of the supported subset ([`Template`]).
//! Every error of a file is reported, not only the first.

use std::fmt;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use super::template::Template;
use crate::Expr;

/// One group: rules evaluated in order, every `interval_ms`.
#[derive(Debug, Clone)]
pub struct RuleGroup {
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    pub interval_ms: i64,
    /// Most series (recording) or alerts (alerting) a rule may produce;
    /// 0 is no limit. More is a rule error, nothing of it kept.
    pub limit: usize,
    pub rules: Vec<Rule>,
}

/// One rule of a group.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The expression as written.
    pub expr_text: String,
    pub expr: Expr,
    /// Labels added to (or, with an empty value, removed from) each result.
    pub labels: Vec<(String, Template)>,
    pub kind: RuleKind,
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    /// Writes the result as series named `record`.
    Recording { record: String },
    /// Turns each result element into an alert.
    Alerting {
        alert: String,
        /// How long an alert stays pending before it fires.
        for_ms: i64,
        /// How long a firing alert keeps firing after its condition is gone.
        keep_firing_for_ms: i64,
        annotations: Vec<(String, Template)>,
    },
}

impl Rule {
    /// The `record` or `alert` name.
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording { record } => record,
            RuleKind::Alerting { alert, .. } => alert,
        }
    }
}

/// A problem in a rule file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError {
    pub file: PathBuf,
    /// The group's name (or index when it has none).
    pub group: Option<String>,
    /// The rule's 1-based index in its group and its name (may be empty).
    pub rule: Option<(usize, String)>,
    pub message: String,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if let Some(group) = &self.group {
            write!(f, " group {group}:")?;
        }
        match &self.rule {
            Some((index, name)) if name.is_empty() => write!(f, " rule {index}:")?,
            Some((index, name)) => write!(f, " rule {index} ({name}):")?,
            None => {}
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for RuleFileError {}

/// Reads and parses the rule file at `path`; groups without `interval`
/// get `default_interval_ms`.
pub fn load_file(
    path: &Path,
    default_interval_ms: i64,
) -> Result<Vec<RuleGroup>, Vec<RuleFileError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![RuleFileError {
            file: path.to_path_buf(),
            group: None,
            rule: None,
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse_rule_file(&text, path, default_interval_ms)
}

/// Reads every file in `paths`; the errors of all of them.
pub fn load_files(
    paths: &[PathBuf],
    default_interval_ms: i64,
) -> Result<Vec<RuleGroup>, Vec<RuleFileError>> {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match load_file(path, default_interval_ms) {
            Ok(parsed) => groups.extend(parsed),
            Err(found) => errors.extend(found),
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// Parses the text of a rule file named `path`.
pub fn parse_rule_file(
    text: &str,
    path: &Path,
    default_interval_ms: i64,
) -> Result<Vec<RuleGroup>, Vec<RuleFileError>> {
    let mut walker = Walker {
        file: path.to_path_buf(),
        group: None,
        rule: None,
        errors: Vec::new(),
    };
    let groups = walker.file(text, default_interval_ms);
    if walker.errors.is_empty() {
        Ok(groups)
    } else {
        Err(walker.errors)
    }
}

/// Walks the YAML tree, collecting errors with the current position.
struct Walker {
    file: PathBuf,
    group: Option<String>,
    rule: Option<(usize, String)>,
    errors: Vec<RuleFileError>,
}

const GROUP_KEYS: &[&str] = &["name", "interval", "limit", "rules"];
const RULE_KEYS: &[&str] = &[
    "record",
    "alert",
    "expr",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
];

impl Walker {
    fn error(&mut self, message: impl Into<String>) {
        self.errors.push(RuleFileError {
            file: self.file.clone(),
            group: self.group.clone(),
            rule: self.rule.clone(),
            message: message.into(),
        });
    }

    fn file(&mut self, text: &str, default_interval_ms: i64) -> Vec<RuleGroup> {
        let documents = match YamlLoader::load_from_str(text) {
            Ok(documents) => documents,
            Err(e) => {
                self.error(format!("not valid YAML: {e}"));
                return Vec::new();
            }
        };
        let root = match documents.as_slice() {
            [] => return Vec::new(),
            [root] => root,
            _ => {
                self.error("holds more than one YAML document");
                return Vec::new();
            }
        };
        let Some(top) = self.mapping(root, "the top level", &["groups"]) else {
            return Vec::new();
        };
        let Some(groups) = top.get("groups").filter(|g| !matches!(g, Yaml::Null)) else {
            return Vec::new();
        };
        let Yaml::Array(items) = groups else {
            self.error("groups: expected a list of groups");
            return Vec::new();
        };
        let mut parsed: Vec<RuleGroup> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            self.group = Some(format!("{}", index + 1));
            if let Some(group) = self.group_entry(item, default_interval_ms) {
                if parsed.iter().any(|g| g.name == group.name) {
                    self.error(format!(
                        "group name {:?} is repeated in the file",
                        group.name
                    ));
                }
                parsed.push(group);
            }
            self.group = None;
        }
        parsed
    }

    /// The keys of a mapping by name, after checking they are strings and
    /// among `allowed`.
    fn mapping<'a>(
        &mut self,
        node: &'a Yaml,
        what: &str,
        allowed: &[&str],
    ) -> Option<std::collections::BTreeMap<String, &'a Yaml>> {
        let Yaml::Hash(hash) = node else {
            self.error(format!("expected {what} (a mapping)"));
            return None;
        };
        let mut keys = std::collections::BTreeMap::new();
        for (key, value) in hash {
            let Some(name) = key.as_str() else {
                self.error(format!("key {key:?} is not a string"));
                continue;
            };
            if !allowed.contains(&name) {
                self.error(format!(
                    "unknown key {name:?} in {what} (expected one of: {})",
                    allowed.join(", ")
                ));
                continue;
            }
            keys.insert(name.to_owned(), value);
        }
        Some(keys)
    }

    fn string(&mut self, node: &Yaml, key: &str) -> Option<String> {
        match node {
            Yaml::String(s) => Some(s.clone()),
            Yaml::Integer(i) => Some(i.to_string()),
            Yaml::Real(r) => Some(r.clone()),
            Yaml::Boolean(b) => Some(b.to_string()),
            _ => {
                self.error(format!("{key}: expected a string"));
                None
            }
        }
    }

    fn duration(&mut self, node: Option<&Yaml>, key: &str, default_ms: i64) -> i64 {
        let Some(node) = node else {
            return default_ms;
        };
        let Some(text) = self.string(node, key) else {
            return default_ms;
        };
        match parse_duration(&text) {
            Some(ms) => ms,
            None => {
                self.error(format!(
                    "{key}: {text:?} is not a duration (like 30s, 1m, 1h30m)"
                ));
                default_ms
            }
        }
    }

    fn group_entry(&mut self, node: &Yaml, default_interval_ms: i64) -> Option<RuleGroup> {
        if let Some(name) = node["name"].as_str().filter(|name| !name.is_empty()) {
            self.group = Some(format!("{name:?}"));
        }
        let keys = self.mapping(node, "a group", GROUP_KEYS)?;
        let name = match keys.get("name") {
            Some(node) => self.string(node, "name").unwrap_or_default(),
            None => String::new(),
        };
        if name.is_empty() {
            self.error("name: a group needs a non-empty name");
        } else {
            self.group = Some(format!("{name:?}"));
        }
        let interval_ms = self.duration(
            keys.get("interval").copied(),
            "interval",
            default_interval_ms,
        );
        if interval_ms <= 0 {
            self.error("interval: must be more than zero");
        }
        let limit = match keys.get("limit") {
            None => 0,
            Some(Yaml::Integer(n)) if *n >= 0 => *n as usize,
            Some(_) => {
                self.error("limit: expected a number, zero or more");
                0
            }
        };
        let mut rules = Vec::new();
        match keys.get("rules") {
            None | Some(Yaml::Null) => {}
            Some(Yaml::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    self.rule = Some((index + 1, String::new()));
                    if let Some(rule) = self.rule_entry(item) {
                        rules.push(rule);
                    }
                    self.rule = None;
                }
            }
            Some(_) => self.error("rules: expected a list of rules"),
        }
        Some(RuleGroup {
            name,
            file: self.file.clone(),
            interval_ms,
            limit,
            rules,
        })
    }

    fn rule_entry(&mut self, node: &Yaml) -> Option<Rule> {
        // The name first, so that every error of the rule carries it.
        let name = ["record", "alert"]
            .iter()
            .find_map(|key| node[*key].as_str())
            .unwrap_or_default();
        self.rule = self.rule.take().map(|(index, _)| (index, name.to_owned()));
        let keys = self.mapping(node, "a rule", RULE_KEYS)?;
        let record = keys.get("record").and_then(|n| self.string(n, "record"));
        let alert = keys.get("alert").and_then(|n| self.string(n, "alert"));
        let expr_text = keys.get("expr").and_then(|n| self.string(n, "expr"));
        let expr = match &expr_text {
            None => {
                self.error("expr: missing");
                None
            }
            Some(text) => match crate::parse_expr(text) {
                Ok(expr) => Some(expr),
                Err(e) => {
                    self.error(format!("expr: could not parse {text:?}: {e}"));
                    None
                }
            },
        };
        let labels = self.templates(keys.get("labels").copied(), "labels", alert.is_some());
        let kind = match (record, alert) {
            (Some(_), Some(_)) => {
                self.error("has both record and alert: a rule is one or the other");
                return None;
            }
            (None, None) => {
                self.error("has neither record nor alert");
                return None;
            }
            (Some(record), None) => self.recording(&keys, record),
            (None, Some(alert)) => self.alerting(&keys, alert),
        }?;
        Some(Rule {
            expr_text: expr_text?,
            expr: expr?,
            labels: labels?,
            kind,
        })
    }

    fn recording(
        &mut self,
        keys: &std::collections::BTreeMap<String, &Yaml>,
        record: String,
    ) -> Option<RuleKind> {
        for key in ["for", "keep_firing_for", "annotations"] {
            if keys.contains_key(key) {
                self.error(format!(
                    "{key}: only alerting rules have it, not recording rules"
                ));
            }
        }
        if crate::series::validate_metric_name(&record).is_err() {
            self.error(format!("record: {record:?} is not a valid metric name"));
            return None;
        }
        Some(RuleKind::Recording { record })
    }

    fn alerting(
        &mut self,
        keys: &std::collections::BTreeMap<String, &Yaml>,
        alert: String,
    ) -> Option<RuleKind> {
        if alert.is_empty() {
            self.error("alert: the name is empty");
        }
        let for_ms = self.duration(keys.get("for").copied(), "for", 0);
        let keep_firing_for_ms =
            self.duration(keys.get("keep_firing_for").copied(), "keep_firing_for", 0);
        let annotations = self.templates(keys.get("annotations").copied(), "annotations", true)?;
        (!alert.is_empty()).then_some(RuleKind::Alerting {
            alert,
            for_ms,
            keep_firing_for_ms,
            annotations,
        })
    }

    /// A `labels` or `annotations` mapping: valid names, values parsed as
    /// templates (`templated`) or kept literal.
    fn templates(
        &mut self,
        node: Option<&Yaml>,
        key: &str,
        templated: bool,
    ) -> Option<Vec<(String, Template)>> {
        let Some(node) = node else {
            return Some(Vec::new());
        };
        if matches!(node, Yaml::Null) {
            return Some(Vec::new());
        }
        let Yaml::Hash(hash) = node else {
            self.error(format!("{key}: expected a mapping of names to values"));
            return None;
        };
        let before = self.errors.len();
        let mut out = Vec::new();
        for (name, value) in hash {
            let Some(name) = name.as_str() else {
                self.error(format!("{key}: name {name:?} is not a string"));
                continue;
            };
            let Some(value) = self.string(value, &format!("{key}.{name}")) else {
                continue;
            };
            if crate::series::validate_label_name(name).is_err() || name == "__name__" {
                self.error(format!("{key}: {name:?} is not a valid label name"));
                continue;
            }
            let template = if templated {
                Template::parse(&value)
            } else {
                Ok(Template::literal(value))
            };
            match template {
                Ok(template) => out.push((name.to_owned(), template)),
                Err(problem) => self.error(format!("{key}.{name}: {problem}")),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        (self.errors.len() == before).then_some(out)
    }
}

/// A Prometheus duration: one or more `<integer><unit>` with units `y w d
/// h m s ms`, largest first (`1h30m`, `90s`, `0s`), or `0`.
pub fn parse_duration(text: &str) -> Option<i64> {
    crate::query::lex::parse_duration_ms(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m"), Some(60_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("0s"), Some(0));
        assert_eq!(parse_duration("0"), Some(0));
        for bad in ["", "1", "m", "30m1h", "1x", "-1m", "1.5m"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
