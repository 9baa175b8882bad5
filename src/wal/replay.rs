//! Reading WAL files back: frames → records, with damage detection and,
//! in version 2 files, resynchronisation around damage.
//!
//! Files are read through a bounded window (64 KiB reads), never whole:
//! memory is bounded by the largest frame plus one read. A frame's payload
//! is read only after its length is checked against [`MAX_PAYLOAD_LEN`]
//! and the bytes left in the file.
//!
//! Invariants:
//! - a frame is accepted only when all of these hold: the frame magic, a
//!   length within the file and the limit, a sequence number `s` after the
//!   last accepted one `l` such that the `s - l - 1` frames in between fit
//!   in the bytes in between (each frame is at least 17 bytes), a valid
//!   crc32 and a payload that decodes. At the position right after a good
//!   frame that means exactly `s = l + 1`;
//! - version 2: after a bad frame, replay scans forward byte by byte for
//!   the next acceptable frame. The bytes skipped are one [`WalDamage`]; if
//!   no acceptable frame follows, the damage is a torn tail;
//! - version 1 (no frame magic or sequence numbers): replay stops at the
//!   first bad frame; it is a torn tail only if the frame as its length
//!   describes it does not fit in the file;
//! - a header with magic, a valid crc32 and an unknown version is an
//!   error ([`Corruption::UnsupportedVersion`]), never damage: the file is
//!   left alone;
//! - replay never changes the file; what to do about damage is the
//!   caller's decision.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::record::{self, Record};
use super::{
    frame_crc, writer::ids_exhausted, FRAME_HEADER_LEN, FRAME_HEADER_LEN_V1, FRAME_MAGIC,
    MAX_FILE_ID, MAX_PAYLOAD_LEN, WAL_HEADER_LEN, WAL_HEADER_LEN_V1, WAL_MAGIC, WAL_VERSION,
    WAL_VERSION_1,
};
use crate::error::{Corruption, CorruptionError, Error, Result};

/// Bytes read from a file at a time.
const READ_CHUNK: usize = 64 << 10;
/// The smallest a version 2 frame can be: a header and a non-empty payload.
const MIN_FRAME_LEN: u64 = FRAME_HEADER_LEN as u64 + 1;
/// Most header bytes a reader looks at (a header's length is a u16).
const MAX_HEADER_LEN: usize = u16::MAX as usize;

/// A damaged or torn region of a WAL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalDamage {
    pub path: PathBuf,
    /// Offset of the first byte that could not be used.
    pub offset: u64,
    /// Bytes from `offset` that could not be used.
    pub dropped_bytes: u64,
    /// True when the damage runs to the end of the file and nothing valid
    /// follows it: the normal result of a crash mid-write, truncated.
    pub torn_tail: bool,
    pub reason: String,
}

impl std::fmt::Display for WalDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: dropped {} bytes from offset {}: {}",
            self.path.display(),
            self.dropped_bytes,
            self.offset,
            self.reason
        )
    }
}

/// What an intact WAL header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalHeader {
    pub version: u16,
    pub file_id: u64,
    /// The writer session (id of its first file); `None` in version 1.
    pub session_id: Option<u64>,
    /// Sequence number of the last frame of file `file_id - 1` when this
    /// file was created; 0 when none or not known (always 0 in version 1).
    pub prev_last_seq: u32,
}

/// The state of a WAL file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderState {
    Valid(WalHeader),
    /// At most 36 bytes (a version 2 header) without an intact header: a
    /// crash while the file was created (cut short, or a header-sized
    /// extent that was never written). No frame fits besides a header, and
    /// the header is fsynced before any frame, so nothing in it was
    /// acknowledged.
    TornCreate {
        file_len: u64,
    },
    /// Longer than a header, but magic, crc32 or file id are wrong.
    Damaged(String),
}

