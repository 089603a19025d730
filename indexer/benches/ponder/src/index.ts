// Indexing functions: every event of every suite contract becomes a row of `event`; two
// Settlement events also feed aggregates. Handlers are registered from the ABIs, so a new
// event in a contract is indexed without touching this file.
import { ponder } from "ponder:registry";
import schema from "ponder:schema";
import { replaceBigInts } from "ponder";
import { type ContractName, eventsOf, suite } from "../abis";

type LogEvent = {
  id: string;
  args: Record<string, unknown> | readonly unknown[] | undefined;
  log: { logIndex: number };
  block: { number: bigint };
  transaction: { hash: `0x${string}` };
};

// The registry is typed from the config; with ABIs cast to `Abi` the names are plain strings.
// (`on` reads `this`, so keep it bound.)
const on = ponder.on.bind(ponder) as unknown as (
  name: string,
  fn: (args: { event: LogEvent; context: any }) => Promise<void>,
) => void;

for (const contract of Object.keys(suite) as ContractName[]) {
  for (const abiEvent of eventsOf(contract)) {
    const name = abiEvent.name;
    on(`${contract}:${name}`, async ({ event: e, context }) => {
      await context.db.insert(schema.event).values({
        id: e.id,
        contract,
        name,
        blockNumber: e.block.number,
        logIndex: e.log.logIndex,
        txHash: e.transaction.hash,
        args: replaceBigInts(e.args ?? {}, (v) => v.toString()),
      });

      if (contract === "Settlement" && name === "RewardCredited") {
        const { account, amount } = e.args as { account: `0x${string}`; amount: bigint };
        await context.db
          .insert(schema.rewardTotal)
          .values({ account, amount, credits: 1 })
          .onConflictDoUpdate((row: { amount: bigint; credits: number }) => ({
            amount: row.amount + amount,
            credits: row.credits + 1,
          }));
      } else if (contract === "Settlement" && name === "Charged") {
        const { modelId, amount } = e.args as { modelId: bigint; amount: bigint };
        await context.db
          .insert(schema.modelCharged)
          .values({ modelId, amount, charges: 1 })
          .onConflictDoUpdate((row: { amount: bigint; charges: number }) => ({
            amount: row.amount + amount,
            charges: row.charges + 1,
          }));
      }
    });
  }
}
