-- Usage meters per network and day (UTC). Each event is counted once: its
-- id is recorded in the same transaction as the counters.
CREATE TABLE usage_events (
    event_id   uuid PRIMARY KEY,
    network_id uuid NOT NULL,
    day        date NOT NULL
);

CREATE TABLE usage_daily (
    network_id uuid   NOT NULL,
    day        date   NOT NULL,
    events     bigint NOT NULL DEFAULT 0,
    posts      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (network_id, day)
);

-- Stored bytes: the current size of each post; a network's total is kept per
-- day of change and carried forward to the days after.
CREATE TABLE usage_post_bytes (
    post_id    uuid   PRIMARY KEY,
    network_id uuid   NOT NULL,
    bytes      bigint NOT NULL,
    version    bigint NOT NULL
);
CREATE INDEX usage_post_bytes_network ON usage_post_bytes (network_id);

CREATE TABLE usage_stored (
    network_id   uuid   NOT NULL,
    day          date   NOT NULL,
    stored_bytes bigint NOT NULL,
    PRIMARY KEY (network_id, day)
);

-- Requests served by the gateway, reported in batches; a batch id is
-- recorded with its counts so a retried report counts once.
CREATE TABLE usage_requests (
    network_slug text   NOT NULL,
    day          date   NOT NULL,
    requests     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (network_slug, day)
);

CREATE TABLE usage_request_batches (
    batch_id    uuid        PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);
