//! `accolade import openedx-credentials`: the command line of `service::import`: the plan or
//! summary as text (or JSON), progress on stderr, problems listed and a non-zero exit when the
//! source is refused.

use std::collections::HashMap;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::service::import::{self, ImportError, ImportOutcome, ImportRequest, Step};
use crate::state::AppState;
use accolade_import::read::SourceUrl;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import Credly organizations, templates, requirements, penalties, learners' progress and
    /// issued badges from an Open edX Credentials database (docs/migrate-from-openedx.md).
    OpenedxCredentials(OpenedxArgs),
}

#[derive(Debug, Args)]
pub struct OpenedxArgs {
    /// Credentials' database: mysql://USER:PASS@HOST[:PORT]/DB (MySQL, MariaDB),
    /// postgres://USER:PASS@HOST/DB or sqlite:PATH. Read only, in one snapshot.
    #[arg(long, env = "OPENEDX_CREDENTIALS_DATABASE_URL", hide_env_values = true)]
    from: String,
    /// Print the plan (counts, conflicts, what is skipped and why) and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also award the learners whose progress is complete in the source but who hold no issued
    /// badge there (each is then issued to Credly once, through the outbox).
    #[arg(long)]
    award_complete: bool,
    /// The Credly key of an organization whose key is not in the source (configured in
    /// Credentials' settings): UUID=KEY. Repeat for several.
    #[arg(long = "org-key", value_name = "UUID=KEY")]
    org_keys: Vec<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(state: AppState, command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::OpenedxCredentials(args) = command;
    let from = SourceUrl::parse(&args.from)?;
    let mut org_keys = HashMap::new();
    for pair in &args.org_keys {
        let (uuid, key) = pair
            .split_once('=')
            .with_context(|| "--org-key takes UUID=KEY".to_string())?;
        let uuid = accolade_import::source::normalize_uuid(uuid)
            .with_context(|| format!("--org-key: `{uuid}` is not a UUID"))?;
        org_keys.insert(uuid, key.trim().to_string());
    }
    let req = ImportRequest {
        from,
        dry_run: args.dry_run,
        award_complete: args.award_complete,
        org_keys,
    };
    let quiet = args.json;
    let outcome = import::import_openedx(&state, req, |step| {
        if !quiet {
            eprintln!("{}", step_line(&step));
        }
    })
    .await;
    match outcome {
        Ok(o) if args.json => println!("{}", serde_json::to_string_pretty(&o)?),
        Ok(o) => print!("{}", render(&o)),
        Err(ImportError::Refused(problems)) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "problems": problems }))?
                );
            } else {
                eprintln!("The source cannot be imported as it is; nothing was written:");
                for p in &problems {
                    eprintln!("  - {p}");
                }
            }
            anyhow::bail!("{} problem(s) in the source", problems.len());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn step_line(step: &Step) -> String {
    match step {
        Step::Reading(source) => format!("reading {source} …"),
        Step::Read { rows, took } => {
            format!(
                "read {} progress, fulfilment and badge rows in {:.1} s",
                thousands(*rows),
                took.as_secs_f64()
            )
        }
        Step::Writing {
            organization,
            fulfilments,
        } => {
            format!(
                "{organization}: writing ({} fulfilments) …",
                thousands(*fulfilments as u64)
            )
        }
        Step::Written { organization, took } => {
            format!("{organization}: done in {:.1} s", took.as_secs_f64())
        }
        Step::Awarding(n) => format!("awarding {n} learner(s) complete in the source …"),
    }
}

