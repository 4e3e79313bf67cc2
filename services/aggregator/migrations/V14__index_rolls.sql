-- Events whose occurrences were projected again a year ahead
-- (`upcoming::extend_horizons`) are due in the search index too: the flag is
-- set in the same transaction and cleared once the index has committed them,
-- so a crash in between puts them in the index at the next round.
ALTER TABLE calendar_versions ADD COLUMN index_due boolean NOT NULL DEFAULT false;
CREATE INDEX calendar_versions_index_due ON calendar_versions (event_id) WHERE index_due;
