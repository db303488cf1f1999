-- A user's availability for calls: 1 while they set "Do not disturb" in
-- their app; ring steps and direct calls then pass them by.
ALTER TABLE users ADD COLUMN do_not_disturb BIGINT NOT NULL DEFAULT 0;
