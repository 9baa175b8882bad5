//! Segment files against a naive in-memory model, and under damage.

use std::collections::BTreeMap;

use proptest::prelude::*;
use strata::{
    Corruption, Error, InputError, MatchOp, Matcher, Sample, Segment, SegmentWriter, SeriesKey,
    TimeRange,
};

type Model = BTreeMap<SeriesKey, Vec<Sample>>;

fn key_strategy() -> impl Strategy<Value = SeriesKey> {
    (
        0..4usize,
        proptest::option::of(0..3usize),
        proptest::option::of(0..2usize),
    )
        .prop_map(|(metric, job, env)| {
            let mut labels = Vec::new();
            if let Some(job) = job {
                labels.push(("job", ["api", "db", "cache"][job]));
            }
            if let Some(env) = env {
                labels.push(("env", ["prod", "dev"][env]));
            }
            SeriesKey::new(
                ["up", "cpu_seconds_total", "mem_bytes", "a:b"][metric],
                &labels,
            )
            .unwrap()
        })
}

fn samples_strategy() -> impl Strategy<Value = Vec<Sample>> {
    let timestamp = prop_oneof![
        any::<i64>(),
        -5_000i64..5_000,
        Just(i64::MIN),
        Just(i64::MAX),
    ];
    let value = prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        (-100i32..100).prop_map(|v| f64::from(v) / 4.0),
        Just(f64::NAN),
    ];
    prop_oneof![
        4 => proptest::collection::btree_map(timestamp, value.clone(), 1..60),
        // long enough to span several chunks
        1 => (1usize..2_600, any::<u64>()).prop_map(|(n, seed)| {
            (0..n as i64)
                .map(|i| (i * 1_000 + (seed as i64 % 7), (i as f64).sqrt()))
                .collect()
        }),
    ]
    .prop_map(|map| map.into_iter().map(|(t, v)| Sample::new(t, v)).collect())
}

fn model_strategy() -> impl Strategy<Value = Model> {
    proptest::collection::btree_map(key_strategy(), samples_strategy(), 0..8)
}

fn matcher_strategy() -> impl Strategy<Value = Matcher> {
    const NAMES: [&str; 4] = ["__name__", "job", "env", "missing"];
    const VALUES: [&str; 7] = ["up", "api", "prod", "", "d.*", "api|db", ".+"];
    const OPS: [MatchOp; 4] = [
        MatchOp::Equal,
        MatchOp::NotEqual,
        MatchOp::Regex,
        MatchOp::NotRegex,
    ];
    (
        proptest::sample::select(&NAMES[..]),
        proptest::sample::select(&OPS[..]),
        proptest::sample::select(&VALUES[..]),
    )
        .prop_map(|(name, op, value)| Matcher::new(name, op, value).unwrap())
}

fn write_model(dir: &std::path::Path, model: &Model) -> std::path::PathBuf {
    let path = dir.join("model.seg");
    let mut writer = SegmentWriter::create(&path).unwrap();
    // insertion order must not matter: write in reverse
    for (key, samples) in model.iter().rev() {
        writer.add_series(key, samples).unwrap();
    }
    writer.finish().unwrap();
    path
}

