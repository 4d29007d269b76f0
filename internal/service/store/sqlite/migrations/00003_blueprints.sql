-- +goose Up
CREATE TABLE blueprints (
	id          TEXT PRIMARY KEY,
	org_id      TEXT NOT NULL,
	name        TEXT NOT NULL,
	description TEXT NOT NULL,
	version     INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	deleted     INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX blueprints_org_name ON blueprints (org_id, name) WHERE deleted = 0;
CREATE INDEX blueprints_org_list ON blueprints (org_id, deleted, updated_at DESC, id);

CREATE TABLE blueprint_versions (
	blueprint_id TEXT NOT NULL REFERENCES blueprints (id),
	version      INTEGER NOT NULL,
	body         TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (blueprint_id, version)
);

ALTER TABLE composes ADD COLUMN blueprint_id TEXT;
ALTER TABLE composes ADD COLUMN blueprint_version INTEGER;
CREATE INDEX composes_blueprint ON composes (org_id, blueprint_id, hidden, created_at DESC, id);

-- +goose Down
DROP INDEX composes_blueprint;
ALTER TABLE composes DROP COLUMN blueprint_version;
ALTER TABLE composes DROP COLUMN blueprint_id;
DROP TABLE blueprint_versions;
DROP TABLE blueprints;
