//! Arbitrary bytes as one encoded chunk.
//!
//! `decode_chunk` must never panic. When it accepts the bytes, the decoded
//! chunk must satisfy the codec invariants (equal column lengths matching
//! the header's sample count, strictly increasing timestamps), and
//! re-encoding it with `encode_chunk` (Gorilla) and with
//! `encode_chunk_sealed` (adaptive) and decoding again must give the same
//! timestamps and the same value bit patterns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::codec::{
    decode_chunk, encode_chunk, encode_chunk_sealed, DecodedChunk, MAX_CHUNK_SAMPLES,
};

fuzz_target!(|data: &[u8]| {
    let mut d = DecodedChunk::default();
    let Ok(header) = decode_chunk(data, &mut d) else {
        return;
    };

    assert_eq!(d.timestamps.len(), d.values.len(), "column lengths differ");
    assert_eq!(
        d.len(),
        header.sample_count,
        "length != header sample count"
    );
    assert!(
        (1..=MAX_CHUNK_SAMPLES).contains(&d.len()),
        "sample count {} out of range",
        d.len()
    );
    if let Some(i) = d.timestamps.windows(2).position(|w| w[1] <= w[0]) {
        panic!(
            "timestamps not strictly increasing at {}: {} then {}",
            i + 1,
            d.timestamps[i],
            d.timestamps[i + 1]
        );
    }

    let mut out = Vec::new();
    encode_chunk(&d.timestamps, &d.values, &mut out).expect("a chunk that decoded must re-encode");

    let mut again = DecodedChunk::default();
    let header2 = decode_chunk(&out, &mut again).expect("re-encoded chunk must decode");
    assert_eq!(header2.sample_count, header.sample_count);
    assert_eq!(
        again.timestamps, d.timestamps,
        "timestamps changed on re-encode"
    );
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
    assert_eq!(
        bits(&again.values),
        bits(&d.values),
        "value bit patterns changed on re-encode"
    );

    // The sealed chooser must round-trip the same columns bit-exactly and
    // never be larger than Gorilla.
    let mut sealed = Vec::new();
    encode_chunk_sealed(&d.timestamps, &d.values, &mut sealed).expect("sealed re-encode");
    assert!(
        sealed.len() <= out.len(),
        "sealed chunk larger than Gorilla"
    );
    let mut from_sealed = DecodedChunk::default();
    decode_chunk(&sealed, &mut from_sealed).expect("sealed chunk must decode");
    assert_eq!(
        from_sealed.timestamps, d.timestamps,
        "sealed timestamps differ"
    );
    assert_eq!(
        bits(&from_sealed.values),
        bits(&d.values),
        "sealed values differ"
    );

    // Decoding into a buffer that already holds data must give the same
    // result (decode_chunk clears its output first).
    let mut reused = again;
    decode_chunk(data, &mut reused).expect("same input must decode again");
    assert_eq!(reused.timestamps, d.timestamps);
    assert_eq!(bits(&reused.values), bits(&d.values));
});
