-- Credly authentication (issue 20): an organization authenticates with an authorization token
-- (`auth_method = 'token'`, the key columns as before) or with OAuth 2.0 client credentials
-- (`'oauth'`: the client id and secret, each sealed by the server's secret box, and the id's
-- last four characters to tell clients apart). An organization has one or the other, so the key
-- columns become nullable and a CHECK keeps exactly the chosen method's columns filled.
--
-- Rotation of authorization tokens through Credly: `rotation_lease_until` is claimed with a
-- conditional UPDATE before Credly is called, so of several instances sharing a database one
-- rotates a given key; `last_rotation_*` record the last attempt for the operator (when,
-- `manual` or `auto`, `ok` or `failed`, and why it failed; never a secret).
--
-- SQLite cannot drop NOT NULL in place: the table is rebuilt with the same rows (nothing refers
-- to it by foreign key). PostgreSQL alters it in place (same name, same resulting schema:
-- scripts/check-migrations).
CREATE TABLE credly_organizations_0018 (
    id                             TEXT PRIMARY KEY,
    name                           TEXT NOT NULL,
    auth_method                    TEXT NOT NULL DEFAULT 'token'
                                   CHECK (auth_method IN ('token', 'oauth')),
    api_key_ciphertext             BLOB,
    api_key_last4                  TEXT,
    key_created_at                 TEXT,
    key_expires_at                 TEXT,
    oauth_client_id_ciphertext     BLOB,
    oauth_client_secret_ciphertext BLOB,
    oauth_client_id_last4          TEXT,
    oauth_created_at               TEXT,
    rotation_lease_until           TEXT,
    last_rotation_at               TEXT,
    last_rotation_trigger          TEXT CHECK (last_rotation_trigger IN ('manual', 'auto')),
    last_rotation_result           TEXT CHECK (last_rotation_result IN ('ok', 'failed')),
    last_rotation_detail           TEXT,
    last_sync_at                   TEXT,
    last_sync_summary              TEXT,
    created_at                     TEXT NOT NULL,
    updated_at                     TEXT NOT NULL,
    CHECK (
        (auth_method = 'token' AND api_key_ciphertext IS NOT NULL AND api_key_last4 IS NOT NULL
         AND key_created_at IS NOT NULL AND key_expires_at IS NOT NULL
         AND oauth_client_id_ciphertext IS NULL AND oauth_client_secret_ciphertext IS NULL)
        OR
        (auth_method = 'oauth' AND oauth_client_id_ciphertext IS NOT NULL
         AND oauth_client_secret_ciphertext IS NOT NULL AND oauth_client_id_last4 IS NOT NULL
         AND oauth_created_at IS NOT NULL AND api_key_ciphertext IS NULL)
    )
);

INSERT INTO credly_organizations_0018 (id, name, auth_method, api_key_ciphertext, api_key_last4,
    key_created_at, key_expires_at, last_sync_at, last_sync_summary, created_at, updated_at)
SELECT id, name, 'token', api_key_ciphertext, api_key_last4, key_created_at, key_expires_at,
    last_sync_at, last_sync_summary, created_at, updated_at
FROM credly_organizations;

DROP TABLE credly_organizations;
ALTER TABLE credly_organizations_0018 RENAME TO credly_organizations;
