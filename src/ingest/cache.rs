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
//! - **Csv**: the series text is a quoted first field, quotes included,
//!   when a `,` follows it (`columns::csv_series`); unquoted series get a
//!   full parse.
//! - **Influx** has no fast path: one line makes several series, so every
//!   line is parsed in full; its keys still get indexes through the key map.
//!   Nor has **Jsonl** (members come in any order): its keys are looked up
//!   in the key map too.
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
//!   One parser hands out at most `u32::MAX` indexes; a line that would need
//!   more is an error.

use std::collections::{HashMap, HashSet};

use memchr::{memchr2, memrchr};

use super::metadata::MetadataCollector;
use super::{
    columns, is_blank, parse_prometheus_tail, parse_timestamp, parse_value, Cursor, Format,
    LineParser, ParseError, ParsedSample, Warning, WarningKind,
};
use crate::ingest::parse_metadata_line;
use crate::metadata::MetricMetadata;
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
    /// Warnings not yet taken by [`CachingParser::take_warnings`].
    warnings: Vec<Warning>,
    /// Names already reported as renamed: each is reported once.
    renamed: HashSet<String>,
    /// `# TYPE`, `# HELP` and `# UNIT` lines read (Prometheus and Tsv).
    metadata: MetadataCollector,
}

impl CachingParser {
    pub fn new(parser: LineParser) -> Self {
        Self {
            parser,
            texts: HashMap::new(),
            keys: HashMap::new(),
            last: None,
            parsed: Vec::new(),
            warnings: Vec::new(),
            renamed: HashSet::new(),
            metadata: MetadataCollector::default(),
        }
    }

    /// The metric families whose metadata (`# TYPE`, `# HELP`, `# UNIT`
    /// lines, Prometheus and Tsv formats) the lines parsed since the last
    /// call set or changed, with their metadata so far: ready for
    /// [`crate::Db::set_metadata`].
    pub fn take_metadata(&mut self) -> Vec<(String, MetricMetadata)> {
        self.metadata.take_changed()
    }

