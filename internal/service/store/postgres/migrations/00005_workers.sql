-- +goose Up
-- The same as the SQLite store's migration 00009: the workers that asked
-- for jobs, the architectures each declared and when it was last heard
-- from.
CREATE TABLE workers (
	name      TEXT COLLATE "C" PRIMARY KEY,
	arches    TEXT NOT NULL,
	last_seen BIGINT NOT NULL
);
CREATE INDEX workers_last_seen ON workers (last_seen);

-- +goose Down
DROP TABLE workers;
