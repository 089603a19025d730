// ABIs of the five suite contracts, read from the compiled artifacts in contracts/evm/out.
// Loaded at runtime (not imported) so the artifacts stay the single source of truth; the
// cast to `Abi` means handler names are not type-checked against the ABI, which Ponder does
// not need at runtime.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Abi, AbiEvent } from "viem";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Directory of the Solidity build artifacts (`<Name>.json` with an `abi` member). */
export const abiDir =
  process.env.PONDER_ABI_DIR ?? path.resolve(here, "../../../contracts/evm/out");

const load = (name: string): Abi =>
  (JSON.parse(readFileSync(path.join(abiDir, `${name}.json`), "utf8")) as { abi: unknown })
    .abi as unknown as Abi;

/** Ponder contract name -> ABI. The names match the manifest's `contracts` keys by `manifestKey`. */
export const suite = {
  OpenToken: { abi: load("OpenToken"), manifestKey: "token" },
  DatanetRegistry: { abi: load("DatanetRegistry"), manifestKey: "datanets" },
  ModelRegistry: { abi: load("ModelRegistry"), manifestKey: "models" },
  OperatorRegistry: { abi: load("OperatorRegistry"), manifestKey: "operators" },
  Settlement: { abi: load("Settlement"), manifestKey: "settlement" },
} as const;

export type ContractName = keyof typeof suite;

/** Every event of a contract's ABI, by name (none of the suite's ABIs overloads an event name). */
export const eventsOf = (name: ContractName): AbiEvent[] =>
  suite[name].abi.filter((item): item is AbiEvent => item.type === "event");
