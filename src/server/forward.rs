//! Remote write out: ships every sample written to a database to a
//! Prometheus remote-write endpoint (Mimir, Thanos, Cortex, a
//! VictoriaMetrics cluster, another strata), the scale-out path.
//!
//! The forwarder tails the database's WAL, as Prometheus's own remote
//! write does: every acknowledged sample is in a WAL record, in append
//! order. A std thread reads the WAL files from its position, batches the
//! samples (`ForwardConfig::batch_samples`), sends each batch as one
//! snappy-compressed `WriteRequest` and, once the receiver answered 2xx,
//! stores the position after the batch in the file `FORWARD` of the data
//! directory (versioned, crc32; docs/FORMAT.md). The database keeps the
//! WAL files from the position on ([`crate::Db::keep_wal_from`]), even
//! after their samples reach segments.
//!
//! Invariants:
//! - nothing acknowledged is lost: a batch is retried (exponential
//!   backoff, up to `ForwardConfig::max_backoff`) until the receiver takes
//!   it, on 5xx, 429 and connection errors; a 4xx other than 429 means the
//!   receiver will never take it: its samples are counted as dropped
//!   ([`ForwardStats::samples_dropped`]) and the forwarder goes on;
//! - nothing is sent twice except the batch in flight when the process
//!   stops: the position is stored after each acknowledged batch, before
//!   the next is sent, and a restart resumes from the stored position;
//! - the position names a WAL file, a record in it and a sample in the
//!   record; WAL files are only appended to and their series definitions
//!   come before the samples naming them in the same file, so re-reading
//!   a file from its start rebuilds the same series map and the same
//!   record numbering.
//!
//! Cost: the newest WAL file is read again from its start each time it
//! has grown (every `poll_interval` at most); files are rotated at every
//! flush and at `Options::wal_file_max_bytes`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prost::Message;

use super::proto;
use crate::db::envelope::{self, ReplaceFaults, HEADER_LEN};
use crate::error::{Corruption, CorruptionError, Error, Result};
use crate::segment::format::Cursor;
use crate::wal::record::Record;
use crate::{Db, SeriesKey};

/// The position file in the data directory.
pub const FORWARD_FILE: &str = "FORWARD";
const MAGIC: &[u8; 8] = b"STRATFWD";
const VERSION: u16 = 1;

/// Where forwarding resumes: the next sample to send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForwardPosition {
    /// The WAL file.
    pub file_id: u64,
    /// Records of that file already sent whole.
    pub record: u64,
    /// Samples of record `record` already sent.
    pub sample: u64,
}

impl ForwardPosition {
    /// The position stored in `dir` (the start when there is none).
    pub fn load(dir: &Path) -> Result<ForwardPosition> {
        let path = dir.join(FORWARD_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ForwardPosition::default())
            }
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let (_, payload) = envelope::open(&bytes, &path, MAGIC, "forward position", 1..=VERSION)?;
        let mut c = Cursor::new(payload, HEADER_LEN as u64, "forward position");
        let at = |e: Corruption| CorruptionError::in_file(&path, HEADER_LEN as u64, e);
        let position = ForwardPosition {
            file_id: c.u64().map_err(at)?,
            record: c.u64().map_err(at)?,
            sample: c.u64().map_err(at)?,
        };
        if c.remaining() != 0 {
            return Err(at(Corruption::BadLayout(
                "bytes after the position".to_owned(),
            )));
        }
        Ok(position)
    }

    /// Stores the position in `dir`, atomically and durably.
    pub fn store(&self, dir: &Path) -> Result<()> {
        let mut payload = Vec::with_capacity(24);
        payload.extend_from_slice(&self.file_id.to_le_bytes());
        payload.extend_from_slice(&self.record.to_le_bytes());
        payload.extend_from_slice(&self.sample.to_le_bytes());
        let faults = ReplaceFaults {
            write: "forward.write",
            fsync: "forward.fsync",
            rename: "forward.rename",
        };
        let bytes = envelope::seal(MAGIC, VERSION, &payload);
        envelope::replace_file(dir, FORWARD_FILE, &bytes, &faults)
    }
}

