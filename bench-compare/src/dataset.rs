//! The data every engine receives: series keys, their samples, and the
//! order in which the samples are ingested.
//!
//! Two sources:
//! - [`Dataset::devops`]: strata's TSBS `cpu-only` generator
//!   ([`strata::workload::Devops`]), N hosts × 10 cpu metrics every 10 s;
//! - [`Dataset::from_tsv`]: a file in strata's canonical import format,
//!   `series<TAB>timestamp_ms<TAB>value` per line.
//!
//! Everything is held in memory before any engine is timed, so parsing and
//! generation never count against an engine.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{bail, Context, Result};
use strata::workload::{Devops, DevopsConfig};
use strata::SeriesKey;

/// Series and samples, in memory.
pub struct Dataset {
    /// One line for humans, e.g. `devops: 10 hosts x 10 metrics, 6h at 10s, 2 decimals`.
    pub description: String,
    /// Short name for JSON and target selection: `devops` or `tsv`.
    pub kind: DatasetKind,
    pub keys: Vec<SeriesKey>,
    /// Per series: timestamps in increasing order, no repeats.
    pub timestamps: Vec<Vec<i64>>,
    /// Per series: the value of each timestamp.
    pub values: Vec<Vec<f64>>,
    /// Ingestion order, `(series, sample index)`, by timestamp then series:
    /// the way a scraper delivers samples.
    pub order: Vec<(u32, u32)>,
    pub min_ts: i64,
    pub max_ts: i64,
    /// How far the write benchmark shifts timestamps on each further pass
    /// over the data, so that every pass continues the series in time.
    pub cycle_shift_ms: i64,
    /// Repeated `(series, timestamp)` lines dropped while loading (last kept).
    pub duplicates_dropped: usize,
}

/// Which kind of data a [`Dataset`] holds; selects the size target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    /// TSBS-like devops data rounded to a few decimals.
    DevopsDecimal,
    /// TSBS-like devops data at full f64 precision.
    DevopsFullPrecision,
    /// A TSV file (real scraped telemetry, in the README's runs).
    Tsv,
}

impl Dataset {
    /// Generates `hosts` × 10 series over `duration_ms` at 10 s.
    pub fn devops(
        hosts: usize,
        duration_ms: i64,
        decimals: Option<u32>,
        seed: u64,
    ) -> Result<Self> {
        const INTERVAL_MS: i64 = 10_000;
        const START_MS: i64 = 1_700_000_000_000;
        if hosts == 0 {
            bail!("--hosts must be at least 1");
        }
        let rounds = duration_ms / INTERVAL_MS;
        if rounds < 1 {
            bail!("--duration must cover at least one 10 s interval");
        }
        let mut devops = Devops::new(DevopsConfig {
            hosts,
            start_ms: START_MS,
            interval_ms: INTERVAL_MS,
            decimals,
            seed,
        });
        let keys = devops.keys().to_vec();
        let n = keys.len();
        let per_series = rounds as usize;
        let mut timestamps = vec![Vec::with_capacity(per_series); n];
        let mut values = vec![Vec::with_capacity(per_series); n];
        let mut order = Vec::with_capacity(n * per_series);
        for round in 0..per_series {
            let (ts, row) = devops.next_round();
            for (series, &value) in row.iter().enumerate() {
                timestamps[series].push(ts);
                values[series].push(value);
                order.push((series as u32, round as u32));
            }
        }
        let precision = match decimals {
            Some(d) => format!("{d} decimals"),
            None => "full precision".to_owned(),
        };
        Ok(Dataset {
            description: format!(
                "devops (TSBS cpu-only): {hosts} hosts x 10 metrics = {n} series, {} at 10 s, {precision}, seed {seed}",
                format_duration(duration_ms)
            ),
            kind: if decimals.is_some() {
                DatasetKind::DevopsDecimal
            } else {
                DatasetKind::DevopsFullPrecision
            },
            keys,
            timestamps,
            values,
            order,
            min_ts: START_MS,
            max_ts: START_MS + (rounds - 1) * INTERVAL_MS,
            cycle_shift_ms: rounds * INTERVAL_MS,
            duplicates_dropped: 0,
        })
    }

