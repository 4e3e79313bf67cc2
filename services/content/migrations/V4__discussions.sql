-- Discussions as their events leave them, written in the same transaction.
CREATE TABLE threads (
    thread_id     uuid        PRIMARY KEY,
    network_id    uuid        NOT NULL,
    site_id       uuid,                    -- NULL: the network's board
    visibility    text        NOT NULL,
    hidden        boolean     NOT NULL,
    locked        boolean     NOT NULL,
    last_activity timestamptz NOT NULL,
    version       bigint      NOT NULL
);
CREATE INDEX threads_by_place ON threads (network_id, site_id, last_activity DESC, thread_id DESC);

CREATE TABLE replies (
    reply_id   uuid        PRIMARY KEY,
    thread_id  uuid        NOT NULL,
    network_id uuid        NOT NULL,
    author     text        NOT NULL,
    hidden     boolean     NOT NULL,
    created_at timestamptz NOT NULL,
    version    bigint      NOT NULL   -- the thread stream's version that wrote it
);
CREATE INDEX replies_by_thread ON replies (thread_id, created_at, reply_id);
CREATE INDEX replies_by_network ON replies (network_id);

CREATE TABLE discussion_reports (
    report_id  uuid        PRIMARY KEY,
    thread_id  uuid        NOT NULL,
    reply_id   uuid,
    network_id uuid        NOT NULL,
    site_id    uuid,
    reporter   text        NOT NULL,
    reason     text        NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX discussion_reports_by_place ON discussion_reports (network_id, site_id, at DESC);
