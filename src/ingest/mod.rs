//! Text formats of `strata import` (parsers) and `strata export` (writers),
//! in the library so that fuzz targets and embedders share one implementation.
//!
//! # Import: [`LineReader`] and [`LineParser`], one line at a time
//!
//! [`LineReader`] splits input into lines without ever holding more than
//! [`Limits::max_line_bytes`] of one line: a longer line is read past and
//! reported by its length. Every format skips empty lines (only spaces and
//! tabs) and lines whose first non-blank character is `#`. A trailing `\r`
//! (CRLF files) is ignored. A line yields zero or more [`ParsedSample`]s, or
//! a [`ParseError`] naming the line and the column or token at fault.
//!
//! ## Limits
//!
//! [`Limits`] bound what one line may cost: its length, the labels of a
//! series (count, name and value length, checked while the line is parsed,
//! before any label is copied into a series) and, for Influx, the fields of
//! one line. A line over a limit is an error like any malformed line. Error
//! messages quote at most [`EXCERPT_CHARS`] characters of the input, so a
//! huge token never makes a huge message. Parsing is linear in the line's
//! length: columns for messages are only counted when an error is made.
//!
//! ## [`Format::Tsv`], the canonical format (what `export --format tsv` writes)
//!
//! ```text
//! series <TAB> timestamp_ms <TAB> value
//! ```
//!
//! - `series`: the Prometheus text form read by [`SeriesKey::parse`],
//!   `metric{name="value",...}`. The line is split at its last two tabs, so a
//!   label value may itself contain a tab.
//! - `timestamp_ms`: a decimal `i64`, Unix milliseconds (negative allowed).
//! - `value`: see *Values* below.
//!
//! Blanks around the timestamp and the value are ignored.
//!
//! ## [`Format::Prometheus`]: Prometheus text exposition / OpenMetrics
//!
//! ```text
//! metric_name [ "{" [ label_name "=" '"' label_value '"' { "," ... } [ "," ] ] "}" ] value [ timestamp_ms ] [ "#" exemplar ]
//! ```
//!
//! - `metric_name` is `[a-zA-Z_:][a-zA-Z0-9_:]*`; it may be left out when the
//!   labels hold `__name__` (`{__name__="up"} 1`).
//! - `label_name` is `[a-zA-Z_][a-zA-Z0-9_]*`. Label values escape `\\`,
//!   `\"` and `\n`; as in Prometheus, any other backslash sequence is kept
//!   verbatim (`\t` stays backslash + `t`). Labels with an empty value are
//!   dropped (Prometheus semantics), a trailing comma is allowed.
//! - Tokens are separated by blanks (spaces or tabs), any number of them;
//!   blanks are optional around `{`, `}`, `,` and `=`.
//! - `timestamp_ms` is an integer number of milliseconds (the Prometheus text
//!   format); when absent the parser's default timestamp is used.
//!   OpenMetrics' fractional *second* timestamps are rejected with a message
//!   saying so: an integer cannot be told apart, so convert beforehand.
//! - `# HELP`, `# TYPE` and `# UNIT` lines are metric metadata (grammar in
//!   `metadata.rs`, [`parse_metadata_line`]): a malformed one is an error;
//!   [`CachingParser::take_metadata`] hands what they say to the importer.
//!   The Tsv format reads them too (Tsv exports start with them). `# EOF`
//!   and other comments are skipped; an exemplar (`# {...} value [ts]`
//!   after the sample) is ignored. `_created` series (OpenMetrics) are
//!   imported as series, as Prometheus 2.x stores them; they find their
//!   family's metadata ([`crate::Metadata::of_metric`]).
//! - Quoted (UTF-8) metric or label names are not supported.
//!
//! ## [`Format::Influx`]: InfluxDB line protocol
//!
//! ```text
//! measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
//! ```
//!
//! - In the measurement, tag keys, tag values and field keys, `\,` `\ ` `\=`
//!   and `\\` stand for `,` ` ` `=` and `\`; any other backslash is literal.
//! - Sections are separated by spaces (tabs are accepted too).
//! - Field values: floats (`1`, `-1.5`, `2e3`), signed integers with an `i`
//!   suffix (`42i`), unsigned integers with a `u` suffix (`42u`), booleans
//!   (`t` `T` `true` `True` `TRUE` → 1, `f` `F` `false` `False` `FALSE` → 0,
//!   as Telegraf's Prometheus output does) and double-quoted strings (`\"`
//!   and `\\` escaped inside). A string cannot be a sample: string fields
//!   are left out, the line's numeric fields kept, and the line gets a
//!   [`WarningKind::StringFields`] warning. Integers beyond 2^53 are rounded
//!   to the nearest `f64`.
//! - Every numeric field becomes a sample of the series
//!   `<measurement>_<field_key>` with the tags as labels. Names follow the
//!   one rule of [`sanitize_metric_name`] and [`sanitize_label_name`]
//!   (`strata::series`): each character outside `[a-zA-Z0-9_]` (and `:` in
//!   metric names) becomes `_`, a leading digit gets a `_` before it
//!   (`http-method` → `http_method`, `9lives` → `_9lives`). A rewritten name
//!   is imported and reported once per [`CachingParser`] as a
//!   [`WarningKind::Renamed`] warning (see
//!   [`LineParser::parse_line_with_warnings`]). Tag values are kept as they
//!   are. Two tags (or two fields) that sanitize to the same name are an
//!   error, as is an empty tag value.
//! - The timestamp is an integer in the parser's [`Precision`], nanoseconds
//!   unless [`LineParser::with_precision`] says otherwise (InfluxDB's
//!   `precision`: `ns`, `us`, `ms`, `s`); it becomes milliseconds by floor
//!   division (`div_euclid`, so `-1` ns is `-1` ms); seconds beyond the
//!   `i64` millisecond range are an error. When absent the parser's default
//!   timestamp is used.
//!
//! # Which format is it? [`guess_format`]
//!
//! For a hint when an input's first lines all fail in the format asked
//! for: the first of Tsv, Influx, Prometheus whose parser reads every one
//! of them that is not blank or a comment (or Prometheus, for only
//! `# HELP` / `# TYPE` / `# UNIT` comments).
//!
//! ## [`Format::Csv`] and [`Format::Jsonl`]: what `export` writes
//!
//! CSV records `"series",timestamp_ms,value` (RFC 4180 quoting) under the
//! header `series,timestamp_ms,value`, and JSON objects
//! `{"metric":..,"labels":{..},"timestamp_ms":..,"value":".."}`, one per line;
//! the accepted grammar is in `columns.rs`. Export → import is bit-exact.
//!
//! # Values
//!
//! [`parse_value`] accepts Rust's decimal float syntax (`1`, `-0.0`, `1.5e-7`,
//! `.5`), `NaN`, `Inf`, `+Inf`, `-Inf` and `Infinity` in any letter case, and
//! `NaN:0x<16 hex digits>`: the bit pattern of a NaN other than the canonical
//! quiet NaN `0x7ff8000000000000` (another payload or the sign bit set, such
//! as Prometheus' staleness marker `NaN:0x7ff0000000000002`). Plain `NaN` is
//! the canonical quiet NaN; `-NaN` is the canonical one with the sign bit set.
//!
//! [`format_value`] writes finite values in Rust's shortest round-trip form
//! (`1.0`, `-0.0`, `1e-7`), infinities as `+Inf` / `-Inf`, the canonical NaN
//! as `NaN` and every other NaN as `NaN:0x<16 hex digits>`.
//!
//! # Export: [`write_sample`]
//!
//! One line per sample, each terminated by `\n`:
//! - [`ExportFormat::Tsv`], `series\ttimestamp_ms\tvalue`: the canonical
//!   import format;
//! - [`ExportFormat::Csv`], RFC 4180 fields `series,timestamp_ms,value` under
//!   the header [`csv_header`]; the series field is always quoted, its quotes
//!   doubled (lines end with `\n`, not `\r\n`);
//! - [`ExportFormat::Jsonl`], one JSON object per line:
//!   `{"metric":"name","labels":{"k":"v"},"timestamp_ms":123,"value":"1.5"}`,
//!   labels without `__name__`, the value a string from [`format_value`].
//!
//! # Invariants
//!
//! - No input makes a parser panic; a line costs time and memory linear in
//!   its length (bounded by [`Limits::max_line_bytes`]).
//! - [`LineParser::parse_line`] appends nothing when it returns an error
//!   (nor does [`LineParser::parse_line_with_warnings`], warnings included).
//! - Every Influx name that is imported differently from how it was written
//!   gives a [`WarningKind::Renamed`]; nothing is rewritten or left out
//!   silently.
//! - `parse_value(&format_value(v))` has the same bits as `v`, for every `f64`.
//! - A Tsv line written by [`write_sample`] parses back to the same key,
//!   timestamp and value bits.

mod cache;
mod columns;
mod metadata;

pub use cache::{CachingParser, IndexedSample};
pub use metadata::{
    parse_metadata_line, parse_metadata_text, write_families_metadata, write_metadata,
    MetadataField, MetadataLine,
};

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::io::{self, BufRead};

use crate::series::{sanitize_label_name, sanitize_metric_name, METRIC_NAME_LABEL};
use crate::{InputError, Label, Options, SeriesKey};

/// Most characters of the input an error message quotes.
pub const EXCERPT_CHARS: usize = 100;

/// Bits of the canonical quiet NaN, written as plain `NaN`.
const CANONICAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0000;
const SIGN_BIT: u64 = 0x8000_0000_0000_0000;

/// Text formats `strata import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    /// `series<TAB>timestamp_ms<TAB>value`, as written by `export --format tsv`.
    Tsv,
    /// Prometheus / OpenMetrics text exposition: `metric{labels} value [timestamp_ms]`.
    Prometheus,
    /// InfluxDB line protocol: `measurement[,tags] fields [timestamp]`,
    /// timestamps in nanoseconds or another precision.
    Influx,
    /// CSV as written by `export --format csv`: `"series",timestamp_ms,value`.
    Csv,
    /// JSON lines as written by `export --format jsonl`.
    Jsonl,
}

/// The unit of Influx line protocol timestamps (InfluxDB's `precision`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Precision {
    /// Nanoseconds, InfluxDB's default.
    #[default]
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
}

impl Precision {
    /// The unit's name, for messages.
    pub fn unit(self) -> &'static str {
        match self {
            Precision::Ns => "nanoseconds",
            Precision::Us => "microseconds",
            Precision::Ms => "milliseconds",
            Precision::S => "seconds",
        }
    }

    /// `timestamp` (in this unit) in milliseconds, rounded down
    /// (`div_euclid`: `-1` ns is `-1` ms); `None` when seconds overflow.
    pub fn to_ms(self, timestamp: i64) -> Option<i64> {
        match self {
            Precision::Ns => Some(timestamp.div_euclid(1_000_000)),
            Precision::Us => Some(timestamp.div_euclid(1_000)),
            Precision::Ms => Some(timestamp),
            Precision::S => timestamp.checked_mul(1_000),
        }
    }
}