    /// Loads `series<TAB>timestamp_ms<TAB>value` lines. Series text is
    /// parsed with [`SeriesKey::parse`], values with `str::parse::<f64>`.
    /// A repeated `(series, timestamp)` keeps the last value, as strata does.
    pub fn from_tsv(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
        let reader = BufReader::with_capacity(1 << 20, file);
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut keys: Vec<SeriesKey> = Vec::new();
        let mut raw: Vec<Vec<(i64, f64)>> = Vec::new();
        let mut last: Option<(String, u32)> = None;
        for (line_no, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("read {}", path.display()))?;
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("{}:{}", path.display(), line_no + 1);
            let mut fields = line.split('\t');
            let (Some(series), Some(ts), Some(value), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                bail!("{}: expected series<TAB>timestamp_ms<TAB>value", at());
            };
            let ts: i64 = ts
                .parse()
                .with_context(|| format!("{}: bad timestamp {ts:?}", at()))?;
            let value: f64 = value
                .parse()
                .with_context(|| format!("{}: bad value {value:?}", at()))?;
            // The canonical format is sorted by series: remember the last one.
            let id = match &last {
                Some((text, id)) if text == series => *id,
                _ => {
                    let id = match index.get(series) {
                        Some(&id) => id,
                        None => {
                            let key = SeriesKey::parse(series)
                                .with_context(|| format!("{}: bad series {series:?}", at()))?;
                            let id = keys.len() as u32;
                            keys.push(key);
                            raw.push(Vec::new());
                            index.insert(series.to_owned(), id);
                            id
                        }
                    };
                    last = Some((series.to_owned(), id));
                    id
                }
            };
            raw[id as usize].push((ts, value));
        }
        if keys.is_empty() {
            bail!("{}: no samples", path.display());
        }
        // Two texts may name the same series (label order, empty labels).
        let mut canonical: HashMap<SeriesKey, usize> = HashMap::new();
        let mut merged_keys = Vec::new();
        let mut merged: Vec<Vec<(i64, f64)>> = Vec::new();
        for (key, samples) in keys.into_iter().zip(raw) {
            match canonical.get(&key) {
                Some(&at) => merged[at].extend(samples),
                None => {
                    canonical.insert(key.clone(), merged_keys.len());
                    merged_keys.push(key);
                    merged.push(samples);
                }
            }
        }
        let mut duplicates_dropped = 0;
        let mut timestamps = Vec::with_capacity(merged.len());
        let mut values = Vec::with_capacity(merged.len());
        for mut samples in merged {
            samples.sort_by_key(|&(ts, _)| ts); // stable: repeats stay in file order
            let mut ts_out: Vec<i64> = Vec::with_capacity(samples.len());
            let mut v_out: Vec<f64> = Vec::with_capacity(samples.len());
            for (ts, v) in samples {
                if ts_out.last() == Some(&ts) {
                    *v_out.last_mut().expect("parallel vectors") = v;
                    duplicates_dropped += 1;
                } else {
                    ts_out.push(ts);
                    v_out.push(v);
                }
            }
            timestamps.push(ts_out);
            values.push(v_out);
        }
        let mut timed: Vec<(i64, u32, u32)> = timestamps
            .iter()
            .enumerate()
            .flat_map(|(s, ts)| {
                ts.iter()
                    .enumerate()
                    .map(move |(i, &t)| (t, s as u32, i as u32))
            })
            .collect();
        timed.sort_unstable();
        let min_ts = timed.first().map_or(0, |t| t.0);
        let max_ts = timed.last().map_or(0, |t| t.0);
        if min_ts < 0 {
            bail!(
                "{}: negative timestamps are not supported (tsz takes u64 times)",
                path.display()
            );
        }
        let order = timed.into_iter().map(|(_, s, i)| (s, i)).collect();
        let series = merged_keys.len();
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Dataset {
            description: format!(
                "tsv {name}: {series} series, {} of data",
                format_duration(max_ts - min_ts)
            ),
            kind: DatasetKind::Tsv,
            keys: merged_keys,
            timestamps,
            values,
            order,
            min_ts,
            max_ts,
            // The next whole second after the span, so a pass never overlaps the previous one.
            cycle_shift_ms: (max_ts - min_ts) / 1000 * 1000 + 1000,
            duplicates_dropped,
        })
    }

    /// Switches ingestion to series order: every sample of the first
    /// series, then of the next, ... (the canonical TSV file's order), so a
    /// batch holds consecutive samples of few series instead of one sample
    /// of many.
    pub fn use_series_order(&mut self) {
        self.order = self
            .timestamps
            .iter()
            .enumerate()
            .flat_map(|(s, ts)| (0..ts.len() as u32).map(move |i| (s as u32, i)))
            .collect();
    }

    /// Total samples.
    pub fn samples(&self) -> usize {
        self.order.len()
    }

    /// Each writer's share of the ingestion order: series `i` belongs to
    /// writer `i % writers`, so every series has exactly one writer and is
    /// written in time order.
    pub fn shares(&self, writers: usize) -> Vec<Vec<(u32, u32)>> {
        let mut shares = vec![Vec::with_capacity(self.order.len() / writers + 1); writers];
        for &(s, i) in &self.order {
            shares[s as usize % writers].push((s, i));
        }
        shares
    }
}

