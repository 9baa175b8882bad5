//! Opening a hostile segment allocates no more than a fixed multiple of the
//! file's size.
//!
//! Issue 7: a crafted 1 MB segment whose compressed tables each claimed
//! about a thousand times their stored size (within the old limit of
//! 1024 x frame + 1 MiB) made `Segment::open` inflate all three tables
//! before parsing any of them, reaching gigabytes before it was rejected.
//! The reader now refuses a table claiming more than 64 times its frame
//! (or 1 GiB) before inflating it, inflates into a buffer of exactly the
//! claimed size, and parses each table before inflating the next.
//!
//! Memory is measured with a counting global allocator (this test binary
//! only): the peak of live heap bytes during the open, minus the bytes
//! live before it. No timing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use strata::segment::format::{encode_header, Footer, RegionRef, FORMAT_VERSION, HEADER_LEN};
use strata::{Error, Segment};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds the GlobalAlloc contract; the counters are only statistics.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout (alloc/realloc
        // above), as the caller's contract guarantees.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for dealloc; `new_size` obeys the caller's contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let live = LIVE.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Tests in this binary measure one at a time.
static MEASURING: Mutex<()> = Mutex::new(());

/// Heap bytes allocated by `f` beyond what was live before it, at its peak.
fn peak_heap_growth<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

/// A version 2 table region: the zstd flag, `raw_len`, then one zstd frame
/// of `noise` pseudo-random bytes followed by `zeros` zero bytes (the noise
/// keeps the frame large, the zeros make it inflate far beyond its size).
fn hostile_region(noise: usize, zeros: usize, raw_len: u64) -> Vec<u8> {
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    encoder
        .set_pledged_src_size(Some((noise + zeros) as u64))
        .unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let random: Vec<u8> = (0..noise)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    encoder.write_all(&random).unwrap();
    let block = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block.len());
        encoder.write_all(&block[..n]).unwrap();
        left -= n;
    }
    let frame = encoder.finish().unwrap();
    let mut region = vec![1u8];
    region.extend_from_slice(&raw_len.to_le_bytes());
    region.extend_from_slice(&frame);
    region
}

/// A segment file of the given table regions, with valid header, footer
/// and checksums, so that a reader gets as far as inflating the tables.
fn segment_of(regions: [Vec<u8>; 3]) -> Vec<u8> {
    let mut file = encode_header().to_vec();
    let mut refs = [RegionRef::default(); 3];
    for (region, r) in regions.iter().zip(&mut refs) {
        *r = RegionRef {
            offset: file.len() as u64,
            len: region.len() as u64,
            crc: crc32fast::hash(region),
        };
        file.extend_from_slice(region);
    }
    let footer = Footer {
        strings: refs[0],
        series: refs[1],
        postings: refs[2],
        series_count: 1,
        chunk_count: 1,
        sample_count: 1,
        min_time_ms: 0,
        max_time_ms: 0,
        version: FORMAT_VERSION,
    };
    file.extend_from_slice(&footer.encode());
    assert!(file.len() > HEADER_LEN);
    file
}

/// Opens `path` through mmap and from the heap; both must refuse it as
/// corrupt, and neither may grow the heap by `limit` bytes or more.
fn assert_refused_within(path: &Path, limit: usize) {
    let (mapped, mapped_peak) = peak_heap_growth(|| Segment::open(path));
    let (heap, heap_peak) = peak_heap_growth(|| Segment::open_in_memory(path));
    for (how, result, peak) in [
        ("mmap", mapped, mapped_peak),
        ("in memory", heap, heap_peak),
    ] {
        match result {
            Err(Error::Corrupt(_)) => {}
            Err(other) => panic!("{how}: expected Error::Corrupt, got {other}"),
            Ok(_) => panic!("{how}: a hostile segment opened"),
        }
        eprintln!(
            "{how}: {} allocated at most {peak} bytes (limit {limit})",
            path.display()
        );
        assert!(
            peak < limit,
            "{how}: opening allocated {peak} bytes at its peak, limit {limit}"
        );
    }
}

#[test]
fn tables_claiming_a_thousand_times_their_size_are_refused_before_inflating() {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    // Three ~330 KiB frames, each inflating to ~320 MiB: a 1 MB file that
    // the old reader inflated to about 1 GiB of tables (over 3 GiB of
    // resident memory) before rejecting it.
    let noise = 320 << 10;
    let zeros = 320 << 20;
    let raw_len = (noise + zeros) as u64;
    let region = hostile_region(noise, zeros, raw_len);
    let frame_len = (region.len() - 9) as u64;
    assert!(
        raw_len <= frame_len * 1024 + (1 << 20),
        "within the old limit"
    );
    let file = segment_of([region.clone(), region.clone(), region]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.seg");
    std::fs::write(&path, &file).unwrap();
    drop(file);
    let file_len = std::fs::metadata(&path).unwrap().len() as usize;
    assert!(file_len < 1 << 20);
    assert_refused_within(&path, 64 * file_len);
}

#[test]
fn a_table_at_the_expansion_limit_inflates_once_and_is_parsed_alone() {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    // Every table claims exactly 64 times its frame and inflates to that
    // (the reader's limit), so each is inflated; its zeros are no valid
    // table, so the first one is refused before the next is inflated.
    let noise = 64 << 10;
    let probe = hostile_region(noise, 63 * noise, 0);
    let raw_len = 64 * (probe.len() - 9);
    // More zeros only lengthen the frame, so the claim stays within 64 x.
    let region = hostile_region(noise, raw_len - noise, raw_len as u64);
    let frame_len = region.len() - 9;
    let raw_len = u64::from_le_bytes(region[1..9].try_into().unwrap());
    assert!(raw_len <= 64 * frame_len as u64);
    let file = segment_of([region.clone(), region.clone(), region]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("at-limit.seg");
    std::fs::write(&path, &file).unwrap();
    let file_len = file.len();
    drop(file);
    // One table of at most 64 x its frame (a third of the file), and the
    // heap copy of the file for the in-memory open.
    assert_refused_within(&path, 64 * file_len / 3 + 2 * file_len);
}
