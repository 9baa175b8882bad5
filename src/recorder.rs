//! A [`metrics`]-crate recorder that writes into an embedded [`Db`]
//! (cargo feature `metrics-recorder`).
//!
//! Installing a [`StrataRecorder`] makes every `counter!`, `gauge!` and
//! `histogram!` of a program store its values, with their labels, in a
//! strata database: the program's own instrumentation becomes a collection
//! point, with no exporter or scraper in between.
//!
//! How values reach the database:
//! - The first registration of a metric resolves its series keys to
//!   [`SeriesRef`]s; later ones (the macros register on every call) find
//!   it in a read-locked map keyed by the `metrics::Key`'s cached hash.
//!   Recording is then an atomic operation on the handle: one `fetch_add`
//!   for a counter, one compare-and-swap loop for a gauge, a bucket
//!   `fetch_add` plus a compare-and-swap on the sum for a histogram. A
//!   handle kept by the caller skips the lookup.
//! - A background thread takes a snapshot of every registered metric every
//!   [`RecorderBuilder::interval`] (default 1 s) and writes it as one
//!   [`Db::append_batch`] (split only if it exceeds
//!   [`MAX_BATCH_SAMPLES`]), all samples at one timestamp, as a Prometheus
//!   scrape would. Every registered metric is written at every snapshot,
//!   changed or not, so queries see it as fresh within their lookback.
//! - [`RecorderHandle::shutdown`] (also run when the recorder is dropped)
//!   stops the thread and takes a final snapshot, so nothing recorded
//!   before it is lost. An installed (global) recorder is never dropped:
//!   call `shutdown` on the handle [`StrataRecorder::install`] returns.
//!
//! What is written, per metric named `name` (after sanitising):
//! - a counter: `name` as given (no `_total` is added: the demo's and most
//!   Rust services' counter names already end in `_total`), its total;
//! - a gauge: `name`, its last value;
//! - a histogram: classic Prometheus buckets, `name_bucket{le="…"}`
//!   (cumulative, with `le="+Inf"`), `name_sum` and `name_count`, so
//!   `histogram_quantile(0.95, rate(name_bucket[1m]))` answers p95.
//!
//! Invariants:
//! - names follow Prometheus's rules after sanitising, as the Prometheus
//!   exporters do: a metric name's characters outside `[a-zA-Z0-9_:]` and
//!   a label name's outside `[a-zA-Z0-9_]` become `_`, a leading digit
//!   gets a `_` prefix, a label name starting with the reserved `__` keeps
//!   one leading `_`, and a histogram's own `le` label is renamed
//!   `exported_le` (Prometheus's rule for clashing labels). Empty label
//!   values are dropped (strata's and Prometheus's semantics);
//! - one series is written by at most one metric: a registration whose
//!   series key another metric already owns (`a.b` and `a_b`; a counter
//!   and a gauge of the same name and labels), or that the database
//!   refuses (limits, duplicate labels), gets a no-op handle and is
//!   counted in [`RecorderStats::rejected_registrations`]; recording never
//!   panics and never fails;
//! - in every snapshot of a histogram, `_count` equals the `+Inf` bucket
//!   (both are the sum of the bucket counts read); `_sum` may miss
//!   observations recorded while the snapshot is taken (they appear in
//!   the next one);
//! - snapshot timestamps strictly increase (a snapshot in the same
//!   millisecond as the previous one is stamped one millisecond later).
//!
//! `describe_*` metadata is stored as the database's metric metadata
//! ([`Db::metadata`]: type counter, gauge or histogram, the description as
//! help text, the unit's name such as `seconds`) by the next
//! snapshot, and kept in memory for [`RecorderHandle::descriptions`]. A
//! metadata store that fails is retried at the following snapshot and
//! reported in [`RecorderStats::last_error`]; it never fails a snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use metrics;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use parking_lot::{Mutex, RwLock};

use crate::metadata::{MetricMetadata, MetricType};
use crate::series::{Label, SeriesKey, METRIC_NAME_LABEL};
use crate::{Db, SeriesRef, MAX_BATCH_SAMPLES};

