-- Jobs of local templates are done in the transaction that writes them (outbox::done_in_place);
-- versions before that left them pending for a worker, which is retired with this migration.
-- Any still pending are completed here as that worker did: an issue records the award as
-- issued now (awarded unless revoked meanwhile); a revocation has nothing left to do.
UPDATE awards
   SET state = 'awarded'
 WHERE state NOT IN ('revoked', 'awarded')
   AND id IN (SELECT payload->>'award_id' FROM jobs
               WHERE kind = 'award.issue' AND status IN ('pending', 'running'));
UPDATE awards
   SET issued_at = date_trunc('microseconds', now()), updated_at = date_trunc('microseconds', now())
 WHERE id IN (SELECT payload->>'award_id' FROM jobs
               WHERE kind = 'award.issue' AND status IN ('pending', 'running'));
UPDATE jobs
   SET status = 'succeeded', attempts = attempts + 1, locked_until = NULL,
       updated_at = date_trunc('microseconds', now())
 WHERE kind IN ('award.issue', 'award.revoke') AND status IN ('pending', 'running');
