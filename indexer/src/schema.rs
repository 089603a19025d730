//! The bookkeeping tables, for diesel's query builder. The indexed entity tables are described
//! in [`crate::catalog`] (see there why); both are created by the migrations under
//! `migrations/`.
#![allow(missing_docs)]

diesel::table! {
    /// What the database indexes (`chain_id`, `deployment`) and its schema's facts.
    meta (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    /// The last block whose events are all applied (one row, `id = 1`), written in the same
    /// transaction as those events.
    checkpoint (id) {
        id -> BigInt,
        block_number -> BigInt,
        block_hash -> Text,
        block_timestamp -> BigInt,
    }
}

diesel::table! {
    /// The reorg window: the last blocks' hashes and parents.
    blocks (number) {
        number -> BigInt,
        hash -> Text,
        parent_hash -> Text,
        timestamp -> BigInt,
    }
}

diesel::table! {
    /// Prior images of the current-state rows changed by the blocks in the window, restored in
    /// reverse order on a reorg. `prior` is the row as JSON, NULL where the row did not exist.
    undo (seq) {
        seq -> BigInt,
        block_number -> BigInt,
        table_name -> Text,
        row_id -> Text,
        prior -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(meta, checkpoint, blocks, undo);
