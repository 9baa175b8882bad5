//! [`CachingParser`]: the import hot path. Maps each line's series text to a
//! dense series index, so a series text seen before costs one comparison
//! (the previous line's series) or one hash lookup, and no allocation.
//!
//! # How a line is read
//!
//! - **Tsv**: the series text is the bytes before the line's second-to-last
//!   tab (the same split as [`LineParser`]).
//! - **Prometheus**: the series text is found by a byte scan that follows
//!   the parser's grammar: blanks skipped, the metric name, blanks, and if a
//!   `{` follows, everything up to the first `}` outside a quoted value
//!   (a backslash inside quotes escapes the next byte). Without labels the
//!   name must be followed by a blank, as the parser requires.
//! - **Influx** has no fast path: one line makes several series, so every
//!   line is parsed in full; its keys still get indexes through the key map.
//!
//! When the series text is known, only the rest of the line (timestamp and
//! value, with the parser's own functions) is parsed. When it is not, or the
//! rest does not parse, the line goes through [`LineParser::parse_line`],
//! which gives the exact error message; a key that parses is looked up in a
//! map from [`SeriesKey`] to index (two texts may spell one key) or handed
//! to the caller's `resolve`, and the text is remembered.
//!
//! # Invariants
//!
//! - For every line, the samples (index → key, timestamp, value bits) and
//!   the error are the ones [`LineParser::parse_line`] gives. This holds
//!   because a text enters the cache only after a full parse of a line
//!   starting with it succeeded, and the parser's reading of the series
//!   depends only on those bytes: any other line starting with the same
//!   text has the same key, and its rest is parsed by the same function.
//! - Indexes are handed out densely from 0, in the order `resolve` accepts
//!   keys; a key `resolve` refuses gets no index and is asked for again
//!   when it appears again.
//! - Memory grows with the number of distinct series texts and keys only.

use std::collections::HashMap;

use super::{
    is_blank, parse_prometheus_tail, parse_timestamp, parse_value, Cursor, Format, LineParser,
    ParseError, ParsedSample,
};
use crate::SeriesKey;

/// One sample of a parsed line: the dense index of its series, its
/// timestamp in Unix milliseconds and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexedSample {
    pub series: u32,
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A [`LineParser`] with a per-import cache from series text to a dense
/// series index (see the module documentation).
#[derive(Debug)]
pub struct CachingParser {
    parser: LineParser,
    /// Series text (exact bytes) → index.
    texts: HashMap<Box<[u8]>, u32>,
    /// Key → index, for lines parsed in full.
    keys: HashMap<SeriesKey, u32>,
    /// The previous hit or insertion, checked before hashing: input sorted
    /// by series repeats it line after line.
    last: Option<(Box<[u8]>, u32)>,
    /// Full-parse output, reused.
    parsed: Vec<ParsedSample>,
}

impl CachingParser {
    pub fn new(parser: LineParser) -> Self {
        Self {
            parser,
            texts: HashMap::new(),
            keys: HashMap::new(),
            last: None,
            parsed: Vec::new(),
        }
    }

    /// Number of series indexes handed out.
    pub fn series_count(&self) -> usize {
        self.keys.len()
    }

