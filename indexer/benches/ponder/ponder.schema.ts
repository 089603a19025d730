import { onchainTable } from "ponder";

/** One row per log of the five contracts. */
export const event = onchainTable("event", (t) => ({
  id: t.text().primaryKey(), // Ponder's event.id (unique per log, sortable)
  contract: t.text().notNull(),
  name: t.text().notNull(),
  blockNumber: t.bigint().notNull(),
  logIndex: t.integer().notNull(),
  txHash: t.hex().notNull(),
  args: t.json().notNull(), // decoded arguments, bigints as decimal strings
}));

/** Settlement `RewardCredited`: total credited per account. */
export const rewardTotal = onchainTable("reward_total", (t) => ({
  account: t.hex().primaryKey(),
  amount: t.bigint().notNull(),
  credits: t.integer().notNull(),
}));

/** Settlement `Charged`: total charged per model. */
export const modelCharged = onchainTable("model_charged", (t) => ({
  modelId: t.bigint().primaryKey(),
  amount: t.bigint().notNull(),
  charges: t.integer().notNull(),
}));
