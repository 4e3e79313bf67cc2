-- Where each post is offered or appears besides its own site, as its latest
-- event says (pending requests for a site's editors).
CREATE TABLE post_shares (
    post_id    uuid NOT NULL,
    network_id uuid NOT NULL,   -- the post's network
    site_id    uuid NOT NULL,   -- the site it is shared into
    status     text NOT NULL,
    PRIMARY KEY (post_id, site_id)
);
CREATE INDEX post_shares_by_site ON post_shares (site_id, status);
CREATE INDEX post_shares_by_network ON post_shares (network_id);
