//! strata: an embedded time-series storage engine.
//!
//! Samples (`i64` Unix-millisecond timestamp, `f64` value) of series
//! (metric name + labels) are compressed Gorilla-style into chunks and
//! stored in immutable, checksummed segment files ([`Segment`]) that are
//! read through mmap.
//!
//! The public API: [`Db`] with its [`Options`], series keys
//! ([`SeriesKey`], [`SeriesRef`]), queries ([`Db::select`],
//! [`instant_query`], [`range_query`]), the offline segment reader and
//! writer ([`Segment`], [`SegmentWriter`]), metric [`metadata`],
//! retention ([`RetentionPolicy`]), the [`ingest`] parsers, and behind
//! cargo features the `metrics` recorder (`metrics-recorder`) and Parquet
//! export/import (`parquet`).
//!
//! # Cargo features
//!
//! - `cli` (default): the `strata` binary and its dependencies (clap,
//!   indicatif). An embedder that wants the library alone depends on
//!   `strata` with `default-features = false`.
//! - `internals` (implied by `cli` and `fault-injection`): makes the
//!   internal modules (`codec`, `wal`, `segment`, `compaction`, `rollup`,
//!   `workload`, ...) public for the binary, the codec benchmark, the fuzz
//!   targets and the tests. They are hidden from these docs and carry no
//!   compatibility promise; without the feature they are private and
//!   everything users need is re-exported at the crate root.
//! - `metrics-recorder`, `parquet`: see the modules `recorder` and `parquet`
//!   (documented when enabled).
//! - `fault-injection`: named I/O fault points for the fault tests.
//!
//! ```
//! use strata::{Matcher, Sample, SeriesKey, Segment, SegmentWriter, TimeRange};
//!
//! # fn main() -> Result<(), strata::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("example.seg");
//! let key = SeriesKey::new("http_requests_total", &[("code", "200")])?;
//! let samples: Vec<Sample> = (0..100).map(|i| Sample::new(i * 1_000, i as f64)).collect();
//!
//! let mut writer = SegmentWriter::create(&path)?;
//! writer.add_series(&key, &samples)?;
//! writer.finish()?;
//!
//! let segment = Segment::open(&path)?;
//! let ids = segment.select(&[Matcher::equal("code", "200")]);
//! let read = segment.read_samples(ids[0], TimeRange::new(10_000, 19_999))?;
//! assert_eq!(read.len(), 10);
//! # Ok(())
//! # }
//! ```

/// Declares internal modules: public but hidden from the docs with the
/// `internals` feature (for the `strata` binary, the codec benchmark, the
/// fuzz targets and the tests; no compatibility promise), private without
/// it. What users need of them is re-exported below.
macro_rules! internal_modules {
    ($($name:ident),* $(,)?) => {$(
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        mod $name;
    )*};
}

internal_modules!(codec, compaction, error, fault, index, query, rollup, segment, series, wal);

pub mod api;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod calendar;
#[cfg(all(feature = "server", not(feature = "internals")))]
mod calendar;
mod db;
mod head;
pub mod ingest;
pub mod metadata;
#[cfg(feature = "parquet")]
pub mod parquet;
#[cfg(feature = "metrics-recorder")]
pub mod recorder;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod workload;

pub use codec::{CodecError, Column as ChunkColumn, TimestampEncoding, ValueEncoding};
pub use compaction::policy::{
    Clock, MetricPattern, PolicyFileError, RetentionOverride, RetentionPolicy, TierPolicy,
    POLICY_FILE,
};
pub use compaction::CompactionReport;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use db::manifest::{Manifest, TierMeta};
pub use db::manifest::{SegmentMeta, SegmentPin};
pub use db::{
    BatchOutcome, Db, DbStats, FlushReport, Options, Quarantined, RecoveryReport, RepairReport,
    SegmentCheck, SeriesRef, SyncMode, HEAD_BYTES_PER_SERIES, MAX_BATCH_SAMPLES,
};
pub use error::{Corruption, CorruptionError, Error, InputError, Result};
pub use index::{parse_selector, MatchOp, Matcher};
pub use metadata::{Metadata, MetricMetadata, MetricType};
pub use query::ast;
pub use query::ast::Expr;
pub use query::buckets::BucketSet;
pub use query::eval::{
    instant_query, range_query, QueryError, QueryOptions, QuerySeries, QueryValue, TierChoice,
    TierReport, TierUse,
};
pub use query::parse::{parse_expr, ParseError};
pub use query::source::{Queryable, SeriesColumns, SeriesSet};
pub use query::SeriesSamples;
pub use rollup::{Buckets, ROLLUP_LABEL};
pub use segment::{ChunkRef, SampleIter, Segment, SegmentSummary, SegmentWriter, VerifyReport};
pub use series::{
    sanitize_label_name, sanitize_metric_name, Label, Sample, SeriesKey, TimeRange,
    METRIC_NAME_LABEL,
};
pub use wal::WalDamage;

/// The README's examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
