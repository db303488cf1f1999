-- Indexes for a contact's log, deleting a contact, and a user's groups.
-- The SQLite twin is migrations/sqlite/0002_lookup_indexes.sql.
CREATE INDEX calls_contact_time ON calls (company_id, contact_id, started_at DESC, id DESC);
CREATE INDEX group_members_user ON group_members (user_id);