/// Text formats `strata export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ExportFormat {
    /// `series<TAB>timestamp_ms<TAB>value`, readable by `import --format tsv`.
    Tsv,
    /// RFC 4180 CSV with a header: `series,timestamp_ms,value`.
    Csv,
    /// One JSON object per line; the value is a string so NaN and Inf survive.
    Jsonl,
}

/// One sample read from a text line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    pub key: SeriesKey,
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A line that could not be parsed: its number and what is wrong where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A line imported otherwise than written, or in part: kept, but worth
/// telling the user (see [`LineParser::parse_line_with_warnings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub kind: WarningKind,
}

/// What a [`Warning`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// An Influx name that is not a valid Prometheus name, imported as `to`
    /// by [`sanitize_metric_name`] or [`sanitize_label_name`]. `from` is
    /// the measurement and field key joined by `_` for a metric name.
    Renamed { from: String, to: String },
    /// Influx string fields, which cannot be samples, were left out (the
    /// line's numeric fields are kept): how many, and the first one's key.
    StringFields { count: usize, first: String },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        match &self.kind {
            WarningKind::Renamed { from, to } => {
                write!(f, "{} imported as {to}", excerpt(from))
            }
            WarningKind::StringFields { count: 1, first } => write!(
                f,
                "string field {} left out (a string cannot be a sample)",
                excerpt(first)
            ),
            WarningKind::StringFields { count, first } => write!(
                f,
                "{count} string fields left out, the first {} (a string cannot be a sample)",
                excerpt(first)
            ),
        }
    }
}

impl ParseError {
    /// Line `line` is `len` bytes long, over `limit`.
    pub fn line_too_long(line: usize, len: u64, limit: usize) -> Self {
        ParseError {
            line,
            message: format!("the line is {len} bytes long, over the limit of {limit} bytes"),
        }
    }
}

/// What one line may cost a parser (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest line in bytes, its `\n` not counted. Default 1 MiB.
    pub max_line_bytes: usize,
    /// Most labels of one series, `__name__` included. Default: as
    /// [`Options::max_labels_per_series`].
    pub max_labels: usize,
    /// Longest label name in bytes. Default: as [`Options::max_label_name_len`].
    pub max_label_name_bytes: usize,
    /// Longest label value (and metric name) in bytes. Default: as
    /// [`Options::max_label_value_len`].
    pub max_label_value_bytes: usize,
    /// Influx: most numeric fields (samples) on one line. Default 1024.
    pub max_fields: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let options = Options::default();
        Limits {
            max_line_bytes: 1 << 20,
            max_labels: options.max_labels_per_series,
            max_label_name_bytes: options.max_label_name_len,
            max_label_value_bytes: options.max_label_value_len,
            max_fields: 1024,
        }
    }
}

impl Limits {
    /// Whether a series may have `count` labels (`__name__` included).
    fn check_label_count(&self, count: usize) -> Result<(), String> {
        if count > self.max_labels {
            return Err(format!(
                "more than {} labels in one series (__name__ included)",
                self.max_labels
            ));
        }
        Ok(())
    }

    /// Whether a label `name` may have a value of `value_len` bytes; takes
    /// the length so that a value can be checked before it is built.
    fn check_label(&self, name: &str, value_len: usize) -> Result<(), String> {
        if name.len() > self.max_label_name_bytes {
            return Err(format!(
                "label name {} is {} bytes long, over the limit of {}",
                excerpt(name),
                name.len(),
                self.max_label_name_bytes
            ));
        }
        if value_len > self.max_label_value_bytes {
            let what = if name == METRIC_NAME_LABEL {
                "the metric name".to_owned()
            } else {
                format!("the value of label {}", excerpt(name))
            };
            return Err(format!(
                "{what} is {value_len} bytes long, over the limit of {}",
                self.max_label_value_bytes
            ));
        }
        Ok(())
    }

    /// Checks every label of `key`.
    fn check_key(&self, key: &SeriesKey) -> Result<(), String> {
        self.check_label_count(key.labels().len())?;
        key.labels()
            .iter()
            .try_for_each(|label| self.check_label(&label.name, label.value.len()))
    }
}

/// Parses lines of one import [`Format`].
#[derive(Debug, Clone, Copy)]
pub struct LineParser {
    format: Format,
    default_timestamp_ms: i64,
    limits: Limits,
    /// The unit of Influx timestamps.
    precision: Precision,
}

impl LineParser {
    /// A parser for `format` with the default [`Limits`]; lines without a
    /// timestamp (Prometheus, Influx) get `default_timestamp_ms`.
    pub fn new(format: Format, default_timestamp_ms: i64) -> Self {
        Self {
            format,
            default_timestamp_ms,
            limits: Limits::default(),
            precision: Precision::default(),
        }
    }

    /// The same parser reading Influx timestamps in `precision`.
    pub fn with_precision(self, precision: Precision) -> Self {
        Self { precision, ..self }
    }

    /// The same parser with other limits.
    pub fn with_limits(self, limits: Limits) -> Self {
        Self { limits, ..self }
    }

    /// Parses one line (its `\n` or `\r\n` may be left on) and appends its
    /// samples to `out`. `line_no` is only used in the error. On error `out`
    /// is left as it was.
    pub fn parse_line(
        &self,
        line_no: usize,
        line: &str,
        out: &mut Vec<ParsedSample>,
    ) -> Result<(), ParseError> {
        self.parse_line_with_warnings(line_no, line, out, &mut Vec::new())
    }

    /// [`LineParser::parse_line`], also appending the line's [`Warning`]s
    /// to `warnings` (Influx renamed names and string fields); on error
    /// both `out` and `warnings` are left as they were.
    pub fn parse_line_with_warnings(
        &self,
        line_no: usize,
        line: &str,
        out: &mut Vec<ParsedSample>,
        warnings: &mut Vec<Warning>,
    ) -> Result<(), ParseError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        if line.len() > self.limits.max_line_bytes {
            return Err(ParseError::line_too_long(
                line_no,
                line.len() as u64,
                self.limits.max_line_bytes,
            ));
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        let start = out.len();
        let warnings_start = warnings.len();
        let limits = &self.limits;
        let result = match self.format {
            Format::Tsv => parse_tsv(line, limits, out),
            Format::Prometheus => parse_prometheus(line, self.default_timestamp_ms, limits, out),
            Format::Influx => parse_influx(line_no, line, self, out, warnings),
            Format::Csv => columns::parse_csv(line, limits, out),
            Format::Jsonl => columns::parse_jsonl(line, limits, out),
        };
        result.map_err(|message| {
            out.truncate(start);
            warnings.truncate(warnings_start);
            ParseError {
                line: line_no,
                message,
            }
        })
    }
}

/// How many first lines of an input [`guess_format`] is meant for: enough
/// to get past the `# HELP` and `# TYPE` lines heading a Prometheus file.
pub const GUESS_LINES: usize = 10;

/// Formats [`guess_format`] tries, in order: a Tsv line also reads as
/// Prometheus (`up<TAB>1<TAB>2` is a value and a timestamp), so the format
/// with the stricter shape comes first.
const GUESS_ORDER: [Format; 5] = [
    Format::Tsv,
    Format::Csv,
    Format::Jsonl,
    Format::Influx,
    Format::Prometheus,
];

/// The format `first_lines` look like, for a hint when they fail to parse
/// in the format asked for: the first format of Tsv, Csv, Jsonl, Influx,
/// Prometheus in
/// which every line that is not blank or a comment parses (there must be
/// one such line). Lines of only comments are Prometheus when one is
/// `# HELP`, `# TYPE` or `# UNIT`. `None` when no format reads them all.
///
/// ```
/// use strata::ingest::{guess_format, Format};
///
/// let influx = ["cpu,host=a usage_idle=97.5 1700000000000000000"];
/// assert_eq!(guess_format(&influx), Some(Format::Influx));
/// let prometheus = ["# HELP up Whether up.", "# TYPE up gauge", "up{job=\"a\"} 1"];
/// assert_eq!(guess_format(&prometheus), Some(Format::Prometheus));
/// assert_eq!(guess_format(&["up\t1700000000000\t1"]), Some(Format::Tsv));
/// assert_eq!(guess_format(&["<html>"]), None);
/// ```
pub fn guess_format(first_lines: &[&str]) -> Option<Format> {
    let data: Vec<&str> = first_lines
        .iter()
        .copied()
        .filter(|line| !is_skipped(line))
        .collect();
    if data.is_empty() {
        let prometheus_comment = first_lines.iter().any(|line| {
            let comment = line.trim_start_matches(is_blank);
            ["# HELP ", "# TYPE ", "# UNIT "]
                .iter()
                .any(|prefix| comment.starts_with(prefix))
        });
        return prometheus_comment.then_some(Format::Prometheus);
    }
    let mut out = Vec::new();
    GUESS_ORDER.into_iter().find(|&format| {
        let parser = LineParser::new(format, 0);
        data.iter().enumerate().all(|(i, line)| {
            out.clear();
            parser.parse_line(i + 1, line, &mut out).is_ok()
        })
    })
}

/// One line from [`LineReader::next_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line's bytes without its `\n` (a `\r` before it is kept; the
    /// parsers ignore it).
    Complete(&'a [u8]),
    /// A line longer than the limit, `len` bytes without its `\n`: read
    /// past, never held whole.
    TooLong { len: u64 },
}

/// Splits a byte stream into `\n`-terminated lines (the last one may lack
/// its `\n`), holding at most `max_line_bytes` of a line in memory.
pub struct LineReader<R> {
    inner: R,
    max_line_bytes: usize,
    line: Vec<u8>,
    line_no: usize,
    /// Bytes of `inner`'s buffer lent out by the last call, consumed at the
    /// start of the next one.
    lent: usize,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max_line_bytes: usize) -> Self {
        Self {
            inner,
            max_line_bytes,
            line: Vec::new(),
            line_no: 0,
            lent: 0,
        }
    }

    /// The longest line returned whole, in bytes.
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// The next line with its 1-based number, or `None` at the end of the
    /// input.
    pub fn next_line(&mut self) -> io::Result<Option<(usize, Line<'_>)>> {
        self.inner.consume(std::mem::take(&mut self.lent));
        // A whole line in the buffer is lent, not copied. `fill_buf` on a
        // non-empty buffer returns it again without reading.
        let newline = memchr::memchr(b'\n', fill_buf(&mut self.inner)?);
        if let Some(end) = newline.filter(|&end| end <= self.max_line_bytes) {
            self.lent = end + 1;
            self.line_no += 1;
            let line = fill_buf(&mut self.inner)?.get(..end).unwrap_or_default();
            return Ok(Some((self.line_no, Line::Complete(line))));
        }
        self.line.clear();
        let mut len = 0u64;
        let mut read_any = false;
        loop {
            let available = fill_buf(&mut self.inner)?;
            if available.is_empty() {
                break;
            }
            read_any = true;
            let newline = memchr::memchr(b'\n', available);
            let part = available
                .get(..newline.unwrap_or(available.len()))
                .unwrap_or_default();
            len += part.len() as u64;
            if len <= self.max_line_bytes as u64 {
                self.line.extend_from_slice(part);
            } else {
                self.line.clear();
            }
            let used = part.len() + usize::from(newline.is_some());
            self.inner.consume(used);
            if newline.is_some() {
                break;
            }
        }
        if !read_any {
            return Ok(None);
        }
        self.line_no += 1;
        let line = if len > self.max_line_bytes as u64 {
            Line::TooLong { len }
        } else {
            Line::Complete(&self.line)
        };
        Ok(Some((self.line_no, line)))
    }
}

