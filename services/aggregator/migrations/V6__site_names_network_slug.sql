-- A site found by its network's slug and its own (feeds asked by slugs).
ALTER TABLE site_names ADD COLUMN network_slug text NOT NULL DEFAULT '';
CREATE INDEX site_names_slugs ON site_names (network_slug, slug);
