-- +goose Up
-- The same as the SQLite store's migration 00010: incidents, their
-- updates, and the status prober's samples per component and UTC day.
CREATE TABLE incidents (
	id          TEXT COLLATE "C" PRIMARY KEY,
	title       TEXT NOT NULL,
	impact      TEXT NOT NULL,
	components  TEXT NOT NULL,
	status      TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	resolved_at BIGINT
);
CREATE INDEX incidents_resolved_at ON incidents (resolved_at);
CREATE TABLE incident_updates (
	id          TEXT COLLATE "C" PRIMARY KEY,
	incident_id TEXT COLLATE "C" NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
	status      TEXT NOT NULL,
	body        TEXT NOT NULL,
	created_at  BIGINT NOT NULL
);
CREATE INDEX incident_updates_incident ON incident_updates (incident_id, created_at);
CREATE TABLE uptime_days (
	component TEXT COLLATE "C" NOT NULL,
	day       BIGINT NOT NULL,
	ok        BIGINT NOT NULL,
	total     BIGINT NOT NULL,
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
