//! Parquet export and import (cargo feature `parquet`): hands a
//! database's samples to DuckDB, DataFusion, Spark, pyarrow, and reads
//! such a file back bit-exactly. The schema is specified in
//! docs/FORMAT.md, "Parquet export schema".
//!
//! Schema (version [`SCHEMA_VERSION`]), one row per sample:
//! - `__name__`: required UTF-8 string, dictionary-encoded;
//! - one optional UTF-8 string column per label name found in the exported
//!   series, sorted by name, dictionary-encoded, null where a series lacks
//!   the label (strata drops empty label values, so null and "" mean the
//!   same). A label whose name is `timestamp` or `value`, or starts with
//!   [`ESCAPED_LABEL_PREFIX`], is stored as that prefix plus its name, so
//!   the mapping from column names back to label names is one-to-one;
//! - `timestamp`: required INT64, TIMESTAMP(MILLIS, UTC),
//!   DELTA_BINARY_PACKED;
//! - `value`: required DOUBLE, BYTE_STREAM_SPLIT (every bit pattern kept,
//!   NaN payloads included).
//!
//! Invariants of a file [`export`] writes: every column chunk is zstd
//! compressed; each row group holds samples of one time window of
//! [`ExportOptions::row_group_duration_ms`] (aligned to the Unix epoch, like
//! the database's partitions), and windows follow each other in time order;
//! within a window rows are sorted by `__name__`, then the label columns in
//! column order (null first), then `timestamp`; a window with more than
//! [`ExportOptions::max_row_group_rows`] rows is split between series (one
//! series' samples of a window never straddle a row group unless that
//! series alone exceeds the limit). The key-value metadata holds
//! [`METADATA_STRATA_VERSION`] and [`METADATA_SCHEMA_VERSION`].
//!
//! [`import`] accepts any file with that shape (extra row-group layouts,
//! encodings and compressions are the reader's business), and refuses
//! other column types with an error naming the column.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;

use ::parquet::basic::{
    Compression, Encoding, LogicalType, Repetition, TimeUnit, Type as PhysicalType, ZstdLevel,
};
use ::parquet::column::reader::ColumnReader;
use ::parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use ::parquet::file::metadata::KeyValue;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::reader::{ChunkReader, FileReader, RowGroupReader};
use ::parquet::file::serialized_reader::SerializedFileReader;
use ::parquet::file::writer::{
    SerializedColumnWriter, SerializedFileWriter, SerializedRowGroupWriter,
};
use ::parquet::schema::types::{ColumnDescriptor, ColumnPath, Type as SchemaType};

use crate::error::InputError;
use crate::ingest::{parse_metadata_text, write_families_metadata};
use crate::metadata::MetricMetadata;
use crate::query::source::{Queryable, SeriesColumns};
use crate::series::{SeriesKey, TimeRange, METRIC_NAME_LABEL};
use crate::{Db, Matcher, SeriesRef};

/// The version of the column layout described in the module doc.
pub const SCHEMA_VERSION: &str = "1";
/// Key-value metadata key holding the strata version that wrote the file.
pub const METADATA_STRATA_VERSION: &str = "strata.version";
/// Key-value metadata key holding [`SCHEMA_VERSION`].
pub const METADATA_SCHEMA_VERSION: &str = "strata.parquet_schema_version";
/// Key-value metadata key holding the metric metadata of the exported
/// series' families as `# HELP`/`# TYPE`/`# UNIT` lines
/// ([`crate::ingest::write_metadata`]); absent when there is none.
pub const METADATA_METRIC_METADATA: &str = "strata.metric_metadata";
/// Name of the sample timestamp column.
pub const TIMESTAMP_COLUMN: &str = "timestamp";
/// Name of the sample value column.
pub const VALUE_COLUMN: &str = "value";
/// Prefix of a label column whose plain name would collide with a fixed
/// column or look escaped itself.
pub const ESCAPED_LABEL_PREFIX: &str = "__label_";

