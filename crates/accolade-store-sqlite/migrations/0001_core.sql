-- Core schema: configuration (templates, requirements, penalties), inbox, progress, awards,
-- outbox. Timestamps are TEXT in RFC 3339 UTC with microseconds ("2026-08-20T14:03:27.512345Z"),
-- which sorts lexically in time order.

CREATE TABLE config_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO config_state (id, version) VALUES (1, 1);

CREATE TABLE templates (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    image_url       TEXT,
    origin          TEXT NOT NULL CHECK (origin IN ('local', 'credly')),
    provider_state  TEXT NOT NULL DEFAULT 'active',
    is_active       INTEGER NOT NULL DEFAULT 0,
    allow_reaward   INTEGER NOT NULL DEFAULT 1,
    organization_id TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX templates_name ON templates (name);

CREATE TABLE requirements (
    id           TEXT PRIMARY KEY,
    template_id  TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    key          TEXT,
    event_type   TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    group_letter TEXT NOT NULL CHECK (length(group_letter) = 1),
    rules        TEXT NOT NULL DEFAULT '[]',
    created_at   TEXT NOT NULL,
    UNIQUE (template_id, key)
);
CREATE INDEX requirements_template ON requirements (template_id);

CREATE TABLE penalties (
    id          TEXT PRIMARY KEY,
    template_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    key         TEXT,
    event_type  TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    rules       TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT NOT NULL,
    UNIQUE (template_id, key)
);
CREATE INDEX penalties_template ON penalties (template_id);

CREATE TABLE penalty_requirements (
    penalty_id     TEXT NOT NULL REFERENCES penalties (id) ON DELETE CASCADE,
    requirement_id TEXT NOT NULL REFERENCES requirements (id) ON DELETE CASCADE,
    PRIMARY KEY (penalty_id, requirement_id)
);

CREATE TABLE learners (
    username    TEXT PRIMARY KEY,
    lms_user_id INTEGER,
    email       TEXT,
    name        TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- The inbox: one row per accepted event id (dedup key), with the event body for replay.
-- `seq` is the rowid (no AUTOINCREMENT: rows are never deleted, and AUTOINCREMENT would cost an
-- extra write per event).
CREATE TABLE inbox_events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    event_type  TEXT NOT NULL,
    learner     TEXT NOT NULL,
    time        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX inbox_events_learner ON inbox_events (learner, seq);

CREATE TABLE rejected_events (
    seq         INTEGER PRIMARY KEY,
    event_id    TEXT,
    event_type  TEXT,
    code        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    source      TEXT NOT NULL,
    received_at TEXT NOT NULL
);

-- Progress: the requirements a learner currently has fulfilled, and by which event.
CREATE TABLE fulfillments (
    learner        TEXT NOT NULL,
    template_id    TEXT NOT NULL,
    requirement_id TEXT NOT NULL,
    event_id       TEXT,
    fulfilled_at   TEXT NOT NULL,
    PRIMARY KEY (learner, template_id, requirement_id)
) WITHOUT ROWID;

CREATE TABLE awards (
    id             TEXT PRIMARY KEY,
    template_id    TEXT NOT NULL REFERENCES templates (id),
    learner        TEXT NOT NULL,
    episode        INTEGER NOT NULL,
    state          TEXT NOT NULL,
    earned_at      TEXT NOT NULL,
    awarded_at     TEXT NOT NULL,
    issued_at      TEXT,
    revoked_at     TEXT,
    revoke_reason  TEXT,
    event_id       TEXT,
    external_id    TEXT,
    external_state TEXT,
    updated_at     TEXT NOT NULL,
    UNIQUE (template_id, learner, episode)
);
-- At most one unrevoked award per learner and template: the database itself refuses a duplicate.
CREATE UNIQUE INDEX awards_one_active ON awards (template_id, learner) WHERE state <> 'revoked';
CREATE INDEX awards_learner ON awards (learner);

-- The outbox.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       TEXT NOT NULL,
    locked_until TEXT,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, run_at);

-- Open edX badge.awarded / badge.revoked events waiting to be published.
CREATE TABLE outgoing_events (
    id           TEXT PRIMARY KEY,
    event_type   TEXT NOT NULL,
    award_id     TEXT NOT NULL,
    time         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    published_at TEXT
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);
