//! Arbitrary bytes as a WAL file: replay never panics, reports damage with
//! offsets inside the file, and keeps only whole, checksummed records. The
//! only error is an intact header of an unknown version. Each input is also
//! tried with a valid header prepended, so mutations reach the frame and
//! record parsers instead of stopping at the magic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::{Corruption, Error};
use strata::wal::{self, record::Record};

fn check(bytes: &[u8]) {
    let dir = std::env::temp_dir().join(format!("strata-fuzz-wal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(wal::file_name(1));
    std::fs::write(&path, bytes).unwrap();
    let mut records = 0u64;
    let replay = match wal::replay_file(&path, |record| {
        records += 1;
        if let Record::Samples(samples) = record {
            assert!(samples.len() <= bytes.len());
        }
    }) {
        Ok(replay) => replay,
        Err(Error::Corrupt(e)) if matches!(e.kind, Corruption::UnsupportedVersion { .. }) => return,
        Err(e) => panic!("{e}"),
    };
    let len = bytes.len() as u64;
    assert_eq!(replay.records, records);
    assert!(replay.valid_len <= len);
    match &replay.damage {
        Some(damage) => {
            assert!(damage.torn_tail);
            assert_eq!(damage.offset, replay.valid_len);
            assert_eq!(damage.offset + damage.dropped_bytes, len);
        }
        None => assert_eq!(replay.valid_len, len),
    }
    let mut end = 0;
    for damage in &replay.skipped {
        assert!(!damage.torn_tail);
        assert!(damage.offset >= end);
        end = damage.offset + damage.dropped_bytes;
        assert!(end <= replay.valid_len);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut with_header = wal::encode_header(1, 1, 0).to_vec();
    with_header.extend_from_slice(data);
    // Frames with correct checksums and sequence numbers, so the record
    // decoder is reached: treat the input as a sequence of payloads split
    // at 0xff bytes.
    let mut framed = wal::encode_header(1, 1, 0).to_vec();
    for (seq, payload) in (1..).zip(data.split(|&b| b == 0xff)) {
        wal::frame(payload, seq, &mut framed);
    }
    check(&with_header);
    check(&framed);
});
