//! Rollup buckets in segment files.
//!
//! A rollup segment is an ordinary segment file (same format, same
//! adaptive encodings, same checksums) whose series are columns: a base
//! series' buckets are stored as seven series, its key plus the label
//! [`ROLLUP_LABEL`] naming the [`Column`]. `count`, `sum`, `min`, `max`
//! and `increase` are sampled at the bucket start; `first` and `last` at
//! the first and last raw sample's own timestamps (so the `last` column,
//! read alone, is the raw series decimated to one sample per bucket).
//! The manifest says which tier (resolution) a segment belongs to.
//!
//! Invariants:
//! - every base series has all seven columns, with one sample per bucket
//!   each, so the columns of a selection align by index (checked when
//!   read: a mismatch is corruption);
//! - a column series' id order is its base key order: the seven columns
//!   of a matcher selection, each intersected with one column's postings,
//!   list the base series in the same order.

use super::{Buckets, Column, ROLLUP_LABEL};
use crate::error::{Corruption, CorruptionError, Result};
use crate::index::Matcher;
use crate::query::source::SeriesColumns;
use crate::segment::{Segment, SegmentWriter};
use crate::series::{Label, Sample, SeriesKey, TimeRange};

/// The series ids of one base series' seven columns in one segment, in
/// [`Column::ALL`] order.
pub type ColumnIds = [u32; 7];

/// The key a column of `base` is stored under.
pub fn column_key(base: &SeriesKey, column: Column) -> SeriesKey {
    let mut labels = base.labels().to_vec();
    labels.push(Label::new(ROLLUP_LABEL, column.label_value()));
    labels.sort();
    // `base` is valid and the rollup label is a valid, unused name.
    SeriesKey::from_labels(labels).unwrap_or_else(|_| base.clone())
}

/// `key` without its rollup label, and the column it names (`None` for a
/// key that is no rollup column).
pub fn split_key(key: &SeriesKey) -> Option<(SeriesKey, Column)> {
    let column = Column::from_label_value(key.get(ROLLUP_LABEL)?)?;
    let labels = key
        .labels()
        .iter()
        .filter(|l| &*l.name != ROLLUP_LABEL)
        .cloned()
        .collect();
    Some((SeriesKey::from_labels(labels).ok()?, column))
}

/// Adds `base`'s buckets (non-empty) to a rollup segment being written.
pub fn add_buckets(writer: &mut SegmentWriter, base: &SeriesKey, b: &Buckets) -> Result<()> {
    let mut samples = Vec::with_capacity(b.len());
    for column in Column::ALL {
        samples.clear();
        let (timestamps, values): (&[i64], Box<dyn Fn(usize) -> f64 + '_>) = match column {
            Column::Count => (&b.start_ms, Box::new(|i| b.count[i] as f64)),
            Column::Sum => (&b.start_ms, Box::new(|i| b.sum[i])),
            Column::Min => (&b.start_ms, Box::new(|i| b.min[i])),
            Column::Max => (&b.start_ms, Box::new(|i| b.max[i])),
            Column::First => (&b.first_ms, Box::new(|i| b.first[i])),
            Column::Last => (&b.last_ms, Box::new(|i| b.last[i])),
            Column::Increase => (&b.start_ms, Box::new(|i| b.increase[i])),
        };
        samples.extend(
            timestamps
                .iter()
                .enumerate()
                .map(|(i, &t)| Sample::new(t, values(i))),
        );
        writer.add_series(&column_key(base, column), &samples)?;
    }
    Ok(())
}

/// The base series of a rollup segment matching every matcher, in base
/// key order, as their column ids.
pub fn select(segment: &Segment, matchers: &[Matcher]) -> Vec<ColumnIds> {
    let mut with_column = matchers.to_vec();
    with_column.push(Matcher::equal(ROLLUP_LABEL, ""));
    let lists: Vec<Vec<u32>> = Column::ALL
        .iter()
        .map(|column| {
            if let Some(last) = with_column.last_mut() {
                *last = Matcher::equal(ROLLUP_LABEL, column.label_value());
            }
            segment.select(&with_column)
        })
        .collect();
    let len = lists.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .map(|i| std::array::from_fn(|c| lists[c][i]))
        .collect()
}

/// The base key of a selected series.
pub fn base_key(segment: &Segment, ids: &ColumnIds) -> Option<SeriesKey> {
    split_key(segment.series_key(ids[0])?).map(|(key, _)| key)
}

/// Which columns a read decodes. `count` (whose timestamps are the bucket
/// starts) and `first` (which says whether a bucket's first sample lies at
/// a window's end) are always read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSet(u8);

impl ColumnSet {
    pub const ALL: ColumnSet = ColumnSet(0x7f);

    /// `count`, `first` and `columns`.
    pub fn with(columns: &[Column]) -> ColumnSet {
        let mut set = ColumnSet(0);
        for &column in [Column::Count, Column::First].iter().chain(columns) {
            set.0 |= 1 << column as u8;
        }
        set
    }

    pub fn contains(self, column: Column) -> bool {
        self.0 & (1 << column as u8) != 0
    }
}

/// Appends the buckets of `ids` whose start lies in `range` to `out`
/// (which must hold only earlier buckets). Columns that do not align are
/// corruption, reported with the segment's path and the series.
pub fn read(
    segment: &Segment,
    ids: &ColumnIds,
    range: TimeRange,
    resolution_ms: i64,
    out: &mut Buckets,
) -> Result<()> {
    read_columns(segment, ids, range, resolution_ms, ColumnSet::ALL, out)
}