    /// Parses one line (without its `\n`; a trailing `\r` is ignored) and
    /// appends its samples to `out`. A key never seen before is passed to
    /// `resolve` with the index it will get; if `resolve` refuses it with
    /// `Err(e)`, the sample is left out and `rejected(e)` is called (the
    /// rest of the line is kept). A malformed line (including one that is
    /// not UTF-8) is an error numbered `line_no` and appends nothing.
    pub fn parse_line<E>(
        &mut self,
        line_no: usize,
        line: &[u8],
        out: &mut Vec<IndexedSample>,
        mut resolve: impl FnMut(u32, &SeriesKey) -> Result<(), E>,
        mut rejected: impl FnMut(E),
    ) -> Result<(), ParseError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let split = if line.len() > self.parser.limits.max_line_bytes {
            None
        } else {
            match self.parser.format {
                Format::Tsv => tsv_series_end(line),
                Format::Prometheus => prometheus_series(line),
                Format::Influx => None,
            }
        };
        if let Some((start, end)) = split {
            if let Some(series) = self.lookup(line.get(start..end).unwrap_or_default()) {
                if let Some((timestamp_ms, value)) = self.parse_rest(line, end) {
                    out.push(IndexedSample {
                        series,
                        timestamp_ms,
                        value,
                    });
                    return Ok(());
                }
            }
        }
        self.parse_full(line_no, line, split, out, &mut resolve, &mut rejected)
    }

    fn lookup(&mut self, text: &[u8]) -> Option<u32> {
        if let Some((last, index)) = &self.last {
            if **last == *text {
                return Some(*index);
            }
        }
        let index = *self.texts.get(text)?;
        self.remember_last(text, index);
        Some(index)
    }

    fn remember_last(&mut self, text: &[u8], index: u32) {
        match &mut self.last {
            Some((last, last_index)) if last.len() == text.len() => {
                last.copy_from_slice(text);
                *last_index = index;
            }
            last => *last = Some((text.into(), index)),
        }
    }

    /// The timestamp and value after the series text ending at `end`, or
    /// `None` when they do not parse (the full parse then says why).
    fn parse_rest(&self, line: &[u8], end: usize) -> Option<(i64, f64)> {
        let rest = std::str::from_utf8(line.get(end..)?).ok()?;
        match self.parser.format {
            Format::Tsv => {
                let (ts_text, value_text) = rest.strip_prefix('\t')?.split_once('\t')?;
                let timestamp_ms = parse_timestamp(ts_text.trim_matches(is_blank), "").ok()?;
                let value = parse_value(value_text.trim_matches(is_blank)).ok()?;
                Some((timestamp_ms, value))
            }
            Format::Prometheus => {
                let mut cur = Cursor::new(rest);
                let default_ts = self.parser.default_timestamp_ms;
                let (value, timestamp_ms) = parse_prometheus_tail(&mut cur, default_ts).ok()?;
                Some((timestamp_ms, value))
            }
            Format::Influx => None,
        }
    }

    fn parse_full<E>(
        &mut self,
        line_no: usize,
        line: &[u8],
        split: Option<(usize, usize)>,
        out: &mut Vec<IndexedSample>,
        resolve: &mut impl FnMut(u32, &SeriesKey) -> Result<(), E>,
        rejected: &mut impl FnMut(E),
    ) -> Result<(), ParseError> {
        let text = std::str::from_utf8(line).map_err(|_| ParseError {
            line: line_no,
            message: "not valid UTF-8".to_owned(),
        })?;
        let mut parsed = std::mem::take(&mut self.parsed);
        parsed.clear();
        let result = self.parser.parse_line(line_no, text, &mut parsed);
        let cacheable = parsed.len() == 1;
        for sample in parsed.drain(..) {
            let index = match self.keys.get(&sample.key) {
                Some(&index) => index,
                None => {
                    let index = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
                    if let Err(e) = resolve(index, &sample.key) {
                        rejected(e);
                        continue;
                    }
                    self.keys.insert(sample.key, index);
                    index
                }
            };
            if cacheable {
                if let Some(series_text) = split.and_then(|(start, end)| line.get(start..end)) {
                    self.texts.insert(series_text.into(), index);
                    self.remember_last(series_text, index);
                }
            }
            out.push(IndexedSample {
                series: index,
                timestamp_ms: sample.timestamp_ms,
                value: sample.value,
            });
        }
        self.parsed = parsed;
        result
    }
}

/// Tsv: the end of the series text, before the second-to-last tab.
fn tsv_series_end(line: &[u8]) -> Option<(usize, usize)> {
    let last = line.iter().rposition(|&b| b == b'\t')?;
    let end = line.get(..last)?.iter().rposition(|&b| b == b'\t')?;
    Some((0, end))
}

/// Prometheus: the start and end of the series text, scanned as the parser
/// reads it (see the module documentation); `None` when the line cannot
/// start with a series.
fn prometheus_series(line: &[u8]) -> Option<(usize, usize)> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !blank(b))?;
    let name_len = line
        .get(start..)?
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b':'))
        .unwrap_or(line.len() - start);
    let name_end = start + name_len;
    let blanks = line
        .get(name_end..)?
        .iter()
        .position(|b| !blank(b))
        .unwrap_or(line.len() - name_end);
    let brace = name_end + blanks;
    if line.get(brace) != Some(&b'{') {
        return (name_len > 0 && blanks > 0).then_some((start, name_end));
    }
    let mut quoted = false;
    let mut escaped = false;
    for (i, &b) in line.iter().enumerate().skip(brace + 1) {
        if escaped {
            escaped = false;
        } else if quoted {
            match b {
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else if b == b'"' {
            quoted = true;
        } else if b == b'}' {
            return Some((start, i + 1));
        }
    }
    None
}
