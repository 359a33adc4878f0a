-- Whether the giver named the recipient of a member badge by its address (POST /member_badges
-- with `email`), so the giver already knew it; given to a `member_id`, the address is the
-- member's own and must not be shown to the giver (issue 16, row 3). Rows given before this
-- migration get 0: whoever gave them is shown no address (the safe side).
ALTER TABLE oc_member_badges ADD COLUMN addressed_by_email INTEGER NOT NULL DEFAULT 0;
