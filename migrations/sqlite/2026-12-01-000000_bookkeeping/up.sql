-- What the database indexes, the last block applied, the reorg window and the undo log
-- (indexer/src/schema.rs).
CREATE TABLE meta (
    key TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE checkpoint (
    id BIGINT NOT NULL PRIMARY KEY,
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    block_timestamp BIGINT NOT NULL
);
CREATE TABLE blocks (
    number BIGINT NOT NULL PRIMARY KEY,
    hash TEXT NOT NULL,
    parent_hash TEXT NOT NULL,
    timestamp BIGINT NOT NULL
);
CREATE TABLE undo (
    seq BIGINT NOT NULL PRIMARY KEY,
    block_number BIGINT NOT NULL,
    table_name TEXT NOT NULL,
    row_id TEXT NOT NULL,
    prior TEXT
);
CREATE INDEX undo_block ON undo (block_number);
