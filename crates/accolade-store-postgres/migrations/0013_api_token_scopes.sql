-- Admin API tokens get scopes, an optional expiry and revocation (issue 16, row 12). Scopes are
-- stored space-separated (`events:write`, `read`, `admin`); tokens made before this migration
-- keep the full access they had. A revoked token is kept (listed, with when it was revoked) but
-- never accepted again.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMPTZ;
ALTER TABLE api_tokens ADD COLUMN revoked_at TIMESTAMPTZ;
