//! `# TYPE`, `# HELP` and `# UNIT` lines: read by the Prometheus and Tsv
//! formats (which skip every other comment), written before the samples
//! by `export --format tsv`.
//!
//! ```text
//! # TYPE <family> <type>     counter gauge histogram gaugehistogram summary info stateset unknown untyped
//! # HELP <family> <text>     \\ is a backslash, \n a newline, \" a quote; other backslashes are kept
//! # UNIT <family> <unit>
//! ```
//!
//! Blanks (spaces, tabs) separate the tokens, any number of them; the
//! help text is the rest of the line after the blanks following the
//! family name (so a help text's leading blanks are not kept). The family
//! must be a valid metric name, the type one of the names above (`untyped`
//! is `unknown`), the unit one token. A comment that starts otherwise
//! (`#TYPE`, `# EOF`, `# type`) is an ordinary comment, skipped.
//!
//! Invariants:
//! - a line that starts as a metadata line and breaks these rules is an
//!   error, so a typo is reported rather than silently ignored;
//! - [`write_metadata`] writes lines that [`parse_metadata_line`] reads
//!   back to the same metadata, for every help text without `\r` and
//!   leading blanks and every unit without blanks.

use std::collections::{BTreeMap, BTreeSet};

use super::{excerpt, is_blank};
use crate::metadata::{Metadata, MetricMetadata, MetricType};
use crate::series::validate_metric_name;

/// One metadata line: the family it is about and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataLine {
    pub family: String,
    pub field: MetadataField,
}

/// What a [`MetadataLine`] says about its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataField {
    Type(MetricType),
    /// The help text, unescaped.
    Help(String),
    Unit(String),
}

/// Reads `line` (without its line terminator): `Ok(Some)` for a metadata
/// line, `Ok(None)` for any other line, an error message for a malformed
/// metadata line.
///
/// ```
/// use strata::ingest::{parse_metadata_line, MetadataField, MetadataLine};
/// use strata::MetricType;
///
/// let line = parse_metadata_line("# TYPE http_requests counter").unwrap();
/// let expected = MetadataLine {
///     family: "http_requests".to_owned(),
///     field: MetadataField::Type(MetricType::Counter),
/// };
/// assert_eq!(line, Some(expected));
/// assert_eq!(parse_metadata_line("# EOF"), Ok(None));
/// assert!(parse_metadata_line("# TYPE http_requests counters").is_err());
/// ```
pub fn parse_metadata_line(line: &str) -> Result<Option<MetadataLine>, String> {
    let Some(comment) = line.trim_start_matches(is_blank).strip_prefix('#') else {
        return Ok(None);
    };
    let after_hash = comment.trim_start_matches(is_blank);
    if after_hash.len() == comment.len() {
        return Ok(None);
    }
    let Some((keyword, rest)) = split_token(after_hash) else {
        return Ok(None);
    };
    if !matches!(keyword, "TYPE" | "HELP" | "UNIT") {
        return Ok(None);
    }
    let Some((family, rest)) = split_token(rest.trim_start_matches(is_blank)) else {
        return Err(format!("# {keyword} line without a metric name"));
    };
    validate_metric_name(family)
        .map_err(|_| format!("# {keyword}: invalid metric name {}", excerpt(family)))?;
    let rest = rest.trim_start_matches(is_blank);
    let shown = excerpt(family);
    let field = match keyword {
        "TYPE" => {
            let name = rest.trim_end_matches(is_blank);
            if name.is_empty() {
                return Err(format!("# TYPE {shown}: the type is missing"));
            }
            MetadataField::Type(
                name.parse()
                    .map_err(|e: String| format!("# TYPE {shown}: {e}"))?,
            )
        }
        "HELP" => MetadataField::Help(unescape_help(rest)),
        _ => {
            let unit = rest.trim_end_matches(is_blank);
            if unit.contains(is_blank) {
                return Err(format!(
                    "# UNIT {shown}: the unit {} has blanks in it",
                    excerpt(unit)
                ));
            }
            MetadataField::Unit(unit.to_owned())
        }
    };
    Ok(Some(MetadataLine {
        family: family.to_owned(),
        field,
    }))
}

/// The first blank-separated token of `text` and what follows it, or
/// `None` when `text` is empty.
fn split_token(text: &str) -> Option<(&str, &str)> {
    if text.is_empty() {
        return None;
    }
    Some(text.split_at(text.find(is_blank).unwrap_or(text.len())))
}

fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Appends the metadata lines of `family` to `out`: `# HELP` when there is
/// a help text, `# TYPE` always, `# UNIT` when there is a unit.
///
/// ```
/// use strata::ingest::write_metadata;
/// use strata::{MetricMetadata, MetricType};
///
/// let mut out = String::new();
/// let metadata = MetricMetadata::new(MetricType::Gauge).with_help("Bytes\\in use.\n").with_unit("bytes");
/// write_metadata(&mut out, "memory_bytes", &metadata);
/// assert_eq!(out, "# HELP memory_bytes Bytes\\\\in use.\\n\n# TYPE memory_bytes gauge\n# UNIT memory_bytes bytes\n");
/// ```
pub fn write_metadata(out: &mut String, family: &str, metadata: &MetricMetadata) {
    if !metadata.help.is_empty() {
        out.push_str("# HELP ");
        out.push_str(family);
        out.push(' ');
        for c in metadata.help.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('\n');
    }
    out.push_str("# TYPE ");
    out.push_str(family);
    out.push(' ');
    out.push_str(metadata.metric_type.as_str());
    out.push('\n');
    if !metadata.unit.is_empty() {
        out.push_str("# UNIT ");
        out.push_str(family);
        out.push(' ');
        out.push_str(&metadata.unit);
        out.push('\n');
    }
}

/// Appends the metadata lines ([`write_metadata`]) of the families the
/// series whose metric names are `metrics` belong to
/// ([`Metadata::of_metric`]), each family once, in family name order.
pub fn write_families_metadata<'a>(
    out: &mut String,
    metadata: &Metadata,
    metrics: impl IntoIterator<Item = &'a str>,
) {
    let families: BTreeMap<&str, &MetricMetadata> = metrics
        .into_iter()
        .filter_map(|metric| metadata.of_metric(metric))
        .collect();
    for (family, family_metadata) in families {
        write_metadata(out, family, family_metadata);
    }
}

