-- +goose Up
-- The same as the SQLite store's migration 00007: the worker token each
-- running job was leased with, so that revoking the token ends the lease;
-- and the lease tokens revocation ended, so that their worker is told why.
ALTER TABLE jobs ADD COLUMN worker_token_id TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_worker_token ON jobs (worker_token_id) WHERE worker_token_id != '';
CREATE TABLE revoked_leases (
	lease_hash TEXT PRIMARY KEY,
	job_id     TEXT NOT NULL,
	revoked_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE revoked_leases;
DROP INDEX jobs_worker_token;
ALTER TABLE jobs DROP COLUMN worker_token_id;
