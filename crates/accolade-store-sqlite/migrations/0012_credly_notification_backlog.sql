-- The Credly webhook receiver counts an organization's notifications still waiting to be
-- confirmed (status 'received') on every post, to cap what unauthenticated senders can queue.
-- Few are ever waiting while the table keeps every settled one until it is pruned, so a partial
-- index keeps that count off the table.
CREATE INDEX credly_notifications_pending ON credly_notifications (organization_id)
    WHERE status = 'received';
