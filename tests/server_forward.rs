//! Remote write forwarding (`strata::server::forward`) across a `kill -9`:
//! a child process appends samples (each acknowledged with `SyncMode::Always`)
//! while its forwarder ships them to a test receiver that refuses every
//! fifth request with a 500; the child is killed mid-stream and started
//! again. The receiver must end up with every acknowledged sample, values
//! bit for bit, and duplicates of at most the one batch in flight at the
//! kill.
#![cfg(feature = "server")]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{env_var, ChildTest};
use prost::Message;
use strata::server::forward::{ForwardConfig, ForwardPosition, Forwarder};
use strata::server::proto::WriteRequest;
use strata::{Db, Options, SeriesKey, SyncMode};

const SERIES: i64 = 3;
const BATCH: usize = 100;

/// (series text, timestamp) → value bits, and how often each arrived.
type Received = Arc<Mutex<BTreeMap<(String, i64), (u64, u32)>>>;

/// A remote-write receiver on 127.0.0.1 that records what it accepts and
/// answers 500 to every fifth request (without recording it).
struct Receiver {
    url: String,
    received: Received,
    requests: Arc<AtomicU64>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
        let received: Received = Arc::default();
        let requests = Arc::new(AtomicU64::new(0));
        let (received_in, requests_in) = (Arc::clone(&received), Arc::clone(&requests));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let n = requests_in.fetch_add(1, Ordering::SeqCst);
                handle(stream, n % 5 == 4, &received_in);
            }
        });
        Receiver {
            url,
            received,
            requests,
        }
    }
}

/// Reads one request (`Connection: close`), records its samples unless
/// `fail`, and answers.
fn handle(stream: TcpStream, fail: bool, received: &Received) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).unwrap();
    let mut stream = stream;
    if fail {
        let _ = stream.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
    let request = WriteRequest::decode(raw.as_slice()).unwrap();
    {
        let mut received = received.lock().unwrap();
        for series in &request.timeseries {
            let pairs: Vec<(&str, &str)> = series
                .labels
                .iter()
                .filter(|l| l.name != "__name__")
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect();
            let name = series.labels.iter().find(|l| l.name == "__name__").unwrap();
            let key = SeriesKey::new(&name.value, &pairs).unwrap().to_string();
            for sample in &series.samples {
                let entry = received
                    .entry((key.clone(), sample.timestamp))
                    .or_insert((sample.value.to_bits(), 0));
                assert_eq!(
                    entry.0,
                    sample.value.to_bits(),
                    "{key} @ {}",
                    sample.timestamp
                );
                entry.1 += 1;
            }
        }
    }
    let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
}

fn key(s: i64) -> SeriesKey {
    SeriesKey::new("forwarded_total", &[("shard", &s.to_string())]).unwrap()
}

fn value_of(s: i64, ts: i64) -> f64 {
    // Odd values, a NaN payload now and then: checked bit for bit.
    if ts % 97 == 0 {
        f64::from_bits(0x7ff0_0000_0000_0002)
    } else {
        (ts * 3 + s) as f64 / 7.0
    }
}

/// Appends `FWD_COUNT` samples (forever when 0) while forwarding to
/// `FWD_URL`, printing `ack <series> <ts>` after each acknowledged append
/// and `done` when the count is reached; flushes every 500 samples, so WAL
/// files rotate and the forwarder's hold is exercised.
#[test]
#[ignore = "child process of forward_survives_kill_9"]
fn forward_child() {
    let dir: String = env_var("FWD_DIR");
    let url: String = env_var("FWD_URL");
    let start: i64 = env_var("FWD_START");
    let count: i64 = env_var("FWD_COUNT");
    let position = ForwardPosition::load(std::path::Path::new(&dir)).unwrap();
    let options = Options {
        sync: SyncMode::Always,
        keep_wal_from: Some(position.file_id),
        partition_duration_ms: 1_000,
        flush_complete_partitions: false,
        background_compaction: false,
        ..Options::default()
    };
    let db = Arc::new(Db::open(&dir, options).unwrap());
    let config = ForwardConfig {
        batch_samples: BATCH,
        poll_interval: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..ForwardConfig::new(url)
    };
    let _forwarder = Forwarder::start(Arc::clone(&db), config).unwrap();
    let handles: Vec<_> = (0..SERIES).map(|s| db.series(&key(s)).unwrap()).collect();
    println!("ready");
    let mut i = 0i64;
    loop {
        if count > 0 && i == count {
            println!("done");
            std::thread::sleep(Duration::from_secs(3600));
        }
        let ts = start + i;
        let s = i % SERIES;
        db.append_ref(&handles[s as usize], ts, value_of(s, ts))
            .unwrap();
        println!("ack {s} {ts}");
        if i % 500 == 499 {
            db.flush().unwrap();
        }
        i += 1;
        if count == 0 {
            // Slow enough that the kill lands mid-stream.
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn spawn(dir: &std::path::Path, url: &str, start: i64, count: i64) -> ChildTest {
    ChildTest::spawn(
        "forward_child",
        &[
            ("FWD_DIR", dir.display().to_string()),
            ("FWD_URL", url.to_owned()),
            ("FWD_START", start.to_string()),
            ("FWD_COUNT", count.to_string()),
        ],
    )
}

fn parse_ack(line: &str) -> Option<(i64, i64)> {
    let (s, ts) = line.strip_prefix("ack ")?.split_once(' ')?;
    Some((s.parse().ok()?, ts.parse().ok()?))
}

#[test]
fn forward_survives_kill_9() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<(i64, i64)> = Vec::new();

    // First run: killed once the receiver has some and more are acked.
    let mut child = spawn(dir.path(), &receiver.url, 1_000_000, 0);
    loop {
        let line = child.next_line("first run");
        acked.extend(parse_ack(&line));
        let received = receiver.received.lock().unwrap().len();
        if acked.len() >= 3_000 && received >= 1_000 {
            break;
        }
    }
    let ended = child.kill();
    ended.assert_killed("first run");
    acked.extend(ended.unread.iter().filter_map(|line| parse_ack(line)));
    let last_ts = acked.iter().map(|&(_, ts)| ts).max().unwrap();

    // Second run: resumes forwarding and appends 1,000 more.
    let mut child = spawn(dir.path(), &receiver.url, last_ts + 1, 1_000);
    loop {
        let line = child.next_line("second run");
        acked.extend(parse_ack(&line));
        if line == "done" {
            break;
        }
    }
    let expected: BTreeMap<(String, i64), u64> = acked
        .iter()
        .map(|&(s, ts)| ((key(s).to_string(), ts), value_of(s, ts).to_bits()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let have_all = {
            let received = receiver.received.lock().unwrap();
            expected.keys().all(|k| received.contains_key(k))
        };
        if have_all {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the receiver still misses acknowledged samples after 120 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(child.kill());

    let received = receiver.received.lock().unwrap();
    for (k, bits) in &expected {
        assert_eq!(received[k].0, *bits, "{k:?}");
    }
    let duplicates: u32 = received.values().map(|&(_, n)| n - 1).sum();
    eprintln!(
        "{} samples acknowledged, {} received, {duplicates} duplicates, {} requests (every fifth refused)",
        expected.len(),
        received.len(),
        receiver.requests.load(Ordering::SeqCst)
    );
    assert!(
        duplicates as usize <= BATCH,
        "{duplicates} duplicates: more than the batch in flight at the kill"
    );
    assert!(received.len() >= expected.len());
}