/// `inner.fill_buf()`, retried when interrupted. (The retry loop returns
/// nothing borrowed, so the buffer is asked for again after it.)
fn fill_buf<R: BufRead>(inner: &mut R) -> io::Result<&[u8]> {
    loop {
        match inner.fill_buf() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    inner.fill_buf()
}

// ---------------------------------------------------------------------------
// Values

/// Parses a sample value: decimal float, `NaN`, `[+-]Inf`, `[+-]Infinity`
/// (any case) or `NaN:0x<16 hex digits>` (see the module documentation).
pub fn parse_value(text: &str) -> Result<f64, String> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or_default()),
        Some(b'+') => (false, text.get(1..).unwrap_or_default()),
        _ => (false, text),
    };
    if unsigned.eq_ignore_ascii_case("nan") {
        let sign = if negative { SIGN_BIT } else { 0 };
        return Ok(f64::from_bits(CANONICAL_NAN_BITS | sign));
    }
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    let nan_prefix = text.get(..6).filter(|p| p.eq_ignore_ascii_case("nan:0x"));
    if let (Some(_), Some(hex)) = (nan_prefix, text.get(6..)) {
        if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "invalid value {text}: expected exactly 16 hex digits after \"NaN:0x\"",
                text = excerpt(text)
            ));
        }
        let bits = u64::from_str_radix(hex, 16).map_err(|e| {
            format!(
                "invalid value {text}: bad hex digits ({e})",
                text = excerpt(text)
            )
        })?;
        let value = f64::from_bits(bits);
        if !value.is_nan() {
            return Err(format!(
                "invalid value {text}: 0x{bits:016x} is not a NaN bit pattern \
                 (exponent all ones, mantissa non-zero); write other values in decimal",
                text = excerpt(text)
            ));
        }
        return Ok(value);
    }
    text.parse::<f64>().map_err(|_| {
        format!(
            "invalid value {text}: expected a decimal number (1.5, -2e-3), NaN, +Inf, -Inf \
             or NaN:0x<16 hex digits>",
            text = excerpt(text)
        )
    })
}

/// Formats a value so that [`parse_value`] gives back the same bits.
pub fn format_value(v: f64) -> String {
    let bits = v.to_bits();
    if v.is_nan() {
        if bits == CANONICAL_NAN_BITS {
            "NaN".to_owned()
        } else {
            format!("NaN:0x{bits:016x}")
        }
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        shortest_decimal(v)
    }
}

/// The shortest decimal that parses back to `v` (finite), laid out like
/// Python's `repr` and the canonical files it produces: fixed notation for
/// decimal exponents -4..=15 (`0.0001`, `1.0`, `-0.0`), otherwise
/// scientific with a signed, at least two-digit exponent (`1.7274e-05`,
/// `1.8446744073709552e+19`).
fn shortest_decimal(v: f64) -> String {
    let scientific = format!("{v:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..16).contains(&exponent) {
        let fixed = format!("{v}");
        if fixed.contains('.') {
            fixed
        } else {
            fixed + ".0"
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    }
}

// ---------------------------------------------------------------------------
// Export

/// The CSV header line, terminator included: write it as is, before the
/// first [`write_sample`] in [`ExportFormat::Csv`].
pub fn csv_header() -> &'static str {
    "series,timestamp_ms,value\n"
}

/// Writes one sample as one `\n`-terminated line of `format`.
pub fn write_sample(
    format: ExportFormat,
    key: &SeriesKey,
    timestamp_ms: i64,
    value: f64,
    out: &mut impl io::Write,
) -> io::Result<()> {
    let value = format_value(value);
    let line = match format {
        ExportFormat::Tsv => format!("{key}\t{timestamp_ms}\t{value}\n"),
        ExportFormat::Csv => {
            let series = key.to_string().replace('"', "\"\"");
            format!("\"{series}\",{timestamp_ms},{value}\n")
        }
        ExportFormat::Jsonl => {
            let mut line = String::with_capacity(64);
            line.push_str("{\"metric\":");
            push_json_string(&mut line, key.metric());
            line.push_str(",\"labels\":{");
            let labels = key
                .labels()
                .iter()
                .filter(|label| &*label.name != METRIC_NAME_LABEL);
            for (i, label) in labels.enumerate() {
                if i > 0 {
                    line.push(',');
                }
                push_json_string(&mut line, &label.name);
                line.push(':');
                push_json_string(&mut line, &label.value);
            }
            line.push_str("},\"timestamp_ms\":");
            line.push_str(&timestamp_ms.to_string());
            line.push_str(",\"value\":");
            push_json_string(&mut line, &value);
            line.push_str("}\n");
            line
        }
    };
    out.write_all(line.as_bytes())
}

/// How [`push_json_string_as`] escapes beyond RFC 8259's minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum JsonEscapes {
    /// RFC 8259, with the short `\b` and `\f` forms.
    Rfc8259,
    /// As Go's encoding/json (Prometheus 2.42's HTTP API): `\b`, `\f`,
    /// `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes.
    Go,
}

/// Appends `s` as a JSON string literal (RFC 8259 escaping).
#[doc(hidden)]
pub fn push_json_string(out: &mut String, s: &str) {
    push_json_string_as(out, s, JsonEscapes::Rfc8259);
}

/// Appends `s` as a JSON string literal escaped in the given style.
#[doc(hidden)]
pub fn push_json_string_as(out: &mut String, s: &str, escapes: JsonEscapes) {
    let go = escapes == JsonEscapes::Go;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' if !go => out.push_str("\\b"),
            '\u{c}' if !go => out.push_str("\\f"),
            c if u32::from(c) < 0x20
                || (go && matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}')) =>
            {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------
// Shared helpers

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Whether the line is empty or a comment in every format.
fn is_skipped(line: &str) -> bool {
    let rest = line.trim_start_matches(is_blank);
    rest.is_empty() || rest.starts_with('#')
}

/// 1-based character column of byte offset `byte` in `line`. Counts the
/// characters before it, so call it only to make an error message: once
/// per line, never per token.
fn column(line: &str, byte: usize) -> usize {
    line.get(..byte).map_or(0, |s| s.chars().count()) + 1
}

/// `text` cut to its first [`EXCERPT_CHARS`] characters, `…` marking a cut.
fn cut(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}…", text.get(..end).unwrap_or_default())),
    }
}

/// `text` quoted for an error message, at most [`EXCERPT_CHARS`] of it.
fn excerpt(text: &str) -> String {
    format!("{:?}", cut(text))
}

/// The message of a series error, its quoted input cut like [`excerpt`].
fn key_error(error: InputError) -> String {
    let short = |text: String| cut(&text).into_owned();
    match error {
        InputError::BadSeriesText { text, reason } => InputError::BadSeriesText {
            text: short(text),
            reason,
        },
        InputError::BadMetricName(name) => InputError::BadMetricName(short(name)),
        InputError::BadLabelName(name) => InputError::BadLabelName(short(name)),
        InputError::DuplicateLabel(name) => InputError::DuplicateLabel(short(name)),
        other => other,
    }
    .to_string()
}

/// `Some(c)` as `'c'`, `None` as "end of line", for error messages.
fn describe(c: Option<char>) -> String {
    match c {
        Some(c) => format!("{c:?}"),
        None => "end of line".to_owned(),
    }
}

fn parse_timestamp(token: &str, unit: &str) -> Result<i64, String> {
    token.parse::<i64>().map_err(|e| {
        format!(
            "invalid timestamp {token}: expected an integer number of {unit} ({e})",
            token = excerpt(token)
        )
    })
}

// ---------------------------------------------------------------------------
// Tsv

fn parse_tsv(line: &str, limits: &Limits, out: &mut Vec<ParsedSample>) -> Result<(), String> {
    if is_skipped(line) {
        return parse_metadata_line(line).map(drop);
    }
    let mut fields = line.rsplitn(3, '\t');
    let value_text = fields.next().unwrap_or_default();
    let (Some(ts_text), Some(series_text)) = (fields.next(), fields.next()) else {
        return Err(format!(
            "expected 3 tab-separated fields (series, timestamp_ms, value), found {}",
            line.split('\t').count()
        ));
    };
    let key = SeriesKey::parse(series_text).map_err(|e| {
        let tabs = series_text.matches('\t').count();
        let hint = if tabs > 0 {
            format!(
                " (the line has {} tab-separated fields, expected 3)",
                tabs + 3
            )
        } else {
            String::new()
        };
        format!("column 1 (series): {}{hint}", key_error(e))
    })?;
    limits
        .check_key(&key)
        .map_err(|e| format!("column 1 (series): {e}"))?;
    let timestamp_ms =
        parse_timestamp(ts_text.trim_matches(is_blank), "milliseconds").map_err(|e| {
            let ts_column = column(line, series_text.len() + 1);
            format!("column {ts_column} (timestamp_ms): {e}")
        })?;
    let value = parse_value(value_text.trim_matches(is_blank)).map_err(|e| {
        let value_column = column(line, series_text.len() + ts_text.len() + 2);
        format!("column {value_column} (value): {e}")
    })?;
    out.push(ParsedSample {
        key,
        timestamp_ms,
        value,
    });
    Ok(())
}

// ---------------------------------------------------------------------------
// Prometheus text exposition

fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn is_label_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A position in a line, moved forward char by char.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat_while(&mut self, pred: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !pred(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        self.text.get(start..self.pos).unwrap_or_default()
    }

    /// Skips blanks; true if there were any.
    fn skip_blanks(&mut self) -> bool {
        !self.eat_while(is_blank).is_empty()
    }

    fn column(&self) -> usize {
        column(self.text, self.pos)
    }
}

