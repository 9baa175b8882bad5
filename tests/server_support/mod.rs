//! Starting a `strata::server::Server` on 127.0.0.1 (a free port) in its
//! own tokio runtime, and a blocking HTTP client that returns every status
//! (4xx and 5xx included) instead of failing on them.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use strata::server::{AppState, Server, ServerConfig};
use strata::{Db, Options};

/// A running server over a database in a temporary directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub db: Arc<Db>,
    pub state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with `config` (its `listen` replaced by 127.0.0.1:0) over a
    /// new database opened with `options`.
    pub fn start_with(config: ServerConfig, options: Options) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path(), options).unwrap());
        Self::start_on(dir, db, config)
    }

    /// A server with the default configuration and database options.
    pub fn start() -> TestServer {
        Self::start_with(ServerConfig::default(), Options::default())
    }

    /// A server over an open database in `dir`.
    pub fn start_on(dir: tempfile::TempDir, db: Arc<Db>, config: ServerConfig) -> TestServer {
        let config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..config
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let served = Arc::clone(&db);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let server = Server::bind(served, config).await.unwrap();
                ready_tx
                    .send((server.local_addr().unwrap(), Arc::clone(server.state())))
                    .unwrap();
                server
                    .run(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let (addr, state) = ready_rx.recv().unwrap();
        TestServer {
            addr,
            db,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server gracefully (in-flight requests answered) and
    /// waits for it.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A response: status, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn reply(response: ureq::http::Response<ureq::Body>) -> Reply {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = response
        .into_body()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

/// `GET url` with extra headers.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = agent().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    reply(request.call().unwrap())
}

/// `POST url` with `body` and extra headers.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut request = agent().post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    reply(request.send(body).unwrap())
}