/// The metadata that the metadata lines of `text` give (other lines are
/// skipped), per family in name order, ready for
/// [`crate::Db::set_metadata`]; a malformed metadata line is an error
/// naming its 1-based number.
pub fn parse_metadata_text(text: &str) -> Result<Vec<(String, MetricMetadata)>, String> {
    let mut collector = MetadataCollector::default();
    for (i, line) in text.lines().enumerate() {
        let parsed = parse_metadata_line(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if let Some(line) = parsed {
            collector.record(line);
        }
    }
    Ok(collector.take_changed())
}

/// The metadata an input's lines have given so far, per family, and which
/// families changed since the last [`MetadataCollector::take_changed`].
/// A family first seen in a `# HELP` line starts as type `unknown`, no
/// help, no unit; each line sets one field.
#[derive(Debug, Default)]
pub(super) struct MetadataCollector {
    families: BTreeMap<String, MetricMetadata>,
    changed: BTreeSet<String>,
}

impl MetadataCollector {
    pub(super) fn record(&mut self, line: MetadataLine) {
        let is_new = !self.families.contains_key(&line.family);
        let entry = self.families.entry(line.family.clone()).or_default();
        let before = entry.clone();
        match line.field {
            MetadataField::Type(metric_type) => entry.metric_type = metric_type,
            MetadataField::Help(help) => entry.help = help,
            MetadataField::Unit(unit) => entry.unit = unit,
        }
        if is_new || *entry != before {
            self.changed.insert(line.family);
        }
    }

    /// The families changed since the last call, with their metadata.
    pub(super) fn take_changed(&mut self) -> Vec<(String, MetricMetadata)> {
        if self.changed.is_empty() {
            return Vec::new();
        }
        let changed = std::mem::take(&mut self.changed);
        changed
            .into_iter()
            .filter_map(|family| {
                let metadata = self.families.get(&family)?.clone();
                Some((family, metadata))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(line: &str) -> Result<Option<MetadataLine>, String> {
        parse_metadata_line(line)
    }

    fn field(line: &str) -> MetadataField {
        parse(line).unwrap().unwrap().field
    }

    #[test]
    fn reads_each_keyword_with_any_blanks() {
        assert_eq!(
            field("#\tTYPE  up \t gauge "),
            MetadataField::Type(MetricType::Gauge)
        );
        assert_eq!(
            field("# TYPE x untyped"),
            MetadataField::Type(MetricType::Unknown)
        );
        assert_eq!(
            field("# HELP up  Whether \\\"up\\\", \\\\ and\\n \\t. "),
            MetadataField::Help("Whether \"up\", \\ and\n \\t. ".to_owned())
        );
        assert_eq!(field("# HELP up"), MetadataField::Help(String::new()));
        assert_eq!(
            field("# UNIT disk_bytes bytes"),
            MetadataField::Unit("bytes".to_owned())
        );
        assert_eq!(parse("  # UNIT a:b_c s").unwrap().unwrap().family, "a:b_c");
    }

    #[test]
    fn other_comments_and_lines_are_not_metadata() {
        for line in [
            "# EOF",
            "#TYPE up gauge",
            "# type up gauge",
            "# TYPEup gauge",
            "# some text",
            "#",
            "",
            "up 1",
            "up{a=\"# TYPE\"} 1",
        ] {
            assert_eq!(parse(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn malformed_metadata_lines_say_what_is_wrong() {
        for (line, message) in [
            ("# TYPE", "without a metric name"),
            ("# HELP  ", "without a metric name"),
            ("# TYPE up", "the type is missing"),
            ("# TYPE up Counter", "unknown metric type \"Counter\""),
            ("# TYPE 9up gauge", "invalid metric name"),
            ("# HELP a-b text", "invalid metric name"),
            ("# UNIT up milli seconds", "has blanks"),
        ] {
            let error = parse(line).unwrap_err();
            assert!(error.contains(message), "{line:?}: {error}");
        }
    }

    #[test]
    fn collector_reports_each_changed_family_once() {
        let mut collector = MetadataCollector::default();
        for line in ["# HELP up Up.", "# TYPE up gauge", "# TYPE x counter"] {
            collector.record(parse(line).unwrap().unwrap());
        }
        let changed = collector.take_changed();
        assert_eq!(
            changed,
            vec![
                (
                    "up".to_owned(),
                    MetricMetadata::new(MetricType::Gauge).with_help("Up.")
                ),
                ("x".to_owned(), MetricMetadata::new(MetricType::Counter)),
            ]
        );
        collector.record(parse("# TYPE up gauge").unwrap().unwrap());
        assert!(collector.take_changed().is_empty(), "a repeated line");
        collector.record(parse("# UNIT x requests").unwrap().unwrap());
        assert_eq!(collector.take_changed().len(), 1);
    }

    fn metric_type() -> impl Strategy<Value = MetricType> {
        prop::sample::select(MetricType::ALL.to_vec())
    }

    /// Help texts rich in what the writer escapes: backslashes, newlines,
    /// quotes, `\n` spelled out, blanks and non-ASCII; no `\r` and no
    /// leading blank (the text formats do not keep them).
    fn help() -> impl Strategy<Value = String> {
        prop_oneof!["[^\r]{0,30}", "([a-z\\\\\n\" \tn]|é|😀){0,20}",]
            .prop_filter("no leading blank", |h| !h.starts_with([' ', '\t']))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Families of generated metadata written with `write_families_metadata`
        /// read back through the import parser (`CachingParser`, Prometheus and
        /// Tsv) and through `parse_metadata_text` to the same metadata.
        #[test]
        fn written_metadata_parses_back_exactly(
            families in prop::collection::btree_map(
                "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
                (metric_type(), help(), "[a-zA-Z0-9_:.%/-]{0,8}"),
                0..6,
            )
        ) {
            let metadata = Metadata::from_families(families.iter().map(|(family, (t, help, unit))| {
                let m = MetricMetadata::new(*t).with_help(help.clone()).with_unit(unit.clone());
                (family.clone(), m)
            }));
            let expected: Vec<(String, MetricMetadata)> =
                metadata.iter().map(|(f, m)| (f.to_owned(), m.clone())).collect();
            let mut text = String::new();
            write_families_metadata(&mut text, &metadata, families.keys().map(String::as_str));
            prop_assert_eq!(&parse_metadata_text(&text).unwrap(), &expected, "{}", text);
            for format in [crate::ingest::Format::Prometheus, crate::ingest::Format::Tsv] {
                let mut parser = crate::ingest::CachingParser::new(
                    crate::ingest::LineParser::new(format, 0),
                );
                let mut out = Vec::new();
                for (i, line) in text.lines().enumerate() {
                    parser
                        .parse_line(i + 1, line.as_bytes(), &mut out, |_, _| Ok::<(), ()>(()), drop)
                        .unwrap();
                }
                prop_assert!(out.is_empty());
                prop_assert_eq!(&parser.take_metadata(), &expected, "{}", text);
            }
        }
    }
}
