use super::*;
use proptest::prelude::*;

const EDGE_TIMESTAMPS: [i64; 9] = [
    i64::MIN,
    i64::MIN + 1,
    -1_000,
    -1,
    0,
    1,
    1_700_000_000_000,
    i64::MAX - 1,
    i64::MAX,
];

const EDGE_VALUE_BITS: [u64; 12] = [
    0x0000_0000_0000_0000, // +0.0
    0x8000_0000_0000_0000, // -0.0
    0x7ff0_0000_0000_0000, // +inf
    0xfff0_0000_0000_0000, // -inf
    0x7ff8_0000_0000_0000, // canonical NaN
    0x7ff0_0000_0000_0001, // signalling NaN, smallest payload
    0xfff8_dead_beef_0001, // negative NaN with payload
    0x0000_0000_0000_0001, // smallest subnormal
    0x000f_ffff_ffff_ffff, // largest subnormal
    0x7fef_ffff_ffff_ffff, // f64::MAX
    0x3ff0_0000_0000_0000, // 1.0
    0xffff_ffff_ffff_ffff, // all ones (a NaN)
];

fn timestamp_strategy() -> impl Strategy<Value = i64> {
    prop_oneof![
        proptest::sample::select(&EDGE_TIMESTAMPS[..]),
        any::<i64>(),
        // dense, realistic millisecond clocks
        1_700_000_000_000i64..1_700_000_100_000,
    ]
}

fn value_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        proptest::sample::select(&EDGE_VALUE_BITS[..]).prop_map(f64::from_bits),
        any::<u64>().prop_map(f64::from_bits),
        (-1000i64..1000).prop_map(|cents| cents as f64 / 100.0),
        Just(42.0),
    ]
}

/// Sorted, unique timestamps with values: 1 ..= HEAD_CHUNK_SAMPLES samples.
fn chunk_strategy() -> impl Strategy<Value = (Vec<i64>, Vec<f64>)> {
    prop_oneof![
        // arbitrary timestamps including the i64 extremes
        proptest::collection::btree_set(timestamp_strategy(), 1..200)
            .prop_map(|set| set.into_iter().collect::<Vec<_>>()),
        // a regular scrape with jitter and gaps
        (
            any::<i32>(),
            proptest::collection::vec(0i64..3_000_000, 1..HEAD_CHUNK_SAMPLES)
        )
            .prop_map(|(start, steps)| {
                let mut t = i64::from(start);
                steps
                    .into_iter()
                    .map(|step| {
                        t += 1 + step % 3 * (step / 3 % 1_000);
                        t
                    })
                    .collect()
            }),
    ]
    .prop_flat_map(|timestamps| {
        let len = timestamps.len();
        (
            Just(timestamps),
            proptest::collection::vec(value_strategy(), len),
        )
    })
}

fn assert_bit_exact(timestamps: &[i64], values: &[f64], decoded: &DecodedChunk) {
    assert_eq!(decoded.timestamps, timestamps);
    let expected: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
    let actual: Vec<u64> = decoded.values.iter().map(|v| v.to_bits()).collect();
    assert_eq!(actual, expected);
}

