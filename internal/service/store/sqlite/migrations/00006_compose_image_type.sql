-- +goose Up
-- Each compose's image type (its name, never an alias), which listings
-- filter on. Composes from before take it from their depsolve job's
-- arguments, where the API wrote the name.
ALTER TABLE composes ADD COLUMN image_type TEXT NOT NULL DEFAULT '';
UPDATE composes SET image_type = COALESCE((SELECT json_extract(j.args, '$.image_type') FROM jobs j
	WHERE j.compose_id = composes.id AND j.type = 'depsolve' AND json_valid(j.args)), '');
CREATE INDEX composes_org_type ON composes (org_id, image_type, hidden, created_at DESC, id);

-- +goose Down
DROP INDEX composes_org_type;
ALTER TABLE composes DROP COLUMN image_type;
