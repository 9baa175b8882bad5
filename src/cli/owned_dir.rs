//! Directories the tool creates for its own data and may delete again: the
//! `demo` database (replaced by the next run) and the databases of `bench
//! write --matrix`.
//!
//! Rule: strata never deletes a directory it did not create. Creating one
//! writes a marker file into it; replacing or removing it requires the
//! marker, no entry but those a strata database holds, and no writer
//! holding its lock. Anything else is refused with an error that says how
//! to go on (another directory, or removing it by hand). Replacing keeps a
//! retention policy file (`strata.toml`): it is the user's, not data.

use std::fs::{self, File, TryLockError};
use std::io::{self, Read};
use std::path::Path;

use strata::Error;

/// The marker file; its text names the command that created the directory.
pub const MARKER: &str = ".strata-owned";

/// What a strata database directory holds (see `db/mod.rs`), besides the
/// marker.
const DATABASE_ENTRIES: [&str; 13] = [
    "LOCK",
    strata::POLICY_FILE,
    "MANIFEST",
    "MANIFEST.tmp",
    "METADATA",
    "METADATA.tmp",
    "COMPACTION",
    "COMPACTION.tmp",
    "FORWARD",
    "FORWARD.tmp",
    "wal",
    "segments",
    "quarantine",
];

/// Makes `dir` ready for a new database of `command`: creates it (with its
/// marker) if missing, marks it if empty, empties it if it is one `command`
/// created earlier. Returns whether earlier data was removed.
pub fn prepare(dir: &Path, command: &str) -> Result<bool, Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
            mark(dir, command)?;
            return Ok(false);
        }
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        names.push(entry.file_name());
    }
    if names.is_empty() {
        mark(dir, command)?;
        return Ok(false);
    }
    let _lock = check_owned(dir, command)?;
    // The retention policy file is the user's, not data: it stays.
    for name in names
        .iter()
        .filter(|name| *name != MARKER && *name != strata::POLICY_FILE)
    {
        let path = dir.join(name);
        // A symbolic link is removed, never followed.
        let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        let removed = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(|e| Error::io("remove", &path, e))?;
    }
    Ok(true)
}

/// Creates `dir`, which must not exist, with its marker.
pub fn create_new(dir: &Path, command: &str) -> Result<(), Error> {
    fs::create_dir(dir).map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::AlreadyExists {
            io::Error::other(format!(
                "it already exists and {command} never reuses a directory: pick another \
                 --dir or remove it yourself"
            ))
        } else {
            e
        };
        Error::io("create directory", dir, hint)
    })?;
    mark(dir, command)
}

/// Removes `dir`, which [`create_new`] or [`prepare`] made for `command`.
pub fn remove(dir: &Path, command: &str) -> Result<(), Error> {
    let _lock = check_owned(dir, command)?;
    fs::remove_dir_all(dir).map_err(|e| Error::io("remove", dir, e))
}

fn mark(dir: &Path, command: &str) -> Result<(), Error> {
    let path = dir.join(MARKER);
    let text = format!("created by {command}; strata may delete this directory\n");
    fs::write(&path, text).map_err(|e| Error::io("write", &path, e))
}

/// Refuses unless `dir` has the marker, nothing but database entries, and
/// no writer holding its lock. Returns the lock, if there is a lock file,
/// to hold while deleting.
fn check_owned(dir: &Path, command: &str) -> Result<Option<File>, Error> {
    let refuse = |why: String| {
        Error::io(
            "replace",
            dir,
            io::Error::other(format!(
                "{why}; {command} only deletes directories it created: pick another --dir \
                 or remove it yourself"
            )),
        )
    };
    if !dir.join(MARKER).is_file() {
        return Err(refuse(format!(
            "it is not empty and has no {MARKER} marker"
        )));
    }
    let entries = fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
    for entry in entries {
        let name = entry
            .map_err(|e| Error::io("read directory", dir, e))?
            .file_name();
        if name != MARKER && !DATABASE_ENTRIES.iter().any(|known| name == *known) {
            return Err(refuse(format!(
                "it holds {}, which a strata database does not",
                Path::new(&name).display()
            )));
        }
    }
    lock(dir)
}

/// Takes the database's lock (if it has a lock file); fails with
/// [`Error::Locked`] while a writer holds it.
fn lock(dir: &Path) -> Result<Option<File>, Error> {
    let path = dir.join("LOCK");
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Err(Error::Locked {
                path: dir.to_path_buf(),
                pid: pid.trim().parse().ok(),
            })
        }
        Err(TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
    }
}
