//! README's Quickstart, run as written: the second `sh` block of the Quickstart section is
//! taken from README.md and run by bash in a scratch directory, with the built `accolade` first
//! on `PATH` (what the first block, `cargo build --release` and the `PATH` line, provides). The
//! one change: `127.0.0.1:8080` becomes a free port, so the test never meets a server a
//! developer is running. Each `# -> …` line must match what the command before it printed
//! (`…` stands for any text).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::free_port;
use crate::process::{Operator, BINARY};

/// The `sh` blocks of the section that starts with `heading`.
fn sh_blocks(readme: &str, heading: &str) -> Vec<String> {
    let start = readme.find(heading).expect("the section exists");
    let section = &readme[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + 6..];
        let close = body.find("\n```").expect("a closed block");
        blocks.push(body[..close].to_string());
        rest = &body[close + 4..];
    }
    blocks
}

/// Whether `output` contains the parts of `expected` between `…`, in order.
fn matches_in_order(output: &str, expected: &str) -> bool {
    let mut at = 0;
    for part in expected.split('…').filter(|p| !p.is_empty()) {
        match output[at..].find(part) {
            Some(i) => at += i + part.len(),
            None => return false,
        }
    }
    true
}

#[test]
fn the_readme_quickstart_works_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let blocks = sh_blocks(&readme, "## Quickstart");
    assert_eq!(blocks.len(), 2, "build block, then the tried block");
    assert!(blocks[0].contains("cargo build --release") && blocks[0].contains("PATH"));
    let port = free_port();
    let script = blocks[1].replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let expected: Vec<&str> = blocks[1]
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# -> "))
        .collect();
    assert!(expected.len() >= 4, "{expected:?}");

    let op = Operator::new("readme");
    let bin_dir = std::path::Path::new(BINARY).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut bash = Command::new("bash");
    bash.args(["-euo", "pipefail", "-c", &script])
        .current_dir(&op.dir)
        .env("PATH", path)
        // Only the port differs from a fresh machine; the rest is defaults (./accolade-data).
        .env("ACCOLADE_HTTP__BIND", format!("127.0.0.1:{port}"))
        .env("ACCOLADE_LOG__LEVEL", "warn")
        .stdout(Stdio::from(
            std::fs::File::create(op.path("stdout")).unwrap(),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(op.path("stderr")).unwrap(),
        ));
    for (k, _) in std::env::vars() {
        if k.starts_with("ACCOLADE_") && k != "ACCOLADE_HTTP__BIND" && k != "ACCOLADE_LOG__LEVEL" {
            bash.env_remove(k);
        }
    }
    // Its own process group, so the background server goes with it.
    use std::os::unix::process::CommandExt;
    bash.process_group(0);
    let mut child = bash.spawn().unwrap();
    let kill_group = |pgid: u32| {
        // `--`: without it kill(1) takes `-PGID` for an option and the group survives.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pgid}")])
            .status();
    };
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(60) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    kill_group(child.id());
    let _ = child.wait();
    // The background server went with its group: nothing keeps answering on the port.
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    assert!(gone, "the Quickstart's server outlived the test");
    let stdout = std::fs::read_to_string(op.path("stdout")).unwrap();
    let stderr = std::fs::read_to_string(op.path("stderr")).unwrap();
    let status = status.unwrap_or_else(|| panic!("the Quickstart hung:\n{stdout}\n{stderr}"));
    assert!(
        status.success(),
        "the Quickstart failed:\n{stdout}\n{stderr}"
    );
    let mut rest: &str = &stdout;
    for want in expected {
        assert!(
            matches_in_order(rest, want),
            "README promises `{want}`, the commands printed:\n{rest}"
        );
        // The next promise is about what comes after this one's first line.
        let first = want.split('…').find(|p| !p.is_empty()).unwrap();
        rest = &rest[rest.find(first).unwrap() + first.len()..];
    }
    assert!(
        op.path("accolade-data/accolade.db").exists(),
        "the default database"
    );
}

#[test]
fn matching_skips_only_what_the_ellipsis_stands_for() {
    assert!(matches_in_order(r#"{"a":1,"b":2}"#, r#"{"a":…,"b":2}"#));
    assert!(!matches_in_order(r#"{"b":2,"a":1}"#, r#"{"a":…,"b":2}"#));
    assert!(!matches_in_order("1 created", "2 created"));
}

/// The reference deployment's systemd units (deploy/systemd, docs/deployment.md) run commands
/// the binary accepts: each `ExecStart`, with its `%i` / `%H` specifiers filled in, parses (clap
/// refuses an unknown command or flag before it gets to `--help`), and every unit names
/// `accolade` with the config path the docs use.
#[test]
fn systemd_units_run_commands_the_binary_accepts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap_or_else(|| panic!("{} has no ExecStart", path.display()));
        let exec = exec.replace("%i", "8081").replace("%H", "host1");
        let mut words = exec.split_whitespace();
        assert_eq!(words.next(), Some("/usr/local/bin/accolade"), "{exec}");
        let args: Vec<&str> = words.collect();
        assert_eq!(
            args[..2],
            ["--config", "/etc/accolade/accolade.toml"],
            "{exec}"
        );
        let out = Command::new(BINARY)
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {exec}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        seen.push(args[2].to_string());
    }
    seen.sort();
    assert_eq!(seen, ["consume", "migrate", "serve", "work"]);
}
