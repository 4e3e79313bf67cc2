-- Each site's current slug and name, so a post projected after its site was
-- renamed shows the new ones whatever order the events came in (an import,
-- a rebuild).
CREATE TABLE site_names (
    site_id    uuid PRIMARY KEY,
    network_id uuid NOT NULL,
    slug       text NOT NULL,
    name       text NOT NULL
);
CREATE INDEX site_names_network ON site_names (network_id);
