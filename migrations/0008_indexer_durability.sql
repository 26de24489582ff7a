-- The indexer writes here, with synchronous_commit on, before it stores a
-- snapshot as its position (indexer::change_feed::make_durable): a commit that
-- wrote WAL is flushed, and with it every commit before it, so no transaction
-- the position counts as finished can be lost, and its id handed out again,
-- by crash recovery. (A transaction that only takes an id writes no WAL of its
-- own and PostgreSQL commits it asynchronously; hence a row.)
CREATE TABLE indexer_durability (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    flushed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO indexer_durability DEFAULT VALUES;
