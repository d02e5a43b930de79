// openai.mjs — the official `openai` npm client against a running pdserve cluster: completions and chat,
// streamed and not, stop strings, seeded sampling reproducible, usage numbers, n > 1, logprobs, echo,
// and the errors a client sees (bad field, unknown model, prompt too long, bad key).
// usage: node tests/frontend/openai.mjs BASE_URL API_KEY
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../node/package.json"));
const OpenAI = require("openai");

const [base, key] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: key, maxRetries: 0, timeout: 60000 });
let failures = 0, checks = 0;
function check(cond, what) {
  checks++;
  if (!cond) { failures++; console.log("FAIL " + what); } else console.log("ok   " + what);
}

async function promptTokens(text) {
  const r = await fetch(base + "/tokenize", {
    method: "POST", headers: { Authorization: "Bearer " + key }, body: JSON.stringify({ prompt: text }),
  });
  return (await r.json()).count;
}

async function collect(stream) {
  const out = { chunks: [], text: {}, finish: {}, usage: null, ids: new Set(), roles: 0 };
  for await (const c of stream) {
    out.chunks.push(c);
    out.ids.add(c.id);
    if (c.usage) out.usage = c.usage;
    for (const ch of c.choices) {
      const piece = ch.text ?? ch.delta?.content ?? "";
      if (ch.delta?.role === "assistant") out.roles++;
      out.text[ch.index] = (out.text[ch.index] ?? "") + piece;
      if (ch.finish_reason) out.finish[ch.index] = ch.finish_reason;
    }
  }
  return out;
}

const model = (await client.models.list()).data[0].id;
check(typeof model === "string" && model.length > 0, `models.list names the model (${model})`);
const prompt = "The quick brown fox";
const greedy = { model, prompt, max_tokens: 24, temperature: 0, ignore_eos: true };

// completions, not streamed
const c1 = await client.completions.create(greedy);
check(c1.id.startsWith("cmpl-") && c1.object === "text_completion" && c1.model === model, "completion id/object/model");
check(c1.choices.length === 1 && c1.choices[0].finish_reason === "length", "completion finish_reason length");
check(c1.usage.completion_tokens === 24, `usage.completion_tokens = max_tokens (${c1.usage.completion_tokens})`);
const pt = await promptTokens(prompt);
check(c1.usage.prompt_tokens === pt && c1.usage.total_tokens === pt + 24, `usage.prompt_tokens = /tokenize count (${pt})`);
const c1b = await client.completions.create(greedy);
check(c1b.choices[0].text === c1.choices[0].text, "greedy is deterministic");

// completions, streamed: same text, one id, usage at the end
const s1 = await collect(await client.completions.create({ ...greedy, stream: true, stream_options: { include_usage: true } }));
check(s1.text[0] === c1.choices[0].text, "streamed text equals the whole answer");
check(s1.ids.size === 1 && [...s1.ids][0].startsWith("cmpl-"), "one cmpl- id across chunks");
check(s1.finish[0] === "length", "stream finish_reason length");
check(s1.usage && s1.usage.completion_tokens === 24 && s1.usage.prompt_tokens === pt, "include_usage chunk numbers");
check(s1.chunks.at(-1).choices.length === 0, "usage chunk has no choices");

// seeded sampling is reproducible, streamed or not
const sampled = { model, prompt, max_tokens: 20, temperature: 0.9, top_p: 0.95, seed: 1234, ignore_eos: true };
const a = await client.completions.create(sampled);
const b = await client.completions.create(sampled);
const sb = await collect(await client.completions.create({ ...sampled, stream: true }));
check(a.choices[0].text === b.choices[0].text && sb.text[0] === a.choices[0].text, "same seed, same text (3 runs)");