/// The outcome of replaying one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReplay {
    pub records: u64,
    pub header: HeaderState,
    /// Sequence number of the last frame replayed (version 2; else 0).
    pub last_seq: u32,
    /// Length of the file without its torn tail; the file is truncated
    /// here on recovery.
    pub valid_len: u64,
    /// The torn tail (or torn create), if any: `offset == valid_len`, and
    /// it runs to the end of the file.
    pub damage: Option<WalDamage>,
    /// Damage that is not a torn tail: regions replay skipped over, a
    /// damaged header, or (version 1) the rest of a file after a bad frame.
    pub skipped: Vec<WalDamage>,
}

impl FileReplay {
    /// Every damaged region, in file order.
    #[cfg(any(test, feature = "internals"))]
    pub fn all_damage(&self) -> impl Iterator<Item = &WalDamage> {
        self.skipped.iter().chain(self.damage.iter())
    }
}

/// WAL files in `dir`, sorted by id. Other files are ignored. A file id
/// above [`MAX_FILE_ID`] is an error: no file could follow it.
pub fn list_wal_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        if let Some(id) = file_id_of(&entry.path()) {
            if id > MAX_FILE_ID {
                return Err(ids_exhausted(dir, id));
            }
            files.push((id, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// The id in a `<id:020>.wal` file name.
fn file_id_of(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_suffix(".wal")
        .filter(|stem| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}

/// Reads only the header of a WAL file. An unknown version is an error.
pub fn read_header(path: &Path) -> Result<HeaderState> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let mut window = Window::new(file, len);
    let header_bytes = header_prefix(&mut window).map_err(|e| Error::io("read", path, e))?;
    parse_header(&header_bytes, len, path)
}

/// Reads every intact record of a WAL file, in order, into `apply`. A
/// missing file is an I/O error, an unknown version a corruption error;
/// damage is reported in the result. The file is not changed.
pub fn replay_file(path: &Path, apply: impl FnMut(Record)) -> Result<FileReplay> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    replay_reader(file, len, path, apply)
}

/// [`replay_file`] over any byte source of `len` bytes.
fn replay_reader<R: Read>(
    src: R,
    len: u64,
    path: &Path,
    mut apply: impl FnMut(Record),
) -> Result<FileReplay> {
    let mut scan = Scan {
        window: Window::new(src, len),
        path,
        records: 0,
        last_seq: 0,
        last_end: 0,
        skipped: Vec::new(),
    };
    let header_bytes = header_prefix(&mut scan.window).map_err(|e| Error::io("read", path, e))?;
    let header = parse_header(&header_bytes, len, path)?;
    drop(header_bytes);
    let tail = match &header {
        HeaderState::TornCreate { file_len } => Some(WalDamage {
            path: path.to_path_buf(),
            offset: 0,
            dropped_bytes: *file_len,
            torn_tail: true,
            reason: format!(
                "file is {file_len} bytes without an intact header; a frame needs more (torn create; nothing in it was acknowledged)"
            ),
        }),
        HeaderState::Valid(h) if h.version == WAL_VERSION_1 => scan.replay_v1(&mut apply)?,
        HeaderState::Valid(_) => {
            scan.last_end = WAL_HEADER_LEN as u64;
            scan.replay_v2(WAL_HEADER_LEN as u64, None, &mut apply)?
        }
        HeaderState::Damaged(reason) => {
            scan.replay_v2(0, Some((0, format!("damaged header: {reason}"))), &mut apply)?
        }
    };
    let end = scan.window.len;
    Ok(FileReplay {
        records: scan.records,
        header,
        last_seq: scan.last_seq,
        valid_len: tail.as_ref().map_or(end, |t| t.offset),
        damage: tail,
        skipped: scan.skipped,
    })
}

/// The first bytes of a file, enough for any header.
fn header_prefix<R: Read>(window: &mut Window<R>) -> io::Result<Vec<u8>> {
    let n = window.len.min(MAX_HEADER_LEN as u64) as usize;
    Ok(window.get(0, n)?.map(<[u8]>::to_vec).unwrap_or_default())
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Classifies the header at the start of `bytes` (a prefix of a file of
/// `file_len` bytes named `path`).
///
/// Every version keeps bytes 0..12 as magic, version and (from version 2)
/// header length, with the header's crc32 in its last 4 bytes, so a reader
/// can tell an intact header of an unknown version from a damaged one.
fn parse_header(bytes: &[u8], file_len: u64, path: &Path) -> Result<HeaderState> {
    let has_magic = bytes.get(0..8) == Some(WAL_MAGIC.as_slice());
    let named_id = file_id_of(path);
    let check_id = |header: WalHeader| match named_id {
        Some(id) if id != header.file_id => HeaderState::Damaged(format!(
            "header names file id {}, the file name {id}",
            header.file_id
        )),
        _ => HeaderState::Valid(header),
    };
    if has_magic && bytes.len() >= WAL_HEADER_LEN_V1 && u16_at(bytes, 8) == WAL_VERSION_1 {
        let crc_ok = u32_at(bytes, 20) == crc32fast::hash(&bytes[0..20]);
        if crc_ok && u16_at(bytes, 10) == 0 {
            return Ok(check_id(WalHeader {
                version: WAL_VERSION_1,
                file_id: u64_at(bytes, 12),
                session_id: None,
                prev_last_seq: 0,
            }));
        }
    }
    if has_magic && bytes.len() >= 12 {
        let version = u16_at(bytes, 8);
        let header_len = usize::from(u16_at(bytes, 10));
        if version != WAL_VERSION_1 && header_len >= 16 && header_len <= bytes.len() {
            let crc_at = header_len - 4;
            if u32_at(bytes, crc_at) == crc32fast::hash(&bytes[0..crc_at]) {
                if version != WAL_VERSION {
                    return Err(CorruptionError {
                        path: path.to_path_buf(),
                        offset: 8,
                        series: None,
                        kind: Corruption::UnsupportedVersion {
                            found: version,
                            supported: WAL_VERSION,
                        },
                    }
                    .into());
                }
                if header_len == WAL_HEADER_LEN {
                    return Ok(check_id(WalHeader {
                        version,
                        file_id: u64_at(bytes, 12),
                        session_id: Some(u64_at(bytes, 20)),
                        prev_last_seq: u32_at(bytes, 28),
                    }));
                }
            }
        }
    }
    if file_len <= WAL_HEADER_LEN as u64 {
        return Ok(HeaderState::TornCreate { file_len });
    }
    let reason = match bytes.get(0..WAL_HEADER_LEN) {
        _ if !has_magic => "bad magic: not a strata WAL file".to_string(),
        Some(header) => {
            let stored = u32_at(header, 32);
            let computed = crc32fast::hash(&header[0..32]);
            format!(
                "header checksum mismatch (as version {WAL_VERSION}: stored {stored:#010x}, computed {computed:#010x})"
            )
        }
        None => "header ends early".to_string(),
    };
    Ok(HeaderState::Damaged(reason))
}

/// A forward-only window on a byte source of known length: bytes are read
/// in chunks as needed and dropped once they lie before the point the
/// reader keeps (see [`Window::keep_from`]).
struct Window<R> {
    src: R,
    /// Bytes `start .. start + buf.len()` of the source.
    buf: Vec<u8>,
    start: u64,
    /// Bytes from here on are kept until `keep` moves on; never decreases.
    keep: u64,
    /// Length of the source; lowered if it ends early (a file shrinking
    /// under a read-only replay).
    len: u64,
}

impl<R: Read> Window<R> {
    fn new(src: R, len: u64) -> Self {
        Window {
            src,
            buf: Vec::new(),
            start: 0,
            keep: 0,
            len,
        }
    }

    /// Lets the window drop bytes before `at` (which never decreases).
    fn keep_from(&mut self, at: u64) {
        self.keep = self.keep.max(at);
    }

    /// Bytes `at .. at + n` (`at` at or after the kept point), or `None` if
    /// the source ends before. `n` is at most a frame plus a read, and is
    /// only allocated once it is known to lie within the source.
    fn get(&mut self, at: u64, n: usize) -> io::Result<Option<&[u8]>> {
        let end = at.saturating_add(n as u64);
        if end > self.len || at < self.start {
            return Ok(None);
        }
        if end > self.start + self.buf.len() as u64 {
            // Drop what lies before the kept point (skipping source bytes
            // if it is beyond the buffer), then read up to `end` and a
            // chunk more.
            let floor = self.keep.min(at);
            let buffered_end = self.start + self.buf.len() as u64;
            if floor >= buffered_end {
                let skip = floor - buffered_end;
                let skipped = io::copy(&mut (&mut self.src).take(skip), &mut io::sink())?;
                self.buf.clear();
                self.start = buffered_end + skipped;
                if skipped < skip {
                    self.len = self.start;
                    return Ok(None);
                }
            } else {
                self.buf.drain(..(floor - self.start) as usize);
                self.start = floor;
            }
            let need = (end - self.start) as usize;
            let available = self.len - self.start;
            let target = (need.max(self.buf.len() + READ_CHUNK) as u64).min(available) as usize;
            let old = self.buf.len();
            self.buf.resize(target, 0);
            let got = read_full(&mut self.src, &mut self.buf[old..])?;
            self.buf.truncate(old + got);
            if old + got < target {
                self.len = self.start + self.buf.len() as u64;
            }
            if self.buf.len() < need {
                return Ok(None);
            }
        }
        let from = (at - self.start) as usize;
        Ok(Some(&self.buf[from..from + n]))
    }
}

/// Reads until `buf` is full or the source ends; returns the bytes read.
fn read_full<R: Read>(src: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn read_error(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |e| Error::io("read", path, e)
}

/// Replay state of one file.
struct Scan<'p, R> {
    window: Window<R>,
    path: &'p Path,
    records: u64,
    /// Sequence number of the last accepted frame (0: none yet).
    last_seq: u32,
    /// Where the last accepted frame (or the intact header) ends.
    last_end: u64,
    skipped: Vec<WalDamage>,
}

/// A frame that passed every check.
struct GoodFrame {
    record: Record,
    seq: u32,
    end: u64,
}

impl<R: Read> Scan<'_, R> {
    fn damage(&self, offset: u64, end: u64, torn_tail: bool, reason: String) -> WalDamage {
        WalDamage {
            path: self.path.to_path_buf(),
            offset,
            dropped_bytes: end - offset,
            torn_tail,
            reason,
        }
    }

    fn accept(&mut self, frame: GoodFrame, apply: &mut impl FnMut(Record)) {
        apply(frame.record);
        self.records += 1;
        self.last_seq = frame.seq;
        self.last_end = frame.end;
    }

    /// Version 2 frames from `pos`; `broken` is a damaged region starting
    /// at or before `pos` that is still open (a damaged header, scanned
    /// from 0). Returns the torn tail, if any.
    fn replay_v2(
        &mut self,
        mut pos: u64,
        mut broken: Option<(u64, String)>,
        apply: &mut impl FnMut(Record),
    ) -> Result<Option<WalDamage>> {
        loop {
            let Some((start, reason)) = &broken else {
                if pos >= self.window.len {
                    return Ok(None);
                }
                match self.frame_v2(pos)? {
                    Ok(frame) => {
                        pos = frame.end;
                        self.accept(frame, apply);
                    }
                    Err(reason) => {
                        broken = Some((pos, reason));
                        pos += 1;
                    }
                }
                continue;
            };
            let Some(candidate) = self.find_frame_magic(pos)? else {
                let end = self.window.len;
                // A damaged header is never a torn tail: the header was
                // fsynced before any frame was written.
                let torn = *start > 0;
                let damage = self.damage(*start, end, torn, reason.clone());
                if torn {
                    return Ok(Some(damage));
                }
                self.skipped.push(damage);
                return Ok(None);
            };
            match self.frame_v2(candidate)? {
                Ok(frame) => {
                    let lost = frame.seq - self.last_seq - 1;
                    let reason = format!(
                        "{reason}; resynchronised at frame {}; frames lost: {lost}",
                        frame.seq
                    );
                    let damage = self.damage(*start, candidate, false, reason);
                    self.skipped.push(damage);
                    broken = None;
                    pos = frame.end;
                    self.accept(frame, apply);
                }
                Err(_) => pos = candidate + 1,
            }
        }
    }

    /// The next offset at or after `from` where the frame magic starts.
    fn find_frame_magic(&mut self, from: u64) -> Result<Option<u64>> {
        let mut at = from;
        loop {
            self.window.keep_from(at);
            let n = (self.window.len.saturating_sub(at)).min(READ_CHUNK as u64) as usize;
            if n < FRAME_MAGIC.len() {
                return Ok(None);
            }
            let found = match self.window.get(at, n).map_err(read_error(self.path))? {
                Some(bytes) => bytes
                    .windows(FRAME_MAGIC.len())
                    .position(|w| w == FRAME_MAGIC),
                None => return Ok(None),
            };
            if let Some(i) = found {
                return Ok(Some(at + i as u64));
            }
            at += (n - (FRAME_MAGIC.len() - 1)) as u64;
        }
    }

    /// The version 2 frame at `pos` if it passes every check, else why not.
    fn frame_v2(&mut self, pos: u64) -> Result<Result<GoodFrame, String>> {
        self.window.keep_from(pos);
        let remaining = self.window.len - pos;
        let header = match self
            .window
            .get(pos, FRAME_HEADER_LEN)
            .map_err(read_error(self.path))?
        {
            Some(h) => {
                let mut header = [0u8; FRAME_HEADER_LEN];
                header.copy_from_slice(h);
                header
            }
            None => {
                return Ok(Err(format!(
                    "torn frame header: {remaining} of {FRAME_HEADER_LEN} bytes"
                )))
            }
        };
        if header[0..4] != FRAME_MAGIC {
            return Ok(Err(format!("bad frame magic {:02x?}", &header[0..4])));
        }
        let len = u32_at(&header, 4) as usize;
        let seq = u32_at(&header, 8);
        let stored = u32_at(&header, 12);
        if len > MAX_PAYLOAD_LEN {
            return Ok(Err(format!(
                "frame length {len} exceeds the {MAX_PAYLOAD_LEN}-byte limit"
            )));
        }
        let present = remaining - FRAME_HEADER_LEN as u64;
        if len as u64 > present {
            return Ok(Err(format!(
                "torn frame: payload of {len} bytes, {present} present"
            )));
        }
        let gap = pos.saturating_sub(self.last_end);
        let plausible =
            seq > self.last_seq && u64::from(seq - self.last_seq - 1) * MIN_FRAME_LEN <= gap;
        if !plausible {
            return Ok(Err(format!(
                "frame sequence number {seq} cannot follow {} here",
                self.last_seq
            )));
        }
        let Some(payload) = self
            .window
            .get(pos + FRAME_HEADER_LEN as u64, len)
            .map_err(read_error(self.path))?
        else {
            return Ok(Err(format!("torn frame: payload of {len} bytes")));
        };
        let computed = frame_crc(&header[4..12], payload);
        if stored != computed {
            return Ok(Err(format!(
                "frame checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            )));
        }
        match record::decode(payload) {
            Ok(record) => Ok(Ok(GoodFrame {
                record,
                seq,
                end: pos + (FRAME_HEADER_LEN + len) as u64,
            })),
            Err(e) => Ok(Err(format!("record does not decode: {e}"))),
        }
    }

    /// Version 1 frames after the header, up to the first bad one. Returns
    /// the torn tail, if any; other damage goes to `skipped`.
    fn replay_v1(&mut self, apply: &mut impl FnMut(Record)) -> Result<Option<WalDamage>> {
        let mut pos = WAL_HEADER_LEN_V1 as u64;
        let end = self.window.len;
        while pos < end {
            let (reason, claimed_end) = match self.frame_v1(pos)? {
                Ok((record, next)) => {
                    apply(record);
                    self.records += 1;
                    pos = next;
                    continue;
                }
                Err(bad) => bad,
            };
            // Only a frame that does not fit in the file can be a write the
            // crash cut short; bytes after a complete bad frame are damage.
            let torn = claimed_end >= end;
            let damage = self.damage(pos, end, torn, reason);
            if torn {
                return Ok(Some(damage));
            }
            self.skipped.push(damage);
            return Ok(None);
        }
        Ok(None)
    }

    /// The version 1 frame at `pos` and the offset after it; or why not,
    /// with where the frame claims to end.
    fn frame_v1(&mut self, pos: u64) -> Result<Result<(Record, u64), (String, u64)>> {
        self.window.keep_from(pos);
        let remaining = self.window.len - pos;
        let header = match self
            .window
            .get(pos, FRAME_HEADER_LEN_V1)
            .map_err(read_error(self.path))?
        {
            Some(h) => (u32_at(h, 0) as usize, u32_at(h, 4)),
            None => {
                return Ok(Err((
                    format!("torn frame header: {remaining} of {FRAME_HEADER_LEN_V1} bytes"),
                    u64::MAX,
                )))
            }
        };
        let (len, stored) = header;
        let claimed_end = pos + (FRAME_HEADER_LEN_V1 + len) as u64;
        if len > MAX_PAYLOAD_LEN {
            let reason = format!("frame length {len} exceeds the {MAX_PAYLOAD_LEN}-byte limit");
            return Ok(Err((reason, claimed_end)));
        }
        let Some(payload) = self
            .window
            .get(pos + FRAME_HEADER_LEN_V1 as u64, len)
            .map_err(read_error(self.path))?
        else {
            let present = remaining - FRAME_HEADER_LEN_V1 as u64;
            let reason = format!("torn frame: payload of {len} bytes, {present} present");
            return Ok(Err((reason, claimed_end)));
        };
        let computed = crc32fast::hash(payload);
        if stored != computed {
            let reason = format!(
                "frame checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            );
            return Ok(Err((reason, claimed_end)));
        }
        match record::decode(payload) {
            Ok(record) => Ok(Ok((record, claimed_end))),
            Err(e) => Ok(Err((format!("record does not decode: {e}"), claimed_end))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::SeriesKey;
    use crate::wal::record::{encode_series, SamplesEncoder, WalSample};
    use crate::wal::{encode_header, frame};
    use proptest::prelude::*;

    fn payload_of(spec: &(u32, i64, u64, bool)) -> (Vec<u8>, Record) {
        let &(id, ts, bits, is_series) = spec;
        let mut out = Vec::new();
        if is_series {
            let key = SeriesKey::from_pairs("m", &[("id", id.to_string())]).unwrap();
            encode_series(id, &key, &mut out);
            (out, Record::Series { series_id: id, key })
        } else {
            let mut encoder = SamplesEncoder::begin(ts, &mut out);
            encoder.push(id, ts, f64::from_bits(bits), &mut out);
            encoder.finish(0, &mut out);
            let sample = WalSample {
                series_id: id,
                timestamp_ms: ts,
                value: f64::from_bits(bits),
            };
            (out, Record::Samples(vec![sample]))
        }
    }

    /// A version 2 file of the given records; returns its bytes, the
    /// records and each frame's byte range.
    fn build(specs: &[(u32, i64, u64, bool)]) -> (Vec<u8>, Vec<Record>, Vec<(usize, usize)>) {
        let mut bytes = encode_header(7, 7, 0).to_vec();
        let mut records = Vec::new();
        let mut ranges = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let (payload, record) = payload_of(spec);
            let start = bytes.len();
            frame(&payload, i as u32 + 1, &mut bytes);
            ranges.push((start, bytes.len()));
            records.push(record);
        }
        (bytes, records, ranges)
    }

    fn replay(bytes: &[u8]) -> (Vec<Record>, FileReplay) {
        let mut got = Vec::new();
        let path = Path::new("00000000000000000007.wal");
        let outcome = replay_reader(bytes, bytes.len() as u64, path, |r| got.push(r)).unwrap();
        (got, outcome)
    }

    /// Records compared by bits (NaN values compare unequal otherwise).
    fn bits(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| match r {
                Record::Series { series_id, key } => format!("series {series_id} {key}"),
                Record::Samples(s) => s
                    .iter()
                    .map(|s| format!("{} {} {:x}", s.series_id, s.timestamp_ms, s.value.to_bits()))
                    .collect(),
            })
            .collect()
    }

    fn specs() -> impl Strategy<Value = Vec<(u32, i64, u64, bool)>> {
        proptest::collection::vec(
            (
                0u32..1000,
                any::<i64>(),
                any::<u64>(),
                proptest::bool::weighted(0.2),
            ),
            1..40,
        )
    }

    proptest! {
        /// One damaged byte loses at most the frame it is in: every other
        /// record comes back, in order, and nothing else.
        #[test]
        fn a_damaged_byte_loses_only_its_frame(
            specs in specs(),
            at in any::<prop::sample::Index>(),
            mask in 1u8..=255,
        ) {
            let (mut bytes, records, ranges) = build(&specs);
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
            let hit = ranges.iter().position(|&(s, e)| (s..e).contains(&at));
            let expected: Vec<Record> = records
                .iter()
                .enumerate()
                .filter(|&(i, _)| Some(i) != hit)
                .map(|(_, r)| r.clone())
                .collect();
            let (got, outcome) = replay(&bytes);
            prop_assert_eq!(bits(&got), bits(&expected));
            prop_assert_eq!(outcome.records, expected.len() as u64);
            prop_assert!(outcome.all_damage().count() >= 1);
            for damage in outcome.all_damage() {
                prop_assert!(damage.offset <= at as u64);
                prop_assert!(damage.offset + damage.dropped_bytes <= bytes.len() as u64);
            }
        }

        /// Every truncation keeps exactly the whole frames before the cut.
        #[test]
        fn truncation_keeps_whole_frames(specs in specs(), cut in any::<prop::sample::Index>()) {
            let (bytes, records, ranges) = build(&specs);
            let cut = WAL_HEADER_LEN + cut.index(bytes.len() - WAL_HEADER_LEN + 1);
            let whole = ranges.iter().filter(|&&(_, e)| e <= cut).count();
            let (got, outcome) = replay(&bytes[..cut]);
            prop_assert_eq!(bits(&got), bits(&records[..whole]));
            prop_assert!(outcome.skipped.is_empty());
            let boundary = ranges.get(whole).map_or(bytes.len(), |r| r.0);
            prop_assert_eq!(outcome.valid_len, boundary.min(cut) as u64);
            prop_assert_eq!(outcome.damage.is_some(), cut != outcome.valid_len as usize);
        }

        /// Arbitrary bytes after a valid header, or inserted between
        /// frames, never come back as records.
        #[test]
        fn garbage_is_never_a_record(
            specs in specs(),
            garbage in proptest::collection::vec(any::<u8>(), 1..300),
            at in any::<prop::sample::Index>(),
        ) {
            let (bytes, records, ranges) = build(&specs);
            let boundary = ranges[at.index(ranges.len())].0;
            let mut damaged = bytes[..boundary].to_vec();
            damaged.extend_from_slice(&garbage);
            damaged.extend_from_slice(&bytes[boundary..]);
            let (got, outcome) = replay(&damaged);
            prop_assert_eq!(bits(&got), bits(&records));
            prop_assert!(outcome.damage.is_none());
            let mut only_garbage = encode_header(7, 7, 0).to_vec();
            only_garbage.extend_from_slice(&garbage);
            prop_assert_eq!(replay(&only_garbage).0.len(), 0);
        }
    }

    #[test]
    fn frames_larger_than_a_read_and_many_reads() {
        let specs: Vec<_> = (0..10_000)
            .map(|i| (i, i64::from(i), 0, i % 7 == 0))
            .collect();
        let (mut bytes, mut records, _) = build(&specs);
        // One frame of 200 000 samples (several reads long), then one more.
        let mut payload = Vec::new();
        let mut encoder = SamplesEncoder::begin(0, &mut payload);
        let mut big = Vec::new();
        for t in 0..200_000 {
            encoder.push(1, t, t as f64, &mut payload);
            big.push(WalSample {
                series_id: 1,
                timestamp_ms: t,
                value: t as f64,
            });
        }
        encoder.finish(0, &mut payload);
        assert!(payload.len() > 10 * READ_CHUNK);
        frame(&payload, 10_001, &mut bytes);
        records.push(Record::Samples(big));
        let (last, record) = payload_of(&(2, 5, 5, false));
        frame(&last, 10_002, &mut bytes);
        records.push(record);
        let (got, outcome) = replay(&bytes);
        assert_eq!(bits(&got), bits(&records));
        assert_eq!(outcome.valid_len, bytes.len() as u64);
        assert_eq!(outcome.last_seq, 10_002);
        // Damage in the big frame: replay resynchronises on the last one.
        let big_start = bytes.len() - last.len() - 2 * FRAME_HEADER_LEN - payload.len();
        bytes[big_start + 5000] ^= 0x10;
        let (got, outcome) = replay(&bytes);
        assert_eq!(got.len(), records.len() - 1, "{outcome:?}");
        assert_eq!(outcome.skipped.len(), 1);
        assert_eq!(outcome.skipped[0].offset, big_start as u64);
        assert_eq!(
            outcome.skipped[0].dropped_bytes,
            (FRAME_HEADER_LEN + payload.len()) as u64
        );
    }

    #[test]
    fn memory_is_bounded_by_the_largest_frame_not_the_file() {
        let specs: Vec<_> = (0..40_000).map(|i| (i, i64::from(i), 0, false)).collect();
        let (bytes, _, _) = build(&specs);
        assert!(bytes.len() > 20 * READ_CHUNK);
        let mut scan = Scan {
            window: Window::new(&bytes[..], bytes.len() as u64),
            path: Path::new("00000000000000000007.wal"),
            records: 0,
            last_seq: 0,
            last_end: WAL_HEADER_LEN as u64,
            skipped: Vec::new(),
        };
        let tail = scan
            .replay_v2(WAL_HEADER_LEN as u64, None, &mut |_| {})
            .unwrap();
        assert!(tail.is_none());
        assert_eq!(scan.records, 40_000);
        assert!(scan.window.buf.capacity() <= 2 * READ_CHUNK);
    }

    #[test]
    fn unknown_versions_are_errors_not_damage() {
        let mut header = encode_header(7, 7, 0);
        header[8..10].copy_from_slice(&3u16.to_le_bytes());
        let crc = crc32fast::hash(&header[0..32]);
        header[32..36].copy_from_slice(&crc.to_le_bytes());
        let path = Path::new("00000000000000000007.wal");
        let err = replay_reader(&header[..], 36, path, |_| {}).unwrap_err();
        assert!(matches!(
            err,
            Error::Corrupt(CorruptionError {
                kind: Corruption::UnsupportedVersion {
                    found: 3,
                    supported: 2
                },
                ..
            })
        ));
    }
}