/// Rows decoded per column per step of an import.
const IMPORT_BATCH_ROWS: usize = 65_536;
/// An import flushes the database to segments each time it has appended
/// this many samples since the last flush, so the head stays bounded.
const IMPORT_FLUSH_EVERY_SAMPLES: u64 = 20_000_000;
/// Rejected samples an import describes (it counts all of them).
const IMPORT_SHOW_REJECTIONS: usize = 10;

/// What can go wrong exporting to or importing from Parquet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParquetError {
    /// The Parquet library failed (I/O on the file, or bytes it cannot
    /// decode).
    #[error("parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    /// Reading or writing the database failed.
    #[error(transparent)]
    Db(#[from] crate::Error),
    /// The file's schema is not the one this module reads.
    #[error("parquet schema: column {column:?}: {reason}")]
    Schema { column: String, reason: String },
    /// A key-value metadata entry strata reads is malformed.
    #[error("parquet key-value metadata {key:?}: {reason}")]
    KeyValue { key: &'static str, reason: String },
    /// The file has no column with this required name.
    #[error("parquet schema: no column {0:?}")]
    MissingColumn(&'static str),
    /// A row's series cannot be a strata series key.
    #[error("row group {row_group}, row {row}: {reason}")]
    BadRow {
        row_group: usize,
        row: u64,
        reason: String,
    },
    /// The columns of a row group disagree on its length.
    #[error(
        "row group {row_group}: column {column:?} ended after {got} rows, expected {expected}"
    )]
    Ragged {
        row_group: usize,
        column: String,
        got: usize,
        expected: usize,
    },
    /// The Parquet library panicked decoding the file: it does on some
    /// damaged files (parquet 60.1: in footer metadata, bit unpacking,
    /// level and BYTE_STREAM_SPLIT decoding). The file is not read further.
    #[error("parquet: the file is damaged (the decoder failed: {0})")]
    DecoderPanic(String),
    /// Export options out of range.
    #[error("parquet export: {0}")]
    Options(String),
}

/// How [`export`] lays out row groups.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Width of the time window one row group covers (epoch-aligned). The
    /// default, 2 h, matches the database's default partitions.
    pub row_group_duration_ms: i64,
    /// A window with more rows is split into several row groups.
    pub max_row_group_rows: usize,
    /// zstd level, 1 to 22.
    pub zstd_level: i32,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            row_group_duration_ms: 2 * 3600 * 1000,
            max_row_group_rows: 1 << 20,
            zstd_level: 3,
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: u64,
    pub series: usize,
    pub row_groups: usize,
    /// Label column names, in file order (after `__name__`).
    pub label_columns: Vec<String>,
}

/// What an import read and kept; rows the database rejected are counted
/// here, not returned as an error.
#[must_use = "the summary counts the rows that were rejected"]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub rows: u64,
    /// Samples the database accepted.
    pub accepted: u64,
    /// Samples the database rejected (see [`crate::Db::append_batch`]).
    pub rejected: u64,
    /// The first few rejections: `row group R, row N: reason`.
    pub rejections_shown: Vec<String>,
    /// Metric families whose metadata the file held, stored.
    pub metadata_families: usize,
}

/// The column name of label `name`.
pub fn label_column_name(name: &str) -> String {
    if name == TIMESTAMP_COLUMN || name == VALUE_COLUMN || name.starts_with(ESCAPED_LABEL_PREFIX) {
        format!("{ESCAPED_LABEL_PREFIX}{name}")
    } else {
        name.to_owned()
    }
}

/// The label name of column `column` (the inverse of [`label_column_name`]).
pub fn label_name_of_column(column: &str) -> &str {
    column.strip_prefix(ESCAPED_LABEL_PREFIX).unwrap_or(column)
}

