-- SQLite replaces its (learner, seq) inbox index with a per-learner chain in this migration.
-- PostgreSQL keeps inbox_events_learner: its writers run concurrently and the index costs
-- them far less than it cost SQLite's single writer. Nothing to change here; the file keeps
-- the two migration histories in lockstep.
SELECT 1;
