-- Credly bridge: organizations (with their encrypted API keys), webhook notifications, and a
-- lookup of awards by the provider's badge id.

CREATE TABLE credly_organizations (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    api_key_ciphertext BLOB NOT NULL,
    api_key_last4      TEXT NOT NULL,
    key_created_at     TEXT NOT NULL,
    key_expires_at     TEXT NOT NULL,
    last_sync_at       TEXT,
    last_sync_summary  TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

-- One row per Credly event id: the dedup key of webhook processing.
CREATE TABLE credly_notifications (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    occurred_at     TEXT,
    received_at     TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('received', 'applied', 'ignored', 'rejected')),
    detail          TEXT,
    processed_at    TEXT
);
CREATE INDEX credly_notifications_received ON credly_notifications (received_at);

CREATE INDEX awards_external ON awards (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX templates_organization ON templates (organization_id) WHERE organization_id IS NOT NULL;
