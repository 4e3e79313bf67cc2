-- Events the projections could not read: kept with their error (and bytes,
-- for a fix and a replay) while the projections go on.
CREATE TABLE parked_events (
    seq       bigint      PRIMARY KEY,   -- JetStream stream sequence
    subject   text        NOT NULL,
    error     text        NOT NULL,
    payload   bytea       NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now()
);