/// Writes every sample of the series matching `matchers` inside `range`
/// to `out` as one Parquet file; see the module doc for the layout. Memory
/// holds the keys of the selected series and one row group.
pub fn export<W: Write + Send>(
    source: &dyn Queryable,
    matchers: &[Matcher],
    range: TimeRange,
    options: &ExportOptions,
    out: W,
) -> Result<ExportSummary, ParquetError> {
    if options.row_group_duration_ms <= 0 {
        return Err(ParquetError::Options(format!(
            "row_group_duration_ms must be > 0, is {}",
            options.row_group_duration_ms
        )));
    }
    if options.max_row_group_rows == 0 {
        return Err(ParquetError::Options(
            "max_row_group_rows must be > 0".to_owned(),
        ));
    }
    let zstd = ZstdLevel::try_new(options.zstd_level)
        .map_err(|e| ParquetError::Options(format!("zstd_level: {e}")))?;

    // Pass 1: the label names (the schema) and the windows holding data.
    let set = source.select_series(matchers, range)?;
    let mut label_names = BTreeSet::new();
    let mut windows = BTreeSet::new();
    let mut columns = SeriesColumns::default();
    let mut series = 0;
    let mut metrics = BTreeSet::new();
    for i in 0..set.len() {
        set.read(i, &mut columns)?;
        if columns.is_empty() {
            continue;
        }
        series += 1;
        metrics.insert(set.key(i).metric().to_owned());
        for label in set.key(i).labels() {
            if &*label.name != METRIC_NAME_LABEL {
                label_names.insert(Arc::clone(&label.name));
            }
        }
        let mut rest = &columns.timestamps_ms[..];
        while let Some(&first) = rest.first() {
            let window = Window::containing(first, options.row_group_duration_ms);
            windows.insert(window.start);
            rest = &rest[rest.partition_point(|&t| t <= window.last)..];
        }
    }
    drop(set);
    let mut metric_metadata = String::new();
    write_families_metadata(
        &mut metric_metadata,
        &source.metadata(),
        metrics.iter().map(String::as_str),
    );
    let label_names: Vec<Arc<str>> = label_names.into_iter().collect();
    let label_columns: Vec<String> = label_names.iter().map(|n| label_column_name(n)).collect();

    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_column_dictionary_enabled(ColumnPath::from(TIMESTAMP_COLUMN), false)
        .set_column_encoding(
            ColumnPath::from(TIMESTAMP_COLUMN),
            Encoding::DELTA_BINARY_PACKED,
        )
        .set_column_dictionary_enabled(ColumnPath::from(VALUE_COLUMN), false)
        .set_column_encoding(ColumnPath::from(VALUE_COLUMN), Encoding::BYTE_STREAM_SPLIT)
        .set_key_value_metadata(Some(
            [
                (
                    METADATA_STRATA_VERSION,
                    env!("CARGO_PKG_VERSION").to_owned(),
                ),
                (METADATA_SCHEMA_VERSION, SCHEMA_VERSION.to_owned()),
            ]
            .into_iter()
            .chain(
                (!metric_metadata.is_empty())
                    .then_some((METADATA_METRIC_METADATA, metric_metadata)),
            )
            .map(|(key, value)| KeyValue::new(key.to_owned(), value))
            .collect(),
        ))
        .build();
    let schema = Arc::new(schema(&label_columns)?);
    let mut writer = SerializedFileWriter::new(out, schema, Arc::new(properties))?;

    // Pass 2: window by window, series in row order.
    let mut buffer = RowGroupBuffer::new();
    let string_columns = 1 + label_names.len();
    let mut summary = ExportSummary {
        rows: 0,
        series,
        row_groups: 0,
        label_columns,
    };
    for start in windows {
        let window = Window::containing(start, options.row_group_duration_ms);
        let clipped = TimeRange::new(
            window.start.max(range.min_time_ms),
            window.last.min(range.max_time_ms),
        );
        let set = source.select_series(matchers, clipped)?;
        let mut order: Vec<usize> = (0..set.len()).collect();
        order.sort_by(|&a, &b| row_order(set.key(a), set.key(b), &label_names));
        for i in order {
            set.read(i, &mut columns)?;
            buffer.push_series(set.key(i), &label_names, &columns);
            if buffer.rows() >= options.max_row_group_rows {
                summary.rows += buffer.write(&mut writer, string_columns)?;
                summary.row_groups += 1;
            }
        }
        if buffer.rows() > 0 {
            summary.rows += buffer.write(&mut writer, string_columns)?;
            summary.row_groups += 1;
        }
    }
    writer.close()?;
    Ok(summary)
}

