//! Deep checks of the segments an open database reads: every chunk decoded
//! and checksummed, and every file's bytes against the manifest's pin.
//! Opening only checks the cheap parts of a pin (length, footer); `verify`
//! reads whole files.

use std::path::PathBuf;

use super::manifest::{file_crc32, SegmentMeta};
use super::Db;
use crate::error::Error;
use crate::segment::VerifyReport;

/// What [`Db::verify_segments`] found in one segment file.
#[derive(Debug)]
pub struct SegmentCheck {
    pub path: PathBuf,
    pub meta: SegmentMeta,
    /// Chunk-level damage and counts.
    pub report: VerifyReport,
    /// The file's bytes do not match the manifest's pin (whole-file crc32),
    /// or the file could not be read for the check.
    pub pin_problem: Option<String>,
}

impl SegmentCheck {
    /// True when every chunk decoded with a matching checksum and the
    /// file's bytes match the manifest's pin.
    ///
    /// ```
    /// use std::io::{Seek, SeekFrom, Write};
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.append(&SeriesKey::new("up", &[])?, 1_000, 1.0)?;
    /// db.flush()?;
    /// let check = db.verify_segments().remove(0);
    /// assert!(check.is_intact());
    /// db.close()?;
    ///
    /// // Damage the first chunk (after the 16-byte header): opening, which
    /// // checks only the file length and footer, does not notice.
    /// let mut file = std::fs::OpenOptions::new().write(true).open(&check.path)?;
    /// file.seek(SeekFrom::Start(16))?;
    /// file.write_all(&[0xff; 4])?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// assert!(!db.verify_segments()[0].is_intact());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_intact(&self) -> bool {
        self.report.damage.is_empty() && self.pin_problem.is_none()
    }
}

impl Db {
    /// Checks every segment of the current snapshot: decodes every chunk
    /// and compares the file's crc32 with the one the manifest pinned.
    ///
    /// ```
    /// use strata::{Db, Options, SeriesKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), Options::default())?;
    /// db.append(&SeriesKey::new("up", &[])?, 1_000, 1.0)?;
    /// db.flush()?;
    ///
    /// let checks = db.verify_segments();
    /// assert_eq!(checks.len(), 1);
    /// assert!(checks[0].is_intact());
    /// # Ok(())
    /// # }
    /// ```
    pub fn verify_segments(&self) -> Vec<SegmentCheck> {
        let version = self.inner.version.read().clone();
        version
            .segments
            .iter()
            .map(|live| {
                let path = live.segment.path().to_path_buf();
                let pin_problem = live.meta.pin.and_then(|pin| match file_crc32(&path) {
                    Ok((len, crc)) if len == pin.file_len && crc == pin.file_crc => None,
                    Ok((len, crc)) => Some(format!(
                        "{}: the manifest pins {} bytes with crc32 {:#010x}, the file has {len} bytes with crc32 {crc:#010x}",
                        path.display(),
                        pin.file_len,
                        pin.file_crc
                    )),
                    Err(Error::Io { source, .. }) => {
                        Some(format!("{}: cannot read for the check: {source}", path.display()))
                    }
                    Err(other) => Some(other.to_string()),
                });
                SegmentCheck {
                    report: live.segment.verify(),
                    meta: live.meta,
                    path,
                    pin_problem,
                }
            })
            .collect()
    }
}