fn bits(samples: &[Sample]) -> Vec<(i64, u64)> {
    samples
        .iter()
        .map(|s| (s.timestamp_ms, s.value.to_bits()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn segment_matches_model(
        model in model_strategy(),
        ranges in proptest::collection::vec((any::<i64>(), any::<i64>()), 1..6),
        matchers in proptest::collection::vec(matcher_strategy(), 0..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = write_model(dir.path(), &model);
        let segment = Segment::open(&path).unwrap();
        prop_assert_eq!(segment.series_count(), model.len());
        prop_assert_eq!(
            segment.footer().sample_count,
            model.values().map(|s| s.len() as u64).sum::<u64>()
        );

        for (key, samples) in &model {
            let id = segment.find_series(key).unwrap();
            prop_assert_eq!(segment.series_key(id), Some(key));
            let all = segment.read_samples(id, TimeRange::ALL).unwrap();
            prop_assert_eq!(bits(&all), bits(samples));
            for &(a, b) in &ranges {
                let range = TimeRange::new(a.min(b), a.max(b));
                let expected: Vec<Sample> =
                    samples.iter().copied().filter(|s| range.contains(s.timestamp_ms)).collect();
                let read = segment.read_samples(id, range).unwrap();
                prop_assert_eq!(bits(&read), bits(&expected));
            }
        }

        let selected: Vec<&SeriesKey> = segment
            .select(&matchers)
            .into_iter()
            .map(|id| segment.series_key(id).unwrap())
            .collect();
        let expected: Vec<&SeriesKey> = model
            .keys()
            .filter(|key| matchers.iter().all(|m| m.matches_key(key)))
            .collect();
        prop_assert_eq!(selected, expected);
    }
}

fn small_model() -> Model {
    let mut model = Model::new();
    for (i, job) in ["api", "db", "cache"].into_iter().enumerate() {
        let key = SeriesKey::new("requests_total", &[("job", job)]).unwrap();
        let samples = (0..12)
            .map(|t| Sample::new(t * 10_000 + i as i64, (t * t) as f64 + 0.5))
            .collect();
        model.insert(key, samples);
    }
    model
}

/// Opens `bytes` and reads every series fully: Ok(data) or the first error.
fn open_and_scan(bytes: Vec<u8>) -> Result<Model, Error> {
    let segment = Segment::from_bytes("damaged.seg", bytes)?;
    let mut out = Model::new();
    for id in 0..segment.series_count() as u32 {
        let key = segment.series_key(id).unwrap().clone();
        out.insert(key, segment.read_samples(id, TimeRange::ALL)?);
    }
    Ok(out)
}

fn same_data(a: &Model, b: &Model) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, sa), (kb, sb))| ka == kb && bits(sa) == bits(sb))
}

#[test]
fn every_byte_flip_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model();
    let bytes = std::fs::read(write_model(dir.path(), &model)).unwrap();
    assert!(same_data(&open_and_scan(bytes.clone()).unwrap(), &model));

    let mut detected = 0;
    for position in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[position] ^= mask;
            match open_and_scan(damaged) {
                Err(Error::Corrupt(e)) => {
                    assert_eq!(e.path, std::path::Path::new("damaged.seg"));
                    assert!(
                        e.offset <= bytes.len() as u64,
                        "offset {} past the file",
                        e.offset
                    );
                    detected += 1;
                }
                Err(other) => panic!("byte {position} ^ {mask:#x}: untyped error {other}"),
                // Every byte of a segment is under some crc32, so a flip
                // that reads back at all must read back the same data.
                Ok(read) => assert!(
                    same_data(&read, &model),
                    "byte {position} ^ {mask:#x}: garbage accepted as data"
                ),
            }
        }
    }
    assert_eq!(
        detected,
        bytes.len() * 3,
        "every flip is covered by a checksum"
    );
}