/// One epoch-aligned time window, both ends included, clamped to i64.
struct Window {
    start: i64,
    last: i64,
}

impl Window {
    fn containing(timestamp_ms: i64, width_ms: i64) -> Window {
        let start = i128::from(timestamp_ms) - i128::from(timestamp_ms.rem_euclid(width_ms));
        let last = start + i128::from(width_ms) - 1;
        let clamp = |t: i128| i64::try_from(t).unwrap_or(if t < 0 { i64::MIN } else { i64::MAX });
        Window {
            start: clamp(start),
            last: clamp(last),
        }
    }
}

/// The file's row order of two series: metric name, then each label
/// column in column order with an absent label first.
fn row_order(a: &SeriesKey, b: &SeriesKey, label_names: &[Arc<str>]) -> Ordering {
    a.metric().cmp(b.metric()).then_with(|| {
        label_names
            .iter()
            .map(|name| a.get(name).cmp(&b.get(name)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    })
}

fn schema(label_columns: &[String]) -> Result<SchemaType, ParquetError> {
    let string = |name: &str, repetition| {
        SchemaType::primitive_type_builder(name, PhysicalType::BYTE_ARRAY)
            .with_repetition(repetition)
            .with_logical_type(Some(LogicalType::String))
            .build()
    };
    let mut fields = vec![Arc::new(string(METRIC_NAME_LABEL, Repetition::REQUIRED)?)];
    for name in label_columns {
        fields.push(Arc::new(string(name, Repetition::OPTIONAL)?));
    }
    fields.push(Arc::new(
        SchemaType::primitive_type_builder(TIMESTAMP_COLUMN, PhysicalType::INT64)
            .with_repetition(Repetition::REQUIRED)
            .with_logical_type(Some(LogicalType::timestamp(true, TimeUnit::MILLIS)))
            .build()?,
    ));
    fields.push(Arc::new(
        SchemaType::primitive_type_builder(VALUE_COLUMN, PhysicalType::DOUBLE)
            .with_repetition(Repetition::REQUIRED)
            .build()?,
    ));
    Ok(SchemaType::group_type_builder("strata")
        .with_fields(fields)
        .build()?)
}

/// One row group being assembled: the samples, and each series' string
/// columns once per run of rows (expanded to rows only while writing, a
/// slice at a time, so memory is 16 bytes per row plus the runs).
struct RowGroupBuffer {
    /// Per series: its rows, `__name__`, then each label column's value.
    runs: Vec<(usize, Vec<Option<ByteArray>>)>,
    timestamps: Vec<i64>,
    values: Vec<f64>,
}

/// Rows of a string column expanded per `write_batch` call.
const WRITE_SLICE_ROWS: usize = 8192;

impl RowGroupBuffer {
    fn new() -> Self {
        RowGroupBuffer {
            runs: Vec::new(),
            timestamps: Vec::new(),
            values: Vec::new(),
        }
    }

    fn rows(&self) -> usize {
        self.timestamps.len()
    }

    fn push_series(&mut self, key: &SeriesKey, label_names: &[Arc<str>], columns: &SeriesColumns) {
        if columns.is_empty() {
            return;
        }
        let strings = std::iter::once(Some(key.metric()))
            .chain(label_names.iter().map(|name| key.get(name)))
            .map(|value| value.map(ByteArray::from))
            .collect();
        self.runs.push((columns.len(), strings));
        self.timestamps.extend_from_slice(&columns.timestamps_ms);
        self.values.extend_from_slice(&columns.values);
    }

    /// Writes the buffered rows as one row group and clears the buffer;
    /// returns the number of rows written.
    fn write<W: Write + Send>(
        &mut self,
        writer: &mut SerializedFileWriter<W>,
        string_columns: usize,
    ) -> Result<u64, ParquetError> {
        let mut group = writer.next_row_group()?;
        let mut values = Vec::with_capacity(WRITE_SLICE_ROWS);
        let mut levels = Vec::with_capacity(WRITE_SLICE_ROWS);
        for column in 0..string_columns {
            write_column(&mut group, |c| {
                let c = c.typed::<ByteArrayType>();
                // `__name__` is required: no definition levels.
                let required = column == 0;
                for (rows, strings) in &self.runs {
                    let value = strings.get(column).cloned().flatten();
                    let mut left = *rows;
                    while left > 0 {
                        let n = left.min(WRITE_SLICE_ROWS);
                        values.clear();
                        levels.clear();
                        if let Some(value) = &value {
                            values.extend(std::iter::repeat_n(value.clone(), n));
                        }
                        levels.extend(std::iter::repeat_n(i16::from(value.is_some()), n));
                        c.write_batch(&values, (!required).then_some(&levels[..]), None)?;
                        left -= n;
                    }
                }
                Ok(())
            })?;
        }
        write_column(&mut group, |c| {
            c.typed::<Int64Type>()
                .write_batch(&self.timestamps, None, None)
                .map(drop)
        })?;
        write_column(&mut group, |c| {
            c.typed::<DoubleType>()
                .write_batch(&self.values, None, None)
                .map(drop)
        })?;
        group.close()?;
        let rows = self.rows() as u64;
        self.runs.clear();
        self.timestamps.clear();
        self.values.clear();
        Ok(rows)
    }
}

/// Writes the row group's next column with `write`. The schema was built
/// from the same column list the buffer holds, so running out of columns
/// is a bug, reported as an error rather than a panic.
fn write_column<W: Write + Send>(
    group: &mut SerializedRowGroupWriter<'_, W>,
    write: impl FnOnce(&mut SerializedColumnWriter<'_>) -> ::parquet::errors::Result<()>,
) -> Result<(), ParquetError> {
    let mut column = group.next_column()?.ok_or_else(|| ParquetError::Schema {
        column: String::new(),
        reason: "the row group has fewer columns than the schema".to_owned(),
    })?;
    write(&mut column)?;
    column.close()?;
    Ok(())
}

/// Reads a Parquet file of the shape [`export`] writes into `db`: each row
/// becomes one sample of the series named by `__name__` and the label
/// columns. Rows of one series may come in any order and spread over row
/// groups; what the database rejects (see [`Db::append_batch`]) is counted
/// and the rest kept. A row whose series is not a valid strata key (bad
/// metric or label name, invalid UTF-8) stops the import with an error
/// naming it; rows before it stay imported. Flushes the database every
/// 20 M samples, so the head stays bounded; does not flush at the end.
pub fn import<R: ChunkReader + 'static>(reader: R, db: &Db) -> Result<ImportSummary, ParquetError> {
    let file = contain_panics(|| Ok(SerializedFileReader::new(reader)?))?;
    let layout = Layout::of(file.metadata().file_metadata().schema_descr().columns())?;
    let metric_metadata = metric_metadata_of(file.metadata().file_metadata().key_value_metadata())?;
    let mut summary = ImportSummary::default();
    let mut since_flush = 0u64;
    let mut batch = ImportBatch::default();
    for row_group in 0..file.num_row_groups() {
        let group = contain_panics(|| Ok(file.get_row_group(row_group)?))?;
        let mut readers = contain_panics(|| GroupReaders::open(&*group, &layout))?;
        let mut row = 0u64;
        loop {
            let rows = contain_panics(|| readers.read(row_group, IMPORT_BATCH_ROWS, &mut batch))?;
            if rows == 0 {
                break;
            }
            let accepted = batch.append(db, &layout, row_group, row, &mut summary)?;
            summary.rows += rows as u64;
            row += rows as u64;
            since_flush += accepted;
            if since_flush >= IMPORT_FLUSH_EVERY_SAMPLES {
                db.flush()?;
                since_flush = 0;
            }
        }
    }
    summary.metadata_families = metric_metadata.len();
    db.set_metadata(metric_metadata)?;
    Ok(summary)
}

/// The metric metadata a file's [`METADATA_METRIC_METADATA`] entry holds.
fn metric_metadata_of(
    key_values: Option<&Vec<KeyValue>>,
) -> Result<Vec<(String, MetricMetadata)>, ParquetError> {
    let text = key_values
        .into_iter()
        .flatten()
        .find(|kv| kv.key == METADATA_METRIC_METADATA)
        .and_then(|kv| kv.value.as_deref())
        .unwrap_or_default();
    parse_metadata_text(text).map_err(|reason| ParquetError::KeyValue {
        key: METADATA_METRIC_METADATA,
        reason,
    })
}

/// Runs `decode`, a call into the Parquet library's reader, turning a
/// panic into [`ParquetError::DecoderPanic`]: that library panics on some
/// damaged input instead of returning an error, and bad input must not
/// take the process down. Sound because `decode` only touches reader
/// state, which is dropped unused after a panic; the database is written
/// outside.
fn contain_panics<T>(decode: impl FnOnce() -> Result<T, ParquetError>) -> Result<T, ParquetError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic without a message".to_owned());
        Err(ParquetError::DecoderPanic(message))
    })
}