/// The Prometheus client libraries' default histogram buckets (seconds).
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The default snapshot interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Why the recorder could not be built, installed, or write a snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    #[error("histogram buckets {buckets:?}: {reason}")]
    BadBuckets {
        buckets: Vec<f64>,
        reason: &'static str,
    },
    #[error("the snapshot interval must be positive")]
    ZeroInterval,
    #[error("could not start the recorder's snapshot thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("a global metrics recorder is already installed")]
    AlreadyInstalled,
    #[error("metric {metric:?}: series {series} is already written by another metric")]
    SeriesCollision { metric: String, series: String },
    #[error("metric {metric:?}: {source}")]
    Series {
        metric: String,
        #[source]
        source: Box<crate::Error>,
    },
    #[error("writing a snapshot of {samples} samples: {source}")]
    Write {
        samples: usize,
        #[source]
        source: Box<crate::Error>,
    },
}

/// Which kind of metric a description is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// What `describe_counter!` and friends said about a metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricDescription {
    /// The sanitised metric name (as stored).
    pub name: String,
    pub kind: MetricKind,
    pub unit: Option<Unit>,
    pub description: String,
}

/// Counters of what the recorder did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Metrics registered (each histogram counts once).
    pub metrics: usize,
    /// Registrations given a no-op handle (see the module invariants).
    pub rejected_registrations: u64,
    /// Snapshots written.
    pub snapshots: u64,
    pub samples_written: u64,
    /// Samples the database refused (reported per sample by `append_batch`).
    pub samples_rejected: u64,
    /// Snapshots that failed as a whole (I/O error, poisoned database).
    pub failed_snapshots: u64,
    /// The most recent registration or snapshot error, as displayed.
    pub last_error: Option<String>,
}

/// What one snapshot wrote; samples the database rejected are counted
/// here, not returned as an error.
#[must_use = "the report counts the samples that were rejected"]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotReport {
    pub timestamp_ms: i64,
    pub accepted: usize,
    pub rejected: usize,
}

/// Configures and starts a [`StrataRecorder`].
pub struct RecorderBuilder {
    db: Arc<Db>,
    interval: Duration,
    buckets: Vec<f64>,
}

impl RecorderBuilder {
    /// How often the background thread writes a snapshot (default 1 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Upper bounds of the histogram buckets: finite, strictly increasing
    /// (the `+Inf` bucket is implicit). Default [`DEFAULT_BUCKETS`].
    pub fn buckets(mut self, bounds: &[f64]) -> Self {
        self.buckets = bounds.to_vec();
        self
    }

    /// Validates the configuration and starts the snapshot thread.
    pub fn build(self) -> Result<StrataRecorder, RecorderError> {
        let bad = |reason| {
            Err(RecorderError::BadBuckets {
                buckets: self.buckets.clone(),
                reason,
            })
        };
        if self.buckets.iter().any(|b| !b.is_finite()) {
            return bad("bounds must be finite (the +Inf bucket is implicit)");
        }
        if self.buckets.windows(2).any(|w| w[0] >= w[1]) {
            return bad("bounds must be strictly increasing");
        }
        if self.interval.is_zero() {
            return Err(RecorderError::ZeroInterval);
        }
        let le_values = self
            .buckets
            .iter()
            .map(|b| Arc::from(b.to_string()))
            .chain(std::iter::once(Arc::from("+Inf")))
            .collect();
        let shared = Arc::new(Shared {
            db: self.db,
            bounds: self.buckets.into(),
            le_values,
            registry: RwLock::new(Registry::default()),
            descriptions: Mutex::new(BTreeMap::new()),
            unsaved_metadata: Mutex::new(Vec::new()),
            stats: Mutex::new(RecorderStats::default()),
            last_timestamp_ms: Mutex::new(i64::MIN),
            worker: Mutex::new(None),
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let worker_shared = Arc::clone(&shared);
        let interval = self.interval;
        let thread = std::thread::Builder::new()
            .name("strata-recorder".into())
            .spawn(move || {
                // A message or a hang-up both mean stop; `shutdown` then
                // takes the final snapshot itself.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    // Errors are recorded in the stats.
                    let _ = worker_shared.snapshot();
                }
            })
            .map_err(RecorderError::Spawn)?;
        *shared.worker.lock() = Some(Worker { stop, thread });
        Ok(StrataRecorder { shared })
    }
}

/// A `metrics::Recorder` writing into a [`Db`]. See the module docs.
///
/// ```
/// use std::sync::Arc;
/// use strata::recorder::{metrics, StrataRecorder};
/// use strata::{Db, Options};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = Arc::new(Db::open(dir.path(), Options::default())?);
/// let recorder = StrataRecorder::builder(Arc::clone(&db)).build()?;
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("jobs_total", "state" => "done").increment(3);
/// });
/// let last = recorder.handle().shutdown()?; // the final snapshot
/// assert_eq!(last.rejected, 0);
/// let stored = db.select(&[strata::Matcher::equal("__name__", "jobs_total")],
///                        strata::TimeRange::ALL)?;
/// assert_eq!(stored[0].samples.last().map(|s| s.value), Some(3.0));
/// # Ok(())
/// # }
/// ```
pub struct StrataRecorder {
    shared: Arc<Shared>,
}

impl StrataRecorder {
    /// A builder writing into `db`.
    pub fn builder(db: Arc<Db>) -> RecorderBuilder {
        RecorderBuilder {
            db,
            interval: DEFAULT_INTERVAL,
            buckets: DEFAULT_BUCKETS.to_vec(),
        }
    }

