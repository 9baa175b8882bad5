//! strata, driven only through its public API: `Db::open`, `Db::series`
//! handles, `append_batch`, `close`, `Db::open_read_only` and `select`.
//! Whatever strata's flush writes today (its sealed-segment encodings) is
//! what gets measured.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use strata::codec::DecodedChunk;
use strata::{
    Db, Manifest, Options, Segment, SegmentMeta, SeriesKey, SeriesRef, SeriesSamples, SyncMode,
    TimeRange,
};

use crate::dataset::{Dataset, Feed};
use crate::measure::{best_of, run_writers, WriteTiming};

/// The options of every strata run: no background flush and an unlimited
/// out-of-order window, so the whole dataset is accepted and flushed at
/// `close` into one segment per 2 h partition.
pub fn options(sync: SyncMode) -> Options {
    Options {
        sync,
        flush_complete_partitions: false,
        out_of_order_window_ms: i64::MAX,
        ..Default::default()
    }
}

pub fn sync_name(sync: SyncMode) -> String {
    match sync {
        SyncMode::Always => "sync=Always (group commit)".to_owned(),
        SyncMode::Never => "sync=Never".to_owned(),
        SyncMode::Interval(ms) => format!("sync=Interval({ms})"),
    }
}

fn handles(db: &Db, keys: &[SeriesKey]) -> Result<Vec<SeriesRef>> {
    keys.iter()
        .map(|key| {
            db.series(key)
                .with_context(|| format!("strata: create series {key}"))
        })
        .collect()
}

/// Seconds spent writing the dataset once and closing.
pub struct Load {
    pub write_seconds: f64,
    pub close_seconds: f64,
}