/// Inputs shaped like telemetry, where the sealed encodings apply:
/// regular or jittered clocks, integers, few-decimal values, constants,
/// runs, and occasional values that force a fallback.
fn telemetry_chunk_strategy() -> impl Strategy<Value = (Vec<i64>, Vec<f64>)> {
    let clock = (any::<i32>(), 1i64..100_000, 0u32..4, 1usize..3_000).prop_flat_map(
        |(start, step, jitter_kind, len)| {
            proptest::collection::vec(0i64..100, len).prop_map(move |noise| {
                let mut t = i64::from(start) * 1000;
                noise
                    .iter()
                    .map(|&n| {
                        let jitter = match jitter_kind {
                            0 => 0,
                            1 => (n % 7) - 3,     // small jitter
                            2 => (n / 90) * step, // missed scrapes
                            _ => n * 1_000_003,   // irregular
                        };
                        t += step + jitter.max(-step + 1);
                        t
                    })
                    .collect::<Vec<i64>>()
            })
        },
    );
    clock.prop_flat_map(|timestamps| {
        let len = timestamps.len();
        let values =
            prop_oneof![
                // decimals: a random walk of cents, scaled by 10^-d
                (
                    0u32..6,
                    -1_000_000i64..1_000_000,
                    proptest::collection::vec(-500i64..500, len)
                )
                    .prop_map(|(d, start, steps)| {
                        let scale = 10f64.powi(d as i32);
                        let mut n = start;
                        steps
                            .iter()
                            .map(|s| {
                                n += s;
                                n as f64 / scale
                            })
                            .collect::<Vec<f64>>()
                    }),
                // a counter
                proptest::collection::vec(0u64..1_000, len).prop_map(|steps| {
                    let mut c = 0u64;
                    steps
                        .iter()
                        .map(|s| {
                            c += s;
                            c as f64
                        })
                        .collect::<Vec<f64>>()
                }),
                // constant, including special bit patterns
                proptest::sample::select(&EDGE_VALUE_BITS[..])
                    .prop_map(move |bits| vec![f64::from_bits(bits); len]),
                // mostly decimals with one value that cannot be one
                (
                    proptest::collection::vec(-100i64..100, len),
                    0..len,
                    value_strategy()
                )
                    .prop_map(|(cents, at, odd)| {
                        let mut v: Vec<f64> = cents.iter().map(|&c| c as f64 / 100.0).collect();
                        v[at] = odd;
                        v
                    }),
                proptest::collection::vec(value_strategy(), len),
            ];
        (Just(timestamps), values)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sealed_chunk_round_trip_is_bit_exact((timestamps, values) in prop_oneof![chunk_strategy(), telemetry_chunk_strategy()]) {
        let mut bytes = Vec::new();
        let header = encode_chunk_sealed(&timestamps, &values, &mut bytes).unwrap();
        let mut decoded = DecodedChunk::default();
        prop_assert_eq!(decode_chunk(&bytes, &mut decoded).unwrap(), header);
        assert_bit_exact(&timestamps, &values, &decoded);
        prop_assert_eq!(chunk_first_timestamp(&bytes).unwrap(), timestamps[0]);
        // never larger than plain Gorilla
        let mut gorilla = Vec::new();
        encode_chunk(&timestamps, &values, &mut gorilla).unwrap();
        prop_assert!(bytes.len() <= gorilla.len(), "sealed {} > gorilla {}", bytes.len(), gorilla.len());
        // every short prefix and the last 32, a stride in between
        let stride = (bytes.len() / 64).max(1);
        for len in (0..bytes.len()).filter(|&l| l < 64 || l + 32 >= bytes.len() || l % stride == 0) {
            prop_assert!(decode_chunk(&bytes[..len], &mut decoded).is_err(), "prefix of {} bytes decoded", len);
        }
    }

    #[test]
    fn chunk_round_trip_is_bit_exact((timestamps, values) in chunk_strategy()) {
        let mut bytes = Vec::new();
        let header = encode_chunk(&timestamps, &values, &mut bytes).unwrap();
        prop_assert_eq!(header.sample_count, timestamps.len());
        let mut decoded = DecodedChunk::default();
        prop_assert_eq!(decode_chunk(&bytes, &mut decoded).unwrap(), header);
        assert_bit_exact(&timestamps, &values, &decoded);
        prop_assert_eq!(chunk_first_timestamp(&bytes).unwrap(), timestamps[0]);
        // Appending keeps what the columns held; a failed append leaves
        // them as they were.
        let (mut ts, mut vs) = (vec![-7i64], vec![0.5f64]);
        decode_chunk_append(&bytes, &mut ts, &mut vs).unwrap();
        prop_assert_eq!(&ts[1..], timestamps.as_slice());
        prop_assert_eq!(vs.len(), values.len() + 1);
        prop_assert!(decode_chunk_append(&bytes[..bytes.len() - 1], &mut ts, &mut vs).is_err());
        prop_assert_eq!(ts.len(), timestamps.len() + 1);
        prop_assert_eq!(vs.len(), values.len() + 1);
    }

    #[test]
    fn streaming_encoders_match_batch_encoding((timestamps, values) in chunk_strategy()) {
        let mut ts_encoder = DeltaOfDeltaEncoder::new();
        let mut value_encoder = XorEncoder::new();
        for (&t, &v) in timestamps.iter().zip(&values) {
            ts_encoder.push(t);
            value_encoder.push(v);
        }
        let header = ChunkHeader {
            timestamp_encoding: TimestampEncoding::DeltaOfDelta,
            value_encoding: ValueEncoding::GorillaXor,
            sample_count: timestamps.len(),
        };
        let mut streamed = Vec::new();
        assemble_chunk(header, &ts_encoder.finish(), &value_encoder.finish(), &mut streamed).unwrap();
        let mut batch = Vec::new();
        encode_chunk(&timestamps, &values, &mut batch).unwrap();
        prop_assert_eq!(streamed, batch);
    }

    #[test]
    fn every_truncation_is_an_error((timestamps, values) in chunk_strategy()) {
        let mut bytes = Vec::new();
        encode_chunk(&timestamps, &values, &mut bytes).unwrap();
        let mut decoded = DecodedChunk::default();
        for len in 0..bytes.len() {
            prop_assert!(decode_chunk(&bytes[..len], &mut decoded).is_err(), "prefix of {} bytes decoded", len);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut decoded = DecodedChunk::default();
        if decode_chunk(&bytes, &mut decoded).is_ok() {
            prop_assert_eq!(decoded.timestamps.len(), decoded.values.len());
            prop_assert!(decoded.timestamps.windows(2).all(|w| w[0] < w[1]));
        }
    }
}

/// Pseudo-random multiples of 0.25 with no repeating pattern (so zstd has
/// nothing to find).
fn lcg_quarters(n: usize) -> Vec<f64> {
    let mut x = 12345u64;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 40) as f64 / 4.0
        })
        .collect()
}

