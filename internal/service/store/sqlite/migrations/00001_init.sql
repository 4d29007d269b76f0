-- +goose Up
CREATE TABLE tokens (
	id         TEXT PRIMARY KEY,
	org_id     TEXT NOT NULL,
	name       TEXT NOT NULL,
	hash       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);
CREATE INDEX tokens_org ON tokens (org_id);

CREATE TABLE composes (
	id         TEXT PRIMARY KEY,
	org_id     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	image_name TEXT NOT NULL,
	request    TEXT NOT NULL,
	hidden     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX composes_org_list ON composes (org_id, hidden, created_at DESC, id);

CREATE TABLE jobs (
	id               TEXT PRIMARY KEY,
	seq              INTEGER NOT NULL,
	compose_id       TEXT NOT NULL REFERENCES composes (id),
	org_id           TEXT NOT NULL,
	type             TEXT NOT NULL,
	arch             TEXT NOT NULL,
	args             TEXT NOT NULL,
	max_attempts     INTEGER NOT NULL,
	state            TEXT NOT NULL,
	attempts         INTEGER NOT NULL DEFAULT 0,
	worker           TEXT NOT NULL DEFAULT '',
	lease_hash       TEXT,
	lease_expires_at INTEGER,
	queued_at        INTEGER NOT NULL,
	started_at       INTEGER,
	finished_at      INTEGER,
	progress_done    INTEGER NOT NULL DEFAULT 0,
	progress_total   INTEGER NOT NULL DEFAULT 0,
	result           TEXT,
	error_reason     TEXT,
	error_details    TEXT,
	cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_ready ON jobs (state, type, queued_at, seq);
CREATE INDEX jobs_compose ON jobs (compose_id, seq);
CREATE INDEX jobs_lease ON jobs (state, lease_expires_at);

CREATE TABLE job_deps (
	job_id TEXT NOT NULL REFERENCES jobs (id),
	dep_id TEXT NOT NULL REFERENCES jobs (id),
	PRIMARY KEY (job_id, dep_id)
);
CREATE INDEX job_deps_dep ON job_deps (dep_id);

-- +goose Down
DROP TABLE job_deps;
DROP TABLE jobs;
DROP TABLE composes;
DROP TABLE tokens;
