-- The catalog's tables (indexer/src/catalog.rs; `create_sql` writes this file and a test
-- keeps them equal: OPENLEDGER_WRITE_MIGRATIONS=1 cargo test -p openledger-indexer migration).
CREATE TABLE datanets (
    id TEXT NOT NULL PRIMARY KEY,
    datanet_id BIGINT NOT NULL,
    owner TEXT NOT NULL,
    pending_owner TEXT,
    min_accepted BIGINT NOT NULL,
    metadata_uri TEXT NOT NULL,
    contributions BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    withdrawn BIGINT NOT NULL,
    earned TEXT NOT NULL,
    rewards BIGINT NOT NULL,
    created_block BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE curators (
    id TEXT NOT NULL PRIMARY KEY,
    datanet TEXT NOT NULL,
    curator TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    updated_block BIGINT NOT NULL
);
CREATE INDEX curators_datanet ON curators (datanet);

CREATE TABLE contributions (
    id TEXT NOT NULL PRIMARY KEY,
    contribution_id BIGINT NOT NULL,
    datanet TEXT NOT NULL,
    contributor TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    tokens BIGINT NOT NULL,
    stake TEXT NOT NULL,
    uri TEXT NOT NULL,
    status TEXT NOT NULL,
    curator TEXT,
    slashed TEXT NOT NULL,
    earned TEXT NOT NULL,
    rewards BIGINT NOT NULL,
    added_block BIGINT NOT NULL,
    added_at BIGINT NOT NULL,
    status_block BIGINT NOT NULL
);
CREATE INDEX contributions_datanet ON contributions (datanet);

CREATE TABLE models (
    id TEXT NOT NULL PRIMARY KEY,
    model_id BIGINT NOT NULL,
    developer TEXT NOT NULL,
    pending_developer TEXT,
    base_model_hash TEXT NOT NULL,
    price_per_1k_tokens TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    versions BIGINT NOT NULL,
    charges BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    revenue TEXT NOT NULL,
    created_block BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE operators (
    id TEXT NOT NULL PRIMARY KEY,
    signer TEXT,
    stake TEXT NOT NULL,
    unstaking TEXT NOT NULL,
    unstake_ready_at BIGINT NOT NULL,
    slashed TEXT NOT NULL,
    rewards_slashed TEXT NOT NULL,
    batches BIGINT NOT NULL,
    charges BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    collected TEXT NOT NULL,
    last_sequence BIGINT NOT NULL
);

CREATE TABLE serving (
    id TEXT NOT NULL PRIMARY KEY,
    operator TEXT NOT NULL,
    model TEXT NOT NULL,
    serving BOOLEAN NOT NULL,
    updated_block BIGINT NOT NULL
);
CREATE INDEX serving_operator ON serving (operator);
CREATE INDEX serving_model ON serving (model);

CREATE TABLE escrows (
    id TEXT NOT NULL PRIMARY KEY,
    payer TEXT NOT NULL,
    operator TEXT NOT NULL,
    balance TEXT NOT NULL,
    deposited TEXT NOT NULL,
    withdrawn TEXT NOT NULL,
    pending_withdrawal TEXT NOT NULL,
    withdrawal_ready_at BIGINT NOT NULL,
    withdrawal_expires_at BIGINT NOT NULL,
    spent TEXT NOT NULL,
    charges BIGINT NOT NULL
);
CREATE INDEX escrows_payer ON escrows (payer);
CREATE INDEX escrows_operator ON escrows (operator);

CREATE TABLE accounts (
    id TEXT NOT NULL PRIMARY KEY,
    token_balance TEXT NOT NULL,
    earned_protocol TEXT NOT NULL,
    earned_operator TEXT NOT NULL,
    earned_developer TEXT NOT NULL,
    earned_contribution TEXT NOT NULL,
    earned_datanet TEXT NOT NULL,
    earned_slashed TEXT NOT NULL,
    forfeited TEXT NOT NULL,
    earned TEXT NOT NULL,
    claimed TEXT NOT NULL,
    rewards BIGINT NOT NULL,
    spent TEXT NOT NULL,
    charges BIGINT NOT NULL,
    min_nonce BIGINT NOT NULL,
    revocation_effective_at BIGINT NOT NULL
);

CREATE TABLE parameters (
    id TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL,
    effective_at BIGINT NOT NULL,
    updated_block BIGINT NOT NULL
);

CREATE TABLE buckets (
    id TEXT NOT NULL PRIMARY KEY,
    series TEXT NOT NULL,
    key TEXT NOT NULL,
    period TEXT NOT NULL,
    start BIGINT NOT NULL,
    amount TEXT NOT NULL,
    count BIGINT NOT NULL
);

CREATE TABLE events (
    id TEXT NOT NULL PRIMARY KEY,
    chain_id BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    contract TEXT NOT NULL,
    name TEXT NOT NULL,
    topics TEXT NOT NULL,
    data TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX events_block ON events (block_number, log_index);

CREATE TABLE model_versions (
    id TEXT NOT NULL PRIMARY KEY,
    model TEXT NOT NULL,
    version BIGINT NOT NULL,
    parent_version BIGINT NOT NULL,
    adapter_hash TEXT NOT NULL,
    adapter_uri TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX model_versions_block ON model_versions (block_number, log_index);
CREATE INDEX model_versions_model ON model_versions (model, block_number);

CREATE TABLE model_datanets (
    id TEXT NOT NULL PRIMARY KEY,
    model_version TEXT NOT NULL,
    model TEXT NOT NULL,
    datanet TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX model_datanets_block ON model_datanets (block_number, log_index);
CREATE INDEX model_datanets_model_version ON model_datanets (model_version, block_number);
CREATE INDEX model_datanets_model ON model_datanets (model, block_number);
CREATE INDEX model_datanets_datanet ON model_datanets (datanet, block_number);

CREATE TABLE contribution_changes (
    id TEXT NOT NULL PRIMARY KEY,
    contribution TEXT NOT NULL,
    datanet TEXT NOT NULL,
    status TEXT NOT NULL,
    actor TEXT NOT NULL,
    amount TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX contribution_changes_block ON contribution_changes (block_number, log_index);
CREATE INDEX contribution_changes_contribution ON contribution_changes (contribution, block_number);
CREATE INDEX contribution_changes_datanet ON contribution_changes (datanet, block_number);

CREATE TABLE stake_changes (
    id TEXT NOT NULL PRIMARY KEY,
    operator TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount TEXT NOT NULL,
    stake TEXT NOT NULL,
    unstaking TEXT NOT NULL,
    reason TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX stake_changes_block ON stake_changes (block_number, log_index);
CREATE INDEX stake_changes_operator ON stake_changes (operator, block_number);

CREATE TABLE escrow_changes (
    id TEXT NOT NULL PRIMARY KEY,
    escrow TEXT NOT NULL,
    payer TEXT NOT NULL,
    operator TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount TEXT NOT NULL,
    balance TEXT NOT NULL,
    ready_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX escrow_changes_block ON escrow_changes (block_number, log_index);
CREATE INDEX escrow_changes_escrow ON escrow_changes (escrow, block_number);
CREATE INDEX escrow_changes_payer ON escrow_changes (payer, block_number);
CREATE INDEX escrow_changes_operator ON escrow_changes (operator, block_number);

CREATE TABLE voucher_revocations (
    id TEXT NOT NULL PRIMARY KEY,
    payer TEXT NOT NULL,
    min_nonce BIGINT NOT NULL,
    effective_at BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX voucher_revocations_block ON voucher_revocations (block_number, log_index);
CREATE INDEX voucher_revocations_payer ON voucher_revocations (payer, block_number);

CREATE TABLE batches (
    id TEXT NOT NULL PRIMARY KEY,
    operator TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    receipts_root TEXT NOT NULL,
    policy_epoch BIGINT NOT NULL,
    total_charged TEXT NOT NULL,
    collected BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    verification TEXT NOT NULL,
    flag_reason TEXT,
    receipts BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX batches_block ON batches (block_number, log_index);
CREATE INDEX batches_operator ON batches (operator, block_number);

CREATE TABLE charges (
    id TEXT NOT NULL PRIMARY KEY,
    batch TEXT NOT NULL,
    operator TEXT NOT NULL,
    payer TEXT NOT NULL,
    model TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    amount TEXT NOT NULL,
    spent TEXT NOT NULL,
    collected BOOLEAN NOT NULL,
    skip_reason TEXT,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX charges_block ON charges (block_number, log_index);
CREATE INDEX charges_batch ON charges (batch, block_number);
CREATE INDEX charges_operator ON charges (operator, block_number);
CREATE INDEX charges_payer ON charges (payer, block_number);
CREATE INDEX charges_model ON charges (model, block_number);

CREATE TABLE rewards (
    id TEXT NOT NULL PRIMARY KEY,
    account TEXT NOT NULL,
    batch TEXT NOT NULL,
    model TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    kind TEXT NOT NULL,
    source_id BIGINT NOT NULL,
    contribution TEXT,
    datanet TEXT,
    amount TEXT NOT NULL,
    vests_at BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX rewards_block ON rewards (block_number, log_index);
CREATE INDEX rewards_account ON rewards (account, block_number);
CREATE INDEX rewards_batch ON rewards (batch, block_number);
CREATE INDEX rewards_model ON rewards (model, block_number);
CREATE INDEX rewards_contribution ON rewards (contribution, block_number);
CREATE INDEX rewards_datanet ON rewards (datanet, block_number);

CREATE TABLE claims (
    id TEXT NOT NULL PRIMARY KEY,
    account TEXT NOT NULL,
    recipient TEXT NOT NULL,
    amount TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX claims_block ON claims (block_number, log_index);
CREATE INDEX claims_account ON claims (account, block_number);

CREATE TABLE split_policies (
    id TEXT NOT NULL PRIMARY KEY,
    epoch BIGINT NOT NULL,
    protocol_bps BIGINT NOT NULL,
    operator_bps BIGINT NOT NULL,
    developer_bps BIGINT NOT NULL,
    data_bps BIGINT NOT NULL,
    effective_at BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX split_policies_block ON split_policies (block_number, log_index);

CREATE TABLE transfers (
    id TEXT NOT NULL PRIMARY KEY,
    from_address TEXT NOT NULL,
    to_address TEXT NOT NULL,
    value TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX transfers_block ON transfers (block_number, log_index);

CREATE TABLE receipts (
    id TEXT NOT NULL PRIMARY KEY,
    batch TEXT NOT NULL,
    operator TEXT NOT NULL,
    payer TEXT NOT NULL,
    model TEXT NOT NULL,
    model_version BIGINT NOT NULL,
    tokens_in BIGINT NOT NULL,
    tokens_out BIGINT NOT NULL,
    fee TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    output_hash TEXT NOT NULL,
    datanet TEXT NOT NULL,
    receipt_timestamp BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX receipts_block ON receipts (block_number, log_index);
CREATE INDEX receipts_batch ON receipts (batch, block_number);
CREATE INDEX receipts_operator ON receipts (operator, block_number);
CREATE INDEX receipts_payer ON receipts (payer, block_number);
CREATE INDEX receipts_model ON receipts (model, block_number);
CREATE INDEX receipts_datanet ON receipts (datanet, block_number);

CREATE TABLE attributions (
    id TEXT NOT NULL PRIMARY KEY,
    receipt TEXT NOT NULL,
    model TEXT NOT NULL,
    datanet TEXT NOT NULL,
    contribution TEXT,
    ppm BIGINT NOT NULL,
    fee_share TEXT NOT NULL,
    spans TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    tx_hash TEXT NOT NULL
);
CREATE INDEX attributions_block ON attributions (block_number, log_index);
CREATE INDEX attributions_receipt ON attributions (receipt, block_number);
CREATE INDEX attributions_model ON attributions (model, block_number);
CREATE INDEX attributions_datanet ON attributions (datanet, block_number);
CREATE INDEX attributions_contribution ON attributions (contribution, block_number);