#[test]
fn the_chooser_picks_the_expected_encodings() {
    let regular: Vec<i64> = (0..1000).map(|i| 1_700_000_000_000 + i * 15_000).collect();
    let cases: [(Vec<f64>, ValueEncoding); 3] = [
        (vec![3.25; 1000], ValueEncoding::Constant),
        (lcg_quarters(1000), ValueEncoding::Decimal),
        (
            (0..1000).map(|i| (i as f64).sqrt()).collect(),
            ValueEncoding::GorillaXor,
        ),
    ];
    for (values, expected) in cases {
        let mut bytes = Vec::new();
        let header = encode_chunk_sealed(&regular, &values, &mut bytes).unwrap();
        assert_eq!(header.timestamp_encoding, TimestampEncoding::Regular);
        assert_eq!(header.value_encoding, expected);
    }
    // a fixed interval with a constant value costs a few bytes in all
    let mut bytes = Vec::new();
    encode_chunk_sealed(&regular, &[0.0; 1000], &mut bytes).unwrap();
    assert!(bytes.len() <= 8 + 12 + 8, "{} bytes", bytes.len());
    // -0.0 is not a decimal: the column falls back, bit-exact
    let mut values: Vec<f64> = (0..1000).map(|i| i as f64).collect();
    values[500] = -0.0;
    bytes.clear();
    let header = encode_chunk_sealed(&regular, &values, &mut bytes).unwrap();
    assert!(matches!(
        header.value_encoding,
        ValueEncoding::GorillaXor | ValueEncoding::Zstd
    ));
    let mut decoded = DecodedChunk::default();
    decode_chunk(&bytes, &mut decoded).unwrap();
    assert_bit_exact(&regular, &values, &decoded);
}

