-- A Credly job deferred because its organization's API key expired records which organization
-- it waits for, so rotating that key can make it due at once (Store::release_jobs_waiting_for_key)
-- instead of leaving it to wait out the deferral. NULL for every other job; any result other
-- than such a deferral clears it. Only pending jobs are looked up by it, and few jobs ever wait,
-- so a partial index keeps the lookup off the (large, ever-growing) table.
ALTER TABLE jobs ADD COLUMN waiting_for_key TEXT;
CREATE INDEX jobs_waiting_for_key ON jobs (waiting_for_key) WHERE waiting_for_key IS NOT NULL;