// stop strings: the answer ends before the first occurrence, streamed or not
const full = c1.choices[0].text;
let stop = null;
for (let i = 4; i + 3 <= full.length; i++) {
  const cand = full.slice(i, i + 3);
  if (/^[\x21-\x7e]{3}$/.test(cand)) { stop = cand; break; }
}
if (stop) {
  const want = full.slice(0, full.indexOf(stop));
  const st = await client.completions.create({ ...greedy, stop: [stop, "\u2603never"] });
  check(st.choices[0].text === want && st.choices[0].finish_reason === "stop", `stop ${JSON.stringify(stop)} cuts the text`);
  const sst = await collect(await client.completions.create({ ...greedy, stop, stream: true }));
  check(sst.text[0] === want && sst.finish[0] === "stop", "streamed stop string: same cut, nothing leaked");
} else {
  check(false, `no ASCII run in the greedy output to use as a stop string: ${JSON.stringify(full)}`);
}

// n > 1 and several prompts
const n2 = await client.completions.create({ ...sampled, n: 2, prompt: [prompt, "Hello"] });
check(n2.choices.length === 4 && n2.choices.map((c) => c.index).sort().join() === "0,1,2,3", "2 prompts x n=2: indexes 0..3");
check(n2.usage.completion_tokens === 80, `usage sums the choices (${n2.usage.completion_tokens})`);

// logprobs and echo
const lp = await client.completions.create({ ...greedy, max_tokens: 5, logprobs: 1 });
const l = lp.choices[0].logprobs;
check(l && l.tokens.length === 5 && l.token_logprobs.every((x) => x <= 0) && l.text_offset.length === 5, "completion logprobs");
const ec = await client.completions.create({ ...greedy, max_tokens: 3, echo: true });
check(ec.choices[0].text.startsWith(prompt), "echo puts the prompt first");

// chat, not streamed and streamed
const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Say something." }];
const chat = { model, messages, max_tokens: 16, temperature: 0, ignore_eos: true };
const ch = await client.chat.completions.create(chat);
check(ch.id.startsWith("chatcmpl-") && ch.object === "chat.completion", "chat id/object");
check(ch.choices[0].message.role === "assistant" && typeof ch.choices[0].message.content === "string", "chat message");
check(ch.usage.completion_tokens === 16 && ch.choices[0].finish_reason === "length", "chat usage and finish");
const sch = await collect(await client.chat.completions.create({ ...chat, stream: true, stream_options: { include_usage: true } }));
check(sch.text[0] === ch.choices[0].message.content, "streamed chat content equals the whole answer");
check(sch.roles === 1 && sch.chunks[0].object === "chat.completion.chunk", "role once, chunk object");
check(sch.usage && sch.usage.prompt_tokens === ch.usage.prompt_tokens, "chat stream usage");
const clp = await client.chat.completions.create({ ...chat, max_tokens: 4, logprobs: true, top_logprobs: 1 });
check(clp.choices[0].logprobs?.content?.length === 4, "chat logprobs, one entry per token");

// errors the client sees
async function expectError(req, status, what, param) {
  try {
    await client.completions.create(req);
    check(false, `${what}: accepted`);
  } catch (e) {
    check(e.status === status && (!param || e.param === param || e.error?.param === param),
      `${what}: ${status}${param ? " naming " + param : ""} (got ${e.status}: ${e.message})`);
  }
}
await expectError({ ...greedy, temperature: 7 }, 400, "temperature out of range", "temperature");
await expectError({ ...greedy, model: "no-such-model" }, 404, "unknown model");
await expectError({ ...greedy, prompt: "word ".repeat(5000) }, 400, "prompt longer than the context");
const bad = new OpenAI({ baseURL: base + "/v1", apiKey: "wrong", maxRetries: 0 });
try {
  await bad.models.list();
  check(false, "wrong API key accepted");
} catch (e) {
  check(e.status === 401, `wrong API key: 401 (got ${e.status})`);
}

console.log(`${checks} checks, ${failures} failed`);
process.exit(failures ? 1 : 0);
