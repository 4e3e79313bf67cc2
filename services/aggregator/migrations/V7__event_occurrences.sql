-- Upcoming occurrences of calendar events, per timeline (umbrella, each
-- network, each site; co-hosts included), soonest first. Rewritten whole at
-- each newer version of an event; `calendar_versions` keeps the latest
-- version seen, even of an event that left every timeline.
CREATE TABLE calendar_versions (
    event_id   uuid   PRIMARY KEY,
    network_id uuid   NOT NULL,
    version    bigint NOT NULL
);
CREATE INDEX calendar_versions_network ON calendar_versions (network_id);

CREATE TABLE event_occurrences (
    scope          text        NOT NULL,
    event_id       uuid        NOT NULL,
    original_local text        NOT NULL,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    start_local    text        NOT NULL,
    time_zone      text        NOT NULL,
    all_day        boolean     NOT NULL,
    title          text        NOT NULL,
    summary_html   text        NOT NULL,
    location       text        NOT NULL,
    network_id     uuid        NOT NULL,
    network_slug   text        NOT NULL,
    site_id        uuid        NOT NULL,
    site_slug      text        NOT NULL,
    PRIMARY KEY (scope, event_id, original_local)
);
CREATE INDEX event_occurrences_timeline ON event_occurrences (scope, starts_at, event_id, original_local);
CREATE INDEX event_occurrences_event ON event_occurrences (event_id);
CREATE INDEX event_occurrences_network ON event_occurrences (network_id);
