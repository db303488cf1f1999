-- Recordings kept only as long as they should be (issue 18, part 4).
-- A legal hold on a call: its recordings are kept whatever the retention
-- and cannot be deleted on request (both set while the call is held).
ALTER TABLE calls ADD COLUMN legal_hold_by BIGINT;
ALTER TABLE calls ADD COLUMN legal_hold_at BIGINT;
-- A deleted recording keeps its row (the call shows it deleted, by whom and
-- when); deleted_by is NULL when the service deleted it (retention);
-- file_gone is 1 once its file is removed from the spool and the store.
ALTER TABLE recordings ADD COLUMN deleted_at BIGINT;
ALTER TABLE recordings ADD COLUMN deleted_by BIGINT;
ALTER TABLE recordings ADD COLUMN deleted_reason TEXT;
ALTER TABLE recordings ADD COLUMN file_gone BIGINT NOT NULL DEFAULT 0;
CREATE INDEX recordings_to_remove ON recordings (company_id) WHERE deleted_at IS NOT NULL AND file_gone = 0;
-- The audit log also records deletions (user NULL: the service itself) and
-- legal holds (about a call, recording NULL when it has none). SQLite cannot
-- drop a NOT NULL: the table is rebuilt.
CREATE TABLE audit_log_new (
    id            INTEGER PRIMARY KEY,
    company_id    BIGINT NOT NULL,
    user_id       BIGINT,
    action        TEXT   NOT NULL,             -- play | download | delete | hold | release
    recording_id  BIGINT,
    call_id       BIGINT NOT NULL,
    at            BIGINT NOT NULL,
    remote_addr   TEXT,
    user_agent    TEXT
);
INSERT INTO audit_log_new (id, company_id, user_id, action, recording_id, call_id, at, remote_addr, user_agent)
    SELECT id, company_id, user_id, action, recording_id, call_id, at, remote_addr, user_agent FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
CREATE INDEX audit_log_company_time ON audit_log (company_id, at DESC, id DESC);
