-- SIP credentials the service issues to each signed-in device of the app
-- (SPEC §9), so it registers as a phone without a second password. The
-- digest user name is random; the password is shown to the device once and
-- kept here as HA1 only. A credential lives as long as the session that
-- asked for it: a log-out, a disabled user or a password change (each ends
-- the session) ends it too.
CREATE TABLE device_credentials (
    sip_user    TEXT   PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  TEXT   NOT NULL REFERENCES sessions (token_hash) ON DELETE CASCADE,
    name        TEXT   NOT NULL,
    ha1         TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX device_credentials_user ON device_credentials (user_id);
CREATE INDEX device_credentials_session ON device_credentials (token_hash);
