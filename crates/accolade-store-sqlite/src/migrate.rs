//! Forward-only migrations for SQLite. The files in `migrations/` carry the same names as the
//! PostgreSQL crate's (same version, same purpose), so the two histories stay in lockstep.
//! Applied migrations are recorded with a checksum; an edited, already-applied file is an error.

use rusqlite::{params, Connection};

/// Every migration, in order: (version, name, SQL).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_core.sql",
        include_str!("../migrations/0001_core.sql"),
    ),
    (
        2,
        "0002_credly.sql",
        include_str!("../migrations/0002_credly.sql"),
    ),
    (
        3,
        "0003_outgoing_index.sql",
        include_str!("../migrations/0003_outgoing_index.sql"),
    ),
    (
        4,
        "0004_webhooks.sql",
        include_str!("../migrations/0004_webhooks.sql"),
    ),
    (
        5,
        "0005_admin.sql",
        include_str!("../migrations/0005_admin.sql"),
    ),
    (
        6,
        "0006_counters.sql",
        include_str!("../migrations/0006_counters.sql"),
    ),
    (
        7,
        "0007_learner_event_chain.sql",
        include_str!("../migrations/0007_learner_event_chain.sql"),
    ),
    (
        8,
        "0008_awards_learner_first.sql",
        include_str!("../migrations/0008_awards_learner_first.sql"),
    ),
    (
        9,
        "0009_opencredit.sql",
        include_str!("../migrations/0009_opencredit.sql"),
    ),
    (
        10,
        "0010_jobs_waiting_for_key.sql",
        include_str!("../migrations/0010_jobs_waiting_for_key.sql"),
    ),
    (
        11,
        "0011_member_badge_addressed_by_email.sql",
        include_str!("../migrations/0011_member_badge_addressed_by_email.sql"),
    ),
    (
        12,
        "0012_credly_notification_backlog.sql",
        include_str!("../migrations/0012_credly_notification_backlog.sql"),
    ),
    (
        13,
        "0013_api_token_scopes.sql",
        include_str!("../migrations/0013_api_token_scopes.sql"),
    ),
    (
        14,
        "0014_complete_local_jobs.sql",
        include_str!("../migrations/0014_complete_local_jobs.sql"),
    ),
    (
        15,
        "0015_openbadges.sql",
        include_str!("../migrations/0015_openbadges.sql"),
    ),
    (
        16,
        "0016_template_expiry.sql",
        include_str!("../migrations/0016_template_expiry.sql"),
    ),
    (
        17,
        "0017_backfills.sql",
        include_str!("../migrations/0017_backfills.sql"),
    ),
    (
        18,
        "0018_credly_auth.sql",
        include_str!("../migrations/0018_credly_auth.sql"),
    ),
    (
        19,
        "0019_inbox_body_text.sql",
        include_str!("../migrations/0019_inbox_body_text.sql"),
    ),
];