    /// A handle to take snapshots, shut down and read stats and metadata.
    pub fn handle(&self) -> RecorderHandle {
        RecorderHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Installs this recorder as the process's global recorder (possible
    /// once per process). Keep the returned handle and call
    /// [`RecorderHandle::shutdown`] before exiting.
    pub fn install(self) -> Result<RecorderHandle, RecorderError> {
        let handle = self.handle();
        metrics::set_global_recorder(self).map_err(|_| RecorderError::AlreadyInstalled)?;
        Ok(handle)
    }
}

impl Drop for StrataRecorder {
    fn drop(&mut self) {
        // Errors are recorded in the stats; a drop cannot report them.
        let _ = self.shared.shutdown();
    }
}

/// A cloneable handle on a recorder's snapshots, stats and metadata.
#[derive(Clone)]
pub struct RecorderHandle {
    shared: Arc<Shared>,
}

impl RecorderHandle {
    /// Writes a snapshot now (besides the periodic ones).
    pub fn snapshot(&self) -> Result<SnapshotReport, RecorderError> {
        self.shared.snapshot()
    }

    /// Stops the snapshot thread and writes a final snapshot. Later calls
    /// only write a snapshot. Metrics keep recording in memory afterwards;
    /// only [`RecorderHandle::snapshot`] writes them.
    pub fn shutdown(&self) -> Result<SnapshotReport, RecorderError> {
        self.shared.shutdown()
    }

    /// What the recorder has registered, written and rejected so far.
    pub fn stats(&self) -> RecorderStats {
        let mut stats = self.shared.stats.lock().clone();
        stats.metrics = self.shared.registry.read().len();
        stats
    }

    /// Every `describe_*` call's latest description, sorted by name and
    /// kind.
    pub fn descriptions(&self) -> Vec<MetricDescription> {
        self.shared.descriptions.lock().values().cloned().collect()
    }
}

struct Worker {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

type KeyMap<T> = HashMap<Key, Arc<T>, BuildHasherDefault<KeyHashPassThrough>>;

/// `metrics::Key` hashes itself once and feeds the map only that `u64`
/// (`write_u64`), so the map's hasher passes it through. Other writes
/// (none from `Key`) are folded in with FNV-1a, to stay a valid hasher.
#[derive(Default)]
struct KeyHashPassThrough(u64);

impl Hasher for KeyHashPassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 ^= hash;
    }
}

/// A cell type and its map in the [`Registry`].
trait Registered: Sized {
    fn map(registry: &Registry) -> &KeyMap<Self>;
    fn map_mut(registry: &mut Registry) -> &mut KeyMap<Self>;
}

macro_rules! registered {
    ($cell:ty, $field:ident) => {
        impl Registered for $cell {
            fn map(registry: &Registry) -> &KeyMap<Self> {
                &registry.$field
            }

            fn map_mut(registry: &mut Registry) -> &mut KeyMap<Self> {
                &mut registry.$field
            }
        }
    };
}

registered!(CounterCell, counters);
registered!(GaugeCell, gauges);
registered!(HistogramCell, histograms);

#[derive(Default)]
struct Registry {
    counters: KeyMap<CounterCell>,
    gauges: KeyMap<GaugeCell>,
    histograms: KeyMap<HistogramCell>,
    /// Every series some registered metric writes.
    owned: HashSet<SeriesKey>,
}

impl Registry {
    fn len(&self) -> usize {
        self.counters.len() + self.gauges.len() + self.histograms.len()
    }
}

struct Shared {
    db: Arc<Db>,
    bounds: Arc<[f64]>,
    /// The `le` label values: one per bound, then `+Inf`.
    le_values: Vec<Arc<str>>,
    registry: RwLock<Registry>,
    descriptions: Mutex<BTreeMap<(String, MetricKind), MetricDescription>>,
    /// Descriptions not yet stored in the database's metric metadata.
    unsaved_metadata: Mutex<Vec<(String, MetricMetadata)>>,
    stats: Mutex<RecorderStats>,
    /// Held while a snapshot is taken, so snapshots do not interleave.
    last_timestamp_ms: Mutex<i64>,
    worker: Mutex<Option<Worker>>,
}

impl Shared {
    fn shutdown(&self) -> Result<SnapshotReport, RecorderError> {
        if let Some(worker) = self.worker.lock().take() {
            drop(worker.stop);
            // A panicked snapshot thread leaves nothing to clean up; the
            // final snapshot below still runs.
            let _ = worker.thread.join();
        }
        self.snapshot()
    }