#[test]
fn every_truncation_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(write_model(dir.path(), &small_model())).unwrap();
    for len in 0..bytes.len() {
        match open_and_scan(bytes[..len].to_vec()) {
            Err(Error::Corrupt(_)) => {}
            other => panic!("truncation to {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn damaged_chunk_names_file_offset_and_series() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), &small_model());
    let mut bytes = std::fs::read(&path).unwrap();
    // The first chunk starts right after the 16-byte header.
    bytes[30] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let segment = Segment::open(&path).unwrap();
    let report = segment.verify();
    assert_eq!(report.damage.len(), 1);
    let Error::Corrupt(e) = &report.damage[0] else {
        panic!("{:?}", report.damage[0])
    };
    assert_eq!(e.offset, 16);
    assert_eq!(e.series.as_deref(), Some("requests_total{job=\"db\"}"));
    assert!(matches!(
        e.kind,
        Corruption::ChecksumMismatch {
            region: "chunk",
            ..
        }
    ));
    let message = report.damage[0].to_string();
    assert!(
        message.contains("model.seg") && message.contains("offset 16"),
        "{message}"
    );
}

#[test]
fn writer_rejects_bad_input_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.seg");
    let key = SeriesKey::new("up", &[("job", "x")]).unwrap();

    let mut writer = SegmentWriter::create(&path).unwrap();
    let unsorted = [Sample::new(2, 0.0), Sample::new(2, 1.0)];
    assert!(matches!(
        writer.add_series(&key, &unsorted),
        Err(Error::Input(InputError::UnsortedSamples { index: 1, .. }))
    ));
    assert!(matches!(
        writer.add_series(&key, &[]),
        Err(Error::Input(InputError::EmptySeries { .. }))
    ));
    writer.add_series(&key, &[Sample::new(1, 1.0)]).unwrap();
    writer.add_series(&key, &[Sample::new(5, 1.0)]).unwrap();
    assert!(matches!(
        writer.finish(),
        Err(Error::Input(InputError::DuplicateSeries { .. }))
    ));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "no file after a failed write: {left:?}");

    drop(SegmentWriter::create(&path).unwrap());
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn empty_segment_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), &Model::new());
    let segment = Segment::open(&path).unwrap();
    assert_eq!(segment.series_count(), 0);
    assert!(segment.select(&[]).is_empty());
    assert_eq!(segment.footer().min_time_ms, i64::MAX);
}

#[test]
fn not_a_segment_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, vec![b'x'; 500]).unwrap();
    let error = Segment::open(&path).err().unwrap();
    assert!(
        matches!(&error, Error::Corrupt(e) if matches!(e.kind, Corruption::BadMagic { .. })),
        "{error}"
    );
    assert!(matches!(
        Segment::open(dir.path().join("missing.seg")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn time_range_reads_skip_chunks_outside_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let key = SeriesKey::new("up", &[("job", "x")]).unwrap();
    let samples: Vec<Sample> = (0..40_000).map(|i| Sample::new(i, i as f64)).collect();
    let mut model = Model::new();
    model.insert(key.clone(), samples);
    let segment = Segment::open(write_model(dir.path(), &model)).unwrap();
    let id = segment.find_series(&key).unwrap();
    let refs = segment.chunk_refs(id);
    assert_eq!(refs.len(), 5);
    // Damage every chunk but the third: a read inside the third must not
    // touch the others.
    let mut bytes = std::fs::read(segment.path()).unwrap();
    for (i, chunk) in refs.iter().enumerate() {
        if i != 2 {
            bytes[chunk.offset as usize + 9] ^= 0xff;
        }
    }
    let damaged = Segment::from_bytes("skip.seg", bytes).unwrap();
    let inside = damaged
        .read_samples(id, TimeRange::new(20_000, 20_100))
        .unwrap();
    assert_eq!(inside.len(), 101);
    assert!(damaged.read_samples(id, TimeRange::ALL).is_err());
}

/// What a manifest pins for each segment: the writer's summary and every
/// later open agree on the file length and the footer crc32, and a file
/// with other contents under the same name differs.
#[test]
fn file_len_and_footer_crc_pin_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model();
    let path = dir.path().join("pinned.seg");
    let mut writer = SegmentWriter::create(&path).unwrap();
    for (key, samples) in &model {
        writer.add_series(key, samples).unwrap();
    }
    let summary = writer.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(summary.file_len, bytes.len() as u64);
    let stored = u32::from_le_bytes(bytes[bytes.len() - 12..bytes.len() - 8].try_into().unwrap());
    assert_eq!(summary.footer_crc, stored);
    for segment in [
        Segment::open(&path).unwrap(),
        Segment::open_in_memory(&path).unwrap(),
        Segment::from_bytes(&path, bytes).unwrap(),
    ] {
        assert_eq!(segment.file_len(), summary.file_len);
        assert_eq!(segment.footer_crc(), summary.footer_crc);
    }

    let mut other = model.clone();
    other.pop_first();
    let other_path = write_model(dir.path(), &other);
    let other = Segment::open(other_path).unwrap();
    assert_ne!(other.footer_crc(), summary.footer_crc);
}
