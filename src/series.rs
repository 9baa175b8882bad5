//! The data model: series keys (metric name + labels), samples, time ranges.
//!
//! Invariants of a [`SeriesKey`]:
//! - it holds the metric name as the label `__name__`;
//! - labels are sorted by name and names are unique;
//! - no label has an empty value (Prometheus semantics: an empty value is
//!   the same as an absent label), so `{a=""}` matchers work on absence.
//!
//! The text form is Prometheus's: `metric{name="value",...}` with `\\`,
//! `\"` and `\n` escaped in values. [`SeriesKey::parse`] reads it back.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::error::InputError;

/// The label holding the metric name.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// The bit pattern of Prometheus' staleness marker, a NaN written when a
/// series disappears.
pub(crate) const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True for the staleness marker (and no other NaN).
pub(crate) fn is_stale(value: f64) -> bool {
    value.to_bits() == STALE_NAN_BITS
}

/// One label: name and value. The strings are shared (`Arc<str>`), so the
/// head and segment readers keep one copy of each distinct string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: Arc<str>,
    pub value: Arc<str>,
}

impl Label {
    pub fn new(name: impl Into<Arc<str>>, value: impl Into<Arc<str>>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A series identity: metric name plus labels, in canonical order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    labels: Vec<Label>,
}

/// One sample: a timestamp in Unix milliseconds and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub value: f64,
}

impl Sample {
    pub fn new(timestamp_ms: i64, value: f64) -> Self {
        Self {
            timestamp_ms,
            value,
        }
    }

    /// Equality on the value's bit pattern, so NaN payloads compare too.
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.timestamp_ms == other.timestamp_ms && self.value.to_bits() == other.value.to_bits()
    }
}

/// An inclusive range of Unix-millisecond timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub min_time_ms: i64,
    pub max_time_ms: i64,
}

impl TimeRange {
    /// Every representable timestamp.
    pub const ALL: TimeRange = TimeRange {
        min_time_ms: i64::MIN,
        max_time_ms: i64::MAX,
    };

    pub fn new(min_time_ms: i64, max_time_ms: i64) -> Self {
        Self {
            min_time_ms,
            max_time_ms,
        }
    }

    pub fn contains(&self, timestamp_ms: i64) -> bool {
        self.min_time_ms <= timestamp_ms && timestamp_ms <= self.max_time_ms
    }

    /// True if `[min_time_ms, max_time_ms]` shares any timestamp with self.
    pub fn overlaps(&self, min_time_ms: i64, max_time_ms: i64) -> bool {
        self.min_time_ms <= max_time_ms && min_time_ms <= self.max_time_ms
    }
}

impl SeriesKey {
    /// A key from a metric name and `(name, value)` labels in any order.
    /// Labels with an empty value are dropped (see the module invariants).
    ///
    /// Takes string slices so that a literal, even an empty one, needs no
    /// type annotation; [`SeriesKey::from_pairs`] takes owned strings.
    ///
    /// ```
    /// use strata::SeriesKey;
    ///
    /// let up = SeriesKey::new("up", &[])?;
    /// assert_eq!(up, SeriesKey::parse("up")?);
    ///
    /// let key = SeriesKey::new("http_requests_total", &[("method", "GET"), ("code", "200")])?;
    /// assert_eq!(key.to_string(), r#"http_requests_total{code="200",method="GET"}"#);
    /// # Ok::<(), strata::InputError>(())
    /// ```
    pub fn new(metric: &str, labels: &[(&str, &str)]) -> Result<Self, InputError> {
        Self::from_pairs(metric, labels)
    }

