//! Parsers for what `strata export --format csv` and `--format jsonl` write
//! ([`Format::Csv`](super::Format::Csv) and
//! [`Format::Jsonl`](super::Format::Jsonl)), so that export → import is a
//! bit-exact round trip: the same keys, timestamps and value bits.
//!
//! # CSV
//!
//! ```text
//! series,timestamp_ms,value
//! "metric{name=""value"",...}",timestamp_ms,value
//! ```
//!
//! - A record is one line of exactly three RFC 4180 fields separated by `,`.
//!   A field is either quoted, `"..."` with every `"` inside doubled (`""`),
//!   and then may hold commas, or unquoted, and then holds no `"` and ends at
//!   the next `,`. Nothing may follow a closing quote but `,` or the end of
//!   the line. The exporter always quotes the series.
//! - `series` is the Prometheus text form read by
//!   [`SeriesKey::parse`](crate::SeriesKey::parse) (label values escape `\\`,
//!   `\"` and `\n`), so a record never spans lines: a newline in a label
//!   value is the two characters `\n`.
//! - `timestamp_ms` is a decimal `i64` of Unix milliseconds; `value` is read
//!   by [`parse_value`] (`NaN:0x…` keeps a NaN's bits, e.g. the staleness
//!   marker). Blanks (spaces, tabs) around these two are ignored.
//! - The header line, exactly `series,timestamp_ms,value`, is skipped
//!   wherever it appears (so concatenated exports import); so are empty
//!   lines and `#` comments, as in every format.
//!
//! # JSON lines
//!
//! ```text
//! {"metric":"name","labels":{"k":"v",...},"timestamp_ms":123,"value":"1.5"}
//! ```
//!
//! - One JSON object per line (RFC 8259 whitespace allowed between tokens),
//!   with the members `metric` (a string), `labels` (an object whose values
//!   are strings; may be left out when there are none), `timestamp_ms` (an
//!   integer in `i64`) and `value` (a string read by [`parse_value`], or a
//!   JSON number), in any order. Unknown or repeated members are errors, so
//!   a typo is reported instead of silently dropped.
//! - Strings take every RFC 8259 escape (`\"` `\\` `\/` `\b` `\f` `\n` `\r`
//!   `\t` `\uXXXX`, surrogate pairs joined); a raw control character or a
//!   lone surrogate is an error.
//! - `labels` must not hold `__name__` (the metric is its own member);
//!   labels with an empty value are dropped, as everywhere in strata.
//!
//! # Invariants
//!
//! - A line written by [`write_sample`](super::write_sample) in
//!   [`ExportFormat::Csv`](super::ExportFormat::Csv) or
//!   [`ExportFormat::Jsonl`](super::ExportFormat::Jsonl) parses back to the
//!   same key, timestamp and value bits (proptest below).
//! - Limits are checked before a key is built, errors name the 1-based
//!   character column, and no input panics.
//! - [`csv_series`] and [`parse_csv_rest`] (the series cache's fast path)
//!   accept only what [`parse_csv`] accepts, with the same result.

use std::borrow::Cow;

use super::{
    column, excerpt, is_blank, is_skipped, key_error, parse_timestamp, parse_value, Limits,
    ParsedSample,
};
use crate::series::METRIC_NAME_LABEL;
use crate::SeriesKey;

// ---------------------------------------------------------------------------
// CSV

/// The names of the three CSV columns, for messages.
const CSV_COLUMNS: [&str; 3] = ["series", "timestamp_ms", "value"];

/// The header line without its terminator.
fn csv_header_line() -> &'static str {
    super::csv_header().trim_end_matches('\n')
}

