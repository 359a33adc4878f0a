-- Credly bridge: organizations (with their encrypted API keys), webhook notifications, and a
-- lookup of awards by the provider's badge id. The PostgreSQL twin of the SQLite crate's
-- 0002_credly.sql: same tables, columns, constraints and indexes, in native types.

CREATE TABLE credly_organizations (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    name               TEXT COLLATE "C" NOT NULL,
    api_key_ciphertext BYTEA NOT NULL,
    api_key_last4      TEXT NOT NULL,
    key_created_at     TIMESTAMPTZ NOT NULL,
    key_expires_at     TIMESTAMPTZ NOT NULL,
    last_sync_at       TIMESTAMPTZ,
    last_sync_summary  JSONB,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);

-- One row per Credly event id: the dedup key of webhook processing.
CREATE TABLE credly_notifications (
    id              TEXT COLLATE "C" PRIMARY KEY,
    organization_id TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    occurred_at     TEXT,
    received_at     TIMESTAMPTZ NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('received', 'applied', 'ignored', 'rejected')),
    detail          TEXT,
    processed_at    TIMESTAMPTZ
);
CREATE INDEX credly_notifications_received ON credly_notifications (received_at);

CREATE INDEX awards_external ON awards (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX templates_organization ON templates (organization_id) WHERE organization_id IS NOT NULL;
