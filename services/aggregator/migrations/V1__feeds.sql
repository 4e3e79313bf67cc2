-- Precomputed newest-first timelines. One row per (scope, post): a feed read
-- is one index range scan, whatever the number of sites.
-- Scopes: 'umbrella', 'n:<network_slug>', 's:<network_slug>/<site_slug>'.
CREATE TABLE feed_entries (
    scope        text        NOT NULL,
    post_id      uuid        NOT NULL,
    network_id   uuid        NOT NULL,
    site_id      uuid        NOT NULL,
    version      bigint      NOT NULL,
    published_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    network_slug text        NOT NULL,
    site_slug    text        NOT NULL,
    site_name    text        NOT NULL,
    title        text        NOT NULL,
    summary_html text        NOT NULL,
    body_html    text        NOT NULL,
    lang         text        NOT NULL,
    author       text        NOT NULL,
    PRIMARY KEY (scope, post_id)
);

CREATE INDEX feed_entries_timeline ON feed_entries (scope, published_at DESC, post_id DESC);

-- The last JetStream sequence each projection applied, committed with its data.
CREATE TABLE projection_checkpoints (
    name text   PRIMARY KEY,
    seq  bigint NOT NULL
);
