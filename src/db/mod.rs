//! The database: a data directory with a WAL, an in-memory head and
//! segment files, written from many threads and read consistently.
//!
//! Directory layout: `LOCK` (held by the one writer process), `MANIFEST`
//! (see [`manifest`]), `wal/<id>.wal`, `segments/<seq>.seg`, and
//! `quarantine/` (copies of damaged WAL files, see `db/replay.rs`).
//!
//! Write path: validate → append a WAL record (durable per [`SyncMode`]) →
//! insert into the head. Flush: freeze head partitions (readers still see
//! them), write one segment per partition, commit a new manifest, then drop
//! the frozen data and the WAL files the manifest no longer needs.
//!
//! Invariants:
//! - an acknowledged sample is in the WAL (or in a segment listed by the
//!   manifest) before `append` returns;
//! - the `gate` is held shared by every append and by readers while they
//!   take their snapshot, and exclusively by a flush while it freezes the
//!   head, rotates the WAL and publishes the frozen data: a reader sees a
//!   sample either in the head or in frozen data, never in neither;
//! - segment files not listed in the manifest are leftovers of a flush that
//!   did not commit (their data is still in the WAL) or of a compaction
//!   step (named by the compaction journal; their data is in listed
//!   segments), so opening deletes them; see `db/compact.rs` for
//!   compaction, which replaces segments without taking the gate.

mod compact;
mod dir;
pub(crate) mod envelope;
pub mod manifest;
mod metadata;
mod read;
mod repair;
mod replay;
mod tier;
mod verify;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::compaction::policy::{Clock, RetentionPolicy};
use crate::compaction::CompactionReport;
use crate::error::{Corruption, CorruptionError, Error, InputError, Result};
use crate::head::{partition_start, FrozenHead, Head, MemSeries, SeriesGuard};
use crate::metadata::Metadata;
use crate::segment::{Segment, SegmentWriter};
use crate::series::SeriesKey;
use crate::wal::record::{self, SamplesEncoder};
pub use crate::wal::SyncMode;
use crate::wal::{self, Frames, Payload, WalDamage, WalWriter};
use dir::{SEGMENT_DIR, WAL_DIR};
use manifest::{Manifest, SegmentMeta, SegmentPin, TierMeta};
pub use repair::RepairReport;
use replay::recover_wal;
pub use verify::SegmentCheck;

/// Most samples one `append_batch` call may carry (one WAL record).
pub const MAX_BATCH_SAMPLES: usize = 1 << 20;

/// Settings for [`Db::open`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Durability of appends. Default: `Interval(1000)`.
    pub sync: SyncMode,
    /// Width of a time partition; each flushed partition becomes one
    /// segment file. Default 2 h.
    pub partition_duration_ms: i64,
    /// How far behind a series' newest sample a sample may be and still be
    /// accepted. Default 10 min.
    pub out_of_order_window_ms: i64,
    /// Flush a partition in the background once the newest sample is past
    /// its end plus the out-of-order window. Default true. Bulk imports of
    /// old data turn this off and flush at the end.
    pub flush_complete_partitions: bool,
    /// Most series the database accepts. Default 10 million.
    pub max_series: usize,
    /// Most labels per series, `__name__` included. Default 64.
    pub max_labels_per_series: usize,
    /// Longest label name in bytes. Default 256.
    pub max_label_name_len: usize,
    /// Longest label value in bytes. Default 4096.
    pub max_label_value_len: usize,
    /// A WAL file is rotated once it grows past this. Default 256 MiB.
    pub wal_file_max_bytes: u64,
    /// Memory budget of the head: an estimate of series bookkeeping
    /// ([`HEAD_BYTES_PER_SERIES`] plus the key's bytes per series) plus the
    /// compressed samples not yet in segments. Past it, new series and
    /// appends fail with [`Error::HeadFull`] while a background flush frees
    /// sample memory. Default 4 GiB.
    pub max_head_bytes: usize,
    /// WAL files with this id or later are kept (not deleted at open or
    /// after a flush although their samples are in segments) for a reader
    /// of the WAL, such as the remote-write forwarder; move the hold with
    /// [`Db::keep_wal_from`]. Default `None`: files are deleted as soon as
    /// they are persisted.
    pub keep_wal_from: Option<u64>,
    /// How long raw samples and each rollup tier are kept, and which
    /// rollup tiers exist. Default: [`RetentionPolicy::default`]. A data
    /// directory's `strata.toml` sets it for the CLI. A changed policy
    /// takes effect at the next compaction.
    pub retention: RetentionPolicy,
    /// What retention measures age against. Default: the system clock.
    pub clock: Clock,
    /// Compact (merge, roll up, apply retention) in a background thread
    /// after flushes. Default true. Bulk imports turn it off and call
    /// [`Db::compact`] at the end.
    pub background_compaction: bool,
    /// Most bytes per second background compaction writes; `None`:
    /// unthrottled. Default 64 MiB/s. [`Db::compact`] is never throttled.
    pub compaction_write_bytes_per_s: Option<u64>,
    /// Head series garbage collection: the background thread drops a
    /// series from the head (its key, label index entries and bookkeeping
    /// memory) once it holds no samples in the head (all flushed and
    /// published) and its newest sample is more than this before the
    /// oldest time still open to appends (the flushed-below time, which
    /// background flushes of complete partitions advance). Default 0: as
    /// soon as a flush has taken its last samples.
    ///
    /// Measured in data time, not wall-clock time, so that it behaves the
    /// same for live data, backfills and replays. And because a dropped
    /// series' newest sample is below the flushed-below time, every sample
    /// it could still accept is one its re-created successor accepts too:
    /// dropping is invisible to writers. A [`SeriesRef`] of a dropped
    /// series keeps working (each append through it looks its key up, as
    /// [`Db::append`] does; [`Db::series`] gives a fresh handle); the
    /// series is re-created on its next append, with a new WAL definition.
    /// A larger value keeps series that pause for a while in the head.
    pub head_series_idle_ms: i64,
}

/// Series head garbage collection drops per hold of the exclusive gate.
const GC_CHUNK_SERIES: usize = 1024;

/// Bookkeeping bytes the head budget counts per series besides its key
/// (measured: 820 bytes for a 3-label series; rounded up).
pub const HEAD_BYTES_PER_SERIES: usize = 1024;

