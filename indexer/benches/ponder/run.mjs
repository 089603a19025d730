#!/usr/bin/env node
// Backfill benchmark runner for the Ponder peer indexer.
//
//   node run.mjs --rpc <url> --manifest <file> --to-block <N>
//     [--expect-events <k>] [--database-url postgres://...] [--timeout-s 600]
//     [--max-rps 10000] [--poll-ms 1000] [--follow] [--keep] [--log-file <path>]
//
// Starts `ponder start` in this folder on a fresh schema, a free port and an empty data
// directory (PGlite, under .runs/<schema>/, removed afterwards) or with Ponder's RPC cache
// schema `ponder_sync` dropped before the run (PostgreSQL; the run's schema and `ponder_sync`
// are dropped afterwards too), so every run really fetches from the RPC ("cachedPercent" in
// the JSON line is what Ponder reported as cached: 0). Waits until everything up to block N is indexed,
// prints ONE JSON line on stdout, stops Ponder (its whole process group) and exits.
//
// Done means: Ponder's /status block number for the network is >= N (it is written after the
// events of that block are committed) and, with --expect-events k, the `event` table holds
// exactly k rows at or below block N (GET /count?to=N of src/api/index.ts).
//
// Ponder treats the last 30 blocks below the head as unfinalized on chain 31337 (any chain
// it does not know): its historical sync stops at head-30 and its realtime sync fetches the
// rest block by block (one eth_getBlockByNumber + eth_getLogs per block, at pollingInterval).
// And with `endBlock` inside that window, Ponder 0.10 stops its realtime sync as soon as it
// *sees* the end block, without indexing that block's events. So:
//   head >= N + 30: contracts get `endBlock: N`: a pure historical backfill of deployBlock..N;
//   otherwise (or with --follow): no endBlock; blocks above head-30 come through the realtime
//   path, and the JSON line says how many ("realtimeBlocks").
// For a clean backfill figure, mine 30+ empty blocks after the history (anvil_mine).
//
// stdout: {"peer":"ponder","database":"pglite"|"postgres","events":k,"seconds":s,
//          "eventsPerSecond":r,"toBlock":N,"head":H,"realtimeBlocks":b,"startupSeconds":h,
//          "cachedPercent":0,"rewardAccounts":a,"chargedModels":m,"schema":"..."}
//   seconds: from spawning `ponder start` to done; startupSeconds: spawn to first /health 200.
// stderr: progress and errors. Ponder's own output goes to the log file
//   (default .runs/<schema>/ponder.log; printed to stderr, last 40 lines, on failure).
// Exit codes: 0 done; 1 bad usage (or head < N); 2 Ponder exited early, or the RPC/PostgreSQL
//   is unreachable; 3 timeout; 4 event count differs from --expect-events once block N is
//   reached; 130 interrupted (SIGINT/SIGTERM; Ponder is stopped first).
// Environment: DATABASE_URL / DATABASE_PRIVATE_URL of the caller are ignored (only
//   --database-url counts); PONDER_ABI_DIR overrides ../../../contracts/evm/out.
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));

const usage = (message) => {
  process.stderr.write(
    `run.mjs: ${message}\nusage: node run.mjs --rpc <url> --manifest <file> --to-block <N> ` +
      "[--expect-events <k>] [--database-url <postgres url>] [--timeout-s 600] [--max-rps 10000] " +
      "[--poll-ms 1000] [--follow] [--keep] [--log-file <path>]\n",
  );
  process.exit(1);
};

let opt;
try {
  ({ values: opt } = parseArgs({
    options: {
      rpc: { type: "string" },
      manifest: { type: "string" },
      "to-block": { type: "string" },
      "expect-events": { type: "string" },
      "database-url": { type: "string" },
      "timeout-s": { type: "string", default: "600" },
      "max-rps": { type: "string", default: "10000" },
      "poll-ms": { type: "string", default: "1000" },
      follow: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      "log-file": { type: "string" },
    },
  }));
} catch (error) {
  usage(error.message);
}
const int = (name, value) => {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) usage(`--${name} must be a non-negative integer, got ${value}`);
  return Number(value);
};
if (!opt.rpc) usage("--rpc is required");
if (!opt.manifest) usage("--manifest is required");
const toBlock = int("to-block", opt["to-block"]);
if (toBlock === undefined) usage("--to-block is required");
const expectEvents = int("expect-events", opt["expect-events"]);
const timeoutMs = int("timeout-s", opt["timeout-s"]) * 1000;
const manifestPath = path.resolve(opt.manifest);
if (!existsSync(manifestPath)) usage(`manifest ${manifestPath} does not exist`);
const databaseUrl = opt["database-url"];
const database = databaseUrl ? "postgres" : "pglite";

