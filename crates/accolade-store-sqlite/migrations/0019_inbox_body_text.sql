-- The inbox body as text (issue 21): PostgreSQL's twin moves the column from JSONB to TEXT.
-- SQLite has always stored the body as text, so there is nothing to change here; the file keeps
-- the two migration histories in lockstep (scripts/check-migrations).
SELECT 1;