#[test]
fn zstd_wraps_a_value_stream_only_when_smaller() {
    let timestamps: Vec<i64> = (0..4000).map(|i| i * 1000).collect();
    // a repeating pattern of full-precision floats: XOR is large, zstd
    // finds the repetition
    let pattern = [0.1f64.sqrt(), 2f64.ln(), 3f64.cbrt(), 7f64.exp()];
    let values: Vec<f64> = (0..4000).map(|i| pattern[i % 4]).collect();
    let mut bytes = Vec::new();
    let header = encode_chunk_sealed(&timestamps, &values, &mut bytes).unwrap();
    assert_eq!(header.value_encoding, ValueEncoding::Zstd);
    let mut decoded = DecodedChunk::default();
    decode_chunk(&bytes, &mut decoded).unwrap();
    assert_bit_exact(&timestamps, &values, &decoded);

    // a frame that inflates past the bound for its sample count is refused
    let big = zstd::bulk::compress(&vec![0u8; 100_000], 1).unwrap();
    let mut stream = vec![ValueEncoding::GorillaXor.id()];
    stream.extend_from_slice(&big);
    assert!(matches!(
        zstd_wrap::decompress(&stream, 10),
        Err(CodecError::BadEncoding { .. })
    ));
    // zstd inside zstd is refused
    stream[0] = ValueEncoding::Zstd.id();
    assert!(zstd_wrap::decompress(&stream, 100_000).is_err());
}

#[test]
fn a_zstd_value_stream_is_exactly_one_frame_within_its_bound() {
    let timestamps: Vec<i64> = (0..4000).map(|i| i * 1000).collect();
    let pattern = [0.1f64.sqrt(), 2f64.ln(), 3f64.cbrt(), 7f64.exp()];
    let values: Vec<f64> = (0..4000).map(|i| pattern[i % 4]).collect();
    let mut good = Vec::new();
    encode_chunk_sealed(&timestamps, &values, &mut good).unwrap();
    let stream_start =
        CHUNK_HEADER_LEN + u32::from_le_bytes(good[4..8].try_into().unwrap()) as usize;
    let mut decoded = DecodedChunk::default();
    let refused =
        |chunk: &[u8], decoded: &mut DecodedChunk, why: &str| match decode_chunk(chunk, decoded) {
            Err(CodecError::BadEncoding {
                column: Column::Values,
                reason,
            }) => {
                assert!(reason.contains(why), "{reason:?} does not say {why:?}")
            }
            other => panic!("expected a bad value stream ({why}), got {other:?}"),
        };

    // zero padding after the frame, a second frame, a skippable frame
    let mut padded = good.clone();
    padded.extend_from_slice(&[0; 4]);
    refused(&padded, &mut decoded, "follow the zstd frame");
    let mut twice = good.clone();
    twice.extend_from_slice(&good[stream_start + 1..]);
    refused(&twice, &mut decoded, "exactly one frame");
    let mut skippable = good[..stream_start + 1].to_vec();
    skippable.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
    skippable.extend_from_slice(&4u32.to_le_bytes());
    skippable.extend_from_slice(&[0; 4]);
    refused(&skippable, &mut decoded, "not a zstd frame");
    let truncated = &good[..good.len() - 1];
    refused(truncated, &mut decoded, "damaged or truncated");

    // a frame declaring more than the inner encoding can need for the
    // chunk's sample count is refused from its header, before inflating
    let mut constant_claim = good[..stream_start].to_vec();
    constant_claim.push(ValueEncoding::Constant.id());
    constant_claim.extend_from_slice(&zstd::bulk::compress(&[0u8; 9], 1).unwrap());
    refused(
        &constant_claim,
        &mut decoded,
        "declares 9 bytes, over the 8-byte limit",
    );
    // the same without a declared size fails while inflating
    let mut compressor = zstd::bulk::Compressor::new(1).unwrap();
    compressor.include_contentsize(false).unwrap();
    let mut undeclared = good[..stream_start].to_vec();
    undeclared.push(ValueEncoding::Constant.id());
    undeclared.extend_from_slice(&compressor.compress(&[0u8; 9]).unwrap());
    refused(&undeclared, &mut decoded, "does not inflate within 8 bytes");

    assert!(decode_chunk(&good, &mut decoded).is_ok());
}

