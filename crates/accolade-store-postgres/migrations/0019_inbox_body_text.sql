-- The inbox keeps each event's body as text, the JSON exactly as it is served back (issue 21).
-- It is only ever read back whole (as text) and parsed by the application; as JSONB every event
-- batch paid to parse each body into the binary form, about 3.5 µs an event or 4% of the
-- database's CPU on the event path, and each row was about 14% larger. SQLite stored text
-- already. The change rewrites the table once, holding it locked: on a large inbox, run
-- `accolade migrate` while ingest is paused (docs/deployment.md).
ALTER TABLE inbox_events ALTER COLUMN body TYPE TEXT USING body::text;
