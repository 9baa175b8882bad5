//! Plumbing shared by the tests that run this test binary as a child
//! process (tests/crash.rs, tests/soak.rs): spawning the child, reading its
//! stdout line by line, and, when it dies or falls silent, failing with its
//! exit status and stderr so that the failure explains itself.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a child may stay silent before the test gives up on it. Not a
/// performance threshold: a healthy child talks many times a second, this
/// only keeps a hung child from hanging the test run.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(60);

/// SIGKILL's number on every Unix strata runs on.
const SIGKILL: i32 = 9;

/// A child process running one ignored test of the current test binary.
pub struct ChildTest {
    name: String,
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    stdout_reader: Option<JoinHandle<()>>,
    stderr_reader: Option<JoinHandle<String>>,
}

/// How a child ended.
pub struct Ended {
    pub status: ExitStatus,
    /// Stdout lines not yet taken with [`ChildTest::next_line`].
    pub unread: Vec<String>,
    pub stderr: String,
}

impl ChildTest {
    /// Runs the ignored test `test` of this binary in a child process with
    /// the environment variables `env`.
    pub fn spawn(test: &str, env: &[(&str, String)]) -> ChildTest {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--ignored",
                "--exact",
                test,
                "--nocapture",
                "--test-threads=1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start child {test}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr_reader = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        });
        ChildTest {
            name: test.to_string(),
            child,
            lines,
            stdout_reader: Some(stdout_reader),
            stderr_reader: Some(stderr_reader),
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next line the child prints. If it exits or stays silent for
    /// [`SILENCE_LIMIT`] instead, panics with its exit status and stderr
    /// (a silent child is killed first). `context` says what the caller
    /// was doing.
    pub fn next_line(&mut self, context: &str) -> String {
        match self.next_line_until(Instant::now() + SILENCE_LIMIT, context) {
            Some(line) => line,
            None => self.silent(context),
        }
    }

    /// The next line the child prints before `deadline`, or `None`. If it
    /// exits instead, panics with its exit status and stderr.
    pub fn next_line_until(&mut self, deadline: Instant, context: &str) -> Option<String> {
        match self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                let ended = self.reap();
                panic!(
                    "{context}: child {} closed its stdout (exited: {}){}",
                    self.name,
                    ended.status,
                    stderr_section(&ended.stderr)
                )
            }
        }
    }

    fn silent(&mut self, context: &str) -> ! {
        let _ = self.child.kill();
        let ended = self.reap();
        panic!(
            "{context}: child {} said nothing for {SILENCE_LIMIT:?}; killed it ({}){}",
            self.name,
            ended.status,
            stderr_section(&ended.stderr)
        )
    }

    /// Kills the child with SIGKILL and reaps it.
    pub fn kill(mut self) -> Ended {
        // Fails only if the child already exited, which `reap` reports.
        let _ = self.child.kill();
        self.reap()
    }

    /// Waits for the child to exit on its own.
    pub fn wait(mut self) -> Ended {
        self.reap()
    }

    fn reap(&mut self) -> Ended {
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.stdout_reader.take() {
            reader.join().unwrap();
        }
        let stderr = self
            .stderr_reader
            .take()
            .map(|reader| reader.join().unwrap())
            .unwrap_or_default();
        Ended {
            status,
            unread: self.lines.try_iter().collect(),
            stderr,
        }
    }
}

impl Drop for ChildTest {
    fn drop(&mut self) {
        // A test that panics must not leave its child running.
        if self.stdout_reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Ended {
    /// Panics unless SIGKILL ended the child: a child that exited on its
    /// own before the kill failed.
    pub fn assert_killed(&self, context: &str) {
        assert_eq!(
            self.status.signal(),
            Some(SIGKILL),
            "{context}: the child exited before it was killed: {}",
            self.describe()
        );
    }

    /// Status and stderr, for a failure message.
    pub fn describe(&self) -> String {
        format!(
            "exit status {}{}",
            self.status,
            stderr_section(&self.stderr)
        )
    }
}

fn stderr_section(stderr: &str) -> String {
    let stderr = stderr.trim_end();
    if stderr.is_empty() {
        "; stderr empty".to_string()
    } else {
        format!("; stderr:\n{stderr}")
    }
}

/// An environment variable a child was started with.
pub fn env_var<T: std::str::FromStr>(name: &str) -> T {
    let text = std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    text.parse()
        .unwrap_or_else(|_| panic!("{name}={text:?} does not parse"))
}

/// A small deterministic generator (64-bit LCG): test schedules that can
/// be replayed from the seed they print.
pub struct Lcg(pub u64);

impl Lcg {
    /// A seed from the clock, printed so a failing run can be repeated.
    pub fn from_clock(what: &str) -> Lcg {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        eprintln!("{what} seed {seed}");
        Lcg(seed)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}
