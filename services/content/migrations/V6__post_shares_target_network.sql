-- The network of the site a post is shared into: when that network leaves,
-- its shares are withdrawn from posts of other networks.
ALTER TABLE post_shares ADD COLUMN target_network_id uuid;
CREATE INDEX post_shares_by_target_network ON post_shares (target_network_id);
