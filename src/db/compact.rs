//! Compaction of the open database: the rules of `crate::compaction` run
//! as a series of steps, each replacing some segments (its inputs) by new
//! ones (its outputs, at most `MAX_OUTPUTS_PER_STEP`) in one manifest
//! commit: a tier's rollup windows, a tier's retention deletions and
//! rewrites, a level's merged windows.
//!
//! A step: number the outputs (under the manifest mutex, briefly) → store
//! the compaction journal (inputs, outputs, earlier leftovers) → write the
//! outputs → commit (under the manifest mutex: apply the step to the
//! manifest as it is now, with the run's tiers, store it, publish a new
//! version) → delete the inputs, then the journal. Fault points:
//! `compaction.journal`, `compaction.write` (after an output is written
//! and renamed into place), `compaction.commit` (before the manifest
//! store), `compaction.remove` (after the commit before deleting, then
//! before each deletion).
//!
//! Invariants:
//! - one run at a time (`Inner::compaction`); the gate is never taken, so
//!   appends and flushes go on; the manifest mutex is never held while a
//!   file is written;
//! - a run only replaces data below the manifest's `persisted_below_ms`
//!   (raw) or the tier's `rolled_up_to_ms`, where no flush adds segments,
//!   so applying a step to a manifest a flush changed meanwhile is sound;
//! - every segment file the manifest does not list but that may exist is
//!   in the journal (and in `CompactionState::leftovers`) until deleted;
//!   its data is in listed segments, so deleting it (here after a commit,
//!   or at open) loses nothing;
//! - readers keep the version they hold: the segments of a replaced step
//!   stay mapped until the last reader drops them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::dir::{self, SEGMENT_DIR};
use super::manifest::{Manifest, SegmentMeta, TierMeta};
use super::{FlushScope, Inner, LiveSegment, Version};
use crate::compaction::keep::{Cutoffs, KeepRules, Tier};
use crate::compaction::{self as plan, CompactionReport};
use crate::error::{Error, Result};
use crate::head::partition_start;
use crate::query::source::{SegmentRef, SeriesColumns, SeriesSet};
use crate::rollup::{store, Buckets, Column};
use crate::segment::{Segment, SegmentWriter};
use crate::series::{Sample, SeriesKey, TimeRange};

/// What compaction keeps between runs.
#[derive(Default)]
pub(super) struct CompactionState {
    /// Segment numbers that may be on disk though no manifest lists them
    /// (inputs not yet deleted, outputs of steps that failed); all in the
    /// journal.
    leftovers: BTreeSet<u64>,
}

/// Wakes the background compaction thread, or stops it.
#[derive(Default)]
pub(super) struct CompactionSignal {
    pub(super) requested: bool,
    pub(super) shutdown: bool,
}

/// Most segments one step writes (and commits at once).
const MAX_OUTPUTS_PER_STEP: usize = 64;

/// Background compaction runs at least this often, even without flushes.
const COMPACTION_INTERVAL: Duration = Duration::from_secs(10);

impl Inner {
    /// Wakes background compaction (after a committed flush).
    pub(super) fn request_compaction(&self) {
        self.compaction_signal.lock().requested = true;
        self.compaction_wake.notify_all();
    }

    /// The background compaction thread's loop.
    pub(super) fn compaction_loop(&self) {
        loop {
            {
                let mut signal = self.compaction_signal.lock();
                if !signal.requested && !signal.shutdown {
                    self.compaction_wake
                        .wait_for(&mut signal, COMPACTION_INTERVAL);
                }
                if signal.shutdown {
                    return;
                }
                signal.requested = false;
            }
            if let Err(e) = self.compact(true) {
                *self.last_background_error.lock() = Some(format!("compaction: {e}"));
            }
        }
    }

