//! Shared by the ingest_* fuzz targets: parse every line of the input with
//! one format and check what the parser accepts, and that the import's
//! `CachingParser` gives exactly what `LineParser` gives, line by line.

use strata::ingest::{
    write_sample, CachingParser, ExportFormat, Format, IndexedSample, LineParser, ParseError,
    ParsedSample,
};
use strata::SeriesKey;

/// Timestamp given to Prometheus and Influx lines without one.
const DEFAULT_TIMESTAMP_MS: i64 = 1_700_000_000_000;

pub fn check_lines(format: Format, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parser = LineParser::new(format, DEFAULT_TIMESTAMP_MS);
    let tsv = LineParser::new(Format::Tsv, DEFAULT_TIMESTAMP_MS);
    let mut out: Vec<ParsedSample> = vec![sentinel()];
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let before = out.len();
        match parser.parse_line(i + 1, line, &mut out) {
            Ok(()) => {
                for sample in &out[before..] {
                    check_sample(&tsv, sample);
                }
            }
            Err(_) => assert_eq!(out.len(), before, "a failed line changed the output"),
        }
        assert_eq!(out[0], sentinel(), "earlier output was modified");
        out.truncate(1);
    }
    check_cached(format, data);
}

/// Runs the raw lines (split at `\n`, not made UTF-8) through one
/// `CachingParser`, each line twice so that the second parse goes through
/// the cache, and compares every outcome with `LineParser`'s.
fn check_cached(format: Format, data: &[u8]) {
    let parser = LineParser::new(format, DEFAULT_TIMESTAMP_MS);
    let mut cached = CachingParser::new(parser);
    let mut keys: Vec<SeriesKey> = Vec::new();
    let mut out: Vec<IndexedSample> = Vec::new();
    for (i, line) in data.split(|&b| b == b'\n').flat_map(|l| [l, l]).enumerate() {
        out.clear();
        let got = cached
            .parse_line(
                i + 1,
                line,
                &mut out,
                |index, key| {
                    assert_eq!(index as usize, keys.len(), "series indexes are not dense");
                    keys.push(key.clone());
                    Ok::<(), ()>(())
                },
                |()| unreachable!("resolve refuses nothing"),
            )
            .map(|()| {
                out.iter()
                    .map(|s| (keys[s.series as usize].clone(), s.timestamp_ms, s.value.to_bits()))
                    .collect::<Vec<_>>()
            });
        let want = std::str::from_utf8(line)
            .map_err(|_| ParseError {
                line: i + 1,
                message: "not valid UTF-8".to_owned(),
            })
            .and_then(|text| {
                let mut samples = Vec::new();
                parser.parse_line(i + 1, text, &mut samples)?;
                Ok(samples
                    .into_iter()
                    .map(|s| (s.key, s.timestamp_ms, s.value.to_bits()))
                    .collect::<Vec<_>>())
            });
        assert_eq!(got, want, "CachingParser disagrees on {line:?}");
    }
}

fn sentinel() -> ParsedSample {
    ParsedSample {
        key: SeriesKey::new("sentinel", &[("k", "v")]).unwrap(),
        timestamp_ms: 1,
        value: 2.0,
    }
}

fn check_sample(tsv: &LineParser, sample: &ParsedSample) {
    let key = &sample.key;
    let rebuilt = SeriesKey::from_labels(key.labels().to_vec())
        .unwrap_or_else(|e| panic!("parsed key {key} is not a valid series key: {e}"));
    assert_eq!(&rebuilt, key, "parsed key is not in canonical form");
    let text = key.to_string();
    let reparsed = SeriesKey::parse(&text)
        .unwrap_or_else(|e| panic!("text form {text:?} of a parsed key does not parse: {e}"));
    assert_eq!(&reparsed, key, "key changed through its text form {text:?}");

    let mut line = Vec::new();
    write_sample(
        ExportFormat::Tsv,
        key,
        sample.timestamp_ms,
        sample.value,
        &mut line,
    )
    .unwrap();
    let line = String::from_utf8(line).expect("write_sample writes UTF-8");
    let mut back = Vec::new();
    tsv.parse_line(1, &line, &mut back).unwrap_or_else(|e| {
        panic!("TSV line {line:?} written for a parsed sample does not parse: {e}")
    });
    assert_eq!(
        back.len(),
        1,
        "TSV line {line:?} gave {} samples",
        back.len()
    );
    assert_eq!(&back[0].key, key, "key changed through TSV {line:?}");
    assert_eq!(
        back[0].timestamp_ms, sample.timestamp_ms,
        "timestamp changed through TSV {line:?}"
    );
    assert_eq!(
        back[0].value.to_bits(),
        sample.value.to_bits(),
        "value bits changed through TSV {line:?}"
    );
}
