//! tsink 0.10, driven through its public API: `StorageBuilder`,
//! `insert_rows_with_result` with `Row`s of `DataPoint`s, `close`, and
//! `list_metrics` + `select` to read back.
//!
//! Settings: millisecond timestamps (tsink defaults to nanoseconds), every
//! other option at its default (1 h partitions, 2048-point chunks, 14-day
//! retention *not* enforced, writers = CPU count) except the WAL, which is
//! one of [`WalSetting`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use strata::SeriesKey;
use tsink::{
    DataPoint, Label, MetricSeries, Row, Storage, StorageBuilder, TimestampPrecision, WalSyncMode,
    WriteAcknowledgement,
};

use crate::dataset::{Dataset, Feed};
use crate::measure::{best_of, run_writers, WriteTiming};

/// tsink's WAL configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalSetting {
    /// `WalSyncMode::PerAppend` (tsink's default and strongest): every
    /// `insert_rows` call fsyncs the WAL before returning.
    PerAppend,
    /// `WalSyncMode::Periodic(1 h)`: the WAL is written (to the OS) on every
    /// call but fsynced at most hourly, i.e. not during a run.
    NoSync,
    /// `with_wal_enabled(false)`: no WAL at all.
    Off,
}

impl WalSetting {
    pub fn name(self) -> &'static str {
        match self {
            WalSetting::PerAppend => "WAL PerAppend (fsync per insert)",
            WalSetting::NoSync => "WAL Periodic(1h) (no fsync)",
            WalSetting::Off => "WAL disabled",
        }
    }

    /// The acknowledgement tsink must report for this setting.
    fn acknowledgement(self) -> WriteAcknowledgement {
        match self {
            WalSetting::PerAppend => WriteAcknowledgement::Durable,
            WalSetting::NoSync => WriteAcknowledgement::Appended,
            WalSetting::Off => WriteAcknowledgement::Volatile,
        }
    }
}

fn open(dir: &Path, wal: WalSetting) -> Result<Arc<dyn Storage>> {
    let builder = StorageBuilder::new()
        .with_data_path(dir)
        .with_timestamp_precision(TimestampPrecision::Milliseconds);
    let builder = match wal {
        WalSetting::PerAppend => builder.with_wal_sync_mode(WalSyncMode::PerAppend),
        WalSetting::NoSync => {
            builder.with_wal_sync_mode(WalSyncMode::Periodic(Duration::from_secs(3600)))
        }
        WalSetting::Off => builder.with_wal_enabled(false),
    };
    builder
        .build()
        .with_context(|| format!("tsink: open {}", dir.display()))
}

/// strata's key as tsink's metric name and labels (`__name__` removed).
fn tsink_series(key: &SeriesKey) -> MetricSeries {
    MetricSeries {
        name: key.metric().to_owned(),
        labels: key
            .labels()
            .iter()
            .filter(|l| &*l.name != "__name__")
            .map(|l| Label::new(&*l.name, &*l.value))
            .collect(),
    }
}

/// A lookup key that ignores label order.
fn identity(name: &str, labels: &[Label]) -> String {
    let mut pairs: Vec<(&str, &str)> = labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    pairs.sort_unstable();
    let mut id = name.to_owned();
    for (n, v) in pairs {
        id.push('\0');
        id.push_str(n);
        id.push('\0');
        id.push_str(v);
    }
    id
}

/// One template row per series; a batch clones them and sets the point,
/// since tsink's API takes owned metric names and labels in every row.
fn templates(data: &Dataset) -> Vec<Row> {
    data.keys
        .iter()
        .map(|key| {
            let series = tsink_series(key);
            Row::with_labels(series.name, series.labels, DataPoint::new(0i64, 0.0))
        })
        .collect()
}

fn insert(storage: &dyn Storage, rows: &[Row], wal: WalSetting) -> Result<()> {
    let result = storage
        .insert_rows_with_result(rows)
        .context("tsink: insert_rows")?;
    if result.acknowledgement != wal.acknowledgement() {
        bail!(
            "tsink acknowledged a write as {} with {}; expected {}",
            result.acknowledgement.as_str(),
            wal.name(),
            wal.acknowledgement().as_str()
        );
    }
    Ok(())
}

pub struct Load {
    pub write_seconds: f64,
    pub close_seconds: f64,
}