const log = (message) => process.stderr.write(`run.mjs: ${message}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

// ---------------------------------------------------------------- where the head is

// Ponder's finality depth for chains it does not know, 31337 included (config/networks.ts).
const FINALITY_BLOCKS = 30;
let head;
try {
  const response = await fetch(opt.rpc, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }),
    signal: AbortSignal.timeout(10_000),
  });
  head = Number(BigInt((await response.json()).result));
} catch (error) {
  log(`cannot read the head from ${opt.rpc}: ${error.message}`);
  process.exit(2);
}
if (head < toBlock) {
  log(`the chain head ${head} is below --to-block ${toBlock}`);
  process.exit(1);
}
const useEndBlock = !opt.follow && head - toBlock >= FINALITY_BLOCKS;
const realtimeBlocks = Math.max(0, toBlock - Math.max(head - FINALITY_BLOCKS, 0));
if (realtimeBlocks > 0) {
  log(
    `head ${head} is within ${FINALITY_BLOCKS} blocks of ${toBlock}: Ponder syncs the last ` +
      `${realtimeBlocks} block(s) through its realtime path (mine ${FINALITY_BLOCKS - (head - toBlock)}+ ` +
      "blocks first for a pure backfill)",
  );
}

// ---------------------------------------------------------------- fresh state

const schema = `bench_${Date.now()}_${process.pid}`;
const runDir = path.join(here, ".runs", schema);
const pgliteDir = path.join(runDir, "pglite");
const logFile = path.resolve(opt["log-file"] ?? path.join(runDir, "ponder.log"));
// .ponder holds the default PGlite directory and Ponder's logs: never reuse it.
rmSync(path.join(here, ".ponder"), { recursive: true, force: true });
rmSync(runDir, { recursive: true, force: true });
mkdirSync(runDir, { recursive: true });
mkdirSync(path.dirname(logFile), { recursive: true });

async function withPg(fn) {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

if (databaseUrl) {
  // Ponder caches raw RPC results (blocks, logs, intervals) in the `ponder_sync` schema of
  // the database, shared by every app schema: drop it so this run syncs from the RPC.
  try {
    await withPg((client) => client.query("DROP SCHEMA IF EXISTS ponder_sync CASCADE"));
  } catch (error) {
    log(`cannot prepare PostgreSQL (${databaseUrl}): ${error.message}`);
    process.exit(2);
  }
}

// ---------------------------------------------------------------- start Ponder

const port = await freePort();
const env = { ...process.env };
delete env.DATABASE_URL;
delete env.DATABASE_PRIVATE_URL;
Object.assign(env, {
  PONDER_RPC_URL: opt.rpc,
  PONDER_MANIFEST: manifestPath,
  PONDER_MAX_RPS: opt["max-rps"],
  PONDER_POLL_MS: opt["poll-ms"],
  PONDER_PGLITE_DIR: pgliteDir,
  PONDER_TELEMETRY_DISABLED: "true",
  NODE_ENV: "production",
});
if (useEndBlock) env.PONDER_END_BLOCK = String(toBlock);
else delete env.PONDER_END_BLOCK;
if (databaseUrl) env.DATABASE_URL = databaseUrl;

const out = createWriteStream(logFile);
const started = performance.now();
const child = spawn(
  process.execPath,
  [path.join(here, "node_modules/ponder/dist/esm/bin/ponder.js"), "start", "--schema", schema, "--port", String(port)],
  { cwd: here, env, detached: true, stdio: ["ignore", "pipe", "pipe"] },
);
child.stdout.pipe(out);
child.stderr.pipe(out);
let exited = null;
const exitedPromise = new Promise((resolve) =>
  child.on("exit", (code, signal) => {
    exited = { code, signal };
    resolve();
  }),
);
log(`ponder pid ${child.pid}, port ${port}, schema ${schema}, ${database}, log ${logFile}`);

async function stop() {
  if (exited === null) {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    const killTimer = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, 10_000);
    await exitedPromise;
    clearTimeout(killTimer);
  }
  // Anything left in the group (workers) goes too.
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {}
  await new Promise((resolve) => out.end(resolve));
}

async function cleanup() {
  if (opt.keep) return;
  if (databaseUrl) {
    try {
      await withPg((client) =>
        client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE; DROP SCHEMA IF EXISTS ponder_sync CASCADE`),
      );
    } catch (error) {
      log(`could not drop schema ${schema}: ${error.message}`);
    }
  }
  // Keep the log when it was asked for outside the run directory.
  rmSync(runDir, { recursive: true, force: true });
  try {
    rmdirSync(path.join(here, ".runs")); // only when empty
  } catch {}
}

