-- Earshot's first schema (SQLite). Times are milliseconds since the Unix epoch.
-- The PostgreSQL twin is migrations/postgres/0001_initial.sql: keep them in step.

CREATE TABLE companies (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    settings    TEXT    NOT NULL,           -- earshot_policy::CompanySettings as JSON
    version     BIGINT  NOT NULL DEFAULT 1, -- bumped on every change apps must sync
    created_at  BIGINT  NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    company_id     BIGINT  NOT NULL REFERENCES companies (id),
    name           TEXT    NOT NULL,
    email          TEXT    NOT NULL UNIQUE,  -- stored lower-case
    role           TEXT    NOT NULL,
    extension      TEXT,
    settings       TEXT    NOT NULL,         -- earshot_policy::UserSettings as JSON
    password_hash  TEXT    NOT NULL,         -- argon2id PHC string
    sip_password   TEXT,                     -- digest auth needs the clear secret (or HA1)
    disabled       BIGINT  NOT NULL DEFAULT 0,  -- 0 or 1, portable across both databases
    failed_logins  BIGINT  NOT NULL DEFAULT 0,
    locked_until   BIGINT,
    created_at     BIGINT  NOT NULL
);
CREATE UNIQUE INDEX users_extension ON users (company_id, extension);

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY,
    company_id  BIGINT NOT NULL REFERENCES companies (id),
    name        TEXT   NOT NULL
);

CREATE TABLE group_members (
    group_id  BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

CREATE TABLE numbers (
    id          INTEGER PRIMARY KEY,
    company_id  BIGINT NOT NULL REFERENCES companies (id),
    e164        TEXT   NOT NULL UNIQUE,
    name        TEXT   NOT NULL,
    flow        TEXT   NOT NULL               -- earshot_policy::Flow as JSON
);

CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    company_id  BIGINT NOT NULL REFERENCES companies (id),
    name        TEXT   NOT NULL
);

CREATE TABLE contact_numbers (
    contact_id  BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    company_id  BIGINT NOT NULL,
    e164        TEXT   NOT NULL,
    PRIMARY KEY (contact_id, e164)
);
CREATE INDEX contact_numbers_lookup ON contact_numbers (company_id, e164);

CREATE TABLE calls (
    id               INTEGER PRIMARY KEY,
    company_id       BIGINT NOT NULL REFERENCES companies (id),
    direction        TEXT   NOT NULL,
    status           TEXT   NOT NULL,
    started_at       BIGINT NOT NULL,
    answered_at      BIGINT,
    ended_at         BIGINT,
    number_id        BIGINT,
    external_number  TEXT,
    contact_id       BIGINT,
    decided_by       TEXT,
    recording_trace  TEXT   NOT NULL DEFAULT '[]'
);
-- Keyset paging, newest first: the whole history, per number, per party.
CREATE INDEX calls_company_time ON calls (company_id, started_at DESC, id DESC);
CREATE INDEX calls_number_time ON calls (company_id, number_id, started_at DESC, id DESC);

-- Users on a call ('party') and users whose phones rang ('rang').
CREATE TABLE call_users (
    call_id     BIGINT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL,
    relation    TEXT   NOT NULL,
    company_id  BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,              -- copied from the call, for paging by user
    PRIMARY KEY (call_id, user_id, relation)
);
CREATE INDEX call_users_paging ON call_users (user_id, relation, started_at DESC, call_id DESC);

CREATE TABLE recordings (
    id            INTEGER PRIMARY KEY,
    company_id    BIGINT NOT NULL REFERENCES companies (id),
    call_id       BIGINT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    kind          TEXT   NOT NULL,
    duration_ms   BIGINT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    paused_spans  TEXT   NOT NULL DEFAULT '[]',
    file_name     TEXT   NOT NULL              -- under DATA_DIR/recordings/
);
CREATE UNIQUE INDEX recordings_call_kind ON recordings (call_id, kind);

CREATE TABLE sessions (
    token_hash   TEXT   PRIMARY KEY,           -- SHA-256 of the bearer token, hex
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY,
    company_id    BIGINT NOT NULL,
    user_id       BIGINT NOT NULL,
    action        TEXT   NOT NULL,             -- play | download
    recording_id  BIGINT NOT NULL,
    call_id       BIGINT NOT NULL,
    at            BIGINT NOT NULL,
    remote_addr   TEXT,
    user_agent    TEXT
);
CREATE INDEX audit_log_company_time ON audit_log (company_id, at DESC, id DESC);