impl Options {
    /// Checks that every limit is one the formats can hold, so that nothing
    /// accepted can be written in a form replay or a reader would reject.
    /// [`Db::open`] and [`Db::repair`] call it first.
    ///
    /// ```
    /// use strata::{Db, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// assert!(Options::default().validate().is_ok());
    ///
    /// let options = Options { partition_duration_ms: 0, ..Options::default() };
    /// assert!(options.validate().is_err());
    /// let dir = tempfile::tempdir()?;
    /// assert!(Db::open(dir.path(), options).is_err()); // refused before anything is written
    /// # Ok(())
    /// # }
    /// ```
    pub fn validate(&self) -> Result<(), InputError> {
        let bad = |what: String| Err(InputError::BadOption(what));
        if self.partition_duration_ms <= 0 {
            return bad(format!(
                "partition_duration_ms must be > 0, is {}",
                self.partition_duration_ms
            ));
        }
        if self.out_of_order_window_ms < 0 {
            return bad(format!(
                "out_of_order_window_ms must be >= 0, is {}",
                self.out_of_order_window_ms
            ));
        }
        if self.max_series == 0 || self.max_series > MAX_SERIES_LIMIT {
            return bad(format!(
                "max_series must be 1..={MAX_SERIES_LIMIT} (series ids are 32-bit), is {}",
                self.max_series
            ));
        }
        if self.max_labels_per_series == 0 || self.max_labels_per_series > MAX_LABELS_LIMIT {
            return bad(format!(
                "max_labels_per_series must be 1..={MAX_LABELS_LIMIT}, is {}",
                self.max_labels_per_series
            ));
        }
        if self.max_label_name_len == 0 {
            return bad("max_label_name_len must be at least 1".into());
        }
        // The largest series definition must fit in one WAL frame.
        let per_label = self
            .max_label_name_len
            .saturating_add(self.max_label_value_len)
            .saturating_add(LABEL_RECORD_OVERHEAD);
        let largest = per_label
            .saturating_mul(self.max_labels_per_series)
            .saturating_add(SERIES_RECORD_OVERHEAD);
        if largest > wal::MAX_PAYLOAD_LEN {
            return bad(format!(
                "a series at the label limits (max_labels_per_series {} x (max_label_name_len {} + max_label_value_len {})) needs a {largest}-byte WAL record, over the {}-byte frame limit",
                self.max_labels_per_series,
                self.max_label_name_len,
                self.max_label_value_len,
                wal::MAX_PAYLOAD_LEN
            ));
        }
        if self.wal_file_max_bytes < MIN_WAL_FILE_BYTES {
            return bad(format!(
                "wal_file_max_bytes must be at least {MIN_WAL_FILE_BYTES}, is {}",
                self.wal_file_max_bytes
            ));
        }
        self.retention.validate().map_err(InputError::BadOption)?;
        if self.head_series_idle_ms < 0 {
            return bad(format!(
                "head_series_idle_ms must be >= 0, is {}",
                self.head_series_idle_ms
            ));
        }
        if self.max_head_bytes < HEAD_BYTES_PER_SERIES {
            return bad(format!(
                "max_head_bytes must be at least {HEAD_BYTES_PER_SERIES}, is {}",
                self.max_head_bytes
            ));
        }
        Ok(())
    }
}

/// Series ids are `u32` in the WAL and in segments.
const MAX_SERIES_LIMIT: usize = u32::MAX as usize;
/// The segment series table counts labels in 16 bits.
const MAX_LABELS_LIMIT: usize = u16::MAX as usize;
/// Bytes of a WAL series record besides its label bytes: type, id, count.
const SERIES_RECORD_OVERHEAD: usize = 9;
/// Bytes per label of a WAL series record besides name and value: lengths.
const LABEL_RECORD_OVERHEAD: usize = 8;
/// Smallest accepted `wal_file_max_bytes` (a WAL file header takes 24).
const MIN_WAL_FILE_BYTES: u64 = 64;

impl Default for Options {
    fn default() -> Self {
        Options {
            sync: SyncMode::Interval(1000),
            partition_duration_ms: 2 * 3600 * 1000,
            out_of_order_window_ms: 10 * 60 * 1000,
            flush_complete_partitions: true,
            max_series: 10_000_000,
            max_labels_per_series: 64,
            max_label_name_len: 256,
            max_label_value_len: 4096,
            wal_file_max_bytes: 256 << 20,
            max_head_bytes: 4 << 30,
            keep_wal_from: None,
            retention: RetentionPolicy::default(),
            clock: Clock::System,
            background_compaction: true,
            compaction_write_bytes_per_s: Some(64 << 20),
            head_series_idle_ms: 0,
        }
    }
}

/// A handle on one series for the write hot path: no hashing, no
/// allocation per append. Cheap to clone; keep one per series. It stays
/// valid when head garbage collection drops its series (see
/// [`Options::head_series_idle_ms`]).
#[derive(Clone)]
pub struct SeriesRef {
    series: Arc<MemSeries>,
}

impl SeriesRef {
    /// The key of the series this handle writes to.
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let key = SeriesKey::new("up", &[("job", "api")])?;
    /// let up = db.series(&key)?;
    /// assert_eq!(up.key(), &key);
    /// assert_eq!(up.key().get("job"), Some("api"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn key(&self) -> &SeriesKey {
        &self.series.key
    }
}

/// What `append_batch` did. Samples can be rejected one by one while the
/// rest of the batch is kept, so ignoring this value loses those errors.
#[must_use = "the outcome lists the samples that were rejected"]
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchOutcome {
    pub accepted: usize,
    /// Rejected samples: index in the batch and why.
    pub rejected: Vec<(usize, InputError)>,
}

/// What opening found and did about it. A writable open acts (truncates a
/// torn WAL tail, quarantines damaged files, removes leftovers of a flush
/// that never committed); a read-only open changes nothing and reports what
/// a writable open would do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// True for a read-only open: the actions below were not carried out.
    pub read_only: bool,
    pub wal_files_replayed: usize,
    pub wal_records_replayed: u64,
    pub samples_replayed: u64,
    /// Samples in the WAL already in segments, skipped.
    pub samples_already_persisted: u64,
    /// Samples naming a series id with no definition in their WAL file or
    /// its writer session; skipped. Nonzero only for a damaged or foreign
    /// WAL.
    pub samples_without_series: u64,
    /// Damaged or torn WAL regions: a torn tail is truncated, damage in the
    /// middle of a file is skipped (the file is quarantined first).
    pub wal_damage: Vec<WalDamage>,
    /// Segment files numbered after every committed one (a flush that
    /// never committed: their data is still in the WAL), deleted.
    pub orphan_segments_removed: Vec<PathBuf>,
    /// Segment files the compaction journal names and the manifest does not
    /// list (inputs of a committed compaction step, outputs of one that
    /// never committed: their data is in listed segments), deleted.
    pub compaction_leftovers_removed: Vec<PathBuf>,
    /// Damaged files copied (or, read-only, to be copied) to
    /// `quarantine/` before anything else was done to them.
    pub quarantined: Vec<Quarantined>,
}

/// A damaged file copied aside, so that its damaged bytes are kept for
/// inspection whatever recovery does to the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The damaged file.
    pub from: PathBuf,
    /// Its copy, under `quarantine/`.
    pub to: PathBuf,
    pub reason: String,
}

