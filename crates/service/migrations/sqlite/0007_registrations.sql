-- The registrar's bindings, in the database rather than one process's
-- memory, so that a call placed through any earshotd on one PostgreSQL
-- reaches a device registered through any other. `path` holds the Path
-- header values (RFC 3327) the REGISTER came through, first hop first, as
-- a JSON array: an edge proxy (Kamailio) in front adds itself, and calls
-- to the device go back through it. `instance` is the earshotd that took
-- the REGISTER; `device` the device credential it used (NULL: the user's
-- SIP password, an ordinary phone).
CREATE TABLE registrations (
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    contact     TEXT   NOT NULL,
    path        TEXT   NOT NULL DEFAULT '[]',
    instance    TEXT   NOT NULL,
    device      TEXT,
    expires_at  BIGINT NOT NULL,   -- milliseconds since the epoch
    PRIMARY KEY (user_id, contact)
);
CREATE INDEX registrations_expiry ON registrations (expires_at);
