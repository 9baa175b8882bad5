//! Compaction: merging segments into larger time blocks, rolling raw data
//! up into the rollup tiers, and deleting what the retention policy no
//! longer keeps. This module holds the policy and the planning rules (what
//! is merged, in which windows); `crate::db` runs them on a live database
//! (`Db::compact` and the background compaction thread).
//!
//! A compaction run, on the manifest as it finds it:
//! 1. drops the segments of tiers the policy no longer has;
//! 2. rolls up: tier 1 (the finest) from raw samples, tier k from tier
//!    k-1's buckets, one window of [`tier_window_ms`] at a time, from the
//!    tier's `rolled_up_to_ms` (a new tier: from the oldest data there is)
//!    up to what is immutable (raw: `persisted_below_ms`; tier k-1: its
//!    `rolled_up_to_ms`);
//! 3. applies retention: data older than its series' cutoff (see
//!    [`keep`]) is deleted, whole files where every series in them is past
//!    its cutoff, otherwise by rewriting the file (with the segments it
//!    overlaps, see [`overlap_groups`]);
//! 4. merges, per tier and level ([`raw_levels`], [`tier_levels`]), every
//!    complete aligned window holding more than one segment (see
//!    [`merge_windows`]).
//!
//! Invariants:
//! - compaction only reads and replaces data below `persisted_below_ms`
//!   (raw) or below the tier's `rolled_up_to_ms`: data no flush will ever
//!   add to;
//! - a merged window `[A, A + level)` contains every segment of its tier
//!   that overlaps it, each entirely, so the replacement (a newer `seq`)
//!   never changes which of two overlapping segments wins a repeated
//!   timestamp;
//! - retention never deletes raw data not yet rolled up into tier 1, nor a
//!   tier's buckets not yet rolled up into the next tier;
//! - every replacement is committed by one manifest store; the files it
//!   replaces are deleted after it, and the compaction journal lets an open
//!   after a crash delete whichever side the manifest does not list.

pub mod keep;
pub mod policy;

use crate::db::manifest::SegmentMeta;
use crate::head::partition_start;

/// What one compaction run did.
#[must_use = "the report says what was merged, rolled up and deleted"]
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactionReport {
    /// Segments replaced by merged ones (all tiers).
    pub segments_merged: usize,
    /// Merged segments written in their place.
    pub merged_segments_written: usize,
    /// Rollup segments written by downsampling.
    pub rollup_segments_written: usize,
    /// Segments deleted whole by retention.
    pub segments_deleted: usize,
    /// Segments rewritten without the part retention cut off.
    pub segments_rewritten: usize,
    /// Raw samples (or buckets, for tier-to-tier rollups) read.
    pub samples_read: u64,
    /// Samples (or buckets) dropped by retention.
    pub samples_deleted: u64,
    /// Bytes of the files written.
    pub bytes_written: u64,
    /// Bytes of the files removed.
    pub bytes_removed: u64,
    /// Resolutions of tiers the policy no longer has: their segments were
    /// deleted.
    pub tiers_dropped: Vec<i64>,
    /// A replaced file that could not be deleted after its replacement was
    /// committed (it is deleted by the next compaction or open).
    pub cleanup_error: Option<String>,
}

/// Each raw level is this many times the previous one (2 h partitions:
/// 12 h, then 3 d).
const RAW_LEVEL_FACTOR: i64 = 6;
/// Rollup tier levels, as multiples of the tier's window (1 m tier with
/// 2 h partitions: 1 d, 7 d, 30 d).
const TIER_LEVEL_MULTIPLES: [i64; 3] = [12, 84, 360];

/// The largest block of a tier kept `keep_ms`: a tenth of the keep (so
/// retention deletes whole files mostly), at least one partition.
fn block_cap_ms(partition_ms: i64, keep_ms: Option<i64>) -> i64 {
    keep_ms.map_or(i64::MAX, |keep| (keep / 10).max(partition_ms))
}

/// The merge levels of raw data: partition x6, x36, each at most the cap.
pub fn raw_levels(partition_ms: i64, keep_ms: Option<i64>) -> Vec<i64> {
    let cap = block_cap_ms(partition_ms, keep_ms);
    let first = partition_ms.saturating_mul(RAW_LEVEL_FACTOR);
    [first, first.saturating_mul(RAW_LEVEL_FACTOR)]
        .into_iter()
        .filter(|&level| level <= cap)
        .collect()
}

/// The width of the windows a tier is rolled up in: the least common
/// multiple of the partition and the tier's resolution (so windows hold
/// whole buckets and whole partitions).
pub fn tier_window_ms(partition_ms: i64, resolution_ms: i64) -> i64 {
    let gcd = {
        let (mut a, mut b) = (partition_ms, resolution_ms);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a.max(1)
    };
    (partition_ms / gcd).saturating_mul(resolution_ms)
}

/// The merge levels of a rollup tier, each at most the cap.
pub fn tier_levels(partition_ms: i64, resolution_ms: i64, keep_ms: Option<i64>) -> Vec<i64> {
    let cap = block_cap_ms(partition_ms, keep_ms);
    let window = tier_window_ms(partition_ms, resolution_ms);
    TIER_LEVEL_MULTIPLES
        .into_iter()
        .map(|m| window.saturating_mul(m))
        .filter(|&level| level <= cap)
        .collect()
}

/// The start of the aligned window of width `width_ms` holding `time_ms`.
pub fn window_start(time_ms: i64, width_ms: i64) -> i64 {
    partition_start(time_ms, width_ms)
}

