-- Each post as its events leave it, written in the same transaction as its
-- events: listing a site's posts by status, and finding scheduled posts due.
CREATE TABLE posts (
    post_id      uuid        PRIMARY KEY,
    network_id   uuid        NOT NULL,
    site_id      uuid        NOT NULL,
    status       text        NOT NULL,
    visibility   text        NOT NULL,
    version      bigint      NOT NULL,
    -- Newest first by this: when it went out, else when it last changed.
    sort_at      timestamptz NOT NULL,
    publish_at   timestamptz
);
CREATE INDEX posts_by_site ON posts (site_id, status, sort_at DESC, post_id DESC);
CREATE INDEX posts_due ON posts (publish_at) WHERE status = 'scheduled';
CREATE INDEX posts_by_network ON posts (network_id);