    /// One compaction run. On demand (`throttled` false) it first flushes
    /// complete partitions; in the background (`throttled`) it paces
    /// writing by `Options::compaction_write_bytes_per_s` and stops early
    /// at shutdown.
    pub(super) fn compact(&self, throttled: bool) -> Result<CompactionReport> {
        if self.wal.is_none() {
            return Err(Error::ReadOnly);
        }
        let mut state = self.compaction.lock();
        // On demand, complete partitions become immutable first, as the
        // background flush makes them (a bulk import may not have). The
        // background run leaves that to the background flush, as
        // `Options::flush_complete_partitions` says.
        let max_time_ms = self.max_time_ms.load(Ordering::Relaxed);
        if max_time_ms != i64::MIN && !throttled {
            let cutoff = partition_start(
                max_time_ms.saturating_sub(self.options.out_of_order_window_ms),
                self.options.partition_duration_ms,
            );
            if cutoff > self.persisted_below_ms.load(Ordering::Acquire) {
                self.flush(FlushScope::Before(cutoff))?;
            }
        }
        let rules = KeepRules::new(&self.options.retention)?;
        let manifest = self.manifest.lock().clone();
        let tiers = self
            .options
            .retention
            .tiers
            .iter()
            .map(|policy| {
                manifest
                    .tiers
                    .iter()
                    .find(|t| t.resolution_ms == policy.resolution_ms)
                    .copied()
                    .unwrap_or(TierMeta {
                        resolution_ms: policy.resolution_ms,
                        rolled_up_to_ms: i64::MIN,
                        retained_from_ms: i64::MIN,
                    })
            })
            .collect();
        let mut run = Run {
            inner: self,
            state: &mut state,
            rules: &rules,
            throttled,
            tiers,
            raw_retained_from_ms: manifest.raw_retained_from_ms,
            report: CompactionReport::default(),
            stopped: false,
        };
        run.drop_tiers(&manifest)?;
        for k in 0..run.tiers.len() {
            run.roll_up(k)?;
        }
        run.retention()?;
        run.merge()?;
        if run.stopped {
            self.compactions.fetch_add(1, Ordering::Relaxed);
            return Ok(run.report);
        }
        // Tier bookkeeping changed without a replacement (windows without
        // data rolled over, a retention point moved): store it too. A new
        // tier that has nothing yet is no change worth a store.
        let material = |tiers: &[TierMeta]| -> Vec<TierMeta> {
            tiers
                .iter()
                .filter(|t| t.rolled_up_to_ms != i64::MIN || t.retained_from_ms != i64::MIN)
                .copied()
                .collect()
        };
        let stored = self.manifest.lock().clone();
        if material(&stored.tiers) != material(&run.tiers)
            || stored.raw_retained_from_ms != run.raw_retained_from_ms
        {
            run.step(Vec::new(), Vec::new())?;
        }
        self.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(run.report)
    }
}

/// The segment a step writes.
struct Output<F> {
    partition_start_ms: i64,
    block_duration_ms: i64,
    resolution_ms: i64,
    kind: OutputKind,
    /// Adds the series; returns how many it added.
    fill: F,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OutputKind {
    Rollup,
    Merge,
    Rewrite,
}

struct Run<'a> {
    inner: &'a Inner,
    state: &'a mut CompactionState,
    rules: &'a KeepRules,
    throttled: bool,
    /// The tiers and raw retention point every commit of the run stores.
    tiers: Vec<TierMeta>,
    raw_retained_from_ms: i64,
    report: CompactionReport,
    /// A background run stopped for shutdown: nothing more is committed.
    stopped: bool,
}

type Fill<'f> = Box<dyn FnOnce(&mut SegmentWriter, &mut CompactionReport) -> Result<u64> + 'f>;

