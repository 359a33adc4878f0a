//! `accolade backfill`: preview or run a backfill of a template, follow it with a progress bar,
//! list, show and cancel backfills (docs/backfill.md).
//!
//! A backfill run from the command line is queued like one from the API; the command then runs
//! it itself unless a server's worker took it first, and shows its progress either way. Ctrl-C
//! stops following (and running): the job stays queued or leased, and a server's worker (or the
//! next `accolade backfill resume`) goes on from its last step.

use std::io::IsTerminal;
use std::time::Duration;

use accolade_store::{BackfillPhase, BackfillState, Page};
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::service::backfill::{self, BackfillView, Preview, PreviewRequest, StartRequest};
use crate::state::AppState;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackfillArgs {
    #[command(subcommand)]
    pub command: Option<BackfillCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The template (id) to backfill.
    #[arg(long)]
    pub template: Option<String>,
    /// Only report what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replay only events at or after this time (RFC 3339, e.g. 2026-01-01T00:00:00Z).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Also revoke the badge of holders who no longer qualify (never manual awards).
    #[arg(long)]
    pub revoke: bool,
    /// Why (kept with the backfill).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Learners named per kind in a preview (0-100).
    #[arg(long, default_value_t = 10)]
    pub sample: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Queue the backfill and return at once (a server's worker runs it).
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum BackfillCommand {
    /// Backfills, newest first.
    List {
        #[arg(long)]
        template: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One backfill's state and progress.
    Show { id: String },
    /// Cancel a backfill (a running one stops after its current step).
    Cancel { id: String },
    /// Run (and follow) a queued backfill, or one a stopped process left.
    Resume { id: String },
}

pub async fn run(state: AppState, args: BackfillArgs) -> anyhow::Result<()> {
    match args.command {
        Some(BackfillCommand::List { template, limit }) => {
            let page =
                backfill::list(&state, template.as_deref(), Page::new(Some(limit), None)).await?;
            if page.items.is_empty() {
                println!("No backfills.");
            }
            for b in page.items {
                println!("{}", line(&b));
            }
            Ok(())
        }
        Some(BackfillCommand::Show { id }) => {
            let b = backfill::get(&state, &id).await?;
            println!("{}", serde_json::to_string_pretty(&b)?);
            Ok(())
        }
        Some(BackfillCommand::Cancel { id }) => {
            let b = backfill::cancel(&state, &id).await?;
            println!("{}", line(&b));
            Ok(())
        }
        Some(BackfillCommand::Resume { id }) => follow(&state, &id, false).await,
        None => start(state, args.run).await,
    }
}

async fn start(state: AppState, a: RunArgs) -> anyhow::Result<()> {
    let template = a
        .template
        .context("name the template: accolade backfill --template ID [--dry-run]")?;
    if a.dry_run {
        let req = PreviewRequest {
            since: a.since,
            sample: Some(a.sample),
            reuse: false,
        };
        let p = backfill::preview(&state, &template, &req).await?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&p)?);
        } else {
            print_preview(&p);
        }
        return Ok(());
    }
    let b = backfill::start(
        &state,
        &template,
        StartRequest {
            since: a.since,
            revoke: a.revoke,
            reason: a.reason,
            requested_by: "cli".into(),
        },
    )
    .await?;
    if a.no_wait {
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&BackfillView::of(b, Utc::now()))?
            );
        } else {
            println!(
                "Backfill {} queued; follow it with `accolade backfill show {}`.",
                b.id, b.id
            );
        }
        return Ok(());
    }
    eprintln!("Backfill {} queued.", b.id);
    follow(&state, &b.id, a.json).await
}

