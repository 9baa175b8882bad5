//! tsz 0.1.4 (Facebook's Gorilla), driven as strata's `benches/codec.rs`
//! drives it: one `StdEncoder` stream per series over a `BufferedWriter`,
//! decoded with `StdDecoder` over a `BufferedReader`; times are `u64`
//! milliseconds. The size is the sum of the stream bytes: no index, no
//! series names, no checksums — the floor a Gorilla engine builds on.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use tsz::decode::Error as TszError;
use tsz::stream::{BufferedReader, BufferedWriter};
use tsz::{DataPoint, Decode, Encode, StdDecoder, StdEncoder};

use crate::dataset::Dataset;
use crate::measure::best_of;

fn encode(timestamps: &[i64], values: &[f64]) -> Result<Box<[u8]>> {
    let start = u64::try_from(timestamps[0])
        .map_err(|_| anyhow!("tsz needs non-negative timestamps, got {}", timestamps[0]))?;
    let mut encoder = StdEncoder::new(start, BufferedWriter::new());
    for (&t, &v) in timestamps.iter().zip(values) {
        encoder.encode(DataPoint::new(t as u64, v));
    }
    Ok(encoder.close())
}

/// Decodes one stream into `out` (cleared first).
fn decode(bytes: Box<[u8]>, out: &mut Vec<DataPoint>) -> Result<()> {
    out.clear();
    let mut decoder = StdDecoder::new(BufferedReader::new(bytes));
    loop {
        match decoder.next() {
            Ok(point) => out.push(point),
            Err(TszError::EndOfStream) => return Ok(()),
            Err(err) => bail!("tsz decode failed after {} points: {err:?}", out.len()),
        }
    }
}

pub struct Encoded {
    pub streams: Vec<Box<[u8]>>,
    pub bytes: u64,
    pub encode_seconds: f64,
}

/// Encodes every series (best of `repeat` for the time).
pub fn encode_all(data: &Dataset, repeat: usize) -> Result<Encoded> {
    let (encode_seconds, streams) = best_of(repeat, || {
        data.timestamps
            .iter()
            .zip(&data.values)
            .map(|(ts, vs)| encode(ts, vs))
            .collect::<Result<Vec<_>>>()
    })?;
    let bytes = streams.iter().map(|s| s.len() as u64).sum();
    Ok(Encoded {
        streams,
        bytes,
        encode_seconds,
    })
}

/// Decodes every stream, best of `repeat`. `BufferedReader` takes ownership
/// of its bytes, so each repetition gets fresh copies made before the clock
/// starts; decoded points go to one reused buffer. Checks every
/// stream against the dataset bit for bit first.
pub fn decode_all(encoded: &Encoded, data: &Dataset, repeat: usize) -> Result<(f64, usize)> {
    let mut points = Vec::new();
    for (s, stream) in encoded.streams.iter().enumerate() {
        decode(stream.clone(), &mut points)?;
        let (ts, vs) = (&data.timestamps[s], &data.values[s]);
        let exact = points.len() == ts.len()
            && points.iter().zip(ts.iter().zip(vs)).all(|(p, (&t, &v))| {
                p.get_time() == t as u64 && p.get_value().to_bits() == v.to_bits()
            });
        if !exact {
            bail!("tsz round trip of {} is not bit-exact", data.keys[s]);
        }
    }
    let mut best = f64::INFINITY;
    let mut samples = 0;
    for _ in 0..repeat.max(1) {
        let copies: Vec<Box<[u8]>> = encoded.streams.clone();
        let started = Instant::now();
        let mut n = 0;
        for bytes in copies {
            decode(bytes, &mut points)?;
            n += points.len();
            black_box(&points);
        }
        best = best.min(started.elapsed().as_secs_f64());
        samples = n;
    }
    Ok((best, samples))
}