/// Where each column of an importable file is, by leaf index.
struct Layout {
    name: usize,
    /// Leaf index and label name of each label column.
    labels: Vec<(usize, String)>,
    timestamp: usize,
    value: usize,
}

impl Layout {
    fn of(columns: &[Arc<ColumnDescriptor>]) -> Result<Layout, ParquetError> {
        let mut name = None;
        let mut timestamp = None;
        let mut value = None;
        let mut labels = Vec::new();
        for (index, column) in columns.iter().enumerate() {
            let path = column.path().string();
            let refuse = |reason: &str| ParquetError::Schema {
                column: path.clone(),
                reason: reason.to_owned(),
            };
            if column.path().parts().len() != 1 || column.max_rep_level() != 0 {
                return Err(refuse(
                    "nested or repeated columns are not part of the schema",
                ));
            }
            let physical = column.physical_type();
            match column.name() {
                METRIC_NAME_LABEL => {
                    if physical != PhysicalType::BYTE_ARRAY || column.max_def_level() != 0 {
                        return Err(refuse("must be a required string (BYTE_ARRAY)"));
                    }
                    name = Some(index);
                }
                TIMESTAMP_COLUMN => {
                    let millis = matches!(
                        column.logical_type_ref(),
                        Some(LogicalType::Timestamp(t)) if t.unit == TimeUnit::MILLIS
                    );
                    if physical != PhysicalType::INT64 || !millis || column.max_def_level() != 0 {
                        return Err(refuse("must be a required INT64 TIMESTAMP(MILLIS)"));
                    }
                    timestamp = Some(index);
                }
                VALUE_COLUMN => {
                    if physical != PhysicalType::DOUBLE || column.max_def_level() != 0 {
                        return Err(refuse("must be a required DOUBLE"));
                    }
                    value = Some(index);
                }
                other => {
                    if physical != PhysicalType::BYTE_ARRAY {
                        return Err(refuse("a label column must be a string (BYTE_ARRAY)"));
                    }
                    labels.push((index, label_name_of_column(other).to_owned()));
                }
            }
        }
        Ok(Layout {
            name: name.ok_or(ParquetError::MissingColumn(METRIC_NAME_LABEL))?,
            labels,
            timestamp: timestamp.ok_or(ParquetError::MissingColumn(TIMESTAMP_COLUMN))?,
            value: value.ok_or(ParquetError::MissingColumn(VALUE_COLUMN))?,
        })
    }
}

