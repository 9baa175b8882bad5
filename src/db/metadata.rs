//! Storage of the metric metadata ([`Metadata`]) of a data directory in
//! the file `METADATA`: an envelope (see `envelope.rs`) of version 1 around
//! [`Metadata::encode_payload`]; docs/FORMAT.md has every byte.
//!
//! Invariants:
//! - the file is replaced whole, atomically and durably, by every
//!   [`Db::set_metadata`] that changes something; when that call returns
//!   `Ok`, the new metadata survives a crash;
//! - no `METADATA` file is no metadata (databases written before it
//!   existed); a damaged one is moved to `quarantine/` at a writable open,
//!   reported in [`crate::RecoveryReport::quarantined`], and the database
//!   opens with no metadata: samples never depend on it.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use super::dir::{self, Keep};
use super::envelope::{self, ReplaceFaults, HEADER_LEN};
use super::{Db, RecoveryReport};
use crate::error::{Error, Result};
use crate::metadata::{self, Metadata, MetricMetadata};

pub const METADATA_FILE: &str = "METADATA";

/// The metadata stored in `dir`; see the module documentation for a
/// missing or damaged file.
pub(super) fn load(dir: &Path, read_only: bool, recovery: &mut RecoveryReport) -> Result<Metadata> {
    let path = dir.join(METADATA_FILE);
    if !read_only {
        // An interrupted store; the file it was replacing is intact.
        let temp = envelope::temp_path(dir, METADATA_FILE);
        match fs::remove_file(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &temp, e)),
        }
    }
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Metadata::default()),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let decoded = envelope::open(
        &bytes,
        &path,
        metadata::MAGIC,
        "metadata file",
        1..=metadata::VERSION,
    )
    .and_then(|(_, payload)| Metadata::decode_payload(payload, HEADER_LEN as u64, &path));
    match decoded {
        Ok(metadata) => Ok(metadata),
        Err(Error::Corrupt(corruption)) => {
            let reason = format!("{corruption}; opened without metric metadata");
            dir::quarantine(dir, &path, reason, Keep::Move, read_only, recovery)?;
            Ok(Metadata::default())
        }
        Err(other) => Err(other),
    }
}

impl Db {
    /// The metric metadata (type, help, unit per family) stored by
    /// [`Db::set_metadata`], `strata import` of Prometheus text, or the
    /// `metrics` recorder's `describe_*` calls: a snapshot.
    ///
    /// ```
    /// use strata::{Db, MetricMetadata, MetricType, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let requests = MetricMetadata::new(MetricType::Counter).with_help("Requests served.");
    /// db.set_metadata([("http_requests".to_owned(), requests.clone())])?;
    /// db.close()?;
    ///
    /// let db = Db::open_read_only(dir.path())?;
    /// let metadata = db.metadata();
    /// assert_eq!(metadata.of_metric("http_requests_total"), Some(("http_requests", &requests)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn metadata(&self) -> Metadata {
        self.inner.metadata.lock().clone()
    }

    /// Sets the metadata of metric families, each entry replacing its
    /// family's whole entry; returns whether anything changed. When it
    /// changed, the `METADATA` file is rewritten (atomically, fsynced)
    /// before this returns, so metadata is for what changes rarely: types
    /// and help texts, not per-sample data.
    ///
    /// Errors: [`Error::ReadOnly`]; [`Error::Input`] for a family name that
    /// is not a valid metric name or a help text or unit over the limits
    /// ([`crate::metadata::MAX_HELP_BYTES`],
    /// [`crate::metadata::MAX_UNIT_BYTES`]), nothing set; an I/O error
    /// leaves the stored metadata as it was.
    ///
    /// ```
    /// use strata::{Db, MetricMetadata, MetricType, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// let up = MetricMetadata::new(MetricType::Gauge).with_help("1 when the target answered.");
    /// assert!(db.set_metadata([("up", up.clone())])?);
    /// assert!(!db.set_metadata([("up", up)])?, "nothing changed");
    /// assert!(db.set_metadata([("not-a-name", MetricMetadata::default())]).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_metadata<S: Into<String>>(
        &self,
        entries: impl IntoIterator<Item = (S, MetricMetadata)>,
    ) -> Result<bool> {
        if self.inner.wal.is_none() {
            return Err(Error::ReadOnly);
        }
        let entries: Vec<(String, MetricMetadata)> = entries
            .into_iter()
            .map(|(family, metadata)| (family.into(), metadata))
            .collect();
        for (family, metadata) in &entries {
            metadata.validate(family)?;
        }
        let mut stored = self.inner.metadata.lock();
        let Some(updated) = stored.updated(entries) else {
            return Ok(false);
        };
        let bytes = envelope::seal(
            metadata::MAGIC,
            metadata::VERSION,
            &updated.encode_payload(),
        );
        let faults = ReplaceFaults {
            write: "metadata.write",
            fsync: "metadata.fsync",
            rename: "metadata.rename",
        };
        envelope::replace_file(&self.inner.dir, METADATA_FILE, &bytes, &faults)?;
        *stored = updated;
        Ok(true)
    }
}
