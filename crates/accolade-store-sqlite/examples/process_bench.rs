//! Store-level throughput of `process_events` (no HTTP): the peer-baseline rule set and
//! course-passing events in batches, on a temp file with durable commits.
//! `cargo run --release -p accolade-store-sqlite --example process_bench -- [events] [batch]`

use std::time::Instant;

use accolade_domain::event::IncomingEvent;
use accolade_domain::rules::DataRule;
use accolade_domain::template::{Group, Origin};
use accolade_store::prelude::*;
use accolade_store::{IndexCache, NewPenalty, NewRequirement, NewTemplate};
use accolade_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::json;

const PASSING: &str = "org.openedx.learning.course.passing.status.updated.v1";

fn course(i: usize) -> String {
    format!("course-v1:BenchX+C{i:02}+2026")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let total = args.first().copied().unwrap_or(100_000);
    let batch = args.get(1).copied().unwrap_or(2_000);
    let dir = std::env::temp_dir().join(format!("accolade-pb-{}", std::process::id()));
    let store = SqliteStore::open(&dir.join("b.db"), &SqliteOptions::default()).unwrap();
    if let Ok(sql) = std::env::var("EXTRA_SQL") {
        rusqlite::Connection::open(dir.join("b.db"))
            .unwrap()
            .execute_batch(&sql)
            .unwrap();
    }
    for t in 0..20 {
        let tpl = store
            .create_template(NewTemplate {
                id: None,
                name: format!("T{t}"),
                description: String::new(),
                image_url: None,
                origin: Origin::Local,
                provider_state: "active".into(),
                is_active: true,
                allow_reaward: true,
                organization_id: None,
                expires_after: None,
                criteria: None,
            })
            .await
            .unwrap();
        let mut first = None;
        for g in 0..(if t < 10 { 3 } else { 2 }) {
            let r = store
                .add_requirement(
                    &tpl.id,
                    NewRequirement {
                        key: None,
                        event_type: PASSING.into(),
                        description: String::new(),
                        group: Some(Group::parse(["A", "B", "C"][g]).unwrap()),
                        rules: vec![
                            DataRule::new("is_passing", "=", "true").unwrap(),
                            DataRule::new("course.course_key", "=", &course((t * 3 + g) % 25))
                                .unwrap(),
                        ],
                    },
                )
                .await
                .unwrap();
            first.get_or_insert(r.id);
        }
        store
            .add_penalty(
                &tpl.id,
                NewPenalty {
                    key: None,
                    event_type: PASSING.into(),
                    description: String::new(),
                    // As in `scripts/bench`: failing the first requirement's course resets it.
                    rules: vec![
                        DataRule::new("is_passing", "=", "false").unwrap(),
                        DataRule::new("course.course_key", "=", &course((t * 3) % 25)).unwrap(),
                    ],
                    requirement_ids: vec![first.unwrap()],
                },
            )
            .await
            .unwrap();
    }
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let events: Vec<IncomingEvent> = (0..total)
        .map(|i| {
            let l = next() as usize % 2000;
            let c = next() as usize % 25;
            IncomingEvent::from_json(&json!({
                "id": format!("ev-{i:012}"), "event_type": PASSING, "time": "2026-08-20T14:03:27.512345+00:00",
                "source": "openedx/lms/web", "minorversion": 0,
                "data": {"course_passing_status": {"course": {"course_key": course(c), "display_name": "", "end": null, "start": null},
                  "is_passing": next() % 10 != 0,
                  "user": {"id": l, "is_active": true, "pii": {"email": format!("l{l}@example.com"), "name": format!("L {l}"), "username": format!("learner{l}")}}}}
            }))
            .unwrap()
        })
        .collect();
    let index = IndexCache::new();
    // Batches are cut before the clock starts: only the store's work is timed.
    let batches: Vec<Vec<IncomingEvent>> = events.chunks(batch).map(<[_]>::to_vec).collect();
    let started = Instant::now();
    for chunk in batches {
        store.process_events(chunk, &index).await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "process_events: {total} events in {secs:.2}s = {:.0} events/s (batches of {batch})",
        total as f64 / secs
    );
    // WAL_PROBE=1: keep the database and leave one more batch's frames alone in the WAL, for
    // attributing a steady-state commit's pages to tables (scripts/lib/wal_pages.py).
    if std::env::var_os("WAL_PROBE").is_some() {
        rusqlite::Connection::open(dir.join("b.db"))
            .unwrap()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let probe: Vec<IncomingEvent> = events[..batch]
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut e = e.clone();
                e.id = format!("probe-{i:012}");
                e
            })
            .collect();
        store.process_events(probe, &index).await.unwrap();
        // Copied now: closing the store checkpoints and deletes the WAL.
        std::fs::copy(dir.join("b.db"), dir.join("probe.db")).unwrap();
        std::fs::copy(dir.join("b.db-wal"), dir.join("probe.db-wal")).unwrap();
        println!("kept: {}", dir.join("probe.db").display());
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
}
