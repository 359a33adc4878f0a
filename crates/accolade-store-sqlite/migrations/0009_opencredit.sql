-- The Open Credit-style API (/v1.1): apps, members, their addresses, tokens and badges.
-- Ids are integers (rowids), as in Credly's Open Credit API. Secrets are stored hashed.
CREATE TABLE oc_apps (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    api_key     TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    tier        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE oc_members (
    id              INTEGER PRIMARY KEY,
    is_organization INTEGER NOT NULL,
    email           TEXT,
    password_hash   TEXT,
    first_name      TEXT NOT NULL,
    last_name       TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    -- Base name of the stored avatar image (size codes as for badges), if any.
    avatar          TEXT,
    created_at      TEXT NOT NULL
);

-- Every address of every member, unique across members (lower-cased by the server).
CREATE TABLE oc_emails (
    email       TEXT PRIMARY KEY,
    member_id   INTEGER NOT NULL REFERENCES oc_members (id),
    verified_at TEXT,
    token_hash  TEXT UNIQUE,
    -- When the address was added: an unverified claim older than a week gives way to a new one.
    claimed_at  TEXT NOT NULL
);
CREATE INDEX oc_emails_member ON oc_emails (member_id);

-- Which users manage which members (organizations).
CREATE TABLE oc_managers (
    manager_id INTEGER NOT NULL REFERENCES oc_members (id),
    member_id  INTEGER NOT NULL REFERENCES oc_members (id),
    PRIMARY KEY (manager_id, member_id)
);

CREATE TABLE oc_tokens (
    token_hash TEXT PRIMARY KEY,
    member_id  INTEGER NOT NULL REFERENCES oc_members (id),
    app_id     INTEGER NOT NULL REFERENCES oc_apps (id),
    kind       TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    expires_at TEXT NOT NULL
);

CREATE TABLE oc_badges (
    id                INTEGER PRIMARY KEY,
    member_id         INTEGER NOT NULL REFERENCES oc_members (id),
    title             TEXT NOT NULL,
    short_description TEXT NOT NULL,
    description       TEXT NOT NULL,
    criteria          TEXT NOT NULL,
    evidence_prompt   TEXT NOT NULL,
    image             TEXT,
    expires_in        INTEGER NOT NULL,
    categories        TEXT NOT NULL,
    is_giveable       INTEGER NOT NULL,
    -- The local rules-engine template this badge stands for: its awards become member badges.
    template_id       TEXT UNIQUE,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX oc_badges_member ON oc_badges (member_id);

-- Credit given: a badge issued to a recipient address. The recipient is whichever member has
-- (or later adds and verifies) that address; it accepts or rejects the badge once verified.
-- A deleted badge given for an award stays as status 'deleted' (so it is not given again).
CREATE TABLE oc_member_badges (
    id              INTEGER PRIMARY KEY,
    badge_id        INTEGER NOT NULL REFERENCES oc_badges (id),
    giver_id        INTEGER NOT NULL REFERENCES oc_members (id),
    email           TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected', 'deleted')),
    testimonial     TEXT NOT NULL,
    evidence        TEXT NOT NULL,
    -- The rules-engine award this member badge was given for (automatic awards only).
    award_id        TEXT UNIQUE,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX oc_member_badges_email ON oc_member_badges (email);
CREATE INDEX oc_member_badges_badge ON oc_member_badges (badge_id);