/// Writes the whole dataset once in ingestion order (`batch` samples per
/// `append_batch`, `SyncMode::Never`) and closes the database.
pub fn load(dir: &Path, data: &Dataset, batch: usize) -> Result<Load> {
    let db = Db::open(dir, options(SyncMode::Never))
        .with_context(|| format!("strata: open {}", dir.display()))?;
    let refs = handles(&db, &data.keys)?;
    let started = Instant::now();
    let mut buffer: Vec<(&SeriesRef, i64, f64)> = Vec::with_capacity(batch);
    for chunk in data.order.chunks(batch) {
        buffer.clear();
        buffer.extend(chunk.iter().map(|&(s, i)| {
            let (s, i) = (s as usize, i as usize);
            (&refs[s], data.timestamps[s][i], data.values[s][i])
        }));
        let outcome = db.append_batch(&buffer).context("strata: append_batch")?;
        if let Some((index, error)) = outcome.rejected.first() {
            bail!(
                "strata rejected {} samples of a batch, first at index {index}: {error}",
                outcome.rejected.len()
            );
        }
    }
    let write_seconds = started.elapsed().as_secs_f64();
    drop(refs);
    let started = Instant::now();
    db.close().context("strata: close")?;
    Ok(Load {
        write_seconds,
        close_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Read-back figures.
pub struct Read {
    pub open_seconds: f64,
    pub select_seconds: f64,
    pub samples: usize,
}

/// Opens `dir` read-only and selects every sample of every series
/// (`select(&[], TimeRange::ALL)`), best of `repeat`; then checks the first
/// result against the dataset, bit for bit.
pub fn read_all(dir: &Path, data: &Dataset, repeat: usize) -> Result<Read> {
    let started = Instant::now();
    let db = Db::open_read_only(dir)
        .with_context(|| format!("strata: open read-only {}", dir.display()))?;
    let open_seconds = started.elapsed().as_secs_f64();
    let (select_seconds, result) = best_of(repeat, || {
        db.select(&[], TimeRange::ALL)
            .context("strata: select everything")
    })?;
    let samples = verify(&result, data)?;
    Ok(Read {
        open_seconds,
        select_seconds,
        samples,
    })
}

/// The sealed-chunk decode alone: every segment the manifest lists is
/// opened (`Segment::open`, mmap) and every chunk of every series decoded
/// with `Segment::read_chunk` (crc32 check included) into one reused
/// buffer, best of `repeat`: the engine's query path (matching, merging,
/// per-series vectors) left out, as tsz's decode loop has none. Returns
/// seconds and samples, checked against the dataset's count.
pub fn decode_chunks(dir: &Path, data: &Dataset, repeat: usize) -> Result<(f64, usize)> {
    let manifest = Manifest::load(dir)
        .with_context(|| format!("strata: read the manifest in {}", dir.display()))?
        .with_context(|| format!("strata: no manifest in {}", dir.display()))?;
    let segments: Vec<Segment> = manifest
        .segments
        .iter()
        .map(|meta| {
            let path = dir.join("segments").join(SegmentMeta::file_name(meta.seq));
            Segment::open(&path).with_context(|| format!("strata: open {}", path.display()))
        })
        .collect::<Result<_>>()?;
    let mut chunk = DecodedChunk::default();
    let (seconds, samples) = best_of(repeat, || {
        let mut samples = 0;
        for segment in &segments {
            for id in 0..segment.series_count() as u32 {
                for chunk_ref in segment.chunk_refs(id) {
                    segment
                        .read_chunk(id, chunk_ref, &mut chunk)
                        .context("strata: read_chunk")?;
                    samples += chunk.timestamps.len();
                    std::hint::black_box(&chunk);
                }
            }
        }
        Ok(samples)
    })?;
    if samples != data.samples() {
        bail!(
            "strata's segments hold {samples} samples, {} were written",
            data.samples()
        );
    }
    Ok((seconds, samples))
}

fn verify(result: &[SeriesSamples], data: &Dataset) -> Result<usize> {
    let index: HashMap<&SeriesKey, usize> =
        data.keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    if result.len() != data.keys.len() {
        bail!(
            "strata read back {} series, wrote {}",
            result.len(),
            data.keys.len()
        );
    }
    let mut samples = 0;
    for series in result {
        let Some(&s) = index.get(&series.key) else {
            bail!("strata read back a series never written: {}", series.key);
        };
        let (ts, vs) = (&data.timestamps[s], &data.values[s]);
        if series.samples.len() != ts.len() {
            bail!(
                "strata read back {} samples of {}, wrote {}",
                series.samples.len(),
                series.key,
                ts.len()
            );
        }
        for (i, sample) in series.samples.iter().enumerate() {
            if sample.timestamp_ms != ts[i] || sample.value.to_bits() != vs[i].to_bits() {
                bail!(
                    "strata read back ({}, {}) as sample {i} of {}, wrote ({}, {})",
                    sample.timestamp_ms,
                    sample.value,
                    series.key,
                    ts[i],
                    vs[i]
                );
            }
        }
        samples += ts.len();
    }
    Ok(samples)
}

/// Time-bound write throughput: `writers` threads, each appending batches
/// of `batch` samples of its share of the series, for `seconds`; then
/// `close` (timed separately).
pub fn write_run(
    dir: &Path,
    data: &Dataset,
    sync: SyncMode,
    writers: usize,
    batch: usize,
    seconds: f64,
) -> Result<(WriteTiming, f64)> {
    let db =
        Db::open(dir, options(sync)).with_context(|| format!("strata: open {}", dir.display()))?;
    let refs = handles(&db, &data.keys)?;
    let shares = data.shares(writers);
    let timing = run_writers(writers, seconds, |w, stop: &AtomicBool| {
        let mut feed = Feed::new(data, &shares[w]);
        let mut buffer: Vec<(&SeriesRef, i64, f64)> = Vec::with_capacity(batch);
        let mut written = 0u64;
        let mut in_engine = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            buffer.clear();
            for _ in 0..batch {
                let (s, ts, v) = feed.next_sample();
                buffer.push((&refs[s], ts, v));
            }
            let started = Instant::now();
            let outcome = db.append_batch(&buffer).context("strata: append_batch")?;
            in_engine += started.elapsed();
            if !outcome.rejected.is_empty() {
                bail!("strata rejected {} samples", outcome.rejected.len());
            }
            written += outcome.accepted as u64;
        }
        Ok((written, in_engine))
    })?;
    drop(refs);
    let started = Instant::now();
    db.close().context("strata: close")?;
    Ok((timing, started.elapsed().as_secs_f64()))
}