    /// The [`Warning`]s of the lines parsed since the last call, in line
    /// order. A renamed name is reported once per parser, on the first line
    /// that has it, so a file repeating it does not repeat the warning.
    pub fn take_warnings(&mut self) -> std::vec::Drain<'_, Warning> {
        self.warnings.drain(..)
    }

    /// Number of series indexes handed out.
    pub fn series_count(&self) -> usize {
        self.keys.len()
    }

    /// Parses one line (its `\n` or `\r\n` may be left on) and
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
        // As `LineParser::parse_line`: one `\n`, the length, one `\r`.
        let full = line.strip_suffix(b"\n").unwrap_or(line);
        let line = full.strip_suffix(b"\r").unwrap_or(full);
        let split = if full.len() > self.parser.limits.max_line_bytes {
            None
        } else {
            match self.parser.format {
                Format::Tsv => tsv_series_end(line),
                Format::Prometheus => prometheus_series(line),
                Format::Csv => columns::csv_series(line),
                Format::Influx | Format::Jsonl => None,
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
        self.parse_full(line_no, full, split, out, &mut resolve, &mut rejected)
    }

    fn reads_metadata(&self) -> bool {
        matches!(self.parser.format, Format::Prometheus | Format::Tsv)
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
            Format::Csv => columns::parse_csv_rest(rest),
            Format::Influx | Format::Jsonl => None,
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
        let known_warnings = self.warnings.len();
        let result =
            self.parser
                .parse_line_with_warnings(line_no, text, &mut parsed, &mut self.warnings);
        let renamed = &mut self.renamed;
        let mut index = 0;
        self.warnings.retain(|warning| {
            index += 1;
            match &warning.kind {
                WarningKind::Renamed { from, .. } if index > known_warnings => {
                    !renamed.contains(from) && renamed.insert(from.clone())
                }
                _ => true,
            }
        });
        if result.is_ok() && self.keys.len() + parsed.len() > u32::MAX as usize {
            self.parsed = parsed;
            return Err(ParseError {
                line: line_no,
                message: format!("more than {} series in one import", u32::MAX),
            });
        }
        if result.is_ok() && parsed.is_empty() && self.reads_metadata() {
            if let Ok(Some(line)) = parse_metadata_line(text) {
                self.metadata.record(line);
            }
        }
        let cacheable = parsed.len() == 1;
        for sample in parsed.drain(..) {
            let index = match self.keys.get(&sample.key) {
                Some(&index) => index,
                None => {
                    // Fits: checked for the whole line above.
                    let index = self.keys.len() as u32;
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
    let last = memrchr(b'\t', line)?;
    let end = memrchr(b'\t', line.get(..last)?)?;
    Some((0, end))
}

/// Bytes of a metric name, `[a-zA-Z0-9_:]`, as a table: the name scan is
/// the longest per-byte loop of the Prometheus fast path.
static METRIC_CHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b':';
        b += 1;
    }
    table
};

/// Prometheus: the start and end of the series text, scanned as the parser
/// reads it (see the module documentation); `None` when the line cannot
/// start with a series.
fn prometheus_series(line: &[u8]) -> Option<(usize, usize)> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !blank(b))?;
    let name_len = line
        .get(start..)?
        .iter()
        .position(|&b| !METRIC_CHAR[usize::from(b)])
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
    let mut i = brace + 1;
    loop {
        // Outside quotes: to the closing brace or the next quoted value.
        i += memchr2(b'}', b'"', line.get(i..)?)?;
        if line.get(i) == Some(&b'}') {
            return Some((start, i + 1));
        }
        // Inside quotes: to the closing quote, a backslash escaping the
        // byte after it.
        i += 1;
        loop {
            i += memchr2(b'"', b'\\', line.get(i..)?)?;
            if line.get(i) == Some(&b'"') {
                break;
            }
            i += 2;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a parsed line gave, with indexes turned back into keys.
    type Outcome = Result<Vec<(SeriesKey, i64, u64)>, ParseError>;

    /// Parses `lines` with one `CachingParser`, recording the keys
    /// `resolve` saw; `refuse` names a metric whose series are refused.
    struct Run {
        outcomes: Vec<Outcome>,
        resolved: Vec<SeriesKey>,
        rejected: usize,
    }

    fn run(format: Format, lines: &[&[u8]], refuse: &str) -> Run {
        let mut parser = CachingParser::new(LineParser::new(format, 777));
        let mut resolved: Vec<SeriesKey> = Vec::new();
        let mut rejected = 0;
        let mut outcomes = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let mut out = vec![IndexedSample {
                series: 99,
                timestamp_ms: 1,
                value: 2.0,
            }];
            let result = parser.parse_line(
                i + 1,
                line,
                &mut out,
                |index, key| {
                    if key.metric() == refuse {
                        return Err(());
                    }
                    assert_eq!(index as usize, resolved.len(), "indexes are dense");
                    resolved.push(key.clone());
                    Ok(())
                },
                |()| rejected += 1,
            );
            assert_eq!(out[0].series, 99, "earlier output changed");
            if result.is_err() {
                assert_eq!(out.len(), 1, "a failed line appended samples");
            }
            outcomes.push(result.map(|()| {
                out[1..]
                    .iter()
                    .map(|s| {
                        let key = resolved[s.series as usize].clone();
                        (key, s.timestamp_ms, s.value.to_bits())
                    })
                    .collect()
            }));
        }
        assert_eq!(parser.series_count(), resolved.len());
        Run {
            outcomes,
            resolved,
            rejected,
        }
    }

    /// What `LineParser` alone gives for `line`.
    fn plain(format: Format, line_no: usize, line: &[u8]) -> Outcome {
        let line = std::str::from_utf8(line).map_err(|_| ParseError {
            line: line_no,
            message: "not valid UTF-8".to_owned(),
        })?;
        let mut out = Vec::new();
        LineParser::new(format, 777).parse_line(line_no, line, &mut out)?;
        Ok(out
            .into_iter()
            .map(|s| (s.key, s.timestamp_ms, s.value.to_bits()))
            .collect())
    }

    fn key(metric: &str, labels: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new(metric, labels).unwrap()
    }

    #[test]
    fn repeated_tsv_series_resolve_once_and_keep_values_bit_exact() {
        let lines: [&[u8]; 4] = [
            b"up{job=\"a\"}\t1000\t1.5",
            b"up{job=\"a\"}\t2000\tNaN:0x7ff0000000000002\r",
            b"up{job=\"b\"}\t1000\t-0.0",
            b"up{job=\"a\"}\t3000\t+Inf",
        ];
        let r = run(Format::Tsv, &lines, "");
        let a = key("up", &[("job", "a")]);
        let b = key("up", &[("job", "b")]);
        assert_eq!(r.resolved, vec![a.clone(), b.clone()]);
        let expected = [
            (a.clone(), 1000, 1.5f64.to_bits()),
            (a.clone(), 2000, 0x7ff0_0000_0000_0002),
            (b, 1000, (-0.0f64).to_bits()),
            (a, 3000, f64::INFINITY.to_bits()),
        ];
        for (outcome, want) in r.outcomes.iter().zip(expected) {
            assert_eq!(outcome.as_ref().unwrap(), &vec![want]);
        }
    }

    #[test]
    fn texts_spelling_one_key_share_its_index() {
        let lines: [&[u8]; 4] = [
            b"up{a=\"1\"} 5 100",
            b"  up { a = \"1\" , } 6 200 # {trace=\"x\"} 1",
            b"up{a=\"1\",b=\"\"} 7",
            b"{__name__=\"up\",a=\"1\"} 8 300",
        ];
        let r = run(Format::Prometheus, &lines, "");
        let up = key("up", &[("a", "1")]);
        assert_eq!(r.resolved, vec![up.clone()]);
        let values: Vec<_> = r.outcomes.into_iter().map(|o| o.unwrap()).collect();
        assert_eq!(
            values,
            vec![
                vec![(up.clone(), 100, 5f64.to_bits())],
                vec![(up.clone(), 200, 6f64.to_bits())],
                vec![(up.clone(), 777, 7f64.to_bits())],
                vec![(up, 300, 8f64.to_bits())],
            ]
        );
    }

    #[test]
    fn influx_renames_are_reported_once_and_string_fields_per_line() {
        let mut parser = CachingParser::new(LineParser::new(Format::Influx, 0));
        let mut out = Vec::new();
        let mut warned = Vec::new();
        for (line_no, line) in [
            "m,http-method=GET f=1,s=\"x\"",
            "m,http-method=PUT f=1,s=\"y\"",
            "m,http-method=PUT f=1 x",
            "m,http-method=GET,a.b=c f=2",
        ]
        .into_iter()
        .enumerate()
        {
            let parsed = parser.parse_line(
                line_no + 1,
                line.as_bytes(),
                &mut out,
                |_, _| Ok::<(), ()>(()),
                |()| {},
            );
            assert_eq!(parsed.is_err(), line_no == 2, "{line}");
            warned.extend(parser.take_warnings().map(|w| w.to_string()));
        }
        assert_eq!(
            warned,
            [
                "line 1: \"http-method\" imported as http_method",
                "line 1: string field \"s\" left out (a string cannot be a sample)",
                "line 2: string field \"s\" left out (a string cannot be a sample)",
                "line 4: \"a.b\" imported as a_b",
            ]
        );
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn prometheus_series_scan_follows_quotes_and_escapes() {
        let line = br#"m{a="}",b="x\"}"} 1 2"#;
        assert_eq!(prometheus_series(line), Some((0, line.len() - 4)));
        assert_eq!(prometheus_series(b" up 1"), Some((1, 3)));
        assert_eq!(prometheus_series(b"up\t{a=\"1\"} 1"), Some((0, 10)));
        // The parser needs a blank after a name without labels.
        assert_eq!(prometheus_series(b"up#1 2"), None);
        assert_eq!(prometheus_series(b"up"), None);
        assert_eq!(prometheus_series(b"up{a=\"1\\"), None);
        assert_eq!(prometheus_series(b"up{a=\"1\""), None);
        assert_eq!(tsv_series_end(b"a\tb\tc\td"), Some((0, 3)));
        assert_eq!(tsv_series_end(b"a\tb"), None);
    }

    #[test]
    fn errors_after_a_cached_series_are_the_parsers() {
        let lines: [&[u8]; 6] = [
            b"up 1 100",
            b"up 1.5x 100",
            b"up 1 100.5",
            b"up#1 2",
            b"up 1 100 junk",
            b"up \xff 100",
        ];
        let r = run(Format::Prometheus, &lines, "");
        for (i, (outcome, line)) in r.outcomes.iter().zip(lines).enumerate() {
            assert_eq!(outcome, &plain(Format::Prometheus, i + 1, line), "{line:?}");
        }
        assert_eq!(
            r.outcomes[5].as_ref().unwrap_err().to_string(),
            "line 6: not valid UTF-8"
        );
        assert!(r.outcomes[2]
            .as_ref()
            .unwrap_err()
            .message
            .contains("OpenMetrics timestamps in seconds"));
    }

    #[test]
    fn refused_series_are_reported_per_sample_and_asked_again() {
        let lines: [&[u8]; 3] = [
            b"bad 1 100",
            b"cpu,host=a bad=1,good=2 5000000",
            b"bad 2 200",
        ];
        let prometheus = run(Format::Prometheus, &[lines[0], lines[2]], "bad");
        assert_eq!(prometheus.rejected, 2);
        assert_eq!(prometheus.outcomes, vec![Ok(vec![]), Ok(vec![])]);
        let influx = run(Format::Influx, &[lines[1]], "cpu_bad");
        assert_eq!(influx.rejected, 1);
        let good = key("cpu_good", &[("host", "a")]);
        assert_eq!(influx.outcomes, vec![Ok(vec![(good, 5, 2f64.to_bits())])]);
    }

    /// Pieces that make lines of every format, valid and not.
    fn fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "up",
            "m:x",
            "{",
            "}",
            "a",
            "b",
            "=",
            "\"",
            "\"1\"",
            "\"\"",
            ",",
            "\\",
            "\\\"",
            " ",
            "\t",
            "\t",
            "1",
            "-0.0",
            "NaN:0x7ff0000000000002",
            "+Inf",
            "1e3",
            "100",
            "-5",
            "#",
            "x",
            "\r",
            "é",
            "__name__",
            "i",
            "u",
            "t",
        ])
    }

    /// A line most often made of a series text and a rest that parse.
    fn line() -> impl Strategy<Value = String> {
        let series = prop::sample::select(vec![
            "up",
            "up{a=\"1\"}",
            " up { a = \"1\" , }",
            "up{a=\"1\",b=\"\"}",
            "{__name__=\"up\",a=\"1\"}",
            "m:x{a=\"}\\\"\"}",
            "m{a=\"\\\\\"}",
            "up{a=\"1\"",
            "cpu,host=a",
            "cpu\\ x,h\\,=v",
            "é{a=\"é\"}",
            "\"up\"",
            "\"up{a=\"\"x,\\\"\"\"\"}\"",
            "\"up{a=\"\"1\"\"}",
        ]);
        let rest = prop::sample::select(vec![
            "\t100\t1",
            "\t-5\tNaN:0x7ff0000000000002",
            " 1 100",
            " -0.0",
            "\t100\t1\r",
            " +Inf 100 # {t=\"1\"} 2",
            " f=1,g=2i 1000000",
            " f=t",
            "\t1.5\t1",
            " 1 2 3",
            "\t\t",
            " 1e3\t7",
            ",100,1",
            ",-5, NaN:0x7ff0000000000002\r",
            ",1,\"2\"",
            ",1,2,3",
            "x,1,2",
            "",
        ]);
        prop_oneof![
            (series, rest).prop_map(|(s, r)| format!("{s}{r}")),
            prop::collection::vec(fragment(), 0..14).prop_map(|f| f.concat()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        /// Over any sequence of lines (many sharing series text), the cache
        /// changes nothing: same samples, same errors as `LineParser`.
        #[test]
        fn caching_parser_agrees_with_line_parser(
            mut lines in prop::collection::vec(line(), 1..24),
            repeat in prop::collection::vec(any::<prop::sample::Index>(), 0..24),
        ) {
            // Lines seen again, as in real input.
            let again: Vec<String> = repeat.iter().map(|i| i.get(&lines).clone()).collect();
            lines.extend(again);
            let bytes: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
            for format in [Format::Tsv, Format::Prometheus, Format::Influx, Format::Csv, Format::Jsonl] {
                let r = run(format, &bytes, "");
                for (i, (outcome, line)) in r.outcomes.iter().zip(&bytes).enumerate() {
                    prop_assert_eq!(outcome, &plain(format, i + 1, line), "{:?} {:?}", format, line);
                }
            }
        }
    }
}
