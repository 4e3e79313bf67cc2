-- Networks that left, kept (no personal data) so that the months they were
-- here are still in usage reports and cost shares. Written by the
-- `NetworkOffboarded` event; an import of the network removes its row.
CREATE TABLE offboarded_networks (
    id            uuid        PRIMARY KEY,
    slug          text        NOT NULL,
    name          text        NOT NULL,
    plan          text        NOT NULL,
    created_at    timestamptz NOT NULL,
    offboarded_at timestamptz NOT NULL
);
