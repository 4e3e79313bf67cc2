-- The event store of one service, in that service's own schema.
-- `tx_id` is the writing transaction's id: readers order by (tx_id, position)
-- and stop short of the oldest transaction still in flight, so an event whose
-- transaction commits after a later-numbered one is never skipped.
CREATE TABLE events (
    position       bigserial   NOT NULL,
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id       uuid        PRIMARY KEY,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL CHECK (version > 0),
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    network_id     uuid        NOT NULL,
    site_id        uuid,
    actor          text        NOT NULL,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    traceparent    text,
    payload        bytea       NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (stream_id, version)
);

CREATE INDEX events_global_order ON events (tx_id, position);

-- Positions of readers of the global order (e.g. the relay), each saved in
-- the same transaction as whatever the reader did with the events.
CREATE TABLE event_checkpoints (
    name     text   PRIMARY KEY,
    tx_id    xid8   NOT NULL,
    position bigint NOT NULL
);