/// Writes the whole dataset once in ingestion order (`batch` rows per
/// `insert_rows`) and closes the storage.
pub fn load(dir: &Path, data: &Dataset, batch: usize, wal: WalSetting) -> Result<Load> {
    let storage = open(dir, wal)?;
    let templates = templates(data);
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::with_capacity(batch);
    for chunk in data.order.chunks(batch) {
        rows.clear();
        rows.extend(chunk.iter().map(|&(s, i)| {
            let (s, i) = (s as usize, i as usize);
            let mut row = templates[s].clone();
            row.set_data_point(DataPoint::new(data.timestamps[s][i], data.values[s][i]));
            row
        }));
        insert(&*storage, &rows, wal)?;
    }
    let write_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    storage.close().context("tsink: close")?;
    Ok(Load {
        write_seconds,
        close_seconds: started.elapsed().as_secs_f64(),
    })
}

pub struct Read {
    pub open_seconds: f64,
    pub select_seconds: f64,
    pub samples: usize,
}

/// Reopens the storage and reads every series back: `list_metrics`, then
/// `select` of each over the whole time range, best of `repeat`; checks the
/// first result against the dataset bit for bit.
pub fn read_all(dir: &Path, data: &Dataset, wal: WalSetting, repeat: usize) -> Result<Read> {
    let started = Instant::now();
    let storage = open(dir, wal)?;
    let open_seconds = started.elapsed().as_secs_f64();
    // tsink's select range is [start, end).
    let (start, end) = (data.min_ts, data.max_ts + 1);
    let (select_seconds, result) = best_of(repeat, || {
        let series = storage.list_metrics().context("tsink: list_metrics")?;
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            let points = storage
                .select(&s.name, &s.labels, start, end)
                .with_context(|| format!("tsink: select {}", s.name))?;
            out.push((s, points));
        }
        Ok(out)
    })?;
    let samples = verify(&result, data)?;
    storage.close().context("tsink: close after reading")?;
    Ok(Read {
        open_seconds,
        select_seconds,
        samples,
    })
}

fn verify(result: &[(MetricSeries, Vec<DataPoint>)], data: &Dataset) -> Result<usize> {
    let index: HashMap<String, usize> = data
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let s = tsink_series(k);
            (identity(&s.name, &s.labels), i)
        })
        .collect();
    if result.len() != data.keys.len() {
        bail!(
            "tsink listed {} series, {} were written",
            result.len(),
            data.keys.len()
        );
    }
    let mut samples = 0;
    for (series, points) in result {
        let Some(&s) = index.get(&identity(&series.name, &series.labels)) else {
            bail!("tsink listed a series never written: {series:?}");
        };
        let (ts, vs) = (&data.timestamps[s], &data.values[s]);
        if points.len() != ts.len() {
            bail!(
                "tsink read back {} points of {}, wrote {}",
                points.len(),
                data.keys[s],
                ts.len()
            );
        }
        for (i, point) in points.iter().enumerate() {
            let value = point.value_as_f64();
            if point.timestamp != ts[i] || value.map(f64::to_bits) != Some(vs[i].to_bits()) {
                bail!(
                    "tsink read back ({}, {:?}) as point {i} of {}, wrote ({}, {})",
                    point.timestamp,
                    point.value,
                    data.keys[s],
                    ts[i],
                    vs[i]
                );
            }
        }
        samples += ts.len();
    }
    Ok(samples)
}

/// Time-bound write throughput, as [`crate::strata_engine::write_run`]:
/// `writers` threads each insert batches of `batch` rows of their share of
/// the series for `seconds`; then `close` (timed separately).
pub fn write_run(
    dir: &Path,
    data: &Dataset,
    wal: WalSetting,
    writers: usize,
    batch: usize,
    seconds: f64,
) -> Result<(WriteTiming, f64)> {
    let storage = open(dir, wal)?;
    let templates = templates(data);
    let shares = data.shares(writers);
    let timing = run_writers(writers, seconds, |w, stop: &AtomicBool| {
        let mut feed = Feed::new(data, &shares[w]);
        let mut rows: Vec<Row> = Vec::with_capacity(batch);
        let mut written = 0u64;
        let mut in_engine = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            rows.clear();
            for _ in 0..batch {
                let (s, ts, v) = feed.next_sample();
                let mut row = templates[s].clone();
                row.set_data_point(DataPoint::new(ts, v));
                rows.push(row);
            }
            let started = Instant::now();
            insert(&*storage, &rows, wal)?;
            in_engine += started.elapsed();
            written += rows.len() as u64;
        }
        Ok((written, in_engine))
    })?;
    let started = Instant::now();
    storage.close().context("tsink: close")?;
    Ok((timing, started.elapsed().as_secs_f64()))
}
