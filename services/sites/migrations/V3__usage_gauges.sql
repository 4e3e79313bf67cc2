-- Each network's active sites and members at the end of each day on which
-- they changed (UTC); days in between carry the last value forward.
CREATE TABLE usage_gauges (
    network_id uuid   NOT NULL,
    day        date   NOT NULL,
    sites      bigint NOT NULL,
    members    bigint NOT NULL,
    PRIMARY KEY (network_id, day)
);