/// One step of decoded rows: the present values of each column and, for
/// label columns, a definition level per row (1 = present).
#[derive(Default)]
struct ImportBatch {
    names: Vec<ByteArray>,
    labels: Vec<(Vec<ByteArray>, Vec<i16>)>,
    timestamps: Vec<i64>,
    values: Vec<f64>,
    /// The previous row's series, carried across batches: rows are sorted
    /// by series, so most rows repeat it and cost a comparison.
    previous: Option<(Vec<Option<ByteArray>>, SeriesRef)>,
    row_series: Vec<Option<ByteArray>>,
    pending: Vec<(SeriesRef, i64, f64)>,
    pending_rows: Vec<u64>,
}

impl ImportBatch {
    /// Appends the decoded rows (`first_row` is the first one's index in
    /// its row group); returns the number of samples accepted.
    fn append(
        &mut self,
        db: &Db,
        layout: &Layout,
        row_group: usize,
        first_row: u64,
        summary: &mut ImportSummary,
    ) -> Result<u64, ParquetError> {
        let mut cursors = vec![0usize; self.labels.len()];
        self.pending.clear();
        self.pending_rows.clear();
        let rows = self.names.iter().zip(&self.timestamps).zip(&self.values);
        for (i, ((name, &timestamp), &value)) in rows.enumerate() {
            self.row_series.clear();
            self.row_series.push(Some(name.clone()));
            for ((values, levels), cursor) in self.labels.iter().zip(&mut cursors) {
                if levels.get(i).copied().unwrap_or(1) == 1 {
                    self.row_series.push(values.get(*cursor).cloned());
                    *cursor += 1;
                } else {
                    self.row_series.push(None);
                }
            }
            let series = match &self.previous {
                Some((previous, series)) if *previous == self.row_series => series.clone(),
                _ => {
                    let row = first_row + i as u64;
                    let key = series_key(&self.row_series, layout).map_err(|reason| {
                        ParquetError::BadRow {
                            row_group,
                            row,
                            reason,
                        }
                    })?;
                    let series = db.series(&key)?;
                    self.previous = Some((self.row_series.clone(), series.clone()));
                    series
                }
            };
            self.pending.push((series, timestamp, value));
            self.pending_rows.push(first_row + i as u64);
        }
        let batch: Vec<(&SeriesRef, i64, f64)> =
            self.pending.iter().map(|(s, t, v)| (s, *t, *v)).collect();
        let outcome = db.append_batch(&batch)?;
        summary.accepted += outcome.accepted as u64;
        summary.rejected += outcome.rejected.len() as u64;
        for (index, error) in outcome.rejected {
            if summary.rejections_shown.len() < IMPORT_SHOW_REJECTIONS {
                let row = self.pending_rows.get(index).copied().unwrap_or(first_row);
                summary
                    .rejections_shown
                    .push(format!("row group {row_group}, row {row}: {error}"));
            }
        }
        Ok(outcome.accepted as u64)
    }
}

