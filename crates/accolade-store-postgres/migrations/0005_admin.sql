-- Local accounts of the /admin web UI and their browser sessions. Passwords are stored as argon2
-- PHC strings and sessions by the SHA-256 of their cookie, so a copy of the database yields
-- neither a password nor a usable session.

CREATE TABLE admin_users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    -- Compared byte for byte, as on SQLite: no locale may make two usernames equal.
    username      TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until  TIMESTAMPTZ,
    last_login_at TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE admin_sessions (
    id_hash    TEXT COLLATE "C" PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
-- The purge deletes by expiry; the user index serves the cascade and "end all sessions".
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
CREATE INDEX admin_sessions_user ON admin_sessions (user_id);