fn checksum(sql: &str) -> String {
    // FNV-1a: stable, dependency free; this detects edits, it is not a security measure.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Applies pending migrations; returns how many ran.
pub fn run(conn: &mut Connection) -> Result<usize, String> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _accolade_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,
             applied_at TEXT NOT NULL)",
    )
    .map_err(|e| e.to_string())?;
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS {
        let existing: Option<String> = conn
            .query_row(
                "SELECT checksum FROM _accolade_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .ok();
        match existing {
            Some(sum) if sum == checksum(sql) => continue,
            Some(_) => {
                return Err(format!("migration {name} was changed after it was applied"));
            }
            None => {}
        }
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(sql)
            .map_err(|e| format!("migration {name} failed: {e}"))?;
        tx.execute(
            "INSERT INTO _accolade_migrations (version, name, checksum, applied_at)
             VALUES (?1, ?2, ?3, datetime('now'))",
            params![version, name, checksum(sql)],
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        applied += 1;
    }
    Ok(applied)
}

/// Versions applied so far.
pub fn applied(conn: &Connection) -> Result<Vec<i64>, String> {
    let mut stmt = conn
        .prepare("SELECT version FROM _accolade_migrations ORDER BY version")
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to `migrations/` but not to `MIGRATIONS` would never run (0012 once did
    /// not): every file is listed, in order, under its own number.
    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(_, n, _)| n.to_string()).collect();
        assert_eq!(listed, files);
        for (i, (version, name, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1, "{name}");
            assert!(name.starts_with(&format!("{version:04}_")), "{name}");
        }
    }

    #[test]
    fn migration_7_chains_existing_events_per_learner() {
        let c = Connection::open_in_memory().unwrap();
        for (_, _, sql) in &MIGRATIONS[..6] {
            c.execute_batch(sql).unwrap();
        }
        c.execute_batch(
            "INSERT INTO learners (username, created_at, updated_at) VALUES
                 ('ann', 't', 't'), ('bob', 't', 't'), ('cat', 't', 't');
             INSERT INTO inbox_events (seq, id, event_type, learner, time, received_at, body) VALUES
                 (1, 'e1', 'x', 'ann', 't', 't', '{}'), (2, 'e2', 'x', 'bob', 't', 't', '{}'),
                 (3, 'e3', 'x', 'ann', 't', 't', '{}'), (4, 'e4', 'x', 'ann', 't', 't', '{}');",
        )
        .unwrap();
        c.execute_batch(MIGRATIONS[6].2).unwrap();
        let prev: Vec<(i64, Option<i64>)> = c
            .prepare("SELECT seq, prev_seq FROM inbox_events ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(prev, [(1, None), (2, None), (3, Some(1)), (4, Some(3))]);
        let heads: Vec<(String, Option<i64>)> = c
            .prepare("SELECT username, last_event_seq FROM learners ORDER BY username")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected = [("ann", Some(4)), ("bob", Some(2)), ("cat", None)];
        let expected: Vec<(String, Option<i64>)> =
            expected.iter().map(|(u, s)| (u.to_string(), *s)).collect();
        assert_eq!(heads, expected);
    }

    /// Local jobs a retired worker would have run are completed by migration 14 as it did;
    /// Credly jobs and dead jobs are left alone.
    #[test]
    fn migration_14_completes_pending_local_jobs() {
        let c = Connection::open_in_memory().unwrap();
        for (_, _, sql) in &MIGRATIONS[..13] {
            c.execute_batch(sql).unwrap();
        }
        c.execute_batch(
            "INSERT INTO templates (id, name, origin, created_at, updated_at)
                 VALUES ('t1', 'T', 'local', 't', 't');
             INSERT INTO awards (id, template_id, learner, episode, state, earned_at, awarded_at,
                                 updated_at) VALUES
                 ('a1', 't1', 'ann', 1, 'error', 'e', 'w', 'u'),
                 ('a2', 't1', 'bob', 1, 'revoked', 'e', 'w', 'u'),
                 ('a3', 't1', 'cy', 1, 'pending', 'e', 'w', 'u');
             INSERT INTO jobs (id, kind, payload, status, attempts, run_at, created_at, updated_at)
                 VALUES
                 ('j1', 'award.issue', '{\"award_id\":\"a1\"}', 'pending', 1, 'r', 'c', 'u'),
                 ('j2', 'award.issue', '{\"award_id\":\"a2\"}', 'running', 1, 'r', 'c', 'u'),
                 ('j3', 'award.revoke', '{\"award_id\":\"a2\"}', 'pending', 0, 'r', 'c', 'u'),
                 ('j4', 'credly.issue', '{\"award_id\":\"a3\"}', 'pending', 0, 'r', 'c', 'u'),
                 ('j5', 'award.issue', '{\"award_id\":\"a3\"}', 'dead', 6, 'r', 'c', 'u');",
        )
        .unwrap();
        c.execute_batch(MIGRATIONS[13].2).unwrap();
        let awards: Vec<(String, String, bool)> = c
            .prepare("SELECT id, state, issued_at IS NOT NULL FROM awards ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let awards: Vec<(&str, &str, bool)> = awards
            .iter()
            .map(|(a, s, i)| (a.as_str(), s.as_str(), *i))
            .collect();
        assert_eq!(
            awards,
            [
                ("a1", "awarded", true),
                ("a2", "revoked", true),
                ("a3", "pending", false)
            ]
        );
        let jobs: Vec<(String, String)> = c
            .prepare("SELECT id, status FROM jobs ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let jobs: Vec<(&str, &str)> = jobs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            jobs,
            [
                ("j1", "succeeded"),
                ("j2", "succeeded"),
                ("j3", "succeeded"),
                ("j4", "pending"),
                ("j5", "dead")
            ]
        );
        let issued: String = c
            .query_row("SELECT issued_at FROM awards WHERE id = 'a1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(crate::rows::parse_ts(&issued).is_ok(), "{issued}");
        assert_eq!(
            issued.len(),
            "2026-12-07T06:10:00.123456Z".len(),
            "{issued}"
        );
    }

    #[test]
    fn migration_8_keeps_awards_and_their_rules() {
        let c = Connection::open_in_memory().unwrap();
        for (_, _, sql) in &MIGRATIONS[..7] {
            c.execute_batch(sql).unwrap();
        }
        c.execute_batch(
            "INSERT INTO templates (id, name, origin, created_at, updated_at)
                 VALUES ('t1', 'T', 'local', 't', 't');
             INSERT INTO awards (id, template_id, learner, episode, state, earned_at, awarded_at,
                                 revoked_at, revoke_reason, external_id, updated_at) VALUES
                 ('a1', 't1', 'ann', 1, 'revoked', 'e1', 'w1', 'r1', 'why', 'x1', 'u1'),
                 ('a2', 't1', 'ann', 2, 'issued', 'e2', 'w2', NULL, NULL, NULL, 'u2');",
        )
        .unwrap();
        c.execute_batch(MIGRATIONS[7].2).unwrap();
        type Row = (String, i64, String, Option<String>, Option<String>);
        let rows: Vec<Row> = c
            .prepare(
                "SELECT id, episode, state, revoke_reason, external_id FROM awards ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (
                    "a1".into(),
                    1,
                    "revoked".into(),
                    Some("why".into()),
                    Some("x1".into())
                ),
                ("a2".into(), 2, "issued".into(), None, None)
            ]
        );
        let insert = |id: &str, episode: i64, state: &str| {
            c.execute(
                "INSERT INTO awards (id, template_id, learner, episode, state, earned_at, awarded_at, updated_at)
                 VALUES (?1, 't1', 'ann', ?2, ?3, 'e', 'w', 'u')",
                params![id, episode, state],
            )
        };
        assert!(
            insert("a3", 2, "revoked").is_err(),
            "episode numbers stay unique"
        );
        assert!(
            insert("a4", 3, "awarded").is_err(),
            "one unrevoked award at a time"
        );
        let indexes: Vec<String> = c
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'awards' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            !indexes.contains(&"awards_learner".to_string()),
            "{indexes:?}"
        );
        assert!(
            indexes.contains(&"awards_one_active".to_string())
                && indexes.contains(&"awards_external".to_string())
        );
    }

    #[test]
    fn migrations_match_the_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(_, n, _)| n.to_string()).collect();
        assert_eq!(
            files, listed,
            "every file in migrations/ must be listed in MIGRATIONS"
        );
    }

    #[test]
    fn running_twice_is_a_no_op() {
        let mut c = Connection::open_in_memory().unwrap();
        assert_eq!(run(&mut c).unwrap(), MIGRATIONS.len());
        assert_eq!(run(&mut c).unwrap(), 0);
        assert_eq!(applied(&c).unwrap().len(), MIGRATIONS.len());
    }
}
