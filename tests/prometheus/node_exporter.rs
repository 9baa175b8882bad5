//! The first data set of tests/prometheus_diff.rs: a real node-exporter
//! capture in strata's canonical TSV, loaded into a strata [`Db`] and
//! written, sample for sample, as OpenMetrics text for `promtool tsdb
//! create-blocks-from openmetrics`.
//!
//! Invariants: both engines get exactly the same samples (samples whose
//! value is a non-canonical NaN, i.e. staleness markers, are left out of
//! both, since OpenMetrics text cannot carry them); every OpenMetrics
//! timestamp reads back as the same millisecond (asserted per sample).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use strata::ingest::{format_value, Format, Line, LineParser, LineReader};
use strata::{Db, Options, SeriesKey, SeriesRef, SyncMode};

use super::compare::label_text;

const SLICE: &str = "tests/data/node-exporter-10min.tsv.zst";
const FULL: &str = "../shared/data/node-exporter-24min.tsv.zst";

/// Samples per `Db::append_batch` call while loading.
const BATCH: usize = 1 << 16;

/// Which data file the test loads.
pub struct DataChoice {
    pub path: PathBuf,
    /// The committed slice or the full capture: the expressions are known
    /// to return something on them, so an answer empty on both sides fails.
    pub default_data: bool,
}

impl DataChoice {
    pub fn from_env() -> DataChoice {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        match std::env::var_os("STRATA_PROMDIFF_DATA") {
            Some(v) if v == "slice" => DataChoice {
                path: root.join(SLICE),
                default_data: true,
            },
            Some(path) => DataChoice {
                path: PathBuf::from(path),
                default_data: false,
            },
            None => {
                let full = root.join(FULL);
                DataChoice {
                    path: if full.exists() {
                        full
                    } else {
                        root.join(SLICE)
                    },
                    default_data: true,
                }
            }
        }
    }
}

/// Everything loaded from the data file.
pub struct Loaded {
    pub db: Db,
    pub samples: usize,
    pub series: usize,
    pub min_ms: i64,
    pub max_ms: i64,
    pub dropped_non_canonical_nan: usize,
    /// The file's first series: its samples, kept for the raw check and to
    /// place steps exactly on sample timestamps.
    pub first_series: SeriesKey,
    /// Samples of the first series and of every `up` series, by
    /// [`label_text`].
    pub kept: BTreeMap<String, Vec<(i64, f64)>>,
}

/// Reads the canonical TSV `path` (zstd-compressed when it ends in `.zst`)
/// into a new strata database in `db_dir`, flushed to segments, and writes
/// the same samples as OpenMetrics text to `om`.
pub fn load(path: &Path, db_dir: &Path, om: &Path) -> Loaded {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let input: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "zst") {
        Box::new(BufReader::new(zstd::Decoder::new(file).unwrap()))
    } else {
        Box::new(BufReader::new(file))
    };
    let db = Db::open(
        db_dir,
        Options {
            sync: SyncMode::Never,
            flush_complete_partitions: false,
            out_of_order_window_ms: i64::MAX,
            ..Options::default()
        },
    )
    .unwrap();
    let mut out = BufWriter::new(File::create(om).unwrap());
    let parser = LineParser::new(Format::Tsv, 0);
    let mut reader = LineReader::new(input, 1 << 20);
    let mut parsed = Vec::new();
    let mut pending: Vec<(SeriesRef, i64, f64)> = Vec::with_capacity(BATCH);
    let mut first_series = None;
    let mut kept: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    // The series of the previous sample, its handle, its OpenMetrics text
    // and whether its samples are kept: the file is sorted by series, so
    // this saves a lookup and a formatting per sample.
    let mut current: Option<(SeriesKey, SeriesRef, String, bool)> = None;
    let (mut samples, mut dropped, mut min_ms, mut max_ms) = (0, 0, i64::MAX, i64::MIN);
    while let Some((line_no, line)) = reader.next_line().unwrap() {
        let Line::Complete(raw) = line else {
            panic!("{}: line {line_no} is too long", path.display());
        };
        let text = std::str::from_utf8(raw).unwrap();
        parsed.clear();
        parser
            .parse_line(line_no, text, &mut parsed)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for sample in parsed.drain(..) {
            let (key, ts, value) = (sample.key, sample.timestamp_ms, sample.value);
            if value.is_nan() && format_value(value) != "NaN" {
                dropped += 1;
                continue;
            }
            let (key, series, om_key, keep) = match &mut current {
                Some(same) if same.0 == key => same,
                slot => {
                    let first = first_series.get_or_insert_with(|| key.clone());
                    let keep = *first == key || key.metric() == "up";
                    let series = db.series(&key).unwrap();
                    let om_key = key.to_string();
                    slot.insert((key, series, om_key, keep))
                }
            };
            if *keep {
                kept.entry(label_text(
                    key.labels().iter().map(|l| (&*l.name, &*l.value)),
                ))
                .or_default()
                .push((ts, value));
            }
            writeln!(
                out,
                "{om_key} {} {}",
                format_value(value),
                openmetrics_time(ts)
            )
            .unwrap();
            pending.push((series.clone(), ts, value));
            if pending.len() == BATCH {
                append(&db, &mut pending);
            }
            samples += 1;
            min_ms = min_ms.min(ts);
            max_ms = max_ms.max(ts);
        }
    }
    append(&db, &mut pending);
    writeln!(out, "# EOF").unwrap();
    out.flush().unwrap();
    db.flush().unwrap();
    let series = db.stats().head_series;
    Loaded {
        db,
        samples,
        series,
        min_ms,
        max_ms,
        dropped_non_canonical_nan: dropped,
        first_series: first_series.unwrap_or_else(|| panic!("{}: no samples", path.display())),
        kept,
    }
}

fn append(db: &Db, pending: &mut Vec<(SeriesRef, i64, f64)>) {
    let batch: Vec<(&SeriesRef, i64, f64)> = pending.iter().map(|(s, t, v)| (s, *t, *v)).collect();
    let outcome = db.append_batch(&batch).unwrap();
    assert!(
        outcome.rejected.is_empty(),
        "strata rejected samples: {:?}",
        outcome.rejected.first()
    );
    pending.clear();
}

/// A Unix-millisecond time as OpenMetrics seconds that promtool reads back
/// as exactly `ms`: its parser computes `int64(seconds * 1000)`, which
/// truncates, so `1.001` would come back as 1000 ms. A quarter millisecond
/// more, away from zero, survives both the binary rounding of the seconds
/// and the truncation toward zero.
pub fn openmetrics_time(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    let text = format!("{sign}{}.{:03}25", abs / 1000, abs % 1000);
    let seconds: f64 = text.parse().unwrap();
    assert_eq!((seconds * 1000.0) as i64, ms, "{text} would not read back");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_times_read_back_as_the_same_millisecond() {
        // 1001 ms: 1.001 * 1000 is 1000.9999999999999 in binary floating
        // point, which truncates to 1000; the quarter millisecond keeps it
        // on 1001.
        assert_eq!(openmetrics_time(1_001), "1.00125");
        assert_eq!(openmetrics_time(1_796_021_460_996), "1796021460.99625");
        assert_eq!(openmetrics_time(0), "0.00025");
        assert_eq!(openmetrics_time(-1), "-0.00125");
        assert_eq!(openmetrics_time(-1_500), "-1.50025");
        // Every millisecond of a small range, where binary rounding bites
        // (the function asserts the read-back itself).
        for ms in -5_000..5_000 {
            openmetrics_time(ms);
        }
    }
}
