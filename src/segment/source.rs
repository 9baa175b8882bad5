//! The bytes of a segment file: a read-only memory map, or a heap buffer
//! for tests and tools. This is the only module of the crate with `unsafe`.
//!
//! Invariant: segment files are immutable once published (written to a
//! temporary name, fsynced, renamed), and strata never opens a published
//! segment for writing, so a mapping of one never changes under a reader.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::Mmap;

/// Where a segment's bytes live.
pub enum ByteSource {
    Mapped(Mmap),
    Heap(Vec<u8>),
}

impl ByteSource {
    /// Maps a whole file read-only.
    pub fn map(file: &File) -> io::Result<Self> {
        if file.metadata()?.len() == 0 {
            // Mapping an empty file fails on some platforms; there is
            // nothing to map anyway.
            return Ok(ByteSource::Heap(Vec::new()));
        }
        // SAFETY: the mapping is read-only and the file is a published,
        // immutable segment (module invariant): strata never writes,
        // truncates or renames over it while it is open, and the reader
        // checks the length against the footer before using the map. Every
        // offset read through the map is bounds-checked against the length
        // taken here, so no access goes past the map. Another process
        // truncating the file afterwards is outside that contract: reading
        // a page past the new end raises SIGBUS, which no check here can
        // prevent (docs/FORMAT.md; untrusted files are read into the heap
        // by `Segment::open_in_memory` instead).
        let map = unsafe { Mmap::map(file)? };
        Ok(ByteSource::Mapped(map))
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ByteSource::Mapped(map) => map,
            ByteSource::Heap(bytes) => bytes,
        }
    }
}
