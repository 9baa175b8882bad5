//! strata's chunk codec against `tsz` 0.1.4 (a public Gorilla implementation),
//! measured in the same run on the same inputs.
//!
//! Run with `cargo bench --bench codec`. Before the criterion groups run, the
//! bench prints the encoded size of every input under both codecs and checks
//! that both round-trip every input bit-exactly (timestamps, and values
//! compared by `f64::to_bits`); it panics if either does not.
//!
//! How each codec is driven:
//! - strata: Gorilla chunks of `HEAD_CHUNK_SAMPLES` (1024) samples, as the
//!   head writes them; strata-sealed: `encode_chunk_sealed` (the adaptive
//!   encodings) on chunks of `SEALED_CHUNK_SAMPLES` (8192), as the segment
//!   writer does. Encode
//!   appends every chunk to one reused output buffer. Decode decodes every
//!   chunk (boundaries known from encoding, as the segment index knows them)
//!   into one reused `DecodedChunk`.
//! - tsz: the whole series is one stream (its design: one `StdEncoder` per
//!   series block). For speed this favours tsz (no per-block setup). For size
//!   it saves tsz the per-block first-sample header, but tsz never narrows its
//!   XOR window while later values still fit it, so on noisy values one long
//!   stream can come out larger than 1024-sample blocks; the size table prints
//!   both. Encode uses a writer pre-sized to the exact output so
//!   `close()` does not reallocate; the returned buffer is dropped outside the
//!   timed region. Decode: `BufferedReader::new` takes ownership of a
//!   `Box<[u8]>`, so a fresh copy of the stream is made in untimed setup; each
//!   decoded `DataPoint` is passed to `black_box`.
//!
//! The size table also lists tsz cut into 1024-sample blocks (one stream per
//! block, like strata's chunks) for context; it is not benchmarked.

use std::hint::black_box;
use std::ops::Range;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use strata::codec::{
    decode_chunk, encode_chunk, encode_chunk_sealed, ChunkHeader, CodecError, DecodedChunk,
    HEAD_CHUNK_SAMPLES, SEALED_CHUNK_SAMPLES,
};
use tsz::decode::Error as TszError;
use tsz::stream::{BufferedReader, BufferedWriter};
use tsz::{DataPoint, Decode, Encode, StdDecoder, StdEncoder};

const N_SAMPLES: usize = 100_000;
const START_MS: i64 = 1_700_000_000_000;
const INTERVAL_MS: i64 = 10_000;