    fn snapshot(&self) -> Result<SnapshotReport, RecorderError> {
        let mut last = self.last_timestamp_ms.lock();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let timestamp_ms = now_ms.max(last.saturating_add(1));
        let cells: Vec<Arc<dyn Cell>> = {
            let registry = self.registry.read();
            let counters = registry
                .counters
                .values()
                .map(|c| Arc::clone(c) as Arc<dyn Cell>);
            let gauges = registry
                .gauges
                .values()
                .map(|g| Arc::clone(g) as Arc<dyn Cell>);
            let histograms = registry
                .histograms
                .values()
                .map(|h| Arc::clone(h) as Arc<dyn Cell>);
            counters.chain(gauges).chain(histograms).collect()
        };
        let mut values = Vec::new();
        let mut batch: Vec<(&SeriesRef, i64, f64)> = Vec::new();
        for cell in &cells {
            values.clear();
            cell.read(&mut values);
            let samples = cell.series().iter().zip(&values);
            batch.extend(samples.map(|(series, &value)| (series, timestamp_ms, value)));
        }
        *last = timestamp_ms;
        let mut report = SnapshotReport {
            timestamp_ms,
            ..SnapshotReport::default()
        };
        let mut failure = None;
        for chunk in batch.chunks(MAX_BATCH_SAMPLES) {
            match self.db.append_batch(chunk) {
                Ok(outcome) => {
                    report.accepted += outcome.accepted;
                    report.rejected += outcome.rejected.len();
                    if let Some((_, error)) = outcome.rejected.last() {
                        self.stats.lock().last_error = Some(error.to_string());
                    }
                }
                Err(source) => {
                    failure = Some(RecorderError::Write {
                        samples: chunk.len(),
                        source: Box::new(source),
                    });
                    break;
                }
            }
        }
        self.store_metadata();
        let mut stats = self.stats.lock();
        stats.samples_written += report.accepted as u64;
        stats.samples_rejected += report.rejected as u64;
        match failure {
            None => {
                stats.snapshots += 1;
                Ok(report)
            }
            Some(error) => {
                stats.failed_snapshots += 1;
                stats.last_error = Some(error.to_string());
                Err(error)
            }
        }
    }

    /// Stores the descriptions made since the last store (see the module
    /// documentation).
    fn store_metadata(&self) {
        let mut unsaved = self.unsaved_metadata.lock();
        if unsaved.is_empty() {
            return;
        }
        if let Err(error) = self.db.set_metadata(unsaved.iter().cloned()) {
            self.stats.lock().last_error = Some(format!("storing metric metadata: {error}"));
            return;
        }
        unsaved.clear();
    }

    fn reject(&self, error: RecorderError) {
        let mut stats = self.stats.lock();
        stats.rejected_registrations += 1;
        stats.last_error = Some(error.to_string());
    }

    /// The series key of `key` with `name` as metric name (sanitised).
    /// A histogram's series (`histogram`) rename the metric's own `le`
    /// label to `exported_le`; its buckets add their `le`.
    fn series_key(
        &self,
        key: &Key,
        name: &str,
        histogram: bool,
        le: Option<&Arc<str>>,
    ) -> Result<SeriesKey, RecorderError> {
        let mut labels = Vec::with_capacity(key.labels().len() + 2);
        labels.push(Label::new(METRIC_NAME_LABEL, sanitize_metric_name(name)));
        for label in key.labels() {
            let mut label_name = sanitize_label_name(label.key());
            if histogram && label_name == "le" {
                label_name.insert_str(0, "exported_");
            }
            labels.push(Label::new(label_name, label.value()));
        }
        if let Some(le) = le {
            labels.push(Label::new("le", Arc::clone(le)));
        }
        SeriesKey::from_labels(labels).map_err(|source| RecorderError::Series {
            metric: key.name().to_owned(),
            source: Box::new(source.into()),
        })
    }

