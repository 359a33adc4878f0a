-- Issue 19, backfills. A backfill replays a template's current rules over the stored events of
-- the learners who have any of its event types, and awards (or, when asked, revokes) so that
-- their badge matches the replay. Awards it makes name it in `awards.backfill_id`. The job is
-- claimed with a lease (`holder`, `lease_until`) like other work; `cursor` is the last learner
-- applied (usernames in byte order), moved in the transaction of each apply step, so a restart
-- goes on after it. At most one backfill per template is queued or running.
ALTER TABLE awards ADD COLUMN backfill_id TEXT;
CREATE TABLE backfills (
    id               TEXT PRIMARY KEY,
    template_id      TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    state            TEXT NOT NULL
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    phase            TEXT NOT NULL DEFAULT 'scanning' CHECK (phase IN ('scanning', 'applying')),
    since            TEXT,
    revoke           INTEGER NOT NULL DEFAULT 0,
    reason           TEXT NOT NULL DEFAULT '',
    requested_by     TEXT NOT NULL,
    events_scanned   INTEGER NOT NULL DEFAULT 0,
    events_total     INTEGER NOT NULL DEFAULT 0,
    learners_total   INTEGER NOT NULL DEFAULT 0,
    learners_done    INTEGER NOT NULL DEFAULT 0,
    awards_made      INTEGER NOT NULL DEFAULT 0,
    revocations_made INTEGER NOT NULL DEFAULT 0,
    cursor           TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    phase_started_at TEXT,
    done_at_phase_start INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    holder           TEXT,
    lease_until      TEXT,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    updated_at       TEXT NOT NULL
);
CREATE INDEX backfills_template ON backfills (template_id, created_at);
CREATE UNIQUE INDEX backfills_one_open ON backfills (template_id)
    WHERE state IN ('queued', 'running');
