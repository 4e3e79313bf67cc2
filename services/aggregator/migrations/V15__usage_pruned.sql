-- How far back the ids of counted events are kept: events of earlier days
-- are no longer counted (they were, when they came; only a replay of the
-- bus brings them again). One row.
CREATE TABLE usage_pruned (
    one    boolean PRIMARY KEY DEFAULT true CHECK (one),
    before date    NOT NULL
);
