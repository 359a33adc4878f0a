//! Starting the real `accolade` binary for a benchmark and calling its admin API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

/// Which database a benchmark's server uses: a fresh SQLite file in its temp folder (the
/// default), or a fresh database on a PostgreSQL server, created for the run and dropped after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    /// The server's URL with any database name; the run's database is made beside it.
    Postgres(String),
}

/// PostgreSQL of the development and CI machines.
pub const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

impl std::str::FromStr for Database {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sqlite" => Ok(Database::Sqlite),
            "postgres" | "postgresql" => Ok(Database::Postgres(DEFAULT_PG.into())),
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Database::Postgres(url.into()))
            }
            other => Err(format!("`{other}`: use sqlite, postgres or postgres://URL")),
        }
    }
}

impl Database {
    pub fn name(&self) -> &'static str {
        match self {
            Database::Sqlite => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }
}

/// A running `accolade serve` on a fresh database (a temp folder, removed on drop, and for
/// PostgreSQL a database dropped on drop).
pub struct Server {
    child: Child,
    pub base: String,
    pub token: String,
    pub dir: PathBuf,
    /// The `--database-url` it runs with.
    pub db_url: String,
    /// (server URL, database name) of a PostgreSQL database to drop.
    pg: Option<(String, String)>,
    /// Further instances on the same database (`start_instances`), stopped with this one.
    pub others: Vec<Server>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.others.clear();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((url, name)) = &self.pg {
            let _ = Command::new("psql")
                .args([
                    url.as_str(),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .output();
        }
    }
}

/// Creates an admin token and starts the server with extra `env` settings (SQLite).
pub fn start_server(binary: &Path, env: &[(&str, String)]) -> anyhow::Result<Server> {
    start_server_on(binary, env, &Database::Sqlite)
}

/// [`start_server`] on the given database.
pub fn start_server_on(
    binary: &Path,
    env: &[(&str, String)],
    database: &Database,
) -> anyhow::Result<Server> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("accolade-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (db, pg) = match database {
        Database::Sqlite => (format!("sqlite://{}/bench.db", dir.display()), None),
        Database::Postgres(url) => {
            let name = format!("accolade_bench_{}_{n}", std::process::id());
            let out = Command::new("psql")
                .args([url.as_str(), "-qc", &format!("CREATE DATABASE {name}")])
                .output()
                .context("running psql to create the benchmark database")?;
            if !out.status.success() {
                bail!(
                    "cannot create {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let (prefix, _) = url.rsplit_once('/').context("a database name in the URL")?;
            (format!("{prefix}/{name}"), Some((url.clone(), name)))
        }
    };
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
        db_url: db,
        pg,
        others: Vec::new(),
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
        let (child, base) = spawn(binary, &self.db_url, env)?;
        self.child = child;
        self.base = base;
        Ok(())
    }

    /// Starts `more` further instances on this server's database (PostgreSQL: several instances
    /// share one), with the same token; they stop with this one.
    pub fn add_instances(
        &mut self,
        binary: &Path,
        env: &[(&str, String)],
        more: usize,
    ) -> anyhow::Result<()> {
        for i in 0..more {
            let mut env = env.to_vec();
            // Each instance its own consumer and publisher identity.
            env.push((
                "ACCOLADE_EVENT_BUS__CONSUMER",
                format!("bench-{}-{i}", std::process::id()),
            ));
            let (child, base) = spawn(binary, &self.db_url, &env)?;
            self.others.push(Server {
                child,
                base,
                token: self.token.clone(),
                dir: self.dir.join(format!("instance-{i}")),
                db_url: self.db_url.clone(),
                pg: None,
                others: Vec::new(),
            });
        }
        Ok(())
    }

    /// The base URLs of every instance, this one first.
    pub fn bases(&self) -> Vec<String> {
        std::iter::once(self.base.clone())
            .chain(self.others.iter().map(|o| o.base.clone()))
            .collect()
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
