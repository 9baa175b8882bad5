//! Error types. Every error says what went wrong and where: the file, the
//! byte offset and, when known, the series.
//!
//! Three families, kept apart because callers react differently:
//! - [`Error::Io`]: the operating system refused (disk full, permissions);
//! - [`Error::Corrupt`]: stored bytes are wrong or missing (bit rot, a torn
//!   write, a file that is not ours); never silently accepted as data;
//! - [`Error::Input`]: the caller passed something invalid; nothing stored
//!   was touched.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::codec::CodecError;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any error strata returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Corrupt(#[from] CorruptionError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("an earlier write failed ({0}); what reached the disk is unknown, so the database refuses writes until reopened")]
    Poisoned(String),
    #[error("{} is locked by another writer{}; open it read-only, or stop that process", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("the database was opened read-only")]
    ReadOnly,
    #[error("{} has {segment_files} segment file(s) and {wal_files} WAL file(s) but no MANIFEST: that is damage, not an empty database; nothing was changed. Restore the MANIFEST from a backup, or run `strata repair {}` to rebuild it from the files present", dir.display(), dir.display())]
    MissingManifest {
        dir: PathBuf,
        segment_files: usize,
        wal_files: usize,
    },
    #[error("{}: {reason}", path.display())]
    BadDirectory { path: PathBuf, reason: String },
    #[error("the head holds about {used} bytes, over its budget of {limit} (Options::max_head_bytes); a flush to segments is under way: retry shortly, or raise the budget")]
    HeadFull { used: usize, limit: usize },
}

impl Error {
    /// An I/O error with the operation and path it concerns.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Damage found in a stored file, with its location.
#[derive(Debug, thiserror::Error)]
pub struct CorruptionError {
    pub path: PathBuf,
    /// Byte offset in the file of the structure that is damaged.
    pub offset: u64,
    /// The series the damaged bytes belong to, when known (text form).
    pub series: Option<String>,
    pub kind: Corruption,
}

impl CorruptionError {
    /// The error for damage of `kind` at byte `offset` of the file `path`,
    /// no series known.
    pub(crate) fn in_file(path: &std::path::Path, offset: u64, kind: Corruption) -> Error {
        CorruptionError {
            path: path.to_path_buf(),
            offset,
            series: None,
            kind,
        }
        .into()
    }
}

impl fmt::Display for CorruptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "corrupt file {} at offset {}",
            self.path.display(),
            self.offset
        )?;
        if let Some(series) = &self.series {
            write!(f, " (series {series})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// What is wrong with stored bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    #[error("file is {file_len} bytes, shorter than the {min_len} bytes of an empty segment (truncated?)")]
    TooShort { file_len: u64, min_len: u64 },
    #[error("bad magic {found:02x?}, expected {expected:02x?}: not a strata {what}")]
    BadMagic {
        what: &'static str,
        found: Vec<u8>,
        expected: &'static [u8],
    },
    #[error(
        "format version {found} is not supported (this build reads versions up to {supported})"
    )]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("{region} checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        region: &'static str,
        stored: u32,
        computed: u32,
    },
    #[error("{region} ends early: needs {needed} bytes, has {available}")]
    Truncated {
        region: &'static str,
        needed: u64,
        available: u64,
    },
    #[error("{0}")]
    BadLayout(String),
    #[error("chunk: {0}")]
    Chunk(#[from] CodecError),
}

/// Invalid input from the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    #[error("series has no metric name (label __name__)")]
    MissingMetricName,
    #[error("invalid metric name {0:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    BadMetricName(String),
    #[error("invalid metric metadata: {0}")]
    BadMetadata(String),
    #[error("invalid label name {0:?}: must match [a-zA-Z_][a-zA-Z0-9_]*")]
    BadLabelName(String),
    #[error("label {0:?} appears twice")]
    DuplicateLabel(String),
    #[error("series {series}: the label {label:?} is reserved for strata's rollup segments")]
    ReservedLabel { series: String, label: &'static str },
    #[error("cannot parse series {text:?}: {reason}")]
    BadSeriesText { text: String, reason: String },
    #[error("invalid regular expression {pattern:?} in matcher: {reason}")]
    BadRegex { pattern: String, reason: String },
    #[error("series {series}: no samples")]
    EmptySeries { series: String },
    #[error("series {series}: timestamp {timestamp_ms} at sample {index} is not after the previous one, {previous_ms}")]
    UnsortedSamples {
        series: String,
        index: usize,
        previous_ms: i64,
        timestamp_ms: i64,
    },
    #[error("series {series} was added twice to the same segment")]
    DuplicateSeries { series: String },
    #[error("segment would exceed a format limit: {0}")]
    FormatLimit(String),
    #[error("series {series}: sample at {timestamp_ms} is too old, the oldest accepted is {min_accepted_ms} ({reason})")]
    SampleTooOld {
        series: String,
        timestamp_ms: i64,
        min_accepted_ms: i64,
        reason: &'static str,
    },
    #[error("series limit reached: the database holds {limit} series (Options::max_series)")]
    TooManySeries { limit: usize },
    #[error("series {series}: {what} is {len}, over the limit of {limit}")]
    LimitExceeded {
        series: String,
        what: &'static str,
        len: usize,
        limit: usize,
    },
    #[error("batch of {samples} samples exceeds the {limit}-sample limit of one WAL record")]
    BatchTooLarge { samples: usize, limit: usize },
    #[error("series handle belongs to another database")]
    ForeignSeriesRef,
    #[error("invalid option: {0}")]
    BadOption(String),
}