impl RecoveryReport {
    /// True when opening changed (or, read-only, would change) nothing on
    /// disk and dropped nothing.
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.append(&SeriesKey::new("up", &[])?, 1_000, 1.0)?;
    /// drop(db); // not closed: the next open replays the WAL, which is no damage
    ///
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let report = db.recovery_report();
    /// assert_eq!(report.samples_replayed, 1);
    /// assert!(report.is_clean());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_clean(&self) -> bool {
        self.wal_damage.is_empty()
            && self.orphan_segments_removed.is_empty()
            && self.compaction_leftovers_removed.is_empty()
            && self.quarantined.is_empty()
            && self.samples_without_series == 0
    }

    /// One line per recovery action, for people: what was (or would be)
    /// truncated, skipped, quarantined or removed, and why.
    ///
    /// ```
    /// use strata::{Db, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// Db::open(dir.path(), Options::default())?.close()?;
    /// // A segment file no manifest lists, numbered after every committed
    /// // one: what a flush that never committed leaves behind.
    /// std::fs::write(dir.path().join("segments/00000000000000000099.seg"), b"partial")?;
    ///
    /// let report = Db::open_read_only(dir.path())?.recovery_report().clone();
    /// assert!(!report.is_clean());
    /// let actions = report.actions();
    /// assert_eq!(actions.len(), 1);
    /// assert!(actions[0].starts_with("would remove")); // read-only: nothing done
    /// # Ok(())
    /// # }
    /// ```
    pub fn actions(&self) -> Vec<String> {
        let (truncate, skip, quarantine, remove) = if self.read_only {
            (
                "would truncate",
                "would skip",
                "would quarantine",
                "would remove",
            )
        } else {
            ("truncated", "skipped", "quarantined", "removed")
        };
        let mut lines = Vec::new();
        for damage in &self.wal_damage {
            // A torn tail from offset 0 is a torn create: the file goes.
            let verb = match (damage.torn_tail, damage.offset) {
                (false, _) => skip,
                (true, 0) => remove,
                (true, _) => truncate,
            };
            lines.push(format!("WAL: {verb} {damage}"));
        }
        if self.samples_without_series > 0 {
            lines.push(format!(
                "WAL: {skip} {} samples whose series definition was lost",
                self.samples_without_series
            ));
        }
        for q in &self.quarantined {
            lines.push(format!(
                "{quarantine} {} -> {}: {}",
                q.from.display(),
                q.to.display(),
                q.reason
            ));
        }
        for path in &self.orphan_segments_removed {
            lines.push(format!(
                "{remove} {} (unlisted segment numbered after every committed one: written by a flush that never committed, whose data is in the WAL)",
                path.display()
            ));
        }
        for path in &self.compaction_leftovers_removed {
            lines.push(format!(
                "{remove} {} (unlisted segment named by the compaction journal: replaced by a committed compaction, or written by one that never committed; its data is in the listed segments)",
                path.display()
            ));
        }
        lines
    }
}

/// Counters since open.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DbStats {
    pub samples_appended: u64,
    pub samples_rejected: u64,
    pub head_series: usize,
    /// Series dropped from the head by garbage collection since open (see
    /// [`Options::head_series_idle_ms`]).
    pub head_series_dropped: u64,
    pub head_data_bytes: usize,
    pub segments: usize,
    pub flushes: u64,
    pub last_background_error: Option<String>,
    /// Bytes of the WAL files on disk (0 when read-only).
    pub wal_bytes: u64,
    /// WAL data fsyncs since open.
    pub wal_fsyncs: u64,
    /// Time those fsyncs took, in total.
    pub wal_fsync_time: std::time::Duration,
    /// Timestamp of the newest sample stored (`i64::MIN` when none).
    pub newest_sample_ms: i64,
    /// Compaction runs completed since open (background and
    /// [`Db::compact`]).
    pub compactions: u64,
}

/// What a flush wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlushReport {
    pub segments_written: usize,
    pub series_written: u64,
    pub samples_written: u64,
    pub bytes_written: u64,
}

/// Which head partitions a flush takes.
#[derive(Clone, Copy)]
enum FlushScope {
    Everything,
    /// Partitions starting before this; also raises `persisted_below_ms`.
    Before(i64),
}

/// Segments and frozen head data readers see, swapped as a whole.
#[derive(Default, Clone)]
pub(crate) struct Version {
    /// Raw segments, oldest first (by sequence number).
    pub(crate) segments: Vec<Arc<LiveSegment>>,
    /// Rollup segments of every tier, oldest first (`meta.resolution_ms`
    /// says which tier).
    pub(crate) rollups: Vec<Arc<LiveSegment>>,
    /// The manifest's tiers when this version was published: which raw
    /// times each tier has rolled up, and where retention cut.
    pub(crate) tiers: Vec<TierMeta>,
    pub(crate) raw_retained_from_ms: i64,
    pub(crate) frozen: Vec<Arc<FrozenHead>>,
}

pub(crate) struct LiveSegment {
    pub(crate) meta: SegmentMeta,
    /// Shared with the series sets reading it.
    pub(crate) segment: Arc<Segment>,
}

struct Inner {
    dir: PathBuf,
    options: Options,
    head: Head,
    /// `None` when read-only.
    wal: Option<WalWriter>,
    gate: RwLock<()>,
    version: RwLock<Arc<Version>>,
    /// Also serializes flushes.
    manifest: Mutex<Manifest>,
    /// Segment files written by flushes that failed before or during their
    /// commit; removed after the next successful commit.
    abandoned_segments: Mutex<Vec<PathBuf>>,
    persisted_below_ms: AtomicI64,
    max_time_ms: AtomicI64,
    /// Budget estimate of the head's series bookkeeping (see
    /// [`Options::max_head_bytes`]); grows as series are created and
    /// shrinks as garbage collection drops them.
    series_bytes: AtomicUsize,
    /// Series dropped by head garbage collection since open.
    series_dropped: AtomicU64,
    /// Compaction runs completed since open (background and on demand).
    compactions: AtomicU64,
    /// The `idle_before_ms` and flush count of the last garbage
    /// collection: until one of them changes, no series can have become
    /// idle (a series is emptied only by a flush) and it is skipped.
    last_collection: Mutex<Option<(i64, u64)>>,
    /// The head's compressed sample bytes, measured by the background
    /// thread each tick and after each flush.
    data_bytes: AtomicUsize,
    samples_appended: AtomicU64,
    samples_rejected: AtomicU64,
    flushes: AtomicU64,
    last_background_error: Mutex<Option<String>>,
    /// WAL files with this id or later are kept after a checkpoint
    /// (`u64::MAX`: none held); see [`Options::keep_wal_from`].
    keep_wal_from: AtomicU64,
    /// The metric metadata; the lock also serializes its stores.
    metadata: Mutex<Metadata>,
    recovery: RecoveryReport,
    shutdown: Mutex<bool>,
    wake: Condvar,
    /// Serializes compaction runs; what they leave for the next one.
    compaction: Mutex<compact::CompactionState>,
    /// Wakes (after a committed flush) or stops the compaction thread.
    compaction_signal: Mutex<compact::CompactionSignal>,
    compaction_wake: Condvar,
    /// Holds the directory lock for the writer's lifetime.
    _lock: Option<dir::DirLock>,
}

/// An open database. `Send + Sync`: share it (`Arc<Db>` or scoped threads)
/// across writer and reader threads.
pub struct Db {
    inner: Arc<Inner>,
    background: Option<JoinHandle<()>>,
    /// The background compaction thread, if `Options::background_compaction`.
    compactor: Option<JoinHandle<()>>,
}