/// The windows `[start, start + level_ms)` worth merging among one tier's
/// `segments`: complete (ending at or before `complete_below_ms`), holding
/// more than one segment, and every segment overlapping the window lies
/// entirely inside it. Returns each window's start and its segments
/// (sorted by `seq`).
pub fn merge_windows(
    segments: &[SegmentMeta],
    level_ms: i64,
    complete_below_ms: i64,
) -> Vec<(i64, Vec<SegmentMeta>)> {
    let mut starts: Vec<i64> = segments
        .iter()
        .map(|s| window_start(s.min_time_ms, level_ms))
        .collect();
    starts.sort_unstable();
    starts.dedup();
    let mut windows = Vec::new();
    for start in starts {
        let Some(end) = start.checked_add(level_ms) else {
            continue;
        };
        if end > complete_below_ms {
            continue;
        }
        let overlapping: Vec<SegmentMeta> = segments
            .iter()
            .filter(|s| s.min_time_ms < end && s.max_time_ms >= start)
            .copied()
            .collect();
        let inside = overlapping
            .iter()
            .all(|s| s.min_time_ms >= start && s.max_time_ms < end);
        if overlapping.len() > 1 && inside {
            windows.push((start, overlapping));
        }
    }
    windows
}

/// Indices of `segments` split into groups whose time ranges overlap
/// (transitively), each group sorted by `seq`, groups in time order. A
/// group is what must be rewritten together so that repeated timestamps
/// keep their winner; reading the groups in this order (instead of by
/// `seq` alone) visits time in order and keeps every winner.
pub fn overlap_order(segments: &[SegmentMeta]) -> Vec<Vec<usize>> {
    let mut sorted: Vec<usize> = (0..segments.len()).collect();
    sorted.sort_by_key(|&i| (segments[i].min_time_ms, segments[i].seq));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_end = i64::MIN;
    for i in sorted {
        let segment = &segments[i];
        match groups.last_mut() {
            Some(group) if segment.min_time_ms <= group_end => {
                group.push(i);
                group_end = group_end.max(segment.max_time_ms);
            }
            _ => {
                groups.push(vec![i]);
                group_end = segment.max_time_ms;
            }
        }
    }
    for group in &mut groups {
        group.sort_by_key(|&i| segments[i].seq);
    }
    groups
}

/// [`overlap_order`] as the segments themselves.
pub fn overlap_groups(segments: &[SegmentMeta]) -> Vec<Vec<SegmentMeta>> {
    overlap_order(segments)
        .into_iter()
        .map(|group| group.into_iter().map(|i| segments[i]).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(seq: u64, min_time_ms: i64, max_time_ms: i64) -> SegmentMeta {
        SegmentMeta {
            seq,
            partition_start_ms: 0,
            min_time_ms,
            max_time_ms,
            sample_count: 1,
            series_count: 1,
            pin: None,
            resolution_ms: 0,
            block_duration_ms: 0,
        }
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn levels_follow_the_partition_and_are_capped_by_the_keep() {
        assert_eq!(raw_levels(2 * HOUR, None), [12 * HOUR, 72 * HOUR]);
        assert_eq!(raw_levels(2 * HOUR, Some(15 * 24 * HOUR)), [12 * HOUR]);
        assert_eq!(raw_levels(2 * HOUR, Some(HOUR)), Vec::<i64>::new());
        assert_eq!(tier_window_ms(2 * HOUR, 60_000), 2 * HOUR);
        assert_eq!(tier_window_ms(2 * HOUR, 3 * HOUR), 6 * HOUR);
        assert_eq!(
            tier_levels(2 * HOUR, 60_000, Some(90 * 24 * HOUR)),
            [24 * HOUR, 7 * 24 * HOUR]
        );
        assert_eq!(
            tier_levels(2 * HOUR, HOUR, Some(730 * 24 * HOUR)),
            [24 * HOUR, 7 * 24 * HOUR, 30 * 24 * HOUR]
        );
    }

    #[test]
    fn a_window_merges_only_when_complete_and_holding_whole_segments() {
        let segments = [
            meta(1, 0, 9),
            meta(2, 5, 19),
            meta(3, 20, 29),
            meta(4, 30, 45), // crosses the window edge at 40
            meta(5, 41, 49),
            meta(6, 60, 65),
            meta(7, 66, 79),
        ];
        let windows = merge_windows(&segments, 40, 80);
        let seqs: Vec<(i64, Vec<u64>)> = windows
            .iter()
            .map(|(start, s)| (*start, s.iter().map(|m| m.seq).collect()))
            .collect();
        // [0, 40) holds 4, which ends past 40: not merged; [40, 80) holds
        // 4 too. Nothing merges.
        assert!(seqs.is_empty(), "{seqs:?}");
        let windows = merge_windows(&segments[..3], 40, 80);
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].0, 0);
        // Incomplete: the window ends after 70.
        assert!(merge_windows(&segments[5..], 40, 70).is_empty());
        assert_eq!(merge_windows(&segments[5..], 40, 80).len(), 1);
        // A single segment is not merged.
        assert!(merge_windows(&segments[..1], 40, 80).is_empty());
    }

    #[test]
    fn overlapping_segments_are_grouped() {
        let groups = overlap_groups(&[meta(3, 0, 9), meta(1, 5, 12), meta(2, 20, 29)]);
        let seqs: Vec<Vec<u64>> = groups
            .iter()
            .map(|g| g.iter().map(|m| m.seq).collect())
            .collect();
        assert_eq!(seqs, [vec![1, 3], vec![2]]);
    }
}
