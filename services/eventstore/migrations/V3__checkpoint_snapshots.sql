-- A reader in commit order (the relay) also remembers the snapshot of its
-- last read: every transaction visible in it has been read, whatever its
-- place in the global order (decision 0025). NULL: only the position counts.
ALTER TABLE event_checkpoints ADD COLUMN snapshot pg_snapshot;
