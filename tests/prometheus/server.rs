//! A real Prometheus for tests/prometheus_diff.rs: finding the binaries,
//! building a TSDB from OpenMetrics text with `promtool`, running the server
//! on a free loopback port (with the remote-write receiver on), and a
//! minimal HTTP/1.0 client for its API (GET, and POST for remote write).
//!
//! Invariants: a started [`Prometheus`] is killed and reaped when dropped,
//! also when the test panics; every wait on the process or a socket is
//! bounded (a hang becomes a failure naming what hung, never a stuck test).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to report ready. Not a performance bound:
/// it answers within a few seconds; this only turns a hang into a failure.
const READY_LIMIT: Duration = Duration::from_secs(120);

/// How long one HTTP exchange may take; same purpose as [`READY_LIMIT`].
const HTTP_LIMIT: Duration = Duration::from_secs(300);

/// The `prometheus` and `promtool` binaries (overridable with the
/// `PROMETHEUS` and `PROMTOOL` environment variables) and the version
/// `prometheus --version` reports.
pub struct Tools {
    pub prometheus: PathBuf,
    pub promtool: PathBuf,
    pub version: String,
}

impl Tools {
    /// The tools if both run, or why not.
    pub fn find() -> Result<Tools, String> {
        let prometheus = binary("PROMETHEUS", "prometheus");
        let promtool = binary("PROMTOOL", "promtool");
        let version = version_line(&prometheus)?;
        version_line(&promtool)?;
        Ok(Tools {
            prometheus,
            promtool,
            version,
        })
    }

    /// The major version number, if the version line has one
    /// (`prometheus, version 2.42.0+ds (branch: ...)`).
    pub fn major_version(&self) -> Option<u32> {
        let after = self.version.split("version ").nth(1)?;
        after.split('.').next()?.trim().parse().ok()
    }

    /// Builds TSDB blocks in `out` from the OpenMetrics file `input`.
    pub fn create_blocks(&self, input: &Path, out: &Path) -> Result<(), String> {
        let output = Command::new(&self.promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(input)
            .arg(out)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.promtool.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "promtool tsdb create-blocks-from openmetrics failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

fn binary(env: &str, name: &str) -> PathBuf {
    std::env::var_os(env).map_or_else(|| PathBuf::from(name), PathBuf::from)
}

fn version_line(binary: &Path) -> Result<String, String> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} --version failed: {}",
            binary.display(),
            output.status
        ));
    }
    // Prometheus prints its version on stdout, older releases on stderr.
    let text = [output.stdout, output.stderr].concat();
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// A running Prometheus serving a TSDB directory; killed on drop.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    log: PathBuf,
    /// The command line, for a person who wants to start it again by hand.
    pub command_line: String,
}

impl Prometheus {
    /// Starts Prometheus on `tsdb` (no scrape jobs; remote write accepted)
    /// in `work` (config and log files) and waits until it reports ready. A port taken between
    /// choosing and binding it is retried with another port.
    pub fn start(tools: &Tools, tsdb: &Path, work: &Path) -> Prometheus {
        // evaluation_interval is the default resolution of subqueries
        // written `[5m:]`; 1m is Prometheus' default, set explicitly.
        Self::start_configured(tools, tsdb, work, &|_port| {
            "global:\n  evaluation_interval: 1m\n".to_owned()
        })
    }

    /// Like [`Self::start`], with the configuration file `config(port)`
    /// for the port it will listen on (scrape jobs, remote write and read).
    pub fn start_configured(
        tools: &Tools,
        tsdb: &Path,
        work: &Path,
        config: &dyn Fn(u16) -> String,
    ) -> Prometheus {
        let config_file = work.join("prometheus.yml");
        let log = work.join("prometheus.log");
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            std::fs::write(&config_file, config(port)).unwrap();
            let config = &config_file;
            let args = [
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", tsdb.display()),
                "--storage.tsdb.retention.time=100y".to_owned(),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--query.lookback-delta=5m".to_owned(),
                "--web.enable-remote-write-receiver".to_owned(),
                "--log.level=warn".to_owned(),
            ];
            let command_line = format!("{} {}", tools.prometheus.display(), args.join(" "));
            let log_file = std::fs::File::create(&log).unwrap();
            let child = Command::new(&tools.prometheus)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {command_line}: {e}"));
            let mut server = Prometheus {
                child,
                port,
                log: log.clone(),
                command_line,
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(failure) => last_failure = failure,
            }
            if !server.log_text().contains("address already in use") {
                break;
            }
        }
        panic!("Prometheus did not start: {last_failure}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!(
                    "it exited ({status}); its log:\n{}",
                    self.log_text()
                ));
            }
            if let Ok((200, _)) = self.get("/-/ready") {
                return Ok(());
            }
            if started.elapsed() > READY_LIMIT {
                return Err(format!(
                    "not ready after {READY_LIMIT:?}; its log:\n{}",
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GETs `path` (with its query string) from the server: the HTTP
    /// status and body.
    pub fn get(&self, path: &str) -> io::Result<(u16, String)> {
        http_request(self.port, "GET", path, &[], &[])
    }

    /// POSTs `body` with `headers` to `path`: the HTTP status and body.
    pub fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<(u16, String)> {
        http_request(self.port, "POST", path, headers, body)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listened on a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// One HTTP/1.0 request: the server closes the connection after the
/// response, so the body is everything after the headers (no chunked
/// encoding, no compression: the request asks for neither).
fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(HTTP_LIMIT))?;
    stream.set_write_timeout(Some(HTTP_LIMIT))?;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response =
        String::from_utf8(response).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of headers"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no status code"))?;
    Ok((status, body.to_owned()))
}

/// Percent-encodes `text` for a URL query string (everything but RFC 3986
/// unreserved characters).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
