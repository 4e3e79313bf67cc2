-- State of the sites service, written in the same transaction as its events.
CREATE TABLE networks (
    id         uuid        PRIMARY KEY,
    slug       text        NOT NULL CONSTRAINT networks_slug_key UNIQUE,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE network_idempotency (
    key        text PRIMARY KEY,
    network_id uuid NOT NULL REFERENCES networks (id)
);

CREATE TABLE sites (
    id         uuid        PRIMARY KEY,
    network_id uuid        NOT NULL REFERENCES networks (id),
    slug       text        NOT NULL,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sites_network_slug_key UNIQUE (network_id, slug)
);