impl Run<'_> {
    fn snapshot(&self) -> Manifest {
        self.inner.manifest.lock().clone()
    }

    /// Whether a background run should stop (the database is closing).
    fn stopping(&self) -> bool {
        self.throttled && self.inner.compaction_signal.lock().shutdown
    }

    /// The open segment of a listed entry, from the current version.
    fn segment(&self, meta: &SegmentMeta) -> Result<Arc<Segment>> {
        let version = self.inner.version.read().clone();
        let found = version
            .segments
            .iter()
            .chain(&version.rollups)
            .find(|live| live.meta.seq == meta.seq)
            .map(|live| Arc::clone(&live.segment));
        match found {
            Some(segment) => Ok(segment),
            None => Ok(Arc::new(Segment::open(self.segment_path(meta.seq))?)),
        }
    }

    fn segments(&self, metas: &[SegmentMeta]) -> Result<Vec<Arc<Segment>>> {
        metas.iter().map(|meta| self.segment(meta)).collect()
    }

    fn segment_path(&self, seq: u64) -> std::path::PathBuf {
        self.inner
            .dir
            .join(SEGMENT_DIR)
            .join(SegmentMeta::file_name(seq))
    }

    /// Deletes the segments of tiers the policy no longer has.
    fn drop_tiers(&mut self, manifest: &Manifest) -> Result<()> {
        let dropped: Vec<i64> = manifest
            .tiers
            .iter()
            .map(|t| t.resolution_ms)
            .filter(|r| !self.tiers.iter().any(|t| t.resolution_ms == *r))
            .collect();
        if dropped.is_empty() {
            return Ok(());
        }
        let inputs: Vec<SegmentMeta> = manifest
            .segments
            .iter()
            .filter(|s| dropped.contains(&s.resolution_ms))
            .copied()
            .collect();
        self.report.segments_deleted += inputs.len();
        self.step(inputs, Vec::new())?;
        self.report.tiers_dropped = dropped;
        Ok(())
    }

    /// Rolls tier `k` up from raw data (k = 0) or tier k-1, window by
    /// window, as far as the source is complete.
    fn roll_up(&mut self, k: usize) -> Result<()> {
        let manifest = self.snapshot();
        let resolution_ms = self.tiers[k].resolution_ms;
        let window_ms =
            plan::tier_window_ms(self.inner.options.partition_duration_ms, resolution_ms);
        let (source_resolution_ms, complete_below_ms) = match k {
            0 => (0, manifest.persisted_below_ms),
            _ => (
                self.tiers[k - 1].resolution_ms,
                self.tiers[k - 1].rolled_up_to_ms,
            ),
        };
        let sources: Vec<SegmentMeta> = manifest
            .segments
            .iter()
            .filter(|s| s.resolution_ms == source_resolution_ms)
            .copied()
            .collect();
        let mut from_ms = self.tiers[k].rolled_up_to_ms;
        if from_ms == i64::MIN {
            // A new tier starts from the oldest data there is.
            match sources.iter().map(|s| s.min_time_ms).min() {
                Some(oldest) => from_ms = plan::window_start(oldest, window_ms),
                None => return Ok(()),
            }
        }
        let last_end_ms = plan::window_start(complete_below_ms, window_ms);
        let mut batch = Vec::new();
        while from_ms < last_end_ms && !self.stopped {
            let end_ms = plan::window_start(from_ms, window_ms).saturating_add(window_ms);
            let window = TimeRange::new(from_ms, end_ms - 1);
            let mut inside: Vec<SegmentMeta> = sources
                .iter()
                .filter(|s| window.overlaps(s.min_time_ms, s.max_time_ms))
                .copied()
                .collect();
            if inside.is_empty() {
                // Skip to the next window with data (or the last complete
                // one): nothing before it is missing from the tier.
                let next = sources
                    .iter()
                    .filter(|s| s.min_time_ms >= end_ms)
                    .map(|s| plan::window_start(s.min_time_ms, window_ms))
                    .min()
                    .unwrap_or(last_end_ms);
                from_ms = next.min(last_end_ms).max(end_ms);
                self.tiers[k].rolled_up_to_ms = from_ms;
                continue;
            }
            inside.sort_by_key(|s| s.seq);
            let segments = self.segments(&inside)?;
            let fill: Fill<'_> = if k == 0 {
                Box::new(move |writer, report| {
                    roll_up_raw(writer, report, segments, window, resolution_ms)
                })
            } else {
                Box::new(move |writer, report| {
                    let by_key = read_buckets(&segments, window, source_resolution_ms, report)?;
                    let mut coarse = Buckets::default();
                    let mut added = 0;
                    for (key, buckets) in &by_key {
                        coarse.clear();
                        buckets.roll_up(resolution_ms, &mut coarse);
                        store::add_buckets(writer, key, &coarse)?;
                        added += 1;
                    }
                    Ok(added)
                })
            };
            batch.push(Output {
                partition_start_ms: from_ms,
                block_duration_ms: end_ms - from_ms,
                resolution_ms,
                kind: OutputKind::Rollup,
                fill,
            });
            // Committed with the batch holding this window.
            self.tiers[k].rolled_up_to_ms = end_ms;
            from_ms = end_ms;
            if batch.len() == MAX_OUTPUTS_PER_STEP {
                self.step(Vec::new(), std::mem::take(&mut batch))?;
            }
        }
        if !batch.is_empty() {
            self.step(Vec::new(), batch)?;
        }
        Ok(())
    }

    /// Deletes what the policy no longer keeps, per tier.
    fn retention(&mut self) -> Result<()> {
        let newest_ms = self.inner.max_time_ms.load(Ordering::Relaxed);
        if newest_ms == i64::MIN {
            return Ok(());
        }
        let now_ms = self.inner.options.clock.now_ms().min(newest_ms);
        let manifest = self.snapshot();
        // Raw data below persisted_below_ms only, and none that tier 1 has
        // not rolled up yet.
        let raw_limit_ms = manifest
            .persisted_below_ms
            .min(self.tiers.first().map_or(i64::MAX, |t| t.rolled_up_to_ms));
        if !self.rules.keeps_forever(Tier::Raw) {
            let rules = self.rules;
            let mut cutoffs = Cutoffs::new(rules, Tier::Raw, now_ms, raw_limit_ms);
            self.retain(&manifest, 0, raw_limit_ms, &mut cutoffs)?;
        }
        for k in 0..self.tiers.len() {
            let resolution_ms = self.tiers[k].resolution_ms;
            let tier = Tier::Rollup(resolution_ms);
            if self.rules.keeps_forever(tier) {
                continue;
            }
            let manifest = self.snapshot();
            let limit_ms = self
                .tiers
                .get(k + 1)
                .map_or(i64::MAX, |t| t.rolled_up_to_ms);
            let rules = self.rules;
            let mut cutoffs = Cutoffs::new(rules, tier, now_ms, limit_ms);
            self.retain(&manifest, resolution_ms, i64::MAX, &mut cutoffs)?;
        }
        Ok(())
    }

    /// Applies `cutoffs` to the segments of one tier that end before
    /// `below_ms`: groups of overlapping segments past every series'
    /// cutoff are deleted, groups with some data past it rewritten. The
    /// tier's retention point (`retained_from_ms`) moves to the largest
    /// cutoff with the first commit that deletes something.
    fn retain(
        &mut self,
        manifest: &Manifest,
        resolution_ms: i64,
        below_ms: i64,
        cutoffs: &mut Cutoffs<'_>,
    ) -> Result<()> {
        let candidates: Vec<SegmentMeta> = manifest
            .segments
            .iter()
            .filter(|s| s.resolution_ms == resolution_ms && s.max_time_ms < below_ms)
            .copied()
            .collect();
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        // Set for the commits below; put back if none happens.
        let largest_cutoff_ms = cutoffs.largest();
        let previous_ms = self.retained_from(resolution_ms);
        self.set_retained_from(resolution_ms, previous_ms.max(largest_cutoff_ms));
        let mut committed = false;
        for group in plan::overlap_groups(&candidates) {
            if self.stopped {
                return Ok(());
            }
            // No series' cutoff exceeds the largest: a group starting at or
            // after it keeps everything (the common case, checked without
            // reading series tables).
            if group.iter().all(|s| s.min_time_ms >= largest_cutoff_ms) {
                continue;
            }
            let segments = self.segments(&group)?;
            let (mut any_old, mut all_old) = (false, true);
            for segment in &segments {
                for (series_id, key) in segment.series_keys().iter().enumerate() {
                    if resolution_ms != 0
                        && store::split_key(key).map(|(_, c)| c) != Some(Column::Count)
                    {
                        continue; // a rollup's bucket starts are its count column's times
                    }
                    let cutoff = cutoffs.of_metric(key.metric());
                    let refs = segment.chunk_refs(series_id as u32);
                    if let (Some(first), Some(last)) = (refs.first(), refs.last()) {
                        any_old |= first.min_time_ms < cutoff;
                        all_old &= last.max_time_ms < cutoff;
                    }
                }
            }
            if !any_old {
                continue;
            }
            if all_old {
                self.report.segments_deleted += group.len();
                self.report.samples_deleted += group.iter().map(|s| s.sample_count).sum::<u64>();
                inputs.extend(group);
                continue;
            }
            self.report.segments_rewritten += group.len();
            let partition_start_ms = group
                .iter()
                .map(|s| s.partition_start_ms)
                .min()
                .unwrap_or(0);
            let same_block = group.iter().all(|s| {
                (s.partition_start_ms, s.block_duration_ms)
                    == (group[0].partition_start_ms, group[0].block_duration_ms)
            });
            let block_duration_ms = if same_block {
                group[0].block_duration_ms
            } else {
                let partition_ms = self.inner.options.partition_duration_ms;
                group
                    .iter()
                    .map(|s| s.partition_start_ms + s.block_duration_ms.max(partition_ms))
                    .max()
                    .unwrap_or(partition_start_ms)
                    - partition_start_ms
            };
            // The cutoffs, resolved now for every metric of the group.
            let mut by_metric: BTreeMap<String, i64> = BTreeMap::new();
            for segment in &segments {
                for key in segment.series_keys() {
                    by_metric
                        .entry(key.metric().to_owned())
                        .or_insert_with(|| cutoffs.of_metric(key.metric()));
                }
            }
            let cutoff_of =
                move |key: &SeriesKey| by_metric.get(key.metric()).copied().unwrap_or(i64::MIN);
            let fill: Fill<'_> = if resolution_ms == 0 {
                Box::new(move |writer, report| copy_raw(writer, report, segments, &cutoff_of))
            } else {
                Box::new(move |writer, report| {
                    copy_buckets(writer, report, &segments, resolution_ms, &cutoff_of)
                })
            };
            inputs.extend(group);
            outputs.push(Output {
                partition_start_ms,
                block_duration_ms,
                resolution_ms,
                kind: OutputKind::Rewrite,
                fill,
            });
            if outputs.len() == MAX_OUTPUTS_PER_STEP {
                self.step(std::mem::take(&mut inputs), std::mem::take(&mut outputs))?;
                committed = true;
            }
        }
        if !inputs.is_empty() {
            self.step(inputs, outputs)?;
            committed = true;
        }
        if !committed {
            self.set_retained_from(resolution_ms, previous_ms);
        }
        Ok(())
    }

    /// Where retention has cut the tier of `resolution_ms` (0: raw).
    fn retained_from(&self, resolution_ms: i64) -> i64 {
        match resolution_ms {
            0 => self.raw_retained_from_ms,
            _ => self
                .tiers
                .iter()
                .find(|t| t.resolution_ms == resolution_ms)
                .map_or(i64::MIN, |t| t.retained_from_ms),
        }
    }

    fn set_retained_from(&mut self, resolution_ms: i64, retained_from_ms: i64) {
        match resolution_ms {
            0 => self.raw_retained_from_ms = retained_from_ms,
            _ => {
                for tier in &mut self.tiers {
                    if tier.resolution_ms == resolution_ms {
                        tier.retained_from_ms = retained_from_ms;
                    }
                }
            }
        }
    }

    /// Merges complete windows of every level, raw data first.
    fn merge(&mut self) -> Result<()> {
        let partition_ms = self.inner.options.partition_duration_ms;
        let mut plans = vec![(
            0,
            plan::raw_levels(partition_ms, self.rules.default_keep_ms(Tier::Raw)),
        )];
        for tier in &self.tiers {
            plans.push((
                tier.resolution_ms,
                plan::tier_levels(
                    partition_ms,
                    tier.resolution_ms,
                    self.rules.default_keep_ms(Tier::Rollup(tier.resolution_ms)),
                ),
            ));
        }
        for (resolution_ms, levels) in plans {
            for level_ms in levels {
                let manifest = self.snapshot();
                let complete_below_ms = match resolution_ms {
                    0 => manifest.persisted_below_ms,
                    _ => self
                        .tiers
                        .iter()
                        .find(|t| t.resolution_ms == resolution_ms)
                        .map_or(i64::MIN, |t| t.rolled_up_to_ms),
                };
                let segments: Vec<SegmentMeta> = manifest
                    .segments
                    .iter()
                    .filter(|s| s.resolution_ms == resolution_ms)
                    .copied()
                    .collect();
                let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
                for (start_ms, window) in
                    plan::merge_windows(&segments, level_ms, complete_below_ms)
                {
                    if self.stopped {
                        return Ok(());
                    }
                    let segments = self.segments(&window)?;
                    let keep_all = |_: &SeriesKey| i64::MIN;
                    let fill: Fill<'_> = if resolution_ms == 0 {
                        Box::new(move |writer, report| {
                            copy_raw(writer, report, segments, &keep_all)
                        })
                    } else {
                        Box::new(move |writer, report| {
                            copy_buckets(writer, report, &segments, resolution_ms, &keep_all)
                        })
                    };
                    self.report.segments_merged += window.len();
                    inputs.extend(window);
                    outputs.push(Output {
                        partition_start_ms: start_ms,
                        block_duration_ms: level_ms,
                        resolution_ms,
                        kind: OutputKind::Merge,
                        fill,
                    });
                    if outputs.len() == MAX_OUTPUTS_PER_STEP {
                        self.step(std::mem::take(&mut inputs), std::mem::take(&mut outputs))?;
                    }
                }
                if !inputs.is_empty() {
                    self.step(inputs, outputs)?;
                }
            }
        }
        Ok(())
    }

    /// Replaces `inputs` by the `outputs` that have series in one commit
    /// that also stores the run's tiers; see the module documentation. A
    /// background run stopped by shutdown abandons the step before its
    /// commit (its files are leftovers) and sets `stopped`.
    fn step(&mut self, inputs: Vec<SegmentMeta>, outputs: Vec<Output<Fill<'_>>>) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        let inner = self.inner;
        let first_seq = {
            let mut manifest = inner.manifest.lock();
            let first = manifest.next_segment_seq;
            manifest.next_segment_seq += outputs.len() as u64;
            first
        };
        let seqs = first_seq..first_seq + outputs.len() as u64;
        if !inputs.is_empty() || !outputs.is_empty() {
            let mut journal = self.state.leftovers.clone();
            journal.extend(inputs.iter().map(|s| s.seq));
            journal.extend(seqs.clone());
            dir::store_journal(&inner.dir, &journal)?;
        }
        // From here the outputs may exist unlisted until committed.
        self.state.leftovers.extend(seqs.clone());
        let mut written = Vec::with_capacity(outputs.len());
        for (seq, output) in seqs.zip(outputs) {
            if self.stopping() {
                self.stopped = true;
                return Ok(());
            }
            if let Some(live) = self.write_output(seq, output)? {
                self.pause(live.meta.pin.map_or(0, |p| p.file_len));
                written.push(live);
            }
        }
        self.commit(&inputs, &written)?;
        for live in &written {
            self.state.leftovers.remove(&live.meta.seq);
        }
        self.state.leftovers.extend(inputs.iter().map(|s| s.seq));
        self.report.bytes_removed += inputs
            .iter()
            .map(|s| s.pin.map_or(0, |p| p.file_len))
            .sum::<u64>();
        if let Err(e) = self.remove_leftovers() {
            self.report.cleanup_error = Some(e.to_string());
        }
        Ok(())
    }

    fn write_output(
        &mut self,
        seq: u64,
        output: Output<Fill<'_>>,
    ) -> Result<Option<Arc<LiveSegment>>> {
        let path = self.segment_path(seq);
        let mut writer = SegmentWriter::create(&path)?;
        let added = (output.fill)(&mut writer, &mut self.report)?;
        if added == 0 {
            // Dropping the writer removes its temporary file.
            return Ok(None);
        }
        let summary = writer.finish()?;
        crate::fault::check("compaction.write").map_err(|e| Error::io("write", &path, e))?;
        let segment = Segment::open(&path)?;
        match output.kind {
            OutputKind::Rollup => self.report.rollup_segments_written += 1,
            OutputKind::Merge => self.report.merged_segments_written += 1,
            OutputKind::Rewrite => {}
        }
        self.report.bytes_written += summary.file_len;
        let meta = SegmentMeta::written(
            seq,
            output.partition_start_ms,
            &summary,
            output.resolution_ms,
            output.block_duration_ms,
        );
        Ok(Some(Arc::new(LiveSegment {
            meta,
            segment: Arc::new(segment),
        })))
    }

    /// Applies the step to the current manifest, stores it and publishes
    /// the new version.
    fn commit(&mut self, inputs: &[SegmentMeta], outputs: &[Arc<LiveSegment>]) -> Result<()> {
        let inner = self.inner;
        let mut manifest = inner.manifest.lock();
        let mut next = manifest.clone();
        let removed: BTreeSet<u64> = inputs.iter().map(|s| s.seq).collect();
        let before = next.segments.len();
        next.segments.retain(|s| !removed.contains(&s.seq));
        if before - next.segments.len() != removed.len() {
            return Err(Error::io(
                "commit compaction in",
                &inner.dir,
                std::io::Error::other("a segment the step replaces is no longer in the manifest"),
            ));
        }
        next.segments.extend(outputs.iter().map(|live| live.meta));
        next.segments.sort_by_key(|s| s.seq);
        next.tiers = self.tiers.clone();
        next.raw_retained_from_ms = self.raw_retained_from_ms;
        crate::fault::check("compaction.commit")
            .map_err(|e| Error::io("commit compaction in", &inner.dir, e))?;
        next.store(&inner.dir)?;
        *manifest = next;
        let mut version = inner.version.write();
        let mut next = Version::clone(&version);
        next.segments.retain(|l| !removed.contains(&l.meta.seq));
        next.rollups.retain(|l| !removed.contains(&l.meta.seq));
        for live in outputs {
            if live.meta.resolution_ms == 0 {
                next.segments.push(Arc::clone(live));
            } else {
                next.rollups.push(Arc::clone(live));
            }
        }
        sort_for_reading(&mut next.segments);
        sort_for_reading(&mut next.rollups);
        next.tiers = self.tiers.clone();
        next.raw_retained_from_ms = self.raw_retained_from_ms;
        *version = Arc::new(next);
        Ok(())
    }

    /// Deletes the unlisted files the journal names, then the journal.
    fn remove_leftovers(&mut self) -> Result<()> {
        crate::fault::check("compaction.remove")
            .map_err(|e| Error::io("remove compaction leftovers in", &self.inner.dir, e))?;
        while let Some(&seq) = self.state.leftovers.first() {
            let path = self.segment_path(seq);
            match crate::fault::check("compaction.remove").and_then(|()| fs::remove_file(&path)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
            self.state.leftovers.remove(&seq);
        }
        dir::remove_journal(&self.inner.dir)
    }

    /// Throttles background compaction to the configured write rate after
    /// writing `bytes`; wakes early at shutdown.
    fn pause(&self, bytes: u64) {
        let rate = match self.inner.options.compaction_write_bytes_per_s {
            Some(rate) if self.throttled && rate > 0 => rate,
            _ => return,
        };
        let deadline = Instant::now() + Duration::from_secs_f64(bytes as f64 / rate as f64);
        let mut signal = self.inner.compaction_signal.lock();
        while !signal.shutdown {
            if self
                .inner
                .compaction_wake
                .wait_until(&mut signal, deadline)
                .timed_out()
            {
                break;
            }
        }
    }
}

