-- The latest version of each post the timelines have seen, even one that
-- took it out of them (a draft, retracted, members only): an older event
-- seen later changes nothing. Filled from the timelines for older posts.
CREATE TABLE post_versions (
    post_id    uuid   PRIMARY KEY,
    network_id uuid   NOT NULL,
    version    bigint NOT NULL
);
CREATE INDEX post_versions_network ON post_versions (network_id);
INSERT INTO post_versions (post_id, network_id, version)
SELECT post_id, network_id, max(version) FROM feed_entries GROUP BY post_id, network_id;