/// Parses one CSV line (no terminator) into `out`.
pub(super) fn parse_csv(
    line: &str,
    limits: &Limits,
    out: &mut Vec<ParsedSample>,
) -> Result<(), String> {
    if is_skipped(line) || line == csv_header_line() {
        return Ok(());
    }
    let [(series_at, series), (ts_at, ts_text), (value_at, value_text)] = csv_fields(line)?;
    let key = SeriesKey::parse(&series)
        .map_err(|e| format!("column {series_at} (series): {}", key_error(e)))?;
    limits
        .check_key(&key)
        .map_err(|e| format!("column {series_at} (series): {e}"))?;
    let timestamp_ms = parse_timestamp(ts_text.trim_matches(is_blank), "milliseconds")
        .map_err(|e| format!("column {ts_at} (timestamp_ms): {e}"))?;
    let value = parse_value(value_text.trim_matches(is_blank))
        .map_err(|e| format!("column {value_at} (value): {e}"))?;
    out.push(ParsedSample {
        key,
        timestamp_ms,
        value,
    });
    Ok(())
}

/// The three fields of a CSV record, each with the 1-based character column
/// where it starts; quoted fields are unquoted.
fn csv_fields(line: &str) -> Result<[(usize, Cow<'_, str>); 3], String> {
    let mut fields: [(usize, Cow<'_, str>); 3] = Default::default();
    let mut at = 0;
    for (i, field) in fields.iter_mut().enumerate() {
        let rest = line.get(at..).unwrap_or_default();
        let (text, len) = csv_field(rest).map_err(|(offset, message)| {
            format!(
                "column {} ({}): {message}",
                column(line, at + offset),
                CSV_COLUMNS[i]
            )
        })?;
        *field = (column(line, at), text);
        at += len;
        let last = i + 1 == CSV_COLUMNS.len();
        // `csv_field` stops only at a comma or the end of the line.
        match line.as_bytes().get(at) {
            None if last => {}
            None => {
                return Err(format!(
                    "expected 3 comma-separated fields (series, timestamp_ms, value), found {}",
                    i + 1
                ))
            }
            Some(_) if last => {
                return Err(format!(
                    "expected 3 comma-separated fields (series, timestamp_ms, value), found \
                     a 4th at column {} (quote a field that holds commas)",
                    column(line, at + 1)
                ))
            }
            Some(_) => at += 1,
        }
    }
    Ok(fields)
}

/// One field at the start of `text`: its unquoted content and its length in
/// `text`. The error carries the byte offset in `text` where it was found.
fn csv_field(text: &str) -> Result<(Cow<'_, str>, usize), (usize, String)> {
    let Some(quoted) = text.strip_prefix('"') else {
        let len = memchr::memchr(b',', text.as_bytes()).unwrap_or(text.len());
        let field = text.get(..len).unwrap_or_default();
        if let Some(quote) = memchr::memchr(b'"', field.as_bytes()) {
            return Err((
                quote,
                "a quote in an unquoted field (RFC 4180: quote the whole field and double \
                 the quotes inside)"
                    .to_owned(),
            ));
        }
        return Ok((Cow::Borrowed(field), len));
    };
    let close = quoted_field_end(quoted.as_bytes())
        .ok_or_else(|| (0, "unterminated quoted field".to_owned()))?;
    let inner = quoted.get(..close).unwrap_or_default();
    let len = close + 2;
    match text.as_bytes().get(len) {
        None | Some(b',') => {}
        Some(_) => {
            return Err((
                len,
                format!(
                    "expected ',' or the end of the line after a quoted field, found {}",
                    excerpt(text.get(len..).unwrap_or_default())
                ),
            ))
        }
    }
    let content = if inner.contains('"') {
        Cow::Owned(inner.replace("\"\"", "\""))
    } else {
        Cow::Borrowed(inner)
    };
    Ok((content, len))
}

/// The offset of the closing quote in the content of a quoted field (the
/// bytes after its opening quote): the first `"` not doubled.
fn quoted_field_end(content: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        i += memchr::memchr(b'"', content.get(i..)?)?;
        if content.get(i + 1) != Some(&b'"') {
            return Some(i);
        }
        i += 2;
    }
}

/// The series cache's scan: the byte range of a quoted series field at the
/// start of `line` (quotes included) when a `,` follows it; `None` for any
/// other line, which then gets a full parse.
pub(super) fn csv_series(line: &[u8]) -> Option<(usize, usize)> {
    let close = 1 + quoted_field_end(line.strip_prefix(b"\"")?)?;
    (line.get(close + 1) == Some(&b',')).then_some((0, close + 1))
}

/// The timestamp and value of a CSV line after its series field (`rest`
/// starts at the comma), or `None` when the fast path does not apply: a
/// quote, a wrong field count or a bad token, which the full parse reports.
pub(super) fn parse_csv_rest(rest: &str) -> Option<(i64, f64)> {
    let (ts_text, value_text) = rest.strip_prefix(',')?.split_once(',')?;
    if rest.contains('"') {
        return None;
    }
    let timestamp_ms = parse_timestamp(ts_text.trim_matches(is_blank), "").ok()?;
    let value = parse_value(value_text.trim_matches(is_blank)).ok()?;
    Some((timestamp_ms, value))
}

// ---------------------------------------------------------------------------
// JSON lines

/// Parses one JSON-lines line (no terminator) into `out`.
pub(super) fn parse_jsonl(
    line: &str,
    limits: &Limits,
    out: &mut Vec<ParsedSample>,
) -> Result<(), String> {
    if is_skipped(line) {
        return Ok(());
    }
    let mut json = Json { line, at: 0 };
    let sample = json
        .sample(limits)
        .map_err(|(at, message)| format!("column {}: {message}", column(line, at)))?;
    out.push(sample);
    Ok(())
}

/// A JSON error: the byte offset in the line and the message.
type JsonError = (usize, String);

/// Label names and values as read, borrowed from the line when unescaped.
type JsonLabels<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// A cursor over one JSON line.
struct Json<'a> {
    line: &'a str,
    /// Byte offset of the next unread character.
    at: usize,
}

impl<'a> Json<'a> {
    fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.at).copied()
    }

    fn rest(&self) -> &'a str {
        self.line.get(self.at..).unwrap_or_default()
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, JsonError> {
        Err((self.at, message.into()))
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Skips whitespace, then `byte` or an error saying what was found.
    fn expect(&mut self, byte: u8, what: &str) -> Result<(), JsonError> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.at += 1;
            return Ok(());
        }
        self.error(format!("expected {what}, found {}", self.found()))
    }

    /// What is at the cursor, quoted, for messages.
    fn found(&self) -> String {
        match self.rest() {
            "" => "end of line".to_owned(),
            rest => excerpt(rest),
        }
    }

    /// The whole line: one object with the members of the module grammar.
    fn sample(&mut self, limits: &Limits) -> Result<ParsedSample, JsonError> {
        self.expect(b'{', "'{' (one JSON object per line)")?;
        let mut metric: Option<(usize, Cow<'a, str>)> = None;
        let mut labels: Option<(usize, JsonLabels<'a>)> = None;
        let mut timestamp_ms: Option<i64> = None;
        let mut value: Option<f64> = None;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            return self.error("empty object: expected the members metric, timestamp_ms, value");
        }
        loop {
            self.skip_whitespace();
            let name_at = self.at;
            let name = self.string("a member name")?;
            self.expect(b':', "':'")?;
            self.skip_whitespace();
            let value_at = self.at;
            let repeated = match &*name {
                "metric" => metric
                    .replace((value_at, self.string("a string")?))
                    .is_some(),
                "labels" => labels.replace((value_at, self.labels(limits)?)).is_some(),
                "timestamp_ms" => timestamp_ms.replace(self.timestamp()?).is_some(),
                "value" => value.replace(self.value()?).is_some(),
                other => {
                    return Err((
                        name_at,
                        format!(
                            "unknown member {}: expected metric, labels, timestamp_ms or value",
                            excerpt(other)
                        ),
                    ))
                }
            };
            if repeated {
                return Err((name_at, format!("member {name} given twice")));
            }
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    break;
                }
                _ => return self.error(format!("expected ',' or '}}', found {}", self.found())),
            }
        }
        self.skip_whitespace();
        if self.peek().is_some() {
            return self.error(format!(
                "expected the end of the line after the object, found {}",
                self.found()
            ));
        }
        let missing = |name: &str| (self.line.len(), format!("member {name} is missing"));
        let (metric_at, metric) = metric.ok_or_else(|| missing("metric"))?;
        let timestamp_ms = timestamp_ms.ok_or_else(|| missing("timestamp_ms"))?;
        let value = value.ok_or_else(|| missing("value"))?;
        let (labels_at, labels) = labels.unwrap_or((metric_at, Vec::new()));
        limits
            .check_label(METRIC_NAME_LABEL, metric.len())
            .map_err(|e| (metric_at, e))?;
        let key = SeriesKey::from_pairs(&metric, &labels).map_err(|e| {
            // The metric name is the likelier culprit when it is invalid.
            let at = if crate::series::validate_metric_name(&metric).is_err() {
                metric_at
            } else {
                labels_at
            };
            (at, key_error(e))
        })?;
        Ok(ParsedSample {
            key,
            timestamp_ms,
            value,
        })
    }

    /// The `labels` object; limits checked label by label, before the key
    /// is built.
    fn labels(&mut self, limits: &Limits) -> Result<JsonLabels<'a>, JsonError> {
        self.expect(b'{', "'{' (labels are an object of strings)")?;
        let mut labels = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(labels);
        }
        loop {
            self.skip_whitespace();
            let name_at = self.at;
            let name = self.string("a label name")?;
            if name == METRIC_NAME_LABEL {
                return Err((
                    name_at,
                    "label __name__ in labels: the metric name is the member metric".to_owned(),
                ));
            }
            self.expect(b':', "':'")?;
            self.skip_whitespace();
            let value = self.string("a string (label values are strings)")?;
            limits
                .check_label_count(labels.len() + 2)
                .and_then(|()| limits.check_label(&name, value.len()))
                .map_err(|e| (name_at, e))?;
            labels.push((name, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(labels);
                }
                _ => return self.error(format!("expected ',' or '}}', found {}", self.found())),
            }
        }
    }

    fn timestamp(&mut self) -> Result<i64, JsonError> {
        let token = self.number_token();
        parse_timestamp(token, "milliseconds").map_err(|e| (self.at - token.len(), e))
    }

    /// A string for [`parse_value`], or a JSON number.
    fn value(&mut self) -> Result<f64, JsonError> {
        let at = self.at;
        let text = if self.peek() == Some(b'"') {
            self.string("a string")?
        } else {
            Cow::Borrowed(self.number_token())
        };
        parse_value(&text).map_err(|e| (at, e))
    }

    /// The characters up to the next delimiter: a number's text, checked by
    /// its parser.
    fn number_token(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest
            .find([',', '}', ']', ' ', '\t', '\n', '\r'])
            .unwrap_or(rest.len());
        self.at += len;
        rest.get(..len).unwrap_or_default()
    }

    /// A string literal at the cursor, unescaped; borrowed when it has no
    /// escapes.
    fn string(&mut self, what: &str) -> Result<Cow<'a, str>, JsonError> {
        if self.peek() != Some(b'"') {
            return self.error(format!("expected {what}, found {}", self.found()));
        }
        let start = self.at;
        self.at += 1;
        let content_start = self.at;
        let mut owned: Option<String> = None;
        loop {
            let rest = self.rest().as_bytes();
            let Some(stop) = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            else {
                return Err((start, "unterminated string".to_owned()));
            };
            let plain = self.line.get(self.at..self.at + stop).unwrap_or_default();
            self.at += stop;
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(match owned {
                        Some(mut s) => {
                            s.push_str(plain);
                            Cow::Owned(s)
                        }
                        None => Cow::Borrowed(
                            self.line
                                .get(content_start..self.at - 1)
                                .unwrap_or_default(),
                        ),
                    });
                }
                Some(b'\\') => {
                    let c = self.escape()?;
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(plain);
                    s.push(c);
                }
                _ => return self.error("a raw control character in a string (escape it)"),
            }
        }
    }

    /// The escape at the cursor (its backslash included).
    fn escape(&mut self) -> Result<char, JsonError> {
        let at = self.at;
        self.at += 1;
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.at += 1;
                let high = self.hex4(at)?;
                if !(0xd800..0xdc00).contains(&high) {
                    return char::from_u32(high)
                        .ok_or_else(|| (at, "a lone low surrogate escape".to_owned()));
                }
                if !self.rest().starts_with("\\u") {
                    return Err((
                        at,
                        "a high surrogate escape without its low half".to_owned(),
                    ));
                }
                self.at += 2;
                let low = self.hex4(at)?;
                if !(0xdc00..0xe000).contains(&low) {
                    return Err((
                        at,
                        "a high surrogate escape without its low half".to_owned(),
                    ));
                }
                let code = 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
                return char::from_u32(code).ok_or_else(|| (at, "a bad surrogate pair".to_owned()));
            }
            _ => {
                let sequence = self.line.get(at..).unwrap_or_default();
                return Err((at, format!("bad escape {}", excerpt(sequence))));
            }
        };
        self.at += 1;
        Ok(c)
    }

    /// Four hex digits at the cursor; errors point at `escape_at`.
    fn hex4(&mut self, escape_at: usize) -> Result<u32, JsonError> {
        let digits = self.rest().get(..4).unwrap_or_default();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err((escape_at, "\\u must be followed by 4 hex digits".to_owned()));
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).map_err(|e| (escape_at, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{write_sample, ExportFormat, Format, LineParser};
    use super::*;
    use proptest::prelude::*;

    fn parse(format: Format, line: &str) -> Result<Vec<ParsedSample>, String> {
        let mut out = Vec::new();
        LineParser::new(format, 0)
            .parse_line(7, line, &mut out)
            .map(|()| out)
            .map_err(|e| e.to_string())
    }

    fn key(metric: &str, labels: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new(metric, labels).unwrap()
    }

    fn one(format: Format, line: &str) -> ParsedSample {
        let mut samples = parse(format, line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(samples.len(), 1, "{line:?}");
        samples.remove(0)
    }

    fn fails(format: Format, line: &str, needle: &str) {
        let message = parse(format, line).expect_err(line);
        assert!(message.starts_with("line 7: "), "{message}");
        assert!(
            message.contains(needle),
            "{line:?}: {message:?} lacks {needle:?}"
        );
    }

    #[test]
    fn csv_reads_quoted_fields_and_skips_the_header() {
        assert_eq!(parse(Format::Csv, "series,timestamp_ms,value"), Ok(vec![]));
        let s = one(
            Format::Csv,
            r#""up{a=""x,y"",b=""q\""""}",-5,NaN:0x7ff0000000000002"#,
        );
        assert_eq!(s.key, key("up", &[("a", "x,y"), ("b", "q\"")]));
        assert_eq!(s.timestamp_ms, -5);
        assert_eq!(s.value.to_bits(), 0x7ff0_0000_0000_0002);
        let s = one(Format::Csv, "up, 12 ,\"-0.0\"\r");
        assert_eq!((s.key, s.timestamp_ms), (key("up", &[]), 12));
        assert_eq!(s.value.to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn csv_errors_name_the_column() {
        fails(Format::Csv, "\"up\",1", "expected 3 comma-separated fields");
        fails(Format::Csv, "\"up\",1,2,3", "found a 4th at column 10");
        fails(
            Format::Csv,
            "\"up,1,2",
            "column 1 (series): unterminated quoted field",
        );
        fails(
            Format::Csv,
            "\"up\"x,1,2",
            "column 5 (series): expected ','",
        );
        fails(
            Format::Csv,
            "up{a=\"b\"},1,2",
            "column 6 (series): a quote in an unquoted",
        );
        fails(Format::Csv, "\"1up\",1,2", "column 1 (series)");
        fails(Format::Csv, "\"up\",1.5,2", "column 6 (timestamp_ms)");
        fails(Format::Csv, "\"up\",1,abc", "column 8 (value)");
        fails(Format::Csv, "\"up\",1,", "invalid value \"\"");
    }

    #[test]
    fn csv_fast_path_agrees_with_the_parser() {
        let line = r#""up{a=""x""}",3,1.5"#;
        let (start, end) = csv_series(line.as_bytes()).unwrap();
        assert_eq!(&line[start..end], r#""up{a=""x""}""#);
        assert_eq!(parse_csv_rest(&line[end..]), Some((3, 1.5)));
        assert_eq!(csv_series(b"up,1,2"), None);
        assert_eq!(csv_series(b"\"up\"x,1,2"), None);
        assert_eq!(parse_csv_rest(",1,\"2\""), None);
        assert_eq!(parse_csv_rest(",1,2,3"), None);
    }

    #[test]
    fn jsonl_reads_members_in_any_order_with_escapes() {
        let line = r#" { "value" : 2.5e3 , "timestamp_ms": -1, "labels": {"a\u00e9\/":"x\"\n\ud83d\ude00", "e": ""}, "metric":"up" } "#;
        let err = parse(Format::Jsonl, line).unwrap_err();
        assert!(err.contains("invalid label name"), "{err}");
        let line = r#"{"value":2.5e3,"timestamp_ms":-1,"labels":{"a":"x\"\n\ud83d\ude00\t","e":""},"metric":"up"}"#;
        let s = one(Format::Jsonl, line);
        assert_eq!(s.key, key("up", &[("a", "x\"\n\u{1f600}\t")]));
        assert_eq!((s.timestamp_ms, s.value), (-1, 2500.0));
        let s = one(
            Format::Jsonl,
            r#"{"metric":"up","timestamp_ms":0,"value":"-Inf"}"#,
        );
        assert_eq!((s.key, s.value), (key("up", &[]), f64::NEG_INFINITY));
    }

    #[test]
    fn jsonl_errors_name_the_column() {
        let j = Format::Jsonl;
        fails(j, "[1]", "column 1: expected '{'");
        fails(j, "{}", "empty object");
        fails(
            j,
            r#"{"metric":"up","value":"1"}"#,
            "member timestamp_ms is missing",
        );
        fails(
            j,
            r#"{"metric":"up","metric":"up"}"#,
            "column 16: member metric given twice",
        );
        fails(
            j,
            r#"{"metric":"up","vaule":1}"#,
            "column 16: unknown member \"vaule\"",
        );
        fails(
            j,
            r#"{"metric":"up","timestamp_ms":1.5,"value":1}"#,
            "column 31: invalid timestamp",
        );
        fails(
            j,
            r#"{"metric":"up","timestamp_ms":1,"value":"x"}"#,
            "column 41: invalid value",
        );
        fails(
            j,
            r#"{"metric":"up","timestamp_ms":1,"value":1} x"#,
            "end of the line",
        );
        fails(
            j,
            r#"{"metric":"1up","timestamp_ms":1,"value":1}"#,
            "column 11",
        );
        fails(
            j,
            r#"{"metric":"up","labels":{"__name__":"x"}}"#,
            "the member metric",
        );
        fails(
            j,
            r#"{"metric":"up","labels":{"a":1}}"#,
            "label values are strings",
        );
        fails(j, "{\"metric\":\"u\tp\"}", "raw control character");
        fails(j, r#"{"metric":"up\x"}"#, "bad escape");
        fails(j, r#"{"metric":"\ud800"}"#, "without its low half");
        fails(j, r#"{"metric":"\u12"}"#, "4 hex digits");
        fails(j, r#"{"metric":"up"#, "unterminated string");
        fails(
            j,
            r#"{"metric":"up""#,
            "expected ',' or '}', found end of line",
        );
    }

    #[test]
    fn limits_apply_before_the_key_is_built() {
        let limits = Limits {
            max_labels: 2,
            max_label_value_bytes: 3,
            ..Limits::default()
        };
        let parse = |format, line: &str| {
            let mut out = Vec::new();
            LineParser::new(format, 0)
                .with_limits(limits)
                .parse_line(1, line, &mut out)
                .map_err(|e| e.message)
        };
        let jsonl = r#"{"metric":"up","labels":{"a":"1","b":"2"},"timestamp_ms":1,"value":1}"#;
        assert!(parse(Format::Jsonl, jsonl)
            .unwrap_err()
            .contains("more than 2 labels"));
        let jsonl = r#"{"metric":"up","labels":{"a":"1234"},"timestamp_ms":1,"value":1}"#;
        assert!(parse(Format::Jsonl, jsonl)
            .unwrap_err()
            .contains("over the limit of 3"));
        let csv = r#""up{a=""1"",b=""2""}",1,1"#;
        assert!(parse(Format::Csv, csv)
            .unwrap_err()
            .contains("more than 2 labels"));
    }

    fn label_value() -> impl Strategy<Value = String> {
        // Every character the writers escape or quote, and some others.
        proptest::collection::vec(
            prop_oneof![
                Just(','),
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just('\r'),
                Just('\t'),
                Just('\u{1}'),
                Just('{'),
                Just('}'),
                Just('='),
                Just(' '),
                Just('é'),
                Just('\u{1f600}'),
                Just('\u{2028}'),
                proptest::char::range('a', 'z'),
            ],
            0..8,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn series_key() -> impl Strategy<Value = SeriesKey> {
        (
            "[a-zA-Z_:][a-zA-Z0-9_:]{0,8}",
            proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,6}", label_value()), 0..4),
        )
            .prop_filter_map("duplicate or reserved label", |(metric, labels)| {
                SeriesKey::from_pairs(&metric, &labels).ok()
            })
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(f64::NAN),
            Just(-f64::NAN),
            Just(f64::from_bits(0x7ff0_0000_0000_0002)),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(0.0),
            any::<f64>(),
        ]
    }

    proptest! {
        #[test]
        fn export_lines_parse_back_bit_exact(
            samples in proptest::collection::vec((series_key(), any::<i64>(), value()), 1..8),
        ) {
            for (export, import) in [(ExportFormat::Csv, Format::Csv), (ExportFormat::Jsonl, Format::Jsonl)] {
                let mut text = Vec::new();
                if export == ExportFormat::Csv {
                    text.extend_from_slice(super::super::csv_header().as_bytes());
                }
                for (key, ts, value) in &samples {
                    write_sample(export, key, *ts, *value, &mut text).unwrap();
                }
                let text = String::from_utf8(text).unwrap();
                let parser = LineParser::new(import, 0);
                let mut parsed = Vec::new();
                for (i, line) in text.split_inclusive('\n').enumerate() {
                    parser.parse_line(i + 1, line, &mut parsed).map_err(|e| {
                        TestCaseError::fail(format!("{import:?} {line:?}: {e}"))
                    })?;
                }
                prop_assert_eq!(parsed.len(), samples.len());
                for (got, (key, ts, value)) in parsed.iter().zip(&samples) {
                    prop_assert_eq!(&got.key, key);
                    prop_assert_eq!(got.timestamp_ms, *ts);
                    prop_assert_eq!(got.value.to_bits(), value.to_bits());
                }
            }
        }
    }
}