fn parse_prometheus(
    line: &str,
    default_timestamp_ms: i64,
    limits: &Limits,
    out: &mut Vec<ParsedSample>,
) -> Result<(), String> {
    if is_skipped(line) {
        return parse_metadata_line(line).map(drop);
    }
    let mut cur = Cursor::new(line);
    cur.skip_blanks();
    let series_pos = cur.pos;
    let series_error = |e: String| format!("column {} (series): {e}", column(line, series_pos));
    let metric = cur.eat_while(is_metric_char);
    let mut labels = Vec::new();
    if !metric.is_empty() {
        limits
            .check_label(METRIC_NAME_LABEL, metric.len())
            .map_err(series_error)?;
        labels.push(Label::new(METRIC_NAME_LABEL, metric));
    }
    let blank_after_name = cur.skip_blanks();
    match cur.peek() {
        Some('{') => {
            cur.bump();
            parse_prometheus_labels(&mut cur, limits, &mut labels)?;
        }
        None => {
            return Err(format!(
                "column {}: expected a value after the series, found end of line",
                cur.column()
            ))
        }
        Some(c) if !blank_after_name => {
            return Err(if metric.is_empty() {
                format!(
                    "column {}: expected a metric name or '{{', found {c:?}",
                    cur.column()
                )
            } else {
                format!(
                    "column {}: unexpected {c:?} in metric name {} \
                     (allowed: letters, digits, '_', ':')",
                    cur.column(),
                    excerpt(metric)
                )
            });
        }
        Some(_) => {}
    }
    let key = SeriesKey::from_labels(labels).map_err(|e| series_error(key_error(e)))?;
    let (value, timestamp_ms) = parse_prometheus_tail(&mut cur, default_timestamp_ms)?;
    out.push(ParsedSample {
        key,
        timestamp_ms,
        value,
    });
    Ok(())
}

/// Parses what follows a Prometheus series, from `cur` (at or before the
/// blanks after it) to the end of the line: `value [timestamp_ms] [# exemplar]`.
/// Returns the value and the timestamp (`default_timestamp_ms` when absent).
fn parse_prometheus_tail(
    cur: &mut Cursor<'_>,
    default_timestamp_ms: i64,
) -> Result<(f64, i64), String> {
    let line = cur.text;
    cur.skip_blanks();
    let value_pos = cur.pos;
    let value_text = cur.eat_while(|c| !is_blank(c));
    if value_text.is_empty() {
        return Err(format!(
            "column {}: expected a value after the series, found end of line",
            column(line, value_pos)
        ));
    }
    let value =
        parse_value(value_text).map_err(|e| format!("column {}: {e}", column(line, value_pos)))?;

    cur.skip_blanks();
    let mut timestamp_ms = default_timestamp_ms;
    if cur.peek().is_some_and(|c| c != '#') {
        let ts_pos = cur.pos;
        let ts_text = cur.eat_while(|c| !is_blank(c));
        timestamp_ms = parse_timestamp(ts_text, "milliseconds").map_err(|e| {
            let hint = if ts_text.parse::<f64>().is_ok() {
                " (OpenMetrics timestamps in seconds are not supported: convert to milliseconds)"
            } else {
                ""
            };
            format!("column {}: {e}{hint}", column(line, ts_pos))
        })?;
        cur.skip_blanks();
        if let Some(c) = cur.peek().filter(|&c| c != '#') {
            return Err(format!(
                "column {}: unexpected {c:?} after the timestamp (expected end of line \
                 or '# exemplar')",
                cur.column()
            ));
        }
    }
    Ok((value, timestamp_ms))
}

