// bench.mjs — llama.cpp (node-llama-cpp's prebuilt CPU binary) on a GGUF written by pdserve-gguf:
// prefill tokens/s at each prompt length, batch-1 decode tokens/s, greedy tokens of a check prompt and
// the process's RSS, as one JSON line. Driven by tests/bench/engine.sh, which runs pdserve on the same
// weights in the same invocation.
//   node bench.mjs --model FILE.gguf --threads N --prompt-lens 128,512,2048 --decode-steps 64 --check "[ids]"
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : dflt;
};
const modelPath = arg("model"), threads = Number(arg("threads", "1"));
const lens = arg("prompt-lens", "128").split(",").map(Number), steps = Number(arg("decode-steps", "64"));
const check = JSON.parse(arg("check", "[1,2,3]")), checkTokens = Number(arg("check-tokens", "16"));
const vocab = Number(arg("vocab", "32000"));
const ids = (n, seed) => Array.from({length: n}, (_, i) => 3 + ((seed * 7919 + i * 104729) % (vocab - 3)));
const now = () => Number(process.hrtime.bigint()) / 1e9;

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: threads});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const maxLen = Math.max(...lens, check.length + checkTokens, 16 + steps + 1);
const context = await model.createContext({contextSize: maxLen + 64, batchSize: Math.max(...lens, 512),
                                           threads: {ideal: threads, min: threads}, sequences: 1});
const seq = context.getSequence();

// warm-up: touch every weight once
await seq.evaluateWithoutGeneratingNewTokens(ids(32, 9));
await seq.clearHistory();

const prefill = {};
for (const n of lens) {
    let best = 0;
    for (let rep = 0; rep < (n >= 2048 ? 1 : 2); rep++) {
        const t = now();
        await seq.evaluateWithoutGeneratingNewTokens(ids(n, rep + 1));
        best = Math.max(best, n / (now() - t));
        await seq.clearHistory();
    }
    prefill[n] = best;
}

// greedy decode after a 16-token prompt; the first token (which includes the prompt) is not timed
async function greedy(prompt, count, timed) {
    const out = [];
    let t0 = 0;
    for await (const tok of seq.evaluate(prompt, {temperature: 0})) {
        out.push(tok);
        if (out.length === 1) t0 = now();
        if (out.length >= count) break;
    }
    const secs = now() - t0;
    await seq.clearHistory();
    return timed ? (count - 1) / secs : out;
}
const decode = await greedy(ids(16, 5), steps + 1, true);
const tokens = await greedy(check, checkTokens, false);
console.log(JSON.stringify({engine: "llama.cpp", threads, prefill, decode, tokens,
                            rss_mib: process.memoryUsage().rss / 1048576}));
await context.dispose();
await model.dispose();
await llama.dispose();
