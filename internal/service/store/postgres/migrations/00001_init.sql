-- +goose Up
-- The same schema as the SQLite store's migrations 00001-00005, in one
-- step. Times are Unix nanoseconds from the store's clock, as in SQLite;
-- JSON is kept as the text it was given. Identifiers, job types, arches and
-- states sort bytewise (COLLATE "C") whatever the database's locale, as
-- they do in SQLite.
CREATE TABLE tokens (
	id         TEXT COLLATE "C" PRIMARY KEY,
	org_id     TEXT NOT NULL,
	name       TEXT NOT NULL,
	hash       TEXT NOT NULL UNIQUE,
	created_at BIGINT NOT NULL,
	revoked_at BIGINT
);
CREATE INDEX tokens_org ON tokens (org_id);

CREATE TABLE worker_tokens (
	id         TEXT COLLATE "C" PRIMARY KEY,
	name       TEXT NOT NULL,
	hash       TEXT NOT NULL UNIQUE,
	created_at BIGINT NOT NULL,
	revoked_at BIGINT
);

CREATE TABLE blueprints (
	id          TEXT COLLATE "C" PRIMARY KEY,
	org_id      TEXT NOT NULL,
	name        TEXT NOT NULL,
	description TEXT NOT NULL,
	version     INTEGER NOT NULL,
	updated_at  BIGINT NOT NULL,
	deleted     BOOLEAN NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX blueprints_org_name ON blueprints (org_id, name) WHERE NOT deleted;
CREATE INDEX blueprints_org_list ON blueprints (org_id, deleted, updated_at DESC, id);

CREATE TABLE blueprint_versions (
	blueprint_id TEXT COLLATE "C" NOT NULL REFERENCES blueprints (id),
	version      INTEGER NOT NULL,
	body         TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	PRIMARY KEY (blueprint_id, version)
);

CREATE TABLE composes (
	id                TEXT COLLATE "C" PRIMARY KEY,
	org_id            TEXT NOT NULL,
	created_at        BIGINT NOT NULL,
	image_name        TEXT NOT NULL,
	request           TEXT NOT NULL,
	hidden            BOOLEAN NOT NULL DEFAULT false,
	expired           BOOLEAN NOT NULL DEFAULT false,
	blueprint_id      TEXT COLLATE "C",
	blueprint_version INTEGER
);
CREATE INDEX composes_org_list ON composes (org_id, hidden, created_at DESC, id);
CREATE INDEX composes_expiry ON composes (expired, created_at);
CREATE INDEX composes_blueprint ON composes (org_id, blueprint_id, hidden, created_at DESC, id);

-- How many visible composes each org has, kept with every change, so a
-- page of a large list does not count the whole list. Concurrent inserts
-- add to it with INSERT ... ON CONFLICT DO UPDATE, which locks the org's
-- row: no increment is lost.
CREATE TABLE org_compose_counts (
	org_id  TEXT PRIMARY KEY,
	visible BIGINT NOT NULL
);

CREATE TABLE jobs (
	id               TEXT COLLATE "C" PRIMARY KEY,
	-- Creation order: a tie-break between jobs queued at the same time.
	seq              BIGINT GENERATED ALWAYS AS IDENTITY,
	compose_id       TEXT COLLATE "C" NOT NULL REFERENCES composes (id),
	org_id           TEXT NOT NULL,
	type             TEXT COLLATE "C" NOT NULL,
	arch             TEXT COLLATE "C" NOT NULL,
	args             TEXT NOT NULL,
	max_attempts     INTEGER NOT NULL,
	state            TEXT COLLATE "C" NOT NULL,
	attempts         INTEGER NOT NULL DEFAULT 0,
	worker           TEXT NOT NULL DEFAULT '',
	lease_hash       TEXT,
	lease_expires_at BIGINT,
	queued_at        BIGINT NOT NULL,
	started_at       BIGINT,
	finished_at      BIGINT,
	progress_done    INTEGER NOT NULL DEFAULT 0,
	progress_total   INTEGER NOT NULL DEFAULT 0,
	result           TEXT,
	error_reason     TEXT,
	error_details    TEXT,
	cancel_requested BOOLEAN NOT NULL DEFAULT false
);
-- Dequeue walks the pending jobs oldest first; ended jobs, which are most
-- of the table, are not in this index at all.
CREATE INDEX jobs_ready ON jobs (queued_at, seq) WHERE state = 'pending';
CREATE INDEX jobs_compose ON jobs (compose_id, seq);
-- A queue's rows change state several times each: vacuum and analyze the
-- table after 1% of it changed (not PostgreSQL's default 10-20%), so dead
-- rows do not pile up and the planner keeps walking jobs_ready in order.
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.01);
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';

CREATE TABLE job_deps (
	job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs (id),
	dep_id TEXT COLLATE "C" NOT NULL REFERENCES jobs (id),
	PRIMARY KEY (job_id, dep_id)
);
CREATE INDEX job_deps_dep ON job_deps (dep_id);

-- +goose Down
DROP TABLE job_deps;
DROP TABLE jobs;
DROP TABLE org_compose_counts;
DROP TABLE composes;
DROP TABLE blueprint_versions;
DROP TABLE blueprints;
DROP TABLE worker_tokens;
DROP TABLE tokens;
