//! strata: an embedded time-series storage engine.
//!
//! Samples (`i64` Unix-millisecond timestamp, `f64` value) of series
//! (metric name + labels) are compressed Gorilla-style into chunks and
//! stored in immutable, checksummed segment files ([`segment`]) that are
//! read through mmap.
//!
//! The public API: [`Db`] with its [`Options`], series keys
//! ([`SeriesKey`], [`SeriesRef`]), queries ([`Db::select`],
//! [`instant_query`], [`range_query`]), the offline segment reader and
//! writer ([`Segment`], [`SegmentWriter`]), [`ingest`] parsers, and behind
//! cargo features the `metrics` recorder and Parquet export/import.
//! The modules `codec`, `wal`, `fault` and `workload` and
//! `segment::format` are hidden from these docs: they are internals,
//! public only for the `strata` binary, the fuzz targets and the codec
//! benchmark, and carry no compatibility promise.
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

#[doc(hidden)]
pub mod codec;
pub mod compaction;
mod db;
pub mod error;
#[doc(hidden)]
pub mod fault;
mod head;
pub mod index;
pub mod ingest;
pub mod metadata;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod query;
#[cfg(feature = "metrics-recorder")]
pub mod recorder;
pub mod rollup;
pub mod segment;
pub mod series;
#[doc(hidden)]
pub mod wal;
#[doc(hidden)]
pub mod workload;

pub use compaction::policy::{Clock, RetentionOverride, RetentionPolicy, TierPolicy};
pub use compaction::CompactionReport;
pub use db::manifest::{Manifest, SegmentMeta, SegmentPin, TierMeta};
pub use db::{
    BatchOutcome, Db, DbStats, FlushReport, Options, Quarantined, RecoveryReport, RepairReport,
    SegmentCheck, SeriesRef, SyncMode, HEAD_BYTES_PER_SERIES, MAX_BATCH_SAMPLES,
};
pub use error::{Corruption, CorruptionError, Error, InputError, Result};
pub use index::{parse_selector, MatchOp, Matcher};
pub use metadata::{Metadata, MetricMetadata, MetricType};
pub use query::ast::Expr;
pub use query::buckets::BucketSet;
pub use query::eval::{
    instant_query, range_query, QueryError, QueryOptions, QuerySeries, QueryValue, TierChoice,
    TierReport, TierUse,
};
pub use query::parse::{parse_expr, ParseError};
pub use query::source::{Queryable, SeriesColumns, SeriesSet};
pub use query::SeriesSamples;
pub use segment::{Segment, SegmentSummary, SegmentWriter};
pub use series::{Label, Sample, SeriesKey, TimeRange};

/// The README's examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
