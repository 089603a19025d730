// llama.cpp side of `cargo bench -p openledger-engine --bench throughput`.
// Runs N parallel sequences in one context (llama.cpp's own batching), greedy, a fixed number
// of generated tokens each, with the same ChatML prompts as the Rust side, and prints one JSON
// line: {"aggregate_tps":..,"per_sequence_decode_tps":..}.
import { getLlama } from "node-llama-cpp";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, v, i, a) => (v.startsWith("--") ? [...acc, [v.slice(2), a[i + 1]]] : acc), []),
);
const sequences = Number(args.sequences ?? 1);
const tokens = Number(args.tokens ?? 128);
const threads = Number(args.threads ?? 2);
const prompt = args.prompt ?? "Hello";

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath: args.model });
const context = await model.createContext({ sequences, contextSize: 1024 * sequences, threads, batchSize: 512 });

const system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
const chat = (i) =>
  `<|im_start|>system\n${system}<|im_end|>\n<|im_start|>user\n${prompt} (#${i})<|im_end|>\n<|im_start|>assistant\n`;

async function one(i) {
  const seq = context.getSequence();
  const input = model.tokenize(chat(i), true);
  let first = null, last = null, n = 0;
  for await (const _t of seq.evaluate(input, { temperature: 0 })) {
    const now = performance.now();
    first ??= now;
    last = now;
    if (++n >= tokens) break;
  }
  return { n, decode: n > 1 ? (n - 1) / ((last - first) / 1000) : 0 };
}

const t0 = performance.now();
const results = await Promise.all(Array.from({ length: sequences }, (_, i) => one(i)));
const wall = (performance.now() - t0) / 1000;
const total = results.reduce((s, r) => s + r.n, 0);
const perSeq = results.reduce((s, r) => s + r.decode, 0) / results.length;
console.log(JSON.stringify({ aggregate_tps: total / wall, per_sequence_decode_tps: perSeq, sequences, tokens }));
await context.dispose();
await model.dispose();
