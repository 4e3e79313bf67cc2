-- Exporting, counting and purging one network's events (export, offboarding).
CREATE INDEX events_by_network ON events (network_id, tx_id, position);
