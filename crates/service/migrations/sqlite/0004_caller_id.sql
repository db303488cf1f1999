-- The company number a user's outbound calls show as caller ID; NULL means
-- the company's first number. Deleting the number returns the user to that default.
ALTER TABLE users ADD COLUMN caller_number_id BIGINT REFERENCES numbers (id) ON DELETE SET NULL;
