//! What the query and discovery commands read: a data directory, opened
//! read-only (a snapshot taken at open, safe beside a running writer), or
//! a single segment file, read into memory (a file truncated under the
//! tool cannot fault it).

use std::path::Path;

use strata::{Db, Error, Queryable, Segment, SeriesColumns, TimeRange};

/// An opened data directory or segment file.
pub enum Source {
    Db(Db),
    /// Boxed: a segment's in-memory index is much larger than a `Db` handle.
    Segment(Box<Segment>),
}

impl Source {
    /// Opens `path`: a directory as a read-only database, anything else as
    /// a segment file.
    pub fn open(path: &Path) -> Result<Source, Error> {
        let metadata = std::fs::metadata(path).map_err(|e| Error::io("open", path, e))?;
        if metadata.is_dir() {
            Ok(Source::Db(Db::open_read_only(path)?))
        } else {
            Ok(Source::Segment(Box::new(Segment::open_in_memory(path)?)))
        }
    }

    pub fn queryable(&self) -> &dyn Queryable {
        match self {
            Source::Db(db) => db,
            Source::Segment(segment) => segment.as_ref(),
        }
    }

    /// The timestamp of the newest sample, `None` when there is no data.
    /// For a database: the newest segment's bound from the manifest, then
    /// the head's samples above it (the head is bounded by its memory
    /// budget, so this reads little).
    pub fn newest_sample_ms(&self) -> Result<Option<i64>, Error> {
        match self {
            Source::Segment(segment) => Ok((0..segment.series_count())
                .filter_map(|id| u32::try_from(id).ok())
                .flat_map(|id| segment.chunk_refs(id).iter().map(|c| c.max_time_ms))
                .max()),
            Source::Db(db) => {
                let in_segments = strata::Manifest::load(db.dir())?
                    .and_then(|m| m.segments.iter().map(|s| s.max_time_ms).max());
                let above = in_segments.map_or(i64::MIN, |t| t.saturating_add(1));
                // No matchers: every series.
                let set = db.select_series(&[], TimeRange::new(above, i64::MAX))?;
                let mut columns = SeriesColumns::default();
                let mut newest = in_segments;
                for i in 0..set.len() {
                    set.read(i, &mut columns)?;
                    newest = newest.max(columns.timestamps_ms.last().copied());
                }
                Ok(newest)
            }
        }
    }
}
