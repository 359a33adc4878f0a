-- The event-bus producer reads unpublished badge events oldest first.
CREATE INDEX outgoing_events_unpublished ON outgoing_events (time, id) WHERE published_at IS NULL;
