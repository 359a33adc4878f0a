-- A learner's events are chained newest to oldest (inbox_events.prev_seq, with the head in
-- learners.last_event_seq) instead of indexed by (learner, seq). That index took a random B-tree
-- page write per event, about a fifth of the single writer's time on the ingest path; the chain
-- costs one learner-row update per learner per batch, on a table with a row per learner.
ALTER TABLE inbox_events ADD COLUMN prev_seq INTEGER;
ALTER TABLE learners ADD COLUMN last_event_seq INTEGER;
UPDATE inbox_events SET prev_seq = (
    SELECT max(p.seq) FROM inbox_events p
    WHERE p.learner = inbox_events.learner AND p.seq < inbox_events.seq
);
UPDATE learners SET last_event_seq = (
    SELECT max(e.seq) FROM inbox_events e WHERE e.learner = learners.username
);
DROP INDEX inbox_events_learner;