/// How to forward.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// The remote-write endpoint, e.g. `http://mimir:9009/api/v1/push`.
    pub url: String,
    /// Samples per request. Default 2,000.
    pub batch_samples: usize,
    /// How often the WAL is checked for new records. Default 1 s.
    pub poll_interval: Duration,
    /// Longest wait between retries of a failing batch. Default 30 s.
    pub max_backoff: Duration,
    /// Timeout of one request. Default 30 s.
    pub request_timeout: Duration,
    /// Sent as `Authorization: Bearer <token>` when set.
    pub bearer_token: Option<String>,
}

impl ForwardConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        ForwardConfig {
            url: url.into(),
            batch_samples: 2_000,
            poll_interval: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            bearer_token: None,
        }
    }
}

/// What the forwarder did, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForwardStats {
    pub samples_sent: u64,
    pub batches_sent: u64,
    /// Samples in batches the receiver refused with a 4xx (not retried).
    pub samples_dropped: u64,
    /// Failed attempts (each retried).
    pub retries: u64,
    /// Samples of records naming a series the WAL file does not define
    /// (damaged WAL), skipped.
    pub samples_unresolved: u64,
    pub position: ForwardPosition,
    /// Timestamp of the newest sample sent, `i64::MIN` before the first.
    pub newest_sent_ms: i64,
    /// Bytes of WAL files from the position's file on: an upper bound of
    /// what is left to send.
    pub pending_wal_bytes: u64,
    pub last_error: Option<String>,
}

/// A running forwarder thread.
pub struct Forwarder {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ForwardStats>>,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Starts forwarding `db`'s samples from the position stored in its
    /// directory. `db` should have been opened with
    /// `Options::keep_wal_from` set to that position's file
    /// ([`ForwardPosition::load`]), so no WAL file it still needs is
    /// deleted at open.
    pub fn start(db: Arc<Db>, config: ForwardConfig) -> Result<Forwarder> {
        let position = ForwardPosition::load(db.dir())?;
        db.keep_wal_from(position.file_id);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(ForwardStats {
            position,
            newest_sent_ms: i64::MIN,
            ..ForwardStats::default()
        }));
        let mut worker = Worker {
            wal_dir: db.dir().join("wal"),
            db,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(config.request_timeout))
                .build()
                .into(),
            config,
            position,
            stop: Arc::clone(&stop),
            stats: Arc::clone(&stats),
            seen_len: None,
        };
        let thread = std::thread::Builder::new()
            .name("strata-forward".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::io("start the forwarder thread for", "the WAL", e))?;
        Ok(Forwarder {
            stop,
            stats,
            thread: Some(thread),
        })
    }

    pub fn stats(&self) -> ForwardStats {
        self.stats.lock().clone()
    }

    /// A handle on the live statistics (for `/metrics`).
    pub fn stats_handle(&self) -> Arc<Mutex<ForwardStats>> {
        Arc::clone(&self.stats)
    }

    /// Stops after the batch in flight (its position stored if it was
    /// acknowledged) and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Worker {
    db: Arc<Db>,
    wal_dir: PathBuf,
    agent: ureq::Agent,
    config: ForwardConfig,
    position: ForwardPosition,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ForwardStats>>,
    /// (file id, length) of the newest file when it was last read whole:
    /// not read again until it grows or another file follows.
    seen_len: Option<(u64, u64)>,
}

/// The samples of one WAL file from the position on, with their keys.
struct FileSamples {
    keys: HashMap<u32, SeriesKey>,
    /// (record index, samples of the record).
    records: Vec<(u64, Vec<crate::wal::record::WalSample>)>,
}

/// One sample to send and the position after it.
struct Pending {
    series_id: u32,
    timestamp_ms: i64,
    value: f64,
    after: ForwardPosition,
}

