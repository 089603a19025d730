// Writes oz_merkle.json: receipts trees built by the real npm `@openzeppelin/merkle-tree`
// (StandardMerkleTree), which tests/it/merkle.rs compares our tree with node for node.
//
// Regenerate (the package is not a dependency of the repository; any scratch dir will do):
//   mkdir /tmp/oz && (cd /tmp/oz && npm install --no-save @openzeppelin/merkle-tree@1.0.8)
//   NODE_PATH=/tmp/oz/node_modules node oracle/billing/tests/it/vectors/oz_merkle.mjs \
//     > oracle/billing/tests/it/vectors/oz_merkle.json
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
const { version } = require("@openzeppelin/merkle-tree/package.json");

// The Receipt struct of contracts/interfaces/IReceipts.sol as one bare tuple (the package
// refuses named tuple fields); the leaf is then keccak256(keccak256(abi.encode(receipt))).
const RECEIPT =
  "(bytes32,address,address,uint256,uint32,uint64,uint64,uint256,bytes32,bytes32,uint256,(uint256,uint256,uint32)[],uint64)";

const word = (n) => "0x" + n.toString(16).padStart(64, "0");
const address = (n) => "0x" + n.toString(16).padStart(40, "0");

function receipt(i) {
  const attribution = [];
  for (let k = 0; k < i % 3; k++) {
    attribution.push({ datanetId: String(1 + (k >> 1)), contributionId: String(10 * i + k + 1), ppm: 100000 * (k + 1) + i });
  }
  return {
    requestId: word(0xa000 + i),
    user: address(0xc0ffee00 + (i % 2)),
    operator: address(0x0e0e0e00),
    modelId: String(1 + (i % 2)),
    modelVersion: 1 + (i % 4),
    tokensIn: 10 + i,
    tokensOut: 100 * i,
    fee: (BigInt(2) * 10n ** 15n * BigInt(10 + 101 * i)).toString(),
    promptHash: word(0xbeef00 + i),
    outputHash: word(0xfeed00 + i),
    datanetId: "1",
    attribution,
    timestamp: 1_700_000_000 + 60 * i,
  };
}

const tuple = (r) => [
  r.requestId, r.user, r.operator, r.modelId, r.modelVersion, r.tokensIn, r.tokensOut, r.fee,
  r.promptHash, r.outputHash, r.datanetId,
  r.attribution.map((w) => [w.datanetId, w.contributionId, w.ppm]),
  r.timestamp,
];

const cases = [1, 2, 3, 5, 8].map((n) => {
  const receipts = Array.from({ length: n }, (_, i) => receipt(i));
  const tree = StandardMerkleTree.of(receipts.map((r) => [tuple(r)]), [RECEIPT]);
  const dump = tree.dump();
  return {
    receipts,
    root: tree.root,
    tree: dump.tree,
    treeIndex: dump.values.map((v) => v.treeIndex),
    leaves: receipts.map((_, i) => tree.leafHash(tree.at(i))),
    proofs: receipts.map((_, i) => tree.getProof(i)),
  };
});

console.log(JSON.stringify({ generator: `@openzeppelin/merkle-tree ${version}`, leafEncoding: [RECEIPT], cases }, null, 1));
