-- +goose Up
-- How many visible composes each org has, kept with every change, so a
-- page of a large list does not count the whole list.
CREATE TABLE org_compose_counts (
	org_id  TEXT PRIMARY KEY,
	visible INTEGER NOT NULL
);
INSERT INTO org_compose_counts (org_id, visible) SELECT org_id, COUNT(*) FROM composes WHERE hidden = 0 GROUP BY org_id;

-- +goose Down
DROP TABLE org_compose_counts;
