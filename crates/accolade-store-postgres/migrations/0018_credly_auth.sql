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
-- The PostgreSQL twin of the SQLite crate's 0018_credly_auth.sql, which rebuilds the table to
-- the same schema (scripts/check-migrations).
ALTER TABLE credly_organizations
    ALTER COLUMN api_key_ciphertext DROP NOT NULL,
    ALTER COLUMN api_key_last4 DROP NOT NULL,
    ALTER COLUMN key_created_at DROP NOT NULL,
    ALTER COLUMN key_expires_at DROP NOT NULL,
    ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'token'
        CONSTRAINT credly_organizations_auth_method CHECK (auth_method IN ('token', 'oauth')),
    ADD COLUMN oauth_client_id_ciphertext BYTEA,
    ADD COLUMN oauth_client_secret_ciphertext BYTEA,
    ADD COLUMN oauth_client_id_last4 TEXT,
    ADD COLUMN oauth_created_at TIMESTAMPTZ,
    ADD COLUMN rotation_lease_until TIMESTAMPTZ,
    ADD COLUMN last_rotation_at TIMESTAMPTZ,
    ADD COLUMN last_rotation_trigger TEXT
        CONSTRAINT credly_organizations_rotation_trigger
        CHECK (last_rotation_trigger IN ('manual', 'auto')),
    ADD COLUMN last_rotation_result TEXT
        CONSTRAINT credly_organizations_rotation_result
        CHECK (last_rotation_result IN ('ok', 'failed')),
    ADD COLUMN last_rotation_detail TEXT,
    ADD CONSTRAINT credly_organizations_one_method CHECK (
        (auth_method = 'token' AND api_key_ciphertext IS NOT NULL AND api_key_last4 IS NOT NULL
         AND key_created_at IS NOT NULL AND key_expires_at IS NOT NULL
         AND oauth_client_id_ciphertext IS NULL AND oauth_client_secret_ciphertext IS NULL)
        OR
        (auth_method = 'oauth' AND oauth_client_id_ciphertext IS NOT NULL
         AND oauth_client_secret_ciphertext IS NOT NULL AND oauth_client_id_last4 IS NOT NULL
         AND oauth_created_at IS NOT NULL AND api_key_ciphertext IS NULL)
    );