    /// Claims `keys` for one metric and resolves them, or says why not.
    fn claim(
        &self,
        registry: &mut Registry,
        metric: &Key,
        keys: Vec<SeriesKey>,
    ) -> Result<Vec<SeriesRef>, RecorderError> {
        if let Some(taken) = keys.iter().find(|k| registry.owned.contains(*k)) {
            return Err(RecorderError::SeriesCollision {
                metric: metric.name().to_owned(),
                series: taken.to_string(),
            });
        }
        let refs = keys
            .iter()
            .map(|k| self.db.series(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| RecorderError::Series {
                metric: metric.name().to_owned(),
                source: Box::new(source),
            })?;
        registry.owned.extend(keys);
        Ok(refs)
    }

    /// The cell registered for `key` in the map `pick` selects, created by
    /// `create` from the claimed series if new; `None` if rejected.
    fn register<T: Registered>(
        &self,
        key: &Key,
        keys: impl FnOnce() -> Result<Vec<SeriesKey>, RecorderError>,
        create: impl FnOnce(Vec<SeriesRef>) -> T,
    ) -> Option<Arc<T>> {
        // The macros register on every call: the common case is a read.
        if let Some(cell) = T::map(&self.registry.read()).get(key) {
            return Some(Arc::clone(cell));
        }
        let found = {
            let mut registry = self.registry.write();
            if let Some(cell) = T::map(&registry).get(key) {
                return Some(Arc::clone(cell));
            }
            keys().and_then(|keys| {
                let refs = self.claim(&mut registry, key, keys)?;
                let cell = Arc::new(create(refs));
                T::map_mut(&mut registry).insert(key.clone(), Arc::clone(&cell));
                Ok(cell)
            })
        };
        found.map_err(|error| self.reject(error)).ok()
    }

    fn describe(&self, name: KeyName, kind: MetricKind, unit: Option<Unit>, text: SharedString) {
        let name = sanitize_metric_name(name.as_str());
        let metric_type = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
        };
        let metadata = MetricMetadata::new(metric_type)
            .with_help(text.as_ref())
            .with_unit(unit.map_or("", |unit| unit.as_str()));
        match metadata.validate(&name) {
            Ok(()) => self.unsaved_metadata.lock().push((name.clone(), metadata)),
            Err(error) => self.stats.lock().last_error = Some(error.to_string()),
        }
        let description = MetricDescription {
            name: name.clone(),
            kind,
            unit,
            description: text.into_owned(),
        };
        self.descriptions.lock().insert((name, kind), description);
    }
}

impl Recorder for StrataRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.shared
            .describe(key, MetricKind::Counter, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.shared
            .describe(key, MetricKind::Gauge, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.shared
            .describe(key, MetricKind::Histogram, unit, description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        let shared = &self.shared;
        shared
            .register(
                key,
                || Ok(vec![shared.series_key(key, key.name(), false, None)?]),
                |series| CounterCell {
                    value: AtomicU64::new(0),
                    series,
                },
            )
            .map_or_else(Counter::noop, Counter::from_arc)
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        let shared = &self.shared;
        shared
            .register(
                key,
                || Ok(vec![shared.series_key(key, key.name(), false, None)?]),
                |series| GaugeCell {
                    bits: AtomicU64::new(0f64.to_bits()),
                    series,
                },
            )
            .map_or_else(Gauge::noop, Gauge::from_arc)
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        let shared = &self.shared;
        let name = sanitize_metric_name(key.name());
        let keys = || {
            let bucket = format!("{name}_bucket");
            let mut keys = shared
                .le_values
                .iter()
                .map(|le| shared.series_key(key, &bucket, true, Some(le)))
                .collect::<Result<Vec<_>, _>>()?;
            keys.push(shared.series_key(key, &format!("{name}_sum"), true, None)?);
            keys.push(shared.series_key(key, &format!("{name}_count"), true, None)?);
            Ok(keys)
        };
        shared
            .register(key, keys, |refs| {
                HistogramCell::new(Arc::clone(&shared.bounds), refs)
            })
            .map_or_else(Histogram::noop, Histogram::from_arc)
    }
}

/// A registered metric as the snapshot sees it: its series and, in the
/// same order, their current values.
trait Cell: Send + Sync {
    fn series(&self) -> &[SeriesRef];
    fn read(&self, values: &mut Vec<f64>);
}

struct CounterCell {
    value: AtomicU64,
    /// The one series written.
    series: Vec<SeriesRef>,
}

impl Cell for CounterCell {
    fn series(&self) -> &[SeriesRef] {
        &self.series
    }

    fn read(&self, values: &mut Vec<f64>) {
        values.push(self.value.load(Ordering::Relaxed) as f64);
    }
}

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.value.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.value.fetch_max(value, Ordering::Relaxed);
    }
}

