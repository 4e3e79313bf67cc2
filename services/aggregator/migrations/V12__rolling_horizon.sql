-- Upcoming occurrences reach a year ahead of when an event was projected;
-- an event nobody edits would run out of them. Each event's last state and
-- how far its occurrences reach are kept, so that they are projected again
-- as time passes (`upcoming::extend_horizons`).
ALTER TABLE calendar_versions
    ADD COLUMN state   bytea,
    ADD COLUMN horizon timestamptz;
CREATE INDEX calendar_versions_horizon ON calendar_versions (horizon) WHERE state IS NOT NULL;
