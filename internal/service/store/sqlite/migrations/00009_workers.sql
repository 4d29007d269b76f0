-- +goose Up
-- The workers that asked for jobs: the architectures each declared and
-- when it was last heard from, so that a compose waiting for an
-- architecture no connected worker builds can say so.
CREATE TABLE workers (
	name      TEXT PRIMARY KEY,
	arches    TEXT NOT NULL,
	last_seen INTEGER NOT NULL
);
CREATE INDEX workers_last_seen ON workers (last_seen);

-- +goose Down
DROP TABLE workers;
