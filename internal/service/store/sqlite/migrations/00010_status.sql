-- +goose Up
-- The public status page: incidents the operators announce, their
-- updates, and the status prober's samples counted per component and UTC
-- day (every replica adds to the same row).
CREATE TABLE incidents (
	id          TEXT PRIMARY KEY,
	title       TEXT NOT NULL,
	impact      TEXT NOT NULL,
	components  TEXT NOT NULL,
	status      TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	resolved_at INTEGER
);
CREATE INDEX incidents_resolved_at ON incidents (resolved_at);
CREATE TABLE incident_updates (
	id          TEXT PRIMARY KEY,
	incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
	status      TEXT NOT NULL,
	body        TEXT NOT NULL,
	created_at  INTEGER NOT NULL
);
CREATE INDEX incident_updates_incident ON incident_updates (incident_id, created_at);
CREATE TABLE uptime_days (
	component TEXT NOT NULL,
	day       INTEGER NOT NULL,
	ok        INTEGER NOT NULL,
	total     INTEGER NOT NULL,
	PRIMARY KEY (component, day)
);
CREATE INDEX uptime_days_day ON uptime_days (day);
-- The status page judges upload targets by the uploads that finished in
-- the last hour: this index reads those rows and no others.
CREATE INDEX jobs_finished ON jobs (type, finished_at);

-- +goose Down
DROP INDEX jobs_finished;
DROP TABLE uptime_days;
DROP TABLE incident_updates;
DROP TABLE incidents;
