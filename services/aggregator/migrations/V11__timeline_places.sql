-- A timeline row is only its key: (scope, published_at, post_id), newest
-- read first by a backward scan. Where each post is placed (its scopes and
-- the date it holds in each) is kept on its post_versions row, so that a
-- post's rows are found without an index on post_id, and a row is one index
-- entry instead of three (primary key, timeline and post indexes).
-- Scopes compare byte by byte ("C"): they are keys, not prose.
ALTER TABLE post_versions
    ADD COLUMN scopes text[]        NOT NULL DEFAULT '{}',
    ADD COLUMN placed timestamptz[] NOT NULL DEFAULT '{}';

UPDATE post_versions v
SET scopes = e.scopes, placed = e.placed
FROM (SELECT post_id,
             array_agg(scope ORDER BY scope) AS scopes,
             array_agg(published_at ORDER BY scope) AS placed
      FROM feed_entries GROUP BY post_id) e
WHERE e.post_id = v.post_id;

CREATE TABLE feed_timelines (
    scope        text COLLATE "C" NOT NULL,
    published_at timestamptz      NOT NULL,
    post_id      uuid             NOT NULL,
    PRIMARY KEY (scope, published_at, post_id)
);

INSERT INTO feed_timelines (scope, published_at, post_id)
SELECT scope, published_at, post_id FROM feed_entries;

DROP TABLE feed_entries;
