-- Timelines and usage are written a batch at a time: a post's rows are
-- found by its id, and each network's stored bytes are kept as a running
-- total instead of summed over its posts on every batch.
CREATE INDEX feed_entries_post ON feed_entries (post_id);

CREATE TABLE usage_network_bytes (
    network_id uuid   PRIMARY KEY,
    bytes      bigint NOT NULL
);

INSERT INTO usage_network_bytes (network_id, bytes)
SELECT network_id, sum(bytes) FROM usage_post_bytes GROUP BY network_id;