/// [`read`], decoding only the columns in `columns`: the others get NaN
/// values (and the bucket start as timestamp), so that the columns stay
/// aligned; a caller must not use them.
pub fn read_columns(
    segment: &Segment,
    ids: &ColumnIds,
    range: TimeRange,
    resolution_ms: i64,
    columns: ColumnSet,
    out: &mut Buckets,
) -> Result<()> {
    // first/last lie inside their bucket: after its start, before its end.
    // The buckets starting in `range` are those from the first bucket
    // start at or after its min to the last one at or before its max, so
    // their first/last samples lie in [that first start, that last start
    // + resolution - 1]: an unaligned range must not take in the
    // first/last samples of the buckets around it.
    let first_start = match super::bucket_start(range.min_time_ms, resolution_ms) {
        start if start == range.min_time_ms => start,
        start => start.saturating_add(resolution_ms),
    };
    let sample_range = TimeRange::new(
        first_start,
        super::bucket_start(range.max_time_ms, resolution_ms)
            .saturating_add(resolution_ms.saturating_sub(1)),
    );
    let base = out.len();
    let mut column_data = SeriesColumns::default();
    for (&column, &id) in Column::ALL.iter().zip(ids) {
        if !columns.contains(column) {
            let n = out.start_ms.len() - base;
            let nan = |v: &mut Vec<f64>| v.resize(v.len() + n, f64::NAN);
            match column {
                Column::Sum => nan(&mut out.sum),
                Column::Min => nan(&mut out.min),
                Column::Max => nan(&mut out.max),
                Column::Last => {
                    out.last_ms.extend_from_slice(&out.start_ms[base..]);
                    nan(&mut out.last);
                }
                Column::Increase => nan(&mut out.increase),
                // Always read.
                Column::Count | Column::First => {}
            }
            continue;
        }
        let range = match column {
            Column::First | Column::Last => sample_range,
            _ => range,
        };
        read_column(segment, id, range, &mut column_data)?;
        let found = column_data.len();
        let expected = out.start_ms.len() - base;
        if column != Column::Count && found != expected {
            return Err(CorruptionError {
                path: segment.path().to_path_buf(),
                offset: 0,
                series: segment.series_key(ids[0]).map(|k| k.to_string()),
                kind: Corruption::BadLayout(format!(
                    "rollup column {} has {found} buckets in the range, column count has {expected}",
                    column.label_value(),
                )),
            }
            .into());
        }
        let SeriesColumns {
            timestamps_ms,
            values,
        } = &column_data;
        match column {
            Column::Count => {
                out.start_ms.extend_from_slice(timestamps_ms);
                out.count.extend(values.iter().map(|&v| v as u64));
            }
            Column::Sum => out.sum.extend_from_slice(values),
            Column::Min => out.min.extend_from_slice(values),
            Column::Max => out.max.extend_from_slice(values),
            Column::First => {
                out.first_ms.extend_from_slice(timestamps_ms);
                out.first.extend_from_slice(values);
            }
            Column::Last => {
                out.last_ms.extend_from_slice(timestamps_ms);
                out.last.extend_from_slice(values);
            }
            Column::Increase => out.increase.extend_from_slice(values),
        }
    }
    Ok(())
}

/// Decodes the samples of column series `id` inside `range` into `out`
/// (cleared first), chunk by chunk, skipping chunks outside the range.
fn read_column(
    segment: &Segment,
    id: u32,
    range: TimeRange,
    out: &mut SeriesColumns,
) -> Result<()> {
    out.clear();
    let refs = segment.chunk_refs(id);
    let first = refs.partition_point(|c| c.max_time_ms < range.min_time_ms);
    for chunk in &refs[first..] {
        if chunk.min_time_ms > range.max_time_ms {
            break;
        }
        let start = out.len();
        segment.read_chunk_append(id, chunk, &mut out.timestamps_ms, &mut out.values)?;
        out.retain_run_in(start, range);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_through_a_segment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.seg");
        let a = SeriesKey::new("m", &[("job", "a")]).unwrap();
        let z = SeriesKey::new("m", &[("job", "z")]).unwrap();
        let mut ba = Buckets::default();
        ba.push_raw(&[1, 5, 12, 30], &[1.0, 0.5, 2.0, 3.0], 10);
        let mut bz = Buckets::default();
        bz.push_raw(&[2, 3], &[7.0, 8.0], 10);
        let mut writer = SegmentWriter::create(&path).unwrap();
        add_buckets(&mut writer, &z, &bz).unwrap();
        add_buckets(&mut writer, &a, &ba).unwrap();
        writer.finish().unwrap();

        let segment = Segment::open(&path).unwrap();
        let selected = select(&segment, &[Matcher::equal("__name__", "m")]);
        assert_eq!(selected.len(), 2);
        assert_eq!(base_key(&segment, &selected[0]), Some(a));
        assert_eq!(base_key(&segment, &selected[1]), Some(z));
        let mut read_back = Buckets::default();
        read(&segment, &selected[0], TimeRange::ALL, 10, &mut read_back).unwrap();
        assert_eq!(read_back, ba);
        read_back.clear();
        read(
            &segment,
            &selected[0],
            TimeRange::new(10, 10),
            10,
            &mut read_back,
        )
        .unwrap();
        assert_eq!(read_back.start_ms, [10]);
        assert_eq!((read_back.first_ms[0], read_back.last_ms[0]), (12, 12));
        // Unaligned ranges: bucket [0, 10) has its samples at 1 and 5, so
        // [3, 9] and [2, 11] must not take in its first sample (at 1) nor
        // bucket [10, 20)'s (at 12) without their bucket.
        for (range, starts) in [((3, 9), vec![]), ((2, 11), vec![10]), ((0, 9), vec![0])] {
            read_back.clear();
            let range = TimeRange::new(range.0, range.1);
            read(&segment, &selected[0], range, 10, &mut read_back).unwrap();
            assert_eq!(read_back.start_ms, starts, "{range:?}");
        }
    }
}
