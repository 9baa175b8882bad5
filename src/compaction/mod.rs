//! Compaction: merging segments into larger time blocks, rolling raw data
//! up into the rollup tiers, and deleting what the retention policy no
//! longer keeps.
//!
//! (Module documentation, invariants and the job list are completed with
//! the implementation.)

pub mod policy;

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
}