impl Db {
    /// Creates or opens the data directory `dir` for writing. Fails with
    /// [`Error::Locked`] if another process has it open for writing.
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.append(&SeriesKey::new("up", &[("job", "api")])?, 1_000, 1.0)?;
    /// db.close()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Db> {
        Self::open_mode(dir.as_ref(), options, false, &[])
    }

    /// Opens `dir` for queries only, alongside a writer or without one. The
    /// view is a snapshot at open time; nothing on disk is changed.
    ///
    /// ```
    /// use strata::{Db, Matcher, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let writer = Db::open(dir.path(), Options::default())?;
    /// let key = SeriesKey::new("up", &[])?;
    /// writer.append(&key, 1_000, 1.0)?;
    /// writer.sync_wal()?;
    ///
    /// let reader = Db::open_read_only(dir.path())?;
    /// assert_eq!(reader.find_series(&[Matcher::equal("__name__", "up")]), [key]);
    /// assert!(matches!(reader.sync_wal(), Err(strata::Error::ReadOnly)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Db> {
        Self::open_read_only_reusing(dir.as_ref(), &[])
    }

    /// For a read-only database: catches up with what a live writer has
    /// committed and appended since this one was opened or last
    /// refreshed (new segments, new WAL records, a flush that moved data
    /// from the WAL into segments), without the caller reopening. The view
    /// is replaced as a whole, so it stays consistent, exactly as a new
    /// [`Self::open_read_only`] would see the directory.
    ///
    /// Cost: that of a read-only open minus the segments already open
    /// (each is kept when the manifest still lists it with the same pin):
    /// the manifest is read again, new segments are opened and the WAL
    /// from the manifest's replay point on is replayed in full. A writer
    /// flushes complete partitions, so that is the unflushed tail only.
    ///
    /// A writable database sees its own writes already: refreshing it
    /// does nothing. On error the database keeps its previous view.
    ///
    /// ```
    /// use strata::{Db, Matcher, Options, Sample, SeriesKey, TimeRange};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let writer = Db::open(dir.path(), Options::default())?;
    /// let mut reader = Db::open_read_only(dir.path())?;
    /// let up = [Matcher::equal("__name__", "up")];
    ///
    /// writer.append(&SeriesKey::new("up", &[])?, 1_000, 1.0)?;
    /// writer.sync_wal()?;
    /// assert!(reader.select(&up, TimeRange::ALL)?.is_empty());
    /// reader.refresh()?;
    /// assert_eq!(reader.select(&up, TimeRange::ALL)?[0].samples, [Sample::new(1_000, 1.0)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn refresh(&mut self) -> Result<()> {
        if self.inner.wal.is_some() {
            return Ok(());
        }
        let open = self.inner.version.read().segments.clone();
        *self = Self::open_read_only_reusing(&self.inner.dir, &open)?;
        Ok(())
    }

    /// [`Self::open_read_only`], taking segments from `open` where the
    /// manifest lists them unchanged.
    fn open_read_only_reusing(dir: &Path, open: &[Arc<LiveSegment>]) -> Result<Db> {
        // A running writer may commit a flush while we read: it publishes new
        // segments in a new manifest and deletes the WAL files they replace.
        // A view taken across that commit could miss data, so the manifest
        // must be the same after the open as before it; otherwise (or if a
        // file vanished under us) start over.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Self::open_mode(dir, Options::default(), true, open) {
                Ok(db) => {
                    let unchanged =
                        Manifest::load(dir)?.unwrap_or_default() == *db.inner.manifest.lock();
                    if unchanged {
                        return Ok(db);
                    }
                    if attempts >= 20 {
                        return Err(Error::io(
                            "open read-only",
                            dir,
                            std::io::Error::other(
                                "the writer committed a flush during each of 20 attempts",
                            ),
                        ));
                    }
                }
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && attempts < 20 => {}
                Err(other) => return Err(other),
            }
        }
    }

    fn open_mode(
        dir: &Path,
        options: Options,
        read_only: bool,
        open: &[Arc<LiveSegment>],
    ) -> Result<Db> {
        options.validate()?;
        let wal_dir = dir.join(WAL_DIR);
        let lock = dir::prepare(dir, read_only)?;
        let mut manifest = dir::load_manifest(dir, read_only)?;
        let mut recovery = RecoveryReport {
            read_only,
            ..RecoveryReport::default()
        };
        let (mut segments, mut rollups): (Vec<_>, Vec<_>) =
            open_segments(dir, &mut manifest, read_only, open)?
                .into_iter()
                .partition(|live| live.meta.resolution_ms == 0);
        compact::sort_for_reading(&mut segments);
        compact::sort_for_reading(&mut rollups);

        let head = Head::new(options.partition_duration_ms);
        let keep_wal_from = options.keep_wal_from.unwrap_or(u64::MAX);
        let recovered = recover_wal(
            &head,
            dir,
            &wal_dir,
            &manifest,
            keep_wal_from,
            read_only,
            &mut recovery,
        )?;
        let mut max_time_ms = recovered.max_time_ms;
        // After the WAL: an open that fails there (an unknown WAL version)
        // has changed nothing.
        dir::sweep_compaction_journal(dir, &manifest, read_only, &mut recovery)?;
        dir::sweep_segments(dir, &manifest, read_only, &mut recovery)?;
        let metadata = metadata::load(dir, read_only, &mut recovery)?;
        let wal = if read_only {
            None
        } else {
            Some(WalWriter::create(
                &wal_dir,
                recovered.next_file_id,
                recovered.prev_last_seq,
                options.sync,
                options.wal_file_max_bytes,
                recovered.closed,
            )?)
        };
        for meta in &manifest.segments {
            max_time_ms = max_time_ms.max(meta.max_time_ms);
        }
        let series_bytes = head.series_key_bytes(HEAD_BYTES_PER_SERIES);
        let data_bytes = head.data_bytes();
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            head,
            wal,
            gate: RwLock::new(()),
            version: RwLock::new(Arc::new(Version {
                segments,
                rollups,
                tiers: manifest.tiers.clone(),
                raw_retained_from_ms: manifest.raw_retained_from_ms,
                frozen: Vec::new(),
            })),
            persisted_below_ms: AtomicI64::new(manifest.persisted_below_ms),
            manifest: Mutex::new(manifest),
            abandoned_segments: Mutex::new(Vec::new()),
            max_time_ms: AtomicI64::new(max_time_ms),
            series_bytes: AtomicUsize::new(series_bytes),
            series_dropped: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            last_collection: Mutex::new(None),
            data_bytes: AtomicUsize::new(data_bytes),
            samples_appended: AtomicU64::new(0),
            samples_rejected: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            last_background_error: Mutex::new(None),
            keep_wal_from: AtomicU64::new(keep_wal_from),
            metadata: Mutex::new(metadata),
            recovery,
            shutdown: Mutex::new(false),
            wake: Condvar::new(),
            compaction: Mutex::new(compact::CompactionState::default()),
            compaction_signal: Mutex::new(compact::CompactionSignal::default()),
            compaction_wake: Condvar::new(),
            _lock: lock,
            options,
        });
        let background = if read_only {
            None
        } else {
            let worker = Arc::clone(&inner);
            Some(
                std::thread::Builder::new()
                    .name("strata-background".into())
                    .spawn(move || worker.background_loop())
                    .map_err(|e| Error::io("start background thread for", dir, e))?,
            )
        };
        let compactor = if read_only || !inner.options.background_compaction {
            None
        } else {
            let worker = Arc::clone(&inner);
            Some(
                std::thread::Builder::new()
                    .name("strata-compaction".into())
                    .spawn(move || worker.compaction_loop())
                    .map_err(|e| Error::io("start compaction thread for", dir, e))?,
            )
        };
        Ok(Db {
            inner,
            background,
            compactor,
        })
    }

    /// The data directory.
    ///
    /// ```
    /// use strata::{Db, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// assert_eq!(db.dir(), dir.path());
    /// # Ok(())
    /// # }
    /// ```
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the database was opened with (defaults for a read-only
    /// open).
    ///
    /// ```
    /// use strata::{Db, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let options = Options { max_series: 1_000, ..Options::default() };
    /// let db = Db::open(dir.path(), options)?;
    /// assert_eq!(db.options().max_series, 1_000);
    /// # Ok(())
    /// # }
    /// ```
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// What opening replayed, truncated and removed.
    ///
    /// ```
    /// use strata::{Db, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let report = db.recovery_report();
    /// assert!(report.is_clean());
    /// for action in report.actions() {
    ///     eprintln!("recovery: {action}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// The handle of a series, created if new. Validates the key against
    /// the limits in [`Options`].
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let up = db.series(&SeriesKey::new("up", &[("job", "api")])?)?;
    /// assert_eq!(up.key().to_string(), r#"up{job="api"}"#);
    /// db.append_ref(&up, 1_000, 1.0)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn series(&self, key: &SeriesKey) -> Result<SeriesRef> {
        let series = self.inner.resolve(key)?;
        Ok(SeriesRef { series })
    }

    /// Appends one sample to the series `key` (resolving it each time; keep
    /// a [`SeriesRef`] on hot paths).
    ///
    /// ```
    /// use strata::{Db, Matcher, Options, Sample, SeriesKey, TimeRange};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let key = SeriesKey::new("temperature_celsius", &[("room", "lab")])?;
    /// db.append(&key, 1_000, 21.5)?;
    /// db.append(&key, 2_000, 21.75)?;
    ///
    /// let stored = db.select(&[Matcher::equal("room", "lab")], TimeRange::ALL)?;
    /// assert_eq!(stored[0].samples, [Sample::new(1_000, 21.5), Sample::new(2_000, 21.75)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn append(&self, key: &SeriesKey, timestamp_ms: i64, value: f64) -> Result<()> {
        let series = self.series(key)?;
        self.append_ref(&series, timestamp_ms, value)
    }

    /// Appends one sample through a handle.
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let requests = db.series(&SeriesKey::new("requests_total", &[])?)?;
    /// for i in 0..10 {
    ///     db.append_ref(&requests, i * 15_000, i as f64)?;
    /// }
    /// assert_eq!(db.stats().samples_appended, 10);
    /// # Ok(())
    /// # }
    /// ```
    pub fn append_ref(&self, series: &SeriesRef, timestamp_ms: i64, value: f64) -> Result<()> {
        let inner = &self.inner;
        let wal = inner.writable(std::iter::once(series))?;
        inner.check_budget(0)?;
        let _gate = inner.gate.read();
        // One lock for check, log and insert: appends to one series reach
        // the WAL in the order they reach the head.
        let resolved;
        let mut s = &series.series;
        let mut guard = s.lock();
        if guard.is_dropped() {
            // Garbage collection runs under the exclusive gate: the live
            // series of the key cannot be dropped while this append runs.
            drop(guard);
            resolved = inner.resolve(&s.key)?;
            s = &resolved;
            guard = s.lock();
        }
        if let Err(error) = inner.validate(s, &guard, timestamp_ms) {
            inner.samples_rejected.fetch_add(1, Ordering::Relaxed);
            return Err(error.into());
        }
        // Encoded in place in the WAL buffer: no allocation per append.
        wal.append(timestamp_ms, |file_id, frames| {
            define_series(s, file_id, frames);
            let frame = frames.begin();
            let out = frames.payload();
            let record = out.len();
            let mut encoder = SamplesEncoder::begin(timestamp_ms, out);
            encoder.push(s.series_id, timestamp_ms, value, out);
            encoder.finish(record, out);
            frames.end(frame);
        })?;
        guard.insert(timestamp_ms, value, inner.options.partition_duration_ms);
        drop(guard);
        inner.applied(1, timestamp_ms);
        Ok(())
    }

    /// Appends many samples of many series as one WAL record. Samples that
    /// fail validation are reported in the outcome and skipped; the others
    /// are stored. `Err` with an input error means nothing of the batch was
    /// stored; after an I/O error (the database is then poisoned) the batch
    /// is not visible, but it may have reached the WAL whole and come back
    /// when the directory is reopened.
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let a = db.series(&SeriesKey::new("up", &[("job", "a")])?)?;
    /// let b = db.series(&SeriesKey::new("up", &[("job", "b")])?)?;
    /// db.append_ref(&a, 3_600_000, 1.0)?;
    ///
    /// // The last sample is an hour behind the newest of job="a", more than the
    /// // default out-of-order window of 10 minutes: it alone is rejected.
    /// let outcome = db.append_batch(&[(&a, 3_615_000, 1.0), (&b, 3_615_000, 0.0), (&a, 0, 1.0)])?;
    /// assert_eq!(outcome.accepted, 2);
    /// assert_eq!(outcome.rejected.len(), 1);
    /// assert_eq!(outcome.rejected[0].0, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn append_batch(&self, samples: &[(&SeriesRef, i64, f64)]) -> Result<BatchOutcome> {
        let inner = &self.inner;
        if samples.len() > MAX_BATCH_SAMPLES {
            return Err(InputError::BatchTooLarge {
                samples: samples.len(),
                limit: MAX_BATCH_SAMPLES,
            }
            .into());
        }
        let wal = inner.writable(samples.iter().map(|(s, _, _)| *s))?;
        inner.check_budget(0)?;
        let _gate = inner.gate.read();
        let mut outcome = BatchOutcome::default();
        let mut payload = Vec::with_capacity(16 + samples.len() * 14);
        let mut encoder = None;
        let mut max_ts = i64::MIN;
        let mut accepted = vec![false; samples.len()];
        let mut resolved = Resolved::default();
        for (index, &(series, timestamp_ms, value)) in samples.iter().enumerate() {
            let mut guard = series.series.lock();
            if guard.is_dropped() {
                // As in `append_ref`: the live series stays live until the
                // gate is released. An error here stores nothing.
                drop(guard);
                resolved.0.push((index, inner.resolve(&series.series.key)?));
                guard = resolved.series(index, series).lock();
            }
            let s = resolved.series(index, series);
            if let Err(error) = inner.validate(s, &guard, timestamp_ms) {
                outcome.rejected.push((index, error));
                continue;
            }
            let enc =
                encoder.get_or_insert_with(|| SamplesEncoder::begin(timestamp_ms, &mut payload));
            enc.push(s.series_id, timestamp_ms, value, &mut payload);
            max_ts = max_ts.max(timestamp_ms);
            accepted[index] = true;
        }
        inner
            .samples_rejected
            .fetch_add(outcome.rejected.len() as u64, Ordering::Relaxed);
        let Some(encoder) = encoder else {
            return Ok(outcome);
        };
        encoder.finish(0, &mut payload);
        let payload = Payload::new(&payload);
        let stored = || {
            samples
                .iter()
                .enumerate()
                .filter(|&(index, _)| accepted[index])
                .map(|(index, &(series, timestamp_ms, value))| {
                    (resolved.series(index, series), timestamp_ms, value)
                })
        };
        wal.append(max_ts, |file_id, frames| {
            for (series, _, _) in stored() {
                define_series(series, file_id, frames);
            }
            frames.push(&payload);
        })?;
        let partition_ms = inner.options.partition_duration_ms;
        for (series, timestamp_ms, value) in stored() {
            series.lock().insert(timestamp_ms, value, partition_ms);
        }
        outcome.accepted = samples.len() - outcome.rejected.len();
        inner.applied(outcome.accepted, max_ts);
        Ok(outcome)
    }

    /// Writes everything in the head to segment files and checkpoints the
    /// WAL. Returns what was written.
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.append(&SeriesKey::new("up", &[])?, 1_000, 1.0)?;
    /// let report = db.flush()?;
    /// assert_eq!((report.segments_written, report.samples_written), (1, 1));
    /// assert_eq!(db.stats().segments, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn flush(&self) -> Result<FlushReport> {
        let report = self.inner.flush(FlushScope::Everything)?;
        // What the flush freed, for [`Db::head_sample_bytes`].
        let data_bytes = self.inner.head.data_bytes();
        self.inner.data_bytes.store(data_bytes, Ordering::Relaxed);
        Ok(report)
    }

    /// Compacts now, unthrottled: flushes complete partitions, rolls raw
    /// data up into the rollup tiers of [`Options::retention`], deletes what
    /// the policy no longer keeps and merges complete time windows into
    /// larger segments (see docs/RETENTION.md). Appends and queries go
    /// on meanwhile; a query sees the data before or after each
    /// replacement, never a mix. Background compaction
    /// ([`Options::background_compaction`]) does the same, throttled.
    ///
    /// ```
    /// use strata::{Db, Matcher, Options, SeriesKey, TimeRange};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let options = Options {
    ///     partition_duration_ms: 60_000,
    ///     out_of_order_window_ms: 0,
    ///     background_compaction: false,
    ///     ..Options::default()
    /// };
    /// let db = Db::open(dir.path(), options)?;
    /// let key = SeriesKey::new("up", &[])?;
    /// for minute in 0..12 {
    ///     db.append(&key, minute * 60_000, 1.0)?;
    ///     db.flush()?; // one segment per minute
    /// }
    /// let report = db.compact()?;
    /// assert!(report.rollup_segments_written > 0);
    /// assert!(report.segments_merged > 0); // six 1-minute partitions made one block
    /// assert!(db.stats().compactions >= 1); // the background thread may have run too
    /// let stored = db.select(&[Matcher::equal("__name__", "up")], TimeRange::ALL)?;
    /// assert_eq!(stored[0].samples.len(), 12);
    /// # Ok(())
    /// # }
    /// ```
    pub fn compact(&self) -> Result<CompactionReport> {
        self.inner.compact(false)
    }

    /// Writes and fsyncs the WAL buffer (useful with `Interval`/`Never`).
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey, SyncMode};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let options = Options { sync: SyncMode::Never, ..Options::default() };
    /// let db = Db::open(dir.path(), options)?;
    /// db.append(&SeriesKey::new("up", &[])?, 1_000, 1.0)?;
    /// db.sync_wal()?; // the sample survives a crash from here on
    /// # Ok(())
    /// # }
    /// ```
    pub fn sync_wal(&self) -> Result<()> {
        self.inner.wal.as_ref().ok_or(Error::ReadOnly)?.sync()
    }

    /// The head's compressed sample bytes (what a flush frees), as last
    /// measured by the background thread: each tick (at most 1 s) and
    /// after each flush. One atomic load, cheap enough for every request
    /// of a server; [`Db::stats`] measures it exactly but walks every
    /// series.
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.append(&SeriesKey::new("up", &[])?, 1_000, 1.0)?;
    /// db.flush()?;
    /// assert_eq!(db.head_sample_bytes(), 0, "everything is in segments");
    /// # Ok(())
    /// # }
    /// ```
    pub fn head_sample_bytes(&self) -> usize {
        self.inner.data_bytes.load(Ordering::Relaxed)
    }

    /// Keeps WAL files with id `file_id` or later from now on (see
    /// [`Options::keep_wal_from`]); files below it are deleted by the next
    /// flush once persisted. `u64::MAX` holds nothing.
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options { keep_wal_from: Some(0), ..Options::default() })?;
    /// db.append(&SeriesKey::new("up", &[])?, 1_000, 1.0)?;
    /// db.flush()?;
    /// let wal_files = || std::fs::read_dir(dir.path().join("wal")).unwrap().count();
    /// assert_eq!(wal_files(), 2, "the flushed file is held, and the new one");
    /// db.keep_wal_from(u64::MAX);
    /// db.flush()?;
    /// assert_eq!(wal_files(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn keep_wal_from(&self, file_id: u64) {
        self.inner.keep_wal_from.store(file_id, Ordering::Release);
    }

    /// Counters and sizes.
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let key = SeriesKey::new("up", &[])?;
    /// db.append(&key, 3_600_000, 1.0)?;
    /// assert!(db.append(&key, 0, 1.0).is_err()); // older than the out-of-order window
    /// let stats = db.stats();
    /// assert_eq!((stats.samples_appended, stats.samples_rejected), (1, 1));
    /// assert_eq!((stats.head_series, stats.segments), (1, 0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn stats(&self) -> DbStats {
        let inner = &self.inner;
        let wal = inner.wal.as_ref().map(WalWriter::stats).unwrap_or_default();
        DbStats {
            samples_appended: inner.samples_appended.load(Ordering::Relaxed),
            samples_rejected: inner.samples_rejected.load(Ordering::Relaxed),
            head_series: inner.head.series_count(),
            head_series_dropped: inner.series_dropped.load(Ordering::Relaxed),
            head_data_bytes: inner.head.data_bytes(),
            segments: inner.version.read().segments.len(),
            flushes: inner.flushes.load(Ordering::Relaxed),
            last_background_error: inner.last_background_error.lock().clone(),
            wal_bytes: wal.bytes,
            wal_fsyncs: wal.fsyncs,
            wal_fsync_time: wal.fsync_time,
            newest_sample_ms: inner.max_time_ms.load(Ordering::Relaxed),
            compactions: inner.compactions.load(Ordering::Relaxed),
        }
    }

    /// Flushes the head, checkpoints the WAL and releases the directory, so
    /// that the next open replays nothing. Dropping a `Db` without `close`
    /// only syncs the WAL; the next open replays it.
    ///
    /// ```
    /// use strata::{Db, Matcher, Options, Sample, SeriesKey, TimeRange};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.append(&SeriesKey::new("up", &[])?, 1_000, 1.0)?;
    /// db.close()?;
    ///
    /// let db = Db::open(dir.path(), Options::default())?;
    /// assert_eq!(db.stats().segments, 1); // the head was flushed, the WAL is empty
    /// let stored = db.select(&[Matcher::equal("__name__", "up")], TimeRange::ALL)?;
    /// assert_eq!(stored[0].samples, [Sample::new(1_000, 1.0)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(mut self) -> Result<()> {
        self.stop_background();
        if self.inner.wal.is_some() {
            self.inner.flush(FlushScope::Everything)?;
        }
        Ok(())
    }

    fn stop_background(&mut self) {
        *self.inner.shutdown.lock() = true;
        self.inner.wake.notify_all();
        self.inner.compaction_signal.lock().shutdown = true;
        self.inner.compaction_wake.notify_all();
        if let Some(handle) = self.background.take() {
            let _ = handle.join();
        }
        if let Some(handle) = self.compactor.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.stop_background();
    }
}

