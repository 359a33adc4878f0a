-- Outbound webhooks: subscriptions (with their sealed signing secrets), one delivery per event and
-- subscription, and the cursor up to which outgoing events have been fanned out.

CREATE TABLE webhooks (
    id                TEXT COLLATE "C" PRIMARY KEY,
    url               TEXT NOT NULL,
    event_types       TEXT[] NOT NULL DEFAULT '{}',
    description       TEXT NOT NULL DEFAULT '',
    active            BOOLEAN NOT NULL DEFAULT true,
    secret_ciphertext BYTEA NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               TEXT COLLATE "C" PRIMARY KEY,
    webhook_id       TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         TEXT COLLATE "C" NOT NULL,
    event_type       TEXT NOT NULL,
    replay_of        TEXT COLLATE "C",
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'dead')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ,
    locked_until     TIMESTAMPTZ,
    first_attempt_at TIMESTAMPTZ,
    last_attempt_at  TIMESTAMPTZ,
    last_status      INTEGER,
    last_error       TEXT,
    last_response_ms BIGINT,
    created_at       TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL
);
-- Fan-out creates at most one original delivery per event and subscription (replays are extra).
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (webhook_id, event_id)
    WHERE replay_of IS NULL;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, created_at);

-- Commit order of outgoing events. A sequence number is not enough on PostgreSQL: a transaction
-- can take a lower number and commit after a higher one was read, and a cursor would skip it.
-- Instead each row records the id of the transaction that wrote it (a column default, so the
-- writers' INSERTs are unchanged), and fan-out reads only rows of transactions older than every
-- transaction still running (the snapshot's xmin), in (tx, id) order: no row can later appear
-- behind the cursor.
ALTER TABLE outgoing_events ADD COLUMN tx BIGINT NOT NULL DEFAULT txid_current();
CREATE INDEX outgoing_events_tx ON outgoing_events (tx, id);

-- Starts at the current end: an upgraded install does not replay its history (every existing
-- row got this migration's transaction id above).
CREATE TABLE webhook_cursor (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    last_tx BIGINT NOT NULL,
    last_id TEXT COLLATE "C" NOT NULL
);
INSERT INTO webhook_cursor (id, last_tx, last_id)
SELECT 1, txid_current(), coalesce(max(id), '') FROM outgoing_events;