impl Worker {
    fn run(&mut self) {
        while !self.stop.load(Ordering::Acquire) {
            match self.forward_available() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => self.stats.lock().last_error = Some(error.to_string()),
            }
            self.sleep(self.config.poll_interval);
        }
    }

    /// Sleeps up to `duration`, waking early when asked to stop.
    fn sleep(&self, duration: Duration) {
        let deadline = Instant::now() + duration;
        while !self.stop.load(Ordering::Acquire) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    /// Sends what the WAL holds past the position; `Ok(true)` when it sent
    /// something or moved to a newer file (look again at once).
    fn forward_available(&mut self) -> Result<bool> {
        let files = crate::wal::list_wal_files(&self.wal_dir)?;
        let pending_bytes = files
            .iter()
            .filter(|(id, _)| *id >= self.position.file_id)
            .filter_map(|(_, path)| std::fs::metadata(path).ok())
            .map(|m| m.len())
            .sum();
        self.stats.lock().pending_wal_bytes = pending_bytes;
        let Some((file_id, path)) = files
            .iter()
            .find(|(id, _)| *id >= self.position.file_id)
            .cloned()
        else {
            return Ok(false);
        };
        if file_id > self.position.file_id {
            // The position's file is gone (an older build deleted it, or it
            // was empty): the next file starts at its first record.
            self.advance(ForwardPosition {
                file_id,
                record: 0,
                sample: 0,
            })?;
        }
        let is_newest = files.last().is_some_and(|(id, _)| *id == file_id);
        let len = std::fs::metadata(&path)
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        if is_newest && self.seen_len == Some((file_id, len)) {
            return Ok(false);
        }
        let samples = self.read_file(&path)?;
        let sent_any = self.send_file(file_id, &samples)?;
        if self.stop.load(Ordering::Acquire) {
            return Ok(false);
        }
        if is_newest {
            self.seen_len = Some((file_id, len));
            return Ok(sent_any);
        }
        // A closed file, sent whole: on to the next one.
        let next = files
            .iter()
            .map(|(id, _)| *id)
            .find(|id| *id > file_id)
            .unwrap_or(file_id.saturating_add(1));
        self.advance(ForwardPosition {
            file_id: next,
            record: 0,
            sample: 0,
        })?;
        Ok(true)
    }

    /// The records of `path` from the position on.
    fn read_file(&self, path: &Path) -> Result<FileSamples> {
        let mut keys = HashMap::new();
        let mut records = Vec::new();
        let mut index = 0u64;
        let from = self.position.record;
        crate::wal::replay_file(path, |record| {
            match record {
                Record::Series { series_id, key } => {
                    keys.insert(series_id, key);
                }
                Record::Samples(samples) if index >= from => records.push((index, samples)),
                Record::Samples(_) => {}
            }
            index += 1;
        })?;
        Ok(FileSamples { keys, records })
    }

    /// Sends the samples of one file in batches; whether any was sent.
    fn send_file(&mut self, file_id: u64, file: &FileSamples) -> Result<bool> {
        let mut batch: Vec<Pending> = Vec::with_capacity(self.config.batch_samples);
        let mut sent_any = false;
        for (record, samples) in &file.records {
            let skip = if *record == self.position.record {
                self.position.sample as usize
            } else {
                0
            };
            for (i, sample) in samples.iter().enumerate().skip(skip) {
                let last = i + 1 == samples.len();
                let after = ForwardPosition {
                    file_id,
                    record: if last { record + 1 } else { *record },
                    sample: if last { 0 } else { i as u64 + 1 },
                };
                batch.push(Pending {
                    series_id: sample.series_id,
                    timestamp_ms: sample.timestamp_ms,
                    value: sample.value,
                    after,
                });
                if batch.len() >= self.config.batch_samples {
                    if !self.send_batch(&batch, &file.keys)? {
                        return Ok(sent_any);
                    }
                    sent_any = true;
                    batch.clear();
                }
            }
        }
        if !batch.is_empty() {
            if !self.send_batch(&batch, &file.keys)? {
                return Ok(sent_any);
            }
            sent_any = true;
        }
        Ok(sent_any)
    }

    /// Sends one batch until the receiver takes or refuses it, then stores
    /// the position after it; `false` when asked to stop first.
    fn send_batch(&mut self, batch: &[Pending], keys: &HashMap<u32, SeriesKey>) -> Result<bool> {
        let (body, unresolved) = encode(batch, keys);
        let mut backoff = Duration::from_millis(100);
        let accepted = loop {
            if self.stop.load(Ordering::Acquire) {
                return Ok(false);
            }
            match self.post(&body) {
                Ok(status) if (200..300).contains(&status) => break true,
                Ok(status) if (400..500).contains(&status) && status != 429 => {
                    self.stats.lock().last_error = Some(format!(
                        "{} answered {status} to a batch of {} samples: dropped (not retryable)",
                        self.config.url,
                        batch.len()
                    ));
                    break false;
                }
                Ok(status) => self.failed(format!("{} answered {status}", self.config.url)),
                Err(error) => self.failed(format!("{}: {error}", self.config.url)),
            }
            self.sleep(backoff);
            backoff = (backoff * 2).min(self.config.max_backoff);
        };
        let Some(last) = batch.last() else {
            return Ok(true);
        };
        self.advance(last.after)?;
        let mut stats = self.stats.lock();
        let resolved = (batch.len() - unresolved) as u64;
        if accepted {
            stats.samples_sent += resolved;
            stats.batches_sent += 1;
            let newest = batch
                .iter()
                .map(|p| p.timestamp_ms)
                .max()
                .unwrap_or(i64::MIN);
            stats.newest_sent_ms = stats.newest_sent_ms.max(newest);
        } else {
            stats.samples_dropped += resolved;
        }
        stats.samples_unresolved += unresolved as u64;
        Ok(true)
    }

    fn failed(&self, message: String) {
        let mut stats = self.stats.lock();
        stats.retries += 1;
        stats.last_error = Some(message);
    }

    /// The status of one POST of `body`.
    fn post(&self, body: &[u8]) -> std::result::Result<u16, ureq::Error> {
        let mut request = self
            .agent
            .post(&self.config.url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header("User-Agent", concat!("strata/", env!("CARGO_PKG_VERSION")));
        if let Some(token) = &self.config.bearer_token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = request.send(body)?;
        Ok(response.status().as_u16())
    }

    /// Stores `position` and lets the database delete the WAL files
    /// before it.
    fn advance(&mut self, position: ForwardPosition) -> Result<()> {
        position.store(self.db.dir())?;
        self.position = position;
        self.db.keep_wal_from(position.file_id);
        self.stats.lock().position = position;
        Ok(())
    }
}

/// The snappy-compressed `WriteRequest` of `batch` (series in first-seen
/// order, samples in WAL order) and the number of samples left out
/// because their series is not defined in the file.
fn encode(batch: &[Pending], keys: &HashMap<u32, SeriesKey>) -> (Vec<u8>, usize) {
    let mut series: Vec<proto::TimeSeries> = Vec::new();
    let mut index_of: HashMap<u32, usize> = HashMap::new();
    let mut unresolved = 0;
    for pending in batch {
        let index = match index_of.get(&pending.series_id) {
            Some(&index) => index,
            None => {
                let Some(key) = keys.get(&pending.series_id) else {
                    unresolved += 1;
                    continue;
                };
                let labels = proto::labels_of(key);
                series.push(proto::TimeSeries {
                    labels,
                    samples: Vec::new(),
                });
                index_of.insert(pending.series_id, series.len() - 1);
                series.len() - 1
            }
        };
        series[index].samples.push(proto::Sample {
            value: pending.value,
            timestamp: pending.timestamp_ms,
        });
    }
    let request = proto::WriteRequest {
        timeseries: series,
        metadata: Vec::new(),
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap_or_default();
    (body, unresolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_round_trips_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            ForwardPosition::load(dir.path()).unwrap(),
            ForwardPosition::default()
        );
        let position = ForwardPosition {
            file_id: 7,
            record: 12,
            sample: 3,
        };
        position.store(dir.path()).unwrap();
        assert_eq!(ForwardPosition::load(dir.path()).unwrap(), position);
        let path = dir.path().join(FORWARD_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let error = ForwardPosition::load(dir.path()).unwrap_err();
        assert!(error.to_string().contains("checksum"), "{error}");
    }
}
