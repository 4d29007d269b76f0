-- +goose Up
-- The W3C trace context (traceparent) of the request that created a job:
-- the worker that runs it continues the compose's trace. Empty when the
-- request carried none and tracing is off.
ALTER TABLE jobs ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE jobs DROP COLUMN traceparent;