/// xorshift64*: tiny, deterministic, good enough for synthetic series.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Roughly standard normal (Irwin–Hall with 12 terms).
    fn normalish(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// 10 s scrape interval; 1 sample in 10 is off by 1..=5 ms either way.
fn timestamps(rng: &mut Rng) -> Vec<i64> {
    (0..N_SAMPLES as i64)
        .map(|i| {
            let jitter = if rng.below(10) == 0 {
                let magnitude = 1 + rng.below(5) as i64;
                if rng.below(2) == 0 {
                    magnitude
                } else {
                    -magnitude
                }
            } else {
                0
            };
            START_MS + i * INTERVAL_MS + jitter
        })
        .collect()
}

struct Input {
    name: &'static str,
    timestamps: Vec<i64>,
    values: Vec<f64>,
}

fn inputs() -> Vec<Input> {
    let timestamps = timestamps(&mut Rng::new(0x5eed_0001));

    let mut rng = Rng::new(0x5eed_0002);
    let mut gauge = 100.0f64;
    let random_walk_gauge = (0..N_SAMPLES)
        .map(|_| {
            gauge += rng.normalish() * 0.5;
            gauge
        })
        .collect();

    let mut rng = Rng::new(0x5eed_0003);
    let mut count = 0u64;
    let counter = (0..N_SAMPLES)
        .map(|_| {
            count += rng.below(100);
            count as f64
        })
        .collect();

    let constant = vec![42.0f64; N_SAMPLES];

    let mut rng = Rng::new(0x5eed_0004);
    let mut level = 50.0f64;
    let gauge_2_decimals = (0..N_SAMPLES)
        .map(|_| {
            level += rng.normalish() * 0.01;
            (level * 100.0).round() / 100.0
        })
        .collect();

    [
        ("random_walk_gauge", random_walk_gauge),
        ("counter", counter),
        ("constant", constant),
        ("gauge_2_decimals", gauge_2_decimals),
    ]
    .into_iter()
    .map(|(name, values)| Input {
        name,
        timestamps: timestamps.clone(),
        values,
    })
    .collect()
}

// ---------------------------------------------------------------- strata

/// How strata encodes: Gorilla chunks as the head writes them, or the
/// adaptive encodings (and larger chunks) of sealed segments.
#[derive(Clone, Copy)]
enum Mode {
    Gorilla,
    Sealed,
}

type ChunkEncoder = fn(&[i64], &[f64], &mut Vec<u8>) -> Result<ChunkHeader, CodecError>;

impl Mode {
    fn encoder(self) -> (usize, ChunkEncoder) {
        match self {
            Mode::Gorilla => (HEAD_CHUNK_SAMPLES, encode_chunk),
            Mode::Sealed => (SEALED_CHUNK_SAMPLES, encode_chunk_sealed),
        }
    }
}

/// Encodes the series chunk by chunk into `out` (cleared first); returns the
/// byte range of every chunk.
fn strata_encode(
    mode: Mode,
    timestamps: &[i64],
    values: &[f64],
    out: &mut Vec<u8>,
) -> Vec<Range<usize>> {
    let (size, encode) = mode.encoder();
    out.clear();
    timestamps
        .chunks(size)
        .zip(values.chunks(size))
        .map(|(ts, vs)| {
            let start = out.len();
            encode(ts, vs, out).expect("strata encode failed");
            start..out.len()
        })
        .collect()
}

/// The timed encode loop: no range bookkeeping.
fn strata_encode_hot(mode: Mode, timestamps: &[i64], values: &[f64], out: &mut Vec<u8>) {
    let (size, encode) = mode.encoder();
    out.clear();
    for (ts, vs) in timestamps.chunks(size).zip(values.chunks(size)) {
        encode(ts, vs, out).expect("strata encode failed");
    }
}

fn strata_decode_hot(bytes: &[u8], chunks: &[Range<usize>], chunk: &mut DecodedChunk) -> usize {
    let mut samples = 0;
    for range in chunks {
        decode_chunk(&bytes[range.clone()], chunk).expect("strata decode_chunk failed");
        samples += chunk.len();
        black_box(&*chunk);
    }
    samples
}

fn strata_decode_all(bytes: &[u8], chunks: &[Range<usize>]) -> (Vec<i64>, Vec<f64>) {
    let mut timestamps = Vec::new();
    let mut values = Vec::new();
    let mut chunk = DecodedChunk::default();
    for range in chunks {
        decode_chunk(&bytes[range.clone()], &mut chunk).expect("strata decode_chunk failed");
        timestamps.extend_from_slice(&chunk.timestamps);
        values.extend_from_slice(&chunk.values);
    }
    (timestamps, values)
}

// ------------------------------------------------------------------- tsz

fn tsz_encode(timestamps: &[i64], values: &[f64], capacity: usize) -> Box<[u8]> {
    let start = u64::try_from(timestamps[0]).expect("tsz needs non-negative timestamps");
    let mut encoder = StdEncoder::new(start, BufferedWriter::with_capacity(capacity));
    for (&t, &v) in timestamps.iter().zip(values) {
        encoder.encode(DataPoint::new(t as u64, v));
    }
    encoder.close()
}

fn tsz_decode_all(bytes: Box<[u8]>) -> Vec<DataPoint> {
    let mut decoder = StdDecoder::new(BufferedReader::new(bytes));
    let mut points = Vec::new();
    loop {
        match decoder.next() {
            Ok(point) => points.push(point),
            Err(TszError::EndOfStream) => return points,
            Err(err) => panic!("tsz decode failed after {} points: {err:?}", points.len()),
        }
    }
}

// ------------------------------------------------------------- checking

fn check_round_trip(
    codec: &str,
    input: &Input,
    timestamps: impl ExactSizeIterator<Item = i64>,
    values: impl ExactSizeIterator<Item = f64>,
) {
    assert_eq!(
        timestamps.len(),
        input.timestamps.len(),
        "{codec} round trip of {}: decoded {} timestamps, expected {}",
        input.name,
        timestamps.len(),
        input.timestamps.len()
    );
    assert_eq!(
        values.len(),
        input.values.len(),
        "{codec} round trip of {}: decoded {} values, expected {}",
        input.name,
        values.len(),
        input.values.len()
    );
    for (index, (got, &want)) in timestamps.zip(&input.timestamps).enumerate() {
        assert_eq!(
            got, want,
            "{codec} round trip of {}: timestamp {index} decoded as {got}, expected {want}",
            input.name
        );
    }
    for (index, (got, &want)) in values.zip(&input.values).enumerate() {
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{codec} round trip of {}: value {index} decoded as {got:?} ({:#018x}), expected {want:?} ({:#018x})",
            input.name,
            got.to_bits(),
            want.to_bits()
        );
    }
}

struct Prepared {
    input: Input,
    strata_bytes: Vec<u8>,
    strata_chunks: Vec<Range<usize>>,
    sealed_bytes: Vec<u8>,
    sealed_chunks: Vec<Range<usize>>,
    tsz_bytes: Box<[u8]>,
}

/// Encodes every input once with both codecs, verifies the round trips and
/// prints the size table.
fn prepare() -> Vec<Prepared> {
    let prepared: Vec<Prepared> = inputs()
        .into_iter()
        .map(|input| {
            let mut strata_bytes = Vec::new();
            let strata_chunks = strata_encode(
                Mode::Gorilla,
                &input.timestamps,
                &input.values,
                &mut strata_bytes,
            );
            let (ts, vs) = strata_decode_all(&strata_bytes, &strata_chunks);
            check_round_trip("strata", &input, ts.into_iter(), vs.into_iter());
            let mut sealed_bytes = Vec::new();
            let sealed_chunks = strata_encode(
                Mode::Sealed,
                &input.timestamps,
                &input.values,
                &mut sealed_bytes,
            );
            let (ts, vs) = strata_decode_all(&sealed_bytes, &sealed_chunks);
            check_round_trip("strata-sealed", &input, ts.into_iter(), vs.into_iter());

            let tsz_bytes = tsz_encode(&input.timestamps, &input.values, 0);
            let points = tsz_decode_all(tsz_bytes.clone());
            check_round_trip(
                "tsz",
                &input,
                points.iter().map(|p| p.get_time() as i64),
                points.iter().map(|p| p.get_value()),
            );
            Prepared {
                input,
                strata_bytes,
                strata_chunks,
                sealed_bytes,
                sealed_chunks,
                tsz_bytes,
            }
        })
        .collect();

    println!();
    println!(
        "codec sizes, {N_SAMPLES} samples per input (round trips verified bit-exact for both codecs)"
    );
    println!(
        "{:<18} {:<22} {:>10} {:>13}",
        "input", "codec", "bytes", "bytes/sample"
    );
    let row = |input: &str, codec: &str, bytes: usize| {
        println!(
            "{input:<18} {codec:<22} {bytes:>10} {:>13.4}",
            bytes as f64 / N_SAMPLES as f64
        );
    };
    for p in &prepared {
        let name = p.input.name;
        row(name, "strata", p.strata_bytes.len());
        row(name, "strata-sealed", p.sealed_bytes.len());
        row(name, "tsz", p.tsz_bytes.len());
        let tsz_blocks: usize = p
            .input
            .timestamps
            .chunks(HEAD_CHUNK_SAMPLES)
            .zip(p.input.values.chunks(HEAD_CHUNK_SAMPLES))
            .map(|(ts, vs)| tsz_encode(ts, vs, 0).len())
            .sum();
        row(name, "tsz (1024-blocks)*", tsz_blocks);
        // strata's bytes by part, to see where a size difference comes from
        let (mut header, mut ts_stream, mut value_stream) = (0, 0, 0);
        for range in &p.strata_chunks {
            let (_, ts, vs) =
                ChunkHeader::parse(&p.strata_bytes[range.clone()]).expect("strata header");
            header += range.len() - ts.len() - vs.len();
            ts_stream += ts.len();
            value_stream += vs.len();
        }
        println!(
            "{:<18} {:<22} headers {header} B, timestamp streams {ts_stream} B ({:.4} B/sample), value streams {value_stream} B ({:.4} B/sample)",
            "",
            "  strata breakdown:",
            ts_stream as f64 / N_SAMPLES as f64,
            value_stream as f64 / N_SAMPLES as f64
        );
    }
    println!("* tsz cut into 1024-sample streams like strata's chunks; size only, not benchmarked");
    println!();
    prepared
}

// ------------------------------------------------------------ benchmarks

fn codec_benches(c: &mut Criterion) {
    let prepared = prepare();

    for p in &prepared {
        let Input {
            name,
            timestamps,
            values,
        } = &p.input;
        let elements = Throughput::Elements(timestamps.len() as u64);

        let mut group = c.benchmark_group(format!("encode/{name}"));
        group.throughput(elements.clone());
        let mut out = Vec::with_capacity(p.strata_bytes.len());
        group.bench_function("strata", |b| {
            b.iter(|| {
                strata_encode_hot(
                    Mode::Gorilla,
                    black_box(timestamps),
                    black_box(values),
                    &mut out,
                );
                out.len()
            })
        });
        group.bench_function("strata-sealed", |b| {
            b.iter(|| {
                strata_encode_hot(
                    Mode::Sealed,
                    black_box(timestamps),
                    black_box(values),
                    &mut out,
                );
                out.len()
            })
        });
        let tsz_len = p.tsz_bytes.len();
        group.bench_function("tsz", |b| {
            b.iter_batched(
                || (),
                |()| tsz_encode(black_box(timestamps), black_box(values), tsz_len),
                BatchSize::PerIteration,
            )
        });
        group.finish();

        let mut group = c.benchmark_group(format!("decode/{name}"));
        group.throughput(elements);
        let mut chunk = DecodedChunk::default();
        group.bench_function("strata", |b| {
            b.iter(|| strata_decode_hot(black_box(&p.strata_bytes), &p.strata_chunks, &mut chunk))
        });
        group.bench_function("strata-sealed", |b| {
            b.iter(|| strata_decode_hot(black_box(&p.sealed_bytes), &p.sealed_chunks, &mut chunk))
        });
        group.bench_function("tsz", |b| {
            b.iter_batched(
                || p.tsz_bytes.clone(),
                |bytes| {
                    let mut decoder = StdDecoder::new(BufferedReader::new(bytes));
                    let mut samples = 0usize;
                    loop {
                        match decoder.next() {
                            Ok(point) => {
                                black_box(point);
                                samples += 1;
                            }
                            Err(TszError::EndOfStream) => break,
                            Err(err) => panic!("tsz decode failed: {err:?}"),
                        }
                    }
                    // returned so the reader's buffer is freed outside the timing
                    (samples, decoder)
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = codec_benches
}
criterion_main!(benches);