/// Runs the backfill here unless another worker holds it, and shows its progress until it ends.
async fn follow(state: &AppState, id: &str, json: bool) -> anyhow::Result<()> {
    let worker = {
        let state = state.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let holder = format!("backfill-cli-{}", uuid::Uuid::new_v4().simple());
            crate::service::backfill::worker::pass(&state, &holder, Some(&id)).await
        })
    };
    let bar = Bar::new();
    let end = loop {
        let b = backfill::get(state, id).await?;
        bar.show(&b);
        if b.backfill.state.is_final() {
            break b;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::signal::ctrl_c() => {
                bar.finish();
                state.shutdown.cancel();
                eprintln!("Stopped following; the backfill goes on from its last step when a worker takes it (`accolade backfill resume {id}`).");
                return Ok(());
            }
        }
    };
    bar.finish();
    if let Ok(Err(e)) = worker.await {
        tracing::warn!(error = %format!("{e:#}"), "backfill worker");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&end)?);
    } else {
        println!("{}", line(&end));
    }
    match end.backfill.state {
        BackfillState::Succeeded | BackfillState::Cancelled => Ok(()),
        _ => anyhow::bail!(
            "the backfill {}: {}",
            end.backfill.state.as_str(),
            end.backfill.error.unwrap_or_default()
        ),
    }
}

/// One line about a backfill.
fn line(v: &BackfillView) -> String {
    let b = &v.backfill;
    format!(
        "{}  template {}  {}  {} of {} learners  {} awarded  {} revoked{}",
        b.id,
        b.template_id,
        b.state.as_str(),
        b.learners_done,
        b.learners_total,
        b.awards_made,
        b.revocations_made,
        b.error
            .as_deref()
            .map(|e| format!("  error: {e}"))
            .unwrap_or_default()
    )
}

fn print_preview(p: &Preview) {
    println!(
        "Template {}: replayed {} learners over {} stored events ({} matched) in {} ms.",
        p.template_id, p.learners, p.events_scanned, p.events_matched, p.elapsed_ms
    );
    println!("  would hold the badge now:   {}", p.would_hold);
    println!("  would be awarded:           {}", p.to_award);
    println!("  would lose it (--revoke):   {}", p.to_revoke);
    println!("  unchanged (hold and would): {}", p.unchanged);
    if p.not_reawardable > 0 {
        println!(
            "  qualify, but may not earn it again: {}",
            p.not_reawardable
        );
    }
    if p.manual_kept > 0 {
        println!("  hold a manual award, kept:  {}", p.manual_kept);
    }
    if p.holders_without_events > 0 {
        println!(
            "  hold it with no event replayed, untouched: {}",
            p.holders_without_events
        );
    }
    for (what, samples) in [
        ("would be awarded", &p.samples.to_award),
        ("would lose it", &p.samples.to_revoke),
        ("unchanged", &p.samples.unchanged),
    ] {
        if samples.is_empty() {
            continue;
        }
        println!("Some learners who {what}:");
        for s in samples {
            match &s.completed_by {
                Some(e) => println!(
                    "  {}  (completed by event {} at {})",
                    s.learner, e.event_id, e.time
                ),
                None => println!("  {}", s.learner),
            }
        }
    }
}

/// A progress bar on a terminal; plain lines every few seconds otherwise.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    last_line: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Bar {
    fn new() -> Bar {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(100);
            b.set_style(
                indicatif::ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos:>3}% {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b
        });
        Bar {
            bar,
            last_line: std::sync::Mutex::new(None),
        }
    }

    fn show(&self, v: &BackfillView) {
        let b = &v.backfill;
        let phase = match (b.state, b.phase) {
            (BackfillState::Queued, _) => "queued",
            (_, BackfillPhase::Scanning) => "scanning",
            (_, BackfillPhase::Applying) => "applying",
        };
        let eta = v
            .eta_seconds
            .map(|s| format!("  ETA {s} s"))
            .unwrap_or_default();
        let msg = match b.phase {
            BackfillPhase::Scanning => {
                format!("{} of {} inbox rows{eta}", b.events_scanned, b.events_total)
            }
            BackfillPhase::Applying => format!(
                "{} of {} learners, {} awarded{eta}",
                b.learners_done, b.learners_total, b.awards_made
            ),
        };
        match &self.bar {
            Some(bar) => {
                bar.set_prefix(phase);
                bar.set_position(u64::from(v.percent));
                bar.set_message(msg);
            }
            None => {
                let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
                    eprintln!("{phase} {}% {msg}", v.percent);
                    *last = Some(std::time::Instant::now());
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
