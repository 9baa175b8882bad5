//! Recovery at open: replaying WAL files into the head.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use super::RecoveryReport;
use crate::error::{Error, Result};
use crate::head::{Head, MemSeries};
use crate::wal::record::Record;
use crate::wal::{self, FileReplay};

/// Replays one WAL file into the head; returns the outcome and the newest
/// sample timestamp in the file.
pub(super) fn replay_into(
    head: &Head,
    path: &Path,
    persisted_below_ms: i64,
    recovery: &mut RecoveryReport,
) -> Result<(FileReplay, i64)> {
    let mut by_wal_id: std::collections::HashMap<u32, Arc<MemSeries>> = Default::default();
    let mut max_ms = i64::MIN;
    let mut replayed = 0u64;
    let mut skipped = 0u64;
    let mut orphans = 0u64;
    let partition_ms = head.partition_ms();
    let outcome = wal::replay_file(path, |record| match record {
        Record::Series { series_id, key } => {
            if let Some(series) = head.get_or_create(&key, usize::MAX) {
                by_wal_id.insert(series_id, series);
            }
        }
        Record::Samples(samples) => {
            for sample in samples {
                max_ms = max_ms.max(sample.timestamp_ms);
                if sample.timestamp_ms < persisted_below_ms {
                    skipped += 1;
                } else if let Some(series) = by_wal_id.get(&sample.series_id) {
                    series
                        .lock()
                        .insert(sample.timestamp_ms, sample.value, partition_ms);
                    replayed += 1;
                } else {
                    orphans += 1;
                }
            }
        }
    })?;
    recovery.samples_replayed += replayed;
    recovery.samples_already_persisted += skipped;
    recovery.samples_without_series += orphans;
    Ok((outcome, max_ms))
}

pub(super) fn truncate_damaged(path: &Path, valid_len: u64) -> Result<()> {
    if valid_len == 0 {
        // Not even a header: nothing in it was ever acknowledged.
        return fs::remove_file(path).map_err(|e| Error::io("remove", path, e));
    }
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    file.set_len(valid_len)
        .map_err(|e| Error::io("truncate damaged WAL tail of", path, e))?;
    file.sync_all().map_err(|e| Error::io("fsync", path, e))
}
