-- A post's content is kept once, whatever the number of timelines it is in
-- (umbrella, network, site, tag, language): a timeline row is only where
-- and when. Five copies of each body were most of what projecting a post
-- wrote.
CREATE TABLE feed_posts (
    post_id      uuid        PRIMARY KEY,
    network_id   uuid        NOT NULL,
    site_id      uuid        NOT NULL,
    version      bigint      NOT NULL,
    updated_at   timestamptz NOT NULL,
    network_slug text        NOT NULL,
    site_slug    text        NOT NULL,
    site_name    text        NOT NULL,
    title        text        NOT NULL,
    summary_html text        NOT NULL,
    body_html    text        NOT NULL,
    lang         text        NOT NULL,
    author       text        NOT NULL
);

INSERT INTO feed_posts
SELECT DISTINCT ON (post_id) post_id, network_id, site_id, version, updated_at, network_slug,
       site_slug, site_name, title, summary_html, body_html, lang, author
FROM feed_entries
ORDER BY post_id, version DESC;

-- Renames change a site's posts.
CREATE INDEX feed_posts_site ON feed_posts (site_id);

ALTER TABLE feed_entries
    DROP COLUMN version,
    DROP COLUMN updated_at,
    DROP COLUMN network_slug,
    DROP COLUMN site_slug,
    DROP COLUMN site_name,
    DROP COLUMN title,
    DROP COLUMN summary_html,
    DROP COLUMN body_html,
    DROP COLUMN lang,
    DROP COLUMN author;
