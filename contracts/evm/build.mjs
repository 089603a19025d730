// Compiles contracts/interfaces and contracts/evm/{src,test} with the pinned solc-js (npm, offline)
// and writes one artifact per contract to contracts/evm/out/<Name>.json (abi + bytecode, the
// shape alloy's `sol!` reads). `--check` compiles and fails if the committed artifacts differ,
// so the bindings can never drift from the sources.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const OUT = path.join(ROOT, "contracts/evm/out");
const SOURCE_DIRS = ["contracts/interfaces", "contracts/evm/src", "contracts/evm/test"];

function listSources() {
  const sources = {};
  for (const dir of SOURCE_DIRS) {
    for (const file of fs.readdirSync(path.join(ROOT, dir)).sort()) {
      if (file.endsWith(".sol")) {
        const unit = `${dir}/${file}`;
        sources[unit] = { content: fs.readFileSync(path.join(ROOT, unit), "utf8") };
      }
    }
  }
  return sources;
}

function findImports(unit) {
  const candidates = unit.startsWith("@") ? [path.join(ROOT, "node_modules", unit)] : [path.join(ROOT, unit)];
  for (const file of candidates) {
    if (fs.existsSync(file)) return { contents: fs.readFileSync(file, "utf8") };
  }
  return { error: `not found: ${unit} (run npm ci)` };
}

const sources = listSources();
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    viaIR: true,
    evmVersion: "cancun",
    metadata: { bytecodeHash: "none" },
    outputSelection: Object.fromEntries(
      Object.keys(sources).map((unit) => [unit, { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] }]),
    ),
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length > 0) process.exit(1);

const artifacts = {};
for (const [unit, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    const artifact = {
      contractName: name,
      sourceName: unit,
      compiler: `solc ${solc.version()}`,
      abi: c.abi,
      bytecode: c.evm.bytecode.object ? `0x${c.evm.bytecode.object}` : "0x",
      deployedBytecode: c.evm.deployedBytecode.object ? `0x${c.evm.deployedBytecode.object}` : "0x",
    };
    artifacts[`${name}.json`] = JSON.stringify(artifact, null, 2) + "\n";
  }
}

if (process.argv.includes("--check")) {
  const stale = Object.entries(artifacts).filter(([file, text]) => {
    const p = path.join(OUT, file);
    return !fs.existsSync(p) || fs.readFileSync(p, "utf8") !== text;
  });
  const committed = fs.existsSync(OUT) ? fs.readdirSync(OUT) : [];
  const extra = committed.filter((f) => !(f in artifacts));
  if (stale.length || extra.length) {
    console.error(`contracts/evm/out is stale: ${[...stale.map(([f]) => f), ...extra].join(", ")}`);
    console.error("run `npm run build:contracts` and commit the result");
    process.exit(1);
  }
  console.log(`contracts/evm/out is current (${Object.keys(artifacts).length} artifacts, solc ${solc.version()})`);
} else {
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  for (const [file, text] of Object.entries(artifacts)) fs.writeFileSync(path.join(OUT, file), text);
  console.log(`wrote ${Object.keys(artifacts).length} artifacts to contracts/evm/out (solc ${solc.version()})`);
}
