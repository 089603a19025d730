// HTTP API (Ponder 0.10 requires this file). Besides Ponder's own /health, /ready, /status and
// /metrics, `run.mjs` reads GET /count?to=<block>: the number of indexed events at or below that
// block, plus the aggregate row counts.
import { db } from "ponder:api";
import schema from "ponder:schema";
import { Hono } from "hono";
import { count, lte } from "ponder";

const app = new Hono();

app.get("/count", async (c) => {
  const to = c.req.query("to");
  const where = to === undefined ? undefined : lte(schema.event.blockNumber, BigInt(to));
  const [events] = await db.select({ n: count() }).from(schema.event).where(where);
  const [rewards] = await db.select({ n: count() }).from(schema.rewardTotal);
  const [models] = await db.select({ n: count() }).from(schema.modelCharged);
  return c.json({ events: events!.n, rewardAccounts: rewards!.n, chargedModels: models!.n });
});

export default app;