    /// Like [`SeriesKey::new`], for labels held in any string type
    /// (`String`, `Arc<str>`, ...).
    ///
    /// ```
    /// use strata::SeriesKey;
    ///
    /// let shard = 7;
    /// let key = SeriesKey::from_pairs("queue_depth", &[("shard", shard.to_string())])?;
    /// assert_eq!(key.get("shard"), Some("7"));
    /// # Ok::<(), strata::InputError>(())
    /// ```
    pub fn from_pairs<N, V>(metric: &str, labels: &[(N, V)]) -> Result<Self, InputError>
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut all = Vec::with_capacity(labels.len() + 1);
        all.push(Label::new(METRIC_NAME_LABEL, metric));
        for (name, value) in labels {
            all.push(Label::new(name.as_ref(), value.as_ref()));
        }
        Self::from_labels(all)
    }

    /// A key from a full label set, which must include `__name__`.
    pub fn from_labels(mut labels: Vec<Label>) -> Result<Self, InputError> {
        labels.retain(|label| !label.value.is_empty());
        labels.sort();
        for pair in labels.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(InputError::DuplicateLabel(pair[0].name.to_string()));
            }
        }
        for label in &labels {
            validate_label_name(&label.name)?;
        }
        let key = Self { labels };
        match key.get(METRIC_NAME_LABEL) {
            None => Err(InputError::MissingMetricName),
            Some(metric) => {
                validate_metric_name(metric)?;
                Ok(key)
            }
        }
    }

    /// Parses the Prometheus text form `metric{name="value",...}`.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let error = |reason: &str| InputError::BadSeriesText {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (metric, rest) = match text.find('{') {
            Some(brace) => (&text[..brace], &text[brace..]),
            None => (text, ""),
        };
        let mut labels = vec![Label::new(METRIC_NAME_LABEL, metric.trim())];
        if !rest.is_empty() {
            let inner = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .ok_or_else(|| error("labels must be enclosed in {...}"))?;
            let mut chars = inner.char_indices().peekable();
            loop {
                while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
                let Some(&(name_start, _)) = chars.peek() else {
                    break;
                };
                let mut name_end = name_start;
                while let Some((i, c)) = chars.next_if(|(_, c)| *c != '=') {
                    name_end = i + c.len_utf8();
                }
                let name = inner[name_start..name_end].trim();
                if chars.next().is_none() {
                    return Err(error("label without '='"));
                }
                while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(error("label value must be double-quoted"));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(error("unterminated label value")),
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            _ => return Err(error("bad escape in label value")),
                        },
                        Some((_, c)) => value.push(c),
                    }
                }
                labels.push(Label::new(name, value));
                while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
                match chars.next() {
                    None => break,
                    Some((_, ',')) => continue,
                    Some(_) => return Err(error("expected ',' between labels")),
                }
            }
        }
        Self::from_labels(labels)
    }

    /// The same key with every string replaced by `intern(string)`, which
    /// must return an equal string (used to share copies).
    pub(crate) fn interned(&self, mut intern: impl FnMut(&Arc<str>) -> Arc<str>) -> SeriesKey {
        SeriesKey {
            labels: self
                .labels
                .iter()
                .map(|l| Label {
                    name: intern(&l.name),
                    value: intern(&l.value),
                })
                .collect(),
        }
    }

    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|label| (*label.name).cmp(name))
            .ok()
            .map(|i| &*self.labels[i].value)
    }

    /// Bytes of all label names and values.
    pub fn byte_len(&self) -> usize {
        self.labels
            .iter()
            .map(|l| l.name.len() + l.value.len())
            .sum()
    }

    /// The metric name (`__name__`).
    pub fn metric(&self) -> &str {
        self.get(METRIC_NAME_LABEL).unwrap_or_default()
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.metric())?;
        f.write_str("{")?;
        let mut first = true;
        for label in self.labels.iter().filter(|l| &*l.name != METRIC_NAME_LABEL) {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{}=\"", label.name)?;
            for c in label.value.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// The name rule for names that come from outside Prometheus (Influx
/// measurements, field and tag keys): `name` made into a valid metric name
/// (`[a-zA-Z_:][a-zA-Z0-9_:]*`). Each character outside `[a-zA-Z0-9_:]`
/// becomes one `_`, a leading digit gets a `_` prefix (so `1m` and `5m`
/// stay apart), an empty name becomes `_`. A valid name is returned as it
/// is, borrowed: the result is `Cow::Owned` exactly when `name` was
/// rewritten. This is the rule of Prometheus' Influx and OTLP translation
/// (without its `__` collapsing), so names stay readable and predictable.
///
/// ```
/// use strata::series::{sanitize_metric_name, validate_metric_name};
///
/// assert_eq!(sanitize_metric_name("http-requests.total"), "http_requests_total");
/// assert_eq!(sanitize_metric_name("9lives"), "_9lives");
/// assert_eq!(sanitize_metric_name("node:cpu"), "node:cpu");
/// assert_eq!(sanitize_metric_name("café"), "caf_");
/// assert!(validate_metric_name(&sanitize_metric_name("1-2")).is_ok());
/// ```
pub fn sanitize_metric_name(name: &str) -> Cow<'_, str> {
    sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// [`sanitize_metric_name`]'s rule for label names (`[a-zA-Z_][a-zA-Z0-9_]*`):
