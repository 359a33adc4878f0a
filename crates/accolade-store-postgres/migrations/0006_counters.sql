-- Running totals for the dashboard: counting a million awards on every page view took ~50 ms.
-- Kept in the transaction that awards or revokes; the starting values are counted once here.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) SELECT 'awards', count(*) FROM awards;
INSERT INTO counters (name, value) SELECT 'awards_revoked', count(*) FROM awards WHERE state = 'revoked';
-- Events accepted into the inbox (its bigserial has gaps: a duplicate still takes a number).
INSERT INTO counters (name, value) SELECT 'events', count(*) FROM inbox_events;