struct GaugeCell {
    /// The `f64` value's bits.
    bits: AtomicU64,
    /// The one series written.
    series: Vec<SeriesRef>,
}

impl Cell for GaugeCell {
    fn series(&self) -> &[SeriesRef] {
        &self.series
    }

    fn read(&self, values: &mut Vec<f64>) {
        values.push(f64::from_bits(self.bits.load(Ordering::Relaxed)));
    }
}

impl GaugeCell {
    fn update(&self, f: impl Fn(f64) -> f64) {
        // `fetch_update` retries until no other thread raced the update.
        let _ = self
            .bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some(f(f64::from_bits(bits)).to_bits())
            });
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.bits.store(value.to_bits(), Ordering::Relaxed);
    }
}

/// A classic Prometheus histogram: one non-cumulative count per bucket
/// (the last one is `+Inf`), and the sum of the observations.
struct HistogramCell {
    bounds: Arc<[f64]>,
    counts: Box<[AtomicU64]>,
    /// The sum's `f64` bits.
    sum_bits: AtomicU64,
    /// One per bucket (in bound order, then `+Inf`), then `_sum`, `_count`.
    series: Vec<SeriesRef>,
}

impl HistogramCell {
    fn new(bounds: Arc<[f64]>, series: Vec<SeriesRef>) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        HistogramCell {
            bounds,
            counts,
            sum_bits: AtomicU64::new(0f64.to_bits()),
            series,
        }
    }
}

impl Cell for HistogramCell {
    fn series(&self) -> &[SeriesRef] {
        &self.series
    }

    /// The cumulative buckets, the sum and the count.
    fn read(&self, values: &mut Vec<f64>) {
        let mut cumulative = 0u64;
        for count in self.counts.iter() {
            cumulative = cumulative.wrapping_add(count.load(Ordering::Relaxed));
            values.push(cumulative as f64);
        }
        values.push(f64::from_bits(self.sum_bits.load(Ordering::Relaxed)));
        values.push(cumulative as f64);
    }
}

impl HistogramFn for HistogramCell {
    fn record(&self, value: f64) {
        self.record_many(value, 1);
    }

    fn record_many(&self, value: f64, count: usize) {
        // The first bucket whose bound is >= value; NaN (compares false
        // with everything) lands in +Inf, as in the Prometheus clients.
        let bucket = self
            .bounds
            .partition_point(|bound| *bound < value || value.is_nan());
        let n = u64::try_from(count).unwrap_or(u64::MAX);
        if let Some(slot) = self.counts.get(bucket) {
            slot.fetch_add(n, Ordering::Relaxed);
        }
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value * count as f64).to_bits())
            });
    }
}

/// A Prometheus metric name: characters outside `[a-zA-Z0-9_:]` become
/// `_`, and a leading digit (or an empty name) gets a `_` prefix.
pub fn sanitize_metric_name(name: &str) -> String {
    sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A Prometheus label name: characters outside `[a-zA-Z0-9_]` become `_`,
/// a leading digit (or an empty name) gets a `_` prefix, and a name
/// starting with the reserved `__` keeps a single leading `_`.
pub fn sanitize_label_name(name: &str) -> String {
    let out = sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_');
    if out.starts_with("__") {
        format!("_{}", out.trim_start_matches('_'))
    } else {
        out
    }
}

fn sanitize(name: &str, allowed: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| if allowed(c) { c } else { '_' }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised_as_prometheus_exporters_do() {
        assert_eq!(
            sanitize_metric_name("http.requests-total"),
            "http_requests_total"
        );
        assert_eq!(sanitize_metric_name("ns:metric"), "ns:metric");
        assert_eq!(sanitize_metric_name("9lives"), "_9lives");
        assert_eq!(sanitize_metric_name(""), "_");
        assert_eq!(sanitize_metric_name("é"), "_");
        assert_eq!(sanitize_label_name("a:b.c"), "a_b_c");
        assert_eq!(sanitize_label_name("__name__"), "_name__");
        assert_eq!(sanitize_label_name("___x"), "_x");
        assert_eq!(sanitize_label_name("0"), "_0");
        assert_eq!(sanitize_label_name("_ok"), "_ok");
    }
}
