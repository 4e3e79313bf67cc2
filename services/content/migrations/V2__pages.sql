-- A site's static pages as their events leave them (the menu), written in
-- the same transaction as the events.
CREATE TABLE pages (
    page_id    uuid    PRIMARY KEY,
    network_id uuid    NOT NULL,
    site_id    uuid    NOT NULL,
    slug       text    NOT NULL,
    title      text    NOT NULL,
    position   integer NOT NULL,
    version    bigint  NOT NULL,
    deleted    boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX pages_site_slug ON pages (site_id, slug) WHERE NOT deleted;
CREATE INDEX pages_menu ON pages (site_id, position) WHERE NOT deleted;
CREATE INDEX pages_by_network ON pages (network_id);
