//! Starting the real `accolade` binary for a benchmark and calling its admin API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

/// A running `accolade serve` on a fresh SQLite database in a temp folder (removed on drop).
pub struct Server {
    child: Child,
    pub base: String,
    pub token: String,
    pub dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates an admin token and starts the server with extra `env` settings.
pub fn start_server(binary: &Path, env: &[(&str, String)]) -> anyhow::Result<Server> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("accolade-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let db = format!("sqlite://{}/bench.db", dir.display());
    let out = Command::new(binary)
        .args([
            "admin",
            "create-token",
            "--name",
            "bench",
            "--database-url",
            &db,
        ])
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "create-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let token = String::from_utf8(out.stdout)?.trim().to_string();
    let (child, base) = spawn(binary, &db, env)?;
    Ok(Server {
        child,
        base,
        token,
        dir,
    })
}

/// `accolade serve` on a free port of 127.0.0.1.
fn spawn(binary: &Path, db: &str, env: &[(&str, String)]) -> anyhow::Result<(Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(binary)
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            db,
        ])
        .env("ACCOLADE_LOG__LEVEL", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

impl Server {
    /// Stops the server (SIGKILL) and starts it again on the same database with `env`.
    pub fn restart(&mut self, binary: &Path, env: &[(&str, String)]) -> anyhow::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let db = format!("sqlite://{}/bench.db", self.dir.display());
        let (child, base) = spawn(binary, &db, env)?;
        self.child = child;
        self.base = base;
        Ok(())
    }

    /// Stops the server (SIGKILL), keeping its database for a restart.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

pub async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..400 {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("server did not become ready")
}

/// Calls the admin API; non-2xx answers are errors.
pub async fn call(
    client: &reqwest::Client,
    s: &Server,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let r = client
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(&s.token)
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{path}: {status} {v}");
    }
    Ok(v)
}
