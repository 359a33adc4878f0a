//! The released binary as an operator runs it: `accolade serve` and other commands started as
//! processes in a scratch directory (their working directory, so `./accolade-data` and
//! `accolade.toml` are the test's own), configured only through the environment, flags and
//! files. A served process is SIGKILLed when its handle drops.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::helpers::{free_port, unique};

pub const BINARY: &str = env!("CARGO_BIN_EXE_accolade");
/// A fixed secrets key, so no test writes a key file it did not ask for.
pub const SECRETS_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

/// A scratch directory and the environment every command of one test shares.
#[derive(Clone)]
pub struct Operator {
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Operator {
    /// A new scratch directory with an SQLite database in it.
    pub fn new(name: &str) -> Operator {
        let dir = std::env::temp_dir().join(format!("accolade-{name}-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        Operator {
            env: vec![
                ("ACCOLADE_SECRETS__KEY".into(), SECRETS_KEY.into()),
                ("ACCOLADE_LOG__LEVEL".into(), "warn".into()),
                (
                    "ACCOLADE_DATABASE__URL".into(),
                    format!("sqlite://{}/accolade.db", dir.display()),
                ),
            ],
            dir,
        }
    }

    /// Sets (or replaces) one environment variable for every later command.
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Operator {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BINARY);
        cmd.args(args).current_dir(&self.dir);
        // Only what the test sets: no ACCOLADE_* of the developer's shell leaks in.
        for (k, _) in std::env::vars() {
            if k.starts_with("ACCOLADE_") || k == "DATABASE_URL" {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs a command to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run accolade")
    }

    /// Runs a command with `stdin` as its input.
    pub fn run_with_input(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run accolade");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "accolade {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A new API token (`accolade admin create-token`).
    pub fn token(&self) -> String {
        self.ok(&["admin", "create-token", "--name", "test"])
            .trim()
            .to_string()
    }

    /// `accolade serve` on a free port, ready to answer. Extra arguments follow `serve`.
    pub async fn serve(&self, extra: &[&str]) -> Served {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let mut args = vec!["serve", "--bind", &bind];
        args.extend_from_slice(extra);
        let log = self.path(&format!("serve-{port}.log"));
        let child = self
            .command(&args)
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("start accolade serve");
        let served = Served {
            child,
            base: format!("http://{bind}"),
            log,
        };
        served.wait_ready().await;
        served
    }
}

/// A running `accolade serve`.
pub struct Served {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Served {
    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(r) = client
                .get(format!("{}/health/ready", self.base))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not become ready:\n{}", self.output());
    }

    /// What the server printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a path exists below the scratch directory (files the binary wrote).
pub fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}