/// The handles of an `append_batch` whose series was dropped: (index in
/// the batch, the live series of the key), by index. Usually empty.
#[derive(Default)]
struct Resolved(Vec<(usize, Arc<MemSeries>)>);

impl Resolved {
    /// The series the sample at `index`, given with `handle`, goes to.
    fn series<'a>(&'a self, index: usize, handle: &'a SeriesRef) -> &'a Arc<MemSeries> {
        match self.0.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(at) => &self.0[at].1,
            Err(_) => &handle.series,
        }
    }
}

/// Writes the series' definition record into the WAL buffer unless the
/// current file already has it. Runs under the WAL lock.
fn define_series(series: &MemSeries, file_id: u64, frames: &mut Frames<'_>) {
    if series.wal_file_id.load(Ordering::Relaxed) != file_id {
        let frame = frames.begin();
        record::encode_series(series.series_id, &series.key, frames.payload());
        frames.end(frame);
        series.wal_file_id.store(file_id, Ordering::Relaxed);
    }
}

impl Inner {
    /// The WAL, if writes are allowed and every handle is this database's.
    fn writable<'a>(&self, mut series: impl Iterator<Item = &'a SeriesRef>) -> Result<&WalWriter> {
        let wal = self.wal.as_ref().ok_or(Error::ReadOnly)?;
        let head_id = self.head.head_id();
        if series.any(|s| s.series.head_id != head_id) {
            return Err(InputError::ForeignSeriesRef.into());
        }
        Ok(wal)
    }

    /// The live series of `key`, created if new (checking the limits in
    /// [`Options`] and the head budget, which it is then charged to).
    fn resolve(&self, key: &SeriesKey) -> Result<Arc<MemSeries>> {
        if let Some(series) = self.head.get(key) {
            return Ok(series);
        }
        self.check_limits(key)?;
        // `Options::validate` made sure its WAL definition fits in a frame.
        let key_bytes = HEAD_BYTES_PER_SERIES + key.byte_len();
        self.check_budget(key_bytes)?;
        // Charged before the series exists, so that garbage collection
        // never takes away bytes not yet added.
        self.series_bytes.fetch_add(key_bytes, Ordering::Relaxed);
        let resolved = self.head.get_or_create(key, self.options.max_series);
        if !matches!(resolved, Some((_, true))) {
            self.series_bytes.fetch_sub(key_bytes, Ordering::Relaxed);
        }
        let (series, _) = resolved.ok_or(InputError::TooManySeries {
            limit: self.options.max_series,
        })?;
        Ok(series)
    }

    /// Head series garbage collection (see
    /// [`Options::head_series_idle_ms`]). The candidates are found without
    /// the gate; they are checked again and dropped under the exclusive
    /// gate (a chunk of [`GC_CHUNK_SERIES`] at a time), so that no append
    /// is between its check of the dropped mark and its insert, and no
    /// reader between taking its version and the head index: a reader sees
    /// a series' samples in the head or frozen data (found through the
    /// head index) or in published segments. A series with frozen data a
    /// flush has not published stays.
    fn collect_head_garbage(&self) {
        let persisted_below_ms = self.persisted_below_ms.load(Ordering::Acquire);
        let idle_before_ms = persisted_below_ms.saturating_sub(self.options.head_series_idle_ms);
        let now = Some((idle_before_ms, self.flushes.load(Ordering::Acquire)));
        if std::mem::replace(&mut *self.last_collection.lock(), now) == now {
            return;
        }
        let candidates = self.head.idle_series(idle_before_ms);
        // In chunks, so that appends wait for one chunk at most.
        for chunk in candidates.chunks(GC_CHUNK_SERIES) {
            let dropped = {
                let _gate = self.gate.write();
                let version = self.version.read().clone();
                let frozen = |series_id| {
                    version
                        .frozen
                        .iter()
                        .any(|f| !f.partitions(series_id).is_empty())
                };
                self.head.drop_idle(chunk, idle_before_ms, &frozen)
            };
            // Postings rewrites do not need appends held off.
            self.head.forget(&dropped);
            let bytes: usize = dropped
                .iter()
                .map(|s| HEAD_BYTES_PER_SERIES + s.key.byte_len())
                .sum();
            self.series_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.series_dropped
                .fetch_add(dropped.len() as u64, Ordering::Relaxed);
        }
    }

    /// Whether a sample may be stored; see [`SeriesGuard::check`].
    fn validate(
        &self,
        series: &MemSeries,
        guard: &SeriesGuard<'_>,
        timestamp_ms: i64,
    ) -> Result<(), InputError> {
        let min_time_ms = self.persisted_below_ms.load(Ordering::Acquire);
        guard
            .check(
                timestamp_ms,
                min_time_ms,
                self.options.out_of_order_window_ms,
            )
            .map_err(|(min_accepted_ms, reason)| InputError::SampleTooOld {
                series: series.key.to_string(),
                timestamp_ms,
                min_accepted_ms,
                reason,
            })
    }

    /// Fails with [`Error::HeadFull`] when the head's estimated memory plus
    /// `extra` bytes is over the budget, and wakes the background thread to
    /// flush.
    fn check_budget(&self, extra: usize) -> Result<()> {
        let used = self
            .series_bytes
            .load(Ordering::Relaxed)
            .saturating_add(self.data_bytes.load(Ordering::Relaxed))
            .saturating_add(extra);
        if used <= self.options.max_head_bytes {
            return Ok(());
        }
        self.wake.notify_all();
        Err(Error::HeadFull {
            used,
            limit: self.options.max_head_bytes,
        })
    }

    /// Counts stored samples and advances the newest timestamp.
    fn applied(&self, samples: usize, max_ts: i64) {
        self.samples_appended
            .fetch_add(samples as u64, Ordering::Relaxed);
        if max_ts > self.max_time_ms.load(Ordering::Relaxed) {
            self.max_time_ms.fetch_max(max_ts, Ordering::Relaxed);
        }
    }

    fn check_limits(&self, key: &SeriesKey) -> Result<(), InputError> {
        let o = &self.options;
        if key.get(crate::rollup::ROLLUP_LABEL).is_some() {
            return Err(InputError::ReservedLabel {
                series: key.to_string(),
                label: crate::rollup::ROLLUP_LABEL,
            });
        }
        let exceeded = |what, len, limit| InputError::LimitExceeded {
            series: key.to_string(),
            what,
            len,
            limit,
        };
        if key.labels().len() > o.max_labels_per_series {
            return Err(exceeded(
                "label count",
                key.labels().len(),
                o.max_labels_per_series,
            ));
        }
        for label in key.labels() {
            if label.name.len() > o.max_label_name_len {
                return Err(exceeded(
                    "label name length",
                    label.name.len(),
                    o.max_label_name_len,
                ));
            }
            if label.value.len() > o.max_label_value_len {
                return Err(exceeded(
                    "label value length",
                    label.value.len(),
                    o.max_label_value_len,
                ));
            }
        }
        Ok(())
    }

    fn background_loop(&self) {
        let tick = match self.options.sync {
            SyncMode::Interval(ms) => Duration::from_millis(ms.clamp(1, 1000)),
            _ => Duration::from_millis(1000),
        };
        loop {
            {
                let mut stop = self.shutdown.lock();
                if *stop {
                    return;
                }
                self.wake.wait_for(&mut stop, tick);
                if *stop {
                    return;
                }
            }
            if let Err(e) = self.background_step() {
                *self.last_background_error.lock() = Some(e.to_string());
            }
        }
    }

    fn background_step(&self) -> Result<()> {
        let flushed = self.background_flush();
        // After the flushes: drops the series they took the last samples
        // of (and, should a flush have failed, those of earlier ones).
        self.collect_head_garbage();
        flushed
    }

    fn background_flush(&self) -> Result<()> {
        let Some(wal) = &self.wal else { return Ok(()) };
        if matches!(self.options.sync, SyncMode::Interval(_)) {
            wal.sync()?;
        }
        let data_bytes = self.head.data_bytes();
        self.data_bytes.store(data_bytes, Ordering::Relaxed);
        let series_bytes = self.series_bytes.load(Ordering::Relaxed);
        // Past 3/4 of the budget, everything goes to segments (current
        // partitions included) so that appends do not hit the limit.
        if series_bytes.saturating_add(data_bytes) > self.options.max_head_bytes / 4 * 3
            && data_bytes > 0
        {
            self.flush(FlushScope::Everything)?;
            self.data_bytes
                .store(self.head.data_bytes(), Ordering::Relaxed);
            return Ok(());
        }
        if self.options.flush_complete_partitions {
            let max = self.max_time_ms.load(Ordering::Relaxed);
            if max != i64::MIN {
                let cutoff = partition_start(
                    max.saturating_sub(self.options.out_of_order_window_ms),
                    self.options.partition_duration_ms,
                );
                let persisted = self.persisted_below_ms.load(Ordering::Acquire);
                if cutoff > persisted || self.has_unpublished_data() {
                    self.flush(FlushScope::Before(cutoff.max(persisted)))?;
                }
                return Ok(());
            }
        }
        if self.has_unpublished_data() {
            // A flush failed after freezing its partitions: retry it.
            let persisted = self.persisted_below_ms.load(Ordering::Acquire);
            self.flush(FlushScope::Before(persisted))?;
        }
        Ok(())
    }

    /// Whether frozen head data waits for a flush to publish it (an earlier
    /// flush failed after taking it out of the head).
    fn has_unpublished_data(&self) -> bool {
        !self.version.read().frozen.is_empty()
    }

    fn flush(&self, scope: FlushScope) -> Result<FlushReport> {
        let wal = self.wal.as_ref().ok_or(Error::ReadOnly)?;
        let mut manifest = self.manifest.lock();
        let new_wal_id;
        {
            let _gate = self.gate.write();
            new_wal_id = wal.rotate()?;
            let take: Box<dyn Fn(i64) -> bool> = match scope {
                FlushScope::Everything => Box::new(|_| true),
                FlushScope::Before(cutoff) => {
                    self.persisted_below_ms.store(cutoff, Ordering::Release);
                    Box::new(move |start| start < cutoff)
                }
            };
            let frozen = self.head.freeze(&*take);
            if !frozen.is_empty() {
                let mut version = self.version.write();
                let mut next = Version::clone(&version);
                next.frozen.push(Arc::new(frozen));
                *version = Arc::new(next);
            }
        }
        // Everything frozen and not yet published, including leftovers of
        // a flush that failed earlier.
        let pending: Vec<Arc<FrozenHead>> = self.version.read().frozen.clone();
        let mut report = FlushReport::default();
        let mut next = manifest.clone();
        let mut written = Vec::new();
        // A segment number once used is never used again, even when the
        // flush fails: the failed attempt may have reached the disk (a rename
        // that happened before its fsync failed), and a retry must not
        // overwrite a file some manifest may list.
        let committed = (|| -> Result<()> {
            for frozen in &pending {
                for (partition_start_ms, series) in frozen.by_partition()? {
                    let seq = next.next_segment_seq;
                    next.next_segment_seq += 1;
                    let path = self.dir.join(SEGMENT_DIR).join(SegmentMeta::file_name(seq));
                    let mut writer = SegmentWriter::create(&path)?;
                    for (key, samples) in &series {
                        writer.add_series(key, samples)?;
                    }
                    let summary = writer.finish()?;
                    let segment = Segment::open(&path)?;
                    let meta = SegmentMeta::written(seq, partition_start_ms, &summary, 0, 0);
                    report.segments_written += 1;
                    report.series_written += u64::from(summary.series_count);
                    report.samples_written += summary.sample_count;
                    report.bytes_written += summary.file_len;
                    written.push(Arc::new(LiveSegment {
                        meta,
                        segment: Arc::new(segment),
                    }));
                    next.segments.push(meta);
                }
            }
            next.wal_replay_from = match scope {
                FlushScope::Everything => new_wal_id,
                FlushScope::Before(cutoff) => {
                    next.persisted_below_ms = cutoff;
                    wal.closed_files()
                        .iter()
                        .filter(|c| c.max_time_ms >= cutoff)
                        .map(|c| c.file_id)
                        .min()
                        .unwrap_or(new_wal_id)
                }
            };
            next.store(&self.dir)
        })();
        if let Err(error) = committed {
            let mut abandoned = self.abandoned_segments.lock();
            abandoned.extend(
                (manifest.next_segment_seq..next.next_segment_seq)
                    .map(|seq| self.dir.join(SEGMENT_DIR).join(SegmentMeta::file_name(seq))),
            );
            manifest.next_segment_seq = next.next_segment_seq;
            return Err(error);
        }
        *manifest = next;
        // Files of failed attempts are unlisted by the manifest just
        // committed, and their samples are in its segments or the WAL. Best
        // effort: one left behind is quarantined by the next open.
        for path in std::mem::take(&mut *self.abandoned_segments.lock()) {
            let _ = fs::remove_file(&path);
        }
        {
            let mut version = self.version.write();
            let mut next = Version::clone(&version);
            next.segments.extend(written);
            next.frozen
                .retain(|f| !pending.iter().any(|p| Arc::ptr_eq(f, p)));
            *version = Arc::new(next);
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.request_compaction();
        // The flush has committed: a WAL file that cannot be deleted now is
        // only clutter (the next open deletes it), not a failed flush.
        let hold = self.keep_wal_from.load(Ordering::Acquire);
        if let Err(error) = wal.remove_files_before(manifest.wal_replay_from.min(hold)) {
            *self.last_background_error.lock() =
                Some(format!("cleanup after a committed flush: {error}"));
        }
        Ok(report)
    }
}

