// Loads a batch from the oracle's GET /v1/batches/{seq} (a JSON file, argv[2]) with the real
// npm `@openzeppelin/merkle-tree` (the repository's pinned dev dependency): the `tree` dump must
// load as a StandardMerkleTree, validate, have the batch's receiptsRoot as its root, and prove
// every receipt; prints "ok <root> <n>" or exits non-zero.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");

const batch = JSON.parse(readFileSync(process.argv[2], "utf8"));
const tree = StandardMerkleTree.load(batch.tree);
tree.validate();
if (tree.root !== batch.batch.receiptsRoot) {
  console.error(`root ${tree.root} != receiptsRoot ${batch.batch.receiptsRoot}`);
  process.exit(1);
}
let n = 0;
for (const [i, value] of tree.entries()) {
  if (!StandardMerkleTree.verify(tree.root, tree.leafEncoding, value, tree.getProof(i))) {
    console.error(`proof ${i} does not verify`);
    process.exit(1);
  }
  n++;
}
console.log(`ok ${tree.root} ${n}`);
