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

/// Segment format version 1, written by strata 0.1 before the adaptive
/// sealed encodings (Gorilla chunks of at most 1024 samples).
#[test]
fn segment_format_v1_reads_back_exactly() {
    let bytes = std::fs::read(data("segment-v1.seg")).unwrap();
    assert_eq!(&bytes[0..8], b"STRATSEG");
    assert_eq!(
        u16::from_le_bytes([bytes[8], bytes[9]]),
        1,
        "the file is version 1"
    );
    let segment = Segment::open(data("segment-v1.seg")).unwrap();
    assert!(segment.verify().damage.is_empty());

    let mut expected: Vec<(SeriesKey, i64, u64)> = Vec::new();
    for line in std::fs::read_to_string(data("segment-v1.tsv"))
        .unwrap()
        .lines()
    {
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
    assert_eq!(actual.len(), 900);
    assert_eq!(actual, expected);
}