/// Orders a version's segment list for reading: groups of overlapping
/// segments in time order, each group by `seq` (oldest first), so every
/// repeated timestamp still resolves to the newest segment and reads visit
/// time in order (see `compaction::overlap_order`).
pub(super) fn sort_for_reading(list: &mut Vec<Arc<LiveSegment>>) {
    let metas: Vec<SegmentMeta> = list.iter().map(|l| l.meta).collect();
    let order: Vec<usize> = plan::overlap_order(&metas).into_iter().flatten().collect();
    let mut taken: Vec<Option<Arc<LiveSegment>>> = list.drain(..).map(Some).collect();
    list.extend(order.into_iter().filter_map(|i| taken[i].take()));
}

/// Reads raw series from `segments` (sorted by `seq`) through the query
/// read path, so repeated timestamps resolve as queries see them.
fn raw_set(segments: Vec<Arc<Segment>>, range: TimeRange) -> SeriesSet<'static> {
    let refs = segments.into_iter().map(SegmentRef::Shared).collect();
    SeriesSet::select(range, &[], refs, Vec::new())
}

/// Tier 1's buckets of the raw samples in `window`.
fn roll_up_raw(
    writer: &mut SegmentWriter,
    report: &mut CompactionReport,
    segments: Vec<Arc<Segment>>,
    window: TimeRange,
    resolution_ms: i64,
) -> Result<u64> {
    let set = raw_set(segments, window);
    let mut columns = SeriesColumns::default();
    let mut buckets = Buckets::default();
    let mut added = 0;
    for i in 0..set.len() {
        set.read(i, &mut columns)?;
        report.samples_read += columns.len() as u64;
        buckets.clear();
        buckets.push_raw(&columns.timestamps_ms, &columns.values, resolution_ms);
        if !buckets.is_empty() {
            store::add_buckets(writer, set.key(i), &buckets)?;
            added += 1;
        }
    }
    Ok(added)
}