/// Parses `name="value",...}` (the `{` already consumed) into `labels`,
/// leaving out labels with an empty value (they mean "no such label").
fn parse_prometheus_labels(
    cur: &mut Cursor<'_>,
    limits: &Limits,
    labels: &mut Vec<Label>,
) -> Result<(), String> {
    let text = cur.text;
    loop {
        cur.skip_blanks();
        match cur.peek() {
            Some('}') => {
                cur.bump();
                return Ok(());
            }
            Some(c) if is_label_start(c) => {}
            Some('"') => {
                return Err(format!(
                    "column {}: quoted label or metric names are not supported",
                    cur.column()
                ))
            }
            c => {
                return Err(format!(
                    "column {}: expected a label name or '}}', found {}",
                    cur.column(),
                    describe(c)
                ))
            }
        }
        let name_pos = cur.pos;
        let name = cur.eat_while(is_label_char);
        let limit_error = |e: String| format!("column {}: {e}", column(text, name_pos));
        limits.check_label(name, 0).map_err(limit_error)?;
        cur.skip_blanks();
        if cur.peek() != Some('=') {
            return Err(format!(
                "column {}: expected '=' after label name {}, found {}",
                cur.column(),
                excerpt(name),
                describe(cur.peek())
            ));
        }
        cur.bump();
        cur.skip_blanks();
        let value_pos = cur.pos;
        let unclosed = || {
            format!(
                "column {}: the value of label {} has no closing '\"'",
                column(text, value_pos),
                excerpt(name)
            )
        };
        if cur.peek() != Some('"') {
            return Err(format!(
                "column {}: expected '\"' to open the value of label {}, found {}",
                column(text, value_pos),
                excerpt(name),
                describe(cur.peek())
            ));
        }
        cur.bump();
        let mut value = String::new();
        loop {
            match cur.bump() {
                None => return Err(unclosed()),
                Some('"') => break,
                Some('\\') => match cur.bump() {
                    Some('n') => value.push('\n'),
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some(other) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => return Err(unclosed()),
                },
                Some(c) => value.push(c),
            }
        }
        if !value.is_empty() {
            limits
                .check_label(name, value.len())
                .and_then(|()| limits.check_label_count(labels.len() + 1))
                .map_err(limit_error)?;
            labels.push(Label::new(name, value));
        }
        cur.skip_blanks();
        match cur.peek() {
            Some(',') => {
                cur.bump();
            }
            Some('}') => {}
            c => {
                return Err(format!(
                    "column {}: expected ',' or '}}' after the value of label {}, found {}",
                    cur.column(),
                    excerpt(name),
                    describe(c)
                ))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Influx line protocol

fn is_influx_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Offset of the first byte at or after `from` that is in `stops` and not
/// escaped by a backslash, or `bytes.len()`. Stops are ASCII, so the offset
/// is always a char boundary.
fn scan_unescaped(bytes: &[u8], from: usize, stops: &[u8]) -> usize {
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            i += 2;
        } else if stops.contains(&b) {
            return i;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

fn skip_influx_blanks(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|&b| is_influx_blank(b)) {
        i += 1;
    }
    i
}

/// Resolves `\,` `\ ` `\=` `\\`; other backslashes are literal.
fn unescape_influx(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next_if(|n| matches!(n, ',' | ' ' | '=' | '\\')) {
                out.push(next);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Numeric value of an unquoted field value.
fn parse_influx_field_value(text: &str) -> Result<f64, String> {
    match text {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(1.0),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(0.0),
        _ => {}
    }
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(int) = text.strip_suffix('i') {
        if all_digits(int.strip_prefix('-').unwrap_or(int)) {
            return int.parse::<i64>().map(|i| i as f64).map_err(|e| {
                format!(
                    "integer {text} does not fit in 64 bits ({e})",
                    text = excerpt(text)
                )
            });
        }
    } else if let Some(uint) = text.strip_suffix('u') {
        if all_digits(uint) {
            return uint.parse::<u64>().map(|u| u as f64).map_err(|e| {
                format!(
                    "unsigned integer {text} does not fit in 64 bits ({e})",
                    text = excerpt(text)
                )
            });
        }
    } else {
        let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
        let starts_numeric = unsigned
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.');
        if starts_numeric {
            if let Ok(value) = text.parse::<f64>() {
                if value.is_finite() {
                    return Ok(value);
                }
                return Err(format!(
                    "float {text} is out of range",
                    text = excerpt(text)
                ));
            }
        }
    }
    Err(format!(
        "invalid value {text}: expected a float (1.5), an integer (42i), an unsigned \
         integer (42u), a boolean (t, false, ...) or a double-quoted string",
        text = excerpt(text)
    ))
}

/// Parses Influx line `line_no` with `parser`'s limits, precision and
/// default timestamp; a renamed name or a string field adds a [`Warning`].
fn parse_influx(
    line_no: usize,
    line: &str,
    parser: &LineParser,
    out: &mut Vec<ParsedSample>,
    warnings: &mut Vec<Warning>,
) -> Result<(), String> {
    if is_skipped(line) {
        return Ok(());
    }
    let limits = &parser.limits;
    let mut warn = |kind: WarningKind| {
        warnings.push(Warning {
            line: line_no,
            kind,
        })
    };
    let mut renamed = |from: &str, to: &Cow<'_, str>| {
        if let Cow::Owned(to) = to {
            warn(WarningKind::Renamed {
                from: from.to_owned(),
                to: to.clone(),
            });
        }
    };
    let bytes = line.as_bytes();
    let slice = |a: usize, b: usize| line.get(a..b).unwrap_or_default();
    let col = |byte: usize| column(line, byte);

    // measurement[,tag=value...]
    let key_start = skip_influx_blanks(bytes, 0);
    let key_end = scan_unescaped(bytes, key_start, b" \t");
    let mut parts = Vec::new();
    let mut part_start = key_start;
    loop {
        let part_end = scan_unescaped(&bytes[..key_end], part_start, b",");
        parts.push((part_start, part_end));
        // The measurement becomes __name__, so parts count the labels.
        limits
            .check_label_count(parts.len())
            .map_err(|e| format!("column {}: {e}", col(part_start)))?;
        if part_end >= key_end {
            break;
        }
        part_start = part_end + 1;
    }
    let (measurement_start, measurement_end) = parts[0];
    let measurement = unescape_influx(slice(measurement_start, measurement_end));
    if measurement.is_empty() {
        return Err(format!(
            "column {}: missing measurement name",
            col(key_start)
        ));
    }
    let mut tags: Vec<Label> = Vec::with_capacity(parts.len() - 1);
    let mut tag_names: HashSet<String> = HashSet::new();
    for &(start, end) in &parts[1..] {
        let raw = slice(start, end);
        let eq = scan_unescaped(&bytes[..end], start, b"=");
        if eq >= end {
            return Err(format!(
                "column {}: tag {raw} has no '=': expected tag_key=tag_value",
                col(start),
                raw = excerpt(raw)
            ));
        }
        if eq == start {
            return Err(format!(
                "column {}: empty tag key in {raw}",
                col(start),
                raw = excerpt(raw)
            ));
        }
        let tag_key = unescape_influx(slice(start, eq));
        if eq + 1 == end {
            return Err(format!(
                "column {}: tag {tag_key} has an empty value",
                col(eq + 1),
                tag_key = excerpt(&tag_key)
            ));
        }
        let second_eq = scan_unescaped(&bytes[..end], eq + 1, b"=");
        if second_eq < end {
            return Err(format!(
                "column {}: unescaped '=' in the value of tag {tag_key} (write \\=)",
                col(second_eq),
                tag_key = excerpt(&tag_key)
            ));
        }
        let name = sanitize_label_name(&tag_key);
        let value = unescape_influx(slice(eq + 1, end));
        renamed(&tag_key, &name);
        let name = name.into_owned();
        limits
            .check_label(&name, value.len())
            .map_err(|e| format!("column {}: {e}", col(start)))?;
        if !tag_names.insert(name.clone()) {
            return Err(format!(
                "column {}: tag {tag_key} gives label name {name}, which an earlier tag \
                 already has",
                col(start),
                tag_key = excerpt(&tag_key),
                name = excerpt(&name)
            ));
        }
        tags.push(Label::new(name, value));
    }

    // field=value[,field=value...]
    let mut pos = skip_influx_blanks(bytes, key_end);
    if pos >= bytes.len() {
        return Err(format!(
            "column {}: expected fields after {}: measurement[,tag=value...] \
             field=value[,field=value...] [timestamp]",
            col(pos),
            excerpt(slice(key_start, key_end))
        ));
    }
    let mut fields: Vec<(usize, String, f64)> = Vec::new();
    let mut string_fields: Option<(usize, String)> = None;
    loop {
        let field_start = pos;
        let eq = scan_unescaped(bytes, pos, b"=, \t");
        if bytes.get(eq) != Some(&b'=') {
            return Err(format!(
                "column {}: field {} has no '=': expected field_key=field_value",
                col(field_start),
                excerpt(slice(field_start, eq))
            ));
        }
        if eq == field_start {
            return Err(format!("column {}: empty field key", col(field_start)));
        }
        let field_key = unescape_influx(slice(field_start, eq));
        let value_start = eq + 1;
        if bytes.get(value_start) == Some(&b'"') {
            let close = scan_unescaped(bytes, value_start + 1, b"\"");
            if close >= bytes.len() {
                return Err(format!(
                    "column {}: the string value of field {field_key} has no closing '\"'",
                    col(value_start),
                    field_key = excerpt(&field_key)
                ));
            }
            // Not a sample: counted for the warning, and left out.
            match &mut string_fields {
                Some((count, _)) => *count += 1,
                None => string_fields = Some((1, field_key)),
            }
            pos = close + 1;
        } else {
            let value_end = value_start
                + bytes[value_start..]
                    .iter()
                    .take_while(|&&b| b != b',' && !is_influx_blank(b))
                    .count();
            let text = slice(value_start, value_end);
            if text.is_empty() {
                return Err(format!(
                    "column {}: field {field_key} has no value",
                    col(value_start),
                    field_key = excerpt(&field_key)
                ));
            }
            let value = parse_influx_field_value(text).map_err(|e| {
                format!(
                    "column {}: field {field_key}: {e}",
                    col(value_start),
                    field_key = excerpt(&field_key)
                )
            })?;
            if fields.len() == limits.max_fields {
                return Err(format!(
                    "column {}: more than {} numeric fields on one line",
                    col(field_start),
                    limits.max_fields
                ));
            }
            // The series name is the measurement, '_' and the key.
            limits
                .check_label(METRIC_NAME_LABEL, measurement.len() + 1 + field_key.len())
                .map_err(|e| {
                    format!(
                        "column {}: field {}: {e}",
                        col(field_start),
                        excerpt(&field_key)
                    )
                })?;
            fields.push((field_start, field_key, value));
            pos = value_end;
        }
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(&b) if is_influx_blank(b) => break,
            None => break,
            Some(_) => {
                return Err(format!(
                    "column {}: expected ',' or ' ' after the value of field {}, found {}",
                    col(pos),
                    excerpt(slice(field_start, eq)),
                    describe(line.get(pos..).and_then(|s| s.chars().next()))
                ))
            }
        }
    }

    // [timestamp]
    pos = skip_influx_blanks(bytes, pos);
    let mut timestamp_ms = parser.default_timestamp_ms;
    if pos < bytes.len() {
        let ts_start = pos;
        while bytes.get(pos).is_some_and(|&b| !is_influx_blank(b)) {
            pos += 1;
        }
        let ts_text = slice(ts_start, pos);
        let precision = parser.precision;
        let timestamp = parse_timestamp(ts_text, precision.unit())
            .map_err(|e| format!("column {}: {e}", col(ts_start)))?;
        timestamp_ms = precision.to_ms(timestamp).ok_or_else(|| {
            format!(
                "column {}: timestamp {} {} is out of range (beyond i64 milliseconds)",
                col(ts_start),
                excerpt(ts_text),
                precision.unit()
            )
        })?;
        pos = skip_influx_blanks(bytes, pos);
        if pos < bytes.len() {
            return Err(format!(
                "column {}: unexpected {} after the timestamp (expected end of line)",
                col(pos),
                excerpt(slice(pos, bytes.len()))
            ));
        }
    }

    let mut metrics: HashSet<String> = HashSet::new();
    for (field_start, field_key, value) in fields {
        let joined = format!("{measurement}_{field_key}");
        let metric = sanitize_metric_name(&joined);
        renamed(&joined, &metric);
        let metric = metric.into_owned();
        if !metrics.insert(metric.clone()) {
            return Err(format!(
                "column {}: field {field_key} gives series {metric}, which an earlier \
                 field already gives",
                col(field_start),
                field_key = excerpt(&field_key),
                metric = excerpt(&metric)
            ));
        }
        let mut labels = tags.clone();
        labels.push(Label::new(METRIC_NAME_LABEL, metric));
        let key = SeriesKey::from_labels(labels).map_err(|e| {
            format!(
                "column {}: field {}: {}",
                col(field_start),
                excerpt(&field_key),
                key_error(e)
            )
        })?;
        out.push(ParsedSample {
            key,
            timestamp_ms,
            value,
        });
    }
    if let Some((count, first)) = string_fields {
        warn(WarningKind::StringFields { count, first });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::{validate_label_name, validate_metric_name};
    use proptest::prelude::*;

    #[test]
    fn json_escapes_in_both_styles() {
        let text = "a\u{8}<&\u{2028}\"\n";
        let mut rfc = String::new();
        push_json_string_as(&mut rfc, text, JsonEscapes::Rfc8259);
        assert_eq!(rfc, "\"a\\b<&\u{2028}\\\"\\n\"");
        let mut go = String::new();
        push_json_string_as(&mut go, text, JsonEscapes::Go);
        assert_eq!(go, "\"a\\u0008\\u003c\\u0026\\u2028\\\"\\n\"");
    }

    fn key(metric: &str, labels: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new(metric, labels).unwrap()
    }

    fn parse(format: Format, line: &str) -> Result<Vec<ParsedSample>, ParseError> {
        let mut out = Vec::new();
        LineParser::new(format, 777).parse_line(42, line, &mut out)?;
        Ok(out)
    }

    fn one(format: Format, line: &str) -> ParsedSample {
        let samples = parse(format, line).unwrap();
        assert_eq!(samples.len(), 1, "{line:?} gave {samples:?}");
        samples.into_iter().next().unwrap()
    }

    /// Asserts `line` fails on line 42 with a message containing `needle`.
    fn fails(format: Format, line: &str, needle: &str) {
        let mut out = vec![ParsedSample {
            key: key("before", &[]),
            timestamp_ms: 1,
            value: 1.0,
        }];
        let err = LineParser::new(format, 777)
            .parse_line(42, line, &mut out)
            .expect_err(line);
        assert_eq!(err.line, 42, "{err}");
        assert!(
            err.message.contains(needle),
            "{format:?} {line:?}: message {:?} lacks {needle:?}",
            err.message
        );
        assert!(err.to_string().starts_with("line 42: "));
        assert_eq!(out.len(), 1, "output changed on error for {line:?}");
    }

    // --- Tsv -------------------------------------------------------------

    #[test]
    fn tsv_happy_path() {
        let s = one(
            Format::Tsv,
            "http_requests_total{code=\"200\",path=\"/a\"}\t-1500\t2.5",
        );
        assert_eq!(
            s.key,
            key("http_requests_total", &[("code", "200"), ("path", "/a")])
        );
        assert_eq!((s.timestamp_ms, s.value), (-1500, 2.5));

        let s = one(Format::Tsv, "up\t0\tNaN\r\n");
        assert_eq!(s.key, key("up", &[]));
        assert_eq!(s.value.to_bits(), CANONICAL_NAN_BITS);
        let s = one(Format::Tsv, "up{}\t 12 \t -Inf");
        assert_eq!((s.timestamp_ms, s.value), (12, f64::NEG_INFINITY));
        // A tab inside a label value: the line splits at its last two tabs.
        let s = one(Format::Tsv, "up{a=\"x\ty\"}\t1\t2");
        assert_eq!(s.key, key("up", &[("a", "x\ty")]));

        for skipped in [
            "",
            "   ",
            "\t",
            "# comment",
            "  # indented\tcomment",
            "\r\n",
        ] {
            assert!(
                parse(Format::Tsv, skipped).unwrap().is_empty(),
                "{skipped:?}"
            );
        }
    }

    #[test]
    fn tsv_errors() {
        fails(Format::Tsv, "up 1 2", "expected 3 tab-separated fields");
        fails(Format::Tsv, "up\t1", "found 2");
        fails(Format::Tsv, "1up\t1\t2", "column 1 (series)");
        fails(Format::Tsv, "up{a=1}\t1\t2", "double-quoted");
        fails(Format::Tsv, "\t1\t2", "no metric name");
        fails(Format::Tsv, "a\tb\t1\t2", "4 tab-separated fields");
        fails(Format::Tsv, "up\t1.5\t2", "column 4 (timestamp_ms)");
        fails(
            Format::Tsv,
            "up\t99999999999999999999\t2",
            "invalid timestamp",
        );
        fails(Format::Tsv, "up\t\t2", "invalid timestamp \"\"");
        fails(Format::Tsv, "up\t1\tabc", "column 6 (value)");
        fails(Format::Tsv, "up\t1\t", "invalid value \"\"");
        fails(
            Format::Tsv,
            "up\t1\tNaN:0x0000000000000000",
            "not a NaN bit pattern",
        );
    }

    // --- Prometheus ------------------------------------------------------

    #[test]
    fn prometheus_exposition() {
        let text = "\
# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9
# Minimalistic line:
metric_without_timestamp_and_labels 12.47
job:rpc_errors:rate5m{job=\"api\",} -Inf -5
  \tup\t{ instance = \"a:9100\" , le=\"\" }\t+Inf\t7   
stale{a=\"b\"}NaN
{__name__=\"named\"} 1 2
unknown_escape{a=\"x\\ty\"} 1
exemplar_total{a=\"b\"} 3 4 # {trace_id=\"abc\"} 1.0 5
exemplar_no_ts 3 # {trace_id=\"abc\"} 1.0
# EOF
";
        let parser = LineParser::new(Format::Prometheus, 777);
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            parser.parse_line(i + 1, line, &mut out).unwrap();
        }
        let got: Vec<(String, i64, u64)> = out
            .iter()
            .map(|s| (s.key.to_string(), s.timestamp_ms, s.value.to_bits()))
            .collect();
        let want = [
            (
                key(
                    "http_requests_total",
                    &[("method", "post"), ("code", "200")],
                ),
                1395066363000,
                1027.0,
            ),
            (
                key(
                    "http_requests_total",
                    &[("method", "post"), ("code", "400")],
                ),
                1395066363000,
                3.0,
            ),
            (
                key(
                    "msdos_file_access_time_seconds",
                    &[
                        ("path", "C:\\DIR\\FILE.TXT"),
                        ("error", "Cannot find file:\n\"FILE.TXT\""),
                    ],
                ),
                777,
                1.458255915e9,
            ),
            (key("metric_without_timestamp_and_labels", &[]), 777, 12.47),
            (
                key("job:rpc_errors:rate5m", &[("job", "api")]),
                -5,
                f64::NEG_INFINITY,
            ),
            (key("up", &[("instance", "a:9100")]), 7, f64::INFINITY),
            (
                key("stale", &[("a", "b")]),
                777,
                f64::from_bits(CANONICAL_NAN_BITS),
            ),
            (key("named", &[]), 2, 1.0),
            (key("unknown_escape", &[("a", "x\\ty")]), 777, 1.0),
            (key("exemplar_total", &[("a", "b")]), 4, 3.0),
            (key("exemplar_no_ts", &[]), 777, 3.0),
        ];
        let want: Vec<(String, i64, u64)> = want
            .iter()
            .map(|(k, t, v)| (k.to_string(), *t, v.to_bits()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn prometheus_errors() {
        let p = Format::Prometheus;
        fails(p, "up", "column 3: expected a value after the series");
        fails(p, "up{a=\"b\"}", "expected a value");
        fails(p, "up-x 1", "column 3: unexpected '-' in metric name");
        fails(p, "1up 1", "invalid metric name \"1up\"");
        fails(
            p,
            "-1 2",
            "column 1: expected a metric name or '{', found '-'",
        );
        fails(p, "up{a=\"b\" 1", "column 10: expected ',' or '}'");
        fails(
            p,
            "up{a=\"b 1",
            "column 6: the value of label \"a\" has no closing",
        );
        fails(p, "up{a=\"b\\", "has no closing");
        fails(
            p,
            "up{a=b} 1",
            "column 6: expected '\"' to open the value of label \"a\"",
        );
        fails(
            p,
            "up{a} 1",
            "column 5: expected '=' after label name \"a\"",
        );
        fails(
            p,
            "up{0a=\"1\"} 1",
            "column 4: expected a label name or '}', found '0'",
        );
        fails(
            p,
            "up{\"a.b\"=\"1\"} 1",
            "quoted label or metric names are not supported",
        );
        fails(
            p,
            "up{",
            "column 4: expected a label name or '}', found end of line",
        );
        fails(p, "up{a=\"1\",a=\"2\"} 1", "label \"a\" appears twice");
        fails(p, "up{__name__=\"x\"} 1", "appears twice");
        fails(p, "{a=\"1\"} 1", "no metric name");
        fails(p, "up one", "column 4: invalid value \"one\"");
        fails(p, "up 1 1.5", "column 6: invalid timestamp \"1.5\"");
        fails(p, "up 1 1.5", "OpenMetrics timestamps in seconds");
        fails(
            p,
            "up 1 2 3",
            "column 8: unexpected '3' after the timestamp",
        );
        fails(p, "up 1 x", "invalid timestamp \"x\"");
    }

    // --- Influx ----------------------------------------------------------

    fn parse_warned(
        parser: LineParser,
        line: &str,
    ) -> Result<(Vec<ParsedSample>, Vec<Warning>), ParseError> {
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        parser.parse_line_with_warnings(3, line, &mut out, &mut warnings)?;
        Ok((out, warnings))
    }

    #[test]
    fn influx_renamed_names_are_imported_and_reported() {
        let (samples, warnings) = parse_warned(
            LineParser::new(Format::Influx, 0),
            "http-requests,http-method=GET,code=200 count=1,9s=2 5000000",
        )
        .unwrap();
        let keys: Vec<String> = samples.iter().map(|s| s.key.to_string()).collect();
        assert_eq!(
            keys,
            [
                "http_requests_count{code=\"200\",http_method=\"GET\"}",
                "http_requests_9s{code=\"200\",http_method=\"GET\"}",
            ]
        );
        let renamed = |from: &str, to: &str| Warning {
            line: 3,
            kind: WarningKind::Renamed {
                from: from.to_owned(),
                to: to.to_owned(),
            },
        };
        assert_eq!(
            warnings,
            [
                renamed("http-method", "http_method"),
                renamed("http-requests_count", "http_requests_count"),
                renamed("http-requests_9s", "http_requests_9s"),
            ]
        );
        assert_eq!(
            warnings[0].to_string(),
            "line 3: \"http-method\" imported as http_method"
        );
        // Valid names: no warning. A measurement with a leading digit gets
        // a '_' in front, as the shared rule says.
        let (_, none) = parse_warned(LineParser::new(Format::Influx, 0), "m,a=b f=1").unwrap();
        assert!(none.is_empty());
        let s = one(Format::Influx, "1m,k=v f=1");
        assert_eq!(s.key.metric(), "_1m_f");
    }

    #[test]
    fn influx_string_fields_are_reported_and_numeric_fields_kept() {
        let parser = LineParser::new(Format::Influx, 0);
        let (samples, warnings) = parse_warned(
            parser,
            r#"log,host=a msg="a, b=c",n=2i,level="warn",ok=t 1"#,
        )
        .unwrap();
        let got: Vec<(String, f64)> = samples
            .iter()
            .map(|s| (s.key.metric().to_owned(), s.value))
            .collect();
        assert_eq!(got, [("log_n".to_owned(), 2.0), ("log_ok".to_owned(), 1.0)]);
        assert_eq!(
            warnings,
            [Warning {
                line: 3,
                kind: WarningKind::StringFields {
                    count: 2,
                    first: "msg".to_owned()
                }
            }]
        );
        assert_eq!(
            warnings[0].to_string(),
            "line 3: 2 string fields left out, the first \"msg\" (a string cannot be a sample)"
        );
        // Only strings: no sample, one warning; an error drops the warning.
        let (samples, warnings) = parse_warned(parser, r#"log msg="x""#).unwrap();
        assert!(samples.is_empty());
        assert_eq!(warnings.len(), 1);
        let mut warnings = Vec::new();
        let mut out = Vec::new();
        assert!(parser
            .parse_line_with_warnings(1, r#"lo-g msg="x",n=1 x"#, &mut out, &mut warnings)
            .is_err());
        assert!(warnings.is_empty() && out.is_empty());
    }

    #[test]
    fn influx_precision() {
        let at = |precision: Precision, line: &str| {
            let parser = LineParser::new(Format::Influx, 0).with_precision(precision);
            let mut out = Vec::new();
            parser
                .parse_line(1, line, &mut out)
                .map(|()| out[0].timestamp_ms)
        };
        assert_eq!(
            at(Precision::Ns, "m f=1 1700000000123456789"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(
            at(Precision::Us, "m f=1 1700000000123456"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(at(Precision::Us, "m f=1 -1"), Ok(-1));
        assert_eq!(
            at(Precision::Ms, "m f=1 1700000000123"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(at(Precision::S, "m f=1 1700000000"), Ok(1_700_000_000_000));
        assert_eq!(at(Precision::S, "m f=1"), Ok(0));
        let err = at(Precision::S, "m f=1 9223372036854776").unwrap_err();
        assert_eq!(
            err.message,
            "column 7: timestamp \"9223372036854776\" seconds is out of range \
             (beyond i64 milliseconds)"
        );
        let err = at(Precision::Ms, "m f=1 1.5").unwrap_err();
        assert!(
            err.message.contains("integer number of milliseconds"),
            "{err}"
        );
    }

    #[test]
    fn format_guesses() {
        let guess = |lines: &[&str]| guess_format(lines);
        assert_eq!(
            guess(&[
                "# HELP up x",
                "# TYPE up gauge",
                "up{a=\"b\"} 1",
                "up 2 1700000000000"
            ]),
            Some(Format::Prometheus)
        );
        assert_eq!(guess(&["# TYPE up gauge"]), Some(Format::Prometheus));
        assert_eq!(guess(&["# just a comment", ""]), None);
        assert_eq!(guess(&[]), None);
        assert_eq!(
            guess(&[
                "cpu,host=a usage=1.5,n=3i 1700000000000000000",
                "mem free=1u"
            ]),
            Some(Format::Influx)
        );
        assert_eq!(
            guess(&["up{a=\"b\"}\t1700000000000\t1", "", "up\t1\t2"]),
            Some(Format::Tsv)
        );
        assert_eq!(
            guess(&["series,timestamp_ms,value", "\"up{a=\"\"b\"\"}\",1000,1"]),
            Some(Format::Csv)
        );
        assert_eq!(
            guess(&[r#"{"metric":"up","labels":{"a":"b"},"timestamp_ms":1000,"value":"1"}"#]),
            Some(Format::Jsonl)
        );
        // One line no format reads: no guess.
        assert_eq!(guess(&["up\t1\t2", "cpu f=1"]), None);
        assert_eq!(guess(&["series,timestamp_ms,value"]), Some(Format::Csv));
    }

    #[test]
    fn influx_happy_path() {
        let samples = parse(
            Format::Influx,
            "cpu,host=server01,region=us-west usage_idle=92.5,usage_user=3i,count=7u,up=t,\
             note=\"a, b = c \\\" d\",down=FALSE 1465839830100400200",
        )
        .unwrap();
        let got: Vec<(String, i64, f64)> = samples
            .iter()
            .map(|s| (s.key.to_string(), s.timestamp_ms, s.value))
            .collect();
        let tags = [("host", "server01"), ("region", "us-west")];
        let ts = 1465839830100;
        assert_eq!(
            got,
            vec![
                (key("cpu_usage_idle", &tags).to_string(), ts, 92.5),
                (key("cpu_usage_user", &tags).to_string(), ts, 3.0),
                (key("cpu_count", &tags).to_string(), ts, 7.0),
                (key("cpu_up", &tags).to_string(), ts, 1.0),
                (key("cpu_down", &tags).to_string(), ts, 0.0),
            ]
        );

        // No tags, no timestamp, signs and exponents.
        let s = one(Format::Influx, "temp value=-1.5e3");
        assert_eq!(s.key, key("temp_value", &[]));
        assert_eq!((s.timestamp_ms, s.value), (777, -1500.0));
        let s = one(Format::Influx, "temp v=-42i  \t");
        assert_eq!(s.value, -42.0);

        // Escapes and sanitization.
        let s = one(
            Format::Influx,
            "my\\ disk\\,io,dev\\ name=sd\\ a\\,1\\=x,2nd.tag=v\\\\w read\\ bytes=1 0",
        );
        assert_eq!(
            s.key,
            key(
                "my_disk_io_read_bytes",
                &[("dev_name", "sd a,1=x"), ("_2nd_tag", "v\\w")]
            )
        );
        let s = one(Format::Influx, "9lives,k=v\\q x-y=1");
        assert_eq!(s.key, key("_9lives_x_y", &[("k", "v\\q")]));
        let s = one(Format::Influx, "m,k=v f=1");
        assert_eq!(s.key, key("m_f", &[("k", "v")]));

        // Only string fields: no sample and no error (a warning, tested below).
        assert!(parse(Format::Influx, "log msg=\"hello world\" 5")
            .unwrap()
            .is_empty());
        for skipped in ["", "  ", "# comment", " #x"] {
            assert!(parse(Format::Influx, skipped).unwrap().is_empty());
        }
    }

    #[test]
    fn influx_nanoseconds_become_milliseconds_by_floor() {
        for (ns, ms) in [
            (0i64, 0i64),
            (1, 0),
            (999_999, 0),
            (1_000_000, 1),
            (1_999_999, 1),
            (-1, -1),
            (-999_999, -1),
            (-1_000_000, -1),
            (-1_000_001, -2),
            (i64::MAX, i64::MAX / 1_000_000),
            (i64::MIN, i64::MIN.div_euclid(1_000_000)),
        ] {
            let s = one(Format::Influx, &format!("m v=1 {ns}"));
            assert_eq!(s.timestamp_ms, ms, "{ns} ns");
        }
        assert_eq!(i64::MIN.div_euclid(1_000_000), -9_223_372_036_855);
    }

    #[test]
    fn influx_errors() {
        let i = Format::Influx;
        fails(i, "cpu", "column 4: expected fields after \"cpu\"");
        fails(i, "cpu,host=a", "expected fields");
        fails(i, ",host=a v=1", "column 1: missing measurement name");
        fails(i, "cpu,host v=1", "column 5: tag \"host\" has no '='");
        fails(i, "cpu,=a v=1", "column 5: empty tag key");
        fails(
            i,
            "cpu,host= v=1",
            "column 10: tag \"host\" has an empty value",
        );
        fails(i, "cpu, v=1", "tag \"\" has no '='");
        fails(
            i,
            "cpu,a=b=c v=1",
            "column 8: unescaped '=' in the value of tag \"a\"",
        );
        fails(i, "cpu,a.b=1,a_b=2 v=1", "gives label name \"a_b\"");
        fails(i, "cpu,__name__=x v=1", "appears twice");
        fails(i, "cpu v", "column 5: field \"v\" has no '='");
        fails(i, "cpu v=1,w", "field \"w\" has no '='");
        fails(i, "cpu =1", "column 5: empty field key");
        fails(i, "cpu v=", "column 7: field \"v\" has no value");
        fails(i, "cpu v=1,w=", "field \"w\" has no value");
        fails(
            i,
            "cpu v=abc",
            "column 7: field \"v\": invalid value \"abc\"",
        );
        fails(i, "cpu v=inf", "invalid value \"inf\"");
        fails(i, "cpu v=NaN", "invalid value");
        fails(i, "cpu v=1.5i", "invalid value \"1.5i\"");
        fails(i, "cpu v=-1u", "invalid value \"-1u\"");
        fails(i, "cpu v=99999999999999999999i", "does not fit in 64 bits");
        fails(i, "cpu v=99999999999999999999u", "does not fit in 64 bits");
        fails(i, "cpu v=1e999", "out of range");
        fails(
            i,
            "cpu v=\"abc",
            "column 7: the string value of field \"v\" has no closing",
        );
        fails(
            i,
            "cpu v=\"abc\"x",
            "column 12: expected ',' or ' ' after the value of field \"v\"",
        );
        fails(i, "cpu v=1 12.5", "column 9: invalid timestamp \"12.5\"");
        fails(
            i,
            "cpu v=1 1 2",
            "column 11: unexpected \"2\" after the timestamp",
        );
        fails(i, "cpu a.b=1,a_b=2", "gives series \"cpu_a_b\"");
        // An error in a later field leaves no sample from earlier fields.
        fails(i, "cpu a=1,b=2,c=x", "field \"c\"");
    }

    // --- Limits and the line reader ---------------------------------------

    /// Regression (issue 7): every label was accepted, and Influx cloned
    /// every tag once per field before any check: a 356 KB line took 1.27 GB.
    #[test]
    fn label_and_field_limits_apply_before_series_are_built() {
        let tags: String = (0..64).map(|i| format!(",t{i}=v")).collect();
        fails(
            Format::Influx,
            &format!("m{tags} f=1"),
            "more than 64 labels",
        );
        fails(Format::Influx, &format!("m{tags} f=1"), "column 371:");
        let labels: Vec<String> = (0..64).map(|i| format!("l{i}=\"v\"")).collect();
        let line = format!("m{{{}}} 1", labels.join(","));
        fails(Format::Prometheus, &line, "more than 64 labels");
        fails(
            Format::Tsv,
            &format!("m{{{}}}\t1\t1", labels.join(",")),
            "more than 64 labels",
        );
        // 63 labels and __name__ are fine; empty values do not count.
        let ok = format!("m{{{},e=\"\"}} 1", labels[..63].join(","));
        assert_eq!(one(Format::Prometheus, &ok).key.labels().len(), 64);

        let long = "x".repeat(257);
        fails(
            Format::Prometheus,
            &format!("m{{{long}=\"v\"}} 1"),
            "over the limit of 256",
        );
        fails(
            Format::Influx,
            &format!("m,{long}=v f=1"),
            "over the limit of 256",
        );
        let value = "v".repeat(4097);
        fails(
            Format::Prometheus,
            &format!("m{{a=\"{value}\"}} 1"),
            "4097 bytes long",
        );
        fails(
            Format::Influx,
            &format!("m,a={value} f=1"),
            "4097 bytes long",
        );
        fails(
            Format::Tsv,
            &format!("m{{a=\"{value}\"}}\t1\t1"),
            "4097 bytes long",
        );
        fails(
            Format::Prometheus,
            &format!("m{value} 1"),
            "the metric name is 4098 bytes",
        );
        fails(
            Format::Influx,
            &format!("m{value} f=1"),
            "the metric name is 4100 bytes",
        );

        let fields: Vec<String> = (0..1025).map(|i| format!("f{i}=1")).collect();
        fails(
            Format::Influx,
            &format!("m {}", fields.join(",")),
            "more than 1024 numeric fields",
        );
        assert_eq!(
            parse(Format::Influx, &format!("m {}", fields[..1024].join(",")))
                .unwrap()
                .len(),
            1024
        );
    }

    #[test]
    fn long_lines_are_refused_and_errors_quote_little_of_them() {
        let limits = Limits {
            max_line_bytes: 10,
            ..Limits::default()
        };
        let mut out = Vec::new();
        let parser = LineParser::new(Format::Tsv, 0).with_limits(limits);
        assert!(parser.parse_line(1, "up\t1\t2.5\n", &mut out).is_ok());
        let err = parser
            .parse_line(7, "up\t1\t2.500\r\n", &mut out)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 7: the line is 11 bytes long, over the limit of 10 bytes"
        );

        // Regression (issue 7): a bad token was quoted whole.
        let huge = "9".repeat(100_000);
        for (format, line) in [
            (Format::Tsv, format!("up\t{huge}x\t1")),
            (Format::Tsv, format!("up\t1\t{huge}x")),
            (Format::Tsv, format!("{huge}{{a=\"b\"}}\t1\t1")),
            (Format::Prometheus, format!("up {huge}x")),
            (Format::Prometheus, format!("up 1 {huge}x")),
            (Format::Prometheus, format!("up{{a{huge} 1")),
            (Format::Influx, format!("m f={huge}x")),
            (Format::Influx, format!("m,a=b,a{huge}=c f=1")),
            (Format::Influx, format!("m f=1 1 {huge}")),
        ] {
            let err = parse(format, &line).unwrap_err();
            assert!(
                err.message.len() < 400,
                "{format:?}: {} bytes: {}",
                err.message.len(),
                err.message
            );
            assert!(err.message.contains("9999…"), "{format:?}: {}", err.message);
        }
    }

    fn read_lines(input: &[u8], max: usize, buffer: usize) -> Vec<(usize, Result<Vec<u8>, u64>)> {
        let mut reader = LineReader::new(io::BufReader::with_capacity(buffer, input), max);
        let mut lines = Vec::new();
        while let Some((number, line)) = reader.next_line().unwrap() {
            lines.push((
                number,
                match line {
                    Line::Complete(bytes) => Ok(bytes.to_vec()),
                    Line::TooLong { len } => Err(len),
                },
            ));
            assert!(
                reader.line.capacity() <= (2 * max).max(8),
                "held a long line"
            );
        }
        lines
    }

    #[test]
    fn line_reader_skips_long_lines_without_holding_them() {
        let mut input = b"a\t1\t2\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100_000));
        input.extend_from_slice(b"\n\r\nlast");
        assert_eq!(
            read_lines(&input, 1000, 64),
            vec![
                (1, Ok(b"a\t1\t2".to_vec())),
                (2, Err(100_000)),
                (3, Ok(b"\r".to_vec())),
                (4, Ok(b"last".to_vec())),
            ]
        );
        assert_eq!(read_lines(b"", 10, 64), vec![]);
        assert_eq!(read_lines(b"\n", 10, 64), vec![(1, Ok(vec![]))]);
        assert_eq!(
            read_lines(b"0123456789\n01234567890", 10, 4),
            vec![(1, Ok(b"0123456789".to_vec())), (2, Err(11))]
        );
    }

    // --- Values ----------------------------------------------------------

    #[test]
    fn value_spellings() {
        let bits = |s: &str| parse_value(s).unwrap().to_bits();
        for nan in ["NaN", "nan", "NAN", "+nan"] {
            assert_eq!(bits(nan), CANONICAL_NAN_BITS, "{nan}");
        }
        assert_eq!(bits("-NaN"), CANONICAL_NAN_BITS | SIGN_BIT);
        for inf in ["Inf", "+Inf", "inf", "+INF", "infinity", "+Infinity"] {
            assert_eq!(parse_value(inf), Ok(f64::INFINITY), "{inf}");
        }
        for inf in ["-Inf", "-inf", "-INFINITY"] {
            assert_eq!(parse_value(inf), Ok(f64::NEG_INFINITY), "{inf}");
        }
        assert_eq!(bits("-0.0"), (-0.0f64).to_bits());
        assert_eq!(bits("-0"), (-0.0f64).to_bits());
        assert_eq!(parse_value("1.5e-7"), Ok(1.5e-7));
        assert_eq!(parse_value(".5"), Ok(0.5));
        assert_eq!(parse_value("+3"), Ok(3.0));
        assert_eq!(bits("NaN:0x7ff0000000000002"), 0x7ff0_0000_0000_0002);
        assert_eq!(bits("nan:0XFFF8000000000000"), 0xfff8_0000_0000_0000);
        for bad in [
            "",
            " 1",
            "1 ",
            "1,5",
            "0x10",
            "1_000",
            "--1",
            "NaN:0x7ff000000000002",
            "NaN:0x7ff00000000000002",
            "NaN:0x7ff000000000000g",
            "NaN:0x7ff0000000000000",
            "NaN:0x3ff0000000000000",
            "-NaN:0x7ff0000000000002",
            "NaN:",
        ] {
            assert!(parse_value(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn value_formatting() {
        assert_eq!(format_value(1.0), "1.0");
        assert_eq!(format_value(-0.0), "-0.0");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e300), "1e+300");
        assert_eq!(format_value(1.7274e-5), "1.7274e-05");
        assert_eq!(format_value(0.0001), "0.0001");
        assert_eq!(format_value(1e15), "1000000000000000.0");
        assert_eq!(format_value(1e16), "1e+16");
        assert_eq!(format_value(-2.5e-7), "-2.5e-07");
        assert_eq!(format_value(5e-324), "5e-324");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::from_bits(CANONICAL_NAN_BITS)), "NaN");
        assert_eq!(
            format_value(f64::from_bits(0x7ff0_0000_0000_0002)),
            "NaN:0x7ff0000000000002"
        );
        assert_eq!(
            format_value(f64::from_bits(CANONICAL_NAN_BITS | SIGN_BIT)),
            "NaN:0xfff8000000000000"
        );
        for v in [
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            std::f64::consts::PI,
        ] {
            assert_eq!(
                parse_value(&format_value(v)).unwrap().to_bits(),
                v.to_bits()
            );
        }
    }

    // --- Export ----------------------------------------------------------

    fn written(format: ExportFormat, key: &SeriesKey, ts: i64, v: f64) -> String {
        let mut buf = Vec::new();
        write_sample(format, key, ts, v, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn export_lines() {
        let k = key(
            "http_requests_total",
            &[("path", "/a\"b\\c\nd"), ("code", "200")],
        );
        assert_eq!(
            written(ExportFormat::Tsv, &k, -5, 1.5),
            "http_requests_total{code=\"200\",path=\"/a\\\"b\\\\c\\nd\"}\t-5\t1.5\n"
        );
        assert_eq!(csv_header(), "series,timestamp_ms,value\n");
        assert_eq!(
            written(ExportFormat::Csv, &k, 7, f64::NEG_INFINITY),
            "\"http_requests_total{code=\"\"200\"\",path=\"\"/a\\\"\"b\\\\c\\nd\"\"}\",7,-Inf\n"
        );
        assert_eq!(
            written(ExportFormat::Jsonl, &k, 123, 1.5),
            "{\"metric\":\"http_requests_total\",\"labels\":{\"code\":\"200\",\
             \"path\":\"/a\\\"b\\\\c\\nd\"},\"timestamp_ms\":123,\"value\":\"1.5\"}\n"
        );
        let bare = key("up", &[]);
        assert_eq!(
            written(ExportFormat::Jsonl, &bare, 0, f64::from_bits(0x7ff0_0000_0000_0002)),
            "{\"metric\":\"up\",\"labels\":{},\"timestamp_ms\":0,\"value\":\"NaN:0x7ff0000000000002\"}\n"
        );
        let odd = key("m", &[("a", "\t\r\u{1}\u{8}\u{c}\u{1f}é😀 ")]);
        assert_eq!(
            written(ExportFormat::Jsonl, &odd, 0, -0.0),
            "{\"metric\":\"m\",\"labels\":{\"a\":\"\\t\\r\\u0001\\b\\f\\u001fé😀 \"},\
             \"timestamp_ms\":0,\"value\":\"-0.0\"}\n"
        );
    }

    // --- Properties ------------------------------------------------------

    /// Strings rich in the characters the parsers treat specially.
    fn tricky_line() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z_:0-9{}=\",\\\\ \t#.eE+-iutfTFN]{0,40}",
            "[a-z]{1,4}(,[a-z]{1,3}=[a-z\\\\ ,=]{0,3}){0,3} [a-z]{1,3}=[\"0-9a-z.i,\\\\ ]{0,8}( -?[0-9]{0,20})?",
            "[a-z]{1,4}(\\{([a-z]{1,3}=\"[a-z\\\\\"é]{0,4}\",?){0,3}\\}?)? ?[-+0-9.eNaInf]{0,6}( [-0-9.#]{0,20})?",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn values_round_trip_bit_exact(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            let text = format_value(v);
            prop_assert_eq!(parse_value(&text).map(f64::to_bits), Ok(bits), "{}", text);
        }

        #[test]
        fn nan_payloads_round_trip(payload in 1u64..(1 << 52), sign in any::<bool>()) {
            let bits = 0x7ff0_0000_0000_0000 | payload | if sign { SIGN_BIT } else { 0 };
            let text = format_value(f64::from_bits(bits));
            prop_assert_eq!(parse_value(&text).map(f64::to_bits), Ok(bits), "{}", text);
        }

        #[test]
        fn tsv_and_prometheus_lines_round_trip(
            labels in proptest::collection::btree_map("[a-z_][a-z0-9_]{0,5}", any::<String>(), 0..4),
            ts in any::<i64>(),
            bits in any::<u64>(),
            blanks in "[ \t]{1,3}",
        ) {
            let labels: Vec<(String, String)> = labels
                .into_iter()
                .filter(|(name, _)| name != METRIC_NAME_LABEL)
                .collect();
            let k = SeriesKey::from_pairs("m:x_1", &labels).unwrap();
            let value = f64::from_bits(bits);
            let tsv = written(ExportFormat::Tsv, &k, ts, value);
            let prometheus = format!("{k}{blanks}{}{blanks}{ts}\n", format_value(value));
            for (format, line) in [(Format::Tsv, tsv), (Format::Prometheus, prometheus)] {
                let back = one(format, &line);
                prop_assert_eq!(&back.key, &k);
                prop_assert_eq!(back.timestamp_ms, ts);
                prop_assert_eq!(back.value.to_bits(), bits);
            }
        }

        #[test]
        fn parsers_never_panic(
            line in tricky_line(),
            default_ts in any::<i64>(),
            small in any::<bool>(),
            max in 0usize..8,
        ) {
            // Small limits too, so that every limit's error path runs.
            let limits = if small {
                Limits {
                    max_line_bytes: max * 6,
                    max_labels: max,
                    max_label_name_bytes: max,
                    max_label_value_bytes: max,
                    max_fields: max,
                }
            } else {
                Limits::default()
            };
            for format in [Format::Tsv, Format::Prometheus, Format::Influx] {
                let mut out = Vec::new();
                let parser = LineParser::new(format, default_ts).with_limits(limits);
                match parser.parse_line(1, &line, &mut out) {
                    Err(e) => {
                        prop_assert!(out.is_empty());
                        prop_assert!(e.message.chars().count() < 2 * EXCERPT_CHARS + 200, "{}", e);
                    }
                    Ok(()) => {
                        for sample in &out {
                            prop_assert!(limits.check_key(&sample.key).is_ok(), "{:?}", sample);
                        }
                    }
                }
            }
        }

        #[test]
        fn influx_lines_round_trip(
            measurement in "[a-z_][a-z0-9_]{0,5}",
            tags in proptest::collection::btree_map("[a-z_][a-z0-9_]{0,5}", "[^\t\r\n]{1,8}", 0..4),
            fields in proptest::collection::btree_map("[a-z][a-z0-9_]{0,5}", any::<f64>(), 1..4),
            integer in any::<i64>(),
            ns in any::<i64>(),
        ) {
            let escape = |text: &str| {
                let mut out = String::new();
                for c in text.chars() {
                    if matches!(c, ',' | ' ' | '=' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out
            };
            let tags: Vec<(String, String)> = tags
                .into_iter()
                .filter(|(name, _)| name != METRIC_NAME_LABEL)
                .collect();
            let fields: Vec<(String, f64)> = fields
                .into_iter()
                .map(|(key, v)| (key, if v.is_finite() { v } else { 0.5 }))
                .collect();
            let mut line = measurement.clone();
            for (name, value) in &tags {
                line.push_str(&format!(",{name}={}", escape(value)));
            }
            let rendered: Vec<String> = fields
                .iter()
                .map(|(key, v)| format!("{key}={}", format_value(*v)))
                .collect();
            line.push_str(&format!(" {},int_={integer}i {ns}", rendered.join(",")));
            let samples = parse(Format::Influx, &line).unwrap();
            let mut want: Vec<(SeriesKey, u64)> = fields
                .iter()
                .map(|(key, v)| (SeriesKey::from_pairs(&format!("{measurement}_{key}"), &tags).unwrap(), v.to_bits()))
                .collect();
            want.push((
                SeriesKey::from_pairs(&format!("{measurement}_int_"), &tags).unwrap(),
                (integer as f64).to_bits(),
            ));
            let got: Vec<(SeriesKey, u64)> =
                samples.iter().map(|s| (s.key.clone(), s.value.to_bits())).collect();
            prop_assert_eq!(got, want, "{}", line);
            for s in &samples {
                prop_assert_eq!(s.timestamp_ms, ns.div_euclid(1_000_000));
            }
        }

        #[test]
        fn line_reader_splits_like_split(
            lines in proptest::collection::vec("[a-z\r]{0,12}", 0..12),
            final_newline in any::<bool>(),
            max in 0usize..10,
            buffer in 1usize..8,
        ) {
            let mut input = lines.join("\n");
            if final_newline && !lines.is_empty() {
                input.push('\n');
            }
            let got = read_lines(input.as_bytes(), max, buffer);
            let mut want: Vec<&str> = input.split('\n').collect();
            if input.is_empty() || input.ends_with('\n') {
                want.pop();
            }
            let want: Vec<(usize, Result<Vec<u8>, u64>)> = want
                .iter()
                .enumerate()
                .map(|(i, line)| {
                    let text = if line.len() > max { Err(line.len() as u64) } else { Ok(line.as_bytes().to_vec()) };
                    (i + 1, text)
                })
                .collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn sanitized_names_are_valid(name in "\\PC{1,12}") {
            prop_assert!(validate_metric_name(&sanitize_metric_name(&name)).is_ok());
            prop_assert!(validate_label_name(&sanitize_label_name(&name)).is_ok());
        }
    }
}
