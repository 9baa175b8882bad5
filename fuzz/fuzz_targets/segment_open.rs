//! Arbitrary bytes as a whole segment file.
//!
//! `Segment::from_bytes` must never panic. When it accepts the bytes, every
//! read path is exercised: samples of every series, `select`, label names
//! and values, and `verify`. Errors from reads are fine (chunks are only
//! checked when read); panics are not. A few consistency properties that
//! hold for any segment that passed open-time validation are asserted too.
//!
//! Every table, the header, the footer and each chunk carry a crc32, so
//! almost every mutation of a valid seed is rejected by a checksum before
//! the parsers behind it run. To reach them, each input is also tried a
//! second time with its checksums repaired (header, footer regions, footer,
//! and, once the tables parse, every chunk), as a writer would have
//! computed them. Both passes go through the same public API.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::segment::format::{FOOTER_LEN, HEADER_LEN};
use strata::{MatchOp, Matcher, Segment, TimeRange};

/// Offset of the footer's crc32 within the footer; it covers the bytes before it.
const FOOTER_CRC_AT: usize = 96;

fn put_crc(bytes: &mut [u8], at: usize, crc: u32) {
    if let Some(field) = bytes.get_mut(at..at + 4) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Recomputes the header, region and footer checksums in place.
fn repair_tables(bytes: &mut [u8]) {
    if bytes.len() < HEADER_LEN + FOOTER_LEN {
        return;
    }
    let header_crc = crc32fast::hash(&bytes[..12]);
    put_crc(bytes, 12, header_crc);
    let footer = bytes.len() - FOOTER_LEN;
    for region in 0..3 {
        let at = footer + region * 20;
        let (offset, len) = (le_u64(bytes, at), le_u64(bytes, at + 8));
        let end = offset.saturating_add(len);
        if end <= footer as u64 {
            let crc = crc32fast::hash(&bytes[offset as usize..end as usize]);
            put_crc(bytes, at + 16, crc);
        }
    }
    let footer_crc = crc32fast::hash(&bytes[footer..footer + FOOTER_CRC_AT]);
    put_crc(bytes, footer + FOOTER_CRC_AT, footer_crc);
}

/// Recomputes every chunk checksum the (validated) series table points to.
fn repair_chunks(segment: &Segment, bytes: &mut [u8]) {
    for id in 0..segment.series_count() as u32 {
        for chunk in segment.chunk_refs(id) {
            // Open-time validation put offset + len + 4 inside the chunk area.
            let start = chunk.offset as usize;
            let end = start + chunk.len as usize;
            let crc = crc32fast::hash(&bytes[start..end]);
            put_crc(bytes, end, crc);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(segment) = Segment::from_bytes("fuzz.seg", data.to_vec()) {
        scan(&segment);
    }

    let mut repaired = data.to_vec();
    repair_tables(&mut repaired);
    let Ok(segment) = Segment::from_bytes("repaired.seg", repaired.clone()) else {
        return;
    };
    repair_chunks(&segment, &mut repaired);
    drop(segment);
    if repaired.as_slice() == data {
        return; // already scanned above
    }
    // Chunk crcs lie in the chunk area, outside the checksummed tables, so
    // the repaired file must still open.
    let segment =
        Segment::from_bytes("repaired.seg", repaired).expect("repairing chunk crcs broke open");
    scan(&segment);
});

fn scan(segment: &Segment) {
    let n = segment.series_count();
    assert_eq!(n, segment.footer().series_count as usize);
    let all: Vec<u32> = (0..n as u32).collect();
    assert_eq!(
        segment.select(&[]),
        all,
        "select(&[]) must list every series"
    );

    let mut all_reads_ok = true;
    let mut samples_read = 0u64;
    for id in 0..n as u32 {
        let key = segment.series_key(id).expect("id below series_count");
        assert_eq!(segment.find_series(key), Some(id), "find_series disagrees");
        let refs = segment.chunk_refs(id);
        assert!(!refs.is_empty(), "validated series without chunks");

        match segment.read_samples(id, TimeRange::ALL) {
            Ok(samples) => {
                samples_read += samples.len() as u64;
                let expected: u64 = refs.iter().map(|c| u64::from(c.sample_count)).sum();
                assert_eq!(samples.len() as u64, expected, "sample count != chunk refs");
                if let Some(i) = samples
                    .windows(2)
                    .position(|w| w[1].timestamp_ms <= w[0].timestamp_ms)
                {
                    panic!("series {id}: timestamps not increasing at sample {}", i + 1);
                }
                assert_eq!(
                    samples.first().map(|s| s.timestamp_ms),
                    Some(refs[0].min_time_ms)
                );
                assert_eq!(
                    samples.last().map(|s| s.timestamp_ms),
                    Some(refs[refs.len() - 1].max_time_ms)
                );
                // A sub-range read returns exactly the matching samples.
                let lo = samples[samples.len() / 3].timestamp_ms;
                let hi = samples[samples.len() * 2 / 3].timestamp_ms;
                let ranged = segment
                    .read_samples(id, TimeRange::new(lo, hi))
                    .expect("range read of a fully readable series");
                let filtered: Vec<_> = samples
                    .iter()
                    .filter(|s| lo <= s.timestamp_ms && s.timestamp_ms <= hi)
                    .collect();
                assert_eq!(ranged.len(), filtered.len(), "range read length");
                for (a, b) in ranged.iter().zip(filtered) {
                    assert!(a.bit_eq(b), "range read differs: {a:?} vs {b:?}");
                }
            }
            Err(_) => all_reads_ok = false,
        }
    }

    let names = segment.label_names();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "label names not sorted/unique"
    );
    for &name in &names {
        let values = segment.label_values(name);
        assert!(!values.is_empty(), "label name {name:?} without values");
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "label values not sorted/unique"
        );
        for &value in &values {
            let selected = segment.select(&[Matcher::equal(name, value)]);
            let expected: Vec<u32> = (0..n as u32)
                .filter(|&id| segment.series_key(id).and_then(|k| k.get(name)) == Some(value))
                .collect();
            assert_eq!(
                selected, expected,
                "select {name}={value:?} disagrees with keys"
            );
        }
        let having: Vec<u32> = (0..n as u32)
            .filter(|&id| segment.series_key(id).and_then(|k| k.get(name)).is_some())
            .collect();
        let not_empty = Matcher::new(name, MatchOp::NotEqual, "").expect("literal matcher");
        assert_eq!(segment.select(&[not_empty]), having, "select {name}!=\"\"");
        let empty = Matcher::new(name, MatchOp::Regex, "").expect("valid regex");
        let lacking: Vec<u32> = all
            .iter()
            .copied()
            .filter(|id| !having.contains(id))
            .collect();
        assert_eq!(segment.select(&[empty]), lacking, "select {name}=~\"\"");
    }
    // Two matchers: the intersection path of select.
    if let [first, .., last] = names.as_slice() {
        let both: Vec<u32> = (0..n as u32)
            .filter(|&id| {
                let key = segment.series_key(id).expect("id below series_count");
                key.get(first).is_some() && key.get(last).is_some()
            })
            .collect();
        let matchers = [
            Matcher::new(first, MatchOp::NotEqual, "").expect("literal matcher"),
            Matcher::new(last, MatchOp::Regex, "(?s).+").expect("valid regex"),
        ];
        assert_eq!(
            segment.select(&matchers),
            both,
            "select {first}!=\"\", {last}=~\"(?s).+\""
        );
    }

    let report = segment.verify();
    assert_eq!(report.series_count, n);
    assert_eq!(
        report.damage.is_empty(),
        all_reads_ok,
        "verify and full reads disagree about damage"
    );
    if all_reads_ok {
        assert_eq!(samples_read, segment.footer().sample_count);
    }
}
