-- The Open Badges 3.0 issuer: its signing keys, one credential per award of a local template
-- (reserved when its award is claimed, signed once, never changed after), the Bitstring Status
-- Lists that revoke them, and its cursor in the outgoing-event stream.

-- Signing keys. Retired keys stay: the credentials they signed must still verify. At most one
-- key is active (not retired).
CREATE TABLE ob_keys (
    id               TEXT PRIMARY KEY,
    public_multibase TEXT NOT NULL,
    secret_sealed    BLOB NOT NULL,
    created_at       TEXT NOT NULL,
    retired_at       TEXT
);
CREATE UNIQUE INDEX ob_keys_one_active ON ob_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;

-- Bitstring Status Lists: `size` entries in `bits` (entry 0 = the most significant bit of the
-- first byte; a set bit = revoked). `used` entries are reserved by credentials; a list takes
-- new ones while less than half used, so random indexes stay cheap to find. `version` is bumped
-- by every change of the bits; `document` is the signed list at `signed_version` (0: never).
-- `issued` and `revoked` count the list's credentials signed and revoked, so that the issuer's
-- totals are read from these few rows rather than counted over every credential.
CREATE TABLE ob_status_lists (
    id             INTEGER PRIMARY KEY,
    size           INTEGER NOT NULL,
    bits           BLOB NOT NULL,
    used           INTEGER NOT NULL DEFAULT 0,
    issued         INTEGER NOT NULL DEFAULT 0,
    revoked        INTEGER NOT NULL DEFAULT 0,
    version        INTEGER NOT NULL DEFAULT 1,
    signed_version INTEGER NOT NULL DEFAULT 0,
    document       TEXT,
    updated_at     TEXT NOT NULL
);

-- One credential per award: its public id and status entry are reserved when the award is first
-- claimed (so signing again after a crash signs the same credential), the document is stored
-- once, exactly as signed.
CREATE TABLE ob_credentials (
    award_id      TEXT PRIMARY KEY REFERENCES awards (id),
    credential_id TEXT NOT NULL UNIQUE,
    template_id   TEXT NOT NULL,
    learner       TEXT NOT NULL,
    status_list   INTEGER NOT NULL REFERENCES ob_status_lists (id),
    status_index  INTEGER NOT NULL,
    document      TEXT,
    key_id        TEXT REFERENCES ob_keys (id),
    reserved_at   TEXT NOT NULL,
    signed_at     TEXT,
    valid_until   TEXT,
    revoked_at    TEXT,
    UNIQUE (status_list, status_index)
);

-- Where the issuer stands in outgoing_events: `last_position` is the rowid of the last event
-- handled (rowid order is commit order, see 0004_webhooks.sql), `last_id` its id. `holder`
-- has claimed the events after it until `lease_until`. Starts at the beginning, so that awards
-- made before this version get their credentials too.
CREATE TABLE ob_cursor (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_position INTEGER NOT NULL,
    last_id       TEXT NOT NULL,
    holder        TEXT,
    lease_until   TEXT
);
INSERT INTO ob_cursor (id, last_position, last_id) VALUES (1, 0, '');