/// An endless feed over one writer's share: after the last sample it starts
/// again with every timestamp shifted by `cycle_shift_ms` more.
pub struct Feed<'a> {
    data: &'a Dataset,
    share: &'a [(u32, u32)],
    pos: usize,
    shift: i64,
}

impl<'a> Feed<'a> {
    pub fn new(data: &'a Dataset, share: &'a [(u32, u32)]) -> Self {
        assert!(!share.is_empty(), "a writer needs at least one series");
        Feed {
            data,
            share,
            pos: 0,
            shift: 0,
        }
    }

    /// The next `(series, timestamp_ms, value)`.
    #[inline]
    pub fn next_sample(&mut self) -> (usize, i64, f64) {
        let (s, i) = self.share[self.pos];
        let (s, i) = (s as usize, i as usize);
        let sample = (
            s,
            self.data.timestamps[s][i] + self.shift,
            self.data.values[s][i],
        );
        self.pos += 1;
        if self.pos == self.share.len() {
            self.pos = 0;
            self.shift += self.data.cycle_shift_ms;
        }
        sample
    }
}

/// Parses `6h`, `30m`, `90s`, `1d` or plain seconds into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit_ms) = match text.char_indices().last() {
        Some((at, 's')) => (&text[..at], 1_000),
        Some((at, 'm')) => (&text[..at], 60_000),
        Some((at, 'h')) => (&text[..at], 3_600_000),
        Some((at, 'd')) => (&text[..at], 86_400_000),
        _ => (text, 1_000),
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}: use e.g. 6h, 30m, 90s"))?;
    if !(number > 0.0 && number.is_finite()) {
        return Err(format!("duration {text:?} must be positive"));
    }
    Ok((number * unit_ms as f64).round() as i64)
}

/// `21600000` → `6h`, `1440000` → `24m`, else seconds.
pub fn format_duration(ms: i64) -> String {
    if ms > 0 && ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms > 0 && ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{:.0}s", ms as f64 / 1000.0)
    }
}

/// `--decimals`: a number of decimals, or `None` for unrounded values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimals(pub Option<u32>);

/// Parses `--decimals`: a number, or `full` for unrounded values.
pub fn parse_decimals(text: &str) -> Result<Decimals, String> {
    match text {
        "full" | "none" => Ok(Decimals(None)),
        digits => digits
            .parse::<u32>()
            .ok()
            .filter(|&d| d <= 15)
            .map(|d| Decimals(Some(d)))
            .ok_or_else(|| format!("bad --decimals {digits:?}: 0..=15 or `full`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("6h"), Ok(6 * 3_600_000));
        assert_eq!(parse_duration_ms("30m"), Ok(1_800_000));
        assert_eq!(parse_duration_ms("90"), Ok(90_000));
        assert!(parse_duration_ms("-1h").is_err());
        assert_eq!(format_duration(6 * 3_600_000), "6h");
        assert_eq!(format_duration(1_440_000), "24m");
    }

    #[test]
    fn devops_shape_and_feed_cycles() {
        let data = Dataset::devops(2, 60_000, Some(2), 1).unwrap();
        assert_eq!(data.keys.len(), 20);
        assert_eq!(data.samples(), 20 * 6);
        assert_eq!(data.cycle_shift_ms, 60_000);
        let shares = data.shares(2);
        assert_eq!(shares[0].len() + shares[1].len(), data.samples());
        let mut feed = Feed::new(&data, &shares[1]);
        let first = feed.next_sample();
        for _ in 1..shares[1].len() {
            feed.next_sample();
        }
        let again = feed.next_sample();
        assert_eq!((again.0, again.1 - 60_000), (first.0, first.1));
        assert_eq!(again.2.to_bits(), first.2.to_bits());
    }

    #[test]
    fn tsv_sorts_dedups_and_orders_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tsv");
        std::fs::write(
            &path,
            "a{x=\"1\"}\t2000\t2\na{x=\"1\"}\t1000\t1\na{x=\"1\"}\t2000\t3\nb\t1500\t0.5\n",
        )
        .unwrap();
        let data = Dataset::from_tsv(&path).unwrap();
        assert_eq!(data.keys.len(), 2);
        assert_eq!(data.timestamps[0], vec![1000, 2000]);
        assert_eq!(data.values[0], vec![1.0, 3.0]);
        assert_eq!(data.duplicates_dropped, 1);
        assert_eq!(data.order, vec![(0, 0), (1, 0), (0, 1)]);
        let mut by_series = data;
        by_series.use_series_order();
        assert_eq!(by_series.order, vec![(0, 0), (0, 1), (1, 0)]);
    }
}
