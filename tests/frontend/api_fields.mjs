// api_fields.mjs — no request field silently ignored, seen through the official `openai` npm client:
// unknown fields and unimplemented ones that ask for something get a 400 naming them (BadRequestError
// with .param), the values that ask for nothing pass, and responses carry system_fingerprint, a real
// `created`, usage.completion_tokens_details; GET /v1/models/{id} answers the served model or a 404.
// usage: node tests/frontend/api_fields.mjs BASE_URL MODEL
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../node/package.json"));
const OpenAI = require("openai");

const [base, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: "none", maxRetries: 0, timeout: 60000 });
let failures = 0;
function check(cond, what) {
  if (!cond) { failures++; console.log("FAIL " + what); } else console.log("ok   " + what);
}

const completion = { model, prompt: "one two three", max_tokens: 4, temperature: 0 };
const chat = { model, messages: [{ role: "user", content: "hello" }], max_tokens: 4, temperature: 0 };

// refused(kind, body, param): the request gets a 400 whose param names the field
async function refused(kind, body, param) {
  for (const stream of [false, true]) {
    try {
      const api = kind === "chat" ? client.chat.completions : client.completions;
      const r = await api.create({ ...body, stream });
      if (stream) for await (const _ of r) { /* drain */ }
      check(false, `${kind} ${param} (stream ${stream}) refused`);
    } catch (e) {
      check(e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === param && e.message.length > 0,
            `${kind} ${param} (stream ${stream}): 400 "${e.error?.message ?? e.message}"`);
    }
  }
}

await refused("completions", { ...completion, temprature: 0.5 }, "temprature");
await refused("chat", { ...chat, echo: true }, "echo");
await refused("completions", { ...completion, logit_bias: { 5: 200 } }, "logit_bias");
await refused("completions", { ...completion, suffix: " the end" }, "suffix");
await refused("completions", { ...completion, best_of: 21 }, "best_of");
await refused("completions", { ...completion, n: 2, best_of: 1 }, "best_of");
await refused("chat", { ...chat, response_format: { type: "json_schema", json_schema: { name: "x",
                                                    schema: { type: "string", maxLength: 3 } } } }, "response_format");
await refused("chat", { ...chat, tool_choice: "required" }, "tool_choice");
await refused("chat", { ...chat, tool_choice: { type: "function", function: { name: "f" } } }, "tool_choice");
await refused("chat", { ...chat, reasoning_effort: "high" }, "reasoning_effort");
await refused("chat", { ...chat, store: true }, "store");

// values that ask for nothing pass, and the response fields are there
const t0 = Math.floor(Date.now() / 1000);
const c = await client.completions.create({ ...completion, logit_bias: {}, suffix: "", best_of: 1, user: "u-1",
                                             service_tier: "auto" });
check(c.choices.length === 1 && /^fp_[0-9a-f]{10}$/.test(c.system_fingerprint ?? ""), `completion system_fingerprint ${c.system_fingerprint}`);
check(Math.abs(c.created - t0) <= 60, `created is now (${c.created} vs ${t0})`);
check(c.usage.completion_tokens_details?.reasoning_tokens === 0 && c.usage.prompt_tokens_details?.cached_tokens >= 0,
      "usage has prompt_tokens_details and completion_tokens_details");
const ch = await client.chat.completions.create({ ...chat, response_format: { type: "text" }, tool_choice: "none",
                                                   store: false, modalities: ["text"] });
check(ch.system_fingerprint === c.system_fingerprint, "chat carries the same system_fingerprint");
const s = await client.chat.completions.create({ ...chat, stream: true, stream_options: { include_usage: true } });
let fps = new Set(), usage = null;
for await (const chunk of s) { fps.add(chunk.system_fingerprint); if (chunk.usage) usage = chunk.usage; }
check(fps.size === 1 && fps.has(c.system_fingerprint), "every streamed chunk carries it");
check(usage?.completion_tokens_details?.reasoning_tokens === 0, "the stream's usage too");

// /v1/models/{id}
const m = await client.models.retrieve(model);
check(m.id === model && m.object === "model" && Math.abs(m.created - t0) <= 3600, `models.retrieve(${model})`);
try {
  await client.models.retrieve("no-such-model");
  check(false, "unknown model refused");
} catch (e) {
  check(e instanceof OpenAI.NotFoundError && e.status === 404 && e.param === "model", "unknown model: 404 model_not_found");
}
const raw = await fetch(base + "/v1/models/" + encodeURIComponent(model));
check(raw.status === 200, "a percent-encoded id is decoded");

console.log(failures ? `${failures} failed` : "api_fields: all checks passed");
process.exit(failures ? 1 : 0);