/// The series key of one row: `__name__` first, then the label columns in
/// layout order.
fn series_key(row: &[Option<ByteArray>], layout: &Layout) -> Result<SeriesKey, String> {
    fn text(value: &ByteArray) -> Result<&str, String> {
        std::str::from_utf8(value.data()).map_err(|e| format!("not valid UTF-8: {e}"))
    }
    let metric = match row.first() {
        Some(Some(name)) => text(name)?,
        _ => return Err("no metric name".to_owned()),
    };
    let mut labels = Vec::with_capacity(layout.labels.len());
    for ((_, name), value) in layout.labels.iter().zip(&row[1..]) {
        if let Some(value) = value {
            labels.push((name.as_str(), text(value)?));
        }
    }
    SeriesKey::new(metric, &labels).map_err(|e: InputError| e.to_string())
}

/// Column readers of one row group, read in lockstep.
struct GroupReaders {
    name: ColumnReader,
    labels: Vec<(String, ColumnReader)>,
    timestamp: ColumnReader,
    value: ColumnReader,
}

impl GroupReaders {
    fn open(group: &dyn RowGroupReader, layout: &Layout) -> Result<GroupReaders, ParquetError> {
        Ok(GroupReaders {
            name: group.get_column_reader(layout.name)?,
            labels: layout
                .labels
                .iter()
                .map(|(index, name)| Ok((name.clone(), group.get_column_reader(*index)?)))
                .collect::<Result<_, ParquetError>>()?,
            timestamp: group.get_column_reader(layout.timestamp)?,
            value: group.get_column_reader(layout.value)?,
        })
    }