/// Copies raw series from `segments` (sorted by `seq`) into one segment,
/// without the samples before each series' cutoff.
fn copy_raw(
    writer: &mut SegmentWriter,
    report: &mut CompactionReport,
    segments: Vec<Arc<Segment>>,
    cutoff_of: &dyn Fn(&SeriesKey) -> i64,
) -> Result<u64> {
    let set = raw_set(segments, TimeRange::ALL);
    let mut columns = SeriesColumns::default();
    let mut samples = Vec::new();
    let mut added = 0;
    for i in 0..set.len() {
        set.read(i, &mut columns)?;
        report.samples_read += columns.len() as u64;
        let cutoff = cutoff_of(set.key(i));
        let keep_from = columns.timestamps_ms.partition_point(|&t| t < cutoff);
        report.samples_deleted += keep_from as u64;
        samples.clear();
        samples.extend(
            columns.timestamps_ms[keep_from..]
                .iter()
                .zip(&columns.values[keep_from..])
                .map(|(&t, &v)| Sample::new(t, v)),
        );
        if !samples.is_empty() {
            writer.add_series(set.key(i), &samples)?;
            added += 1;
        }
    }
    Ok(added)
}

/// The buckets starting in `range` of every base series in `segments`
/// (one tier's, which never overlap), concatenated in time order.
fn read_buckets(
    segments: &[Arc<Segment>],
    range: TimeRange,
    resolution_ms: i64,
    report: &mut CompactionReport,
) -> Result<BTreeMap<SeriesKey, Buckets>> {
    let mut ordered: Vec<&Arc<Segment>> = segments.iter().collect();
    ordered.sort_by_key(|s| s.footer().min_time_ms);
    let mut by_key: BTreeMap<SeriesKey, Buckets> = BTreeMap::new();
    for segment in ordered {
        for ids in store::select(segment, &[]) {
            let Some(key) = store::base_key(segment, &ids) else {
                continue;
            };
            let buckets = by_key.entry(key).or_default();
            let before = buckets.len();
            store::read(segment, &ids, range, resolution_ms, buckets)?;
            report.samples_read += (buckets.len() - before) as u64;
        }
    }
    Ok(by_key)
}

/// Copies one tier's buckets from `segments` into one segment, without the
/// buckets starting before each series' cutoff.
fn copy_buckets(
    writer: &mut SegmentWriter,
    report: &mut CompactionReport,
    segments: &[Arc<Segment>],
    resolution_ms: i64,
    cutoff_of: &dyn Fn(&SeriesKey) -> i64,
) -> Result<u64> {
    let by_key = read_buckets(segments, TimeRange::ALL, resolution_ms, report)?;
    let mut kept = Buckets::default();
    let mut added = 0;
    for (key, buckets) in &by_key {
        let cutoff = cutoff_of(key);
        let keep_from = buckets.start_ms.partition_point(|&t| t < cutoff);
        report.samples_deleted += keep_from as u64;
        kept.clear();
        for i in keep_from..buckets.len() {
            kept.push_from(buckets, i);
        }
        if !kept.is_empty() {
            store::add_buckets(writer, key, &kept)?;
            added += 1;
        }
    }
    Ok(added)
}
