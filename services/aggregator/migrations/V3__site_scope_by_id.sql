-- Site timelines are keyed by the site's id ('s:<site_id>'), so a renamed
-- site keeps its timeline.
UPDATE feed_entries SET scope = 's:' || site_id::text WHERE scope LIKE 's:%/%';
