-- SQLite rebuilds its awards table in this migration to drop a secondary index from its single
-- writer's path. PostgreSQL keeps its layout (concurrent writers; the index costs them little);
-- the file keeps the two migration histories in lockstep.
SELECT 1;
