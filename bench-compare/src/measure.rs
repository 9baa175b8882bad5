//! Measuring helpers shared by every engine: directory sizes, the
//! time-bound writer harness, best-of-N timing.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use serde::Serialize;

/// Sum of the sizes of every file under a directory (apparent size, as
/// `ls -l` shows; the directories themselves are not counted).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DirSize {
    pub bytes: u64,
    pub files: usize,
}

pub fn dir_size(path: &Path) -> Result<DirSize> {
    let mut total = DirSize::default();
    let entries = std::fs::read_dir(path).with_context(|| format!("list {}", path.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", path.display()))?;
        let kind = entry
            .file_type()
            .with_context(|| format!("stat {}", entry.path().display()))?;
        if kind.is_dir() {
            let inner = dir_size(&entry.path())?;
            total.bytes += inner.bytes;
            total.files += inner.files;
        } else if kind.is_file() {
            let meta = entry
                .metadata()
                .with_context(|| format!("stat {}", entry.path().display()))?;
            total.bytes += meta.len();
            total.files += 1;
        }
    }
    Ok(total)
}

/// Bytes under each top-level entry of a directory, largest first: where an
/// engine's bytes go (WAL, segments, index, ...).
pub fn dir_breakdown(path: &Path) -> Result<Vec<(String, u64)>> {
    let mut parts = Vec::new();
    let entries = std::fs::read_dir(path).with_context(|| format!("list {}", path.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", path.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry
            .file_type()
            .with_context(|| format!("stat {}", entry.path().display()))?;
        let bytes = if kind.is_dir() {
            dir_size(&entry.path())?.bytes
        } else {
            entry
                .metadata()
                .with_context(|| format!("stat {}", entry.path().display()))?
                .len()
        };
        parts.push((name, bytes));
    }
    parts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(parts)
}

/// What a time-bound write run measured, before the engine is closed.
#[derive(Debug, Clone, Copy)]
pub struct WriteTiming {
    pub samples: u64,
    /// From starting the writers until the last one returned (each finishes
    /// the batch it is in when the time is up).
    pub wall_seconds: f64,
    /// Time spent inside the engine's write call, averaged over writers:
    /// the wall time minus building batches in the engine's input type.
    pub engine_seconds: f64,
    /// CPU time of the whole process (every thread, the engine's background
    /// threads included) during the run, where the OS reports it.
    pub cpu_seconds: Option<f64>,
}

/// User + system CPU seconds of this process so far (Linux
/// `/proc/self/stat`, in clock ticks of 1/100 s).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Runs `writers` threads of `body(writer, stop)` for `seconds` of wall
/// time. Each body returns the samples it wrote and the time it spent in
/// engine calls.
pub fn run_writers<F>(writers: usize, seconds: f64, body: F) -> Result<WriteTiming>
where
    F: Fn(usize, &AtomicBool) -> Result<(u64, Duration)> + Sync,
{
    let stop = AtomicBool::new(false);
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let results: Vec<Result<(u64, Duration)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (body, stop) = (&body, &stop);
                scope.spawn(move || body(w, stop))
            })
            .collect();
        // Sleep in slices so a writer that fails early ends the run early.
        let deadline = started + Duration::from_secs_f64(seconds);
        while Instant::now() < deadline && !handles.iter().any(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(10).min(deadline - Instant::now()));
        }
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a writer thread panicked")))
            })
            .collect()
    });
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = match (cpu_before, process_cpu_seconds()) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    let mut samples = 0;
    let mut engine = Duration::ZERO;
    for result in results {
        let (n, t) = result?;
        samples += n;
        engine += t;
    }
    Ok(WriteTiming {
        samples,
        wall_seconds,
        engine_seconds: engine.as_secs_f64() / writers as f64,
        cpu_seconds,
    })
}

/// Latency of `write 4 KiB + fdatasync` on the disk under `dir`, measured
/// for `seconds`: the floor under every fsync-per-write figure, and on a
/// shared machine the figure that moves them most.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FsyncProbe {
    pub syncs: usize,
    pub median_ms: f64,
    pub p99_ms: f64,
}

pub fn fsync_probe(dir: &Path, seconds: f64) -> Result<FsyncProbe> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
    let block = [0x5au8; 4096];
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < seconds || latencies.is_empty() {
        let t = Instant::now();
        file.write_all(&block)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("write and sync {}", path.display()))?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    drop(file);
    std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Ok(FsyncProbe {
        syncs: latencies.len(),
        median_ms: at(0.5),
        p99_ms: at(0.99),
    })
}

/// Runs `f` `repeat` times; returns the shortest time and the first result.
pub fn best_of<T>(repeat: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut best = f64::INFINITY;
    let mut first = None;
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let out = f()?;
        best = best.min(started.elapsed().as_secs_f64());
        if first.is_none() {
            first = Some(out);
        } else {
            drop(out);
        }
    }
    Ok((best, first.expect("ran at least once")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_recurse() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("y"), [0u8; 5]).unwrap();
        let size = dir_size(dir.path()).unwrap();
        assert_eq!((size.bytes, size.files), (15, 2));
        let parts = dir_breakdown(dir.path()).unwrap();
        assert_eq!(parts, vec![("a".to_owned(), 10), ("y".to_owned(), 5)]);
    }

    #[test]
    fn fsync_probe_measures() {
        let dir = tempfile::tempdir().unwrap();
        let probe = fsync_probe(dir.path(), 0.01).unwrap();
        assert!(probe.syncs >= 1 && probe.p99_ms >= probe.median_ms);
        assert!(!dir.path().join("fsync-probe").exists());
    }

    #[test]
    fn writers_stop_on_time_and_errors_surface() {
        let timing = run_writers(2, 0.05, |_, stop| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok((n, Duration::ZERO))
        })
        .unwrap();
        assert!(timing.samples > 0 && timing.wall_seconds >= 0.05);
        if cfg!(target_os = "linux") {
            assert!(timing.cpu_seconds.is_some());
        }
        let failed = run_writers(1, 10.0, |_, _| Err(anyhow!("boom")));
        assert!(failed.is_err());
    }
}
