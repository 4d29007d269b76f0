-- +goose Up
-- The same as the SQLite store's migration 00008: the step a running job
-- is in ("uploading", "registering"), which the API shows.
ALTER TABLE jobs ADD COLUMN progress_step TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE jobs DROP COLUMN progress_step;