/// Opens every segment the manifest lists and checks it against its pin.
/// A version-1 manifest has no pins: a writer computes them and stores the
/// manifest again (as the current version). A segment in `open` listed
/// with the same metadata and a pin is the same immutable file: it is
/// taken as it is.
fn open_segments(
    dir: &Path,
    manifest: &mut Manifest,
    read_only: bool,
    open: &[Arc<LiveSegment>],
) -> Result<Vec<Arc<LiveSegment>>> {
    let segment_dir = dir.join(SEGMENT_DIR);
    let mut segments = Vec::with_capacity(manifest.segments.len());
    let mut pinned_now = false;
    for meta in &mut manifest.segments {
        if let Some(live) = open
            .iter()
            .find(|live| live.meta == *meta && meta.pin.is_some())
        {
            segments.push(Arc::clone(live));
            continue;
        }
        let path = segment_dir.join(SegmentMeta::file_name(meta.seq));
        if !path.exists() {
            return Err(CorruptionError {
                path,
                offset: 0,
                series: None,
                kind: Corruption::BadLayout(format!(
                    "segment {} is listed in the manifest but the file is missing; its samples are lost unless the file is restored (run `strata repair` to drop it from the manifest)",
                    meta.seq
                )),
            }
            .into());
        }
        let segment = Segment::open(&path)?;
        match meta.pin {
            Some(pin) => pin.check_open(&segment)?,
            None if !read_only => {
                meta.pin = Some(SegmentPin::of_file(&path, &segment)?);
                pinned_now = true;
            }
            None => {}
        }
        segments.push(Arc::new(LiveSegment {
            meta: *meta,
            segment: Arc::new(segment),
        }));
    }
    if pinned_now {
        manifest.store(dir)?;
    }
    Ok(segments)
}
