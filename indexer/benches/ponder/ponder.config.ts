// Ponder (0.10 line, npm `ponder@1.0.0`) peer indexer of the OpenLedger suite, for backfill
// benchmarks. Everything comes from the environment so `run.mjs` can point it at any chain:
//   PONDER_RPC_URL      JSON-RPC URL of the chain (required)
//   PONDER_MANIFEST     path of the deployment manifest written by `openledger deploy` (required)
//   PONDER_END_BLOCK    last block to index (inclusive); unset: follow the head in real time
//   PONDER_MAX_RPS      maxRequestsPerSecond of the network (default 10000; Ponder's own is 50)
//   PONDER_POLL_MS      realtime polling interval in ms (default 1000, Ponder's default)
//   PONDER_PGLITE_DIR   PGlite data directory (default .ponder/pglite); ignored with DATABASE_URL
//   DATABASE_URL        use PostgreSQL instead of PGlite (read by Ponder itself)
import { readFileSync } from "node:fs";
import { createConfig } from "ponder";
import { http } from "viem";
import { suite } from "./abis";

const need = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

type Manifest = {
  chainId: number;
  deployBlock: number;
  contracts: Record<(typeof suite)[keyof typeof suite]["manifestKey"], `0x${string}`>;
};

const manifest = JSON.parse(readFileSync(need("PONDER_MANIFEST"), "utf8")) as Manifest;
const endBlock = process.env.PONDER_END_BLOCK ? Number(process.env.PONDER_END_BLOCK) : undefined;

const contract = <const name extends keyof typeof suite>(name: name) => ({
  abi: suite[name].abi,
  network: "anvil" as const,
  address: manifest.contracts[suite[name].manifestKey],
  startBlock: manifest.deployBlock,
  endBlock,
});

export default createConfig({
  database: process.env.DATABASE_URL
    ? { kind: "postgres", connectionString: process.env.DATABASE_URL }
    : { kind: "pglite", directory: process.env.PONDER_PGLITE_DIR ?? ".ponder/pglite" },
  networks: {
    anvil: {
      chainId: manifest.chainId,
      // viem 2.57 caps a JSON-RPC response at 10 MiB and Ponder does not shrink its
      // eth_getLogs range on that error (it is fatal): 2,000-transfer blocks make 60 MB
      // responses, so the cap is lifted (anvil is local).
      transport: http(need("PONDER_RPC_URL"), { maxResponseBodySize: false }),
      maxRequestsPerSecond: Number(process.env.PONDER_MAX_RPS ?? 10_000),
      pollingInterval: Number(process.env.PONDER_POLL_MS ?? 1_000),
    },
  },
  contracts: {
    OpenToken: contract("OpenToken"),
    DatanetRegistry: contract("DatanetRegistry"),
    ModelRegistry: contract("ModelRegistry"),
    OperatorRegistry: contract("OperatorRegistry"),
    Settlement: contract("Settlement"),
  },
});