    /// Decodes up to `max` rows into `batch`; returns how many (0 at the
    /// end of the row group). Every column must yield the same count.
    fn read(
        &mut self,
        row_group: usize,
        max: usize,
        batch: &mut ImportBatch,
    ) -> Result<usize, ParquetError> {
        batch.names.clear();
        batch.timestamps.clear();
        batch.values.clear();
        batch
            .labels
            .resize_with(self.labels.len(), Default::default);
        let rows = read_strings(&mut self.name, max, &mut batch.names, None)?;
        let ragged = |column: &str, got: usize| ParquetError::Ragged {
            row_group,
            column: column.to_owned(),
            got,
            expected: rows,
        };
        for ((name, reader), (values, levels)) in self.labels.iter_mut().zip(&mut batch.labels) {
            values.clear();
            levels.clear();
            let got = read_strings(reader, max, values, Some(levels))?;
            if got != rows {
                return Err(ragged(name, got));
            }
        }
        let got = match &mut self.timestamp {
            ColumnReader::Int64ColumnReader(r) => {
                r.read_records(max, None, None, &mut batch.timestamps)?.0
            }
            _ => return Err(ragged(TIMESTAMP_COLUMN, 0)),
        };
        if got != rows {
            return Err(ragged(TIMESTAMP_COLUMN, got));
        }
        let got = match &mut self.value {
            ColumnReader::DoubleColumnReader(r) => {
                r.read_records(max, None, None, &mut batch.values)?.0
            }
            _ => return Err(ragged(VALUE_COLUMN, 0)),
        };
        if got != rows {
            return Err(ragged(VALUE_COLUMN, got));
        }
        Ok(rows)
    }
}

/// Reads up to `max` records of a string column; `levels` receives the
/// definition levels of an optional column.
fn read_strings(
    reader: &mut ColumnReader,
    max: usize,
    values: &mut Vec<ByteArray>,
    levels: Option<&mut Vec<i16>>,
) -> Result<usize, ParquetError> {
    match reader {
        ColumnReader::ByteArrayColumnReader(r) => Ok(r.read_records(max, levels, None, values)?.0),
        _ => Err(ParquetError::Schema {
            column: String::new(),
            reason: "a string column's reader is not a BYTE_ARRAY reader".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_column_names_map_back_one_to_one() {
        for (label, column) in [
            ("job", "job"),
            ("timestamp", "__label_timestamp"),
            ("value", "__label_value"),
            ("__label_x", "__label___label_x"),
            ("__label_", "__label___label_"),
            ("__labelx", "__labelx"),
        ] {
            assert_eq!(label_column_name(label), column);
            assert_eq!(label_name_of_column(column), label);
        }
    }

    #[test]
    fn windows_are_epoch_aligned_and_clamped_at_the_i64_ends() {
        let w = Window::containing(7_200_000, 7_200_000);
        assert_eq!((w.start, w.last), (7_200_000, 14_399_999));
        let w = Window::containing(-1, 7_200_000);
        assert_eq!((w.start, w.last), (-7_200_000, -1));
        // i64::MIN = -1281023894008 * 7200000 + 2824192: its window starts
        // 2824192 ms below i64::MIN (clamped) and ends 7199999 ms after
        // its start.
        let w = Window::containing(i64::MIN, 7_200_000);
        assert_eq!((w.start, w.last), (i64::MIN, -9_223_372_036_850_400_001));
        assert_eq!(w.last - i64::MIN, 7_199_999 - 2_824_192);
        // i64::MAX = 1281023894007 * 7200000 + 4375807: the window's end
        // lies above i64::MAX (clamped).
        let w = Window::containing(i64::MAX, 7_200_000);
        assert_eq!((w.start, w.last), (9_223_372_036_850_400_000, i64::MAX));
    }
}