/// `1234567` -> `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The plan (dry run) or the summary of what was written.
pub fn render(o: &ImportOutcome) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let c = &o.report.counts;
    let w = &o.created;
    let verb = if o.dry_run { "would create" } else { "created" };
    let _ = writeln!(s, "Open edX Credentials at {}", o.source);
    let _ = writeln!(
        s,
        "{}",
        if o.dry_run {
            "Plan (dry run: nothing was written)"
        } else {
            "Imported"
        }
    );
    let mut row = |kind: &str, found: String, made: u64| {
        let _ = writeln!(s, "  {kind:<26} {found:<28} {verb} {}", thousands(made));
    };
    row(
        "Credly organizations",
        thousands(c.organizations),
        w.organizations,
    );
    row(
        "badge templates",
        format!("{} ({} active)", c.templates, c.templates_active),
        w.templates,
    );
    row(
        "requirements",
        format!(
            "{} ({} data rules, {} without)",
            c.requirements, c.data_rules, c.requirements_without_rules
        ),
        w.requirements,
    );
    row(
        "penalties",
        format!(
            "{} ({} rules, {} links)",
            c.penalties, c.penalty_rules, c.penalty_requirement_links
        ),
        w.penalties,
    );
    row("learners", thousands(c.learners), w.learners);
    row(
        "fulfilled requirements",
        thousands(c.fulfilments),
        w.fulfilments,
    );
    row(
        "badges issued on Credly",
        format!(
            "{} ({} held, {} revoked)",
            c.awards, c.awards_held, c.awards_revoked
        ),
        w.awards,
    );
    if w.awards_held_already > 0 {
        let _ = writeln!(
            s,
            "  {} issued badge(s) not imported: the learner already holds that badge in Accolade",
            w.awards_held_already
        );
    }
    let k = &o.report.skipped;
    let skipped = [
        (
            k.accredible.api_configs,
            "Accredible configuration(s) (Accolade does not bridge to Accredible)",
        ),
        (k.accredible.groups, "Accredible group(s)"),
        (k.accredible.badges, "Accredible badge(s)"),
        (
            k.accredible_rows,
            "requirement, penalty, progress or badge row(s) of Accredible groups",
        ),
        (
            k.templates_without_provider,
            "template(s) with no provider row",
        ),
        (
            k.badges_without_credly_id,
            "badge row(s) that never reached Credly (no Credly id): no award",
        ),
        (
            k.badges_of_deleted_templates,
            "Credly badge(s) of deleted templates (still on Credly)",
        ),
        (
            k.fulfilments_of_deleted_requirements,
            "fulfilment(s) of deleted requirements",
        ),
        (
            k.progress_records_without_template,
            "progress record(s) of deleted templates",
        ),
        (
            k.fulfilments_of_other_templates,
            "fulfilment(s) naming another template's requirement",
        ),
        (
            k.duplicate_fulfilments,
            "duplicate fulfilment(s) (a learner's progress is one in Accolade)",
        ),
        (
            k.penalties_without_rules,
            "penalty(ies) without rules (never fired in Credentials)",
        ),
        (
            k.penalties_without_requirements,
            "penalty(ies) resetting no requirement",
        ),
    ];
    let _ = writeln!(s, "Skipped:");
    let mut any = false;
    for (n, what) in skipped {
        if n > 0 {
            any = true;
            let _ = writeln!(s, "  {} {what}", thousands(n));
        }
    }
    if !any {
        let _ = writeln!(s, "  nothing (0 Accredible configurations)");
    }
    if !o.organizations_kept.is_empty() {
        let _ = writeln!(
            s,
            "Organizations already in Accolade (their name and key are kept): {}",
            o.organizations_kept.join(", ")
        );
    }
    if !o.conflicts.is_empty() {
        let _ = writeln!(s, "Conflicts ({}):", o.conflicts.len());
        for c in &o.conflicts {
            let _ = writeln!(s, "  {} ({}): {}", c.name, c.template, c.detail);
        }
    }
    if !o.report.notes.is_empty() {
        let _ = writeln!(s, "Notes:");
        for n in &o.report.notes {
            let _ = writeln!(s, "  - {n}");
        }
    }
    if o.report.held_but_incomplete > 0 {
        let _ = writeln!(
            s,
            "  - {} held badge(s) belong to learners whose progress is not complete (Credentials awarded on any fulfilment, D1): kept",
            o.report.held_but_incomplete
        );
    }
    let listed = &o.report.complete_without_issued_badge;
    let _ = writeln!(
        s,
        "Complete in the source without an issued badge there ({}){}:",
        listed.len(),
        if o.award_complete.is_some() {
            ""
        } else {
            "; --award-complete awards them"
        }
    );
    for l in listed {
        let _ = writeln!(
            s,
            "  {}  {} ({}){}: {}",
            l.learner,
            l.template_name,
            l.template,
            if l.template_active {
                ""
            } else {
                " [inactive template]"
            },
            l.why
        );
    }
    if !o.report.revoked_but_live_on_credly.is_empty() {
        let _ = writeln!(
            s,
            "Revoked in Credentials but still live on Credly ({}):",
            o.report.revoked_but_live_on_credly.len()
        );
        for l in &o.report.revoked_but_live_on_credly {
            let _ = writeln!(s, "  {}  {}: {}", l.learner, l.template_name, l.why);
        }
    }
    if let Some(a) = &o.award_complete {
        let _ = writeln!(
            s,
            "--award-complete: {} {}, {} held already, {} on inactive templates (not awarded)",
            if o.dry_run { "would award" } else { "awarded" },
            a.awarded,
            a.held_already,
            a.inactive_template
        );
    }
    let _ = writeln!(
        s,
        "Read in {:.1} s, {} in {:.1} s.{}",
        o.read_seconds,
        if o.dry_run { "planned" } else { "written" },
        o.write_seconds,
        if !o.dry_run && o.created.is_empty() {
            " Nothing new: everything was imported before."
        } else {
            ""
        }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_000_124), "1,000,124");
    }
}
