-- Awards are unique per (learner, template, episode) in that order, so the same index answers
-- "awards of a learner" and the award decision's "latest episode of this learner and template";
-- the separate awards_learner index (a random B-tree write per award) goes. SQLite cannot change
-- a table constraint in place: the table is rebuilt, with the same columns.
CREATE TABLE awards_v8 (
    id             TEXT PRIMARY KEY,
    template_id    TEXT NOT NULL REFERENCES templates (id),
    learner        TEXT NOT NULL,
    episode        INTEGER NOT NULL,
    state          TEXT NOT NULL,
    earned_at      TEXT NOT NULL,
    awarded_at     TEXT NOT NULL,
    issued_at      TEXT,
    revoked_at     TEXT,
    revoke_reason  TEXT,
    event_id       TEXT,
    external_id    TEXT,
    external_state TEXT,
    updated_at     TEXT NOT NULL,
    UNIQUE (learner, template_id, episode)
);
INSERT INTO awards_v8 (id, template_id, learner, episode, state, earned_at, awarded_at, issued_at,
                       revoked_at, revoke_reason, event_id, external_id, external_state, updated_at)
SELECT id, template_id, learner, episode, state, earned_at, awarded_at, issued_at,
       revoked_at, revoke_reason, event_id, external_id, external_state, updated_at
FROM awards;
DROP TABLE awards;
ALTER TABLE awards_v8 RENAME TO awards;
-- At most one unrevoked award per learner and template (also the index for a template's awards).
CREATE UNIQUE INDEX awards_one_active ON awards (template_id, learner) WHERE state <> 'revoked';
CREATE INDEX awards_external ON awards (external_id) WHERE external_id IS NOT NULL;