/// each character outside `[a-zA-Z0-9_]` (`:` included) becomes `_`, a
/// leading digit gets a `_` prefix, an empty name becomes `_`; borrowed
/// exactly when `name` is already valid.
///
/// ```
/// use strata::series::sanitize_label_name;
///
/// assert_eq!(sanitize_label_name("http-method"), "http_method");
/// assert_eq!(sanitize_label_name("a:b"), "a_b");
/// assert_eq!(sanitize_label_name("2xx"), "_2xx");
/// assert!(matches!(sanitize_label_name("method"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn sanitize_label_name(name: &str) -> Cow<'_, str> {
    sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name` with each character failing `allowed` replaced by `_` and a
/// `_` before a leading digit (`allowed` accepts digits; names may not
/// start with one).
fn sanitize(name: &str, allowed: impl Fn(char) -> bool) -> Cow<'_, str> {
    let leading_digit = name.starts_with(|c: char| c.is_ascii_digit());
    if !name.is_empty() && !leading_digit && name.chars().all(&allowed) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 1);
    if leading_digit || name.is_empty() {
        out.push('_');
    }
    out.extend(name.chars().map(|c| if allowed(c) { c } else { '_' }));
    Cow::Owned(out)
}

/// Prometheus metric names: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn validate_metric_name(name: &str) -> Result<(), InputError> {
    let valid = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    if name.is_empty() || !valid {
        return Err(InputError::BadMetricName(name.to_owned()));
    }
    Ok(())
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn validate_label_name(name: &str) -> Result<(), InputError> {
    let valid = name
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
    if name.is_empty() || !valid {
        return Err(InputError::BadLabelName(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let key = SeriesKey::new(
            "http_requests_total",
            &[("path", "/a\"b\\c\nd"), ("code", "200")],
        )
        .unwrap();
        let text = key.to_string();
        assert_eq!(
            text,
            "http_requests_total{code=\"200\",path=\"/a\\\"b\\\\c\\nd\"}"
        );
        assert_eq!(SeriesKey::parse(&text).unwrap(), key);
        assert_eq!(
            SeriesKey::parse("up").unwrap(),
            SeriesKey::new("up", &[]).unwrap()
        );
        assert_eq!(
            SeriesKey::parse("up{ job = \"x\" , }").unwrap(),
            SeriesKey::new("up", &[("job", "x")]).unwrap()
        );
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert!(matches!(
            SeriesKey::parse("1up"),
            Err(InputError::BadMetricName(_))
        ));
        assert!(matches!(
            SeriesKey::parse("up{a=\"1\",a=\"2\"}"),
            Err(InputError::DuplicateLabel(_))
        ));
        assert!(matches!(
            SeriesKey::parse("up{a=1}"),
            Err(InputError::BadSeriesText { .. })
        ));
        assert!(matches!(
            SeriesKey::parse("up{a=\"1\""),
            Err(InputError::BadSeriesText { .. })
        ));
        assert!(matches!(
            SeriesKey::parse("up{0a=\"1\"}"),
            Err(InputError::BadLabelName(_))
        ));
        assert!(matches!(
            SeriesKey::from_labels(vec![Label::new("a", "b")]),
            Err(InputError::MissingMetricName)
        ));
    }

    #[test]
    fn sanitized_names_are_valid_and_borrowed_when_unchanged() {
        for (name, metric, label) in [
            ("http-method", "http_method", "http_method"),
            ("9lives", "_9lives", "_9lives"),
            ("a:b", "a:b", "a_b"),
            (":x", ":x", "_x"),
            ("_ok", "_ok", "_ok"),
            ("", "_", "_"),
            ("é😀", "__", "__"),
        ] {
            assert_eq!(sanitize_metric_name(name), metric, "{name:?}");
            assert_eq!(sanitize_label_name(name), label, "{name:?}");
            assert!(validate_metric_name(metric).is_ok());
            assert!(validate_label_name(label).is_ok());
            let unchanged = name == metric;
            assert_eq!(
                matches!(sanitize_metric_name(name), Cow::Borrowed(_)),
                unchanged,
                "{name:?}"
            );
        }
    }

    #[test]
    fn empty_values_mean_absent() {
        assert_eq!(
            SeriesKey::new("up", &[("job", "")]).unwrap(),
            SeriesKey::new("up", &[]).unwrap()
        );
    }
}