async function fail(code, message) {
  log(message);
  await stop();
  try {
    const lines = readFileSync(logFile, "utf8").trimEnd().split("\n");
    process.stderr.write(`--- last lines of ${logFile}\n${lines.slice(-40).join("\n")}\n---\n`);
  } catch {}
  if (!opt.keep) {
    if (!opt["log-file"]) log(`(run directory ${runDir} removed; pass --keep to keep it)`);
    await cleanup();
  }
  process.exit(code);
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => fail(130, `interrupted by ${signal}`));
}

// ---------------------------------------------------------------- wait until done

const base = `http://127.0.0.1:${port}`;
const get = async (route) => {
  const response = await fetch(base + route, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: await response.text() };
};

let startupSeconds = null;
let lastBlock = null;
let lastReport = 0;
let mismatchSince = null;
let result = null;
const deadline = started + timeoutMs;

while (result === null) {
  if (exited !== null) {
    await fail(2, `ponder exited before block ${toBlock} was indexed (code ${exited.code}, signal ${exited.signal})`);
  }
  if (performance.now() > deadline) {
    await fail(
      3,
      `timeout: block ${toBlock} not indexed after ${timeoutMs / 1000} s (last /status block: ${lastBlock ?? "none"})`,
    );
  }
  try {
    if (startupSeconds === null) {
      const health = await get("/health");
      if (health.status === 200) startupSeconds = (performance.now() - started) / 1000;
    }
    if (startupSeconds !== null) {
      const status = await get("/status");
      const parsed = status.status === 200 ? JSON.parse(status.body) : null;
      const network = parsed ? Object.values(parsed)[0] : null;
      lastBlock = network?.block?.number ?? lastBlock;
      if (lastBlock !== null && lastBlock >= toBlock) {
        const seconds = (performance.now() - started) / 1000;
        const counted = JSON.parse((await get(`/count?to=${toBlock}`)).body);
        const events = Number(counted.events);
        if (expectEvents === undefined || events === expectEvents) {
          result = { events, seconds, counted };
          break;
        }
        // Status and rows commit together; allow a short grace period before calling it a mismatch.
        mismatchSince ??= performance.now();
        if (performance.now() - mismatchSince > 3_000) {
          await fail(4, `block ${toBlock} reached but the event table holds ${events} rows, expected ${expectEvents}`);
        }
      }
    }
  } catch {
    // Server not up yet, or busy: try again.
  }
  if (performance.now() - lastReport > 5_000) {
    lastReport = performance.now();
    log(`waiting: /status block ${lastBlock ?? "none"} of ${toBlock}`);
  }
  await sleep(100);
}

await stop();
// Ponder logs "Started '<network>' historical sync with X% cached": proof the RPC was used.
let cachedPercent = null;
try {
  const match = /historical sync with ([\d.]+)% cached/.exec(readFileSync(logFile, "utf8"));
  if (match) cachedPercent = Number(match[1]);
} catch {}
if (cachedPercent) log(`warning: Ponder reported ${cachedPercent}% of the historical sync as cached`);
await cleanup();
process.stdout.write(
  `${JSON.stringify({
    peer: "ponder",
    database,
    events: result.events,
    seconds: Number(result.seconds.toFixed(3)),
    eventsPerSecond: Number((result.events / result.seconds).toFixed(1)),
    toBlock,
    head,
    realtimeBlocks,
    startupSeconds: startupSeconds === null ? null : Number(startupSeconds.toFixed(3)),
    cachedPercent,
    rewardAccounts: Number(result.counted.rewardAccounts),
    chargedModels: Number(result.counted.chargedModels),
    schema,
  })}\n`,
);
process.exit(0);
