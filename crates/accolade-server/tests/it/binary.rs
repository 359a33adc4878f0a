//! The real `accolade` binary, run as an operator runs it: subcommands with flags and
//! `ACCOLADE_*` variables, and `accolade serve` on a free port driven over HTTP (the JSON API
//! with a bearer token, the admin UI with a signed-in session). Everything lives in a temp
//! directory, which is also the working directory, so nothing is written into the source tree.

#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{free_port, unique};

/// Encrypts Credly keys at rest; the same for every process of a test.
pub const SECRETS_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
/// Password of the admin account [`Workdir::create_admin`] creates.
pub const ADMIN_PASSWORD: &str = "operator test password";

/// A temp directory with an SQLite database URL in it.
pub struct Workdir {
    pub dir: PathBuf,
    pub db: String,
}

impl Workdir {
    pub fn new(what: &str) -> Workdir {
        let dir = std::env::temp_dir().join(format!("accolade-{what}-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = format!("sqlite://{}/accolade.db", dir.display());
        Workdir { dir, db }
    }

    /// `accolade ARGS --database-url DB`, run in the temp directory with the test's secrets key.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_accolade"));
        c.args(args)
            .args(["--database-url", &self.db])
            .current_dir(&self.dir)
            .env("ACCOLADE_SECRETS__KEY", SECRETS_KEY)
            .env("ACCOLADE_LOG__LEVEL", "warn");
        c
    }

    /// Runs a subcommand and returns its output, whether it succeeded or not.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.command(args);
        c.envs(env.iter().copied());
        c.output().expect("run accolade")
    }

    /// Runs a subcommand that must succeed; returns its standard output.
    pub fn run_ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(
            out.status.success(),
            "accolade {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `accolade admin create-token --name tests`: a bearer token for the JSON API.
    pub fn create_token(&self) -> String {
        self.run_ok(&["admin", "create-token", "--name", "tests"], &[])
            .trim()
            .to_string()
    }

    /// `accolade admin create-user --username USER` with [`ADMIN_PASSWORD`] on standard input.
    pub fn create_admin(&self, username: &str) {
        let mut child = self
            .command(&["admin", "create-user", "--username", username])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{ADMIN_PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `accolade serve --bind 127.0.0.1:PORT` with these extra variables and waits until
    /// it is ready.
    pub async fn serve(&self, env: &[(&str, &str)], token: &str) -> Server {
        let port = free_port();
        let log = self.dir.join(format!("serve-{port}.log"));
        let child = self
            .command(&["serve", "--bind", &format!("127.0.0.1:{port}")])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(File::create(&log).unwrap()))
            .spawn()
            .expect("start accolade serve");
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            token: token.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        server.wait_ready().await;
        server
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `accolade serve`, killed when dropped (a failing assert leaves no process behind).
pub struct Server {
    child: Child,
    pub base: String,
    log: PathBuf,
    token: String,
    pub http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = self
                .http
                .get(format!("{}/health/ready", self.base))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("accolade serve exited with {status}: {}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("accolade serve did not become ready: {}", self.log());
    }

    /// What the server logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `METHOD /api/v1{path}` with the bearer token; returns the status and the JSON body.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method: reqwest::Method = method.parse().unwrap();
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Signs in to the admin UI through its form; returns the session cookie (`name=value`).
    pub async fn admin_session(&self, username: &str) -> String {
        let form = self
            .http
            .get(format!("{}/admin/login", self.base))
            .send()
            .await
            .unwrap();
        let csrf = cookie(&form, "accolade_login_csrf").expect("login CSRF cookie");
        let r = self
            .http
            .post(format!("{}/admin/login", self.base))
            .header("cookie", format!("accolade_login_csrf={csrf}"))
            .form(&[
                ("username", username),
                ("password", ADMIN_PASSWORD),
                ("csrf", &csrf),
                ("next", "/admin"),
            ])
            .send()
            .await
            .unwrap();
        let session = cookie(&r, "accolade_session")
            .unwrap_or_else(|| panic!("signing in failed: {}", r.status()));
        format!("accolade_session={session}")
    }

    /// `GET path` of the admin UI with a session cookie; returns the status and the HTML.
    pub async fn admin_page(&self, session: &str, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", session)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// The value a response sets for a cookie.
fn cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or("").to_string())
        .filter(|v| !v.is_empty())
}

/// Polls `check` every 50 ms until it returns `Some`, or panics with `what` after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} (waited {limit:?})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes a file into the work directory and returns its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}