#[test]
fn sample_counts_beyond_what_the_payload_can_hold_are_refused_before_decoding() {
    let mut decoded = DecodedChunk::default();
    let chunk = |ts_id: u8, value_id: u8, count: u16, ts: &[u8], values: &[u8]| {
        let mut out = vec![ts_id, value_id];
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&(ts.len() as u32).to_le_bytes());
        out.extend_from_slice(ts);
        out.extend_from_slice(values);
        out
    };
    let constant = 1.5f64.to_bits().to_le_bytes();
    // Gorilla timestamps: 64 bits for the first sample and one per later
    // one, so 9 bytes hold at most 9 samples
    let mut regular = Vec::new();
    regular::encode(&(0..16_384).collect::<Vec<i64>>(), &mut regular);
    for count in [10u16, 16_384] {
        assert_eq!(
            decode_chunk(&chunk(1, 2, count, &[0; 9], &constant), &mut decoded),
            Err(CodecError::Truncated {
                column: Column::Timestamps,
                needed_bits: 63 + u64::from(count),
                available_bits: 72
            })
        );
        assert_eq!(
            decode_chunk(&chunk(2, 1, count, &regular[..], &[0; 9]), &mut decoded),
            Err(CodecError::Truncated {
                column: Column::Values,
                needed_bits: 63 + u64::from(count),
                available_bits: 72
            })
        );
    }
    // decimal: the packed residuals fill exactly width x count bits
    let mut regular3 = Vec::new();
    regular::encode(&[10, 20, 30], &mut regular3);
    let decimal = |width: u8, packed: &[u8]| {
        let mut stream = vec![0, 0, width, 0, 1];
        stream.extend_from_slice(packed);
        chunk(2, 3, 3, &regular3, &stream)
    };
    assert!(decode_chunk(&decimal(8, &[1, 2, 3]), &mut decoded).is_ok());
    assert_eq!(decoded.values, vec![1.0, 2.0, 3.0]);
    assert!(matches!(
        decode_chunk(&decimal(8, &[1, 2]), &mut decoded),
        Err(CodecError::Truncated {
            needed_bits: 24,
            available_bits: 16,
            ..
        })
    ));
    assert!(matches!(
        decode_chunk(&decimal(8, &[1, 2, 3, 4]), &mut decoded),
        Err(CodecError::TrailingBytes { extra_bytes: 1, .. })
    ));
}

#[test]
fn non_canonical_varints_are_bad_encoding_not_truncation() {
    let mut decoded = DecodedChunk::default();
    let constant = 1.5f64.to_bits().to_le_bytes();
    let chunk = |ts: &[u8]| {
        let mut out = vec![2, 2, 3, 0];
        out.extend_from_slice(&(ts.len() as u32).to_le_bytes());
        out.extend_from_slice(ts);
        out.extend_from_slice(&constant);
        out
    };
    // first 10 (zz 20), step 10 (zz 20), no exceptions
    assert!(decode_chunk(&chunk(&[20, 20, 0]), &mut decoded).is_ok());
    // the same step written in two bytes
    assert!(matches!(
        decode_chunk(&chunk(&[20, 0x94, 0x00, 0]), &mut decoded),
        Err(CodecError::BadEncoding {
            column: Column::Timestamps,
            ..
        })
    ));
    // a varint cut short is truncation
    assert!(matches!(
        decode_chunk(&chunk(&[20, 20, 0x80]), &mut decoded),
        Err(CodecError::Truncated {
            column: Column::Timestamps,
            ..
        })
    ));
}

