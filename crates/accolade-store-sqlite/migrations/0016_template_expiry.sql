-- Issue 18, expiry and criteria. A template's `expires_after` (`365d`, `12h`, …, as written; NULL:
-- awards never expire) and operator-written `criteria` (Markdown for the Open Badges achievement;
-- NULL: written from the requirements). An award's `expires_at` is fixed when it is made
-- (earned_at + expires_after then), so changing the template never moves it; `expiry_notified`
-- is set, with its one badge.expired outgoing event, by the expiry sweep.
ALTER TABLE templates ADD COLUMN expires_after TEXT;
ALTER TABLE templates ADD COLUMN criteria TEXT;
ALTER TABLE awards ADD COLUMN expires_at TEXT;
ALTER TABLE awards ADD COLUMN expiry_notified INTEGER NOT NULL DEFAULT 0;
-- What the sweep looks for: unrevoked awards with an expiry not yet notified, earliest first.
-- Awards without expiry (the default) are not in it, so the event path's INSERT writes no entry.
CREATE INDEX awards_expiring ON awards (expires_at)
    WHERE expires_at IS NOT NULL AND expiry_notified = 0 AND state <> 'revoked';
