-- +goose Up
ALTER TABLE composes ADD COLUMN expired INTEGER NOT NULL DEFAULT 0;
CREATE INDEX composes_expiry ON composes (expired, created_at);

-- +goose Down
DROP INDEX composes_expiry;
ALTER TABLE composes DROP COLUMN expired;
