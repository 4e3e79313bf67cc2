-- Co-hosting, RSVPs and imports. `calendar_hosts` lists every site an event
-- shows in (its own site as 'origin', co-hosts as 'invited' or 'accepted');
-- `calendar_rsvps` holds each account's answer per occurrence; imported
-- events remember their UID so a second import updates them.
ALTER TABLE calendar_events
    ADD COLUMN source_uid text,
    ADD COLUMN last_end timestamptz;   -- NULL: the series has no end
CREATE UNIQUE INDEX calendar_events_by_source
    ON calendar_events (site_id, source_uid) WHERE source_uid IS NOT NULL;

CREATE TABLE calendar_hosts (
    event_id   uuid NOT NULL,
    site_id    uuid NOT NULL,
    network_id uuid NOT NULL,
    status     text NOT NULL,          -- origin, invited, accepted
    PRIMARY KEY (event_id, site_id)
);
CREATE INDEX calendar_hosts_by_site ON calendar_hosts (site_id, status);
CREATE INDEX calendar_hosts_by_network ON calendar_hosts (network_id, status);
INSERT INTO calendar_hosts (event_id, site_id, network_id, status)
    SELECT event_id, site_id, network_id, 'origin' FROM calendar_events;

CREATE TABLE calendar_rsvps (
    event_id       uuid        NOT NULL,
    original_local text        NOT NULL,
    account_id     uuid        NOT NULL,
    status         text        NOT NULL,   -- going, waitlisted
    at             timestamptz NOT NULL,
    network_id     uuid        NOT NULL,   -- the event's network
    PRIMARY KEY (event_id, original_local, account_id)
);
CREATE INDEX calendar_rsvps_queue ON calendar_rsvps (event_id, original_local, status, at);
CREATE INDEX calendar_rsvps_by_network ON calendar_rsvps (network_id);
ALTER TABLE calendar_rsvps ADD COLUMN display_name text NOT NULL DEFAULT '';
