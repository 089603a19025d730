#!/usr/bin/env node
// Generates indexable history on a dev chain (anvil) where the suite is deployed, using the
// anvil dev accounts (mnemonic "test ... junk"): token transfers/approvals, an operator stake,
// a datanet, a model, escrow deposits and signed settlement batches (Charged, RewardCredited,
// BatchSettled...). Every transaction waits for its receipt (anvil automine).
//
//   node gen-events.mjs --rpc http://127.0.0.1:8545 --manifest deployment.json \
//     [--transfers 300] [--batches 20] [--users 5] [--mine 0]
//
// --mine K mines K empty blocks at the end (anvil_mine), e.g. to push the last event out of
// Ponder's 30-block "unfinalized" window on chain 31337.
// Prints one JSON line: {"toBlock":N,"events":k,"transactions":t,"seconds":s}, where `events`
// is the number of logs of the five contracts from deployBlock to N (eth_getLogs), i.e. the
// row count an indexer must reach.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createPublicClient, createWalletClient, http, keccak256, toHex } from "viem";
import { mnemonicToAccount, sign } from "viem/accounts";

const { values: opt } = parseArgs({
  options: {
    rpc: { type: "string", default: "http://127.0.0.1:8545" },
    manifest: { type: "string" },
    transfers: { type: "string", default: "300" },
    batches: { type: "string", default: "20" },
    users: { type: "string", default: "5" },
    mine: { type: "string", default: "0" },
  },
});
if (!opt.manifest) throw new Error("--manifest is required");
const manifest = JSON.parse(readFileSync(opt.manifest, "utf8"));
const started = performance.now();

const MNEMONIC = "test test test test test test test test test test test junk";
const accounts = Array.from({ length: 10 }, (_, i) => mnemonicToAccount(MNEMONIC, { addressIndex: i }));
const hdKey = (i) => toHex(mnemonicToAccount(MNEMONIC, { addressIndex: i }).getHdKey().privateKey);

const transport = http(opt.rpc);
const chain = {
  id: manifest.chainId,
  name: "dev",
  nativeCurrency: { name: "ETH", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [opt.rpc] } },
};
const pub = createPublicClient({ chain, transport, pollingInterval: 20 });
const wallets = accounts.map((account) => createWalletClient({ account, chain, transport }));

const addr = manifest.contracts;
const abiDir = process.env.PONDER_ABI_DIR ?? new URL("../../../contracts/evm/out/", import.meta.url).pathname;
const load = (name) => JSON.parse(readFileSync(`${abiDir}/${name}.json`, "utf8")).abi;
const abi = {
  token: load("OpenToken"),
  datanets: load("DatanetRegistry"),
  models: load("ModelRegistry"),
  operators: load("OperatorRegistry"),
  settlement: load("Settlement"),
};

let txs = 0;
async function send(who, contract, functionName, args) {
  const hash = await wallets[who].writeContract({
    address: addr[contract],
    abi: abi[contract],
    functionName,
    args,
  });
  const receipt = await pub.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${contract}.${functionName} reverted`);
  txs += 1;
  return receipt;
}
const read = (contract, functionName, args = []) =>
  pub.readContract({ address: addr[contract], abi: abi[contract], functionName, args });

const OPEN = 10n ** 18n;
const [deployer, operator, developer, datanetOwner] = [0, 1, 2, 3];
const nUsers = Math.min(Number(opt.users), 6);
const users = Array.from({ length: nUsers }, (_, i) => 4 + i);

// Funding: the deployer holds the whole supply.
for (const who of [operator, developer, datanetOwner, ...users]) {
  await send(deployer, "token", "transfer", [accounts[who].address, 100_000n * OPEN]);
}

// Operator: stake the minimum, sign with its own key.
const minStake = await read("operators", "minStake");
await send(operator, "token", "approve", [addr.operators, minStake]);
await send(operator, "operators", "stake", [minStake]);
await send(operator, "operators", "setSigner", [accounts[operator].address]);

// A datanet (no accepted contributions required) and a model trained on it.
await send(datanetOwner, "datanets", "createDatanet", ["ipfs://bench-datanet", 0]);
const datanetId = await read("datanets", "datanetCount");
await send(developer, "models", "registerModel", [
  [datanetId],
  keccak256(toHex("base")),
  keccak256(toHex("adapter")),
  "ipfs://bench-adapter",
  1_000n,
]);
const modelId = await read("models", "modelCount");
await send(operator, "operators", "setServing", [modelId, true]);

// Users: escrow with the operator.
for (const who of users) {
  await send(who, "token", "approve", [addr.settlement, 10_000n * OPEN]);
  await send(who, "settlement", "deposit", [accounts[operator].address, 10_000n * OPEN]);
}

// Settlement batches: one debit per user (sorted by address), one datanet credit.
const sortedUsers = [...users].sort((a, b) =>
  BigInt(accounts[a].address) < BigInt(accounts[b].address) ? -1 : 1,
);
const vouchers = [];
for (const who of sortedUsers) {
  const voucher = {
    user: accounts[who].address,
    operator: accounts[operator].address,
    modelId,
    cumulativeCap: 10_000n * OPEN,
    expiry: 2n ** 63n,
    nonce: 0n,
  };
  const digest = await read("settlement", "voucherDigest", [voucher]);
  vouchers.push({ voucher, signature: await sign({ hash: digest, privateKey: hdKey(who), to: "hex" }) });
}
const policyEpoch = await read("settlement", "currentEpoch");
let sequence = (await read("settlement", "lastSequence", [accounts[operator].address])) + 1n;
for (let b = 0; b < Number(opt.batches); b++, sequence++) {
  const batch = {
    operator: accounts[operator].address,
    sequence,
    deadline: 2n ** 63n,
    policyEpoch,
    receiptsRoot: keccak256(toHex(`receipts-${sequence}`)),
    debits: sortedUsers.map((who, i) => ({
      user: accounts[who].address,
      modelId,
      amount: OPEN + BigInt(b * 1000 + i),
    })),
    credits: [{ modelId, datanetId, contributionId: 0n, weight: 1n }],
  };
  const digest = await read("settlement", "batchDigest", [batch]);
  const signature = await sign({ hash: digest, privateKey: hdKey(operator), to: "hex" });
  await send(operator, "settlement", "settleBatch", [batch, signature, vouchers]);
}

// Plain token traffic between the dev accounts.
for (let i = 0; i < Number(opt.transfers); i++) {
  const from = 4 + (i % nUsers);
  const to = (from + 1 + (i % 5)) % 10;
  if (i % 4 === 3) await send(from, "token", "approve", [accounts[to].address, BigInt(i)]);
  else await send(from, "token", "transfer", [accounts[to].address, BigInt(i + 1)]);
}

if (Number(opt.mine) > 0) {
  await pub.request({ method: "anvil_mine", params: [toHex(Number(opt.mine))] });
}

const toBlock = await pub.getBlockNumber();
const logs = await pub.request({
  method: "eth_getLogs",
  params: [{ address: Object.values(addr), fromBlock: toHex(manifest.deployBlock), toBlock: toHex(toBlock) }],
});
console.log(
  JSON.stringify({
    toBlock: Number(toBlock),
    events: logs.length,
    transactions: txs,
    seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
  }),
);
