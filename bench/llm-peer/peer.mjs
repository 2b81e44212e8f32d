// bench/llm's peer: the same GGUF on node-llama-cpp (a current llama.cpp whose CPU backend is chosen
// for the processor at run time), driven in process, measured as dev.berth.bench.LlmThroughput
// measures Berth:
//
//   node peer.mjs MODEL CONCURRENCY MAX_TOKENS SECONDS CONTEXT THREADS PROMPT_WORDS
//
// CONCURRENCY workers, each on a sequence of its own in one context (CONTEXT tokens a sequence),
// send a prompt of PROMPT_WORDS words after a number no other request has, greedy, MAX_TOKENS
// tokens, again and again: one round to warm up, then for SECONDS. Prints one JSON line: tokens,
// tokens/s, requests, time to first token p50/p99, and the decode rate (tokens after the first
// over the time after the first, per request, averaged).
import { readFileSync } from "node:fs";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [modelPath, c, maxTokens, seconds, contextSize, threads, words] = process.argv.slice(2);
const concurrency = Number(c);
const PROMPT =
  "Berth serves models in production. Write a long story about a ship that finds its berth.";

function prompt() {
  const text = PROMPT.split(" ");
  const out = ["Request", `${Math.floor(Math.random() * 2 ** 40)}:`];
  for (let i = 0; i < Number(words); i++) out.push(text[i % text.length]);
  return out.join(" ");
}

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({
  sequences: concurrency,
  contextSize: Number(contextSize) * concurrency,
  threads: Number(threads),
  batchSize: 512,
});

async function generate(sequence) {
  // a beginning-of-sequence token first, as Berth's engine (llama.cpp's add_special) puts it
  const bos = model.tokens.bos;
  const tokens = [...(bos == null ? [] : [bos]), ...model.tokenize(prompt(), false)];
  const start = performance.now();
  let first = -1;
  let count = 0;
  await sequence.clearHistory();
  for await (const token of sequence.evaluate(tokens, { temperature: 0 })) {
    if (first < 0) first = performance.now() - start;
    count++;
    if (count >= Number(maxTokens) || model.isEogToken?.(token)) break;
  }
  return { count, first, total: performance.now() - start };
}

const sequences = Array.from({ length: concurrency }, () => context.getSequence());
await Promise.all(sequences.map(generate)); // warm-up
const runs = [];
const begin = performance.now();
const end = begin + Number(seconds) * 1000;
await Promise.all(
  sequences.map(async (s) => {
    while (performance.now() < end) runs.push(await generate(s));
  }),
);
const elapsed = (performance.now() - begin) / 1000;
const ttft = runs.map((r) => r.first).sort((a, b) => a - b);
const pct = (p) => ttft[Math.min(ttft.length - 1, Math.max(0, Math.ceil((p / 100) * ttft.length) - 1))];
const tokens = runs.reduce((a, r) => a + r.count, 0);
const decode =
  runs.reduce((a, r) => a + (r.count - 1) / ((r.total - r.first) / 1000), 0) / runs.length;
console.log(
  JSON.stringify({
    path: "node-llama-cpp",
    concurrency,
    seconds: elapsed,
    tokens,
    requests: runs.length,
    tokens_per_second: tokens / elapsed,
    ttft_p50_ms: pct(50),
    ttft_p99_ms: pct(99),
    decode_tokens_per_second_per_sequence: decode,
    // the CPU backend llama.cpp chose, as the process mapped it
    prompt_tokens: model.tokenize(prompt(), false).length + 1,
    cpu_backend: (readFileSync("/proc/self/maps", "utf8").match(/libggml-cpu-([a-z0-9_]+)\.so/) ?? [, "unknown"])[1],
  }),
);
await context.dispose();
await model.dispose();
await llama.dispose();
