-- The feeds sites link (from their settings, synced from the sites
-- service) and how polling them goes: operational state, not events.
CREATE TABLE feed_sources (
    feed_id        uuid        PRIMARY KEY,
    site_id        uuid        NOT NULL,
    network_id     uuid        NOT NULL,
    url            text        NOT NULL,
    etag           text,
    last_modified  text,
    next_poll_at   timestamptz NOT NULL DEFAULT now(),
    last_polled_at timestamptz,
    last_error     text        NOT NULL DEFAULT '',
    failures       integer     NOT NULL DEFAULT 0,
    CONSTRAINT feed_sources_site_url UNIQUE (site_id, url)
);
CREATE INDEX feed_sources_due ON feed_sources (next_poll_at);

-- Items seen, one per (feed, item id): the dedupe key, and what a site shows.
CREATE TABLE feed_items (
    feed_id      uuid        NOT NULL,
    item_key     text        NOT NULL,
    site_id      uuid        NOT NULL,
    network_id   uuid        NOT NULL,
    feed_url     text        NOT NULL,
    title        text        NOT NULL,
    link         text        NOT NULL,
    summary_html text        NOT NULL,
    author       text        NOT NULL,
    published_at timestamptz NOT NULL,
    PRIMARY KEY (feed_id, item_key)
);
CREATE INDEX feed_items_by_site ON feed_items (site_id, published_at DESC);
CREATE INDEX feed_items_by_network ON feed_items (network_id);
