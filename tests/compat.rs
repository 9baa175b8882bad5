//! Files written by earlier format versions stay readable. Each file under
//! tests/data/ was written by the release named in its test and is never
//! regenerated; its expected contents are the .tsv next to it (canonical
//! export format).

use std::path::Path;

use strata::{Segment, SeriesKey, TimeRange};

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn parse_value(text: &str) -> f64 {
    match text {
        "NaN" => f64::from_bits(0x7ff8_0000_0000_0000),
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap(),
    }
}

/// Reads a segment file from tests/data and compares it, sample by sample
/// and bit for bit, with the export next to it.
fn assert_reads_back_exactly(name: &str, tsv: &str, samples: usize) -> Segment {
    let segment = Segment::open(data(name)).unwrap();
    assert!(segment.verify().damage.is_empty());

    let mut expected: Vec<(SeriesKey, i64, u64)> = Vec::new();
    for line in std::fs::read_to_string(data(tsv)).unwrap().lines() {
        let mut fields = line.rsplitn(3, '\t');
        let value = parse_value(fields.next().unwrap());
        let ts: i64 = fields.next().unwrap().parse().unwrap();
        let key = SeriesKey::parse(fields.next().unwrap()).unwrap();
        expected.push((key, ts, value.to_bits()));
    }
    expected.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));

    let mut actual = Vec::new();
    for id in 0..segment.series_count() as u32 {
        let key = segment.series_key(id).unwrap().clone();
        for sample in segment.read_samples(id, TimeRange::ALL).unwrap() {
            actual.push((key.clone(), sample.timestamp_ms, sample.value.to_bits()));
        }
    }
    assert_eq!(actual.len(), samples);
    assert_eq!(actual, expected);
    segment
}

fn version_of(name: &str) -> u16 {
    let bytes = std::fs::read(data(name)).unwrap();
    assert_eq!(&bytes[0..8], b"STRATSEG");
    u16::from_le_bytes([bytes[8], bytes[9]])
}

/// Segment format version 1, written by strata 0.1 before the adaptive
/// sealed encodings (Gorilla chunks of at most 1024 samples).
#[test]
fn segment_format_v1_reads_back_exactly() {
    assert_eq!(version_of("segment-v1.seg"), 1);
    assert_reads_back_exactly("segment-v1.seg", "segment-v1.tsv", 900);
}

/// Segment format version 2 with zstd-compressed tables, written by strata
/// at c301a05 (before readers bounded table expansion to 64 times, issue 7)
/// from tests/data/node-exporter-slice.tsv with `strata import`.
#[test]
fn segment_format_v2_reads_back_exactly() {
    assert_eq!(version_of("segment-v2.seg"), 2);
    let segment = assert_reads_back_exactly("segment-v2.seg", "segment-v2.tsv", 2070);
    let in_memory = Segment::open_in_memory(data("segment-v2.seg")).unwrap();
    assert_eq!(in_memory.file_len(), segment.file_len());
    assert_eq!(in_memory.footer_crc(), segment.footer_crc());
    assert_eq!(segment.file_len(), 2673);
}