#[test]
fn malformed_sealed_streams_are_rejected() {
    let mut decoded = DecodedChunk::default();
    let chunk = |ts_id: u8, value_id: u8, ts: &[u8], values: &[u8]| {
        let mut out = vec![ts_id, value_id, 3, 0];
        out.extend_from_slice(&(ts.len() as u32).to_le_bytes());
        out.extend_from_slice(ts);
        out.extend_from_slice(values);
        out
    };
    let mut regular_ts = Vec::new();
    regular::encode(&[10, 20, 30], &mut regular_ts);
    let constant = 1.5f64.to_bits().to_le_bytes();
    assert!(decode_chunk(&chunk(2, 2, &regular_ts, &constant), &mut decoded).is_ok());
    assert_eq!(decoded.values, vec![1.5; 3]);
    // constant with 7 bytes
    assert!(matches!(
        decode_chunk(&chunk(2, 2, &regular_ts, &constant[..7]), &mut decoded),
        Err(CodecError::BadEncoding { .. })
    ));
    // a regular grid with step 0 is not increasing
    assert!(matches!(
        decode_chunk(&chunk(2, 2, &[20, 0, 0], &constant), &mut decoded),
        Err(CodecError::NotIncreasing { .. })
    ));
    // an exception beyond the chunk
    assert!(matches!(
        decode_chunk(&chunk(2, 2, &[20, 20, 1, 9, 2], &constant), &mut decoded),
        Err(CodecError::BadEncoding { .. })
    ));
    // decimal: order must be below the count, width at most 64
    assert!(decode_chunk(&chunk(2, 3, &regular_ts, &[0, 3, 1, 0]), &mut decoded).is_err());
    assert!(decode_chunk(&chunk(2, 3, &regular_ts, &[0, 0, 65, 0]), &mut decoded).is_err());
}

#[test]
fn extreme_timestamps_round_trip() {
    let timestamps = [i64::MIN, -1, 0, i64::MAX];
    let values = [f64::NAN, -0.0, f64::INFINITY, f64::MIN_POSITIVE / 2.0];
    let mut bytes = Vec::new();
    encode_chunk(&timestamps, &values, &mut bytes).unwrap();
    let mut decoded = DecodedChunk::default();
    decode_chunk(&bytes, &mut decoded).unwrap();
    assert_bit_exact(&timestamps, &values, &decoded);
}

#[test]
fn constant_regular_series_costs_about_two_bits_per_sample() {
    let timestamps: Vec<i64> = (0..1000).map(|i| 1_700_000_000_000 + i * 10_000).collect();
    let values = vec![7.0; 1000];
    let mut bytes = Vec::new();
    encode_chunk(&timestamps, &values, &mut bytes).unwrap();
    // 8 header + 8 first ts + 2 first delta + 8 first value, then 1 bit per column
    assert!(
        bytes.len() < 8 + 8 + 3 + 8 + 2 * 1000 / 8 + 2,
        "{} bytes",
        bytes.len()
    );
}

#[test]
fn invalid_input_is_rejected() {
    let mut out = Vec::new();
    assert_eq!(
        encode_chunk(&[], &[], &mut out),
        Err(CodecError::BadSampleCount(0))
    );
    assert_eq!(
        encode_chunk(&[1, 1], &[0.0, 0.0], &mut out),
        Err(CodecError::NotIncreasing {
            index: 1,
            previous_ms: 1,
            timestamp_ms: 1
        })
    );
    assert_eq!(
        encode_chunk(&[1], &[0.0, 0.0], &mut out),
        Err(CodecError::ColumnLengthMismatch {
            timestamps: 1,
            values: 2
        })
    );
    let too_many: Vec<i64> = (0..=MAX_CHUNK_SAMPLES as i64).collect();
    let zeros = vec![0.0; too_many.len()];
    assert_eq!(
        encode_chunk(&too_many, &zeros, &mut out),
        Err(CodecError::BadSampleCount(MAX_CHUNK_SAMPLES + 1))
    );
}

#[test]
fn unknown_encodings_and_trailing_bytes_are_reported() {
    let mut bytes = Vec::new();
    encode_chunk(&[1, 2, 3], &[1.0, 2.0, 3.0], &mut bytes).unwrap();
    let mut decoded = DecodedChunk::default();

    let mut unknown = bytes.clone();
    unknown[0] = 200;
    assert_eq!(
        decode_chunk(&unknown, &mut decoded),
        Err(CodecError::UnknownTimestampEncoding(200))
    );
    unknown = bytes.clone();
    unknown[1] = 0;
    assert_eq!(
        decode_chunk(&unknown, &mut decoded),
        Err(CodecError::UnknownValueEncoding(0))
    );

    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        decode_chunk(&longer, &mut decoded),
        Err(CodecError::TrailingBytes {
            column: Column::Values,
            extra_bytes: 1
        })
    );
}
