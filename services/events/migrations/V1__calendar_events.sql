-- A site's calendar events as their events leave them (listing a site's
-- events without folding every stream), written in the same transaction.
CREATE TABLE calendar_events (
    event_id   uuid   PRIMARY KEY,
    network_id uuid   NOT NULL,
    site_id    uuid   NOT NULL,
    status     text   NOT NULL,
    version    bigint NOT NULL
);
CREATE INDEX calendar_events_by_site ON calendar_events (site_id);
CREATE INDEX calendar_events_by_network ON calendar_events (network_id);
