-- A post's stored size lives on its post_versions row, which the timelines'
-- projection reads and writes for every post event anyway: networks' stored
-- bytes change in the same transaction, by the difference of a post's size
-- before and after its new version (decision 0019). usage_post_bytes was a
-- second row and two index entries a post.
ALTER TABLE post_versions ADD COLUMN bytes bigint NOT NULL DEFAULT 0;

UPDATE post_versions v SET bytes = b.bytes
FROM usage_post_bytes b
WHERE b.post_id = v.post_id;

DROP TABLE usage_post_bytes;
