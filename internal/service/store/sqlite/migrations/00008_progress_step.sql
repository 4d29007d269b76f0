-- +goose Up
-- The step a running job is in, beyond its done/total count: an upload
-- reports "uploading" while bytes move and "registering" while the cloud
-- imports the image, which the API shows as the image's status.
ALTER TABLE jobs ADD COLUMN progress_step TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE jobs DROP COLUMN progress_step;
