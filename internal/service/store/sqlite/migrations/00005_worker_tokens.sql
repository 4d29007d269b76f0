-- +goose Up
-- Secrets remote workers request jobs with (kiln worker-token create).
CREATE TABLE worker_tokens (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	hash       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);

-- +goose Down
DROP TABLE worker_tokens;
