//! The released binary as an operator runs it: `accolade serve` and other commands started as
//! processes in a scratch directory (their working directory, so `./accolade-data` and
//! `accolade.toml` are the test's own and nothing lands in the source tree), configured only
//! through the environment, flags and files; a served process is driven over HTTP (the JSON API
//! with a bearer token, the admin UI through its login form) and SIGKILLed when its handle
//! drops, so a failing assert leaves no process behind.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{free_port, unique};

pub const BINARY: &str = env!("CARGO_BIN_EXE_accolade");
/// A fixed secrets key, so no test writes a key file it did not ask for.
pub const SECRETS_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
/// Password of the admin accounts [`Operator::create_admin`] creates.
pub const ADMIN_PASSWORD: &str = "operator test password";

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

    /// The command as every helper here starts it (scratch directory, only the test's environment).
    pub fn command(&self, args: &[&str]) -> Command {
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
        self.run_env(args, &[])
    }

    /// Runs a command with these variables added for it alone.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args)
            .envs(env.iter().copied())
            .output()
            .expect("run accolade")
    }

    /// Writes a file into the scratch directory and returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `accolade admin create-user --username USER` with [`ADMIN_PASSWORD`] on standard input.
    pub fn create_admin(&self, username: &str) {
        let out = self.run_with_input(
            &["admin", "create-user", "--username", username],
            &format!("{ADMIN_PASSWORD}\n"),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
        self.ok_env(args, &[])
    }

    /// [`Operator::ok`] with these variables added for this command alone.
    pub fn ok_env(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run_env(args, env);
        assert!(
            out.status.success(),
            "accolade {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A new Open Credit app on `tier` (`accolade opencredit create-app`).
    pub fn opencredit_app(&self, tier: &str) -> OcApp {
        let out = self.ok(&[
            "opencredit",
            "create-app",
            "--name",
            "Test app",
            "--tier",
            tier,
        ]);
        let line = |prefix: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {out}"))
                .to_string()
        };
        OcApp {
            key: line("X-Api-Key: "),
            secret: line("X-Api-Secret: "),
        }
    }

    /// A new API token (`accolade admin create-token`).
    pub fn token(&self) -> String {
        self.ok(&["admin", "create-token", "--name", "test"])
            .trim()
            .to_string()
    }

    /// `accolade serve` on a free port, ready to answer. Extra arguments follow `serve`.
    pub async fn serve(&self, extra: &[&str]) -> Served {
        self.serve_env(extra, &[]).await
    }

    /// [`Operator::serve`] with these variables added for this server alone.
    pub async fn serve_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Served {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let mut args = vec!["serve", "--bind", &bind];
        args.extend_from_slice(extra);
        let log = self.path(&format!("serve-{port}.log"));
        let child = self
            .command(&args)
            .envs(env.iter().copied())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("start accolade serve");
        let mut served = Served {
            child,
            base: format!("http://{bind}"),
            log,
            token: String::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
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
    /// The bearer token [`Served::api`] sends (see [`Served::with_token`]).
    pub token: String,
    /// A client that does not follow redirects (the admin UI answers with them).
    pub http: reqwest::Client,
}

impl Served {
    async fn wait_ready(&mut self) {
        for _ in 0..1200 {
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
                panic!("accolade serve exited with {status}:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not become ready:\n{}", self.log());
    }

    /// Uses this bearer token for [`Served::api`].
    pub fn with_token(mut self, token: &str) -> Served {
        self.token = token.to_string();
        self
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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

    /// Signs in to the admin UI through its form; the session cookie (`name=value`), or `None`
    /// when the login is refused.
    pub async fn sign_in(&self, username: &str, password: &str) -> Option<String> {
        let csrf = login_csrf(&self.http, &self.base).await;
        let r = self
            .http
            .post(self.url("/admin/login"))
            .header("cookie", format!("accolade_login_csrf={csrf}"))
            .form(&[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/admin"),
            ])
            .send()
            .await
            .unwrap();
        cookie(&r, "accolade_session").map(|s| format!("accolade_session={s}"))
    }

    /// Signs in as an account [`Operator::create_admin`] made.
    pub async fn admin_session(&self, username: &str) -> String {
        self.sign_in(username, ADMIN_PASSWORD)
            .await
            .expect("signing in with the test password")
    }

    /// `POST path` of the admin UI with a session cookie, as its forms send it: the page's CSRF
    /// token (read from `/admin`) and `fields`; returns the status and the HTML.
    pub async fn admin_form(
        &self,
        session: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String) {
        let (_, page) = self.admin_page(session, "/admin").await;
        let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
        let csrf = page[at..at + page[at..].find('"').unwrap()].to_string();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let r = self
            .http
            .post(self.url(path))
            .header("cookie", session)
            .form(&form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// `GET path` of the admin UI with a session cookie; returns the status and the HTML.
    pub async fn admin_page(&self, session: &str, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(self.url(path))
            .header("cookie", session)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// An Open Credit app's credentials.
#[derive(Clone)]
pub struct OcApp {
    pub key: String,
    pub secret: String,
}

impl Served {
    /// `POST /v1.1{path}` with the app's credentials and a form body: the status, the
    /// `Retry-After` header and the JSON envelope.
    pub async fn opencredit_post(
        &self,
        app: &OcApp,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, Option<String>, Value) {
        opencredit_post(&self.http, &self.base, app, path, form).await
    }

    /// Registers a verified member (the app's tier must allow verified accounts) and signs it
    /// in; its access token.
    pub async fn opencredit_member(&self, app: &OcApp, email: &str) -> String {
        let password = "correct horse battery staple";
        let (status, _, body) = self
            .opencredit_post(
                app,
                "/authenticate/register",
                &[
                    ("email", email),
                    ("password", password),
                    ("first_name", "Ada"),
                    ("last_name", "Lovelace"),
                    ("verified", "1"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let r = self
            .http
            .post(self.url("/v1.1/authenticate"))
            .header("X-Api-Key", &app.key)
            .header("X-Api-Secret", &app.secret)
            .basic_auth(email, Some(password))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body["data"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {body}"))
            .to_string()
    }

    /// One line of `/proc/<pid>/status` of the server, in KiB: `VmRSS` (resident now) or
    /// `VmHWM` (the most it has been resident).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    /// CPU time the server process used so far, all threads, user and system.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the server's /proc stat");
        // After the command name in parentheses: state is field 3, utime 14 and stime 15.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }
}

/// [`Served::opencredit_post`] with any client (for tasks that do not borrow the server).
pub async fn opencredit_post(
    http: &reqwest::Client,
    base: &str,
    app: &OcApp,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, Option<String>, Value) {
    let r = http
        .post(format!("{base}/v1.1{path}"))
        .header("X-Api-Key", &app.key)
        .header("X-Api-Secret", &app.secret)
        .form(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /v1.1{path}: {e}"));
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry_after, r.json().await.unwrap_or(Value::Null))
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Opens the admin login form; returns its CSRF token (the cookie the form must echo).
pub async fn login_csrf(http: &reqwest::Client, base: &str) -> String {
    let form = http
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .unwrap();
    cookie(&form, "accolade_login_csrf").expect("login CSRF cookie")
}

/// The value a response sets for a cookie (none when it clears it).
fn cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or("").to_string())
        .filter(|v| !v.is_empty())
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
