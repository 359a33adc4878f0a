-- Outbound webhooks: subscriptions (with their sealed signing secrets), one delivery per event and
-- subscription, and the cursor up to which outgoing events have been fanned out.

CREATE TABLE webhooks (
    id                TEXT PRIMARY KEY,
    url               TEXT NOT NULL,
    event_types       TEXT NOT NULL DEFAULT '[]',
    description       TEXT NOT NULL DEFAULT '',
    active            INTEGER NOT NULL DEFAULT 1,
    secret_ciphertext BLOB NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    replay_of        TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    locked_until     TEXT,
    first_attempt_at TEXT,
    last_attempt_at  TEXT,
    last_status      INTEGER,
    last_error       TEXT,
    last_response_ms INTEGER,
    created_at       TEXT NOT NULL,
    delivered_at     TEXT,
    updated_at       TEXT NOT NULL
);
-- Fan-out creates at most one original delivery per event and subscription (replays are extra).
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (webhook_id, event_id)
    WHERE replay_of IS NULL;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, created_at);

-- The rowid of the last outgoing event fanned out. Rows of outgoing_events are only ever
-- inserted, by the single writer, so rowid order is commit order. Starts at the current end: an
-- upgraded install does not replay its history to subscriptions that did not exist then.
CREATE TABLE webhook_cursor (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    last_rowid INTEGER NOT NULL
);
INSERT INTO webhook_cursor (id, last_rowid) SELECT 1, coalesce(max(rowid), 0) FROM outgoing_events;
